import type { TelemetryEvent } from '@fleetpulse/contracts';
import { AggregatorOutputs } from './aggregator-output';
import { ClosedWindow, STRIDE, type CloseReason } from './closed-window';
import { resolveConfig, type AggregatorConfig, type ResolvedConfig } from './config';
import {
  B_NEXT,
  B_SEQHI,
  B_SEQLO,
  B_SET,
  B_START,
  D_KNOWN,
  D_LAYOUT,
  D_LIVE,
  D_LIVE_AT,
  D_MAXTS,
  D_OPEN,
  D_QSTAMP,
  D_RECV,
  D_RES,
  D_SILENT,
  D_SNAP,
  H,
  RS,
} from './device-rows';
import { resumeFrom, restoreDeviceRow, takeCheckpoint } from './checkpoints';
import { LayoutTrie } from './layouts';
import { PartitionState } from './partition-state';
import type {
  AggregatorOutput,
  AggregatorStats,
  DeviceStateTuple,
  PartitionCheckpoint,
  PartitionStart,
  StoredDeviceState,
} from './types';
import { foldEvent } from './window-stats';

/*
 * Semantics (docs/contract.md, "Windows"), made precise here and mirrored by the naive reference in
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
  private readonly parts = new Map<number, PartitionState>();
  private lastPart: PartitionState | null = null;
  private readonly layouts = new LayoutTrie();
  private readonly outputs: AggregatorOutputs;
  private readonly live: boolean;
  private nEvicted = 0;
  private nRestored = 0;
  private readonly maxMetrics: number;
  /** An event's readings: slot offsets in a block and values (at most maxMetrics: more are refused). */
  private readonly mIdx: Int32Array;
  private readonly mVal: Float64Array;
  private nEvents = 0;
  private nRetries = 0;

  constructor(config: AggregatorConfig = {}) {
    this.config = resolveConfig(config);
    this.sizes = [...this.config.sizes];
    this.nRes = this.sizes.length;
    this.ds = D_RES + RS * this.nRes;
    this.lateness = this.config.allowedLatenessMs;
    this.idle = this.config.idleTimeoutMs;
    this.maxMetrics = this.config.maxMetricsPerDevice;
    this.live = this.config.liveSnapshots;
    this.mIdx = new Int32Array(this.maxMetrics);
    this.mVal = new Float64Array(this.maxMetrics);
    this.outputs = new AggregatorOutputs(this.config.labels);
  }

  /**
   * Starts a partition (after assignment, or at a replay's start). Throws if it is already assigned.
   * @param start - default `beginning`; see {@link PartitionStart}.
   */
  assignPartition(partition: number, start: PartitionStart = { kind: 'beginning' }): void {
    if (this.parts.has(partition)) throw new Error(`partition ${partition} is already assigned`);
    const ps = new PartitionState(partition, start.kind === 'range', this.ds);
    if (start.kind === 'resume') this.restore(ps, start.checkpoint);
    this.parts.set(partition, ps);
    if (this.lastPart?.id === partition) this.lastPart = null;
  }

  /** Forgets a partition (revoked in a rebalance): its open windows and device state are discarded, not emitted. */
  dropPartition(partition: number): void {
    const ps = this.parts.get(partition);
    if (!ps) return;
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
    ps.commits.nextRecord();
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

  /** Closed windows, late and rejected events waiting for the next {@link drain}. */
  pendingOutputs(): number {
    return this.outputs.pending;
  }

  /** Windows closed and late events since the last call, oldest first. */
  drain(): AggregatorOutput {
    return this.outputs.drain();
  }

  /**
   * Provisional snapshots (`final: false`, reason `snapshot`) of the finest open window of each device whose finest
   * windows changed since its last snapshot, oldest change first; at most `max` (the rest wait for the next call),
   * and a device's next snapshot no sooner than `minGapMs` after its last one by the caller's clock `now` (it waits,
   * its changes coalesced). Needs `liveSnapshots`. Each is a copy: the window goes on folding and closes as usual.
   */
  takeLive(max = Infinity, now = 0, minGapMs = 0): ClosedWindow[] {
    const out: ClosedWindow[] = [];
    const S = this.sizes[0]!;
    const label = this.config.labels[0]!;
    for (const ps of this.parts.values()) {
      const waiting: number[] = [];
      for (let di; out.length < max && (di = ps.takeLive()) >= 0;) {
        const o = di * this.ds;
        const w = ps.rows[o + D_RES + 2]!;
        if (w < 0) continue; // closed since: its final record is on its way
        if (ps.rows[o + D_LIVE_AT]! + minGapMs > now) {
          waiting.push(di);
          continue;
        }
        ps.rows[o + D_LIVE_AT] = now;
        const { names } = this.layouts.get(ps.rows[o + D_LAYOUT]!);
        const slab = ps.slab.data;
        const copy = slab.slice(w + H, w + H + names.length * STRIDE);
        const ws = slab[w + B_START]!;
        const id = ps.ids[di]!;
        out.push(
          new ClosedWindow(ps.id, id, label, ws, ws + S, 'snapshot', false, names, names.length, copy, 0, false),
        );
      }
      for (const di of waiting) ps.listLive(di);
    }
    return out;
  }

  /**
   * The offset to commit for the partition: the first record of its oldest open window, or the offset after the last
   * record read when nothing is open; null before anything was read. Valid once every drained window is written.
   */
  safeCommitOffset(partition: number): string | null {
    const ps = this.partOrThrow(partition);
    const oldest = ps.commits.oldestOpen();
    if (oldest !== undefined) return oldest;
    if (ps.lastOffset !== null) return (BigInt(ps.lastOffset) + 1n).toString();
    return ps.startCommit;
  }

  /**
   * Partition state for an exact restart from `commitOffset` (see {@link PartitionStart}): v2, incremental. `devices`
   * holds each device changed since the previous checkpoint, as [...DeviceStateTuple, through]. Store them, then the
   * rest, then call {@link persisted} with `seq`.
   */
  checkpoint(partition: number): PartitionCheckpoint {
    return takeCheckpoint(this.partOrThrow(partition), this.config, this.safeCommitOffset(partition));
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
    const n = ps.evictQuiet(seq, limit);
    this.nEvicted += n;
    return n;
  }

  stats(): AggregatorStats {
    let devices = 0;
    let openWindows = 0;
    for (const ps of this.parts.values()) {
      devices += ps.resident;
      openWindows += ps.open;
    }
    const lateByResolution: Record<string, number> = {};
    const o = this.outputs;
    this.config.labels.forEach((l, i) => (lateByResolution[l] = o.lateByResolution[i]!));
    return {
      events: this.nEvents,
      retries: this.nRetries,
      late: o.late,
      lateByResolution,
      rejected: o.rejected,
      windowsClosed: o.windowsClosed,
      rowsEmitted: o.rowsEmitted,
      openWindows,
      devices,
      evicted: this.nEvicted,
      restored: this.nRestored,
      partitions: this.parts.size,
      layouts: this.layouts.size,
    };
  }

  // ---------------------------------------------------------------------------------------------------------------

  private partOrThrow(partition: number): PartitionState {
    const ps = this.parts.get(partition);
    if (!ps) throw new Error(`partition ${partition} is not assigned`);
    return ps;
  }

  /** Resumes from a checkpoint; a v1 checkpoint's devices all come back now, to be stored anew (a new epoch). */
  private restore(ps: PartitionState, cp: PartitionCheckpoint): void {
    const v1Devices = resumeFrom(ps, cp, this.config);
    if (v1Devices.length === 0) return;
    for (const row of v1Devices) this.restoreDevice(ps, row, ps.through);
    for (let di = 0; di < ps.nDev; di++) ps.markDirty(di);
  }

  /** One device's state into memory; a device already idle at the partition's processing time closes at once. */
  private restoreDevice(ps: PartitionState, row: DeviceStateTuple, silentThrough: number): void {
    const di = restoreDeviceRow(ps, row, silentThrough);
    const recv = ps.rows[di * this.ds + D_RECV]!;
    if (ps.proc > -Infinity && recv + this.idle <= ps.proc) this.closeDevice(ps, di, 'idle');
    else ps.idleQueue.push(ps.rows, this.ds, di, recv);
  }

  private event(ps: PartitionState, e: TelemetryEvent): void {
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
    if (di === undefined) di = ps.addDevice(e.deviceId, ps.range ? ts : -Infinity);
    // Read once: nothing below adds a device (rows) and the layout changes only in the metric loop.
    const rows = ps.rows;
    const windows = ps.slab;
    const o = di * this.ds;
    let li = rows[o + D_LAYOUT]!;
    let layout = this.layouts.get(li);
    ps.prefetch(o, ts, this.sizes, H + layout.cap * STRIDE);
    // Metric slots, once per event.
    const metrics = e.metrics;
    let nm = 0;
    let names = layout.names;
    for (const name in metrics) {
      let idx: number;
      if (names[nm] === name) idx = nm;
      else {
        idx = names.indexOf(name);
        if (idx < 0) {
          if (names.length >= this.maxMetrics) return this.reject(ps, e, o, name, names.length);
          li = this.extendLayout(ps, di, li, name);
          layout = this.layouts.get(li);
          names = layout.names;
          idx = names.length - 1;
        }
      }
      this.mIdx[nm] = H + idx * STRIDE;
      this.mVal[nm] = metrics[name]!;
      nm++;
    }
    const cap = layout.cap;
    const mIdx = this.mIdx;
    const mVal = this.mVal;
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
      if (ws + S <= rows[ro]!) {
        lateMask |= 1 << r;
        continue;
      }
      const tail = rows[ro + 2]!;
      const tailStart = rows[ro + 3]!;
      let w: number;
      if (tail < 0 || tailStart < ws) w = ps.openWindow(di, ro, ws, cap);
      else if (tailStart === ws) w = tail;
      else {
        const slab = windows.data;
        let prev = -1;
        let at = rows[ro + 1]!;
        while (at >= 0 && slab[at + B_START]! < ws) {
          prev = at;
          at = slab[at + B_NEXT]!;
        }
        w = at < 0 || slab[at + B_START] !== ws ? ps.insertWindow(di, ro, ws, prev, at, cap) : at;
      }
      // Read after opening: the slab's array is replaced when it grows.
      const slab = windows.data;
      if (hasSeq) {
        const lo = slab[w + B_SEQLO]!;
        const hi = slab[w + B_SEQHI]!;
        if ((seq >= lo && seq <= hi) || (slab[w + B_SET] !== 0 && windows.seqSets.get(w)!.has(seq))) {
          dup = true;
          continue;
        }
        if (hi < lo) slab[w + B_SEQLO] = slab[w + B_SEQHI] = seq;
        else if (seq === hi + 1) slab[w + B_SEQHI] = seq;
        else if (seq === lo - 1) slab[w + B_SEQLO] = seq;
        else {
          let set = windows.seqSets.get(w);
          if (set === undefined) {
            set = new Set();
            windows.seqSets.set(w, set);
            slab[w + B_SET] = 1;
          }
          set.add(seq);
        }
      }
      foldEvent(slab, w, mIdx, mVal, nm, ts);
    }
    if (rows[o + D_SNAP] !== -1) ps.markDirty(di);
    if (this.live && rows[o + D_LIVE] === 0 && rows[o + D_RES + 2]! >= 0) ps.listLive(di);
    if (dup) this.nRetries++;
    else if (lateMask !== 0 && ps.curOffsetNum > rows[o + D_SILENT]!)
      this.outputs.lateEvent(ps.id, ps.curOffset, e, lateMask);
    // 3. watermark
    if (ts > rows[o + D_MAXTS]!) {
      rows[o + D_MAXTS] = ts;
      const wm = ts - this.lateness;
      for (let r = 0; r < sizes.length; r++) {
        const S = sizes[r]!;
        const f = Math.floor(wm / S) * S;
        const ro = o + D_RES + RS * r;
        if (f > rows[ro]!) {
          rows[ro] = f;
          let w = rows[ro + 1]!;
          while (w >= 0 && windows.data[w + B_START]! + S <= f) {
            this.closeHead(ps, di, r, w, 'watermark');
            w = rows[ro + 1]!;
          }
        }
      }
    }
    // 4. idleness
    const prevRecv = rows[o + D_RECV]!;
    const last = recv > prevRecv ? recv : prevRecv;
    if (ps.proc > -Infinity && last + this.idle <= ps.proc) {
      ps.idleQueue.remove(rows, o);
      rows[o + D_RECV] = last;
      this.closeDevice(ps, di, 'idle');
    } else if (rows[o + D_QSTAMP]! < 0 || last > prevRecv) {
      rows[o + D_RECV] = last;
      ps.idleQueue.push(rows, this.ds, di, last);
    }
  }

  /** A device reported a metric new to it: its layout gains the name (shared with devices of the same history). */
  private extendLayout(ps: PartitionState, di: number, li: number, name: string): number {
    if (this.layouts.full) li = this.compactLayouts(ps, di, li);
    const from = this.layouts.get(li).cap;
    const to = this.layouts.child(li, name);
    const cap = this.layouts.get(to).cap;
    if (cap !== from) ps.moveWindows(di, from, cap);
    ps.rows[di * this.ds + D_LAYOUT] = to;
    return to;
  }

  /** The event would give its device a name beyond the limit: not folded; reported once (not on a silent re-read). */
  private reject(ps: PartitionState, e: TelemetryEvent, o: number, name: string, has: number): void {
    if (ps.curOffsetNum <= ps.rows[o + D_SILENT]!) return;
    this.outputs.rejectedEvent({
      partition: ps.id,
      offset: ps.curOffset,
      event: e,
      reason: `metrics.${name}: device ${e.deviceId} already has ${has} distinct metric names in its open windows (limit ${this.maxMetrics}, FLEETPULSE_PROCESSOR_MAX_METRICS_PER_DEVICE); the event is not aggregated`,
    });
  }

  /** Keeps the layouts some resident device uses; returns the new index of `li` (device `curDi`'s current layout). */
  private compactLayouts(cur: PartitionState, curDi: number, li: number): number {
    let liNew = li;
    this.layouts.compact((keep) => {
      for (const ps of this.parts.values()) ps.remapLayouts(keep);
      liNew = cur.ids[curDi] === '' ? keep(li) : cur.rows[curDi * this.ds + D_LAYOUT]!;
    });
    return liNew;
  }

  /** Closes, in order of lastReceivedAt (ties: who got there first), every waiting device idle at the processing time. */
  private closeIdle(ps: PartitionState): void {
    for (let di; (di = ps.idleQueue.takeIdle(ps.rows, this.ds, ps.proc, this.idle)) >= 0;)
      this.closeDevice(ps, di, 'idle');
  }

  /** Idle or flush: every window up to the one holding maxTs closes. */
  private closeDevice(ps: PartitionState, di: number, reason: CloseReason): void {
    const o = di * this.ds;
    const maxTs = ps.rows[o + D_MAXTS]!;
    for (let r = 0; r < this.nRes; r++) {
      const S = this.sizes[r]!;
      const ro = o + D_RES + RS * r;
      const f = Math.floor(maxTs / S) * S + S;
      if (f > ps.rows[ro]!) {
        ps.rows[ro] = f;
        ps.markDirty(di);
      }
      let w = ps.rows[ro + 1]!;
      while (w >= 0) {
        this.closeHead(ps, di, r, w, reason);
        w = ps.rows[ro + 1]!;
      }
    }
  }

  /** Emits and recycles the head window w of resolution r. */
  private closeHead(ps: PartitionState, di: number, r: number, w: number, reason: CloseReason): void {
    const o = di * this.ds;
    const ro = o + D_RES + RS * r;
    const slab = ps.slab.data;
    const next = slab[w + B_NEXT]!;
    ps.rows[ro + 1] = next;
    if (next < 0) ps.rows[ro + 2] = -1;
    const S = this.sizes[r]!;
    const ws = slab[w + B_START]!;
    const layout = this.layouts.get(ps.rows[o + D_LAYOUT]!);
    const knownFrom = ps.rows[o + D_KNOWN]!;
    // The window's numbers are copied out; rows are built from the copy on demand.
    this.outputs.window(
      ps.id,
      ps.ids[di]!,
      r,
      ws,
      ws + S,
      reason,
      reason !== 'flush' && ws >= Math.floor(knownFrom / S) * S + S,
      layout.names,
      slab,
      w + H,
    );
    ps.recycleWindow(di, w, layout.cap);
  }
}
