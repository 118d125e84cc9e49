import { DefaultPorts, DevToken, envInt, parseTokenEntries, Topics } from '@fleetpulse/contracts';
import { z } from 'zod';
import { ServiceConfigError, tracingConfig, type TracingConfig } from '@fleetpulse/runtime';
import type { RateLimitConfig } from './limits';

/**
 * One bearer token and the device ids it may write for (a glob with `*` and `?`; absent: any device). Over MQTT a
 * connection publishes only its own device's topic (its username), unless the token is a gateway's: then it
 * publishes for every device its glob allows.
 */
export interface TokenGrant {
  token: string;
  allowedDevices?: string;
  gateway?: true;
}

export interface IngestionConfig {
  env: 'development' | 'production';
  host: string;
  port: number;
  kafkaBrokers: string[];
  kafkaClientId: string;
  /** Where accepted events go: telemetry.raw unless a deployment (or a test) names another topic of the same form. */
  rawTopic: string;
  tokens: TokenGrant[];
  /** Largest request body, bytes. */
  maxBodyBytes: number;
  /** Most events in one request. */
  maxEventsPerRequest: number;
  /** Events accepted but not yet acknowledged by Kafka, across all requests; past it new requests get 503. */
  maxInFlightEvents: number;
  maxFutureMs: number;
  maxPastMs: number;
  /** How long a request may take to arrive in full (slow senders get 408), ms. */
  requestTimeoutMs: number;
  /** How long to wait for Kafka before answering 503, ms. */
  produceTimeoutMs: number;
  /** Seconds a 503 asks the client to wait. */
  retryAfterSeconds: number;
  /** How long a graceful shutdown waits for in-flight requests, ms. */
  shutdownGraceMs: number;
  /** MQTT door (docs/contract.md, "Telemetry in"): listen port (0: any free one), or null when switched off. */
  mqttPort: number | null;
  mqttHost: string;
  /** Largest MQTT packet (its remaining length); a larger one closes the connection as its header arrives. */
  mqttMaxPacketBytes: number;
  /** Bytes of MQTT packets not yet whole, across all connections; a connection that would pass it is closed. */
  mqttMaxBufferedBytes: number;
  /** Open MQTT connections at most; more are closed as they are accepted. */
  mqttMaxConnections: number;
  /** A connection that has not sent its CONNECT within this is closed, ms. */
  mqttConnectTimeoutMs: number;
  /** Keepalive a client may ask for at most; 0 (none) and more are taken as this, seconds. */
  mqttMaxKeepaliveSeconds: number;
  /** Bytes of one Kafka produce request at most; null: the topics' max.message.bytes, asked at start-up. */
  produceMaxRequestBytes: number | null;
  /**
   * Idempotent Kafka producers, each owning a share of the partitions and with one produce request in flight: how
   * many requests to Kafka may be in flight at once (a device's records keep their order: its key maps to one).
   */
  producers: number;
  limits: RateLimitConfig;
  /** OpenTelemetry traces (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, FLEETPULSE_TRACE_SAMPLE_RATIO); off by default. */
  tracing: TracingConfig;
}

