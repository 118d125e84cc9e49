import { randomUUID } from 'node:crypto';
import { kafkaBrokers } from '@fleetpulse/compose';
import { Kafka, logLevel } from 'kafkajs';
import { loadConfig } from './config';
import { startIngestion, type RunningIngestion } from './service';
import { readUntil } from './testing/kafka-reader';

// Several idempotent producers (FLEETPULSE_INGESTION_PRODUCERS) against the real Kafka: a device's records must land
// in the order its requests arrived, whichever producer's request goes out first. On a topic of the test's own (6
// partitions), deleted at the end.
const brokers = kafkaBrokers();
const kafka = new Kafka({ clientId: 'fleetpulse-test-producers', brokers, logLevel: logLevel.NOTHING });
const topic = `ingestion.test.producers.${randomUUID().slice(0, 8)}`;
let ingestion: RunningIngestion;

beforeAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 6, replicationFactor: 1 }] });
  await admin.disconnect();
  ingestion = await startIngestion(
    loadConfig({
      FLEETPULSE_ENV: 'development',
      FLEETPULSE_INGESTION_PORT: '0',
      FLEETPULSE_INGESTION_HOST: '127.0.0.1',
      FLEETPULSE_MQTT_PORT: 'off',
      FLEETPULSE_KAFKA_BROKERS: brokers.join(','),
      FLEETPULSE_INGESTION_TOPIC: topic,
      FLEETPULSE_INGESTION_PRODUCERS: '3',
      FLEETPULSE_PRODUCE_TIMEOUT_MS: '60000',
    }),
    () => undefined,
  );
});

afterAll(async () => {
  await ingestion?.close();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
});

it("keeps each device's events in arrival order across producers, under concurrent requests", async () => {
  expect(ingestion.producer.producers).toBe(3);
  const run = `pr-${randomUUID().slice(0, 8)}`;
  const devices = Array.from({ length: 30 }, (_, d) => `${run}-${d}`);
  const t0 = Date.now() - 60_000;
  const rounds = 60;
  // Requests handed to the pipeline one after the other without waiting (their arrival order), each of ten
  // devices' events, so that many requests wait for, or are in flight on, the three producers at once; every few
  // rounds the next ones come a tick later, so that they join queues while requests are in flight.
  // 64 metrics of 60-char names: ~4.3 kB an event, ~43 kB a request, so that the first producer's queue passes its
  // spill bound (256 KiB) and the requests spread over the producers.
  const metrics = (k: number) =>
    Object.fromEntries(Array.from({ length: 64 }, (_, m) => [`m${String(m).padStart(59, '0')}`, k]));
  const answers: Promise<unknown>[] = [];
  const grant = { token: 'dev-token', gateway: true as const };
  for (let k = 0; k < rounds; k++) {
    const of = devices.filter((_, d) => (d + k) % 3 === 0);
    const body = Buffer.from(
      JSON.stringify(of.map((deviceId) => ({ deviceId, ts: t0 + k, metrics: metrics(k), seq: k }))),
    );
    answers.push(ingestion.pipeline.ingest({ body, format: 'json', grant, source: 'http', receivedAt: Date.now() }));
    if (k % 10 === 9) await new Promise((r) => setImmediate(r));
  }
  const outcomes = await Promise.all(answers);
  expect(outcomes.every((o) => (o as { kind: string }).kind === 'accepted')).toBe(true);
  expect(ingestion.producer.peakRequestsInFlight).toBeGreaterThan(1);
  const expected = rounds * 10;
  const records = await readUntil(
    brokers,
    topic,
    (r) => r.key?.startsWith(run) === true,
    (rs) => rs.length >= expected,
    60_000,
  );
  expect(records).toHaveLength(expected);
  const partitionsUsed = new Set(records.map((r) => r.partition));
  expect(partitionsUsed.size).toBeGreaterThan(3); // the devices spread over the producers' partitions
  for (const device of devices) {
    const mine = records
      .filter((r) => r.key === device)
      .sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
    expect(new Set(mine.map((r) => r.partition)).size).toBe(1);
    // A record holds one device's events of one request: an array of one here.
    const seqs = mine.flatMap((r) => (JSON.parse(r.value.toString()) as { seq: number }[]).map((e) => e.seq));
    const sent = Array.from({ length: rounds }, (_, k) => k).filter((k) => (devices.indexOf(device) + k) % 3 === 0);
    expect(seqs).toEqual(sent);
  }
});
