/**
 * Validation of the REST API's path and query parameters. Every function returns the parsed value or throws
 * `QueryError`, whose message is the `error` of the 400 answer.
 */
import { bucketsBetween, resolutionMs, WindowsPerBucket } from '@fleetpulse/contracts';

export class QueryError extends Error {
  override name = 'QueryError';
}

export const DeviceIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;
export const MetricPattern = /^[A-Za-z0-9._-]{1,64}$/;

export const Limits = {
  /** Points per page of a metric series. */
  pointsDefault: 1000,
  pointsMax: 10_000,
  /** Window records per page of `GET /api/devices/:id/windows` (each holds every metric: up to 64). */
  windowsDefault: 1000,
  windowsMax: 5000,
  /**
   * A history page reads at most this many windows: windows without the asked metric are skipped, so a rare metric
   * could otherwise make one page scan the whole range. Past it, the page ends early with `next` set.
   */
  windowsScannedMax: 50_000,
  /** A history query may touch at most this many Cassandra partitions (buckets of 3600 windows). */
  maxBuckets: 1000,
  /** Devices per page of `GET /api/devices`. */
  devicesDefault: 1000,
  devicesMax: 10_000,
  anomaliesDefault: 500,
  anomaliesMax: 5000,
  /**
   * Rows a page of the device list or of the anomalies reads at most: reached only by a device-limited token, whose
   * pages skip other devices' rows (and may then hold fewer than `limit` items, even none, with a next page).
   */
  listScannedMax: 50_000,
  /** An anomaly query reads one partition per UTC day: at most this many. */
  anomalyMaxDays: 31,
  /** Default history window when `from` is absent: the hour (series) or day (anomalies) before `to`. */
  seriesDefaultSpanMs: 3_600_000,
  anomaliesDefaultSpanMs: 86_400_000,
} as const;

const Iso = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** A single query value: absent, or one string (`?a=1&a=2` is an error, not a silent pick). */
function single(query: Record<string, unknown>, name: string): string | undefined {
  const v = query[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new QueryError(`${name}: give it once, as a single value`);
  return v;
}

/** `<ISO|ms>`: epoch milliseconds (digits) or an ISO 8601 date-time. */
export function parseTime(name: string, raw: string): number {
  if (/^-?\d{1,16}$/.test(raw)) return Number(raw);
  if (Iso.test(raw)) {
    const t = Date.parse(raw);
    if (Number.isFinite(t)) return t;
  }
  throw new QueryError(`${name}: "${raw}" is neither epoch milliseconds nor an ISO 8601 time`);
}

function parseLimit(raw: string | undefined, def: number, max: number): number {
  if (raw === undefined) return def;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1 || Number(raw) > max)
    throw new QueryError(`limit: "${raw}" is not a whole number from 1 to ${max}`);
  return Number(raw);
}

function parseRange(query: Record<string, unknown>, now: number, defaultSpanMs: number): { from: number; to: number } {
  const toRaw = single(query, 'to');
  const fromRaw = single(query, 'from');
  const to = toRaw === undefined ? now : parseTime('to', toRaw);
  const from = fromRaw === undefined ? to - defaultSpanMs : parseTime('from', fromRaw);
  if (from >= to) throw new QueryError(`from (${from}) must be before to (${to})`);
  return { from, to };
}

export function parseDeviceId(raw: string): string {
  if (!DeviceIdPattern.test(raw)) throw new QueryError(`device id "${raw}" is not 1-128 chars of [A-Za-z0-9._:-]`);
  return raw;
}

/** A range of one device's windows at one stored resolution, as the history routes read it. */
export interface WindowsQuery {
  deviceId: string;
  resolution: string;
  sizeMs: number;
  /** Inclusive, ms: windows starting at or after this. */
  from: number;
  /** Exclusive, ms: windows starting before this. */
  to: number;
  /** Items (points or window records) per page. */
  limit: number;
}

export interface SeriesQuery extends WindowsQuery {
  metric: string;
}

/**
 * What the history routes share: a device id, a stored resolution (default 10s), the range (default the hour before
 * `to`), at most `Limits.maxBuckets` storage partitions, and a page size.
 */
