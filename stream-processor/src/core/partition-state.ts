import { randomUUID } from 'node:crypto';
import { CommitQueue } from './commit-queue';
import { STRIDE } from './closed-window';
import {
  B_NEXT,
  B_SEQHI,
  B_SEQLO,
  B_SET,
  B_SLOT,
  B_START,
  D_KNOWN,
  D_LAYOUT,
  D_LIVE,
  D_LIVE_AT,
  D_MAXTS,
  D_OPEN,
  D_QPOS,
  D_QSTAMP,
  D_RECV,
  D_RES,
  D_SILENT,
  D_SNAP,
  H,
  RS,
} from './device-rows';
import { IdleQueue } from './idle-queue';
import type { DeviceStateTuple } from './types';
import { WindowSlab } from './window-slab';

/**
 * What the aggregator holds for one assigned partition: its devices (rows of `ds` doubles, device-rows.ts), their open
 * windows (the slab), the idle queue, the commit queue, and where the partition stands in its records and checkpoints.
 */
export class PartitionState {
  readonly devices = new Map<string, number>();
  /** Device ids by index; '' marks an index freed by eviction. */
  ids: string[] = [];
  rows: Float64Array;
  nDev = 0;
  /** Processing time: the latest receivedAt seen, or the wall clock given while idle. */
  proc = -Infinity;
  readonly slab = new WindowSlab();
  readonly idleQueue = new IdleQueue();
  readonly commits = new CommitQueue();
  curOffset = '';
  lastOffset: string | null = null;
  /** Commit offset before anything was read (from a checkpoint). */
  startCommit: string | null = null;
  /** Numeric form of curOffset. */
  curOffsetNum = -1;
  /** Resume: the last offset the checkpoint had seen (re-read silently up to it); -1 none. */
  through = -1;
  throughStr: string | null = null;
  /** Open windows. */
  open = 0;
  /** Names the run whose stored device states belong to this partition (see PartitionCheckpoint.epoch). */
  epoch: string = randomUUID();
  /** Seq of the last checkpoint taken, and of the last one the caller stored. */
  seq = 0;
  persistedSeq = 0;
  /** Devices changed since the last checkpoint (D_SNAP -1). */
  dirty: number[] = [];
  /**
   * Devices whose finest open window changed since their last provisional snapshot, in order (D_LIVE 1); an index
   * may repeat or name a device since evicted: D_LIVE tells. Bounded by the resident devices.
   */
  live: number[] = [];
  liveHead = 0;
  /** Device indexes freed by eviction, reused by new devices. */
  readonly freeDev: number[] = [];
  /** Whether devices absent from memory may have a stored state (a resume, or after an eviction). */
  lookups = false;

  constructor(
    readonly id: number,
    /** Started in `range` mode (see PartitionStart): windows may lack records before the run's start. */
    readonly range: boolean,
    /** Doubles per device row. */
    readonly ds: number,
  ) {
    this.rows = new Float64Array(ds * 256);
    this.nRes = (ds - D_RES) / RS;
  }

  /** Resolutions per device row. */
  private readonly nRes: number;
  /** Where {@link prefetch} puts what it read, so that the reads are not optimised away. */
  private prefetched = 0;

  /** Devices in memory. */
  get resident(): number {
    return this.nDev - this.freeDev.length;
  }

  /** A new device's row, its windows all open to come (frontiers -Infinity); reuses an evicted device's index. */
  addDevice(id: string, knownFrom: number): number {
    const reused = this.freeDev.pop();
    const di = reused ?? this.nDev++;
    const ds = this.ds;
    if ((di + 1) * ds > this.rows.length) {
      const bigger = new Float64Array(this.rows.length * 2);
      bigger.set(this.rows);
      this.rows = bigger;
    }
    const dr = this.rows;
    const o = di * ds;
    dr[o + D_MAXTS] = -Infinity;
    dr[o + D_RECV] = -Infinity;
    dr[o + D_KNOWN] = knownFrom;
    dr[o + D_LAYOUT] = 0;
    dr[o + D_OPEN] = 0;
    dr[o + D_QSTAMP] = -1;
    dr[o + D_QPOS] = -1;
    dr[o + D_SNAP] = -2;
    dr[o + D_SILENT] = this.through;
    dr[o + D_LIVE] = 0;
    dr[o + D_LIVE_AT] = -Infinity;
    for (let r = 0; r < this.nRes; r++) {
      dr[o + D_RES + RS * r] = -Infinity;
      dr[o + D_RES + RS * r + 1] = -1;
      dr[o + D_RES + RS * r + 2] = -1;
      dr[o + D_RES + RS * r + 3] = -Infinity;
    }
    if (reused === undefined) this.ids.push(id);
    else this.ids[di] = id;
    this.devices.set(id, di);
    return di;
  }

