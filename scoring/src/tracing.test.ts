import type { AnomalyScore } from '@fleetpulse/contracts';
import { InMemorySpanExporter, spanContextFromHeaders, Tracing } from '@fleetpulse/runtime/tracing';
import type { KafkaMessage, Message, Producer } from 'kafkajs';
import { ScoringMetrics } from './metrics';
import { scoreSink } from './score-sink';
import { StepTrace } from './tracing';

const traceOf = (i: number) => String(i).padStart(32, 'c');
const spanOf = (i: number) => String(i).padStart(16, 'd');

/** Window records as the consumer reads them, `ageMs` old by their Kafka timestamp. */
const windowRecords = (n: number, ageMs: number, traced = true): KafkaMessage[] =>
  Array.from(
    { length: n },
    (_, i) =>
      ({
        key: Buffer.from(`d${i}`),
        value: Buffer.from('{}'),
        offset: String(i),
        timestamp: String(Date.now() - ageMs),
        attributes: 0,
        headers: traced ? { traceparent: Buffer.from(`00-${traceOf(i + 1)}-${spanOf(i + 1)}-01`) } : {},
      }) as KafkaMessage,
  );

const score = (deviceId: string): AnomalyScore =>
  ({ deviceId, model: 'm', version: 1, windowStart: 0, score: 0.1, anomalous: false }) as unknown as AnomalyScore;

function fakeProducer(fail = false) {
  const sent: Message[] = [];
  const producer = {
    send: async ({ messages }: { messages: Message[] }) => {
      if (fail) throw new Error('kafka down');
      sent.push(...messages);
    },
  } as unknown as Producer;
  return { producer, sent };
}

describe('scoring traces', () => {
  let metrics: ScoringMetrics;
  afterEach(() => metrics.close());

  it("a step's delivery is a span linked to its window records; each score carries it", async () => {
    const exporter = new InMemorySpanExporter();
    metrics = new ScoringMetrics();
    const steps = new StepTrace(new Tracing({ service: 's', exporter, processing: 'simple' }), metrics);
    const { producer, sent } = fakeProducer();
    steps.read('metrics.aggregates', windowRecords(3, 1500));
    await scoreSink(producer, 'anomaly.scores', null, steps).deliver([score('d0'), score('d1')]);

    const [span] = exporter.getFinishedSpans();
    expect(span!.name).toBe('process metrics.aggregates');
    expect(span!.links.map((l) => l.context.traceId).sort()).toEqual([traceOf(1), traceOf(2), traceOf(3)]);
    expect(span!.attributes['fleetpulse.scores']).toBe(2);
    expect(sent).toHaveLength(2);
    for (const m of sent)
      expect(spanContextFromHeaders(m.headers)).toMatchObject({
        traceId: span!.spanContext().traceId,
        spanId: span!.spanContext().spanId,
      });
    const text = await metrics.registry.metrics();
    expect(text).toContain('scoring_stage_delay_seconds_count 3');
    expect(text).toMatch(/scoring_stage_delay_seconds_bucket\{le="1"\} 0\n/);
    expect(text).toMatch(/scoring_stage_delay_seconds_bucket\{le="2.5"\} 3\n/);
  });

  it('a failed delivery ends its span as an error and observes no delay', async () => {
    const exporter = new InMemorySpanExporter();
    metrics = new ScoringMetrics();
    const steps = new StepTrace(new Tracing({ service: 's', exporter, processing: 'simple' }), metrics);
    steps.read('metrics.aggregates', windowRecords(2, 10));
    const { producer } = fakeProducer(true);
    await expect(scoreSink(producer, 'anomaly.scores', null, steps).deliver([score('d0')])).rejects.toThrow(
      'kafka down',
    );
    expect(exporter.getFinishedSpans()[0]!.status.code).toBe(2); // SpanStatusCode.ERROR
    expect(await metrics.registry.metrics()).toContain('scoring_stage_delay_seconds_count 0');
  });

  it('off: scores carry no headers; the stage delay is still observed', async () => {
    metrics = new ScoringMetrics();
    const steps = new StepTrace(undefined, metrics);
    const { producer, sent } = fakeProducer();
    steps.read('metrics.aggregates', windowRecords(2, 10));
    await scoreSink(producer, 'anomaly.scores', null, steps).deliver([score('d0')]);
    expect(sent[0]!.headers).toBeUndefined();
    expect(await metrics.registry.metrics()).toContain('scoring_stage_delay_seconds_count 2');
  });
});
