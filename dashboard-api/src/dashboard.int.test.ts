import { randomBytes } from 'node:crypto';
import { connectedCassandra, kafkaClient } from '@fleetpulse/compose/dist/testing/helpers';
import { bucketOf, resolutionMs, Topics, type AggregateRow, type AnomalyScore } from '@fleetpulse/contracts';
import type { Client } from 'cassandra-driver';
import type { Producer } from 'kafkajs';
import { io, type Socket } from 'socket.io-client';
import { startDashboard, type RunningDashboard } from './app';
import { aggregateRow, anomalyScore, collect, testConfig } from './testing';

// The API against the real Kafka and Cassandra of the launcher: REST on rows written with the stream-processor's
// CQL, and socket.io clients receiving what is produced to the real topics. Device ids are unique per run.
const run = randomBytes(4).toString('hex');
const dev = (n: string) => `dash-it-${run}-${n}`;
// 1s windows straddling an hour boundary: two Cassandra buckets.
const t0 = Date.UTC(2031, 4, 6, 9, 59, 50);

let dashboard: RunningDashboard;
let cassandra: Client;
let producer: Producer;
const sockets: Socket[] = [];

async function writeRows(rows: AggregateRow[]): Promise<void> {
  const insert =
    'INSERT INTO fleetpulse.aggregates (device_id, metric, resolution, bucket, window_start, window_end, count, sum, min, max, mean, stddev, first, last) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
  for (const r of rows)
    await cassandra.execute(
      insert,
      [
        r.deviceId,
        r.metric,
        r.resolution,
        bucketOf(r.windowStart, resolutionMs(r.resolution)),
        r.windowStart,
        r.windowEnd,
        r.count,
        r.sum,
        r.min,
        r.max,
        r.mean,
        r.stddev,
        r.first,
        r.last,
      ],
      { prepare: true },
    );
  const touch = 'UPDATE fleetpulse.devices SET last_seen = ?, metrics = metrics + ? WHERE device_id = ?';
  for (const id of new Set(rows.map((r) => r.deviceId))) {
    const mine = rows.filter((r) => r.deviceId === id);
    await cassandra.execute(
      touch,
      [Math.max(...mine.map((r) => r.windowEnd)), [...new Set(mine.map((r) => r.metric))], id],
      { prepare: true },
    );
  }
}

async function writeAnomaly(s: AnomalyScore): Promise<void> {
  const day = Math.floor(s.windowStart / 86_400_000) * 86_400_000;
  const p = [s.deviceId, day, s.windowStart, s.resolution, s.model, s.modelVersion, s.score, s.features];
  await cassandra.execute(
    'INSERT INTO fleetpulse.anomalies (device_id, day, window_start, resolution, model, model_version, score, features) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    p,
    { prepare: true },
  );
  await cassandra.execute(
    'INSERT INTO fleetpulse.anomalies_by_day (day, window_start, device_id, resolution, model, model_version, score, features) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    [day, s.windowStart, s.deviceId, s.resolution, s.model, s.modelVersion, s.score, s.features],
    { prepare: true },
  );
}

beforeAll(async () => {
  cassandra = await connectedCassandra();
  producer = kafkaClient().producer();
  await producer.connect();
  dashboard = await startDashboard(testConfig(), { logLevels: ['warn', 'error'] });
});

afterEach(() => {
  for (const s of sockets.splice(0)) s.disconnect();
});

