import type { AnomalyScore, WindowRecord } from '@fleetpulse/contracts';
import {
  closeDeleted,
  evaluateScore,
  evaluateWindow,
  idleState,
  ruleMatchesScore,
  ruleMatchesWindow,
  transitionId,
  type AlertState,
} from './evaluator';
import { compileRule, type CompiledRule, type Rule } from './rule';

const rule = (when: Rule['when'], devices = 'sensor-*'): Rule => ({
  id: 'rule-1',
  createdAt: 0,
  name: 'overheat',
  devices,
  resolution: '10s',
  when,
  webhook: 'http://x/',
});
const threshold = compileRule(rule({ feature: 'temp.max', op: '>', value: 80, forWindows: 2 })) as CompiledRule & {
  kind: 'threshold';
};
const anyModel = compileRule(rule({ anomaly: {} })) as CompiledRule & { kind: 'anomaly' };

const win = (i: number, max: number | null, deviceId = 'sensor-1'): WindowRecord => ({
  deviceId,
  resolution: '10s',
  windowStart: i * 10_000,
  windowEnd: i * 10_000 + 10_000,
  final: true,
  metrics:
    max === null
      ? { humidity: { count: 1, sum: 1, min: 1, max: 1, mean: 1, stddev: 0, first: 1, last: 1 } }
      : { temp: { count: 1, sum: max, min: max, max, mean: max, stddev: 0, first: max, last: max } },
});
const score = (i: number, anomalous: boolean, model = 'iforest', value = 0.5): AnomalyScore => ({
  deviceId: 'sensor-1',
  resolution: '10s',
  windowStart: i * 10_000,
  model,
  modelVersion: '1',
  score: value,
  anomalous,
  features: {},
});

/** Feeds windows (index, max) in order from offset 0; returns every transition and the final state. */
function runWindows(seq: [number, number | null][], from: AlertState = idleState(), offset0 = 0) {
  let state = from;
  const out = [];
  for (const [n, [i, max]] of seq.entries()) {
    const step = evaluateWindow(threshold, state, win(i, max), { source: 't:0', offset: BigInt(offset0 + n) }, 1000);
    if (!step) continue;
    state = step.state;
    if (step.transition) out.push(step.transition);
  }
  return { state, out };
}

describe('threshold rules', () => {
  it('fire once after forWindows consecutive windows, and resolve once when it stops holding', () => {
    const { out, state } = runWindows([
      [0, 70],
      [1, 81],
      [2, 90], // second in a row: fires
      [3, 95], // still holding: nothing
      [4, 99],
      [5, 60], // resolves
      [6, 50], // nothing
    ]);
    expect(out.map((t) => [t.state, t.windowStart, t.episode, t.value])).toEqual([
      ['firing', 20_000, 20_000, 90],
      ['resolved', 50_000, 20_000, 60],
    ]);
    expect(out[0]).toEqual({
      id: transitionId('rule-1', 'sensor-1', 20_000, 'firing'),
      ruleId: 'rule-1',
      ruleName: 'overheat',
      deviceId: 'sensor-1',
      resolution: '10s',
      state: 'firing',
      episode: 20_000,
      windowStart: 20_000,
      value: 90,
      at: 1000,
      reason: 'condition',
    });
    expect(state).toMatchObject({ firing: false, streak: 0, lastWindowStart: 60_000 });
  });

  it('start the count again after a gap in the windows', () => {
    expect(
      runWindows([
        [0, 90],
        [2, 90],
      ]).out,
    ).toEqual([]);
    expect(
      runWindows([
        [0, 90],
        [2, 90],
        [3, 90],
      ]).out.map((t) => t.windowStart),
    ).toEqual([30_000]);
  });

  it('keep an episode open over a gap, and resolve on a window that lacks the metric (value null)', () => {
    const { out } = runWindows([
      [0, 90],
      [1, 90],
      [5, 90],
      [6, null],
    ]);
    expect(out.map((t) => [t.state, t.windowStart, t.value])).toEqual([
      ['firing', 10_000, 90],
      ['resolved', 60_000, null],
    ]);
  });

  it('fire again in a new episode with another id', () => {
    const { out } = runWindows([
      [0, 90],
      [1, 90],
      [2, 0],
      [3, 90],
      [4, 90],
    ]);
    expect(out.map((t) => t.state)).toEqual(['firing', 'resolved', 'firing']);
    expect(new Set(out.map((t) => t.id)).size).toBe(3);
    expect(out[1]!.id).toBe(transitionId('rule-1', 'sensor-1', 10_000, 'resolved'));
  });

  it('pass over a record already seen (same or older window, or an offset at or before the stored one)', () => {
    const { state } = runWindows([
      [0, 90],
      [1, 90],
    ]);
    expect(evaluateWindow(threshold, state, win(1, 0), { source: 't:0', offset: 99n }, 0)).toBeNull();
    expect(evaluateWindow(threshold, state, win(0, 0), { source: 't:0', offset: 99n }, 0)).toBeNull();
    expect(evaluateWindow(threshold, state, win(2, 0), { source: 't:0', offset: 1n }, 0)).toBeNull();
    // Another partition (the topic grew): the window decides.
    expect(evaluateWindow(threshold, state, win(2, 0), { source: 't:1', offset: 0n }, 0)?.transition?.state).toBe(
      'resolved',
    );
  });

  it('make the same transitions with the same ids when records are read again from an older state', () => {
    const seq: [number, number | null][] = [
      [0, 90],
      [1, 90],
      [2, 90],
      [3, 10],
    ];
    const once = runWindows(seq);
    // A crash after the first two records' state was stored: all four are read again.
    const stored = runWindows(seq.slice(0, 1)).state;
    const again = runWindows(seq, stored);
    expect(again.out.map((t) => t.id)).toEqual(once.out.map((t) => t.id));
    expect(again.state).toEqual(once.state);
  });

  it('match final records of their resolution and devices only', () => {
    expect(ruleMatchesWindow(threshold, win(0, 1))).toBe(true);
    expect(ruleMatchesWindow(threshold, win(0, 1, 'pump-1'))).toBe(false);
    expect(ruleMatchesWindow(threshold, { ...win(0, 1), resolution: '1s' })).toBe(false);
    expect(ruleMatchesWindow(threshold, { ...win(0, 1), final: false })).toBe(false);
    const exact = compileRule(rule({ feature: 'temp.max', op: '>', value: 1, forWindows: 1 }, 'sensor-?'));
    expect(ruleMatchesWindow(exact, win(0, 1, 'sensor-1'))).toBe(true);
    expect(ruleMatchesWindow(exact, win(0, 1, 'sensor-12'))).toBe(false);
    expect(ruleMatchesWindow(anyModel, win(0, 1))).toBe(false);
  });

  it.each([
    ['>', 80, false],
    ['>=', 80, true],
    ['<', 80, false],
    ['<=', 80, true],
    ['<', 81, true],
  ] as const)('compare with %s %d', (op, value, fires) => {
    const c = compileRule(rule({ feature: 'temp.max', op, value, forWindows: 1 })) as typeof threshold;
    const step = evaluateWindow(c, idleState(), win(0, 80), { source: 't:0', offset: 0n }, 0);
    expect(step?.transition?.state === 'firing').toBe(fires);
  });
});

