import type { AlertTransition, AnomalyScore, WindowRecord } from '@fleetpulse/contracts';

/**
 * The fleet overview's state of every device, kept in flat typed arrays (one slot per device, in arrival order) so
 * 10,000 devices x 1 Hz cost a Map lookup and a few stores a record, no objects per record, and the grid redraws only
 * the cells whose state changed.
 *
 * A device's state, highest first:
 * - `alerting`: an `alert` transition with state `firing` of some rule is open for it (until its `resolved`);
 * - `anomalous`: an anomalous score of a window starting within the last `anomalyMs` (default 10 minutes);
 * - `live`: a record within the last `liveMs` of wall clock (default 15 s: a 10 s window's record comes every 10 s,
 *   a couple of seconds after its window closed). A live record counts from when it reached the page; a device
 *   known only from `GET /api/devices` counts from its `lastSeen` (the end of its latest written window);
 * - `stale`: seen before that, or never (listed without a window).
 */
export type DeviceState = 'live' | 'stale' | 'anomalous' | 'alerting';
export const States: readonly DeviceState[] = ['live', 'stale', 'anomalous', 'alerting'];
export const StateCode = { Stale: 0, Live: 1, Anomalous: 2, Alerting: 3 } as const;
export type StateCode = (typeof StateCode)[keyof typeof StateCode];
export const stateName = (c: number): DeviceState =>
  c === StateCode.Live
    ? 'live'
    : c === StateCode.Anomalous
      ? 'anomalous'
      : c === StateCode.Alerting
        ? 'alerting'
        : 'stale';

export interface FleetModelOptions {
  liveMs?: number;
  anomalyMs?: number;
  /** Seconds of arrivals events/s is averaged over. [10] */
  rateSeconds?: number;
  /** Wall clock, ms (tests). */
  now?: () => number;
}

/** Events in one window record: its metrics' largest `count` (an event carries one or more metrics). */
export function eventsOf(r: WindowRecord): number {
  let n = 0;
  for (const k in r.metrics) {
    const c = r.metrics[k]!.count;
    if (c > n) n = c;
  }
  return n;
}

const windowMsOf = (resolution: string): number => {
  const n = Number(resolution.slice(0, -1));
  return resolution.endsWith('s') && Number.isFinite(n) ? n * 1000 : 0;
};

export class FleetModel {
  readonly liveMs: number;
  readonly anomalyMs: number;
  private readonly rateSeconds: number;
  private readonly now: () => number;
  /** Device ids by slot, and slot by id. */
  readonly ids: string[] = [];
  private readonly slot = new Map<string, number>();
  private cap = 0;
  /** Wall-clock time of the latest record (arrival; or lastSeen from REST), ms; 0: never. */
  private seenAt = new Float64Array(0);
  /** windowEnd of the latest final record, ms. */
  private windowEnd = new Float64Array(0);
  /** windowStart of the latest anomalous score, ms; 0: none. */
  private anomalyAt = new Float64Array(0);
  /** The finest window size seen, ms: only records of it count towards events/s (coarser ones repeat the events). */
  private finest = new Uint32Array(0);
  /** Events of the latest finest record. */
  private lastEvents = new Uint32Array(0);
  /** Open alert episodes, by device slot: rule ids. */
  private readonly firing = new Map<number, Set<string>>();
  private readonly seenAlerts = new Set<string>();
  /** The window of the latest transition applied, by rule and device. */
  private readonly alertAt = new Map<string, { at: number; resolved: boolean }>();
  /** Events counted per arrival second (a ring). */
  private readonly buckets: Float64Array;
  private readonly bucketSec: Float64Array;
  /** Newest windowEnd of a final record, and of an anomaly score's window, seen live (pipeline delay). */
  newestWindowEnd = 0;
  newestScoreEnd = 0;
  /** Incremented by every change that may change a state (the grid re-derives states when it moved). */
  version = 0;
  /** Set when a device was added (the grid's layout changes). */
  added = 0;

