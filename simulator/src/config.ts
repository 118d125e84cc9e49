/**
 * Command line and environment, parsed and validated in one place: every problem is collected and reported at once
 * (exit 2), and the result is the only configuration the rest of the simulator sees.
 */
import { parseArgs } from 'node:util';
import { DefaultPorts, DevToken } from '@fleetpulse/contracts';
import type { BodyFormat } from './encode';
import { ConfigError } from './errors';
import { FleetDefaults, validateFleetOptions, type FleetOptions } from './fleet-options';
import { AnomalyKinds, type AnomalyKind } from './fleet-types';
import { HttpClients, TransportKinds, type HttpClient, type TransportKind } from './transport';

export interface SimulatorConfig {
  devices: number;
  /** Events/s across the fleet (event time). */
  rate: number;
  batch: number;
  concurrency: number;
  durationMs?: number;
  events?: number;
  url: string;
  token: string;
  seed: number;
  /** Event time of the first reading, epoch ms. */
  start: number;
  /** true: pace sends against the wall clock; false (--from): as fast as possible. */
  realtime: boolean;
  format: BodyFormat;
  transport: TransportKind;
  httpClient: HttpClient;
  /** Realtime batches are closed after this much event time (ms). */
  lingerMs: number;
  maxRetries: number;
  timeoutMs: number;
  devicePrefix: string;
  outOfOrderRate: number;
  lateRate: number;
  retryRate: number;
  dropoutRate: number;
  metricDropoutRate: number;
  offlineRate: number;
  offlineDurationMs: number;
  anomalyRate: number;
  anomalyKinds: AnomalyKind[];
  truthPath?: string;
  summaryJsonPath?: string;
  quiet: boolean;
}

export type ParsedCommandLine = { help: true } | { help: false; config: SimulatorConfig };

interface OptionSpec {
  name: string;
  type: 'string' | 'boolean';
  arg?: string;
  /** As shown in --help. */
  default?: string;
  help: string;
}

