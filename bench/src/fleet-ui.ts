/**
 * Fleet view benchmark (issue 15): the dashboard UI's fleet overview in headless Chromium (Debian's, driven by
 * playwright-core) while `devices` devices each close a 1 s window every second: one dashboard-api process (its built
 * dist/main.js, serving the built UI) on the real Kafka, final window records (`metrics` metrics each) produced to
 * metrics.aggregates once a second for every device (as the processor publishes them when the second's windows
 * close), the page signed in with the dev token and the overview searched down to this run's devices.
 *
 * Measured in the page, over `seconds` of load after a warm-up, then over `idleSeconds` without load:
 * - frame intervals: performance.now() deltas between requestAnimationFrame callbacks (a 60 Hz display: 16.7 ms when
 *   no frame is dropped), p50/p95/p99/max;
 * - main-thread busy time: CDP Performance.getMetrics' TaskDuration (every task of the renderer's main thread:
 *   socket.io parsing, the overview's bookkeeping, drawing, style, layout, paint, GC) over the span, as ms per frame
 *   and share of the span; and ScriptDuration (JavaScript alone);
 * - long tasks (over 50 ms, PerformanceObserver): count and the longest;
 * - JS heap: CDP JSHeapUsedSize / JSHeapTotalSize at the end of the load;
 * - records reaching the page a second (the overview's events/s figure divided by the events per record).
 *
 *   npx tsc -b bench && npm run build -w dashboard-ui && node bench/dist/fleet-ui.js [--devices 10000] [--seconds 30]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DevToken, type MetricStats, type WindowRecord } from '@fleetpulse/contracts';
import { sleep } from '@fleetpulse/runtime';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { chromium, type Page } from 'playwright-core';
import { quantile } from './quantile';
import { cpuSeconds, freePort, memoryMb, metricSum, parseMetrics, repo } from './services';

export interface BenchFleetUiOptions {
  devices?: number;
  /** Seconds measured under load, after `warmupSeconds`. [30] */
  seconds?: number;
  warmupSeconds?: number;
  /** Seconds measured after the load stops (the floor of this machine's frame intervals). [10] */
  idleSeconds?: number;
  metrics?: number;
  brokers?: string[];
  chromium?: string;
  log?: (line: string) => void;
}

export interface FramePhase {
  frames: number;
  intervalMs: { p50: number; p95: number; p99: number; max: number };
  /** Frames later than 1.5 intervals of 60 Hz (25 ms): at least one frame dropped. */
  over25Ms: number;
  busyMsPerFrame: number;
  busyShare: number;
  scriptMsPerFrame: number;
  longTasks: number;
  longestTaskMs: number;
}

export interface BenchFleetUiResult {
  devices: number;
  metrics: number;
  cells: number;
  load: FramePhase;
  idle: FramePhase;
  heapUsedMiB: number;
  heapTotalMiB: number;
  /** Window records produced a second during the load span. */
  producedPerSec: number;
  /** Read by the API from metrics.aggregates a second (all of the topic's records, other producers' too). */
  apiRecordsInPerSec: number;
  /** The overview's events/s figure at the end of the load / events per record: records reaching the page a second. */
  recordsPerSecAtPage: number;
  /** Flushes that skipped the page's socket (its unsent queue over the API's bound) during the load span. */
  slowSkips: number;
  apiCpuPercent: number;
  apiRssMiB: number;
  loadAverage: number[];
}

// In-page scripts as strings (the bench compiles without the DOM's types).
/** Starts collecting frame intervals and long tasks in the page. */
const startFrames = (page: Page) =>
  page.evaluate(`(() => {
    const b = (window.__bench = { deltas: [], long: [], stop: false });
    let last = 0;
    const tick = (t) => {
      b.deltas.push(t - last);
      last = t;
      if (!b.stop) requestAnimationFrame(tick);
    };
    requestAnimationFrame((t) => {
      last = t;
      requestAnimationFrame(tick);
    });
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) b.long.push(e.duration);
    }).observe({ type: 'longtask' });
  })()`);

const stopFrames = (page: Page) =>
  page.evaluate(`(() => {
    window.__bench.stop = true;
    return { deltas: window.__bench.deltas, long: window.__bench.long };
  })()`) as Promise<{ deltas: number[]; long: number[] }>;

const cellsOf = (page: Page) =>
  page.evaluate(`Number(document.querySelector('.fleet-grid')?.dataset.cells)`) as Promise<number>;
