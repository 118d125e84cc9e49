/**
 * The alerting service as users run it (the built alerting/dist/main.js, a child process) against the real Kafka and
 * Cassandra, on topics, groups and devices of this run, with a webhook receiver in this process that checks every
 * signature. Expected transitions come from the state machine itself (evaluator.ts) run over the same records, so the
 * test compares ids: in the history, on the alerts topic and at the receiver.
 *
 * - an episode fires once and resolves once; the receiver answers 503 for a while: the firing is delivered after
 *   retries, with the same delivery id on each;
 * - the service is killed (SIGKILL) while records stream in, and started again: no transition is lost or doubled
 *   by id in the history, on the topic or at the receiver. The topic and the receiver may see a transition twice
 *   (a crash between its send and the commit), always with the same id and delivery id; the test logs how often;
 * - a webhook that never answers 2xx is given up after FLEETPULSE_ALERT_WEBHOOK_MAX_AGE_MS (log line + counter), and
 *   its partition goes on;
 * - a deleted rule's open episode ends on the topic and in the history (`rule-deleted`) and is not sent.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { cassandraContactPoint, kafkaBrokers } from '@fleetpulse/compose';
import { connectedCassandra, createTestTopic, kafkaClient, uniqueName } from '@fleetpulse/compose/testing';
import { Keyspace, type AlertTransition, type WindowRecord } from '@fleetpulse/contracts';
import type { Client } from 'cassandra-driver';
import type { Admin, Consumer, Producer } from 'kafkajs';
import { evaluateWindow, idleState, type AlertState } from './evaluator';
import { compileRule, type CompiledRule, type Rule } from './rule';
import { RuleStore } from './rule-store';
import { verifySignature } from './signature';
import { dayOf, transitionFromRow } from './storage';

const root = join(__dirname, '..', '..');
const secret = 'integration-test-secret-0123456789';
const prefix = `${uniqueName('alert')}-`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string | (() => string)) {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(100);
  }
}

// ---- the webhook receiver ------------------------------------------------------------------------------------
interface Received {
  delivery: string;
  body: AlertTransition;
  signed: boolean;
  status: number;
  path: string;
}
const received: Received[] = [];
let failing = false;
let receiver: Server;
let hookBase = '';
const accepted = (path = '/hook') => received.filter((r) => r.status === 200 && r.path === path);

// ---- Kafka, Cassandra, topics ---------------------------------------------------------------------------------
const kafka = kafkaClient();
let admin: Admin;
let producer: Producer;
let reader: Consumer;
let cql: Client;
let rules: RuleStore;
const topics = { aggregates: '', scores: '', alerts: '' };
const onTopic: AlertTransition[] = [];
const group = uniqueName('alerting-it');

// ---- the service as a child process ---------------------------------------------------------------------------
let child: ChildProcess | undefined;
let output = '';
let opsPort = 0;

async function startService(): Promise<ChildProcess> {
  output = '';
  const c = spawn(process.execPath, [join(root, 'alerting', 'dist', 'main.js')], {
    env: {
      ...process.env,
      FLEETPULSE_ENV: 'production',
      FLEETPULSE_ALERT_WEBHOOK_SECRET: secret,
      FLEETPULSE_KAFKA_BROKERS: kafkaBrokers().join(','),
      FLEETPULSE_CASSANDRA_CONTACT_POINTS: cassandraContactPoint(),
      FLEETPULSE_ALERTING_AGGREGATES_TOPIC: topics.aggregates,
      FLEETPULSE_ALERTING_SCORES_TOPIC: topics.scores,
      FLEETPULSE_ALERTING_ALERTS_TOPIC: topics.alerts,
      FLEETPULSE_ALERTING_GROUP: group,
      FLEETPULSE_ALERTING_WEBHOOK_GROUP: `${group}-webhooks`,
      FLEETPULSE_ALERTING_RULES_REFRESH_MS: '300',
      FLEETPULSE_ALERT_WEBHOOK_INITIAL_BACKOFF_MS: '200',
      FLEETPULSE_ALERT_WEBHOOK_MAX_BACKOFF_MS: '800',
      FLEETPULSE_ALERT_WEBHOOK_MAX_AGE_MS: '8000',
      FLEETPULSE_ALERT_WEBHOOK_TIMEOUT_MS: '2000',
      FLEETPULSE_ALERTING_SESSION_TIMEOUT_MS: '10000',
      FLEETPULSE_ALERTING_HOST: '127.0.0.1',
      FLEETPULSE_ALERTING_PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  c.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  c.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  child = c;
  await until(
    () => /http on :(\d+)/.test(output),
    60_000,
    () => `the service to start:\n${output}`,
  );
  opsPort = Number(/http on :(\d+)/.exec(output)![1]);
  await until(
    async () => (await fetch(`http://127.0.0.1:${opsPort}/readyz`).catch(() => null))?.status === 200,
    60_000,
    () => `the service to be ready:\n${output}`,
  );
  return c;
}

async function kill(c: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  if (c.exitCode !== null) return c.exitCode;
  const exited = once(c, 'exit');
  c.kill(signal);
  const [code] = (await exited) as [number | null];
  return code;
}

const metricsText = async () => (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();

// ---- records and the oracle -----------------------------------------------------------------------------------
const window = (deviceId: string, i: number, tempMax: number): WindowRecord => ({
  deviceId,
  resolution: '10s',
  // Whole windows of a fixed day, so the history's day partition is known.
  windowStart: Date.UTC(2026, 0, 5) + i * 10_000,
  windowEnd: Date.UTC(2026, 0, 5) + i * 10_000 + 10_000,
  final: true,
  metrics: {
    temp: {
      count: 1,
      sum: tempMax,
      min: tempMax,
      max: tempMax,
      mean: tempMax,
      stddev: 0,
      first: tempMax,
      last: tempMax,
    },
  },
});
const day = dayOf(Date.UTC(2026, 0, 5));

async function publish(records: WindowRecord[]): Promise<void> {
  await producer.send({
    topic: topics.aggregates,
    messages: records.map((r) => ({ key: r.deviceId, value: JSON.stringify(r) })),
  });
}

/** What the evaluator must make of these records, per device in order: the transitions' ids and states. */
function expected(rule: Rule, records: WindowRecord[]): Map<string, AlertTransition> {
  const c = compileRule(rule) as CompiledRule & { kind: 'threshold' };
  const states = new Map<string, AlertState>();
  const out = new Map<string, AlertTransition>();
  for (const [n, r] of records.entries()) {
    const step = evaluateWindow(c, states.get(r.deviceId) ?? idleState(), r, { source: 'x', offset: BigInt(n) }, 0);
    if (!step) continue;
    states.set(r.deviceId, step.state);
    if (step.transition) out.set(step.transition.id, step.transition);
  }
  return out;
}

