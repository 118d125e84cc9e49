import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connectedCassandra, kafkaClient } from '@fleetpulse/compose/testing';
import { bucketOf, Topics, type AnomalyScore, type MetricStats, type WindowRecord } from '@fleetpulse/contracts';
import { loadConfig, startDashboard, type DashboardConfig, type RunningDashboard } from '@fleetpulse/dashboard-api';
import type { Client } from 'cassandra-driver';
import type { Producer } from 'kafkajs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

// The browser dashboard end to end: the API in-process on the real Kafka and Cassandra, Debian's chromium driven by
// playwright-core (no downloaded browser), v2 window records produced to the real topics and written to the
// `windows` table by the test. The browser signs in with a token first (the login page), out at the end, and as a
// device-limited viewer, which sees only its devices. Screenshots go to artifacts/dashboard-ui/;
// FLEETPULSE_UPDATE_DOCS=1 also refreshes docs/dashboard.png.
const root = resolve(__dirname, '..', '..');
const uiDist = join(root, 'dashboard-ui', 'dist');
const artifacts = join(root, 'artifacts', 'dashboard-ui');
const run = randomBytes(3).toString('hex');
const devices = Array.from({ length: 24 }, (_, i) => `ui-${run}-${String(i).padStart(2, '0')}`);
const chosen = devices[3]!;
/** Devices that report once: enough that a list drawing every row would put far more in the DOM than fit the view. */
const burst = Array.from({ length: 1000 }, (_, i) => `ui-${run}-b${String(i).padStart(4, '0')}`);
/** fleet.ts draws this many rows beyond each edge of the view. */
const Overscan = 8;
const metrics = ['humidity', 'temp', 'vib', 'volt'];
const AdminToken = 'ui-admin-token-1';
/** A viewer limited to the devices 00-09 of this run. */
const TenantToken = 'ui-tenant-token-1';
const tenantDevices = devices.slice(0, 10);
const base: Record<string, number> = { temp: 22, humidity: 45, vib: 0.3, volt: 3.3 };

let dashboard: RunningDashboard;
let config: DashboardConfig;
let scoring: Server;
let cassandra: Client;
let producer: Producer;
let browser: BrowserContext;
let page: Page;
let profile: string;
let feeding: NodeJS.Timeout | undefined;
let tick = 0;

const value = (m: string, i: number, t: number) =>
  base[m]! * (1 + 0.05 * Math.sin(t / 7000 + i)) + (m === 'temp' ? tick * 0.01 : 0);

function stats(v: number, sizeMs: number): MetricStats {
  const spread = Math.abs(v) * 0.02;
  return {
    count: sizeMs / 250,
    sum: (v * sizeMs) / 250,
    min: v - spread,
    max: v + spread,
    mean: v,
    stddev: spread / 2,
    first: v - spread / 2,
    last: v,
  };
}

/** One device's window record with `values` (metric -> value). */
function record(
  deviceId: string,
  resolution: string,
  windowStart: number,
  values: Record<string, number>,
): WindowRecord {
  const size = Number(resolution.slice(0, -1)) * 1000;
  const m: Record<string, MetricStats> = {};
  for (const [name, v] of Object.entries(values)) m[name] = stats(v, size);
  return { deviceId, resolution, windowStart, windowEnd: windowStart + size, final: true, metrics: m };
}

/** What a running fleet would publish each second: 1s windows of every device, 10s ones every tenth second. */
async function publishSecond(): Promise<void> {
  tick++;
  const now = Math.floor(Date.now() / 1000) * 1000 - 1000;
  const messages: WindowRecord[] = [];
  for (const [i, d] of devices.entries()) {
    const values = Object.fromEntries(metrics.map((m) => [m, value(m, i, now)]));
    messages.push(record(d, '1s', now, values));
    if (now % 10_000 === 0 || tick === 1) messages.push(record(d, '10s', Math.floor(now / 10_000) * 10_000, values));
  }
  await producer.send({
    topic: Topics.aggregates,
    messages: messages.map((r) => ({ key: r.deviceId, value: JSON.stringify(r) })),
  });
}

