/*
 * Sustained load on one machine through the path users run: a realtime load process (fleet-load.ts) posts
 * readings to the ingestion service (its own process: HTTP -> Kafka, 202 once Kafka acknowledged), the
 * stream-processor (its own process) aggregates that topic into Cassandra and metrics.aggregates. Each run has its
 * own topic (FLEETPULSE_INGESTION_TOPIC / FLEETPULSE_PROCESSOR_TOPIC) and consumer group; it is done once with every
 * resolution stored and once with 1 s live only (FLEETPULSE_STORED_RESOLUTIONS=10s,60s).
 *
 * - scenario: 10,000 devices x 5 Hz (50,000 events/s, 4 metrics) for 60 s, then the same devices at 1 Hz for 60 s;
 *   per phase: events/s offered (readings due) and accepted (counted from the 202s), the processor's events/s (its
 *   /metrics), how many accepted events it has not read yet (ingestion's accepted counter minus the processor's
 *   events counter), its flushes, late events, and the CPU of every process; then the end delay: from the last
 *   answer to the load process until (a) the group's committed offsets reach the topic's end and (b) the windows
 *   holding the last accepted reading of 32 sampled devices are rows in Cassandra (1 s windows, or the smallest
 *   stored resolution when 1 s is live only).
 * - steps: 10,000, 20,000 then 50,000 events/s (10,000 devices at 1, 2, 5 Hz), each for 60 s and drained before the
 *   next. Each step has devices of its own: a device that pauses has its windows closed by idleness (5 s), so the
 *   same devices resuming within the minute would be late for their 60 s (and 10 s) windows. A step is sustained
 *   when >= 99% of what was offered was accepted and the end delay (committed at the end) stays under
 *   `keepUpDelayMs`. The floor of that delay is the idle close of the last windows: idle timeout 5 s + the
 *   processor's 1 s safety margin + a tick and a commit. Stepping stops at the first step not sustained.
 */
import { bucketOf, resolutionMs } from '@fleetpulse/contracts';
import { loadStackConfig } from '@fleetpulse/compose';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from 'cassandra-driver';
import { sleep } from '@fleetpulse/runtime';
import type { Admin, Kafka } from 'kafkajs';
import type { FleetLoadConfig, FleetLoadReport } from './fleet-load';
import {
  atEnd,
  connectStack,
  committedOffsets,
  coresBetween,
  cpuSnapshot,
  endOffsets,
  forgetGroup,
  lateInRecords,
  memoryMb,
  metricSum,
  runScript,
  stackPids,
  startIngestionProcess,
  startProcessor,
  waitReady,
  type ServiceProcess,
} from './services';

export interface BenchFleetOptions {
  /** [devices=10000] */
  devices?: number;
  /** [scenario=[{hz:5,seconds:60},{hz:1,seconds:60}]] - phases sent back to back. */
  scenario?: { hz: number; seconds: number }[];
  /** [steps=[10000,20000,50000]] - events/s of each step (the fleet's devices at rate/devices Hz). */
  steps?: number[];
  /** [stepSeconds=60] */
  stepSeconds?: number;
  /** [stored=['1s,10s,60s','10s,60s']] - FLEETPULSE_STORED_RESOLUTIONS of each run. */
  stored?: string[];
  /** [keepUpDelayMs=20000] - a step is sustained when its end delay (committed at the end) is under this. */
  keepUpDelayMs?: number;
  /** [drainTimeoutMs=600000] - longest wait for the end delay. */
  drainTimeoutMs?: number;
  /** [connections=64] - the load process's keep-alive connections. */
  connections?: number;
  /** [batch=500] - readings per request. */
  batch?: number;
}

export interface EndDelay {
  /** From the last answer to committed offsets at the topic's end; null: not within drainTimeoutMs. */
  committedMs: number | null;
  /** From the last answer to the sampled devices' last windows in Cassandra; null: not within drainTimeoutMs. */
  windowsMs: number | null;
  /** Resolution whose rows were looked for. */
  resolution: string;
  /** Sampled windows still missing when the wait ended. */
  missingWindows: number;
}

