/**
 * The in-process fleet: deterministic, seeded generation of canonical events with the impairments of real devices
 * (dropouts, offline periods with backlog upload, out-of-order and late sends, retried batches) and injected
 * anomalies with their ground truth. No I/O here: the CLI and the benchmark both feed on `Fleet.batches()`.
 */
import type { TelemetryEvent } from '@fleetpulse/contracts';
import { mulberry32, normal, NormalMax, type Rng } from './prng';

export const MetricNames = ['temp', 'humidity', 'vib', 'volt'] as const;
export type MetricName = (typeof MetricNames)[number];

/** What the sensors can report at all (°C, %, g RMS, V). Every generated value, anomalous or not, is inside. */
export const PhysicalRange: Readonly<Record<MetricName, readonly [number, number]>> = {
  temp: [-40, 85],
  humidity: [0, 100],
  vib: [0, 16],
  volt: [0, 30],
};

export const AnomalyKinds = ['spike', 'stuck', 'drift', 'vibburst'] as const;
export type AnomalyKind = (typeof AnomalyKinds)[number];

/**
 * How far behind its device's newest sent reading an event must be to count as late (ms of event time): the
 * stream processor's default allowed lateness (shared/design.md, "Windows"). Closer than that it is out of order.
 */
export const LateThresholdMs = 2000;

/** A canonical event (shared/design.md) as the simulator makes it: `seq` is always set. */
export interface SimEvent extends TelemetryEvent {
  seq: number;
}

/**
 * One injected anomaly. Every reading of `deviceId` with `startTs <= ts <= endTs` (event time, epoch ms, both
 * inclusive: the first and last affected readings) carries it in `metrics`; readings outside the range are normal.
 */
export interface AnomalyTruth {
  id: number;
  deviceId: string;
  kind: AnomalyKind;
  metrics: MetricName[];
  startTs: number;
  endTs: number;
  /** Readings generated inside the range (a dropout may have lost some of them). */
  readings: number;
  /**
   * spike: the reported value; stuck: the frozen value; drift: the offset reached at `endTs` (it grows linearly
   * from 0 at `startTs`); vibburst: the factor over the device's normal upper bound.
   */
  magnitude: number;
}

/** A request's worth of events for one lane (requests in a lane go one after another, keeping device order). */
export interface EventBatch {
  lane: number;
  events: SimEvent[];
  /** Event time (epoch ms) at which a device would send this batch; realtime mode waits for it. */
  sendAt: number;
  /** A deliberate resend of the previous batch of this lane: the same array, the same `seq` values. */
  retry: boolean;
}

export interface FleetStats {
  /** Readings taken by the devices, including those lost to dropouts. */
  readings: number;
  /** Readings lost entirely (never sent; the device's `seq` skips them). */
  dropped: number;
  /** Readings sent with one metric missing. */
  metricDropped: number;
  /** Events put into batches, each reading once (retry resends are counted apart). */
  emitted: number;
  /** Emitted behind their device's newest emitted event by at most `LateThresholdMs`. */
  outOfOrder: number;
  /** Emitted more than `LateThresholdMs` behind their device's newest emitted event. */
  late: number;
  offlinePeriods: number;
  /** Events uploaded after an offline period (in order, with their original timestamps). */
  backlogEvents: number;
  anomalies: number;
  batches: number;
  retryBatches: number;
  retryEvents: number;
}

