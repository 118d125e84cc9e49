import type { WindowRecord } from '@fleetpulse/contracts';
import { windowsCsv } from './device-csv';

// The device view's CSV export of window records.

const stats = (v: number) => ({
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

describe('windowsCsv', () => {
  it('one row per window, oldest first; every metric and statistic a column; a missing metric empty', () => {
    const csv = windowsCsv([rec(10_000, { temp: stats(21) }), rec(0, { temp: stats(20), volt: stats(3) })]);
    const lines = csv.trimEnd().split('\n');
    expect(lines[0]).toBe(
      'windowStart,windowEnd,resolution,' +
        ['temp', 'volt']
          .flatMap((m) => ['count', 'sum', 'min', 'max', 'mean', 'stddev', 'first', 'last'].map((s) => `${m}.${s}`))
          .join(','),
    );
    expect(lines[1]).toBe(
      '1970-01-01T00:00:00.000Z,1970-01-01T00:00:10.000Z,10s,4,80,19,21,20,0.5,20,20,4,12,2,4,3,0.5,3,3',
    );
    expect(lines[2]).toBe('1970-01-01T00:00:10.000Z,1970-01-01T00:00:20.000Z,10s,4,84,20,22,21,0.5,21,21,,,,,,,,');
    expect(lines).toHaveLength(3);
  });

  it('quotes a metric name with a comma or quote', () => {
    expect(windowsCsv([rec(0, { 'a,"b"': stats(1) })]).split('\n')[0]).toContain('"a,""b"".count"');
  });
});
