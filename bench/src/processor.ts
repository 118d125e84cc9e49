import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bucketOf, resolutionMs, type TelemetryEvent } from '@fleetpulse/contracts';
import { cassandraContactPoint, kafkaBrokers, loadStackConfig, stackUp, stderrLogger } from '@fleetpulse/compose';
import { Client } from 'cassandra-driver';
import { Kafka, logLevel } from 'kafkajs';

const repo = join(__dirname, '..', '..');

export interface BenchProcessorOptions {
  /** [devices=10000] */
  devices?: number;
  /** [events=2000000] - total events (each device reports once per second of event time, 4 metrics). */
  events?: number;
  /** [eventsPerRecord=5] - a device's events per Kafka record (ingestion groups a request's events per device). */
  eventsPerRecord?: number;
  /** [ceilingRows=200000] - rows for the plain insert loop. */
  ceilingRows?: number;
  /** [ceilingConcurrency=512] */
  ceilingConcurrency?: number;
}

export interface InsertCeiling {
  rows: number;
  seconds: number;
  rowsPerSec: number;
  concurrency: number;
  rowsPerBatch: number;
}

export interface BenchProcessorResult {
  events: number;
  records: number;
  processor: { seconds: number; eventsPerSec: number; rows: number; rowsPerSec: number; peakRssMb: number };
  /** The named baseline: one prepared INSERT per row. */
  ceiling: InsertCeiling;
  /** The same rows as the processor sends them: single-partition unlogged batches of 20 (a window run per partition). */
  batchedCeiling: InsertCeiling;
  /** `npm run replay` over the same topic, from its first offset: the same core, no commits, no live I/O pacing. */
  replay: { seconds: number; eventsPerSec: number };
}

function hwmMb(pid: number): number {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/**
 * Kafka -> stream-processor -> Cassandra end to end: a topic pre-filled with `events` from `devices` devices, then
 * one processor process (3 resolutions) from the first record until its committed offsets reach the end, i.e. every
 * window written and committed. Next to it, the node's ceiling for the same kind of rows: a plain concurrent
 * prepared-insert loop.
 */
export async function benchProcessor(opts: BenchProcessorOptions = {}): Promise<BenchProcessorResult> {
  const devices = opts.devices ?? 10_000;
  const total = opts.events ?? 2_000_000;
  const perRecord = opts.eventsPerRecord ?? 5;
  await stackUp({ log: stderrLogger });
  const config = loadStackConfig();
  const kafka = new Kafka({ clientId: 'bench-processor', brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const topic = `bench.processor.${Date.now()}`;
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: config.topicPartitions, replicationFactor: 1 }],
  });

  // Event time: the `seconds` before now - 10 s, so that at the end the wall clock makes every device idle at once.
  const seconds = Math.ceil(total / devices);
  const t0 = Date.now() - 10_000 - seconds * 1000;
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let records = 0;
  let batch: { key: string; value: string }[] = [];
  const prefix = `bench-${Date.now().toString(36)}`;
  process.stderr.write(`filling ${topic} with ${total} events of ${devices} devices...`);
  for (let s = 0; s < seconds; s += perRecord) {
    for (let d = 0; d < devices; d++) {
      const events: TelemetryEvent[] = [];
      for (let k = 0; k < perRecord && s + k < seconds; k++) {
        const ts = t0 + (s + k) * 1000 + (d % 1000);
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
      batch.push({ key: `${prefix}-${d}`, value: JSON.stringify(events) });
      records++;
      if (batch.length === 2000) {
        await producer.send({ topic, acks: -1, messages: batch });
        batch = [];
      }
    }
  }
  if (batch.length > 0) await producer.send({ topic, acks: -1, messages: batch });
  await producer.disconnect();
  process.stderr.write(` ${records} records\n`);
  const ends = await admin.fetchTopicOffsets(topic);

  const group = `bench-processor-${Date.now()}`;
  const port = 18081;
  const started = performance.now();
  const child = spawn(process.execPath, [join(repo, 'stream-processor', 'dist', 'main.js')], {
    env: {
      ...process.env,
      FLEETPULSE_PROCESSOR_TOPIC: topic,
      FLEETPULSE_PROCESSOR_GROUP: group,
      FLEETPULSE_PROCESSOR_PORT: String(port),
      FLEETPULSE_KAFKA_BROKERS: kafkaBrokers().join(','),
      FLEETPULSE_CASSANDRA_CONTACT_POINTS: cassandraContactPoint(),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, hwmMb(child.pid!))), 250);
  let seconds_ = 0;
  let rows = 0;
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, 250));
      const committed = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      const done = ends.every(
        (e) => committed[0]?.partitions.find((p) => p.partition === e.partition)?.offset === e.high,
      );
      if (done) break;
      if (child.exitCode !== null) throw new Error(`stream-processor exited with ${child.exitCode}`);
      if (performance.now() - started > 15 * 60_000)
        throw new Error('stream-processor did not finish within 15 minutes');
    }
    seconds_ = (performance.now() - started) / 1000;
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const m of metrics.matchAll(/^fleetpulse_processor_rows_written_total\{[^}]*\} (\d+)/gm)) rows += Number(m[1]);
    peakRss = Math.max(peakRss, hwmMb(child.pid!));
  } finally {
    clearInterval(sampler);
    // Let it finish its final flush and leave the group before the replay runs beside it or the topic goes.
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  }
  let replaySeconds = 0;
  try {
    const replayStarted = performance.now();
    await new Promise<void>((resolve, reject) => {
      const r = spawn(
        process.execPath,
        [join(repo, 'stream-processor', 'dist', 'replay', 'main.js'), '--topic', topic, '--from', '0'],
        {
          env: {
            ...process.env,
            FLEETPULSE_KAFKA_BROKERS: kafkaBrokers().join(','),
            FLEETPULSE_CASSANDRA_CONTACT_POINTS: cassandraContactPoint(),
          },
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      );
      r.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`replay exited with ${code}`))));
    });
    replaySeconds = (performance.now() - replayStarted) / 1000;
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
  const ceiling = await insertCeiling(opts.ceilingRows ?? 200_000, opts.ceilingConcurrency ?? 512, 1);
  const batchedCeiling = await insertCeiling(opts.ceilingRows ?? 200_000, 128, 20);
  return {
    events: total,
    records,
    processor: {
      seconds: seconds_,
      eventsPerSec: total / seconds_,
      rows,
      rowsPerSec: rows / seconds_,
      peakRssMb: peakRss,
    },
    ceiling,
    batchedCeiling,
    replay: { seconds: replaySeconds, eventsPerSec: total / replaySeconds },
  };
}

