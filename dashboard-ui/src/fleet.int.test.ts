import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { connectedCassandra, kafkaClient } from '@fleetpulse/compose/testing';
import { bucketOf, Topics, type AnomalyScore } from '@fleetpulse/contracts';
import type { Producer } from 'kafkajs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { Colours } from './fleet-grid';

// The fleet overview (the landing page) in a browser with 10,000 devices: the API in-process on the real Kafka,
// Debian's chromium driven by playwright-core, final 1 s window records of every device produced to
// metrics.aggregates each second (9,900 devices keep reporting, 100 report in the first seconds only). Behaviour only,
// never timing: every cell drawn in its state's colour (read back from the canvas), the counts, an anomaly turning a
// cell, hover, click to the device view, search and state filters. Screenshots go to artifacts/dashboard-ui/.
const root = resolve(__dirname, '..', '..');
const artifacts = join(root, 'artifacts', 'dashboard-ui');
const run = randomBytes(3).toString('hex');
const prefix = `fl-${run}-`;
const N = 10_000;
/** The last 100 devices report in the first seconds only, then go stale. */
const Quiet = 100;
const ids = Array.from({ length: N }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);
const AdminToken = 'fleet-admin-token-1';
/** Events per metric per record, two metrics: the overview counts an event once, whatever its metrics (4 a record). */
const Count = 4;

/**
 * dashboard-api as its own process (its dist/main.js): 10,000 records a second and their socket.io batches would
 * otherwise share this process's event loop with playwright, which then answers late.
 */
let api: ChildProcess | undefined;
const apiOutput: string[] = [];
let url = '';
let producer: Producer;
let browser: BrowserContext;
let page: Page;
let profile: string;
let seconds = 0;

/**
 * The fleet's producer, in a worker thread: serialising and sending 10,000 records a second would otherwise share
 * this process's event loop with the API under test and with playwright. Each second it sends a final 1 s window of
 * every reporting device (all of them in the first 3 seconds, then all but the last `Quiet`) and posts the count of
 * seconds sent.
 */
const producerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { Kafka, logLevel, Partitioners } = require('kafkajs');
const { ids, quiet, count, brokers, topic } = workerData;
const kafka = new Kafka({ clientId: 'fleet-ui-test', brokers, logLevel: logLevel.NOTHING });
const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
const stats = (v) => ({ count, sum: v * count, min: v, max: v, mean: v, stddev: 0, first: v, last: v });
let seconds = 0;
let busy = false;
producer.connect().then(() => {
  parentPort.postMessage({ ready: true });
  setInterval(async () => {
    if (busy) return;
    busy = true;
    seconds++;
    const w = Math.floor(Date.now() / 1000) * 1000 - 1000;
    const reporting = seconds <= 3 ? ids : ids.slice(0, ids.length - quiet);
    const sends = [];
    for (let i = 0; i < reporting.length; i += 2500)
      sends.push(producer.send({ topic, messages: reporting.slice(i, i + 2500).map((deviceId, k) => {
        const v = Math.sin(w / 5000 + i + k);
        return { key: deviceId, value: JSON.stringify({ deviceId, resolution: '1s', windowStart: w, windowEnd: w + 1000,
          final: true, metrics: { temp: stats(20 + v), humidity: stats(40 + v) } }) };
      }) }));
    await Promise.all(sends).catch(() => undefined);
    busy = false;
    parentPort.postMessage({ seconds });
  }, 1000);
});
`;

let worker: Worker | undefined;
function feed(): Promise<void> {
  worker = new Worker(producerSource, {
    eval: true,
    workerData: {
      ids,
      quiet: Quiet,
      count: Count,
      brokers: (process.env.FLEETPULSE_KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
      topic: Topics.aggregates,
    },
  });
  return new Promise((resolve, reject) => {
    worker!.on('error', reject);
    worker!.on('message', (m: { ready?: boolean; seconds?: number }) => {
      if (m.ready) resolve();
      if (m.seconds !== undefined) seconds = m.seconds;
    });
  });
}

/** Legend count of a state among the shown devices. */
const legend = (state: string) =>
  page.evaluate((s) => Number(document.querySelector(`.fleet-states label[data-state="${s}"] b`)?.textContent), state);
const figure = (key: string) =>
  page.evaluate(
    (k) => Number(document.querySelector<HTMLElement>(`.fleet-figures [data-fig="${k}"]`)?.dataset.value),
    key,
  );
const cells = () => page.evaluate(() => Number(document.querySelector<HTMLElement>('.fleet-grid')?.dataset.cells));

/** The colour drawn at the cell of the k-th shown device (sorted by id), read back from the canvas: `#rrggbb`. */
function cellColour(k: number): Promise<string> {
  return page.evaluate((k) => {
    const c = document.querySelector<HTMLCanvasElement>('.fleet-grid')!;
    const cols = Number(c.dataset.cols);
    const pitch = Number(c.dataset.pitch);
    const dpr = c.width / c.clientWidth;
    const x = Math.floor(((k % cols) * pitch + 1) * dpr);
    const y = Math.floor((Math.floor(k / cols) * pitch + 1) * dpr);
    const [r, g, b] = c.getContext('2d')!.getImageData(x, y, 1, 1).data;
    return '#' + [r!, g!, b!].map((v) => v.toString(16).padStart(2, '0')).join('');
  }, k);
}

