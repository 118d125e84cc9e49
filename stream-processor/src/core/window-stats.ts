import { FIRST, FIRST_TS, LAST, LAST_TS, M2, MAX, MEAN, MIN, N, SUM } from './closed-window';

/**
 * Folds one event's readings into the window block at `w`: reading `values[k]` at event time `ts` into the metric
 * stats at `w + offsets[k]` (STRIDE doubles, closed-window.ts), for the first `n`: count, sum, min, max, and
 * Welford's running mean and M2 (stable where a sum of squares cancels); first and last by event time, ties to the
 * later reading for last. One call per window with the loop inside: the per-event path stays one call deep.
 */
export function foldEvent(
  slab: Float64Array,
  w: number,
  offsets: Int32Array,
  values: Float64Array,
  n: number,
  ts: number,
): void {
  for (let k = 0; k < n; k++) {
    const so = w + offsets[k]!;
    const x = values[k]!;
    const count = slab[so + N]! + 1;
    slab[so + N] = count;
    if (count === 1) {
      slab[so + MEAN] = x;
      slab[so + M2] = 0;
      slab[so + SUM] = x;
      slab[so + MIN] = x;
      slab[so + MAX] = x;
      slab[so + FIRST_TS] = ts;
      slab[so + FIRST] = x;
      slab[so + LAST_TS] = ts;
      slab[so + LAST] = x;
      continue;
    }
    const mean = slab[so + MEAN]!;
    const delta = x - mean;
    const mean2 = mean + delta / count;
    slab[so + MEAN] = mean2;
    slab[so + M2] = slab[so + M2]! + delta * (x - mean2);
    slab[so + SUM] = slab[so + SUM]! + x;
    if (x < slab[so + MIN]!) slab[so + MIN] = x;
    if (x > slab[so + MAX]!) slab[so + MAX] = x;
    if (ts < slab[so + FIRST_TS]!) {
      slab[so + FIRST_TS] = ts;
      slab[so + FIRST] = x;
    }
    if (ts >= slab[so + LAST_TS]!) {
      slab[so + LAST_TS] = ts;
      slab[so + LAST] = x;
    }
  }
}
