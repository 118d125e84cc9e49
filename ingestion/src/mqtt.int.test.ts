import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { kafkaBrokers } from '@fleetpulse/compose';
import { Topics } from '@fleetpulse/contracts';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { loadConfig } from './config';
import { startIngestion, type RunningIngestion } from './service';
import { waitFor } from './testing/child';
import { readToEnd, readUntil, type ReadRecord } from './testing/kafka-reader';

// The MQTT door against the real Kafka, with two real clients: mqtt.js and Mosquitto's mosquitto_pub
// (Debian's mosquitto-clients, installed by .ci/install-prerequisites.sh).
const brokers = kafkaBrokers();
let ingestion: RunningIngestion;
let mqttUrl: string;
const clients: MqttClient[] = [];
// Two devices whose ids share a prefix, each with a token of its own: the client-id takeover case.
const run = randomUUID().slice(0, 8);
const owner = `tk-${run}-1`;
const victim = `tk-${run}-12`;

beforeAll(async () => {
  const config = loadConfig({
    FLEETPULSE_ENV: 'development',
    FLEETPULSE_TOKENS: `pump-only-token=pump-*,owner-token-1=${owner},victim-token-1=${victim}`,
    FLEETPULSE_GATEWAY_TOKENS: 'pump-gateway-token=pump-*',
    FLEETPULSE_INGESTION_PORT: '0',
    FLEETPULSE_INGESTION_HOST: '127.0.0.1',
    FLEETPULSE_MQTT_PORT: '0',
    FLEETPULSE_KAFKA_BROKERS: brokers.join(','),
  });
  ingestion = await startIngestion(config, () => undefined);
  mqttUrl = `mqtt://127.0.0.1:${ingestion.mqttPort}`;
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await ingestion.close();
});

async function connect(username: string, password = 'dev-token', extra: IClientOptions = {}): Promise<MqttClient> {
  const client = await connectAsync(mqttUrl, {
    username,
    password,
    clientId: `${username}-${randomUUID().slice(0, 6)}`,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...extra,
  });
  clients.push(client);
  return client;
}

const prefix = () => `mq-${randomUUID().slice(0, 8)}`;
const now = () => Date.now();

function eventsOf(records: ReadRecord[]): Record<string, unknown>[] {
  return records.flatMap((r) => {
    const v = JSON.parse(r.value.toString()) as unknown;
    return (Array.isArray(v) ? v : [v]) as Record<string, unknown>[];
  });
}

function mosquittoPub(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile('mosquitto_pub', args, { timeout: 15_000 }, (error, _stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stderr }),
    );
  });
}

