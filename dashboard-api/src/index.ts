// The dashboard API's public face: start it in-process (tests, the benchmark) and its configuration.
export { startDashboard, kafkaTransport, type RunningDashboard, type StartOptions } from './app';
export { loadConfig, ConfigError, helpText, type DashboardConfig } from './config';
export { Coalescer, type DeviceUpdate } from './coalescer';
export { Limits } from './query';
export type * from './wire';
