import { randomBytes } from 'node:crypto';
import { connectedCassandra, kafkaClient } from '@fleetpulse/compose/testing';
import { bucketOf, Topics, type AnomalyScore, type WindowRecord } from '@fleetpulse/contracts';
import type { Client } from 'cassandra-driver';
import type { Producer } from 'kafkajs';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import { startDashboard, type RunningDashboard } from './app';
import { anomalyScore, bearer, testConfig, TestTokens, windowRecord } from './testing';

// Hostile and cross-tenant clients against the whole API on the real Kafka and Cassandra (issue 13): no anonymous
// read anywhere, a device-limited token never sees another device in any answer or stream, no origin reflected and
// a foreign page's handshake refused, sessions that end, and bounded sockets (subscriptions, message size, sockets
// per token). The tenant token sees `acc-<run>-t-*`; `acc-<run>-o-*` are the others' devices.
const run = randomBytes(4).toString('hex');
const mine = (n: string) => `acc-${run}-t-${n}`;
const others = (n: string) => `acc-${run}-o-${n}`;
const tenantPattern = `acc-${run}-t-*`;
// Far from other suites' windows and anomalies: a day partition of its own, 1s windows within one bucket.
const t0 = Date.UTC(2032, 1, 3, 4, 5, 6) + Math.floor((Math.random() * 3_000_000) / 1000) * 1000;
const Evil = 'https://evil.example';

let dashboard: RunningDashboard;
/** A second instance, without Kafka: a CORS origin configured and 3 sockets a token. */
let open: RunningDashboard;
let cassandra: Client;
let producer: Producer;
const sockets: Socket[] = [];

async function seed(): Promise<void> {
  const insert =
    'INSERT INTO fleetpulse.windows (device_id, resolution, bucket, window_start, window_end, metrics) VALUES (?, ?, ?, ?, ?, ?)';
  for (const id of [mine('1'), mine('2'), others('1'), others('2')]) {
    const r = windowRecord(id, t0, { temp: 20 });
    await cassandra.execute(insert, [id, '1s', bucketOf(t0, 1000), r.windowStart, r.windowEnd, r.metrics], {
      prepare: true,
    });
    await cassandra.execute(
      'UPDATE fleetpulse.devices SET last_seen = ?, metrics = metrics + ? WHERE device_id = ?',
      [r.windowEnd, ['temp'], id],
      { prepare: true },
    );
    const s = anomalyScore(id, t0);
    const day = Math.floor(t0 / 86_400_000) * 86_400_000;
    await cassandra.execute(
      'INSERT INTO fleetpulse.anomalies (device_id, day, window_start, resolution, model, model_version, score, features) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [id, day, s.windowStart, s.resolution, s.model, s.modelVersion, s.score, s.features],
      { prepare: true },
    );
    await cassandra.execute(
      'INSERT INTO fleetpulse.anomalies_by_day (day, window_start, device_id, resolution, model, model_version, score, features) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [day, s.windowStart, id, s.resolution, s.model, s.modelVersion, s.score, s.features],
      { prepare: true },
    );
  }
}

beforeAll(async () => {
  cassandra = await connectedCassandra();
  producer = kafkaClient().producer();
  await producer.connect();
  await seed();
  dashboard = await startDashboard(testConfig({}, [tenantPattern]), { logLevels: ['error'] });
  open = await startDashboard(testConfig({ corsOrigins: ['https://ops.example'], liveMaxSocketsPerToken: 3 }), {
    kafka: false,
    logLevels: ['error'],
  });
});

afterEach(() => {
  for (const s of sockets.splice(0)) s.disconnect();
});

