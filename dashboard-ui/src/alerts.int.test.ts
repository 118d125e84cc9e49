import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  DevWebhookSecret,
  loadConfig as alertingConfig,
  startAlerting,
  verifySignature,
  type RunningAlerting,
} from '@fleetpulse/alerting';
import { cassandraContactPoint, kafkaBrokers } from '@fleetpulse/compose';
import { connectedCassandra, kafkaClient, uniqueName } from '@fleetpulse/compose/testing';
import { Keyspace, Topics, type AlertTransition, type WindowRecord } from '@fleetpulse/contracts';
import { loadConfig, startDashboard, type RunningDashboard } from '@fleetpulse/dashboard-api';
import type { Client } from 'cassandra-driver';
import type { Producer } from 'kafkajs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

// Alerts end to end in a browser: the API and the alerting service in-process on the real Kafka and Cassandra
// (the alerting service in development, so webhooks are signed with its development secret; groups of this run),
// Debian's chromium driven by playwright-core. An admin creates a threshold rule in the UI; final 10s window records
// of this run's device go to metrics.aggregates, hot for longer than the rule's windows, then cool: the UI shows the
// alert firing, then resolved, and the webhook receiver here gets both, signed. A viewer sees the rules without the
// controls to change them. Screenshots go to artifacts/dashboard-ui/.
const root = resolve(__dirname, '..', '..');
const uiDist = join(root, 'dashboard-ui', 'dist');
const artifacts = join(root, 'artifacts', 'dashboard-ui');
const run = randomBytes(3).toString('hex');
const device = `uial-${run}-1`;
const ruleName = `overheat-${run}`;
const AdminToken = 'ui-alerts-admin-1';
const ViewerToken = 'ui-alerts-viewer-1';

let dashboard: RunningDashboard;
let alerting: RunningAlerting;
let cassandra: Client;
let producer: Producer;
let browser: BrowserContext;
let page: Page;
let profile: string;
let receiver: Server;
let hook = '';
const received: { transition: AlertTransition; signed: boolean }[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A final 10s window record of the device whose temp peaked at `max`. */
function windowOf(windowStart: number, max: number): WindowRecord {
  return {
    deviceId: device,
    resolution: '10s',
    windowStart,
    windowEnd: windowStart + 10_000,
    final: true,
    metrics: {
      temp: { count: 10, sum: max * 9, min: max - 5, max, mean: max - 1, stddev: 1, first: max - 2, last: max - 1 },
    },
  };
}

const produce = (r: WindowRecord) =>
  producer.send({ topic: Topics.aggregates, messages: [{ key: r.deviceId, value: JSON.stringify(r) }] });

const shot = async (name: string) => {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `${name}.png`) });
};

/** Signs in on the login page (opening the dashboard first, or after a sign-out reloaded it). */
async function signIn(token: string, open = false): Promise<void> {
  if (open) await page.goto(dashboard.url);
  await page.waitForSelector('#login:not([hidden])', { timeout: 30_000 });
  await page.fill('#token', token);
  await page.click('#login button[type="submit"]');
  await page.waitForSelector('#app:not([hidden])', { timeout: 30_000 });
  await page.waitForSelector('#conn[data-state="live"]', { timeout: 30_000 });
}

async function signOut(): Promise<void> {
  await page.click('#signout');
  await page.waitForSelector('#login:not([hidden])', { timeout: 30_000 });
}