const Options: OptionSpec[] = [
  { name: 'devices', type: 'string', arg: '<n>', default: '50', help: 'simulated devices, 1 to 100000' },
  {
    name: 'rate',
    type: 'string',
    arg: '<events/s>',
    default: '1 per device',
    help: 'target events per second across all devices (each device reads every devices/rate s)',
  },
  { name: 'batch', type: 'string', arg: '<n>', default: '500', help: 'most events per request, 1 to 10000' },
  {
    name: 'concurrency',
    type: 'string',
    arg: '<n>',
    default: '4',
    help: 'requests in flight (one per lane of devices)',
  },
  {
    name: 'duration',
    type: 'string',
    arg: '<time>',
    default: 'unbounded',
    help: 'stop after this much event time, e.g. 90s, 10m, 2h (a bare number is seconds)',
  },
  {
    name: 'events',
    type: 'string',
    arg: '<n>',
    default: 'unbounded',
    help: 'stop after this many readings have been sent (retry resends come on top)',
  },
  {
    name: 'url',
    type: 'string',
    arg: '<url>',
    default: `$FLEETPULSE_INGESTION_URL or http://127.0.0.1:${DefaultPorts.ingestionHttp}`,
    help: 'ingestion base URL (no path: /v1/telemetry is added)',
  },
  { name: 'token', type: 'string', arg: '<token>', default: `$FLEETPULSE_TOKEN or ${DevToken}`, help: 'bearer token' },
  {
    name: 'seed',
    type: 'string',
    arg: '<uint32>',
    default: 'random, printed',
    help: 'PRNG seed: same seed and start, same events',
  },
  {
    name: 'start',
    type: 'string',
    arg: '<ISO|ms>',
    default: 'now',
    help: 'event time of the first reading in realtime mode (a past start is caught up as fast as possible)',
  },
  {
    name: 'from',
    type: 'string',
    arg: '<ISO|ms>',
    help: 'historic mode: events from this time, sent as fast as possible (until now unless --duration/--events)',
  },
  {
    name: 'realtime',
    type: 'boolean',
    default: 'on',
    help: 'events stamped with wall-clock time, sent as they happen',
  },
  { name: 'format', type: 'string', arg: 'json|ndjson', default: 'json', help: 'request body: JSON array or NDJSON' },
  {
    name: 'transport',
    type: 'string',
    arg: TransportKinds.join('|'),
    default: 'http',
    help: 'http: POST /v1/telemetry; mqtt: publish to telemetry/<deviceId> at QoS 1 (FLEETPULSE_MQTT_URL, default the ingestion host on 1883)',
  },
  {
    name: 'http-client',
    type: 'string',
    arg: HttpClients.join('|'),
    default: 'node',
    help: 'node:http with keep-alive (faster), or the global fetch',
  },
  {
    name: 'linger',
    type: 'string',
    arg: '<time>',
    default: '250ms',
    help: 'realtime: longest event time a batch collects',
  },
  {
    name: 'max-retries',
    type: 'string',
    arg: '<n>',
    default: '20',
    help: 'resends of a batch (503, 5xx, network) before its events count as failed',
  },
  { name: 'timeout', type: 'string', arg: '<time>', default: '10s', help: 'request timeout (then retried)' },
  {
    name: 'device-prefix',
    type: 'string',
    arg: '<text>',
    default: FleetDefaults.devicePrefix,
    help: 'device ids are this and a zero-padded index',
  },
  {
    name: 'out-of-order-rate',
    type: 'string',
    arg: '<0..1>',
    default: String(FleetDefaults.outOfOrderRate),
    help: "per reading: sent after the device's next reading",
  },
  {
    name: 'late-rate',
    type: 'string',
    arg: '<0..1>',
    default: String(FleetDefaults.lateRate),
    help: 'per reading: sent 5-15 s of event time late',
  },
  {
    name: 'retry-rate',
    type: 'string',
    arg: '<0..1>',
    default: String(FleetDefaults.retryRate),
    help: 'per batch: sent twice, same seq values',
  },
  {
    name: 'dropout-rate',
    type: 'string',
    arg: '<0..1>',
    default: String(FleetDefaults.dropoutRate),
    help: 'per reading: lost (seq skips it)',
  },
  {
    name: 'metric-dropout-rate',
    type: 'string',
    arg: '<0..1>',
    default: String(FleetDefaults.metricDropoutRate),
    help: 'per reading: one metric missing',
  },
  {
    name: 'offline-rate',
    type: 'string',
    arg: '<0..1>',
    default: String(FleetDefaults.offlineRate),
    help: 'per reading: device goes offline, buffers, then uploads the backlog in order',
  },
  {
    name: 'offline-duration',
    type: 'string',
    arg: '<time>',
    default: '2m',
    help: 'mean offline period (each 0.5x-1.5x)',
  },
  {
    name: 'anomaly-rate',
    type: 'string',
    arg: '<0..1>',
    default: String(FleetDefaults.anomalyRate),
    help: 'per reading of a device with no anomaly running: an anomaly starts',
  },
  { name: 'anomaly-kinds', type: 'string', arg: '<list>', default: AnomalyKinds.join(','), help: 'kinds to inject' },
  {
    name: 'truth',
    type: 'string',
    arg: '<file>',
    help: 'write the injected anomalies as JSON lines (deviceId, kind, startTs, endTs, metrics)',
  },
  { name: 'summary-json', type: 'string', arg: '<file>', help: 'write the final summary as JSON (- for stdout)' },
  { name: 'quiet', type: 'boolean', help: 'no progress line and no summary on stderr' },
  { name: 'help', type: 'boolean', help: 'this text' },
];

export function helpText(): string {
  const rows = Options.map((o) => {
    const left = `  --${o.name}${o.arg ? ` ${o.arg}` : ''}`;
    const def = o.default === undefined ? '' : ` [default: ${o.default}]`;
    return `${left.padEnd(34)} ${o.help}${def}`;
  });
  return [
    'Usage: fleetpulse-simulator [options]',
    '',
    'Simulates a fleet of devices reporting temp (°C), humidity (%), vib (g RMS) and volt (V) to the ingestion',
    'HTTP API (POST /v1/telemetry), with dropouts, offline backlogs, out-of-order/late sends, retries and',
    'injected anomalies. Progress once a second on stderr. Rates are probabilities from 0 to 1.',
    '',
    'Options:',
    ...rows,
    '',
    'Times: 500ms, 30s, 10m, 2h, 1d; a bare number is seconds. Environment: FLEETPULSE_TOKEN, FLEETPULSE_INGESTION_URL.',
    'Exit: 0 every event accepted; 1 some events rejected or never accepted; 2 bad options; 3 stopped by a 401/415.',
    '',
  ].join('\n');
}

