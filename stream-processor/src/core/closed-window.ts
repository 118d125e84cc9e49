import type { AggregateRow } from '@fleetpulse/contracts';

/** Why a window was written. */
export type CloseReason = 'watermark' | 'idle' | 'flush';

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

/**
 * One closed (deviceId, resolution, windowStart). Its rows (one per metric the window saw, in the order the device
 * first reported each metric) are built from a compact copy of the window's state on first access of `rows`, so a
 * consumer that serialises straight from `metricCount`/`stat` pays for no intermediate objects.
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
    /** STRIDE numbers per metric slot, as in the aggregator's slab. */
    private readonly stats: readonly number[],
  ) {}

  /** AggregateRow per metric (contract shape), built once. */
  get rows(): AggregateRow[] {
    if (this.built !== null) return this.built;
    const rows: AggregateRow[] = [];
    const buf = this.stats;
    for (let m = 0; m < this.slots; m++) {
      const o = m * STRIDE;
      const n = buf[o + N]!;
      if (n === 0) continue;
      const m2 = buf[o + M2]!;
      rows.push({
        deviceId: this.deviceId,
        metric: this.names[m]!,
        resolution: this.resolution,
        windowStart: this.windowStart,
        windowEnd: this.windowEnd,
        count: n,
        sum: buf[o + SUM]!,
        min: buf[o + MIN]!,
        max: buf[o + MAX]!,
        mean: buf[o + MEAN]!,
        stddev: m2 > 0 ? Math.sqrt(m2 / n) : 0,
        first: buf[o + FIRST]!,
        last: buf[o + LAST]!,
      });
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
