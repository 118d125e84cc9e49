/*
 * Kafka -> stream-processor -> Cassandra end to end, next to Cassandra's insert ceilings for the same window rows.
 *
 * One topic is pre-filled with `events` of `devices` devices (each reporting once per second of event time, 4 metrics,
 * `eventsPerRecord` events per record, device d in partition d % partitions; processor-input.ts). The processor runs
 * on it as users run it, once per stored-resolution setting (each in its own consumer group): from the spawn until
 * its committed offsets reach the end, i.e. every window written to Cassandra, published to metrics.aggregates and
 * committed. Then `npm run replay` of the same topic, and the ceilings: the processor's own rows for the same events,
 * written through its AggregateStore with three batchings (processor-ceilings.ts).
 */
import { cassandraContactPoint, kafkaBrokers, loadStackConfig } from '@fleetpulse/compose';
import { sleep } from '@fleetpulse/runtime';
import { join } from 'node:path';
import type { Admin } from 'kafkajs';
import { closeWindows, insertCeilings, rowsOf, type InsertCeiling } from './processor-ceilings';
import { fill, type Layout } from './processor-input';
import {
  atEnd,
  BenchTtl,
  connectStack,
  committedOffsets,
  cpuSeconds,
  endOffsets,
  forgetGroup,
  memoryMb,
  metricBy,
  metricSum,
  repo,
  runScript,
  startProcessor,
  type ServiceProcess,
} from './services';

export type { InsertCeiling } from './processor-ceilings';

export interface BenchProcessorOptions {
  /** [devices=10000] */
  devices?: number;
  /** [events=2000000] - total events (each device reports once per second of event time, 4 metrics). */
  events?: number;
  /**
   * [eventsPerRecord=4] - a device's events per Kafka record (ingestion groups a request's events per device), i.e.
   * seconds between a device's records. Kept under the idle timeout (5 s): at 5, a device's next record arrives
   * after the partition's processing time has made it idle, its 10 s and 60 s windows close early and most of its
   * events are late for them (135,000 of 200,000 in a 200,000-event run).
   */
  eventsPerRecord?: number;
  /** [stored=['1s,10s,60s','10s,60s']] - FLEETPULSE_STORED_RESOLUTIONS of each processor run (and its ceilings). */
  stored?: string[];
  /** [ceilingRows=400000] - rows each ceiling writes: the first of the processor's rows, in its order. */
  ceilingRows?: number;
  /** [ceilingConcurrency=512] - requests in flight for one INSERT per row. */
  ceilingConcurrency?: number;
  /** [batchConcurrency] - requests in flight for batches [the processor's FLEETPULSE_CASSANDRA_WRITE_CONCURRENCY]. */
  batchConcurrency?: number;
  /** [fetchBytes=2097152] - the processor's FLEETPULSE_PROCESSOR_FETCH_BYTES: how much one in-process drain reads. */
  fetchBytes?: number;
  /** [replay=true] - also time `npm run replay` over the same topic. */
  replay?: boolean;
  /** [timeoutMs=1800000] - longest a processor run may take. */
  timeoutMs?: number;
}

export interface ProcessorRun {
  /** FLEETPULSE_STORED_RESOLUTIONS of the run. */
  stored: string;
  /** From the first event read (the first /metrics poll that shows one) to committed at the end. */
  seconds: number;
  /** From spawn to the first event read: start-up, Cassandra and Kafka connections, group join. */
  startupSeconds: number;
  eventsPerSec: number;
  /** Window records published to metrics.aggregates (every resolution). */
  windowsPublished: number;
  windowsPublishedPerSec: number;
  /** Window rows written to Cassandra (stored resolutions). */
  rowsWritten: number;
  rowsPerSec: number;
  rowsByResolution: Record<string, number>;
  /** Rows the in-process aggregator closes for the same events, stored resolutions only: should equal rowsWritten. */
  rowsExpected: number;
  late: number;
  /** Flushes (Cassandra writes + publishing, one per batch read or tick) and their mean duration. */
  flushes: number;
  flushMeanMs: number;
  peakRssMb: number;
  cpuSeconds: number;
}

