import { randomUUID } from 'node:crypto';
import { silentLogger, stackDown, stackUp } from '@fleetpulse/compose';
import { connectedCassandra, kafkaClient } from '@fleetpulse/compose/testing';
import { Topics, type AggregateRow, type TelemetryEvent, type WindowRecord } from '@fleetpulse/contracts';
import type { Client } from 'cassandra-driver';
import type { Kafka, Producer } from 'kafkajs';
import {
  diffRows,
  expectedRows,
  indexRows,
  lateKey,
  readRows,
  readTopic,
  newTopic,
  processorProcesses,
  waitFor,
  type ProcessorProcess,
} from './testing/harness';
import { fleetStream, type Arrival } from './testing/stream';

const resolutions = ['1s', '10s', '60s'];
const metrics = ['temp', 'vib'];
// Events stamped with receivedAt in 2030: the wall clock never makes these devices idle, so every window the
// processor writes is closed by the records themselves and the reference can name them all.
const startTs = Date.UTC(2030, 0, 1);

let kafka: Kafka;
let producer: Producer;
let cassandra: Client;
const { start } = processorProcesses();

beforeAll(async () => {
  kafka = kafkaClient();
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  cassandra = await connectedCassandra();
});

afterAll(async () => {
  await producer.disconnect();
  await cassandra.shutdown();
});

/** A point's statistics, as a window record holds them per metric. */
function pointStats(r: AggregateRow) {
  const { count, sum, min, max, mean, stddev, first, last } = r;
  return { count, sum, min, max, mean, stddev, first, last };
}

/** One record per arrival and device: a single event, or the device's array when it sent several at once. */
async function produce(topic: string, arrivals: Arrival[]): Promise<void> {
  const messages = arrivals.flatMap((a) => {
    const byDevice = new Map<string, TelemetryEvent[]>();
    for (const e of a.events) byDevice.set(e.deviceId, [...(byDevice.get(e.deviceId) ?? []), e]);
    return [...byDevice].map(([deviceId, es]) => ({
      key: deviceId,
      value: JSON.stringify(es.length === 1 ? es[0] : es),
    }));
  });
  for (let i = 0; i < messages.length; i += 500)
    await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 500) });
}

function processorEnv(topic: string, group: string): Record<string, string> {
  return {
    FLEETPULSE_PROCESSOR_TOPIC: topic,
    FLEETPULSE_PROCESSOR_GROUP: group,
    FLEETPULSE_COMMIT_INTERVAL_MS: '200',
    FLEETPULSE_PROCESSOR_SESSION_TIMEOUT_MS: '8000',
  };
}

/** Waits until Cassandra holds as many rows as expected for the devices, then compares them exactly. */
async function expectExactRows(topic: string, devicePrefix: string, devices: number, readings: number): Promise<void> {
  const records = await readTopic(kafka, topic);
  const expected = indexRows(
    expectedRows(records, { resolutions, latenessMs: 2000, idleMs: 5000, closeAll: false }).rows,
  );
  expect(expected.size).toBeGreaterThan(1000);
  const query = {
    devices: Array.from({ length: devices }, (_, d) => `${devicePrefix}-${d}`),
    metrics,
    resolutions,
    fromMs: startTs - 60_000,
    toMs: startTs + readings * 100 + 120_000,
  };
  let actual = new Map();
  await waitFor(
    'every expected row in Cassandra',
    async () => {
      actual = indexRows(await readRows(cassandra, query));
      return actual.size >= expected.size;
    },
    120_000,
    1000,
  );
  expect(diffRows(expected, actual)).toEqual([]);
}

function stream(devicePrefix: string) {
  return fleetStream({
    seed: 7,
    devicePrefix,
    devices: 12,
    readings: 400,
    intervalMs: 100,
    startTs,
    stampReceivedAt: true,
  });
}

