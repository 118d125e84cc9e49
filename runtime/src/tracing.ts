import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanContext,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import type { TracingConfig } from './tracing-config';

/**
 * OpenTelemetry traces across the pipeline (docs/contract.md, "Traces and stage delays"): W3C `traceparent` /
 * `tracestate` carried in Kafka record headers (and read from a device's HTTP request), spans exported over OTLP/HTTP.
 *
 * Each service instance owns its provider and passes contexts explicitly: no global tracer, propagator or context
 * manager is registered, so tests run several services in one process and code that does not trace pays nothing.
 * A service holds `Tracing | undefined` and checks it once per request or batch; undefined is "off".
 */
export {
  InMemorySpanExporter,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  type Context,
  type Link,
  type ReadableSpan,
  type Span,
  type SpanContext,
};

/** Message headers as kafkajs gives them (and Node's HTTP headers, a subset); a producer may send a null value. */
export type CarrierHeaders = Record<string, Buffer | string | (Buffer | string)[] | null | undefined>;

const propagator = new W3CTraceContextPropagator();

const getter: TextMapGetter<CarrierHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const v = carrier[key];
    if (v == null) return undefined;
    if (Array.isArray(v)) return v.filter((x) => x != null).map((x) => x.toString());
    return v.toString();
  },
};

const setter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => void (carrier[key] = value),
};

/** The remote parent named by `traceparent` (and `tracestate`) in `headers`; ROOT_CONTEXT when none is valid. */
export function contextFromHeaders(headers: CarrierHeaders | undefined): Context {
  if (headers == null || headers.traceparent == null) return ROOT_CONTEXT;
  return propagator.extract(ROOT_CONTEXT, headers, getter);
}

/** The span context carried in `headers`, if a valid one is. */
export function spanContextFromHeaders(headers: CarrierHeaders | undefined): SpanContext | undefined {
  return trace.getSpanContext(contextFromHeaders(headers));
}

/**
 * `traceparent` (and `tracestate` when the span has one) naming `span`: the headers of every record it produces.
 * Made once per span and shared by its records.
 */
export function traceHeaders(span: Span): Record<string, string> {
  const headers: Record<string, string> = {};
  propagator.inject(contextOf(span), headers, setter);
  return headers;
}

/** `span` as the parent of the spans started under it. */
export function contextOf(span: Span): Context {
  return trace.setSpan(ROOT_CONTEXT, span);
}

/** Most links one span carries (a flush or batch span links a sample of the records it consumed). */
export const MaxLinks = 32;

/**
 * A uniform sample of at most `max` record contexts seen since the last {@link take} (reservoir sampling): what a
 * span that aggregates many records links to, bounded whatever the batch size.
 */
export class LinkSample {
  private links: Link[] = [];
  private seen = 0;

  constructor(private readonly max = MaxLinks) {}

  /** Offers one record's headers; only the sampled ones are parsed. */
  offer(headers: CarrierHeaders | undefined): void {
    if (headers == null || headers.traceparent == null) return;
    const i = this.seen++;
    const slot = i < this.max ? i : Math.floor(Math.random() * (i + 1));
    if (slot >= this.max) return;
    const context = spanContextFromHeaders(headers);
    if (context === undefined) return;
    if (slot < this.links.length) this.links[slot] = { context };
    else this.links.push({ context });
  }

  get size(): number {
    return this.links.length;
  }

  /** The sample, and how many records with a context were offered; starts a new one. */
  take(): { links: Link[]; offered: number } {
    const out = { links: this.links, offered: this.seen };
    this.links = [];
    this.seen = 0;
    return out;
  }
}

/** Attributes of a Kafka span (OpenTelemetry messaging conventions). */
export function kafkaAttributes(operation: 'send' | 'receive' | 'process', topic: string, count?: number): Attributes {
  const a: Attributes = {
    'messaging.system': 'kafka',
    'messaging.operation.type': operation,
    'messaging.destination.name': topic,
  };
  if (count !== undefined) a['messaging.batch.message_count'] = count;
  return a;
}

/** Ends `span` with an error status when `error` is given. */
export function endSpan(span: Span, error?: unknown): void {
  if (error !== undefined) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    if (error instanceof Error) span.recordException(error);
  }
  span.end();
}

export interface TracingOptions {
  /** service.name of the spans' resource, e.g. fleetpulse-ingestion. */
  service: string;
  exporter: SpanExporter;
  /** Root sampler ratio of the parent-based sampler; default 1. */
  sampleRatio?: number;
  /** batch (default): spans queue (at most 2048) and go out every few seconds; simple: each at its end (tests). */
  processing?: 'batch' | 'simple';
}

/** One service instance's tracer provider: sampled parent-based by ratio, exported through one processor. */
export class Tracing {
  readonly tracer: Tracer;
  private readonly provider: BasicTracerProvider;

  constructor(o: TracingOptions) {
    const processor =
      o.processing === 'simple'
        ? new SimpleSpanProcessor(o.exporter)
        : // Bounded: past maxQueueSize spans are dropped, never buffered without limit.
          new BatchSpanProcessor(o.exporter, { maxQueueSize: 2048, maxExportBatchSize: 512 });
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': o.service }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(o.sampleRatio ?? 1) }),
      spanProcessors: [processor],
    });
    this.tracer = this.provider.getTracer('fleetpulse');
  }

  /**
   * Tracing as `config` says: undefined when off (no endpoint), else exporting over OTLP/HTTP. The exporter is
   * loaded only then.
   */
  static async start(service: string, config: TracingConfig): Promise<Tracing | undefined> {
    if (config.endpoint === null) return undefined;
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    return new Tracing({
      service,
      exporter: new OTLPTraceExporter({ url: config.endpoint }),
      sampleRatio: config.sampleRatio,
    });
  }

  /** A span whose parent is `parent` (a remote context from headers, or ROOT_CONTEXT for a new trace). */
  startSpan(
    name: string,
    kind: SpanKind,
    parent: Context = ROOT_CONTEXT,
    attributes?: Attributes,
    links?: Link[],
  ): Span {
    return this.tracer.startSpan(name, { kind, ...(attributes && { attributes }), ...(links && { links }) }, parent);
  }

  /** Exports what is queued. */
  flush(): Promise<void> {
    return this.provider.forceFlush();
  }

  /** Exports what is queued and stops. */
  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}
