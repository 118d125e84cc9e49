export { WindowAggregator } from './aggregator';
export { ClosedWindow, type CloseReason, type RowStat } from './closed-window';
export {
  resolveConfig,
  AggregatorConfigError,
  DefaultResolutions,
  DefaultAllowedLatenessMs,
  DefaultIdleTimeoutMs,
  DefaultMaxMetricsPerDevice,
  DefaultMaxQuietDevices,
  type AggregatorConfig,
  type ResolvedConfig,
} from './config';
export { decodeRecordValue, InvalidRecordError } from './decode';
export type {
  AggregatorOutput,
  AggregatorStats,
  DeviceStateTuple,
  LateEvent,
  PartitionCheckpoint,
  PartitionStart,
  RejectedEvent,
  StoredDeviceState,
} from './types';