export interface FleetPhase {
  hz: number;
  seconds: number;
  /** Readings due per second (devices x hz). */
  offeredPerSec: number;
  /** Readings accepted (202) per second, over the phase or the time its answers took, whichever is longer. */
  acceptedPerSec: number;
  /** From the phase's start to its last answer. */
  sendSeconds: number;
  offered: number;
  accepted: number;
  failed: number;
  dropped: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Events the processor read per second over the phase (wall clock), from its /metrics. */
  processorEventsPerSec: number;
  /** Events accepted by ingestion and not yet read by the processor: at the phase's end, and the most seen. */
  lagAtEnd: number;
  lagMax: number;
  /** Events the processor reported late during the phase. */
  late: number;
  /** The processor's flushes (write + publish) during the phase, their mean duration, and those over 1 s. */
  flushes: number;
  flushMeanMs: number;
  slowFlushes: number;
  /**
   * Average cores used over the phase: processor, ingestion, kafka and cassandra (when this launcher started them),
   * and the load process over its whole run.
   */
  cores: Record<string, number>;
}

export interface FleetStep {
  eventsPerSec: number;
  phase: FleetPhase;
  endDelay: EndDelay;
  sustained: boolean;
}

export interface FleetRun {
  stored: string;
  scenario: { phases: FleetPhase[]; endDelay: EndDelay };
  steps: FleetStep[];
  /** The highest step sustained, events/s; null when none was. */
  highestSustained: number | null;
  peakRssMb: { processor: number; ingestion: number };
  /**
   * The processor's counters at the end; `inputLate`: late events the topic's records imply by themselves (its
   * aggregator over the records, processing time from receivedAt only: see lateInRecords).
   */
  processor: { late: number; inputLate: number; windowsPublished: number; rowsWritten: number };
  /** One sample a second (seconds since the run started). */
  series: SeriesSample[];
}

interface SeriesSample {
  t: number;
  /** Events ingestion accepted so far. */
  accepted: number;
  /** Events the processor read so far. */
  events: number;
  late: number;
  flushSeconds: number;
  flushes: number;
  /** Flushes that took longer than 1 s (write_seconds histogram). */
  slowFlushes: number;
  cores: Record<string, number>;
}

export interface BenchFleetResult {
  devices: number;
  keepUpDelayMs: number;
  runs: FleetRun[];
}

const SampleDevices = 32;

export async function benchFleet(opts: BenchFleetOptions = {}): Promise<BenchFleetResult> {
  const o = {
    devices: 10_000,
    scenario: [
      { hz: 5, seconds: 60 },
      { hz: 1, seconds: 60 },
    ],
    steps: [10_000, 20_000, 50_000],
    stepSeconds: 60,
    stored: ['1s,10s,60s', '10s,60s'],
    keepUpDelayMs: 20_000,
    drainTimeoutMs: 600_000,
    connections: 64,
    batch: 500,
    ...opts,
  };
  const { kafka, admin, client, close } = await connectStack('bench-fleet');
  const runs: FleetRun[] = [];
  try {
    for (const stored of o.stored) runs.push(await fleetRun(kafka, admin, client, stored, o));
  } finally {
    await close();
  }
  return { devices: o.devices, keepUpDelayMs: o.keepUpDelayMs, runs };
}

