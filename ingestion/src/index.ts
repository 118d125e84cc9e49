export { loadConfig, parseTokens, ConfigError, type IngestionConfig, type TokenGrant } from './config';
export { startIngestion, type RunningIngestion } from './service';
export {
  IngestPipeline,
  type IngestOutcome,
  type IngestRequest,
  type PayloadFormat,
  type IngestSource,
} from './pipeline';
export { GroupCommitProducer, type OutgoingRecord } from './producer';
export { TokenTable } from './auth';
export { IngestionError, KafkaUnavailableError, OverloadedError, RecordTooLargeError } from './errors';
export { RateLimits, type RateLimitConfig, type Throttled } from './limits';
export { PacketGate, type FrameViolation } from './mqtt/framing';
export { MqttDoor, type MqttDoorDeps } from './mqtt/door';
export { telemetryTopicDevice, payloadFormat, authenticateConnect, mayPublishFor } from './mqtt/topic';
