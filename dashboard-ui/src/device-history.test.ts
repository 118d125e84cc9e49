import type { AlertTransition, AnomalyScore, MetricStats, WindowRecord } from '@fleetpulse/contracts';
import {
  alertSpans,
  chooseResolution,
  csvExport,
  DeviceMarkers,
  metricSeries,
  spanLabel,
  storedFromError,
  ZoomStack,
} from './device-history';

// The device view's history without a DOM: the resolution a range calls for, zooming, the charts' series, markers
// and the CSV export's range.

const H = 3_600_000;

describe('chooseResolution', () => {
  const stored = ['60s', '1s', '10s'];

  it('picks the finest stored resolution within the point budget', () => {
    expect(chooseResolution(15 * 60_000, stored)).toBe('1s'); // 900 points
    expect(chooseResolution(H, stored)).toBe('10s'); // 3600 at 1s is over; 360
    expect(chooseResolution(6 * H, stored)).toBe('60s'); // 2160 at 10s is over; 360
    expect(chooseResolution(H, stored, 4000)).toBe('1s');
  });

  it('takes the coarsest when the range is too long for any, and none when nothing is stored', () => {
    expect(chooseResolution(30 * 24 * H, stored)).toBe('60s');
    expect(chooseResolution(H, [])).toBeNull();
    expect(chooseResolution(H, ['bogus'])).toBeNull();
  });

  it('only ever picks a stored one', () => {
    expect(chooseResolution(15 * 60_000, ['10s', '60s'])).toBe('10s');
  });
});

describe('storedFromError', () => {
  it("reads the stored resolutions from the API's live-only answer", () => {
    expect(storedFromError('resolution 1s is live only (not stored); stored: 10s,60s')).toEqual(['10s', '60s']);
    expect(storedFromError('resolution 1s is live only (not stored); stored: none')).toEqual([]);
    expect(storedFromError('range too wide for resolution 1s')).toBeNull();
  });
});

describe('ZoomStack', () => {
  it('zooms within the range shown, goes back one zoom at a time, and resets', () => {
    const z = new ZoomStack({ from: 0, to: H });
    expect(z.zoom(30 * 60_000, 10 * 60_000)).toBe(true);
    expect(z.current).toEqual({ from: 10 * 60_000, to: 30 * 60_000 });
    // Clipped to the range shown.
    expect(z.zoom(0, 20 * 60_000)).toBe(true);
    expect(z.current).toEqual({ from: 10 * 60_000, to: 20 * 60_000 });
    expect(z.depth).toBe(2);
    expect(z.back()).toBe(true);
    expect(z.current).toEqual({ from: 10 * 60_000, to: 30 * 60_000 });
    z.reset();
    expect(z.current).toEqual({ from: 0, to: H });
    expect(z.back()).toBe(false);
  });

  it('takes a selection narrower than the minimum (a click) for none', () => {
    const z = new ZoomStack({ from: 0, to: H });
    expect(z.zoom(1000, 5000)).toBe(false);
    expect(z.zoom(NaN, 5000)).toBe(false);
    expect(z.depth).toBe(0);
  });

  it('stays bounded however often one zooms', () => {
    const z = new ZoomStack({ from: 0, to: 1e12 });
    for (let i = 0; i < 200; i++) z.zoom(z.current.from + 1000, z.current.to - 1000);
    expect(z.depth).toBeLessThan(50);
    z.reset();
    expect(z.current).toEqual({ from: 0, to: 1e12 });
  });
});

const stats = (v: number): MetricStats => ({
  count: 4,
  sum: 4 * v,
  min: v - 1,
  max: v + 1,
  mean: v,
  stddev: 0.5,
  first: v,
  last: v,
});
const rec = (windowStart: number, metrics: WindowRecord['metrics']): WindowRecord => ({
  deviceId: 'd-1',
  resolution: '10s',
  windowStart,
  windowEnd: windowStart + 10_000,
  final: true,
  metrics,
});

describe('metricSeries', () => {
  it('a series per metric on the shared x of every window, oldest first, null where a window lacks it', () => {
    const s = metricSeries([rec(10_000, { temp: stats(21) }), rec(0, { temp: stats(20), volt: stats(3) })], ['rpm']);
    expect([...s.keys()]).toEqual(['rpm', 'temp', 'volt']);
    expect(s.get('temp')).toEqual({ xs: [0, 10], mean: [20, 21], min: [19, 20], max: [21, 22], points: 2 });
    expect(s.get('volt')).toMatchObject({ mean: [3, null], min: [2, null], max: [4, null], points: 1 });
    expect(s.get('rpm')).toMatchObject({ mean: [null, null], points: 0 });
  });

  it('caps the points of a chart', () => {
    const windows = Array.from({ length: 100 }, (_, i) => rec(i * 10_000, { temp: stats(i) }));
    const s = metricSeries(windows, [], 30).get('temp')!;
    expect(s.xs).toHaveLength(30);
    expect(s.mean[29]).toBe(29);
  });
});

