import { randomUUID } from 'node:crypto';
import { kafkaBrokers } from '@fleetpulse/compose';
import { Topics } from '@fleetpulse/contracts';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { loadConfig } from './config';
import { startIngestion, type RunningIngestion } from './service';
import { readToEnd } from './testing/kafka-reader';

// Rate limits and the token check against the real service and Kafka, with small limits: a device 100 events/s
// (burst 200), a token 1,000 events/s (burst 2,000), failed logins 2/s per address (burst 5). Each refusal is a
// 429 with Retry-After over HTTP, a closed connection without PUBACK over MQTT, and what was accepted before it
// is in Kafka.
const brokers = kafkaBrokers();
let ingestion: RunningIngestion;
let url: string;
const clients: MqttClient[] = [];

beforeAll(async () => {
  ingestion = await startIngestion(
    loadConfig({
      FLEETPULSE_ENV: 'development',
      FLEETPULSE_TOKENS: 'fleet-token-1,known-token-1',
      FLEETPULSE_INGESTION_PORT: '0',
      FLEETPULSE_MQTT_PORT: '0',
      FLEETPULSE_KAFKA_BROKERS: brokers.join(','),
      FLEETPULSE_DEVICE_EVENTS_PER_SECOND: '100',
      FLEETPULSE_DEVICE_EVENTS_BURST: '200',
      FLEETPULSE_TOKEN_EVENTS_PER_SECOND: '1000',
      FLEETPULSE_TOKEN_EVENTS_BURST: '2000',
      FLEETPULSE_LOGIN_FAILURES_PER_MINUTE: '120',
      FLEETPULSE_LOGIN_FAILURE_BURST: '5',
    }),
    () => undefined,
  );
  url = `http://127.0.0.1:${ingestion.port}/v1/telemetry`;
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await ingestion.close();
});