async function seedHistory(): Promise<void> {
  const insert =
    'INSERT INTO fleetpulse.windows (device_id, resolution, bucket, window_start, window_end, metrics) VALUES (?, ?, ?, ?, ?, ?)';
  const end = Math.floor(Date.now() / 10_000) * 10_000;
  const records: WindowRecord[] = [];
  // An hour of 10s windows of every metric; temp is what the test charts.
  for (let t = end - 3_600_000; t < end; t += 10_000)
    records.push(
      record(chosen, '10s', t, {
        ...Object.fromEntries(metrics.map((m, i) => [m, value(m, i, t)])),
        temp: 22 + 3 * Math.sin(t / 600_000) + Math.random() * 0.4,
      }),
    );
  for (let i = 0; i < records.length; i += 50)
    await Promise.all(
      records
        .slice(i, i + 50)
        .map((r) =>
          cassandra.execute(
            insert,
            [r.deviceId, r.resolution, bucketOf(r.windowStart, 10_000), r.windowStart, r.windowEnd, r.metrics],
            { prepare: true },
          ),
        ),
    );
  for (const d of devices)
    await cassandra.execute(
      'UPDATE fleetpulse.devices SET last_seen = ?, metrics = metrics + ? WHERE device_id = ?',
      [end, metrics, d],
      { prepare: true },
    );
}

/** A stand-in for the scoring service's model status, so the models panel has something to show. */
function fakeScoring(): Promise<Server> {
  const models = [
    {
      name: 'iforest',
      file: 'iforest.onnx',
      active: {
        version: '3',
        features: ['temp.mean', 'temp.max', 'humidity.stddev'],
        resolution: '10s',
        loadedAt: new Date().toISOString(),
      },
      lastError: null,
    },
    {
      name: 'vib-ae',
      file: 'vib-ae.onnx',
      active: null,
      lastError: {
        at: new Date().toISOString(),
        file: 'vib-ae.onnx',
        reason: 'input shape [1,5] does not match 3 features',
      },
    },
  ];
  const server = createServer((_, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(models)),
  );
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

/**
 * Every device the fleet list holds under the current filter, read the way a user would: scrolling it from top to
 * bottom, a view at a time, and reading the rows drawn after each scroll.
 */
function listedDevices(): Promise<string[]> {
  return page.evaluate(async () => {
    const scroll = document.getElementById('fleet-scroll')!;
    // The list redraws on the animation frame after a scroll: two frames later, it has.
    const drawn = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const seen = new Set<string>();
    for (let top = 0; ; top += scroll.clientHeight) {
      scroll.scrollTop = top;
      await drawn();
      for (const row of document.querySelectorAll<HTMLElement>('.fleet-row'))
        if (row.style.display !== 'none' && row.dataset.device) seen.add(row.dataset.device);
      if (top + scroll.clientHeight >= scroll.scrollHeight) break;
    }
    scroll.scrollTop = 0;
    await drawn();
    return [...seen].sort();
  });
}

/** Signs in on the login page with `token`; resolves once the dashboard shows. */
async function signIn(token: string): Promise<void> {
  await page.waitForSelector('#login:not([hidden])', { timeout: 30_000 });
  await page.fill('#token', token);
  await page.click('#login button[type="submit"]');
  await page.waitForSelector('#app:not([hidden])', { timeout: 30_000 });
}

const signedOut = () => page.waitForSelector('#login:not([hidden])', { timeout: 30_000 });

const shot = async (name: string) => {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `${name}.png`) });
};

beforeAll(async () => {
  // The current source, never a dist left from an earlier build.
  execFileSync('npx', ['vite', 'build', '--logLevel', 'warn'], { cwd: join(root, 'dashboard-ui'), stdio: 'inherit' });
  cassandra = await connectedCassandra();
  producer = kafkaClient().producer();
  await producer.connect();
  await seedHistory();
  scoring = await fakeScoring();
  config = loadConfig({
    ...process.env,
    FLEETPULSE_DASHBOARD_PORT: '0',
    FLEETPULSE_DASHBOARD_HOST: '127.0.0.1',
    FLEETPULSE_SCORING_URL: `http://127.0.0.1:${(scoring.address() as AddressInfo).port}`,
    FLEETPULSE_SCORING_MODELS_PATH: '/api/models',
    FLEETPULSE_DASHBOARD_UI_DIR: uiDist,
    FLEETPULSE_DASHBOARD_ADMIN_TOKENS: AdminToken,
    FLEETPULSE_DASHBOARD_VIEWER_TOKENS: `${TenantToken}=ui-${run}-0?`,
    // 1s live only, as on a large fleet: the history picker's 1s answers with the reason.
    FLEETPULSE_STORED_RESOLUTIONS: '10s,60s',
    // Signed session cookies: the browser stays signed in over the API restart below.
    FLEETPULSE_DASHBOARD_SESSION_SECRET: randomBytes(32).toString('hex'),
  });
  dashboard = await startDashboard(config, { logLevels: ['warn', 'error'] });
  // A restart listens where the page is.
  config = { ...config, port: dashboard.port };
  feeding = setInterval(() => void publishSecond().catch(() => undefined), 1000);
  profile = mkdtempSync(join(tmpdir(), 'fleetpulse-chromium-'));
  // A fresh profile each run (playwright takes it as userDataDir, not as --user-data-dir).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1440, height: 860 },
  });
  page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(dashboard.url);
});

