import { randomUUID } from 'node:crypto';
import { connectedCassandra, kafkaClient } from '@fleetpulse/compose/testing';
import { Topics, type TelemetryEvent } from '@fleetpulse/contracts';
import type { Client } from 'cassandra-driver';
import type { Kafka, Producer } from 'kafkajs';
import {
  diffRows,
  expectedRows,
  indexRows,
  lateKey,
  newTopic,
  processorProcesses,
  readRows,
  readTopic,
  waitFor,
  type ProcessorProcess,
} from './testing/harness';

/*
 * Contract v2, bounded state and cardinality, on the real Kafka and Cassandra: devices that leave the processor's
 * memory and come back (late, retrying, a week later), across a partition move between instances and a SIGKILL, give
 * exactly the naive reference's rows and late events; a device flooding metric names gets its excess events to
 * telemetry.dlq, named, and nothing stalls.
 */

const resolutions = ['1s', '10s', '60s'];
// receivedAt in 2030: the wall clock never makes these devices idle; the records' own receivedAt do.
const T = Date.UTC(2030, 5, 1);
let kafka: Kafka;
let producer: Producer;
let cassandra: Client;
const { start } = processorProcesses({
  FLEETPULSE_COMMIT_INTERVAL_MS: '200',
  FLEETPULSE_PROCESSOR_SESSION_TIMEOUT_MS: '8000',
});

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

/** Each event its own record, keyed by device; `partitionOf` pins a device to a partition (else the key decides). */
async function send(
  topic: string,
  events: TelemetryEvent[],
  partitionOf?: (deviceId: string) => number,
): Promise<void> {
  const messages = events.map((e) => ({
    key: e.deviceId,
    value: JSON.stringify(e),
    ...(partitionOf ? { partition: partitionOf(e.deviceId) } : {}),
  }));
  for (let i = 0; i < messages.length; i += 1000)
    await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 1000) });
}