function parseWindowsRange(
  deviceId: string,
  query: Record<string, unknown>,
  stored: readonly string[],
  limits: { def: number; max: number },
  now: number,
): WindowsQuery {
  parseDeviceId(deviceId);
  const resolution = single(query, 'resolution') ?? '10s';
  let sizeMs: number;
  try {
    sizeMs = resolutionMs(resolution);
  } catch {
    throw new QueryError(`resolution: "${resolution}" is not of the form <seconds>s, e.g. 10s`);
  }
  if (!stored.includes(resolution))
    throw new QueryError(
      `resolution ${resolution} is live only (not stored); stored: ${stored.length > 0 ? stored.join(',') : 'none'}`,
    );
  const { from, to } = parseRange(query, now, Limits.seriesDefaultSpanMs);
  const limit = parseLimit(single(query, 'limit'), limits.def, limits.max);
  // Counted without building the list: a range from 1970 at 1s would otherwise allocate ~500k numbers.
  const bucketMs = sizeMs * WindowsPerBucket;
  const buckets = Math.floor(to / bucketMs) - Math.floor(from / bucketMs) + 1;
  if (buckets > Limits.maxBuckets)
    throw new QueryError(
      `range too wide for resolution ${resolution}: it spans ${buckets} storage buckets, at most ${Limits.maxBuckets} (narrow from/to or use a coarser resolution)`,
    );
  return { deviceId, resolution, sizeMs, from, to, limit };
}

/** `GET /api/devices/:id/metrics/:metric?resolution=10s&from=&to=&limit=`; `stored`: the stored resolutions. */
export function parseSeriesQuery(
  deviceId: string,
  metric: string,
  query: Record<string, unknown>,
  stored: readonly string[],
  now = Date.now(),
): SeriesQuery {
  const range = parseWindowsRange(deviceId, query, stored, { def: Limits.pointsDefault, max: Limits.pointsMax }, now);
  if (!MetricPattern.test(metric)) throw new QueryError(`metric "${metric}" is not 1-64 chars of [A-Za-z0-9._-]`);
  return { ...range, metric };
}

/** `GET /api/devices/:id/windows?resolution=10s&from=&to=&limit=`; `stored`: the stored resolutions. */
export const parseWindowsQuery = (
  deviceId: string,
  query: Record<string, unknown>,
  stored: readonly string[],
  now = Date.now(),
): WindowsQuery =>
  parseWindowsRange(deviceId, query, stored, { def: Limits.windowsDefault, max: Limits.windowsMax }, now);

/** The bucket starts a history query reads, oldest first. */
export const queryBuckets = (q: WindowsQuery): number[] => bucketsBetween(q.from, q.to, q.sizeMs);

/** A page of the device list: at most `limit` devices, starting at the device `next` (inclusive) in storage order. */
export interface DevicesQuery {
  limit: number;
  next: string | undefined;
}

/** `GET /api/devices?limit=&next=`; `next` is a device id as `X-Next` gave it (an empty one is absent). */
export function parseDevicesQuery(query: Record<string, unknown>): DevicesQuery {
  const rawNext = single(query, 'next');
  const next = rawNext === undefined || rawNext === '' ? undefined : rawNext;
  if (next !== undefined && !DeviceIdPattern.test(next))
    throw new QueryError(`next: "${next}" is not a device id (1-128 chars of [A-Za-z0-9._:-])`);
  return { limit: parseLimit(single(query, 'limit'), Limits.devicesDefault, Limits.devicesMax), next };
}

export interface AnomalyQuery {
  deviceId: string | undefined;
  from: number;
  to: number;
  limit: number;
}

export const DayMs = 86_400_000;

/** `GET /api/anomalies?deviceId=&from=&to=&limit=`. */
export function parseAnomalyQuery(query: Record<string, unknown>, now = Date.now()): AnomalyQuery {
  const rawDevice = single(query, 'deviceId');
  const deviceId = rawDevice === undefined || rawDevice === '' ? undefined : parseDeviceId(rawDevice);
  const { from, to } = parseRange(query, now, Limits.anomaliesDefaultSpanMs);
  const days = Math.floor((to - 1) / DayMs) - Math.floor(from / DayMs) + 1;
  if (days > Limits.anomalyMaxDays)
    throw new QueryError(`range too wide: it spans ${days} days, at most ${Limits.anomalyMaxDays}`);
  const limit = parseLimit(single(query, 'limit'), Limits.anomaliesDefault, Limits.anomaliesMax);
  return { deviceId, from, to, limit };
}

export const AlertStates = ['firing', 'resolved'] as const;
export type AlertStateFilter = (typeof AlertStates)[number];

export interface AlertQuery extends AnomalyQuery {
  /** Only transitions of this state; undefined: both. */
  state: AlertStateFilter | undefined;
}

/** `GET /api/alerts?state=&deviceId=&from=&to=&limit=`: the bounds of the anomalies' route. */
export function parseAlertQuery(query: Record<string, unknown>, now = Date.now()): AlertQuery {
  const rawState = single(query, 'state');
  const state = rawState === undefined || rawState === '' ? undefined : rawState;
  if (state !== undefined && !(AlertStates as readonly string[]).includes(state))
    throw new QueryError(`state: expected ${AlertStates.join(' or ')}`);
  return { ...parseAnomalyQuery(query, now), state: state as AlertStateFilter | undefined };
}

/** A rule id as the store makes them (a UUID); anything else names no rule. */
export const RuleIdPattern = /^[A-Za-z0-9-]{1,64}$/;