afterAll(async () => {
  clearInterval(feeding);
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await dashboard?.close();
  scoring?.close();
  await producer?.disconnect();
  await cassandra?.shutdown();
});

describe('dashboard in a browser', () => {
  it('asks for a token, refuses a wrong one, and signs in', async () => {
    await signedOut();
    expect(await page.isHidden('#app')).toBe(true);
    await page.fill('#token', 'not-a-dashboard-token');
    await page.click('#login button[type="submit"]');
    await page.waitForFunction(() => document.getElementById('login-error')?.textContent === 'unknown token');
    await shot('00-login');
    await signIn(AdminToken);
    expect(await page.textContent('#who')).toBe('admin · all devices');
    // The cookie is the session's: HttpOnly, so the page's scripts cannot read it.
    const [cookie] = await browser.cookies(dashboard.url);
    expect(cookie).toMatchObject({ name: 'fleetpulse_session', httpOnly: true, sameSite: 'Strict' });
    expect(await page.evaluate(() => document.cookie)).toBe('');
  });

  it('loads, connects and lists the fleet', async () => {
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 30_000 });
    await page.fill('#filter', `ui-${run}`);
    await page.waitForSelector(`.fleet-row[data-device="${chosen}"]`);
    await page.waitForSelector('#models tbody tr:has-text("iforest")');
    await shot('01-loaded');
  });

  it('shows live values changing', async () => {
    const cell = page.locator(`.fleet-row[data-device="${chosen}"] span:nth-child(4)`);
    await page.waitForFunction(
      (id) => document.querySelector(`.fleet-row[data-device="${id}"] span:nth-child(4)`)?.textContent !== '',
      chosen,
      { timeout: 60_000 },
    );
    const first = await cell.textContent();
    await page.waitForFunction(
      ([id, v]) => {
        const t = document.querySelector(`.fleet-row[data-device="${id}"] span:nth-child(4)`)?.textContent;
        return t !== '' && t !== v;
      },
      [chosen, first] as const,
      { timeout: 60_000 },
    );
  });

  it('lists exactly the devices that reported, with only the rows in view in the DOM', async () => {
    // The live values of the last test came through the fleet subscription: it is in place. A thousand devices more
    // report one 10s window each.
    const windowStart = Math.floor(Date.now() / 10_000) * 10_000;
    for (let i = 0; i < burst.length; i += 250)
      await producer.send({
        topic: Topics.aggregates,
        messages: burst.slice(i, i + 250).map((d) => ({
          key: d,
          value: JSON.stringify(record(d, '10s', windowStart, { temp: 20 })),
        })),
      });
    const expected = [...devices, ...burst].sort();
    let listed: string[] = [];
    for (const end = Date.now() + 30_000; Date.now() < end && listed.length < expected.length;)
      listed = await listedDevices();
    expect(listed).toEqual(expected);
    // Virtualised: the DOM holds the rows in view and the overscan on both sides, not the 1,024 devices.
    const { rows, fit } = await page.evaluate(() => {
      const scroll = document.getElementById('fleet-scroll')!;
      const rowHeight = document.querySelector<HTMLElement>('.fleet-row')!.getBoundingClientRect().height;
      return {
        rows: document.querySelectorAll('.fleet-row').length,
        fit: Math.ceil(scroll.clientHeight / rowHeight),
      };
    });
    expect(rows).toBeGreaterThanOrEqual(fit);
    expect(rows).toBeLessThanOrEqual(fit + 2 * Overscan);
  });

  it('opens a device chart on click, with live points and history', async () => {
    await page.click(`.fleet-row[data-device="${chosen}"]`);
    await expect(page.locator('#device-title').textContent()).resolves.toBe(chosen);
    await page.waitForSelector('#live-charts .chart[data-metric="temp"] canvas', { timeout: 30_000 });
    // A few live seconds on the chart, and the hour of history from Cassandra.
    await page.waitForFunction(
      () => (document.getElementById('device-values')?.textContent ?? '').includes('temp'),
      undefined,
      { timeout: 30_000 },
    );
    // Every metric of the live window records gets its chart.
    await page.waitForFunction(
      (n) => document.querySelectorAll('#live-charts .chart[data-metric] canvas').length >= n,
      metrics.length,
      { timeout: 30_000 },
    );
    expect(
      await page.$$eval('#live-charts .chart[data-metric]', (els) =>
        els.map((e) => (e as HTMLElement).dataset.metric).sort(),
      ),
    ).toEqual(metrics);
    // The history: a chart per metric of the hour of window records, at the resolution the hour calls for.
    await page.waitForFunction(
      () => /^\d[\d,]* windows/.test(document.getElementById('hist-status')?.textContent ?? ''),
      undefined,
      { timeout: 30_000 },
    );
    expect(Number((await page.textContent('#hist-status'))!.split(' ')[0]!.replace(/,/g, ''))).toBeGreaterThanOrEqual(
      350,
    );
    expect(await page.textContent('#hist-resolution')).toBe('resolution: 10s (auto)');
    expect(
      await page.$$eval('#history-chart .chart[data-metric]', (els) =>
        els.map((e) => (e as HTMLElement).dataset.metric).sort(),
      ),
    ).toEqual(metrics);
    await page.waitForTimeout(4000);
    await shot('02-device');
  });

  it('says why a live-only resolution has no history', async () => {
    await page.selectOption('#hist-res', '1s');
    await page.waitForFunction(
      () => (document.getElementById('hist-status')?.textContent ?? '').startsWith('error'),
      undefined,
      { timeout: 30_000 },
    );
    expect(await page.textContent('#hist-status')).toBe(
      'error: resolution 1s is live only (not stored); stored: 10s,60s',
    );
    await page.selectOption('#hist-res', 'auto');
    await page.waitForFunction(
      () => /^\d[\d,]* windows/.test(document.getElementById('hist-status')?.textContent ?? ''),
      undefined,
      { timeout: 30_000 },
    );
  });

  it('shows an injected anomaly in the feed', async () => {
    const score: AnomalyScore = {
      deviceId: chosen,
      resolution: '10s',
      windowStart: Math.floor(Date.now() / 10_000) * 10_000,
      model: 'iforest',
      modelVersion: '3',
      score: 0.97,
      anomalous: true,
      features: { 'temp.mean': 31.2, 'temp.max': 33.9, 'humidity.stddev': 4.1 },
    };
    await producer.send({ topic: Topics.scores, messages: [{ key: chosen, value: JSON.stringify(score) }] });
    await page.waitForSelector(`#anomalies li[data-device="${chosen}"]`, { timeout: 30_000 });
    // The fleet list re-renders on its next frame, a moment after the feed: wait for the row to say so.
    await page.waitForSelector(`.fleet-row[data-device="${chosen}"][data-status="anomaly"]`, { timeout: 10_000 });
    await page.waitForTimeout(2500);
    await shot('03-anomaly');
    if (process.env.FLEETPULSE_UPDATE_DOCS === '1') {
      mkdirSync(join(root, 'docs'), { recursive: true });
      copyFileSync(join(artifacts, '03-anomaly.png'), join(root, 'docs', 'dashboard.png'));
    }
  });

  /** Opens `deviceId` in the device view (filtering the list down to it). */
  async function openDevice(deviceId: string): Promise<void> {
    await page.fill('#filter', deviceId);
    await page.waitForSelector(`.fleet-row[data-device="${deviceId}"]`, { timeout: 30_000 });
    await page.click(`.fleet-row[data-device="${deviceId}"]`);
    await expect(page.locator('#device-title').textContent()).resolves.toBe(deviceId);
  }

  const sendRecords = (topic: string, records: WindowRecord[]) =>
    producer.send({ topic, messages: records.map((r) => ({ key: r.deviceId, value: JSON.stringify(r) })) });

  /** What the live temp chart of the open device draws: newest final window, provisional window and value. */
  const tempChart = () =>
    page.evaluate(() => {
      const el = document.querySelector<HTMLElement>('#live-charts .chart[data-metric="temp"]');
      return {
        final: el?.dataset.final ?? '',
        provisional: el?.dataset.provisional ?? '',
        provisionalValue: el?.dataset.provisionalValue ?? '',
        windows: Number(el?.dataset.windows ?? 0),
        tag: el?.querySelector<HTMLElement>('.provisional-tag')?.hidden === false,
      };
    });

  it('draws a provisional value apart, then replaces it with the final record of its window', async () => {
    const id = `ui-${run}-prov`;
    // It shows up in the list through the fleet stream (10s), then opens.
    await sendRecords(Topics.aggregates, [record(id, '10s', Math.floor(Date.now() / 10_000) * 10_000, { temp: 20 })]);
    await openDevice(id);
    const w0 = Math.floor(Date.now() / 1000) * 1000;
    // The device subscription is in once a final window shows on the chart.
    for (let i = 0; (await tempChart()).final !== String(w0); i++) {
      if (i > 60) throw new Error('no live window reached the device view');
      await sendRecords(Topics.aggregates, [record(id, '1s', w0, { temp: 20 })]);
      await page.waitForTimeout(500);
    }
    const prov = (windowStart: number, temp: number): WindowRecord => ({
      ...record(id, '1s', windowStart, { temp }),
      final: false,
    });
    await sendRecords(Topics.live, [prov(w0 + 1000, 25)]);
    await page.waitForFunction(
      (w) => document.querySelector<HTMLElement>('#live-charts .chart[data-metric="temp"]')?.dataset.provisional === w,
      String(w0 + 1000),
      { timeout: 30_000 },
    );
    expect(await tempChart()).toMatchObject({ final: String(w0), provisionalValue: '25', tag: true });
    expect(await page.getAttribute('#device-values span', 'class')).toBe('provisional');
    await shot('05-provisional');
    // Its window's final record replaces it.
    await sendRecords(Topics.aggregates, [record(id, '1s', w0 + 1000, { temp: 26 })]);
    await page.waitForFunction(
      (w) => document.querySelector<HTMLElement>('#live-charts .chart[data-metric="temp"]')?.dataset.final === w,
      String(w0 + 1000),
      { timeout: 30_000 },
    );
    expect(await tempChart()).toMatchObject({ provisional: '', provisionalValue: '', tag: false, windows: 2 });
    expect(await page.textContent('#device-values')).toBe('temp 26.00');
    // A snapshot of that window arriving late is not drawn; the next window's is.
    await sendRecords(Topics.live, [prov(w0 + 1000, 99)]);
    await sendRecords(Topics.live, [prov(w0 + 2000, 27)]);
    await page.waitForFunction(
      (w) => document.querySelector<HTMLElement>('#live-charts .chart[data-metric="temp"]')?.dataset.provisional === w,
      String(w0 + 2000),
      { timeout: 30_000 },
    );
    expect(await tempChart()).toMatchObject({ final: String(w0 + 1000), provisionalValue: '27', windows: 2 });
  });

  it('says so while the API restarts, reconnects, and fills the missed windows from history', async () => {
    const id = `ui-${run}-restart`;
    const end = Math.floor(Date.now() / 10_000) * 10_000;
    const w = (k: number) => end - k * 10_000;
    // 10s windows (stored): four arrive live before the restart, two are written while the API is down.
    await cassandra.execute(
      'UPDATE fleetpulse.devices SET last_seen = ?, metrics = metrics + ? WHERE device_id = ?',
      [end, ['temp'], id],
      { prepare: true },
    );
    await sendRecords(Topics.aggregates, [record(id, '10s', w(6), { temp: 30 })]);
    await openDevice(id);
    // One at a time: records of one device close together are coalesced to the newest.
    for (const k of [6, 5, 4, 3])
      for (let i = 0; (await tempChart()).final !== String(w(k)); i++) {
        if (i > 60) throw new Error('no live window reached the device view');
        await sendRecords(Topics.aggregates, [record(id, '10s', w(k), { temp: 30 + k })]);
        await page.waitForTimeout(300);
      }
    expect((await tempChart()).windows).toBe(4);
    await dashboard.close();
    await page.waitForSelector('#conn[data-state="reconnecting"]', { timeout: 30_000 });
    await page.waitForSelector('#live-banner:not([hidden])', { timeout: 10_000 });
    expect(await page.textContent('#live-banner')).toContain('reconnecting');
    await shot('06-reconnecting');
    const insert =
      'INSERT INTO fleetpulse.windows (device_id, resolution, bucket, window_start, window_end, metrics) VALUES (?, ?, ?, ?, ?, ?)';
    for (const k of [2, 1]) {
      const r = record(id, '10s', w(k), { temp: 40 + k });
      await cassandra.execute(
        insert,
        [r.deviceId, r.resolution, bucketOf(r.windowStart, 10_000), r.windowStart, r.windowEnd, r.metrics],
        { prepare: true },
      );
    }
    await page.waitForTimeout(1500);
    // Still down: still saying so, still signed in.
    expect(await page.isVisible('#live-banner')).toBe(true);
    dashboard = await startDashboard(config, { logLevels: ['warn', 'error'] });
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 60_000 });
    await page.waitForFunction(
      (w1) => document.querySelector<HTMLElement>('#live-charts .chart[data-metric="temp"]')?.dataset.final === w1,
      String(w(1)),
      { timeout: 30_000 },
    );
    expect(await tempChart()).toMatchObject({ windows: 6 });
    expect(await page.textContent('#gap-status')).toBe('gap filled: 2 10s windows from history');
    await page.waitForSelector('#live-banner', { state: 'hidden', timeout: 10_000 });
    expect(await page.isVisible('#login')).toBe(false);
    // Subscribed again: live windows come on.
    for (let i = 0; (await tempChart()).final !== String(end); i++) {
      if (i > 60) throw new Error('no live window after the restart');
      await sendRecords(Topics.aggregates, [record(id, '10s', end, { temp: 50 })]);
      await page.waitForTimeout(500);
    }
    await shot('07-reconnected');
  });

  it('signs out: back to the login page, and the session is gone', async () => {
    await page.click('#signout');
    await signedOut();
    expect(await browser.cookies(dashboard.url)).toEqual([]);
    expect(await page.evaluate(async () => (await fetch('/api/session')).status)).toBe(401);
  });

  it('returns to the login page when the session ends under it (its socket closed, or a 401)', async () => {
    await signIn(AdminToken);
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 30_000 });
    // Signed out elsewhere (another tab): the API closes this page's socket.
    // The DELETE is sent without waiting on its answer in the page: the page may reload to the login form before
    // the answer is read (that is what is tested), and awaiting it there would race that navigation.
    await page.evaluate(() => void fetch('/api/session', { method: 'DELETE' }));
    await signedOut();
    // The cookie gone: the next REST call (the models panel asks every 10 s) is answered 401.
    await signIn(AdminToken);
    await browser.clearCookies();
    await signedOut();
  });

  it('shows a device-limited viewer its devices only, and says who is signed in', async () => {
    await signIn(TenantToken);
    expect(await page.textContent('#who')).toBe(`viewer · ui-${run}-0?`);
    await page.fill('#filter', `ui-${run}`);
    // Every device of the run reports each second: the tenant's show up, no other ever does.
    let listed: string[] = [];
    for (const end = Date.now() + 30_000; Date.now() < end && listed.length < tenantDevices.length;)
      listed = await listedDevices();
    expect(listed).toEqual(tenantDevices);
    // An anomaly of another device, then one of its own: the feed shows its own only.
    const anomaly = (deviceId: string): AnomalyScore => ({
      deviceId,
      resolution: '10s',
      windowStart: Math.floor(Date.now() / 10_000) * 10_000,
      model: 'iforest',
      modelVersion: '3',
      score: 0.91,
      anomalous: true,
      features: { 'temp.mean': 30 },
    });
    for (const d of [devices[15]!, tenantDevices[1]!])
      await producer.send({ topic: Topics.scores, messages: [{ key: d, value: JSON.stringify(anomaly(d)) }] });
    await page.waitForSelector(`#anomalies li[data-device="${tenantDevices[1]}"]`, { timeout: 30_000 });
    await page.waitForTimeout(3000);
    expect(await listedDevices()).toEqual(tenantDevices);
    const feed = await page.$$eval('#anomalies li', (lis) => lis.map((li) => (li as HTMLElement).dataset.device));
    expect(feed.filter((d) => !tenantDevices.includes(d!))).toEqual([]);
    await shot('04-tenant');
    await page.click('#signout');
    await signedOut();
  });
});
