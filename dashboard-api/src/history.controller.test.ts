import { Test } from '@nestjs/testing';
import type { INestApplication } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { Access } from './access.service';
import { AuthGuard } from './auth.guard';
import { HistoryController } from './history.controller';
import { HistoryService } from './history.service';
import { HttpErrorsFilter } from './http-errors.filter';
import { StorageUnavailable } from './cassandra.service';
import type { AnomalyQuery, DevicesQuery, SeriesQuery, WindowsQuery } from './query';
import type { DeviceScope } from './access';
import { DashboardMetrics } from './metrics.service';
import { bearer, testConfig, TestTokens } from './testing';
import { DashboardConfigToken } from './tokens';

// The REST validation in a TestingModule with the storage faked: which parameters reach the queries, which get 400
// with the reason, and the 404 of an unknown device; behind the real guard (admin token unless a test says otherwise;
// the tenant sees `known-1*` only). Stored resolutions here: 10s and 60s (1s is live only).
let app: INestApplication;
let base: string;
const calls: {
  devices: DevicesQuery[];
  series: SeriesQuery[];
  windows: WindowsQuery[];
  anomalies: AnomalyQuery[];
  exists: string[];
  scopes: (readonly string[] | null)[];
} = { devices: [], series: [], windows: [], anomalies: [], exists: [], scopes: [] };
let storageDown = false;

const fakeHistory = {
  deviceExists: (id: string) => {
    calls.exists.push(id);
    if (storageDown) return Promise.reject(new StorageUnavailable('Cassandra unavailable: test'));
    return Promise.resolve(id.startsWith('known'));
  },
  devices: (q: DevicesQuery, scope: DeviceScope) => {
    calls.devices.push(q);
    calls.scopes.push(scope.patterns);
    const devices = [{ deviceId: 'known-1', lastSeen: 5000, metrics: ['temp'] }];
    return Promise.resolve({ devices, next: q.limit === 1 ? 'known-2' : null });
  },
  series: (q: SeriesQuery) => {
    calls.series.push(q);
    return Promise.resolve({
      deviceId: q.deviceId,
      metric: q.metric,
      resolution: q.resolution,
      points: [],
      next: null,
    });
  },
  windows: (q: WindowsQuery) => {
    calls.windows.push(q);
    return Promise.resolve({ deviceId: q.deviceId, resolution: q.resolution, windows: [], next: 42 });
  },
  anomalies: (q: AnomalyQuery, scope: DeviceScope) => {
    calls.anomalies.push(q);
    calls.scopes.push(scope.patterns);
    return Promise.resolve({ scores: [], next: q.limit === 1 ? 123 : null });
  },
};

