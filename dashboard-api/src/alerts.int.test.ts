import { randomBytes } from 'node:crypto';
import { AlertStore, transitionId } from '@fleetpulse/alerting';
import { connectedCassandra, kafkaClient } from '@fleetpulse/compose/testing';
import { Keyspace, Topics, type AlertTransition } from '@fleetpulse/contracts';
import type { Client } from 'cassandra-driver';
import type { Producer } from 'kafkajs';
import { io, type Socket } from 'socket.io-client';
import { startDashboard, type RunningDashboard } from './app';
import { bearer, testConfig, TestTokens } from './testing';

// The alert routes and the live `alert` event against the real Kafka and Cassandra: rules through the API (stored
// by @fleetpulse/alerting's RuleStore), history rows written by the alerting package's own AlertStore, transitions
// produced to the real `alerts` topic. The tenant token sees devices `alrt-<run>-t*` only.
const run = randomBytes(4).toString('hex');
const mine = (n: string) => `alrt-${run}-t${n}`;
const others = (n: string) => `alrt-${run}-o${n}`;
const tenantPattern = `alrt-${run}-t*`;
const hook = 'http://127.0.0.1:9/hooks/fleet';
// Windows of a fixed past day (plus the day before it), so the history's partitions are known.
const day = Date.UTC(2030, 2, 14);

let dashboard: RunningDashboard;
let cassandra: Client;
let producer: Producer;
const sockets: Socket[] = [];

const admin = bearer(TestTokens.admin);
const viewer = bearer(TestTokens.viewer);
const tenant = bearer(TestTokens.tenant);

const rule = (over: Record<string, unknown> = {}) => ({
  name: 'overheat',
  devices: `alrt-${run}-*`,
  resolution: '10s',
  when: { feature: 'temp.max', op: '>', value: 80, forWindows: 2 },
  webhook: hook,
  ...over,
});

