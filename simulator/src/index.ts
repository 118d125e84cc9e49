/**
 * @fleetpulse/simulator: the device fleet in-process (for tests and benchmarks) and the pieces the CLI is built of.
 */
export {
  createFleet,
  Fleet,
  FleetDefaults,
  validateFleetOptions,
  MetricNames,
  PhysicalRange,
  AnomalyKinds,
  LateThresholdMs,
  type FleetOptions,
  type FleetStats,
  type EventBatch,
  type SimEvent,
  type AnomalyTruth,
  type AnomalyKind,
  type MetricName,
} from './fleet';
export { encodeBatch, ContentTypes, type BodyFormat } from './encode';
export {
  createTransport,
  telemetryUrl,
  NodeHttpTransport,
  FetchTransport,
  TransportKinds,
  HttpClients,
  type Transport,
  type TransportResponse,
  type TransportOptions,
  type TransportKind,
  type HttpClient,
} from './transport';
export { Sender, sendBatches, parseRetryAfter, type SenderOptions, type SendStats } from './sender';
export { LatencyHistogram } from './histogram';
export { SimulatorError, TransportError, ConfigError } from './errors';
export { parseCommandLine, helpText, fleetOptions, parseDuration, parseTime, type SimulatorConfig } from './config';
export { runSimulator, type RunSummary, type RunIo } from './run';
