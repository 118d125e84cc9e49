import { Topics, type AnomalyScore, type WindowRecord } from '@fleetpulse/contracts';
import { InMemorySpanExporter, Tracing } from '@fleetpulse/runtime/tracing';
import type { KafkaContext } from '@nestjs/microservices';
import type { KafkaMessage } from 'kafkajs';
import { LiveConsumer } from './live.consumer';
import type { LiveGateway } from './live.gateway';
import { LiveTracing } from './live.tracing';
import { DashboardMetrics } from './metrics.service';
import { anomalyScore, windowRecord } from './testing';

const traceOf = (i: number) => String(i).padStart(32, 'e');
const spanOf = (i: number) => String(i).padStart(16, 'f');

/** The Kafka context Nest hands a handler: the raw record, `ageMs` old, carrying trace `i`. */
function ctx(i: number, ageMs: number): KafkaContext {
  const message = {
    key: null,
    value: null,
    offset: String(i),
    attributes: 0,
    timestamp: String(Date.now() - ageMs),
    headers: { traceparent: Buffer.from(`00-${traceOf(i)}-${spanOf(i)}-01`) },
  } as unknown as KafkaMessage;
  return { getMessage: () => message } as unknown as KafkaContext;
}

function setup(traced = true) {
  const exporter = new InMemorySpanExporter();
  const metrics = new DashboardMetrics();
  const tracing = new LiveTracing(
    traced ? new Tracing({ service: 'd', exporter, processing: 'simple' }) : undefined,
    metrics,
  );
  const handed: WindowRecord[] = [];
  const gateway = {
    publishAggregate: (r: WindowRecord) => void handed.push(r),
    publishAnomaly: (_s: AnomalyScore) => undefined,
  } as unknown as LiveGateway;
  const consumer = new LiveConsumer(gateway, metrics, tracing);
  const delays = async (topic: string) =>
    (await metrics.stageDelay.get()).values.find(
      (v) => v.labels.topic === topic && (v as { metricName?: string }).metricName?.endsWith('_count'),
    )?.value ?? 0;
  return { exporter, metrics, tracing, consumer, handed, delays };
}

describe('dashboard live traces and stage delay', () => {
  it('an anomaly pushed at once: a span linked to its score record, and its delay', async () => {
    const { exporter, consumer, delays } = setup();
    consumer.onScore({ ...anomalyScore('dev-1', 0), anomalous: true }, ctx(7, 300));
    consumer.onScore({ ...anomalyScore('dev-1', 0), anomalous: false }, ctx(8, 300)); // not pushed
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(['send live anomaly.scores']);
    expect(spans[0]!.links.map((l) => [l.context.traceId, l.context.spanId])).toEqual([[traceOf(7), spanOf(7)]]);
    expect(await delays(Topics.scores)).toBe(1);
  });

  it('window records: the delay and the links are taken when the flush emits them, one span per flush', async () => {
    const { exporter, consumer, handed, tracing, delays } = setup();
    for (let i = 1; i <= 40; i++) consumer.onAggregate(windowRecord(`dev-${i}`, 0, { temp: i }, '1s'), ctx(i, 50));
    expect(exporter.getFinishedSpans()).toHaveLength(0); // nothing emitted yet
    expect(await delays(Topics.aggregates)).toBe(0);
    tracing.emitting(handed.slice(0, 35));
    tracing.emitting(handed.slice(0, 1)); // emitted already: not counted twice
    tracing.flushed();
    const [flush] = exporter.getFinishedSpans();
    expect(flush!.name).toBe('send live aggregates');
    expect(flush!.attributes['messaging.batch.message_count']).toBe(35);
    expect(flush!.links).toHaveLength(32);
    expect(flush!.links[0]!.context.traceId).toBe(traceOf(1));
    expect(await delays(Topics.aggregates)).toBe(35);
    tracing.flushed(); // nothing emitted since: no span
    expect(exporter.getFinishedSpans()).toHaveLength(1);
  });

  it('off: no spans, the delay all the same', async () => {
    const { exporter, consumer, handed, tracing, delays } = setup(false);
    consumer.onAggregate(windowRecord('dev-1', 0, { temp: 1 }, '1s'), ctx(1, 50));
    tracing.emitting(handed);
    tracing.flushed();
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    expect(await delays(Topics.aggregates)).toBe(1);
  });
});
