/**
 * The scoring service against the real Kafka and Cassandra (compose launcher) with really exported models:
 * the default model's precision/recall on the simulator's injected anomalies, a swap under load with every window
 * scored exactly once, and bad files rejected while the old model keeps serving.
 */
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AggregateRow, AnomalyScore } from '@fleetpulse/contracts';
import { Keyspace } from '@fleetpulse/contracts';
import { cassandraContactPoint, kafkaBrokers } from '@fleetpulse/compose';
import type { Admin, Consumer, Producer } from 'kafkajs';
import {
  connectedCassandra,
  createTestTopic,
  kafkaClient,
  testGroupId,
  uniqueName,
} from '@fleetpulse/compose/dist/testing/helpers';
import { loadConfig } from './config';
import { startScoring, type RunningScoring } from './service';
import { overlappingTruth, simulateAggregates, truthByDevice } from './sim-data';

const models = join(__dirname, '..', 'models');
const fixtures = join(__dirname, '..', 'fixtures');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const kafka = kafkaClient();
let admin: Admin;
let producer: Producer;

beforeAll(async () => {
  admin = kafka.admin();
  producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
});
afterAll(async () => {
  await Promise.all([admin.disconnect(), producer.disconnect()]);
});

interface Harness {
  service: RunningScoring;
  dir: string;
  source: string;
  scores: AnomalyScore[];
  /** Wall-clock arrival (ms) of each score, same index. */
  arrivals: number[];
  reader: Consumer;
  close(): Promise<void>;
}

