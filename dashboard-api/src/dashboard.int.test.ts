import { randomBytes } from 'node:crypto';
import { connectedCassandra, kafkaClient } from '@fleetpulse/compose/testing';
import {
  bucketOf,
  pointOf,
  resolutionMs,
  Topics,
  type AggregateRow,
  type AnomalyScore,
  type WindowRecord,
} from '@fleetpulse/contracts';
import type { Client } from 'cassandra-driver';
import type { Producer } from 'kafkajs';
import { io, type Socket } from 'socket.io-client';
import { startDashboard, type RunningDashboard } from './app';
import { DashboardMetrics } from './metrics.service';
import { aggregateRow, anomalyScore, bearer, collect, testConfig, TestTokens, windowRecord } from './testing';

// The API against the real Kafka and Cassandra of the launcher: REST on window records written as the
// stream-processor writes them (fleetpulse.windows), and socket.io clients receiving window records produced to the
// real topics. Device ids are unique per run. Stored resolutions here: 1s and 10s (60s is live only). Every request
// and socket carries the admin token; what the others may see: access.int.test.ts.
const run = randomBytes(4).toString('hex');
const dev = (n: string) => `dash-it-${run}-${n}`;
// 1s windows straddling an hour boundary: two Cassandra buckets (t0 .. t0+9s in one, t0+10s .. in the next).
const t0 = Date.UTC(2031, 4, 6, 9, 59, 50);

const admin = bearer(TestTokens.admin);
let dashboard: RunningDashboard;
let cassandra: Client;
let producer: Producer;
const sockets: Socket[] = [];

/** Rows of fleetpulse.windows (contracts/cql/003-windows.cql) and the device list, as the processor writes them. */
async function writeWindows(records: WindowRecord[]): Promise<void> {
  const insert =
    'INSERT INTO fleetpulse.windows (device_id, resolution, bucket, window_start, window_end, metrics) VALUES (?, ?, ?, ?, ?, ?)';
  for (const r of records)
    await cassandra.execute(
      insert,
      [
        r.deviceId,
        r.resolution,
        bucketOf(r.windowStart, resolutionMs(r.resolution)),
        r.windowStart,
        r.windowEnd,
        r.metrics,
      ],
      { prepare: true },
    );
  const touch = 'UPDATE fleetpulse.devices SET last_seen = ?, metrics = metrics + ? WHERE device_id = ?';
  for (const id of new Set(records.map((r) => r.deviceId))) {
    const mine = records.filter((r) => r.deviceId === id);
    await cassandra.execute(
      touch,
      [Math.max(...mine.map((r) => r.windowEnd)), [...new Set(mine.flatMap((r) => Object.keys(r.metrics)))], id],
      { prepare: true },
    );
  }
}