const eventsPerSecOf = (page: Page) =>
  page.evaluate(
    `Number(document.querySelector('.fleet-figures [data-fig="events"]')?.dataset.value)`,
  ) as Promise<number>;

export async function benchFleetUi(opts: BenchFleetUiOptions = {}): Promise<BenchFleetUiResult> {
  const devices = opts.devices ?? 10_000;
  const seconds = opts.seconds ?? 30;
  const warmup = opts.warmupSeconds ?? 15;
  const idleSeconds = opts.idleSeconds ?? 10;
  const metricCount = opts.metrics ?? 4;
  const brokers = opts.brokers ?? (process.env.FLEETPULSE_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
  const log = opts.log ?? ((l: string) => console.error(l));
  const port = await freePort();
  const api = spawn(process.execPath, [join(repo, 'dashboard-api', 'dist', 'main.js')], {
    env: {
      ...process.env,
      FLEETPULSE_ENV: 'development',
      FLEETPULSE_DASHBOARD_PORT: String(port),
      FLEETPULSE_DASHBOARD_HOST: '127.0.0.1',
      FLEETPULSE_DASHBOARD_UI_DIR: join(repo, 'dashboard-ui', 'dist'),
      FLEETPULSE_KAFKA_BROKERS: brokers.join(','),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  api.stdout.on('data', (d: Buffer) => output.push(d.toString()));
  api.stderr.on('data', (d: Buffer) => output.push(d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const kafka = new Kafka({ clientId: `bench-fleet-ui-${process.pid}`, brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  const profile = mkdtempSync(join(tmpdir(), 'fleetpulse-bench-chromium-'));
  let browser: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
  let stop = false;
  let producing: Promise<void> = Promise.resolve();
  try {
    for (let i = 0; ; i++) {
      if (api.exitCode !== null) throw new Error(`dashboard-api exited: ${output.join('')}`);
      if (
        await fetch(`${url}/readyz`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      if (i > 120) throw new Error(`dashboard-api not ready after 60 s: ${output.join('')}`);
      await sleep(500);
    }
    await producer.connect();
    const run = Math.random().toString(36).slice(2, 8);
    const prefix = `fui-${run}-`;
    const ids = Array.from({ length: devices }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);
    const metrics = Array.from({ length: metricCount }, (_, i) => `m${i}`);
    let sent = 0;
    producing = (async () => {
      let next = Math.ceil(Date.now() / 1000) * 1000;
      while (!stop) {
        await sleep(Math.max(0, next - Date.now()));
        const w = next - 1000;
        next += 1000;
        const sends: Promise<unknown>[] = [];
        for (let i = 0; i < ids.length; i += 2500) {
          const messages = ids.slice(i, i + 2500).map((deviceId) => {
            const stats: Record<string, MetricStats> = {};
            for (const m of metrics) {
              const v = Math.random();
              stats[m] = { count: 4, sum: v * 4, min: v, max: v, mean: v, stddev: 0, first: v, last: v };
            }
            const r: WindowRecord = {
              deviceId,
              resolution: '1s',
              windowStart: w,
              windowEnd: w + 1000,
              final: true,
              metrics: stats,
            };
            return { key: deviceId, value: JSON.stringify(r) };
          });
          sends.push(producer.send({ topic: 'metrics.aggregates', messages }));
        }
        await Promise.all(sends);
        sent += ids.length;
        if (Date.now() > next + 1000) next = Math.ceil(Date.now() / 1000) * 1000;
      }
    })();

    browser = await chromium.launchPersistentContext(profile, {
      executablePath: opts.chromium ?? '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
      viewport: { width: 1440, height: 900 },
    });
    const page = browser.pages()[0] ?? (await browser.newPage());
    await page.goto(url);
    await page.waitForSelector('#login:not([hidden])', { timeout: 60_000 });
    await page.fill('#token', DevToken);
    await page.click('#login button[type="submit"]');
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 60_000 });
    await page.fill('.fleet-search', prefix);
    const cdp = await browser.newCDPSession(page);
    await cdp.send('Performance.enable');
    const metricsNow = async () => {
      const { metrics: m } = (await cdp.send('Performance.getMetrics')) as {
        metrics: { name: string; value: number }[];
      };
      return Object.fromEntries(m.map((x) => [x.name, x.value])) as Record<string, number>;
    };
    const cells = () => cellsOf(page);
    for (const end = Date.now() + 60_000; Date.now() < end && (await cells()) < devices;) await sleep(500);
    log(`fleet-ui: ${await cells()} cells after sign-in; warming up ${warmup} s`);
    await sleep(warmup * 1000);

    const phase = async (span: number): Promise<FramePhase> => {
      const m0 = await metricsNow();
      await startFrames(page);
      await sleep(span * 1000);
      const { deltas, long } = await stopFrames(page);
      const m1 = await metricsNow();
      const d = [...deltas].sort((a, b) => a - b);
      const spanS = m1.Timestamp! - m0.Timestamp!;
      const busy = (m1.TaskDuration! - m0.TaskDuration!) * 1000;
      const script = (m1.ScriptDuration! - m0.ScriptDuration!) * 1000;
      const r2 = (x: number) => Math.round(x * 100) / 100;
      return {
        frames: d.length,
        intervalMs: {
          p50: r2(quantile(d, 0.5)),
          p95: r2(quantile(d, 0.95)),
          p99: r2(quantile(d, 0.99)),
          max: r2(quantile(d, 1)),
        },
        over25Ms: d.filter((x) => x > 25).length,
        busyMsPerFrame: r2(busy / Math.max(1, d.length)),
        busyShare: r2(busy / (spanS * 1000)),
        scriptMsPerFrame: r2(script / Math.max(1, d.length)),
        longTasks: long.length,
        longestTaskMs: r2(Math.max(0, ...long)),
      };
    };
    const apiMetrics = async () => parseMetrics(await (await fetch(`${url}/metrics`)).text());
    const a0 = await apiMetrics();
    const sent0 = sent;
    const cpu0 = cpuSeconds(api.pid!);
    const t0 = Date.now();
    const load = await phase(seconds);
    const spanS = (Date.now() - t0) / 1000;
    const apiCpuPercent = Math.round(((cpuSeconds(api.pid!) - cpu0) / spanS) * 100);
    const sent1 = sent;
    const a1 = await apiMetrics();
    const inOk = (a: ReturnType<typeof parseMetrics>) =>
      metricSum(a, 'fleetpulse_dashboard_kafka_records_total', { topic: 'metrics.aggregates', outcome: 'ok' });
    const heap = await metricsNow();
    const eps = await eventsPerSecOf(page);
    const result: Omit<BenchFleetUiResult, 'idle'> = {
      devices,
      metrics: metricCount,
      cells: await cells(),
      load,
      heapUsedMiB: Math.round((heap.JSHeapUsedSize! / 2 ** 20) * 10) / 10,
      heapTotalMiB: Math.round((heap.JSHeapTotalSize! / 2 ** 20) * 10) / 10,
      producedPerSec: Math.round((sent1 - sent0) / spanS),
      apiRecordsInPerSec: Math.round((inOk(a1) - inOk(a0)) / spanS),
      recordsPerSecAtPage: Math.round(eps / 4),
      slowSkips:
        metricSum(a1, 'fleetpulse_dashboard_live_slow_skips_total') -
        metricSum(a0, 'fleetpulse_dashboard_live_slow_skips_total'),
      apiCpuPercent,
      apiRssMiB: Math.round(memoryMb(api.pid!).rss),
      loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    };
    log(`fleet-ui load: ${JSON.stringify(result)} (${sent} records produced)`);
    stop = true;
    await producing;
    await sleep(2000);
    const idle = await phase(idleSeconds);
    return { ...result, idle };
  } finally {
    stop = true;
    await producing.catch(() => undefined);
    await browser?.close().catch(() => undefined);
    rmSync(profile, { recursive: true, force: true });
    await producer.disconnect().catch(() => undefined);
    api.kill('SIGTERM');
    await new Promise((r) => (api.exitCode !== null ? r(null) : api.once('exit', r)));
  }
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      devices: { type: 'string' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      idle: { type: 'string' },
      metrics: { type: 'string' },
    },
  });
  benchFleetUi({
    ...(values.devices ? { devices: Number(values.devices) } : {}),
    ...(values.seconds ? { seconds: Number(values.seconds) } : {}),
    ...(values.warmup ? { warmupSeconds: Number(values.warmup) } : {}),
    ...(values.idle ? { idleSeconds: Number(values.idle) } : {}),
    ...(values.metrics ? { metrics: Number(values.metrics) } : {}),
  }).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