  /** Device `di`'s finest open window changed: list it for a provisional snapshot (D_LIVE 0 -> 1). */
  listLive(di: number): void {
    this.rows[di * this.ds + D_LIVE] = 1;
    this.live.push(di);
    // Entries of evicted devices are dead weight: drop them before they outnumber the devices.
    if (this.live.length - this.liveHead > 2 * this.nDev + 1024) {
      const kept: number[] = [];
      for (let i = this.liveHead; i < this.live.length; i++) {
        const o = this.live[i]! * this.ds + D_LIVE;
        if (this.rows[o] !== 1) continue;
        this.rows[o] = 2; // kept once
        kept.push(this.live[i]!);
      }
      for (const d of kept) this.rows[d * this.ds + D_LIVE] = 1;
      this.live = kept;
      this.liveHead = 0;
    }
  }

  /** The next device listed for a snapshot, taken off the list (D_LIVE 0); -1 when none. */
  takeLive(): number {
    const list = this.live;
    while (this.liveHead < list.length) {
      const di = list[this.liveHead++]!;
      const o = di * this.ds + D_LIVE;
      if (this.rows[o] !== 1) continue;
      this.rows[o] = 0;
      return di;
    }
    this.live = [];
    this.liveHead = 0;
    return -1;
  }

  /** The device's state changed: it goes into the next checkpoint. */
  markDirty(di: number): void {
    const o = di * this.ds;
    if (this.rows[o + D_SNAP] !== -1) {
      this.rows[o + D_SNAP] = -1;
      this.dirty.push(di);
    }
  }

  /**
   * The states of the devices changed since the last checkpoint, as [...DeviceStateTuple, through], now held by
   * checkpoint `seq`.
   */
  takeChanged(seq: number, through: number): DeviceStateTuple[] {
    const rows = this.rows;
    const devices: DeviceStateTuple[] = [];
    for (const di of this.dirty) {
      const o = di * this.ds;
      if (rows[o + D_SNAP] !== -1) continue;
      rows[o + D_SNAP] = seq;
      const row: DeviceStateTuple = [
        this.ids[di]!,
        fin(rows[o + D_MAXTS]!),
        fin(rows[o + D_RECV]!),
        fin(rows[o + D_KNOWN]!),
      ];
      for (let r = 0; r < this.nRes; r++) row.push(fin(rows[o + D_RES + RS * r]!));
      row.push(Math.max(through, rows[o + D_SILENT]!));
      devices.push(row);
    }
    this.dirty = [];
    return devices;
  }

  /**
   * Checkpoint `seq` is stored: beyond `limit` quiet devices (no open window, not waiting to go idle, state held by a
   * stored checkpoint), the longest quiet leave memory, down to 3/4 of the limit so that evictions come in rounds.
   * Returns how many left.
   */
  evictQuiet(seq: number, limit: number): number {
    if (this.resident <= limit) return 0;
    const rows = this.rows;
    const ds = this.ds;
    const quiet: number[] = [];
    for (let di = 0; di < this.nDev; di++) {
      const o = di * ds;
      const snap = rows[o + D_SNAP]!;
      if (snap >= 0 && snap <= seq && rows[o + D_OPEN] === 0 && rows[o + D_QSTAMP]! < 0 && this.ids[di] !== '')
        quiet.push(di);
    }
    const keep = Math.floor((limit * 3) / 4);
    if (quiet.length <= limit) return 0;
    quiet.sort((a, b) => rows[a * ds + D_RECV]! - rows[b * ds + D_RECV]!);
    const n = quiet.length - keep;
    for (let i = 0; i < n; i++) {
      const di = quiet[i]!;
      this.devices.delete(this.ids[di]!);
      this.ids[di] = '';
      this.freeDev.push(di);
    }
    this.lookups = true;
    return n;
  }

  /** Opens window `ws` after the tail of the list at row offset `ro` (a resolution's D_RES slot). */
  openWindow(di: number, ro: number, ws: number, cap: number): number {
    const w = this.newWindow(di, ws, cap);
    const tail = this.rows[ro + 2]!;
    if (tail < 0) this.rows[ro + 1] = w;
    else this.slab.data[tail + B_NEXT] = w;
    this.rows[ro + 2] = w;
    this.rows[ro + 3] = ws;
    return w;
  }

