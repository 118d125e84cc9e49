/**
 * The scoring service as its integration tests run it: in this process on the real Kafka and Cassandra, on topics and
 * a group of its own, a model folder of its own, a reader of its scores, and helpers to feed it and look at it.
 * Test-only (jest globals); not part of `@fleetpulse/scoring/testing`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnomalyScore, WindowRecord } from '@fleetpulse/contracts';
import { cassandraContactPoint, kafkaBrokers } from '@fleetpulse/compose';
import { createTestTopic, kafkaClient, testGroupId } from '@fleetpulse/compose/testing';
import type { Admin, Consumer, Producer } from 'kafkajs';
import { loadConfig, type ScoringConfig } from '../config';
import { startScoring, type RunningScoring } from '../service';

export const models = join(__dirname, '..', '..', 'models');
export const fixtures = join(__dirname, '..', '..', 'fixtures');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const kafka = kafkaClient();
export let admin: Admin;
export let producer: Producer;

beforeAll(async () => {
  admin = kafka.admin();
  producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
});
afterAll(async () => {
  await Promise.all([admin.disconnect(), producer.disconnect()]);
});

export interface Harness {
  service: RunningScoring;
  config: ScoringConfig;
  dir: string;
  source: string;
  /** The scores topic. */
  sink: string;
  scores: AnomalyScore[];
  /** Wall-clock arrival (ms) of each score, same index. */
  arrivals: number[];
  /** The anomaly.scores partition of each score, same index (scores of a partition arrive in the order written). */
  partitions: number[];
  /** The service's log lines (every service started by `restart` too). */
  logs: string[];
  reader: Consumer;
  /** Stops the service and starts another on the same config: same group, topics and models. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function harness(setup: (dir: string) => void, env: Record<string, string> = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'scoring-it-'));
  setup(dir);
  const source = await createTestTopic(admin, { partitions: 3 });
  const sink = await createTestTopic(admin, { partitions: 3 });
  const config = loadConfig({
    MODELS_DIR: dir,
    FLEETPULSE_KAFKA_BROKERS: kafkaBrokers().join(','),
    FLEETPULSE_CASSANDRA_CONTACT_POINTS: cassandraContactPoint(),
    FLEETPULSE_SCORING_GROUP: testGroupId(),
    FLEETPULSE_SCORING_SOURCE_TOPIC: source,
    FLEETPULSE_SCORING_SCORES_TOPIC: sink,
    FLEETPULSE_SCORING_PORT: '0',
    FLEETPULSE_SCORING_HOST: '127.0.0.1',
    FLEETPULSE_SCORING_SETTLE_MS: '50',
    FLEETPULSE_SCORING_SESSION_TIMEOUT_MS: '10000',
    ...env,
  });
  const logs: string[] = [];
  const scores: AnomalyScore[] = [];
  const arrivals: number[] = [];
  const partitions: number[] = [];
  const reader = kafka.consumer({ groupId: testGroupId() });
  await reader.connect();
  await reader.subscribe({ topic: sink, fromBeginning: true });
  await reader.run({
    eachMessage: async ({ message, partition }) => {
      scores.push(JSON.parse(message.value!.toString()) as AnomalyScore);
      arrivals.push(Date.now());
      partitions.push(partition);
    },
  });
  const h: Harness = {
    service: await startScoring(config, (l) => logs.push(l)),
    config,
    dir,
    source,
    sink,
    scores,
    arrivals,
    partitions,
    logs,
    reader,
    restart: async () => {
      await h.service.close();
      h.service = await startScoring(config, (l) => logs.push(l));
    },
    close: async () => {
      await reader.disconnect();
      await h.service.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

export async function publish(topic: string, records: readonly WindowRecord[]): Promise<void> {
  for (let i = 0; i < records.length; i += 2000)
    await producer.send({
      topic,
      messages: records.slice(i, i + 2000).map((r) => ({ key: r.deviceId, value: JSON.stringify(r) })),
    });
}

/** (device, windowStart) of every window record with all four metrics: what the default model scores. */
export function completeWindows(records: readonly WindowRecord[]): Set<string> {
  const all = ['temp', 'humidity', 'vib', 'volt'];
  return new Set(records.filter((r) => all.every((m) => m in r.metrics)).map((r) => `${r.deviceId}|${r.windowStart}`));
}

export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export function countBy(scores: readonly AnomalyScore[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of scores) {
    const k = `${s.deviceId}|${s.windowStart}|${s.model}`;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

/**
 * Committed offset of the group per partition (-1 when none, but 0 for a partition that never had a record) next
 * to the partition's end.
 */
export async function positions(topic: string, groupId: string): Promise<{ committed: string[]; ends: string[] }> {
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
  const ends = await admin.fetchTopicOffsets(topic);
  const byPartition = (l: { partition: number; offset: string }[]) =>
    [...l].sort((a, b) => a.partition - b.partition).map((o) => o.offset);
  const endOffsets = byPartition(ends);
  // A partition no record went to (a few devices' keys may all miss one) has nothing to commit: no commit (-1) is
  // its end.
  const committedOffsets = byPartition(committed!.partitions).map((c, i) =>
    c === '-1' && endOffsets[i] === '0' ? '0' : c,
  );
  return { committed: committedOffsets, ends: endOffsets };
}

export async function metricsText(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

export const sample = (text: string, name: string, labels: string): number =>
  Number(new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 'NaN');

/** The group's committed offsets once they reach the ends of the source topic (or after 15 s), next to the ends. */
export async function committedToEnd(h: Harness): Promise<{ committed: string[]; ends: string[] }> {
  let pos = await positions(h.source, h.config.groupId);
  for (const end = Date.now() + 15_000; pos.committed.join() !== pos.ends.join() && Date.now() < end; await sleep(200))
    pos = await positions(h.source, h.config.groupId);
  return pos;
}
