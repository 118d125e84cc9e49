import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnomalyScore, MetricStats, WindowRecord } from '@fleetpulse/contracts';
import { ScoringMetrics } from './metrics';
import { ModelRegistry } from './models';
import { Scorer, type RecordIn } from './scorer';
import { SessionHost } from './session-host';

// The registry loads entries of its folder only: the default model and the swap's v2 side by side in one.
const dir = mkdtempSync(join(tmpdir(), 'scoring-scorer-'));
for (const f of [
  'models/iforest.onnx',
  'models/iforest.json',
  'fixtures/iforest-v2.onnx',
  'fixtures/crash-on-real.onnx',
  'fixtures/crash-on-real.json',
])
  copyFileSync(join(__dirname, '..', f), join(dir, f.split('/')[1]!));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const stats = (v: number): MetricStats => ({
  count: 10,
  sum: 10 * v,
  min: v * 0.98,
  max: v * 1.02,
  mean: v,
  stddev: v * 0.01,
  first: v,
  last: v,
});
const allMetrics = (): Record<string, MetricStats> => ({
  temp: stats(23),
  humidity: stats(41),
  vib: stats(0.2),
  volt: stats(12),
});

let seq = 0;
function rec(partition: number, offset: number, over: Partial<WindowRecord> = {}): RecordIn {
  const windowStart = 1_763_803_200_000 + 10_000 * seq++;
  return {
    partition,
    offset: BigInt(offset),
    record: {
      deviceId: 'd1',
      resolution: '10s',
      windowStart,
      windowEnd: windowStart + 10_000,
      final: true,
      metrics: allMetrics(),
      ...over,
    },
  };
}

async function labelled(c: { get(): Promise<{ values: { labels: object; value: number }[] }> }) {
  return Object.fromEntries((await c.get()).values.map((v) => [Object.values(v.labels).join('|'), v.value]));
}

