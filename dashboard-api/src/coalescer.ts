import type { WindowRecord } from '@fleetpulse/contracts';

export interface DeviceUpdate {
  deviceId: string;
  /** The latest window record of each resolution that changed since the device's previous update. */
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

/**
 * Per-device rate limit with coalescing for the live streams: a device is flushed at most once per `intervalMs`
 * (1000 / FLEETPULSE_LIVE_MAX_UPDATES_PER_SEC), carrying only the latest window record of each of its resolutions
 * (a v2 record holds every metric of its window, so the latest record is the device's latest values).
 *
 * A device that was quiet for an interval is flushed at once (on the next turn of the event loop, so the records of
 * one Kafka batch, e.g. the 1s and 10s windows closing together, go out together): the limit costs no latency at
 * ordinary rates. A device that sends faster waits until `lastFlush + intervalMs`, and what arrived meanwhile
 * replaces what was pending, so memory is one record per resolution however fast data comes. Since every device waits the same interval,
 * devices wait in a FIFO whose head is always the next due: one timer serves them all.
 */
export class Coalescer {
  /** deviceId -> resolution -> the latest record not yet sent. */
  private pending = new Map<string, Map<string, WindowRecord>>();
  private readonly lastFlush = new Map<string, number>();
  private readonly readyNow = new Set<string>();
  private immediateScheduled = false;
  private readonly waiting: { deviceId: string; due: number }[] = [];
  private waitingHead = 0;
  private readonly waitingSet = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private offers = 0;
  private stopped = false;
  /** Records replaced by a newer record of their device and resolution (or refused as older) before a flush. */
  coalesced = 0;

  constructor(
    readonly intervalMs: number,
    private readonly flush: (updates: DeviceUpdate[]) => void,
    private readonly clock: CoalescerClock = realClock,
  ) {}

  offer(record: WindowRecord): void {
    if (this.stopped) return;
    const { deviceId } = record;
    let latest = this.pending.get(deviceId);
    if (!latest) this.pending.set(deviceId, (latest = new Map()));
    const prev = latest.get(record.resolution);
    // A replay or a late duplicate must not move the live value backwards.
    if (prev && prev.windowStart > record.windowStart) {
      this.coalesced++;
      return;
    }
    if (prev) this.coalesced++;
    latest.set(record.resolution, record);
    if (this.readyNow.has(deviceId) || this.waitingSet.has(deviceId)) return;
    const now = this.clock.now();
    const last = this.lastFlush.get(deviceId);
    if (last === undefined || now - last >= this.intervalMs) {
      this.readyNow.add(deviceId);
      if (!this.immediateScheduled) {
        this.immediateScheduled = true;
        this.clock.setImmediate(() => this.flushReady());
      }
    } else {
      this.waiting.push({ deviceId, due: last + this.intervalMs });
      this.waitingSet.add(deviceId);
      this.arm();
    }
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
  }

  private flushReady(): void {
    this.immediateScheduled = false;
    if (this.stopped) return;
    const ids = [...this.readyNow];
    this.readyNow.clear();
    this.emit(ids);
  }

  private arm(): void {
    if (this.timer || this.waitingHead >= this.waiting.length) return;
    const head = this.waiting[this.waitingHead]!;
    this.timer = this.clock.setTimeout(() => this.onTimer(), Math.max(0, head.due - this.clock.now()));
    this.timer.unref?.();
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const now = this.clock.now();
    const ids: string[] = [];
    while (this.waitingHead < this.waiting.length && this.waiting[this.waitingHead]!.due <= now) {
      const { deviceId } = this.waiting[this.waitingHead++]!;
      this.waitingSet.delete(deviceId);
      ids.push(deviceId);
    }
    if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting.splice(0, this.waitingHead);
      this.waitingHead = 0;
    }
    this.emit(ids);
    this.arm();
  }

  private emit(ids: string[]): void {
    const now = this.clock.now();
    const updates: DeviceUpdate[] = [];
    for (const deviceId of ids) {
      const latest = this.pending.get(deviceId);
      if (!latest) continue;
      this.pending.delete(deviceId);
      this.lastFlush.set(deviceId, now);
      updates.push({ deviceId, records: [...latest.values()] });
    }
    if (updates.length > 0) this.flush(updates);
  }

  /** Forgets flush times older than an interval: they no longer hold a device back. */
  private prune(now: number): void {
    for (const [id, t] of this.lastFlush) if (now - t >= this.intervalMs) this.lastFlush.delete(id);
  }
}
