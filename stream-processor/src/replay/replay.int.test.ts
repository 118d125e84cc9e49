import { randomUUID } from 'node:crypto';
import { bucketsBetween, resolutionMs, type AggregateRow, type TelemetryEvent } from '@fleetpulse/contracts';
import { connectedCassandra, kafkaClient } from '@fleetpulse/compose/testing';
import type { Client } from 'cassandra-driver';
import type { Kafka } from 'kafkajs';
import {
  diffRows,
  expectedRows,
  indexRows,
  readRows,
  readTopic,
  runReplay,
  spawnProcessor,
  newTopic,
  waitFor,
  type ProcessorProcess,
} from '../testing/harness';
import { fleetStream } from '../testing/stream';

const resolutions = ['1s', '10s', '60s'];
const metrics = ['temp', 'vib'];
// Two days ago, on a minute boundary: Kafka refuses record times in the future, and every window of this stream
// closes (idle) once the live processor has read it all and the wall clock stands in for processing time.
const startTs = Math.floor((Date.now() - 2 * 86_400_000) / 60_000) * 60_000;
let kafka: Kafka;
let cassandra: Client;
let live: ProcessorProcess | undefined;

beforeAll(async () => {
  kafka = kafkaClient();
  cassandra = await connectedCassandra();
});

afterAll(async () => {
  live?.child.kill('SIGKILL');
  await cassandra.shutdown();
});

