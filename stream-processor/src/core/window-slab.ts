import { STRIDE } from './closed-window';
import { H } from './device-rows';

/**
 * A partition's open windows, as blocks of one Float64Array: a header (device-rows.ts, B_*) and STRIDE doubles per
 * metric slot. Blocks come in power-of-two metric capacities and are recycled per size class, so steady state
 * allocates nothing. `data` is replaced when it grows: read it again after {@link alloc}.
 */
export class WindowSlab {
  data = new Float64Array(1 << 14);
  private top = 0;
  /** Free blocks per size class (log2 of the metric capacity). */
  private readonly free: number[][] = [];
  /** Extra seqs of blocks flagged B_SET (see device-rows.ts). */
  readonly seqSets = new Map<number, Set<number>>();

  /** A block for `cap` metrics (a power of two), its metric stats zeroed. */
  alloc(cap: number): number {
    const cls = 31 - Math.clz32(cap);
    const size = H + cap * STRIDE;
    const list = this.free[cls];
    let base: number;
    if (list !== undefined && list.length > 0) base = list.pop()!;
    else {
      if (this.top + size > this.data.length) {
        const bigger = new Float64Array(Math.max(this.data.length * 2, this.top + size));
        bigger.set(this.data);
        this.data = bigger;
      }
      base = this.top;
      this.top += size;
    }
    const slab = this.data;
    for (let o = base + H; o < base + size; o += STRIDE) slab[o] = 0;
    return base;
  }

  /** Returns a block of capacity `cap` for reuse. */
  release(base: number, cap: number): void {
    const cls = 31 - Math.clz32(cap);
    (this.free[cls] ??= []).push(base);
  }
}
