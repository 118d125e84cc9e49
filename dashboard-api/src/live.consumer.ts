import { Controller, Logger, Optional } from '@nestjs/common';
import { Ctx, EventPattern, Payload, type KafkaContext } from '@nestjs/microservices';
import {
  MetricStatNames,
  Topics,
  type AlertTransition,
  type AnomalyScore,
  type WindowRecord,
} from '@fleetpulse/contracts';
import { LiveGateway } from './live.gateway';
import { LiveTracing } from './live.tracing';
import { DashboardMetrics } from './metrics.service';

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The start of a value for a log line; never throws. */
function preview(value: unknown): string {
  try {
    return String(JSON.stringify(value)).slice(0, 200);
  } catch {
    return String(value).slice(0, 200);
  }
}

/**
 * Cheap shape checks of a v2 window record (this runs per record): the producer validates; we only refuse what would
 * break a client, with the reason. A v1 aggregate row (one metric, `metric` field) is refused by name.
 */
export function checkWindowRecord(v: unknown): WindowRecord | string {
  if (!isObject(v)) return 'not a JSON object';
  if (typeof v.metric === 'string' && v.metrics === undefined)
    return 'a v1 aggregate row (one metric); metrics.aggregates carries v2 window records';
  if (typeof v.deviceId !== 'string') return 'deviceId: expected a string';
  if (typeof v.resolution !== 'string') return 'resolution: expected a string';
  if (!isNum(v.windowStart)) return 'windowStart: expected a number';
  if (!isNum(v.windowEnd)) return 'windowEnd: expected a number';
  if (typeof v.final !== 'boolean') return 'final: expected true or false';
  if (!isObject(v.metrics)) return 'metrics: expected an object';
  let n = 0;
  for (const [name, stats] of Object.entries(v.metrics)) {
    n++;
    if (!isObject(stats)) return `metrics.${name}: expected an object`;
    for (const stat of MetricStatNames) if (!isNum(stats[stat])) return `metrics.${name}.${stat}: expected a number`;
  }
  if (n === 0) return 'metrics: empty';
  return v as unknown as WindowRecord;
}

export function asScore(v: unknown): AnomalyScore | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const s = v as Record<string, unknown>;
  return typeof s.deviceId === 'string' &&
    typeof s.model === 'string' &&
    typeof s.anomalous === 'boolean' &&
    isNum(s.windowStart) &&
    isNum(s.score)
    ? (v as AnomalyScore)
    : undefined;
}

/**
 * Cheap shape checks of an alert transition (the `alerts` topic, written by the alerting service): what a client
 * relies on, with the reason.
 */
export function checkTransition(v: unknown): AlertTransition | string {
  if (!isObject(v)) return 'not a JSON object';
  for (const f of ['id', 'ruleId', 'ruleName', 'deviceId', 'resolution', 'reason'] as const)
    if (typeof v[f] !== 'string' || v[f] === '') return `${f}: expected a string`;
  if (v.state !== 'firing' && v.state !== 'resolved') return 'state: expected "firing" or "resolved"';
  for (const f of ['episode', 'windowStart', 'at'] as const) if (!isNum(v[f])) return `${f}: expected a number`;
  if (v.value !== null && !isNum(v.value)) return 'value: expected a number or null';
  if (v.model !== undefined && typeof v.model !== 'string') return 'model: expected a string';
  return v as unknown as AlertTransition;
}

/**
 * Kafka side of the hybrid app (main.ts connects the Kafka transport): every record of metrics.aggregates (v2 window
 * records), metrics.live (provisional snapshots of open windows, `"final": false`), anomaly.scores and alerts (alert
 * transitions), handed to the gateway. Handlers never throw: a bad record is counted
 * (fleetpulse_dashboard_kafka_records_total{outcome="invalid"}), logged with its reason, and skipped, as a throw
 * would make kafkajs retry the batch.
 */
/** What `decode` gives for a record handled already (not watched, or not JSON). */
const Unwatched = Symbol('unwatched');

@Controller()
export class LiveConsumer {
  private readonly log = new Logger('LiveConsumer');
  private invalidSeen = 0;

  constructor(
    private readonly gateway: LiveGateway,
    private readonly metrics: DashboardMetrics,
    /** Stage delays and push spans (live.tracing.ts); absent in tests that build the consumer by hand. */
    @Optional() private readonly tracing?: LiveTracing,
  ) {}

