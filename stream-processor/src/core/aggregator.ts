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
import { randomUUID } from 'node:crypto';
import type {
  AggregatorOutput,
  AggregatorStats,
  DeviceStateTuple,
  LateEvent,
  PartitionCheckpoint,
  PartitionStart,
  RejectedEvent,
  StoredDeviceState,
} from './types';

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
 * State is flat, so that an event touches few cache lines: a device is an index into its partition's Float64Array of
 * device rows (maxTs, lastReceivedAt, knownFrom, metric layout, open count, idle-queue stamp, and per resolution the
 * frontier and the first and last of its open windows); an open window is a block of its partition's slab: a header
 * (start, commit slot, seq run, next window) followed by 10 doubles per metric. Metric layouts (names in order of first
 * appearance) are shared between devices that report the same metrics. The steady-state hot path allocates only the
 * output: per closed window one ClosedWindow over a copy of its numbers in a shared chunk (rows are built from it when
 * read, or serialised straight from it). Blocks a device is about to use are read up front (see `touch`) so that their
 * cache misses overlap.
 *
 * Bounded state (contract v2): a device's frontier decides whether a later event is late, and nothing bounds how old
 * its next event may be (buffered uploads), so it can never be forgotten, only moved. Like a Kafka Streams store with
 * a changelog, each checkpoint lists the devices whose state changed since the previous one (`checkpoint`); once the
 * caller has stored them (`persisted`), quiet devices (no open window, not waiting to go idle) beyond
 * `maxQuietDevices` (shared evenly by the assigned partitions) leave memory, longest quiet first. The caller reads a
 * device back (`restoreDevices`) before ingesting its next record, so the results are those it would have had in
 * memory. A device's distinct metric names (its layout) are reset whenever its last open window closes, so the name
 * limit and the memory a device holds follow its open windows too.
 */

/** Block header, before the metric stats. */
const B_START = 0;
/** Absolute slot, in the partition's commit queue, of the record that opened it. */
const B_SLOT = 1;
/** The seqs folded in: the contiguous run [seqLo, seqHi] plus, rarely, a set of the others (flag B_SET). */
const B_SEQLO = 2;
const B_SEQHI = 3;
/** Block of the next open window of the same device and resolution, or -1. */
const B_NEXT = 4;
const B_SET = 5;
const H = 6;

/** Device row. */
const D_MAXTS = 0;
const D_RECV = 1;
/** Windows up to the one holding this event time may include records before the run's start (range mode). */
const D_KNOWN = 2;
const D_LAYOUT = 3;
const D_OPEN = 4;
/** Stamp of its live idle-queue entry, or -1 when it is not waiting to go idle. */
const D_QSTAMP = 5;
/** Index of its live entry in the idle FIFO, or -1 (in the heap, or not waiting). */
const D_QPOS = 6;
/** Seq of the checkpoint that holds its current state (>= 0); -1: changed, listed in `dirty`; -2: new, not listed. */
const D_SNAP = 7;
/** Its records up to this offset are already in its state (restored): folded again silently, never reported twice. */
const D_SILENT = 8;
/**
 * Per resolution r at D_RES + RS*r: frontier (windows ending at or before it are closed), head block, tail block, and
 * the tail window's start (so that opening the next window reads no block).
 */
const D_RES = 9;
const RS = 4;

/** Metric names in order of first appearance; the index is the metric's place in every window block. Immutable. */
interface Layout {
  readonly names: readonly string[];
  /** Metric capacity of blocks (a power of two, at least 4). */
  readonly cap: number;
  /** Layouts with one more name. */
  readonly next: Map<string, number>;
}

/** A stored number, or -Infinity for none (null). */
const num = (x: unknown): number => (typeof x === 'number' ? x : -Infinity);

/** Output numbers are copied into shared chunks of plain double arrays (young generation, not external memory). */
const OutChunk = 4096;
/** Sliced to make a chunk: copying a double array is cheaper than filling a new one. */
const OutTemplate: readonly number[] = new Array<number>(OutChunk).fill(0.5);

