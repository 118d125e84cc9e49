/** Scoring configuration: every environment variable and flag checked once, at start-up; one error lists all. */
import { resolve } from 'node:path';
import { connectionConfig, connectionEnv, DefaultPorts, envInt, Topics } from '@fleetpulse/contracts';
import { ServiceConfigError, tracingConfig, type TracingConfig } from '@fleetpulse/runtime';
import { z } from 'zod';

export interface ScoringConfig {
  modelsDir: string;
  kafkaBrokers: string[];
  cassandraContactPoints: string[];
  cassandraDataCenter: string;
  keyspace: string;
  /** Write anomalous scores to Cassandra (fleetpulse.anomalies, anomalies_by_day). */
  storeAnomalies: boolean;
  /** A step's scores and offsets in one Kafka transaction (exactly once); off: scores, then the commit. */
  transactions: boolean;
  /** Final window records remembered per partition, so that one published again unchanged is not scored again. */
  repeatWindow: number;
  groupId: string;
  sourceTopic: string;
  scoresTopic: string;
  maxBatch: number;
  /** Variables that are set but no longer mean anything (see {@link RetiredEnv}); logged at start-up. */
  ignored: string[];
  /** Watcher: two checks this far apart must agree before a file is loaded, ms. */
  settleMs: number;
  rescanMs: number;
  intraOpThreads: number;
  recycleAfterLoads: number;
  recycleRssBytes: number;
  sessionTimeoutMs: number;
  /** A model file larger than this is refused before it is read, bytes. */
  maxModelBytes: number;
  /** This many session host crashes while running one model within {@link quarantineWindowMs} quarantine it. */
  quarantineCrashes: number;
  quarantineWindowMs: number;
  httpHost: string;
  httpPort: number;
  /** OpenTelemetry traces (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, FLEETPULSE_TRACE_SAMPLE_RATIO); off by default. */
  tracing: TracingConfig;
}

export class ConfigError extends ServiceConfigError {
  constructor(problems: string[]) {
    super('scoring', problems);
  }
}

/** The contract's default port of scoring's HTTP endpoint (kept under this name for importers). */
export const DefaultScoringPort = DefaultPorts.scoringHttp;

/**
 * Variables of contract v1 that mean nothing since window records (v2) carry every metric of a window: nothing waits
 * for features, so there is no wait to bound and no waiting window to check. Still accepted, whatever their value, so
 * an old deployment starts; the start-up log names each one set.
 */
export const RetiredEnv = {
  FLEETPULSE_SCORING_MAX_WAIT_MS: 'a window record holds every feature, nothing waits for them',
  FLEETPULSE_SCORING_TICK_MS: 'no window waits, so there is nothing to check on a timer',
} as const;

const envSchema = z.object({
  MODELS_DIR: z.string().min(1).default('models'),
  ...connectionEnv,
  FLEETPULSE_SCORING_STORE: z.enum(['on', 'off']).default('on'),
  FLEETPULSE_SCORING_TRANSACTIONS: z.enum(['on', 'off']).default('on'),
  FLEETPULSE_SCORING_REPEAT_WINDOW: envInt(0, 10_000_000).default(20_000),
  FLEETPULSE_SCORING_GROUP: z.string().min(1).default('fleetpulse-scoring'),
  FLEETPULSE_SCORING_SOURCE_TOPIC: z.string().min(1).default(Topics.aggregates),
  FLEETPULSE_SCORING_SCORES_TOPIC: z.string().min(1).default(Topics.scores),
  FLEETPULSE_SCORING_MAX_BATCH: envInt(1, 65_536).default(1024),
  FLEETPULSE_SCORING_SETTLE_MS: envInt(0, 60_000).default(100),
  FLEETPULSE_SCORING_RESCAN_MS: envInt(100, 3_600_000).default(5000),
  FLEETPULSE_SCORING_INTRA_OP_THREADS: envInt(1, 64).default(1),
  FLEETPULSE_SCORING_RECYCLE_AFTER_LOADS: envInt(1, 100_000).default(50),
  FLEETPULSE_SCORING_RECYCLE_RSS_MB: envInt(64, 1_048_576).default(1024),
  FLEETPULSE_SCORING_SESSION_TIMEOUT_MS: envInt(6000, 300_000).default(30_000),
  // onnxruntime and Node read a model in one buffer: nothing over 2 GiB can load anyway.
  FLEETPULSE_SCORING_MAX_MODEL_MB: envInt(1, 2047).default(256),
  FLEETPULSE_SCORING_QUARANTINE_CRASHES: envInt(1, 1000).default(3),
  FLEETPULSE_SCORING_QUARANTINE_WINDOW_MS: envInt(1000, 86_400_000).default(600_000),
  FLEETPULSE_SCORING_HOST: z.string().min(1).default('0.0.0.0'),
  FLEETPULSE_SCORING_PORT: envInt(0, 65535).default(DefaultScoringPort),
});