export interface CeilingSet {
  stored: string;
  single: InsertCeiling;
  batched: InsertCeiling;
  /** For reference: the processor's batching before (single-partition batches of at most 20). */
  before: InsertCeiling;
  /** Processor rows/s ÷ batched ceiling rows/s (goal >= 0.7). */
  ratio: number;
}

export interface BenchProcessorResult {
  devices: number;
  events: number;
  records: number;
  partitions: number;
  /** Windows the aggregator closes for these events, per resolution (what is published; stored ones are rows). */
  windows: Record<string, number>;
  /** Late events the in-process aggregator finds in these events (none by construction). */
  inputLate: number;
  runs: ProcessorRun[];
  ceilings: CeilingSet[];
  /** `npm run replay` over the same topic, from its first offset (every resolution stored). */
  replay?: { seconds: number; eventsPerSec: number };
}

export async function benchProcessor(opts: BenchProcessorOptions = {}): Promise<BenchProcessorResult> {
  const devices = opts.devices ?? 10_000;
  const total = opts.events ?? 2_000_000;
  const stored = opts.stored ?? ['1s,10s,60s', '10s,60s'];
  const { kafka, admin, client, close } = await connectStack('bench-processor');
  const config = loadStackConfig();
  const stamp = Date.now().toString(36);
  const topic = `bench.processor.${stamp}`;
  const prefix = `bp${stamp}`;
  const seconds = Math.ceil(total / devices);
  // Event time: the `seconds` before now - 10 s, so that once caught up the wall clock makes every device idle at once.
  const layout: Layout = {
    devices,
    seconds,
    perRecord: opts.eventsPerRecord ?? 4,
    partitions: config.topicPartitions,
    t0: Date.now() - 10_000 - seconds * 1000,
  };
  const groups: string[] = [];
  const result: BenchProcessorResult = {
    devices,
    events: devices * seconds,
    records: 0,
    partitions: layout.partitions,
    windows: {},
    inputLate: 0,
    runs: [],
    ceilings: [],
  };
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: layout.partitions, replicationFactor: 1 }],
  });
  try {
    const { records: n, bytes } = await fill(kafka, topic, prefix, layout);
    result.records = n;
    const ends = await endOffsets(admin, topic);

    // The rows the processor writes, computed in-process for the same records.
    process.stderr.write('closing the same windows in-process...');
    const recordsPerDrain = Math.max(1, Math.floor((opts.fetchBytes ?? 2 * 1024 * 1024) / (bytes / n)));
    const closed = closeWindows(prefix, layout, recordsPerDrain, stored, opts.ceilingRows ?? 400_000);
    result.windows = closed.counts;
    result.inputLate = closed.late;
    process.stderr.write(` ${JSON.stringify(closed.counts)}\n`);

    for (const s of stored) {
      const group = `bench-processor-${stamp}-${s.replace(/,/g, '-')}`;
      groups.push(group);
      const run = await runProcessor(admin, topic, group, s, ends, opts.timeoutMs ?? 30 * 60_000);
      run.eventsPerSec = result.events / run.seconds;
      run.rowsExpected = expectedRows(closed.counts, s);
      if (run.rowsWritten !== run.rowsExpected)
        console.error(`  ! processor (${s}) wrote ${run.rowsWritten} rows; the same events close ${run.rowsExpected}`);
      if (run.late > 0) console.error(`  ! processor (${s}) reported ${run.late} late events; the input has none`);
      result.runs.push(run);
    }
    if (opts.replay !== false) {
      const started = performance.now();
      await runReplay(topic);
      const s = (performance.now() - started) / 1000;
      result.replay = { seconds: s, eventsPerSec: result.events / s };
    }
    for (const s of stored) {
      const rows = rowsOf(closed.drains, s, opts.ceilingRows ?? 400_000);
      process.stderr.write(`ceilings for ${s}: ${rows.reduce((a, d) => a + d.length, 0)} rows\n`);
      const { single, batched, before } = await insertCeilings(client, rows, {
        stored: s,
        ...(opts.ceilingConcurrency === undefined ? {} : { singleConcurrency: opts.ceilingConcurrency }),
        ...(opts.batchConcurrency === undefined ? {} : { batchConcurrency: opts.batchConcurrency }),
      });
      const run = result.runs.find((r) => r.stored === s)!;
      result.ceilings.push({ stored: s, single, batched, before, ratio: run.rowsPerSec / batched.rowsPerSec });
    }
    return result;
  } finally {
    for (const g of groups) await forgetGroup(admin, client, g, topic);
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await close();
  }
}