async function fleetRun(
  kafka: Kafka,
  admin: Admin,
  client: Client,
  stored: string,
  o: Required<BenchFleetOptions>,
): Promise<FleetRun> {
  const stamp = Date.now().toString(36);
  const topic = `bench.fleet.${stamp}`;
  const group = `bench-fleet-${stamp}`;
  const label = `fleet ${stored}`;
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: loadStackConfig().topicPartitions, replicationFactor: 1 }],
  });
  const dir = mkdtempSync(join(tmpdir(), 'fleetpulse-bench-fleet-'));
  let ingestion: ServiceProcess | undefined;
  let processor: ServiceProcess | undefined;
  const series: SeriesSample[] = [];
  let sampler: NodeJS.Timeout | undefined;
  try {
    ingestion = await startIngestionProcess('ingestion', { topic });
    processor = await startProcessor('processor', topic, group, { FLEETPULSE_STORED_RESOLUTIONS: stored });
    await Promise.all([waitReady(ingestion), waitReady(processor)]);
    const [proc, ing] = [processor, ingestion];
    const pids = { processor: proc.pid, ingestion: ing.pid, ...(await stackPids()) };
    const t0 = performance.now();
    let prev = cpuSnapshot(pids);
    let lastPrint = 0;
    // Once a second: both services' counters and everyone's CPU (the load process reports its own).
    sampler = setInterval(() => {
      void Promise.all([proc.metrics(), ing.metrics()]).then(
        ([m, i]) => {
          const now = cpuSnapshot(pids);
          const s: SeriesSample = {
            t: (now.at - t0) / 1000,
            accepted: metricSum(i, 'fleetpulse_ingestion_events_accepted_total'),
            events: metricSum(m, 'fleetpulse_processor_events_total'),
            late: metricSum(m, 'fleetpulse_processor_late_events_total'),
            flushSeconds: metricSum(m, 'fleetpulse_processor_write_seconds_sum'),
            flushes: metricSum(m, 'fleetpulse_processor_write_seconds_count'),
            slowFlushes:
              metricSum(m, 'fleetpulse_processor_write_seconds_count') -
              metricSum(m, 'fleetpulse_processor_write_seconds_bucket', { le: '1' }),
            cores: coresBetween(prev, now),
          };
          prev = now;
          series.push(s);
          if (s.t - lastPrint >= 5) {
            lastPrint = s.t;
            const before = series[Math.max(0, series.length - 6)]!;
            const rate = s.t > before.t ? (s.events - before.events) / (s.t - before.t) : 0;
            const cores = Object.entries(s.cores)
              .map(([k, v]) => `${k} ${v.toFixed(2)}`)
              .join(', ');
            process.stderr.write(
              `  [${label} ${s.t.toFixed(0)}s] processor ${Math.round(rate)} events/s, ${s.accepted - s.events} behind ingestion; cores: ${cores}\n`,
            );
          }
        },
        () => undefined,
      );
    }, 1000);

    let seqBase = 0;
    /** Runs the load process; `tag` names its devices (a step's devices are its own: see the header). */
    const load = async (tag: string, phases: { hz: number; seconds: number }[]) => {
      const config: FleetLoadConfig = {
        url: `http://127.0.0.1:${ing.port}/v1/telemetry`,
        token: 'dev-token',
        devices: o.devices,
        prefix: `fl${stamp}${tag}-`,
        phases,
        startAt: Date.now() + 500,
        seqBase,
        batch: o.batch,
        connections: o.connections,
        samples: Array.from({ length: SampleDevices }, (_, i) => Math.floor((i * o.devices) / SampleDevices)),
      };
      const file = join(dir, `load-${tag}.json`);
      writeFileSync(file, JSON.stringify(config));
      const report = JSON.parse(await runScript(join(__dirname, 'fleet-load.js'), [file], {}, true)) as FleetLoadReport;
      seqBase = report.seqNext;
      if (!proc.running()) throw new Error(`stream-processor exited (log: ${proc.logFile})`);
      const delay = await endDelay(admin, client, group, topic, config.prefix, stored, report, o.drainTimeoutMs);
      printDelay(label, delay);
      return { report, delay };
    };
    const phaseOf = (p: FleetLoadReport['phases'][number], loadCores: number): FleetPhase => {
      // The phase's wall-clock span on the sampler's clock (seconds since t0).
      const offset = Date.now() - performance.now();
      const from = (p.startedAt - offset - t0) / 1000;
      const inside = series.filter((s) => s.t >= from && s.t <= from + p.seconds + 0.5);
      const first = inside[0];
      const last = inside[inside.length - 1];
      const span = first && last && last.t > first.t ? last.t - first.t : NaN;
      const flushes = first && last ? last.flushes - first.flushes : 0;
      const sendSeconds = Math.max(p.seconds, (p.lastAnswerAt - p.startedAt) / 1000);
      return {
        hz: p.hz,
        seconds: p.seconds,
        offeredPerSec: p.offered / p.seconds,
        acceptedPerSec: p.accepted / sendSeconds,
        sendSeconds,
        offered: p.offered,
        accepted: p.accepted,
        failed: p.failed,
        dropped: p.dropped,
        latencyMs: p.latencyMs,
        processorEventsPerSec: first && last ? (last.events - first.events) / span : 0,
        lagAtEnd: last ? last.accepted - last.events : 0,
        lagMax: Math.max(0, ...inside.map((s) => s.accepted - s.events)),
        late: first && last ? last.late - first.late : 0,
        flushes,
        flushMeanMs: first && last && flushes > 0 ? ((last.flushSeconds - first.flushSeconds) / flushes) * 1000 : 0,
        slowFlushes: first && last ? last.slowFlushes - first.slowFlushes : 0,
        cores: { ...averageCores(inside.map((s) => s.cores)), load: loadCores },
      };
    };

    process.stderr.write(
      `${label}: ${o.scenario.map((p) => `${o.devices} devices x ${p.hz} Hz for ${p.seconds} s`).join(', then ')}\n`,
    );
    const scenario = await load('sc', o.scenario);
    const run: FleetRun = {
      stored,
      scenario: {
        phases: scenario.report.phases.map((p) => phaseOf(p, scenario.report.loadCores)),
        endDelay: scenario.delay,
      },
      steps: [],
      highestSustained: null,
      peakRssMb: { processor: 0, ingestion: 0 },
      processor: { late: 0, inputLate: 0, windowsPublished: 0, rowsWritten: 0 },
      series,
    };
    if (scenario.delay.committedMs === null)
      process.stderr.write(`  ${label}: the processor did not catch up; no steps\n`);
    else
      for (const rate of o.steps) {
        process.stderr.write(`${label}: step ${rate} events/s for ${o.stepSeconds} s (devices of their own)\n`);
        const step = await load(`s${rate}`, [{ hz: rate / o.devices, seconds: o.stepSeconds }]);
        const phase = phaseOf(step.report.phases[0]!, step.report.loadCores);
        const sustained =
          phase.accepted >= 0.99 * phase.offered &&
          step.delay.committedMs !== null &&
          step.delay.committedMs < o.keepUpDelayMs;
        run.steps.push({ eventsPerSec: rate, phase, endDelay: step.delay, sustained });
        if (!sustained) break;
        run.highestSustained = rate;
      }
    const m = await proc.metrics();
    run.peakRssMb = { processor: memoryMb(proc.pid).hwm, ingestion: memoryMb(ing.pid).hwm };
    clearInterval(sampler);
    process.stderr.write(`  ${label}: reading the topic back for the late events its records imply...\n`);
    run.processor = {
      inputLate: (await lateInRecords(kafka, topic)).late,
      late: metricSum(m, 'fleetpulse_processor_late_events_total'),
      windowsPublished: metricSum(m, 'fleetpulse_processor_windows_published_total'),
      rowsWritten: metricSum(m, 'fleetpulse_processor_rows_written_total'),
    };
    return run;
  } finally {
    clearInterval(sampler);
    await Promise.all([processor?.stop('SIGTERM', 30_000), ingestion?.stop('SIGTERM', 30_000)]);
    await forgetGroup(admin, client, group, topic);
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

function averageCores(samples: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) for (const [k, v] of Object.entries(s)) out[k] = (out[k] ?? 0) + v / samples.length;
  return out;
}

