import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import * as mqttPacket from 'mqtt-packet';
import { TransportError } from './errors';
import { createTransport, mqttUrlOf, type Transport } from './transport';

// A minimal MQTT 3.1.1 server (mqtt-packet) standing in for ingestion's MQTT door: records what arrives, PUBACKs,
// refuses the password `wrong-token` (CONNACK 4) and drops the connection on a publish to telemetry/drop-*.
interface Published {
  username: string | undefined;
  topic: string;
  payload: string;
  qos: number;
}
let server: Server;
let url: string;
const published: Published[] = [];
const sockets = new Set<Socket>();

beforeAll(async () => {
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    let username: string | undefined;
    const send = (packet: mqttPacket.Packet) => socket.write(mqttPacket.generate(packet));
    parser.on('packet', (packet) => {
      switch (packet.cmd) {
        case 'connect':
          username = packet.username;
          send({
            cmd: 'connack',
            returnCode: packet.password?.toString() === 'wrong-token' ? 4 : 0,
            sessionPresent: false,
          });
          return;
        case 'publish':
          if (packet.topic.startsWith('telemetry/drop-')) return void socket.destroy();
          published.push({ username, topic: packet.topic, payload: packet.payload.toString(), qos: packet.qos });
          if (packet.qos === 1) send({ cmd: 'puback', messageId: packet.messageId! });
          return;
        case 'pingreq':
          return send({ cmd: 'pingresp' });
        case 'disconnect':
          return void socket.end();
        default:
      }
    });
    socket.on('data', (d: Buffer) => parser.parse(d));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

beforeEach(() => (published.length = 0));

const ev = (deviceId: string, seq: number) => ({ deviceId, ts: 1763803200000 + seq, metrics: { temp: seq }, seq });

async function withTransport<T>(token: string, fn: (t: Transport) => Promise<T>): Promise<T> {
  const t = createTransport({ kind: 'mqtt', url: 'http://127.0.0.1:8080', mqttUrl: url, token, maxSockets: 2 });
  try {
    return await fn(t);
  } finally {
    await t.close();
  }
}

describe('MqttTransport', () => {
  it("publishes each device's events of a batch, in order, to telemetry/<deviceId> at QoS 1", async () => {
    const events = [ev('sim-1', 1), ev('sim-2', 1), ev('sim-1', 2), ev('sim-3', 1), ev('sim-1', 3)];
    const res = await withTransport('dev-token', (t) =>
      t.send(Buffer.from(JSON.stringify(events)), 'application/json'),
    );
    expect(res.status).toBe(202);
    expect(JSON.parse(res.body)).toEqual({ accepted: 5, rejected: 0, errors: [] });
    expect(published.map((p) => p.topic)).toEqual(['telemetry/sim-1', 'telemetry/sim-2', 'telemetry/sim-3']);
    expect(published.every((p) => p.qos === 1 && p.username === 'sim-1')).toBe(true);
    expect(JSON.parse(published[0]!.payload)).toEqual([ev('sim-1', 1), ev('sim-1', 2), ev('sim-1', 3)]);
  });

  it('keeps NDJSON as NDJSON, and answers for events it cannot route to a topic', async () => {
    const body = [
      JSON.stringify(ev('sim-1', 1)),
      JSON.stringify({ ts: 1, metrics: { t: 1 } }),
      JSON.stringify(ev('sim-1', 2)),
    ];
    const res = await withTransport('dev-token', (t) =>
      t.send(Buffer.from(body.join('\n') + '\n'), 'application/x-ndjson'),
    );
    expect(JSON.parse(res.body)).toMatchObject({ accepted: 2, rejected: 1, errors: [{ index: 1 }] });
    expect(published).toHaveLength(1);
    expect(published[0]!.payload).toBe(`${body[0]}\n${body[2]}\n`);
  });

  it('answers 401 when the login is refused, so the run stops', async () => {
    const res = await withTransport('wrong-token', (t) =>
      t.send(Buffer.from(JSON.stringify([ev('sim-1', 1)])), 'application/json'),
    );
    expect(res.status).toBe(401);
  });

  it('fails the batch as retriable when the connection closes before the PUBACK, then reconnects', async () => {
    await withTransport('dev-token', async (t) => {
      const failed = t.send(Buffer.from(JSON.stringify([ev('drop-1', 1)])), 'application/json');
      await expect(failed).rejects.toBeInstanceOf(TransportError);
      await expect(failed).rejects.toMatchObject({ retriable: true });
      for (let i = 0; i < 3; i++) {
        const res = await t.send(Buffer.from(JSON.stringify([ev('sim-9', i)])), 'application/json');
        expect(res.status).toBe(202);
      }
    });
    expect(published.map((p) => p.topic)).toEqual(['telemetry/sim-9', 'telemetry/sim-9', 'telemetry/sim-9']);
  });

  it('finds the MQTT door on the ingestion host unless FLEETPULSE_MQTT_URL says otherwise', () => {
    expect(mqttUrlOf('http://ingest.example:8080', {})).toBe('mqtt://ingest.example:1883');
    expect(mqttUrlOf('http://x:8080', { FLEETPULSE_MQTT_URL: 'mqtt://y:2883' })).toBe('mqtt://y:2883');
  });
});