beforeAll(async () => {
  execFileSync('npx', ['vite', 'build', '--logLevel', 'warn'], { cwd: join(root, 'dashboard-ui'), stdio: 'inherit' });
  cassandra = await connectedCassandra();
  producer = kafkaClient().producer();
  await producer.connect();
  // The device is known to the dashboard (as the processor would have written it).
  await cassandra.execute(
    `UPDATE ${Keyspace}.devices SET last_seen = ?, metrics = metrics + ? WHERE device_id = ?`,
    [Date.now(), ['temp'], device],
    { prepare: true },
  );
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({
        transition: JSON.parse(body.toString('utf8')) as AlertTransition,
        signed: verifySignature(body, DevWebhookSecret, req.headers['x-fleetpulse-signature'] as string | undefined),
      });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  const group = uniqueName('ui-alerting');
  alerting = await startAlerting(
    alertingConfig({
      ...process.env,
      FLEETPULSE_ENV: 'development',
      FLEETPULSE_KAFKA_BROKERS: kafkaBrokers().join(','),
      FLEETPULSE_CASSANDRA_CONTACT_POINTS: cassandraContactPoint(),
      FLEETPULSE_ALERTING_GROUP: group,
      FLEETPULSE_ALERTING_WEBHOOK_GROUP: `${group}-webhooks`,
      FLEETPULSE_ALERTING_RULES_REFRESH_MS: '300',
      FLEETPULSE_ALERT_WEBHOOK_INITIAL_BACKOFF_MS: '200',
      FLEETPULSE_ALERT_WEBHOOK_MAX_BACKOFF_MS: '1000',
      // Transitions of other runs' rules on the topic are tried once and given up.
      FLEETPULSE_ALERT_WEBHOOK_MAX_AGE_MS: '60000',
      FLEETPULSE_ALERT_WEBHOOK_TIMEOUT_MS: '2000',
      FLEETPULSE_ALERTING_SESSION_TIMEOUT_MS: '10000',
      FLEETPULSE_ALERTING_HOST: '127.0.0.1',
      FLEETPULSE_ALERTING_PORT: '0',
    }),
    () => undefined,
  );
  dashboard = await startDashboard(
    loadConfig({
      ...process.env,
      FLEETPULSE_DASHBOARD_PORT: '0',
      FLEETPULSE_DASHBOARD_HOST: '127.0.0.1',
      FLEETPULSE_DASHBOARD_UI_DIR: uiDist,
      FLEETPULSE_DASHBOARD_ADMIN_TOKENS: AdminToken,
      FLEETPULSE_DASHBOARD_VIEWER_TOKENS: ViewerToken,
    }),
    { logLevels: ['warn', 'error'] },
  );
  profile = mkdtempSync(join(tmpdir(), 'fleetpulse-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    viewport: { width: 1440, height: 900 },
  });
  page = browser.pages()[0] ?? (await browser.newPage());
  // Deleting a rule asks first: yes.
  page.on('dialog', (d) => void d.accept());
});

afterAll(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await dashboard?.close();
  await alerting?.close();
  receiver?.close();
  // A rule this run left (a failed test) is removed.
  const rs = await cassandra.execute(`SELECT id, name FROM ${Keyspace}.alert_rules`);
  for (const r of rs.rows)
    if (r.get('name') === ruleName)
      await cassandra.execute(`DELETE FROM ${Keyspace}.alert_rules WHERE id = ?`, [r.get('id')], { prepare: true });
  await producer?.disconnect();
  await cassandra?.shutdown();
});

