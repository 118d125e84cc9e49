import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { io } from 'socket.io-client';
import { kafkaBrokers } from '@fleetpulse/compose';
import { DevToken, Topics, type WindowRecord } from '@fleetpulse/contracts';
import { sleep } from '@fleetpulse/runtime';
import type { FleetLoadConfig } from './fleet-load';
import { quantile } from './quantile';
import { runScript } from './services';

export interface BenchE2eOptions {
  /** [ingestionUrl=http://127.0.0.1:8080] - of a running stack (`npm start`). */
  ingestionUrl?: string;
  /** [dashboardUrl=http://127.0.0.1:3000] */
  dashboardUrl?: string;
  /** [seconds=40] - how long the probes report. */
  seconds?: number;
  /** [intervalsMs=[100, 1000]] - one probe device per interval between its readings (10 Hz and the goal's 1 Hz). */
  intervalsMs?: number[];
  /** [backgroundDevices=10000] - devices at 1 Hz posting meanwhile (fleet-load.js, its own process); 0: none. */
  backgroundDevices?: number;
  /** Kafka brokers, to split the provisional path at metrics.live (default: the launcher's single-node stack). */
  brokers?: string[];
}

export interface LatencyFigures {
  events: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface ProbeResult {
  intervalMs: number;
  /** Event answered 202 -> the provisional record holding it at the client (metrics.live; issue 15 goal p99 <= 300). */
  provisional: LatencyFigures;
  /** 202 -> the Kafka timestamp of that record on metrics.live (the processor's share: fetch, fold, snapshot round). */
  provisionalProduced: LatencyFigures;
  /** 202 -> the record read back from metrics.live by a consumer of the bench (Kafka's fetch added). */
  provisionalOnTopic: LatencyFigures;
}

export interface BenchE2eResult {
  /** The first probe's 1 s windows: first event posted -> final record at the client. */
  windows: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The first probe's provisional figures (kept for the JSON's readers; every probe is in `probes`). */
  provisional: LatencyFigures;
  probes: ProbeResult[];
  backgroundDevices: number;
}

/** One reading of a probe not yet seen in a provisional record: its window, its place in it, answered at. */
interface Awaited {
  count: number;
  answeredAt: number;
}

/**
 * Per probe device: which of its readings the provisional records seen so far hold, by window, and the latency of
 * each the first time a record holds it.
 */
class ProvisionalTracker {
  private readonly awaiting = new Map<number, Awaited[]>();
  readonly latencies: number[] = [];

  answered(windowStart: number, count: number, at: number): void {
    const list = this.awaiting.get(windowStart) ?? [];
    list.push({ count, answeredAt: at });
    this.awaiting.set(windowStart, list);
  }

  /** A snapshot holds every reading of its window up to its count: each of those is now visible at `at`. */
  seen(windowStart: number, count: number, at: number): void {
    const list = this.awaiting.get(windowStart);
    if (!list) return;
    for (const r of list) if (r.count <= count) this.latencies.push(at - r.answeredAt);
    const rest = list.filter((r) => r.count > count);
    if (rest.length > 0) this.awaiting.set(windowStart, rest);
    else this.awaiting.delete(windowStart);
  }
}

function figures(values: number[]): LatencyFigures {
  values.sort((a, b) => a - b);
  return {
    events: values.length,
    p50Ms: quantile(values, 0.5),
    p99Ms: quantile(values, 0.99),
    maxMs: quantile(values, 1),
  };
}

interface Probe {
  device: string;
  intervalMs: number;
  atClient: ProvisionalTracker;
  produced: ProvisionalTracker;
  onTopic: ProvisionalTracker;
  firstSent: Map<number, number>;
  finals: number[];
}

/**
 * From an event's ingestion to its 1 s window record at a socket.io client, through a running stack (`npm start`):
 * probe devices post a reading every `intervalsMs[i]`; for each 1 s window of the first probe, the time from posting
 * its first event to the arrival of the window's record (v2: one `aggregate` per device, resolution and window, every
 * metric; the device's 10 s and 60 s records are ignored). It includes by design the rest of the window and the
 * allowed lateness (2 s): a window closes when its device's watermark (max event time - L) passes its end. Also, per
 * reading of every probe, the time from ingestion's 202 to the first provisional record (metrics.live,
 * `"final": false`) that holds it: at the client, by the record's Kafka timestamp (when the processor produced it) and
 * when a consumer of the bench read it from the topic, which splits the path into processor, Kafka and dashboard.
 * Meanwhile `backgroundDevices` devices post at 1 Hz from a process of their own (fleet-load.js), to the same
 * ingestion.
 */
