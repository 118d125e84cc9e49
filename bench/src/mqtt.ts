import * as http from 'node:http';
import { stackUp, stderrLogger } from '@fleetpulse/compose';
import { createTransport, type Transport } from '@fleetpulse/simulator';
import { connectAsync, type MqttClient } from 'mqtt';
import { postTelemetry } from './ingest-post';
import { benchPayloads } from './parse';
import { quantile } from './quantile';
import { startIngestionTarget, type IngestionTarget } from './ingest';
import { cpuSeconds, freePort, memoryMb, waitReady, withBenchTopic } from './services';

export interface BenchMqttOptions {
  /** [seconds=10] - measured time of each door and batch shape. */
  seconds?: number;
  /** [connections=16] - HTTP keep-alive connections, MQTT connections: one batch in flight on each. */
  connections?: number;
  /** [batchSize=500] - events per batch (4 metrics each); under 50 the `mixed` shapes (50 devices a batch) are skipped. */
  batchSize?: number;
  /** [this repo's build] */
  target?: IngestionTarget;
}

export interface DoorResult {
  door: 'http' | 'mqtt';
  /** `device`: every batch one device's (one PUBLISH); `mixed`: 50 devices per batch (MQTT: one PUBLISH each). */
  batches: 'device' | 'mixed';
  eventsPerSec: number;
  batchesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  failures: number;
  /**
   * CPU (user + system) per event, µs, of the ingestion process and of this bench process (the load: MQTT and HTTP
   * clients) while the shape ran: what each costs per event whatever the load from elsewhere.
   */
  ingestionCpuUsPerEvent: number;
  loadCpuUsPerEvent: number;
}

export interface BenchMqttResult {
  rows: DoorResult[];
  peakRssMb: number;
  connections: number;
  batchSize: number;
}

/** 64 batches of `size` events of one device each (devices bench-mqtt-<run>-0..63), 4 metrics per event. */
function deviceBatches(size: number, run: string): { device: string; body: Buffer }[] {
  const now = Date.now() - 60_000;
  return Array.from({ length: 64 }, (_, b) => {
    const device = `bench-mqtt-${run}-${b}`;
    const events = Array.from({ length: size }, (_, i) =>
      JSON.stringify({
        deviceId: device,
        ts: now + i,
        metrics: { temp: 20 + (i % 10) / 10, humidity: 40 + (i % 7), vib: 0.01 * (i % 30), volt: 3.3 },
        seq: i,
      }),
    );
    return { device, body: Buffer.from(`[${events.join(',')}]`) };
  });
}