const envSchema = z.object({
  FLEETPULSE_ENV: z.enum(['development', 'production']).default('production'),
  FLEETPULSE_INGESTION_HOST: z.string().min(1).optional(),
  FLEETPULSE_INGESTION_PORT: envInt(0, 65535).default(DefaultPorts.ingestionHttp),
  FLEETPULSE_KAFKA_BROKERS: z.string().min(1).default(`127.0.0.1:${DefaultPorts.kafka}`),
  FLEETPULSE_INGESTION_CLIENT_ID: z.string().min(1).default('fleetpulse-ingestion'),
  FLEETPULSE_INGESTION_TOPIC: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,249}$/, 'must be a Kafka topic name (letters, digits, ".", "_", "-")')
    .default(Topics.raw),
  FLEETPULSE_TOKENS: z.string().default(''),
  FLEETPULSE_GATEWAY_TOKENS: z.string().default(''),
  FLEETPULSE_MAX_BODY_BYTES: envInt(1024, 1 << 30).default(5 * 1024 * 1024),
  FLEETPULSE_MAX_EVENTS_PER_REQUEST: envInt(1, 1_000_000).default(10_000),
  FLEETPULSE_MAX_IN_FLIGHT_EVENTS: envInt(1, 100_000_000).default(200_000),
  FLEETPULSE_MAX_FUTURE_MS: envInt(0, 365 * 86_400_000).default(5 * 60_000),
  FLEETPULSE_MAX_PAST_MS: envInt(0, 10 * 365 * 86_400_000).default(30 * 86_400_000),
  FLEETPULSE_REQUEST_TIMEOUT_MS: envInt(100, 3_600_000).default(30_000),
  FLEETPULSE_PRODUCE_TIMEOUT_MS: envInt(100, 600_000).default(10_000),
  FLEETPULSE_RETRY_AFTER_SECONDS: envInt(1, 3600).default(2),
  FLEETPULSE_SHUTDOWN_GRACE_MS: envInt(0, 600_000).default(15_000),
  FLEETPULSE_MQTT_PORT: z
    .union([z.literal('off'), envInt(0, 65535)], { error: 'a port 0-65535 (0: any free one), or "off"' })
    .default(DefaultPorts.mqtt),
  FLEETPULSE_MQTT_HOST: z.string().min(1).optional(),
  FLEETPULSE_MQTT_MAX_PACKET_BYTES: envInt(1024, 1 << 28).optional(),
  FLEETPULSE_MQTT_MAX_BUFFERED_BYTES: envInt(65_536, 1 << 30).optional(),
  FLEETPULSE_MQTT_MAX_CONNECTIONS: envInt(1, 1_000_000).default(10_000),
  FLEETPULSE_MQTT_CONNECT_TIMEOUT_MS: envInt(100, 600_000).default(10_000),
  FLEETPULSE_MQTT_MAX_KEEPALIVE_SECONDS: envInt(1, 65_535).default(1200),
  FLEETPULSE_PRODUCE_MAX_REQUEST_BYTES: z
    .union([z.literal('auto'), envInt(65_536, 1 << 30)], { error: 'bytes 65536-1073741824, or "auto"' })
    .default('auto'),
  // More than one keeps more requests in flight, which pays where Kafka's round trip bounds ingestion (brokers on
  // other hosts, replication); where CPU does (bench/README, issue 16), their extra, smaller requests cost more.
  FLEETPULSE_INGESTION_PRODUCERS: envInt(1, 64).default(1),
  FLEETPULSE_TOKEN_EVENTS_PER_SECOND: envInt(0, 1e9).default(1_000_000),
  FLEETPULSE_TOKEN_EVENTS_BURST: envInt(1, 1e9).default(1_000_000),
  FLEETPULSE_DEVICE_EVENTS_PER_SECOND: envInt(0, 1e9).default(50_000),
  FLEETPULSE_DEVICE_EVENTS_BURST: envInt(1, 1e9).default(100_000),
  FLEETPULSE_RATE_MAX_DEVICES: envInt(1, 10_000_000).default(100_000),
  FLEETPULSE_LOGIN_FAILURES_PER_MINUTE: envInt(0, 1_000_000).default(60),
  FLEETPULSE_LOGIN_FAILURE_BURST: envInt(1, 1_000_000).default(20),
  FLEETPULSE_LOGIN_MAX_ADDRESSES: envInt(1, 10_000_000).default(100_000),
});

export class ConfigError extends ServiceConfigError {
  constructor(problems: string[]) {
    super('ingestion', problems);
  }
}

/**
 * `tok1=sensor-*,tok2` -> grants. A token with no `=glob` may write for any device. `variable` names the list in
 * the problems; FLEETPULSE_GATEWAY_TOKENS gives gateway grants.
 */
export function parseTokens(
  spec: string,
  variable = 'FLEETPULSE_TOKENS',
): { grants: TokenGrant[]; problems: string[] } {
  const gateway = variable === 'FLEETPULSE_GATEWAY_TOKENS';
  const problems: string[] = [];
  const grants: TokenGrant[] = parseTokenEntries(variable, spec, problems).map(({ token, glob }) => ({
    token,
    ...(glob === undefined ? {} : { allowedDevices: glob }),
    ...(gateway ? { gateway } : {}),
  }));
  return { grants, problems };
}

