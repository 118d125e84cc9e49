import { randomUUID } from 'node:crypto';
import { kafkaBrokers } from '@fleetpulse/compose';
import { Kafka, logLevel } from 'kafkajs';
import { loadConfig } from './config';
import { KafkaUnavailableError } from './errors';
import { GroupCommitProducer, type OutgoingRecord } from './producer';
import { startIngestion } from './service';
import { readUntil } from './testing/kafka-reader';

// Group commits bounded in bytes, against the real Kafka. kafkajs sends what it is given in one request and does
// not split at the broker's limit, so before the bound a few large requests waiting together failed every request of
// their group. On a topic of the test's own, deleted at the end: one partition (every record shares one batch) and
// `max.message.bytes` 2 MiB (the launcher's broker takes 16 MiB, compose/src/kafka.ts; Kafka's default is 1 MiB),
// so that a few requests of 1 MiB make a group over the limit.
const brokers = kafkaBrokers();
const kafka = new Kafka({ clientId: 'fleetpulse-test-group-commit', brokers, logLevel: logLevel.NOTHING });
const topic = `ingestion.test.group-commit.${randomUUID().slice(0, 8)}`;
const MiB = 1024 * 1024;

beforeAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      {
        topic,
        numPartitions: 1,
        replicationFactor: 1,
        configEntries: [{ name: 'max.message.bytes', value: String(2 * MiB) }],
      },
    ],
  });
  await admin.disconnect();
});

afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
});

async function producer(maxRequestBytes?: number): Promise<GroupCommitProducer> {
  const p = new GroupCommitProducer(kafka, {
    maxInFlightEvents: 1_000_000,
    produceTimeoutMs: 60_000,
    ...(maxRequestBytes === undefined ? { topics: [topic] } : { maxRequestBytes }),
  });
  await p.connect();
  return p;
}

/** The test topic's records of keys starting with `run`, once there are `n`. */
const recordsOf = (run: string, n: number) =>
  readUntil(
    brokers,
    topic,
    (r) => r.key?.startsWith(run) === true,
    (rs) => rs.length >= n,
    60_000,
  );

/** Four 900 kB records and forty small ones, handed over in one tick: they wait together for one group commit. */
function together(p: GroupCommitProducer, run: string): Promise<string>[] {
  const rec = (key: string, bytes: number): OutgoingRecord[] => [{ topic, key, value: Buffer.alloc(bytes, 0x61) }];
  const sends: Promise<void>[] = [];
  for (let i = 0; i < 44; i++)
    sends.push(i % 11 === 0 ? p.send(rec(`${run}-big-${i}`, 900_000), 1) : p.send(rec(`${run}-small-${i}`, 200), 1));
  return sends.map((s) =>
    s.then(
      () => 'ok',
      (e: Error) => (e instanceof KafkaUnavailableError ? 'failed' : e.message),
    ),
  );
}

describe('group commits bounded in bytes per Kafka request', () => {
  it('acknowledges large records next to small ones, all of them in Kafka', async () => {
    const p = await producer();
    expect(p.maxRequestBytes).toBe(2 * MiB - 1024); // the topic's max.message.bytes, as the broker reports it
    const run = randomUUID().slice(0, 8);
    try {
      expect(await Promise.all(together(p, run))).toEqual(Array<string>(44).fill('ok'));
    } finally {
      await p.close();
    }
    const records = await recordsOf(run, 44);
    expect(records.filter((r) => r.value.length === 900_000)).toHaveLength(4);
    expect(records.filter((r) => r.value.length === 200)).toHaveLength(40);
  });

  it('(what the bound prevents) the same group in one request is refused whole by the broker', async () => {
    const p = await producer(64 * MiB);
    try {
      const outcomes = await Promise.all(together(p, randomUUID().slice(0, 8)));
      expect(outcomes.filter((o) => o === 'failed')).toHaveLength(44);
    } finally {
      await p.close();
    }
  });

  it('answers 202 to large bodies posted next to small ones, with every event in Kafka', async () => {
    const ingestion = await startIngestion(
      loadConfig({
        FLEETPULSE_ENV: 'development',
        FLEETPULSE_INGESTION_PORT: '0',
        FLEETPULSE_MQTT_PORT: 'off',
        FLEETPULSE_KAFKA_BROKERS: brokers.join(','),
        FLEETPULSE_INGESTION_TOPIC: topic,
        FLEETPULSE_PRODUCE_TIMEOUT_MS: '60000',
      }),
      () => undefined,
    );
    const run = `gc-${randomUUID().slice(0, 8)}`;
    const t0 = Date.now() - 60_000;
    // 64 metrics of 60-char names: ~4.3 kB an event; 220 events of one device make a 1 MB body and record.
    const metrics = Object.fromEntries(Array.from({ length: 64 }, (_, m) => [`m${String(m).padStart(59, '0')}`, m]));
    const big = (d: string) =>
      JSON.stringify(Array.from({ length: 220 }, (_, i) => ({ deviceId: d, ts: t0 + i, metrics, seq: i })));
    const small = (d: string) => JSON.stringify([{ deviceId: d, ts: t0, metrics: { temp: 1 }, seq: 0 }]);
    const bodies = Array.from({ length: 34 }, (_, i) => (i % 3 === 0 ? big(`${run}-big-${i}`) : small(`${run}-${i}`)));
    expect(Buffer.byteLength(bodies[0]!)).toBeGreaterThan(900_000);
    // The requests are handed to the producer together once all are parsed, as under load: one group commit.
    const send = ingestion.producer.send.bind(ingestion.producer);
    const held: (() => void)[] = [];
    ingestion.producer.send = (records, events) =>
      new Promise<void>((resolve, reject) => {
        held.push(() => void send(records, events).then(resolve, reject));
        if (held.length === bodies.length) for (const go of held.splice(0)) go();
      });
    try {
      const answers = await Promise.all(
        bodies.map((body) =>
          fetch(`http://127.0.0.1:${ingestion.port}/v1/telemetry`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: 'Bearer dev-token' },
            body,
          }).then((r) => r.status),
        ),
      );
      expect(answers).toEqual(Array<number>(34).fill(202));
    } finally {
      await ingestion.close();
    }
    const records = await recordsOf(run, 34);
    const events = (key: string) =>
      records.filter((r) => r.key === key).flatMap((r) => [JSON.parse(r.value.toString()) as unknown].flat()).length;
    for (let i = 0; i < 34; i++)
      expect(events(i % 3 === 0 ? `${run}-big-${i}` : `${run}-${i}`)).toBe(i % 3 === 0 ? 220 : 1);
  });
});
