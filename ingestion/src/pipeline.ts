import { Topics } from '@fleetpulse/contracts';
import { parseTelemetry } from '@fleetpulse/native';
import type { IngestionConfig, TokenGrant } from './config';
import type { GroupCommitProducer, OutgoingRecord } from './producer';

export type PayloadFormat = 'json' | 'ndjson';
export type IngestSource = 'http' | 'mqtt';

export interface IngestRequest {
  body: Buffer;
  format: PayloadFormat;
  grant: TokenGrant;
  source: IngestSource;
  receivedAt: number;
}

export type IngestOutcome =
  | { kind: 'accepted'; accepted: number; rejected: number; errors: { index: number; error: string }[] }
  | { kind: 'unparseable'; error: string; offset: number }
  | { kind: 'too-many-events'; limit: number };

export interface IngestCounters {
  onOutcome?(outcome: IngestOutcome, source: IngestSource): void;
}

/**
 * The one path from a payload to Kafka, whichever door (HTTP, MQTT) it came through: parse and validate on the
 * native addon, produce accepted events to telemetry.raw and rejected ones to telemetry.dlq, and resolve only when
 * Kafka acknowledged all of them. Throws the producer's retriable errors (nothing was accepted then).
 */
export class IngestPipeline {
  constructor(
    private readonly config: Pick<IngestionConfig, 'maxEventsPerRequest' | 'maxFutureMs' | 'maxPastMs' | 'rawTopic'>,
    private readonly producer: GroupCommitProducer,
    private readonly counters: IngestCounters = {},
  ) {}

  async ingest(req: IngestRequest): Promise<IngestOutcome> {
    const result = parseTelemetry(req.body, {
      contentType: req.format,
      receivedAt: req.receivedAt,
      nowMs: req.receivedAt,
      maxFutureMs: this.config.maxFutureMs,
      maxPastMs: this.config.maxPastMs,
      maxEvents: this.config.maxEventsPerRequest,
      groupByDevice: true,
      ...(req.grant.allowedDevices === undefined ? {} : { allowedDevices: req.grant.allowedDevices }),
    });
    const dlqHeaders = (error: string) => ({ error, source: req.source, receivedAt: String(req.receivedAt) });
    let outcome: IngestOutcome;
    if (result.tooManyEvents) {
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
      let start = 0;
      for (let i = 0; i < result.keys.length; i++) {
        const end = result.valueEnds[i]!;
        records.push({ topic: this.config.rawTopic, key: result.keys[i]!, value: result.values.subarray(start, end) });
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
      if (records.length > 0) await this.producer.send(records, result.accepted);
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
