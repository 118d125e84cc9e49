/**
 * A partition's records that opened a window still open, oldest first, each with how many of its windows are open:
 * the oldest one's offset is where a restart must read from (the commit offset). Slots are numbered absolutely, so a
 * window keeps its slot while the queue drops consumed ones from its front.
 */
export class CommitQueue {
  private offsets: string[] = [];
  private counts: number[] = [];
  private head = 0;
  /** Absolute slot number of offsets[0]. */
  private base = 0;
  /** Absolute slot of the current record once it opened a window, else -1. */
  private recordSlot = -1;

  /** A new record is being read: its first window opened takes a new slot. */
  nextRecord(): void {
    this.recordSlot = -1;
  }

  /** The slot of the record at `offset` (the one being read), for a window it opens. */
  open(offset: string): number {
    // A new slot also when this record's slot has already been passed (its windows closed within the record).
    if (this.recordSlot < this.base + this.head) {
      this.recordSlot = this.base + this.offsets.length;
      this.offsets.push(offset);
      this.counts.push(0);
    }
    this.counts[this.recordSlot - this.base]!++;
    return this.recordSlot;
  }

  /** A window opened by the record of `slot` closed. */
  close(slot: number): void {
    const i = slot - this.base;
    this.counts[i]!--;
    if (i === this.head) this.advance();
  }

  /** The offset of the oldest record with a window still open, if any. */
  oldestOpen(): string | undefined {
    return this.head < this.offsets.length ? this.offsets[this.head] : undefined;
  }

  private advance(): void {
    const counts = this.counts;
    let h = this.head;
    while (h < counts.length && counts[h] === 0) h++;
    if (h >= 1024 && h * 2 >= counts.length) {
      this.offsets = this.offsets.slice(h);
      this.counts = counts.slice(h);
      this.base += h;
      h = 0;
    }
    this.head = h;
  }
}
