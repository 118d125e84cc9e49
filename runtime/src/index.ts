/**
 * @fleetpulse/runtime: the plumbing every service shares, written once. Prometheus helpers and the ops endpoint
 * are at `@fleetpulse/runtime/metrics` and the Cassandra client options at `@fleetpulse/runtime/cassandra`, so
 * packages that need none of it do not load prom-client or cassandra-driver.
 */
export { firstLine, ServiceConfigError } from './errors';
export { mulberry32, type Rng } from './prng';
export { addressKey, BucketTable } from './rate';
export { backoffDelay, retry, sleep, type BackoffOptions, type RetryOptions } from './retry';
export { runService, type ServiceMain, type Stoppable } from './run';
