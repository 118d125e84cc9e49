import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { createTestTopic, kafkaClient, uniqueName } from '@fleetpulse/compose/testing';
import { pointOf, Topics, type MetricStats, type TelemetryEvent, type WindowRecord } from '@fleetpulse/contracts';
import type { Producer } from 'kafkajs';
import { io, type Socket } from 'socket.io-client';
import { startDashboard, type RunningDashboard } from './app';
import { bearer, testConfig, TestTokens, windowRecord } from './testing';

// The dashboard on what the real stream-processor makes: events produced to a topic of this test, the built
// processor (stream-processor/dist/main.js, built here if needed) as its own process writing the `windows` table
// and publishing window records to metrics.aggregates, and the API answering from both. Stored resolutions 1s and
// 10s on both sides, so 60s is live only. The other suite (dashboard.int.test.ts) seeds Cassandra and Kafka itself.
const root = resolve(__dirname, '..', '..');
const run = randomBytes(4).toString('hex');
const device = `pipe-it-${run}`;
// Event time: a whole minute, five minutes ago; 25 s of readings every 250 ms; vib only in the first 3 s.
const t0 = Math.floor((Date.now() - 300_000) / 60_000) * 60_000;
const events: TelemetryEvent[] = Array.from({ length: 100 }, (_, k) => ({
  deviceId: device,
  ts: t0 + k * 250,
  seq: k,
  metrics: { temp: 20 + k / 100, humidity: 40 + (k % 7), ...(k < 12 ? { vib: 0.1 * k } : {}) },
}));

let processor: ChildProcess | undefined;
const processorOutput: string[] = [];
let dashboard: RunningDashboard;
let producer: Producer;
let socket: Socket;
const live: WindowRecord[] = [];

/** The contract's statistics of a metric over the events of [start, end): population stddev, first/last by ts. */
function expected(metric: string, start: number, end: number): MetricStats | undefined {
  const xs = events.filter((e) => e.ts >= start && e.ts < end && metric in e.metrics).map((e) => e.metrics[metric]!);
  if (xs.length === 0) return undefined;
  const sum = xs.reduce((a, b) => a + b, 0);
  const mean = sum / xs.length;
  return {
    count: xs.length,
    sum,
    min: Math.min(...xs),
    max: Math.max(...xs),
    mean,
    stddev: Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length),
    first: xs[0]!,
    last: xs.at(-1)!,
  };
}