/** Every shown cell's colour, counted. */
function colourCounts(): Promise<Record<string, number>> {
  return page.evaluate(() => {
    const c = document.querySelector<HTMLCanvasElement>('.fleet-grid')!;
    const cols = Number(c.dataset.cols);
    const pitch = Number(c.dataset.pitch);
    const n = Number(c.dataset.cells);
    const dpr = c.width / c.clientWidth;
    const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    const out: Record<string, number> = {};
    for (let k = 0; k < n; k++) {
      const x = Math.floor(((k % cols) * pitch + 1) * dpr);
      const y = Math.floor((Math.floor(k / cols) * pitch + 1) * dpr);
      const o = (y * c.width + x) * 4;
      const hex = '#' + [data[o]!, data[o + 1]!, data[o + 2]!].map((v) => v.toString(16).padStart(2, '0')).join('');
      out[hex] = (out[hex] ?? 0) + 1;
    }
    return out;
  });
}

/** Where the k-th shown cell's centre is on the page. */
async function cellPoint(k: number): Promise<{ x: number; y: number }> {
  const c = page.locator('.fleet-grid');
  const box = (await c.boundingBox())!;
  const { cols, pitch } = await c.evaluate((el) => ({
    cols: Number((el as HTMLElement).dataset.cols),
    pitch: Number((el as HTMLElement).dataset.pitch),
  }));
  return { x: box.x + (k % cols) * pitch + pitch / 2 - 0.5, y: box.y + Math.floor(k / cols) * pitch + pitch / 2 - 0.5 };
}

/** Polls `read` until `done` holds or `ms` pass; the last value read (so a failed expectation shows what was there). */
async function poll<T>(read: () => Promise<T>, done: (v: T) => boolean, ms = 30_000): Promise<T> {
  let v = await read();
  for (const end = Date.now() + ms; !done(v) && Date.now() < end; v = await read()) await page.waitForTimeout(500);
  return v;
}

const shot = async (name: string) => {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `${name}.png`) });
};

const [liveColour, staleColour, anomalousColour] = [Colours[1]!, Colours[0]!, Colours[2]!];