beforeAll(async () => {
  const moduleRef = await Test.createTestingModule({
    controllers: [HistoryController],
    providers: [
      { provide: HistoryService, useValue: fakeHistory },
      { provide: DashboardConfigToken, useValue: testConfig({ storedResolutions: ['10s', '60s'] }, ['known-1*']) },
      DashboardMetrics,
      Access,
      { provide: APP_GUARD, useClass: AuthGuard },
    ],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  app.useGlobalFilters(new HttpErrorsFilter());
  await app.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
});

afterAll(async () => {
  await app.close();
});

beforeEach(() => {
  calls.devices.length = 0;
  calls.series.length = 0;
  calls.windows.length = 0;
  calls.anomalies.length = 0;
  calls.exists.length = 0;
  calls.scopes.length = 0;
  storageDown = false;
});

async function get(
  path: string,
  token: string | null = TestTokens.admin,
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(`${base}${path}`, { headers: token === null ? {} : bearer(token) });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

describe('GET /api/devices', () => {
  it('pages by limit (default 1000) from next; X-Next starts the next page, absent on the last', async () => {
    const first = await get('/api/devices');
    expect(first).toMatchObject({ status: 200, body: [{ deviceId: 'known-1', lastSeen: 5000, metrics: ['temp'] }] });
    expect(first.headers.get('x-next')).toBeNull();
    const more = await get('/api/devices?limit=1&next=known-0');
    expect(more.headers.get('x-next')).toBe('known-2');
    expect(calls.devices).toEqual([
      { limit: 1000, next: undefined },
      { limit: 1, next: 'known-0' },
    ]);
    await get('/api/devices?limit=10000&next=');
    expect(calls.devices[2]).toEqual({ limit: 10_000, next: undefined });
  });

  it.each([
    ['limit=0', 'limit: "0" is not a whole number from 1 to 10000'],
    ['limit=10001', 'limit: "10001" is not a whole number from 1 to 10000'],
    ['next=a%20b', 'next: "a b" is not a device id (1-128 chars of [A-Za-z0-9._:-])'],
    ['next=a&next=b', 'next: give it once, as a single value'],
  ])('400 for %s', async (query, error) => {
    expect(await get(`/api/devices?${query}`)).toMatchObject({ status: 400, body: { error } });
    expect(calls.devices).toHaveLength(0);
  });
});

describe('GET /api/devices/:id/metrics/:metric', () => {
  it('takes ISO and epoch-ms times, a resolution and a limit', async () => {
    const r = await get(
      '/api/devices/known-1/metrics/temp?resolution=60s&from=2026-01-01T00:00:00Z&to=1767229200000&limit=7',
    );
    expect(r.status).toBe(200);
    expect(calls.series[0]).toMatchObject({
      deviceId: 'known-1',
      metric: 'temp',
      resolution: '60s',
      sizeMs: 60_000,
      from: Date.UTC(2026, 0, 1),
      to: 1767229200000,
      limit: 7,
    });
  });

  it('defaults to 10s over the last hour, 1000 points', async () => {
    const before = Date.now();
    await get('/api/devices/known-1/metrics/temp');
    const q = calls.series[0]!;
    expect(q).toMatchObject({ resolution: '10s', limit: 1000 });
    expect(q.to - q.from).toBe(3_600_000);
    expect(q.to).toBeGreaterThanOrEqual(before);
  });

  it.each([
    ['resolution=10', 'resolution: "10" is not of the form <seconds>s, e.g. 10s'],
    ['resolution=0s', 'resolution: "0s" is not of the form <seconds>s, e.g. 10s'],
    ['from=yesterday', 'from: "yesterday" is neither epoch milliseconds nor an ISO 8601 time'],
    ['to=2026-13-45T00:00:00Z', 'to: "2026-13-45T00:00:00Z" is neither epoch milliseconds nor an ISO 8601 time'],
    ['from=2000&to=1000', 'from (2000) must be before to (1000)'],
    ['limit=0', 'limit: "0" is not a whole number from 1 to 10000'],
    ['limit=10001', 'limit: "10001" is not a whole number from 1 to 10000'],
    ['limit=abc', 'limit: "abc" is not a whole number from 1 to 10000'],
    ['from=1&from=2', 'from: give it once, as a single value'],
    ['resolution=1s', 'resolution 1s is live only (not stored); stored: 10s,60s'],
    [
      'resolution=10s&from=0&to=1767229200000',
      'range too wide for resolution 10s: it spans 49090 storage buckets, at most 1000 (narrow from/to or use a coarser resolution)',
    ],
  ])('400 for %s', async (query, error) => {
    const r = await get(`/api/devices/known-1/metrics/temp?${query}`);
    expect(r).toMatchObject({ status: 400, body: { error } });
    expect(calls.series).toHaveLength(0);
  });

  it('400 for a malformed metric or device id, 404 for an unknown device', async () => {
    expect(await get('/api/devices/known-1/metrics/te%20mp')).toMatchObject({
      status: 400,
      body: { error: 'metric "te mp" is not 1-64 chars of [A-Za-z0-9._-]' },
    });
    expect(await get(`/api/devices/${'x'.repeat(129)}/metrics/temp`)).toMatchObject({ status: 400 });
    expect(await get('/api/devices/nobody/metrics/temp')).toMatchObject({
      status: 404,
      body: { error: 'unknown device "nobody"' },
    });
  });

  it('503 with Retry-After while Cassandra is unreachable', async () => {
    storageDown = true;
    const r = await get('/api/devices/known-1/metrics/temp');
    expect(r).toMatchObject({ status: 503, body: { error: 'Cassandra unavailable: test' } });
    expect(r.headers.get('retry-after')).toBe('5');
  });
});

describe('GET /api/devices/:id/windows', () => {
  it('takes a resolution, a range and a limit, defaults to 10s over the last hour, 1000 windows', async () => {
    const r = await get(
      '/api/devices/known-1/windows?resolution=60s&from=2026-01-01T00:00:00Z&to=1767229200000&limit=9',
    );
    expect(r).toEqual({
      status: 200,
      body: { deviceId: 'known-1', resolution: '60s', windows: [], next: 42 },
      headers: expect.anything() as unknown,
    });
    expect(calls.windows[0]).toEqual({
      deviceId: 'known-1',
      resolution: '60s',
      sizeMs: 60_000,
      from: Date.UTC(2026, 0, 1),
      to: 1767229200000,
      limit: 9,
    });
    const before = Date.now();
    await get('/api/devices/known-1/windows');
    const q = calls.windows[1]!;
    expect(q).toMatchObject({ resolution: '10s', limit: 1000 });
    expect(q.to - q.from).toBe(3_600_000);
    expect(q.to).toBeGreaterThanOrEqual(before);
  });

  it.each([
    ['resolution=1s', 'resolution 1s is live only (not stored); stored: 10s,60s'],
    ['resolution=5s', 'resolution 5s is live only (not stored); stored: 10s,60s'],
    ['resolution=ten', 'resolution: "ten" is not of the form <seconds>s, e.g. 10s'],
    ['from=soon', 'from: "soon" is neither epoch milliseconds nor an ISO 8601 time'],
    ['from=5&to=5', 'from (5) must be before to (5)'],
    ['limit=5001', 'limit: "5001" is not a whole number from 1 to 5000'],
    ['resolution=10s&resolution=60s', 'resolution: give it once, as a single value'],
  ])('400 for %s', async (query, error) => {
    expect(await get(`/api/devices/known-1/windows?${query}`)).toMatchObject({ status: 400, body: { error } });
    expect(calls.windows).toHaveLength(0);
  });

  it('400 for a malformed device id, 404 for an unknown device, 503 while Cassandra is unreachable', async () => {
    expect(await get('/api/devices/a%20b/windows')).toMatchObject({
      status: 400,
      body: { error: 'device id "a b" is not 1-128 chars of [A-Za-z0-9._:-]' },
    });
    expect(await get('/api/devices/nobody/windows')).toMatchObject({
      status: 404,
      body: { error: 'unknown device "nobody"' },
    });
    storageDown = true;
    expect(await get('/api/devices/known-1/windows')).toMatchObject({ status: 503 });
    expect(calls.windows).toHaveLength(0);
  });
});

describe('GET /api/anomalies', () => {
  it('takes an optional device, a range and a limit; says where the next page starts', async () => {
    const r = await get('/api/anomalies?from=1000&to=5000&limit=1');
    expect(r).toMatchObject({ status: 200, body: [] });
    expect(r.headers.get('x-next-to')).toBe('124');
    expect(calls.anomalies[0]).toEqual({ deviceId: undefined, from: 1000, to: 5000, limit: 1 });
    await get('/api/anomalies?deviceId=known-2');
    expect(calls.anomalies[1]).toMatchObject({ deviceId: 'known-2', limit: 500 });
    expect(calls.anomalies[1]!.to - calls.anomalies[1]!.from).toBe(86_400_000);
  });

  it('400 for bad parameters, 404 for an unknown device', async () => {
    expect(await get('/api/anomalies?from=0&to=86400000000')).toMatchObject({
      status: 400,
      body: { error: 'range too wide: it spans 1000 days, at most 31' },
    });
    expect(await get('/api/anomalies?limit=5001')).toMatchObject({ status: 400 });
    expect(await get('/api/anomalies?deviceId=a%20b')).toMatchObject({ status: 400 });
    expect(await get('/api/anomalies?deviceId=ghost')).toMatchObject({ status: 404 });
  });
});

it('unknown routes answer 404 {"error"}', async () => {
  expect(await get('/api/nothing')).toMatchObject({ status: 404, body: { error: 'Cannot GET /api/nothing' } });
});

describe('access', () => {
  const routes = [
    '/api/devices',
    '/api/devices/known-1/metrics/temp',
    '/api/devices/known-1/windows',
    '/api/anomalies',
    '/api/anomalies?deviceId=known-1',
  ];

  it.each(routes)('401 with WWW-Authenticate for %s without a token or with a wrong one', async (route) => {
    for (const token of [null, 'test-admin-token-2', '']) {
      const r = await get(route, token);
      expect(r).toMatchObject({ status: 401, body: { error: token === null ? 'no token' : 'unknown token' } });
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="fleetpulse"');
    }
    const cookieOnly = await fetch(`${base}${route}`, { headers: { cookie: 'fleetpulse_session=forged' } });
    expect(cookieOnly.status).toBe(401);
    expect(calls.exists).toEqual([]);
    expect(calls.devices.length + calls.anomalies.length + calls.series.length + calls.windows.length).toBe(0);
  });

  it.each(routes)('a viewer reads %s as an admin does', async (route) => {
    expect((await get(route, TestTokens.viewer)).status).toBe(200);
  });

  it("hands the device list and the anomalies the caller's scope", async () => {
    await get('/api/devices', TestTokens.tenant);
    await get('/api/anomalies', TestTokens.tenant);
    await get('/api/devices', TestTokens.admin);
    expect(calls.scopes).toEqual([['known-1*'], ['known-1*'], null]);
  });

  it('answers a device-limited token 404 for any other device, as if absent, without looking it up', async () => {
    const unknown = { status: 404, body: { error: 'unknown device "known-2"' } };
    expect(await get('/api/devices/known-2/metrics/temp', TestTokens.tenant)).toMatchObject(unknown);
    expect(await get('/api/devices/known-2/windows', TestTokens.tenant)).toMatchObject(unknown);
    expect(await get('/api/anomalies?deviceId=known-2', TestTokens.tenant)).toMatchObject(unknown);
    expect(calls.exists).toEqual([]);
    // Its own device: looked up and answered.
    expect((await get('/api/devices/known-10/windows', TestTokens.tenant)).status).toBe(200);
    expect(calls.exists).toEqual(['known-10']);
    expect(calls.windows).toHaveLength(1);
  });
});