export interface FleetOptions {
  /** Number of devices, 1 to 100,000. */
  devices: number;
  /** PRNG seed (uint32). Same seed and options give the same events. [1] */
  seed?: number;
  /** Event time of the first reading, epoch ms. [Date.now()] */
  start?: number;
  /** Readings per second of event time across the fleet; each device reads every devices/rate s. [devices] */
  rate?: number;
  /** Most events per batch. [500] */
  batchSize?: number;
  /** Devices are split over this many lanes (device index mod lanes); a batch holds one lane's devices. [1] */
  lanes?: number;
  /** A batch is closed once it spans this much event time, so slow fleets still send promptly (ms). [Infinity] */
  maxBatchSpanMs?: number;
  /** Stop after this many readings have been emitted (retry resends not counted). [unbounded] */
  maxEvents?: number;
  /** Stop after this much event time (ms). [unbounded] */
  durationMs?: number;
  /** Device ids are this prefix and a zero-padded index. ['sim-'] */
  devicePrefix?: string;
  /** Per reading: held back and sent after the device's next reading. [0.005] */
  outOfOrderRate?: number;
  /** Per reading: held back 5-15 s of event time, then sent. [0.0005] */
  lateRate?: number;
  /** Per batch: the batch is sent a second time, unchanged. [0.001] */
  retryRate?: number;
  /** Per reading: the reading is lost. [0.001] */
  dropoutRate?: number;
  /** Per reading: one metric is missing from the event. [0.001] */
  metricDropoutRate?: number;
  /** Per reading: the device goes offline, buffers, and uploads the backlog when back. [0.00002] */
  offlineRate?: number;
  /** Mean offline period (ms); each lasts 0.5x to 1.5x this. [120000] */
  offlineDurationMs?: number;
  /** Per reading of a device with no anomaly running: an anomaly starts with this reading. [0.0005] */
  anomalyRate?: number;
  /** Kinds to inject, picked uniformly. [all] */
  anomalyKinds?: readonly AnomalyKind[];
}

export const FleetDefaults = {
  seed: 1,
  batchSize: 500,
  lanes: 1,
  maxBatchSpanMs: Infinity,
  devicePrefix: 'sim-',
  outOfOrderRate: 0.005,
  lateRate: 0.0005,
  retryRate: 0.001,
  dropoutRate: 0.001,
  metricDropoutRate: 0.001,
  offlineRate: 0.00002,
  offlineDurationMs: 120_000,
  anomalyRate: 0.0005,
  anomalyKinds: AnomalyKinds,
} as const;

const DAY_MS = 86_400_000;
const TWO_PI = 2 * Math.PI;
const M_TEMP = 0;
const M_HUM = 1;
const M_VIB = 2;
const M_VOLT = 3;
/** Rounding of reported values: 0.01 °C, 0.1 %, 0.001 g, 0.01 V. */
const Scale = [100, 10, 1000, 100] as const;
const PhysLo = MetricNames.map((m) => PhysicalRange[m][0]);
const PhysHi = MetricNames.map((m) => PhysicalRange[m][1]);

// Per-device parameters live in one Float64Array (100,000 devices would otherwise mean 800,000 small arrays).
// Per metric: base, daily amplitude, drift amplitude, drift phase, noise sigma, band low, band high, last value.
const P_BASE = 0;
const P_DAY = 1;
const P_DRIFT = 2;
const P_PHASE = 3;
const P_NOISE = 4;
const P_LO = 5;
const P_HI = 6;
const P_LAST = 7;
const PER_METRIC = 8;
const D_DAY_OFFSET = 4 * PER_METRIC;
const D_DRIFT_PERIOD = D_DAY_OFFSET + 1;
const STRIDE = D_DRIFT_PERIOD + 1;

const K_SPIKE = 0;
const K_STUCK = 1;
const K_DRIFT = 2;
const K_VIBBURST = 3;

interface ActiveAnomaly {
  truth: AnomalyTruth;
  kind: number;
  metric: number;
  /** Last event time the anomaly covers (spike: unused, it counts readings). */
  until: number;
  remaining: number;
  value: number;
  durationMs: number;
}

interface Held {
  event: SimEvent;
  releaseTs: number;
}

interface Device {
  index: number;
  id: string;
  lane: number;
  seq: number;
  hasLast: boolean;
  maxEmittedTs: number;
  backlog: SimEvent[] | null;
  offlineUntil: number;
  held: Held[];
  anomaly: ActiveAnomaly | null;
}

interface Lane {
  index: number;
  events: SimEvent[];
  firstTick: number;
  lastTick: number;
}

function round(v: number, m: number): number {
  const s = Scale[m]!;
  const r = Math.round(v * s) / s;
  return r < PhysLo[m]! ? PhysLo[m]! : r > PhysHi[m]! ? PhysHi[m]! : r;
}

export class Fleet {
  readonly deviceIds: readonly string[];
  readonly stats: FleetStats = {
    readings: 0,
    dropped: 0,
    metricDropped: 0,
    emitted: 0,
    outOfOrder: 0,
    late: 0,
    offlinePeriods: 0,
    backlogEvents: 0,
    anomalies: 0,
    batches: 0,
    retryBatches: 0,
    retryEvents: 0,
  };
  /** Anomalies that have ended, in order of ending. See `groundTruth()` for all of them. */
  readonly truth: AnomalyTruth[] = [];
  /** Event time of the first reading (epoch ms). */
  readonly start: number;
  /** Interval between two readings of one device (ms). */
  readonly intervalMs: number;

