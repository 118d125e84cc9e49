import type { WindowRecord } from '@fleetpulse/contracts';

export interface DeviceUpdate {
  deviceId: string;
  /**
   * What changed since the device's previous update: per resolution, the latest final record and/or the latest
   * provisional one (`"final": false`, of a newer window than that final), the final first.
   */
  records: WindowRecord[];
}

export interface CoalescerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): NodeJS.Timeout;
  clearTimeout(t: NodeJS.Timeout): void;
  setImmediate(fn: () => void): void;
}

const realClock: CoalescerClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t),
  setImmediate: (fn) => void setImmediate(fn),
};

/** The records of one device and resolution waiting to be sent. */
interface Slot {
  final?: WindowRecord;
  provisional?: WindowRecord;
}

/** A device's recent updates: when they went, newest last (at most maxPerSec), and each kind's last. */
interface History {
  times: number[];
  lastFinal: number;
  lastProvisional: number;
}

/** The newest windows sent of a watched device and resolution (-Infinity: none yet). */
interface Frontier {
  final: number;
  provisional: number;
}

const Second = 1000;

/**
 * Per-device rate limit with coalescing for the live streams: a device gets at most `maxPerSec` updates in any second
 * (FLEETPULSE_LIVE_MAX_UPDATES_PER_SEC), each carrying only the latest record of each of its resolutions (a v2 record
 * holds every metric of its window, so the latest record is the device's latest values).
 *
 * Two kinds of record share that budget: final window records (metrics.aggregates) and provisional snapshots of the
 * open window (metrics.live, `"final": false`). Ordering, per device and resolution:
 * - a final record replaces a pending provisional of the same (or an older) window; a provisional never replaces a
 *   pending final of the same or a newer window, nor a pending provisional of a newer window;
 * - neither kind replaces a pending record of its kind by an older window;
 * - for a watched device (`watch`: the gateway watches devices that have subscribers of their own, where provisionals
 *   go), what was already sent counts too: a provisional of a window no newer than a final sent, or older than a
 *   provisional sent, is dropped. (Finals are not held to what was sent, as before provisionals: a replay's older
 *   final still reaches a client that asked for the device.)
 * An update carries, per resolution, the final and then the provisional (of a newer window), so a client that keeps
 * the final of a window over its provisional and never goes back a window sees the right values.
 *
 * Scheduling (latency): a device with fewer than `maxPerSec` updates in the last second is sent at once (on the next
 * turn of the event loop, so the records of one Kafka batch go out together): a device reporting at ordinary rates
 * never waits, and a provisional arriving just after a final of the same device (the usual case: the event that
 * closes one window opens the next) does not wait a whole interval for it. Each kind keeps its own spacing of
 * 1/maxPerSec s (the interval), so a fast device gets evenly spaced updates, not bursts: a record waits until
 * `max(its kind's last update + interval, the update maxPerSec ago + 1 s)`, and what arrives meanwhile replaces what
 * was pending, so memory is at most two records per device and resolution however fast data comes. One timer serves
 * every waiting device (a heap ordered by due time).
 */
