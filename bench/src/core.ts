/*
 * The aggregation core alone: events/s on one thread and bytes per open window. Events are prepared (and passed
 * through JSON, as the consumer would get them) outside the timed region. Each chunk of events is fed to two
 * aggregators in turn, timed separately:
 *   - lazy: ingest + drain, windows not read (or built as WindowRecord objects with `materializeRecords`);
 *   - serialised: ingest + drain + every window's record as JSON text (`ClosedWindow.recordJson`, one record per
 *     device, resolution and window holding every metric), what the service publishes on metrics.aggregates.
 * Wall time and this process's CPU time are both reported: on a shared machine CPU time is the steadier figure.
 * The goal for the core alone is 2,000,000 events/s (`goalEventsPerSec`).
 */
import { performance } from 'node:perf_hooks';
import type { TelemetryEvent } from '@fleetpulse/contracts';
// The core's own entry point (the package's index re-exports it, along with the service's Kafka and Cassandra code).
import { WindowAggregator } from '@fleetpulse/stream-processor/core';
import { mulberry32 } from '@fleetpulse/runtime';

/** The goal for the core alone, events/s on one thread. */
export const CoreGoalEventsPerSec = 2_000_000;

export interface BenchCoreOptions {
  /** [devices=10000] */
  devices?: number;
  /** [metrics=4] - metrics per event. */
  metrics?: number;
  /** [seconds=600] - event-time seconds to feed; each device reports once per second. */
  seconds?: number;
  /** [partitions=8] - devices spread round-robin. */
  partitions?: number;
  /** [resolutions=['1s','10s','60s']] */
  resolutions?: string[];
  /** [outOfOrder=0.02] - share of events delayed by up to 1.5 s (within the 2 s lateness). */
  outOfOrder?: number;
  /** [late=0.001] - share of events 5 s late (late for 1s). */
  late?: number;
  /** [recordsPerDrain=5000] - records between drains, like a consumer batch. */
  recordsPerDrain?: number;
  /** [measureMemory=true] - also measure bytes per open window (precise with node --expose-gc). */
  measureMemory?: boolean;
  /** [materializeRecords=false] - in the lazy pass, also build every WindowRecord object (`ClosedWindow.record()`). */
  materializeRecords?: boolean;
  /** [serializeRecords=true] - also run the serialised pass (every window record's JSON text). */
  serializeRecords?: boolean;
  /** [seed=1] */
  seed?: number;
}

export interface BenchPassResult {
  seconds: number;
  cpuSeconds: number;
  eventsPerSec: number;
  eventsPerCpuSec: number;
  /** Windows closed per second (one record each). */
  windowsPerSec: number;
}

export interface BenchCoreResult {
  events: number;
  /** Lazy pass (windows not read, unless materializeRecords). */
  seconds: number;
  cpuSeconds: number;
  eventsPerSec: number;
  eventsPerCpuSec: number;
  windowsClosed: number;
  windowsPerSec: number;
  /**
   * Serialised pass: every window record's JSON text built, and the provisional snapshots the service sends
   * (metrics.live: each device whose finest window changed since the last drain, as JSON).
   */
  serialized?: BenchPassResult & { jsonBytesPerRecord: number; snapshotsPerSec: number };
  /** The goal for the core alone (events/s) and whether each pass reached it (wall time). */
  goal: { eventsPerSec: number; lazyMet: boolean; serializedMet: boolean | null };
  late: number;
  retries: number;
  openWindowsAtEnd: number;
  memory?: {
    exactGc: boolean;
    /** Heap + array buffers added per open window (all its metrics), devices' own state excluded. */
    bytesPerOpenWindow: number;
    /** Per device, with its first three windows. */
    bytesPerDeviceWithWindows: number;
    openWindows: number;
  };
}

const T0 = 1_763_803_200_000;
const ChunkSeconds = 25;

interface Rec {
  partition: number;
  offset: string;
  value: TelemetryEvent;
}