/** A processor's Prometheus counter (summed over labels), read from the port it logged. */
async function metric(p: ProcessorProcess, name: string, labels = ''): Promise<number> {
  const port = /health on :(\d+)/.exec(p.output.join(''))?.[1];
  if (!port) return 0;
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? ([0-9.e+]+)$`, 'gm')))
    if ((m[1] ?? '').includes(labels)) sum += Number(m[2]);
  return sum;
}

async function topicEnds(topic: string): Promise<{ partition: number; offset: string }[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).map((o) => ({ partition: o.partition, offset: o.high }));
  } finally {
    await admin.disconnect();
  }
}

describe('fleet scale: bounded state and cardinality on the real Kafka and Cassandra', () => {
  it('devices out of memory come back exactly: late, retrying, a week later, across a partition move and a SIGKILL', async () => {
    const topic = await newTopic(kafka, 3);
    const prefix = `quiet-${randomUUID().slice(0, 8)}`;
    const group = `quiet-${randomUUID()}`;
    const lateFrom = await topicEnds(Topics.late);
    const env = { FLEETPULSE_PROCESSOR_TOPIC: topic, FLEETPULSE_PROCESSOR_GROUP: group };
    // At most 4 quiet devices stay in memory: nearly all of the 60 leave it once they are idle and stored.
    const a = start({ ...env, FLEETPULSE_PROCESSOR_MAX_QUIET_DEVICES: '4' });
    const devices = Array.from({ length: 60 }, (_, d) => `${prefix}-${d}`);
    const ev = (d: number, ts: number, recv: number, seq: number, x: number): TelemetryEvent => ({
      deviceId: devices[d]!,
      ts,
      receivedAt: recv,
      seq,
      metrics: { temp: x, vib: x / 10 },
    });
    // Phase 1: every device reports 3 s of readings.
    const phase1: TelemetryEvent[] = [];
    for (let i = 0; i < 30; i++)
      for (let d = 0; d < devices.length; d++) phase1.push(ev(d, T + i * 100 + d, T + i * 100 + 40, i, i + d));
    await send(topic, phase1);
    // Phase 2: processing time moves on (a clock device on every partition), so the 60 go idle, quiet, stored, out.
    const clocks = Array.from({ length: 12 }, (_, c) => `${prefix}-clock-${c}`);
    const phase2 = clocks.flatMap((id, c) =>
      Array.from({ length: 5 }, (_, i) => ({
        deviceId: id,
        ts: T + 20_000 + i * 1000 + c,
        receivedAt: T + 20_000 + i * 1000,
        seq: i,
        metrics: { temp: i },
      })),
    );
    const clockPartition = (id: string) => Number(id.split('-').pop()) % 3; // a clock on every partition
    await send(topic, phase2, clockPartition);
    await waitFor(
      'quiet devices to leave memory',
      async () => (await metric(a, 'fleetpulse_processor_devices_evicted_total')) >= 40,
      90_000,
    );
    // A second instance joins: partitions move while their devices' states are out of memory.
    const b = start(env);
    await waitFor(
      'both instances to hold partitions',
      async () => {
        const assigned = (p: ProcessorProcess) => /partitions \[\d/.test(p.output.join('').split('joined').pop() ?? '');
        return assigned(a) && assigned(b);
      },
      60_000,
    );
    // Phase 3: they return. Late into written windows, retries of seqs already folded or closed, new windows, and
    // for some a week later.
    const week = 7 * 86_400_000;
    const recv3 = T + 30_000;
    const phase3: TelemetryEvent[] = [];
    for (let d = 0; d < devices.length; d++) {
      phase3.push(ev(d, T + 500 + d, recv3, 5, 99)); // retry of seq 5 (window long written): late
      phase3.push(ev(d, T + 2_950 + d, recv3, 100, 7)); // inside its written 1 s / 10 s / 60 s windows: late
      if (d % 3 === 0)
        phase3.push(ev(d, T + week + d, recv3 + 1, 101, 1), ev(d, T + week + 1500 + d, recv3 + 2, 102, 2));
      else phase3.push(ev(d, T + 61_000 + d, recv3 + 1, 101, 3), ev(d, T + 63_500 + d, recv3 + 2, 102, 4));
    }
    await send(topic, phase3.slice(0, phase3.length / 2));
    await new Promise((r) => setTimeout(r, 1500));
    a.child.kill('SIGKILL'); // b takes every partition back from the checkpoints and the stored device states
    await send(topic, phase3.slice(phase3.length / 2));
    // Phase 4: the clocks move processing time past everyone again, closing what phase 3 opened.
    await send(
      topic,
      clocks.map((id, c) => ({
        deviceId: id,
        ts: T + week + 600_000 + c,
        receivedAt: recv3 + 60_000,
        metrics: { temp: 1 },
      })),
      clockPartition,
    );

    const records = await readTopic(kafka, topic);
    const reference = expectedRows(records, { resolutions, latenessMs: 2000, idleMs: 5000, closeAll: false });
    const expected = indexRows(reference.rows.filter((r) => !r.deviceId.includes('-clock-')));
    expect(expected.size).toBeGreaterThan(500);
    const query = { devices, metrics: ['temp', 'vib'], resolutions, fromMs: T - 60_000, toMs: T + week + 120_000 };
    let actual = new Map();
    await waitFor(
      'every expected row in Cassandra',
      async () => {
        actual = indexRows(await readRows(cassandra, query));
        return actual.size >= expected.size;
      },
      150_000,
      1000,
    );
    expect(diffRows(expected, actual)).toEqual([]);
    // Late events: exactly the reference's (none lost, none invented). A SIGKILL between publishing and storing the
    // checkpoint may repeat one (outputs are at least once; rows are upserts), so they are compared as a set.
    const expectedLate = reference.lateEvents
      .filter((e) => e.deviceId.startsWith(prefix))
      .map(lateKey)
      .sort();
    expect(expectedLate.length).toBeGreaterThanOrEqual(devices.length * 2);
    let lateSeen: string[] = [];
    await waitFor(
      'every late event on telemetry.late',
      async () => {
        lateSeen = (await readTopic(kafka, Topics.late, lateFrom))
          .map((r) => r.value as TelemetryEvent)
          .filter((e) => e.deviceId.startsWith(prefix))
          .map(lateKey)
          .sort();
        return new Set(lateSeen).size >= expectedLate.length;
      },
      60_000,
      1000,
    );
    expect([...new Set(lateSeen)].sort()).toEqual(expectedLate);
    // The survivor read device states back instead of knowing them.
    expect(await metric(b, 'fleetpulse_processor_device_lookups_total', 'found="true"')).toBeGreaterThan(0);
  }, 420_000);

  it('30,000 distinct devices reporting once: memory and checkpoints follow the active devices, every row written', async () => {
    const topic = await newTopic(kafka, 3);
    const prefix = `many-${randomUUID().slice(0, 8)}`;
    const group = `many-${randomUUID()}`;
    const n = 30_000;
    const events: TelemetryEvent[] = Array.from({ length: n }, (_, d) => ({
      deviceId: `${prefix}-${d}`,
      ts: T + (d % 1000),
      receivedAt: T + Math.floor(d / 10),
      metrics: { temp: d % 50 },
    }));
    // Clocks on every partition close everyone's windows (processing time is per partition).
    const clocks = [0, 1, 2].map((p) => ({
      deviceId: `${prefix}-clock-${p}`,
      ts: T + 600_000,
      receivedAt: T + 600_000,
      metrics: { temp: 0 },
    }));
    await send(topic, events);
    await send(topic, clocks, (id) => Number(id.split('-').pop()));
    const p = start({
      FLEETPULSE_PROCESSOR_TOPIC: topic,
      FLEETPULSE_PROCESSOR_GROUP: group,
      FLEETPULSE_PROCESSOR_MAX_QUIET_DEVICES: '500',
    });
    const ends = await topicEnds(topic);
    // No stall: the committed offsets reach each partition's last record, its clock (whose own windows stay open:
    // nothing after it moves processing time past it).
    await waitFor(
      'the processor to commit every record but the clocks',
      async () => {
        const admin = kafka.admin();
        await admin.connect();
        try {
          const committed = (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]!.partitions;
          return ends.every(
            (e) => committed.find((c) => c.partition === e.partition)?.offset === String(BigInt(e.offset) - 1n),
          );
        } finally {
          await admin.disconnect();
        }
      },
      180_000,
      1000,
    );
    // Memory follows the active devices: at most 500 quiet ones stay in all (the clocks are waiting to go idle).
    expect(await metric(p, 'fleetpulse_processor_resident_devices')).toBeLessThanOrEqual(500 + 3);
    expect(await metric(p, 'fleetpulse_processor_devices_evicted_total')).toBeGreaterThanOrEqual(n - 500);
    // Checkpoints are incremental: each device's state was written about once, and the header stays small.
    expect(await metric(p, 'fleetpulse_processor_checkpoint_devices_total')).toBeLessThan(n * 3);
    const headers = await cassandra.execute(
      'SELECT state FROM fleetpulse.processor_checkpoints WHERE group_id = ? AND topic = ? AND partition IN (0, 1, 2)',
      [group, topic],
      { prepare: true },
    );
    expect(headers.rows).toHaveLength(3);
    for (const h of headers.rows) expect((h.get('state') as string).length).toBeLessThan(2000);
    // Every row of a sample of devices, exactly the reference's.
    const records = await readTopic(kafka, topic);
    const sample = new Set(Array.from({ length: 200 }, (_, i) => `${prefix}-${i * 149}`));
    const reference = expectedRows(records, { resolutions, latenessMs: 2000, idleMs: 5000, closeAll: false });
    const expected = indexRows(reference.rows.filter((r) => sample.has(r.deviceId)));
    expect(expected.size).toBe(200 * 3);
    const actual = indexRows(
      await readRows(cassandra, {
        devices: [...sample],
        metrics: ['temp'],
        resolutions,
        fromMs: T - 60_000,
        toMs: T + 60_000,
      }),
    );
    expect(diffRows(expected, actual)).toEqual([]);
  }, 300_000);

  it('a device with 10,000 metric names: the excess goes to telemetry.dlq with the reason, the rest is exact', async () => {
    // One partition: the reference below replays the records in that one order (processing time is per partition).
    const topic = await newTopic(kafka, 1);
    const prefix = `names-${randomUUID().slice(0, 8)}`;
    const dlqFrom = await topicEnds(Topics.dlq);
    const flood = `${prefix}-flood`;
    const events: TelemetryEvent[] = [];
    // Received within 1 s (so the device never goes idle in between, which would empty its windows and its names).
    for (let i = 0; i < 10_000; i++)
      events.push({
        deviceId: flood,
        ts: T + i,
        receivedAt: T + Math.floor(i / 10),
        seq: i,
        metrics: { [`m${i}`]: i, temp: 1 },
      });
    for (let i = 0; i < 50; i++)
      events.push({
        deviceId: `${prefix}-calm`,
        ts: T + i * 100,
        receivedAt: T + i * 100,
        seq: i,
        metrics: { temp: i },
      });
    // A clock moves processing time on so that every window closes.
    events.push({ deviceId: `${prefix}-clock`, ts: T + 60_000, receivedAt: T + 60_000, metrics: { temp: 0 } });
    events.push({ deviceId: `${prefix}-clock`, ts: T + 120_000, receivedAt: T + 120_000, metrics: { temp: 0 } });
    await send(topic, events);
    const p = start({ FLEETPULSE_PROCESSOR_TOPIC: topic, FLEETPULSE_PROCESSOR_GROUP: `names-${randomUUID()}` });

    // 63 new names fit next to temp; every later event would add a 65th name.
    const refused = 10_000 - 63;
    let dlq: { error: string; value: TelemetryEvent }[] = [];
    await waitFor(
      'the refused events on telemetry.dlq',
      async () => {
        dlq = await readDlq(dlqFrom, flood);
        return dlq.length >= refused;
      },
      120_000,
      1000,
    );
    expect(dlq).toHaveLength(refused);
    expect(dlq[0]!.error).toMatch(
      new RegExp(`${topic}\\[\\d\\]@\\d+: metrics\\.m63: device ${flood} already has 64 distinct metric names`),
    );
    expect(dlq.map((d) => d.value.seq)).toEqual(Array.from({ length: refused }, (_, i) => i + 63));
    await waitFor(
      'the rejected counter',
      async () => (await metric(p, 'fleetpulse_processor_rejected_events_total')) === refused,
      30_000,
    );

    const query = {
      devices: [flood, `${prefix}-calm`],
      metrics: ['temp', ...Array.from({ length: 100 }, (_, i) => `m${i}`)],
      resolutions,
      fromMs: T - 60_000,
      toMs: T + 60_000,
    };
    // The reference, given what the processor accepted (the first 63 of the flood), names every row.
    const accepted = events.filter((e) => e.deviceId !== flood || e.seq! < 63);
    const records = accepted.map((e, i) => ({ partition: 0, offset: String(i), value: e }));
    const expected = indexRows(
      expectedRows(records, { resolutions, latenessMs: 2000, idleMs: 5000, closeAll: false }).rows.filter(
        (r) => !r.deviceId.endsWith('-clock'),
      ),
    );
    let actual = new Map();
    await waitFor(
      'every expected row',
      async () => {
        actual = indexRows(await readRows(cassandra, query));
        return actual.size >= expected.size;
      },
      60_000,
      1000,
    );
    expect(diffRows(expected, actual)).toEqual([]);
  }, 240_000);
});

async function readDlq(
  since: { partition: number; offset: string }[],
  deviceId: string,
): Promise<{ error: string; value: TelemetryEvent }[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(Topics.dlq);
  await admin.disconnect();
  const remaining = new Map(
    ends
      .filter((e) => BigInt(e.high) > BigInt(since.find((s) => s.partition === e.partition)?.offset ?? '0'))
      .map((e) => [e.partition, BigInt(e.high)]),
  );
  const out: { error: string; value: TelemetryEvent }[] = [];
  if (remaining.size === 0) return out;
  const consumer = kafka.consumer({ groupId: `dlq-reader-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: Topics.dlq, fromBeginning: true });
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (!remaining.has(partition)) return;
        if (message.key?.toString() === deviceId)
          out.push({
            error: message.headers?.error?.toString() ?? '',
            value: JSON.parse(message.value!.toString()) as TelemetryEvent,
          });
        if (BigInt(message.offset) + 1n >= remaining.get(partition)!) remaining.delete(partition);
        if (remaining.size === 0) resolve();
      },
    });
    for (const s of since)
      if (remaining.has(s.partition)) consumer.seek({ topic: Topics.dlq, partition: s.partition, offset: s.offset });
  });
  await consumer.disconnect();
  return out.sort((x, y) => x.value.seq! - y.value.seq!);
}
