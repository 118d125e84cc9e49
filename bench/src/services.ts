/**
 * What the pipeline suites (processor, fleet, million) share: the real services started as their own processes
 * (`node <service>/dist/main.js`, configured by environment as users run them), their /metrics, the consumer
 * group's committed offsets, /proc figures (peak RSS, CPU), and the clean-up of what a run leaves in Kafka and
 * Cassandra. Every process started here is stopped by its suite, and killed at the latest when the bench exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  cassandraContactPoint,
  CassandraDataCenter,
  kafkaBrokers,
  loadStackConfig,
  stackStatus,
  stackUp,
  stderrLogger,
} from '@fleetpulse/compose';
import { sleep } from '@fleetpulse/runtime';
import { Client } from 'cassandra-driver';
import { decodeRecordValue, InvalidRecordError, WindowAggregator } from '@fleetpulse/stream-processor/core';
import { Kafka, logLevel, type Admin, type Message } from 'kafkajs';

export const repo = join(__dirname, '..', '..');

/**
 * Window rows written by the bench expire after an hour (FLEETPULSE_TTL for the processes it starts, and for the
 * store its ceilings write through), so runs do not pile up in Cassandra. A TTL is one field of the write: it costs
 * the same as the defaults (1 day, 30 days, 400 days).
 */
export const BenchTtl = '1s=3600,10s=3600,60s=3600';

const live = new Set<ChildProcess>();
let logDir: string | undefined;
let keepLogs = false;
process.once('exit', () => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (logDir !== undefined && !keepLogs) rmSync(logDir, { recursive: true, force: true });
});

/** Keeps the services' log files when the bench exits (they are removed otherwise); returns their folder. */
export function keepServiceLogs(): string | undefined {
  keepLogs = true;
  return logDir;
}

/** A free TCP port on 127.0.0.1 (the services are told it; a small race, fine on a bench machine). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** VmRSS and VmHWM (peak RSS) of a process, MB; zeros once it has exited. */
export function memoryMb(pid: number): { rss: number; hwm: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

/** User + system CPU seconds a process has used (clock ticks of 1/100 s, as on Linux). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format, the lines that are samples. */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of a metric's samples, optionally only those whose labels match. */
export function metricSum(samples: readonly Sample[], name: string, where: Record<string, string> = {}): number {
  let sum = 0;
  for (const s of samples)
    if (s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  return sum;
}

/** A metric's samples summed per value of one label. */
export function metricBy(samples: readonly Sample[], name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples)
    if (s.name === name) out[s.labels[label] ?? ''] = (out[s.labels[label] ?? ''] ?? 0) + s.value;
  return out;
}

/**
 * Runs `node <script> ...args` to its end (tracked like the services); resolves with its stdout, rejects on a
 * non-zero exit. Its stderr goes to ours when `stderr` is true.
 */
export function runScript(
  script: string,
  args: string[],
  env: Record<string, string> = {},
  stderr = false,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', stderr ? 'inherit' : 'ignore'],
    });
    live.add(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code, signal) => {
      live.delete(child);
      if (code === 0) resolve(out);
      else reject(new Error(`${script} ${args.join(' ')} exited with ${code ?? signal}`));
    });
  });
}

export interface ServiceProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Port of its HTTP server (/metrics, /readyz, and for ingestion the API). */
  readonly port: number;
  /** Where its stdout and stderr go. */
  readonly logFile: string;
  /** Resolves when it has exited. */
  readonly exited: Promise<void>;
  readonly spawnedAt: number;
  running(): boolean;
  metrics(): Promise<Sample[]>;
  /** Sends `signal` and waits for the exit (SIGKILL after `timeoutMs`). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
}

/**
 * Starts `node [...nodeArgs] <script>` with `env` on top of ours; its output goes to a log file, and lines that look
 * like trouble (errors, warnings, rebalances, rewinds) are echoed on stderr with its name.
 */
export function startService(
  name: string,
  script: string,
  env: Record<string, string>,
  port: number,
  nodeArgs: string[] = [],
): ServiceProcess {
  logDir ??= mkdtempSync(join(tmpdir(), 'fleetpulse-bench-logs-'));
  const logFile = join(logDir, `${name}-${Date.now()}.log`);
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, [...nodeArgs, script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      live.delete(child);
      resolve();
    }),
  );
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.pipe(log, { end: false });
    createInterface({ input: stream }).on('line', (line) => {
      if (/error|fail|warn|rewind|joined|rebalanc|exit/i.test(line)) process.stderr.write(`  [${name}] ${line}\n`);
    });
  }
  void exited.then(() => log.end());
  const proc: ServiceProcess = {
    name,
    child,
    pid: child.pid!,
    port,
    logFile,
    exited,
    spawnedAt: performance.now(),
    running: () => child.exitCode === null && child.signalCode === null,
    metrics: async () => parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()),
    stop: async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 60_000) => {
      if (!proc.running()) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
  return proc;
}

