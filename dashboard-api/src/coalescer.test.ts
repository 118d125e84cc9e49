import { Coalescer, type CoalescerClock, type DeviceUpdate } from './coalescer';
import { windowRecord } from './testing';

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

/** A provisional snapshot (`"final": false`) of a 1s window of `deviceId` whose last value so far is `last`. */
const prov = (deviceId: string, windowStart: number, last: number, resolution = '1s') => ({
  ...windowRecord(deviceId, windowStart, { temp: last }, resolution),
  final: false,
});

/** What the flushes sent of `deviceId`, in order: `P<windowStart>` (provisional) or `F<windowStart>` (final). */
const sent = (flushes: { updates: DeviceUpdate[] }[], deviceId = 'a') =>
  flushes.flatMap((f) =>
    f.updates
      .filter((u) => u.deviceId === deviceId)
      .flatMap((u) => u.records.map((r) => `${r.final ? 'F' : 'P'}${r.windowStart}:${r.metrics.temp!.last}`)),
  );

/** A 1s (or `resolution`) window record of `deviceId` with `temp` (and any `more` metrics) ending on `last`. */
const rec = (
  deviceId: string,
  windowStart: number,
  last: number,
  resolution = '1s',
  more: Record<string, number> = {},
) => windowRecord(deviceId, windowStart, { temp: last, ...more }, resolution);

function setup(maxPerSec = 4) {
  const clock = new FakeClock();
  const flushes: { at: number; updates: DeviceUpdate[] }[] = [];
  const c = new Coalescer(maxPerSec, (updates) => flushes.push({ at: clock.t, updates }), clock);
  return { clock, flushes, c };
}

