import type { TelemetryEvent } from '@fleetpulse/contracts';
import { resolveConfig, type AggregatorConfig, type ResolvedConfig } from './config';
import {
  ClosedWindow,
  STRIDE,
  N,
  MEAN,
  M2,
  SUM,
  MIN,
  MAX,
  FIRST_TS,
  FIRST,
  LAST_TS,
  LAST,
  type CloseReason,
} from './closed-window';
import type { AggregatorOutput, AggregatorStats, LateEvent, PartitionCheckpoint, PartitionStart } from './types';

/*
 * Semantics (shared/design.md, "Windows"), made precise here and mirrored by the naive reference in
 * reference.test-util.ts:
 *
 * Per device and resolution S the aggregator keeps a frontier F: every window [s, s+S) with s+S <= F is closed. F only
 * grows, in two ways:
 *   - watermark: after each event, F = max(F, floor((maxTs - L) / S) * S), i.e. windows with end <= watermark close;
 *   - idleness: when the partition's processing time P reaches the device's last receivedAt + idleTimeout (or on an
 *     explicit flush), F = max(F, end of the window holding the device's maxTs): all its open windows close.
 * So "already closed" means "end <= F at the event's arrival": every written window is closed, and so is any window
 * below F that never opened (an event there would create a row the uninterrupted history never had).
 *
 * Each event, in this order:
 *   1. P = max(P, receivedAt) (an event without receivedAt counts as received at P); devices idle at P close.
 *   2. For each resolution: window closed -> late for it; else window open holding the same seq -> retry for it (not
 *      folded); else folded (the window opens if needed; its seq is remembered).
 *   3. maxTs = max(maxTs, ts); watermark closes.
 *   4. lastReceivedAt = max(lastReceivedAt, receivedAt); if that is already idle at P, the device closes now.
 * An event that is a retry for some resolution counts once in `retries` and is never reported late (its first copy
 * was). Otherwise, if some resolution was closed, it is reported once in telemetry.late with those resolutions and
 * counted in `late`; it is still folded wherever its window is open. A seq seen in a window that has since closed is
 * simply late. Rows are therefore a function of each device's records (plus P) in partition order.
 *
 * Per-window state lives in a per-partition Float64Array slab (10 doubles per metric) and pooled Win objects, so the
 * steady-state hot path allocates only the output: per closed window one ClosedWindow and a copy of its numbers
 * (rows are built from it when read).
 */

/** One open window of one device and resolution; pooled per partition. */
class Win {
  start = 0;
  /** Index of the first double of its block in the partition's slab. */
  base = 0;
  /** Metric capacity of its block (a power of two). */
  cap = 0;
  /** Absolute slot, in the partition's commit queue, of the record that opened it. */
  slot = 0;
  /** The seqs folded in: the contiguous run [seqLo, seqHi] plus, rarely, a set of the others. */
  seqLo = 0;
  seqHi = -1;
  seqs: Set<number> | null = null;
  next: Win | null = null;
}

class Device {
  maxTs = -Infinity;
  lastRecv = -Infinity;
  /** Windows up to the one holding this event time may include records before the run's start (range mode). */
  knownFrom: number;
  /** Per resolution: windows ending at or before this are closed. */
  readonly frontier: number[];
  readonly heads: (Win | null)[];
  readonly tails: (Win | null)[];
  /** Metric names in order of first appearance; the index is the metric's place in every window block. */
  readonly names: string[] = [];
  cap = 4;
  open = 0;
  // Idle list (sorted by lastRecv) links.
  prev: Device | null = null;
  next: Device | null = null;
  inList = false;

  constructor(
    readonly id: string,
    nRes: number,
    knownFrom: number,
  ) {
    this.knownFrom = knownFrom;
    this.frontier = new Array<number>(nRes).fill(-Infinity);
    this.heads = new Array<Win | null>(nRes).fill(null);
    this.tails = new Array<Win | null>(nRes).fill(null);
  }
}

