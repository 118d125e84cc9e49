import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { InMemorySpanExporter, spanContextFromHeaders, Tracing } from '@fleetpulse/runtime/tracing';
import { TokenTable } from './auth';
import { loadConfig } from './config';
import { createIngestionServer } from './http-server';
import { RateLimits } from './limits';
import { IngestionMetrics } from './metrics';
import { IngestPipeline } from './pipeline';
import type { GroupCommitProducer, OutgoingRecord } from './producer';

const deviceTrace = '0af7651916cd43dd8448eb211c80319c';
const deviceSpan = 'b7ad6b7169203331';

/** An ingestion HTTP door over a producer stand-in that keeps what it is given. */
async function door(tracing: Tracing | undefined) {
  const config = loadConfig({ FLEETPULSE_ENV: 'development', FLEETPULSE_INGESTION_PORT: '0' });
  const sent: OutgoingRecord[] = [];
  const producer = {
    send: async (records: OutgoingRecord[]) => void sent.push(...records),
  } as unknown as GroupCommitProducer;
  const metrics = new IngestionMetrics();
  const limits = new RateLimits(config.limits);
  const pipeline = new IngestPipeline(config, producer, metrics, limits, tracing);
  const server = createIngestionServer({
    config,
    tokens: new TokenTable(config.tokens),
    pipeline,
    metrics,
    limits,
    isReady: () => true,
    tracing,
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/telemetry`;
  return { server, sent, url, metrics };
}

const events = JSON.stringify([
  { deviceId: 'trace-a', ts: Date.now(), metrics: { temp: 1 } },
  { deviceId: 'trace-b', ts: Date.now(), metrics: { temp: 2 } },
  { deviceId: 'trace-a', ts: Date.now() + 1, metrics: { temp: 3 } },
]);

function post(url: string, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer dev-token', ...headers },
    body: events,
  });
}

describe('ingestion traces', () => {
  it("continues the device's trace: request span, produce span under it, its traceparent on every record", async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = new Tracing({ service: 'ingestion-test', exporter, processing: 'simple' });
    const { server, sent, url } = await door(tracing);
    try {
      const res = await post(url, { traceparent: `00-${deviceTrace}-${deviceSpan}-01`, tracestate: 'dev=1' });
      expect(res.status).toBe(202);
      const spans = exporter.getFinishedSpans();
      const request = spans.find((s) => s.name === 'POST /v1/telemetry')!;
      const produce = spans.find((s) => s.name === 'send telemetry.raw')!;
      expect(request.spanContext().traceId).toBe(deviceTrace);
      expect(request.parentSpanContext?.spanId).toBe(deviceSpan);
      expect(request.attributes['http.response.status_code']).toBe(202);
      expect(produce.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
      expect(produce.attributes['messaging.batch.message_count']).toBe(2);
      expect(sent.map((r) => r.key).sort()).toEqual(['trace-a', 'trace-b']);
      for (const r of sent) {
        const carried = spanContextFromHeaders(r.headers);
        expect(carried).toMatchObject({ traceId: deviceTrace, spanId: produce.spanContext().spanId });
        expect(r.headers?.tracestate).toBe('dev=1');
      }
    } finally {
      server.close();
    }
  });

  it('starts a trace for a request without traceparent', async () => {
    const exporter = new InMemorySpanExporter();
    const { server, sent, url } = await door(new Tracing({ service: 't', exporter, processing: 'simple' }));
    try {
      expect((await post(url)).status).toBe(202);
      const request = exporter.getFinishedSpans().find((s) => s.name === 'POST /v1/telemetry')!;
      expect(request.parentSpanContext).toBeUndefined();
      expect(spanContextFromHeaders(sent[0]!.headers)?.traceId).toBe(request.spanContext().traceId);
    } finally {
      server.close();
    }
  });

  it('off: records carry no headers, even when the device sends traceparent; the stage delay is observed', async () => {
    const { server, sent, url, metrics } = await door(undefined);
    try {
      expect((await post(url, { traceparent: `00-${deviceTrace}-${deviceSpan}-01` })).status).toBe(202);
      expect(sent).toHaveLength(2);
      for (const r of sent) expect(r.headers).toBeUndefined();
      const text = await metrics.registry.metrics();
      expect(text).toMatch(/fleetpulse_ingestion_stage_delay_seconds_count\{source="http"\} 1\b/);
    } finally {
      server.close();
    }
  });
});