describe('anomaly rules', () => {
  const feed = (c: typeof anyModel, scores: AnomalyScore[]) => {
    let state = idleState();
    const out = [];
    for (const [n, s] of scores.entries()) {
      const step = evaluateScore(c, state, s, { source: 's:0', offset: BigInt(n) }, 5);
      if (!step) continue;
      state = step.state;
      if (step.transition) out.push(step.transition);
    }
    return { out, state };
  };

  it('fire on an anomalous score and resolve on the next non-anomalous score of that model', () => {
    const { out } = feed(anyModel, [
      score(0, false),
      score(1, true, 'iforest', 0.9),
      score(2, true),
      score(2, false, 'other'), // another model: does not resolve
      score(3, false, 'iforest', 0.2),
      score(4, false),
    ]);
    expect(out.map((t) => [t.state, t.windowStart, t.episode, t.value, t.model])).toEqual([
      ['firing', 10_000, 10_000, 0.9, 'iforest'],
      ['resolved', 30_000, 10_000, 0.2, 'iforest'],
    ]);
  });

  it('with a model, look only at its scores', () => {
    const only = compileRule(rule({ anomaly: { model: 'lof' } })) as typeof anyModel;
    expect(ruleMatchesScore(only, score(0, true, 'iforest'))).toBe(false);
    expect(ruleMatchesScore(only, score(0, true, 'lof'))).toBe(true);
    expect(ruleMatchesScore(anyModel, score(0, true, 'iforest'))).toBe(true);
    expect(ruleMatchesScore(anyModel, { ...score(0, true), deviceId: 'pump-1' })).toBe(false);
    expect(ruleMatchesScore(anyModel, { ...score(0, true), resolution: '60s' })).toBe(false);
    expect(ruleMatchesScore(threshold, score(0, true))).toBe(false);
  });

  it('pass over older windows and offsets already seen', () => {
    const { state } = feed(anyModel, [score(5, true)]);
    expect(evaluateScore(anyModel, state, score(4, false), { source: 's:0', offset: 9n }, 0)).toBeNull();
    expect(evaluateScore(anyModel, state, score(6, false), { source: 's:0', offset: 0n }, 0)).toBeNull();
    expect(evaluateScore(anyModel, state, score(6, false), { source: 's:0', offset: 1n }, 0)?.transition?.state).toBe(
      'resolved',
    );
  });
});

describe('deleted rules', () => {
  it('end an open episode with the id a resolve would have had, value null', () => {
    const { state } = runWindows([
      [0, 90],
      [1, 90],
      [2, 90],
    ]);
    const t = closeDeleted(threshold, 'sensor-1', state, 7);
    expect(t).toMatchObject({
      id: transitionId('rule-1', 'sensor-1', 10_000, 'resolved'),
      state: 'resolved',
      windowStart: 20_000,
      value: null,
      reason: 'rule-deleted',
    });
    expect(closeDeleted(threshold, 'sensor-1', idleState(), 7)).toBeNull();
  });
});

describe('transition ids', () => {
  it('depend on rule, device, episode and state only', () => {
    const id = transitionId('r', 'd', 1, 'firing');
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(transitionId('r', 'd', 1, 'firing')).toBe(id);
    for (const other of [
      transitionId('r2', 'd', 1, 'firing'),
      transitionId('r', 'd2', 1, 'firing'),
      transitionId('r', 'd', 2, 'firing'),
      transitionId('r', 'd', 1, 'resolved'),
    ])
      expect(other).not.toBe(id);
  });
});