class Part {
  readonly devices = new Map<string, number>();
  ids: string[] = [];
  rows: Float64Array;
  nDev = 0;
  proc = -Infinity;
  slab = new Float64Array(1 << 14);
  slabTop = 0;
  /** Free blocks per size class (log2 of the metric capacity). */
  readonly free: number[][] = [];
  /** Extra seqs of blocks flagged B_SET. */
  readonly seqSets = new Map<number, Set<number>>();
  /**
   * Devices waiting to go idle, ordered by (lastReceivedAt, stamp): a FIFO for keys that arrive in order (nearly all)
   * and a min-heap for the others. A superseded FIFO entry is killed in place (stamp -1), so scanning the FIFO touches
   * no device row; a heap entry whose stamp is not its device's D_QSTAMP is stale.
   */
  qDev = new Int32Array(1024);
  qKey = new Float64Array(1024);
  qStamp = new Float64Array(1024);
  qHead = 0;
  qTail = 0;
  readonly hDev: number[] = [];
  readonly hKey: number[] = [];
  readonly hStamp: number[] = [];
  stamp = 0;
  /** Live entries (devices waiting), to bound the stale ones. */
  waiting = 0;
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
  /** Numeric form of curOffset. */
  curOffsetNum = -1;
  /** Resume: the last offset the checkpoint had seen (re-read silently up to it); -1 none. */
  through = -1;
  throughStr: string | null = null;
  open = 0;
  /** Names the run whose stored device states belong to this partition (see PartitionCheckpoint.epoch). */
  epoch: string = randomUUID();
  /** Seq of the last checkpoint taken, and of the last one the caller stored. */
  seq = 0;
  persistedSeq = 0;
  /** Devices changed since the last checkpoint (D_SNAP -1). */
  dirty: number[] = [];
  /** Device indexes freed by eviction, reused by new devices. */
  readonly freeDev: number[] = [];
  /** Whether devices absent from memory may have a stored state (a resume, or after an eviction). */
  lookups = false;

  constructor(
    readonly id: number,
    readonly range: boolean,
    readonly ds: number,
  ) {
    this.rows = new Float64Array(ds * 256);
  }
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
  /** Doubles per device row. */
  private readonly ds: number;
  private readonly lateness: number;
  private readonly idle: number;
  private readonly parts = new Map<number, Part>();
  private lastPart: Part | null = null;
  private readonly layouts: Layout[] = [{ names: [], cap: 4, next: new Map() }];
  private windows: ClosedWindow[] = [];
  private lateEvents: LateEvent[] = [];
  private rejectedEvents: RejectedEvent[] = [];
  private nRejected = 0;
  private nEvicted = 0;
  private nRestored = 0;
  private readonly maxMetrics: number;
  /** Layout count that triggers a compaction of the layout trie (see compactLayouts). */
  private layoutLimit = 1 << 14;
  private out: number[] = [];
  private outTop = OutChunk;
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
  /** Where {@link touch} puts what it read, so that the reads are not optimised away. */
  private sink = 0;

  constructor(config: AggregatorConfig = {}) {
    this.config = resolveConfig(config);
    this.sizes = [...this.config.sizes];
    this.nRes = this.sizes.length;
    this.ds = D_RES + RS * this.nRes;
    this.lateness = this.config.allowedLatenessMs;
    this.idle = this.config.idleTimeoutMs;
    this.maxMetrics = this.config.maxMetricsPerDevice;
    this.missedLabels = new Array<string | undefined>(1 << this.nRes).fill(undefined);
    this.lateByRes = new Array<number>(this.nRes).fill(0);
  }

  /**
   * Starts a partition (after assignment, or at a replay's start). Throws if it is already assigned.
   * @param start - default `beginning`; see {@link PartitionStart}.
   */
  assignPartition(partition: number, start: PartitionStart = { kind: 'beginning' }): void {
    if (this.parts.has(partition)) throw new Error(`partition ${partition} is already assigned`);
    const ps = new Part(partition, start.kind === 'range', this.ds);
    if (start.kind === 'resume') this.restore(ps, start.checkpoint);
    this.parts.set(partition, ps);
    if (this.lastPart?.id === partition) this.lastPart = null;
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
    ps.recordSlot = -1;
    ps.curOffset = offset;
    ps.curOffsetNum = Number(offset);
    ps.lastOffset = offset;
    if (Array.isArray(value)) {
      for (const e of value as readonly TelemetryEvent[]) this.event(ps, e);
    } else this.event(ps, value as TelemetryEvent);
  }

  /** Whether the device's state is in memory (else, where `needsLookup`, read it back before its next record). */
  isResident(partition: number, deviceId: string): boolean {
    return this.partOrThrow(partition).devices.has(deviceId);
  }

  /** Whether a device absent from memory may have a stored state to read back (see {@link restoreDevices}). */
  needsLookup(partition: number): boolean {
    return this.partOrThrow(partition).lookups;
  }

  /** The epoch under which the partition's device states are stored (see PartitionCheckpoint). */
  epochOf(partition: number): string {
    return this.partOrThrow(partition).epoch;
  }

  /**
   * Brings stored device states back into memory (read from the store for the devices of the next records that are
   * not resident). A device already resident is left as it is. Call before ingesting those records.
   */
  restoreDevices(partition: number, states: readonly StoredDeviceState[]): void {
    const ps = this.partOrThrow(partition);
    for (const { state, through } of states) {
      if (ps.devices.has(String(state[0]))) continue;
      this.restoreDevice(ps, state, Math.max(through, ps.through));
      this.nRestored++;
    }
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
    const ds = this.ds;
    for (let di = 0; di < ps.nDev; di++) if (ps.rows[di * ds + D_OPEN]! > 0) this.closeDevice(ps, di, 'flush');
  }