const score = (windowStart: number, model = 'iforest', deviceId = 'd-1'): AnomalyScore => ({
  deviceId,
  resolution: '10s',
  windowStart,
  model,
  modelVersion: '1',
  score: 0.9,
  anomalous: true,
  features: {},
});
const transition = (
  id: string,
  state: 'firing' | 'resolved',
  episode: number,
  windowStart: number,
  ruleId = 'r1',
  deviceId = 'd-1',
): AlertTransition => ({
  id,
  ruleId,
  ruleName: `rule ${ruleId}`,
  deviceId,
  resolution: '10s',
  state,
  episode,
  windowStart,
  value: 1,
  at: windowStart + 2000,
  reason: 'condition',
});

describe('DeviceMarkers', () => {
  it("keeps the device's anomalies once each, and gives those of a range oldest first", () => {
    const m = new DeviceMarkers('d-1');
    m.addAnomalies([score(20_000), score(0), score(20_000), score(20_000, 'ae'), score(5000, 'iforest', 'other')]);
    m.addAnomalies([{ ...score(30_000), anomalous: false }]);
    expect(m.size.anomalies).toBe(3);
    expect(m.anomalies({ from: 0, to: 20_000 }).map((a) => a.at)).toEqual([0]);
    expect(m.anomalies({ from: 0, to: 20_001 }).map((a) => [a.at, a.model])).toEqual([
      [0, 'iforest'],
      [20_000, 'ae'],
      [20_000, 'iforest'],
    ]);
  });

  it('is bounded: the oldest windows go first', () => {
    const m = new DeviceMarkers('d-1', 10, 4);
    m.addAnomalies(Array.from({ length: 25 }, (_, i) => score(i * 10_000)));
    expect(m.size.anomalies).toBe(10);
    expect(m.anomalies({ from: 0, to: 1e9 })[0]!.at).toBe(150_000);
    m.addTransitions(Array.from({ length: 9 }, (_, i) => transition(`t${i}`, 'firing', i * 10_000, i * 10_000)));
    expect(m.size.transitions).toBe(4);
  });

  it('gives the alert episodes that overlap a range; one still firing runs on', () => {
    const m = new DeviceMarkers('d-1');
    m.addTransitions([
      transition('a1', 'firing', 10_000, 10_000),
      transition('a2', 'resolved', 10_000, 50_000),
      transition('b1', 'firing', 100_000, 100_000),
      transition('c1', 'firing', 0, 0, 'r2', 'other'),
    ]);
    expect(m.alertSpans({ from: 0, to: 1e9 })).toEqual([
      { ruleId: 'r1', ruleName: 'rule r1', from: 10_000, to: 50_000 },
      { ruleId: 'r1', ruleName: 'rule r1', from: 100_000, to: null },
    ]);
    expect(m.alertSpans({ from: 50_000, to: 100_000 })).toEqual([]);
    expect(m.alertSpans({ from: 40_000, to: 60_000 }).map((s) => s.from)).toEqual([10_000]);
    expect(m.alertSpans({ from: 500_000, to: 600_000 }).map((s) => s.from)).toEqual([100_000]);
  });
});

describe('alertSpans', () => {
  it('a resolve whose firing was not read still starts at its episode', () => {
    expect(alertSpans([transition('x', 'resolved', 5000, 30_000)])).toEqual([
      { ruleId: 'r1', ruleName: 'rule r1', from: 5000, to: 30_000 },
    ]);
  });

  it('episodes of two rules apart, by start', () => {
    const spans = alertSpans([
      transition('b', 'firing', 20_000, 20_000, 'r2'),
      transition('a', 'firing', 10_000, 10_000, 'r1'),
      transition('a2', 'resolved', 10_000, 40_000, 'r1'),
    ]);
    expect(spans.map((s) => [s.ruleId, s.from, s.to])).toEqual([
      ['r1', 10_000, 40_000],
      ['r2', 20_000, null],
    ]);
  });
});

describe('csvExport', () => {
  it('covers the range shown, zoomed or not, at the resolution shown, and says so in its name', () => {
    const z = new ZoomStack({ from: Date.UTC(2026, 0, 1), to: Date.UTC(2026, 0, 1, 6) });
    expect(csvExport('d-1', z.current, '60s')).toEqual({
      from: Date.UTC(2026, 0, 1),
      to: Date.UTC(2026, 0, 1, 6),
      resolution: '60s',
      name: 'd-1-60s-2026-01-01T00-00-00-000Z_2026-01-01T06-00-00-000Z.csv',
    });
    z.zoom(Date.UTC(2026, 0, 1, 1), Date.UTC(2026, 0, 1, 2));
    expect(csvExport('d-1', z.current, '10s')).toMatchObject({
      from: Date.UTC(2026, 0, 1, 1),
      to: Date.UTC(2026, 0, 1, 2),
      resolution: '10s',
      name: 'd-1-10s-2026-01-01T01-00-00-000Z_2026-01-01T02-00-00-000Z.csv',
    });
  });
});

describe('spanLabel', () => {
  it('names a range length', () => {
    expect([30_000, 15 * 60_000, H, 2.5 * H, 72 * H].map(spanLabel)).toEqual([
      '30 s',
      '15 min',
      '1 h',
      '2 h 30 min',
      '3.0 d',
    ]);
  });
});
