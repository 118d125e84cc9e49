import { bucketOf, type WindowRecord } from '@fleetpulse/contracts';
import type { CassandraService } from './cassandra.service';
import { HistoryService } from './history.service';
import { parseSeriesQuery, parseWindowsQuery } from './query';
import { testConfig, windowRecord } from './testing';

// How a history page walks the `windows` table: bucket by bucket, page by page, skipping windows without the metric,
// within a bound on the windows it reads. The table is an in-memory stand-in that pages as Cassandra does (fetchSize,
// pageState) and applies the query's WHERE clause; dashboard.int.test.ts runs the same reads on the real Cassandra.
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
      window_start: (r) => r.windowStart,
      window_end: (r) => r.windowEnd,
      metrics: (r) => r.metrics,
      stats: (r) => r.metrics[metric!] ?? null,
    };
    return Promise.resolve({
      rows: page.map((r) => ({ get: (c: string) => columns[c]!(r) })),
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