export class Coalescer {
  readonly intervalMs: number;
  /** deviceId -> resolution -> what is waiting. */
  private readonly pending = new Map<string, Map<string, Slot>>();
  private readonly history = new Map<string, History>();
  /** Devices whose sent windows are remembered (they have subscribers of their own), by resolution. */
  private readonly watched = new Map<string, Map<string, Frontier>>();
  /** Devices due: 0 for the next turn, or the time they wait for (an entry in `heap`). */
  private readonly due = new Map<string, number>();
  private readonly readyNow = new Set<string>();
  private immediateScheduled = false;
  /** Min-heap of waiting devices by due time; an entry whose due no longer matches `due` is stale and skipped. */
  private readonly heap: { deviceId: string; at: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private offers = 0;
  private stopped = false;
  /** Records replaced by a newer record of their device and resolution, or refused by the ordering, before a flush. */
  coalesced = 0;

  constructor(
    readonly maxPerSec: number,
    private readonly flush: (updates: DeviceUpdate[]) => void,
    private readonly clock: CoalescerClock = realClock,
  ) {
    this.intervalMs = Math.floor(Second / maxPerSec);
  }

  /** Remembers what is sent of `deviceId` from now on, so a late provisional cannot follow its final. */
  watch(deviceId: string): void {
    if (!this.watched.has(deviceId)) this.watched.set(deviceId, new Map());
  }

  unwatch(deviceId: string): void {
    this.watched.delete(deviceId);
  }

  /** Devices whose sent windows are remembered. */
  get watchedDevices(): number {
    return this.watched.size;
  }

  offer(record: WindowRecord): void {
    if (this.stopped) return;
    const { deviceId, resolution, windowStart } = record;
    const provisional = record.final === false;
    const sent = this.watched.get(deviceId)?.get(resolution);
    if (sent && provisional && (windowStart <= sent.final || windowStart < sent.provisional)) {
      this.coalesced++;
      return;
    }
    let slots = this.pending.get(deviceId);
    if (!slots) this.pending.set(deviceId, (slots = new Map()));
    let slot = slots.get(resolution);
    if (!slot) slots.set(resolution, (slot = {}));
    if (provisional) {
      // A pending final of this or a newer window, or a pending provisional of a newer window, stays.
      if (
        (slot.final && slot.final.windowStart >= windowStart) ||
        (slot.provisional?.windowStart ?? -1) > windowStart
      ) {
        this.coalesced++;
        return;
      }
      if (slot.provisional) this.coalesced++;
      slot.provisional = record;
    } else {
      // A replay or a late duplicate must not move the live value backwards.
      if (slot.final && slot.final.windowStart > windowStart) {
        this.coalesced++;
        return;
      }
      if (slot.final) this.coalesced++;
      slot.final = record;
      // The final of a window replaces its provisional (and any older one).
      if (slot.provisional && slot.provisional.windowStart <= windowStart) {
        this.coalesced++;
        slot.provisional = undefined;
      }
    }
    const now = this.clock.now();
    this.schedule(deviceId, provisional, now);
    if (++this.offers % 10_000 === 0) this.prune(now);
  }

  /** Devices with records waiting to be sent. */
  get pendingDevices(): number {
    return this.pending.size;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
    this.due.clear();
  }

  /** When the device may next be sent, for a record of this kind: now or later. */
  private allowedAt(deviceId: string, provisional: boolean): number {
    const h = this.history.get(deviceId);
    if (!h) return -Infinity;
    const spacing = (provisional ? h.lastProvisional : h.lastFinal) + this.intervalMs;
    const budget = h.times.length >= this.maxPerSec ? h.times[h.times.length - this.maxPerSec]! + Second : -Infinity;
    return Math.max(spacing, budget);
  }

  private schedule(deviceId: string, provisional: boolean, now: number): void {
    const current = this.due.get(deviceId);
    if (current === 0) return;
    const at = this.allowedAt(deviceId, provisional);
    if (at <= now) {
      this.due.set(deviceId, 0);
      this.readyNow.add(deviceId);
      if (!this.immediateScheduled) {
        this.immediateScheduled = true;
        this.clock.setImmediate(() => this.flushReady());
      }
      return;
    }
    // Already waiting for an earlier time: that update carries this record too.
    if (current !== undefined && current <= at) return;
    this.due.set(deviceId, at);
    this.push({ deviceId, at });
    this.arm();
  }

  private flushReady(): void {
    this.immediateScheduled = false;
    if (this.stopped) return;
    const ids = [...this.readyNow];
    this.readyNow.clear();
    this.emit(ids);
  }

  private arm(): void {
    const head = this.heap[0];
    if (!head || head.at >= this.timerAt) return;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timerAt = head.at;
    this.timer = this.clock.setTimeout(() => this.onTimer(), Math.max(0, head.at - this.clock.now()));
    this.timer.unref?.();
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.stopped) return;
    const now = this.clock.now();
    const ids: string[] = [];
    while (this.heap.length > 0 && this.heap[0]!.at <= now) {
      const { deviceId, at } = this.pop()!;
      // Stale: sent since, or moved to an earlier time.
      if (this.due.get(deviceId) !== at) continue;
      ids.push(deviceId);
    }
    this.emit(ids);
    this.arm();
  }

  private emit(ids: string[]): void {
    const now = this.clock.now();
    const updates: DeviceUpdate[] = [];
    for (const deviceId of ids) {
      this.due.delete(deviceId);
      const slots = this.pending.get(deviceId);
      if (!slots) continue;
      this.pending.delete(deviceId);
      const records: WindowRecord[] = [];
      let finals = false;
      let provisionals = false;
      const frontiers = this.watched.get(deviceId);
      for (const [resolution, slot] of slots) {
        let f = frontiers?.get(resolution);
        if (frontiers && !f) frontiers.set(resolution, (f = { final: -Infinity, provisional: -Infinity }));
        if (slot.final) {
          records.push(slot.final);
          finals = true;
          if (f) f.final = Math.max(f.final, slot.final.windowStart);
        }
        if (slot.provisional) {
          records.push(slot.provisional);
          provisionals = true;
          if (f) f.provisional = Math.max(f.provisional, slot.provisional.windowStart);
        }
      }
      if (records.length === 0) continue;
      let h = this.history.get(deviceId);
      if (!h) this.history.set(deviceId, (h = { times: [], lastFinal: -Infinity, lastProvisional: -Infinity }));
      h.times.push(now);
      if (h.times.length > this.maxPerSec) h.times.shift();
      if (finals) h.lastFinal = now;
      if (provisionals) h.lastProvisional = now;
      updates.push({ deviceId, records });
    }
    if (updates.length > 0) this.flush(updates);
  }

  /** Forgets histories older than a second: they no longer hold a device back. */
  private prune(now: number): void {
    const horizon = Math.max(Second, this.intervalMs);
    for (const [id, h] of this.history) if (now - h.times[h.times.length - 1]! >= horizon) this.history.delete(id);
  }

  private push(e: { deviceId: string; at: number }): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= e.at) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  private pop(): { deviceId: string; at: number } | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || !last) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r]!.at < h[l]!.at ? r : l;
      if (h[c]!.at >= last.at) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
    return top;
  }
}
