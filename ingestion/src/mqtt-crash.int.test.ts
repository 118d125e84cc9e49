import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { kafkaBrokers } from '@fleetpulse/compose';
import { Topics } from '@fleetpulse/contracts';
import { connectAsync, type MqttClient } from 'mqtt';
import { buildIngestion, freePort, killChildren, startIngestionChild, waitFor } from './testing/child';
import { readUntil } from './testing/kafka-reader';

// A crash between receipt and Kafka loses no QoS 1 message: ingestion runs as a child process (the built
// ingestion/dist) whose Kafka sends are held (testing/hold-produce.ts), is killed with SIGKILL while it holds the
// message, and is started again; the client (clean=false session) resends on reconnect and gets its PUBACK only
// once the message is in Kafka. Kafka itself is never touched.
const brokers = kafkaBrokers();
let client: MqttClient | undefined;

// The child runs the built service: bring ingestion/dist up to date (incremental, quick when it is).
beforeAll(buildIngestion, 180_000);

afterAll(async () => {
  await client?.endAsync(true);
  killChildren();
});

/** ingestion/dist/main.js on `mqttPort`; `held`: with Kafka sends held. */
const startChild = (mqttPort: number, held: boolean) =>
  startIngestionChild(mqttPort, {}, held ? join(__dirname, '..', 'dist', 'testing', 'hold-produce.js') : undefined);

it('a QoS 1 message received but not yet in Kafka survives kill -9 of ingestion: the client resends it', async () => {
  const port = await freePort();
  const device = `crash-${randomUUID().slice(0, 8)}`;
  const first = await startChild(port, true);

  client = await connectAsync(`mqtt://127.0.0.1:${port}`, {
    clientId: device,
    username: device,
    password: 'dev-token',
    clean: false,
    reconnectPeriod: 200,
    connectTimeout: 5000,
  });
  client.on('error', () => undefined); // refused reconnects while ingestion is down are expected
  const event = { deviceId: device, ts: Date.now(), metrics: { temp: 21.5 }, seq: 1 };
  let acked = false;
  const publish = client.publishAsync(`telemetry/${device}`, JSON.stringify(event), { qos: 1 }).then(() => {
    acked = true;
  });

  // Received and parsed: the service is now waiting for Kafka, so the PUBACK has not gone out.
  await waitFor(() => first.output().includes('held-produce 1 1'), 10_000, first.output);
  expect(acked).toBe(false);
  first.child.kill('SIGKILL');
  await once(first.child, 'exit');
  await new Promise((r) => setTimeout(r, 500));
  expect(acked).toBe(false);

  await startChild(port, false);
  await publish; // the resend on reconnect was acknowledged: only after Kafka took it
  const records = await readUntil(
    brokers,
    Topics.raw,
    (r) => r.key === device,
    (rs) => rs.length >= 1,
  );
  const events = records.flatMap((r) => {
    const v = JSON.parse(r.value.toString()) as unknown;
    return (Array.isArray(v) ? v : [v]) as Record<string, unknown>[];
  });
  expect(events[0]).toMatchObject(event);
});