beforeAll(async () => {
  execFileSync('npx', ['vite', 'build', '--logLevel', 'warn'], { cwd: join(root, 'dashboard-ui'), stdio: 'inherit' });
  producer = kafkaClient().producer();
  await producer.connect();
  execFileSync('npx', ['tsc', '-b', 'dashboard-api'], { cwd: root, stdio: 'inherit' });
  const port = await new Promise<number>((res) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => res(p));
    });
  });
  api = spawn(process.execPath, [join(root, 'dashboard-api', 'dist', 'main.js')], {
    env: {
      ...process.env,
      FLEETPULSE_DASHBOARD_PORT: String(port),
      FLEETPULSE_DASHBOARD_HOST: '127.0.0.1',
      FLEETPULSE_DASHBOARD_UI_DIR: join(root, 'dashboard-ui', 'dist'),
      FLEETPULSE_DASHBOARD_ADMIN_TOKENS: AdminToken,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  api.stdout!.on('data', (b: Buffer) => apiOutput.push(b.toString()));
  api.stderr!.on('data', (b: Buffer) => apiOutput.push(b.toString()));
  url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (api.exitCode !== null) throw new Error(`dashboard-api exited: ${apiOutput.join('')}`);
    if (
      await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (i > 120) throw new Error(`dashboard-api not ready after 60 s: ${apiOutput.join('').slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  profile = mkdtempSync(join(tmpdir(), 'fleetpulse-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    viewport: { width: 1440, height: 900 },
  });
  page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(url);
  await page.waitForSelector('#login:not([hidden])', { timeout: 30_000 });
  await page.fill('#token', AdminToken);
  await page.click('#login button[type="submit"]');
  await page.waitForSelector('#conn[data-state="live"]', { timeout: 30_000 });
  await feed();
}, 180_000);

afterAll(async () => {
  await worker?.terminate();
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  if (api && api.exitCode === null) {
    api.kill('SIGTERM');
    await new Promise((r) => api!.once('exit', r));
  }
  await producer?.disconnect();
});

describe('fleet overview with 10,000 devices', () => {
  it('is the landing page: a canvas grid, no device open', async () => {
    expect(await page.isVisible('#overview .fleet-grid')).toBe(true);
    expect(await page.isHidden('#device')).toBe(true);
  });

  it('draws every device of the search, each in its state colour, and counts them', async () => {
    await page.fill('.fleet-search', prefix);
    await page.waitForFunction(
      (n) => Number(document.querySelector<HTMLElement>('.fleet-grid')?.dataset.cells) === n,
      N,
      {
        timeout: 90_000,
      },
    );
    // ~20 s of the fleet reporting: the quiet 100 have gone stale (15 s without a record), the rest are live.
    for (const end = Date.now() + 60_000; seconds < 20 && Date.now() < end;) await page.waitForTimeout(1000);
    expect(seconds).toBeGreaterThanOrEqual(20);
    const counts = await poll(
      async () => ({ live: await legend('live'), stale: await legend('stale') }),
      (c) => c.live === N - Quiet && c.stale === Quiet,
    );
    await shot('20-fleet');
    expect(counts).toEqual({ live: N - Quiet, stale: Quiet });
    expect(await cells()).toBe(N);
    expect(await colourCounts()).toEqual({ [liveColour]: N - Quiet, [staleColour]: Quiet });
    expect(await cellColour(0)).toBe(liveColour);
    expect(await cellColour(N - 1)).toBe(staleColour);
    // The headline is the whole fleet (other runs' devices too): at least this run's.
    await page.waitForTimeout(1500);
    expect(await figure('online')).toBeGreaterThanOrEqual(N - Quiet);
    // 9,900 records a second of 4 events each (two metrics of count 4: an event counted once): ~39,600 events/s.
    const eps = await figure('events');
    expect(eps).toBeGreaterThan(0.5 * (N - Quiet) * Count);
    expect(eps).toBeLessThan(1.5 * (N - Quiet) * Count);
    expect(await figure('delay-windows')).toBeGreaterThan(0);
    // No DOM per device: the overview is a canvas and a few dozen elements.
    expect(await page.evaluate(() => document.getElementById('overview')!.querySelectorAll('*').length)).toBeLessThan(
      100,
    );
  });

  it('turns a device anomalous when its anomaly score comes', async () => {
    const k = 1234;
    const id = ids[k]!;
    expect(await cellColour(k)).toBe(liveColour);
    const score: AnomalyScore = {
      deviceId: id,
      resolution: '10s',
      windowStart: Math.floor(Date.now() / 10_000) * 10_000,
      model: 'iforest',
      modelVersion: '3',
      score: 0.97,
      anomalous: true,
      features: { 'temp.mean': 31.2 },
    };
    await producer.send({ topic: Topics.scores, messages: [{ key: id, value: JSON.stringify(score) }] });
    await page.waitForFunction(
      () => Number(document.querySelector('.fleet-states label[data-state="anomalous"] b')?.textContent) === 1,
      undefined,
      { timeout: 30_000 },
    );
    expect(await cellColour(k)).toBe(anomalousColour);
    expect(await cellColour(k + 1)).toBe(liveColour);
    expect(await legend('live')).toBe(N - Quiet - 1);
    await page.waitForTimeout(1200);
    expect(await figure('anomalous')).toBeGreaterThanOrEqual(1);
    // Only the anomalous, by the state filter; then every state again.
    await page.uncheck('.fleet-states label[data-state="live"] input');
    await page.uncheck('.fleet-states label[data-state="stale"] input');
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('.fleet-grid')?.dataset.cells) === 1);
    expect(await cellColour(0)).toBe(anomalousColour);
    await page.check('.fleet-states label[data-state="live"] input');
    await page.check('.fleet-states label[data-state="stale"] input');
    await page.waitForFunction(
      (n) => Number(document.querySelector<HTMLElement>('.fleet-grid')?.dataset.cells) === n,
      N,
    );
    await shot('21-fleet-anomaly');
  });

  it('names a device on hover; a click opens its device view, which exports a range as CSV', async () => {
    const k = 4321;
    const id = ids[k]!;
    const p = await cellPoint(k);
    await page.mouse.move(p.x, p.y);
    await page.waitForSelector('.fleet-tip:not([hidden])');
    expect(await page.textContent('.fleet-tip')).toContain(`${id} · live`);
    await page.mouse.click(p.x, p.y);
    await page.waitForSelector('#device:not([hidden])');
    expect(await page.textContent('#device-title')).toBe(id);
    expect(await page.isHidden('#overview')).toBe(true);
    // Its live window records reach the device view.
    await page.waitForSelector('#live-charts .chart[data-metric="temp"] canvas', { timeout: 30_000 });
    await shot('22-fleet-device');
    // CSV of the range from REST: three stored 10 s windows of this device, every metric and statistic a column.
    const cassandra = await connectedCassandra();
    try {
      const end = Math.floor(Date.now() / 10_000) * 10_000;
      await cassandra.execute(
        'UPDATE fleetpulse.devices SET last_seen = ?, metrics = metrics + ? WHERE device_id = ?',
        [end, ['temp'], id],
        { prepare: true },
      );
      for (const k of [3, 2, 1]) {
        const w = end - k * 10_000;
        const st = { count: 40, sum: 800 + k, min: 19, max: 21, mean: 20 + k / 40, stddev: 0.5, first: 20, last: 20 };
        await cassandra.execute(
          'INSERT INTO fleetpulse.windows (device_id, resolution, bucket, window_start, window_end, metrics) VALUES (?, ?, ?, ?, ?, ?)',
          [id, '10s', bucketOf(w, 10_000), w, w + 10_000, { temp: st }],
          { prepare: true },
        );
      }
    } finally {
      await cassandra.shutdown();
    }
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#hist-csv')]);
    const lines = readFileSync((await download.path())!, 'utf8')
      .trimEnd()
      .split('\n');
    expect(lines[0]).toBe(
      'windowStart,windowEnd,resolution,temp.count,temp.sum,temp.min,temp.max,temp.mean,temp.stddev,temp.first,temp.last',
    );
    expect(lines.slice(1).map((l) => l.split(',').slice(2, 5).join(','))).toEqual([
      '10s,40,803',
      '10s,40,802',
      '10s,40,801',
    ]);
    await page.click('#to-fleet');
    await page.waitForSelector('#overview:not([hidden])');
    expect(await page.isHidden('#device')).toBe(true);
  });

  it('filters by search', async () => {
    await page.fill('.fleet-search', `${prefix}0012`);
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('.fleet-grid')?.dataset.cells) === 10);
    expect(await legend('live')).toBe(10);
    expect(await colourCounts()).toEqual({ [liveColour]: 10 });
    // The first cell is now device 00120: hover names it.
    const p = await cellPoint(0);
    await page.mouse.move(p.x, p.y);
    await page.waitForSelector(`.fleet-tip[data-device="${prefix}00120"]:not([hidden])`);
    await page.fill('.fleet-search', `${prefix}zzz`);
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('.fleet-grid')?.dataset.cells) === 0);
  });
});
