import type { AggregateRow } from '@fleetpulse/contracts';
import { Coalescer, type CoalescerClock, type DeviceUpdate } from './coalescer';

/** A hand-driven clock: time moves only when the test says, immediates run on `drain()`. */
class FakeClock implements CoalescerClock {
  t = 1_000_000;
  private timers: { at: number; fn: () => void; id: NodeJS.Timeout }[] = [];
  private immediates: (() => void)[] = [];
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = { unref: () => id } as unknown as NodeJS.Timeout;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  };
  clearTimeout = (id: NodeJS.Timeout) => void (this.timers = this.timers.filter((x) => x.id !== id));
  setImmediate = (fn: () => void) => void this.immediates.push(fn);
  drain(): void {
    while (this.immediates.length > 0) this.immediates.shift()!();
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.drain();
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.t = Math.max(this.t, due.at);
      this.timers = this.timers.filter((x) => x !== due);
      due.fn();
    }
    this.t = end;
    this.drain();
  }
}

const row = (deviceId: string, metric: string, windowStart: number, last: number, resolution = '1s'): AggregateRow => ({
  deviceId,
  metric,
  resolution,
  windowStart,
  windowEnd: windowStart + 1000,
  count: 1,
  sum: last,
  min: last,
  max: last,
  mean: last,
  stddev: 0,
  first: last,
  last,
});

function setup(intervalMs = 250) {
  const clock = new FakeClock();
  const flushes: { at: number; updates: DeviceUpdate[] }[] = [];
  const c = new Coalescer(intervalMs, (updates) => flushes.push({ at: clock.t, updates }), clock);
  return { clock, flushes, c };
}

describe('Coalescer', () => {
  it('sends a quiet device at once, with the rows of one turn together', () => {
    const { clock, flushes, c } = setup();
    c.offer(row('a', 'temp', 0, 1));
    c.offer(row('a', 'vib', 0, 2));
    expect(flushes).toHaveLength(0);
    clock.drain();
    expect(flushes).toHaveLength(1);
    expect(flushes[0]!.updates).toEqual([{ deviceId: 'a', rows: [row('a', 'temp', 0, 1), row('a', 'vib', 0, 2)] }]);
  });

  it('limits a fast device to one update per interval, carrying only the latest row of each series', () => {
    const { clock, flushes, c } = setup(250);
    // 1000 rows a second for 2 s, for one series, plus a second series now and then.
    for (let i = 0; i < 2000; i++) {
      c.offer(row('fast', 'temp', i * 1000, i));
      if (i % 100 === 0) c.offer(row('fast', 'vib', i * 1000, -i));
      clock.advance(1);
    }
    clock.advance(1000);
    const times = flushes.map((f) => f.at);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(250);
    // At most 4 a second (+1 for the first, immediate one).
    expect(flushes.length).toBeLessThanOrEqual(2 * 4 + 2);
    for (const f of flushes) {
      const metrics = f.updates[0]!.rows.map((r) => r.metric);
      expect(new Set(metrics).size).toBe(metrics.length);
    }
    // The last update has the newest values.
    const lastRows = flushes.at(-1)!.updates[0]!.rows;
    expect(lastRows.find((r) => r.metric === 'temp')!.last).toBe(1999);
    expect(lastRows.find((r) => r.metric === 'vib')!.last).toBe(-1900);
    expect(c.coalesced).toBeGreaterThan(1900);
    expect(c.pendingDevices).toBe(0);
  });

  it('keeps devices independent: one fast device does not delay another', () => {
    const { clock, flushes, c } = setup(250);
    c.offer(row('fast', 'temp', 0, 0));
    clock.drain();
    c.offer(row('fast', 'temp', 1000, 1));
    c.offer(row('slow', 'temp', 0, 5));
    clock.drain();
    expect(flushes.map((f) => f.updates.map((u) => u.deviceId))).toEqual([['fast'], ['slow']]);
    clock.advance(250);
    expect(flushes.at(-1)!.updates.map((u) => u.deviceId)).toEqual(['fast']);
  });

  it('never moves a series backwards (a replayed older window is ignored)', () => {
    const { clock, flushes, c } = setup(250);
    c.offer(row('a', 'temp', 0, 0));
    clock.drain();
    c.offer(row('a', 'temp', 5000, 5));
    c.offer(row('a', 'temp', 1000, 1));
    clock.advance(300);
    expect(flushes.at(-1)!.updates[0]!.rows.map((r) => r.last)).toEqual([5]);
  });

  it('holds one row per series however many arrive (memory does not grow with rate)', () => {
    const { c } = setup(250);
    for (let i = 0; i < 100_000; i++) c.offer(row(`d${i % 10}`, 'temp', i, i));
    expect(c.pendingDevices).toBe(10);
  });
});