/** Parses and validates every variable at once; throws one ConfigError listing every bad one. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): IngestionConfig {
  const parsed = envSchema.safeParse(env);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const devices = parseTokens(e.FLEETPULSE_TOKENS);
  const gateways = parseTokens(e.FLEETPULSE_GATEWAY_TOKENS, 'FLEETPULSE_GATEWAY_TOKENS');
  const grants = [...devices.grants, ...gateways.grants];
  problems.push(...devices.problems, ...gateways.problems);
  const listed = new Set<string>();
  for (const { token } of grants) {
    // Not the token itself: a configuration error is logged.
    if (listed.has(token))
      problems.push(`FLEETPULSE_TOKENS / FLEETPULSE_GATEWAY_TOKENS: a token of ${token.length} chars is listed twice`);
    listed.add(token);
  }
  // The dev token is the simulator's and the benchmarks': one token (and connection) for a whole fleet. Listed
  // explicitly, it is what the list says.
  if (e.FLEETPULSE_ENV === 'development') {
    if (!listed.has(DevToken)) grants.push({ token: DevToken, gateway: true });
  } else if (grants.length === 0)
    problems.push(
      'FLEETPULSE_TOKENS: no token configured; set FLEETPULSE_TOKENS=<token>[=<device glob>],... (or FLEETPULSE_ENV=development for the dev token)',
    );
  const brokers = e.FLEETPULSE_KAFKA_BROKERS.split(',').map((b) => b.trim());
  for (const b of brokers)
    if (!/^[^:\s]+:\d{1,5}$/.test(b)) problems.push(`FLEETPULSE_KAFKA_BROKERS: "${b}" is not host:port`);
  // Room for a payload at the body limit, its topic and packet id.
  const mqttMaxPacketBytes = e.FLEETPULSE_MQTT_MAX_PACKET_BYTES ?? e.FLEETPULSE_MAX_BODY_BYTES + 64 * 1024;
  const mqttMaxBufferedBytes =
    e.FLEETPULSE_MQTT_MAX_BUFFERED_BYTES ?? Math.max(48 * 1024 * 1024, 2 * mqttMaxPacketBytes);
  if (mqttMaxBufferedBytes < mqttMaxPacketBytes)
    problems.push(
      `FLEETPULSE_MQTT_MAX_BUFFERED_BYTES: ${mqttMaxBufferedBytes} is less than one packet of the largest size (FLEETPULSE_MQTT_MAX_PACKET_BYTES: ${mqttMaxPacketBytes})`,
    );
  const tracing = tracingConfig(env, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  // Open to the network only where it is meant to be: in development, the loopback address unless told otherwise.
  const host = e.FLEETPULSE_INGESTION_HOST ?? (e.FLEETPULSE_ENV === 'development' ? '127.0.0.1' : '0.0.0.0');
  return {
    env: e.FLEETPULSE_ENV,
    host,
    port: e.FLEETPULSE_INGESTION_PORT,
    kafkaBrokers: brokers,
    kafkaClientId: e.FLEETPULSE_INGESTION_CLIENT_ID,
    rawTopic: e.FLEETPULSE_INGESTION_TOPIC,
    tokens: grants,
    maxBodyBytes: e.FLEETPULSE_MAX_BODY_BYTES,
    maxEventsPerRequest: e.FLEETPULSE_MAX_EVENTS_PER_REQUEST,
    maxInFlightEvents: e.FLEETPULSE_MAX_IN_FLIGHT_EVENTS,
    maxFutureMs: e.FLEETPULSE_MAX_FUTURE_MS,
    maxPastMs: e.FLEETPULSE_MAX_PAST_MS,
    requestTimeoutMs: e.FLEETPULSE_REQUEST_TIMEOUT_MS,
    produceTimeoutMs: e.FLEETPULSE_PRODUCE_TIMEOUT_MS,
    retryAfterSeconds: e.FLEETPULSE_RETRY_AFTER_SECONDS,
    shutdownGraceMs: e.FLEETPULSE_SHUTDOWN_GRACE_MS,
    mqttPort: e.FLEETPULSE_MQTT_PORT === 'off' ? null : e.FLEETPULSE_MQTT_PORT,
    mqttHost: e.FLEETPULSE_MQTT_HOST ?? host,
    mqttMaxPacketBytes,
    mqttMaxBufferedBytes,
    mqttMaxConnections: e.FLEETPULSE_MQTT_MAX_CONNECTIONS,
    mqttConnectTimeoutMs: e.FLEETPULSE_MQTT_CONNECT_TIMEOUT_MS,
    mqttMaxKeepaliveSeconds: e.FLEETPULSE_MQTT_MAX_KEEPALIVE_SECONDS,
    produceMaxRequestBytes:
      e.FLEETPULSE_PRODUCE_MAX_REQUEST_BYTES === 'auto' ? null : e.FLEETPULSE_PRODUCE_MAX_REQUEST_BYTES,
    producers: e.FLEETPULSE_INGESTION_PRODUCERS,
    limits: {
      tokenEventsPerSecond: e.FLEETPULSE_TOKEN_EVENTS_PER_SECOND,
      tokenEventsBurst: e.FLEETPULSE_TOKEN_EVENTS_BURST,
      deviceEventsPerSecond: e.FLEETPULSE_DEVICE_EVENTS_PER_SECOND,
      deviceEventsBurst: e.FLEETPULSE_DEVICE_EVENTS_BURST,
      rateMaxDevices: e.FLEETPULSE_RATE_MAX_DEVICES,
      loginFailuresPerMinute: e.FLEETPULSE_LOGIN_FAILURES_PER_MINUTE,
      loginFailureBurst: e.FLEETPULSE_LOGIN_FAILURE_BURST,
      loginMaxAddresses: e.FLEETPULSE_LOGIN_MAX_ADDRESSES,
    },
    tracing,
  };
}