afterAll(async () => {
  await dashboard?.close();
  await open?.close();
  await producer?.disconnect();
  await cassandra?.shutdown();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field below
async function get(path: string, headers: Record<string, string> = {}, base = dashboard.url): Promise<any> {
  const res = await fetch(`${base}${path}`, { headers });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

/** A socket on `/live` with `opts` (auth, headers), once connected; rejects with the connect_error. */
async function connect(opts: Partial<ManagerOptions & SocketOptions>, base = dashboard.url): Promise<Socket> {
  const s = io(`${base}/live`, { transports: ['websocket'], forceNew: true, reconnection: false, ...opts });
  sockets.push(s);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('connect_error', reject);
  });
  return s;
}

const refusedWith = (opts: Partial<ManagerOptions & SocketOptions>, base?: string) =>
  connect(opts, base).then(
    () => 'connected',
    (e: Error & { data?: unknown }) => ({ message: e.message, data: e.data }),
  );

/** What a socket receives, as `<event> <deviceId>`, from now on. */
function events(socket: Socket): string[] {
  const got: string[] = [];
  socket.on('aggregate', (r: WindowRecord) => got.push(`aggregate ${r.deviceId}`));
  socket.on('aggregates', (rs: WindowRecord[]) => got.push(...rs.map((r) => `aggregates ${r.deviceId}`)));
  socket.on('anomaly', (a: AnomalyScore) => got.push(`anomaly ${a.deviceId}`));
  return got;
}

async function until(cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !cond(); await new Promise((r) => setTimeout(r, 50)))
    if (Date.now() > end) throw new Error(`not after ${timeoutMs} ms`);
}

const send = <T extends { deviceId: string }>(topic: string, value: T) =>
  producer.send({ topic, messages: [{ key: value.deviceId, value: JSON.stringify(value) }] });

describe('no token, no data', () => {
  const routes = [
    '/api/devices',
    `/api/devices/${mine('1')}/windows`,
    `/api/devices/${mine('1')}/metrics/temp`,
    '/api/anomalies',
    `/api/anomalies?deviceId=${mine('1')}`,
    '/api/models',
    '/api/session',
  ];

  it.each(routes)('401 for %s without a token, with a wrong one, or a forged cookie', async (route) => {
    for (const headers of [{}, bearer('test-admin-token-2'), { cookie: `fleetpulse_session=${'A'.repeat(43)}` }]) {
      const r = await get(route, headers);
      expect(r.status).toBe(401);
      expect(Object.keys(r.body)).toEqual(['error']);
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="fleetpulse"');
    }
  });

  it('keeps liveness, readiness, metrics and the UI open', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/']) {
      const res = await fetch(`${dashboard.url}${path}`);
      expect([path, res.status === 401]).toEqual([path, false]);
    }
  });

  it('refuses a /live connection without a token or with a wrong one (401), and accepts a right one', async () => {
    expect(await refusedWith({})).toEqual({ message: 'no token', data: { status: 401 } });
    expect(await refusedWith({ auth: { token: 'test-admin-token-2' } })).toEqual({
      message: 'unknown token',
      data: { status: 401 },
    });
    expect(await refusedWith({ auth: { token: 42 } })).toEqual({ message: 'unknown token', data: { status: 401 } });
    expect(await refusedWith({ extraHeaders: bearer(TestTokens.viewer) })).toBe('connected');
    expect(await refusedWith({ auth: { token: TestTokens.viewer } })).toBe('connected');
  });

  it("holds no socket on socket.io's main namespace, with or without a token", async () => {
    for (const auth of [{}, { token: TestTokens.admin }]) {
      const s = io(dashboard.url, { transports: ['websocket'], forceNew: true, reconnection: false, auth });
      sockets.push(s);
      const refused = await new Promise<unknown>((resolve) => {
        s.once('connect', () => resolve('connected'));
        s.once('connect_error', (e: Error & { data?: unknown }) => resolve({ message: e.message, data: e.data }));
      });
      expect(refused).toEqual({ message: 'no such namespace: connect to /live', data: { status: 404 } });
    }
  });
});

