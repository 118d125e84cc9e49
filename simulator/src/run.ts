/**
 * One simulator run as the CLI does it: fleet -> sender -> transport, a progress line once a second, the ground
 * truth and the summary at the end. SIGINT/SIGTERM stop the devices, which send what they still hold (held-back
 * readings, offline backlogs) at once; a second signal aborts (what is left counts as failed or unsent, never
 * silently dropped).
 */
import { writeFileSync } from 'node:fs';
import { fleetOptions, type SimulatorConfig } from './config';
import { createFleet, type Fleet, type FleetStats } from './fleet';
import { Sender, type SendStats } from './sender';
import { createTransport, telemetryUrl } from './transport';

export interface RunSummary {
  seed: number;
  mode: 'realtime' | 'historic';
  start: string;
  devices: number;
  targetRate: number;
  /** Events answered (accepted or rejected) per second of wall time. */
  achievedRate: number;
  elapsedMs: number;
  url: string;
  transport: string;
  format: string;
  /** Events the fleet produced (retry resends included) and what became of those handed to the sender. */
  events: { generated: number; sent: number; accepted: number; rejected: number; failed: number; unsent: number };
  requests: number;
  resends: number;
  errors: Record<string, number>;
  errorSamples: Record<string, string>;
  rejections: Record<string, number>;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  fleet: FleetStats;
  anomalies: number;
  truthFile?: string;
  fatal?: string;
  exitCode: number;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (n: number): string => (n >= 100 ? `${Math.round(n)}ms` : `${n.toFixed(1)}ms`);

/** `target` is undefined in historic mode, where sending is as fast as possible. */
export function progressLine(elapsedS: number, rate: number, target: number | undefined, s: SendStats): string {
  const errors = Object.entries(s.errors)
    .map(([k, v]) => `${k}=${fmt(v)}`)
    .join(' ');
  return (
    `[${elapsedS.toFixed(0)}s] ${fmt(rate)} ev/s (${target === undefined ? 'as fast as possible' : `target ${fmt(target)}`}) | sent ${fmt(s.events)} ` +
    `accepted ${fmt(s.accepted)} rejected ${fmt(s.rejected)} failed ${fmt(s.failed)} in-flight ${fmt(s.inFlight)} | ` +
    `p50 ${ms(s.recentLatency.quantile(0.5))} p99 ${ms(s.recentLatency.quantile(0.99))} | ` +
    `resends ${fmt(s.resends)}${errors ? ` | errors ${errors}` : ''}`
  );
}

export function exitCodeOf(s: SendStats): number {
  if (s.fatal !== undefined) return 3;
  return s.failed > 0 || s.rejected > 0 ? 1 : 0;
}

export function summarize(
  c: SimulatorConfig,
  fleet: Fleet,
  s: SendStats,
  elapsedMs: number,
  transport: string,
): RunSummary {
  const generated = fleet.stats.emitted + fleet.stats.retryEvents;
  return {
    seed: c.seed,
    mode: c.realtime ? 'realtime' : 'historic',
    start: new Date(c.start).toISOString(),
    devices: c.devices,
    targetRate: c.rate,
    achievedRate: elapsedMs > 0 ? Math.round(((s.accepted + s.rejected) * 1000) / elapsedMs) : 0,
    elapsedMs: Math.round(elapsedMs),
    url: telemetryUrl(c.url).toString(),
    transport,
    format: c.format,
    events: {
      generated,
      sent: s.events,
      accepted: s.accepted,
      rejected: s.rejected,
      failed: s.failed,
      unsent: generated - s.events,
    },
    requests: s.requests,
    resends: s.resends,
    errors: s.errors,
    errorSamples: s.errorSamples,
    rejections: s.rejections,
    latencyMs: {
      p50: round2(s.latency.quantile(0.5)),
      p90: round2(s.latency.quantile(0.9)),
      p99: round2(s.latency.quantile(0.99)),
      max: round2(s.latency.max),
    },
    fleet: fleet.stats,
    anomalies: fleet.stats.anomalies,
    ...(c.truthPath === undefined ? {} : { truthFile: c.truthPath }),
    ...(s.fatal === undefined ? {} : { fatal: s.fatal }),
    exitCode: exitCodeOf(s),
  };
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

function humanSummary(r: RunSummary): string {
  const e = r.events;
  const lines = [
    `fleetpulse-simulator: done in ${(r.elapsedMs / 1000).toFixed(1)}s, seed ${r.seed}, ${r.mode} from ${r.start}`,
    `  events: generated ${fmt(e.generated)}, sent ${fmt(e.sent)}, accepted ${fmt(e.accepted)}, rejected ${fmt(e.rejected)}, failed ${fmt(e.failed)}, unsent ${fmt(e.unsent)}`,
    `  rate: ${fmt(r.achievedRate)} ev/s answered (target ${fmt(r.targetRate)}); requests ${fmt(r.requests)}, resends ${fmt(r.resends)}; latency p50 ${ms(r.latencyMs.p50)} p99 ${ms(r.latencyMs.p99)} max ${ms(r.latencyMs.max)}`,
    `  fleet: dropped ${fmt(r.fleet.dropped)}, out-of-order ${fmt(r.fleet.outOfOrder)}, late ${fmt(r.fleet.late)}, offline periods ${fmt(r.fleet.offlinePeriods)} (backlog ${fmt(r.fleet.backlogEvents)}), retry batches ${fmt(r.fleet.retryBatches)}, anomalies ${fmt(r.anomalies)}`,
  ];
  for (const [kind, count] of Object.entries(r.errors))
    lines.push(`  error ${kind} x${fmt(count)}: ${r.errorSamples[kind] ?? ''}`);
  for (const [msg, count] of Object.entries(r.rejections)) lines.push(`  rejected x${fmt(count)}: ${msg}`);
  if (r.fatal !== undefined) lines.push(`  stopped: ${r.fatal}`);
  return lines.join('\n');
}

export interface RunIo {
  stderr: (line: string) => void;
  stdout: (text: string) => void;
  /** Registers the stop handler (first call: stop, second: abort). */
  onSignal?: (handler: () => void) => () => void;
}

export async function runSimulator(c: SimulatorConfig, io: RunIo): Promise<RunSummary> {
  const transport = createTransport({
    kind: c.transport,
    url: c.url,
    token: c.token,
    httpClient: c.httpClient,
    maxSockets: c.concurrency,
    timeoutMs: c.timeoutMs,
  });
  const fleet = createFleet(fleetOptions(c));
  const sender = new Sender({
    transport,
    format: c.format,
    concurrency: c.concurrency,
    realtime: c.realtime,
    maxRetries: c.maxRetries,
  });
  const say = (line: string): void => {
    if (!c.quiet) io.stderr(line);
  };
  say(
    `fleetpulse-simulator: ${fmt(c.devices)} devices, ${fmt(c.rate)} ev/s, seed ${c.seed}, ` +
      `${c.realtime ? 'realtime' : 'historic'} from ${new Date(c.start).toISOString()} -> ${telemetryUrl(c.url).toString()} ` +
      `(${transport.name}, ${c.format}, batch ${c.batch}, concurrency ${c.concurrency})`,
  );

  let signals = 0;
  const unhook = io.onSignal?.(() => {
    signals++;
    if (signals === 1) {
      io.stderr('fleetpulse-simulator: stopping; sending what the devices still hold (signal again to abort)');
      fleet.stop();
      sender.hurry();
    } else sender.abort();
  });

  const t0 = performance.now();
  let last = { t: t0, answered: 0 };
  const timer = setInterval(() => {
    const now = performance.now();
    const s = sender.stats;
    const answered = s.accepted + s.rejected;
    const rate = ((answered - last.answered) * 1000) / (now - last.t);
    last = { t: now, answered };
    say(progressLine((now - t0) / 1000, rate, c.realtime ? c.rate : undefined, s));
    s.recentLatency.reset();
  }, 1000);
  timer.unref();

  let stats: SendStats;
  try {
    stats = await sender.run(fleet.batches());
  } finally {
    clearInterval(timer);
    unhook?.();
    await transport.close();
  }
  const summary = summarize(c, fleet, stats, performance.now() - t0, transport.name);
  if (c.truthPath !== undefined) {
    const lines = fleet.groundTruth().map((t) => JSON.stringify(t));
    writeFileSync(c.truthPath, lines.length > 0 ? `${lines.join('\n')}\n` : '');
  }
  say(humanSummary(summary));
  if (summary.fatal !== undefined && c.quiet) io.stderr(`fleetpulse-simulator: ${summary.fatal}`);
  if (c.summaryJsonPath === '-') io.stdout(`${JSON.stringify(summary, null, 2)}\n`);
  else if (c.summaryJsonPath !== undefined) writeFileSync(c.summaryJsonPath, `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}
