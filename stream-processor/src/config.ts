import {
  connectionConfig,
  connectionEnv,
  DefaultPorts,
  DefaultStoredResolutions,
  envInt,
  envList,
  parseStoredResolutions,
  parseTtl,
} from '@fleetpulse/contracts';
import { ServiceConfigError, tracingConfig, type TracingConfig } from '@fleetpulse/runtime';
import { z } from 'zod';
import { resolveConfig, type ResolvedConfig } from './core';

export interface ProcessorConfig {
  kafkaBrokers: string[];
  cassandraContactPoints: string[];
  cassandraDataCenter: string;
  keyspace: string;
  groupId: string;
  /** Topic to aggregate; telemetry.raw unless a test or a replay says otherwise. */
  sourceTopic: string;
  aggregator: ResolvedConfig;
  /** TTL of rows per resolution label, seconds (0: forever). */
  ttlSeconds: Record<string, number>;
  /** Resolutions written to Cassandra; the others are live only (metrics.aggregates and the dashboard). */
  storedResolutions: string[];
  writeConcurrency: number;
  /**
   * Most bytes one fetch takes from a partition. Larger fetches close more windows of a Cassandra partition per flush
   * (fuller single-partition batches, so more rows/s) and cost memory: about 130 MB of peak RSS per MiB at 10,000
   * devices (bench/README.md).
   */
  fetchMaxBytesPerPartition: number;
  /**
   * Provisional snapshots on metrics.live: taken every `liveIntervalMs` (0: none), a device's at most once per
   * `liveMinGapMs`, at most `liveMaxPerSec` a second in all.
   */
  liveIntervalMs: number;
  liveMinGapMs: number;
  liveMaxPerSec: number;
  /**
   * Batches are folded as they arrive, while the previous flush is still being written (so live snapshots never wait
   * for Cassandra); once this many closed windows and late or rejected events wait for a flush, a batch waits for the
   * running flush before the next is read. Bounds the memory held by outputs not yet written.
   */
  maxPendingOutputs: number;
  /** How often quiet partitions advance processing time by the wall clock, ms. */
  tickMs: number;
  /** Wall clock minus this is the processing time of a quiet partition, ms. */
  idleSafetyMarginMs: number;
  /** Checkpoint and commit at most this often, ms (rows are written on every batch). */
  commitIntervalMs: number;
  /** Kafka group session timeout: how long a dead instance holds its partitions, ms. */
  sessionTimeoutMs: number;
  /** How long a shutdown waits for the final flush (Cassandra or Kafka down), ms. */
  shutdownGraceMs: number;
  httpHost: string;
  httpPort: number;
  /** OpenTelemetry traces (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, FLEETPULSE_TRACE_SAMPLE_RATIO); off by default. */
  tracing: TracingConfig;
}

export class ConfigError extends ServiceConfigError {
  constructor(problems: string[]) {
    super('stream-processor', problems);
  }
}

const envSchema = z.object({
  ...connectionEnv,
  FLEETPULSE_PROCESSOR_GROUP: z.string().min(1).default('fleetpulse-stream-processor'),
  FLEETPULSE_PROCESSOR_TOPIC: z.string().min(1).default('telemetry.raw'),
  FLEETPULSE_RESOLUTIONS: z.string().default('1s,10s,60s'),
  FLEETPULSE_ALLOWED_LATENESS_MS: envInt(0, 86_400_000).default(2000),
  FLEETPULSE_IDLE_TIMEOUT_MS: envInt(1, 86_400_000).default(5000),
  FLEETPULSE_IDLE_SAFETY_MARGIN_MS: envInt(0, 600_000).default(1000),
  FLEETPULSE_TTL: z.string().default(''),
  FLEETPULSE_STORED_RESOLUTIONS: z.string().default(DefaultStoredResolutions),
  FLEETPULSE_PROCESSOR_MAX_METRICS_PER_DEVICE: envInt(1, 4096).default(64),
  FLEETPULSE_PROCESSOR_MAX_QUIET_DEVICES: envInt(0, 100_000_000).default(50_000),
  FLEETPULSE_CASSANDRA_WRITE_CONCURRENCY: envInt(1, 4096).default(128),
  FLEETPULSE_PROCESSOR_FETCH_BYTES: envInt(64 * 1024, 64 * 1024 * 1024).default(2 * 1024 * 1024),
  FLEETPULSE_PROCESSOR_TICK_MS: envInt(10, 60_000).default(250),
  FLEETPULSE_PROCESSOR_LIVE_INTERVAL_MS: envInt(0, 60_000).default(50),
  FLEETPULSE_PROCESSOR_LIVE_MIN_GAP_MS: envInt(0, 3_600_000).default(250),
  FLEETPULSE_PROCESSOR_LIVE_MAX_PER_SEC: envInt(1, 10_000_000).default(200_000),
  FLEETPULSE_PROCESSOR_MAX_PENDING_OUTPUTS: envInt(1, 100_000_000).default(200_000),
  FLEETPULSE_COMMIT_INTERVAL_MS: envInt(0, 600_000).default(1000),
  FLEETPULSE_PROCESSOR_SESSION_TIMEOUT_MS: envInt(6000, 300_000).default(30_000),
  FLEETPULSE_PROCESSOR_SHUTDOWN_GRACE_MS: envInt(0, 600_000).default(15_000),
  FLEETPULSE_PROCESSOR_HOST: z.string().min(1).default('0.0.0.0'),
  FLEETPULSE_PROCESSOR_PORT: envInt(0, 65535).default(DefaultPorts.processorHttp),
});

