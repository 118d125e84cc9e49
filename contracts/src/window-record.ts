import { envList } from './env';
import type { AggregateRow, MetricStats, WindowRecord } from './types.generated';
import { resolutionMs } from './windows';

/**
 * v2 window records (docs/contract.md, "Window record", "Storage"): one record per device, resolution and window
 * holding every metric. The v1 per-metric row (`AggregateRow`) is one metric of a record: the REST per-metric point.
 */

/** The statistics of a metric in a window, in the order of the contract (and of the `metric_stats` UDT). */
export const MetricStatNames = ['count', 'sum', 'min', 'max', 'mean', 'stddev', 'first', 'last'] as const;
export type MetricStatName = (typeof MetricStatNames)[number];

/** One metric of a record as its v1 point; undefined when the window did not see the metric. */
export function pointOf(record: WindowRecord, metric: string): AggregateRow | undefined {
  const s: MetricStats | undefined = Object.prototype.hasOwnProperty.call(record.metrics, metric)
    ? record.metrics[metric]
    : undefined;
  if (!s) return undefined;
  const { deviceId, resolution, windowStart, windowEnd } = record;
  return { deviceId, metric, resolution, windowStart, windowEnd, ...s };
}

/** Every metric of a record as v1 points, in the record's order. */
export function pointsOf(record: WindowRecord): AggregateRow[] {
  return Object.keys(record.metrics).map((m) => pointOf(record, m)!);
}

/** Default retention per resolution (contract v2): 1 day, 30 days, 400 days. */
export const DefaultTtl = '1s=86400,10s=2592000,60s=34560000';

/**
 * Which resolutions are written to Cassandra by default: all of the defaults (bench/README.md, "fleet scale", says
 * what storing `1s` costs and when to make it live only).
 */
export const DefaultStoredResolutions = '1s,10s,60s';

/**
 * `FLEETPULSE_STORED_RESOLUTIONS`: the resolutions written to Cassandra (the others are live only: Kafka and the
 * dashboard). Shared by the processor (what it writes) and the dashboard (what its REST history may answer).
 * Problems go to `problems`, named; `computed` are the resolutions the processor computes, when known.
 */
export function parseStoredResolutions(value: string, problems: string[], computed?: readonly string[]): string[] {
  const labels = envList(value);
  const out: string[] = [];
  for (const label of labels) {
    try {
      resolutionMs(label);
    } catch (e) {
      problems.push(`FLEETPULSE_STORED_RESOLUTIONS: ${(e as Error).message}`);
      continue;
    }
    if (computed && !computed.includes(label))
      problems.push(
        `FLEETPULSE_STORED_RESOLUTIONS: "${label}" is not computed (FLEETPULSE_RESOLUTIONS is ${computed.join(',')})`,
      );
    else if (!out.includes(label)) out.push(label);
  }
  return out;
}

/** `FLEETPULSE_TTL` (`<resolution>=<seconds>,...`, 0 = forever) over the defaults; problems go to `problems`. */
export function parseTtl(value: string, problems: string[]): Record<string, number> {
  const ttl: Record<string, number> = {};
  for (const item of [...envList(DefaultTtl), ...envList(value)]) {
    const m = /^([1-9][0-9]*s)=([0-9]+)$/.exec(item);
    if (!m) problems.push(`FLEETPULSE_TTL: "${item}" is not <resolution>=<seconds>, e.g. 10s=2592000`);
    else ttl[m[1]!] = Number(m[2]);
  }
  return ttl;
}
