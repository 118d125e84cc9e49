/**
 * Ingestion's spans (docs/contract.md, "Traces and stage delays"): one per HTTP request (a child of the device's
 * `traceparent` when it sends one) or MQTT PUBLISH, and under it one per produce, whose context every record of the
 * request carries in its Kafka headers. Called once per request; nothing here runs when tracing is off.
 */
import {
  contextFromHeaders,
  contextOf,
  endSpan,
  kafkaAttributes,
  SpanKind,
  traceHeaders,
  type CarrierHeaders,
  type Context,
  type Span,
  type Tracing,
} from '@fleetpulse/runtime/tracing';

export interface RequestSpan {
  span: Span;
  /** The request span as a parent, for the produce span under it. */
  context: Context;
}

/** The span of one request or PUBLISH; `headers` (HTTP) may name the device's trace. */
export function startRequestSpan(
  tracing: Tracing,
  name: string,
  headers: CarrierHeaders | undefined,
  attributes: Record<string, string>,
): RequestSpan {
  const span = tracing.startSpan(name, SpanKind.SERVER, contextFromHeaders(headers), attributes);
  return { span, context: contextOf(span) };
}

/** Ends a request span with its answer: an HTTP status (5xx an error) or an MQTT outcome (anything but acked). */
export function endRequestSpan(r: RequestSpan, answer: number | string): void {
  if (typeof answer === 'number') {
    r.span.setAttribute('http.response.status_code', answer);
    endSpan(r.span, answer >= 500 ? `HTTP ${answer}` : undefined);
  } else {
    r.span.setAttribute('fleetpulse.mqtt.outcome', answer);
    endSpan(r.span, answer === 'acked' ? undefined : answer);
  }
}

export interface ProduceSpan {
  span: Span;
  /** `traceparent` (and `tracestate`) of the produce span: one object shared by the request's records. */
  headers: Record<string, string>;
}

export function startProduceSpan(tracing: Tracing, parent: Context, topic: string, records: number): ProduceSpan {
  const span = tracing.startSpan(`send ${topic}`, SpanKind.PRODUCER, parent, kafkaAttributes('send', topic, records));
  return { span, headers: traceHeaders(span) };
}
