/**
 * Scoring's traces and stage delay (docs/contract.md, "Traces and stage delays"). A step scores a batch of window
 * records: its delivery is one span LINKED to (a sample of at most MaxLinks of) the records' contexts, and every
 * score it publishes carries that span's `traceparent`. The stage delay is each record's Kafka timestamp to its
 * step's scores acknowledged by Kafka. Steps run one at a time (one partition's batch under the Scorer's lock), so
 * what {@link StepTrace.read} took is what the next delivery belongs to.
 */
import {
  endSpan,
  kafkaAttributes,
  LinkSample,
  ROOT_CONTEXT,
  SpanKind,
  traceHeaders,
  type Span,
  type Tracing,
} from '@fleetpulse/runtime/tracing';
import type { KafkaMessage, Message } from 'kafkajs';
import type { ScoringMetrics } from './metrics';

export class StepTrace {
  private readonly sample = new LinkSample();
  /** Kafka timestamps (ms) of the current step's records. */
  private timestamps: number[] = [];
  private sourceTopic = '';

  constructor(
    private readonly tracing: Tracing | undefined,
    private readonly metrics: ScoringMetrics,
  ) {}

  /** A step begins with these records (per batch: their timestamps; tracing on, a sample of their contexts). */
  read(topic: string, messages: readonly KafkaMessage[]): void {
    this.sourceTopic = topic;
    this.timestamps = messages.map((m) => Number(m.timestamp));
    if (this.tracing === undefined) return;
    this.sample.take();
    for (const m of messages) this.sample.offer(m.headers);
  }

  /** Before the step's scores go out: the delivery span, whose context each score record carries. */
  begin(topic: string, messages: Message[]): Span | undefined {
    if (this.tracing === undefined) return undefined;
    const { links, offered } = this.sample.take();
    const span = this.tracing.startSpan(
      `process ${this.sourceTopic}`,
      SpanKind.CONSUMER,
      ROOT_CONTEXT,
      {
        ...kafkaAttributes('process', this.sourceTopic, this.timestamps.length),
        'fleetpulse.scores_topic': topic,
        'fleetpulse.scores': messages.length,
        'fleetpulse.records_linked_from': offered,
      },
      links,
    );
    const headers = traceHeaders(span);
    for (const m of messages) m.headers = headers;
    return span;
  }

  /** The scores are acknowledged by Kafka: the stage delay of each of the step's records. */
  published(now = Date.now()): void {
    for (const ts of this.timestamps) if (Number.isFinite(ts)) this.metrics.stageDelay.observe((now - ts) / 1000);
    this.timestamps = [];
  }

  /** The delivery is over: stored as well, or failed with `error`. */
  end(span: Span | undefined, error?: unknown): void {
    if (span) endSpan(span, error);
  }
}
