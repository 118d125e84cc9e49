import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { AlertStore } from '@fleetpulse/alerting';
import { connectedCassandra, kafkaClient } from '@fleetpulse/compose/testing';
import {
  bucketOf,
  Keyspace,
  Topics,
  type AlertTransition,
  type AnomalyScore,
  type MetricStats,
  type WindowRecord,
} from '@fleetpulse/contracts';
import { loadConfig, startDashboard, type RunningDashboard } from '@fleetpulse/dashboard-api';
import type { Client } from 'cassandra-driver';
import type { Producer } from 'kafkajs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

// The device view's history in a browser: the API in-process on the real Kafka and Cassandra (10s and 60s stored,
// 1s live only), Debian's chromium driven by playwright-core. Seven hours of window records of four metrics are in the
// `windows` table, an anomaly and two alert episodes in their tables; the page is signed in as a viewer limited to
// this run's devices. It shows the alert firing from REST as soon as it opens (Alerts panel and fleet grid), then a
// chart per metric with the resolution the range calls for, the anomaly and alert markers (and a live anomaly), a
// drag zooms every chart to a finer resolution, the CSV export follows the zoom, and reset zoom goes back.
// Screenshots go to artifacts/dashboard-ui/.
const root = resolve(__dirname, '..', '..');
const uiDist = join(root, 'dashboard-ui', 'dist');
const artifacts = join(root, 'artifacts', 'dashboard-ui');
const run = randomBytes(3).toString('hex');
const device = `uidev-${run}-1`;
const metrics = ['humidity', 'temp', 'vib', 'volt'];
const base: Record<string, number> = { temp: 22, humidity: 45, vib: 0.3, volt: 3.3 };
const ViewerToken = 'ui-device-viewer-1';
const H = 3_600_000;
/**
 * The end of the seeded history: ten minutes ahead (a minute boundary), so that however long the build and the
 * seeding take, every range of the test ending now is full. Set once the UI is built.
 */
let end = 0;
/** The anomaly stored in Cassandra (two hours back), and the live one (half an hour back). */
const storedAnomalyAt = () => end - 2 * H;
const liveAnomalyAt = () => end - 30 * 60_000;

let dashboard: RunningDashboard;
let cassandra: Client;
let producer: Producer;
let browser: BrowserContext;
let page: Page;
let profile: string;

function stats(v: number, sizeMs: number): MetricStats {
  const spread = Math.abs(v) * 0.02;
  return {
    count: sizeMs / 1000,
    sum: (v * sizeMs) / 1000,
    min: v - spread,
    max: v + spread,
    mean: v,
    stddev: spread / 2,
    first: v,
    last: v,
  };
}

function record(resolution: string, windowStart: number): WindowRecord {
  const size = Number(resolution.slice(0, -1)) * 1000;
  const m: Record<string, MetricStats> = {};
  for (const [i, name] of metrics.entries())
    m[name] = stats(base[name]! * (1 + 0.1 * Math.sin(windowStart / 900_000 + i)), size);
  return { deviceId: device, resolution, windowStart, windowEnd: windowStart + size, final: true, metrics: m };
}

function score(windowStart: number): AnomalyScore {
  return {
    deviceId: device,
    resolution: '10s',
    windowStart,
    model: 'iforest',
    modelVersion: '3',
    score: 0.97,
    anomalous: true,
    features: { 'temp.mean': 31.2 },
  };
}

function transition(
  id: string,
  ruleId: string,
  state: 'firing' | 'resolved',
  episode: number,
  windowStart: number,
): AlertTransition {
  return {
    id: `${run}-${id}`,
    ruleId: `${run}-${ruleId}`,
    ruleName: `${ruleId}-${run}`,
    deviceId: device,
    resolution: '10s',
    state,
    episode,
    windowStart,
    value: 30,
    at: windowStart + 12_000,
    reason: 'condition',
  };
}

