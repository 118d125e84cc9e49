import {
  contextFromHeaders,
  InMemorySpanExporter,
  kafkaAttributes,
  LinkSample,
  ROOT_CONTEXT,
  SpanKind,
  spanContextFromHeaders,
  traceHeaders,
  Tracing,
} from './tracing';
import { tracingConfig } from './tracing-config';

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const parentId = '00f067aa0ba902b7';
const sampled = `00-${traceId}-${parentId}-01`;

function tracing(sampleRatio = 1) {
  const exporter = new InMemorySpanExporter();
  return { exporter, t: new Tracing({ service: 'test', exporter, sampleRatio, processing: 'simple' }) };
}

/** Headers as a kafkajs consumer hands them over: every value a Buffer. */
const asConsumed = (h: Record<string, string>) =>
  Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Buffer.from(v)]));

describe('tracingConfig', () => {
  it('is off without an OTLP endpoint, whatever the ratio', () => {
    const problems: string[] = [];
    expect(tracingConfig({ FLEETPULSE_TRACE_SAMPLE_RATIO: '0.5' }, problems)).toEqual({
      endpoint: null,
      sampleRatio: 0.5,
    });
    expect(problems).toEqual([]);
  });

  it('takes the traces endpoint as is, and the base one with /v1/traces', () => {
    const problems: string[] = [];
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/custom' }, problems).endpoint).toBe(
      'http://c:4318/custom',
    );
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' }, problems).endpoint).toBe(
      'http://c:4318/v1/traces',
    );
    expect(
      tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }, problems).endpoint,
    ).toBeNull();
    expect(problems).toEqual([]);
  });

  it('names every bad variable', () => {
    const problems: string[] = [];
    tracingConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'ftp://x', FLEETPULSE_TRACE_SAMPLE_RATIO: '2' }, problems);
    expect(problems).toEqual([
      'FLEETPULSE_TRACE_SAMPLE_RATIO: "2" is not a number from 0 to 1',
      'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "ftp://x" is not an http(s) URL',
    ]);
  });
});

describe('propagation through Kafka headers', () => {
  it('a span injected into a record is the parent of the span its consumer starts', () => {
    const { t, exporter } = tracing();
    const producerSpan = t.startSpan('send telemetry.raw', SpanKind.PRODUCER, ROOT_CONTEXT);
    const headers = traceHeaders(producerSpan);
    expect(headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    producerSpan.end();
    const consumer = t.startSpan('process', SpanKind.CONSUMER, contextFromHeaders(asConsumed(headers)));
    consumer.end();
    const [sent, processed] = exporter.getFinishedSpans();
    expect(processed!.spanContext().traceId).toBe(sent!.spanContext().traceId);
    expect(processed!.parentSpanContext?.spanId).toBe(sent!.spanContext().spanId);
  });

  it('carries tracestate when there is one, and nothing is made of missing or broken headers', () => {
    const ctx = spanContextFromHeaders(asConsumed({ traceparent: sampled, tracestate: 'vendor=x' }));
    expect(ctx).toMatchObject({ traceId, spanId: parentId, traceFlags: 1, isRemote: true });
    expect(ctx?.traceState?.get('vendor')).toBe('x');
    const { t } = tracing();
    const child = t.startSpan(
      'child',
      SpanKind.INTERNAL,
      contextFromHeaders({ traceparent: sampled, tracestate: 'vendor=x' }),
    );
    expect(traceHeaders(child).tracestate).toBe('vendor=x');
    expect(spanContextFromHeaders(undefined)).toBeUndefined();
    expect(spanContextFromHeaders({})).toBeUndefined();
    expect(spanContextFromHeaders({ traceparent: 'garbage' })).toBeUndefined();
    // Whatever a producer put in the headers: never a throw.
    expect(spanContextFromHeaders({ traceparent: null, tracestate: null })).toBeUndefined();
    expect(spanContextFromHeaders({ traceparent: [Buffer.from(sampled)] })?.traceId).toBe(traceId);
    expect(spanContextFromHeaders({ traceparent: `00-${'0'.repeat(32)}-${parentId}-01` })).toBeUndefined();
  });

  it('samples parent-based: a sampled parent always, a new trace by the ratio', () => {
    const { t, exporter } = tracing(0);
    t.startSpan('child of sampled', SpanKind.SERVER, contextFromHeaders({ traceparent: sampled })).end();
    const root = t.startSpan('new trace', SpanKind.SERVER);
    root.end();
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['child of sampled']);
    // Not recorded, but still propagated as not sampled, so downstream does not sample it either.
    expect(traceHeaders(root).traceparent).toMatch(/-00$/);
  });
});

describe('LinkSample', () => {
  it('keeps at most its bound of valid contexts, and starts over once taken', () => {
    const sample = new LinkSample(4);
    for (let i = 0; i < 100; i++) {
      const span = i.toString(16).padStart(16, '1');
      sample.offer({ traceparent: Buffer.from(`00-${traceId}-${span}-01`) });
    }
    sample.offer(undefined);
    sample.offer({ other: 'x' });
    const { links, offered } = sample.take();
    expect(offered).toBe(100);
    expect(links).toHaveLength(4);
    for (const l of links) expect(l.context.traceId).toBe(traceId);
    expect(new Set(links.map((l) => l.context.spanId)).size).toBe(4);
    expect(sample.take()).toEqual({ links: [], offered: 0 });
  });

  it('a span made with the sample links to them', () => {
    const { t, exporter } = tracing();
    const sample = new LinkSample();
    sample.offer({ traceparent: sampled });
    t.startSpan('flush', SpanKind.PRODUCER, ROOT_CONTEXT, kafkaAttributes('send', 'x', 1), sample.take().links).end();
    const [span] = exporter.getFinishedSpans();
    expect(span!.links.map((l) => l.context.spanId)).toEqual([parentId]);
    expect(span!.parentSpanContext).toBeUndefined();
    expect(span!.attributes['messaging.destination.name']).toBe('x');
  });
});

describe('Tracing.start', () => {
  it('is undefined when off', async () => {
    await expect(Tracing.start('x', { endpoint: null, sampleRatio: 1 })).resolves.toBeUndefined();
  });
  // Exporting itself is checked outside jest: the OTLP exporter loads its HTTP agent by a dynamic import(), which
  // jest's CommonJS runtime refuses.
});
