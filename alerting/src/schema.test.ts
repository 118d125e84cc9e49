import { loadSchema } from '@fleetpulse/contracts';
import Ajv2020 from 'ajv/dist/2020';
import { closeDeleted, evaluateScore, evaluateWindow, idleState } from './evaluator';
import { compileRule, parseRule, type CompiledRule, type Rule } from './rule';

// What the service writes and reads holds to the contract's schemas (contracts/schema/alert-*.schema.json).
const ajv = new Ajv2020({ strict: true, allErrors: true });
const ruleSchema = ajv.compile(loadSchema('alert-rule'));
const transitionSchema = ajv.compile(loadSchema('alert-transition'));

const stored = (input: unknown): Rule => {
  const r = parseRule(input);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return { id: 'r1', createdAt: 1, ...r.rule };
};

describe('alert shapes', () => {
  const threshold = stored({
    name: 'overheat',
    devices: 'sensor-*',
    resolution: '10s',
    when: { feature: 'temp.max', op: '>', value: 80 },
    webhook: 'http://ops.example/hooks/fleet',
  });
  const { id: _id, createdAt: _at, ...input } = threshold;
  const anomaly = stored({ ...input, when: { anomaly: {} } });

  it('rules parsed and stored match the rule schema', () => {
    expect(ruleSchema(threshold)).toBe(true);
    expect(ruleSchema(anomaly)).toBe(true);
    expect(ruleSchema({ ...threshold, when: { feature: 'temp.max', op: '=', value: 1, forWindows: 1 } })).toBe(false);
  });

  it('transitions of every kind match the transition schema', () => {
    const c = compileRule(threshold) as CompiledRule & { kind: 'threshold' };
    const stats = { count: 1, sum: 90, min: 90, max: 90, mean: 90, stddev: 0, first: 90, last: 90 };
    const w = {
      deviceId: 'sensor-1',
      resolution: '10s',
      windowStart: 0,
      windowEnd: 10_000,
      final: true,
      metrics: { temp: stats },
    };
    const fired = evaluateWindow(c, idleState(), w, { source: 't:0', offset: 0n }, 5)!;
    const resolved = evaluateWindow(
      c,
      fired.state,
      { ...w, windowStart: 10_000, metrics: {} },
      { source: 't:0', offset: 1n },
      6,
    )!;
    const a = compileRule(anomaly) as CompiledRule & { kind: 'anomaly' };
    const score = {
      deviceId: 'sensor-1',
      resolution: '10s',
      windowStart: 0,
      model: 'iforest',
      modelVersion: '1',
      score: 0.9,
      anomalous: true,
      features: {},
    };
    const scored = evaluateScore(a, idleState(), score, { source: 's:0', offset: 0n }, 5)!;
    const all = [
      fired.transition,
      resolved.transition,
      scored.transition,
      closeDeleted(a, 'sensor-1', scored.state, 9),
    ];
    for (const t of all) {
      expect(t).toBeDefined();
      expect([transitionSchema(t), transitionSchema.errors]).toEqual([true, null]);
    }
    expect(resolved.transition?.value).toBeNull();
  });
});