export async function waitReady(proc: ServiceProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (!proc.running()) throw new Error(`${proc.name} exited during start-up (log: ${proc.logFile})`);
    const ok = await fetch(`http://127.0.0.1:${proc.port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await sleep(200);
  }
  throw new Error(`${proc.name} not ready within ${timeoutMs} ms (log: ${proc.logFile})`);
}

const connection = () => ({
  FLEETPULSE_KAFKA_BROKERS: kafkaBrokers().join(','),
  FLEETPULSE_CASSANDRA_CONTACT_POINTS: cassandraContactPoint(),
});

/** The stream-processor as users run it, on `topic` in consumer group `group`; `env` on top (stored resolutions...). */
export async function startProcessor(
  name: string,
  topic: string,
  group: string,
  env: Record<string, string> = {},
): Promise<ServiceProcess> {
  const port = await freePort();
  return startService(
    name,
    join(repo, 'stream-processor', 'dist', 'main.js'),
    {
      ...connection(),
      FLEETPULSE_PROCESSOR_TOPIC: topic,
      FLEETPULSE_PROCESSOR_GROUP: group,
      FLEETPULSE_PROCESSOR_HOST: '127.0.0.1',
      FLEETPULSE_PROCESSOR_PORT: String(port),
      FLEETPULSE_TTL: BenchTtl,
      ...env,
    },
    port,
  );
}

/**
 * A topic of the bench's own for the length of `use`, with as many partitions as the stack's topics, deleted
 * afterwards: load that only measures a door must not pile up in the shared topics (the local disk is finite).
 */
export async function withBenchTopic<T>(name: string, use: (topic: string) => Promise<T>): Promise<T> {
  const topic = `bench.${name}.${Date.now()}`;
  const admin = new Kafka({ clientId: 'bench', brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: loadStackConfig().topicPartitions, replicationFactor: 1 }],
    });
    return await use(topic);
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

/**
 * The ingestion service as users run it (development tokens), producing to `topic` (else its default), its HTTP door
 * on `port` (else a free one), its MQTT door on `mqttPort` (else off).
 */
export async function startIngestionProcess(
  name: string,
  options: { topic?: string; port?: number; mqttPort?: number } = {},
): Promise<ServiceProcess> {
  const port = options.port ?? (await freePort());
  return startService(
    name,
    join(repo, 'ingestion', 'dist', 'main.js'),
    {
      FLEETPULSE_ENV: 'development',
      FLEETPULSE_INGESTION_HOST: '127.0.0.1',
      FLEETPULSE_INGESTION_PORT: String(port),
      ...(options.topic === undefined ? {} : { FLEETPULSE_INGESTION_TOPIC: options.topic }),
      FLEETPULSE_MQTT_PORT: options.mqttPort === undefined ? 'off' : String(options.mqttPort),
      FLEETPULSE_KAFKA_BROKERS: kafkaBrokers().join(','),
    },
    port,
  );
}

/**
 * Produces `messages` to `topic` as the pre-filled suites fill their topics: one idempotent producer, acks from all
 * in-sync replicas, 2,000 messages a request. Returns how many it produced.
 */
export async function produce(kafka: Kafka, topic: string, messages: Iterable<Message>): Promise<number> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let n = 0;
  let batch: Message[] = [];
  try {
    for (const m of messages) {
      batch.push(m);
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
  return n;
}

/** Committed offsets of `group` on `topic` per partition (-1: none yet). */
export async function committedOffsets(admin: Admin, group: string, topic: string): Promise<Map<number, number>> {
  const r = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return new Map((r[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
}

/** End offsets (high watermarks) of `topic` per partition. */
export async function endOffsets(admin: Admin, topic: string): Promise<Map<number, number>> {
  return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
}

/** Whether every partition's committed offset is at `ends` (a partition with nothing in it counts as done). */
export function atEnd(committed: Map<number, number>, ends: Map<number, number>): boolean {
  for (const [p, high] of ends) if (high > 0 && committed.get(p) !== high) return false;
  return true;
}

/** Sum of committed offsets (records committed), none counted as 0. */
export function committedSum(committed: Map<number, number>): number {
  let n = 0;
  for (const o of committed.values()) if (o > 0) n += o;
  return n;
}

/** What a pipeline suite talks to: the local stack (started if it is not up), Kafka and its admin, Cassandra. */
export async function connectStack(
  clientId: string,
): Promise<{ kafka: Kafka; admin: Admin; client: Client; close: () => Promise<void> }> {
  await stackUp({ log: stderrLogger });
  const kafka = new Kafka({ clientId, brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const client = cassandraClient();
  await client.connect();
  const close = async () => {
    await admin.disconnect();
    await client.shutdown();
  };
  return { kafka, admin, client, close };
}

export function cassandraClient(): Client {
  return new Client({
    contactPoints: [cassandraContactPoint()],
    localDataCenter: CassandraDataCenter,
    keyspace: 'fleetpulse',
    pooling: { maxRequestsPerConnection: 4096 },
  });
}

/**
 * Removes what a bench consumer group leaves: its checkpoint headers and its device states (the epochs the headers
 * name; earlier epochs expire by the table's TTL), and the group in Kafka. Best effort: a failure is logged only.
 */
export async function forgetGroup(admin: Admin, client: Client, group: string, topic: string): Promise<void> {
  try {
    // The topic's partitions; if it is gone already, as many as the stack gives a topic.
    const partitions = await endOffsets(admin, topic).then(
      (ends) => [...ends.keys()],
      () => Array.from({ length: loadStackConfig().topicPartitions }, (_, i) => i),
    );
    for (const p of partitions) {
      const rs = await client.execute(
        'SELECT state FROM processor_checkpoints WHERE group_id = ? AND topic = ? AND partition = ?',
        [group, topic, p],
        { prepare: true },
      );
      const state = rs.first()?.get('state') as string | undefined;
      const epoch = state ? (JSON.parse(state) as { epoch?: string }).epoch : undefined;
      if (epoch !== undefined) {
        const deletes = Array.from({ length: 256 }, (_, bucket) =>
          client.execute(
            'DELETE FROM processor_device_state WHERE group_id = ? AND topic = ? AND partition = ? AND epoch = ? AND bucket = ?',
            [group, topic, p, epoch, bucket],
            { prepare: true },
          ),
        );
        await Promise.all(deletes);
      }
      await client.execute(
        'DELETE FROM processor_checkpoints WHERE group_id = ? AND topic = ? AND partition = ?',
        [group, topic, p],
        { prepare: true },
      );
    }
    // A member that was killed holds the group until its session times out: retry for a while.
    for (let attempt = 0; attempt < 10; attempt++) {
      if (
        await admin.deleteGroups([group]).then(
          () => true,
          () => false,
        )
      )
        break;
      await sleep(3000);
    }
  } catch (e) {
    console.error(`  (clean-up of ${group} incomplete: ${e instanceof Error ? e.message : String(e)})`);
  }
}

/** CPU seconds used so far by each named process, at one instant. */
export interface CpuSnapshot {
  at: number;
  cpu: Record<string, number>;
}

export function cpuSnapshot(pids: Record<string, number | undefined>): CpuSnapshot {
  const cpu: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) if (pid !== undefined) cpu[name] = cpuSeconds(pid);
  return { at: performance.now(), cpu };
}

/** Cores each process used on average between two snapshots (1 = one core busy). */
export function coresBetween(a: CpuSnapshot, b: CpuSnapshot): Record<string, number> {
  const out: Record<string, number> = {};
  const s = (b.at - a.at) / 1000;
  for (const name of Object.keys(b.cpu))
    if (a.cpu[name] !== undefined && s > 0) out[name] = (b.cpu[name]! - a.cpu[name]) / s;
  return out;
}

/** Pids of Kafka and Cassandra when this launcher started them (else absent: their CPU is not measured). */
export async function stackPids(): Promise<Record<string, number | undefined>> {
  const s = await stackStatus();
  return { kafka: s.kafka.pid, cassandra: s.cassandra.pid };
}

/**
 * What the records of a topic imply by themselves: its records in partition order through the processor's
 * WindowAggregator (default configuration), processing time from their receivedAt only, no wall clock. Late events
 * counted here are in the input (a device resuming after an idle close, reordering beyond the lateness); late
 * events the processor reports beyond these came from its wall-clock idleness.
 */
export async function lateInRecords(kafka: Kafka, topic: string): Promise<{ events: number; late: number }> {
  const admin = kafka.admin();
  await admin.connect();
  const group = `bench-check-${Date.now().toString(36)}`;
  const ends = await endOffsets(admin, topic);
  const agg = new WindowAggregator();
  for (const p of ends.keys()) agg.assignPartition(p);
  const pending = new Set([...ends].filter(([, high]) => high > 0).map(([p]) => p));
  const consumer = kafka.consumer({ groupId: group, maxBytesPerPartition: 8 * 1024 * 1024 });
  try {
    if (pending.size > 0) {
      let finish!: () => void;
      const finished = new Promise<void>((resolve) => (finish = resolve));
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachBatch: async ({ batch }) => {
          const end = ends.get(batch.partition) ?? 0;
          for (const m of batch.messages) {
            if (Number(m.offset) >= end) break;
            try {
              agg.ingest(batch.partition, m.offset, decodeRecordValue(m.value ?? ''));
            } catch (e) {
              if (!(e instanceof InvalidRecordError)) throw e;
            }
            if (Number(m.offset) + 1 >= end) pending.delete(batch.partition);
          }
          agg.drain();
          if (pending.size === 0) finish();
          await Promise.resolve();
        },
      });
      await finished;
    }
    const st = agg.stats();
    return { events: st.events, late: st.late };
  } finally {
    await consumer.disconnect();
    await admin.deleteGroups([group]).catch(() => undefined);
    await admin.disconnect();
  }
}
