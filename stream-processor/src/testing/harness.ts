import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  bucketsBetween,
  pointsOf,
  resolutionMs,
  windowRecordFromRow,
  type AggregateRow,
  type TelemetryEvent,
} from '@fleetpulse/contracts';
import type { Client } from 'cassandra-driver';
import type { Kafka } from 'kafkajs';
import { createTestTopic } from '@fleetpulse/compose/testing';
import { ReferenceAggregator } from '../core/reference.test-util';

export interface TopicRecord {
  partition: number;
  offset: string;
  value: TelemetryEvent | TelemetryEvent[];
}

/**
 * Every record of `topic` (or only those at or after `since`, e.g. the partitions' ends before a test wrote), per
 * partition in offset order (what a processor reads), via a throwaway consumer.
 */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  since?: { partition: number; offset: string }[],
): Promise<TopicRecord[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const start = new Map(
    ends.map((e) => [e.partition, BigInt(since?.find((s) => s.partition === e.partition)?.offset ?? e.low)]),
  );
  const remaining = new Map(
    ends.filter((e) => BigInt(e.high) > start.get(e.partition)!).map((e) => [e.partition, BigInt(e.high)]),
  );
  const records: TopicRecord[] = [];
  if (remaining.size === 0) return records;
  const consumer = kafka.consumer({ groupId: `reader-${process.pid}-${Math.random().toString(36).slice(2)}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve) => {
    // A partition is read to its end once a batch reaches it. Batches, not messages: on a topic written in
    // transactions (anomaly.scores) the last offsets are commit markers, which no message carries; kafkajs reports
    // every batch, one of markers only included, with the last offset it covered.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const end = remaining.get(payload.partition);
      if (end !== undefined && BigInt(payload.lastOffset) + 1n >= end) remaining.delete(payload.partition);
      if (remaining.size === 0) resolve();
    });
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (BigInt(message.offset) < start.get(partition)! || !remaining.has(partition)) return;
        records.push({
          partition,
          offset: message.offset,
          value: JSON.parse(message.value!.toString()) as TelemetryEvent,
        });
        await Promise.resolve();
      },
    });
    if (since) for (const [partition, offset] of start) consumer.seek({ topic, partition, offset: offset.toString() });
  });
  await consumer.disconnect();
  return records.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}

/**
 * The rows the contract defines for these records, by the naive reference (not the aggregator under test). With
 * `closeAll`, every device is finally idle (the processor's wall clock passes every receivedAt + idle timeout).
 */
export function expectedRows(
  records: TopicRecord[],
  opts: { resolutions: string[]; latenessMs: number; idleMs: number; closeAll: boolean },
): { rows: AggregateRow[]; late: number; lateEvents: TelemetryEvent[] } {
  const ref = new ReferenceAggregator(opts.resolutions, opts.latenessMs, opts.idleMs);
  const rows: AggregateRow[] = [];
  const lateEvents: TelemetryEvent[] = [];
  let late = 0;
  const partitions = [...new Set(records.map((r) => r.partition))];
  for (const p of partitions) ref.assign(p);
  for (const r of records) {
    const out = ref.apply({ kind: 'record', partition: r.partition, offset: r.offset, value: r.value });
    for (const w of out.windows) rows.push(...w.rows);
    late += out.late.length;
    lateEvents.push(...out.late.map((l) => l.event));
  }
  if (opts.closeAll)
    for (const p of partitions)
      for (const w of ref.apply({ kind: 'advance', partition: p, ms: Number.MAX_SAFE_INTEGER }).windows)
        rows.push(...w.rows);
  return { rows, late, lateEvents };
}

const rowKey = (r: Pick<AggregateRow, 'deviceId' | 'metric' | 'resolution' | 'windowStart'>) =>
  `${r.deviceId}|${r.metric}|${r.resolution}|${r.windowStart}`;

export function indexRows(rows: AggregateRow[]): Map<string, AggregateRow> {
  return new Map(rows.map((r) => [rowKey(r), r]));
}

/**
 * Every metric row (v1 point) of the window rows Cassandra holds for these devices with a window start in
 * [fromMs, toMs): each bucket is read bounded by window start, since a bucket spans far more than a test's range
 * (a 60 s bucket is 60 hours) and may hold rows of earlier runs.
 */
export async function readRows(
  client: Client,
  q: { devices: string[]; metrics: string[]; resolutions: string[]; fromMs: number; toMs: number },
): Promise<AggregateRow[]> {
  const rows: AggregateRow[] = [];
  const cql =
    'SELECT device_id, resolution, window_start, window_end, metrics FROM fleetpulse.windows WHERE device_id = ? AND resolution = ? AND bucket = ? AND window_start >= ? AND window_start < ?';
  const wanted = new Set(q.metrics);
  for (const deviceId of q.devices)
    for (const resolution of q.resolutions)
      for (const bucket of bucketsBetween(q.fromMs, q.toMs, resolutionMs(resolution))) {
        const rs = await client.execute(cql, [deviceId, resolution, bucket, q.fromMs, q.toMs], { prepare: true });
        for (const r of rs.rows) {
          const record = windowRecordFromRow(r);
          for (const point of pointsOf(record)) if (wanted.has(point.metric)) rows.push(point);
        }
      }
  return rows;
}

/** A late event as the reference and telemetry.late name it: compared as text, so lists sort and diff plainly. */
export const lateKey = (e: TelemetryEvent): string => `${e.deviceId}|${e.ts}|${e.seq ?? ''}|${e.receivedAt ?? ''}`;

export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 500,
  /** What the failure message adds: the state the check saw last. */
  describe?: () => Promise<string>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  const seen = describe ? ` (${await describe()})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen}`);
}

export interface ProcessorProcess {
  child: ChildProcess;
  output: string[];
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
}

/** Starts the built stream-processor (stream-processor/dist/main.js) as its own process, as `npm start` does. */
export function spawnProcessor(env: Record<string, string>): ProcessorProcess {
  const child = spawn(process.execPath, [join(__dirname, '..', '..', 'dist', 'main.js')], {
    env: { ...process.env, FLEETPULSE_PROCESSOR_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output, exited };
}

/**
 * Processors a test suite starts: each is killed after its test, and its log kept under artifacts/stream-processor
 * (the first place to look when a comparison fails). Call at a suite's top level: it registers an afterEach.
 */
export function processorProcesses(defaults: Record<string, string> = {}): {
  start(env: Record<string, string>): ProcessorProcess;
} {
  const artifacts = join(__dirname, '..', '..', '..', 'artifacts', 'stream-processor');
  const children: ProcessorProcess[] = [];
  afterEach(() => {
    const name = (expect.getState().currentTestName ?? 'test').replace(/[^a-z0-9]+/gi, '-').slice(0, 80);
    mkdirSync(artifacts, { recursive: true });
    children.forEach((c, i) => writeFileSync(join(artifacts, `${name}-${i}.log`), c.output.join('')));
    for (const c of children.splice(0)) c.child.kill('SIGKILL');
  });
  return {
    start(env) {
      const p = spawnProcessor({ ...defaults, ...env });
      children.push(p);
      return p;
    },
  };
}

/** Runs the built replay command (stream-processor/dist/replay/main.js) as users do; resolves with its exit and output. */
export function runReplay(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(__dirname, '..', '..', 'dist', 'replay', 'main.js'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

/** Rows compared field by field; floats must match exactly (same fold order as the reference). */
export function diffRows(expected: Map<string, AggregateRow>, actual: Map<string, AggregateRow>): string[] {
  const problems: string[] = [];
  for (const [k, e] of expected) {
    const a = actual.get(k);
    if (!a) problems.push(`missing ${k}`);
    else if (JSON.stringify(a) !== JSON.stringify(e))
      problems.push(`differs ${k}: expected ${JSON.stringify(e)}, got ${JSON.stringify(a)}`);
  }
  for (const k of actual.keys()) if (!expected.has(k)) problems.push(`unexpected ${k}`);
  return problems;
}

/** A topic of its own for one test, with `partitions` partitions. */
export async function newTopic(kafka: Kafka, partitions: number): Promise<string> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await createTestTopic(admin, { partitions });
  } finally {
    await admin.disconnect();
  }
}