class Part {
  readonly devices = new Map<string, Device>();
  proc = -Infinity;
  head: Device | null = null;
  tail: Device | null = null;
  slab = new Float64Array(1 << 14);
  slabTop = 0;
  /** Free blocks per size class (log2 of the metric capacity). */
  readonly free: number[][] = [];
  readonly winPool: Win[] = [];
  /** Commit queue: records that opened a window, oldest first, with how many open windows they opened. */
  slotOffsets: string[] = [];
  slotCounts: number[] = [];
  slotHead = 0;
  /** Absolute slot number of slotOffsets[0]. */
  slotBase = 0;
  /** Absolute slot of the current record once it opened a window, else -1. */
  recordSlot = -1;
  curOffset = '';
  lastOffset: string | null = null;
  /** Commit offset before anything was read (from a checkpoint). */
  startCommit: string | null = null;
  /** Resume: re-reading records the checkpoint has already seen, up to and including `through`. */
  catchUp = false;
  through = 0n;
  throughStr: string | null = null;
  open = 0;

  constructor(
    readonly id: number,
    readonly range: boolean,
  ) {}
}

/**
 * Folds telemetry records into tumbling event-time windows per device, metric and resolution. Pure and synchronous:
 * time only advances through the records' receivedAt and {@link advanceProcessingTime}.
 *
 * Typical loop (live or replay): `assignPartition` once, `ingest` each record in partition order,
 * `advanceProcessingTime` when a partition has nothing to read, `drain` and write the windows, then commit
 * `safeCommitOffset` (and store `checkpoint`).
 */
export class WindowAggregator {
  readonly config: ResolvedConfig;
  private readonly sizes: number[];
  private readonly nRes: number;
  private readonly lateness: number;
  private readonly idle: number;
  private readonly parts = new Map<number, Part>();
  private lastPart: Part | null = null;
  private windows: ClosedWindow[] = [];
  private lateEvents: LateEvent[] = [];
  private readonly missedLabels: (string | undefined)[];
  private mIdx = new Int32Array(64);
  private mVal = new Float64Array(64);
  private nEvents = 0;
  private nRetries = 0;
  private nLate = 0;
  private readonly lateByRes: number[];
  private nClosed = 0;
  private nRows = 0;
  private nOpen = 0;

  constructor(config: AggregatorConfig = {}) {
    this.config = resolveConfig(config);
    this.sizes = [...this.config.sizes];
    this.nRes = this.sizes.length;
    this.lateness = this.config.allowedLatenessMs;
    this.idle = this.config.idleTimeoutMs;
    this.missedLabels = new Array<string | undefined>(1 << this.nRes).fill(undefined);
    this.lateByRes = new Array<number>(this.nRes).fill(0);
  }

  /**
   * Starts a partition (after assignment, or at a replay's start). Throws if it is already assigned.
   * @param start - default `beginning`; see {@link PartitionStart}.
   */
  assignPartition(partition: number, start: PartitionStart = { kind: 'beginning' }): void {
    if (this.parts.has(partition)) throw new Error(`partition ${partition} is already assigned`);
    const ps = new Part(partition, start.kind === 'range');
    if (start.kind === 'resume') this.restore(ps, start.checkpoint);
    this.parts.set(partition, ps);
  }

  /** Forgets a partition (revoked in a rebalance): its open windows and device state are discarded, not emitted. */
  dropPartition(partition: number): void {
    const ps = this.parts.get(partition);
    if (!ps) return;
    this.nOpen -= ps.open;
    this.parts.delete(partition);
    if (this.lastPart === ps) this.lastPart = null;
  }

  assignedPartitions(): number[] {
    return [...this.parts.keys()];
  }

  /**
   * Folds one telemetry.raw record: a canonical event or an array of one device's events, all at `offset`. Records
   * of a partition must come in offset order. Events are trusted to be canonical (see decodeRecordValue).
   * @param offset - the Kafka offset as a decimal string (kafkajs's form).
   */
  ingest(partition: number, offset: string, value: TelemetryEvent | readonly TelemetryEvent[]): void {
    let ps = this.lastPart;
    if (ps === null || ps.id !== partition) {
      ps = this.parts.get(partition) ?? null;
      if (ps === null) throw new Error(`partition ${partition} is not assigned`);
      this.lastPart = ps;
    }
    if (ps.catchUp && BigInt(offset) > ps.through) ps.catchUp = false;
    ps.recordSlot = -1;
    ps.curOffset = offset;
    ps.lastOffset = offset;
    if (Array.isArray(value)) {
      for (const e of value as readonly TelemetryEvent[]) this.event(ps, e);
    } else this.event(ps, value as TelemetryEvent);
    if (ps.catchUp && BigInt(offset) >= ps.through) ps.catchUp = false;
  }

