/*
 * The local cluster (issue 14): `npm run stack -- up --cluster`, 3 Kafka brokers and 3 Cassandra nodes on 127.0.0.1-3,
 * 3 replicas, min.insync.replicas 2, LOCAL_QUORUM. Started here if it is not up (and left running).
 *
 * - failures: steady load through the ingestion service (its own process) at `eventsPerSec` (devices x 10 Hz, 500
 *   readings a request, every request sent again until it is answered 202, as devices do), one stream-processor
 *   (its own process); phases of `phaseSeconds`: steady, broker 2 stopped, broker 2 back, Cassandra node 3 stopped,
 *   node 3 back. Per phase: events/s accepted, request latency p50/p99/max, requests refused. Then: every accepted
 *   event is read back from Kafka (lost = accepted and not there), and every device's 1 s windows in Cassandra hold
 *   exactly its accepted readings once each, less those reported late for 1 s on telemetry.late (the sum of the
 *   windows' counts plus the late readings against the distinct readings accepted);
 *   the end delay (last answer -> the processor committed at the topic's end); how long each node took to come back.
 * - instances: a pre-filled topic (devices x seconds, one reading a second each) drained by 1, 2, then 3 processor
 *   instances in one consumer group: events/s from the first instance's start to the group's commits at the end.
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import {
  cassandraContactPoints,
  clusterStackConfig,
  kafkaBrokers,
  stackDown,
  stackUp,
  stderrLogger,
} from '@fleetpulse/compose';
import { bucketsBetween, Topics, windowRecordFromRow, type TelemetryEvent } from '@fleetpulse/contracts';
import { cassandraClientOptions } from '@fleetpulse/runtime/cassandra';
import { sleep } from '@fleetpulse/runtime';
import { Client } from 'cassandra-driver';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { fill } from './processor-input';
import { quantile } from './quantile';
import {
  atEnd,
  BenchTtl,
  committedOffsets,
  endOffsets,
  freePort,
  repo,
  startService,
  waitReady,
  type ServiceProcess,
} from './services';

export interface BenchClusterOptions {
  /** [eventsPerSec=10000] offered through ingestion (devices at 10 Hz). */
  eventsPerSec?: number;
  /** [phaseSeconds=20] */
  phaseSeconds?: number;
  /** [instances=[1,2,3]] processor instances of each drain. */
  instances?: number[];
  /** [drainDevices=10000] */
  drainDevices?: number;
  /** [drainSeconds=30] event-time seconds of the drained topic (one reading per device and second). */
  drainSeconds?: number;
  /** [failures=true] run the failure phases (else only the drains). */
  failures?: boolean;
}

export interface ClusterPhase {
  name: string;
  seconds: number;
  acceptedPerSec: number;
  latencyMs: { p50: number; p99: number; max: number };
  refused: number;
}

export interface BenchClusterResult {
  offeredPerSec: number;
  phases: ClusterPhase[];
  accepted: number;
  /** Accepted (202) and not in Kafka. */
  lost: number;
  /** Accepted readings late for their 1 s window (on telemetry.late): not in the windows, by the contract. */
  lateFor1s: number;
  /** Devices whose 1 s windows' counts plus their late readings differ from their distinct accepted readings. */
  wrongDevices: number;
  /** Last answer -> the processor's commits at the topic's end, ms (null: not within 5 min). */
  endDelayMs: number | null;
  /** How long `up` took to bring each stopped node back, ms. */
  nodeBackMs: { broker: number; cassandra: number };
  drains: { instances: number; events: number; seconds: number; eventsPerSec: number }[];
  loadAverage: number[];
}

const config = clusterStackConfig();

function clusterEnv(): Record<string, string> {
  return {
    FLEETPULSE_KAFKA_BROKERS: kafkaBrokers(config).join(','),
    FLEETPULSE_CASSANDRA_CONTACT_POINTS: cassandraContactPoints(config).join(','),
  };
}

async function startOnCluster(name: string, script: string, env: Record<string, string>): Promise<ServiceProcess> {
  const port = await freePort();
  const portVar = name.startsWith('ingestion') ? 'FLEETPULSE_INGESTION_PORT' : 'FLEETPULSE_PROCESSOR_PORT';
  const proc = startService(name, join(repo, script), { ...clusterEnv(), ...env, [portVar]: String(port) }, port);
  await waitReady(proc, 120_000);
  return proc;
}