  /** Opens window `ws` between `prev` and `next` (-1: the list's ends) of the list at row offset `ro`. */
  insertWindow(di: number, ro: number, ws: number, prev: number, next: number, cap: number): number {
    const w = this.newWindow(di, ws, cap);
    this.slab.data[w + B_NEXT] = next;
    if (prev < 0) this.rows[ro + 1] = w;
    else this.slab.data[prev + B_NEXT] = w;
    if (next < 0) {
      this.rows[ro + 2] = w;
      this.rows[ro + 3] = ws;
    }
    return w;
  }

  /** Window `w` of the device, already unlinked, is written: its block, seqs and commit slot are released. */
  recycleWindow(di: number, w: number, cap: number): void {
    const slab = this.slab.data;
    if (slab[w + B_SET] !== 0) this.slab.seqSets.delete(w);
    this.commits.close(slab[w + B_SLOT]!);
    this.slab.release(w, cap);
    // Its last open window: the next ones start from an empty layout (names and memory follow open windows).
    const o = di * this.ds;
    const open = this.rows[o + D_OPEN]! - 1;
    this.rows[o + D_OPEN] = open;
    if (open === 0) this.rows[o + D_LAYOUT] = 0;
    this.open--;
  }

  /** The device reported more metrics than its blocks hold: its open windows move to blocks of capacity `cap`. */
  moveWindows(di: number, from: number, cap: number): void {
    const o = di * this.ds;
    for (let r = 0; r < this.nRes; r++) {
      const ro = o + D_RES + RS * r;
      let prev = -1;
      for (let w = this.rows[ro + 1]!; w >= 0;) {
        const base = this.slab.alloc(cap);
        const slab = this.slab.data;
        slab.copyWithin(base, w, w + H + from * STRIDE);
        const next = slab[w + B_NEXT]!;
        if (slab[w + B_SET] !== 0) {
          this.slab.seqSets.set(base, this.slab.seqSets.get(w)!);
          this.slab.seqSets.delete(w);
        }
        this.slab.release(w, from);
        if (prev < 0) this.rows[ro + 1] = base;
        else slab[prev + B_NEXT] = base;
        if (next < 0) this.rows[ro + 2] = base;
        prev = base;
        w = next;
      }
    }
  }

  /**
   * Reads a line of every block an event at `ts` of the device at row offset `o` will likely touch (each resolution's
   * last and first open window; blocks of `blockSize` doubles) before any of them is needed, so that their cache
   * misses overlap instead of following one another.
   */
  prefetch(o: number, ts: number, sizes: readonly number[], blockSize: number): void {
    const rows = this.rows;
    const slab = this.slab.data;
    let x = 0;
    for (let r = 0, ro = o + D_RES; r < this.nRes; r++, ro += RS) {
      const t = rows[ro + 2]!;
      if (t < 0) continue;
      const S = sizes[r]!;
      // The window this event folds into, if it is the last one open.
      if (rows[ro + 3] === Math.floor(ts / S) * S) for (let i = t; i < t + blockSize; i += 8) x += slab[i]!;
      // An older window, likely to close at this event's watermark.
      const h = rows[ro + 1]!;
      if (h !== t) for (let i = h; i < h + blockSize; i += 8) x += slab[i]!;
    }
    this.prefetched = x;
  }

  /** Stores `keep(layout)` as the layout of every resident device (a compaction of the layouts). */
  remapLayouts(keep: (old: number) => number): void {
    for (let di = 0; di < this.nDev; di++) {
      if (this.ids[di] === '') continue;
      const o = di * this.ds + D_LAYOUT;
      this.rows[o] = keep(this.rows[o]!);
    }
  }

  private newWindow(di: number, ws: number, cap: number): number {
    const o = di * this.ds;
    const w = this.slab.alloc(cap);
    const slab = this.slab.data;
    slab[w + B_START] = ws;
    slab[w + B_SEQLO] = 0;
    slab[w + B_SEQHI] = -1;
    slab[w + B_NEXT] = -1;
    slab[w + B_SET] = 0;
    slab[w + B_SLOT] = this.commits.open(this.curOffset);
    this.rows[o + D_OPEN]!++;
    this.open++;
    return w;
  }
}

/** A state number as stored: null for none (-Infinity). */
const fin = (x: number): number | null => (Number.isFinite(x) ? x : null);
