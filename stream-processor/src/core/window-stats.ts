import { FIRST, FIRST_TS, LAST, LAST_TS, M2, MAX, MEAN, MIN, N, SUM } from './closed-window';

/**
 * Folds reading `x` at event time `ts` into the metric stats at `so` (STRIDE doubles, closed-window.ts): count, sum,
 * min, max, and Welford's running mean and M2 (stable where sum of squares cancels); first and last by event time,
 * ties to the later reading for last.
 */
export function foldReading(slab: Float64Array, so: number, x: number, ts: number): void {
  const n = slab[so + N]! + 1;
  slab[so + N] = n;
  if (n === 1) {
    slab[so + MEAN] = x;
    slab[so + M2] = 0;
    slab[so + SUM] = x;
    slab[so + MIN] = x;
    slab[so + MAX] = x;
    slab[so + FIRST_TS] = ts;
    slab[so + FIRST] = x;
    slab[so + LAST_TS] = ts;
    slab[so + LAST] = x;
    return;
  }
  const mean = slab[so + MEAN]!;
  const delta = x - mean;
  const mean2 = mean + delta / n;
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
