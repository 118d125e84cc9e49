/*
 * Kafka -> stream-processor -> Cassandra end to end, next to Cassandra's insert ceiling for the same window rows.
 *
 * One topic is pre-filled with `events` of `devices` devices (each reporting once per second of event time, 4 metrics,
 * `eventsPerRecord` events per record, device d in partition d % partitions). The processor runs on it as users run
 * it, once per stored-resolution setting (each in its own consumer group): from the spawn until its committed offsets
 * reach the end, i.e. every window written to Cassandra, published to metrics.aggregates and committed.
 *
 * The ceilings insert the processor's own window rows: the same events (same event times, another device prefix)
 * run in-process through the processor's WindowAggregator, drained as the processor drains (one fetch of one
 * partition at a time), and each closed window of a stored resolution becomes the row AggregateStore writes
 * (`fleetpulse.windows`, the same INSERT, the same pre-encoded parameters (`windowRowParams`) and TTL). The rows are
 * sent (a) one prepared INSERT each, 512 in flight; (b) as the processor sends them: the windows of one drain grouped
 * by replica set (one node here: all of them), rows of one Cassandra partition adjacent, in unlogged batches of at
 * most 50 (a batch of one is a plain INSERT), 128 in flight; (c) for reference, what the processor did before: each
 * drain's windows grouped per Cassandra partition into unlogged batches of at most 20, 128 in flight.
 */
import { bucketOf, resolutionMs, type TelemetryEvent } from '@fleetpulse/contracts';
import { cassandraContactPoint, kafkaBrokers, loadStackConfig, stackUp, stderrLogger } from '@fleetpulse/compose';
import { WindowAggregator, type ClosedWindow } from '@fleetpulse/stream-processor/core';
import { windowRowParams } from '@fleetpulse/stream-processor';
import { join } from 'node:path';
import type { Client } from 'cassandra-driver';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import {
  atEnd,
  BenchTtl,
  BenchTtlSeconds,
  cassandraClient,
  committedOffsets,
  cpuSeconds,
  endOffsets,
  forgetGroup,
  memoryMb,
  metricBy,
  metricSum,
  repo,
  runScript,
  sleep,
  startProcessor,
  type ServiceProcess,
} from './services';

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
  /** [ceilingRows=400000] - rows each ceiling inserts: the first of the processor's rows, in its order. */
  ceilingRows?: number;
  /** [ceilingConcurrency=512] - requests in flight for one INSERT per row. */
  ceilingConcurrency?: number;
  /** [batchConcurrency=128] - requests in flight for batches: the processor's FLEETPULSE_CASSANDRA_WRITE_CONCURRENCY. */
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

