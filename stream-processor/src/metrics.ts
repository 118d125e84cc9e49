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
    help: 'Window rows (one per device, resolution and window) written to Cassandra',
    labelNames: ['resolution'],
    registers: [this.registry],
  });
  readonly windows = new Counter({
    name: 'fleetpulse_processor_windows_published_total',
    help: 'Window records published to metrics.aggregates',
    labelNames: ['resolution'],
    registers: [this.registry],
  });
  readonly rejected = new Counter({
    name: 'fleetpulse_processor_rejected_events_total',
    help: 'Events refused for the distinct metric names limit per device (sent to telemetry.dlq)',
    registers: [this.registry],
  });
  readonly residentDevices = new Gauge({
    name: 'fleetpulse_processor_resident_devices',
    help: 'Devices whose state is in memory (active, or quiet and cached)',
    registers: [this.registry],
  });
  readonly evicted = new Counter({
    name: 'fleetpulse_processor_devices_evicted_total',
    help: 'Quiet devices whose state left memory (kept in processor_device_state)',
    registers: [this.registry],
  });
  readonly lookups = new Counter({
    name: 'fleetpulse_processor_device_lookups_total',
    help: 'Devices looked up in processor_device_state (absent from memory), by whether a state was found',
    labelNames: ['found'],
    registers: [this.registry],
  });
  readonly checkpointDevices = new Counter({
    name: 'fleetpulse_processor_checkpoint_devices_total',
    help: 'Device states written by incremental checkpoints',
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