/* eslint-disable @typescript-eslint/no-explicit-any -- answers are checked field by field below */
async function call(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${dashboard.url}${path}`, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : JSON.parse(text), headers: res.headers };
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** A transition as the evaluator makes it (its id: rule, device, episode and state). */
function transition(
  ruleId: string,
  deviceId: string,
  state: AlertTransition['state'],
  episode: number,
  windowStart: number,
): AlertTransition {
  return {
    id: transitionId(ruleId, deviceId, episode, state),
    ruleId,
    ruleName: 'overheat',
    deviceId,
    resolution: '10s',
    state,
    episode,
    windowStart,
    value: state === 'firing' ? 81.5 : 79,
    at: windowStart + 12_000,
    reason: 'condition',
  };
}

async function connect(token: string): Promise<Socket> {
  const s = io(`${dashboard.url}/live`, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    auth: { token },
  });
  sockets.push(s);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('connect_error', reject);
  });
  return s;
}

async function until(cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !cond(); await new Promise((r) => setTimeout(r, 50)))
    if (Date.now() > end) throw new Error(`not after ${timeoutMs} ms`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const produce = (values: unknown[]) =>
  producer.send({
    topic: Topics.alerts,
    messages: values.map((v) => ({
      key: (v as { ruleId?: string }).ruleId ?? 'x',
      value: typeof v === 'string' ? v : JSON.stringify(v),
    })),
  });

beforeAll(async () => {
  cassandra = await connectedCassandra();
  producer = kafkaClient().producer();
  await producer.connect();
  for (const d of [mine('1'), mine('2'), others('1')])
    await cassandra.execute(
      `UPDATE ${Keyspace}.devices SET last_seen = ?, metrics = metrics + ? WHERE device_id = ?`,
      [day, ['temp'], d],
      { prepare: true },
    );
  dashboard = await startDashboard(testConfig({}, [tenantPattern]), { logLevels: ['error'] });
});

afterEach(() => {
  for (const s of sockets.splice(0)) s.disconnect();
});

afterAll(async () => {
  // The rules this run left are deleted (the alerting service, where one runs, ends them).
  const rs = await cassandra.execute(`SELECT id, devices FROM ${Keyspace}.alert_rules`);
  for (const r of rs.rows)
    if (String(r.get('devices')).startsWith(`alrt-${run}-`))
      await cassandra.execute(`DELETE FROM ${Keyspace}.alert_rules WHERE id = ?`, [r.get('id')], { prepare: true });
  await dashboard?.close();
  await producer?.disconnect();
  await cassandra?.shutdown();
});

describe('alert rules', () => {
  it('are created by an admin token only: 201 with the stored rule; 403 for a viewer, 401 without a token', async () => {
    const created = await call('POST', '/api/alerts/rules', admin, rule());
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ id: expect.any(String), createdAt: expect.any(Number), ...rule() });
    expect(Math.abs(created.body.createdAt - Date.now())).toBeLessThan(60_000);
    // The alerting service's store holds it as sent.
    const row = (
      await cassandra.execute(`SELECT * FROM ${Keyspace}.alert_rules WHERE id = ?`, [created.body.id], {
        prepare: true,
      })
    ).first();
    expect(row.get('devices')).toBe(rule().devices);
    expect(JSON.parse(row.get('condition') as string)).toEqual(rule().when);

    expect((await call('POST', '/api/alerts/rules', viewer, rule())).status).toBe(403);
    expect((await call('POST', '/api/alerts/rules', tenant, rule())).status).toBe(403);
    const anonymous = await call('POST', '/api/alerts/rules', {}, rule());
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer realm="fleetpulse"');
    // JSON only: a form post is 415.
    const form = await fetch(`${dashboard.url}/api/alerts/rules`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'name=overheat',
    });
    expect(form.status).toBe(415);
    // None of those was stored.
    const listed = await call('GET', '/api/alerts/rules', admin);
    expect(listed.body.filter((r: { devices: string }) => r.devices === rule().devices)).toHaveLength(1);
  });

  it('answers 400 naming every bad field', async () => {
    const bad = await call('POST', '/api/alerts/rules', admin, {
      name: ' ',
      devices: 'a b',
      resolution: '10x',
      when: { feature: 'temp', op: '!', value: 'hot', forWindows: 0 },
      webhook: 'ftp://example.com/x',
      id: 'mine',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual(
      expect.arrayContaining([
        'id: unknown field',
        'name: must be 1-100 characters, not blank',
        expect.stringMatching(/^devices: /),
        expect.stringMatching(/^resolution: /),
        expect.stringMatching(/^when\.feature: /),
        'when.op: must be one of > >= < <=',
        'when.value: required, a finite number',
        'when.forWindows: must be a whole number from 1 to 1000',
        'webhook: must be http or https, not ftp',
      ]),
    );
    expect(bad.body.errors).toHaveLength(9);
    expect(bad.body.error).toBe(bad.body.errors.join('; '));
    expect(await call('POST', '/api/alerts/rules', admin, '{"name": ')).toMatchObject({ status: 400 });
    expect(await call('POST', '/api/alerts/rules', admin, [])).toMatchObject({
      status: 400,
      body: { errors: ['rule: must be a JSON object'] },
    });
  });

  it('are listed to every token, webhooks to admins only, and a device-limited token sees only rules of its devices', async () => {
    const fleetWide = (await call('POST', '/api/alerts/rules', admin, rule({ name: 'fleet-wide' }))).body;
    const tenants = (await call('POST', '/api/alerts/rules', admin, rule({ name: 'tenant', devices: tenantPattern })))
      .body;
    const one = (await call('POST', '/api/alerts/rules', admin, rule({ name: 'one', devices: mine('1') }))).body;
    const anomaly = (
      await call('POST', '/api/alerts/rules', admin, rule({ name: 'any-anomaly', when: { anomaly: {} } }))
    ).body;
    expect(anomaly).toMatchObject({ when: { anomaly: {} } });
    const ours = (rules: { id: string }[]) =>
      rules.filter((r) => [fleetWide.id, tenants.id, one.id, anomaly.id].includes(r.id));

    const byAdmin = await call('GET', '/api/alerts/rules', admin);
    expect(byAdmin.status).toBe(200);
    expect(ours(byAdmin.body)).toEqual([fleetWide, tenants, one, anomaly]);

    const byViewer = await call('GET', '/api/alerts/rules', viewer);
    const noHook = (r: { webhook?: string }) => Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'webhook'));
    expect(ours(byViewer.body)).toEqual([fleetWide, tenants, one, anomaly].map(noHook));

    const byTenant = await call('GET', '/api/alerts/rules', tenant);
    expect(ours(byTenant.body)).toEqual([tenants, one].map(noHook));
    expect((await call('GET', '/api/alerts/rules', {})).status).toBe(401);
  });

  it('are deleted by an admin token only; an unknown rule is 404', async () => {
    const r = (await call('POST', '/api/alerts/rules', admin, rule({ name: 'to-delete' }))).body;
    expect((await call('DELETE', `/api/alerts/rules/${r.id}`, viewer)).status).toBe(403);
    expect((await call('DELETE', `/api/alerts/rules/${r.id}`, {})).status).toBe(401);
    const gone = await call('DELETE', `/api/alerts/rules/${r.id}`, admin);
    expect(gone.status).toBe(204);
    expect((await call('GET', '/api/alerts/rules', admin)).body.map((x: { id: string }) => x.id)).not.toContain(r.id);
    expect(await call('DELETE', `/api/alerts/rules/${r.id}`, admin)).toMatchObject({
      status: 404,
      body: { error: `unknown alert rule "${r.id}"` },
    });
    expect((await call('DELETE', '/api/alerts/rules/00000000-0000-4000-8000-000000000000', admin)).status).toBe(404);
    expect((await call('DELETE', '/api/alerts/rules/not%20an%20id', admin)).status).toBe(404);
    // Marked deleted for the evaluator, which ends its episodes and removes it.
    const row = (
      await cassandra.execute(`SELECT deleted_at FROM ${Keyspace}.alert_rules WHERE id = ?`, [r.id], {
        prepare: true,
      })
    ).first();
    expect(row?.get('deleted_at')).not.toBeNull();
  });
});

describe('GET /api/alerts', () => {
  const ruleId = `rule-${run}`;
  // Device t1: an episode that fired and resolved, then one firing; t2 and o1 one firing each. The day before
  // holds one more of t1.
  const w = (k: number) => day + k * 10_000;
  const rows = [
    transition(ruleId, mine('1'), 'firing', w(-10), w(-10) - 86_400_000),
    transition(ruleId, mine('1'), 'firing', w(1), w(1)),
    transition(ruleId, mine('1'), 'resolved', w(1), w(4)),
    transition(ruleId, mine('1'), 'firing', w(7), w(7)),
    transition(ruleId, mine('2'), 'firing', w(2), w(2)),
    transition(ruleId, others('1'), 'firing', w(3), w(3)),
  ];
  const range = `from=${day - 2 * 86_400_000}&to=${day + 86_400_000}`;
  const ids = (ts: AlertTransition[]) => ts.map((t) => t.id);
  const byNewest = (ts: AlertTransition[]) => [...ts].sort((a, b) => b.windowStart - a.windowStart);
  const ofRun = (ts: AlertTransition[]) => ts.filter((t) => t.ruleId === ruleId);

  beforeAll(async () => {
    // The alerting service's own writer, so the rows are what it writes.
    await new AlertStore(cassandra, Keyspace).writeTransitions(rows);
  });

  it('lists a device’s transitions, newest first, as the alerting service wrote them', async () => {
    const res = await call('GET', `/api/alerts?deviceId=${mine('1')}&${range}`, admin);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(byNewest(rows.filter((t) => t.deviceId === mine('1'))));
    expect(res.headers.get('x-next-to')).toBeNull();
  });

  it('filters by state, and pages with X-Next-To', async () => {
    const firing = await call('GET', `/api/alerts?deviceId=${mine('1')}&state=firing&${range}`, admin);
    expect(ids(firing.body)).toEqual(
      ids(byNewest(rows.filter((t) => t.deviceId === mine('1') && t.state === 'firing'))),
    );
    const resolved = await call('GET', `/api/alerts?deviceId=${mine('1')}&state=resolved&${range}`, admin);
    expect(ids(resolved.body)).toEqual([rows[2]!.id]);
    // Two a page: the header names the `to` of the next one, over the day boundary.
    const pages: AlertTransition[] = [];
    let to = String(day + 86_400_000);
    for (let n = 0; n < 5; n++) {
      const page = await call(
        'GET',
        `/api/alerts?deviceId=${mine('1')}&from=${day - 2 * 86_400_000}&to=${to}&limit=2`,
        admin,
      );
      expect(page.status).toBe(200);
      pages.push(...page.body);
      const next = page.headers.get('x-next-to');
      if (next === null) break;
      to = next;
    }
    expect(ids(pages)).toEqual(ids(byNewest(rows.filter((t) => t.deviceId === mine('1')))));
  });

  it('lists the fleet’s, and a device-limited token only its devices’', async () => {
    const fleet = await call('GET', `/api/alerts?${range}&limit=5000`, admin);
    expect(ids(ofRun(fleet.body))).toEqual(ids(byNewest(rows)));
    const byTenant = await call('GET', `/api/alerts?${range}&limit=5000`, tenant);
    expect(ids(ofRun(byTenant.body))).toEqual(ids(byNewest(rows.filter((t) => t.deviceId !== others('1')))));
    expect(byTenant.body.every((t: AlertTransition) => t.deviceId.startsWith(`alrt-${run}-t`))).toBe(true);
    // Another device is as unknown as one that does not exist.
    expect(await call('GET', `/api/alerts?deviceId=${others('1')}&${range}`, tenant)).toMatchObject({
      status: 404,
      body: { error: `unknown device "${others('1')}"` },
    });
    expect((await call('GET', `/api/alerts?deviceId=${others('1')}&${range}`, viewer)).status).toBe(200);
    expect((await call('GET', `/api/alerts?${range}`, {})).status).toBe(401);
  });

  it('answers 400 for bad parameters', async () => {
    const bad = async (q: string) => (await call('GET', `/api/alerts?${q}`, admin)).body.error as string;
    expect(await bad('state=open')).toBe('state: expected firing or resolved');
    expect(await bad('limit=5001')).toBe('limit: "5001" is not a whole number from 1 to 5000');
    expect(await bad(`from=${day - 40 * 86_400_000}&to=${day}`)).toBe('range too wide: it spans 40 days, at most 31');
    expect(await bad('state=firing&state=resolved')).toBe('state: give it once, as a single value');
    expect(await bad('deviceId=a%20b')).toMatch(/^device id "a b" is not/);
  });
});

describe('the live `alert` event', () => {
  const ruleId = `live-${run}`;

  it('reaches the device’s and the fleet’s subscribers once, even when the topic carries it twice', async () => {
    const bySocket = await connect(TestTokens.viewer);
    const byFleet = await connect(TestTokens.admin);
    const elsewhere = await connect(TestTokens.admin);
    expect(await bySocket.emitWithAck('subscribe', { deviceId: mine('1') })).toEqual({ ok: true });
    expect(await byFleet.emitWithAck('subscribe', { fleet: true, resolution: '10s', batch: true })).toEqual({
      ok: true,
    });
    expect(await elsewhere.emitWithAck('subscribe', { deviceId: mine('2') })).toEqual({ ok: true });
    const got = { device: [] as AlertTransition[], fleet: [] as AlertTransition[], elsewhere: [] as AlertTransition[] };
    const mineOnly = (to: AlertTransition[]) => (t: AlertTransition) => void (t.ruleId === ruleId && to.push(t));
    bySocket.on('alert', mineOnly(got.device));
    byFleet.on('alert', mineOnly(got.fleet));
    elsewhere.on('alert', mineOnly(got.elsewhere));

    const t = transition(ruleId, mine('1'), 'firing', Date.now(), Date.now());
    // Not an alert transition, then the transition twice (the repeat differs in `at` only, as after a crash).
    await produce(['not json', { ...t, state: 'open' }]);
    await produce([t]);
    await produce([{ ...t, at: t.at + 5 }]);
    await until(() => got.device.length >= 1 && got.fleet.length >= 1);
    // The repeat has been read (its counter) and is not sent again (or, were it sent, it is here by then).
    for (
      let i = 0;
      got.device.length < 2 && (await counter('fleetpulse_dashboard_live_alerts_repeated_total')) < 1;
      i++
    ) {
      if (i > 300) throw new Error('the repeat was never read');
      await sleep(100);
    }
    await sleep(1000);
    expect(got.device).toEqual([t]);
    expect(got.fleet).toEqual([t]);
    expect(got.elsewhere).toEqual([]);
    expect(await counter('fleetpulse_dashboard_kafka_records_total', 'topic="alerts",outcome="invalid"')).toBe(2);

    // Its resolve is a new id: sent.
    const resolved = transition(ruleId, mine('1'), 'resolved', t.episode, t.windowStart + 10_000);
    await produce([resolved]);
    await until(() => got.device.length >= 2);
    expect(got.device.map((x) => x.state)).toEqual(['firing', 'resolved']);
  });

  it('reaches a device-limited token’s fleet subscription for its devices only', async () => {
    const socket = await connect(TestTokens.tenant);
    expect(await socket.emitWithAck('subscribe', { fleet: true })).toEqual({ ok: true });
    expect(await socket.emitWithAck('subscribe', { deviceId: others('1') })).toMatchObject({ ok: false });
    const got: string[] = [];
    socket.on('alert', (t: AlertTransition) => {
      if (t.ruleId === ruleId) got.push(t.deviceId);
    });
    const now = Date.now();
    await produce([transition(ruleId, others('1'), 'firing', now, now)]);
    await produce([transition(ruleId, mine('2'), 'firing', now, now)]);
    await until(() => got.length >= 1);
    await sleep(1000);
    expect(got).toEqual([mine('2')]);
  });
});

/** The value of a counter of the dashboard's `/metrics` (summed over the series whose labels hold `labels`). */
async function counter(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${dashboard.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n'))
    if ((line.startsWith(`${name} `) || line.startsWith(`${name}{`)) && line.includes(labels))
      sum += Number(line.split(' ').pop());
  return sum;
}
