import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import {
  connectionConfig,
  connectionEnv,
  DefaultPorts,
  DefaultStoredResolutions,
  envInt,
  parseStoredResolutions,
} from '@fleetpulse/contracts';
import { ServiceConfigError } from '@fleetpulse/runtime';
import { z } from 'zod';

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
  FLEETPULSE_DASHBOARD_UI_DIR: z.string().min(1).optional(),
  FLEETPULSE_HEALTH_TIMEOUT_MS: envInt(100, 60_000).default(2000),
  FLEETPULSE_STORED_RESOLUTIONS: z.string().default(DefaultStoredResolutions),
});

/** Parses and validates every variable at once; one ConfigError lists every bad one. Empty strings count as unset. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): DashboardConfig {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  const e = parsed.data;
  const problems: string[] = [];
  const connection = connectionConfig(e, problems);
  const storedResolutions = parseStoredResolutions(e.FLEETPULSE_STORED_RESOLUTIONS, problems);
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
    liveMaxAnomalyBacklog: e.FLEETPULSE_LIVE_MAX_ANOMALY_BACKLOG,
    uiDir: resolve(e.FLEETPULSE_DASHBOARD_UI_DIR ?? join(__dirname, '..', '..', 'dashboard-ui', 'dist')),
    healthTimeoutMs: e.FLEETPULSE_HEALTH_TIMEOUT_MS,
    storedResolutions,
  };
}

export const helpText = `fleetpulse dashboard-api: REST history from Cassandra, live socket.io streams of metrics.aggregates and
anomaly.scores, Prometheus metrics, and the browser dashboard (dashboard-ui/dist) at /.

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
  FLEETPULSE_LIVE_MAX_UPDATES_PER_SEC   per device and series, at most this many live updates a second (default 4)
  FLEETPULSE_LIVE_MAX_BACKLOG           skip a socket's live updates while more packets than this wait for it, so a
                                        slow client gets fresh values, not a growing queue (default 100)
  FLEETPULSE_LIVE_MAX_ANOMALY_BACKLOG   drop anomalies for a socket with more unsent packets than this (default 1000)
  FLEETPULSE_DASHBOARD_UI_DIR           built UI to serve at / (default dashboard-ui/dist)
  FLEETPULSE_HEALTH_TIMEOUT_MS          /readyz checks give up after this (default 2000)
  FLEETPULSE_STORED_RESOLUTIONS         resolutions the stream-processor stores in Cassandra, as set there (default
                                        ${DefaultStoredResolutions}); REST history of another one answers 400 (live only)
`;
