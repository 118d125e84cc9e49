import fc from 'fast-check';
import type { AggregateRow, TelemetryEvent } from '@fleetpulse/contracts';
import { WindowAggregator, type ClosedWindow, type RowStat } from './index';

const T0 = 1_763_803_200_000;
const Stats: RowStat[] = ['count', 'sum', 'min', 'max', 'mean', 'stddev', 'first', 'last'];

/** Every way of reading a window's rows agrees with `rows` (and its JSON with JSON.stringify of `rows`). */
function expectConsistent(w: ClosedWindow): void {
  const rows: AggregateRow[] = w.rows;
  expect(w.metricCount).toBe(rows.length);
  expect(w.rowsJson()).toEqual(rows.map((r) => JSON.stringify(r)));
  rows.forEach((row, i) => {
    expect(w.writeJson(i)).toBe(JSON.stringify(row));
    expect(w.metricName(i)).toBe(row.metric);
    for (const f of Stats) expect(Object.is(w.stat(i, f), row[f])).toBe(true);
  });
  expect(() => w.writeJson(rows.length)).toThrow(RangeError);
  // The record: its text, its bytes and JSON.stringify of it agree, and its metrics are the rows'.
  const text = JSON.stringify(w.record());
  expect(w.recordJson()).toBe(text);
  expect(Object.keys(w.record().metrics)).toEqual(rows.map((r) => r.metric));
}

describe('ClosedWindow serialisation', () => {
  it('rowsJson, writeJson, metricCount, metricName and stat agree with rows', () => {
    const value = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.constantFrom(0, -0, 1e308, -1e308, 5e-324, 0.1, 23.45),
      fc.integer({ min: -1000, max: 1000 }),
    );
    const eventArb = fc.record({
      dev: fc.constantFrom('a', 'b"\\\u2028', 'ü-7'),
      dt: fc.nat({ max: 1500 }),
      mask: fc.integer({ min: 1, max: 15 }),
      values: fc.tuple(value, value, value, value),
    });
    fc.assert(
      fc.property(fc.array(eventArb, { minLength: 1, maxLength: 60 }), (steps) => {
        const agg = new WindowAggregator({ resolutions: ['1s', '10s'] });
        agg.assignPartition(0);
        let ts = T0;
        const names = ['temp', 'hum"', 'v\\olt', 'x'];
        steps.forEach((s, i) => {
          ts += s.dt;
          const metrics: Record<string, number> = {};
          // Varying subsets and orders, so that some windows have empty slots.
          const order = i % 2 === 0 ? [0, 1, 2, 3] : [3, 1, 0, 2];
          for (const k of order) if (s.mask & (1 << k)) metrics[names[k]!] = s.values[k]!;
          const e: TelemetryEvent = { deviceId: s.dev, ts, metrics, receivedAt: T0 };
          agg.ingest(0, String(i), e);
        });
        agg.flush(0);
        const windows = agg.drain().windows;
        expect(windows.length).toBeGreaterThan(0);
        windows.forEach(expectConsistent);
      }),
      { numRuns: 200 },
    );
  });

  it('reads rows from stored numbers after later windows reuse the aggregator’s buffers', () => {
    const agg = new WindowAggregator({ resolutions: ['1s'] });
    agg.assignPartition(0);
    const kept: ClosedWindow[] = [];
    for (let s = 0; s < 3000; s++) {
      agg.ingest(0, String(s), { deviceId: `d${s % 7}`, ts: T0 + s * 400, metrics: { x: s, y: -s }, receivedAt: T0 });
      kept.push(...agg.drain().windows);
    }
    expect(kept.length).toBeGreaterThan(1000);
    for (const w of kept) {
      expectConsistent(w);
      const xs = w.rows.find((r) => r.metric === 'x')!;
      expect(xs.min).toBeGreaterThanOrEqual((w.windowStart - T0) / 400 - 1);
      expect(xs.max).toBeLessThan((w.windowEnd - T0) / 400);
    }
  });
});
