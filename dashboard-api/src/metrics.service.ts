import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one API instance (GET /metrics). One registry per instance, so tests can run several. */
@Injectable()
export class DashboardMetrics {
  readonly registry = new Registry();
  readonly kafkaRecords = new Counter({
    name: 'fleetpulse_dashboard_kafka_records_total',
    help: 'Records read from Kafka, by topic and outcome (ok, invalid)',
    labelNames: ['topic', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly liveEmits = new Counter({
    name: 'fleetpulse_dashboard_live_emits_total',
    help: 'socket.io emits to rooms, by event (aggregate, aggregates, anomaly)',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });
  readonly coalesced = new Counter({
    name: 'fleetpulse_dashboard_live_coalesced_total',
    help: 'Window records replaced by a newer record of the same device and resolution (or refused as older) before a flush',
    registers: [this.registry],
  });
  readonly anomaliesDropped = new Counter({
    name: 'fleetpulse_dashboard_live_anomalies_dropped_total',
    help: 'Anomalies not sent to a socket whose unsent queue was over FLEETPULSE_LIVE_MAX_ANOMALY_BACKLOG',
    registers: [this.registry],
  });
  readonly slowSkipped = new Counter({
    name: 'fleetpulse_dashboard_live_slow_skips_total',
    help: 'Sockets skipped by a flush because their unsent queue was over FLEETPULSE_LIVE_MAX_BACKLOG',
    registers: [this.registry],
  });
  readonly sockets = new Gauge({
    name: 'fleetpulse_dashboard_live_sockets',
    help: 'Connected socket.io clients on /live',
    registers: [this.registry],
  });
  readonly flushSeconds = new Histogram({
    name: 'fleetpulse_dashboard_live_flush_seconds',
    help: 'Time of one coalescing flush',
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
    registers: [this.registry],
  });
  readonly httpRequests = new Histogram({
    name: 'fleetpulse_dashboard_http_request_seconds',
    help: 'HTTP requests by route and status',
    labelNames: ['route', 'status'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'fleetpulse_dashboard_' });
  }
}
