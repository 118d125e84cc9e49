/**
 * The scoring service against the real Kafka and Cassandra (compose launcher) with really exported models, fed window
 * records: the default model's precision/recall on the simulator's injected anomalies, a swap under load with every
 * window scored exactly once, bad files rejected while the old model keeps serving, and records that are not window
 * records (or cannot be scored) passed over, counted and committed, with nothing scored twice across a restart.
 */
import { copyFileSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WindowRecord } from '@fleetpulse/contracts';
import { Keyspace } from '@fleetpulse/contracts';
import type { Message } from 'kafkajs';
import { connectedCassandra, uniqueName } from '@fleetpulse/compose/testing';
import { overlappingTruth, simulateAggregates, truthByDevice } from './testing';
import {
  committedToEnd,
  completeWindows,
  countBy,
  fixtures,
  harness,
  metricsText,
  models,
  producer,
  publish,
  sample,
  sleep,
  until,
} from './testing/service-harness';

test('the default model finds the injected anomalies (precision/recall on held-out simulator data)', async () => {
  const prefix = `${uniqueName('pr')}-`;
  // Another seed than the training data's, so these windows were never seen in training.
  const sim = simulateAggregates({ devices: 40, durationMs: 3_600_000, seed: 1234, devicePrefix: prefix });
  const expected = completeWindows(sim.records);
  const h = await harness((dir) => {
    copyFileSync(join(models, 'iforest.onnx'), join(dir, 'iforest.onnx'));
    copyFileSync(join(models, 'iforest.json'), join(dir, 'iforest.json'));
  });
  try {
    expect(h.service.models().map((m) => [m.name, m.active?.version])).toEqual([['iforest', '1']]);
    await publish(h.source, sim.records);
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
  const starts = [...new Set(sim.records.map((r) => r.windowStart))].sort((a, b) => a - b);
  const expected = completeWindows(sim.records);
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
        sim.records.filter((r) => r.windowStart === ws),
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
    // Once v2 scores, v1 never does again. Steps run one at a time, each with one snapshot of the models, and a
    // partition of anomaly.scores holds its scores in the order they were written: in each partition, every score
    // after the first v2 one is v2. Arrival order across partitions says nothing, so the check is per partition.
    const byPartition = new Map<number, string[]>();
    h.scores.forEach((s, i) => {
      const p = h.partitions[i]!;
      byPartition.set(p, [...(byPartition.get(p) ?? []), s.modelVersion]);
    });
    const afterFirstV2 = [...byPartition.keys()].sort().map((p) => {
      const vs = byPartition.get(p)!;
      const from = vs.indexOf('2');
      const rest = from < 0 ? [] : vs.slice(from);
      return { partition: p, scoresFromFirstV2: rest.length, v1: rest.filter((v) => v === '1').length };
    });
    expect(afterFirstV2.map(({ partition, v1 }) => ({ partition, v1 }))).toEqual(
      [0, 1, 2].map((partition) => ({ partition, v1: 0 })),
    );
    // ...and the check had records to look at: every partition saw the swap with scores after it.
    for (const p of afterFirstV2) expect(p.scoresFromFirstV2).toBeGreaterThan(100);
    const firstV2 = h.scores.findIndex((s) => s.modelVersion === '2');
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
      const records = sim.records
        .filter((r) => r.windowStart === starts[0])
        .map((r) => ({ ...r, windowStart: ws, windowEnd: ws + 10_000 }));
      await publish(h.source, records);
      const devices = completeWindows(records).size;
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

test('records that are not window records, not final or lacking a metric are passed over, counted and committed; a restart scores nothing twice', async () => {
  const prefix = `${uniqueName('bad')}-`;
  const sim = simulateAggregates({ devices: 6, durationMs: 5 * 60_000, seed: 31, devicePrefix: prefix });
  const complete = sim.records.filter((r) => completeWindows([r]).size === 1);
  const byDevice = new Map<string, WindowRecord[]>();
  for (const r of complete) byDevice.set(r.deviceId, [...(byDevice.get(r.deviceId) ?? []), r]);
  const devices = [...byDevice.keys()];
  expect(devices).toHaveLength(6);
  const h = await harness(
    (dir) => {
      copyFileSync(join(models, 'iforest.onnx'), join(dir, 'iforest.onnx'));
      copyFileSync(join(models, 'iforest.json'), join(dir, 'iforest.json'));
    },
    // v1 settings: the service still starts, and says they are ignored.
    { FLEETPULSE_SCORING_MAX_WAIT_MS: '1000', FLEETPULSE_SCORING_TICK_MS: '100' },
  );
  try {
    expect(h.logs).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^FLEETPULSE_SCORING_MAX_WAIT_MS is ignored/),
        expect.stringMatching(/^FLEETPULSE_SCORING_TICK_MS is ignored/),
      ]),
    );
    // Per device, in one partition (devices i and i+3 share partition i): bad records before, between and after two
    // scorable ones. Offsets within a device's eight: 0, 2, 3 and 7 are not window records.
    const scored: WindowRecord[] = [];
    const messages: (Message & { partition: number })[] = [];
    const badAt: string[] = [];
    for (const [i, d] of devices.entries()) {
      const partition = i % 3;
      const base = Math.floor(i / 3) * 8;
      for (const k of [0, 2, 3, 7]) badAt.push(`${partition}@${base + k}`);
      const [a, b, c] = byDevice.get(d)!;
      const { vib: _vib, ...noVib } = c!.metrics;
      const v1Row = { deviceId: d, metric: 'temp', resolution: '10s', windowStart: a!.windowStart, ...a!.metrics.temp };
      scored.push(a!, b!);
      const values = [
        Buffer.from([0xff, 0xfe, 0x7b]),
        JSON.stringify(a),
        JSON.stringify(v1Row),
        null,
        JSON.stringify({ ...c, final: false }),
        JSON.stringify({ ...c, metrics: noVib }),
        JSON.stringify(b),
        '{"deviceId":',
      ];
      for (const value of values) messages.push({ key: d, value, partition });
    }
    await producer.send({ topic: h.source, messages });
    const want = new Set(scored.map((r) => `${r.deviceId}|${r.windowStart}|iforest`));
    await until(() => h.scores.length >= want.size, 30_000, `${want.size} scores`);
    // Everything read is committed, up to the end of each partition, trailing bad records included.
    const pos = await committedToEnd(h);
    expect(pos.committed).toEqual(pos.ends);
    expect(pos.ends.reduce((n, o) => n + Number(o), 0)).toBe(messages.length);
    await sleep(1000);
    expect([...countBy(h.scores)].sort()).toEqual([...want].sort().map((k) => [k, 1]));

    const text = await metricsText(h.service.port);
    expect(sample(text, 'scoring_records_invalid_total', 'reason="not-json"')).toBe(12);
    expect(sample(text, 'scoring_records_invalid_total', 'reason="not-a-window-record"')).toBe(6);
    expect(sample(text, 'scoring_records_invalid_total', 'reason="empty"')).toBe(6);
    expect(sample(text, 'scoring_window_records_total', 'final="false"')).toBe(6);
    expect(sample(text, 'scoring_window_records_total', 'final="true"')).toBe(18);
    expect(sample(text, 'scoring_windows_unscorable_total', 'model="iforest",reason="missing-metric"')).toBe(6);
    // Read from the session host at the scrape: a child process holding a session has tens of MiB.
    expect(Number(/^scoring_session_host_rss_bytes (\S+)$/m.exec(text)?.[1])).toBeGreaterThan(10 * 1024 * 1024);
    // The rest of the ops endpoint: ready while consuming, and the models the dashboard shows.
    const ops = (path: string) => fetch(`http://127.0.0.1:${h.service.port}${path}`);
    expect((await ops('/readyz')).status).toBe(200);
    const listed = (await (await ops('/api/models')).json()) as { name: string; active: { version: string } }[];
    expect(listed.map((m) => [m.name, m.active.version])).toEqual([['iforest', '1']]);
    // Each bad record is logged where it is: topic[partition]@offset and why.
    const skipped = h.logs.filter((l) => l.startsWith(`skipping ${h.source}[`));
    const at = (l: string) => /\[(\d+)\]@(\d+):/.exec(l)!.slice(1, 3).join('@');
    expect(skipped.map(at).sort()).toEqual([...badAt].sort());
    expect(skipped.filter((l) => /: not a window record: a v1 aggregate row/.test(l)).map(at)).toEqual(
      expect.arrayContaining(['0@2', '0@10', '1@2', '1@10', '2@2', '2@10']),
    );

    // A restart on the same group re-reads nothing that was committed: only new records get scores.
    await h.restart();
    const before = h.scores.length;
    const next = devices.map((d) => byDevice.get(d)![3]!);
    await publish(h.source, next);
    await until(() => h.scores.length >= before + next.length, 30_000, 'scores after the restart');
    await sleep(1500);
    expect(
      h.scores
        .slice(before)
        .map((s) => `${s.deviceId}|${s.windowStart}`)
        .sort(),
    ).toEqual(next.map((r) => `${r.deviceId}|${r.windowStart}`).sort());
  } finally {
    await h.close();
  }
});