describe('a device-limited token sees only its devices', () => {
  const tenant = bearer(TestTokens.tenant);
  const admin = bearer(TestTokens.admin);
  const ours = (id: string) => id.startsWith(`acc-${run}-t-`);

  it('in the device list', async () => {
    // From each of its devices (next is inclusive): the page starts there and holds only its devices.
    for (const id of [mine('1'), mine('2')]) {
      const page = await get(`/api/devices?next=${id}&limit=50`, tenant);
      expect(page.status).toBe(200);
      expect(page.body[0]).toEqual({ deviceId: id, lastSeen: t0 + 1000, metrics: ['temp'] });
      expect(page.body.map((d: { deviceId: string }) => d.deviceId).filter((d: string) => !ours(d))).toEqual([]);
    }
    // The admin's page from there holds other devices too (the table holds every other run's).
    const all = await get(`/api/devices?next=${others('1')}&limit=1`, admin);
    expect(all.body.map((d: { deviceId: string }) => d.deviceId)).toEqual([others('1')]);
    expect((await get(`/api/devices?next=${others('1')}&limit=1`, tenant)).body[0]?.deviceId).not.toBe(others('1'));
    // From the start: a page reads a bounded number of rows, and holds nothing of anyone else.
    const first = await get('/api/devices?limit=1000', tenant);
    expect(first.body.filter((d: { deviceId: string }) => !ours(d.deviceId))).toEqual([]);
    if (first.headers.get('x-next') === null)
      expect(first.body.map((d: { deviceId: string }) => d.deviceId).sort()).toEqual([mine('1'), mine('2')]);
  });

  it('in history: another device is 404 exactly as one that does not exist', async () => {
    const range = `resolution=1s&from=${t0}&to=${t0 + 60_000}`;
    const w = await get(`/api/devices/${mine('1')}/windows?${range}`, tenant);
    expect(w.body.windows).toEqual([windowRecord(mine('1'), t0, { temp: 20 })]);
    for (const path of [`windows?${range}`, `metrics/temp?${range}`]) {
      const other = await get(`/api/devices/${others('1')}/${path}`, tenant);
      const ghost = await get(`/api/devices/${mine('ghost')}/${path}`, tenant);
      expect(other).toMatchObject({ status: 404, body: { error: `unknown device "${others('1')}"` } });
      expect(ghost).toMatchObject({ status: 404, body: { error: `unknown device "${mine('ghost')}"` } });
      expect((await get(`/api/devices/${others('1')}/${path}`, admin)).status).toBe(200);
    }
  });

  it('in the anomalies, of the fleet and of a device', async () => {
    const range = `from=${t0}&to=${t0 + 1000}`;
    const fleet = await get(`/api/anomalies?${range}&limit=5000`, tenant);
    expect(fleet.body.map((s: AnomalyScore) => s.deviceId).sort()).toEqual([mine('1'), mine('2')]);
    const everyone = await get(`/api/anomalies?${range}&limit=5000`, admin);
    const runs = everyone.body.map((s: AnomalyScore) => s.deviceId).filter((d: string) => d.includes(run));
    expect(runs.sort()).toEqual([others('1'), others('2'), mine('1'), mine('2')]);
    expect(await get(`/api/anomalies?deviceId=${others('1')}&${range}`, tenant)).toMatchObject({ status: 404 });
    expect((await get(`/api/anomalies?deviceId=${mine('1')}&${range}`, tenant)).body).toEqual([
      anomalyScore(mine('1'), t0),
    ]);
  });

  it('on /live: no other device to subscribe to, and its fleet carries only its devices and their anomalies', async () => {
    const socket = await connect({ auth: { token: TestTokens.tenant } });
    expect(await socket.emitWithAck('subscribe', { deviceId: others('1') })).toEqual({
      ok: false,
      error: `deviceId "${others('1')}" is not visible to this token`,
    });
    for (const sub of [{ fleet: true }, { fleet: true, batch: true, resolution: '1s' }, { deviceId: mine('1') }])
      expect(await socket.emitWithAck('subscribe', sub)).toEqual({ ok: true });
    const watcher = await connect({ auth: { token: TestTokens.admin } });
    expect(await watcher.emitWithAck('subscribe', { fleet: true })).toEqual({ ok: true });
    const seen = events(socket);
    const watched = events(watcher);
    // The consumer starts at the latest offset once assigned: probe with a device of ours until one comes through.
    for (let i = 0; !seen.includes(`aggregate ${mine('1')}`) && i < 100; i++) {
      await send(Topics.aggregates, windowRecord(mine('1'), Date.now(), { probe: i }));
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(seen).toContain(`aggregate ${mine('1')}`);
    // Others' records and anomalies first: once the admin's socket has them, the API has sent them wherever it would.
    const now = Math.floor(Date.now() / 1000) * 1000;
    for (const id of [others('1'), others('2')]) {
      await send(Topics.aggregates, windowRecord(id, now, { temp: 1 }));
      await send(Topics.scores, anomalyScore(id, now));
    }
    await until(() =>
      [others('1'), others('2')].every(
        (id) => watched.includes(`aggregate ${id}`) && watched.includes(`anomaly ${id}`),
      ),
    );
    // Then ours, to the same socket: one socket keeps its order, so anything of theirs it was sent is in before these.
    await send(Topics.aggregates, windowRecord(mine('2'), now, { temp: 2 }));
    await send(Topics.scores, anomalyScore(mine('2'), now));
    const expected = [`aggregate ${mine('2')}`, `aggregates ${mine('2')}`, `anomaly ${mine('2')}`];
    await until(() => expected.every((e) => seen.includes(e)));
    expect(seen.filter((e) => !e.includes(`acc-${run}-t-`))).toEqual([]);
  });
});

describe('sessions', () => {
  const login = (token: string) =>
    fetch(`${dashboard.url}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });

  it('exchange a token for a cookie that opens REST and /live; sign-out ends both', async () => {
    const res = await login(TestTokens.tenant);
    expect(res.status).toBe(200);
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    const who = await get('/api/session', { cookie });
    expect(who).toMatchObject({ status: 200, body: { role: 'viewer', devices: [tenantPattern], via: 'session' } });
    expect(JSON.stringify(who.body)).not.toContain(TestTokens.tenant);
    expect(await get('/api/session', bearer(TestTokens.admin))).toMatchObject({
      body: { role: 'admin', devices: null, via: 'token', expiresAt: null },
    });
    expect((await get(`/api/devices/${others('1')}/windows`, { cookie })).status).toBe(404);
    const socket = await connect({ extraHeaders: { cookie } });
    expect(await socket.emitWithAck('subscribe', { deviceId: mine('1') })).toEqual({ ok: true });
    const closed = new Promise<string>((r) => socket.once('disconnect', r));
    const out = await fetch(`${dashboard.url}/api/session`, { method: 'DELETE', headers: { cookie } });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(
      /^fleetpulse_session=; Path=\/; Max-Age=0; HttpOnly; SameSite=Strict/,
    );
    expect(await closed).toBe('io server disconnect');
    expect(await get('/api/session', { cookie })).toMatchObject({
      status: 401,
      body: { error: 'no session (signed out or expired)' },
    });
    expect(await refusedWith({ extraHeaders: { cookie } })).toEqual({
      message: 'no session (signed out or expired)',
      data: { status: 401 },
    });
  });
});

describe('origins', () => {
  it("reflects no origin: no CORS header on REST or socket.io, and a foreign page's handshake is refused", async () => {
    const rest = await fetch(`${dashboard.url}/api/devices?limit=1`, {
      headers: { ...bearer(TestTokens.admin), origin: Evil },
    });
    expect(rest.status).toBe(200);
    expect(rest.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await fetch(`${dashboard.url}/api/devices`, {
      method: 'OPTIONS',
      headers: {
        origin: Evil,
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    const polling = await fetch(`${dashboard.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: Evil } });
    expect(polling.status).toBe(403);
    expect(polling.headers.get('access-control-allow-origin')).toBeNull();
    // The session cookie of an admin, from a foreign page: the WebSocket handshake never happens.
    expect(await refusedWith({ auth: { token: TestTokens.admin }, extraHeaders: { origin: Evil } })).toMatchObject({
      message: 'websocket error',
    });
    // The dashboard's own origin is fine.
    expect(await refusedWith({ auth: { token: TestTokens.admin }, extraHeaders: { origin: dashboard.url } })).toBe(
      'connected',
    );
  });

  it('answers a configured origin with CORS, and no other', async () => {
    const ok = await fetch(`${open.url}/api/devices?limit=1`, {
      headers: { ...bearer(TestTokens.admin), origin: 'https://ops.example' },
    });
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://ops.example');
    expect(ok.headers.get('access-control-expose-headers')).toBe('X-Next,X-Next-To');
    const polling = await fetch(`${open.url}/socket.io/?EIO=4&transport=polling`, {
      headers: { origin: 'https://ops.example' },
    });
    expect([polling.status, polling.headers.get('access-control-allow-origin')]).toEqual([200, 'https://ops.example']);
    const evil = await fetch(`${open.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: Evil } });
    expect([evil.status, evil.headers.get('access-control-allow-origin')]).toEqual([403, null]);
  });
});

describe('hostile sockets are bounded', () => {
  it('holds 100 of 1,000 subscriptions on one socket and refuses the rest with the reason; the socket goes on', async () => {
    const socket = await connect({ auth: { token: TestTokens.admin } });
    const acks = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => socket.emitWithAck('subscribe', { deviceId: others(`sub-${i}`) })),
    );
    const refused = {
      ok: false,
      error: 'too many subscriptions on this socket (at most 100); unsubscribe first',
    };
    expect(acks.filter((a) => a.ok)).toHaveLength(100);
    expect(acks.filter((a) => !a.ok)).toEqual(Array.from({ length: 900 }, () => refused));
    // The socket's rooms: its own id and the 100 subscriptions.
    expect(dashboard.gateway.nsp.adapter.sids.get(socket.id!)?.size).toBe(101);
    expect(socket.connected).toBe(true);
    expect(await socket.emitWithAck('unsubscribe', { deviceId: others('sub-0') })).toEqual({ ok: true });
    expect(await socket.emitWithAck('subscribe', { fleet: true })).toEqual({ ok: true });
  });

  it('closes a socket that sends a 200 KB resolution label before reading it; a smaller unknown one is refused', async () => {
    const socket = await connect({ auth: { token: TestTokens.admin } });
    expect(await socket.emitWithAck('subscribe', { fleet: true, resolution: 'x'.repeat(10_000) })).toEqual({
      ok: false,
      error: 'resolution: expected one of 1s,10s,60s',
    });
    const closed = new Promise<string>((r) => socket.once('disconnect', r));
    socket.emit('subscribe', { fleet: true, resolution: 'x'.repeat(200_000) });
    expect(await closed).toBe('transport close');
    expect(dashboard.gateway.nsp.adapter.sids.get(socket.id ?? '')).toBeUndefined();
    // Everyone else carries on.
    const other = await connect({ auth: { token: TestTokens.admin } });
    expect(await other.emitWithAck('subscribe', { fleet: true, resolution: '10s' })).toEqual({ ok: true });
  });

  it('refuses a token its sockets past the bound (429) until one closes', async () => {
    const three = await Promise.all([1, 2, 3].map(() => connect({ auth: { token: TestTokens.viewer } }, open.url)));
    expect(await refusedWith({ auth: { token: TestTokens.viewer } }, open.url)).toEqual({
      message: 'too many sockets for this token (at most 3)',
      data: { status: 429 },
    });
    // Another token is not held back by it.
    expect(await refusedWith({ auth: { token: TestTokens.admin } }, open.url)).toBe('connected');
    three[0]!.disconnect();
    await new Promise((r) => setTimeout(r, 200));
    expect(await refusedWith({ auth: { token: TestTokens.viewer } }, open.url)).toBe('connected');
  });

  it('past its failed logins, refuses every request of the address (429 + Retry-After), a right token too, on REST, login and /live', async () => {
    // An instance of its own: 3 failures, then one a minute.
    const guarded = await startDashboard(testConfig({ loginFailures: { perMinute: 1, burst: 3, maxAddresses: 10 } }), {
      kafka: false,
      logLevels: ['error'],
    });
    try {
      const devices = (token: string) => fetch(`${guarded.url}/api/devices`, { headers: bearer(token) });
      // A request without any credential is no login: it never counts.
      for (let i = 0; i < 5; i++) expect((await fetch(`${guarded.url}/api/devices`)).status).toBe(401);
      expect((await devices(TestTokens.admin)).status).toBe(200);
      // The bucket lets a request go while it holds more than nothing (a request is never half admitted): the three
      // of the burst, and one more on the sliver refilled meanwhile, then it is in debt.
      for (let i = 0; i < 4; i++) expect((await devices(`wrong-token-${i}`)).status).toBe(401);
      const refused = await devices(TestTokens.admin);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const login = await fetch(`${guarded.url}/api/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: TestTokens.admin }),
      });
      expect(login.status).toBe(429);
      expect(await refusedWith({ auth: { token: TestTokens.admin } }, guarded.url)).toEqual({
        message: expect.stringMatching(/^too many failed logins from this address; retry in \d+ s$/) as unknown,
        data: { status: 429 },
      });
    } finally {
      await guarded.close();
    }
  });
});