describe('Scorer (real onnxruntime in the session host)', () => {
  let host: SessionHost;
  let reg: ModelRegistry;
  let metrics: ScoringMetrics;
  let delivered: AnomalyScore[][];
  let failDelivery: Error | null;
  let scorer: Scorer;

  beforeAll(() => {
    host = new SessionHost({ intraOpThreads: 1 });
  });
  afterAll(async () => {
    await host.close();
  });
  beforeEach(async () => {
    reg = new ModelRegistry(host, { dir });
    metrics = new ScoringMetrics();
    delivered = [];
    failDelivery = null;
    scorer = new Scorer(
      reg,
      {
        deliver: async (scores) => {
          await Promise.resolve();
          if (failDelivery) throw failDelivery;
          delivered.push(scores);
        },
      },
      { metrics, maxBatch: 2 },
    );
    expect(await reg.upsert('iforest', join(dir, 'iforest.onnx'), join(dir, 'iforest.json'))).toBe(true);
  });
  afterEach(async () => {
    metrics.close();
    await reg.remove('iforest');
  });

  it('scores each final record at the model resolution from that record alone, and counts the ones it cannot', async () => {
    const full = [rec(0, 5), rec(0, 6, { deviceId: 'd2' }), rec(0, 7, { deviceId: 'd3' })];
    const { vib: _vib, ...noVib } = allMetrics();
    const records = [
      ...full,
      rec(0, 8, { metrics: noVib }),
      rec(0, 9, { metrics: { ...allMetrics(), volt: { ...stats(12), max: null as unknown as number } } }),
      rec(0, 10, { final: false }),
      rec(0, 11, { resolution: '1s' }),
      rec(1, 3),
    ];
    const out = await scorer.ingest(records);
    const expected = [...full, records[7]!].map((r) => `${r.record.deviceId}|${r.record.windowStart}`);
    expect(out.map((s) => `${s.deviceId}|${s.windowStart}`).sort()).toEqual(expected.sort());
    expect(delivered).toEqual([out]);
    const first = out.find((s) => s.windowStart === full[0]!.record.windowStart)!;
    expect(first).toMatchObject({ model: 'iforest', modelVersion: '1', resolution: '10s' });
    expect(first.features).toEqual({
      'temp.min': 23 * 0.98,
      'temp.max': 23 * 1.02,
      'temp.stddev': 23 * 0.01,
      'humidity.min': 41 * 0.98,
      'humidity.max': 41 * 1.02,
      'humidity.stddev': 41 * 0.01,
      'vib.min': 0.2 * 0.98,
      'vib.max': 0.2 * 1.02,
      'vib.stddev': 0.2 * 0.01,
      'volt.min': 12 * 0.98,
      'volt.max': 12 * 1.02,
      'volt.stddev': 12 * 0.01,
    });
    expect(Number.isFinite(first.score)).toBe(true);
    expect(await labelled(metrics.unscorable)).toEqual({
      'iforest|missing-metric': 1,
      'iforest|non-finite-feature': 1,
    });
    expect(await labelled(metrics.records)).toEqual({ true: 7, false: 1 });
    expect(await labelled(metrics.scores)).toEqual({ 'iforest|1': 4 });
    expect(scorer.commitOffset(0)).toBe(12n);
    expect(scorer.commitOffset(1)).toBe(4n);
  });

  it('delivers the scores of a message but for a failed run and a non-finite score, each counted once', async () => {
    // One message of six rows in runs of two: the second run fails, the fifth row scores NaN outside it.
    const score = reg.score.bind(reg);
    jest.spyOn(reg, 'score').mockImplementation(async (...args) => {
      const r = await score(...args);
      const scores = Float32Array.from([0.9, 0.1, Number.NaN, Number.NaN, Number.NaN, 0.2]);
      return { scores, failed: [...r.failed, { row: 2, rows: 2, error: 'boom' }] };
    });
    const batch = Array.from({ length: 6 }, (_, i) => rec(0, i));
    const out = await scorer.ingest(batch);
    expect(out.map((s) => s.windowStart)).toEqual([0, 1, 5].map((i) => batch[i]!.record.windowStart));
    expect(out.map((s) => s.anomalous)).toEqual([true, false, false]);
    expect(out[0]!.score).toBeCloseTo(0.9, 6);
    expect(out[2]!.features['volt.stddev']).toBe(12 * 0.01);
    expect(Object.keys(out[1]!)).toEqual([
      'deviceId',
      'resolution',
      'windowStart',
      'model',
      'modelVersion',
      'score',
      'anomalous',
      'features',
    ]);
    expect(delivered).toEqual([out]);
    expect(await labelled(metrics.unscored)).toEqual({ 'iforest|run-failed': 2, 'iforest|non-finite-score': 1 });
    expect(await labelled(metrics.anomalies)).toEqual({ iforest: 1 });
    expect(await labelled(metrics.scores)).toEqual({ 'iforest|1': 3 });
    expect(scorer.commitOffset(0)).toBe(6n);
  });

  it('moves no offset when delivery fails, and scores the same records again on the retry', async () => {
    expect(await scorer.ingest([rec(0, 0)])).toHaveLength(1);
    expect(scorer.commitOffset(0)).toBe(1n);
    const batch = [rec(0, 1), rec(0, 2)];
    failDelivery = new Error('broker down');
    await expect(scorer.ingest(batch)).rejects.toThrow('broker down');
    expect(scorer.commitOffset(0)).toBe(1n);
    failDelivery = null;
    const again = await scorer.ingest(batch);
    expect(again.map((s) => s.windowStart)).toEqual(batch.map((r) => r.record.windowStart));
    expect(scorer.commitOffset(0)).toBe(3n);
  });

  it('advances past records that are not window records, never backwards', async () => {
    expect(scorer.commitOffset(2)).toBeNull();
    scorer.advance(2, 40n);
    expect(scorer.commitOffset(2)).toBe(40n);
    await scorer.ingest([rec(2, 20)]);
    scorer.advance(2, 30n);
    expect(scorer.commitOffset(2)).toBe(40n);
    scorer.dropPartition(2);
    expect(scorer.commitOffset(2)).toBeNull();
  });

  it('consumes records unscored with no model loaded', async () => {
    await reg.remove('iforest');
    expect(await scorer.ingest([rec(0, 0), rec(0, 1)])).toEqual([]);
    expect(delivered).toEqual([]);
    expect(scorer.commitOffset(0)).toBe(2n);
  });

  it('scores a whole step through a session host crash: the messages in flight are sent again to the new child', async () => {
    const logs: string[] = [];
    scorer = new Scorer(
      reg,
      { deliver: async (scores) => void delivered.push(scores) },
      {
        maxBatch: 2,
        messageRows: 2,
        log: (l) => logs.push(l),
        metrics,
      },
    );
    const batch = Array.from({ length: 400 }, (_, i) => rec(0, i));
    const step = scorer.locked(() => scorer.ingest(batch));
    process.kill(host.pid!, 'SIGKILL');
    const out = await step;
    expect(out.map((s) => s.windowStart)).toEqual(batch.map((r) => r.record.windowStart));
    expect(logs.some((l) => /^scoring with iforest: session host exited .*; retrying$/.test(l))).toBe(true);
    expect(await labelled(metrics.unscored)).toEqual({});
    expect(await labelled(metrics.scores)).toEqual({ 'iforest|1': 400 });
    expect(scorer.commitOffset(0)).toBe(400n);
  });

  it('scores every record of a step with one version when a swap lands during it, each record once', async () => {
    // Six steps of five records in messages of two rows: three messages a step. The swap is made to land inside
    // step 2, between its first and second message (the eighth message overall waits for it), so it splits the step.
    const steps = Array.from({ length: 6 }, (_, i) => Array.from({ length: 5 }, (_, j) => rec(0, i * 5 + j)));
    scorer = new Scorer(
      reg,
      { deliver: async (scores) => void delivered.push(scores) },
      { maxBatch: 2, messageRows: 2 },
    );
    const score = reg.score.bind(reg);
    let messages = 0;
    let swapped: Promise<boolean> | null = null;
    jest.spyOn(reg, 'score').mockImplementation(async (...args) => {
      if (++messages === 8) await (swapped = reg.upsert('iforest', join(dir, 'iforest-v2.onnx'), null));
      return score(...args);
    });
    const outs = await Promise.all(steps.map((batch) => scorer.locked(() => scorer.ingest(batch))));
    expect(await swapped).toBe(true);
    // Each step with the one version it started with: the swap falls between steps 2 and 3, never inside one.
    expect(outs.map((o) => [...new Set(o.map((s) => s.modelVersion))])).toEqual([
      ['1'],
      ['1'],
      ['1'],
      ['2'],
      ['2'],
      ['2'],
    ]);
    expect(outs.map((o) => o.length)).toEqual([5, 5, 5, 5, 5, 5]);
    const late = await scorer.locked(() => scorer.ingest([rec(0, 30)]));
    expect(late.map((s) => s.modelVersion)).toEqual(['2']);
    const keys = outs.flat().map((s) => s.windowStart);
    expect(new Set(keys).size).toBe(30);
    expect(scorer.commitOffset(0)).toBe(31n);
  });

  it('quarantines a model that kills the session host at the third crash; the step completes with the others', async () => {
    const logs: string[] = [];
    reg = new ModelRegistry(host, { dir, quarantineCrashes: 3 });
    expect(await reg.upsert('iforest', join(dir, 'iforest.onnx'), join(dir, 'iforest.json'))).toBe(true);
    expect(await reg.upsert('crash', join(dir, 'crash-on-real.onnx'), join(dir, 'crash-on-real.json'))).toBe(true);
    scorer = new Scorer(
      reg,
      { deliver: async (scores) => void delivered.push(scores) },
      { maxBatch: 4, messageRows: 4, log: (l) => logs.push(l), metrics },
    );
    const batch = Array.from({ length: 10 }, (_, i) => rec(0, i));
    const out = await scorer.locked(() => scorer.ingest(batch));
    expect(out.map((s) => `${s.model}|${s.windowStart}`)).toEqual(batch.map((r) => `iforest|${r.record.windowStart}`));
    expect(reg.status().find((s) => s.name === 'crash')!.quarantined).toMatchObject({ crashes: 3 });
    expect(await labelled(metrics.unscored)).toEqual({ 'crash|quarantined': 10 });
    expect(scorer.commitOffset(0)).toBe(10n);
    // Later steps: passed over and counted, the other model scores on.
    const next = [rec(0, 10), rec(0, 11)];
    expect((await scorer.locked(() => scorer.ingest(next))).map((s) => s.model)).toEqual(['iforest', 'iforest']);
    expect(await labelled(metrics.unscored)).toEqual({ 'crash|quarantined': 12 });
    expect(scorer.commitOffset(0)).toBe(12n);
    await reg.remove('crash');
  });
});