/** `seconds` of event time from every device, in partition order (receivedAt order), passed through JSON. */
function makeChunk(
  o: Required<BenchCoreOptions>,
  fromSecond: number,
  seconds: number,
  rand: () => number,
  offsets: number[],
): Rec[] {
  const names = Array.from({ length: o.metrics }, (_, i) => ['temp', 'humidity', 'vib', 'volt'][i] ?? `m${i}`);
  const events: { recv: number; e: TelemetryEvent }[] = [];
  for (let s = fromSecond; s < fromSecond + seconds; s++) {
    for (let d = 0; d < o.devices; d++) {
      const phase = (d * 7919) % 1000;
      const nominal = T0 + s * 1000 + phase;
      let ts = nominal + Math.floor(rand() * 20);
      const r = rand();
      if (r < o.late) ts -= 5000;
      else if (r < o.late + o.outOfOrder) ts -= Math.floor(rand() * 1500);
      const metrics: Record<string, number> = {};
      for (const n of names) metrics[n] = Math.round((20 + rand() * 10) * 100) / 100;
      events.push({
        recv: nominal + 30,
        e: { deviceId: `sensor-${d}`, ts, metrics, seq: s, receivedAt: nominal + 30 },
      });
    }
  }
  events.sort((a, b) => a.recv - b.recv);
  const json = JSON.stringify(events.map((x) => x.e));
  const parsed = JSON.parse(json) as TelemetryEvent[];
  const out: Rec[] = new Array<Rec>(parsed.length);
  for (let i = 0; i < parsed.length; i++) {
    const e = parsed[i]!;
    const p = Number(e.deviceId.slice(7)) % o.partitions;
    out[i] = { partition: p, offset: String(offsets[p]!++), value: e };
  }
  return out;
}

/** Adds fn's wall and CPU (user + system of this process) milliseconds to `into`. */
function timed(into: { wall: number; cpu: number }, fn: () => void): void {
  const cpu = process.cpuUsage();
  const t = performance.now();
  fn();
  into.wall += performance.now() - t;
  const u = process.cpuUsage(cpu);
  into.cpu += (u.user + u.system) / 1000;
}

function gc(): boolean {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
  return g !== undefined;
}