describe('replay against the real Kafka and Cassandra', () => {
  const prefix = `replay-${randomUUID().slice(0, 8)}`;
  const devices = 10;
  const readings = 400;
  let topic: string;
  const query = () => ({
    devices: Array.from({ length: devices }, (_, d) => `${prefix}-${d}`),
    metrics,
    resolutions,
    fromMs: startTs - 60_000,
    toMs: startTs + readings * 100 + 120_000,
  });

  // [5 s, 38 s) of the stream: past the deleted windows by more than the allowed lateness, so it closes them all.
  const replayMiddle = () =>
    runReplay([
      '--topic',
      topic,
      '--from',
      new Date(startTs + 5_000).toISOString(),
      '--to',
      new Date(startTs + 38_000).toISOString(),
    ]);

  beforeAll(async () => {
    topic = await newTopic(kafka, 3);
    const arrivals = fleetStream({
      seed: 3,
      devicePrefix: prefix,
      devices,
      readings,
      intervalMs: 100,
      startTs,
      stampReceivedAt: true,
    });
    // Record time = receivedAt, so a replay's --from/--to times address the stream's own clock.
    // Device d on partition d % 3, so every partition holds records (hashing 10 random ids may leave one empty).
    const messages = arrivals.flatMap((a) =>
      a.events.map((e: TelemetryEvent) => ({
        key: e.deviceId,
        partition: Number(e.deviceId.slice(prefix.length + 1)) % 3,
        value: JSON.stringify(e),
        timestamp: String(e.receivedAt),
      })),
    );
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let i = 0; i < messages.length; i += 500)
      await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 500) });
    await producer.disconnect();
    live = spawnProcessor({
      FLEETPULSE_PROCESSOR_TOPIC: topic,
      FLEETPULSE_PROCESSOR_GROUP: `replay-live-${randomUUID()}`,
      FLEETPULSE_COMMIT_INTERVAL_MS: '200',
    });
    const expected = indexRows(
      expectedRows(await readTopic(kafka, topic), { resolutions, latenessMs: 2000, idleMs: 5000, closeAll: true }).rows,
    );
    await waitFor(
      'the live processor to write every row',
      async () => (await readRows(cassandra, query())).length >= expected.size,
      120_000,
      1000,
    );
  });

  it('--dry-run prints the range, partitions and record counts and writes nothing', async () => {
    const { code, output } = await runReplay([
      '--topic',
      topic,
      '--from',
      new Date(startTs + 10_000).toISOString(),
      '--dry-run',
    ]);
    expect(code).toBe(0);
    expect(output).toMatch(/partition 0: offsets \d+\.\.\d+ \(\d+ records\)/);
    expect(output).toMatch(/partition 2: /);
  });

  it('rebuilds deleted rows of a time range value for value, leaving the windows at its edges alone', async () => {
    const before = indexRows(await readRows(cassandra, query()));
    expect(before.size).toBeGreaterThan(500);
    // Delete the 1 s and 10 s rows of [10 s, 25 s) of every device and metric.
    const from = startTs + 10_000;
    const to = startTs + 25_000;
    let deleted = 0;
    for (const d of query().devices)
      for (const resolution of ['1s', '10s'])
        for (const bucket of bucketsBetween(from, to, resolutionMs(resolution))) {
          await cassandra.execute(
            'DELETE FROM fleetpulse.windows WHERE device_id = ? AND resolution = ? AND bucket = ? AND window_start >= ? AND window_start < ?',
            [d, resolution, bucket, from, to],
            { prepare: true },
          );
          deleted++;
        }
    expect(deleted).toBeGreaterThan(0);
    const gone = indexRows(await readRows(cassandra, query()));
    expect(before.size - gone.size).toBeGreaterThan(100);

    const { code, output } = await replayMiddle();
    expect({ code, output }).toMatchObject({ code: 0 });
    expect(output).toMatch(/done in .* rows written/);
    const after = indexRows(await readRows(cassandra, query()));
    expect(diffRows(before, after)).toEqual([]);
  });

  it('a replay during live traffic leaves the live rows as they would be without it', async () => {
    const historical = indexRows(await readRows(cassandra, query()));
    // Two devices of the replayed range report again, and two new ones.
    const liveDevices = [`${prefix}-0`, `${prefix}-1`, `${prefix}-live-0`, `${prefix}-live-1`];
    const trafficStart = Date.now();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    let replayDone = false;
    let sent = 0;
    // Live devices report every 100 ms, now, on the topic the live processor reads, until the replay has finished
    // and at least 8 s have passed.
    const traffic = (async () => {
      for (let i = 0; !replayDone || Date.now() - trafficStart < 8000; i++) {
        const now = Date.now();
        await producer.send({
          topic,
          acks: -1,
          messages: liveDevices.map((deviceId, d) => ({
            key: deviceId,
            partition: d % 3, // the replayed devices stay on their partitions (see beforeAll)
            timestamp: String(now),
            value: JSON.stringify({
              deviceId,
              ts: now,
              metrics: { temp: 20 + ((i + d) % 17) / 4, vib: ((i * 7 + d) % 13) / 100 },
              seq: 1_000_000 + i,
              receivedAt: now,
            } satisfies TelemetryEvent),
          })),
        });
        sent += liveDevices.length;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const replayed = await replayMiddle();
    replayDone = true;
    await traffic;
    await producer.disconnect();
    expect({ code: replayed.code, output: replayed.output }).toMatchObject({ code: 0 });
    expect(sent).toBeGreaterThan(40);

    // As without the replay: the reference's rows for the live devices over the whole topic.
    const liveQuery = { ...query(), devices: liveDevices, fromMs: trafficStart - 60_000, toMs: Date.now() + 120_000 };
    const isLive = (r: AggregateRow) => liveDevices.includes(r.deviceId) && r.windowStart >= liveQuery.fromMs;
    const expected = indexRows(
      expectedRows(await readTopic(kafka, topic), {
        resolutions,
        latenessMs: 2000,
        idleMs: 5000,
        closeAll: true,
      }).rows.filter(isLive),
    );
    await waitFor(
      'the live processor to write every live row',
      async () => (await readRows(cassandra, liveQuery)).length >= expected.size,
      60_000,
      1000,
    );
    expect(diffRows(expected, indexRows(await readRows(cassandra, liveQuery)))).toEqual([]);
    // And the replayed range is as it was.
    expect(diffRows(historical, indexRows(await readRows(cassandra, query())))).toEqual([]);
    // The replay touched the device list with last_seen two days ago; the live one stands.
    const seen = await cassandra.execute(
      'SELECT last_seen FROM fleetpulse.devices WHERE device_id = ?',
      [liveDevices[0]],
      {
        prepare: true,
      },
    );
    expect(Number(seen.first()?.get('last_seen'))).toBeGreaterThanOrEqual(trafficStart);
  });

  it('says clearly when the topic does not exist or the range is older than what it holds', async () => {
    const missing = await runReplay(['--topic', 'no.such.topic', '--from', '0']);
    expect(missing.code).toBe(1);
    expect(missing.output).toMatch(/topic "no\.such\.topic" does not exist/);
    const admin = kafka.admin();
    await admin.connect();
    await admin.fetchTopicMetadata({ topics: [topic] }); // deleteTopicRecords needs it loaded
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '10' }] });
    await admin.disconnect();
    const old = await runReplay(['--topic', topic, '--from', '0']);
    expect(old.code).toBe(1);
    expect(old.output).toMatch(/older than what partition 0 .* still holds \(its first offset is 10\)/);
    const bad = await runReplay(['--topic', topic, '--from', 'yesterday']);
    expect(bad.code).toBe(1);
    expect(bad.output).toMatch(/neither an ISO 8601 time .* nor an offset/);
  });
});
