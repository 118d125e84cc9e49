// The launcher's public face: what `npm start`, the jest global setup and the integration tests use.
export {
  stackUp,
  stackDown,
  stackStatus,
  type StackUpOptions,
  type StackUpResult,
  type StackDownOptions,
  type ComponentUp,
  type ComponentStatus,
  type StackStatus,
  type ComponentName,
  type UpState,
} from './stack';
export {
  loadStackConfig,
  clusterStackConfig,
  kafkaBrokers,
  cassandraContactPoint,
  cassandraContactPoints,
  CassandraDataCenter,
  DefaultVersions,
  type StackConfig,
} from './config';
export { StackError, isStackError } from './errors';
export { type Logger, stderrLogger, silentLogger } from './log';