/**
 * The node's own ceiling for aggregate rows: prepared inserts, `concurrency` requests in flight, nothing else. With
 * `rowsPerBatch` > 1, each request is an unlogged batch of that many windows of one partition.
 */
async function insertCeiling(rows: number, concurrency: number, rowsPerBatch: number): Promise<InsertCeiling> {
  const client = new Client({
    contactPoints: [cassandraContactPoint()],
    localDataCenter: 'datacenter1',
    keyspace: 'fleetpulse',
    pooling: { maxRequestsPerConnection: 4096 },
  });
  await client.connect();
  const cql =
    'INSERT INTO aggregates (device_id, metric, resolution, bucket, window_start, window_end, count, sum, min, max, mean, stddev, first, last) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL 3600';
  const prefix = `ceiling-${Date.now().toString(36)}`;
  const size = resolutionMs('1s');
  const t0 = Date.now() - 3_600_000;
  const metrics = ['temp', 'humidity', 'vib', 'volt'];
  // Row i: request q = i / rowsPerBatch goes to device q % 10,000, metric (q / 10,000) % 4; its rows are consecutive
  // windows of that partition. With rowsPerBatch 1 this is 10,000 devices x 4 metrics, one window after the other.
  const params = (i: number): unknown[] => {
    const q = Math.floor(i / rowsPerBatch);
    const ws = t0 + (Math.floor(q / 40_000) * rowsPerBatch + (i % rowsPerBatch)) * size;
    return [
      `${prefix}-${q % 10_000}`,
      metrics[Math.floor(q / 10_000) % 4],
      '1s',
      bucketOf(ws, size),
      ws,
      ws + size,
    ].concat([1, 21.5, 21.5, 21.5, 21.5, 0, 21.5, 21.5]);
  };
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < rows) {
      const i = next;
      next += rowsPerBatch;
      if (rowsPerBatch === 1) await client.execute(cql, params(i), { prepare: true });
      else
        await client.batch(
          Array.from({ length: rowsPerBatch }, (_, j) => ({ query: cql, params: params(i + j) })),
          { prepare: true, logged: false },
        );
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  await client.shutdown();
  return { rows, seconds, rowsPerSec: rows / seconds, concurrency, rowsPerBatch };
}
