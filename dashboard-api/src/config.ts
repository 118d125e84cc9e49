import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import {
  connectionConfig,
  connectionEnv,
  DefaultPorts,
  DefaultStoredResolutions,
  DevToken,
  envInt,
  envList,
  parseStoredResolutions,
  resolutionMs,
} from '@fleetpulse/contracts';
import { ServiceConfigError, tracingConfig, type TracingConfig } from '@fleetpulse/runtime';
import { z } from 'zod';
import { grantsOf, type Grant } from './access';

export interface DashboardConfig {
  host: string;
  port: number;
  kafkaBrokers: string[];
  /**
   * Consumer group of this instance. Unique per process (`fleetpulse-dashboard-<hostname>-<pid>` by default) so
   * every API instance sees every record (fan-out, not load sharing); it starts at the latest offset and commits
   * nothing: the live streams carry live data only, history comes from Cassandra.
   */
  groupId: string;
  cassandraContactPoints: string[];
  cassandraDataCenter: string;
  keyspace: string;
  scoringUrl: string;
  /** Path of the scoring service's model status. */
  scoringModelsPath: string;
  /** Per device and series, at most this many `aggregate` emits per second to a socket. */
  liveMaxUpdatesPerSec: number;
  /** Per socket, live aggregate flushes skip it while its unsent packet queue is longer than this. */
  liveMaxBacklog: number;
  /**
   * Per socket, live aggregate flushes skip it, and anomalies are dropped, while more than this many bytes wait for
   * it (engine.io's queue and what its WebSocket has not written out).
   */
  liveMaxBacklogBytes: number;
  /** Per socket, anomalies are dropped (and counted) while its unsent packet queue is longer than this. */
  liveMaxAnomalyBacklog: number;
  /** Built UI served at `/`; absent folder: `/` explains how to build it. */
  uiDir: string;
  /** Health checks give up after this, ms. */
  healthTimeoutMs: number;
  /**
   * Resolutions the stream-processor writes to Cassandra (FLEETPULSE_STORED_RESOLUTIONS, as the processor reads it):
   * REST history of any other resolution answers 400 naming these. Live streams carry every resolution.
   */
  storedResolutions: string[];
  /**
   * Every resolution a live subscription may name: the processor's FLEETPULSE_RESOLUTIONS (as set there) and the
   * stored ones. Any other `resolution` of a subscription is refused with the list.
   */
  liveResolutions: string[];
  /** `FLEETPULSE_ENV=development`: the dev token is an admin for every device. */
  development: boolean;
  /** Dashboard tokens (both roles; in development the dev token too), by digest: the tokens themselves are not kept. */
  grants: Grant[];
  /** Origins other than the dashboard's own whose pages may call it (CORS, the socket.io handshake); none by default. */
  corsOrigins: string[];
  /** A session lasts this long after login, ms (absolute). */
  sessionTtlMs: number;
  /** Sessions at once; a login past it answers 503 until one ends or expires. */
  maxSessions: number;
  /** Sessions of one token at once; a login past it ends that token's oldest session. */
  maxSessionsPerToken: number;
  /**
   * FLEETPULSE_DASHBOARD_SESSION_SECRET: signs session cookies, so sessions outlive a restart of the API (absent:
   * sessions are in memory only, and a restart ends them).
   */
  sessionSecret: Buffer | undefined;
  /** Session cookie with `Secure` (set it when browsers reach the dashboard over HTTPS). */
  cookieSecure: boolean;
  /** Subscriptions (rooms) one socket may hold; past it `subscribe` is refused with the reason. */
  liveMaxSubscriptions: number;
  /** Sockets on `/live` per token (its sessions' sockets count toward it); past it the connection is refused. */
  liveMaxSocketsPerToken: number;
  /**
   * Failed logins (a wrong token or session) per source address: the bucket refills at `perMinute` (0: no limit) up
   * to `burst`; at most `maxAddresses` addresses are tracked. Past it every request of the address is 429.
   */
  loginFailures: { perMinute: number; burst: number; maxAddresses: number };
  /** OpenTelemetry traces (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, FLEETPULSE_TRACE_SAMPLE_RATIO); off by default. */
  tracing: TracingConfig;
}

export class ConfigError extends ServiceConfigError {
  constructor(problems: string[]) {
    super('dashboard-api', problems);
  }
}

