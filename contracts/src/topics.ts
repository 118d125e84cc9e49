/** Kafka topics of the contract (docs/contract.md, "Topics"). Records are keyed by deviceId (alerts: by rule id). */
export const Topics = {
  /** Canonical events (or a JSON array of one device's events) from ingestion. */
  raw: 'telemetry.raw',
  /** Input that failed validation: the original bytes, headers `error`, `source`, `receivedAt`. */
  dlq: 'telemetry.dlq',
  /** Events whose window had closed; header `missed` lists the resolutions, e.g. `1s,10s`. */
  late: 'telemetry.late',
  /** v2: closed window records, one per device, resolution and window, holding every metric. */
  aggregates: 'metrics.aggregates',
  /** v2: provisional snapshots of a device's open finest window (`"final": false`); never stored, never scored. */
  live: 'metrics.live',
  /** Model scores. */
  scores: 'anomaly.scores',
  /** v2: alert transitions (an episode firing or resolving), keyed by rule id. */
  alerts: 'alerts',
} as const;

export type TopicName = (typeof Topics)[keyof typeof Topics];
export const allTopics: readonly TopicName[] = Object.values(Topics);

/**
 * Topic settings that differ from the broker's defaults, applied when a topic is created. Provisional snapshots are
 * only worth their first seconds: an hour bounds what they hold.
 */
export const TopicConfigs: Partial<Record<TopicName, Record<string, string>>> = {
  [Topics.live]: { 'retention.ms': String(3_600_000), 'cleanup.policy': 'delete' },
};
