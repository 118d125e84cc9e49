import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one stream-processor instance, served at /metrics. */
export class ProcessorMetrics {
  readonly registry = new Registry();
  readonly events = new Counter({
    name: 'fleetpulse_processor_events_total',
    help: 'Events folded into windows',
    registers: [this.registry],
  });
  readonly late = new Counter({
    name: 'fleetpulse_processor_late_events_total',
    help: 'Events late for at least one resolution (sent to telemetry.late)',
    registers: [this.registry],
  });
  readonly invalid = new Counter({
    name: 'fleetpulse_processor_invalid_records_total',
    help: 'Records that are not valid events (sent to telemetry.dlq)',
    registers: [this.registry],
  });
  readonly rows = new Counter({
    name: 'fleetpulse_processor_rows_written_total',
    help: 'Aggregate rows written to Cassandra',
    labelNames: ['resolution'],
    registers: [this.registry],
  });
  readonly writeSeconds = new Histogram({
    name: 'fleetpulse_processor_write_seconds',
    help: 'Time to write one flush of rows to Cassandra and publish them',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly openWindows = new Gauge({
    name: 'fleetpulse_processor_open_windows',
    help: 'Windows open in memory',
    registers: [this.registry],
  });
  readonly lag = new Gauge({
    name: 'fleetpulse_processor_consumer_lag',
    help: 'Records between the last one read and the partition end',
    labelNames: ['partition'],
    registers: [this.registry],
  });
  readonly commits = new Counter({
    name: 'fleetpulse_processor_commits_total',
    help: 'Checkpoint + offset commits',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'fleetpulse_processor_' });
  }
}
