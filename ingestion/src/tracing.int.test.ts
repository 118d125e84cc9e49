import { randomUUID } from 'node:crypto';
import { kafkaBrokers } from '@fleetpulse/compose';
import { createTestTopic, kafkaClient } from '@fleetpulse/compose/testing';
import { InMemorySpanExporter, spanContextFromHeaders, Tracing } from '@fleetpulse/runtime/tracing';
import { connectAsync } from 'mqtt';
import { loadConfig } from './config';
import { startIngestion, type RunningIngestion } from './service';
import { readUntil } from './testing/kafka-reader';

// The MQTT door with tracing on, against the real Kafka: a PUBLISH is a span (a new trace: MQTT 3.1.1 carries no
// headers), the produce is its child, and the record on the topic carries the produce span's traceparent. (The HTTP
// door's trace through Kafka and the processor: stream-processor/src/tracing.int.test.ts.)
const brokers = kafkaBrokers();
const spans = new InMemorySpanExporter();
let ingestion: RunningIngestion;
let topic: string;

beforeAll(async () => {
  const admin = kafkaClient().admin();
  await admin.connect();
  topic = await createTestTopic(admin).finally(() => admin.disconnect());
  ingestion = await startIngestion(
    loadConfig({
      FLEETPULSE_ENV: 'development',
      FLEETPULSE_INGESTION_PORT: '0',
      FLEETPULSE_INGESTION_HOST: '127.0.0.1',
      FLEETPULSE_MQTT_PORT: '0',
      FLEETPULSE_KAFKA_BROKERS: brokers.join(','),
      FLEETPULSE_INGESTION_TOPIC: topic,
    }),
    () => undefined,
    new Tracing({ service: 'ingestion', exporter: spans, processing: 'simple' }),
  );
});

afterAll(async () => {
  await ingestion.close();
});

it('an MQTT PUBLISH is a span, its produce a child, and the record carries the produce span', async () => {
  const device = `mq-trace-${randomUUID().slice(0, 8)}`;
  const since = Date.now() - 1000;
  const client = await connectAsync(`mqtt://127.0.0.1:${ingestion.mqttPort}`, {
    username: device,
    password: 'dev-token',
    clientId: device,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
  try {
    await client.publishAsync(
      `telemetry/${device}`,
      JSON.stringify({ deviceId: device, ts: Date.now(), metrics: { temp: 1 } }),
      {
        qos: 1,
      },
    );
  } finally {
    await client.endAsync();
  }
  const publish = spans.getFinishedSpans().find((s) => s.name === 'PUBLISH telemetry/{deviceId}')!;
  const produce = spans.getFinishedSpans().find((s) => s.name === `send ${topic}`)!;
  expect(publish.attributes['fleetpulse.mqtt.outcome']).toBe('acked');
  expect(publish.parentSpanContext).toBeUndefined();
  expect(produce.parentSpanContext?.spanId).toBe(publish.spanContext().spanId);
  const [record] = await readUntil(
    brokers,
    topic,
    (r) => r.key === device,
    (rs) => rs.length > 0,
    30_000,
    since,
  );
  expect(spanContextFromHeaders(record!.headers)).toMatchObject({
    traceId: publish.spanContext().traceId,
    spanId: produce.spanContext().spanId,
  });
});
