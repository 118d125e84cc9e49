/**
 * Dashboard benchmark: one dashboard-api instance (its built dist/main.js, as its own process so its CPU and RSS
 * are its own) on the real Kafka, `clients` socket.io clients subscribed to the fleet, and v2 window records
 * (`WindowRecord`: one per device, resolution and window, every metric) produced to metrics.aggregates at several
 * rates.
 *
 * Latency is from a record's production to Kafka (the stand-in for its window's close: the stream processor
 * publishes a record right after the window closes) to its arrival at a socket.io client, over every delivered
 * (record, client). Each device closes one 1 s window a second, below the coalescing limit (4 updates/s per device),
 * so no record waits for a flush.
 *
 *   npx tsc -b dashboard-api bench && node bench/dist/dashboard.js [--clients 200] [--seconds 6]
 *     [--rates 250,500,1000,2000] [--metrics 4] [--batch]
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DevToken, type MetricStats, type WindowRecord } from '@fleetpulse/contracts';
import { sleep } from '@fleetpulse/runtime';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { io, type Socket } from 'socket.io-client';
import { quantile } from './quantile';
import { cpuSeconds, freePort, memoryMb, repo } from './services';

export interface BenchDashboardOptions {
  /** socket.io clients subscribed to the fleet. [200] */
  clients?: number;
  /**
   * Window records produced per second (= devices: each closes one 1 s window a second), one level after another.
   * [250, 500, 1000, 2000]
   */
  rates?: number[];
  /** Seconds per level (after 1 s of warm-up). [6] */
  seconds?: number;
  brokers?: string[];
  /** Clients subscribe with `batch: true` (one `aggregates` array per flush) instead of one per record. [false] */
  batch?: boolean;
  /** Metrics per window record. [4] */
  metrics?: number;
  log?: (line: string) => void;
}

export interface DashboardLevel {
  /** Window records produced per second. */
  producedPerSec: number;
  /** Records delivered to clients per second, summed over clients. */
  deliveredPerSec: number;
  /** delivered / (produced x clients). */
  deliveredShare: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** API process CPU over the level, % of one core. */
  apiCpuPercent: number;
  apiRssMiB: number;
  /** Records client 0 got without every metric produced or not final (0 unless the API mangles them). */
  incomplete: number;
}

export interface BenchDashboardResult {
  clients: number;
  batch: boolean;
  /** Metrics in each window record. */
  metrics: number;
  levels: DashboardLevel[];
}

