/**
 * Window arithmetic shared by the stream processor, the storage layer and the API: tumbling windows aligned to the
 * Unix epoch, labelled by their size in seconds (docs/contract.md, "Windows").
 */

/** `10s` -> 10000. Throws on a label that is not `<positive integer>s`. */
export function resolutionMs(label: string): number {
  const m = /^([1-9][0-9]*)s$/.exec(label);
  if (!m) throw new RangeError(`resolution "${label}" is not of the form <seconds>s, e.g. 10s`);
  return Number(m[1]) * 1000;
}

export function resolutionLabel(ms: number): string {
  if (!Number.isInteger(ms) || ms <= 0 || ms % 1000 !== 0)
    throw new RangeError(`window size ${ms} ms is not a whole number of seconds`);
  return `${ms / 1000}s`;
}

/** Start of the window of size `sizeMs` that holds `ts`: floor(ts/S)*S, correct for negative ts too. */
export function windowStart(ts: number, sizeMs: number): number {
  return Math.floor(ts / sizeMs) * sizeMs;
}

/**
 * Cassandra partitions hold one device-metric-resolution over a bucket of 3600 windows (1 h of 1 s windows,
 * 10 h of 10 s ones, 60 h of 60 s ones), so no partition grows without bound and each stays near 3600 rows.
 */
export const WindowsPerBucket = 3600;

export function bucketOf(windowStartMs: number, sizeMs: number): number {
  const bucketMs = sizeMs * WindowsPerBucket;
  return Math.floor(windowStartMs / bucketMs) * bucketMs;
}

/** The bucket starts that a time range [fromMs, toMs) touches, oldest first. */
export function bucketsBetween(fromMs: number, toMs: number, sizeMs: number): number[] {
  const bucketMs = sizeMs * WindowsPerBucket;
  const out: number[] = [];
  for (let b = bucketOf(fromMs, sizeMs); b < toMs; b += bucketMs) out.push(b);
  return out;
}
