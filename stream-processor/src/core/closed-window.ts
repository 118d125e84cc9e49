import type { AggregateRow, MetricStats, WindowRecord } from '@fleetpulse/contracts';

/** Why a window was written; `snapshot`: it is still open, and this is a provisional copy (metrics.live). */
export type CloseReason = 'watermark' | 'idle' | 'flush' | 'snapshot';

/** Layout of one metric's state: 10 doubles (shared with the aggregator's slab). */
export const STRIDE = 10;
export const N = 0;
export const MEAN = 1;
export const M2 = 2;
export const SUM = 3;
export const MIN = 4;
export const MAX = 5;
export const FIRST_TS = 6;
export const FIRST = 7;
export const LAST_TS = 8;
export const LAST = 9;

/** A statistic of a row, as named in the contract's AggregateRow. */
export type RowStat = 'count' | 'sum' | 'min' | 'max' | 'mean' | 'stddev' | 'first' | 'last';

/** A number as JSON.stringify writes it. */
function num(x: number): string {
  return Number.isFinite(x) ? '' + x : 'null';
}

/** Metric names are few and repeat in every row: their JSON text is kept. */
const nameJsonCache = new Map<string, string>();

function nameJson(name: string): string {
  let j = nameJsonCache.get(name);
  if (j === undefined) {
    j = JSON.stringify(name);
    if (nameJsonCache.size < 4096) nameJsonCache.set(name, j);
  }
  return j;
}

/**
 * One closed (deviceId, resolution, windowStart). Its rows (one per metric the window saw, in the order the device
 * first reported each metric) are built from a compact copy of the window's state on first access of `rows`; a consumer
 * that serialises straight from the numbers (`rowsJson`, `writeJson`, or `metricCount`/`metricName`/`stat`) pays for
 * no intermediate objects.
 */
export class ClosedWindow {
  private built: AggregateRow[] | null = null;

  constructor(
    readonly partition: number,
    readonly deviceId: string,
    readonly resolution: string,
    readonly windowStart: number,
    readonly windowEnd: number,
    readonly reason: CloseReason,
    /**
     * False when the rows may lack records this run never read (a `range` start, see PartitionStart) or records
     * still to come (`flush`): write them only where no row exists yet, never over one.
     */
    readonly complete: boolean,
    private readonly names: readonly string[],
    /** Metric slots in the copy (some may be empty: count 0). */
    private readonly slots: number,
    /** STRIDE numbers per metric slot, as in the aggregator's slab, from `offset` on. */
    private readonly stats: ArrayLike<number>,
    private readonly offset = 0,
    /** False for a provisional snapshot of a window still open (metrics.live): never written, never scored. */
    readonly final = true,
  ) {}

  /** Slot of each row when some slot is empty (count 0); null while every slot holds a row. */
  private slotOfRow: number[] | null | undefined = undefined;

  private rowSlots(): number[] | null {
    let map = this.slotOfRow;
    if (map === undefined) {
      const buf = this.stats;
      const found: number[] = [];
      for (let m = 0; m < this.slots; m++) if (buf[this.offset + m * STRIDE + N]! > 0) found.push(m);
      map = this.slotOfRow = found.length === this.slots ? null : found;
    }
    return map;
  }

  private slot(row: number): number {
    const map = this.rowSlots();
    if (map === null) {
      if (Number.isInteger(row) && row >= 0 && row < this.slots) return row;
    } else {
      const m = map[row];
      if (m !== undefined) return m;
    }
    throw new RangeError(`row ${row} out of range`);
  }

  /** How many rows (metrics with at least one event) the window has: `rows.length`, without building them. */
  get metricCount(): number {
    const map = this.rowSlots();
    return map === null ? this.slots : map.length;
  }

  /** `rows[i].metric`, without building the rows. */
  metricName(i: number): string {
    return this.names[this.slot(i)]!;
  }

  /** `rows[i][field]`, read straight from the stored numbers. */
  stat(i: number, field: RowStat): number {
    const o = this.offset + this.slot(i) * STRIDE;
    const buf = this.stats;
    switch (field) {
      case 'count':
        return buf[o + N]!;
      case 'sum':
        return buf[o + SUM]!;
      case 'min':
        return buf[o + MIN]!;
      case 'max':
        return buf[o + MAX]!;
      case 'mean':
        return buf[o + MEAN]!;
      case 'stddev': {
        const m2 = buf[o + M2]!;
        return m2 > 0 ? Math.sqrt(m2 / buf[o + N]!) : 0;
      }
      case 'first':
        return buf[o + FIRST]!;
      case 'last':
        return buf[o + LAST]!;
    }
  }

  /** The text `JSON.stringify(rows[i])` gives, built from the stored numbers without intermediate objects. */
  writeJson(i: number): string {
    return this.json(this.slot(i), this.jsonHead(), this.jsonMid());
  }

