import { InMemorySpanExporter, MaxLinks, spanContextFromHeaders, Tracing } from '@fleetpulse/runtime/tracing';
import type { KafkaMessage, Message } from 'kafkajs';
import type { ClosedWindow } from './core';
import { ProcessorMetrics } from './metrics';
import { FlushTracing } from './tracing';

const traceOf = (i: number) => i.toString(16).padStart(32, 'a');
const spanOf = (i: number) => i.toString(16).padStart(16, 'b');

/** Records as a kafkajs consumer hands them over (header values are Buffers). */
function consumed(from: number, n: number): KafkaMessage[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return {
      key: Buffer.from(`d${i}`),
      value: Buffer.from('{}'),
      offset: String(i),
      timestamp: String(Date.now()),
      attributes: 0,
      headers: { traceparent: Buffer.from(`00-${traceOf(i)}-${spanOf(i)}-01`) },
    } as KafkaMessage;
  });
}

const window = (resolution: string, windowEnd: number) => ({ resolution, windowEnd }) as ClosedWindow;
const records = (n: number): Message[] => Array.from({ length: n }, (_, i) => ({ key: `d${i}`, value: '{}' }));

describe('FlushTracing', () => {
  it('a publishing flush is one span linked to at most MaxLinks consumed records; its window records carry it', () => {
    const exporter = new InMemorySpanExporter();
    const metrics = new ProcessorMetrics();
    const t = new FlushTracing(new Tracing({ service: 'p', exporter, processing: 'simple' }), metrics);
    t.consumed(consumed(0, 30));
    t.consumed(consumed(30, 30));
    t.consumed([{ ...consumed(60, 1)[0]!, headers: {} } as KafkaMessage]); // a record without a context is not linked
    const published = records(3);
    const span = t.begin(published);
    t.published(span, [window('1s', Date.now() - 2500)]);

    const [flush] = exporter.getFinishedSpans();
    expect(flush!.name).toBe('send metrics.aggregates');
    expect(flush!.parentSpanContext).toBeUndefined();
    expect(flush!.links).toHaveLength(MaxLinks);
    const linkedTraces = new Set(Array.from({ length: 60 }, (_, i) => traceOf(i)));
    for (const l of flush!.links) expect(linkedTraces.has(l.context.traceId)).toBe(true);
    expect(flush!.attributes['fleetpulse.records_linked_from']).toBe(60);
    expect(flush!.attributes['messaging.batch.message_count']).toBe(3);
    for (const m of published)
      expect(spanContextFromHeaders(m.headers)).toMatchObject({
        traceId: flush!.spanContext().traceId,
        spanId: flush!.spanContext().spanId,
      });

    // The next flush links only what was consumed after this one.
    t.consumed(consumed(100, 2));
    t.published(t.begin(records(1)), []);
    const second = exporter.getFinishedSpans()[1]!;
    expect(second.links.map((l) => l.context.traceId).sort()).toEqual([traceOf(100), traceOf(101)]);
  });

  it('off: no span, no headers; the stage delay is observed per window, from its end', async () => {
    const metrics = new ProcessorMetrics();
    const t = new FlushTracing(undefined, metrics);
    t.consumed(consumed(0, 5));
    const published = records(2);
    const span = t.begin(published);
    expect(span).toBeUndefined();
    for (const m of published) expect(m.headers).toBeUndefined();
    const now = 1_000_000;
    t.published(span, [window('1s', now - 2500), window('1s', now - 700), window('10s', now - 4000)], now);
    const text = await metrics.registry.metrics();
    expect(text).toContain('fleetpulse_processor_stage_delay_seconds_count{resolution="1s"} 2');
    expect(text).toContain('fleetpulse_processor_stage_delay_seconds_sum{resolution="1s"} 3.2');
    expect(text).toContain('fleetpulse_processor_stage_delay_seconds_sum{resolution="10s"} 4');
  });
});
