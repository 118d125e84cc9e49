import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { IngestCounters, IngestOutcome, IngestSource } from './pipeline';
import type { ProducerObserver } from './producer';

/** Prometheus metrics of one ingestion instance, served at /metrics. */
export class IngestionMetrics implements IngestCounters, ProducerObserver {
  readonly registry = new Registry();
  private readonly accepted = new Counter({
    name: 'fleetpulse_ingestion_events_accepted_total',
    help: 'Events acknowledged by Kafka and answered as accepted',
    labelNames: ['source'],
    registers: [this.registry],
  });
  private readonly rejected = new Counter({
    name: 'fleetpulse_ingestion_events_rejected_total',
    help: 'Events rejected as invalid (sent to telemetry.dlq)',
    labelNames: ['source'],
    registers: [this.registry],
  });
  readonly requests = new Counter({
    name: 'fleetpulse_ingestion_requests_total',
    help: 'Requests (HTTP) and PUBLISH packets (MQTT) by answer: the HTTP status, or for MQTT acked, refused, unavailable, error',
    labelNames: ['source', 'status'],
    registers: [this.registry],
  });
  readonly requestSeconds = new Histogram({
    name: 'fleetpulse_ingestion_request_seconds',
    help: 'Request latency from first byte to answer',
    labelNames: ['source'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly produceSeconds = new Histogram({
    name: 'fleetpulse_ingestion_produce_seconds',
    help: 'Kafka sendBatch latency (acks from all in-sync replicas)',
    labelNames: ['ok'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly batchEvents = new Histogram({
    name: 'fleetpulse_ingestion_produce_batch_events',
    help: 'Events per Kafka batch (group commit)',
    buckets: [1, 10, 100, 500, 1000, 5000, 10000, 50000, 100000],
    registers: [this.registry],
  });
  private readonly inFlight = new Gauge({
    name: 'fleetpulse_ingestion_events_in_flight',
    help: 'Events waiting for Kafka acknowledgement',
    registers: [this.registry],
  });

  readonly mqttConnections = new Counter({
    name: 'fleetpulse_ingestion_mqtt_connections_total',
    help: 'MQTT CONNECTs by CONNACK: accepted, bad-credentials, not-authorized',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly mqttClients = new Gauge({
    name: 'fleetpulse_ingestion_mqtt_clients',
    help: 'MQTT clients connected now',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'fleetpulse_ingestion_' });
  }

  onOutcome(outcome: IngestOutcome, source: IngestSource): void {
    if (outcome.kind !== 'accepted') return;
    if (outcome.accepted > 0) this.accepted.inc({ source }, outcome.accepted);
    if (outcome.rejected > 0) this.rejected.inc({ source }, outcome.rejected);
  }

  onBatch(_records: number, events: number, seconds: number, ok: boolean): void {
    this.produceSeconds.observe({ ok: String(ok) }, seconds);
    if (ok) this.batchEvents.observe(events);
  }

  onInFlight(events: number): void {
    this.inFlight.set(events);
  }
}
