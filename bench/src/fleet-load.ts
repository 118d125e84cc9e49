/**
 * Realtime load for the fleet benchmark, run as its own process (`node bench/dist/fleet-load.js <config.json>`):
 * `devices` devices each take a reading (4 metrics) every 1/hz s of wall-clock time, phase after phase, stamped with
 * the time they are taken; readings go to ingestion as they are taken, `batch` per request (a gateway's batch: the
 * readings of consecutive devices), over `connections` keep-alive connections. A device's `seq` runs on across
 * phases (a retried or repeated seq inside an open window would be dropped as a retry). 503s and network errors are
 * retried with backoff (`maxRetries`); readings that wait more than `maxQueueSeconds` for a connection are dropped
 * and counted, so a saturated service shows as offered > sent rather than as a growing backlog. Prints a JSON
 * report on stdout.
 *
 * The simulator (`fleetpulse-simulator`) is not used here: each of its runs restarts `seq` at 0, which would collide
 * with the previous phase's seqs in windows still open at the change of rate, and it does not report per phase.
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { backoffDelay, sleep } from '@fleetpulse/runtime';
import { postTelemetry } from './ingest-post';
import { quantile } from './quantile';

export interface FleetLoadConfig {
  url: string;
  token: string;
  devices: number;
  /** Device ids are `${prefix}${index}`. */
  prefix: string;
  phases: { hz: number; seconds: number }[];
  /** Wall-clock time (epoch ms) the first phase starts. */
  startAt: number;
  /** First seq of every device. */
  seqBase: number;
  /** [500] readings per request. */
  batch?: number;
  /** [64] */
  connections?: number;
  /** [100] a partial request goes once its first reading is this old (ms). */
  lingerMs?: number;
  /** Device indexes whose last accepted reading's time is reported. */
  samples: number[];
  /** [10] */
  maxQueueSeconds?: number;
  /** [5] */
  maxRetries?: number;
}

export interface FleetLoadPhase {
  hz: number;
  seconds: number;
  /** Readings due in the phase (devices x hz x seconds). */
  offered: number;
  sent: number;
  accepted: number;
  /** Refused in a 202 (per-event errors) or given up after retries. */
  failed: number;
  /** Waited more than maxQueueSeconds for a connection: never sent. */
  dropped: number;
  requests: number;
  retries: number;
  status: Record<string, number>;
  latencyMs: { p50: number; p99: number; max: number };
  /** Wall-clock (epoch ms) of the phase's start and of its last answer. */
  startedAt: number;
  lastAnswerAt: number;
}

export interface FleetLoadReport {
  phases: FleetLoadPhase[];
  /** Epoch ms of the last answer: the end of sending. */
  endedAt: number;
  /** Cores this load process used on average, start to end. */
  loadCores: number;
  /** Last accepted reading's event time per sampled device index. */
  lastAccepted: Record<string, number>;
  seqNext: number;
}

interface Req {
  body: string;
  events: number;
  phase: number;
  firstTs: number;
  samples: [number, number][];
}