const startProcessor = (name: string, topic: string, group: string) =>
  startOnCluster(name, 'stream-processor/dist/main.js', {
    FLEETPULSE_PROCESSOR_TOPIC: topic,
    FLEETPULSE_PROCESSOR_GROUP: group,
    FLEETPULSE_PROCESSOR_HOST: '127.0.0.1',
    FLEETPULSE_TTL: BenchTtl,
  });

async function waitAtEnd(admin: Admin, group: string, topic: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [c, e] = await Promise.all([committedOffsets(admin, group, topic), endOffsets(admin, topic)]);
    if (atEnd(c, e)) return true;
    await sleep(250);
  }
  return false;
}

async function newTopic(admin: Admin, name: string): Promise<string> {
  const topic = `bench.${name}.${Date.now()}`;
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: config.topicPartitions, replicationFactor: config.replicationFactor }],
  });
  // The controller has leaders; every broker's metadata may lag a moment behind it (a producer would be told
  // "does not host this topic-partition").
  await sleep(3000);
  return topic;
}

/** Every event of `topic` from `since` (partition -> offset; else the start) to its end now, per device: seqs. */
async function readSeqs(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  keep: (e: TelemetryEvent, headers: Record<string, string>) => boolean,
  since = new Map<number, number>(),
): Promise<Map<string, Set<number>>> {
  const seqs = new Map<string, Set<number>>();
  const ends = await endOffsets(admin, topic);
  const remaining = new Map([...ends].filter(([p, h]) => h > (since.get(p) ?? 0)));
  if (remaining.size === 0) return seqs;
  const reader = kafka.consumer({ groupId: `bench-reader-${randomUUID()}` });
  await reader.connect();
  await reader.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve) => {
    void reader.run({
      eachMessage: async ({ partition, message }) => {
        const offset = Number(message.offset);
        if (offset >= (since.get(partition) ?? 0)) {
          const headers = Object.fromEntries(
            Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v ?? '')]),
          );
          const v = JSON.parse(message.value!.toString()) as TelemetryEvent | TelemetryEvent[];
          for (const e of Array.isArray(v) ? v : [v]) {
            if (!keep(e, headers)) continue;
            let s = seqs.get(e.deviceId);
            if (!s) seqs.set(e.deviceId, (s = new Set()));
            s.add(e.seq!);
          }
        }
        if (offset + 1 >= (remaining.get(partition) ?? 0)) remaining.delete(partition);
        if (remaining.size === 0) resolve();
      },
    });
    for (const [partition, offset] of since) reader.seek({ topic, partition, offset: String(offset) });
  });
  await reader.disconnect();
  return seqs;
}

