export * from './core';
export { loadConfig, ConfigError, type ProcessorConfig } from './config';
export { startProcessor, type RunningProcessor } from './service';
export { StreamProcessor } from './processor';
export { AggregateStore, aggregateStoreFor, type AggregateStoreOptions } from './storage/aggregate-store';
export { CheckpointStore } from './storage/checkpoint-store';
export { windowRowParams, type WindowToStore } from './storage/window-row';
