import type { TelemetryEvent } from '@fleetpulse/contracts';
import { ClosedWindow, STRIDE, type CloseReason } from './closed-window';
import type { AggregatorOutput, LateEvent, RejectedEvent } from './types';

/** Output numbers are copied into shared chunks of plain double arrays (young generation, not external memory). */
const OutChunk = 4096;
/** Sliced to make a chunk: copying a double array is cheaper than filling a new one. */
const OutTemplate: readonly number[] = new Array<number>(OutChunk).fill(0.5);

/**
 * What the aggregator emits between two drains (closed windows, late and rejected events) and the running counts of
 * each. A closed window keeps a compact copy of its block's numbers, so its block is recycled at once and the hot
 * path allocates only the output.
 */
export class AggregatorOutputs {
  private windows: ClosedWindow[] = [];
  private lateEvents: LateEvent[] = [];
  private rejectedEvents: RejectedEvent[] = [];
  private out: number[] = [];
  private outTop = OutChunk;
  /** Label lists by mask of the resolutions an event missed, made once. */
  private readonly missedLabels: (string | undefined)[];
  readonly lateByResolution: number[];
  late = 0;
  rejected = 0;
  windowsClosed = 0;
  rowsEmitted = 0;

  constructor(private readonly labels: readonly string[]) {
    this.missedLabels = new Array<string | undefined>(1 << labels.length).fill(undefined);
    this.lateByResolution = new Array<number>(labels.length).fill(0);
  }

  /**
   * A closed window of resolution `r`, from the `slots` metric stats at `slab[from]`.
   * @param complete - see ClosedWindow.complete.
   */
  window(
    partition: number,
    deviceId: string,
    r: number,
    start: number,
    end: number,
    reason: CloseReason,
    complete: boolean,
    names: readonly string[],
    slab: Float64Array,
    from: number,
  ): void {
    const slots = names.length;
    const size = slots * STRIDE;
    if (this.outTop + size > this.out.length) {
      this.out = size <= OutChunk ? OutTemplate.slice() : new Array<number>(size).fill(0.5);
      this.outTop = 0;
    }
    const out = this.out;
    const at = this.outTop;
    this.outTop = at + size;
    for (let i = 0; i < size; i++) out[at + i] = slab[from + i]!;
    let rows = 0;
    for (let i = 0; i < size; i += STRIDE) if (out[at + i]! > 0) rows++;
    this.windows.push(
      new ClosedWindow(partition, deviceId, this.labels[r]!, start, end, reason, complete, names, slots, out, at),
    );
    this.windowsClosed++;
    this.rowsEmitted += rows;
  }

  /** An event late for the resolutions in `mask` (bit r: resolution r). */
  lateEvent(partition: number, offset: string, event: TelemetryEvent, mask: number): void {
    this.late++;
    for (let r = 0; r < this.labels.length; r++) if (mask & (1 << r)) this.lateByResolution[r]!++;
    let missed = this.missedLabels[mask];
    if (missed === undefined) {
      missed = this.labels.filter((_, r) => mask & (1 << r)).join(',');
      this.missedLabels[mask] = missed;
    }
    this.lateEvents.push({ partition, offset, event, missed });
  }

  rejectedEvent(rejected: RejectedEvent): void {
    this.rejected++;
    this.rejectedEvents.push(rejected);
  }

  /** Windows, late and rejected events emitted and not yet drained. */
  get pending(): number {
    return this.windows.length + this.lateEvents.length + this.rejectedEvents.length;
  }

  /** What was emitted since the last call, oldest first. */
  drain(): AggregatorOutput {
    const out = { windows: this.windows, late: this.lateEvents, rejected: this.rejectedEvents };
    this.windows = [];
    this.lateEvents = [];
    this.rejectedEvents = [];
    return out;
  }
}