  @EventPattern(Topics.aggregates)
  onAggregate(@Payload() raw: unknown, @Ctx() ctx?: KafkaContext): void {
    const value = this.decode(Topics.aggregates, raw, ctx, 'final');
    if (value === Unwatched) return;
    const record = checkWindowRecord(value);
    if (typeof record === 'string') return this.invalid(Topics.aggregates, record, value);
    this.metrics.kafkaRecords.inc({ topic: Topics.aggregates, outcome: 'ok' });
    this.tracing?.handedOver(Topics.aggregates, record, ctx?.getMessage());
    try {
      this.gateway.publishAggregate(record);
    } catch (e) {
      this.log.error(`publishing a window record: ${String(e)}`);
    }
  }

  /** A provisional snapshot: checked as a window record, and it must say `"final": false`. */
  @EventPattern(Topics.live)
  onLive(@Payload() raw: unknown, @Ctx() ctx?: KafkaContext): void {
    const value = this.decode(Topics.live, raw, ctx, 'provisional');
    if (value === Unwatched) return;
    const record = checkWindowRecord(value);
    if (typeof record === 'string') return this.invalid(Topics.live, record, value);
    if (record.final !== false)
      return this.invalid(Topics.live, 'final: expected false (metrics.live carries provisional records)', value);
    this.metrics.kafkaRecords.inc({ topic: Topics.live, outcome: 'ok' });
    this.tracing?.handedOver(Topics.live, record, ctx?.getMessage());
    try {
      this.gateway.publishAggregate(record);
    } catch (e) {
      this.log.error(`publishing a provisional record: ${String(e)}`);
    }
  }

  @EventPattern(Topics.scores)
  onScore(@Payload() raw: unknown, @Ctx() ctx?: KafkaContext): void {
    const value = this.decode(Topics.scores, raw, ctx, 'score');
    if (value === Unwatched) return;
    const score = asScore(value);
    if (!score) return this.invalid(Topics.scores, 'not an anomaly score', value);
    this.metrics.kafkaRecords.inc({ topic: Topics.scores, outcome: 'ok' });
    if (!score.anomalous) return;
    try {
      this.gateway.publishAnomaly(score);
      this.tracing?.sentNow(Topics.scores, ctx?.getMessage());
    } catch (e) {
      this.log.error(`publishing an anomaly: ${String(e)}`);
    }
  }

  /** An alert transition: to the device's and the fleet's subscribers, once per id (the gateway de-duplicates). */
  @EventPattern(Topics.alerts)
  onAlert(@Payload() raw: unknown): void {
    const value = this.decode(Topics.alerts, raw, undefined, null);
    if (value === Unwatched) return;
    const t = checkTransition(value);
    if (typeof t === 'string') return this.invalid(Topics.alerts, t, value);
    this.metrics.kafkaRecords.inc({ topic: Topics.alerts, outcome: 'ok' });
    try {
      this.gateway.publishAlert(t);
    } catch (e) {
      this.log.error(`publishing an alert: ${String(e)}`);
    }
  }

  /**
   * A record's value as JSON. The transport keeps values binary (kafkaTransport: `keepBinary`), so a record whose
   * device (its key) nobody watches is counted and passed over unparsed: at 10,000 devices that is most of ~20,000
   * records a second. An unreadable value is counted invalid, with the reason; an already decoded value (tests, other
   * transports) is taken as it is.
   */
  private decode(
    topic: string,
    raw: unknown,
    ctx: KafkaContext | undefined,
    kind: 'provisional' | 'final' | 'score' | null,
  ): unknown {
    if (!Buffer.isBuffer(raw)) return raw;
    const key = ctx?.getMessage().key;
    if (kind !== null && key != null && key.length > 0 && !this.gateway.wants(key.toString(), kind)) {
      this.metrics.kafkaRecords.inc({ topic, outcome: 'unwatched' });
      return Unwatched;
    }
    try {
      return JSON.parse(raw.toString()) as unknown;
    } catch (e) {
      this.invalid(topic, `not JSON (${(e as Error).message})`, raw.toString().slice(0, 200));
      return Unwatched;
    }
  }

  private invalid(topic: string, reason: string, value: unknown): void {
    this.metrics.kafkaRecords.inc({ topic, outcome: 'invalid' });
    // The first few are logged, then every 1000th; the counter has them all.
    const n = ++this.invalidSeen;
    if (n <= 10 || n % 1000 === 0)
      this.log.warn(`skipping an invalid record on ${topic} (${n} so far): ${reason}: ${preview(value)}`);
  }
}