/** Parses and validates every variable at once; one ConfigError lists every bad one. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ProcessorConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  const e = parsed.data;
  const problems: string[] = [];
  const connection = connectionConfig(e, problems);
  let aggregator: ResolvedConfig | undefined;
  try {
    aggregator = resolveConfig({
      resolutions: envList(e.FLEETPULSE_RESOLUTIONS),
      allowedLatenessMs: e.FLEETPULSE_ALLOWED_LATENESS_MS,
      idleTimeoutMs: e.FLEETPULSE_IDLE_TIMEOUT_MS,
      maxMetricsPerDevice: e.FLEETPULSE_PROCESSOR_MAX_METRICS_PER_DEVICE,
      maxQuietDevices: e.FLEETPULSE_PROCESSOR_MAX_QUIET_DEVICES,
      liveSnapshots: e.FLEETPULSE_PROCESSOR_LIVE_INTERVAL_MS > 0,
    });
  } catch (err) {
    problems.push(
      `FLEETPULSE_RESOLUTIONS / _ALLOWED_LATENESS_MS / _IDLE_TIMEOUT_MS: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const ttlSeconds = parseTtl(e.FLEETPULSE_TTL, problems);
  const storedResolutions = parseStoredResolutions(
    e.FLEETPULSE_STORED_RESOLUTIONS,
    problems,
    aggregator?.labels ?? envList(e.FLEETPULSE_RESOLUTIONS),
  );
  const tracing = tracingConfig(env, problems);
  if (problems.length > 0 || !aggregator) throw new ConfigError(problems);
  return {
    ...connection,
    groupId: e.FLEETPULSE_PROCESSOR_GROUP,
    sourceTopic: e.FLEETPULSE_PROCESSOR_TOPIC,
    aggregator,
    ttlSeconds,
    storedResolutions,
    writeConcurrency: e.FLEETPULSE_CASSANDRA_WRITE_CONCURRENCY,
    fetchMaxBytesPerPartition: e.FLEETPULSE_PROCESSOR_FETCH_BYTES,
    liveIntervalMs: e.FLEETPULSE_PROCESSOR_LIVE_INTERVAL_MS,
    liveMinGapMs: e.FLEETPULSE_PROCESSOR_LIVE_MIN_GAP_MS,
    liveMaxPerSec: e.FLEETPULSE_PROCESSOR_LIVE_MAX_PER_SEC,
    maxPendingOutputs: e.FLEETPULSE_PROCESSOR_MAX_PENDING_OUTPUTS,
    tickMs: e.FLEETPULSE_PROCESSOR_TICK_MS,
    idleSafetyMarginMs: e.FLEETPULSE_IDLE_SAFETY_MARGIN_MS,
    commitIntervalMs: e.FLEETPULSE_COMMIT_INTERVAL_MS,
    sessionTimeoutMs: e.FLEETPULSE_PROCESSOR_SESSION_TIMEOUT_MS,
    shutdownGraceMs: e.FLEETPULSE_PROCESSOR_SHUTDOWN_GRACE_MS,
    httpHost: e.FLEETPULSE_PROCESSOR_HOST,
    httpPort: e.FLEETPULSE_PROCESSOR_PORT,
    tracing,
  };
}
