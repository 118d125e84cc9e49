/** Kafka topics of the contract (docs/contract.md, "Topics"). Every record is keyed by deviceId. */
export const Topics = {
  /** Canonical events (or a JSON array of one device's events) from ingestion. */
  raw: 'telemetry.raw',
  /** Input that failed validation: the original bytes, headers `error`, `source`, `receivedAt`. */
  dlq: 'telemetry.dlq',
  /** Events whose window had closed; header `missed` lists the resolutions, e.g. `1s,10s`. */
  late: 'telemetry.late',
  /** v2: closed window records, one per device, resolution and window, holding every metric. */
  aggregates: 'metrics.aggregates',
  /** Model scores. */
  scores: 'anomaly.scores',
} as const;

export type TopicName = (typeof Topics)[keyof typeof Topics];
export const allTopics: readonly TopicName[] = Object.values(Topics);
