import type { DeviceSummary, SeriesPage } from '@fleetpulse/dashboard-api/wire';
import { fetchDevices, fetchSeries } from './api';

// The UI's REST paging against a stand-in API (fetch stubbed): it follows the API's cursors to the end or to its bound.

const device = (i: number): DeviceSummary => ({ deviceId: `d-${i}`, lastSeen: i, metrics: ['temp'] });

/** `GET /api/devices` over `n` devices: `limit` a page from the device `next`, X-Next on every page but the last. */
function deviceApi(n: number): string[] {
  const asked: string[] = [];
  jest.spyOn(globalThis, 'fetch').mockImplementation((input) => {
    const url = new URL(String(input), 'http://ui.test');
    asked.push(url.search);
    const from = Number(url.searchParams.get('next')?.slice(2) ?? 0);
    const limit = Number(url.searchParams.get('limit'));
    const page = Array.from({ length: Math.max(0, Math.min(limit, n - from)) }, (_, i) => device(from + i));
    const headers = from + limit < n ? { 'X-Next': `d-${from + limit}` } : undefined;
    return Promise.resolve(new Response(JSON.stringify(page), { headers }));
  });
  return asked;
}

afterEach(() => jest.restoreAllMocks());

describe('fetchDevices', () => {
  it('follows X-Next to the last page, handing each page over as it comes', async () => {
    const asked = deviceApi(12_000);
    const pages: DeviceSummary[][] = [];
    expect(await fetchDevices((p) => pages.push(p))).toEqual({ count: 12_000, cut: false });
    expect(asked).toEqual(['?limit=5000', '?limit=5000&next=d-5000', '?limit=5000&next=d-10000']);
    expect(pages.map((p) => p.length)).toEqual([5000, 5000, 2000]);
    expect(pages.flat()).toEqual(Array.from({ length: 12_000 }, (_, i) => device(i)));
  });

  it('stops at its bound and says the list was cut', async () => {
    const asked = deviceApi(12_000);
    const seen: DeviceSummary[] = [];
    expect(await fetchDevices((p) => seen.push(...p), 7000)).toEqual({ count: 7000, cut: true });
    expect(asked).toEqual(['?limit=5000', '?limit=2000&next=d-5000']);
    expect(seen).toHaveLength(7000);
  });

  it('throws the API error', async () => {
    jest
      .spyOn(globalThis, 'fetch')
      .mockResolvedValue(new Response(JSON.stringify({ error: 'limit: "0" is not a whole number' }), { status: 400 }));
    await expect(fetchDevices(() => undefined)).rejects.toThrow('limit: "0" is not a whole number');
  });
});

describe('fetchSeries', () => {
  it('follows next from page to page', async () => {
    const asked: string[] = [];
    jest.spyOn(globalThis, 'fetch').mockImplementation((input) => {
      const url = new URL(String(input), 'http://ui.test');
      asked.push(url.searchParams.get('from')!);
      const from = Number(url.searchParams.get('from'));
      const point = { deviceId: 'd', metric: 'temp', resolution: '10s', windowStart: from, windowEnd: from + 10_000 };
      const body: SeriesPage = {
        deviceId: 'd',
        metric: 'temp',
        resolution: '10s',
        points: [{ ...point, count: 1, sum: 1, min: 1, max: 1, mean: 1, stddev: 0, first: 1, last: 1 }],
        next: from < 20_000 ? from + 10_000 : null,
      };
      return Promise.resolve(new Response(JSON.stringify(body)));
    });
    const { points, cut } = await fetchSeries('d', 'temp', '10s', 0, 60_000);
    expect(points.map((p) => p.windowStart)).toEqual([0, 10_000, 20_000]);
    expect(cut).toBe(false);
    expect(asked).toEqual(['0', '10000', '20000']);
  });
});