function expectContractValues(r: WindowRecord): void {
  for (const m of ['temp', 'humidity', 'vib']) {
    const want = expected(m, r.windowStart, r.windowEnd);
    if (!want) {
      expect(r.metrics[m]).toBeUndefined();
      continue;
    }
    const got = r.metrics[m]!;
    expect(got.count).toBe(want.count);
    for (const k of ['sum', 'min', 'max', 'mean', 'stddev', 'first', 'last'] as const)
      expect(got[k]).toBeCloseTo(want[k], 9);
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field below
async function get(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${dashboard.url}${path}`, { headers: bearer(TestTokens.admin) });
  return { status: res.status, body: await res.json() };
}

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end)
      throw new Error(`${what}: not after ${timeoutMs} ms; processor said:\n${processorOutput.join('').slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

beforeAll(async () => {
  // The processor's current source, built (incremental: quick when nothing changed).
  execFileSync('npx', ['tsc', '-b', 'stream-processor'], { cwd: root, stdio: 'inherit' });
  const kafka = kafkaClient();
  const admin = kafka.admin();
  await admin.connect();
  const topic = await createTestTopic(admin);
  await admin.disconnect();
  producer = kafka.producer();
  await producer.connect();
  dashboard = await startDashboard(testConfig({ storedResolutions: ['1s', '10s'] }), { logLevels: ['error'] });

  socket = io(`${dashboard.url}/live`, {
    transports: ['websocket'],
    forceNew: true,
    auth: { token: TestTokens.admin },
  });
  await new Promise<void>((ok, fail) => {
    socket.once('connect', () => ok());
    socket.once('connect_error', fail);
  });
  expect(await socket.emitWithAck('subscribe', { deviceId: device })).toEqual({ ok: true });
  socket.on('aggregate', (r: WindowRecord) => {
    if (r.windowStart >= t0 && r.windowStart < t0 + 60_000) live.push(r);
  });
  // The API's consumer starts at the latest offset once assigned: probe (a window far from t0) until one arrives.
  let probed = false;
  socket.on('aggregate', (r: WindowRecord) => void (probed ||= 'probe' in r.metrics));
  for (let i = 0; !probed && i < 100; i++) {
    const probe = windowRecord(device, Math.floor(Date.now() / 1000) * 1000, { probe: i });
    await producer.send({ topic: Topics.aggregates, messages: [{ key: device, value: JSON.stringify(probe) }] });
    await new Promise((r) => setTimeout(r, 300));
  }
  if (!probed) throw new Error('the API never passed a probe record on');

  processor = spawn(process.execPath, [join(root, 'stream-processor', 'dist', 'main.js')], {
    env: {
      ...process.env,
      FLEETPULSE_PROCESSOR_TOPIC: topic,
      FLEETPULSE_PROCESSOR_GROUP: uniqueName('dash-pipeline'),
      FLEETPULSE_PROCESSOR_HOST: '127.0.0.1',
      FLEETPULSE_PROCESSOR_PORT: '0',
      FLEETPULSE_STORED_RESOLUTIONS: '1s,10s',
      FLEETPULSE_PROCESSOR_SHUTDOWN_GRACE_MS: '5000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  processor.stdout!.on('data', (b: Buffer) => processorOutput.push(b.toString()));
  processor.stderr!.on('data', (b: Buffer) => processorOutput.push(b.toString()));
  // Four records of 25 events, each a JSON array of one device's events as ingestion groups them.
  const receivedAt = Date.now();
  const messages = [0, 25, 50, 75].map((i) => ({
    key: device,
    value: JSON.stringify(events.slice(i, i + 25).map((e) => ({ ...e, receivedAt }))),
  }));
  await producer.send({ topic, messages });
}, 240_000);

afterAll(async () => {
  if (processor && processor.exitCode === null) {
    const exited = new Promise((r) => processor!.once('exit', r));
    processor.kill('SIGTERM');
    const timer = setTimeout(() => processor!.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
  socket?.disconnect();
  await dashboard?.close();
  await producer?.disconnect();
});

describe('the dashboard on the stream-processor', () => {
  let stored1s: WindowRecord[];
  let stored10s: WindowRecord[];

  it('answers the processor-written window records, with the contract values', async () => {
    const windows = (res: string) =>
      get(`/api/devices/${device}/windows?resolution=${res}&from=${t0}&to=${t0 + 60_000}`);
    stored1s = await until('25 1s windows stored', async () => {
      const { status, body } = await windows('1s');
      return status === 200 && body.windows.length === 25 ? (body.windows as WindowRecord[]) : undefined;
    });
    stored10s = await until('3 10s windows stored', async () => {
      const { body } = await windows('10s');
      return body.windows?.length === 3 ? (body.windows as WindowRecord[]) : undefined;
    });
    expect(stored1s.map((r) => r.windowStart)).toEqual(Array.from({ length: 25 }, (_, i) => t0 + i * 1000));
    expect(stored10s.map((r) => [r.windowStart, r.metrics.temp!.count])).toEqual([
      [t0, 40],
      [t0 + 10_000, 40],
      [t0 + 20_000, 20],
    ]);
    for (const r of [...stored1s, ...stored10s]) {
      expect(r).toMatchObject({
        deviceId: device,
        final: true,
        windowEnd: r.windowStart + (r.resolution === '1s' ? 1000 : 10_000),
      });
      expectContractValues(r);
    }
  });

  it('answers a metric as v1 points, skipping the windows without it', async () => {
    const vib = await get(`/api/devices/${device}/metrics/vib?resolution=1s&from=${t0}&to=${t0 + 60_000}`);
    expect(vib.body).toEqual({
      deviceId: device,
      metric: 'vib',
      resolution: '1s',
      points: stored1s.slice(0, 3).map((r) => pointOf(r, 'vib')),
      next: null,
    });
    const temp = await get(`/api/devices/${device}/metrics/temp?from=${t0}&to=${t0 + 60_000}&limit=2`);
    expect(temp.body.points).toEqual(stored10s.slice(0, 2).map((r) => pointOf(r, 'temp')));
    expect(temp.body.next).toBe(t0 + 20_000);
  });

  it('streams the same records live, 60s included, which REST says is live only', async () => {
    const sixty = await until('the 60s window live', () => Promise.resolve(live.find((r) => r.resolution === '60s')));
    expect(sixty).toMatchObject({ windowStart: t0, windowEnd: t0 + 60_000, final: true });
    expectContractValues(sixty);
    // Coalescing may drop windows of a burst, never the newest one of a resolution.
    await until('the last 1s window live', () =>
      Promise.resolve(live.find((r) => r.resolution === '1s' && r.windowStart === t0 + 24_000)),
    );
    const stored = new Map([...stored1s, ...stored10s].map((r) => [`${r.resolution}|${r.windowStart}`, r]));
    for (const r of live.filter((x) => x.resolution !== '60s'))
      expect(r).toEqual(stored.get(`${r.resolution}|${r.windowStart}`));
    expect(await get(`/api/devices/${device}/windows?resolution=60s&from=${t0}&to=${t0 + 60_000}`)).toEqual({
      status: 400,
      body: { error: 'resolution 60s is live only (not stored); stored: 1s,10s' },
    });
  });

  it('lists the device with its metrics', async () => {
    // The page that starts at the device (the list holds every other run's devices too).
    const { body } = await get(`/api/devices?next=${device}&limit=1`);
    expect(body[0]).toMatchObject({
      deviceId: device,
      metrics: ['humidity', 'temp', 'vib'],
    });
  });
});
