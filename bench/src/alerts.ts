/**
 * Window close -> alert webhook delivered (issue 15 goal: p99 <= 1 s), through the path users run, on the local stack
 * (started if it is not up, and left running): the ingestion process (on a topic of the bench's own), the
 * stream-processor process (publishing on metrics.aggregates, writing Cassandra), the dashboard-api process (the
 * rule is created through its `POST /api/alerts/rules`, as users do, and it stays up reading the topics as it does in
 * the stack), and the alerting process (its own consumer groups and alerts topic) POSTing to a webhook receiver
 * served by the bench. Scoring is not started: the rule is a threshold rule.
 *
 * - Rule: `temp.max > 50` over the 1 s windows of this run's alert devices (`forWindows` 1).
 * - Load: `backgroundDevices` devices at 1 Hz (fleet-load.js, its own process, as the e2e suite) to the same
 *   ingestion; after a warm-up, `alertDevices` devices post a reading every 1/`alertHz` s for `seconds`, alternating
 *   hot (90) and cool (20) every `halfCycleSeconds` (each device's phase shifted), so episodes fire and resolve over
 *   and over, spread in time.
 * - Measured, per webhook received (the first receipt of each transition id): receipt (the request's body read)
 *   minus the window's close, the Kafka timestamp of the final 1 s window record on metrics.aggregates that made the
 *   transition (its device and `windowStart`; the processor's producer stamps it when it publishes the closed window);
 *   and receipt minus the window's end (`windowStart` + 1 s: includes the processor's allowed lateness, 2 s). Stages:
 *   record timestamp -> the transition's `at` (the evaluator read and evaluated it), `at` -> the Kafka timestamp of
 *   the transition on the alerts topic (history written, produced), that -> receipt (deliverer read, rule, POST).
 * - Expected transitions: the contract's state machine over the final window records of the alert devices the bench
 *   read on metrics.aggregates (holds = temp.max > 50: the first window holding while not firing fires, the first
 *   not holding while firing resolves). Lost = expected and never received; extra = received and not expected.
 * - Signatures are checked (HMAC-SHA256 of the body with the development secret, as a receiver does).
 *
 * Clean-up: the rule is deleted through the REST route (the alerting service then purges its state), the bench's
 * topics and consumer groups go, and the history rows of this run's transitions are deleted.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadStackConfig, cassandraContactPoint, kafkaBrokers } from '@fleetpulse/compose';
import { DevToken, Topics, type AlertTransition, type WindowRecord } from '@fleetpulse/contracts';
import { sleep } from '@fleetpulse/runtime';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import type { FleetLoadConfig } from './fleet-load';
import { quantile } from './quantile';
import {
  connectStack,
  coresBetween,
  cpuSnapshot,
  forgetGroup,
  freePort,
  repo,
  runScript,
  stackPids,
  startIngestionProcess,
  startProcessor,
  startService,
  waitReady,
  type CpuSnapshot,
  type ServiceProcess,
} from './services';

export interface BenchAlertsOptions {
  /** [seconds=60] - how long the alert devices report. */
  seconds?: number;
  /** [alertDevices=50] */
  alertDevices?: number;
  /** [alertHz=2] - readings a second of each alert device. */
  alertHz?: number;
  /** [halfCycleSeconds=3] - hot this long, then cool this long. */
  halfCycleSeconds?: number;
  /** [backgroundDevices=10000] - devices at 1 Hz meanwhile; 0: none. */
  backgroundDevices?: number;
  /** [warmupSeconds=5] - background load before the alert devices start. */
  warmupSeconds?: number;
  /** Folder for a V8 CPU profile of the alerting process (`--cpu-prof`); absent: none. */
  cpuProfDir?: string;
  log?: (line: string) => void;
}

