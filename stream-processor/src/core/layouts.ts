/** Metric names in order of first appearance; the index is the metric's place in every window block. Immutable. */
export interface Layout {
  readonly names: readonly string[];
  /** Metric capacity of blocks (a power of two, at least 4). */
  readonly cap: number;
  /** Layouts with one more name. */
  readonly next: Map<string, number>;
}

const root = (): Layout => ({ names: [], cap: 4, next: new Map() });

/**
 * The metric layouts of every device, as a trie of name sequences: devices that report the same metrics in the same
 * order share one layout (index 0 is the empty one). Names that never repeat (a flood of new names) would grow it
 * without end, so past a limit it is compacted to the layouts still in use.
 */
export class LayoutTrie {
  private layouts: Layout[] = [root()];
  /** Layout count that calls for a compaction; doubles when the layouts in use alone fill half of it. */
  private limit = 1 << 14;

  /** Layouts held (bounded: see {@link compact}). */
  get size(): number {
    return this.layouts.length;
  }

  get(li: number): Layout {
    return this.layouts[li]!;
  }

  /** Whether the next new layout should wait for a {@link compact}. */
  get full(): boolean {
    return this.layouts.length >= this.limit;
  }

  /** The layout `li` with `name` added at its end (made once, then shared). */
  child(li: number, name: string): number {
    const from = this.layouts[li]!;
    let to = from.next.get(name);
    if (to === undefined) {
      const names = [...from.names, name];
      const cap = names.length > from.cap ? from.cap * 2 : from.cap;
      to = this.layouts.length;
      this.layouts.push({ names, cap, next: new Map() });
      from.next.set(name, to);
    }
    return to;
  }

  /**
   * Keeps only the layouts `visitUsed` maps: it calls `keep(old)` for every layout in use and stores the new index
   * it returns wherever the old one was.
   */
  compact(visitUsed: (keep: (old: number) => number) => void): void {
    const remap = new Map<number, number>([[0, 0]]);
    const kept: Layout[] = [root()];
    visitUsed((old) => {
      let to = remap.get(old);
      if (to === undefined) {
        const l = this.layouts[old]!;
        to = kept.length;
        kept.push({ names: l.names, cap: l.cap, next: new Map() });
        remap.set(old, to);
      }
      return to;
    });
    this.layouts = kept;
    if (kept.length * 2 > this.limit) this.limit *= 2;
  }
}