  /** Windows closed and late events since the last call, oldest first. */
  drain(): AggregatorOutput {
    const out = { windows: this.windows, late: this.lateEvents, rejected: this.rejectedEvents };
    this.windows = [];
    this.lateEvents = [];
    this.rejectedEvents = [];
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

  /**
   * Partition state for an exact restart from `commitOffset` (see {@link PartitionStart}): v2, incremental. `devices`
   * holds each device changed since the previous checkpoint, as [...DeviceStateTuple, through]. Store them, then the
   * rest, then call {@link persisted} with `seq`.
   */
  checkpoint(partition: number): PartitionCheckpoint {
    const ps = this.partOrThrow(partition);
    const fin = (x: number): number | null => (Number.isFinite(x) ? x : null);
    const last = ps.lastOffset === null ? -1 : Number(ps.lastOffset);
    const through = Math.max(last, ps.through);
    // The offset as read (exact beyond 2^53, where the numbers only order records).
    const throughText = last >= ps.through ? ps.lastOffset : ps.throughStr;
    const seq = ++ps.seq;
    const rows = ps.rows;
    const devices: DeviceStateTuple[] = [];
    for (const di of ps.dirty) {
      const o = di * this.ds;
      if (rows[o + D_SNAP] !== -1) continue;
      rows[o + D_SNAP] = seq;
      const row: DeviceStateTuple = [
        ps.ids[di]!,
        fin(rows[o + D_MAXTS]!),
        fin(rows[o + D_RECV]!),
        fin(rows[o + D_KNOWN]!),
      ];
      for (let r = 0; r < this.nRes; r++) row.push(fin(rows[o + D_RES + RS * r]!));
      row.push(Math.max(through, rows[o + D_SILENT]!));
      devices.push(row);
    }
    ps.dirty = [];
    return {
      v: 2,
      epoch: ps.epoch,
      seq,
      resolutions: [...this.config.labels],
      allowedLatenessMs: this.lateness,
      idleTimeoutMs: this.idle,
      commitOffset: this.safeCommitOffset(partition),
      throughOffset: throughText,
      processingTime: fin(ps.proc),
      devices,
    };
  }

  /**
   * The checkpoint `seq` of the partition is stored: devices whose state it holds may leave memory. Evicts the
   * longest-quiet devices beyond the partition's share of `maxQuietDevices` (down to 3/4 of it, so that evictions
   * come in rounds); returns how many.
   */
  persisted(partition: number, seq: number): number {
    const ps = this.parts.get(partition);
    if (!ps || seq <= ps.persistedSeq) return 0;
    ps.persistedSeq = seq;
    // The limit is the processor's, shared evenly by the partitions it holds.
    const limit = Math.floor(this.config.maxQuietDevices / this.parts.size);
    const resident = ps.nDev - ps.freeDev.length;
    if (resident <= limit) return 0;
    const rows = ps.rows;
    const ds = this.ds;
    const quiet: number[] = [];
    for (let di = 0; di < ps.nDev; di++) {
      const o = di * ds;
      const snap = rows[o + D_SNAP]!;
      if (snap >= 0 && snap <= seq && rows[o + D_OPEN] === 0 && rows[o + D_QSTAMP]! < 0 && ps.ids[di] !== '')
        quiet.push(di);
    }
    const keep = Math.floor((limit * 3) / 4);
    if (quiet.length <= limit) return 0;
    quiet.sort((a, b) => rows[a * ds + D_RECV]! - rows[b * ds + D_RECV]!);
    const n = quiet.length - keep;
    for (let i = 0; i < n; i++) {
      const di = quiet[i]!;
      ps.devices.delete(ps.ids[di]!);
      ps.ids[di] = '';
      ps.freeDev.push(di);
    }
    ps.lookups = true;
    this.nEvicted += n;
    return n;
  }

  stats(): AggregatorStats {
    let devices = 0;
    for (const ps of this.parts.values()) devices += ps.nDev - ps.freeDev.length;
    const lateByResolution: Record<string, number> = {};
    this.config.labels.forEach((l, i) => (lateByResolution[l] = this.lateByRes[i]!));
    return {
      events: this.nEvents,
      retries: this.nRetries,
      late: this.nLate,
      lateByResolution,
      rejected: this.nRejected,
      windowsClosed: this.nClosed,
      rowsEmitted: this.nRows,
      openWindows: this.nOpen,
      devices,
      evicted: this.nEvicted,
      restored: this.nRestored,
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
      (cp.v !== 1 && cp.v !== 2) ||
      cp.resolutions.join(',') !== c.labels.join(',') ||
      cp.allowedLatenessMs !== this.lateness ||
      cp.idleTimeoutMs !== this.idle
    )
      throw new Error('checkpoint was taken with another configuration (resolutions, lateness or idle timeout)');
    ps.proc = num(cp.processingTime);
    ps.startCommit = cp.commitOffset;
    if (cp.throughOffset !== null) {
      ps.through = Number(cp.throughOffset);
      ps.throughStr = cp.throughOffset;
    }
    if (cp.v === 2) {
      // Device states are read back as their devices report (restoreDevices).
      ps.epoch = cp.epoch!;
      ps.seq = ps.persistedSeq = cp.seq ?? 0;
      ps.lookups = true;
      return;
    }
    // v1: every device in one value; they are all written under a new epoch at the next checkpoint.
    const rows = [...cp.devices].sort((a, b) => num(a[2]) - num(b[2]));
    for (const row of rows) this.restoreDevice(ps, row, ps.through);
    for (let di = 0; di < ps.nDev; di++) this.markDirty(ps, di);
  }

  /** One device's state into memory; a device already idle at the partition's processing time closes at once. */
  private restoreDevice(ps: Part, row: DeviceStateTuple, silentThrough: number): void {
    const di = this.newDevice(ps, String(row[0]), num(row[3]));
    const o = di * this.ds;
    const dr = ps.rows;
    dr[o + D_MAXTS] = num(row[1]);
    dr[o + D_RECV] = num(row[2]);
    for (let r = 0; r < this.nRes; r++) dr[o + D_RES + RS * r] = num(row[4 + r]);
    dr[o + D_SILENT] = silentThrough;
    dr[o + D_SNAP] = ps.persistedSeq;
    if (ps.proc > -Infinity && dr[o + D_RECV]! + this.idle <= ps.proc) this.closeDevice(ps, di, 'idle');
    else this.queuePush(ps, di, dr[o + D_RECV]!);
  }

  private markDirty(ps: Part, di: number): void {
    const o = di * this.ds;
    if (ps.rows[o + D_SNAP] !== -1) {
      ps.rows[o + D_SNAP] = -1;
      ps.dirty.push(di);
    }
  }

  private newDevice(ps: Part, id: string, knownFrom: number): number {
    const reused = ps.freeDev.pop();
    const di = reused ?? ps.nDev++;
    const ds = this.ds;
    if ((di + 1) * ds > ps.rows.length) {
      const bigger = new Float64Array(ps.rows.length * 2);
      bigger.set(ps.rows);
      ps.rows = bigger;
    }
    const dr = ps.rows;
    const o = di * ds;
    dr[o + D_MAXTS] = -Infinity;
    dr[o + D_RECV] = -Infinity;
    dr[o + D_KNOWN] = knownFrom;
    dr[o + D_LAYOUT] = 0;
    dr[o + D_OPEN] = 0;
    dr[o + D_QSTAMP] = -1;
    dr[o + D_QPOS] = -1;
    dr[o + D_SNAP] = -2;
    dr[o + D_SILENT] = ps.through;
    for (let r = 0; r < this.nRes; r++) {
      dr[o + D_RES + RS * r] = -Infinity;
      dr[o + D_RES + RS * r + 1] = -1;
      dr[o + D_RES + RS * r + 2] = -1;
      dr[o + D_RES + RS * r + 3] = -Infinity;
    }
    if (reused === undefined) ps.ids.push(id);
    else ps.ids[di] = id;
    ps.devices.set(id, di);
    return di;
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
    let di = ps.devices.get(e.deviceId);
    if (di === undefined) di = this.newDevice(ps, e.deviceId, ps.range ? ts : -Infinity);
    const ds = this.ds;
    const o = di * ds;
    this.touch(ps, o, ts);
    // Metric slots, once per event.
    const metrics = e.metrics;
    let nm = 0;
    let li = ps.rows[o + D_LAYOUT]!;
    let names = this.layouts[li]!.names;
    for (const name in metrics) {
      let idx: number;
      if (names[nm] === name) idx = nm;
      else {
        idx = names.indexOf(name);
        if (idx < 0) {
          if (names.length >= this.maxMetrics) return this.reject(ps, e, o, name, names.length);
          li = this.extendLayout(ps, di, li, name);
          names = this.layouts[li]!.names;
          idx = names.length - 1;
        }
      }
      if (nm === this.mIdx.length) this.growScratch();
      this.mIdx[nm] = H + idx * STRIDE;
      this.mVal[nm] = metrics[name]!;
      nm++;
    }
    // 2. classify and fold per resolution
    const seq = e.seq;
    const hasSeq = seq !== undefined;
    const sizes = this.sizes;
    let lateMask = 0;
    let dup = false;
    for (let r = 0; r < sizes.length; r++) {
      const S = sizes[r]!;
      const ws = Math.floor(ts / S) * S;
      const ro = o + D_RES + RS * r;
      if (ws + S <= ps.rows[ro]!) {
        lateMask |= 1 << r;
        continue;
      }
      const tail = ps.rows[ro + 2]!;
      const tailStart = ps.rows[ro + 3]!;
      let w: number;
      if (tail < 0 || tailStart < ws) w = this.openWin(ps, di, ro, ws);
      else if (tailStart === ws) w = tail;
      else {
        const slab = ps.slab;
        let prev = -1;
        let at = ps.rows[ro + 1]!;
        while (at >= 0 && slab[at + B_START]! < ws) {
          prev = at;
          at = slab[at + B_NEXT]!;
        }
        w = at < 0 || slab[at + B_START] !== ws ? this.insertWin(ps, di, ro, ws, prev, at) : at;
      }
      const slab = ps.slab;
      if (hasSeq) {
        const lo = slab[w + B_SEQLO]!;
        const hi = slab[w + B_SEQHI]!;
        if ((seq >= lo && seq <= hi) || (slab[w + B_SET] !== 0 && ps.seqSets.get(w)!.has(seq))) {
          dup = true;
          continue;
        }
        if (hi < lo) slab[w + B_SEQLO] = slab[w + B_SEQHI] = seq;
        else if (seq === hi + 1) slab[w + B_SEQHI] = seq;
        else if (seq === lo - 1) slab[w + B_SEQLO] = seq;
        else {
          let set = ps.seqSets.get(w);
          if (set === undefined) {
            set = new Set();
            ps.seqSets.set(w, set);
            slab[w + B_SET] = 1;
          }
          set.add(seq);
        }
      }
      for (let k = 0; k < nm; k++) {
        const so = w + this.mIdx[k]!;
        const x = this.mVal[k]!;
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
        } else {
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
      }
    }
    this.markDirty(ps, di);
    if (dup) this.nRetries++;
    else if (lateMask !== 0 && ps.curOffsetNum > ps.rows[o + D_SILENT]!) this.reportLate(ps, e, lateMask);
    // 3. watermark
    if (ts > ps.rows[o + D_MAXTS]!) {
      ps.rows[o + D_MAXTS] = ts;
      const wm = ts - this.lateness;
      for (let r = 0; r < sizes.length; r++) {
        const S = sizes[r]!;
        const f = Math.floor(wm / S) * S;
        const ro = o + D_RES + RS * r;
        if (f > ps.rows[ro]!) {
          ps.rows[ro] = f;
          let w = ps.rows[ro + 1]!;
          while (w >= 0 && ps.slab[w + B_START]! + S <= f) {
            this.closeHead(ps, di, r, w, 'watermark');
            w = ps.rows[ro + 1]!;
          }
        }
      }
    }
    // 4. idleness
    const dr = ps.rows;
    const prevRecv = dr[o + D_RECV]!;
    const last = recv > prevRecv ? recv : prevRecv;
    if (ps.proc > -Infinity && last + this.idle <= ps.proc) {
      this.queueRemove(ps, o);
      dr[o + D_RECV] = last;
      this.closeDevice(ps, di, 'idle');
    } else if (dr[o + D_QSTAMP]! < 0 || last > prevRecv) {
      dr[o + D_RECV] = last;
      this.queuePush(ps, di, last);
    }
  }

  /**
   * Reads a line of every block this event will likely touch (each resolution's last and first open window) before
   * any of them is needed, so that their cache misses overlap instead of following one another.
   */
  private touch(ps: Part, o: number, ts: number): void {
    const rows = ps.rows;
    const slab = ps.slab;
    const cap = this.layouts[rows[o + D_LAYOUT]!]!.cap;
    const size = H + cap * STRIDE;
    let x = 0;
    for (let r = 0, ro = o + D_RES; r < this.nRes; r++, ro += RS) {
      const t = rows[ro + 2]!;
      if (t < 0) continue;
      const S = this.sizes[r]!;
      // The window this event folds into, if it is the last one open.
      if (rows[ro + 3] === Math.floor(ts / S) * S) for (let i = t; i < t + size; i += 8) x += slab[i]!;
      // An older window, likely to close at this event's watermark.
      const h = rows[ro + 1]!;
      if (h !== t) for (let i = h; i < h + size; i += 8) x += slab[i]!;
    }
    this.sink = x;
  }

  /** A device reported a metric new to it: its layout gains the name (shared with devices of the same history). */
  private extendLayout(ps: Part, di: number, li: number, name: string): number {
    if (this.layouts.length >= this.layoutLimit) li = this.compactLayouts(ps, di, li);
    const from = this.layouts[li]!;
    let to = from.next.get(name);
    if (to === undefined) {
      const names = [...from.names, name];
      const cap = names.length > from.cap ? from.cap * 2 : from.cap;
      to = this.layouts.length;
      this.layouts.push({ names, cap, next: new Map() });
      from.next.set(name, to);
    }
    const cap = this.layouts[to]!.cap;
    if (cap !== from.cap) this.growDevice(ps, di, from.cap, cap);
    ps.rows[di * this.ds + D_LAYOUT] = to;
    return to;
  }

  /** The event would give its device a name beyond the limit: not folded; reported once (not on a silent re-read). */
  private reject(ps: Part, e: TelemetryEvent, o: number, name: string, has: number): void {
    if (ps.curOffsetNum <= ps.rows[o + D_SILENT]!) return;
    this.nRejected++;
    this.rejectedEvents.push({
      partition: ps.id,
      offset: ps.curOffset,
      event: e,
      reason: `metrics.${name}: device ${e.deviceId} already has ${has} distinct metric names in its open windows (limit ${this.maxMetrics}, FLEETPULSE_PROCESSOR_MAX_METRICS_PER_DEVICE); the event is not aggregated`,
    });
  }

  /**
   * Layouts form a trie of name sequences shared by devices; names that never repeat (a flood of new names) would grow
   * it without end. Past `layoutLimit`, only the layouts some resident device uses are kept (and the limit doubles if
   * they alone fill half of it). Returns the new index of `li` (device `di`'s current layout).
   */
  private compactLayouts(cur: Part, curDi: number, li: number): number {
    const remap = new Map<number, number>([[0, 0]]);
    const kept: Layout[] = [{ names: [], cap: 4, next: new Map() }];
    const ds = this.ds;
    const keep = (old: number): number => {
      let to = remap.get(old);
      if (to === undefined) {
        const l = this.layouts[old]!;
        to = kept.length;
        kept.push({ names: l.names, cap: l.cap, next: new Map() });
        remap.set(old, to);
      }
      return to;
    };
    for (const ps of this.parts.values())
      for (let di = 0; di < ps.nDev; di++) {
        if (ps.ids[di] === '') continue;
        const o = di * ds + D_LAYOUT;
        ps.rows[o] = keep(ps.rows[o]!);
      }
    const liNew = cur.ids[curDi] === '' ? keep(li) : cur.rows[curDi * ds + D_LAYOUT]!;
    this.layouts.length = 0;
    this.layouts.push(...kept);
    if (kept.length * 2 > this.layoutLimit) this.layoutLimit *= 2;
    return liNew;
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

  // Idle queue ------------------------------------------------------------------------------------------------------

  private queuePush(ps: Part, di: number, key: number): void {
    const stamp = ps.stamp++;
    const o = di * this.ds;
    const rows = ps.rows;
    if (rows[o + D_QSTAMP]! < 0) ps.waiting++;
    else if (rows[o + D_QPOS]! >= 0) ps.qStamp[rows[o + D_QPOS]!] = -1;
    rows[o + D_QSTAMP] = stamp;
    if (ps.qTail === ps.qHead || ps.qKey[ps.qTail - 1]! <= key) {
      if (ps.qTail === ps.qDev.length) this.queueRoom(ps);
      const t = ps.qTail++;
      ps.qDev[t] = di;
      ps.qKey[t] = key;
      ps.qStamp[t] = stamp;
      rows[o + D_QPOS] = t;
    } else {
      rows[o + D_QPOS] = -1;
      this.heapPush(ps, di, key, stamp);
    }
  }

  /** Marks the device as not waiting; its entry goes stale. */
  private queueRemove(ps: Part, o: number): void {
    const rows = ps.rows;
    if (rows[o + D_QSTAMP]! >= 0) {
      if (rows[o + D_QPOS]! >= 0) ps.qStamp[rows[o + D_QPOS]!] = -1;
      rows[o + D_QSTAMP] = -1;
      rows[o + D_QPOS] = -1;
      ps.waiting--;
    }
  }

  /** Makes room at the FIFO's end: drops stale entries and consumed space, or grows. */
  private queueRoom(ps: Part): void {
    const live = ps.waiting;
    let n = 0;
    const dev = ps.qDev;
    const key = ps.qKey;
    const st = ps.qStamp;
    const size = live * 2 + 1024 > dev.length ? dev.length * 2 : dev.length;
    const nd = size === dev.length ? dev : new Int32Array(size);
    const nk = size === dev.length ? key : new Float64Array(size);
    const ns = size === dev.length ? st : new Float64Array(size);
    for (let i = ps.qHead; i < ps.qTail; i++) {
      if (st[i]! < 0) continue;
      const di = dev[i]!;
      ps.rows[di * this.ds + D_QPOS] = n;
      nd[n] = di;
      nk[n] = key[i]!;
      ns[n] = st[i]!;
      n++;
    }
    ps.qDev = nd;
    ps.qKey = nk;
    ps.qStamp = ns;
    ps.qHead = 0;
    ps.qTail = n;
  }

  private heapPush(ps: Part, di: number, key: number, stamp: number): void {
    const hk = ps.hKey;
    const hs = ps.hStamp;
    const hd = ps.hDev;
    let i = hk.length;
    hk.push(key);
    hs.push(stamp);
    hd.push(di);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (hk[p]! < key || (hk[p] === key && hs[p]! < stamp)) break;
      hk[i] = hk[p]!;
      hs[i] = hs[p]!;
      hd[i] = hd[p]!;
      i = p;
    }
    hk[i] = key;
    hs[i] = stamp;
    hd[i] = di;
    if (hk.length > ps.waiting * 2 + 1024) this.heapCompact(ps);
  }

  private heapPop(ps: Part): void {
    const hk = ps.hKey;
    const hs = ps.hStamp;
    const hd = ps.hDev;
    const key = hk.pop()!;
    const stamp = hs.pop()!;
    const di = hd.pop()!;
    const n = hk.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && (hk[c + 1]! < hk[c]! || (hk[c + 1] === hk[c] && hs[c + 1]! < hs[c]!))) c++;
      if (key < hk[c]! || (key === hk[c] && stamp < hs[c]!)) break;
      hk[i] = hk[c]!;
      hs[i] = hs[c]!;
      hd[i] = hd[c]!;
      i = c;
    }
    hk[i] = key;
    hs[i] = stamp;
    hd[i] = di;
  }

  /** Rebuilds the heap without its stale entries. */
  private heapCompact(ps: Part): void {
    const keep: [number, number, number][] = [];
    for (let i = 0; i < ps.hKey.length; i++) {
      const di = ps.hDev[i]!;
      if (ps.rows[di * this.ds + D_QSTAMP] === ps.hStamp[i]) keep.push([ps.hKey[i]!, ps.hStamp[i]!, di]);
    }
    keep.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    ps.hKey.length = ps.hStamp.length = ps.hDev.length = 0;
    for (const [k, st, di] of keep) {
      ps.hKey.push(k);
      ps.hStamp.push(st);
      ps.hDev.push(di);
    }
  }

  /** Closes, in order of lastReceivedAt (ties: who got there first), every waiting device idle at the processing time. */
  private closeIdle(ps: Part): void {
    const ds = this.ds;
    for (;;) {
      // Skip stale entries at both fronts.
      while (ps.qHead < ps.qTail && ps.qStamp[ps.qHead]! < 0) ps.qHead++;
      while (ps.hKey.length > 0 && ps.rows[ps.hDev[0]! * ds + D_QSTAMP] !== ps.hStamp[0]) this.heapPop(ps);
      const fifo = ps.qHead < ps.qTail;
      const heap = ps.hKey.length > 0;
      let di: number;
      if (fifo && (!heap || this.before(ps.qKey[ps.qHead]!, ps.qStamp[ps.qHead]!, ps.hKey[0]!, ps.hStamp[0]!))) {
        if (!(ps.qKey[ps.qHead]! + this.idle <= ps.proc)) return;
        di = ps.qDev[ps.qHead++]!;
      } else if (heap) {
        if (!(ps.hKey[0]! + this.idle <= ps.proc)) return;
        di = ps.hDev[0]!;
        this.heapPop(ps);
      } else return;
      this.queueRemove(ps, di * ds);
      this.closeDevice(ps, di, 'idle');
    }
  }

  private before(k1: number, s1: number, k2: number, s2: number): boolean {
    return k1 < k2 || (k1 === k2 && s1 < s2);
  }

  /** Idle or flush: every window up to the one holding maxTs closes. */
  private closeDevice(ps: Part, di: number, reason: CloseReason): void {
    const o = di * this.ds;
    const maxTs = ps.rows[o + D_MAXTS]!;
    for (let r = 0; r < this.nRes; r++) {
      const S = this.sizes[r]!;
      const ro = o + D_RES + RS * r;
      const f = Math.floor(maxTs / S) * S + S;
      if (f > ps.rows[ro]!) {
        ps.rows[ro] = f;
        this.markDirty(ps, di);
      }
      let w = ps.rows[ro + 1]!;
      while (w >= 0) {
        this.closeHead(ps, di, r, w, reason);
        w = ps.rows[ro + 1]!;
      }
    }
  }

  // Windows ---------------------------------------------------------------------------------------------------------

  /** Opens a window after the current tail (row offset ro of the resolution's triple). */
  private openWin(ps: Part, di: number, ro: number, ws: number): number {
    const w = this.newWin(ps, di, ws);
    const tail = ps.rows[ro + 2]!;
    if (tail < 0) ps.rows[ro + 1] = w;
    else ps.slab[tail + B_NEXT] = w;
    ps.rows[ro + 2] = w;
    ps.rows[ro + 3] = ws;
    return w;
  }

  private insertWin(ps: Part, di: number, ro: number, ws: number, prev: number, next: number): number {
    const w = this.newWin(ps, di, ws);
    ps.slab[w + B_NEXT] = next;
    if (prev < 0) ps.rows[ro + 1] = w;
    else ps.slab[prev + B_NEXT] = w;
    if (next < 0) {
      ps.rows[ro + 2] = w;
      ps.rows[ro + 3] = ws;
    }
    return w;
  }

  private newWin(ps: Part, di: number, ws: number): number {
    const o = di * this.ds;
    const w = this.allocBlock(ps, this.layouts[ps.rows[o + D_LAYOUT]!]!.cap);
    const slab = ps.slab;
    slab[w + B_START] = ws;
    slab[w + B_SEQLO] = 0;
    slab[w + B_SEQHI] = -1;
    slab[w + B_NEXT] = -1;
    slab[w + B_SET] = 0;
    // A new slot also when this record's slot has already been passed (its windows closed within the record).
    if (ps.recordSlot < ps.slotBase + ps.slotHead) {
      ps.recordSlot = ps.slotBase + ps.slotOffsets.length;
      ps.slotOffsets.push(ps.curOffset);
      ps.slotCounts.push(0);
    }
    slab[w + B_SLOT] = ps.recordSlot;
    ps.slotCounts[ps.recordSlot - ps.slotBase]!++;
    ps.rows[o + D_OPEN]!++;
    ps.open++;
    this.nOpen++;
    return w;
  }

  private allocBlock(ps: Part, cap: number): number {
    const cls = 31 - Math.clz32(cap);
    const size = H + cap * STRIDE;
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
    for (let o = base + H; o < base + size; o += STRIDE) slab[o] = 0;
    return base;
  }

  private freeBlock(ps: Part, base: number, cap: number): void {
    const cls = 31 - Math.clz32(cap);
    (ps.free[cls] ??= []).push(base);
  }

  /** A device reported more metrics than its blocks hold: move its open windows to blocks twice as large. */
  private growDevice(ps: Part, di: number, from: number, cap: number): void {
    const o = di * this.ds;
    for (let r = 0; r < this.nRes; r++) {
      const ro = o + D_RES + RS * r;
      let prev = -1;
      for (let w = ps.rows[ro + 1]!; w >= 0;) {
        const base = this.allocBlock(ps, cap);
        const slab = ps.slab;
        slab.copyWithin(base, w, w + H + from * STRIDE);
        const next = slab[w + B_NEXT]!;
        if (slab[w + B_SET] !== 0) {
          ps.seqSets.set(base, ps.seqSets.get(w)!);
          ps.seqSets.delete(w);
        }
        this.freeBlock(ps, w, from);
        if (prev < 0) ps.rows[ro + 1] = base;
        else slab[prev + B_NEXT] = base;
        if (next < 0) ps.rows[ro + 2] = base;
        prev = base;
        w = next;
      }
    }
  }

  private growScratch(): void {
    const idx = new Int32Array(this.mIdx.length * 2);
    idx.set(this.mIdx);
    const val = new Float64Array(this.mVal.length * 2);
    val.set(this.mVal);
    this.mIdx = idx;
    this.mVal = val;
  }

  /** Emits and recycles the head window w of resolution r. */
  private closeHead(ps: Part, di: number, r: number, w: number, reason: CloseReason): void {
    const o = di * this.ds;
    const ro = o + D_RES + RS * r;
    const slab = ps.slab;
    const next = slab[w + B_NEXT]!;
    ps.rows[ro + 1] = next;
    if (next < 0) ps.rows[ro + 2] = -1;
    const S = this.sizes[r]!;
    const ws = slab[w + B_START]!;
    const layout = this.layouts[ps.rows[o + D_LAYOUT]!]!;
    // Copy the used part of the block into the output chunk; rows are built from it on demand.
    const slots = layout.names.length;
    const size = slots * STRIDE;
    if (this.outTop + size > this.out.length) {
      this.out = size <= OutChunk ? OutTemplate.slice() : new Array<number>(size).fill(0.5);
      this.outTop = 0;
    }
    const out = this.out;
    const at = this.outTop;
    this.outTop = at + size;
    const from = w + H;
    for (let i = 0; i < size; i++) out[at + i] = slab[from + i]!;
    let rows = 0;
    for (let i = 0; i < size; i += STRIDE) if (out[at + i]! > 0) rows++;
    const knownFrom = ps.rows[o + D_KNOWN]!;
    this.windows.push(
      new ClosedWindow(
        ps.id,
        ps.ids[di]!,
        this.config.labels[r]!,
        ws,
        ws + S,
        reason,
        reason !== 'flush' && ws >= Math.floor(knownFrom / S) * S + S,
        layout.names,
        slots,
        out,
        at,
      ),
    );
    this.nClosed++;
    this.nRows += rows;
    // recycle
    if (slab[w + B_SET] !== 0) ps.seqSets.delete(w);
    const i = slab[w + B_SLOT]! - ps.slotBase;
    this.freeBlock(ps, w, layout.cap);
    ps.slotCounts[i]!--;
    if (i === ps.slotHead) this.advanceSlots(ps);
    // Its last open window: the next ones start from an empty layout (names and memory follow open windows).
    const open = ps.rows[o + D_OPEN]! - 1;
    ps.rows[o + D_OPEN] = open;
    if (open === 0) ps.rows[o + D_LAYOUT] = 0;
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