  private readonly o: Required<Omit<FleetOptions, 'start' | 'rate' | 'maxEvents' | 'durationMs'>>;
  private readonly maxEvents: number;
  private readonly endTs: number;
  private readonly rng: Rng;
  /** Batch-level decisions draw from their own stream, so batch size and lanes never change the events. */
  private readonly batchRng: Rng;
  private readonly p: Float64Array;
  private readonly devs: Device[];
  private readonly lanes: Lane[];
  private readonly ready: EventBatch[] = [];
  private readonly vals = new Float64Array(4);
  private readonly kinds: number[];
  private kept = 0;
  private nextAnomalyId = 1;
  private iterated = false;
  private stopRequested = false;

  constructor(options: FleetOptions) {
    const o = { ...FleetDefaults, ...stripUndefined(options), devices: options.devices };
    const errors = validateFleetOptions(options);
    if (errors.length > 0) throw new RangeError(`invalid fleet options: ${errors.join('; ')}`);
    this.o = o;
    this.start = options.start ?? Date.now();
    const rate = options.rate ?? options.devices;
    this.intervalMs = (1000 * options.devices) / rate;
    this.maxEvents = options.maxEvents ?? Infinity;
    this.endTs = options.durationMs === undefined ? Infinity : this.start + options.durationMs;
    this.rng = mulberry32(o.seed);
    this.batchRng = mulberry32((o.seed ^ 0x5bd1e995) >>> 0);
    this.kinds = o.anomalyKinds.map((k) => AnomalyKinds.indexOf(k));
    const n = options.devices;
    const width = String(n - 1).length;
    const laneCount = Math.min(o.lanes, n);
    this.lanes = Array.from({ length: laneCount }, (_, index) => ({ index, events: [], firstTick: 0, lastTick: 0 }));
    this.p = new Float64Array(n * STRIDE);
    this.devs = [];
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = `${o.devicePrefix}${String(i).padStart(width, '0')}`;
      ids.push(id);
      this.devs.push({
        index: i,
        id,
        lane: i % laneCount,
        seq: 0,
        hasLast: false,
        maxEmittedTs: -Infinity,
        backlog: null,
        offlineUntil: 0,
        held: [],
        anomaly: null,
      });
      this.initParams(i);
    }
    this.deviceIds = ids;
  }

  /**
   * The band a device's normal readings of `metric` never leave: daily cycle + drift + the largest possible noise
   * + rounding. Anything outside it is an injected anomaly.
   */
  normalBand(deviceId: string, metric: MetricName): [number, number] {
    const d = this.devs.find((x) => x.id === deviceId);
    if (!d) throw new RangeError(`unknown device ${deviceId}`);
    const b = d.index * STRIDE + MetricNames.indexOf(metric) * PER_METRIC;
    return [this.p[b + P_LO]!, this.p[b + P_HI]!];
  }

  /** Ends generation at the next reading: `batches()` then flushes what devices hold and finishes. */
  stop(): void {
    this.stopRequested = true;
  }

  /** Every anomaly so far, ended or still running (cut at its last generated reading), by start time. */
  groundTruth(): AnomalyTruth[] {
    const running = this.devs.flatMap((d) => (d.anomaly ? [{ ...d.anomaly.truth }] : []));
    return [...this.truth, ...running].sort((a, b) => a.startTs - b.startTs || a.id - b.id);
  }

  /**
   * The events, a batch at a time, in the order a fleet would send them. Ends at `maxEvents`/`durationMs` (or never),
   * after flushing what devices still hold: held-back readings and offline backlogs. Iterate once.
   */
  *batches(): Generator<EventBatch, void, undefined> {
    if (this.iterated) throw new Error('Fleet.batches() can be iterated only once; create another fleet');
    this.iterated = true;
    const n = this.devs.length;
    const interval = this.intervalMs;
    const ready = this.ready;
    for (let k = 0; ; k++) {
      for (let i = 0; i < n; i++) {
        const tick = this.start + (k + i / n) * interval;
        if (tick >= this.endTs || this.kept >= this.maxEvents || this.stopRequested) {
          this.flushAll(tick);
          yield* ready;
          ready.length = 0;
          return;
        }
        this.tick(this.devs[i]!, tick);
        if (ready.length > 0) {
          yield* ready;
          ready.length = 0;
        }
      }
    }
  }

  private initParams(i: number): void {
    const r = this.rng;
    const p = this.p;
    const o = i * STRIDE;
    p[o + D_DAY_OFFSET] = r() * DAY_MS;
    p[o + D_DRIFT_PERIOD] = (2 + 8 * r()) * DAY_MS;
    const set = (m: number, base: number, day: number, drift: number, noise: number): void => {
      const b = o + m * PER_METRIC;
      p[b + P_BASE] = base;
      p[b + P_DAY] = day;
      p[b + P_DRIFT] = drift;
      p[b + P_PHASE] = r() * TWO_PI;
      p[b + P_NOISE] = noise;
      const half = 0.5 / Scale[m]!;
      if (m === M_VIB) {
        p[b + P_LO] = base * (1 - drift) * (1 - noise * NormalMax) - half;
        p[b + P_HI] = base * (1 + day) * (1 + drift) * (1 + noise * NormalMax) + half;
      } else {
        const spread = day + drift + noise * NormalMax + half;
        p[b + P_LO] = base - spread;
        p[b + P_HI] = base + spread;
      }
    };
    set(M_TEMP, 15 + 13 * r(), 1 + 4 * r(), 1.5 * r(), 0.05 + 0.2 * r());
    set(M_HUM, 30 + 35 * r(), 3 + 9 * r(), 4 * r(), 0.3 + 0.7 * r());
    set(M_VIB, 0.02 + 0.38 * r(), 1.5 * r(), 0.3 * r(), 0.05 + 0.1 * r());
    set(M_VOLT, 11.9 + 0.9 * r(), 0.02 + 0.13 * r(), 0.2 * r(), 0.005 + 0.025 * r());
  }

  /** Normal readings: daily cycle (temp peaks when humidity dips), slow drift over days, noise. */
  private sample(d: Device, ts: number): void {
    const p = this.p;
    const r = this.rng;
    const v = this.vals;
    const o = d.index * STRIDE;
    const dayPhase = (TWO_PI * ((((ts + p[o + D_DAY_OFFSET]!) % DAY_MS) + DAY_MS) % DAY_MS)) / DAY_MS;
    const s = Math.sin(dayPhase);
    const c = Math.cos(dayPhase);
    const slow = (TWO_PI * ts) / p[o + D_DRIFT_PERIOD]!;
    let b = o;
    v[M_TEMP] =
      p[b]! + p[b + P_DAY]! * s + p[b + P_DRIFT]! * Math.sin(slow + p[b + P_PHASE]!) + p[b + P_NOISE]! * normal(r);
    b += PER_METRIC;
    v[M_HUM] =
      p[b]! - p[b + P_DAY]! * s + p[b + P_DRIFT]! * Math.sin(slow + p[b + P_PHASE]!) + p[b + P_NOISE]! * normal(r);
    b += PER_METRIC;
    // Vibration follows the working day (machines run when it is warm) and wears up or down slowly.
    v[M_VIB] =
      p[b]! *
      (1 + p[b + P_DAY]! * (c > 0 ? c : 0)) *
      (1 + p[b + P_DRIFT]! * Math.sin(slow + p[b + P_PHASE]!)) *
      (1 + p[b + P_NOISE]! * normal(r));
    b += PER_METRIC;
    v[M_VOLT] =
      p[b]! + p[b + P_DAY]! * s + p[b + P_DRIFT]! * Math.sin(slow + p[b + P_PHASE]!) + p[b + P_NOISE]! * normal(r);
  }

  private startAnomaly(d: Device, ts: number): ActiveAnomaly {
    const r = this.rng;
    const kind = this.kinds[(r() * this.kinds.length) | 0]!;
    const interval = this.intervalMs;
    let metric: number;
    let durationMs = 0;
    let remaining = 0;
    if (kind === K_VIBBURST) metric = M_VIB;
    else if (kind === K_DRIFT) metric = [M_TEMP, M_HUM, M_VOLT][(r() * 3) | 0]!;
    else metric = (r() * 4) | 0;
    const b = d.index * STRIDE + metric * PER_METRIC;
    const lo = this.p[b + P_LO]!;
    const hi = this.p[b + P_HI]!;
    const up = r() < 0.5;
    const u = r();
    let value = 0;
    switch (kind) {
      case K_SPIKE:
        remaining = 1 + ((r() * 3) | 0);
        if (metric === M_TEMP) value = up ? hi + 5 + (hi - lo) * (0.5 + u) : lo - 5 - (hi - lo) * (0.5 + u);
        else if (metric === M_HUM) value = 100 - hi >= lo ? hi + (100 - hi) * (0.4 + 0.5 * u) : lo * (0.6 - 0.5 * u);
        else if (metric === M_VIB) value = hi * (3 + 7 * u);
        else value = up ? hi + 0.5 + 1.5 * u : lo - 0.5 - 1.5 * u;
        value = round(value, metric);
        break;
      case K_STUCK:
        durationMs = Math.max(30_000 + 270_000 * u, 5 * interval);
        if (d.hasLast) value = this.p[b + P_LAST]!;
        else {
          this.sample(d, ts);
          value = round(this.vals[metric]!, metric);
        }
        break;
      case K_DRIFT: {
        durationMs = Math.max(60_000 + 540_000 * u, 10 * interval);
        // Even the last reading before the planned end (>= 90% of the ramp) ends up outside the band.
        const size = (1.25 + 0.5 * r()) * (hi - lo);
        const goUp = metric === M_HUM ? 100 - hi >= lo : up;
        value = goUp ? size : -size;
        break;
      }
      default:
        durationMs = Math.max(10_000 + 110_000 * u, 3 * interval);
        value = 2 + 4 * r();
    }
    const truth: AnomalyTruth = {
      id: this.nextAnomalyId++,
      deviceId: d.id,
      kind: AnomalyKinds[kind]!,
      metrics: [MetricNames[metric]!],
      startTs: ts,
      endTs: ts,
      readings: 0,
      magnitude: kind === K_DRIFT || kind === K_VIBBURST ? Math.round(value * 1000) / 1000 : value,
    };
    this.stats.anomalies++;
    return { truth, kind, metric, until: ts + durationMs, remaining, value, durationMs };
  }

  /** Overwrites `vals` for the anomaly's metric at this reading. */
  private applyAnomaly(a: ActiveAnomaly, d: Device, ts: number): void {
    const v = this.vals;
    const m = a.metric;
    a.truth.endTs = ts;
    a.truth.readings++;
    switch (a.kind) {
      case K_SPIKE:
      case K_STUCK:
        v[m] = a.value;
        break;
      case K_DRIFT:
        v[m] = v[m]! + (a.value * (ts - a.truth.startTs)) / a.durationMs;
        break;
      default: {
        const hi = this.p[d.index * STRIDE + m * PER_METRIC + P_HI]!;
        v[m] = hi * a.value * (1 + 0.25 * Math.abs(normal(this.rng)));
      }
    }
  }

  private tick(d: Device, tick: number): void {
    const st = this.stats;
    const o = this.o;
    const r = this.rng;
    const lane = this.lanes[d.lane]!;
    if (lane.events.length > 0 && tick - lane.firstTick >= o.maxBatchSpanMs) this.closeLane(lane);
    st.readings++;
    const seq = d.seq++;
    const interval = this.intervalMs;
    // Clocks wobble a little: up to 10% of the interval (at most 50 ms) late, so a device's ts still increase.
    const jitter = interval >= 10 ? r() * Math.min(0.1 * interval, 50) : 0;
    const ts = Math.round(tick + jitter);

    if (d.backlog !== null && ts >= d.offlineUntil) {
      const backlog = d.backlog;
      d.backlog = null;
      st.backlogEvents += backlog.length;
      for (const ev of backlog) this.emit(d, ev, tick);
    }

    // One draw picks at most one transport fate for the reading (rates are small, so they barely overlap).
    let u = r();
    let fate = 0; // 0 send, 1 drop, 2 go offline, 3 out of order, 4 late
    if (u < o.dropoutRate) fate = 1;
    else if (d.backlog === null) {
      u -= o.dropoutRate;
      if (u < o.offlineRate) fate = 2;
      else if ((u -= o.offlineRate) < o.outOfOrderRate) fate = 3;
      else if (u - o.outOfOrderRate < o.lateRate) fate = 4;
    }

    // A second draw decides the reading's content: an anomaly starts, or a metric is missing.
    let a = d.anomaly;
    if (a !== null && (a.kind === K_SPIKE ? a.remaining === 0 : ts > a.until)) {
      this.truth.push(a.truth);
      a = d.anomaly = null;
    }
    const u2 = r();
    let missing = -1;
    if (u2 < o.anomalyRate) {
      if (a === null && this.kinds.length > 0) a = d.anomaly = this.startAnomaly(d, ts);
    } else if (u2 < o.anomalyRate + o.metricDropoutRate) missing = (r() * 4) | 0;

    if (fate === 1) {
      st.dropped++;
      if (a !== null) {
        a.truth.endTs = ts;
        a.truth.readings++;
        if (a.kind === K_SPIKE && --a.remaining === 0) this.endAnomaly(d);
      }
      this.releaseHeld(d, ts, tick);
      return;
    }

    this.sample(d, ts);
    if (a !== null) {
      this.applyAnomaly(a, d, ts);
      if (a.kind === K_SPIKE && --a.remaining === 0) this.endAnomaly(d);
    }
    const v = this.vals;
    const temp = round(v[M_TEMP]!, M_TEMP);
    const humidity = round(v[M_HUM]!, M_HUM);
    const vib = round(v[M_VIB]!, M_VIB);
    const volt = round(v[M_VOLT]!, M_VOLT);
    const pl = d.index * STRIDE + P_LAST;
    this.p[pl] = temp;
    this.p[pl + PER_METRIC] = humidity;
    this.p[pl + 2 * PER_METRIC] = vib;
    this.p[pl + 3 * PER_METRIC] = volt;
    d.hasLast = true;

    let metrics: Record<string, number>;
    if (missing < 0) metrics = { temp, humidity, vib, volt };
    else {
      st.metricDropped++;
      metrics = {};
      if (missing !== M_TEMP) metrics.temp = temp;
      if (missing !== M_HUM) metrics.humidity = humidity;
      if (missing !== M_VIB) metrics.vib = vib;
      if (missing !== M_VOLT) metrics.volt = volt;
    }
    const event: SimEvent = { deviceId: d.id, ts, metrics, seq };
    this.kept++;

    if (d.backlog !== null) {
      d.backlog.push(event);
      return;
    }
    switch (fate) {
      case 2:
        // What the device held back goes out before the link drops; from now on it buffers.
        this.releaseHeld(d, Infinity, tick);
        st.offlinePeriods++;
        d.backlog = [event];
        d.offlineUntil = ts + o.offlineDurationMs * (0.5 + r());
        return;
      case 3:
        d.held.push({ event, releaseTs: ts + 1 });
        break;
      case 4:
        d.held.push({ event, releaseTs: ts + 5000 + 10_000 * r() });
        break;
      default:
        this.emit(d, event, tick);
    }
    this.releaseHeld(d, ts, tick);
  }

  private endAnomaly(d: Device): void {
    if (d.anomaly) this.truth.push(d.anomaly.truth);
    d.anomaly = null;
  }

  private releaseHeld(d: Device, upTo: number, tick: number): void {
    const held = d.held;
    if (held.length === 0) return;
    let keep = 0;
    for (const h of held) {
      if (h.releaseTs <= upTo) this.emit(d, h.event, tick);
      else held[keep++] = h;
    }
    held.length = keep;
  }

  private emit(d: Device, ev: SimEvent, tick: number): void {
    const st = this.stats;
    if (ev.ts < d.maxEmittedTs) {
      if (d.maxEmittedTs - ev.ts > LateThresholdMs) st.late++;
      else st.outOfOrder++;
    } else d.maxEmittedTs = ev.ts;
    st.emitted++;
    const lane = this.lanes[d.lane]!;
    if (lane.events.length === 0) lane.firstTick = tick;
    lane.lastTick = tick;
    lane.events.push(ev);
    if (lane.events.length >= this.o.batchSize) this.closeLane(lane);
  }

  private closeLane(lane: Lane): void {
    const batch: EventBatch = { lane: lane.index, events: lane.events, sendAt: lane.lastTick, retry: false };
    lane.events = [];
    this.ready.push(batch);
    this.stats.batches++;
    if (this.o.retryRate > 0 && this.batchRng() < this.o.retryRate) {
      this.ready.push({ ...batch, retry: true });
      this.stats.retryBatches++;
      this.stats.retryEvents += batch.events.length;
    }
  }

  /** End of the run: devices send what they held back and what they buffered offline, in order. */
  private flushAll(tick: number): void {
    for (const d of this.devs) {
      this.releaseHeld(d, Infinity, tick);
      if (d.backlog !== null) {
        const backlog = d.backlog;
        d.backlog = null;
        this.stats.backlogEvents += backlog.length;
        for (const ev of backlog) this.emit(d, ev, tick);
      }
    }
    for (const lane of this.lanes) if (lane.events.length > 0) this.closeLane(lane);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkRate(errors: string[], name: string, v: number | undefined): void {
  if (v !== undefined && !(v >= 0 && v <= 1)) errors.push(`${name} must be between 0 and 1, got ${v}`);
}

/** Every problem with the options, as messages; empty when they are usable. */
export function validateFleetOptions(o: FleetOptions): string[] {
  const errors: string[] = [];
  if (!Number.isInteger(o.devices) || o.devices < 1 || o.devices > 100_000)
    errors.push(`devices must be an integer from 1 to 100000, got ${o.devices}`);
  const rate = o.rate ?? o.devices;
  if (!(rate > 0) || !Number.isFinite(rate)) errors.push(`rate must be a positive number of events/s, got ${rate}`);
  else if (rate / o.devices > 1000)
    errors.push(`rate ${rate}/s over ${o.devices} devices is over 1000 readings/s per device (1 per ms)`);
  if (o.seed !== undefined && !(Number.isInteger(o.seed) && o.seed >= 0 && o.seed <= 0xffffffff))
    errors.push(`seed must be an integer from 0 to 4294967295, got ${o.seed}`);
  if (o.start !== undefined && !Number.isFinite(o.start)) errors.push(`start must be epoch ms, got ${o.start}`);
  if (o.batchSize !== undefined && !(Number.isInteger(o.batchSize) && o.batchSize >= 1))
    errors.push(`batchSize must be a positive integer, got ${o.batchSize}`);
  if (o.lanes !== undefined && !(Number.isInteger(o.lanes) && o.lanes >= 1))
    errors.push(`lanes must be a positive integer, got ${o.lanes}`);
  if (o.maxBatchSpanMs !== undefined && !(o.maxBatchSpanMs > 0))
    errors.push(`maxBatchSpanMs must be positive, got ${o.maxBatchSpanMs}`);
  if (o.maxEvents !== undefined && !(Number.isInteger(o.maxEvents) && o.maxEvents >= 0))
    errors.push(`maxEvents must be a non-negative integer, got ${o.maxEvents}`);
  if (o.durationMs !== undefined && !(o.durationMs >= 0)) errors.push(`durationMs must be >= 0, got ${o.durationMs}`);
  if (o.devicePrefix !== undefined && !/^[A-Za-z0-9._:-]{0,100}$/.test(o.devicePrefix))
    errors.push(`devicePrefix must be up to 100 chars of [A-Za-z0-9._:-], got "${o.devicePrefix}"`);
  checkRate(errors, 'outOfOrderRate', o.outOfOrderRate);
  checkRate(errors, 'lateRate', o.lateRate);
  checkRate(errors, 'retryRate', o.retryRate);
  checkRate(errors, 'dropoutRate', o.dropoutRate);
  checkRate(errors, 'metricDropoutRate', o.metricDropoutRate);
  checkRate(errors, 'offlineRate', o.offlineRate);
  checkRate(errors, 'anomalyRate', o.anomalyRate);
  const sum =
    (o.dropoutRate ?? FleetDefaults.dropoutRate) +
    (o.offlineRate ?? FleetDefaults.offlineRate) +
    (o.outOfOrderRate ?? FleetDefaults.outOfOrderRate) +
    (o.lateRate ?? FleetDefaults.lateRate);
  if (sum > 1) errors.push(`dropout + offline + out-of-order + late rates add up to ${sum}, over 1`);
  if (o.offlineDurationMs !== undefined && !(o.offlineDurationMs > 0))
    errors.push(`offlineDurationMs must be positive, got ${o.offlineDurationMs}`);
  for (const k of o.anomalyKinds ?? [])
    if (!AnomalyKinds.includes(k)) errors.push(`unknown anomaly kind "${k}" (known: ${AnomalyKinds.join(', ')})`);
  return errors;
}

/** A fleet of simulated devices; iterate `fleet.batches()` for the events. */
export function createFleet(options: FleetOptions): Fleet {
  return new Fleet(options);
}
