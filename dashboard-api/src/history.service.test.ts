import { bucketOf, type MetricStats, type WindowRecord } from '@fleetpulse/contracts';
import { types } from 'cassandra-driver';
import { DeviceScope } from './access';
import type { CassandraService } from './cassandra.service';
import { HistoryService } from './history.service';
import { parseDevicesQuery, parseSeriesQuery, parseWindowsQuery } from './query';
import { testConfig, windowRecord } from './testing';

// How a history page walks the `windows` table: bucket by bucket, page by page, skipping windows without the metric,
// within a bound on the windows it reads. The table is an in-memory stand-in that pages as Cassandra does (fetchSize,
// pageState), applies the query's WHERE clause and answers the driver's rows (bigints as Long, UDTs as null-prototype
// objects); dashboard.int.test.ts runs the same reads on the real Cassandra.
// The driver's Row constructor (its typings declare Row as an interface only).
const DriverRow = (types as unknown as { Row: new (columns: { name: string }[]) => types.Row }).Row;
const udt = (s: MetricStats) => Object.assign(Object.create(null) as object, s);

/** A driver row of the selected columns (`AS` names included), as the driver builds it. */
function driverRow(columns: Record<string, unknown>): types.Row {
  const row = new DriverRow(Object.keys(columns).map((name) => ({ name })));
  return Object.assign(row, columns);
}

class FakeWindowsTable {
  readonly rows: WindowRecord[] = [];
  readonly reads: { fetchSize: number; returned: number }[] = [];

  execute(cql: string, params: unknown[], opts: { fetchSize?: number; pageState?: string }) {
    // metrics[?] comes first in the per-metric query's parameters.
    const metric = cql.includes('metrics[?]') ? (params.shift() as string) : undefined;
    const [deviceId, resolution, bucket, from, to] = params as [string, string, number, number, number];
    const matching = this.rows.filter(
      (r) =>
        r.deviceId === deviceId &&
        r.resolution === resolution &&
        bucketOf(r.windowStart, 1000) === bucket &&
        r.windowStart >= from &&
        r.windowStart < to,
    );
    const start = opts.pageState === undefined ? 0 : Number(opts.pageState);
    const size = opts.fetchSize ?? 5000;
    const page = matching.slice(start, start + size);
    this.reads.push({ fetchSize: size, returned: page.length });
    const columns: Record<string, (r: WindowRecord) => unknown> = {
      device_id: (r) => r.deviceId,
      resolution: (r) => r.resolution,
      window_start: (r) => types.Long.fromNumber(r.windowStart),
      window_end: (r) => types.Long.fromNumber(r.windowEnd),
      metrics: (r) => Object.fromEntries(Object.entries(r.metrics).map(([m, v]) => [m, udt(v)])),
      stats: (r) => (r.metrics[metric!] ? udt(r.metrics[metric!]!) : null),
    };
    // The columns the query selects: `SELECT a, b, metrics[?] AS stats FROM`.
    const selected = /^SELECT (.*?) FROM/
      .exec(cql)![1]!
      .split(', ')
      .map((c) => c.split(' AS ').at(-1)!);
    return Promise.resolve({
      rows: page.map((r) => driverRow(Object.fromEntries(selected.map((c) => [c, columns[c]!(r)])))),
      pageState: start + size < matching.length ? String(start + size) : null,
    });
  }

  get windowsRead(): number {
    return this.reads.reduce((n, r) => n + r.returned, 0);
  }
}

const dev = 'hs-1';
// 1s windows from the start of a bucket (3600 windows each).
const t0 = 3_600_000 * 100;

function setup(records: WindowRecord[]) {
  const table = new FakeWindowsTable();
  table.rows.push(...records);
  const history = new HistoryService(table as unknown as CassandraService, testConfig());
  return { table, history };
}

const stored = ['1s'];
const series = (metric: string, from: number, to: number, limit: number) =>
  parseSeriesQuery(dev, metric, { resolution: '1s', from: String(from), to: String(to), limit: String(limit) }, stored);