  /**
   * Moves a partition's processing time to `ms` if that is later, closing the windows of devices idle by then. Call
   * it with the wall clock less a safety margin while the partition has nothing to read, never in a replay.
   */
  advanceProcessingTime(partition: number, ms: number): void {
    const ps = this.partOrThrow(partition);
    if (ms > ps.proc) {
      ps.proc = ms;
      this.closeIdle(ps);
    }
  }

  /** Closes every open window of the partition now (reason `flush`, `complete: false`), e.g. at a replay's end. */
  flush(partition: number): void {
    const ps = this.partOrThrow(partition);
    for (const d of ps.devices.values()) if (d.open > 0) this.closeDevice(ps, d, 'flush');
  }

  /** Windows closed and late events since the last call, oldest first. */
  drain(): AggregatorOutput {
    const out = { windows: this.windows, late: this.lateEvents };
    this.windows = [];
    this.lateEvents = [];
    return out;
  }

  /**
   * The offset to commit for the partition: the first record of its oldest open window, or the offset after the last
   * record read when nothing is open; null before anything was read. Valid once every drained window is written.
   */
  safeCommitOffset(partition: number): string | null {
    const ps = this.partOrThrow(partition);
    if (ps.slotHead < ps.slotOffsets.length) return ps.slotOffsets[ps.slotHead]!;
    if (ps.lastOffset !== null) return (BigInt(ps.lastOffset) + 1n).toString();
    return ps.startCommit;
  }

  /** Partition state for an exact restart from `commitOffset` (see {@link PartitionStart}). */
  checkpoint(partition: number): PartitionCheckpoint {
    const ps = this.partOrThrow(partition);
    const devices: (string | number | null)[][] = [];
    const fin = (x: number): number | null => (Number.isFinite(x) ? x : null);
    for (const d of ps.devices.values())
      devices.push([d.id, fin(d.maxTs), fin(d.lastRecv), fin(d.knownFrom), ...d.frontier.map(fin)]);
    let through = ps.lastOffset;
    if (ps.catchUp && ps.throughStr !== null) through = ps.throughStr;
    return {
      v: 1,
      resolutions: [...this.config.labels],
      allowedLatenessMs: this.lateness,
      idleTimeoutMs: this.idle,
      commitOffset: this.safeCommitOffset(partition),
      throughOffset: through,
      processingTime: fin(ps.proc),
      devices,
    };
  }

  stats(): AggregatorStats {
    let devices = 0;
    for (const ps of this.parts.values()) devices += ps.devices.size;
    const lateByResolution: Record<string, number> = {};
    this.config.labels.forEach((l, i) => (lateByResolution[l] = this.lateByRes[i]!));
    return {
      events: this.nEvents,
      retries: this.nRetries,
      late: this.nLate,
      lateByResolution,
      windowsClosed: this.nClosed,
      rowsEmitted: this.nRows,
      openWindows: this.nOpen,
      devices,
      partitions: this.parts.size,
    };
  }

  // ---------------------------------------------------------------------------------------------------------------

  private partOrThrow(partition: number): Part {
    const ps = this.parts.get(partition);
    if (!ps) throw new Error(`partition ${partition} is not assigned`);
    return ps;
  }

  private restore(ps: Part, cp: PartitionCheckpoint): void {
    const c = this.config;
    if (
      cp.v !== 1 ||
      cp.resolutions.join(',') !== c.labels.join(',') ||
      cp.allowedLatenessMs !== this.lateness ||
      cp.idleTimeoutMs !== this.idle
    )
      throw new Error('checkpoint was taken with another configuration (resolutions, lateness or idle timeout)');
    const num = (x: unknown): number => (typeof x === 'number' ? x : -Infinity);
    ps.proc = num(cp.processingTime);
    ps.startCommit = cp.commitOffset;
    if (cp.throughOffset !== null) {
      ps.catchUp = true;
      ps.through = BigInt(cp.throughOffset);
      ps.throughStr = cp.throughOffset;
    }
    const rows = [...cp.devices].sort((a, b) => num(a[2]) - num(b[2]));
    for (const row of rows) {
      const d = new Device(String(row[0]), this.nRes, num(row[3]));
      d.maxTs = num(row[1]);
      d.lastRecv = num(row[2]);
      for (let r = 0; r < this.nRes; r++) d.frontier[r] = num(row[4 + r]);
      ps.devices.set(d.id, d);
      if (!(ps.proc > -Infinity && d.lastRecv + this.idle <= ps.proc)) this.listInsert(ps, d);
    }
  }