async function seed(): Promise<void> {
  const insert = `INSERT INTO ${Keyspace}.windows (device_id, resolution, bucket, window_start, window_end, metrics) VALUES (?, ?, ?, ?, ?, ?)`;
  const records: WindowRecord[] = [];
  for (let t = end - 7 * H; t < end; t += 10_000) records.push(record('10s', t));
  for (let t = end - 7 * H; t < end; t += 60_000) records.push(record('60s', t));
  for (let i = 0; i < records.length; i += 100)
    await Promise.all(
      records.slice(i, i + 100).map((r) => {
        const size = r.windowEnd - r.windowStart;
        return cassandra.execute(
          insert,
          [r.deviceId, r.resolution, bucketOf(r.windowStart, size), r.windowStart, r.windowEnd, r.metrics],
          { prepare: true },
        );
      }),
    );
  await cassandra.execute(
    `UPDATE ${Keyspace}.devices SET last_seen = ?, metrics = metrics + ? WHERE device_id = ?`,
    [end, metrics, device],
    { prepare: true },
  );
  // An anomaly as the scoring service stores it (by device and day, and for the fleet by day).
  const s = score(storedAnomalyAt());
  const day = Math.floor(s.windowStart / 86_400_000) * 86_400_000;
  await cassandra.execute(
    `INSERT INTO ${Keyspace}.anomalies (device_id, day, window_start, resolution, model, model_version, score, features) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    [s.deviceId, day, s.windowStart, s.resolution, s.model, s.modelVersion, s.score, s.features],
    { prepare: true },
  );
  await cassandra.execute(
    `INSERT INTO ${Keyspace}.anomalies_by_day (day, window_start, device_id, resolution, model, model_version, score, features) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    [day, s.windowStart, s.deviceId, s.resolution, s.model, s.modelVersion, s.score, s.features],
    { prepare: true },
  );
  // Alert history as the alerting service writes it: one episode fired and resolved, one still firing.
  await new AlertStore(cassandra, Keyspace).writeTransitions([
    transition('a1', 'hot', 'firing', end - 3 * H, end - 3 * H),
    transition('a2', 'hot', 'resolved', end - 3 * H, end - 2.5 * H),
    transition('b1', 'stuck', 'firing', end - 40 * 60_000, end - 40 * 60_000),
  ]);
}

const shot = async (name: string) => {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
};

/** What the history shows: its range, resolution, and each chart's metric, points and markers in view. */
const historyState = () =>
  page.evaluate(() => {
    const root = document.getElementById('history-chart')!;
    return {
      from: Number(root.dataset.from),
      to: Number(root.dataset.to),
      resolution: root.dataset.resolution ?? '',
      label: document.getElementById('hist-resolution')!.textContent,
      charts: [...root.querySelectorAll<HTMLElement>('.chart[data-metric]')].map((c) => ({
        metric: c.dataset.metric!,
        points: Number(c.dataset.points),
        anomalies: Number(c.dataset.anomalies),
        alerts: Number(c.dataset.alerts),
        canvas: c.querySelector('canvas') !== null,
      })),
    };
  });

const waitResolution = (label: string) =>
  page.waitForFunction(
    (l) =>
      document.getElementById('hist-resolution')?.textContent === l &&
      /^\d[\d,]* windows/.test(document.getElementById('hist-status')?.textContent ?? ''),
    label,
    { timeout: 30_000 },
  );

beforeAll(async () => {
  // The current source, never a dist left from an earlier build.
  execFileSync('npx', ['vite', 'build', '--logLevel', 'warn'], { cwd: join(root, 'dashboard-ui'), stdio: 'inherit' });
  end = Math.floor(Date.now() / 60_000) * 60_000 + 10 * 60_000;
  cassandra = await connectedCassandra();
  producer = kafkaClient().producer();
  await producer.connect();
  await seed();
  dashboard = await startDashboard(
    loadConfig({
      ...process.env,
      FLEETPULSE_DASHBOARD_PORT: '0',
      FLEETPULSE_DASHBOARD_HOST: '127.0.0.1',
      FLEETPULSE_DASHBOARD_UI_DIR: uiDist,
      FLEETPULSE_DASHBOARD_VIEWER_TOKENS: `${ViewerToken}=uidev-${run}-*`,
      FLEETPULSE_STORED_RESOLUTIONS: '10s,60s',
    }),
    { logLevels: ['warn', 'error'] },
  );
  profile = mkdtempSync(join(tmpdir(), 'fleetpulse-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    viewport: { width: 1440, height: 1000 },
    acceptDownloads: true,
  });
  page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(dashboard.url);
});