describe('MQTT telemetry/<deviceId> against the real Kafka', () => {
  it('PUBACKs a QoS 1 JSON array once the events are in telemetry.raw, keyed by device, canonical, in order', async () => {
    const device = `${prefix()}-a`;
    const client = await connect(device);
    const t0 = now() - 10_000;
    const events = [
      { deviceId: device, ts: t0, metrics: { temp: 21.5, humidity: 40 }, seq: 1 },
      { deviceId: device, ts: new Date(t0 + 1000).toISOString(), metrics: { temp: 21.75 }, seq: 2 },
    ];
    await client.publishAsync(`telemetry/${device}`, JSON.stringify(events), { qos: 1 });
    // The PUBACK came after Kafka's acknowledgement: the records are there now, not eventually.
    const records = await readUntil(
      brokers,
      Topics.raw,
      (r) => r.key === device,
      (rs) => eventsOf(rs).length >= 2,
    );
    expect(records.every((r) => r.key === device)).toBe(true);
    expect(eventsOf(records).map((e) => ({ ...e, receivedAt: 0 }))).toEqual([
      { deviceId: device, ts: t0, metrics: { temp: 21.5, humidity: 40 }, seq: 1, receivedAt: 0 },
      { deviceId: device, ts: t0 + 1000, metrics: { temp: 21.75 }, seq: 2, receivedAt: 0 },
    ]);
  });

  it('takes one object, the flat form and NDJSON, at QoS 0 and 1, in order', async () => {
    const device = `${prefix()}-b`;
    const client = await connect(device);
    const t0 = now() - 60_000;
    await client.publishAsync(
      `telemetry/${device}`,
      JSON.stringify({ deviceId: device, ts: t0, metrics: { v: 0 }, seq: 0 }),
      { qos: 0 },
    );
    await client.publishAsync(`telemetry/${device}`, JSON.stringify({ device_id: device, v: 1, ts: t0 + 1, seq: 1 }), {
      qos: 1,
    });
    const ndjson = [2, 3, 4].map((i) => JSON.stringify({ deviceId: device, ts: t0 + i, metrics: { v: i }, seq: i }));
    await client.publishAsync(`telemetry/${device}`, ndjson.join('\n') + '\n', { qos: 1 });
    const events = eventsOf(
      await readUntil(
        brokers,
        Topics.raw,
        (r) => r.key === device,
        (rs) => eventsOf(rs).length >= 5,
      ),
    );
    expect(events.map((e) => e.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(events[1]).toMatchObject({ deviceId: device, ts: t0 + 1, metrics: { v: 1 } });
  });

  it('sends bad events, events of another device and unparseable payloads to telemetry.dlq with the reason', async () => {
    const p = prefix();
    const device = `${p}-c`;
    const client = await connect(device);
    const good = { deviceId: device, ts: now(), metrics: { temp: 20 } };
    const badMetric = { deviceId: device, ts: now(), metrics: { temp: '23.5' }, tag: `${p}-bad` };
    const foreign = { deviceId: `${p}-other`, ts: now(), metrics: { temp: 1 } };
    await client.publishAsync(`telemetry/${device}`, JSON.stringify([good, badMetric, foreign]), { qos: 1 });
    const broken = `[{"deviceId":"${device}","ts":${now()},"metrics":{"temp":1}}, {"deviceId":`;
    await client.publishAsync(`telemetry/${device}`, broken, { qos: 1 });

    // Exactly one: everything in Kafka up to now (the PUBACKs came after Kafka had them).
    const raw = await readToEnd(brokers, Topics.raw, (r) => r.key === device);
    expect(eventsOf(raw)).toHaveLength(1);
    const dlq = await readUntil(
      brokers,
      Topics.dlq,
      (r) => r.value.toString().includes(p),
      (rs) => rs.length >= 3,
    );
    const byValue = (s: string) => dlq.find((r) => r.value.toString().includes(s));
    const bad = byValue(`${p}-bad`)!;
    expect(JSON.parse(bad.value.toString())).toEqual(badMetric);
    expect(bad.headers).toMatchObject({ error: 'metrics.temp: expected a number', source: 'mqtt' });
    expect(Number(bad.headers.receivedAt)).toBeGreaterThan(0);
    const other = byValue(`${p}-other`)!;
    expect(JSON.parse(other.value.toString())).toEqual(foreign);
    expect(other.headers.error).toMatch(/^deviceId: /);
    const unparseable = dlq.find((r) => r.value.toString() === broken)!;
    expect(unparseable.headers.error).toMatch(/^offset \d+: /);
    expect(unparseable.headers.source).toBe('mqtt');
  });

  it('refuses a wrong password (CONNACK 4) and a device the token may not write (CONNACK 5)', async () => {
    await expect(connect(`${prefix()}-d`, 'not-a-known-token')).rejects.toMatchObject({ code: 4 });
    await expect(connect(`valve-${prefix()}`, 'pump-only-token')).rejects.toMatchObject({ code: 5 });
    await expect(connect(`pump-${prefix()}`, 'pump-only-token')).resolves.toBeDefined();
  });

  it("refuses a publish to another device's topic: no PUBACK, the connection is closed, nothing reaches Kafka", async () => {
    const p = prefix();
    const client = await connect(`pump-${p}`, 'pump-only-token');
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const acked = client.publishAsync(
      `telemetry/valve-${p}`,
      JSON.stringify({ deviceId: `valve-${p}`, ts: now(), metrics: { open: 1 } }),
      { qos: 1 },
    );
    acked.catch(() => undefined);
    await closed;
    const outcome = await Promise.race([
      acked.then(() => 'acked'),
      new Promise((r) => setTimeout(() => r('no puback'), 500)),
    ]).catch(() => 'no puback');
    expect(outcome).toBe('no puback');
    // Its own topic still works on a new connection.
    const again = await connect(`pump-${p}`, 'pump-only-token');
    await again.publishAsync(
      `telemetry/pump-${p}`,
      JSON.stringify({ deviceId: `pump-${p}`, ts: now(), metrics: { rpm: 1200 } }),
      { qos: 1 },
    );
    // Nothing of the valve: everything in Kafka up to now (the pump's PUBACK came after Kafka had it).
    const raw = await readToEnd(brokers, Topics.raw, (r) => r.key === `valve-${p}` || r.key === `pump-${p}`);
    expect(raw.map((r) => r.key)).toEqual([`pump-${p}`]);
  });

  it('lets a device token publish its own topic only, and a gateway token every device of its glob', async () => {
    const p = prefix();
    const event = (d: string) => JSON.stringify({ deviceId: d, ts: now(), metrics: { rpm: 1 } });
    // A device token whose glob covers pump-b still may not publish pump-b's topic from pump-a's connection.
    const device = await connect(`pump-${p}-a`, 'pump-only-token');
    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));
    device.publishAsync(`telemetry/pump-${p}-b`, event(`pump-${p}-b`), { qos: 1 }).catch(() => undefined);
    await closed;
    // The gateway token may, for every device of its glob, over one connection; not beyond the glob.
    const gateway = await connect(`pump-${p}-gw`, 'pump-gateway-token');
    await gateway.publishAsync(`telemetry/pump-${p}-b`, event(`pump-${p}-b`), { qos: 1 });
    await gateway.publishAsync(`telemetry/pump-${p}-c`, event(`pump-${p}-c`), { qos: 1 });
    const refused = new Promise<void>((resolve) => gateway.once('close', () => resolve()));
    gateway.publishAsync(`telemetry/valve-${p}`, event(`valve-${p}`), { qos: 1 }).catch(() => undefined);
    await refused;
    const raw = await readToEnd(brokers, Topics.raw, (r) => r.key?.includes(p) === true);
    expect(raw.map((r) => r.key).sort()).toEqual([`pump-${p}-b`, `pump-${p}-c`]);
  });

  it("refuses a client id that is not the username's, and never lets one device take another's session", async () => {
    // The victim is connected under its own id; the holder of another device's token uses that id.
    const held = await connect(victim, 'victim-token-1', { clientId: victim });
    let kicked = false;
    held.on('close', () => (kicked = true));
    await expect(connect(owner, 'owner-token-1', { clientId: `x-${victim}` })).rejects.toMatchObject({ code: 2 });
    // `tk-…-12` starts with `tk-…-1`: taken as the owner's own id, in the owner's own namespace.
    const owner1 = await connect(owner, 'owner-token-1', { clientId: victim });
    await new Promise((r) => setTimeout(r, 500));
    expect(kicked).toBe(false);
    await held.publishAsync(`telemetry/${victim}`, JSON.stringify({ deviceId: victim, ts: now(), metrics: { v: 1 } }), {
      qos: 1,
    });
    // A device takes over its own session (MQTT-3.1.4-2): the old connection of that id is closed.
    let ownerKicked = false;
    owner1.on('close', () => (ownerKicked = true));
    await connect(owner, 'owner-token-1', { clientId: victim });
    await waitFor(
      () => ownerKicked,
      5000,
      () => 'the connection of the same id was not closed',
    );
    expect(kicked).toBe(false);
    const raw = await readToEnd(brokers, Topics.raw, (r) => r.key === victim);
    expect(raw).toHaveLength(1);
  });

  it('refuses QoS 2: the connection is closed before a PUBREC, nothing is kept or reaches Kafka', async () => {
    const device = `${prefix()}-q2`;
    const client = await connect(device);
    let pubrec = false;
    client.on('packetreceive', (packet) => (pubrec ||= packet.cmd === 'pubrec'));
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client
      .publishAsync(`telemetry/${device}`, JSON.stringify({ deviceId: device, ts: now(), metrics: { v: 2 } }), {
        qos: 2,
      })
      .catch(() => undefined);
    const within = await Promise.race([
      closed.then(() => true),
      new Promise((r) => setTimeout(() => r(false), 10_000)),
    ]);
    expect(within).toBe(true);
    expect(pubrec).toBe(false);
    const again = await connect(device);
    await again.publishAsync(
      `telemetry/${device}`,
      JSON.stringify({ deviceId: device, ts: now(), metrics: { v: 1 } }),
      {
        qos: 1,
      },
    );
    const events = eventsOf(await readToEnd(brokers, Topics.raw, (r) => r.key === device));
    expect(events.map((e) => (e.metrics as { v: number }).v)).toEqual([1]);
  });

  it('refuses subscriptions (SUBACK 0x80): ingestion routes nothing to devices', async () => {
    const client = await connect(`${prefix()}-s`);
    // mqtt.js turns a SUBACK return code of 0x80 into this error.
    await expect(client.subscribeAsync('telemetry/#', { qos: 1 })).rejects.toThrow(/Subscribe error/);
  });

  it('works with mosquitto_pub: QoS 1 lands in Kafka; a wrong password is refused', async () => {
    const device = `${prefix()}-m`;
    const port = String(ingestion.mqttPort);
    const event = { deviceId: device, ts: now(), metrics: { temp: 19.5 }, seq: 7 };
    const base = ['-h', '127.0.0.1', '-p', port, '-i', device, '-u', device, '-q', '1', '-t', `telemetry/${device}`];
    const ok = await mosquittoPub([...base, '-P', 'dev-token', '-m', JSON.stringify(event)]);
    expect(ok).toEqual({ code: 0, stderr: '' });
    const raw = await readUntil(
      brokers,
      Topics.raw,
      (r) => r.key === device,
      (rs) => rs.length >= 1,
    );
    expect(eventsOf(raw)[0]).toMatchObject(event);

    const refused = await mosquittoPub([...base, '-P', 'wrong-token', '-m', JSON.stringify(event)]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/bad user name or password/i);
  });

  it('counts MQTT in the Prometheus metrics with source="mqtt"', async () => {
    const text = await (await fetch(`http://127.0.0.1:${ingestion.port}/metrics`)).text();
    expect(text).toMatch(/fleetpulse_ingestion_events_accepted_total\{source="mqtt"\} [1-9]/);
    expect(text).toMatch(/fleetpulse_ingestion_events_rejected_total\{source="mqtt"\} [1-9]/);
    expect(text).toMatch(/fleetpulse_ingestion_requests_total\{source="mqtt",status="acked"\} [1-9]/);
    expect(text).toMatch(/fleetpulse_ingestion_requests_total\{source="mqtt",status="refused"\} [1-9]/);
    expect(text).toMatch(/fleetpulse_ingestion_mqtt_connections_total\{result="bad-credentials"\} [1-9]/);
    expect(text).toMatch(/fleetpulse_ingestion_request_seconds_count\{source="mqtt"\} [1-9]/);
  });
});