function expectedRows(counts: Record<string, number>, stored: string): number {
  return stored.split(',').reduce((n, r) => n + (counts[r] ?? 0), 0);
}

async function runProcessor(
  admin: Admin,
  topic: string,
  group: string,
  stored: string,
  ends: Map<number, number>,
  timeoutMs: number,
): Promise<ProcessorRun> {
  process.stderr.write(`stream-processor, FLEETPULSE_STORED_RESOLUTIONS=${stored}...\n`);
  const proc = await startProcessor(`processor-${stored}`, topic, group, { FLEETPULSE_STORED_RESOLUTIONS: stored });
  let firstEventAt: number | undefined;
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, memoryMb(proc.pid).hwm)), 250);
  try {
    for (;;) {
      await sleep(250);
      if (!proc.running()) throw new Error(`stream-processor exited (log: ${proc.logFile})`);
      if (firstEventAt === undefined) {
        const events = await proc.metrics().then(
          (m) => metricSum(m, 'fleetpulse_processor_events_total'),
          () => 0,
        );
        if (events > 0) firstEventAt = performance.now();
      }
      if (atEnd(await committedOffsets(admin, group, topic), ends)) break;
      if (performance.now() - proc.spawnedAt > timeoutMs)
        throw new Error(`stream-processor did not finish within ${timeoutMs / 60_000} minutes`);
    }
    const doneAt = performance.now();
    const m = await proc.metrics();
    peak = Math.max(peak, memoryMb(proc.pid).hwm);
    const first = firstEventAt ?? doneAt;
    const seconds = (doneAt - first) / 1000;
    const rowsByResolution = metricBy(m, 'fleetpulse_processor_rows_written_total', 'resolution');
    const rowsWritten = Object.values(rowsByResolution).reduce((a, b) => a + b, 0);
    const windowsPublished = metricSum(m, 'fleetpulse_processor_windows_published_total');
    return {
      stored,
      seconds,
      startupSeconds: (first - proc.spawnedAt) / 1000,
      eventsPerSec: 0,
      windowsPublished,
      windowsPublishedPerSec: windowsPublished / seconds,
      rowsWritten,
      rowsPerSec: rowsWritten / seconds,
      rowsByResolution,
      rowsExpected: 0,
      late: metricSum(m, 'fleetpulse_processor_late_events_total'),
      flushes: metricSum(m, 'fleetpulse_processor_write_seconds_count'),
      flushMeanMs:
        (metricSum(m, 'fleetpulse_processor_write_seconds_sum') /
          Math.max(1, metricSum(m, 'fleetpulse_processor_write_seconds_count'))) *
        1000,
      peakRssMb: peak,
      cpuSeconds: cpuSeconds(proc.pid),
    };
  } finally {
    clearInterval(sampler);
    await stopQuietly(proc);
  }
}

/** Lets it finish its final flush and leave the group before the next run or the clean-up. */
async function stopQuietly(proc: ServiceProcess): Promise<void> {
  await proc.stop('SIGTERM', 30_000);
}

/** `npm run replay -- --topic <topic> --from 0` with every resolution stored. */
async function runReplay(topic: string): Promise<void> {
  process.stderr.write('replay of the same topic...\n');
  await runScript(join(repo, 'stream-processor', 'dist', 'replay', 'main.js'), ['--topic', topic, '--from', '0'], {
    FLEETPULSE_KAFKA_BROKERS: kafkaBrokers().join(','),
    FLEETPULSE_CASSANDRA_CONTACT_POINTS: cassandraContactPoint(),
    FLEETPULSE_TTL: BenchTtl,
  });
}
