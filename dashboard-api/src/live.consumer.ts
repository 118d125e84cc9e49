import { Controller, Logger } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { Topics, type AggregateRow, type AnomalyScore } from '@fleetpulse/contracts';
import { LiveGateway } from './live.gateway';
import { DashboardMetrics } from './metrics.service';

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Cheap shape checks (this runs per record): the producers validate; we only refuse what would break a client. */
export function asAggregateRow(v: unknown): AggregateRow | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Record<string, unknown>;
  return typeof r.deviceId === 'string' &&
    typeof r.metric === 'string' &&
    typeof r.resolution === 'string' &&
    isNum(r.windowStart) &&
    isNum(r.windowEnd)
    ? (v as AggregateRow)
    : undefined;
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
 * Kafka side of the hybrid app (main.ts connects the Kafka transport): every record of metrics.aggregates and
 * anomaly.scores, handed to the gateway. Handlers never throw: a bad record is counted and skipped, as a throw
 * would make kafkajs retry the batch.
 */
@Controller()
export class LiveConsumer {
  private readonly log = new Logger('LiveConsumer');
  private invalidLogged = 0;

  constructor(
    private readonly gateway: LiveGateway,
    private readonly metrics: DashboardMetrics,
  ) {}

  @EventPattern(Topics.aggregates)
  onAggregate(@Payload() value: unknown): void {
    const row = asAggregateRow(value);
    if (!row) return this.invalid(Topics.aggregates, value);
    this.metrics.kafkaRecords.inc({ topic: Topics.aggregates, outcome: 'ok' });
    try {
      this.gateway.publishAggregate(row);
    } catch (e) {
      this.log.error(`publishing an aggregate: ${String(e)}`);
    }
  }

  @EventPattern(Topics.scores)
  onScore(@Payload() value: unknown): void {
    const score = asScore(value);
    if (!score) return this.invalid(Topics.scores, value);
    this.metrics.kafkaRecords.inc({ topic: Topics.scores, outcome: 'ok' });
    if (!score.anomalous) return;
    try {
      this.gateway.publishAnomaly(score);
    } catch (e) {
      this.log.error(`publishing an anomaly: ${String(e)}`);
    }
  }

  private invalid(topic: string, value: unknown): void {
    this.metrics.kafkaRecords.inc({ topic, outcome: 'invalid' });
    // The first few are logged; the counter has the rest.
    if (this.invalidLogged++ < 10)
      this.log.warn(`skipping an invalid record on ${topic}: ${JSON.stringify(value)?.slice(0, 200)}`);
  }
}