describe('HistoryService reads of the windows table', () => {
  it('reads limit + 1 windows for a page of complete windows, however wide the range', async () => {
    const records = Array.from({ length: 3000 }, (_, i) => windowRecord(dev, t0 + i * 1000, { temp: i }));
    const { table, history } = setup(records);
    const page = await history.series(series('temp', t0, t0 + 3_000_000, 10));
    expect(page.points.map((p) => p.last)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(page.next).toBe(t0 + 10_000);
    expect(table.windowsRead).toBe(11);
    const w = await history.windows(
      parseWindowsQuery(dev, { resolution: '1s', from: String(t0 + 5000), to: String(t0 + 9000) }, stored),
    );
    expect(w.windows).toEqual(records.slice(5, 9));
    expect(w.next).toBeNull();
  });

  it('skips windows without the metric, across buckets, and says where the next page starts', async () => {
    // temp in every 500th window only, over three buckets.
    const records = Array.from({ length: 9000 }, (_, i) =>
      windowRecord(dev, t0 + i * 1000, i % 500 === 0 ? { temp: i, vib: 0 } : { vib: 0 }),
    );
    const { history } = setup(records);
    const first = await history.series(series('temp', t0, t0 + 9_000_000, 5));
    expect(first.points.map((p) => p.last)).toEqual([0, 500, 1000, 1500, 2000]);
    expect(first.next).toBe(t0 + 2_500_000);
    const rest = await history.series(series('temp', first.next!, t0 + 9_000_000, 100));
    expect(rest.points.map((p) => p.last)).toEqual(Array.from({ length: 13 }, (_, i) => 2500 + i * 500));
    expect(rest.next).toBeNull();
  });

  it('ends a page early after scannedMax windows, with next at the first window not read', async () => {
    const records = Array.from({ length: 100 }, (_, i) =>
      windowRecord(dev, t0 + i * 1000, i === 70 ? { temp: 70 } : { vib: i }),
    );
    const { table, history } = setup(records);
    history.scannedMax = 30;
    const pages: { points: number[]; next: number | null }[] = [];
    let from: number | null = t0;
    while (from !== null) {
      const before = table.windowsRead;
      const p = await history.series(series('temp', from, t0 + 100_000, 10));
      // At most scannedMax windows, + the one that tells where the next page starts.
      expect(table.windowsRead - before).toBeLessThanOrEqual(31);
      pages.push({ points: p.points.map((x) => x.last), next: p.next });
      from = p.next;
    }
    expect(pages).toEqual([
      { points: [], next: t0 + 30_000 },
      { points: [], next: t0 + 60_000 },
      { points: [70], next: t0 + 90_000 },
      { points: [], next: null },
    ]);
  });
});

/**
 * The `devices` table as Cassandra reads it: in token order of the partition key (here a stand-in hash, so token
 * order is not id order), from `token(device_id) >= token(?)` when asked, `fetchSize` rows a page (pageState).
 */
class FakeDevicesTable {
  readonly rows: { deviceId: string; lastSeen: number | null; metrics: string[] | null }[] = [];
  readonly reads: { cql: string; params: unknown[]; fetchSize: number | undefined; returned: number }[] = [];

  private static readonly tokens = new Map<string, number>();

  static token(id: string): number {
    let h = FakeDevicesTable.tokens.get(id);
    if (h !== undefined) return h;
    h = 2166136261;
    for (const c of id) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
    FakeDevicesTable.tokens.set(id, h);
    return h;
  }

  execute(cql: string, params: unknown[], opts: { fetchSize?: number; pageState?: string }) {
    const from = cql.includes('token(device_id) >= token(?)') ? FakeDevicesTable.token(params[0] as string) : 0;
    const ordered = this.rows
      .filter((r) => FakeDevicesTable.token(r.deviceId) >= from)
      .sort((a, b) => FakeDevicesTable.token(a.deviceId) - FakeDevicesTable.token(b.deviceId));
    const start = opts.pageState === undefined ? 0 : Number(opts.pageState);
    const size = opts.fetchSize ?? 5000;
    const rows = ordered.slice(start, start + size).map((r) =>
      driverRow({
        device_id: r.deviceId,
        last_seen: r.lastSeen === null ? null : types.Long.fromNumber(r.lastSeen),
        metrics: r.metrics,
      }),
    );
    this.reads.push({ cql, params: [...params], fetchSize: opts.fetchSize, returned: rows.length });
    return Promise.resolve({ rows, pageState: start + size < ordered.length ? String(start + size) : null });
  }

  inTokenOrder(): string[] {
    return this.rows.map((r) => r.deviceId).sort((a, b) => FakeDevicesTable.token(a) - FakeDevicesTable.token(b));
  }
}

describe('HistoryService.devices', () => {
  function setupDevices(n: number) {
    const table = new FakeDevicesTable();
    for (let i = 0; i < n; i++)
      table.rows.push({ deviceId: `dev-${i}`, lastSeen: i % 3 === 0 ? null : 1000 * i, metrics: ['vib', 'temp'] });
    const history = new HistoryService(table as unknown as CassandraService, testConfig());
    return { table, history };
  }

  it('answers a bounded page by default, reading one row past it to say where the next starts', async () => {
    const { table, history } = setupDevices(2500);
    const page = await history.devices(parseDevicesQuery({}), DeviceScope.All);
    expect(page.devices).toHaveLength(1000);
    const inTokenOrder = table.inTokenOrder();
    expect(page.devices.map((d) => d.deviceId)).toEqual(inTokenOrder.slice(0, 1000));
    expect(page.next).toBe(inTokenOrder[1000]);
    expect(table.reads).toEqual([
      {
        cql: expect.stringMatching(/FROM fleetpulse\.devices$/) as unknown,
        params: [],
        fetchSize: 1001,
        returned: 1001,
      },
    ]);
  });

  it('lists every device exactly once, page by page from next, and ends with null', async () => {
    const { history } = setupDevices(50);
    const seen: string[] = [];
    let next: string | null | undefined;
    let pages = 0;
    // At most 20 pages: a cursor that does not move would page forever.
    do {
      const page = await history.devices(parseDevicesQuery({ limit: '7', ...(next ? { next } : {}) }), DeviceScope.All);
      expect(page.devices.length).toBeLessThanOrEqual(7);
      seen.push(...page.devices.map((d) => d.deviceId));
      next = page.next;
      pages++;
    } while (next !== null && pages < 20);
    expect(pages).toBe(8);
    expect([...seen].sort()).toEqual(Array.from({ length: 50 }, (_, i) => `dev-${i}`).sort());
  });

  it('answers last seen as epoch ms (null if never written) and the metrics sorted', async () => {
    const { history } = setupDevices(4);
    const { devices, next } = await history.devices(parseDevicesQuery({ limit: '10' }), DeviceScope.All);
    expect(next).toBeNull();
    expect(devices.find((d) => d.deviceId === 'dev-0')).toEqual({
      deviceId: 'dev-0',
      lastSeen: null,
      metrics: ['temp', 'vib'],
    });
    expect(devices.find((d) => d.deviceId === 'dev-2')).toEqual({
      deviceId: 'dev-2',
      lastSeen: 2000,
      metrics: ['temp', 'vib'],
    });
  });

  it('lists a device-limited scope only its devices, each once, reading a bounded number of rows a page', async () => {
    // dev-1, dev-10..19, dev-100..199, dev-1000..1999: 1111 of 2500, scattered over token order.
    const { table, history } = setupDevices(2500);
    history.listScannedMax = 400;
    const scope = new DeviceScope(['dev-1*']);
    const seen: string[] = [];
    let next: string | null | undefined;
    let pages = 0;
    do {
      const before = table.reads.length;
      const page = await history.devices(parseDevicesQuery({ limit: '100', ...(next ? { next } : {}) }), scope);
      const read = table.reads.slice(before).reduce((n, r) => n + r.returned, 0);
      // At most listScannedMax rows, + the one that tells where the next page starts.
      expect(read).toBeLessThanOrEqual(401);
      expect(page.devices.length).toBeLessThanOrEqual(100);
      seen.push(...page.devices.map((d) => d.deviceId));
      next = page.next;
      pages++;
    } while (next !== null && pages < 100);
    expect(next).toBeNull();
    const mine = table.inTokenOrder().filter((id) => id.startsWith('dev-1'));
    expect(mine).toHaveLength(1111);
    expect(seen).toEqual(mine);
  });

  it('ends a page at the scan bound with next at the first row not read, even with no device in it', async () => {
    const { table, history } = setupDevices(300);
    history.listScannedMax = 50;
    const order = table.inTokenOrder();
    const last = order.at(-1)!;
    const page = await history.devices(parseDevicesQuery({}), new DeviceScope([last]));
    expect(page).toEqual({ devices: [], next: order[50] });
  });
});