export interface Spread {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface BenchAlertsResult {
  seconds: number;
  alertDevices: number;
  alertHz: number;
  backgroundDevices: number;
  /** Final 1 s window records of the alert devices read on metrics.aggregates. */
  windows: number;
  expected: number;
  /** Transitions on the alerting service's alerts topic (with repeats, if any). */
  onTopic: number;
  delivered: number;
  /** Expected transitions never received. */
  lost: number;
  /** Received transitions the records do not imply. */
  extra: number;
  /** POSTs of an id already received (from this run's deliverer). */
  duplicates: number;
  /** POSTs not from this run's deliverer (another alerting process on the stack evaluates the same rules). */
  foreign: number;
  badSignatures: number;
  /** Receipt - the Kafka timestamp of the window record that made the transition, ms. */
  closeToWebhookMs: Spread;
  /** Receipt - the window's end, ms. */
  windowEndToWebhookMs: Spread;
  stagesMs: { recordToEvaluated: Spread; evaluatedToTopic: Spread; topicToWebhook: Spread };
  /** Reference: window record's timestamp -> read by the bench's own consumer (maxWaitTimeInMs 100), ms. */
  recordToBenchReadMs: Spread;
  /** Before the measured span: the window's end -> its record's timestamp (the processor's lateness, 2 s, and lag). */
  windowEndToRecordMs: Spread;
  /** Cores each process used on average while the alert devices reported. */
  cores: Record<string, number>;
  /** 1, 5 and 15 minute load averages at the end of sending. */
  loadAverage: number[];
  goalMet: boolean;
}

const Threshold = 50;
const Hot = 90;
const Cool = 20;
const Resolution = '1s';
const ResolutionMs = 1000;

const spread = (values: number[]): Spread => {
  const s = [...values].sort((a, b) => a - b);
  return {
    count: s.length,
    p50: quantile(s, 0.5),
    p95: quantile(s, 0.95),
    p99: quantile(s, 0.99),
    max: quantile(s, 1),
  };
};

interface Receipt {
  at: number;
  t: AlertTransition;
}

/** The webhook receiver: every POST answered 204 and kept (receipt time, body). */
async function startReceiver(secret: string): Promise<{
  server: Server;
  url: string;
  posts: (Receipt & { body: string })[];
  counts: { badSignatures: number };
}> {
  const posts: (Receipt & { body: string })[] = [];
  const counts = { badSignatures: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = Date.now();
      const body = Buffer.concat(chunks);
      const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
      const given = Buffer.from(String(req.headers['x-fleetpulse-signature'] ?? ''));
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) counts.badSignatures++;
      try {
        posts.push({ at, t: JSON.parse(body.toString()) as AlertTransition, body: body.toString() });
      } catch {
        counts.badSignatures++;
      }
      res.writeHead(204).end();
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${port}/hook`, posts, counts };
}

/** A consumer of `topic` in a group of its own; resolves once it has joined (and so has its start). */
async function follow(
  kafka: Kafka,
  group: string,
  topic: string,
  fromBeginning: boolean,
  onBatch: (messages: { key: Buffer | null; value: Buffer | null; timestamp: string }[]) => void,
): Promise<Consumer> {
  const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 100 });
  await consumer.connect();
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.subscribe({ topic, fromBeginning });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      onBatch(batch.messages);
      await Promise.resolve();
    },
  });
  await joined;
  return consumer;
}

export async function benchAlerts(opts: BenchAlertsOptions = {}): Promise<BenchAlertsResult> {
  const o = {
    seconds: 60,
    alertDevices: 50,
    alertHz: 2,
    halfCycleSeconds: 3,
    backgroundDevices: 10_000,
    warmupSeconds: 5,
    log: (l: string) => console.error(l),
    ...opts,
  };
  const secret = 'dev-webhook-secret'; // alerting's development secret (FLEETPULSE_ENV=development, none set)
  const stamp = Date.now().toString(36);
  const rawTopic = `bench.alerts.${stamp}`;
  const alertsTopic = `bench.alerts-out.${stamp}`;
  const processorGroup = `bench-alerts-processor-${stamp}`;
  const alertingGroups = [`bench-alerting-${stamp}`, `bench-alerting-webhooks-${stamp}`];
  const readerGroups = [`bench-alerts-windows-${stamp}`, `bench-alerts-topic-${stamp}`];
  const prefix = `alert${stamp}-`;
  const { kafka, admin, client, close } = await connectStack('bench-alerts');
  const partitions = loadStackConfig().topicPartitions;
  await admin.createTopics({
    waitForLeaders: true,
    topics: [rawTopic, alertsTopic].map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
  });
  const dir = mkdtempSync(join(tmpdir(), 'fleetpulse-bench-alerts-'));
  const receiver = await startReceiver(secret);
  const procs: ServiceProcess[] = [];
  const readers: Consumer[] = [];
  let api: ServiceProcess | undefined;
  let ruleId: string | undefined;
  /** Alert device and window start -> the Kafka timestamp of its final 1 s record, in the order read. */
  const windowTs = new Map<string, number>();
  /** The same key -> when the bench's own reader had the record (a reference: the topic's read delay). */
  const windowSeen = new Map<string, number>();
  const windowsByDevice = new Map<string, WindowRecord[]>();
  /** Transition id -> its Kafka timestamp on the alerts topic (the first time). */
  const topicTs = new Map<string, number>();
  /** The values on the alerts topic: a POST of one of these bytes for bytes came from this run's deliverer. */
  const topicBodies = new Set<string>();
  const onTopic: AlertTransition[] = [];
  try {
    const ingestion = await startIngestionProcess('ingestion', { topic: rawTopic });
    const processor = await startProcessor('processor', rawTopic, processorGroup);
    const apiPort = await freePort();
    api = startService(
      'dashboard-api',
      join(repo, 'dashboard-api', 'dist', 'main.js'),
      {
        FLEETPULSE_ENV: 'development',
        FLEETPULSE_DASHBOARD_HOST: '127.0.0.1',
        FLEETPULSE_DASHBOARD_PORT: String(apiPort),
        FLEETPULSE_KAFKA_BROKERS: kafkaBrokers().join(','),
        FLEETPULSE_CASSANDRA_CONTACT_POINTS: cassandraContactPoint(),
      },
      apiPort,
    );
    procs.push(ingestion, processor, api);
    await Promise.all([waitReady(ingestion), waitReady(processor), waitReady(api, 120_000)]);

    // The rule, as users make it: the dashboard's REST route, an admin token (the development token is one).
    const res = await fetch(`http://127.0.0.1:${apiPort}/api/alerts/rules`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${DevToken}` },
      body: JSON.stringify({
        name: `bench alerts ${stamp}`,
        devices: `${prefix}*`,
        resolution: Resolution,
        when: { feature: 'temp.max', op: '>', value: Threshold, forWindows: 1 },
        webhook: receiver.url,
      }),
    });
    if (res.status !== 201) throw new Error(`POST /api/alerts/rules answered ${res.status}: ${await res.text()}`);
    ruleId = ((await res.json()) as { id: string }).id;

    const alertingPort = await freePort();
    if (o.cpuProfDir !== undefined) mkdirSync(o.cpuProfDir, { recursive: true });
    const alerting = startService(
      'alerting',
      join(repo, 'alerting', 'dist', 'main.js'),
      {
        FLEETPULSE_ENV: 'development',
        FLEETPULSE_ALERTING_HOST: '127.0.0.1',
        FLEETPULSE_ALERTING_PORT: String(alertingPort),
        FLEETPULSE_KAFKA_BROKERS: kafkaBrokers().join(','),
        FLEETPULSE_CASSANDRA_CONTACT_POINTS: cassandraContactPoint(),
        FLEETPULSE_ALERTING_GROUP: alertingGroups[0]!,
        FLEETPULSE_ALERTING_WEBHOOK_GROUP: alertingGroups[1]!,
        FLEETPULSE_ALERTING_ALERTS_TOPIC: alertsTopic,
      },
      alertingPort,
      o.cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`],
    );
    procs.push(alerting);
    await waitReady(alerting, 120_000);

    const aggregatesReader = await follow(kafka, readerGroups[0]!, Topics.aggregates, false, (messages) => {
      const seen = Date.now();
      for (const m of messages) {
        if (m.key === null || !m.key.toString().startsWith(prefix)) continue;
        const w = JSON.parse(m.value!.toString()) as WindowRecord;
        if (!w.final || w.resolution !== Resolution) continue;
        const k = `${w.deviceId}|${w.windowStart}`;
        if (windowTs.has(k)) continue;
        windowTs.set(k, Number(m.timestamp));
        windowSeen.set(k, seen);
        const list = windowsByDevice.get(w.deviceId) ?? [];
        list.push(w);
        windowsByDevice.set(w.deviceId, list);
      }
    });
    readers.push(aggregatesReader);
    readers.push(
      await follow(kafka, readerGroups[1]!, alertsTopic, true, (messages) => {
        for (const m of messages) {
          const t = JSON.parse(m.value!.toString()) as AlertTransition;
          topicBodies.add(m.value!.toString());
          onTopic.push(t);
          if (!topicTs.has(t.id)) topicTs.set(t.id, Number(m.timestamp));
        }
      }),
    );

    let background: Promise<string> | undefined;
    if (o.backgroundDevices > 0) {
      const config: FleetLoadConfig = {
        url: `http://127.0.0.1:${ingestion.port}/v1/telemetry`,
        token: 'dev-token',
        devices: o.backgroundDevices,
        prefix: `bg${stamp}-`,
        phases: [{ hz: 1, seconds: o.warmupSeconds + o.seconds + 5 }],
        startAt: Date.now() + 500,
        seqBase: 0,
        samples: [],
      };
      writeFileSync(join(dir, 'load.json'), JSON.stringify(config));
      background = runScript(join(__dirname, 'fleet-load.js'), [join(dir, 'load.json')], {}, true);
      await sleep(o.warmupSeconds * 1000 + 500);
    }

    const pids = {
      alerting: alerting.pid,
      processor: processor.pid,
      ingestion: ingestion.pid,
      'dashboard-api': api.pid,
      bench: process.pid,
      ...(await stackPids()),
    };
    const cpuFrom: CpuSnapshot = cpuSnapshot(pids);
    o.log(
      `  alerts: ${o.alertDevices} alert devices at ${o.alertHz} Hz for ${o.seconds} s, ${o.backgroundDevices} devices at 1 Hz beside`,
    );
    const url = `http://127.0.0.1:${ingestion.port}/v1/telemetry`;
    const started = Date.now();
    const intervalMs = 1000 / o.alertHz;
    let failures = 0;
    const posts: Promise<void>[] = [];
    let lastTs = started;
    for (let seq = 0; Date.now() - started < o.seconds * 1000; seq++) {
      const ts = Date.now();
      lastTs = ts;
      const events = Array.from({ length: o.alertDevices }, (_, i) => {
        // Each device's cycle is shifted by a share of it, so transitions spread over time.
        const phase = (i / o.alertDevices) * 2 * o.halfCycleSeconds * 1000;
        const hot = Math.floor((ts - started + phase) / (o.halfCycleSeconds * 1000)) % 2 === 1;
        return { deviceId: `${prefix}${i}`, ts, seq, metrics: { temp: hot ? Hot : Cool } };
      });
      // Not awaited: a slow answer must not thin the devices' readings out (each request carries its own times).
      posts.push(
        fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer dev-token' },
          body: JSON.stringify(events),
        }).then(
          async (r) => {
            if (r.status !== 202) failures++;
            await r.body?.cancel().catch(() => undefined);
          },
          () => void failures++,
        ),
      );
      await sleep(Math.max(0, ts + intervalMs - Date.now()));
    }
    await Promise.all(posts);
    const cores = coresBetween(cpuFrom, cpuSnapshot(pids));
    const loadAverage = loadavg().map((x) => Math.round(x * 100) / 100);
    if (failures > 0) o.log(`  alerts: ${failures} of ${posts.length} posts of the alert devices not answered 202`);

    // The last windows close by idleness (5 s + 1 s margin); then every expected transition should come.
    const expectedOf = () => {
      const out = new Map<string, { deviceId: string; windowStart: number; state: 'firing' | 'resolved' }>();
      for (const [deviceId, list] of windowsByDevice) {
        let firing = false;
        let last = -Infinity;
        for (const w of list) {
          if (w.windowStart <= last) continue;
          last = w.windowStart;
          const max = w.metrics.temp?.max;
          const holds = max !== undefined && max > Threshold;
          if (holds === firing) continue;
          firing = holds;
          const state = holds ? 'firing' : 'resolved';
          out.set(`${deviceId}|${w.windowStart}|${state}`, { deviceId, windowStart: w.windowStart, state });
        }
      }
      return out;
    };
    // Another alerting process on the same stack (another session's) evaluates every stored rule, this one too, and
    // POSTs its own transitions (its own `at`) to this receiver: only the bodies of this run's alerts topic count.
    const ours = () => {
      const first = new Map<string, Receipt>();
      let repeats = 0;
      for (const p of receiver.posts) {
        if (!topicBodies.has(p.body)) continue;
        if (first.has(p.t.id)) repeats++;
        else first.set(p.t.id, p);
      }
      return { first, repeats, foreign: receiver.posts.filter((p) => !topicBodies.has(p.body)).length };
    };
    const receivedKeys = () =>
      new Set([...ours().first.values()].map(({ t }) => `${t.deviceId}|${t.windowStart}|${t.state}`));
    // Every alert device's last window (closed by idleness) read, however far behind the processor is; then the
    // webhooks of the transitions those records imply.
    const lastWindow = Math.floor(lastTs / ResolutionMs) * ResolutionMs;
    const windowsDeadline = Date.now() + 300_000;
    const allClosed = () =>
      Array.from({ length: o.alertDevices }, (_, i) => `${prefix}${i}|${lastWindow}`).every((k) => windowTs.has(k));
    while (!allClosed() && Date.now() < windowsDeadline) await sleep(1000);
    if (!allClosed()) o.log(`  alerts: not every alert device's last window was read within 300 s`);
    const deadline = Date.now() + 60_000;
    for (let settled = 0; Date.now() < deadline && settled < 5;) {
      const expected = expectedOf();
      const got = receivedKeys();
      settled = [...expected.keys()].every((k) => got.has(k)) ? settled + 1 : 0;
      await sleep(1000);
    }
    await background;

    const expected = expectedOf();
    const got = receivedKeys();
    const lost = [...expected.keys()].filter((k) => !got.has(k));
    const extra = [...got].filter((k) => !expected.has(k));
    if (lost.length > 0)
      o.log(`  alerts: not received: ${lost.slice(0, 10).join(', ')}${lost.length > 10 ? ' ...' : ''}`);
    if (extra.length > 0) o.log(`  alerts: not expected: ${extra.slice(0, 10).join(', ')}`);

    const close: number[] = [];
    const end: number[] = [];
    const recordToBench: number[] = [];
    const endToRecord: number[] = [];
    const recordToAt: number[] = [];
    const atToTopic: number[] = [];
    const topicToHook: number[] = [];
    let unknownWindow = 0;
    const received = ours();
    if (received.foreign > 0)
      o.log(`  alerts: ${received.foreign} POSTs from another alerting process (not this run's topic) left out`);
    for (const { at, t } of received.first.values()) {
      if (t.ruleId !== ruleId) continue;
      const ts = windowTs.get(`${t.deviceId}|${t.windowStart}`);
      end.push(at - (t.windowStart + ResolutionMs));
      if (ts === undefined) {
        unknownWindow++;
        continue;
      }
      close.push(at - ts);
      endToRecord.push(ts - (t.windowStart + ResolutionMs));
      recordToBench.push(windowSeen.get(`${t.deviceId}|${t.windowStart}`)! - ts);
      recordToAt.push(t.at - ts);
      const topic = topicTs.get(t.id);
      if (topic !== undefined) {
        atToTopic.push(topic - t.at);
        topicToHook.push(at - topic);
      }
    }
    if (unknownWindow > 0) o.log(`  alerts: ${unknownWindow} webhooks whose window record the bench did not read`);
    const closeToWebhookMs = spread(close);
    return {
      seconds: o.seconds,
      alertDevices: o.alertDevices,
      alertHz: o.alertHz,
      backgroundDevices: o.backgroundDevices,
      windows: windowTs.size,
      expected: expected.size,
      onTopic: onTopic.length,
      delivered: received.first.size,
      lost: lost.length,
      extra: extra.length,
      duplicates: received.repeats,
      foreign: received.foreign,
      badSignatures: receiver.counts.badSignatures,
      closeToWebhookMs,
      windowEndToWebhookMs: spread(end),
      stagesMs: {
        recordToEvaluated: spread(recordToAt),
        evaluatedToTopic: spread(atToTopic),
        topicToWebhook: spread(topicToHook),
      },
      recordToBenchReadMs: spread(recordToBench),
      windowEndToRecordMs: spread(endToRecord),
      cores,
      loadAverage,
      goalMet: closeToWebhookMs.count > 0 && closeToWebhookMs.p99 <= 1000 && lost.length === 0,
    };
  } finally {
    if (ruleId !== undefined && api?.running()) {
      // Deleted as users delete: the alerting service (still running) ends its episodes and purges its state.
      await fetch(`http://127.0.0.1:${api.port}/api/alerts/rules/${ruleId}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${DevToken}` },
      }).catch(() => undefined);
      await sleep(5000);
    }
    for (const r of readers) await r.disconnect().catch(() => undefined);
    await Promise.all(procs.map((p) => p.stop('SIGTERM', 30_000)));
    await new Promise<void>((resolve) => receiver.server.close(() => resolve()));
    await cleanUp(admin, client, onTopic, [...alertingGroups, ...readerGroups]);
    await forgetGroup(admin, client, processorGroup, rawTopic);
    await admin.deleteTopics({ topics: [rawTopic, alertsTopic] }).catch(() => undefined);
    await close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The run's history rows and consumer groups (best effort). */
async function cleanUp(
  admin: Admin,
  client: Awaited<ReturnType<typeof connectStack>>['client'],
  transitions: readonly AlertTransition[],
  groups: string[],
): Promise<void> {
  const DayMs = 86_400_000;
  try {
    for (const t of transitions) {
      const day = Math.floor(t.windowStart / DayMs) * DayMs;
      await client.execute(
        'DELETE FROM alerts_by_day WHERE day = ? AND window_start = ? AND id = ?',
        [day, t.windowStart, t.id],
        { prepare: true },
      );
      await client.execute(
        'DELETE FROM alerts_by_device WHERE device_id = ? AND day = ? AND window_start = ? AND id = ?',
        [t.deviceId, day, t.windowStart, t.id],
        { prepare: true },
      );
    }
    await admin.deleteGroups(groups);
  } catch (e) {
    console.error(`  (clean-up of the alerts run incomplete: ${e instanceof Error ? e.message : String(e)})`);
  }
}