const envSchema = z.object({
  FLEETPULSE_DASHBOARD_HOST: z.string().min(1).default('0.0.0.0'),
  FLEETPULSE_DASHBOARD_PORT: envInt(0, 65535).default(DefaultPorts.dashboard),
  ...connectionEnv,
  FLEETPULSE_DASHBOARD_GROUP: z.string().min(1).optional(),
  FLEETPULSE_SCORING_URL: z.url('must be a URL such as http://127.0.0.1:8082').default('http://127.0.0.1:8082'),
  FLEETPULSE_SCORING_MODELS_PATH: z.string().startsWith('/', 'must start with /').default('/api/models'),
  FLEETPULSE_LIVE_MAX_UPDATES_PER_SEC: envInt(1, 100).default(4),
  FLEETPULSE_LIVE_MAX_BACKLOG: envInt(1, 1_000_000).default(100),
  FLEETPULSE_LIVE_MAX_ANOMALY_BACKLOG: envInt(1, 1_000_000).default(1000),
  FLEETPULSE_LIVE_MAX_BACKLOG_BYTES: envInt(65_536, 1 << 30).default(16 * 1024 * 1024),
  FLEETPULSE_DASHBOARD_UI_DIR: z.string().min(1).optional(),
  FLEETPULSE_HEALTH_TIMEOUT_MS: envInt(100, 60_000).default(2000),
  FLEETPULSE_STORED_RESOLUTIONS: z.string().default(DefaultStoredResolutions),
  FLEETPULSE_RESOLUTIONS: z.string().default('1s,10s,60s'),
  FLEETPULSE_ENV: z.enum(['development', 'production']).default('production'),
  FLEETPULSE_DASHBOARD_VIEWER_TOKENS: z.string().default(''),
  FLEETPULSE_DASHBOARD_ADMIN_TOKENS: z.string().default(''),
  FLEETPULSE_DASHBOARD_CORS_ORIGINS: z.string().default(''),
  FLEETPULSE_DASHBOARD_SESSION_TTL_SECONDS: envInt(60, 30 * 86_400).default(12 * 3600),
  FLEETPULSE_DASHBOARD_MAX_SESSIONS: envInt(1, 1_000_000).default(10_000),
  FLEETPULSE_DASHBOARD_MAX_SESSIONS_PER_TOKEN: envInt(1, 1_000_000).default(1000),
  FLEETPULSE_DASHBOARD_SESSION_SECRET: z.string().min(32, 'must be at least 32 characters (random)').optional(),
  FLEETPULSE_DASHBOARD_COOKIE_SECURE: z.enum(['true', 'false'], 'must be true or false').default('false'),
  FLEETPULSE_LIVE_MAX_SUBSCRIPTIONS: envInt(1, 10_000).default(100),
  FLEETPULSE_LIVE_MAX_SOCKETS_PER_TOKEN: envInt(1, 1_000_000).default(500),
  // The names and defaults of ingestion's failed-login limit: one vocabulary for every door.
  FLEETPULSE_LOGIN_FAILURES_PER_MINUTE: envInt(0, 1_000_000).default(60),
  FLEETPULSE_LOGIN_FAILURE_BURST: envInt(1, 1_000_000).default(20),
  FLEETPULSE_LOGIN_MAX_ADDRESSES: envInt(1, 10_000_000).default(100_000),
});

/** `https://ops.example.com,...`: each an origin as browsers send it (scheme, host, port; no path, no `*`). */
function parseOrigins(value: string, problems: string[]): string[] {
  const out: string[] = [];
  for (const item of envList(value)) {
    let origin: string | undefined;
    try {
      origin = new URL(item).origin;
    } catch {
      origin = undefined;
    }
    if (origin !== item || !/^https?:/.test(item))
      problems.push(`FLEETPULSE_DASHBOARD_CORS_ORIGINS: "${item}" is not an origin such as https://ops.example.com`);
    else if (!out.includes(item)) out.push(item);
  }
  return out;
}

/** The processor's resolutions (at most 8, each `<seconds>s`) and the stored ones: what live subscriptions may name. */
function parseLiveResolutions(value: string, stored: readonly string[], problems: string[]): string[] {
  const labels = envList(value);
  if (labels.length > 8) problems.push(`FLEETPULSE_RESOLUTIONS: at most 8, got ${labels.length}`);
  const out: string[] = [];
  for (const label of [...labels, ...stored]) {
    try {
      resolutionMs(label);
    } catch (e) {
      problems.push(`FLEETPULSE_RESOLUTIONS: ${(e as Error).message}`);
      continue;
    }
    if (!out.includes(label)) out.push(label);
  }
  return out;
}