async function main(): Promise<void> {
  const c = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as FleetLoadConfig;
  const batch = c.batch ?? 500;
  const connections = c.connections ?? 64;
  const linger = c.lingerMs ?? 100;
  const maxRetries = c.maxRetries ?? 5;
  const target = new URL(c.url);
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const D = c.devices;
  const seq = new Float64Array(D).fill(c.seqBase);
  const sampled = new Set(c.samples);
  const lastAccepted: Record<string, number> = {};
  const latencies: number[][] = c.phases.map(() => []);
  const phases: FleetLoadPhase[] = c.phases.map((p) => ({
    hz: p.hz,
    seconds: p.seconds,
    offered: 0,
    sent: 0,
    accepted: 0,
    failed: 0,
    dropped: 0,
    requests: 0,
    retries: 0,
    status: {},
    latencyMs: { p50: 0, p99: 0, max: 0 },
    startedAt: 0,
    lastAnswerAt: 0,
  }));
  // Devices take their readings in a fixed order spread over the period: slot i is device (i * 7919) % D.
  const deviceAt = (i: number) => (i * 7919) % D;

  const queue: Req[] = [];
  const waiting: (() => void)[] = [];
  let generating = true;
  const maxWaitMs = (c.maxQueueSeconds ?? 10) * 1000;
  const push = (r: Req) => {
    queue.push(r);
    waiting.shift()?.();
  };

  let buf: string[] = [];
  let bufSamples: [number, number][] = [];
  let bufFirst = 0;
  let bufPhase = 0;
  const flush = () => {
    if (buf.length === 0) return;
    push({ body: `[${buf.join(',')}]`, events: buf.length, phase: bufPhase, firstTs: bufFirst, samples: bufSamples });
    buf = [];
    bufSamples = [];
  };

  const generator = (async () => {
    let phaseStart = c.startAt;
    for (let ph = 0; ph < c.phases.length; ph++) {
      const { hz, seconds } = c.phases[ph]!;
      const period = 1000 / hz;
      const end = phaseStart + seconds * 1000;
      phases[ph]!.startedAt = phaseStart;
      let k = 0;
      let i = 0;
      for (;;) {
        const now = Date.now();
        let t = phaseStart + k * period + (i * period) / D;
        while (t <= now && t < end) {
          const d = deviceAt(i);
          const ts = Math.floor(t);
          const s = seq[d]!++;
          if (buf.length === 0) {
            bufFirst = ts;
            bufPhase = ph;
          }
          buf.push(
            `{"deviceId":"${c.prefix}${d}","ts":${ts},"seq":${s},"metrics":{"temp":${(20 + (s % 50) / 10).toFixed(1)},"humidity":${40 + (d % 20)},"vib":${((d % 7) / 100).toFixed(2)},"volt":${230 + (s % 3)}}}`,
          );
          if (sampled.has(d)) bufSamples.push([d, ts]);
          phases[ph]!.offered++;
          if (buf.length === batch) flush();
          if (++i === D) {
            i = 0;
            k++;
          }
          t = phaseStart + k * period + (i * period) / D;
        }
        if (buf.length > 0 && now - bufFirst >= linger) flush();
        if (t >= end) break;
        await sleep(5);
      }
      flush(); // requests never straddle phases
      phaseStart = end;
    }
    generating = false;
    for (const w of waiting.splice(0)) w();
  })();

  let endedAt = 0;
  const sender = async () => {
    for (;;) {
      const r = queue.shift();
      if (!r) {
        if (!generating) return;
        await new Promise<void>((resolve) => waiting.push(resolve));
        continue;
      }
      const p = phases[r.phase]!;
      if (Date.now() - r.firstTs > maxWaitMs) {
        p.dropped += r.events;
        continue;
      }
      p.sent += r.events;
      for (let attempt = 0; ; attempt++) {
        const t0 = performance.now();
        const res = await postTelemetry(agent, target, c.token, 'application/json', r.body);
        latencies[r.phase]!.push(performance.now() - t0);
        p.requests++;
        p.status[res.code] = (p.status[res.code] ?? 0) + 1;
        if (res.code === 202) {
          p.accepted += res.accepted;
          p.failed += res.rejected;
          if (res.rejected === 0)
            for (const [d, ts] of r.samples) lastAccepted[d] = Math.max(lastAccepted[d] ?? -Infinity, ts);
          break;
        }
        if ((res.code !== 503 && res.code !== -1 && res.code < 500) || attempt === maxRetries) {
          p.failed += r.events;
          break;
        }
        p.retries++;
        await sleep(backoffDelay(attempt, { initialMs: 100, maxMs: 1000 }));
      }
      endedAt = Date.now();
      p.lastAnswerAt = endedAt;
    }
  };
  await Promise.all([generator, ...Array.from({ length: connections }, sender)]);
  agent.destroy();
  phases.forEach((p, i) => {
    const l = Float64Array.from(latencies[i]!).sort();
    p.latencyMs = { p50: quantile(l, 0.5, 0), p99: quantile(l, 0.99, 0), max: quantile(l, 1, 0) };
  });
  const cpu = process.cpuUsage();
  const loadCores = (cpu.user + cpu.system) / 1000 / Math.max(1, performance.now());
  const report: FleetLoadReport = { phases, endedAt, loadCores, lastAccepted, seqNext: Math.max(...seq) };
  process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
