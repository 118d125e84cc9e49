/** Alerting configuration: every environment variable checked once, at start-up; one error lists all. */
import { connectionConfig, connectionEnv, DefaultPorts, envInt, Topics } from '@fleetpulse/contracts';
import { ServiceConfigError } from '@fleetpulse/runtime';
import { z } from 'zod';

export interface AlertingConfig {
  env: 'development' | 'production';
  kafkaBrokers: string[];
  cassandraContactPoints: string[];
  cassandraDataCenter: string;
  keyspace: string;
  /** The evaluator's consumer group (metrics.aggregates + anomaly.scores). */
  groupId: string;
  /** The webhook deliverer's consumer group (alerts). */
  webhookGroupId: string;
  aggregatesTopic: string;
  scoresTopic: string;
  alertsTopic: string;
  /** Rules are read again from Cassandra this often, ms. */
  rulesRefreshMs: number;
  /** (rule, device) states kept in memory at most; the others are read back from Cassandra when needed. */
  maxCachedStates: number;
  webhookSecret: string;
  /** True when the secret is the development one (FLEETPULSE_ENV=development and none set). */
  devSecret: boolean;
  webhookTimeoutMs: number;
  webhookMaxInFlight: number;
  webhookPerUrl: number;
  webhookInitialBackoffMs: number;
  webhookMaxBackoffMs: number;
  /** A transition older than this (from its `at`) that still fails is given up; 0: never. */
  webhookMaxAgeMs: number;
  sessionTimeoutMs: number;
  httpHost: string;
  httpPort: number;
}

export class ConfigError extends ServiceConfigError {
  constructor(problems: string[]) {
    super('alerting', problems);
  }
}

/** Signs webhooks in development when no secret is set; never accepted in production. */
export const DevWebhookSecret = 'dev-webhook-secret';
export const MinSecretChars = 16;

const topic = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,249}$/, 'must be a Kafka topic name (letters, digits, ".", "_", "-")');

const envSchema = z.object({
  FLEETPULSE_ENV: z.enum(['development', 'production']).default('production'),
  ...connectionEnv,
  FLEETPULSE_ALERTING_GROUP: z.string().min(1).default('fleetpulse-alerting'),
  FLEETPULSE_ALERTING_WEBHOOK_GROUP: z.string().min(1).default('fleetpulse-alerting-webhooks'),
  FLEETPULSE_ALERTING_AGGREGATES_TOPIC: topic.default(Topics.aggregates),
  FLEETPULSE_ALERTING_SCORES_TOPIC: topic.default(Topics.scores),
  FLEETPULSE_ALERTING_ALERTS_TOPIC: topic.default(Topics.alerts),
  FLEETPULSE_ALERTING_RULES_REFRESH_MS: envInt(100, 600_000).default(2000),
  FLEETPULSE_ALERTING_MAX_CACHED_STATES: envInt(1000, 10_000_000).default(100_000),
  FLEETPULSE_ALERT_WEBHOOK_SECRET: z.string().optional(),
  FLEETPULSE_ALERT_WEBHOOK_TIMEOUT_MS: envInt(100, 300_000).default(10_000),
  FLEETPULSE_ALERT_WEBHOOK_MAX_IN_FLIGHT: envInt(1, 10_000).default(64),
  FLEETPULSE_ALERT_WEBHOOK_PER_URL: envInt(1, 1000).default(4),
  FLEETPULSE_ALERT_WEBHOOK_INITIAL_BACKOFF_MS: envInt(10, 600_000).default(1000),
  FLEETPULSE_ALERT_WEBHOOK_MAX_BACKOFF_MS: envInt(10, 3_600_000).default(300_000),
  FLEETPULSE_ALERT_WEBHOOK_MAX_AGE_MS: envInt(0, 2_592_000_000).default(86_400_000),
  FLEETPULSE_ALERTING_SESSION_TIMEOUT_MS: envInt(6000, 300_000).default(30_000),
  FLEETPULSE_ALERTING_HOST: z.string().min(1).default('0.0.0.0'),
  FLEETPULSE_ALERTING_PORT: envInt(0, 65535).default(DefaultPorts.alertingHttp),
});