/** Flags override their variables: --models-dir DIR, --port N. */
function applyArgs(env: Record<string, string | undefined>, argv: readonly string[], problems: string[]) {
  const out = { ...env };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    if (flag === '--models-dir') out.MODELS_DIR = value();
    else if (flag === '--port') out.FLEETPULSE_SCORING_PORT = value();
    else problems.push(`unknown argument "${a}" (see --help)`);
  }
  return out;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = []): ScoringConfig {
  const problems: string[] = [];
  const merged = applyArgs(env, argv, problems);
  const parsed = envSchema.safeParse(merged);
  if (!parsed.success) {
    problems.push(...parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const connection = connectionConfig(e, problems);
  const tracing = tracingConfig(merged, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    modelsDir: resolve(e.MODELS_DIR),
    ...connection,
    storeAnomalies: e.FLEETPULSE_SCORING_STORE === 'on',
    transactions: e.FLEETPULSE_SCORING_TRANSACTIONS === 'on',
    repeatWindow: e.FLEETPULSE_SCORING_REPEAT_WINDOW,
    groupId: e.FLEETPULSE_SCORING_GROUP,
    sourceTopic: e.FLEETPULSE_SCORING_SOURCE_TOPIC,
    scoresTopic: e.FLEETPULSE_SCORING_SCORES_TOPIC,
    maxBatch: e.FLEETPULSE_SCORING_MAX_BATCH,
    ignored: Object.entries(RetiredEnv)
      .filter(([name]) => merged[name] !== undefined)
      .map(([name, why]) => `${name} is ignored (${why})`),
    settleMs: e.FLEETPULSE_SCORING_SETTLE_MS,
    rescanMs: e.FLEETPULSE_SCORING_RESCAN_MS,
    intraOpThreads: e.FLEETPULSE_SCORING_INTRA_OP_THREADS,
    recycleAfterLoads: e.FLEETPULSE_SCORING_RECYCLE_AFTER_LOADS,
    recycleRssBytes: e.FLEETPULSE_SCORING_RECYCLE_RSS_MB * 1024 * 1024,
    sessionTimeoutMs: e.FLEETPULSE_SCORING_SESSION_TIMEOUT_MS,
    maxModelBytes: e.FLEETPULSE_SCORING_MAX_MODEL_MB * 1024 * 1024,
    quarantineCrashes: e.FLEETPULSE_SCORING_QUARANTINE_CRASHES,
    quarantineWindowMs: e.FLEETPULSE_SCORING_QUARANTINE_WINDOW_MS,
    httpHost: e.FLEETPULSE_SCORING_HOST,
    httpPort: e.FLEETPULSE_SCORING_PORT,
    tracing,
  };
}

export const helpText = `fleetpulse scoring: scores the window records of metrics.aggregates with the ONNX models in
MODELS_DIR and publishes anomaly.scores (+ anomalous ones to Cassandra). Models are loaded, swapped and unloaded by dropping, replacing
(write, then rename into place) and deleting <name>.onnx files (+ optional <name>.json sidecars).

Usage: node scoring/dist/main.js [--models-dir DIR] [--port N] [--help]

Configuration is by environment variable (validated at start-up; flags override):
  MODELS_DIR                             model folder, relative to cwd (default models)
  FLEETPULSE_KAFKA_BROKERS               host:port,... (default 127.0.0.1:9092)
  FLEETPULSE_CASSANDRA_CONTACT_POINTS    host:port,... (default 127.0.0.1:9042)
  FLEETPULSE_CASSANDRA_DC                local data center (default datacenter1)
  FLEETPULSE_KEYSPACE                    (default fleetpulse)
  FLEETPULSE_SCORING_STORE               on|off: write anomalies to Cassandra (default on)
  FLEETPULSE_SCORING_TRANSACTIONS        on|off: a step's scores and its offsets in one Kafka transaction, so
                                         anomaly.scores holds each once for read_committed consumers (default on;
                                         off: at least once, for brokers without transactions)
  FLEETPULSE_SCORING_REPEAT_WINDOW       final window records remembered per partition (default 20000; 0: none):
                                         one published again unchanged (the stream processor re-reading after a
                                         refused flush, a crash or a rebalance) is not scored again
  FLEETPULSE_SCORING_GROUP               consumer group (default fleetpulse-scoring)
  FLEETPULSE_SCORING_SOURCE_TOPIC        (default metrics.aggregates)
  FLEETPULSE_SCORING_SCORES_TOPIC        (default anomaly.scores)
  FLEETPULSE_SCORING_MAX_BATCH           window records per onnxruntime run (default 1024)
  FLEETPULSE_SCORING_SETTLE_MS           a new file must look the same twice this far apart (default 100)
  FLEETPULSE_SCORING_RESCAN_MS           full folder rescan besides fs.watch (default 5000)
  FLEETPULSE_SCORING_INTRA_OP_THREADS    onnxruntime threads per session (default 1)
  FLEETPULSE_SCORING_RECYCLE_AFTER_LOADS restart the session host after this many loads (default 50)
  FLEETPULSE_SCORING_RECYCLE_RSS_MB      ...or once its RSS passes this (default 1024)
  FLEETPULSE_SCORING_SESSION_TIMEOUT_MS  Kafka group session timeout (default 30000)
  FLEETPULSE_SCORING_MAX_MODEL_MB        a larger model file is refused before it is read (default 256, max 2047)
  FLEETPULSE_SCORING_QUARANTINE_CRASHES  session host crashes while running one model that quarantine it (default 3)
  FLEETPULSE_SCORING_QUARANTINE_WINDOW_MS  ...counted within this window (default 600000)
  FLEETPULSE_SCORING_HOST / _PORT        /healthz /readyz /metrics /api/models (default 0.0.0.0:8082)
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT     OpenTelemetry traces to this OTLP/HTTP URL (or OTEL_EXPORTER_OTLP_ENDPOINT
                                         + /v1/traces); unset: no tracing (docs/contract.md, "Traces and stage delays")
  FLEETPULSE_TRACE_SAMPLE_RATIO          share of new traces sampled, 0-1 (default 1; a sampled parent always is)
Ignored since window records (v2), accepted so old deployments start: FLEETPULSE_SCORING_MAX_WAIT_MS,
FLEETPULSE_SCORING_TICK_MS.
`;