afterAll(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await dashboard?.close();
  await producer?.disconnect();
  await cassandra?.shutdown();
});

describe('device view history in a browser', () => {
  it('shows the alert firing from REST when the page opens: Alerts panel and fleet grid', async () => {
    await page.waitForSelector('#login:not([hidden])', { timeout: 30_000 });
    await page.fill('#token', ViewerToken);
    await page.click('#login button[type="submit"]');
    await page.waitForSelector('#app:not([hidden])', { timeout: 30_000 });
    // No live alert comes in this test: what shows was read from GET /api/alerts.
    await page.waitForSelector(`#alerts-firing li[data-device="${device}"][data-state="firing"]`, { timeout: 30_000 });
    expect(await page.$$eval('#alerts-firing li[data-device]', (lis) => lis.length)).toBe(1);
    await page.waitForFunction(
      () => document.querySelector('.fleet-states label[data-state="alerting"] b')?.textContent === '1',
      undefined,
      { timeout: 30_000 },
    );
  });

  it('charts every metric of the device at the resolution the range calls for, with its markers', async () => {
    await page.fill('#filter', device);
    await page.waitForSelector(`.fleet-row[data-device="${device}"]`, { timeout: 30_000 });
    await page.click(`.fleet-row[data-device="${device}"]`);
    await expect(page.locator('#device-title').textContent()).resolves.toBe(device);
    // The last hour: 360 10s windows (1s, the finest the picker names, is over the point budget).
    await waitResolution('resolution: 10s (auto)');
    let h = await historyState();
    expect(h.charts.map((c) => c.metric)).toEqual(metrics);
    for (const c of h.charts) expect(c.canvas).toBe(true);
    for (const c of h.charts) expect(Math.abs(c.points - 360)).toBeLessThanOrEqual(1);
    expect(h.to - h.from).toBe(H);
    // Six hours: over the budget at 10s, so 60s.
    await page.selectOption('#hist-range', String(6 * H));
    await waitResolution('resolution: 60s (auto)');
    h = await historyState();
    expect(h.resolution).toBe('60s');
    expect(h.charts.map((c) => c.metric)).toEqual(metrics);
    for (const c of h.charts) expect(Math.abs(c.points - 360)).toBeLessThanOrEqual(1);
    // The stored anomaly on every chart; the alert episodes (one resolved, one firing) too.
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll<HTMLElement>('#history-chart .chart[data-metric]')].every(
          (c) => c.dataset.anomalies === '1' && c.dataset.alerts === '2',
        ),
      undefined,
      { timeout: 30_000 },
    );
    // A live anomaly of the device joins them.
    await producer.send({
      topic: Topics.scores,
      messages: [{ key: device, value: JSON.stringify(score(liveAnomalyAt())) }],
    });
    await page.waitForFunction(
      () => document.querySelector<HTMLElement>('#history-chart .chart[data-metric="temp"]')?.dataset.anomalies === '2',
      undefined,
      { timeout: 30_000 },
    );
    await shot('10-device-history');
  });

  it('zooms every chart on a drag, at the finer resolution the range calls for; CSV follows; reset goes back', async () => {
    const before = await historyState();
    expect(await page.isHidden('#hist-reset')).toBe(true);
    // Drag across the second quarter of the temp chart: about an hour and a half.
    const over = page.locator('#history-chart .chart[data-metric="temp"] .u-over');
    const box = (await over.boundingBox())!;
    const y = box.y + box.height / 2;
    await page.mouse.move(box.x + box.width * 0.25, y);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, y, { steps: 12 });
    await page.mouse.up();
    await waitResolution('resolution: 10s (auto)');
    const z = await historyState();
    expect(z.resolution).toBe('10s');
    const span = z.to - z.from;
    expect(span).toBeGreaterThan(1.2 * H);
    expect(span).toBeLessThan(1.8 * H);
    expect(z.from).toBeGreaterThan(before.from + 1.2 * H);
    expect(z.to).toBeLessThan(before.to - 2.7 * H);
    // Every chart zoomed with it, at 10s: a window each 10 s of the range.
    expect(z.charts.map((c) => c.metric)).toEqual(metrics);
    for (const c of z.charts) expect(Math.abs(c.points - span / 10_000)).toBeLessThanOrEqual(2);
    // The stored anomaly (two hours back) is out of the zoomed range, the resolved episode (3 h to 2.5 h back) in.
    const temp = z.charts.find((c) => c.metric === 'temp')!;
    expect(temp.anomalies).toBe(storedAnomalyAt() >= z.from && storedAnomalyAt() < z.to ? 1 : 0);
    expect(await page.isVisible('#hist-reset')).toBe(true);
    expect(await page.textContent('#hist-span')).toContain('zoomed');
    await shot('11-device-zoomed');

    // The CSV is the zoomed range at 10s.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#hist-csv')]);
    expect(download.suggestedFilename()).toMatch(new RegExp(`^${device}-10s-.*\\.csv$`));
    const lines = readFileSync((await download.path())!, 'utf8')
      .trimEnd()
      .split('\n');
    expect(lines[0]!.startsWith('windowStart,windowEnd,resolution,humidity.count')).toBe(true);
    const rows = lines.slice(1).map((l) => l.split(','));
    expect(rows.length).toBe(temp.points);
    for (const r of rows) {
      expect(r[2]).toBe('10s');
      const t = Date.parse(r[0]!);
      expect(t).toBeGreaterThanOrEqual(z.from);
      expect(t).toBeLessThan(z.to);
    }

    // A second zoom into the first, then back one: the first zoom again.
    const box2 = (await over.boundingBox())!;
    await page.mouse.move(box2.x + box2.width * 0.1, y);
    await page.mouse.down();
    await page.mouse.move(box2.x + box2.width * 0.6, y, { steps: 12 });
    await page.mouse.up();
    await page.waitForFunction(
      (t) => Number(document.getElementById('history-chart')?.dataset.to) < t,
      z.to - 10 * 60_000,
      { timeout: 30_000 },
    );
    const z2 = await historyState();
    expect(z2.from).toBeGreaterThan(z.from);
    expect(z2.to - z2.from).toBeLessThan(0.6 * span);
    await page.click('#hist-back');
    await page.waitForFunction((t) => Number(document.getElementById('history-chart')?.dataset.to) === t, z.to, {
      timeout: 30_000,
    });
    expect((await historyState()).from).toBe(z.from);

    // Reset: the six hours at 60s again.
    await page.click('#hist-reset');
    await waitResolution('resolution: 60s (auto)');
    const r = await historyState();
    expect([r.from, r.to]).toEqual([before.from, before.to]);
    expect(await page.isHidden('#hist-reset')).toBe(true);
  });

  it('keeps a manual resolution, and says why a live-only one has no history', async () => {
    await page.selectOption('#hist-res', '10s');
    await waitResolution('resolution: 10s (manual)');
    expect((await historyState()).charts[0]!.points).toBeGreaterThanOrEqual(2100);
    await page.selectOption('#hist-res', '1s');
    await page.waitForFunction(
      () => (document.getElementById('hist-status')?.textContent ?? '').startsWith('error'),
      undefined,
      { timeout: 30_000 },
    );
    expect(await page.textContent('#hist-status')).toBe(
      'error: resolution 1s is live only (not stored); stored: 10s,60s',
    );
    expect(await page.textContent('#hist-res option[value="1s"]')).toBe('1s (live only)');
    await page.selectOption('#hist-res', 'auto');
    await waitResolution('resolution: 60s (auto)');
  });
});
