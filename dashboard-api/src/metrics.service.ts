import { Injectable } from '@nestjs/common';
import { ServiceRegistry } from '@fleetpulse/runtime/metrics';

/** Prometheus metrics of one API instance (GET /metrics). One registry per instance, so tests can run several. */
@Injectable()
export class DashboardMetrics extends ServiceRegistry {
  readonly kafkaRecords = this.counter(
    'fleetpulse_dashboard_kafka_records_total',
    'Records read from Kafka, by topic and outcome (ok, invalid, unwatched: no subscriber for its device, not parsed)',
    ['topic', 'outcome'],
  );
  readonly liveEmits = this.counter(
    'fleetpulse_dashboard_live_emits_total',
    'socket.io emits to rooms, by event (aggregate, aggregates, anomaly, alert)',
    ['event'],
  );
  readonly provisional = this.counter(
    'fleetpulse_dashboard_live_provisional_total',
    'Provisional records (metrics.live) sent, each once per flush to the device subscribers it went to',
  );
  readonly coalesced = this.counter(
    'fleetpulse_dashboard_live_coalesced_total',
    'Window records replaced by a newer record of the same device and resolution, or refused by the ordering (an older window, a provisional after its final), before a flush',
  );
  readonly anomaliesDropped = this.counter(
    'fleetpulse_dashboard_live_anomalies_dropped_total',
    'Anomalies not sent to a socket whose unsent queue was over FLEETPULSE_LIVE_MAX_ANOMALY_BACKLOG (or _BACKLOG_BYTES)',
  );
  readonly alertsDropped = this.counter(
    'fleetpulse_dashboard_live_alerts_dropped_total',
    'Alert transitions not sent to a socket whose unsent queue was over FLEETPULSE_LIVE_MAX_ANOMALY_BACKLOG (or _BACKLOG_BYTES)',
  );
  readonly alertsRepeated = this.counter(
    'fleetpulse_dashboard_live_alerts_repeated_total',
    'Alert transitions read again with an id already sent (a re-read of the alerts topic), not sent again',
  );
  readonly slowSkipped = this.counter(
    'fleetpulse_dashboard_live_slow_skips_total',
    'Sockets skipped by a flush because their unsent queue was over FLEETPULSE_LIVE_MAX_BACKLOG (or _BACKLOG_BYTES)',
  );
  readonly sockets = this.gauge('fleetpulse_dashboard_live_sockets', 'Connected socket.io clients on /live');
  readonly flushSeconds = this.histogram(
    'fleetpulse_dashboard_live_flush_seconds',
    'Time of one coalescing flush',
    [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
  );
  readonly stageDelay = this.histogram(
    'fleetpulse_dashboard_stage_delay_seconds',
    "Pipeline stage delay: a record's Kafka timestamp to its socket.io emit (window records after coalescing; anomalies as they arrive), by topic",
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    ['topic'],
  );
  readonly sessions = this.gauge('fleetpulse_dashboard_sessions', 'Signed-in sessions (POST /api/login) not yet ended');
  readonly denied = this.counter(
    'fleetpulse_dashboard_access_denied_total',
    'Requests, socket connections and subscriptions refused, by door (http, live) and reason',
    ['door', 'reason'],
  );
  readonly httpRequests = this.histogram(
    'fleetpulse_dashboard_http_request_seconds',
    'HTTP requests by route and status',
    [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    ['route', 'status'],
  );

  constructor() {
    super('fleetpulse_dashboard_');
  }
}
