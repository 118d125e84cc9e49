import { Topics } from '@fleetpulse/contracts';
import { parseTelemetry } from '@fleetpulse/native';
import { endSpan, type Context, type Tracing } from '@fleetpulse/runtime/tracing';
import type { IngestionConfig, TokenGrant } from './config';
import type { RateLimits, Throttled } from './limits';
import type { GroupCommitProducer, OutgoingRecord } from './producer';
import { startProduceSpan, type ProduceSpan } from './tracing';

export type PayloadFormat = 'json' | 'ndjson';
export type IngestSource = 'http' | 'mqtt';

export interface IngestRequest {
  body: Buffer;
  format: PayloadFormat;
  grant: TokenGrant;
  /** The only device the events may be of (MQTT: the topic's); absent: those the grant allows. */
  device?: string;
  source: IngestSource;
  receivedAt: number;
  /** The request's span (tracing on): the produce span is its child, and the records carry that one's context. */
  trace?: Context;
}

export type IngestOutcome =
  | { kind: 'accepted'; accepted: number; rejected: number; errors: { index: number; error: string }[] }
  | { kind: 'unparseable'; error: string; offset: number }
  | { kind: 'too-many-events'; limit: number }
  | ({ kind: 'throttled' } & Throttled);

export interface IngestCounters {
  onOutcome?(outcome: IngestOutcome, source: IngestSource): void;
  /** Accepted events acknowledged by Kafka, `ms` after their request was received (the stage delay). */
  onAcked?(source: IngestSource, ms: number): void;
}

/**
 * The one path from a payload to Kafka, whichever door (HTTP, MQTT) it came through: parse and validate on the
 * native addon, produce accepted events to telemetry.raw and rejected ones to telemetry.dlq, and resolve only when
 * Kafka acknowledged all of them. Throws the producer's retriable errors (nothing was accepted then).
 *
 * Rate limits (when given): every parsed request spends its events from its token's bucket (at least one: a
 * request costs), and each device its own; a request naming a device over its rate is `throttled` and nothing of
 * it is accepted. Whether the token may send at all is the door's to ask before it reads the payload.
 */
export class IngestPipeline {
  constructor(
    private readonly config: Pick<IngestionConfig, 'maxEventsPerRequest' | 'maxFutureMs' | 'maxPastMs' | 'rawTopic'>,
    private readonly producer: GroupCommitProducer,
    private readonly counters: IngestCounters = {},
    private readonly limits?: RateLimits,
    /** Undefined: tracing off, and a request costs no more than that check. */
    private readonly tracing?: Tracing,
  ) {}

  async ingest(req: IngestRequest): Promise<IngestOutcome> {
    // A device id has no wildcard, so as a glob it allows itself only.
    const allowedDevices = req.device ?? req.grant.allowedDevices;
    const result = parseTelemetry(req.body, {
      contentType: req.format,
      receivedAt: req.receivedAt,
      nowMs: req.receivedAt,
      maxFutureMs: this.config.maxFutureMs,
      maxPastMs: this.config.maxPastMs,
      maxEvents: this.config.maxEventsPerRequest,
      groupByDevice: true,
      ...(allowedDevices === undefined ? {} : { allowedDevices }),
    });
    const throttled = result.ok ? this.limits?.admitDevices(result.keys) : undefined;
    const spentBy = throttled === undefined ? result.keys : [];
    this.limits?.spend(req.grant.token, result.accepted + result.rejected.length, spentBy, result.eventCounts);
    const dlqHeaders = (error: string) => ({ error, source: req.source, receivedAt: String(req.receivedAt) });
    let outcome: IngestOutcome;
    if (throttled !== undefined) {
      outcome = { kind: 'throttled', ...throttled };
    } else if (result.tooManyEvents) {
      outcome = { kind: 'too-many-events', limit: this.config.maxEventsPerRequest };
    } else if (!result.ok) {
      const error = result.error ?? 'unparseable body';
      const offset = result.offset ?? 0;
      // The client is told (400), and the bytes are kept for whoever investigates the device.
      await this.producer.send(
        [{ topic: Topics.dlq, key: null, value: req.body, headers: dlqHeaders(`offset ${offset}: ${error}`) }],
        0,
      );
      outcome = { kind: 'unparseable', error, offset };
    } else {
      const records: OutgoingRecord[] = [];
      const produce: ProduceSpan | undefined =
        this.tracing && req.trace && result.keys.length > 0
          ? startProduceSpan(this.tracing, req.trace, this.config.rawTopic, result.keys.length)
          : undefined;
      const headers = produce?.headers;
      let start = 0;
      for (let i = 0; i < result.keys.length; i++) {
        const end = result.valueEnds[i]!;
        const value = result.values.subarray(start, end);
        records.push(
          headers === undefined
            ? { topic: this.config.rawTopic, key: result.keys[i]!, value }
            : { topic: this.config.rawTopic, key: result.keys[i]!, value, headers },
        );
        start = end;
      }
      for (const r of result.rejected) {
        records.push({
          topic: Topics.dlq,
          key: null,
          value: req.body.subarray(r.start, r.end),
          headers: dlqHeaders(r.error),
        });
      }
      if (records.length > 0) {
        try {
          await this.producer.send(records, result.accepted);
        } catch (e) {
          if (produce) endSpan(produce.span, e);
          throw e;
        }
        produce?.span.end();
        if (result.accepted > 0) this.counters.onAcked?.(req.source, Date.now() - req.receivedAt);
      }
      outcome = {
        kind: 'accepted',
        accepted: result.accepted,
        rejected: result.rejected.length,
        errors: result.rejected.map((r) => ({ index: r.index, error: r.error })),
      };
    }
    this.counters.onOutcome?.(outcome, req.source);
    return outcome;
  }
}