/** `500ms`, `30s`, `10m`, `2h`, `1d`, or a bare number of seconds, in ms; undefined when unreadable. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 's'] ?? 1000;
  return Number(m[1]) * unit;
}

/** An RFC 3339 / ISO time with an offset (or a date), or integer epoch ms; undefined when unreadable. */
export function parseTime(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/i.test(text)) return undefined;
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : t;
}

/** Parses argv (without node and script) and env. Throws a ConfigError listing every problem. */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv, now = Date.now()): ParsedCommandLine {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: Object.fromEntries(Options.map((o) => [o.name, { type: o.type }])),
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ConfigError([`${err instanceof Error ? err.message : String(err)} (see --help)`]);
  }
  if (values.help === true) return { help: true };

  const problems: string[] = [];
  const str = (name: string): string | undefined => {
    const v = values[name];
    return typeof v === 'string' ? v : undefined;
  };
  /** The option read by `read`, or `def` when absent; a value `read` refuses (undefined) is a problem, and gives `def`. */
  const checked = <T, D>(name: string, def: D, read: (v: string) => T | undefined, expected: string): T | D => {
    const v = str(name);
    if (v === undefined) return def;
    const x = read(v);
    if (x === undefined) {
      problems.push(`--${name}: expected ${expected}, got "${v}"`);
      return def;
    }
    return x;
  };
  /** A number (underscores allowed as separators) from `min` to `max` that `ok` accepts. */
  const numberIn = (min: number, max: number, ok: (n: number) => boolean) => (v: string) => {
    const n = Number(v.replace(/_/g, ''));
    return v.trim() !== '' && ok(n) && n >= min && n <= max ? n : undefined;
  };
  const int = <D extends number | undefined>(name: string, def: D, min: number, max: number) =>
    checked(name, def, numberIn(min, max, Number.isInteger), `an integer from ${min} to ${max}`);
  const num = (name: string, def: number, min: number, max: number) =>
    checked(name, def, numberIn(min, max, Number.isFinite), `a number from ${min} to ${max}`);
  const duration = <D extends number | undefined>(name: string, def: D, min: number) =>
    checked(
      name,
      def,
      (v) => {
        const ms = parseDuration(v);
        return ms !== undefined && ms >= min ? ms : undefined;
      },
      `a time such as 500ms, 30s, 10m, 2h (at least ${min} ms)`,
    );
  const oneOf = <T extends string>(name: string, allowed: readonly T[], def: T): T =>
    checked(name, def, (v) => allowed.find((a) => a === v), `one of ${allowed.join(', ')}`);
  const time = (name: string) =>
    checked(name, undefined, parseTime, 'an ISO time with an offset (2025-11-22T09:00:00Z) or epoch ms');

  const devices = int('devices', 50, 1, 100_000);
  const rate = num('rate', devices, 0, 10_000_000);
  if (!(rate > 0)) problems.push(`--rate: expected a positive number of events/s, got "${str('rate') ?? ''}"`);
  const from = time('from');
  const startOpt = time('start');
  if (from !== undefined && values.realtime === true)
    problems.push('--from (historic mode) and --realtime exclude each other');
  if (from !== undefined && startOpt !== undefined)
    problems.push('--from and --start exclude each other: --from sets the start in historic mode');
  if (from !== undefined && from > now)
    problems.push('--from is in the future: historic mode needs a past time (use --start for realtime)');
  const realtime = from === undefined;
  let durationMs = duration('duration', undefined, 1);
  const events = int('events', undefined, 1, Number.MAX_SAFE_INTEGER);
  const start = from ?? startOpt ?? now;
  // Historic mode without a limit catches up to the present and stops.
  if (!realtime && durationMs === undefined && events === undefined) durationMs = Math.max(1, now - start);

  const kindsText = str('anomaly-kinds');
  let anomalyKinds: AnomalyKind[] = [...AnomalyKinds];
  if (kindsText !== undefined) {
    const list = kindsText
      .split(',')
      .map((k) => k.trim())
      .filter((k) => k !== '');
    const unknown = list.filter((k) => !(AnomalyKinds as readonly string[]).includes(k));
    if (unknown.length > 0)
      problems.push(`--anomaly-kinds: unknown ${unknown.join(', ')} (known: ${AnomalyKinds.join(', ')})`);
    else anomalyKinds = list as AnomalyKind[];
  }

  let seed = int('seed', undefined, 0, 0xffffffff);
  seed ??= Math.floor(Math.random() * 0x100000000);

  const url = str('url') ?? env.FLEETPULSE_INGESTION_URL ?? `http://127.0.0.1:${DefaultPorts.ingestionHttp}`;
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      problems.push(`--url: expected http:// or https://, got "${url}"`);
  } catch {
    problems.push(`--url: not a URL: "${url}"`);
  }
  const token = str('token') ?? env.FLEETPULSE_TOKEN ?? DevToken;
  if (token === '' || /[\s]/.test(token))
    problems.push('--token / FLEETPULSE_TOKEN: must be non-empty and without spaces');

  const config: SimulatorConfig = {
    devices,
    rate,
    batch: int('batch', 500, 1, 10_000),
    concurrency: int('concurrency', 4, 1, 1024),
    ...(durationMs === undefined ? {} : { durationMs }),
    ...(events === undefined ? {} : { events }),
    url,
    token,
    seed,
    start,
    realtime,
    format: oneOf('format', ['json', 'ndjson'] as const, 'json'),
    transport: oneOf('transport', TransportKinds, 'http'),
    httpClient: oneOf('http-client', HttpClients, 'node'),
    lingerMs: duration('linger', 250, 1),
    maxRetries: int('max-retries', 20, 0, 1_000_000),
    timeoutMs: duration('timeout', 10_000, 1),
    devicePrefix: str('device-prefix') ?? FleetDefaults.devicePrefix,
    outOfOrderRate: num('out-of-order-rate', FleetDefaults.outOfOrderRate, 0, 1),
    lateRate: num('late-rate', FleetDefaults.lateRate, 0, 1),
    retryRate: num('retry-rate', FleetDefaults.retryRate, 0, 1),
    dropoutRate: num('dropout-rate', FleetDefaults.dropoutRate, 0, 1),
    metricDropoutRate: num('metric-dropout-rate', FleetDefaults.metricDropoutRate, 0, 1),
    offlineRate: num('offline-rate', FleetDefaults.offlineRate, 0, 1),
    offlineDurationMs: duration('offline-duration', FleetDefaults.offlineDurationMs, 1),
    anomalyRate: num('anomaly-rate', FleetDefaults.anomalyRate, 0, 1),
    anomalyKinds,
    ...(str('truth') === undefined ? {} : { truthPath: str('truth')! }),
    ...(str('summary-json') === undefined ? {} : { summaryJsonPath: str('summary-json')! }),
    quiet: values.quiet === true,
  };
  // The fleet's own checks (per-device rate, the sum of rates, the device prefix), phrased for the command line.
  if (problems.length === 0) for (const p of validateFleetOptions(fleetOptions(config))) problems.push(p);
  if (problems.length > 0) throw new ConfigError(problems);
  return { help: false, config };
}

/** The fleet this configuration describes: lanes match concurrency, so each lane has one request in flight. */
export function fleetOptions(c: SimulatorConfig): FleetOptions {
  return {
    devices: c.devices,
    seed: c.seed,
    start: c.start,
    rate: c.rate,
    batchSize: c.batch,
    lanes: c.concurrency,
    ...(c.realtime ? { maxBatchSpanMs: c.lingerMs } : {}),
    ...(c.events === undefined ? {} : { maxEvents: c.events }),
    ...(c.durationMs === undefined ? {} : { durationMs: c.durationMs }),
    devicePrefix: c.devicePrefix,
    outOfOrderRate: c.outOfOrderRate,
    lateRate: c.lateRate,
    retryRate: c.retryRate,
    dropoutRate: c.dropoutRate,
    metricDropoutRate: c.metricDropoutRate,
    offlineRate: c.offlineRate,
    offlineDurationMs: c.offlineDurationMs,
    anomalyRate: c.anomalyRate,
    anomalyKinds: c.anomalyKinds,
  };
}
