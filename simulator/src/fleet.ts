/**
 * The in-process fleet: deterministic, seeded generation of canonical events with the impairments of real devices
 * (dropouts, offline periods with backlog upload, out-of-order and late sends, retried batches) and injected
 * anomalies with their ground truth. No I/O here: the CLI and the benchmark both feed on `Fleet.batches()`.
 *
 * This file is the schedule: which device reads when, what happens to each reading on its way (the transport's
 * fates), and how readings become batches. What a reading holds comes from device-model.ts and anomalies.ts; the
 * vocabulary and the options are in fleet-types.ts and fleet-options.ts, re-exported here as the fleet's face.
 */
import { mulberry32, type Rng } from '@fleetpulse/runtime';
import { AnomalyInjector, anomalyOver, coverReading, type ActiveAnomaly } from './anomalies';
import { DeviceModels, M_HUM, M_TEMP, M_VIB, M_VOLT, roundReading } from './device-model';
import { resolveFleetOptions, type FleetOptions, type ResolvedFleetOptions } from './fleet-options';
import {
  LateThresholdMs,
  MetricNames,
  type AnomalyTruth,
  type EventBatch,
  type FleetStats,
  type MetricName,
  type SimEvent,
} from './fleet-types';

export * from './fleet-types';
export { FleetDefaults, validateFleetOptions, type FleetOptions } from './fleet-options';

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

  private readonly o: ResolvedFleetOptions;
  private readonly maxEvents: number;
  private readonly endTs: number;
  private readonly rng: Rng;
  /** Batch-level decisions draw from their own stream, so batch size and lanes never change the events. */
  private readonly batchRng: Rng;
  private readonly models: DeviceModels;
  private readonly anomalies: AnomalyInjector;
  private readonly devs: Device[];
  private readonly lanes: Lane[];
  private readonly ready: EventBatch[] = [];
  private kept = 0;
  private iterated = false;
  private stopRequested = false;

  constructor(options: FleetOptions) {
    const o = (this.o = resolveFleetOptions(options));
    this.start = options.start ?? Date.now();
    const rate = options.rate ?? options.devices;
    this.intervalMs = (1000 * options.devices) / rate;
    this.maxEvents = options.maxEvents ?? Infinity;
    this.endTs = options.durationMs === undefined ? Infinity : this.start + options.durationMs;
    this.rng = mulberry32(o.seed);
    this.batchRng = mulberry32((o.seed ^ 0x5bd1e995) >>> 0);
    const n = options.devices;
    const width = String(n - 1).length;
    const laneCount = Math.min(o.lanes, n);
    this.lanes = Array.from({ length: laneCount }, (_, index) => ({ index, events: [], firstTick: 0, lastTick: 0 }));
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
    }
    this.deviceIds = ids;
    // The PRNG's first draws: every device's parameters, device 0 first.
    this.models = new DeviceModels(n, this.rng);
    this.anomalies = new AnomalyInjector(this.rng, o.anomalyKinds, this.intervalMs, this.models);
  }

  /**
   * The band a device's normal readings of `metric` never leave: daily cycle + drift + the largest possible noise
   * + rounding. Anything outside it is an injected anomaly.
   */
  normalBand(deviceId: string, metric: MetricName): [number, number] {
    const d = this.devs.find((x) => x.id === deviceId);
    if (!d) throw new RangeError(`unknown device ${deviceId}`);
    const m = MetricNames.indexOf(metric);
    return [this.models.low(d.index, m), this.models.high(d.index, m)];
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
    if (a !== null && anomalyOver(a, ts)) {
      this.truth.push(a.truth);
      a = d.anomaly = null;
    }
    const u2 = r();
    let missing = -1;
    if (u2 < o.anomalyRate) {
      if (a === null && this.anomalies.enabled) {
        a = d.anomaly = this.anomalies.start(d, ts);
        st.anomalies++;
      }
    } else if (u2 < o.anomalyRate + o.metricDropoutRate) missing = (r() * 4) | 0;

    if (fate === 1) {
      st.dropped++;
      if (a !== null && coverReading(a, ts)) this.endAnomaly(d);
      this.releaseHeld(d, ts, tick);
      return;
    }

    this.models.sample(d.index, ts);
    if (a !== null && this.anomalies.apply(a, d.index, ts)) this.endAnomaly(d);
    const v = this.models.values;
    const temp = roundReading(v[M_TEMP]!, M_TEMP);
    const humidity = roundReading(v[M_HUM]!, M_HUM);
    const vib = roundReading(v[M_VIB]!, M_VIB);
    const volt = roundReading(v[M_VOLT]!, M_VOLT);
    this.models.setLast(d.index, temp, humidity, vib, volt);
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

/** A fleet of simulated devices; iterate `fleet.batches()` for the events. */
export function createFleet(options: FleetOptions): Fleet {
  return new Fleet(options);
}
