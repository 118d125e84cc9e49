/**
 * The benchmarks' one quantile: of values sorted ascending, the nearest rank at or below q (0..1), so a p99 is a
 * latency some request really had. `empty` is the answer when there are none.
 */
export function quantile(sorted: ArrayLike<number>, q: number, empty = NaN): number {
  return sorted.length === 0 ? empty : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