  private event(ps: Part, e: TelemetryEvent): void {
    this.nEvents++;
    const ts = e.ts;
    if (typeof ts !== 'number' || !Number.isFinite(ts)) throw new TypeError(`event ts ${String(ts)} is not a number`);
    const recv = e.receivedAt ?? ps.proc;
    // 1. processing time
    if (recv > ps.proc) {
      ps.proc = recv;
      this.closeIdle(ps);
    }
    let d = ps.devices.get(e.deviceId);
    if (d === undefined) {
      d = new Device(e.deviceId, this.nRes, ps.range ? ts : -Infinity);
      ps.devices.set(e.deviceId, d);
    }
    // Metric slots, once per event.
    const metrics = e.metrics;
    let nm = 0;
    const names = d.names;
    for (const name in metrics) {
      let idx = 0;
      const len = names.length;
      while (idx < len && names[idx] !== name) idx++;
      if (idx === len) {
        names.push(name);
        if (names.length > d.cap) this.growDevice(ps, d);
      }
      if (nm === this.mIdx.length) this.growScratch();
      this.mIdx[nm] = idx * STRIDE;
      this.mVal[nm] = metrics[name]!;
      nm++;
    }
    // 2. classify and fold per resolution
    const seq = e.seq;
    const hasSeq = seq !== undefined;
    const sizes = this.sizes;
    const frontier = d.frontier;
    let lateMask = 0;
    let dup = false;
    for (let r = 0; r < sizes.length; r++) {
      const S = sizes[r]!;
      const ws = Math.floor(ts / S) * S;
      if (ws + S <= frontier[r]!) {
        lateMask |= 1 << r;
        continue;
      }
      const tail = d.tails[r] as Win | null;
      let w: Win;
      if (tail === null || tail.start < ws) w = this.openWin(ps, d, r, ws);
      else if (tail.start === ws) w = tail;
      else {
        let prev: Win | null = null;
        let at = d.heads[r] as Win | null;
        while (at !== null && at.start < ws) {
          prev = at;
          at = at.next;
        }
        w = at === null || at.start !== ws ? this.insertWin(ps, d, r, ws, prev, at) : at;
      }
      if (hasSeq) {
        if ((seq >= w.seqLo && seq <= w.seqHi) || (w.seqs !== null && w.seqs.has(seq))) {
          dup = true;
          continue;
        }
        if (w.seqHi < w.seqLo) w.seqLo = w.seqHi = seq;
        else if (seq === w.seqHi + 1) w.seqHi = seq;
        else if (seq === w.seqLo - 1) w.seqLo = seq;
        else (w.seqs ??= new Set()).add(seq);
      }
      const slab = ps.slab;
      const base = w.base;
      for (let k = 0; k < nm; k++) {
        const o = base + this.mIdx[k]!;
        const x = this.mVal[k]!;
        const n = slab[o + N]! + 1;
        slab[o + N] = n;
        if (n === 1) {
          slab[o + MEAN] = x;
          slab[o + M2] = 0;
          slab[o + SUM] = x;
          slab[o + MIN] = x;
          slab[o + MAX] = x;
          slab[o + FIRST_TS] = ts;
          slab[o + FIRST] = x;
          slab[o + LAST_TS] = ts;
          slab[o + LAST] = x;
        } else {
          const mean = slab[o + MEAN]!;
          const delta = x - mean;
          const mean2 = mean + delta / n;
          slab[o + MEAN] = mean2;
          slab[o + M2] = slab[o + M2]! + delta * (x - mean2);
          slab[o + SUM] = slab[o + SUM]! + x;
          if (x < slab[o + MIN]!) slab[o + MIN] = x;
          if (x > slab[o + MAX]!) slab[o + MAX] = x;
          if (ts < slab[o + FIRST_TS]!) {
            slab[o + FIRST_TS] = ts;
            slab[o + FIRST] = x;
          }
          if (ts >= slab[o + LAST_TS]!) {
            slab[o + LAST_TS] = ts;
            slab[o + LAST] = x;
          }
        }
      }
    }
    if (dup) this.nRetries++;
    else if (lateMask !== 0 && !ps.catchUp) this.reportLate(ps, e, lateMask);
    // 3. watermark
    if (ts > d.maxTs) {
      d.maxTs = ts;
      const wm = ts - this.lateness;
      for (let r = 0; r < sizes.length; r++) {
        const S = sizes[r]!;
        const f = Math.floor(wm / S) * S;
        if (f > frontier[r]!) {
          frontier[r] = f;
          let w = d.heads[r] as Win | null;
          while (w !== null && w.start + S <= f) {
            this.closeHead(ps, d, r, w, 'watermark');
            w = d.heads[r] as Win | null;
          }
        }
      }
    }
    // 4. idleness
    const last = recv > d.lastRecv ? recv : d.lastRecv;
    if (ps.proc > -Infinity && last + this.idle <= ps.proc) {
      if (d.inList) this.listRemove(ps, d);
      d.lastRecv = last;
      this.closeDevice(ps, d, 'idle');
    } else if (!d.inList) {
      d.lastRecv = last;
      this.listInsert(ps, d);
    } else if (last > d.lastRecv) {
      d.lastRecv = last;
      if (ps.tail !== d) {
        this.listRemove(ps, d);
        this.listInsert(ps, d);
      }
    }
  }