const prefix = () => `rl-${randomUUID().slice(0, 8)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `n` events of `device`, seq from `from`, as one JSON array. */
function events(device: string, n: number, from = 0): Record<string, unknown>[] {
  const t0 = Date.now() - 60_000;
  return Array.from({ length: n }, (_, i) => ({
    deviceId: device,
    ts: t0 + from + i,
    metrics: { v: i },
    seq: from + i,
  }));
}

function post(body: unknown, token = 'dev-token') {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
}

/** The seq of every event of `device` in telemetry.raw, as of now. */
async function seqsInKafka(device: string): Promise<number[]> {
  const records = await readToEnd(brokers, Topics.raw, (r) => r.key === device);
  return records
    .flatMap((r) => [JSON.parse(r.value.toString()) as unknown].flat() as { seq: number }[])
    .map((e) => e.seq)
    .sort((a, b) => a - b);
}

async function connect(username: string, password: string, extra: IClientOptions = {}): Promise<MqttClient> {
  const client = await connectAsync(`mqtt://127.0.0.1:${ingestion.mqttPort}`, {
    username,
    password,
    clientId: username,
    reconnectPeriod: 0,
    ...extra,
  });
  clients.push(client);
  return client;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('rate limits against the real service', () => {
  it('answers 429 with Retry-After for a device over its rate, accepting nothing of that request', async () => {
    const p = prefix();
    const d = `${p}-d`;
    expect((await post(events(d, 150))).status).toBe(202);
    expect((await post(events(d, 450, 150))).status).toBe(202); // 50 left: taken whole, 400 below zero
    const refused = await post([...events(`${p}-other`, 1), ...events(d, 10, 600)]);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(4);
    expect(((await refused.json()) as { error: string }).error).toMatch(/device .* over its rate/);
    // Everything accepted before is in Kafka; nothing of the refused request (its other device's neither).
    expect(await seqsInKafka(d)).toEqual(range(600));
    expect(await seqsInKafka(`${p}-other`)).toEqual([]);
    await sleep(retryAfter * 1000);
    expect((await post(events(d, 10, 600))).status).toBe(202);
    expect(await seqsInKafka(d)).toEqual(range(610));
  });

  it('answers 429 with Retry-After for a token over its rate; other tokens go on', async () => {
    const p = prefix();
    // 1,500 then 2,400 events over 50 devices (30 and 48 each, within their own rate): the second request is taken
    // whole with 500 left, and leaves the token 1,900 below zero.
    const first = range(50).flatMap((i) => events(`${p}-${i}`, 30));
    const second = range(50).flatMap((i) => events(`${p}-${i}`, 48, 30));
    expect((await post(first, 'fleet-token-1')).status).toBe(202);
    expect((await post(second, 'fleet-token-1')).status).toBe(202);
    const refused = await post(events(`${p}-0`, 1, 78), 'fleet-token-1');
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(2);
    expect(((await refused.json()) as { error: string }).error).toMatch(/token is over its rate/);
    // Another token is not held back by this one.
    expect((await post(events(`${p}-x`, 1), 'known-token-1')).status).toBe(202);
    expect(await seqsInKafka(`${p}-0`)).toEqual(range(78));
    await sleep(retryAfter * 1000);
    expect((await post(events(`${p}-0`, 1, 78), 'fleet-token-1')).status).toBe(202);
  });

  it('closes an MQTT connection over its rate without PUBACK; the client resends and nothing is lost', async () => {
    const d = `${prefix()}-m`;
    const client = await connect(d, 'dev-token', { clean: false, reconnectPeriod: 300 });
    let closes = 0;
    client.on('close', () => closes++);
    await client.publishAsync(`telemetry/${d}`, JSON.stringify(events(d, 150)), { qos: 1 });
    await client.publishAsync(`telemetry/${d}`, JSON.stringify(events(d, 450, 150)), { qos: 1 }); // 400 below zero
    // Over its rate: no PUBACK, the connection is closed; the client resends on reconnect until it is taken.
    const started = Date.now();
    await client.publishAsync(`telemetry/${d}`, JSON.stringify(events(d, 10, 600)), { qos: 1 });
    expect(closes).toBeGreaterThanOrEqual(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000); // the bucket had to refill most of 400 at 100/s
    expect(await seqsInKafka(d)).toEqual(range(610));
    const text = await (await fetch(`http://127.0.0.1:${ingestion.port}/metrics`)).text();
    expect(text).toMatch(/fleetpulse_ingestion_requests_total\{source="mqtt",status="throttled"\} [1-9]/);
  });
});

describe('failed logins and the token check', () => {
  afterEach(() => sleep(2500)); // the address cools down (2 failed logins a second, 5 at most)

  it('refuses every token but the exact one, whatever its length or how much of it matches', async () => {
    for (const wrong of ['known-token-', 'known-token-11', 'Known-token-1', 'known-token-2']) {
      expect((await post(events(`${prefix()}-t`, 1), wrong)).status).toBe(401);
    }
    expect((await post(events(`${prefix()}-t`, 1), 'known-token-1')).status).toBe(202);
  });

  it('answers 429 to an address after its burst of failed logins, even with a good token, until it cools down', async () => {
    for (let i = 0; i < 5; i++) expect((await post(events(`${prefix()}-f`, 1), `wrong-token-${i}`)).status).toBe(401);
    const held = await post(events(`${prefix()}-f`, 1), 'known-token-1');
    expect(held.status).toBe(429);
    expect(held.headers.get('retry-after')).toBe('1');
    expect(((await held.json()) as { error: string }).error).toMatch(/too many failed logins/);
    await sleep(600);
    expect((await post(events(`${prefix()}-f`, 1), 'known-token-1')).status).toBe(202);
  });

  it('answers MQTT CONNACK 3 after the burst of CONNACK 4s from an address, then takes logins again', async () => {
    const d = `${prefix()}-c`;
    for (let i = 0; i < 5; i++) await expect(connect(d, `wrong-token-${i}`)).rejects.toMatchObject({ code: 4 });
    await expect(connect(d, 'dev-token')).rejects.toMatchObject({ code: 3 });
    await sleep(600);
    await expect(connect(d, 'dev-token')).resolves.toBeDefined();
  });
});