afterAll(async () => {
  await dashboard?.close();
  await producer?.disconnect();
  await cassandra?.shutdown();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field below
async function get(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${dashboard.url}${path}`);
  return { status: res.status, body: await res.json() };
}

describe('REST on real Cassandra rows', () => {
  const rows = Array.from({ length: 20 }, (_, i) => aggregateRow(dev('a'), 'temp', t0 + i * 1000, 20 + i));

  beforeAll(async () => {
    await writeRows([...rows, aggregateRow(dev('a'), 'vib', t0, 0.1), aggregateRow(dev('b'), 'temp', t0, 5, '10s')]);
    await writeAnomaly(anomalyScore(dev('a'), t0 + 5000, 0.8));
    await writeAnomaly(anomalyScore(dev('a'), t0 + 15_000, 0.9));
    await writeAnomaly(anomalyScore(dev('b'), t0 + 10_000, 0.7));
  });

  it('lists the devices with last seen and metrics', async () => {
    const { status, body } = await get('/api/devices');
    expect(status).toBe(200);
    expect(body.find((d: { deviceId: string }) => d.deviceId === dev('a'))).toEqual({
      deviceId: dev('a'),
      lastSeen: t0 + 20_000,
      metrics: ['temp', 'vib'],
    });
  });

  it('returns a series across two buckets, oldest first, equal to what was written', async () => {
    const { status, body } = await get(
      `/api/devices/${dev('a')}/metrics/temp?resolution=1s&from=${t0}&to=${new Date(t0 + 60_000).toISOString()}`,
    );
    expect(status).toBe(200);
    expect(body).toEqual({ deviceId: dev('a'), metric: 'temp', resolution: '1s', points: rows, next: null });
  });

  it('pages with limit and next', async () => {
    const pages: AggregateRow[][] = [];
    let from: number | null = t0;
    while (from !== null) {
      const { body } = await get(
        `/api/devices/${dev('a')}/metrics/temp?resolution=1s&from=${from}&to=${t0 + 60_000}&limit=7`,
      );
      pages.push(body.points);
      from = body.next;
    }
    expect(pages.map((p) => p.length)).toEqual([7, 7, 6]);
    expect(pages.flat()).toEqual(rows);
  });

  it('returns the anomalies of a device and of the fleet, newest first', async () => {
    const range = `from=${t0}&to=${t0 + 60_000}`;
    const one = await get(`/api/anomalies?deviceId=${dev('a')}&${range}`);
    expect(one.status).toBe(200);
    expect(one.body.map((s: AnomalyScore) => [s.windowStart, s.score])).toEqual([
      [t0 + 15_000, 0.9],
      [t0 + 5000, 0.8],
    ]);
    expect(one.body[0]).toEqual(anomalyScore(dev('a'), t0 + 15_000, 0.9));
    const fleet = await get(`/api/anomalies?${range}`);
    const ours = fleet.body.filter((s: AnomalyScore) => s.deviceId.startsWith(`dash-it-${run}`));
    expect(ours.map((s: AnomalyScore) => s.windowStart)).toEqual([t0 + 15_000, t0 + 10_000, t0 + 5000]);
  });

  it('answers 404 for an unknown device and 400 with the reason for bad parameters', async () => {
    expect(await get(`/api/devices/${dev('ghost')}/metrics/temp`)).toEqual({
      status: 404,
      body: { error: `unknown device "${dev('ghost')}"` },
    });
    expect(await get(`/api/anomalies?deviceId=${dev('ghost')}`)).toMatchObject({ status: 404 });
    expect(await get(`/api/devices/${dev('a')}/metrics/temp?resolution=fast`)).toEqual({
      status: 400,
      body: { error: 'resolution: "fast" is not of the form <seconds>s, e.g. 10s' },
    });
    expect(await get(`/api/devices/${dev('a')}/metrics/temp?from=soon`)).toMatchObject({ status: 400 });
  });

  it('is ready with Kafka and Cassandra up, and exposes Prometheus metrics', async () => {
    expect(await get('/readyz')).toEqual({
      status: 200,
      body: { status: 'ready', kafka: { up: true, consumer: 'joined' }, cassandra: { up: true } },
    });
    const metrics = await (await fetch(`${dashboard.url}/metrics`)).text();
    expect(metrics).toContain('fleetpulse_dashboard_http_request_seconds_bucket');
  });
});

describe('live streams from the real topics', () => {
  async function client(sub: object): Promise<Socket> {
    const s = io(`${dashboard.url}/live`, { transports: ['websocket'], forceNew: true });
    sockets.push(s);
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('connect_error', reject);
    });
    expect(await s.emitWithAck('subscribe', sub)).toEqual({ ok: true });
    return s;
  }

  const send = <T extends { deviceId: string }>(topic: string, value: T) =>
    producer.send({ topic, messages: [{ key: value.deviceId, value: JSON.stringify(value) }] });

  /** The consumer starts at the latest offset once its partitions are assigned: probe until a record comes through. */
  async function untilLive(s: Socket, deviceId: string): Promise<void> {
    let got = false;
    const on = () => void (got = true);
    s.on('aggregate', on);
    for (let i = 0; !got && i < 100; i++) {
      await send(Topics.aggregates, aggregateRow(deviceId, 'probe', Date.now(), i));
      await new Promise((r) => setTimeout(r, 300));
    }
    s.off('aggregate', on);
    if (!got) throw new Error('the API never passed a probe record on');
  }

  it('sends a device subscriber the aggregates and anomalies produced to Kafka', async () => {
    const id = dev('live');
    const s = await client({ deviceId: id });
    await untilLive(s, id);
    const now = Math.floor(Date.now() / 1000) * 1000;
    const aggs = collect<AggregateRow>(s, 'aggregate', 2, 30_000);
    const anomalies = collect<AnomalyScore>(s, 'anomaly', 1, 30_000);
    await send(Topics.aggregates, aggregateRow(id, 'temp', now, 21.5));
    await send(Topics.aggregates, aggregateRow(id, 'humidity', now, 40));
    // A score that is not anomalous is not an anomaly event.
    await send(Topics.scores, { ...anomalyScore(id, now, 0.1), anomalous: false });
    await send(Topics.scores, anomalyScore(id, now, 0.95));
    expect((await aggs).map((r) => [r.metric, r.last])).toEqual([
      ['temp', 21.5],
      ['humidity', 40],
    ]);
    expect(await anomalies).toEqual([anomalyScore(id, now, 0.95)]);
  });

  it('sends a fleet subscriber every device', async () => {
    const s = await client({ fleet: true });
    await untilLive(s, dev('probe'));
    const ids = [dev('f1'), dev('f2'), dev('f3')];
    const mine = new Set<string>();
    const done = new Promise<void>((resolve) =>
      s.on('aggregate', (r: AggregateRow) => {
        if (ids.includes(r.deviceId)) mine.add(r.deviceId);
        if (mine.size === ids.length) resolve();
      }),
    );
    for (const id of ids) await send(Topics.aggregates, aggregateRow(id, 'temp', Date.now(), 1));
    await done;
  });
});