  constructor(opts: FleetModelOptions = {}) {
    this.liveMs = opts.liveMs ?? 15_000;
    this.anomalyMs = opts.anomalyMs ?? 10 * 60_000;
    this.rateSeconds = opts.rateSeconds ?? 10;
    this.now = opts.now ?? Date.now;
    this.buckets = new Float64Array(this.rateSeconds + 2);
    this.bucketSec = new Float64Array(this.rateSeconds + 2).fill(-1);
    this.grow(1024);
  }

  get size(): number {
    return this.ids.length;
  }

  indexOf(deviceId: string): number | undefined {
    return this.slot.get(deviceId);
  }

  private grow(min: number): void {
    let cap = Math.max(this.cap, 1024);
    while (cap < min) cap *= 2;
    if (cap === this.cap) return;
    const f = (a: Float64Array) => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    const u = (a: Uint32Array) => {
      const b = new Uint32Array(cap);
      b.set(a);
      return b;
    };
    this.seenAt = f(this.seenAt);
    this.windowEnd = f(this.windowEnd);
    this.anomalyAt = f(this.anomalyAt);
    this.finest = u(this.finest);
    this.lastEvents = u(this.lastEvents);
    this.cap = cap;
  }

  /** The device's slot, added if new. */
  upsert(deviceId: string): number {
    let i = this.slot.get(deviceId);
    if (i === undefined) {
      i = this.ids.length;
      if (i >= this.cap) this.grow(i + 1);
      this.ids.push(deviceId);
      this.slot.set(deviceId, i);
      this.added++;
      this.version++;
    }
    return i;
  }

  /** A device from `GET /api/devices`: known, seen at its lastSeen (null: never written). */
  listed(deviceId: string, lastSeen: number | null): void {
    const i = this.upsert(deviceId);
    if (lastSeen !== null && lastSeen > this.seenAt[i]!) {
      this.seenAt[i] = lastSeen;
      this.version++;
    }
  }

  /** A live window record (the fleet stream carries final ones; a provisional one only marks the device seen). */
  record(r: WindowRecord): void {
    const i = this.upsert(r.deviceId);
    const now = this.now();
    if (now > this.seenAt[i]!) this.seenAt[i] = now;
    this.version++;
    if (r.final === false) return;
    if (r.windowEnd > this.windowEnd[i]!) this.windowEnd[i] = r.windowEnd;
    if (r.windowEnd > this.newestWindowEnd) this.newestWindowEnd = r.windowEnd;
    const size = windowMsOf(r.resolution) || r.windowEnd - r.windowStart;
    const f = this.finest[i]!;
    if (f === 0 || size < f) this.finest[i] = size;
    if (size !== this.finest[i]) return;
    const events = eventsOf(r);
    this.lastEvents[i] = events;
    const sec = Math.floor(now / 1000);
    const b = sec % this.buckets.length;
    if (this.bucketSec[b] !== sec) {
      this.bucketSec[b] = sec;
      this.buckets[b] = 0;
    }
    // A window of n seconds spreads its events over them: events per second of arrivals, whatever the resolution.
    this.buckets[b]! += events;
  }

  /** An anomalous score (non-anomalous ones change nothing). */
  anomaly(s: AnomalyScore, live = true): void {
    if (!s.anomalous) return;
    const i = this.upsert(s.deviceId);
    if (s.windowStart > this.anomalyAt[i]!) this.anomalyAt[i] = s.windowStart;
    if (live) {
      const end = s.windowStart + windowMsOf(s.resolution);
      if (end > this.newestScoreEnd) this.newestScoreEnd = end;
    }
    this.version++;
  }