describe('Coalescer', () => {
  it('sends a quiet device at once, with the records of one turn together', () => {
    const { clock, flushes, c } = setup();
    c.offer(rec('a', 0, 1));
    c.offer(rec('a', 0, 2, '10s'));
    expect(flushes).toHaveLength(0);
    clock.drain();
    expect(flushes).toHaveLength(1);
    expect(flushes[0]!.updates).toEqual([{ deviceId: 'a', records: [rec('a', 0, 1), rec('a', 0, 2, '10s')] }]);
  });

  it('limits a fast device to one update per interval, carrying only the latest record of each resolution', () => {
    const { clock, flushes, c } = setup(4);
    // 1000 1s records a second for 2 s, plus a 10s record now and then.
    for (let i = 0; i < 2000; i++) {
      c.offer(rec('fast', i * 1000, i, '1s', { vib: i / 10 }));
      if (i % 100 === 0) c.offer(rec('fast', i * 10_000, -i, '10s'));
      clock.advance(1);
    }
    clock.advance(1000);
    const times = flushes.map((f) => f.at);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(250);
    // 4 a second while records come (+1 for the first, immediate one, +1 for the end), not fewer, not more.
    expect(flushes.length).toBeGreaterThanOrEqual(2 * 4);
    expect(flushes.length).toBeLessThanOrEqual(2 * 4 + 2);
    for (const f of flushes) {
      const resolutions = f.updates[0]!.records.map((r) => r.resolution);
      expect(new Set(resolutions).size).toBe(resolutions.length);
    }
    // The last update has the newest records, whole (every metric of the window).
    const last = flushes.at(-1)!.updates[0]!.records;
    expect(last.find((r) => r.resolution === '1s')).toEqual(rec('fast', 1999_000, 1999, '1s', { vib: 199.9 }));
    expect(last.find((r) => r.resolution === '10s')!.metrics.temp!.last).toBe(-1900);
    expect(c.coalesced).toBeGreaterThan(1900);
    expect(c.pendingDevices).toBe(0);
  });

  it('keeps devices independent: one fast device does not delay another', () => {
    const { clock, flushes, c } = setup(4);
    c.offer(rec('fast', 0, 0));
    clock.drain();
    c.offer(rec('fast', 1000, 1));
    c.offer(rec('slow', 0, 5));
    clock.drain();
    expect(flushes.map((f) => f.updates.map((u) => u.deviceId))).toEqual([['fast'], ['slow']]);
    clock.advance(250);
    expect(flushes.at(-1)!.updates.map((u) => u.deviceId)).toEqual(['fast']);
  });

  it('never moves a resolution backwards (a replayed older window is ignored)', () => {
    const { clock, flushes, c } = setup(4);
    c.offer(rec('a', 0, 0));
    clock.drain();
    c.offer(rec('a', 5000, 5));
    c.offer(rec('a', 1000, 1));
    clock.advance(300);
    expect(flushes.at(-1)!.updates[0]!.records.map((r) => [r.windowStart, r.metrics.temp!.last])).toEqual([[5000, 5]]);
  });

  it('replaces a pending record of the same window by the one that arrives later', () => {
    const { clock, flushes, c } = setup(4);
    c.offer(rec('a', 0, 0));
    clock.drain();
    c.offer(rec('a', 1000, 1));
    c.offer(rec('a', 1000, 2, '1s', { vib: 3 }));
    clock.advance(300);
    expect(flushes.at(-1)!.updates[0]!.records).toEqual([rec('a', 1000, 2, '1s', { vib: 3 })]);
  });

  it('holds one record per device and resolution however many arrive (memory does not grow with rate)', () => {
    const { c } = setup(4);
    for (let i = 0; i < 100_000; i++) c.offer(rec(`d${i % 10}`, i * 1000, i));
    expect(c.pendingDevices).toBe(10);
    const pending = (c as unknown as { pending: Map<string, Map<string, unknown>> }).pending;
    expect([...pending.values()].map((m) => m.size)).toEqual(Array(10).fill(1));
  });

  describe('provisional records (metrics.live)', () => {
    it('sends a provisional of an idle device at once, even right after a final of that device', () => {
      const { clock, flushes, c } = setup(4);
      c.watch('a');
      c.offer(rec('a', 0, 1));
      clock.drain();
      clock.advance(20);
      // The event that closes window 0 opens window 3: its snapshot comes a moment after the final.
      c.offer(prov('a', 3000, 7));
      clock.drain();
      expect(flushes.map((f) => f.at - flushes[0]!.at)).toEqual([0, 20]);
      expect(sent(flushes)).toEqual(['F0:1', 'P3000:7']);
    });

    it('a final replaces a pending provisional of its window; a provisional never replaces a final of its window', () => {
      const { clock, flushes, c } = setup(4);
      c.watch('a');
      c.offer(rec('a', 0, 0));
      clock.drain();
      // Now 'a' must wait for its final spacing: these coalesce.
      c.offer(rec('a', 1000, 1));
      c.offer(prov('a', 2000, 5));
      c.offer(rec('a', 2000, 6));
      c.offer(prov('a', 2000, 4));
      clock.advance(300);
      expect(sent(flushes)).toEqual(['F0:0', 'F2000:6']);
    });

    it('keeps a final and the provisional of a newer window together, the final first', () => {
      const { clock, flushes, c } = setup(4);
      c.watch('a');
      c.offer(prov('a', 0, 1));
      clock.drain();
      c.offer(prov('a', 3000, 3));
      c.offer(rec('a', 0, 2));
      c.offer(prov('a', 2000, 9));
      clock.advance(300);
      expect(sent(flushes)).toEqual(['P0:1', 'F0:2', 'P3000:3']);
    });

    it('drops a provisional that arrives after the final of its window was sent, or after a newer provisional', () => {
      const { clock, flushes, c } = setup(4);
      c.watch('a');
      c.offer(prov('a', 5000, 1));
      clock.advance(300);
      c.offer(rec('a', 5000, 2));
      clock.advance(300);
      c.offer(prov('a', 5000, 3));
      c.offer(prov('a', 4000, 4));
      clock.advance(300);
      c.offer(prov('a', 7000, 5));
      clock.advance(300);
      c.offer(prov('a', 6000, 6));
      clock.advance(300);
      expect(sent(flushes)).toEqual(['P5000:1', 'F5000:2', 'P7000:5']);
      expect(c.coalesced).toBe(3);
    });

    it('forgets what it sent of a device once unwatched', () => {
      const { clock, flushes, c } = setup(4);
      c.watch('a');
      c.offer(rec('a', 5000, 2));
      clock.advance(300);
      c.unwatch('a');
      expect(c.watchedDevices).toBe(0);
      c.offer(prov('a', 4000, 1));
      clock.advance(300);
      expect(sent(flushes)).toEqual(['F5000:2', 'P4000:1']);
    });

    it('keeps the budget: at most maxPerSec updates in any second, with finals and provisionals mixed', () => {
      const { clock, flushes, c } = setup(4);
      c.watch('a');
      // Snapshots every 250 ms and finals every second, each 1 ms apart from the other: 5 wanted a second.
      for (let t = 0; t < 10_000; t += 10) {
        if (t % 250 === 0) c.offer(prov('a', Math.floor(t / 1000) * 1000 + 3000, t));
        if (t % 1000 === 1) c.offer(rec('a', Math.floor(t / 1000) * 1000, t));
        if (t % 1000 === 0) c.offer(rec('a', Math.floor(t / 1000) * 1000 - 1000, t));
        clock.advance(10);
      }
      clock.advance(2000);
      const times = flushes.map((f) => f.at);
      for (let i = 4; i < times.length; i++) expect(times[i]! - times[i - 4]!).toBeGreaterThanOrEqual(1000);
      expect(flushes.length).toBeGreaterThanOrEqual(10 * 4 - 1);
      // Never backwards: finals in order, provisionals in order, no provisional at or behind a final already sent.
      let final = -Infinity;
      let provisional = -Infinity;
      for (const f of flushes)
        for (const r of f.updates[0]!.records) {
          if (r.final) {
            expect(r.windowStart).toBeGreaterThanOrEqual(final);
            final = r.windowStart;
          } else {
            expect(r.windowStart).toBeGreaterThan(final);
            expect(r.windowStart).toBeGreaterThanOrEqual(provisional);
            provisional = r.windowStart;
          }
        }
    });

    it('a provisional waits less than an interval after a final when the device is within its budget', () => {
      const { clock, flushes, c } = setup(4);
      c.watch('a');
      // 1 Hz: each second a final then, 30 ms later, the snapshot of the window the same event opened.
      for (let s = 0; s < 20; s++) {
        c.offer(rec('a', s * 1000, s));
        clock.advance(30);
        const offered = clock.t;
        c.offer(prov('a', s * 1000 + 3000, s));
        clock.advance(970);
        const f = flushes.find((x) => x.updates[0]!.records.some((r) => !r.final && r.windowStart === s * 1000 + 3000));
        expect(f!.at - offered).toBe(0);
      }
    });
  });
});
