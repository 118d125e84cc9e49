import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { kafkaBrokers } from '@fleetpulse/compose';
import { Topics } from '@fleetpulse/contracts';
import { loadConfig } from './config';
import { startIngestion, type RunningIngestion } from './service';
import { readUntil, type ReadRecord } from './testing/kafka-reader';

const brokers = kafkaBrokers();

let ingestion: RunningIngestion;
let url: string;

beforeAll(async () => {
  const config = loadConfig({
    FLEETPULSE_ENV: 'development',
    FLEETPULSE_TOKENS: 'pump-only-token=pump-*',
    FLEETPULSE_INGESTION_PORT: '0',
    FLEETPULSE_INGESTION_HOST: '127.0.0.1',
    FLEETPULSE_MQTT_PORT: '0',
    FLEETPULSE_KAFKA_BROKERS: brokers.join(','),
    FLEETPULSE_REQUEST_TIMEOUT_MS: '3000',
  });
  ingestion = await startIngestion(config, () => undefined);
  url = `http://127.0.0.1:${ingestion.port}`;
});

afterAll(async () => {
  await ingestion.close();
});

function post(body: string | Buffer, opts: { token?: string | null; type?: string } = {}) {
  const headers: Record<string, string> = { 'content-type': opts.type ?? 'application/json' };
  if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? 'dev-token'}`;
  return fetch(`${url}/v1/telemetry`, { method: 'POST', headers, body });
}

const prefix = () => `it-${randomUUID().slice(0, 8)}`;
const byPrefix = (p: string) => (r: ReadRecord) => r.key?.startsWith(p) === true;
const now = () => Date.now();

/** Canonical events of telemetry.raw records, whether a record holds one event or a device's array. */
function eventsOf(records: ReadRecord[]): Record<string, unknown>[] {
  return records.flatMap((r) => {
    const v = JSON.parse(r.value.toString()) as unknown;
    return (Array.isArray(v) ? v : [v]) as Record<string, unknown>[];
  });
}

describe('POST /v1/telemetry against the real Kafka', () => {
  it('answers 202 only with the events in telemetry.raw, keyed by device, canonical, in order', async () => {
    const p = prefix();
    const t0 = now() - 10_000;
    const body = [
      { deviceId: `${p}-a`, ts: t0, metrics: { temp: 21.5, humidity: 40 }, seq: 1 },
      { device_id: `${p}-b`, temp: 19, ts: Math.floor(t0 / 1000) },
      { deviceId: `${p}-a`, ts: new Date(t0 + 1000).toISOString(), metrics: { temp: 21.75 }, seq: 2 },
    ];
    const res = await post(JSON.stringify(body));
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: 3, rejected: 0, errors: [] });

    const records = await readUntil(brokers, Topics.raw, byPrefix(p), (rs) => eventsOf(rs).length >= 3);
    for (const r of records) expect(r.key).toMatch(new RegExp(`^${p}-[ab]$`));
    const a = eventsOf(records.filter((r) => r.key === `${p}-a`));
    const b = eventsOf(records.filter((r) => r.key === `${p}-b`));
    expect(a.map((e) => ({ ...e, receivedAt: 0 }))).toEqual([
      { deviceId: `${p}-a`, ts: t0, metrics: { temp: 21.5, humidity: 40 }, seq: 1, receivedAt: 0 },
      { deviceId: `${p}-a`, ts: t0 + 1000, metrics: { temp: 21.75 }, seq: 2, receivedAt: 0 },
    ]);
    expect(b).toHaveLength(1);
    expect(b[0]).toMatchObject({ deviceId: `${p}-b`, ts: Math.floor(t0 / 1000) * 1000, metrics: { temp: 19 } });
    expect(typeof b[0]!.receivedAt).toBe('number');
  });

  it('keeps one device in order across sequential requests', async () => {
    const p = prefix();
    const t0 = now() - 60_000;
    for (let i = 0; i < 20; i++) {
      const ndjson = [0, 1, 2]
        .map((j) =>
          JSON.stringify({ deviceId: `${p}-x`, ts: t0 + i * 3 + j, metrics: { v: i * 3 + j }, seq: i * 3 + j }),
        )
        .join('\n');
      expect((await post(ndjson, { type: 'application/x-ndjson' })).status).toBe(202);
    }
    const events = eventsOf(await readUntil(brokers, Topics.raw, byPrefix(p), (rs) => eventsOf(rs).length >= 60));
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i));
  });

  it('reports per-event errors and sends those events to telemetry.dlq with the reason', async () => {
    const p = prefix();
    const body = [
      { deviceId: `${p}-ok`, ts: now(), metrics: { temp: 20 } },
      { deviceId: `${p}-bad`, ts: now(), metrics: { temp: '23.5' } },
      { deviceId: 'has space', ts: now(), metrics: { temp: 1 } },
    ];
    const res = await post(JSON.stringify(body));
    expect(res.status).toBe(202);
    const answer = (await res.json()) as {
      accepted: number;
      rejected: number;
      errors: { index: number; error: string }[];
    };
    expect(answer.accepted).toBe(1);
    expect(answer.rejected).toBe(2);
    expect(answer.errors.map((e) => e.index)).toEqual([1, 2]);
    expect(answer.errors[0]!.error).toBe('metrics.temp: expected a number');
    expect(answer.errors[1]!.error).toMatch(/^deviceId: /);

    const dlq = await readUntil(
      brokers,
      Topics.dlq,
      (r) => r.value.toString().includes(`${p}-bad`),
      (rs) => rs.length >= 1,
    );
    expect(JSON.parse(dlq[0]!.value.toString())).toEqual(body[1]);
    expect(dlq[0]!.headers.error).toBe('metrics.temp: expected a number');
    expect(dlq[0]!.headers.source).toBe('http');
    expect(Number(dlq[0]!.headers.receivedAt)).toBeGreaterThan(0);
  });

  it('answers 400 with the byte offset when the body cannot be parsed, accepting nothing', async () => {
    const p = prefix();
    const body = `[{"deviceId":"${p}-t","ts":${now()},"metrics":{"temp":1}}, {"deviceId":`;
    const res = await post(body);
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { error: string; offset: number };
    expect(answer.offset).toBeGreaterThan(40);
    expect(answer.offset).toBeLessThanOrEqual(Buffer.byteLength(body));
    expect(answer.error.length).toBeGreaterThan(0);
  });

  it('answers 401 without a token, with a wrong one, and rejects events of devices the token may not write', async () => {
    expect((await post('{}', { token: null })).status).toBe(401);
    expect((await post('{}', { token: 'not-a-known-token' })).status).toBe(401);
    const p = prefix();
    const res = await post(
      JSON.stringify([
        { deviceId: `pump-${p}`, ts: now(), metrics: { rpm: 1200 } },
        { deviceId: `valve-${p}`, ts: now(), metrics: { open: 1 } },
      ]),
      { token: 'pump-only-token' },
    );
    expect(res.status).toBe(202);
    const answer = (await res.json()) as { accepted: number; errors: { index: number; error: string }[] };
    expect(answer.accepted).toBe(1);
    expect(answer.errors).toHaveLength(1);
    expect(answer.errors[0]!.index).toBe(1);
    expect(answer.errors[0]!.error).toMatch(/deviceId/);
  });

  it('answers 413 for a body over the limit and for too many events', async () => {
    const big = Buffer.alloc(10 * 1024 * 1024, 0x20);
    expect((await post(big)).status).toBe(413);
    const many = Array.from({ length: 10_001 }, (_, i) =>
      JSON.stringify({ deviceId: 'd', ts: now(), metrics: { v: i } }),
    ).join('\n');
    expect((await post(many, { type: 'application/x-ndjson' })).status).toBe(413);
  });

  it('answers 415 for other content types', async () => {
    expect((await post('temp=1', { type: 'application/x-www-form-urlencoded' })).status).toBe(415);
    expect((await post('{}', { type: 'text/plain' })).status).toBe(415);
  });

  it('answers hostile bodies and keeps serving', async () => {
    const p = prefix();
    const cases: [string, Buffer | string, number][] = [
      ['truncated', '{"deviceId":"x","ts":1', 400],
      [
        'invalid UTF-8',
        Buffer.concat([
          Buffer.from('{"deviceId":"'),
          Buffer.from([0xff, 0xfe]),
          Buffer.from('","ts":1,"metrics":{"a":1}}'),
        ]),
        400,
      ],
      ['deep nesting', '['.repeat(100_000) + ']'.repeat(100_000), 400],
      [
        'number too large for a double',
        JSON.stringify({ deviceId: `${p}-n`, ts: now(), metrics: {} }).replace('{}', '{"t":1e400}'),
        202,
      ],
      ['duplicate keys', `{"deviceId":"${p}-d","ts":${now()},"metrics":{"t":1,"t":2}}`, 202],
      ['number as string', JSON.stringify({ deviceId: `${p}-s`, ts: now(), metrics: { t: '1' } }), 202],
      ['empty body', '', 400],
    ];
    for (const [name, body, status] of cases) {
      const res = await post(body);
      expect({ name, status: res.status }).toEqual({ name, status });
      const answer = (await res.json()) as { accepted?: number; rejected?: number; error?: string };
      if (status === 202)
        expect({ name, accepted: answer.accepted, rejected: answer.rejected }).toEqual({
          name,
          accepted: 0,
          rejected: 1,
        });
      else expect(typeof answer.error).toBe('string');
    }
    expect((await post(JSON.stringify({ deviceId: `${p}-alive`, ts: now(), metrics: { t: 1 } }))).status).toBe(202);
  });

  it('cuts off a body sent one byte a second with 408 and keeps serving', async () => {
    const port = ingestion.port;
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let received = '';
      socket.on('data', (d) => (received += d.toString()));
      socket.on('close', () => resolve(received));
      socket.on('error', reject);
      socket.write(
        'POST /v1/telemetry HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev-token\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n',
      );
      const drip = setInterval(() => socket.write('['), 1000);
      socket.on('close', () => clearInterval(drip));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect((await post(JSON.stringify({ deviceId: `${prefix()}-alive`, ts: now(), metrics: { t: 1 } }))).status).toBe(
      202,
    );
  });

  it('serves health, readiness and Prometheus metrics', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toMatch(/fleetpulse_ingestion_events_accepted_total\{source="http"\} [1-9]/);
    expect(text).toMatch(/fleetpulse_ingestion_request_seconds_bucket/);
    expect(text).toMatch(/fleetpulse_ingestion_events_in_flight/);
  });
});
