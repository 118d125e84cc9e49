import { randomBytes } from 'node:crypto';
import { cassandraContactPoint, kafkaBrokers } from '@fleetpulse/compose';
import { createTestTopic, kafkaClient, uniqueName } from '@fleetpulse/compose/testing';
import { Topics } from '@fleetpulse/contracts';
import { loadConfig as ingestionConfig, startIngestion, type RunningIngestion } from '@fleetpulse/ingestion';
import { InMemorySpanExporter, spanContextFromHeaders, Tracing, type ReadableSpan } from '@fleetpulse/runtime/tracing';
import type { IHeaders, Kafka } from 'kafkajs';
import { loadConfig } from './config';
import { startProcessor, type RunningProcessor } from './service';

// A device's trace through the real Kafka: an HTTP request with a known `traceparent` to a real ingestion (its own
// topic), the record it lands in telemetry-shaped on that topic carrying the trace, a real processor reading it, and
// the window record it publishes on metrics.aggregates carrying the flush span that links back to the device's trace.
// Both services run in this process with in-memory exporters, so their spans can be looked at.
const run = randomBytes(4).toString('hex');
const device = `trace-it-${run}`;
const deviceTrace = randomBytes(16).toString('hex');
const deviceSpan = randomBytes(8).toString('hex');

let kafka: Kafka;
let topic: string;
let ingestion: RunningIngestion;
let processor: RunningProcessor;
const ingestionSpans = new InMemorySpanExporter();
const processorSpans = new InMemorySpanExporter();

beforeAll(async () => {
  kafka = kafkaClient();
  const admin = kafka.admin();
  await admin.connect();
  topic = await createTestTopic(admin).finally(() => admin.disconnect());
  const brokers = kafkaBrokers().join(',');
  ingestion = await startIngestion(
    ingestionConfig({
      FLEETPULSE_ENV: 'development',
      FLEETPULSE_INGESTION_PORT: '0',
      FLEETPULSE_INGESTION_HOST: '127.0.0.1',
      FLEETPULSE_MQTT_PORT: 'off',
      FLEETPULSE_KAFKA_BROKERS: brokers,
      FLEETPULSE_INGESTION_TOPIC: topic,
    }),
    () => undefined,
    new Tracing({ service: 'ingestion', exporter: ingestionSpans, processing: 'simple' }),
  );
  processor = await startProcessor(
    loadConfig({
      FLEETPULSE_KAFKA_BROKERS: brokers,
      FLEETPULSE_CASSANDRA_CONTACT_POINTS: cassandraContactPoint(),
      FLEETPULSE_PROCESSOR_TOPIC: topic,
      FLEETPULSE_PROCESSOR_GROUP: uniqueName('trace-it'),
      FLEETPULSE_PROCESSOR_PORT: '0',
      FLEETPULSE_PROCESSOR_HOST: '127.0.0.1',
      // One resolution, closed soon after the device goes quiet.
      FLEETPULSE_RESOLUTIONS: '1s',
      FLEETPULSE_STORED_RESOLUTIONS: '1s',
      FLEETPULSE_ALLOWED_LATENESS_MS: '0',
      FLEETPULSE_IDLE_TIMEOUT_MS: '300',
      FLEETPULSE_IDLE_SAFETY_MARGIN_MS: '0',
      FLEETPULSE_PROCESSOR_TICK_MS: '100',
      FLEETPULSE_PROCESSOR_LIVE_INTERVAL_MS: '0',
      FLEETPULSE_PROCESSOR_SESSION_TIMEOUT_MS: '8000',
    }),
    () => undefined,
    new Tracing({ service: 'stream-processor', exporter: processorSpans, processing: 'simple' }),
  );
}, 60_000);

afterAll(async () => {
  await processor?.close();
  await ingestion?.close();
});

/** The first record of `topic` written since `sinceMs` whose key is `key`; throws after `timeoutMs`. */
async function recordOf(t: string, key: string, sinceMs: number, timeoutMs: number): Promise<IHeaders> {
  const admin = kafka.admin();
  await admin.connect();
  const starts = await admin.fetchTopicOffsetsByTimestamp(t, sinceMs).finally(() => admin.disconnect());
  const consumer = kafka.consumer({ groupId: uniqueName('trace-reader') });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: t, fromBeginning: true });
    let found!: (h: IHeaders) => void;
    const headers = new Promise<IHeaders>((resolve) => (found = resolve));
    await consumer.run({
      eachMessage: async ({ message }) => {
        if (message.key?.toString() === key) found(message.headers ?? {});
      },
    });
    for (const { partition, offset } of starts) consumer.seek({ topic: t, partition, offset });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>(
      (_, reject) =>
        (timer = setTimeout(() => reject(new Error(`no record of ${key} on ${t} in ${timeoutMs} ms`)), timeoutMs)),
    );
    return await Promise.race([headers, timeout]).finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect();
  }
}

async function waitForSpan(exporter: InMemorySpanExporter, match: (s: ReadableSpan) => boolean, timeoutMs: number) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const span = exporter.getFinishedSpans().find(match);
    if (span) return span;
    if (Date.now() > until) throw new Error(`no matching span in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it("carries a device's traceparent from its HTTP request to the raw record and, linked, to the window record", async () => {
  const since = Date.now() - 1000;
  const res = await fetch(`http://127.0.0.1:${ingestion.port}/v1/telemetry`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: 'Bearer dev-token',
      traceparent: `00-${deviceTrace}-${deviceSpan}-01`,
    },
    body: JSON.stringify([
      { deviceId: device, ts: Date.now() - 500, metrics: { temp: 21 } },
      { deviceId: device, ts: Date.now() - 400, metrics: { temp: 22 } },
    ]),
  });
  expect(res.status).toBe(202);

  // Ingestion: the request span is the device span's child, the produce span the request's, and the raw record
  // names the produce span.
  const produce = ingestionSpans.getFinishedSpans().find((s) => s.name === `send ${topic}`)!;
  const request = ingestionSpans.getFinishedSpans().find((s) => s.name === 'POST /v1/telemetry')!;
  expect(request.parentSpanContext?.spanId).toBe(deviceSpan);
  expect(produce.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
  const raw = await recordOf(topic, device, since, 30_000);
  expect(spanContextFromHeaders(raw)).toMatchObject({ traceId: deviceTrace, spanId: produce.spanContext().spanId });

  // Processor: the flush that publishes the device's window links to that record's context, and the window record
  // on metrics.aggregates carries the flush span.
  const flush = await waitForSpan(
    processorSpans,
    (s) => s.name === `send ${Topics.aggregates}` && s.links.some((l) => l.context.traceId === deviceTrace),
    30_000,
  );
  expect(flush.links.find((l) => l.context.traceId === deviceTrace)!.context.spanId).toBe(produce.spanContext().spanId);
  const window = await recordOf(Topics.aggregates, device, since, 30_000);
  expect(spanContextFromHeaders(window)).toMatchObject({
    traceId: flush.spanContext().traceId,
    spanId: flush.spanContext().spanId,
  });
  // The processor observed the window's stage delay.
  expect(await processor.metrics.registry.metrics()).toMatch(
    /fleetpulse_processor_stage_delay_seconds_count\{resolution="1s"\} [1-9]/,
  );
}, 90_000);
