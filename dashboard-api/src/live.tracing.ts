import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import {
  kafkaAttributes,
  MaxLinks,
  ROOT_CONTEXT,
  SpanKind,
  spanContextFromHeaders,
  type Link,
  type SpanContext,
  type Tracing,
} from '@fleetpulse/runtime/tracing';
import type { KafkaMessage } from 'kafkajs';
import type { DashboardMetrics } from './metrics.service';

/** What the live path keeps of a window record's Kafka record until the coalescer's flush emits it. */
interface Received {
  topic: string;
  /** Kafka timestamp, ms. */
  ts: number;
  /** Its `traceparent` (tracing on only). */
  context?: SpanContext;
}

/**
 * The dashboard's end of the traces and its stage delay (docs/contract.md, "Traces and stage delays"): from a
 * record's Kafka timestamp to its socket.io emit, and a span per push LINKED to the records' contexts. Anomalies
 * are emitted as they arrive (one span each); window records wait in the coalescer, so what is needed of them is
 * kept beside the record object (a WeakMap: dropped with the record, coalesced away or not) and a flush is one span
 * linked to at most MaxLinks of the records it emits.
 */
@Injectable()
export class LiveTracing implements OnApplicationShutdown {
  private readonly received = new WeakMap<object, Received>();
  private links: Link[] = [];
  private emitted = 0;
  private readonly delayOf = new Map<string, { observe(v: number): void }>();

  constructor(
    /** Undefined: tracing off (the stage delay is observed all the same). */
    private readonly tracing: Tracing | undefined,
    private readonly metrics: DashboardMetrics,
  ) {}

  /** A window record (metrics.aggregates, metrics.live) handed to the gateway: kept until it is emitted. */
  handedOver(topic: string, record: object, message: KafkaMessage | undefined): void {
    if (message === undefined) return;
    const context = this.tracing ? spanContextFromHeaders(message.headers) : undefined;
    this.received.set(record, { topic, ts: Number(message.timestamp), ...(context && { context }) });
  }

  /** A record sent at once (an anomaly): its stage delay, and its push span linked to the record. */
  sentNow(topic: string, message: KafkaMessage | undefined, now = Date.now()): void {
    if (message === undefined) return;
    this.observe(topic, Number(message.timestamp), now);
    if (this.tracing === undefined) return;
    const context = spanContextFromHeaders(message.headers);
    this.tracing
      .startSpan(
        `send live ${topic}`,
        SpanKind.PRODUCER,
        ROOT_CONTEXT,
        { ...kafkaAttributes('process', topic, 1), 'messaging.system': 'socket.io' },
        context ? [{ context }] : undefined,
      )
      .end();
  }

  /** The coalescer's flush emits `records` (those of one device it sends to some room). */
  emitting(records: readonly object[], now = Date.now()): void {
    for (const r of records) {
      const got = this.received.get(r);
      if (got === undefined) continue;
      this.received.delete(r);
      this.observe(got.topic, got.ts, now);
      this.emitted++;
      if (got.context && this.links.length < MaxLinks) this.links.push({ context: got.context });
    }
  }

  /** The flush is over: one span for it, linked to (some of) the records it emitted. */
  flushed(): void {
    if (this.emitted === 0) return;
    const links = this.links;
    const count = this.emitted;
    this.links = [];
    this.emitted = 0;
    this.tracing
      ?.startSpan(
        'send live aggregates',
        SpanKind.PRODUCER,
        ROOT_CONTEXT,
        { 'messaging.system': 'socket.io', 'messaging.batch.message_count': count },
        links,
      )
      .end();
  }

  private observe(topic: string, ts: number, now: number): void {
    if (!Number.isFinite(ts)) return;
    let h = this.delayOf.get(topic);
    if (h === undefined) this.delayOf.set(topic, (h = this.metrics.stageDelay.labels(topic)));
    h.observe(Math.max(0, now - ts) / 1000);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.tracing?.shutdown();
  }
}