  private reportLate(ps: Part, e: TelemetryEvent, mask: number): void {
    this.nLate++;
    for (let r = 0; r < this.nRes; r++) if (mask & (1 << r)) this.lateByRes[r]!++;
    let missed = this.missedLabels[mask];
    if (missed === undefined) {
      missed = this.config.labels.filter((_, r) => mask & (1 << r)).join(',');
      this.missedLabels[mask] = missed;
    }
    this.lateEvents.push({ partition: ps.id, offset: ps.curOffset, event: e, missed });
  }

  private closeIdle(ps: Part): void {
    let d = ps.head;
    while (d !== null && d.lastRecv + this.idle <= ps.proc) {
      this.listRemove(ps, d);
      this.closeDevice(ps, d, 'idle');
      d = ps.head;
    }
  }

  /** Idle or flush: every window up to the one holding maxTs closes. */
  private closeDevice(ps: Part, d: Device, reason: CloseReason): void {
    for (let r = 0; r < this.nRes; r++) {
      const S = this.sizes[r]!;
      const f = Math.floor(d.maxTs / S) * S + S;
      if (f > d.frontier[r]!) d.frontier[r] = f;
      let w = d.heads[r] as Win | null;
      while (w !== null) {
        this.closeHead(ps, d, r, w, reason);
        w = d.heads[r] as Win | null;
      }
    }
  }

  private listInsert(ps: Part, d: Device): void {
    let after = ps.tail;
    while (after !== null && after.lastRecv > d.lastRecv) after = after.prev;
    d.prev = after;
    d.next = after === null ? ps.head : after.next;
    if (d.next === null) ps.tail = d;
    else d.next.prev = d;
    if (after === null) ps.head = d;
    else after.next = d;
    d.inList = true;
  }

  private listRemove(ps: Part, d: Device): void {
    if (d.prev === null) ps.head = d.next;
    else d.prev.next = d.next;
    if (d.next === null) ps.tail = d.prev;
    else d.next.prev = d.prev;
    d.prev = d.next = null;
    d.inList = false;
  }

  /** Opens a window after the current tail of resolution r. */
  private openWin(ps: Part, d: Device, r: number, ws: number): Win {
    const w = this.newWin(ps, d, ws);
    const tail = d.tails[r] as Win | null;
    if (tail === null) d.heads[r] = w;
    else tail.next = w;
    d.tails[r] = w;
    return w;
  }

  private insertWin(ps: Part, d: Device, r: number, ws: number, prev: Win | null, next: Win | null): Win {
    const w = this.newWin(ps, d, ws);
    w.next = next;
    if (prev === null) d.heads[r] = w;
    else prev.next = w;
    if (next === null) d.tails[r] = w;
    return w;
  }