function used(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function measureMemory(o: Required<BenchCoreOptions>): NonNullable<BenchCoreResult['memory']> {
  // A long lateness keeps windows open, so the 1 s windows pile up and the marginal cost per window shows.
  const agg = new WindowAggregator({
    resolutions: o.resolutions,
    allowedLatenessMs: 3_600_000,
    idleTimeoutMs: 3_600_000,
  });
  for (let p = 0; p < o.partitions; p++) agg.assignPartition(p);
  const rand = mulberry32(o.seed + 1);
  const offsets = new Array<number>(o.partitions).fill(0);
  const exactGc = gc();
  const base = used();
  const first = makeChunk({ ...o, outOfOrder: 0, late: 0 }, 0, 1, rand, offsets);
  for (const r of first) agg.ingest(r.partition, r.offset, r.value);
  first.length = 0;
  gc();
  const m1 = used();
  const open1 = agg.stats().openWindows;
  for (let s = 1; s < 31; s += 5) {
    const chunk = makeChunk({ ...o, outOfOrder: 0, late: 0 }, s, 5, rand, offsets);
    for (const r of chunk) agg.ingest(r.partition, r.offset, r.value);
  }
  gc();
  const m2 = used();
  const open2 = agg.stats().openWindows;
  return {
    exactGc,
    bytesPerOpenWindow: Math.round((m2 - m1) / (open2 - open1)),
    bytesPerDeviceWithWindows: Math.round((m1 - base) / o.devices),
    openWindows: open2,
  };
}

export async function benchCore(opts: BenchCoreOptions = {}): Promise<BenchCoreResult> {
  const o: Required<BenchCoreOptions> = {
    devices: 10_000,
    metrics: 4,
    seconds: 600,
    partitions: 8,
    resolutions: ['1s', '10s', '60s'],
    outOfOrder: 0.02,
    late: 0.001,
    recordsPerDrain: 5000,
    measureMemory: true,
    materializeRecords: false,
    serializeRecords: true,
    seed: 1,
    ...opts,
  };
  const lazy = new WindowAggregator({ resolutions: o.resolutions });
  // The service's aggregator lists devices for provisional snapshots (FLEETPULSE_PROCESSOR_LIVE_INTERVAL_MS > 0).
  const ser = new WindowAggregator({ resolutions: o.resolutions, liveSnapshots: true });
  for (let p = 0; p < o.partitions; p++) {
    lazy.assignPartition(p);
    ser.assignPartition(p);
  }
  const rand = mulberry32(o.seed);
  const offsets = new Array<number>(o.partitions).fill(0);
  const timeL = { wall: 0, cpu: 0 };
  const timeS = { wall: 0, cpu: 0 };
  let events = 0;
  let jsonBytes = 0;
  let jsonRecords = 0;
  let snapshots = 0;
  const every = o.recordsPerDrain;
  for (let s = 0; s < o.seconds; s += ChunkSeconds) {
    const chunk = makeChunk(o, s, Math.min(ChunkSeconds, o.seconds - s), rand, offsets);
    // Let the event loop breathe between chunks (the caller may be reporting progress).
    await new Promise<void>((resolve) => setImmediate(resolve));
    (globalThis as { gc?: () => void }).gc?.();
    timed(timeL, () => {
      let metrics = 0;
      for (let i = 0; i < chunk.length; i++) {
        const r = chunk[i]!;
        lazy.ingest(r.partition, r.offset, r.value);
        if (i % every === every - 1 || i === chunk.length - 1) {
          const out = lazy.drain();
          if (o.materializeRecords) for (const w of out.windows) metrics += Object.keys(w.record().metrics).length;
        }
      }
      if (metrics < 0) throw new Error('unreachable'); // keeps `metrics` observable
    });
    if (o.serializeRecords) {
      (globalThis as { gc?: () => void }).gc?.();
      timed(timeS, () => {
        for (let i = 0; i < chunk.length; i++) {
          const r = chunk[i]!;
          ser.ingest(r.partition, r.offset, r.value);
          if (i % every === every - 1 || i === chunk.length - 1) {
            for (const w of ser.drain().windows) {
              // Length only: what the producer hands to Kafka, without keeping it.
              jsonBytes += w.recordJson().length;
              jsonRecords++;
            }
            // One snapshot round per drain (the service's rounds come by the clock: about as many per event at 1 Hz).
            for (const w of ser.takeLive()) {
              jsonBytes += w.recordJson().length;
              snapshots++;
            }
          }
        }
      });
    }
    events += chunk.length;
  }
  const st = lazy.stats();
  const result: BenchCoreResult = {
    events,
    seconds: timeL.wall / 1000,
    cpuSeconds: timeL.cpu / 1000,
    eventsPerSec: Math.round(events / (timeL.wall / 1000)),
    eventsPerCpuSec: Math.round(events / (timeL.cpu / 1000)),
    windowsClosed: st.windowsClosed,
    windowsPerSec: Math.round(st.windowsClosed / (timeL.wall / 1000)),
    goal: { eventsPerSec: CoreGoalEventsPerSec, lazyMet: false, serializedMet: null },
    late: st.late,
    retries: st.retries,
    openWindowsAtEnd: st.openWindows,
  };
  result.goal.lazyMet = result.eventsPerSec >= CoreGoalEventsPerSec;
  if (o.serializeRecords) {
    result.serialized = {
      seconds: timeS.wall / 1000,
      cpuSeconds: timeS.cpu / 1000,
      eventsPerSec: Math.round(events / (timeS.wall / 1000)),
      eventsPerCpuSec: Math.round(events / (timeS.cpu / 1000)),
      windowsPerSec: Math.round(jsonRecords / (timeS.wall / 1000)),
      jsonBytesPerRecord: Math.round(jsonBytes / Math.max(1, jsonRecords + snapshots)),
      snapshotsPerSec: Math.round(snapshots / (timeS.wall / 1000)),
    };
    result.goal.serializedMet = result.serialized.eventsPerSec >= CoreGoalEventsPerSec;
  }
  if (o.measureMemory) result.memory = measureMemory(o);
  return result;
}