export async function benchE2e(opts: BenchE2eOptions = {}): Promise<BenchE2eResult> {
  const ingestion = opts.ingestionUrl ?? 'http://127.0.0.1:8080';
  const dashboard = opts.dashboardUrl ?? 'http://127.0.0.1:3000';
  const seconds = opts.seconds ?? 40;
  const stamp = Date.now().toString(36);
  const probes: Probe[] = (opts.intervalsMs ?? [100, 1000]).map((intervalMs) => ({
    device: `e2e-${stamp}-${intervalMs}ms`,
    intervalMs,
    atClient: new ProvisionalTracker(),
    produced: new ProvisionalTracker(),
    onTopic: new ProvisionalTracker(),
    firstSent: new Map(),
    finals: [],
  }));
  const byDevice = new Map(probes.map((p) => [p.device, p]));
  const socket = io(`${dashboard}/live`, { transports: ['websocket'], auth: { token: DevToken } });
  socket.on('connect', () => {
    for (const p of probes) socket.emit('subscribe', { deviceId: p.device });
  });
  socket.on('aggregate', (record: WindowRecord) => {
    const probe = byDevice.get(record.deviceId);
    if (!probe || record.resolution !== '1s') return;
    if (!record.final) return probe.atClient.seen(record.windowStart, record.metrics.temp?.count ?? 0, Date.now());
    if (record.metrics.temp === undefined) return;
    const t0 = probe.firstSent.get(record.windowStart);
    if (t0 === undefined) return;
    probe.finals.push(Date.now() - t0);
    probe.firstSent.delete(record.windowStart);
  });
  const kafka = new Kafka({
    clientId: 'bench-e2e',
    brokers: opts.brokers ?? kafkaBrokers(),
    logLevel: logLevel.NOTHING,
  });
  const consumer = kafka.consumer({ groupId: `bench-e2e-${stamp}`, maxWaitTimeInMs: 50 });
  await consumer.connect();
  await consumer.subscribe({ topic: Topics.live, fromBeginning: false });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const probe = byDevice.get(message.key?.toString() ?? '');
      if (!probe) return;
      const at = Date.now();
      const record = JSON.parse(message.value!.toString()) as WindowRecord;
      if (record.resolution !== '1s') return;
      const count = record.metrics.temp?.count ?? 0;
      probe.produced.seen(record.windowStart, count, Number(message.timestamp));
      probe.onTopic.seen(record.windowStart, count, at);
      await Promise.resolve();
    },
  });
  const backgroundDevices = opts.backgroundDevices ?? 10_000;
  const dir = mkdtempSync(join(tmpdir(), 'fleetpulse-e2e-'));
  let background: Promise<string> | undefined;
  try {
    // The consumer joined and at the topic's end before any probe reading.
    await sleep(3000);
    if (backgroundDevices > 0) {
      const config: FleetLoadConfig = {
        url: `${ingestion}/v1/telemetry`,
        token: 'dev-token',
        devices: backgroundDevices,
        prefix: `e2ebg${stamp}-`,
        phases: [{ hz: 1, seconds: seconds + 5 }],
        startAt: Date.now() + 500,
        seqBase: 0,
        samples: [],
      };
      writeFileSync(join(dir, 'load.json'), JSON.stringify(config));
      background = runScript(join(__dirname, 'fleet-load.js'), [join(dir, 'load.json')], {}, true);
      await sleep(3000); // the background at its rate before measuring
    }
    const started = Date.now();
    await Promise.all(probes.map((p) => runProbe(p, ingestion, started + seconds * 1000)));
    await sleep(8000); // the last windows close by idleness
    await background;
  } finally {
    socket.close();
    await consumer.disconnect().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  const results: ProbeResult[] = probes.map((p) => ({
    intervalMs: p.intervalMs,
    provisional: figures(p.atClient.latencies),
    provisionalProduced: figures(p.produced.latencies),
    provisionalOnTopic: figures(p.onTopic.latencies),
  }));
  const finals = figures(probes[0]!.finals);
  return {
    windows: finals.events,
    p50Ms: finals.p50Ms,
    p99Ms: finals.p99Ms,
    maxMs: finals.maxMs,
    provisional: results[0]!.provisional,
    probes: results,
    backgroundDevices,
  };
}

/** Posts one reading every `intervalMs` until `until`, each waiting for its 202. */
async function runProbe(p: Probe, ingestion: string, until: number): Promise<void> {
  const inWindow = new Map<number, number>();
  for (let seq = 0; Date.now() < until; seq++) {
    const ts = Date.now();
    const ws = Math.floor(ts / 1000) * 1000;
    if (!p.firstSent.has(ws)) p.firstSent.set(ws, ts);
    const res = await fetch(`${ingestion}/v1/telemetry`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer dev-token' },
      body: JSON.stringify({ deviceId: p.device, ts, metrics: { temp: 20 + Math.random() }, seq }),
    });
    if (res.status !== 202) throw new Error(`ingestion answered ${res.status}: is the stack running (npm start)?`);
    const n = (inWindow.get(ws) ?? 0) + 1;
    inWindow.set(ws, n);
    const answeredAt = Date.now();
    p.atClient.answered(ws, n, answeredAt);
    p.produced.answered(ws, n, answeredAt);
    p.onTopic.answered(ws, n, answeredAt);
    await sleep(Math.max(0, ts + p.intervalMs - Date.now()));
  }
}