/** A v1 row in the old `aggregates` table, which the API must no longer read. */
async function writeV1Row(r: AggregateRow): Promise<void> {
  await cassandra.execute(
    'INSERT INTO fleetpulse.aggregates (device_id, metric, resolution, bucket, window_start, window_end, count, sum, min, max, mean, stddev, first, last) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
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
  dashboard = await startDashboard(testConfig({ storedResolutions: ['1s', '10s'] }), { logLevels: ['error'] });
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
  const res = await fetch(`${dashboard.url}${path}`, { headers: admin });
  return { status: res.status, body: await res.json() };
}

describe('REST on real Cassandra window records', () => {
  // 20 1s windows of device a: temp and humidity in each, except window 7, which saw only humidity; vib in window 0.
  const NoTemp = 7;
  const records = Array.from({ length: 20 }, (_, i) =>
    windowRecord(
      dev('a'),
      t0 + i * 1000,
      i === NoTemp ? { humidity: 40 + i } : { temp: 20 + i, humidity: 40 + i, ...(i === 0 ? { vib: 0.1 } : {}) },
    ),
  );
  const temps = records.filter((_, i) => i !== NoTemp).map((r) => pointOf(r, 'temp')!);
  const range = (from: number, to: number) => `from=${from}&to=${to}`;

  beforeAll(async () => {
    await writeWindows([...records, windowRecord(dev('b'), t0, { temp: 5 }, '10s')]);
    // The old table holds a temp row where the windows table has none: it must not show up.
    await writeV1Row(aggregateRow(dev('a'), 'temp', t0 + NoTemp * 1000, 99));
    await writeAnomaly(anomalyScore(dev('a'), t0 + 5000, 0.8));
    await writeAnomaly(anomalyScore(dev('a'), t0 + 15_000, 0.9));
    await writeAnomaly(anomalyScore(dev('b'), t0 + 10_000, 0.7));
  });

  it('lists the devices a page at a time in storage order, from next, with last seen and metrics', async () => {
    // The table holds every other run's devices too: ours are found by starting a page at them (next is inclusive).
    const one = await fetch(`${dashboard.url}/api/devices?next=${dev('a')}&limit=1`, { headers: admin });
    expect(await one.json()).toEqual([
      { deviceId: dev('a'), lastSeen: t0 + 20_000, metrics: ['humidity', 'temp', 'vib'] },
    ]);
    // Cassandra's own token order from there: the pages follow it, and X-Next starts the next one.
    const rs = await cassandra.execute(
      'SELECT device_id FROM fleetpulse.devices WHERE token(device_id) >= token(?) LIMIT 6',
      [dev('a')],
      { prepare: true },
    );
    const order = rs.rows.map((r) => r.get('device_id') as string);
    const page = async (next: string) => {
      const res = await fetch(`${dashboard.url}/api/devices?next=${next}&limit=3`, { headers: admin });
      const ids = ((await res.json()) as { deviceId: string }[]).map((d) => d.deviceId);
      return { ids, next: res.headers.get('x-next') };
    };
    const first = await page(dev('a'));
    expect(first).toEqual({ ids: order.slice(0, 3), next: order[3] ?? null });
    if (first.next !== null) expect((await page(first.next)).ids).toEqual(order.slice(3, 6));
    const all = await fetch(`${dashboard.url}/api/devices`, { headers: admin });
    const devices = (await all.json()) as unknown[];
    // Bounded by default: 1000 a page, and a full page says where the next starts.
    expect(all.headers.get('x-next') === null ? devices.length <= 1000 : devices.length === 1000).toBe(true);
  });

  it('returns a metric as v1 points from the window records, across two buckets, skipping windows without it', async () => {
    const { status, body } = await get(
      `/api/devices/${dev('a')}/metrics/temp?resolution=1s&from=${t0}&to=${new Date(t0 + 60_000).toISOString()}`,
    );
    expect(status).toBe(200);
    expect(body).toEqual({ deviceId: dev('a'), metric: 'temp', resolution: '1s', points: temps, next: null });
    expect(body.points[0]).toEqual(aggregateRow(dev('a'), 'temp', t0, 20));
    expect(body.points.map((p: AggregateRow) => p.windowStart)).not.toContain(t0 + NoTemp * 1000);
    const vib = await get(`/api/devices/${dev('a')}/metrics/vib?resolution=1s&${range(t0, t0 + 60_000)}`);
    expect(vib.body.points).toEqual([aggregateRow(dev('a'), 'vib', t0, 0.1)]);
    const none = await get(`/api/devices/${dev('a')}/metrics/volt?resolution=1s&${range(t0, t0 + 60_000)}`);
    expect(none.body).toEqual({ deviceId: dev('a'), metric: 'volt', resolution: '1s', points: [], next: null });
  });

  it('pages a metric with limit and next, over the skipped window', async () => {
    const pages: AggregateRow[][] = [];
    let from: number | null = t0;
    while (from !== null) {
      const { body } = await get(
        `/api/devices/${dev('a')}/metrics/temp?resolution=1s&${range(from, t0 + 60_000)}&limit=7`,
      );
      pages.push(body.points);
      from = body.next;
    }
    expect(pages.map((p) => p.length)).toEqual([7, 7, 5]);
    expect(pages.flat()).toEqual(temps);
  });

  it('returns the window records, whole and final, oldest first, and pages them', async () => {
    const { status, body } = await get(`/api/devices/${dev('a')}/windows?resolution=1s&${range(t0, t0 + 60_000)}`);
    expect(status).toBe(200);
    expect(body).toEqual({ deviceId: dev('a'), resolution: '1s', windows: records, next: null });
    const pages: WindowRecord[][] = [];
    let from: number | null = t0;
    while (from !== null) {
      const page = await get(`/api/devices/${dev('a')}/windows?resolution=1s&${range(from, t0 + 60_000)}&limit=8`);
      pages.push(page.body.windows);
      from = page.body.next;
    }
    expect(pages.map((p) => p.length)).toEqual([8, 8, 4]);
    expect(pages.flat()).toEqual(records);
    expect(await get(`/api/devices/${dev('b')}/windows?${range(t0, t0 + 60_000)}`)).toEqual({
      status: 200,
      body: {
        deviceId: dev('b'),
        resolution: '10s',
        windows: [windowRecord(dev('b'), t0, { temp: 5 }, '10s')],
        next: null,
      },
    });
  });

  it('reads only windows starting in [from, to), not the rest of their buckets', async () => {
    // Windows 5..11: 5..9 share a bucket with 0..4, and 10..11 one with 12..19; from is inclusive, to exclusive.
    const from = t0 + 5000;
    const to = t0 + 12_000;
    const w = await get(`/api/devices/${dev('a')}/windows?resolution=1s&${range(from, to)}`);
    expect(w.body.windows.map((r: WindowRecord) => (r.windowStart - t0) / 1000)).toEqual([5, 6, 7, 8, 9, 10, 11]);
    const p = await get(`/api/devices/${dev('a')}/metrics/humidity?resolution=1s&${range(from, to)}`);
    expect(p.body.points.map((r: AggregateRow) => (r.windowStart - t0) / 1000)).toEqual([5, 6, 7, 8, 9, 10, 11]);
    // A range inside one bucket that holds rows on both sides of it.
    const inner = await get(`/api/devices/${dev('a')}/metrics/temp?resolution=1s&${range(t0 + 2500, t0 + 4000)}`);
    expect(inner.body.points.map((r: AggregateRow) => r.windowStart)).toEqual([t0 + 3000]);
  });

  it('answers 400 naming the stored resolutions for a live-only one', async () => {
    const error = 'resolution 60s is live only (not stored); stored: 1s,10s';
    expect(await get(`/api/devices/${dev('a')}/metrics/temp?resolution=60s`)).toEqual({ status: 400, body: { error } });
    expect(await get(`/api/devices/${dev('a')}/windows?resolution=60s`)).toEqual({ status: 400, body: { error } });
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
    const unknown = { status: 404, body: { error: `unknown device "${dev('ghost')}"` } };
    expect(await get(`/api/devices/${dev('ghost')}/metrics/temp`)).toEqual(unknown);
    expect(await get(`/api/devices/${dev('ghost')}/windows`)).toEqual(unknown);
    expect(await get(`/api/anomalies?deviceId=${dev('ghost')}`)).toMatchObject({ status: 404 });
    expect(await get(`/api/devices/${dev('a')}/metrics/temp?resolution=fast`)).toEqual({
      status: 400,
      body: { error: 'resolution: "fast" is not of the form <seconds>s, e.g. 10s' },
    });
    expect(await get(`/api/devices/${dev('a')}/windows?from=soon`)).toMatchObject({ status: 400 });
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
    const s = io(`${dashboard.url}/live`, {
      transports: ['websocket'],
      forceNew: true,
      auth: { token: TestTokens.admin },
    });
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
      await send(Topics.aggregates, windowRecord(deviceId, Date.now(), { probe: i }));
      await new Promise((r) => setTimeout(r, 300));
    }
    s.off('aggregate', on);
    if (!got) throw new Error('the API never passed a probe record on');
  }

  const invalidCount = async () =>
    (await dashboard.app.get(DashboardMetrics).kafkaRecords.get()).values.find(
      (v) => v.labels.topic === Topics.aggregates && v.labels.outcome === 'invalid',
    )?.value ?? 0;

  it('sends a device subscriber the window records and anomalies produced to Kafka', async () => {
    const id = dev('live');
    const s = await client({ deviceId: id });
    await untilLive(s, id);
    const now = Math.floor(Date.now() / 10_000) * 10_000;
    const records = [windowRecord(id, now, { temp: 21.5, humidity: 40 }), windowRecord(id, now, { temp: 21 }, '10s')];
    const aggs = collect<WindowRecord>(s, 'aggregate', 2, 30_000);
    const anomalies = collect<AnomalyScore>(s, 'anomaly', 1, 30_000);
    for (const r of records) await send(Topics.aggregates, r);
    // A score that is not anomalous is not an anomaly event.
    await send(Topics.scores, { ...anomalyScore(id, now, 0.1), anomalous: false });
    await send(Topics.scores, anomalyScore(id, now, 0.95));
    expect(await aggs).toEqual(records);
    expect(await anomalies).toEqual([anomalyScore(id, now, 0.95)]);
  });

  it('filters by the resolution of a subscription', async () => {
    const id = dev('res');
    const probe = await client({ deviceId: id });
    await untilLive(probe, id);
    const s = await client({ deviceId: id, resolution: '10s' });
    const got: WindowRecord[] = [];
    s.on('aggregate', (r: WindowRecord) => got.push(r));
    const now = Math.floor(Date.now() / 10_000) * 10_000;
    const first = collect<WindowRecord>(s, 'aggregate', 1, 30_000);
    await send(Topics.aggregates, windowRecord(id, now, { temp: 1 }, '1s'));
    await send(Topics.aggregates, windowRecord(id, now, { temp: 2 }, '10s'));
    await send(Topics.aggregates, windowRecord(id, now, { temp: 3 }, '60s'));
    await first;
    // One partition (one key) and one socket keep their order: once this later window is in, whatever of the three
    // the socket was sent is in before it.
    const marker = windowRecord(id, now + 10_000, { temp: 4 }, '10s');
    const markerIn = new Promise<void>((resolve) =>
      s.on('aggregate', (r: WindowRecord) => r.windowStart === marker.windowStart && resolve()),
    );
    await send(Topics.aggregates, marker);
    await markerIn;
    expect(got).toEqual([windowRecord(id, now, { temp: 2 }, '10s'), marker]);
  });

  it('counts and skips invalid records, and keeps streaming', async () => {
    const id = dev('bad');
    const s = await client({ deviceId: id });
    await untilLive(s, id);
    const before = await invalidCount();
    const now = Math.floor(Date.now() / 1000) * 1000;
    const next = collect<WindowRecord>(s, 'aggregate', 1, 30_000);
    await producer.send({
      topic: Topics.aggregates,
      messages: [
        { key: id, value: '{"deviceId": "' },
        { key: id, value: JSON.stringify(aggregateRow(id, 'temp', now, 1)) },
        { key: id, value: JSON.stringify({ ...windowRecord(id, now, { temp: 1 }), metrics: {} }) },
        { key: id, value: JSON.stringify(windowRecord(id, now, { temp: 7 })) },
      ],
    });
    expect(await next).toEqual([windowRecord(id, now, { temp: 7 })]);
    expect((await invalidCount()) - before).toBeGreaterThanOrEqual(3);
  });

  it('sends a fleet subscriber every device', async () => {
    const s = await client({ fleet: true });
    await untilLive(s, dev('probe'));
    const ids = [dev('f1'), dev('f2'), dev('f3')];
    const mine = new Set<string>();
    const done = new Promise<void>((resolve) =>
      s.on('aggregate', (r: WindowRecord) => {
        if (ids.includes(r.deviceId)) mine.add(r.deviceId);
        if (mine.size === ids.length) resolve();
      }),
    );
    for (const id of ids) await send(Topics.aggregates, windowRecord(id, Date.now(), { temp: 1 }));
    await done;
  });

  it('sends provisional records of metrics.live to device subscribers only, then the final record of the window', async () => {
    const id = dev('prov');
    const s = await client({ deviceId: id });
    const fleet = await client({ fleet: true });
    await untilLive(s, id);
    const label = (r: WindowRecord) => `${r.final ? 'F' : 'P'}${r.windowStart - w}:${r.metrics.temp!.last}`;
    const got: string[] = [];
    const fleetGot: string[] = [];
    // Windows after the probes' (the API keeps a device's newest window sent: nothing may go back).
    const w = Math.floor(Date.now() / 1000) * 1000 + 60_000;
    s.on('aggregate', (r: WindowRecord) => r.deviceId === id && r.metrics.temp && got.push(label(r)));
    fleet.on('aggregate', (r: WindowRecord) => r.deviceId === id && r.metrics.temp && fleetGot.push(label(r)));
    const prov = (windowStart: number, temp: number): WindowRecord => ({
      ...windowRecord(id, windowStart, { temp }),
      final: false,
    });
    const invalidBefore =
      (await dashboard.app.get(DashboardMetrics).kafkaRecords.get()).values.find(
        (v) => v.labels.topic === Topics.live && v.labels.outcome === 'invalid',
      )?.value ?? 0;
    const until = async (n: number) => {
      for (const end = Date.now() + 30_000; got.length < n && Date.now() < end;)
        await new Promise((r) => setTimeout(r, 20));
    };
    // The open window so far, then its final record (another topic).
    await send(Topics.live, prov(w, 1));
    await until(1);
    await send(Topics.aggregates, windowRecord(id, w, { temp: 2 }));
    await until(2);
    // A snapshot of that window that comes late, and one that is not provisional, then the next window's.
    await send(Topics.live, prov(w, 3));
    await send(Topics.live, windowRecord(id, w + 1000, { temp: 9 }));
    // Apart from the next one, which would otherwise replace it before a flush.
    await new Promise((r) => setTimeout(r, 1000));
    await send(Topics.live, prov(w + 1000, 4));
    await until(3);
    await send(Topics.aggregates, windowRecord(id, w + 1000, { temp: 5 }));
    await until(4);
    for (const end = Date.now() + 10_000; fleetGot.length < 2 && Date.now() < end;)
      await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual(['P0:1', 'F0:2', 'P1000:4', 'F1000:5']);
    expect(fleetGot).toEqual(['F0:2', 'F1000:5']);
    const invalidAfter =
      (await dashboard.app.get(DashboardMetrics).kafkaRecords.get()).values.find(
        (v) => v.labels.topic === Topics.live && v.labels.outcome === 'invalid',
      )?.value ?? 0;
    expect(invalidAfter - invalidBefore).toBe(1);
  });
});
