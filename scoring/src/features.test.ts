import type { AggregateRow } from '@fleetpulse/contracts';
import { fillVector, needsOf, WindowAssembler } from './features';

const row = (deviceId: string, metric: string, windowStart: number, v = 1): AggregateRow => ({
  deviceId,
  metric,
  resolution: '10s',
  windowStart,
  windowEnd: windowStart + 10_000,
  count: 10,
  sum: 10 * v,
  min: v - 1,
  max: v + 1,
  mean: v,
  stddev: 0.5,
  first: v,
  last: v,
});

const spec = (features: string[], resolution = '10s') => ({ spec: { resolution, features } });

describe('WindowAssembler', () => {
  it('lets a window go once it has every metric the models need, not before', () => {
    const a = new WindowAssembler(10_000);
    a.setNeeds(needsOf([spec(['temp.mean', 'vib.max']), spec(['humidity.stddev'])]));
    expect(a.add(0, 5n, row('d1', 'temp', 0), 0)).toEqual([]);
    expect(a.add(0, 6n, row('d1', 'vib', 0), 0)).toEqual([]);
    expect(a.pinnedOffset(0)).toBe(5n);
    const out = a.add(0, 7n, row('d1', 'humidity', 0), 0);
    expect(out).toHaveLength(1);
    expect([...out[0]!.rows.keys()].sort()).toEqual(['humidity', 'temp', 'vib']);
    expect(a.pinnedOffset(0)).toBeNull();
    expect(a.waiting).toBe(0);
  });

  it('ignores rows at resolutions or metrics no model uses (nothing pinned)', () => {
    const a = new WindowAssembler(10_000);
    a.setNeeds(needsOf([spec(['temp.mean'])]));
    expect(a.add(0, 1n, { ...row('d1', 'temp', 0), resolution: '1s' }, 0)).toEqual([]);
    expect(a.add(0, 2n, row('d1', 'volt', 0), 0)).toEqual([]);
    expect(a.pinnedOffset(0)).toBeNull();
  });

  it('lets an incomplete window go when a newer window of the device arrives, or after maxWaitMs', () => {
    const a = new WindowAssembler(1000);
    a.setNeeds(needsOf([spec(['temp.mean', 'vib.max'])]));
    a.add(0, 1n, row('d1', 'temp', 0), 0);
    a.add(0, 2n, row('d2', 'temp', 0), 0);
    const out = a.add(0, 3n, row('d1', 'temp', 10_000), 100);
    expect(out.map((w) => [w.deviceId, w.windowStart])).toEqual([['d1', 0]]);
    expect(a.pinnedOffset(0)).toBe(2n); // d2's window still waits
    expect(a.expire(999)).toHaveLength(0);
    expect(a.expire(1000).map((w) => w.deviceId)).toEqual(['d2']);
    expect(a.pinnedOffset(0)).toBe(3n);
    expect(a.expire(0, true)).toHaveLength(1);
  });

  it('keeps partitions apart and forgets a revoked one', () => {
    const a = new WindowAssembler(1000);
    a.setNeeds(needsOf([spec(['temp.mean', 'vib.max'])]));
    a.add(0, 10n, row('d1', 'temp', 0), 0);
    a.add(1, 4n, row('d2', 'temp', 0), 0);
    expect(a.pinnedOffset(0)).toBe(10n);
    expect(a.pinnedOffset(1)).toBe(4n);
    a.dropPartition(1);
    expect(a.pinnedOffset(1)).toBeNull();
    expect(a.waiting).toBe(1);
  });

  it('fills vectors in feature order and refuses missing or non-finite values', () => {
    const a = new WindowAssembler(1000);
    a.setNeeds(needsOf([spec(['temp.max', 'vib.mean'])]));
    a.add(0, 1n, row('d1', 'vib', 0, 3), 0);
    const [w] = a.add(0, 2n, row('d1', 'temp', 0, 20), 0);
    const buf = new Float32Array(4);
    expect(fillVector(w!, ['temp.max', 'vib.mean'], buf, 2)).toBe(true);
    expect([...buf]).toEqual([0, 0, 21, 3]);
    expect(fillVector(w!, ['humidity.max'], buf, 0)).toBe(false);
    w!.rows.set('temp', { ...row('d1', 'temp', 0), max: Number.NaN });
    expect(fillVector(w!, ['temp.max'], buf, 0)).toBe(false);
  });
});