/** Parses and validates every variable at once; one ConfigError lists every bad one. Empty strings count as unset. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): DashboardConfig {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  const e = parsed.data;
  const problems: string[] = [];
  const connection = connectionConfig(e, problems);
  const storedResolutions = parseStoredResolutions(e.FLEETPULSE_STORED_RESOLUTIONS, problems);
  const liveResolutions = parseLiveResolutions(e.FLEETPULSE_RESOLUTIONS, storedResolutions, problems);
  const development = e.FLEETPULSE_ENV === 'development';
  const grants = grantsOf(
    { viewer: e.FLEETPULSE_DASHBOARD_VIEWER_TOKENS, admin: e.FLEETPULSE_DASHBOARD_ADMIN_TOKENS },
    development,
    problems,
  );
  if (grants.length === 0)
    problems.push(
      `FLEETPULSE_DASHBOARD_VIEWER_TOKENS / _ADMIN_TOKENS: no dashboard token configured; set FLEETPULSE_DASHBOARD_ADMIN_TOKENS=<token>[=<device glob>],... (or FLEETPULSE_ENV=development for ${DevToken})`,
    );
  const corsOrigins = parseOrigins(e.FLEETPULSE_DASHBOARD_CORS_ORIGINS, problems);
  const tracing = tracingConfig(cleaned, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    host: e.FLEETPULSE_DASHBOARD_HOST,
    port: e.FLEETPULSE_DASHBOARD_PORT,
    ...connection,
    groupId: e.FLEETPULSE_DASHBOARD_GROUP ?? `fleetpulse-dashboard-${hostname()}-${process.pid}`,
    scoringUrl: e.FLEETPULSE_SCORING_URL.replace(/\/+$/, ''),
    scoringModelsPath: e.FLEETPULSE_SCORING_MODELS_PATH,
    liveMaxUpdatesPerSec: e.FLEETPULSE_LIVE_MAX_UPDATES_PER_SEC,
    liveMaxBacklog: e.FLEETPULSE_LIVE_MAX_BACKLOG,
    liveMaxBacklogBytes: e.FLEETPULSE_LIVE_MAX_BACKLOG_BYTES,
    liveMaxAnomalyBacklog: e.FLEETPULSE_LIVE_MAX_ANOMALY_BACKLOG,
    uiDir: resolve(e.FLEETPULSE_DASHBOARD_UI_DIR ?? join(__dirname, '..', '..', 'dashboard-ui', 'dist')),
    healthTimeoutMs: e.FLEETPULSE_HEALTH_TIMEOUT_MS,
    storedResolutions,
    liveResolutions,
    development,
    grants,
    corsOrigins,
    sessionTtlMs: e.FLEETPULSE_DASHBOARD_SESSION_TTL_SECONDS * 1000,
    maxSessions: e.FLEETPULSE_DASHBOARD_MAX_SESSIONS,
    maxSessionsPerToken: e.FLEETPULSE_DASHBOARD_MAX_SESSIONS_PER_TOKEN,
    sessionSecret:
      e.FLEETPULSE_DASHBOARD_SESSION_SECRET === undefined
        ? undefined
        : Buffer.from(e.FLEETPULSE_DASHBOARD_SESSION_SECRET, 'utf8'),
    cookieSecure: e.FLEETPULSE_DASHBOARD_COOKIE_SECURE === 'true',
    liveMaxSubscriptions: e.FLEETPULSE_LIVE_MAX_SUBSCRIPTIONS,
    liveMaxSocketsPerToken: e.FLEETPULSE_LIVE_MAX_SOCKETS_PER_TOKEN,
    loginFailures: {
      perMinute: e.FLEETPULSE_LOGIN_FAILURES_PER_MINUTE,
      burst: e.FLEETPULSE_LOGIN_FAILURE_BURST,
      maxAddresses: e.FLEETPULSE_LOGIN_MAX_ADDRESSES,
    },
    tracing,
  };
}

export const helpText = `fleetpulse dashboard-api: REST history from Cassandra, alert rules and history, live socket.io
streams of metrics.aggregates, metrics.live (provisional records, to a device's own subscribers), anomaly.scores and
alerts (each transition once), Prometheus metrics, and the browser dashboard (dashboard-ui/dist) at /.

Usage: node dashboard-api/dist/main.js [--help]

Configuration is by environment variable (validated at start-up, all at once):
  FLEETPULSE_DASHBOARD_HOST / _PORT     listen address (default 0.0.0.0:3000)
  FLEETPULSE_KAFKA_BROKERS              host:port,... (default 127.0.0.1:9092)
  FLEETPULSE_DASHBOARD_GROUP            Kafka consumer group (default fleetpulse-dashboard-<hostname>-<pid>: one
                                        group per instance, so every instance sees every record; starts at the
                                        latest offset and commits nothing: live data only)
  FLEETPULSE_CASSANDRA_CONTACT_POINTS   host:port,... (default 127.0.0.1:9042)
  FLEETPULSE_CASSANDRA_DC               local data center (default datacenter1)
  FLEETPULSE_KEYSPACE                   (default fleetpulse)
  FLEETPULSE_SCORING_URL                scoring service for GET /api/models (default http://127.0.0.1:8082)
  FLEETPULSE_SCORING_MODELS_PATH        its model status path (default /api/models)
  FLEETPULSE_LIVE_MAX_UPDATES_PER_SEC   per device, at most this many live updates a socket gets in any second,
                                        final and provisional (metrics.live) records alike (default 4); a device
                                        within it is sent at once
  FLEETPULSE_LIVE_MAX_BACKLOG           skip a socket's live updates while more packets than this wait for it, so a
                                        slow client gets fresh values, not a growing queue (default 100)
  FLEETPULSE_LIVE_MAX_ANOMALY_BACKLOG   drop anomalies and alerts for a socket with more unsent packets than this
                                        (default 1000)
  FLEETPULSE_LIVE_MAX_BACKLOG_BYTES     the same two, in bytes waiting for a socket (its queue and what its WebSocket
                                        has not written out): bounds what a client that stops reading pins
                                        (default 16777216: 16 MiB)
  FLEETPULSE_DASHBOARD_UI_DIR           built UI to serve at / (default dashboard-ui/dist)
  FLEETPULSE_HEALTH_TIMEOUT_MS          /readyz checks give up after this (default 2000)
  FLEETPULSE_STORED_RESOLUTIONS         resolutions the stream-processor stores in Cassandra, as set there (default
                                        ${DefaultStoredResolutions}); REST history of another one answers 400 (live only)
  FLEETPULSE_RESOLUTIONS                resolutions the stream-processor computes, as set there (default 1s,10s,60s):
                                        with the stored ones, what a live subscription may name

Access (every /api route and /live need a token or the session cookie of POST /api/login; /healthz, /readyz,
/metrics and the UI's files are open):
  FLEETPULSE_DASHBOARD_VIEWER_TOKENS    token[=device-glob],... read-only tokens, e.g. "s3cret-viewer-1=acme-*";
                                        a token without a glob sees every device; listed again, it adds a glob
  FLEETPULSE_DASHBOARD_ADMIN_TOKENS     the same for admin tokens (they may also change state: alert rules)
                                        (at least one token is required unless FLEETPULSE_ENV=development)
  FLEETPULSE_ENV                        development: ${DevToken} is an admin for every device (default production)
  FLEETPULSE_DASHBOARD_CORS_ORIGINS     origins whose pages may call the API and /live, e.g.
                                        https://ops.example.com (default none: same origin only)
  FLEETPULSE_DASHBOARD_SESSION_TTL_SECONDS   a session ends this long after login (default 43200: 12 h)
  FLEETPULSE_DASHBOARD_MAX_SESSIONS     sessions at once; past it a login answers 503 (default 10000)
  FLEETPULSE_DASHBOARD_MAX_SESSIONS_PER_TOKEN   sessions of one token; past it its oldest ends (default 1000)
  FLEETPULSE_DASHBOARD_SESSION_SECRET   at least 32 random characters: session cookies are signed with it, so
                                        signed-in browsers stay signed in over a restart of the API (default none:
                                        sessions are in memory, a restart ends them; a restart forgets sign-outs,
                                        whose browsers dropped the cookie)
  FLEETPULSE_DASHBOARD_COOKIE_SECURE    true: the session cookie is Secure (HTTPS only) (default false)
  FLEETPULSE_LIVE_MAX_SUBSCRIPTIONS     subscriptions per socket; past it subscribe is refused (default 100)
  FLEETPULSE_LIVE_MAX_SOCKETS_PER_TOKEN /live sockets per token; past it a connection is refused (default 500)
  FLEETPULSE_LOGIN_FAILURES_PER_MINUTE  failed logins (wrong token or session) an address may make, after a burst
                                        of FLEETPULSE_LOGIN_FAILURE_BURST (default 60 a minute after 20; 0: off);
                                        past it every request of the address answers 429 + Retry-After
  FLEETPULSE_LOGIN_MAX_ADDRESSES        addresses tracked for it (default 100000; past it refilled ones are
                                        forgotten first, then the oldest)
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT    OpenTelemetry traces to this OTLP/HTTP URL (or OTEL_EXPORTER_OTLP_ENDPOINT
                                        + /v1/traces); unset: no tracing (docs/contract.md, "Traces and stage delays")
  FLEETPULSE_TRACE_SAMPLE_RATIO         share of new traces sampled, 0-1 (default 1; a sampled parent always is)
`;