  /** `rows.map((r) => JSON.stringify(r))`, without building the rows: what a producer publishes. */
  rowsJson(): string[] {
    const map = this.rowSlots();
    const n = map === null ? this.slots : map.length;
    const out = new Array<string>(n);
    const head = this.jsonHead();
    const mid = this.jsonMid();
    for (let i = 0; i < n; i++) out[i] = this.json(map ? map[i]! : i, head, mid);
    return out;
  }

  private jsonHead(): string {
    return '{"deviceId":' + JSON.stringify(this.deviceId) + ',"metric":';
  }

  private jsonMid(): string {
    return this.windowJson() + ',"count":';
  }

  /** `,"resolution":...,"windowStart":...,"windowEnd":...`: the same in rows and records. */
  private windowJson(): string {
    return (
      ',"resolution":' +
      JSON.stringify(this.resolution) +
      ',"windowStart":' +
      num(this.windowStart) +
      ',"windowEnd":' +
      num(this.windowEnd)
    );
  }

  private json(slot: number, head: string, mid: string): string {
    return head + nameJson(this.names[slot]!) + mid + this.statsJson(slot) + '}';
  }

  /** A slot's statistics from the count's value on: `<count>,"sum":...,"last":<last>` (the same in rows and records). */
  private statsJson(slot: number): string {
    const buf = this.stats;
    const o = this.offset + slot * STRIDE;
    const n = buf[o + N]!;
    const m2 = buf[o + M2]!;
    return (
      num(n) +
      ',"sum":' +
      num(buf[o + SUM]!) +
      ',"min":' +
      num(buf[o + MIN]!) +
      ',"max":' +
      num(buf[o + MAX]!) +
      ',"mean":' +
      num(buf[o + MEAN]!) +
      ',"stddev":' +
      num(m2 > 0 ? Math.sqrt(m2 / n) : 0) +
      ',"first":' +
      num(buf[o + FIRST]!) +
      ',"last":' +
      num(buf[o + LAST]!)
    );
  }

  /**
   * The window record (contract v2) as `JSON.stringify(record())` writes it, straight from the stored numbers: what the
   * processor publishes on metrics.aggregates (and, provisional, on metrics.live).
   */
  recordJson(): string {
    const map = this.rowSlots();
    const n = map === null ? this.slots : map.length;
    let s =
      '{"deviceId":' + JSON.stringify(this.deviceId) + this.windowJson() + ',"final":' + this.final + ',"metrics":{';
    for (let i = 0; i < n; i++) {
      const slot = map ? map[i]! : i;
      s += (i === 0 ? '' : ',') + nameJson(this.names[slot]!) + ':{"count":' + this.statsJson(slot) + '}';
    }
    return s + '}}';
  }

  /**
   * Every metric's statistics by name (the record's `metrics`), in the order the device first reported each: also the
   * value of the Cassandra `metrics` column (a map of metric_stats).
   */
  metricStats(): Record<string, MetricStats> {
    const out: Record<string, MetricStats> = {};
    for (let m = 0; m < this.slots; m++) {
      const st = this.slotStats(m);
      if (st !== null) out[this.names[m]!] = st;
    }
    return out;
  }

  /** A slot's statistics, or null when the window saw no event of its metric. */
  private slotStats(slot: number): MetricStats | null {
    const buf = this.stats;
    const o = this.offset + slot * STRIDE;
    const n = buf[o + N]!;
    if (n === 0) return null;
    const m2 = buf[o + M2]!;
    return {
      count: n,
      sum: buf[o + SUM]!,
      min: buf[o + MIN]!,
      max: buf[o + MAX]!,
      mean: buf[o + MEAN]!,
      stddev: m2 > 0 ? Math.sqrt(m2 / n) : 0,
      first: buf[o + FIRST]!,
      last: buf[o + LAST]!,
    };
  }

  /** The window record (contract v2). */
  record(): WindowRecord {
    const { deviceId, resolution, windowStart, windowEnd } = this;
    const { final } = this;
    return { deviceId, resolution, windowStart, windowEnd, final, metrics: this.metricStats() };
  }

  /** AggregateRow per metric (contract shape), built once. */
  get rows(): AggregateRow[] {
    if (this.built !== null) return this.built;
    const rows: AggregateRow[] = [];
    const { deviceId, resolution, windowStart, windowEnd } = this;
    for (let m = 0; m < this.slots; m++) {
      const st = this.slotStats(m);
      if (st !== null) rows.push({ deviceId, metric: this.names[m]!, resolution, windowStart, windowEnd, ...st });
    }
    this.built = rows;
    return rows;
  }

  /** A plain object with the rows, for logs, tests and JSON. */
  toJSON(): {
    partition: number;
    deviceId: string;
    resolution: string;
    windowStart: number;
    windowEnd: number;
    reason: CloseReason;
    complete: boolean;
    rows: AggregateRow[];
  } {
    const { partition, deviceId, resolution, windowStart, windowEnd, reason, complete, rows } = this;
    return { partition, deviceId, resolution, windowStart, windowEnd, reason, complete, rows };
  }
}
