import type { Counter, Histogram } from 'prom-client';
import { ServiceRegistry } from '@fleetpulse/runtime/metrics';
import type { IngestCounters, IngestOutcome, IngestSource } from './pipeline';
import type { ProducerObserver } from './producer';

/** Prometheus metrics of one ingestion instance, served at /metrics. */
export class IngestionMetrics extends ServiceRegistry implements IngestCounters, ProducerObserver {
  private readonly accepted = this.counter(
    'fleetpulse_ingestion_events_accepted_total',
    'Events acknowledged by Kafka and answered as accepted',
    ['source'],
  );
  private readonly rejected = this.counter(
    'fleetpulse_ingestion_events_rejected_total',
    'Events rejected as invalid (sent to telemetry.dlq)',
    ['source'],
  );
  readonly requests = this.counter(
    'fleetpulse_ingestion_requests_total',
    'Requests (HTTP) and PUBLISH packets (MQTT) by answer: the HTTP status, or for MQTT acked, refused, throttled, unavailable, error',
    ['source', 'status'],
  );
  readonly requestSeconds = this.histogram(
    'fleetpulse_ingestion_request_seconds',
    'Request latency from first byte to answer',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    ['source'],
  );
  private readonly produceSeconds = this.histogram(
    'fleetpulse_ingestion_produce_seconds',
    'Kafka sendBatch latency (acks from all in-sync replicas)',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    ['ok'],
  );
  private readonly stageDelay = this.histogram(
    'fleetpulse_ingestion_stage_delay_seconds',
    'Pipeline stage delay: a request (or PUBLISH) received to its accepted events acknowledged by Kafka',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    ['source'],
  );
  private readonly batchEvents = this.histogram(
    'fleetpulse_ingestion_produce_batch_events',
    'Events per Kafka batch (group commit)',
    [1, 10, 100, 500, 1000, 5000, 10000, 50000, 100000],
  );
  private readonly inFlight = this.gauge(
    'fleetpulse_ingestion_events_in_flight',
    'Events waiting for Kafka acknowledgement',
  );

  readonly mqttConnections = this.counter(
    'fleetpulse_ingestion_mqtt_connections_total',
    'MQTT CONNECTs by CONNACK: accepted, identifier-rejected (2), throttled (3: too many failed logins from the address), bad-credentials (4), not-authorized (5)',
    ['result'],
  );
  readonly mqttClients = this.gauge('fleetpulse_ingestion_mqtt_clients', 'MQTT clients connected now');
  readonly mqttDropped = this.counter(
    'fleetpulse_ingestion_mqtt_dropped_total',
    'MQTT connections closed at a bound: packet-too-large, connect-too-large, not-connect-first, qos2, malformed-length, buffer-budget, connection-limit, login-limit, connect-timeout',
    ['reason'],
  );
  readonly mqttBufferedBytes = this.gauge(
    'fleetpulse_ingestion_mqtt_buffered_bytes',
    'Bytes of MQTT packets not yet whole, across connections (bounded by FLEETPULSE_MQTT_MAX_BUFFERED_BYTES)',
  );
  readonly rateTracked = this.gauge(
    'fleetpulse_ingestion_rate_tracked_keys',
    'Keys the rate limits track now: devices (events per device), addresses (failed logins)',
    ['table'],
  );

  constructor() {
    super('fleetpulse_ingestion_');
  }

  /**
   * prom-client hashes a label object on every call; a request costs a few of them, which shows at one event a
   * request. The label sets are few, so their children are kept.
   */
  private readonly counters = new Map<string, { inc(n?: number): void }>();
  private readonly histograms = new Map<string, { observe(v: number): void }>();

  private counted<L extends string>(metric: Counter<L>, key: string, labels: Partial<Record<L, string>>) {
    let c = this.counters.get(key);
    if (c === undefined) this.counters.set(key, (c = metric.labels(labels)));
    return c;
  }

  private observed<L extends string>(metric: Histogram<L>, key: string, labels: Partial<Record<L, string>>) {
    let h = this.histograms.get(key);
    if (h === undefined) this.histograms.set(key, (h = metric.labels(labels)));
    return h;
  }

  /** A request (HTTP) or PUBLISH (MQTT) answered with `status`, `seconds` after its first byte (when timed). */
  request(source: IngestSource, status: string, seconds?: number): void {
    this.counted(this.requests, `requests ${source} ${status}`, { source, status }).inc();
    if (seconds !== undefined) this.observed(this.requestSeconds, `seconds ${source}`, { source }).observe(seconds);
  }

  onOutcome(outcome: IngestOutcome, source: IngestSource): void {
    if (outcome.kind !== 'accepted') return;
    if (outcome.accepted > 0) this.counted(this.accepted, `accepted ${source}`, { source }).inc(outcome.accepted);
    if (outcome.rejected > 0) this.counted(this.rejected, `rejected ${source}`, { source }).inc(outcome.rejected);
  }

  onAcked(source: IngestSource, ms: number): void {
    this.observed(this.stageDelay, `stage ${source}`, { source }).observe(ms / 1000);
  }

  onBatch(_records: number, events: number, seconds: number, ok: boolean): void {
    this.observed(this.produceSeconds, `produce ${ok}`, { ok: String(ok) }).observe(seconds);
    if (ok) this.batchEvents.observe(events);
  }

  onInFlight(events: number): void {
    this.inFlight.set(events);
  }
}