export async function benchCluster(opts: BenchClusterOptions = {}): Promise<BenchClusterResult> {
  const o = {
    eventsPerSec: 10_000,
    phaseSeconds: 20,
    instances: [1, 2, 3],
    drainDevices: 10_000,
    drainSeconds: 30,
    ...opts,
  };
  await stackUp({ config, log: stderrLogger });
  const kafka = new Kafka({ clientId: 'bench-cluster', brokers: kafkaBrokers(config), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const cassandra = new Client(
    cassandraClientOptions('bench', {
      cassandraContactPoints: cassandraContactPoints(config),
      cassandraDataCenter: 'datacenter1',
      keyspace: 'fleetpulse',
    }),
  );
  await cassandra.connect();
  const procs: ServiceProcess[] = [];
  try {
    // ---- failures under load
    const topic = await newTopic(admin, 'cluster');
    const lateFrom = await endOffsets(admin, Topics.late);
    const group = `bench-cluster-${randomUUID()}`;
    const ingestion = await startOnCluster('ingestion', 'ingestion/dist/main.js', {
      FLEETPULSE_ENV: 'development',
      FLEETPULSE_INGESTION_HOST: '127.0.0.1',
      FLEETPULSE_INGESTION_TOPIC: topic,
      FLEETPULSE_MQTT_PORT: 'off',
    });
    procs.push(ingestion);
    procs.push(await startProcessor('processor', topic, group));
    const devices = Math.max(1, Math.round(o.eventsPerSec / 10));
    const prefix = `bc${Date.now().toString(36)}`;
    const accepted = new Map<string, Set<number>>(); // device -> seqs answered 202
    let phase = { name: 'steady', start: Date.now(), accepted: 0, latencies: [] as number[], refused: 0 };
    const phases: ClusterPhase[] = [];
    const endPhase = (next: string) => {
      const seconds = (Date.now() - phase.start) / 1000;
      const l = [...phase.latencies].sort((a, b) => a - b);
      phases.push({
        name: phase.name,
        seconds: Math.round(seconds),
        acceptedPerSec: Math.round(phase.accepted / seconds),
        latencyMs: { p50: quantile(l, 0.5), p99: quantile(l, 0.99), max: l.length ? Math.max(...l) : 0 },
        refused: phase.refused,
      });
      process.stderr.write(`  ${phase.name}: ${phases.at(-1)!.acceptedPerSec} events/s accepted\n`);
      phase = { name: next, start: Date.now(), accepted: 0, latencies: [], refused: 0 };
    };
    const url = `http://127.0.0.1:${ingestion.port}/v1/telemetry`;
    const post = async (events: TelemetryEvent[]) => {
      const body = JSON.stringify(events);
      for (;;) {
        const t = performance.now();
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer dev-token' },
          body,
        }).catch(() => undefined);
        if (res) await res.arrayBuffer();
        phase.latencies.push(performance.now() - t);
        if (res?.status === 202) break;
        phase.refused++;
        await sleep(200);
      }
      for (const e of events) {
        let s = accepted.get(e.deviceId);
        if (!s) accepted.set(e.deviceId, (s = new Set()));
        s.add(e.seq!);
      }
      phase.accepted += events.length;
    };
    let loading = true;
    let lastAnswer = 0;
    const loadStartedAt = Date.now();
    const load = (async () => {
      const inFlight = new Set<Promise<void>>();
      for (let tick = 0; loading; tick++) {
        const at = Date.now();
        for (let from = 0; from < devices; from += 500) {
          const events = Array.from({ length: Math.min(500, devices - from) }, (_, i): TelemetryEvent => {
            const d = from + i;
            return {
              deviceId: `${prefix}-${d}`,
              ts: at,
              seq: tick,
              metrics: { temp: 20 + ((tick + d) % 13) / 4, humidity: 40 + (d % 9), vib: (tick % 7) / 20, volt: 3.3 },
            };
          });
          const p = post(events).then(() => {
            lastAnswer = Date.now();
            inFlight.delete(p);
          });
          inFlight.add(p);
        }
        // A saturated service shows as fewer accepted, not as an unbounded queue here.
        while (inFlight.size > 64) await Promise.race(inFlight);
        await sleep(Math.max(0, 100 - (Date.now() - at)));
      }
      await Promise.all(inFlight);
    })();
    const nodeBackMs = { broker: 0, cassandra: 0 };
    await sleep(o.phaseSeconds * 1000);
    endPhase('broker 2 stopped');
    await stackDown({ config, only: ['kafka'], nodes: [2], log: stderrLogger });
    await sleep(o.phaseSeconds * 1000);
    endPhase('broker 2 back');
    let t = Date.now();
    await stackUp({ config, log: stderrLogger, topics: false, schema: false });
    nodeBackMs.broker = Date.now() - t;
    await sleep(o.phaseSeconds * 1000);
    endPhase('Cassandra node 3 stopped');
    await stackDown({ config, only: ['cassandra'], nodes: [3], log: stderrLogger });
    await sleep(o.phaseSeconds * 1000);
    endPhase('Cassandra node 3 back');
    t = Date.now();
    await stackUp({ config, log: stderrLogger, topics: false, schema: false });
    nodeBackMs.cassandra = Date.now() - t;
    await sleep(o.phaseSeconds * 1000);
    loading = false;
    await load;
    endPhase('end');
    const done = await waitAtEnd(admin, group, topic, 300_000);
    const endDelayMs = done ? Date.now() - lastAnswer : null;

    // Every accepted reading in Kafka.
    const inKafka = await readSeqs(kafka, admin, topic, () => true);
    let lost = 0;
    let total = 0;
    for (const [d, seqs] of accepted) {
      total += seqs.size;
      for (const s of seqs) if (!inKafka.get(d)?.has(s)) lost++;
    }

    // Every device's 1 s windows hold each accepted reading once, but those late for them (telemetry.late, `missed`
    // naming 1s: a request retried or overtaken by a later one by more than the allowed lateness).
    const late1s = await readSeqs(
      kafka,
      admin,
      Topics.late,
      (e, h) => e.deviceId.startsWith(`${prefix}-`) && (h.missed ?? '').split(',').includes('1s'),
      lateFrom,
    );
    let late = 0;
    for (const s of late1s.values()) late += s.size;
    let wrongDevices = 0;
    const buckets = bucketsBetween(loadStartedAt - 60_000, Date.now(), 1000);
    for (const [d, seqs] of accepted) {
      let count = 0;
      for (const bucket of buckets) {
        const rs = await cassandra.execute(
          'SELECT device_id, resolution, window_start, window_end, metrics FROM windows WHERE device_id = ? AND resolution = ? AND bucket = ?',
          [d, '1s', bucket],
          { prepare: true, fetchSize: 10_000 },
        );
        for (const row of rs.rows) count += windowRecordFromRow(row).metrics.temp?.count ?? 0;
      }
      if (count + (late1s.get(d)?.size ?? 0) !== seqs.size) wrongDevices++;
    }
    process.stderr.write(
      `  accepted ${total}, lost ${lost}, late for 1 s ${late}, devices with wrong 1 s windows ${wrongDevices}, end delay ${endDelayMs} ms\n`,
    );
    await Promise.all(procs.splice(0).map((p) => p.stop()));
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);

    // ---- processor instances
    const drains: BenchClusterResult['drains'] = [];
    for (const n of o.instances) {
      const layout = {
        devices: o.drainDevices,
        seconds: o.drainSeconds,
        perRecord: 1,
        partitions: config.topicPartitions,
        // In the past: the wall clock closes the last windows by idleness, so the group commits at the end.
        t0: Date.now() - 2 * 3_600_000 + n * 600_000,
      };
      // A broker just brought back may not host a new topic's partitions yet: a fill it refuses starts over on a new
      // topic (never half a topic twice).
      let drainTopic = '';
      for (let attempt = 1; ; attempt++) {
        drainTopic = await newTopic(admin, `cluster-drain-${n}`);
        try {
          await fill(kafka, drainTopic, `bd${n}${Date.now().toString(36)}`, layout);
          break;
        } catch (e) {
          await admin.deleteTopics({ topics: [drainTopic] }).catch(() => undefined);
          if (attempt === 3) throw e;
          process.stderr.write(`  filling failed (${String(e)}); again on a new topic\n`);
          await sleep(5000);
        }
      }
      const drainGroup = `bench-cluster-drain-${randomUUID()}`;
      const started = Date.now();
      for (let i = 0; i < n; i++) procs.push(await startProcessor(`processor-${n}.${i}`, drainTopic, drainGroup));
      const ok = await waitAtEnd(admin, drainGroup, drainTopic, 600_000);
      const seconds = (Date.now() - started) / 1000;
      const events = o.drainDevices * o.drainSeconds;
      drains.push({
        instances: n,
        events,
        seconds: Math.round(seconds),
        eventsPerSec: ok ? Math.round(events / seconds) : 0,
      });
      process.stderr.write(`  ${n} instance(s): ${drains.at(-1)!.eventsPerSec} events/s\n`);
      await Promise.all(procs.splice(0).map((p) => p.stop()));
      await admin.deleteTopics({ topics: [drainTopic] }).catch(() => undefined);
    }
    return {
      offeredPerSec: devices * 10,
      phases,
      accepted: total,
      lost,
      lateFor1s: late,
      wrongDevices,
      endDelayMs,
      nodeBackMs,
      drains,
      loadAverage: loadavg().map((x) => Number(x.toFixed(1))),
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await admin.disconnect();
    await cassandra.shutdown();
  }
}
