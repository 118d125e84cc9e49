/**
 * @fleetpulse/runtime: the plumbing every service shares, written once. Prometheus helpers and the ops endpoint
 * are at `@fleetpulse/runtime/metrics`, the Cassandra client options at `@fleetpulse/runtime/cassandra` and
 * OpenTelemetry traces at `@fleetpulse/runtime/tracing`, so packages that need none of it do not load prom-client,
 * cassandra-driver or the OpenTelemetry SDK. Whether tracing is on is read here (tracingConfig), without the SDK.
 */
export { firstLine, ServiceConfigError } from './errors';
export { mulberry32, type Rng } from './prng';
export { addressKey, BucketTable } from './rate';
export { backoffDelay, retry, sleep, type BackoffOptions, type RetryOptions } from './retry';
export { tracingConfig, TracingEnv, type TracingConfig } from './tracing-config';
export { runService, type ServiceMain, type Stoppable } from './run';