export function loadConfig(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = []): AlertingConfig {
  const problems: string[] = [];
  const merged: Record<string, string | undefined> = { ...env };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--port') merged.FLEETPULSE_ALERTING_PORT = argv[++i];
    else if (a.startsWith('--port=')) merged.FLEETPULSE_ALERTING_PORT = a.slice('--port='.length);
    else problems.push(`unknown argument "${a}" (see --help)`);
  }
  const parsed = envSchema.safeParse(merged);
  if (!parsed.success) {
    problems.push(...parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const connection = connectionConfig(e, problems);
  const secret = e.FLEETPULSE_ALERT_WEBHOOK_SECRET;
  const development = e.FLEETPULSE_ENV === 'development';
  if (secret === undefined || secret === '') {
    if (!development)
      problems.push(
        'FLEETPULSE_ALERT_WEBHOOK_SECRET: required outside development (webhooks are signed with it); ' +
          `set at least ${MinSecretChars} characters`,
      );
  } else if (secret.length < MinSecretChars)
    problems.push(`FLEETPULSE_ALERT_WEBHOOK_SECRET: at least ${MinSecretChars} characters`);
  else if (!development && secret === DevWebhookSecret)
    problems.push('FLEETPULSE_ALERT_WEBHOOK_SECRET: the development secret is refused outside development');
  if (e.FLEETPULSE_ALERT_WEBHOOK_MAX_BACKOFF_MS < e.FLEETPULSE_ALERT_WEBHOOK_INITIAL_BACKOFF_MS)
    problems.push('FLEETPULSE_ALERT_WEBHOOK_MAX_BACKOFF_MS: less than FLEETPULSE_ALERT_WEBHOOK_INITIAL_BACKOFF_MS');
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    env: e.FLEETPULSE_ENV,
    ...connection,
    groupId: e.FLEETPULSE_ALERTING_GROUP,
    webhookGroupId: e.FLEETPULSE_ALERTING_WEBHOOK_GROUP,
    aggregatesTopic: e.FLEETPULSE_ALERTING_AGGREGATES_TOPIC,
    scoresTopic: e.FLEETPULSE_ALERTING_SCORES_TOPIC,
    alertsTopic: e.FLEETPULSE_ALERTING_ALERTS_TOPIC,
    rulesRefreshMs: e.FLEETPULSE_ALERTING_RULES_REFRESH_MS,
    maxCachedStates: e.FLEETPULSE_ALERTING_MAX_CACHED_STATES,
    webhookSecret: secret || DevWebhookSecret,
    devSecret: !secret,
    webhookTimeoutMs: e.FLEETPULSE_ALERT_WEBHOOK_TIMEOUT_MS,
    webhookMaxInFlight: e.FLEETPULSE_ALERT_WEBHOOK_MAX_IN_FLIGHT,
    webhookPerUrl: e.FLEETPULSE_ALERT_WEBHOOK_PER_URL,
    webhookInitialBackoffMs: e.FLEETPULSE_ALERT_WEBHOOK_INITIAL_BACKOFF_MS,
    webhookMaxBackoffMs: e.FLEETPULSE_ALERT_WEBHOOK_MAX_BACKOFF_MS,
    webhookMaxAgeMs: e.FLEETPULSE_ALERT_WEBHOOK_MAX_AGE_MS,
    sessionTimeoutMs: e.FLEETPULSE_ALERTING_SESSION_TIMEOUT_MS,
    httpHost: e.FLEETPULSE_ALERTING_HOST,
    httpPort: e.FLEETPULSE_ALERTING_PORT,
  };
}

export const helpText = `fleetpulse alerting: evaluates the alert rules stored in Cassandra on the final window records of
metrics.aggregates and the scores of anomaly.scores; each episode fires once and resolves once; transitions go to
Cassandra (alerts_by_day, alerts_by_device) and the alerts topic, and from there to each rule's webhook, signed
(X-Fleetpulse-Signature: sha256=<HMAC-SHA256 of the body>) and retried with backoff until a 2xx.

Usage: node alerting/dist/main.js [--port N] [--help]

Configuration is by environment variable (validated at start-up; flags override):
  FLEETPULSE_ENV                            development | production (default production)
  FLEETPULSE_KAFKA_BROKERS                  host:port,... (default 127.0.0.1:9092)
  FLEETPULSE_CASSANDRA_CONTACT_POINTS       host:port,... (default 127.0.0.1:9042)
  FLEETPULSE_CASSANDRA_DC                   local data center (default datacenter1)
  FLEETPULSE_KEYSPACE                       (default fleetpulse)
  FLEETPULSE_ALERTING_GROUP                 the evaluator's consumer group (default fleetpulse-alerting)
  FLEETPULSE_ALERTING_WEBHOOK_GROUP         the deliverer's consumer group (default fleetpulse-alerting-webhooks)
  FLEETPULSE_ALERTING_AGGREGATES_TOPIC      (default metrics.aggregates)
  FLEETPULSE_ALERTING_SCORES_TOPIC          (default anomaly.scores)
  FLEETPULSE_ALERTING_ALERTS_TOPIC          (default alerts)
  FLEETPULSE_ALERTING_RULES_REFRESH_MS      rules are read again this often (default 2000)
  FLEETPULSE_ALERTING_MAX_CACHED_STATES     (rule, device) states held in memory (default 100000)
  FLEETPULSE_ALERT_WEBHOOK_SECRET           HMAC-SHA256 key of the signature, at least ${MinSecretChars} chars; required
                                            outside development (development: "${DevWebhookSecret}")
  FLEETPULSE_ALERT_WEBHOOK_TIMEOUT_MS       one POST may take this long (default 10000)
  FLEETPULSE_ALERT_WEBHOOK_MAX_IN_FLIGHT    POSTs in flight at once, all webhooks (default 64)
  FLEETPULSE_ALERT_WEBHOOK_PER_URL          POSTs in flight at once to one URL (default 4)
  FLEETPULSE_ALERT_WEBHOOK_INITIAL_BACKOFF_MS  first wait before a retry (default 1000)
  FLEETPULSE_ALERT_WEBHOOK_MAX_BACKOFF_MS   retries wait at most this long (default 300000)
  FLEETPULSE_ALERT_WEBHOOK_MAX_AGE_MS       give a transition up (log + alerting_deliveries_total{outcome="expired"})
                                            once it is this old and still failing; 0: retry for ever (default 86400000)
  FLEETPULSE_ALERTING_SESSION_TIMEOUT_MS    Kafka group session timeout (default 30000)
  FLEETPULSE_ALERTING_HOST / _PORT          /healthz /readyz /metrics (default 0.0.0.0:${DefaultPorts.alertingHttp})
`;