export interface InsertCeiling {
  method:
    'one INSERT per row' | 'processor batches (by replica set, <= 50)' | 'single-partition batches of <= 20 (before)';
  rows: number;
  requests: number;
  rowsPerRequest: number;
  concurrency: number;
  seconds: number;
  rowsPerSec: number;
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

interface Layout {
  devices: number;
  seconds: number;
  perRecord: number;
  partitions: number;
  t0: number;
}

/** The bench's records in production order: rounds of `perRecord` seconds, every device once per round. */
function* records(prefix: string, l: Layout): Generator<{ partition: number; key: string; events: TelemetryEvent[] }> {
  for (let s = 0; s < l.seconds; s += l.perRecord) {
    for (let d = 0; d < l.devices; d++) {
      const events: TelemetryEvent[] = [];
      for (let k = 0; k < l.perRecord && s + k < l.seconds; k++) {
        const ts = l.t0 + (s + k) * 1000 + (d % 1000);
        events.push({
          deviceId: `${prefix}-${d}`,
          ts,
          metrics: {
            temp: 20 + ((d + k) % 10) / 3,
            humidity: 40 + (k % 7),
            vib: 0.1 + (d % 5) / 50,
            volt: 230 + (s % 3),
          },
          seq: s + k,
          receivedAt: ts + 40,
        });
      }
      yield { partition: d % l.partitions, key: `${prefix}-${d}`, events };
    }
  }
}

export async function benchProcessor(opts: BenchProcessorOptions = {}): Promise<BenchProcessorResult> {
  const devices = opts.devices ?? 10_000;
  const total = opts.events ?? 2_000_000;
  const stored = opts.stored ?? ['1s,10s,60s', '10s,60s'];
  await stackUp({ log: stderrLogger });
  const config = loadStackConfig();
  const kafka = new Kafka({ clientId: 'bench-processor', brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const client = cassandraClient();
  await client.connect();
  const stamp = Date.now().toString(36);
  const topic = `bench.processor.${stamp}`;
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
    const { records: n, bytes } = await fill(kafka, topic, `bp${stamp}`, layout);
    result.records = n;
    const ends = await endOffsets(admin, topic);

    // The rows the processor writes, computed in-process for the same events under the ceiling's device prefix.
    process.stderr.write('closing the same windows in-process...');
    const recordsPerDrain = Math.max(1, Math.floor((opts.fetchBytes ?? 2 * 1024 * 1024) / (bytes / n)));
    const closed = closeWindows(`bc${stamp}`, layout, recordsPerDrain, stored, opts.ceilingRows ?? 400_000);
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
      const labels = new Set(s.split(','));
      const drains = closed.drains.map((d) => d.filter((w) => labels.has(w.resolution))).filter((d) => d.length > 0);
      const rows = takeRows(drains, opts.ceilingRows ?? 400_000);
      process.stderr.write(`ceilings for ${s}: ${rows.reduce((a, d) => a + d.length, 0)} rows\n`);
      const single = await insertCeiling(client, 'one INSERT per row', singles(rows), opts.ceilingConcurrency ?? 512);
      const batched = await insertCeiling(
        client,
        'processor batches (by replica set, <= 50)',
        processorBatches(rows),
        opts.batchConcurrency ?? 128,
      );
      const before = await insertCeiling(
        client,
        'single-partition batches of <= 20 (before)',
        singlePartitionBatches(rows),
        opts.batchConcurrency ?? 128,
      );
      const run = result.runs.find((r) => r.stored === s)!;
      result.ceilings.push({ stored: s, single, batched, before, ratio: run.rowsPerSec / batched.rowsPerSec });
    }
    return result;
  } finally {
    for (const g of groups) await forgetGroup(admin, client, g, topic);
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
    await client.shutdown();
  }
}

function expectedRows(counts: Record<string, number>, stored: string): number {
  return stored.split(',').reduce((n, r) => n + (counts[r] ?? 0), 0);
}

async function fill(
  kafka: Kafka,
  topic: string,
  prefix: string,
  l: Layout,
): Promise<{ records: number; bytes: number }> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let n = 0;
  let bytes = 0;
  let batch: { partition: number; key: string; value: string }[] = [];
  process.stderr.write(`filling ${topic} with ${l.devices * l.seconds} events of ${l.devices} devices...`);
  try {
    for (const r of records(prefix, l)) {
      const value = JSON.stringify(r.events);
      batch.push({ partition: r.partition, key: r.key, value });
      bytes += value.length + r.key.length;
      n++;
      if (batch.length === 2000) {
        await producer.send({ topic, acks: -1, messages: batch });
        batch = [];
      }
    }
    if (batch.length > 0) await producer.send({ topic, acks: -1, messages: batch });
  } finally {
    await producer.disconnect();
  }
  process.stderr.write(` ${n} records\n`);
  return { records: n, bytes };
}

/** A window row as AggregateStore writes it, kept compact (the ClosedWindow's shared number chunks are let go). */
interface Row {
  deviceId: string;
  resolution: string;
  windowStart: number;
  windowEnd: number;
  names: readonly string[];
  /** 8 statistics per metric, in MetricStatNames order. */
  stats: Float64Array;
}

const StatNames = ['count', 'sum', 'min', 'max', 'mean', 'stddev', 'first', 'last'] as const;

function rowOf(w: ClosedWindow): Row {
  const ms = w.metricStats();
  const names = Object.keys(ms);
  const stats = new Float64Array(names.length * 8);
  names.forEach((n, i) => StatNames.forEach((f, j) => (stats[i * 8 + j] = ms[n]![f])));
  return {
    deviceId: w.deviceId,
    resolution: w.resolution,
    windowStart: w.windowStart,
    windowEnd: w.windowEnd,
    names,
    stats,
  };
}

/**
 * The windows the processor closes for these records, in its order: each partition's records in offset order,
 * a drain after every `recordsPerDrain` records of a partition (one fetch), partitions taken in turn; the last
 * windows close by idleness once the wall clock passes (as the processor's tick does when it has caught up).
 * Counts every window; keeps, per stored-resolution setting, its first `limit` rows.
 */
