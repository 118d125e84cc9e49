/**
 * The processor's traces and stage delay (docs/contract.md, "Traces and stage delays"). A window aggregates many
 * records, so a flush that publishes window records gets one span (a new trace, OpenTelemetry messaging
 * conventions for batches) LINKED to a sample of at most MaxLinks of the records consumed since the last such
 * flush; each window record it publishes on metrics.aggregates carries that span's `traceparent`. With tracing off
 * this costs one check per consumed batch and per flush.
 */
import { Topics } from '@fleetpulse/contracts';
import {
  kafkaAttributes,
  LinkSample,
  ROOT_CONTEXT,
  SpanKind,
  traceHeaders,
  type Span,
  type Tracing,
} from '@fleetpulse/runtime/tracing';
import type { KafkaMessage, Message } from 'kafkajs';
import type { ClosedWindow } from './core';
import type { ProcessorMetrics } from './metrics';

export class FlushTracing {
  private readonly sample = new LinkSample();
  /** The stage-delay histogram's child per resolution (a label lookup per window costs more than the observe). */
  private readonly delayOf = new Map<string, { observe(v: number): void }>();

  constructor(
    private readonly tracing: Tracing | undefined,
    private readonly metrics: ProcessorMetrics,
  ) {}

  /** A batch folded: its records' contexts (a bounded sample) become the next publishing flush's links. */
  consumed(messages: readonly KafkaMessage[]): void {
    if (this.tracing === undefined) return;
    for (const m of messages) this.sample.offer(m.headers);
  }

  /** Before a flush publishes `published` (window records): its span, whose context each record carries. */
  begin(published: Message[]): Span | undefined {
    if (this.tracing === undefined || published.length === 0) return undefined;
    const { links, offered } = this.sample.take();
    const span = this.tracing.startSpan(
      `send ${Topics.aggregates}`,
      SpanKind.PRODUCER,
      ROOT_CONTEXT,
      { ...kafkaAttributes('send', Topics.aggregates, published.length), 'fleetpulse.records_linked_from': offered },
      links,
    );
    const headers = traceHeaders(span);
    for (const m of published) m.headers = headers;
    return span;
  }

  /**
   * The flush's window records are published (and its rows written): its span ends, and each window's stage delay
   * is observed, from its end (event time) to now. A flush that fails leaves its span unended (never exported).
   */
  published(span: Span | undefined, windows: readonly ClosedWindow[], now = Date.now()): void {
    span?.end();
    for (const w of windows) {
      let h = this.delayOf.get(w.resolution);
      if (h === undefined) this.delayOf.set(w.resolution, (h = this.metrics.stageDelay.labels(w.resolution)));
      h.observe(Math.max(0, now - w.windowEnd) / 1000);
    }
  }
}
