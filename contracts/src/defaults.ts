/** Default ports and names of the contract (docs/contract.md, "Running it"). Each is overridable by env. */
export const DefaultPorts = {
  ingestionHttp: 8080,
  dashboard: 3000,
  kafka: 9092,
  /** KRaft controller listener of the local single-node Kafka; not part of the public contract. */
  kafkaController: 9093,
  cassandra: 9042,
  mqtt: 1883,
  /** The stream-processor's /healthz, /readyz, /metrics. */
  processorHttp: 8081,
  /** Scoring's /healthz, /readyz, /metrics, /api/models. */
  scoringHttp: 8082,
  /** Alerting's /healthz, /readyz, /metrics. */
  alertingHttp: 8083,
} as const;

export const Keyspace = 'fleetpulse';

/** The development token: accepted for every device when FLEETPULSE_ENV=development, never otherwise. */
export const DevToken = 'dev-token';
