import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { kafkaBrokers } from '@fleetpulse/compose';
import { Topics } from '@fleetpulse/contracts';
import { connectAsync } from 'mqtt';
import {
  buildIngestion,
  freePort,
  killChildren,
  memoryOf,
  startIngestionChild,
  waitFor,
  type IngestionChild,
} from './testing/child';
import { readToEnd, readUntil } from './testing/kafka-reader';
import {
  closedWithin,
  connectPacket,
  flood,
  publishHead,
  rawSocket,
  readBytes,
  remainingLength,
} from './testing/mqtt-raw';

// Hostile MQTT clients against ingestion as its own process (the built ingestion/dist, with the defaults but for a
// 2 s keepalive bound), whose memory is read from /proc: each client is cut off at its bound, the service's memory
// stays within the figures printed at the end, and a device publishing next to them loses nothing.
const brokers = kafkaBrokers();
const MiB = 1024 * 1024;
let svc: IngestionChild;
let mqttPort: number;
const figures: string[] = [];

beforeAll(async () => {
  await buildIngestion();
  mqttPort = await freePort();
  svc = await startIngestionChild(mqttPort, { FLEETPULSE_MQTT_MAX_KEEPALIVE_SECONDS: '2' });
}, 180_000);

afterAll(() => {
  killChildren();
  console.log(`memory of ingestion (VmRSS / VmHWM, MiB) around each hostile client:\n${figures.join('\n')}`);
});

const memory = () => memoryOf(svc.child.pid!);
const fmt = (m: { rssMb: number; hwmMb: number }) => `${m.rssMb.toFixed(1)} / ${m.hwmMb.toFixed(1)}`;

/** A counter of the service's /metrics (0 when absent). */
async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${svc.httpPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

/** A device publishes one event at QoS 1 and it is in Kafka: the door serves, and what it acknowledges is kept. */
async function stillServes(device: string): Promise<void> {
  const client = await connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
    username: device,
    password: 'dev-token',
    clientId: device,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  });
  const event = { deviceId: device, ts: Date.now(), metrics: { temp: 20.5 }, seq: 1 };
  await client.publishAsync(`telemetry/${device}`, JSON.stringify(event), { qos: 1 });
  await client.endAsync();
  const records = await readUntil(
    brokers,
    Topics.raw,
    (r) => r.key === device,
    (rs) => rs.length >= 1,
  );
  expect([JSON.parse(records[0]!.value.toString()) as unknown].flat()[0]).toMatchObject(event);
}

const device = () => `hostile-${randomUUID().slice(0, 8)}`;

/** Opens `n` sockets 250 at a time; `onOpen` may write to each. Counts those the server has closed. */
async function openMany(n: number, onOpen: (socket: Socket) => void = () => undefined) {
  const sockets: Socket[] = [];
  const state = { closed: 0 };
  for (let i = 0; i < n; i += 250) {
    await Promise.all(
      Array.from({ length: Math.min(250, n - i) }, async () => {
        const socket = connect(mqttPort, '127.0.0.1');
        socket.on('error', () => undefined);
        socket.on('close', () => state.closed++);
        sockets.push(socket);
        await Promise.race([once(socket, 'connect'), once(socket, 'close')]);
        if (!socket.destroyed) onOpen(socket);
      }),
    );
  }
  return { sockets, state };
}

const kib = (mb: number, n: number) => ((mb * 1024) / n).toFixed(1);

