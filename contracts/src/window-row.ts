import type { MetricStats, WindowRecord } from './types.generated';

/**
 * Rows of the `windows` table (cql/003-windows.cql) as cassandra-driver returns them, read back as the contract's
 * window records. Typed by shape, so readers need no driver import.
 */

/** A CQL `bigint` as the driver gives it: a `Long` by default, a `bigint` or a number with other encodings. */
export type CqlBigint = number | bigint | { toNumber(): number };

/** One `metric_stats` UDT value: an object with the UDT's fields (the driver's has a null prototype). */
export type MetricStatsUdt = Readonly<Record<keyof MetricStats, number>>;

/** The columns of a `windows` row that make a window record (bucket is storage only). */
export interface WindowRow {
  device_id: string;
  resolution: string;
  window_start: CqlBigint;
  window_end: CqlBigint;
  /** `frozen<map<text, frozen<metric_stats>>>`; null if the column was never written. */
  metrics: Readonly<Record<string, MetricStatsUdt | null>> | null;
}

/**
 * A cassandra-driver `Row`: its columns are its own properties (typed `any` by the driver, hence this shape; `get` is
 * what tells it from any other object).
 */
export interface DriverRow {
  get(column: string): unknown;
  readonly [column: string]: unknown;
}

export const cqlBigintToNumber = (v: CqlBigint): number =>
  typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : v.toNumber();

/**
 * A `metric_stats` UDT as a plain object in the contract's field order (so answers serialise as the contract shows
 * them); undefined for null, which is what `metrics[?]` selects for a window without that metric.
 */
export function metricStatsFromUdt(udt: MetricStatsUdt | null | undefined): MetricStats | undefined {
  if (udt === null || udt === undefined) return undefined;
  const { count, sum, min, max, mean, stddev, first, last } = udt;
  return { count, sum, min, max, mean, stddev, first, last };
}

/**
 * A `windows` row as its window record: every stored metric, `final: true` (only closed windows are written). A row
 * without metrics gives a record with none, which the contract does not allow: readers skip those.
 */
export function windowRecordFromRow(row: WindowRow | DriverRow): WindowRecord {
  // A driver Row's columns are the properties WindowRow names (the query must select them).
  const r = row as WindowRow;
  const metrics: Record<string, MetricStats> = {};
  for (const [name, udt] of Object.entries(r.metrics ?? {})) {
    const stats = metricStatsFromUdt(udt);
    if (stats) metrics[name] = stats;
  }
  return {
    deviceId: r.device_id,
    resolution: r.resolution,
    windowStart: cqlBigintToNumber(r.window_start),
    windowEnd: cqlBigintToNumber(r.window_end),
    final: true,
    metrics,
  };
}
