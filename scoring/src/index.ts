/**
 * @fleetpulse/scoring: the ONNX scoring service and what its neighbours (dashboard, bench, tests) need of it. The
 * simulated window records of tests, training data and the bench are at `@fleetpulse/scoring/testing`.
 */
export { startScoring, StoreUnavailable, type RunningScoring } from './service';
export { WindowConsumer, type WindowConsumerOptions } from './consumer';
export { routeRecords, finalRecords, byResolution, type Route } from './router';
export { scoreSink } from './score-sink';
export { loadConfig, ConfigError, helpText, DefaultScoringPort, RetiredEnv, type ScoringConfig } from './config';
export {
  ModelRegistry,
  checkSignature,
  ModelRejected,
  ModelQuarantined,
  type ActiveModel,
  type ModelStatus,
  type Quarantined,
  type RegistryOptions,
} from './models';
export { readModelFile, FileRefused, cleanReason, MaxSidecarBytes } from './model-file';
export { resolveSpec, ModelSpecError, type ModelSpec } from './model-spec';
export { readOnnxMetadata, OnnxFormatError } from './onnx-meta';
export { SessionHost, HostError, type SessionHostOptions } from './session-host';
export { FolderWatcher, type ModelFiles, type WatcherHandlers, type WatcherOptions } from './watcher';
export {
  parseWindowRecord,
  InvalidRecord,
  compileFeatures,
  fillVector,
  featureObject,
  type CompiledFeatures,
  type Unscorable,
  type InvalidReason,
} from './features';
export { Scorer, type ScoreSink, type RecordIn } from './scorer';
export { ScoringMetrics } from './metrics';