function printDelay(label: string, d: EndDelay): void {
  const ms = (x: number | null) => (x === null ? 'not within the timeout' : `${(x / 1000).toFixed(1)} s`);
  process.stderr.write(
    `  ${label}: end of sending -> committed at the end ${ms(d.committedMs)}, last ${d.resolution} windows in Cassandra ${ms(d.windowsMs)}\n`,
  );
}

/**
 * From the load's last answer until the group has committed the topic's end and the windows of the sampled devices'
 * last accepted readings are rows (polled every 250 ms).
 */
async function endDelay(
  admin: Admin,
  client: Client,
  group: string,
  topic: string,
  prefix: string,
  stored: string,
  report: FleetLoadReport,
  timeoutMs: number,
): Promise<EndDelay> {
  const ends = await endOffsets(admin, topic);
  const resolution = stored.split(',').sort((a, b) => resolutionMs(a) - resolutionMs(b))[0]!;
  const size = resolutionMs(resolution);
  let missing = Object.entries(report.lastAccepted).map(([d, ts]) => {
    const ws = Math.floor(ts / size) * size;
    return [`${prefix}${d}`, resolution, bucketOf(ws, size), ws];
  });
  let committedMs: number | null = null;
  let windowsMs: number | null = null;
  const deadline = report.endedAt + timeoutMs;
  while (Date.now() < deadline && (committedMs === null || windowsMs === null)) {
    if (committedMs === null && atEnd(await committedOffsets(admin, group, topic), ends))
      committedMs = Date.now() - report.endedAt;
    if (windowsMs === null) {
      const found = await Promise.all(
        missing.map((p) =>
          client
            .execute(
              'SELECT window_start FROM windows WHERE device_id = ? AND resolution = ? AND bucket = ? AND window_start = ?',
              p,
              { prepare: true },
            )
            .then((rs) => rs.rowLength > 0),
        ),
      );
      missing = missing.filter((_, i) => !found[i]);
      if (missing.length === 0) windowsMs = Date.now() - report.endedAt;
    }
    await sleep(250);
  }
  return { committedMs, windowsMs, resolution, missingWindows: missing.length };
}