function closeWindows(
  prefix: string,
  l: Layout,
  recordsPerDrain: number,
  stored: readonly string[],
  limit: number,
): { drains: Row[][]; counts: Record<string, number>; late: number } {
  const agg = new WindowAggregator({ resolutions: ['1s', '10s', '60s'] });
  const queues: { events: TelemetryEvent[] }[][] = Array.from({ length: l.partitions }, () => []);
  for (let p = 0; p < l.partitions; p++) agg.assignPartition(p);
  const drains: Row[][] = [];
  const counts: Record<string, number> = {};
  const sets = stored.map((s) => ({ labels: new Set(s.split(',')), kept: 0 }));
  const offsets = new Array<number>(l.partitions).fill(0);
  const take = () => {
    const kept: Row[] = [];
    for (const w of agg.drain().windows) {
      counts[w.resolution] = (counts[w.resolution] ?? 0) + 1;
      let keep = false;
      for (const s of sets)
        if (s.labels.has(w.resolution) && s.kept < limit) {
          s.kept++;
          keep = true;
        }
      if (keep) kept.push(rowOf(w));
    }
    if (kept.length > 0) drains.push(kept);
  };
  const feed = (p: number) => {
    for (const r of queues[p]!.splice(0, recordsPerDrain)) agg.ingest(p, String(offsets[p]!++), r.events);
    take();
  };
  for (const r of records(prefix, l)) {
    queues[r.partition]!.push(r);
    if (queues[r.partition]!.length >= recordsPerDrain) feed(r.partition);
  }
  for (let p = 0; p < l.partitions; p++) while (queues[p]!.length > 0) feed(p);
  for (let p = 0; p < l.partitions; p++) agg.advanceProcessingTime(p, Date.now());
  take();
  return { drains, counts, late: agg.stats().late };
}

function takeRows(drains: Row[][], limit: number): Row[][] {
  const out: Row[][] = [];
  let n = 0;
  for (const d of drains) {
    if (n >= limit) break;
    const part = d.slice(0, limit - n);
    if (part.length > 0) out.push(part);
    n += part.length;
  }
  return out;
}

const singles = (drains: Row[][]): Row[][] => drains.flat().map((w) => [w]);

/**
 * Each drain's windows grouped as AggregateStore groups them on one node (every partition has the same replica):
 * rows of one Cassandra partition adjacent, in batches of at most 50.
 */
function processorBatches(drains: Row[][]): Row[][] {
  const out: Row[][] = [];
  for (const d of drains) {
    const byPartition = new Map<string, Row[]>();
    for (const w of d) {
      const key = `${w.deviceId}\u0000${w.resolution}\u0000${bucketOf(w.windowStart, resolutionMs(w.resolution))}`;
      let g = byPartition.get(key);
      if (!g) byPartition.set(key, (g = []));
      g.push(w);
    }
    const all = [...byPartition.values()].flat();
    for (let i = 0; i < all.length; i += 50) out.push(all.slice(i, i + 50));
  }
  return out;
}

/** What the processor did before: each drain's windows per (device, resolution, bucket), at most 20 a batch. */
function singlePartitionBatches(drains: Row[][]): Row[][] {
  const out: Row[][] = [];
  for (const d of drains) {
    const groups = new Map<string, Row[]>();
    for (const w of d) {
      const key = `${w.deviceId}\u0000${w.resolution}\u0000${bucketOf(w.windowStart, resolutionMs(w.resolution))}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = []));
      g.push(w);
      if (g.length === 20) {
        out.push(g);
        groups.delete(key);
      }
    }
    out.push(...groups.values());
  }
  return out;
}

const Insert =
  'INSERT INTO windows (device_id, resolution, bucket, window_start, window_end, metrics) VALUES (?, ?, ?, ?, ?, ?) USING TTL ?';

/** AggregateStore's parameters for a window: the same pre-encoded buffers (`windowRowParams`). */
function params(w: Row): unknown[] {
  return windowRowParams(
    {
      deviceId: w.deviceId,
      resolution: w.resolution,
      windowStart: w.windowStart,
      windowEnd: w.windowEnd,
      metricCount: w.names.length,
      metricName: (i) => w.names[i]!,
      stat: (i, f) => w.stats[i * 8 + StatNames.indexOf(f)]!,
    },
    BenchTtlSeconds,
  );
}

/** Sends every request (one row: an INSERT; more: an unlogged batch), `concurrency` in flight. */
async function insertCeiling(
  client: Client,
  method: InsertCeiling['method'],
  requests: Row[][],
  concurrency: number,
): Promise<InsertCeiling> {
  const rows = requests.reduce((n, r) => n + r.length, 0);
  // Prepared before the clock starts.
  await client.execute(Insert, params(requests[0]![0]!), { prepare: true });
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < requests.length) {
      const r = requests[next++]!;
      if (r.length === 1) await client.execute(Insert, params(r[0]!), { prepare: true });
      else
        await client.batch(
          r.map((w) => ({ query: Insert, params: params(w) })),
          { prepare: true, logged: false },
        );
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  return {
    method,
    rows,
    requests: requests.length,
    rowsPerRequest: rows / requests.length,
    concurrency,
    seconds,
    rowsPerSec: rows / seconds,
  };
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
