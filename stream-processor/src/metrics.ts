import { ServiceRegistry } from '@fleetpulse/runtime/metrics';

/** Prometheus metrics of one stream-processor instance, served at /metrics. */
export class ProcessorMetrics extends ServiceRegistry {
  readonly events = this.counter('fleetpulse_processor_events_total', 'Events folded into windows');
  readonly late = this.counter(
    'fleetpulse_processor_late_events_total',
    'Events late for at least one resolution (sent to telemetry.late)',
  );
  readonly invalid = this.counter(
    'fleetpulse_processor_invalid_records_total',
    'Records that are not valid events (sent to telemetry.dlq)',
  );
  readonly rows = this.counter(
    'fleetpulse_processor_rows_written_total',
    'Window rows (one per device, resolution and window) written to Cassandra',
    ['resolution'],
  );
  readonly windows = this.counter(
    'fleetpulse_processor_windows_published_total',
    'Window records published to metrics.aggregates',
    ['resolution'],
  );
  readonly liveSnapshots = this.counter(
    'fleetpulse_processor_live_snapshots_total',
    'Provisional snapshots of open windows for metrics.live, by whether Kafka took them',
    ['outcome'],
  );
  readonly rejected = this.counter(
    'fleetpulse_processor_rejected_events_total',
    'Events refused for the distinct metric names limit per device (sent to telemetry.dlq)',
  );
  readonly residentDevices = this.gauge(
    'fleetpulse_processor_resident_devices',
    'Devices whose state is in memory (active, or quiet and cached)',
  );
  readonly evicted = this.counter(
    'fleetpulse_processor_devices_evicted_total',
    'Quiet devices whose state left memory (kept in processor_device_state)',
  );
  readonly lookups = this.counter(
    'fleetpulse_processor_device_lookups_total',
    'Devices looked up in processor_device_state (absent from memory), by whether a state was found',
    ['found'],
  );
  readonly checkpointDevices = this.counter(
    'fleetpulse_processor_checkpoint_devices_total',
    'Device states written by incremental checkpoints',
  );
  readonly writeSeconds = this.histogram(
    'fleetpulse_processor_write_seconds',
    'Time to write one flush of rows to Cassandra and publish them',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  readonly stageDelay = this.histogram(
    'fleetpulse_processor_stage_delay_seconds',
    "Pipeline stage delay: a window's end (event time) to its record published on metrics.aggregates (includes the allowed lateness and idle wait)",
    [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300, 600],
    ['resolution'],
  );
  readonly openWindows = this.gauge('fleetpulse_processor_open_windows', 'Windows open in memory');
  readonly pendingOutputs = this.gauge(
    'fleetpulse_processor_pending_outputs',
    'Closed windows, late events and rejections waiting for a flush (reading waits at FLEETPULSE_PROCESSOR_MAX_PENDING_OUTPUTS)',
  );
  readonly lag = this.gauge(
    'fleetpulse_processor_consumer_lag',
    'Records between the last one read and the partition end',
    ['partition'],
  );
  readonly commits = this.counter('fleetpulse_processor_commits_total', 'Checkpoint + offset commits');

  constructor() {
    super('fleetpulse_processor_');
  }
}