describe('stream-processor against the real Kafka and Cassandra', () => {
  it('writes exactly the contract rows for a stream sent through the real ingestion, late events to telemetry.late', async () => {
    const { startIngestion, loadConfig } = await import('@fleetpulse/ingestion');
    // A topic of its own (telemetry.raw may hold anything a developer's stack has seen): the same path otherwise.
    const topic = await newTopic(kafka, 6);
    const endsOf = async (t: string) => {
      const admin = kafka.admin();
      await admin.connect();
      try {
        return (await admin.fetchTopicOffsets(t)).map((o) => ({ partition: o.partition, offset: o.high }));
      } finally {
        await admin.disconnect();
      }
    };
    const lateBefore = await endsOf(Topics.late);
    const liveBefore = await endsOf(Topics.live);
    const ingestion = await startIngestion(
      loadConfig({
        FLEETPULSE_ENV: 'development',
        FLEETPULSE_INGESTION_PORT: '0',
        FLEETPULSE_INGESTION_HOST: '127.0.0.1',
        FLEETPULSE_INGESTION_TOPIC: topic,
        FLEETPULSE_MQTT_PORT: 'off',
      }),
      () => undefined,
    );
    const prefix = `sp-${randomUUID().slice(0, 8)}`;
    const now = Date.now();
    const arrivals = fleetStream({
      seed: 11,
      devicePrefix: prefix,
      devices: 8,
      readings: 300,
      intervalMs: 100,
      startTs: now - 120_000,
      stampReceivedAt: false,
    });
    try {
      for (let i = 0; i < arrivals.length; i += 40) {
        const events = arrivals.slice(i, i + 40).flatMap((a) => a.events);
        const res = await fetch(`http://127.0.0.1:${ingestion.port}/v1/telemetry`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer dev-token' },
          body: JSON.stringify(events),
        });
        expect(res.status).toBe(202);
      }
    } finally {
      await ingestion.close();
    }
    const group = `sp-test-${randomUUID()}`;
    start({
      FLEETPULSE_PROCESSOR_TOPIC: topic,
      FLEETPULSE_PROCESSOR_GROUP: group,
      FLEETPULSE_COMMIT_INTERVAL_MS: '200',
    });
    // The processor's wall clock passes every receivedAt + idle timeout, closing every window: compare them all.
    const records = await readTopic(kafka, topic);
    const { rows, lateEvents } = expectedRows(records, { resolutions, latenessMs: 2000, idleMs: 5000, closeAll: true });
    const mine = rows.filter((r) => r.deviceId.startsWith(prefix));
    const expected = indexRows(mine);
    expect(expected.size).toBeGreaterThan(400);
    let actual = new Map();
    const query = {
      devices: Array.from({ length: 8 }, (_, d) => `${prefix}-${d}`),
      metrics,
      resolutions,
      fromMs: now - 200_000,
      toMs: now + 60_000,
    };
    await waitFor(
      'every expected row in Cassandra',
      async () => {
        actual = indexRows(await readRows(cassandra, query));
        return actual.size >= expected.size;
      },
      120_000,
      1000,
    );
    expect(diffRows(expected, actual)).toEqual([]);
    // Late events: exactly the reference's list, each once (one uninterrupted run publishes each once).
    const expectedLate = lateEvents
      .filter((e) => e.deviceId.startsWith(prefix))
      .map(lateKey)
      .sort();
    expect(expectedLate.length).toBeGreaterThan(0);
    let lateSeen: string[] = [];
    await waitFor(
      'every late event on telemetry.late',
      async () => {
        lateSeen = (await readTopic(kafka, Topics.late, lateBefore))
          .map((r) => r.value as TelemetryEvent)
          .filter((e) => e.deviceId.startsWith(prefix))
          .map(lateKey)
          .sort();
        return lateSeen.length >= expectedLate.length;
      },
      60_000,
      1000,
    );
    expect(lateSeen).toEqual(expectedLate);
    // Provisional snapshots on metrics.live: finest windows only, final false, never more than the final record
    // holds (a snapshot is the window so far), and never written to Cassandra (the rows above are exact).
    const finals = indexRows(mine.filter((r) => r.resolution === '1s'));
    const snapshots = (await readTopic(kafka, Topics.live, liveBefore))
      .map((r) => r.value as unknown as WindowRecord)
      .filter((w) => w.deviceId.startsWith(prefix));
    expect(snapshots.length).toBeGreaterThan(0);
    for (const w of snapshots) {
      expect([w.resolution, w.final, w.windowEnd - w.windowStart]).toEqual(['1s', false, 1000]);
      for (const [metric, st] of Object.entries(w.metrics)) {
        const final = finals.get(`${w.deviceId}|${metric}|1s|${w.windowStart}`);
        expect(final).toBeDefined();
        expect(st.count).toBeLessThanOrEqual(final!.count);
        if (st.count === final!.count) expect(st).toEqual(pointStats(final!));
      }
    }
  });

  it('after SIGKILL mid-stream and a restart, holds the rows of an uninterrupted run: none missing, none double-counted', async () => {
    const topic = await newTopic(kafka, 3);
    const prefix = `crash-${randomUUID().slice(0, 8)}`;
    const arrivals = stream(prefix);
    const group = `crash-${randomUUID()}`;
    const first = start(processorEnv(topic, group));
    await produce(topic, arrivals.slice(0, Math.floor(arrivals.length * 0.6)));
    await waitFor('the processor to read', async () => first.output.join('').includes('partition'), 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    // Killed while it is still reading what was just produced: open windows, an uncommitted tail.
    await produce(topic, arrivals.slice(Math.floor(arrivals.length * 0.6), Math.floor(arrivals.length * 0.8)));
    first.child.kill('SIGKILL');
    await first.exited;
    const second = start(processorEnv(topic, group));
    await produce(topic, arrivals.slice(Math.floor(arrivals.length * 0.8)));
    await expectExactRows(topic, prefix, 12, 400);
    expect(second.output.join('')).toMatch(/\(resume\)/);
  });

  it('rides out Cassandra stopped for 30 s mid-stream with the same rows', async () => {
    const topic = await newTopic(kafka, 3);
    const prefix = `cass-${randomUUID().slice(0, 8)}`;
    const arrivals = stream(prefix);
    const processor = start(processorEnv(topic, `cass-${randomUUID()}`));
    await produce(topic, arrivals.slice(0, Math.floor(arrivals.length / 2)));
    await waitFor('the processor to read', async () => processor.output.join('').includes('from offset'), 60_000);
    // 'external' (a Cassandra this launcher did not start) would stop nothing and test nothing.
    expect(await stackDown({ only: ['cassandra'], log: silentLogger })).toEqual({ cassandra: 'stopped' });
    const down = Date.now();
    await produce(topic, arrivals.slice(Math.floor(arrivals.length / 2)));
    await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - down))));
    await stackUp({ log: silentLogger, topics: false, schema: false });
    await cassandra.shutdown();
    cassandra = await connectedCassandra();
    await expectExactRows(topic, prefix, 12, 400);
    // The outage reached the processor: its writes failed and were retried, not skipped.
    expect(processor.output.join('')).toMatch(/cassandra write failed/);
  }, 300_000);

  it('rides out Kafka stopped for 20 s mid-stream with the same rows: failed flushes are read again, not skipped', async () => {
    const topic = await newTopic(kafka, 3);
    const prefix = `kafka-${randomUUID().slice(0, 8)}`;
    const arrivals = stream(prefix);
    const processor = start(processorEnv(topic, `kafka-${randomUUID()}`));
    await produce(topic, arrivals.slice(0, Math.floor(arrivals.length / 2)));
    await waitFor('the processor to read', async () => processor.output.join('').includes('from offset'), 60_000);
    // Stopped while the processor flushes and commits every 200 ms: its publishes and commits fail.
    expect(await stackDown({ only: ['kafka'], log: silentLogger })).toEqual({ kafka: 'stopped' });
    await new Promise((r) => setTimeout(r, 20_000));
    await stackUp({ log: silentLogger, topics: false, schema: false });
    await producer.disconnect();
    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await produce(topic, arrivals.slice(Math.floor(arrivals.length / 2)));
    await expectExactRows(topic, prefix, 12, 400);
    expect(processor.child.exitCode).toBeNull();
    // The outage reached the processor (its client lost the broker; a flush then in flight failed and was read again).
    expect(processor.output.join('')).toMatch(/kafka error: .*ECONNREFUSED/);
  }, 300_000);

  it('splits partitions over two instances and, when one is killed, the other writes the same rows', async () => {
    const topic = await newTopic(kafka, 4);
    const prefix = `pair-${randomUUID().slice(0, 8)}`;
    const arrivals = stream(prefix);
    const group = `pair-${randomUUID()}`;
    const a = start(processorEnv(topic, group));
    const b = start(processorEnv(topic, group));
    await waitFor(
      'both instances to hold partitions',
      async () => {
        const assigned = (p: ProcessorProcess) => /partitions \[\d/.test(p.output.join('').split('joined').pop() ?? '');
        return assigned(a) && assigned(b);
      },
      60_000,
    );
    await produce(topic, arrivals.slice(0, Math.floor(arrivals.length / 2)));
    await new Promise((r) => setTimeout(r, 2000));
    a.child.kill('SIGKILL');
    await produce(topic, arrivals.slice(Math.floor(arrivals.length / 2)));
    await expectExactRows(topic, prefix, 12, 400);
  });
});