async function harness(setup: (dir: string) => void): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'scoring-it-'));
  setup(dir);
  const source = await createTestTopic(admin, { partitions: 3 });
  const sink = await createTestTopic(admin, { partitions: 3 });
  const config = loadConfig({
    MODELS_DIR: dir,
    FLEETPULSE_KAFKA_BROKERS: kafkaBrokers().join(','),
    FLEETPULSE_CASSANDRA_CONTACT_POINTS: cassandraContactPoint(),
    FLEETPULSE_SCORING_GROUP: testGroupId(),
    FLEETPULSE_SCORING_SOURCE_TOPIC: source,
    FLEETPULSE_SCORING_SCORES_TOPIC: sink,
    FLEETPULSE_SCORING_PORT: '0',
    FLEETPULSE_SCORING_HOST: '127.0.0.1',
    FLEETPULSE_SCORING_MAX_WAIT_MS: '1000',
    FLEETPULSE_SCORING_TICK_MS: '100',
    FLEETPULSE_SCORING_SETTLE_MS: '50',
    FLEETPULSE_SCORING_SESSION_TIMEOUT_MS: '10000',
  });
  const service = await startScoring(config, () => undefined);
  const scores: AnomalyScore[] = [];
  const arrivals: number[] = [];
  const reader = kafka.consumer({ groupId: testGroupId() });
  await reader.connect();
  await reader.subscribe({ topic: sink, fromBeginning: true });
  await reader.run({
    eachMessage: async ({ message }) => {
      scores.push(JSON.parse(message.value!.toString()) as AnomalyScore);
      arrivals.push(Date.now());
    },
  });
  return {
    service,
    dir,
    source,
    scores,
    arrivals,
    reader,
    close: async () => {
      await reader.disconnect();
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function publish(topic: string, rows: readonly AggregateRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 2000)
    await producer.send({
      topic,
      messages: rows.slice(i, i + 2000).map((r) => ({ key: r.deviceId, value: JSON.stringify(r) })),
    });
}

/** (device, windowStart) of every window with all four metrics: what the default model scores. */
function completeWindows(rows: readonly AggregateRow[]): Set<string> {
  const n = new Map<string, number>();
  for (const r of rows) n.set(`${r.deviceId}|${r.windowStart}`, (n.get(`${r.deviceId}|${r.windowStart}`) ?? 0) + 1);
  return new Set([...n].filter(([, c]) => c === 4).map(([k]) => k));
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function countBy(scores: readonly AnomalyScore[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of scores) {
    const k = `${s.deviceId}|${s.windowStart}|${s.model}`;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

test('the default model finds the injected anomalies (precision/recall on held-out simulator data)', async () => {
  const prefix = `${uniqueName('pr')}-`;
  // Another seed than the training data's, so these windows were never seen in training.
  const sim = simulateAggregates({ devices: 40, durationMs: 3_600_000, seed: 1234, devicePrefix: prefix });
  const expected = completeWindows(sim.rows);
  const h = await harness((dir) => {
    copyFileSync(join(models, 'iforest.onnx'), join(dir, 'iforest.onnx'));
    copyFileSync(join(models, 'iforest.json'), join(dir, 'iforest.json'));
  });
  try {
    expect(h.service.models().map((m) => [m.name, m.active?.version])).toEqual([['iforest', '1']]);
    await publish(h.source, sim.rows);
    await until(() => h.scores.length >= expected.size, 90_000, `${expected.size} scores`);
    await sleep(1500);
    const counts = countBy(h.scores);
    expect(counts.size).toBe(expected.size);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    const byDev = truthByDevice(sim.truth);
    let tp = 0;
    let fp = 0;
    let fn = 0;
    const byKind: Record<string, [number, number]> = {};
    for (const s of h.scores) {
      expect(s).toMatchObject({ model: 'iforest', modelVersion: '1', resolution: '10s' });
      expect(Object.keys(s.features)).toHaveLength(12);
      const hits = overlappingTruth(byDev, s.deviceId, s.windowStart, s.windowStart + 10_000);
      if (hits.length > 0 && s.anomalous) tp++;
      else if (hits.length > 0) fn++;
      else if (s.anomalous) fp++;
      for (const k of new Set(hits.map((x) => x.kind))) {
        const e = (byKind[k] ??= [0, 0]);
        e[1]++;
        if (s.anomalous) e[0]++;
      }
    }
    const precision = tp / (tp + fp);
    const recall = tp / (tp + fn);
    const recallByKind = Object.fromEntries(Object.entries(byKind).map(([k, [d, n]]) => [k, `${d}/${n}`]));
    console.log(
      `default model on ${h.scores.length} held-out windows (${tp + fn} anomalous): precision ${precision.toFixed(3)}, ` +
        `recall ${recall.toFixed(3)}; detected by kind ${JSON.stringify(recallByKind)}`,
    );
    expect(precision).toBeGreaterThan(0.6);
    expect(recall).toBeGreaterThan(0.3);

    // Anomalous scores are in Cassandra, both tables.
    const anomalous = h.scores.filter((s) => s.anomalous);
    const one = anomalous[0]!;
    const day = Math.floor(one.windowStart / 86_400_000) * 86_400_000;
    const cql = await connectedCassandra(Keyspace);
    try {
      const a = await cql.execute(
        'SELECT model, model_version, score, features FROM anomalies WHERE device_id = ? AND day = ? AND window_start = ?',
        [one.deviceId, day, one.windowStart],
        { prepare: true },
      );
      expect(a.rows[0]?.['model_version']).toBe('1');
      expect(a.rows[0]?.['score']).toBeCloseTo(one.score, 5);
      const b = await cql.execute(
        'SELECT device_id FROM anomalies_by_day WHERE day = ? AND window_start = ? AND device_id = ?',
        [day, one.windowStart, one.deviceId],
        { prepare: true },
      );
      expect(b.rowLength).toBe(1);
    } finally {
      await cql.shutdown();
    }
  } finally {
    await h.close();
  }
});

test('a swap under load loses and repeats no score; bad files are rejected while the old model serves', async () => {
  const prefix = `${uniqueName('sw')}-`;
  const sim = simulateAggregates({ devices: 30, durationMs: 40 * 60_000, seed: 99, devicePrefix: prefix });
  // Published window by window (in event time), as the stream processor would.
  const starts = [...new Set(sim.rows.map((r) => r.windowStart))].sort((a, b) => a - b);
  const expected = completeWindows(sim.rows);
  const v2 = readFileSync(join(fixtures, 'iforest-v2.onnx'));
  const h = await harness((dir) => copyFileSync(join(models, 'iforest.onnx'), join(dir, 'iforest.onnx')));
  const status = () => h.service.models().find((m) => m.name === 'iforest')!;
  const place = (from: string, name: string) => renameSync(from, join(h.dir, name));
  const tmp = (bytes: Buffer | string) => {
    const p = join(h.dir, `.incoming-${Math.random().toString(36).slice(2)}.tmp`);
    writeFileSync(p, bytes);
    return p;
  };
  let renamedAt = 0;
  const load = (async () => {
    for (let i = 0; i < starts.length; i++) {
      const ws = starts[i]!;
      await publish(
        h.source,
        sim.rows.filter((r) => r.windowStart === ws),
      );
      if (i === Math.floor(starts.length / 2)) {
        renamedAt = Date.now();
        place(tmp(v2), 'iforest.onnx'); // write-then-rename: the swap
      }
      await sleep(5);
    }
  })();
  try {
    expect(status().active?.version).toBe('1'); // from metadata_props, no sidecar
    await load;
    await until(() => h.scores.length >= expected.size, 90_000, `${expected.size} scores`);
    await sleep(1500);
    const counts = countBy(h.scores);
    const missing = [...expected].filter((k) => !counts.has(`${k}|iforest`));
    const repeated = [...counts].filter(([, c]) => c > 1);
    expect(missing).toEqual([]);
    expect(repeated).toEqual([]);
    expect(counts.size).toBe(expected.size);
    const versions = new Map<string, number>();
    for (const s of h.scores) versions.set(s.modelVersion, (versions.get(s.modelVersion) ?? 0) + 1);
    expect([...versions.keys()].sort()).toEqual(['1', '2']);
    const firstV2 = h.scores.findIndex((s) => s.modelVersion === '2');
    // Once v2 scores, v1 never does again (one swap, in order, per partition).
    const swapMs = h.arrivals[firstV2]! - renamedAt;
    console.log(
      `swap under load: ${counts.size} windows scored once each (v1 ${versions.get('1')}, v2 ${versions.get('2')}), ` +
        `rename -> first v2 score at the reader ${swapMs} ms`,
    );
    expect(status().active?.version).toBe('2');

    // Bad files over iforest.onnx: each rejected, v2 keeps serving.
    const bad: [string, () => void, RegExp][] = [
      ['corrupt', () => place(tmp('\x08\x07 definitely not a protobuf'), 'iforest.onnx'), /not a readable ONNX/],
      [
        'wrong feature count',
        () => {
          place(tmp(readFileSync(join(fixtures, 'wrong-count.json'))), 'iforest.json');
          place(tmp(readFileSync(join(fixtures, 'wrong-count.onnx'))), 'iforest.onnx');
        },
        /5 features, the spec declares 12/,
      ],
      [
        'ZipMap output',
        () => {
          place(tmp(readFileSync(join(fixtures, 'zipmap.json'))), 'iforest.json');
          place(tmp(readFileSync(join(fixtures, 'zipmap.onnx'))), 'iforest.onnx');
        },
        /non-tensor/,
      ],
      // Written in place and never finished: stable after the settle time, then rejected.
      [
        'half-written',
        () => writeFileSync(join(h.dir, 'iforest.onnx'), v2.subarray(0, v2.length >> 1)),
        /not a readable ONNX|could not load/,
      ],
    ];
    let extra = 0;
    for (const [what, drop, reason] of bad) {
      try {
        unlinkSync(join(h.dir, 'iforest.json'));
      } catch {
        // no sidecar yet
      }
      await sleep(300);
      const before = h.scores.length;
      drop();
      await until(() => reason.test(status().lastError?.reason ?? ''), 10_000, `${what} rejected`);
      expect(status().active?.version).toBe('2');
      // The old model still scores new windows.
      const ws = starts.at(-1)! + (++extra + 10) * 10_000;
      const rows = sim.rows
        .filter((r) => r.windowStart === starts[0])
        .map((r) => ({ ...r, windowStart: ws, windowEnd: ws + 10_000 }));
      await publish(h.source, rows);
      const devices = new Set(rows.map((r) => r.deviceId)).size;
      await until(() => h.scores.length >= before + devices, 20_000, `scores after ${what}`);
      expect(h.scores.slice(before).every((s) => s.modelVersion === '2' && s.windowStart === ws)).toBe(true);
    }
    const reasons = h.service.models()[0]!.lastError!.reason;
    expect(reasons).toMatch(/not a readable ONNX|could not load/);
  } finally {
    await load.catch(() => undefined);
    await h.close();
  }
});