  /**
   * An alert transition (socket.io `alert`, or `GET /api/alerts` when the page opens): firing opens the rule's episode
   * on the device, resolved closes it. With its `windowStart`, a transition older than the latest one applied for the
   * rule and device (a REST answer arriving after live events) changes nothing.
   */
  alert(t: Pick<AlertTransition, 'ruleId' | 'deviceId' | 'state'> & { id?: string; windowStart?: number }): void {
    if (t.id !== undefined) {
      if (this.seenAlerts.has(t.id)) return;
      this.seenAlerts.add(t.id);
      if (this.seenAlerts.size > 50_000) this.seenAlerts.clear();
    }
    if (t.windowStart !== undefined) {
      const key = `${t.ruleId}|${t.deviceId}`;
      const last = this.alertAt.get(key);
      if (last && (t.windowStart < last.at || (t.windowStart === last.at && last.resolved && t.state === 'firing')))
        return;
      this.alertAt.delete(key);
      this.alertAt.set(key, { at: t.windowStart, resolved: t.state === 'resolved' });
      // Bounded: the least recently changed go first.
      if (this.alertAt.size > 50_000) this.alertAt.delete(this.alertAt.keys().next().value as string);
    }
    const i = this.upsert(t.deviceId);
    let rules = this.firing.get(i);
    if (t.state === 'firing') {
      if (!rules) this.firing.set(i, (rules = new Set()));
      rules.add(t.ruleId);
    } else if (rules) {
      rules.delete(t.ruleId);
      if (rules.size === 0) this.firing.delete(i);
    }
    this.version++;
  }

  /** State code of slot `i` at `now`. */
  stateAt(i: number, now: number): StateCode {
    if (this.firing.has(i)) return StateCode.Alerting;
    const a = this.anomalyAt[i]!;
    if (a > 0 && now - a < this.anomalyMs) return StateCode.Anomalous;
    const s = this.seenAt[i]!;
    return s > 0 && now - s <= this.liveMs ? StateCode.Live : StateCode.Stale;
  }

  state(deviceId: string, now = this.now()): DeviceState | undefined {
    const i = this.slot.get(deviceId);
    return i === undefined ? undefined : stateName(this.stateAt(i, now));
  }

  /** What a tooltip says of a device. */
  detail(i: number): {
    deviceId: string;
    seenAt: number;
    windowEnd: number;
    anomalyAt: number;
    events: number;
    rules: number;
  } {
    return {
      deviceId: this.ids[i]!,
      seenAt: this.seenAt[i]!,
      windowEnd: this.windowEnd[i]!,
      anomalyAt: this.anomalyAt[i]!,
      events: this.lastEvents[i]!,
      rules: this.firing.get(i)?.size ?? 0,
    };
  }

  /** Headline figures over the whole fleet. */
  summary(now = this.now()): {
    devices: number;
    online: number;
    stale: number;
    anomalous: number;
    alerting: number;
    alertsFiring: number;
    eventsPerSec: number;
  } {
    let online = 0;
    let anomalous = 0;
    for (let i = 0; i < this.ids.length; i++) {
      const s = this.seenAt[i]!;
      if (s > 0 && now - s <= this.liveMs) online++;
      const a = this.anomalyAt[i]!;
      if (a > 0 && now - a < this.anomalyMs) anomalous++;
    }
    let alertsFiring = 0;
    for (const r of this.firing.values()) alertsFiring += r.size;
    return {
      devices: this.ids.length,
      online,
      stale: this.ids.length - online,
      anomalous,
      alerting: this.firing.size,
      alertsFiring,
      eventsPerSec: this.eventsPerSec(now),
    };
  }

  /** Events a second over the last `rateSeconds` complete seconds of arrivals. */
  eventsPerSec(now = this.now()): number {
    const sec = Math.floor(now / 1000);
    let sum = 0;
    for (let b = 0; b < this.buckets.length; b++) {
      const s = this.bucketSec[b]!;
      if (s < sec && s >= sec - this.rateSeconds) sum += this.buckets[b]!;
    }
    return sum / this.rateSeconds;
  }
}
