export type { TelemetryEvent, AggregateRow, AnomalyScore } from './types.generated';
export { Topics, TopicConfigs, allTopics, type TopicName } from './topics';
export { DefaultPorts, Keyspace, DevToken } from './defaults';
export { resolutionMs, resolutionLabel, windowStart, bucketOf, bucketsBetween, WindowsPerBucket } from './windows';
export { schemaDir, cqlDir, vectorsDir, loadSchema, cqlStatements, type SchemaName } from './schema';
export { loadTelemetryVectors, type TelemetryVector, type VectorParseOptions, type VectorExpect } from './vectors';
export { envInt, envList, connectionEnv, connectionConfig, hostPortList, type ConnectionConfig } from './env';
export type { WindowRecord, MetricStats } from './types.generated';
export type { AlertRule, ThresholdCondition, AnomalyCondition, AlertTransition } from './types.generated';
export {
  MetricStatNames,
  pointOf,
  pointsOf,
  DefaultTtl,
  DefaultStoredResolutions,
  parseStoredResolutions,
  parseTtl,
  type MetricStatName,
} from './window-record';
export {
  windowRecordFromRow,
  metricStatsFromUdt,
  cqlBigintToNumber,
  type WindowRow,
  type MetricStatsUdt,
  type CqlBigint,
  type DriverRow,
} from './window-row';
export { DeviceGlobSyntax, globMatch, parseTokenEntries, TokenSyntax, type TokenEntry } from './device-glob';
