import type { AnomalyScore, WindowRecord } from '@fleetpulse/contracts';
import { eventsOf, FleetModel } from './fleet-model';

// The fleet overview's per-device state and headline figures, on a hand-driven clock.

let now = 1_000_000;
const model = () => new FleetModel({ now: () => now, liveMs: 15_000, anomalyMs: 600_000, rateSeconds: 10 });

const stats = (count: number) => ({ count, sum: count, min: 1, max: 1, mean: 1, stddev: 0, first: 1, last: 1 });
function rec(deviceId: string, resolution: string, windowStart: number, counts: number[], final = true): WindowRecord {
  const size = Number(resolution.slice(0, -1)) * 1000;
  return {
    deviceId,
    resolution,
    windowStart,
    windowEnd: windowStart + size,
    final,
    metrics: Object.fromEntries(counts.map((c, i) => [`m${i}`, stats(c)])),
  };
}
const score = (deviceId: string, windowStart: number, anomalous = true): AnomalyScore => ({
  deviceId,
  resolution: '10s',
  windowStart,
  model: 'iforest',
  modelVersion: '1',
  score: 0.9,
  anomalous,
  features: {},
});

beforeEach(() => (now = 1_000_000));

describe('FleetModel', () => {
  it('counts an event once whatever its metrics: the largest count of a record', () => {
    expect(eventsOf(rec('a', '1s', 0, [4, 3, 4]))).toBe(4);
  });

  it('is live within liveMs of a record, stale after; a listed device by its lastSeen', () => {
    const m = model();
    m.record(rec('a', '1s', now - 2000, [1]));
    m.listed('b', now - 60_000);
    m.listed('c', null);
    expect([m.state('a'), m.state('b'), m.state('c')]).toEqual(['live', 'stale', 'stale']);
    now += 15_000;
    expect(m.state('a')).toBe('live');
    now += 1;
    expect(m.state('a')).toBe('stale');
    expect(m.summary()).toMatchObject({ devices: 3, online: 0, stale: 3 });
  });

  it('anomalous over live for anomalyMs of the window; alerting over both until resolved', () => {
    const m = model();
    m.record(rec('a', '1s', now - 2000, [1]));
    m.anomaly(score('a', now - 5000, false));
    expect(m.state('a')).toBe('live');
    m.anomaly(score('a', now - 5000));
    expect(m.state('a')).toBe('anomalous');
    m.alert({ id: 'x1', ruleId: 'r1', deviceId: 'a', state: 'firing' });
    m.alert({ id: 'x2', ruleId: 'r2', deviceId: 'a', state: 'firing' });
    expect(m.summary()).toMatchObject({ anomalous: 1, alerting: 1, alertsFiring: 2 });
    m.alert({ id: 'x3', ruleId: 'r1', deviceId: 'a', state: 'resolved' });
    expect(m.state('a')).toBe('alerting');
    // A repeat (same id) changes nothing; the other rule's resolve ends it.
    m.alert({ id: 'x1', ruleId: 'r1', deviceId: 'a', state: 'firing' });
    m.alert({ id: 'x4', ruleId: 'r2', deviceId: 'a', state: 'resolved' });
    expect(m.state('a')).toBe('anomalous');
    now += 600_000;
    expect(m.state('a')).toBe('stale');
  });

  it('alerting from the transitions read when the page opens; an older one read late changes nothing', () => {
    const m = model();
    // GET /api/alerts, oldest first: r1 fired and resolved, r2 fired and is still open.
    for (const t of [
      { id: 'y1', ruleId: 'r1', deviceId: 'a', state: 'firing', windowStart: 10_000 },
      { id: 'y2', ruleId: 'r2', deviceId: 'a', state: 'firing', windowStart: 20_000 },
      { id: 'y3', ruleId: 'r1', deviceId: 'a', state: 'resolved', windowStart: 30_000 },
    ] as const)
      m.alert(t);
    expect(m.state('a')).toBe('alerting');
    expect(m.summary()).toMatchObject({ alerting: 1, alertsFiring: 1 });
    // Live: r2 resolves; then a REST answer still holding r2's firing arrives: it stays resolved.
    m.alert({ id: 'y4', ruleId: 'r2', deviceId: 'a', state: 'resolved', windowStart: 40_000 });
    m.alert({ id: 'y5', ruleId: 'r2', deviceId: 'a', state: 'firing', windowStart: 20_000 });
    expect(m.summary()).toMatchObject({ alerting: 0, alertsFiring: 0 });
    // A new episode, later, fires again.
    m.alert({ id: 'y6', ruleId: 'r2', deviceId: 'a', state: 'firing', windowStart: 50_000 });
    expect(m.state('a')).toBe('alerting');
  });

  it('events/s from the finest resolution of each device, over the last complete seconds', () => {
    const m = model();
    // 10 s of two devices at 1 Hz: 1 s windows of 4 events (and their 10 s windows, which repeat the events).
    for (let s = 0; s < 10; s++) {
      now = 1_000_000 + s * 1000;
      for (const d of ['a', 'b']) m.record(rec(d, '1s', now - 2000, [4, 2]));
      if (s === 5) for (const d of ['a', 'b']) m.record(rec(d, '10s', now - 12_000, [40]));
    }
    now = 1_000_000 + 10_000;
    expect(m.eventsPerSec()).toBe(8);
    // A provisional record marks the device seen, nothing more.
    m.record(rec('c', '1s', now, [100], false));
    expect(m.state('c')).toBe('live');
    now += 1000;
    expect(m.eventsPerSec()).toBe(7.2);
  });

  it('keeps the newest window end and score end for the pipeline delays', () => {
    const m = model();
    m.record(rec('a', '1s', 5000, [1]));
    m.record(rec('a', '1s', 3000, [1]));
    m.anomaly(score('a', 20_000));
    m.anomaly(score('b', 90_000), false);
    expect([m.newestWindowEnd, m.newestScoreEnd]).toEqual([6000, 30_000]);
  });
});