async function history(deviceIds: string[]): Promise<AlertTransition[]> {
  const rows: AlertTransition[] = [];
  for (const d of deviceIds) {
    const rs = await cql.execute(
      `SELECT * FROM ${Keyspace}.alerts_by_device WHERE device_id = ? AND day = ?`,
      [d, day],
      {
        prepare: true,
      },
    );
    rows.push(...rs.rows.map(transitionFromRow));
  }
  return rows;
}

const countIds = (ts: { id: string }[]) => {
  const m = new Map<string, number>();
  for (const t of ts) m.set(t.id, (m.get(t.id) ?? 0) + 1);
  return m;
};

let rule: Rule;
let deadRule: Rule;

beforeAll(async () => {
  // The child runs the built service: bring alerting/dist up to date (incremental, quick when it is).
  execFileSync(
    process.execPath,
    [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', join(root, 'alerting')],
    {
      stdio: 'inherit',
    },
  );
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const path = req.url ?? '';
      const status = path === '/dead' || failing ? 503 : 200;
      received.push({
        delivery: String(req.headers['x-fleetpulse-delivery']),
        body: JSON.parse(raw.toString()) as AlertTransition,
        signed: verifySignature(raw, secret, req.headers['x-fleetpulse-signature'] as string | undefined),
        status,
        path,
      });
      res.writeHead(status).end();
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  hookBase = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  admin = kafka.admin();
  producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
  topics.aggregates = await createTestTopic(admin, { partitions: 3 });
  topics.scores = await createTestTopic(admin, { partitions: 3 });
  topics.alerts = await createTestTopic(admin, { partitions: 3 });
  reader = kafka.consumer({ groupId: uniqueName('alerts-reader') });
  await reader.connect();
  await reader.subscribe({ topic: topics.alerts, fromBeginning: true });
  await reader.run({
    eachMessage: async ({ message }) => {
      onTopic.push(JSON.parse(message.value!.toString()) as AlertTransition);
      await Promise.resolve();
    },
  });

  cql = await connectedCassandra();
  rules = new RuleStore(cql, Keyspace);
  rule = await rules.create({
    name: 'it overheat',
    devices: `${prefix}*`,
    resolution: '10s',
    when: { feature: 'temp.max', op: '>', value: 80, forWindows: 2 },
    webhook: `${hookBase}/hook`,
  });
  deadRule = await rules.create({
    name: 'it dead webhook',
    devices: `${prefix}dead-?`,
    resolution: '10s',
    when: { feature: 'temp.max', op: '>', value: 80, forWindows: 1 },
    webhook: `${hookBase}/dead`,
  });
}, 240_000);

afterAll(async () => {
  if (child) await kill(child, 'SIGKILL');
  await rules?.delete(rule.id).catch(() => undefined);
  await rules?.delete(deadRule.id).catch(() => undefined);
  // Nothing of this run is left in force; the deleted rows go with the next evaluator's purge.
  await reader?.disconnect();
  await Promise.all([admin?.disconnect(), producer?.disconnect()]);
  await cql?.shutdown();
  receiver?.close();
});

test('an episode fires once and resolves once; a failing webhook gets it after retries, same delivery id', async () => {
  await startService();
  const device = `${prefix}a`;
  const records = [70, 85, 90, 95, 60, 50].map((t, i) => window(device, i, t));
  const want = expected(rule, records);
  expect([...want.values()].map((t) => t.state)).toEqual(['firing', 'resolved']);
  const [firing] = [...want.keys()];

  failing = true;
  await publish(records);
  await until(
    () => received.filter((r) => r.delivery === firing).length >= 3,
    30_000,
    () => `3 failed attempts:\n${output}`,
  );
  failing = false;
  await until(() => want.size === accepted().filter((r) => want.has(r.delivery)).length, 30_000, 'both delivered');

  const attempts = received.filter((r) => r.delivery === firing);
  expect(attempts.length).toBeGreaterThanOrEqual(4);
  expect(attempts.every((r) => r.signed && r.body.id === firing)).toBe(true);
  expect(attempts.slice(0, -1).every((r) => r.status === 503)).toBe(true);
  expect(
    accepted()
      .filter((r) => want.has(r.delivery))
      .map((r) => r.delivery),
  ).toEqual([...want.keys()]);
  expect(
    accepted()
      .filter((r) => want.has(r.delivery))
      .map((r) => r.body),
  ).toEqual([...want.values()].map((t) => ({ ...t, at: expect.any(Number) })));

  await until(async () => (await history([device])).length === 2, 10_000, 'the history');
  expect(new Set((await history([device])).map((t) => t.id))).toEqual(new Set(want.keys()));
  await until(() => onTopic.filter((t) => t.deviceId === device).length >= 2, 10_000, 'the topic');
  expect(new Set(onTopic.filter((t) => t.deviceId === device).map((t) => t.id))).toEqual(new Set(want.keys()));

  const m = await metricsText();
  expect(m).toMatch(/alerting_transitions_total\{state="firing",reason="condition"\} 1/);
  expect(m).toMatch(/alerting_deliveries_total\{outcome="delivered"\} 2/);
  expect(m).toMatch(/alerting_delivery_attempts_total\{result="status"\} [3-9]/);
  expect(m).toMatch(/alerting_rules\{kind="threshold"\} [1-9]/);
});

test('kill -9 while records stream in, then restart: no transition lost or doubled (by id) anywhere', async () => {
  const devices = Array.from({ length: 8 }, (_, i) => `${prefix}b${i}`);
  const pattern = [90, 90, 10, 90, 90, 90, 10, 90, 90, 10, 10, 90, 95, 20];
  const records: WindowRecord[] = [];
  for (let i = 0; i < pattern.length; i++)
    for (const [k, d] of devices.entries()) records.push(window(d, i, pattern[i]! + k));
  const want = expected(rule, records);
  expect(want.size).toBe(devices.length * 8); // four episodes per device

  // Two windows of every device per send, 150 ms apart, in the background; killed at the first delivery, while
  // the stream goes on.
  const chunk = devices.length * 2;
  const streaming = (async () => {
    for (let sent = 0; sent < records.length; sent += chunk) {
      await publish(records.slice(sent, sent + chunk));
      await sleep(150);
    }
  })();
  await until(() => accepted().some((r) => want.has(r.delivery)), 30_000, 'a first delivery');
  expect(await kill(child!, 'SIGKILL')).toBeNull();
  const before = accepted().filter((r) => want.has(r.delivery)).length;
  await streaming;
  await startService();

  const got = () =>
    new Set(
      accepted()
        .filter((r) => want.has(r.delivery))
        .map((r) => r.delivery),
    );
  await until(
    () => got().size === want.size,
    60_000,
    () => `${want.size} deliveries, got ${got().size}:\n${output}`,
  );
  await until(async () => (await history(devices)).length >= want.size, 20_000, 'the history');
  await until(
    () => new Set(onTopic.filter((t) => want.has(t.id)).map((t) => t.id)).size === want.size,
    20_000,
    'the topic',
  );
  await sleep(1500); // anything doubled would arrive by now

  // History: exactly the expected rows, each once (upserts keyed by id).
  const rows = await history(devices);
  expect(rows.map((t) => t.id).sort()).toEqual([...want.keys()].sort());
  for (const t of rows) expect({ ...t, at: 0 }).toEqual({ ...want.get(t.id)!, at: 0 });
  // Topic: every id; a repeat only with the same id and content (but `at`).
  const mine = onTopic.filter((t) => devices.includes(t.deviceId));
  expect(new Set(mine.map((t) => t.id))).toEqual(new Set(want.keys()));
  for (const t of mine) expect({ ...t, at: 0 }).toEqual({ ...want.get(t.id)!, at: 0 });
  // Receiver: every id accepted; a repeat only with the same delivery id, signed, the body's id.
  const deliveries = received.filter((r) => devices.includes(r.body.deviceId));
  expect(deliveries.every((r) => r.signed && r.delivery === r.body.id && want.has(r.delivery))).toBe(true);
  const topicRepeats = [...countIds(mine).values()].filter((n) => n > 1).length;
  const receiverRepeats = [
    ...countIds(
      accepted()
        .filter((r) => want.has(r.delivery))
        .map((r) => ({ id: r.delivery })),
    ).values(),
  ].filter((n) => n > 1).length;
  console.log(
    `kill -9 after ${before} of ${want.size} deliveries: ${want.size} transitions, each once in the history; ` +
      `${topicRepeats} sent twice on the topic, ${receiverRepeats} delivered twice (same delivery id)`,
  );
});

test('a webhook that never answers 2xx is given up after the max age, and its partition goes on', async () => {
  const device = `${prefix}dead-1`;
  await publish([window(device, 0, 99), window(device, 1, 10)]);
  await until(
    () => /giving up transition/.test(output),
    40_000,
    () => `a give-up:\n${output}`,
  );
  expect(received.filter((r) => r.path === '/dead').length).toBeGreaterThanOrEqual(2);
  // Both transitions of that rule are given up in turn (one rule's transitions go out in order).
  await until(
    async () => /alerting_deliveries_total\{outcome="expired"\} 2/.test(await metricsText()),
    40_000,
    'two expired',
  );
  expect(accepted('/dead')).toEqual([]);
});

test("a deleted rule's open episode ends (rule-deleted) on the topic and in the history, and is not sent", async () => {
  const device = `${prefix}c`;
  await publish([window(device, 0, 90), window(device, 1, 91)]);
  const [firing] = [...expected(rule, [window(device, 0, 90), window(device, 1, 91)]).keys()];
  await until(() => accepted().some((r) => r.delivery === firing), 30_000, 'the firing delivered');
  expect(await rules.delete(rule.id)).toBe(true);
  expect(await rules.get(rule.id)).toBeNull();
  await until(
    () => onTopic.some((t) => t.deviceId === device && t.reason === 'rule-deleted'),
    20_000,
    'the end on the topic',
  );
  const ended = onTopic.find((t) => t.deviceId === device && t.reason === 'rule-deleted')!;
  expect(ended).toMatchObject({ state: 'resolved', value: null, ruleId: rule.id });
  expect((await history([device])).map((t) => t.reason).sort()).toEqual(['condition', 'rule-deleted']);
  // Ended for good: the rule's row and state are gone once the evaluator is done with it.
  await until(async () => !(await rules.deleted()).some((r) => r.id === rule.id), 10_000, 'the purge');
  await sleep(1500);
  expect(received.some((r) => r.delivery === ended.id)).toBe(false);
  expect(await metricsText()).toMatch(/alerting_deliveries_total\{outcome="rule-deleted"\} [1-9]/);
  expect(await kill(child!, 'SIGTERM')).toBe(0);
  child = undefined;
});