test('window records published again unchanged are scored once, across a restart too; a changed one is scored again', async () => {
  const prefix = `${uniqueName('rp')}-`;
  const sim = simulateAggregates({ devices: 9, durationMs: 10 * 60_000, seed: 7, devicePrefix: prefix });
  const expected = completeWindows(sim.records);
  const h = await harness((dir) => {
    copyFileSync(join(models, 'iforest.onnx'), join(dir, 'iforest.onnx'));
    copyFileSync(join(models, 'iforest.json'), join(dir, 'iforest.json'));
  });
  /** Records the running process passed over as repeats (its own count: a restart starts at 0). */
  const repeatedCount = async () =>
    Number(/^scoring_windows_repeated_total (\S+)$/m.exec(await metricsText(h.service.port))?.[1] ?? 0);
  try {
    await publish(h.source, sim.records);
    await until(() => h.scores.length >= expected.size, 60_000, `${expected.size} scores`);
    await committedToEnd(h);
    // What a stream processor re-reading from its last commit does: the same records, byte for byte, again.
    await publish(h.source, sim.records);
    const finals = sim.records.filter((r) => r.final !== false).length;
    await committedToEnd(h);
    expect(await repeatedCount()).toBe(finals);
    // After a restart, the new process reads the partitions back before their commit: still no second score.
    await h.restart();
    await publish(h.source, sim.records);
    await committedToEnd(h);
    expect(await repeatedCount()).toBe(finals);
    await sleep(1500);
    const counts = countBy(h.scores);
    expect(counts.size).toBe(expected.size);
    expect([...counts].filter(([, n]) => n > 1)).toEqual([]);
    // A record of a scored window with other numbers (a replay's rebuilt row that differs) is scored again.
    const scoredOne = sim.records.find((r) => expected.has(`${r.deviceId}|${r.windowStart}`))!;
    const changed: WindowRecord = {
      ...scoredOne,
      metrics: { ...scoredOne.metrics, temp: { ...scoredOne.metrics.temp!, max: scoredOne.metrics.temp!.max + 1 } },
    };
    const before = h.scores.length;
    await publish(h.source, [changed]);
    await until(() => h.scores.length > before, 30_000, 'the changed record scored');
    expect(h.scores.slice(before).map((s) => `${s.deviceId}|${s.windowStart}`)).toEqual([
      `${changed.deviceId}|${changed.windowStart}`,
    ]);
    expect(h.logs.some((l) => / read back to offset \d+ \(\d+ windows remembered\)$/.test(l))).toBe(true);
  } finally {
    await h.close();
  }
});

test('a window record and its repeat read in one batch are scored once', async () => {
  // A consumer behind (an outage, a rewind) catching up reads the first publication and the processor's second one
  // together, before either is remembered as scored. Each record here is followed by its copy: a batch boundary
  // between the two is the exception.
  const prefix = `${uniqueName('rb')}-`;
  const sim = simulateAggregates({ devices: 6, durationMs: 5 * 60_000, seed: 11, devicePrefix: prefix });
  const expected = completeWindows(sim.records);
  const h = await harness((dir) => {
    copyFileSync(join(models, 'iforest.onnx'), join(dir, 'iforest.onnx'));
    copyFileSync(join(models, 'iforest.json'), join(dir, 'iforest.json'));
  });
  try {
    await publish(
      h.source,
      sim.records.flatMap((r) => [r, r]),
    );
    await until(() => h.scores.length >= expected.size, 60_000, `${expected.size} scores`);
    await committedToEnd(h);
    await sleep(1500);
    const counts = countBy(h.scores);
    expect(counts.size).toBe(expected.size);
    expect([...counts].filter(([, n]) => n > 1)).toEqual([]);
  } finally {
    await h.close();
  }
});