/** `connections` loops, each sending its next batch when the last was acknowledged, for `seconds`. */
async function drive(
  connections: number,
  seconds: number,
  sendOne: (lane: number, n: number) => Promise<number>,
): Promise<{ events: number; batches: number; failures: number; latencies: number[]; seconds: number }> {
  const deadline = performance.now() + seconds * 1000;
  const latencies: number[] = [];
  let events = 0;
  let failures = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async (_, lane) => {
      for (let n = 0; performance.now() < deadline; n++) {
        const started = performance.now();
        try {
          // Not `events += await ...`: that reads `events` before the await and loses the other lanes' counts.
          const sent = await sendOne(lane, n);
          events += sent;
          latencies.push(performance.now() - started);
        } catch {
          failures++;
        }
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { events, batches: latencies.length, failures, latencies, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Events/s into Kafka over MQTT next to HTTP, in one run, against one ingestion process (ingestion/dist, with
 * Kafka from the launcher): the same batch bytes through both doors, each acknowledged only after Kafka's acks
 * from all in-sync replicas (HTTP 202, MQTT PUBACK at QoS 1). `device` batches hold one device's events (MQTT:
 * one PUBLISH to its topic); `mixed` batches hold 50 devices' (MQTT: split per device by the simulator's gateway
 * transport, about 50 PUBLISHes of 10 events).
 */
export async function benchMqtt(opts: BenchMqttOptions = {}): Promise<BenchMqttResult> {
  await stackUp({ log: stderrLogger });
  return withBenchTopic('mqtt', (topic) => measureMqtt(topic, opts));
}

async function measureMqtt(topic: string, opts: BenchMqttOptions): Promise<BenchMqttResult> {
  const seconds = opts.seconds ?? 10;
  const connections = opts.connections ?? 16;
  const batchSize = opts.batchSize ?? 500;
  const [httpPort, mqttPort] = [await freePort(), await freePort()];
  const ingestion = await startIngestionTarget('ingestion', opts.target ?? {}, { port: httpPort, mqttPort, topic });
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, memoryMb(ingestion.pid).hwm)), 200);
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const mqttClients: MqttClient[] = [];
  let gateway: Transport | undefined;
  try {
    await waitReady(ingestion, 30_000);
    const telemetryUrl = new URL(`http://127.0.0.1:${httpPort}/v1/telemetry`);
    const post = async (body: Buffer, events: number) => {
      const { code } = await postTelemetry(agent, telemetryUrl, 'dev-token', 'application/json', body);
      if (code !== 202) throw new Error(`${code}`);
      return events;
    };
    for (let i = 0; i < connections; i++)
      mqttClients.push(
        await connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
          username: `bench-gw-${i}`,
          password: 'dev-token',
          clientId: `bench-gw-${i}-${Date.now()}`,
          reconnectPeriod: 0,
        }),
      );
    gateway = createTransport({
      kind: 'mqtt',
      url: `http://127.0.0.1:${httpPort}`,
      mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
      token: 'dev-token',
      maxSockets: connections,
    });
    const gw = gateway;

    const run = String(Date.now() % 1_000_000);
    const single = deviceBatches(batchSize, run);
    const mixed = benchPayloads(batchSize, 64, 'json', Date.now());
    const shapes: {
      door: DoorResult['door'];
      batches: DoorResult['batches'];
      send: (lane: number, n: number) => Promise<number>;
    }[] = [
      { door: 'http', batches: 'device', send: (l, n) => post(single[(l * 7 + n) % 64]!.body, batchSize) },
      {
        door: 'mqtt',
        batches: 'device',
        send: async (l, n) => {
          const b = single[(l * 7 + n) % 64]!;
          await mqttClients[l]!.publishAsync(`telemetry/${b.device}`, b.body, { qos: 1 });
          return batchSize;
        },
      },
      { door: 'http', batches: 'mixed', send: (l, n) => post(mixed[(l * 7 + n) % 64]!, batchSize) },
      {
        door: 'mqtt',
        batches: 'mixed',
        send: async (l, n) => {
          const res = await gw.send(mixed[(l * 7 + n) % 64]!, 'application/json');
          if (res.status !== 202) throw new Error(`${res.status}`);
          return (JSON.parse(res.body) as { accepted: number }).accepted;
        },
      },
    ];
    const rows: DoorResult[] = [];
    for (const shape of shapes) {
      if (shape.batches === 'mixed' && batchSize < 50) continue; // 50 devices cannot share fewer events
      await drive(connections, 2, shape.send); // warm-up
      const [ingestionCpu, loadCpu] = [cpuSeconds(ingestion.pid), process.cpuUsage()];
      const r = await drive(connections, seconds, shape.send);
      const load = process.cpuUsage(loadCpu);
      rows.push({
        door: shape.door,
        batches: shape.batches,
        eventsPerSec: Math.round(r.events / r.seconds),
        batchesPerSec: Math.round(r.batches / r.seconds),
        p50Ms: Math.round(quantile(r.latencies, 0.5, 0) * 10) / 10,
        p99Ms: Math.round(quantile(r.latencies, 0.99, 0) * 10) / 10,
        failures: r.failures,
        ingestionCpuUsPerEvent: ((cpuSeconds(ingestion.pid) - ingestionCpu) / r.events) * 1e6,
        loadCpuUsPerEvent: (load.user + load.system) / r.events,
      });
    }
    return { rows, peakRssMb: Math.round(peakRss), connections, batchSize };
  } finally {
    clearInterval(sampler);
    agent.destroy();
    await Promise.all(mqttClients.map((c) => c.endAsync(true)));
    await gateway?.close();
    await ingestion.stop();
  }
}