export async function benchDashboard(opts: BenchDashboardOptions = {}): Promise<BenchDashboardResult> {
  const clients = opts.clients ?? 200;
  const rates = opts.rates ?? [250, 500, 1000, 2000];
  const seconds = opts.seconds ?? 6;
  const metricCount = opts.metrics ?? 4;
  const batch = opts.batch ?? false;
  const brokers = opts.brokers ?? (process.env.FLEETPULSE_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
  const log = opts.log ?? ((l: string) => console.log(l));
  const port = await freePort();
  const api = spawn(process.execPath, [join(repo, 'dashboard-api', 'dist', 'main.js')], {
    env: {
      ...process.env,
      // Development: the dev token is an admin for every device (docs/contract.md, "Dashboard API").
      FLEETPULSE_ENV: 'development',
      FLEETPULSE_DASHBOARD_PORT: String(port),
      FLEETPULSE_DASHBOARD_HOST: '127.0.0.1',
      FLEETPULSE_KAFKA_BROKERS: brokers.join(','),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  api.stdout.on('data', (d: Buffer) => output.push(d.toString()));
  api.stderr.on('data', (d: Buffer) => output.push(d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const kafka = new Kafka({ clientId: `bench-dashboard-${process.pid}`, brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  const sockets: Socket[] = [];
  try {
    for (let i = 0; ; i++) {
      if (api.exitCode !== null) throw new Error(`dashboard-api exited: ${output.join('')}`);
      const ok = await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 120) throw new Error(`dashboard-api not ready after 60 s: ${output.join('')}`);
      await sleep(500);
    }
    await producer.connect();
    const run = Math.random().toString(36).slice(2, 8);
    const metrics = Array.from({ length: metricCount }, (_, i) => `m${i}`);
    // `deviceId|windowStart` -> production time, for every record in flight; a client looks its arrivals up here.
    const sentAt = new Map<string, number>();
    let latencies: number[] = [];
    let delivered = 0;
    let incomplete = 0;
    for (let i = 0; i < clients; i++) {
      const s = io(`${url}/live`, { transports: ['websocket'], forceNew: true, auth: { token: DevToken } });
      const arrived = (r: WindowRecord, now: number) => {
        const t = sentAt.get(`${r.deviceId}|${r.windowStart}`);
        if (t === undefined) return;
        delivered++;
        latencies.push(now - t);
        // One client checks that what arrives is the whole record (cheap enough not to slow the other 199 down).
        if (i === 0 && (r.final !== true || !metrics.every((m) => r.metrics[m] !== undefined))) incomplete++;
      };
      s.on('aggregate', (r: WindowRecord) => arrived(r, Date.now()));
      s.on('aggregates', (rs: WindowRecord[]) => {
        const now = Date.now();
        for (const r of rs) arrived(r, now);
      });
      sockets.push(s);
    }
    await Promise.all(
      sockets.map(
        (s) =>
          new Promise<void>((res, rej) => {
            if (s.connected) return res();
            s.once('connect', () => res());
            s.once('connect_error', rej);
          }),
      ),
    );
    await Promise.all(sockets.map((s) => s.emitWithAck('subscribe', { fleet: true, batch })));
    log(`dashboard bench: ${clients} clients on ${url}/live (fleet${batch ? ', batch' : ''}), API pid ${api.pid}`);

    const levels: DashboardLevel[] = [];
    for (const rate of rates) {
      const devices = Math.max(1, Math.round(rate));
      const tickMs = 50;
      const deviceIds = Array.from({ length: devices }, (_, i) => `bench-${run}-${rate}-${i}`);
      let stop = false;
      // Each device closes one 1 s window a second (one record, every metric); devices are spread over the ticks.
      const producing = (async () => {
        let window = Math.floor(Date.now() / 1000) * 1000;
        let next = Date.now();
        let tickInSec = 0;
        const ticksPerSec = 1000 / tickMs;
        while (!stop) {
          const from = Math.floor((tickInSec * devices) / ticksPerSec);
          const to = Math.floor(((tickInSec + 1) * devices) / ticksPerSec);
          const messages: { key: string; value: string }[] = [];
          const now = Date.now();
          for (let d = from; d < to; d++) {
            const deviceId = deviceIds[d]!;
            const stats: Record<string, MetricStats> = {};
            for (const metric of metrics) {
              const v = Math.random();
              stats[metric] = { count: 4, sum: v * 4, min: v, max: v, mean: v, stddev: 0, first: v, last: v };
            }
            const record: WindowRecord = {
              deviceId,
              resolution: '1s',
              windowStart: window,
              windowEnd: window + 1000,
              final: true,
              metrics: stats,
            };
            sentAt.set(`${deviceId}|${window}`, now);
            messages.push({ key: deviceId, value: JSON.stringify(record) });
          }
          if (messages.length > 0) await producer.send({ topic: 'metrics.aggregates', messages });
          tickInSec = (tickInSec + 1) % ticksPerSec;
          if (tickInSec === 0) window += 1000;
          next += tickMs;
          await sleep(Math.max(0, next - Date.now()));
        }
      })();
      await sleep(1000);
      delivered = 0;
      latencies = [];
      incomplete = 0;
      const cpu0 = cpuSeconds(api.pid!) * 1000;
      const t0 = Date.now();
      await sleep(seconds * 1000);
      const elapsed = (Date.now() - t0) / 1000;
      const cpu1 = cpuSeconds(api.pid!) * 1000;
      const got = delivered;
      const badRecords = incomplete;
      const lat = [...latencies].sort((a, b) => a - b);
      stop = true;
      await producing;
      if (got === 0)
        throw new Error(
          `no window record reached a client (does the API refuse them?): ${output.join('').slice(-2000)}`,
        );
      await sleep(500);
      sentAt.clear();
      const level: DashboardLevel = {
        producedPerSec: devices,
        deliveredPerSec: Math.round(got / elapsed),
        deliveredShare: Math.round((got / elapsed / (devices * clients)) * 1000) / 1000,
        latencyMs: { p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), max: quantile(lat, 1) },
        apiCpuPercent: Math.round(((cpu1 - cpu0) / (elapsed * 1000)) * 100),
        apiRssMiB: Math.round(memoryMb(api.pid!).rss * 10) / 10,
        incomplete: badRecords,
      };
      levels.push(level);
      log(
        `  ${level.producedPerSec} window records/s in (${metricCount} metrics each) -> ${level.deliveredPerSec} updates/s out (${(level.deliveredShare * 100).toFixed(1)}% of ${clients}x); latency p50 ${level.latencyMs.p50} ms, p99 ${level.latencyMs.p99} ms, max ${level.latencyMs.max} ms; API CPU ${level.apiCpuPercent}% RSS ${level.apiRssMiB} MiB${level.incomplete > 0 ? `; ${level.incomplete} incomplete records at client 0` : ''}`,
      );
    }
    return { clients, batch, metrics: metricCount, levels };
  } finally {
    for (const s of sockets) s.disconnect();
    await producer.disconnect().catch(() => undefined);
    api.kill('SIGTERM');
    await new Promise((r) => (api.exitCode !== null ? r(null) : api.once('exit', r)));
  }
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string' },
      seconds: { type: 'string' },
      rates: { type: 'string' },
      metrics: { type: 'string' },
      batch: { type: 'boolean' },
    },
  });
  benchDashboard({
    ...(values.clients ? { clients: Number(values.clients) } : {}),
    ...(values.seconds ? { seconds: Number(values.seconds) } : {}),
    ...(values.rates ? { rates: values.rates.split(',').map(Number) } : {}),
    ...(values.metrics ? { metrics: Number(values.metrics) } : {}),
    batch: values.batch === true,
  }).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