describe('hostile MQTT clients against ingestion as its own process', () => {
  it('drops a 50 MiB packet sent before CONNECT by its header, without buffering it', async () => {
    const before = memory();
    const socket = await rawSocket(mqttPort);
    const written = await flood(socket, Buffer.from([0x10, ...remainingLength(50 * MiB)]), 50 * MiB);
    expect(await closedWithin(socket, 5000)).toBe(true);
    expect(written).toBeLessThan(50 * MiB);
    const after = memory();
    figures.push(
      `50 MiB CONNECT before login: ${fmt(before)} -> ${fmt(after)}; the client got ${(written / MiB).toFixed(1)} MiB into the socket before the reset`,
    );
    expect(after.hwmMb - before.hwmMb).toBeLessThan(16);
    expect(await metric('fleetpulse_ingestion_mqtt_dropped_total', 'reason="connect-too-large"')).toBeGreaterThan(0);
    // A first packet that is not a CONNECT is refused at its first byte too.
    const other = await rawSocket(mqttPort);
    await flood(other, publishHead('telemetry/x', 50 * MiB), 50 * MiB);
    expect(await closedWithin(other, 5000)).toBe(true);
    await stillServes(device());
  });

  it('drops a 50 MiB PUBLISH after a good CONNECT by its header; the device loses nothing it had acknowledged', async () => {
    const d = device();
    const socket = await rawSocket(mqttPort);
    socket.write(connectPacket(d, d, 'dev-token'));
    expect([...(await readBytes(socket, 4))]).toEqual([0x20, 2, 0, 0]); // CONNACK, accepted
    const before = memory();
    const written = await flood(socket, publishHead(`telemetry/${d}`, 50 * MiB), 50 * MiB);
    expect(await closedWithin(socket, 5000)).toBe(true);
    const after = memory();
    figures.push(
      `50 MiB PUBLISH after login: ${fmt(before)} -> ${fmt(after)}; the client got ${(written / MiB).toFixed(1)} MiB into the socket before the reset`,
    );
    expect(after.hwmMb - before.hwmMb).toBeLessThan(16);
    expect(await metric('fleetpulse_ingestion_mqtt_dropped_total', 'reason="packet-too-large"')).toBeGreaterThan(0);
    await stillServes(d);
    // Exactly the one event of stillServes: nothing of the dropped packet.
    expect(await readToEnd(brokers, Topics.raw, (r) => r.key === d)).toHaveLength(1);
  });

  it('holds 10,000 idle connections at the connection limit, closes them after the CONNECT timeout', async () => {
    const limit = 10_000; // the defaults: 10,000 connections, 10 s to log in
    const extra = 200;
    const before = memory();
    const opened = Date.now();
    const { sockets, state } = await openMany(limit + extra);
    await waitFor(
      () => state.closed >= extra,
      10_000,
      () => `${state.closed} of ${limit + extra} connections closed; expected the ${extra} over the limit`,
    );
    const held = memory();
    const open = sockets.length - state.closed;
    expect(open).toBeLessThanOrEqual(limit);
    expect(open).toBeGreaterThan(limit - 50); // a few may have been refused while others were still closing
    expect(await metric('fleetpulse_ingestion_mqtt_dropped_total', 'reason="connection-limit"')).toBeGreaterThanOrEqual(
      extra,
    );
    // Nothing sent: every one is closed at the CONNECT timeout.
    await waitFor(
      () => state.closed === sockets.length,
      40_000,
      () => `${sockets.length - state.closed} connections still open ${Date.now() - opened} ms after the first opened`,
    );
    expect(Date.now() - opened).toBeGreaterThanOrEqual(9_000);
    expect(await metric('fleetpulse_ingestion_mqtt_dropped_total', 'reason="connect-timeout"')).toBeGreaterThanOrEqual(
      limit - 50,
    );
    const after = memory();
    figures.push(
      `${open} idle connections (of ${limit + extra} opened): ${fmt(before)} -> ${fmt(held)} while held -> ${fmt(after)} after the timeout; ${kib(held.rssMb - before.rssMb, open)} KiB each`,
    );
    expect(held.rssMb - before.rssMb).toBeLessThan(64);
    await stillServes(device());
  }, 180_000);

  it('holds at most 1,000 half-sent CONNECTs at a time, and closes them at the CONNECT timeout', async () => {
    const n = 3000;
    const before = memory();
    // Each declares a CONNECT of 8,000 bytes and sends half of it.
    const half = Buffer.concat([Buffer.from([0x10, ...remainingLength(8000)]), Buffer.alloc(4000, 0x61)]);
    const { sockets, state } = await openMany(n, (socket) => socket.write(half));
    await waitFor(
      () => state.closed >= n - 1000,
      10_000,
      () => `${state.closed} of ${n} half-sent CONNECTs closed; expected all but 1,000`,
    );
    const held = memory();
    const open = n - state.closed;
    expect(open).toBeLessThanOrEqual(1000);
    expect(await metric('fleetpulse_ingestion_mqtt_dropped_total', 'reason="login-limit"')).toBeGreaterThanOrEqual(
      n - 1000,
    );
    await waitFor(
      () => state.closed === sockets.length,
      40_000,
      () => `${sockets.length - state.closed} half-sent CONNECTs still open`,
    );
    figures.push(
      `${open} half-sent CONNECTs held (of ${n}): ${fmt(before)} -> ${fmt(held)}; ${kib(held.rssMb - before.rssMb, open)} KiB each`,
    );
    expect(held.rssMb - before.rssMb).toBeLessThan(64);
    await stillServes(device());
  }, 120_000);

  it('bounds the bytes of large packets in progress across connections of one token', async () => {
    const d = device();
    const before = memory();
    const sockets: Socket[] = [];
    const part = 4 * MiB;
    for (let i = 0; i < 16; i++) {
      const socket = await rawSocket(mqttPort);
      sockets.push(socket);
      socket.write(connectPacket(`${d}-${i}`, d, 'dev-token'));
      expect([...(await readBytes(socket, 4))]).toEqual([0x20, 2, 0, 0]);
      // A packet of 5 MiB (just under the default limit), of which 4 MiB are sent, the rest never.
      await flood(socket, publishHead(`telemetry/${d}`, 5 * MiB), part);
    }
    await new Promise((r) => setTimeout(r, 1000));
    const held = memory();
    const open = sockets.filter((s) => !s.destroyed).length;
    expect(open).toBeLessThanOrEqual(12); // 48 MiB / 4 MiB
    expect(open).toBeGreaterThanOrEqual(10);
    expect(await metric('fleetpulse_ingestion_mqtt_dropped_total', 'reason="buffer-budget"')).toBeGreaterThan(0);
    figures.push(
      `${open} logged-in connections each 4 MiB into a 5 MiB packet (16 tried): ${fmt(before)} -> ${fmt(held)}`,
    );
    expect(held.rssMb - before.rssMb).toBeLessThan(64);
    for (const s of sockets) s.destroy();
    await stillServes(d);
  });

  it('takes a keepalive of 0 (none) as the bound: a silent connection is closed after 1.5 times it', async () => {
    const d = device();
    const client = await connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
      username: d,
      password: 'dev-token',
      clientId: d,
      keepalive: 0,
      reconnectPeriod: 0,
    });
    const started = Date.now();
    await new Promise<void>((resolve) => {
      client.once('close', () => resolve());
      setTimeout(resolve, 10_000);
    });
    const silentFor = Date.now() - started;
    expect(client.connected).toBe(false);
    expect(silentFor).toBeGreaterThanOrEqual(2_500); // 1.5 x the 2 s bound
    expect(silentFor).toBeLessThan(6_000);
    await client.endAsync(true);
  });
});