  private newWin(ps: Part, d: Device, ws: number): Win {
    const w = ps.winPool.pop() ?? new Win();
    w.start = ws;
    w.seqLo = 0;
    w.seqHi = -1;
    w.seqs = null;
    w.next = null;
    w.cap = d.cap;
    w.base = this.allocBlock(ps, d.cap);
    // A new slot also when this record's slot has already been passed (its windows closed within the record).
    if (ps.recordSlot < ps.slotBase + ps.slotHead) {
      ps.recordSlot = ps.slotBase + ps.slotOffsets.length;
      ps.slotOffsets.push(ps.curOffset);
      ps.slotCounts.push(0);
    }
    w.slot = ps.recordSlot;
    ps.slotCounts[ps.recordSlot - ps.slotBase]!++;
    d.open++;
    ps.open++;
    this.nOpen++;
    return w;
  }

  private allocBlock(ps: Part, cap: number): number {
    const cls = 31 - Math.clz32(cap);
    const size = cap * STRIDE;
    const list = ps.free[cls];
    let base: number;
    if (list !== undefined && list.length > 0) base = list.pop()!;
    else {
      if (ps.slabTop + size > ps.slab.length) {
        const bigger = new Float64Array(Math.max(ps.slab.length * 2, ps.slabTop + size));
        bigger.set(ps.slab);
        ps.slab = bigger;
      }
      base = ps.slabTop;
      ps.slabTop += size;
    }
    const slab = ps.slab;
    for (let o = base; o < base + size; o += STRIDE) slab[o] = 0;
    return base;
  }

  private freeBlock(ps: Part, base: number, cap: number): void {
    const cls = 31 - Math.clz32(cap);
    (ps.free[cls] ??= []).push(base);
  }

  /** A device reported more metrics than its blocks hold: move its open windows to blocks twice as large. */
  private growDevice(ps: Part, d: Device): void {
    const cap = d.cap * 2;
    for (let r = 0; r < this.nRes; r++) {
      for (let w = d.heads[r] as Win | null; w !== null; w = w.next) {
        const base = this.allocBlock(ps, cap);
        ps.slab.copyWithin(base, w.base, w.base + w.cap * STRIDE);
        this.freeBlock(ps, w.base, w.cap);
        w.base = base;
        w.cap = cap;
      }
    }
    d.cap = cap;
  }

  private growScratch(): void {
    const idx = new Int32Array(this.mIdx.length * 2);
    idx.set(this.mIdx);
    const val = new Float64Array(this.mVal.length * 2);
    val.set(this.mVal);
    this.mIdx = idx;
    this.mVal = val;
  }

  /** Emits and recycles the head window of resolution r. */
  private closeHead(ps: Part, d: Device, r: number, w: Win, reason: CloseReason): void {
    d.heads[r] = w.next;
    if (w.next === null) d.tails[r] = null;
    const S = this.sizes[r]!;
    const ws = w.start;
    // Copy the used part of the block; rows are built from it on demand. A plain array lives in the young
    // generation and dies there; typed-array buffers would count as external memory and force full GCs.
    const slots = d.names.length;
    const size = slots * STRIDE;
    const out = new Array<number>(size);
    const slab = ps.slab;
    const base = w.base;
    let rows = 0;
    for (let i = 0; i < size; i += STRIDE) {
      const n = slab[base + i]!;
      if (n > 0) rows++;
      out[i] = n;
      for (let j = 1; j < STRIDE; j++) out[i + j] = slab[base + i + j]!;
    }
    this.windows.push(
      new ClosedWindow(
        ps.id,
        d.id,
        this.config.labels[r]!,
        ws,
        ws + S,
        reason,
        reason !== 'flush' && ws >= Math.floor(d.knownFrom / S) * S + S,
        d.names,
        slots,
        out,
      ),
    );
    this.nClosed++;
    this.nRows += rows;
    // recycle
    this.freeBlock(ps, w.base, w.cap);
    w.seqs = null;
    w.next = null;
    ps.winPool.push(w);
    const i = w.slot - ps.slotBase;
    ps.slotCounts[i]!--;
    if (i === ps.slotHead) this.advanceSlots(ps);
    d.open--;
    ps.open--;
    this.nOpen--;
  }

  private advanceSlots(ps: Part): void {
    const counts = ps.slotCounts;
    let h = ps.slotHead;
    while (h < counts.length && counts[h] === 0) h++;
    if (h >= 1024 && h * 2 >= counts.length) {
      ps.slotOffsets = ps.slotOffsets.slice(h);
      ps.slotCounts = counts.slice(h);
      ps.slotBase += h;
      h = 0;
    }
    ps.slotHead = h;
  }
}