describe('alerts in the browser', () => {
  it('names every problem of a rule next to the form', async () => {
    await signIn(AdminToken, true);
    await page.waitForSelector('#rule-form:not([hidden])');
    await page.fill('#rule-name', ruleName);
    await page.fill('#rule-devices', 'bad glob');
    await page.fill('#rule-feature', 'temp.max');
    await page.fill('#rule-value', '80');
    await page.fill('#rule-for', '0');
    await page.fill('#rule-webhook', hook);
    await page.click('#rule-form button[type="submit"]');
    await page.waitForSelector('#rule-error span', { timeout: 10_000 });
    const errors = await page.$$eval('#rule-error span', (s) => s.map((e) => e.textContent));
    expect(errors).toEqual([
      'devices: a glob is 1-128 characters of [A-Za-z0-9._:-] and the wildcards * ?',
      'when.forWindows: must be a whole number from 1 to 1000',
    ]);
    await shot('10-alert-rule-errors');
  });

  it('creates a rule that fires on real window records and resolves', async () => {
    await page.fill('#rule-devices', `uial-${run}-*`);
    await page.fill('#rule-for', '2');
    await page.click('#rule-form button[type="submit"]');
    await page.waitForSelector(`#alert-rules tr[data-name="${ruleName}"]`, { timeout: 10_000 });
    expect(await page.textContent('#rule-error')).toBe('');
    expect(await page.textContent(`#alert-rules tr[data-name="${ruleName}"]`)).toContain(
      'temp.max > 80 for 2 windows · 10s',
    );
    const ruleId = (await page.getAttribute(`#alert-rules tr[data-name="${ruleName}"]`, 'data-rule-id'))!;

    // Consecutive final 10s windows, hot until the UI says firing (the rule reaches the service within its refresh),
    // then cool until it says resolved.
    const firing = `#alerts-firing li[data-rule="${ruleId}"][data-device="${device}"]`;
    let w = Math.floor(Date.now() / 10_000) * 10_000 - 30 * 60_000;
    let hot = 0;
    for (; !(await page.$(firing)); w += 10_000, hot++) {
      if (hot > 60) throw new Error('the alert never showed as firing');
      await produce(windowOf(w, 85));
      await sleep(500);
    }
    // It needed two hot windows in a row at least.
    expect(hot).toBeGreaterThanOrEqual(2);
    expect(await page.getAttribute(firing, 'data-state')).toBe('firing');
    expect(await page.textContent(firing)).toContain(`firing · ${ruleName} · 10s · 85`);
    await shot('11-alert-firing');
    const resolved = `#alert-transitions li[data-rule="${ruleId}"][data-state="resolved"]`;
    for (let cool = 0; !(await page.$(resolved)); w += 10_000, cool++) {
      if (cool > 60) throw new Error('the alert never showed as resolved');
      await produce(windowOf(w, 70));
      await sleep(500);
    }
    // No longer firing; the transitions list holds the episode's two, once each.
    await page.waitForSelector(firing, { state: 'detached', timeout: 5000 });
    const listed = await page.$$eval(`#alert-transitions li[data-rule="${ruleId}"]`, (lis) =>
      lis.map((li) => (li as HTMLElement).dataset.state),
    );
    expect(listed).toEqual(['resolved', 'firing']);
    await shot('12-alert-resolved');

    // The same from REST after a reload, and at the webhook, signed with the development secret.
    await page.reload();
    await page.waitForSelector(resolved, { timeout: 30_000 });
    expect(await page.$(firing)).toBeNull();
    for (let i = 0; received.filter((r) => r.transition.ruleId === ruleId).length < 2; i++) {
      if (i > 300) throw new Error(`webhooks: ${JSON.stringify(received)}`);
      await sleep(100);
    }
    const mine = received.filter((r) => r.transition.ruleId === ruleId);
    expect(mine.map((r) => [r.transition.state, r.signed])).toEqual([
      ['firing', true],
      ['resolved', true],
    ]);
  });

  it('shows a viewer the rules and alerts without the controls to change them', async () => {
    await signOut();
    await signIn(ViewerToken);
    await page.waitForSelector(`#alert-rules tr[data-name="${ruleName}"]`, { timeout: 10_000 });
    expect(await page.isHidden('#rule-form')).toBe(true);
    expect(await page.$$('#alert-rules .rule-delete')).toHaveLength(0);
    await page.waitForSelector(`#alert-transitions li[data-device="${device}"][data-state="resolved"]`);
    await signOut();
  });

  it('deletes a rule', async () => {
    await signIn(AdminToken);
    const row = `#alert-rules tr[data-name="${ruleName}"]`;
    await page.waitForSelector(row, { timeout: 10_000 });
    await page.click(`${row} .rule-delete`);
    await page.waitForSelector(row, { state: 'detached', timeout: 10_000 });
    await page.reload();
    await page.waitForSelector('#alert-rules tbody', { state: 'attached', timeout: 30_000 });
    await sleep(1000);
    expect(await page.$(row)).toBeNull();
  });
});
