import type { TelemetryEvent } from '@fleetpulse/contracts';
import {
  AggregatorConfigError,
  decodeRecordValue,
  InvalidRecordError,
  resolveConfig,
  WindowAggregator,
  type ClosedWindow,
  type PartitionCheckpoint,
} from './index';
import { MemoryStateStore } from './state-store.test-util';

const T0 = 1_763_803_200_000; // aligned to 60 s

function ev(
  deviceId: string,
  ts: number,
  metrics: Record<string, number>,
  seq?: number,
  receivedAt = T0,
): TelemetryEvent {
  const e: TelemetryEvent = { deviceId, ts, metrics, receivedAt };
  if (seq !== undefined) e.seq = seq;
  return e;
}

function agg(config = {}): WindowAggregator {
  const a = new WindowAggregator(config);
  a.assignPartition(0);
  return a;
}

function find(ws: ClosedWindow[], deviceId: string, resolution: string, windowStart: number): ClosedWindow | undefined {
  return ws.find((w) => w.deviceId === deviceId && w.resolution === resolution && w.windowStart === windowStart);
}

let offset = 0;
function feed(a: WindowAggregator, ...events: TelemetryEvent[]): void {
  for (const e of events) a.ingest(0, String(offset++), e);
}

beforeEach(() => (offset = 0));

describe('configuration', () => {
  it('defaults to 1s, 10s, 60s, L = 2 s, idle 5 s', () => {
    expect(resolveConfig()).toEqual({
      labels: ['1s', '10s', '60s'],
      sizes: [1000, 10000, 60000],
      allowedLatenessMs: 2000,
      idleTimeoutMs: 5000,
      maxMetricsPerDevice: 64,
      maxQuietDevices: 50_000,
      liveSnapshots: false,
    });
  });

  it('sorts resolutions by size', () => {
    expect(resolveConfig({ resolutions: ['60s', '1s'] }).labels).toEqual(['1s', '60s']);
  });

  it('lists every problem at once', () => {
    let err: unknown;
    try {
      resolveConfig({ resolutions: ['1s', '1m', '1s'], allowedLatenessMs: -1, idleTimeoutMs: 0 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AggregatorConfigError);
    expect((err as AggregatorConfigError).problems).toHaveLength(4);
    expect(() => resolveConfig({ resolutions: [] })).toThrow(/at least one/);
  });
});

describe('aggregation', () => {
  it('computes count, sum, min, max, mean, population stddev, first and last per metric', () => {
    const a = agg({ resolutions: ['10s'] });
    feed(
      a,
      ev('d', T0 + 100, { temp: 2, hum: 10 }),
      ev('d', T0 + 300, { temp: 4 }),
      ev('d', T0 + 200, { temp: 4 }),
      ev('d', T0 + 900, { temp: 5, hum: 30 }),
      ev('d', T0 + 5000, { temp: 7 }),
    );
    feed(a, ev('d', T0 + 12000, { temp: 0 })); // watermark 10000 >= end
    const [w] = a.drain().windows;
    expect(w).toMatchObject({
      deviceId: 'd',
      resolution: '10s',
      windowStart: T0,
      windowEnd: T0 + 10000,
      complete: true,
    });
    expect(w!.reason).toBe('watermark');
    const temp = w!.rows.find((r) => r.metric === 'temp')!;
    expect(temp).toEqual({
      deviceId: 'd',
      metric: 'temp',
      resolution: '10s',
      windowStart: T0,
      windowEnd: T0 + 10000,
      count: 5,
      sum: 22,
      min: 2,
      max: 7,
      mean: 4.4,
      stddev: expect.closeTo(Math.sqrt((2.4 ** 2 + 0.4 ** 2 * 2 + 0.6 ** 2 + 2.6 ** 2) / 5), 12) as number,
      first: 2,
      last: 7,
    });
    expect(w!.rows.find((r) => r.metric === 'hum')).toMatchObject({
      count: 2,
      mean: 20,
      stddev: 10,
      first: 10,
      last: 30,
    });
  });

  it('orders first and last by event time, ties by arrival', () => {
    const a = agg({ resolutions: ['10s'] });
    feed(a, ev('d', T0 + 500, { x: 1 }), ev('d', T0 + 100, { x: 2 }), ev('d', T0 + 100, { x: 3 }));
    feed(a, ev('d', T0 + 500, { x: 4 }), ev('d', T0 + 400, { x: 5 }), ev('d', T0 + 20000, { x: 0 }));
    const row = find(a.drain().windows, 'd', '10s', T0)!.rows[0]!;
    expect(row.first).toBe(2);
    expect(row.last).toBe(4);
  });

  it('aligns windows to the epoch for every resolution', () => {
    const a = agg();
    feed(a, ev('d', T0 + 61_234, { x: 1 }), ev('d', T0 + 200_000, { x: 1 }));
    const ws = a.drain().windows;
    expect(find(ws, 'd', '1s', T0 + 61_000)).toBeDefined();
    expect(find(ws, 'd', '10s', T0 + 60_000)).toBeDefined();
    expect(find(ws, 'd', '60s', T0 + 60_000)).toBeDefined();
  });

  it('takes the events of an array record, all at one offset', () => {
    const a = agg({ resolutions: ['1s'] });
    a.ingest(0, '7', [ev('d', T0, { x: 1 }), ev('d', T0 + 10, { x: 3 })]);
    expect(a.safeCommitOffset(0)).toBe('7');
    a.ingest(0, '8', ev('d', T0 + 5000, { x: 0 }));
    expect(find(a.drain().windows, 'd', '1s', T0)!.rows[0]).toMatchObject({ count: 2, sum: 4 });
  });

  it('grows a device past four metrics while its windows are open', () => {
    const a = agg({ resolutions: ['1s'] });
    feed(a, ev('d', T0, { a: 1, b: 2 }), ev('d', T0 + 1, { c: 3, d: 4, e: 5, f: 6 }), ev('d', T0 + 2, { a: 2, f: 7 }));
    feed(a, ev('d', T0 + 9000, { a: 0 }));
    const rows = find(a.drain().windows, 'd', '1s', T0)!.rows;
    expect(rows.map((r) => [r.metric, r.count, r.sum])).toEqual([
      ['a', 2, 3],
      ['b', 1, 2],
      ['c', 1, 3],
      ['d', 1, 4],
      ['e', 1, 5],
      ['f', 2, 13],
    ]);
  });
});

describe('watermark', () => {
  it('closes a window when the device watermark reaches its end, not before', () => {
    const a = agg({ resolutions: ['1s'] });
    feed(a, ev('d', T0 + 10, { x: 1 }), ev('d', T0 + 2999, { x: 1 }));
    expect(a.drain().windows).toHaveLength(0); // watermark 999 < 1000
    feed(a, ev('d', T0 + 3000, { x: 1 })); // watermark 1000 >= 1000
    expect(a.drain().windows.map((w) => w.windowStart)).toEqual([T0]);
  });

  it('keeps event time per device', () => {
    const a = agg({ resolutions: ['1s'] });
    feed(a, ev('slow', T0, { x: 1 }, undefined, T0), ev('fast', T0 + 60_000, { x: 1 }, undefined, T0 + 10));
    expect(a.drain().windows).toHaveLength(0);
    feed(a, ev('slow', T0 + 500, { x: 2 }, undefined, T0 + 20));
    expect(a.drain().late).toHaveLength(0);
  });

  it('honours allowedLatenessMs = 0', () => {
    const a = agg({ resolutions: ['1s'], allowedLatenessMs: 0 });
    feed(a, ev('d', T0, { x: 1 }), ev('d', T0 + 1000, { x: 1 }));
    expect(a.drain().windows.map((w) => w.windowStart)).toEqual([T0]);
  });
});

describe('late events', () => {
  it('reports an event once with the resolutions it missed and folds it where still open', () => {
    const a = agg();
    feed(a, ev('d', T0 + 500, { x: 1 }), ev('d', T0 + 5000, { x: 1 })); // 1s window T0 closes (watermark 3000)
    expect(a.drain().windows.map((w) => w.resolution)).toEqual(['1s']);
    feed(a, ev('d', T0 + 700, { x: 10 }));
    const out = a.drain();
    expect(out.late).toEqual([
      { partition: 0, offset: '2', event: expect.objectContaining({ ts: T0 + 700 }) as unknown, missed: '1s' },
    ]);
    feed(a, ev('d', T0 + 80_000, { x: 0 }));
    const ws = a.drain().windows;
    expect(find(ws, 'd', '10s', T0)!.rows[0]).toMatchObject({ count: 3, sum: 12 });
    expect(find(ws, 'd', '60s', T0)!.rows[0]).toMatchObject({ count: 3 });
    expect(a.stats()).toMatchObject({ late: 1, lateByResolution: { '1s': 1, '10s': 0, '60s': 0 } });
  });

  it('never folds an event whose every window closed', () => {
    const a = agg();
    feed(a, ev('d', T0, { x: 1 }), ev('d', T0 + 120_000, { x: 1 }));
    a.drain();
    feed(a, ev('d', T0 + 30_000, { x: 99 }));
    expect(a.drain().late[0]!.missed).toBe('1s,10s,60s');
    expect(a.stats().openWindows).toBe(3); // only the T0+120s ones
  });

  it('treats a window below the frontier as closed even if it never opened', () => {
    const a = agg({ resolutions: ['1s'] });
    feed(a, ev('d', T0, { x: 1 }), ev('d', T0 + 10_000, { x: 1 }), ev('d', T0 + 5_000, { x: 1 }));
    expect(a.drain().late.map((l) => l.missed)).toEqual(['1s']);
  });
});

describe('retries', () => {
  it('counts a seq repeated inside an open window once', () => {
    const a = agg({ resolutions: ['1s', '10s'] });
    feed(a, ev('d', T0 + 100, { x: 1 }, 5), ev('d', T0 + 100, { x: 1 }, 5), ev('d', T0 + 200, { x: 2 }, 6));
    feed(a, ev('d', T0 + 100, { x: 1 }, 5, T0 + 300), ev('d', T0 + 300, { x: 1 }));
    feed(a, ev('d', T0 + 400, { x: 1 })); // no seq: never a retry
    feed(a, ev('d', T0 + 50_000, { x: 0 }));
    const ws = a.drain().windows;
    expect(find(ws, 'd', '1s', T0)!.rows[0]).toMatchObject({ count: 4, sum: 5 });
    expect(find(ws, 'd', '10s', T0)!.rows[0]).toMatchObject({ count: 4, sum: 5 });
    expect(a.stats()).toMatchObject({ events: 7, retries: 2, late: 0 });
  });

  it('remembers out-of-order seqs', () => {
    const a = agg({ resolutions: ['10s'] });
    for (const s of [3, 1, 7, 2, 9, 7, 1, 4, 3]) feed(a, ev('d', T0 + s, { x: s }, s));
    feed(a, ev('d', T0 + 50_000, { x: 0 }));
    expect(find(a.drain().windows, 'd', '10s', T0)!.rows[0]).toMatchObject({ count: 6, sum: 26 });
    expect(a.stats().retries).toBe(3);
  });

  it('treats a repeat whose window has closed as late, not as a retry', () => {
    const a = agg({ resolutions: ['1s'] });
    feed(a, ev('d', T0, { x: 1 }, 1), ev('d', T0 + 5000, { x: 1 }, 2), ev('d', T0, { x: 1 }, 1));
    expect(a.drain().late).toHaveLength(1);
    expect(a.stats()).toMatchObject({ retries: 0, late: 1 });
  });
});

describe('idle devices', () => {
  it('closes a device once the partition processing time is idleTimeout past its last receivedAt', () => {
    const a = agg({ resolutions: ['1s', '60s'] });
    feed(a, ev('quiet', T0 + 100, { x: 1 }, undefined, T0 + 150));
    feed(a, ev('busy', T0 + 4000, { x: 1 }, undefined, T0 + 5149));
    expect(a.drain().windows).toHaveLength(0);
    feed(a, ev('busy', T0 + 4100, { x: 1 }, undefined, T0 + 5150));
    const ws = a.drain().windows;
    expect(ws.map((w) => [w.deviceId, w.resolution, w.reason])).toEqual([
      ['quiet', '1s', 'idle'],
      ['quiet', '60s', 'idle'],
    ]);
    // The 60 s window holding its max event time is closed now: a later event in it is late for 60s only.
    feed(a, ev('quiet', T0 + 30_000, { x: 1 }, undefined, T0 + 5200));
    expect(a.drain().late.map((l) => l.missed)).toEqual(['60s']);
  });

  it('advances processing time from the caller while the partition is quiet', () => {
    const a = agg({ resolutions: ['1s'] });
    feed(a, ev('d', T0, { x: 1 }, undefined, T0 + 10));
    a.advanceProcessingTime(0, T0 + 5009);
    expect(a.drain().windows).toHaveLength(0);
    a.advanceProcessingTime(0, T0 + 5010);
    expect(a.drain().windows).toHaveLength(1);
    a.advanceProcessingTime(0, T0); // never goes back
    expect(a.safeCommitOffset(0)).toBe('1');
  });

  it('closes a device immediately when its own receivedAt is already idle', () => {
    const a = agg({ resolutions: ['1s'] });
    feed(a, ev('a', T0, { x: 1 }, undefined, T0 + 20_000), ev('b', T0, { x: 1 }, undefined, T0 + 1000));
    expect(a.drain().windows.map((w) => [w.deviceId, w.reason])).toEqual([['b', 'idle']]);
  });
});

describe('offsets', () => {
  it('commits up to the first record of the oldest open window', () => {
    const a = agg({ resolutions: ['1s', '10s'] });
    expect(a.safeCommitOffset(0)).toBeNull();
    feed(a, ev('a', T0 + 100, { x: 1 })); // 0: opens a/1s/T0, a/10s/T0
    feed(a, ev('b', T0 + 200, { x: 1 })); // 1
    expect(a.safeCommitOffset(0)).toBe('0');
    feed(a, ev('a', T0 + 4000, { x: 1 })); // 2: closes a/1s/T0; a/10s/T0 still open
    expect(a.safeCommitOffset(0)).toBe('0');
    feed(a, ev('a', T0 + 13_000, { x: 1 })); // 3: closes a/10s/T0, a/1s/T0+4000 -> oldest open is b's (1)
    expect(a.safeCommitOffset(0)).toBe('1');
    a.advanceProcessingTime(0, T0 + 100_000);
    expect(a.safeCommitOffset(0)).toBe('4');
  });

  it('keeps a record pinned when its first window closed within it and it opened another', () => {
    const a = agg({ resolutions: ['1s'] });
    a.advanceProcessingTime(0, T0 + 10_000);
    // The first event is idle on arrival (its window closes at once), the second opens a window.
    a.ingest(0, '7', [ev('d', T0 + 100, { x: 1 }, 1, T0), ev('d', T0 + 2000, { x: 1 }, 2, T0 + 10_000)]);
    expect(a.drain().windows).toHaveLength(1);
    expect(a.safeCommitOffset(0)).toBe('7');
  });

  it('handles offsets beyond 2^53', () => {
    const a = agg({ resolutions: ['1s'] });
    a.ingest(0, '9007199254740993', ev('d', T0, { x: 1 }));
    a.ingest(0, '9007199254740994', ev('d', T0 + 9000, { x: 1 }));
    expect(a.safeCommitOffset(0)).toBe('9007199254740994');
    a.advanceProcessingTime(0, T0 + 100_000);
    expect(a.safeCommitOffset(0)).toBe('9007199254740995');
  });

  it('refuses an unassigned partition and drops one without emitting', () => {
    const a = agg();
    expect(() => a.ingest(1, '0', ev('d', T0, { x: 1 }))).toThrow(/not assigned/);
    expect(() => a.assignPartition(0)).toThrow(/already/);
    feed(a, ev('d', T0, { x: 1 }));
    expect(a.stats()).toMatchObject({ openWindows: 3, devices: 1, partitions: 1 });
    a.dropPartition(0);
    expect(a.stats()).toMatchObject({ openWindows: 0, devices: 0, partitions: 0 });
    expect(a.drain().windows).toHaveLength(0);
    a.assignPartition(0);
    expect(a.safeCommitOffset(0)).toBeNull();
  });
});

describe('replay and restart', () => {
  it('marks windows up to the one holding a device’s first event of a range incomplete', () => {
    const a = new WindowAggregator({ resolutions: ['1s', '10s'] });
    a.assignPartition(0, { kind: 'range' });
    feed(a, ev('d', T0 + 1500, { x: 1 }), ev('d', T0 + 800, { x: 1 }), ev('d', T0 + 2500, { x: 1 }));
    feed(a, ev('d', T0 + 30_000, { x: 1 }));
    const flags = a.drain().windows.map((w) => [w.resolution, w.windowStart - T0, w.complete]);
    expect(flags).toEqual([
      ['1s', 0, false],
      ['1s', 1000, false],
      ['1s', 2000, true],
      ['10s', 0, false],
    ]);
    feed(a, ev('d', T0 + 45_000, { x: 1 }));
    expect(a.drain().windows.map((w) => w.complete)).toEqual([true, true]);
  });

  it('flushes open windows as incomplete and closes them', () => {
    const a = agg({ resolutions: ['1s'] });
    feed(a, ev('d', T0, { x: 1 }));
    a.flush(0);
    expect(a.drain().windows.map((w) => [w.reason, w.complete])).toEqual([['flush', false]]);
    feed(a, ev('d', T0 + 1, { x: 1 }));
    expect(a.drain().late).toHaveLength(1);
  });

  it('resumes exactly from a checkpoint', () => {
    const events = [
      ev('a', T0 + 100, { x: 1 }, 1),
      ev('b', T0 + 200, { x: 2 }, 1),
      ev('a', T0 + 4000, { x: 3 }, 2),
      ev('a', T0 + 300, { x: 4 }, 3), // late for 1s
      ev('b', T0 + 1200, { x: 5 }, 2),
      ev('a', T0 + 4000, { x: 3 }, 2), // retry
      ev('a', T0 + 15_000, { x: 6 }, 4),
      ev('b', T0 + 16_000, { x: 7 }, 3),
    ];
    const whole = agg({ resolutions: ['1s', '10s'] });
    events.forEach((e, i) => whole.ingest(0, String(i), e));
    const expected = whole.drain();
    for (let cut = 0; cut <= events.length; cut++) {
      const store = new MemoryStateStore();
      const first = agg({ resolutions: ['1s', '10s'] });
      // Incremental checkpoints along the way: each stores only the devices changed since the previous one.
      events.slice(0, cut).forEach((e, i) => {
        first.ingest(0, String(i), e);
        if (i % 3 === 1) store.checkpoint(first, 0);
      });
      const before = first.drain();
      const cp = store.checkpoint(first, 0);
      const second = new WindowAggregator({ resolutions: ['1s', '10s'] });
      second.assignPartition(0, { kind: 'resume', checkpoint: store.headers.get(0)! });
      const from = cp.commitOffset === null ? 0 : Number(cp.commitOffset);
      events.slice(from).forEach((e, i) => store.ingest(second, 0, String(from + i), e));
      const after = second.drain();
      expect([...before.windows, ...after.windows].map((w) => w.toJSON())).toEqual(
        expected.windows.map((w) => w.toJSON()),
      );
      expect([...before.late, ...after.late]).toEqual(expected.late);
    }
  });

  it('still resumes from a v1 checkpoint (every device in one value), and stores them all at the next one', () => {
    const v1: PartitionCheckpoint = {
      v: 1,
      resolutions: ['1s'],
      allowedLatenessMs: 2000,
      idleTimeoutMs: 5000,
      commitOffset: '5',
      throughOffset: '5',
      processingTime: T0,
      devices: [['a', T0 + 9000, T0, null, T0 + 7000]],
    };
    const a = new WindowAggregator({ resolutions: ['1s'] });
    a.assignPartition(0, { kind: 'resume', checkpoint: v1 });
    a.ingest(0, '5', ev('a', T0 + 6500, { x: 1 })); // already seen: silent
    a.ingest(0, '6', ev('a', T0 + 6600, { x: 1 })); // below the frontier: late
    expect(a.drain().late.map((l) => l.offset)).toEqual(['6']);
    const cp = a.checkpoint(0);
    expect(cp.v).toBe(2);
    expect(cp.devices.map((d) => d[0])).toEqual(['a']);
  });

  it('refuses a checkpoint of another configuration', () => {
    const cp = agg().checkpoint(0);
    const a = new WindowAggregator({ resolutions: ['1s'] });
    expect(() => a.assignPartition(0, { kind: 'resume', checkpoint: cp })).toThrow(/configuration/);
  });
});

describe('bounded state', () => {
  it('a checkpoint lists only the devices changed since the previous one', () => {
    const a = agg({ resolutions: ['1s'] });
    feed(a, ev('a', T0, { x: 1 }), ev('b', T0, { x: 1 }));
    expect(a.checkpoint(0).devices.map((d) => d[0])).toEqual(['a', 'b']);
    feed(a, ev('b', T0 + 10, { x: 2 }));
    expect(a.checkpoint(0).devices.map((d) => d[0])).toEqual(['b']);
    expect(a.checkpoint(0).devices).toEqual([]);
  });

  it('quiet devices beyond maxQuietDevices leave memory once stored, and come back with the same results', () => {
    const store = new MemoryStateStore();
    const a = agg({ resolutions: ['1s', '10s'], maxQuietDevices: 4 });
    const whole = agg({ resolutions: ['1s', '10s'] });
    const both = (e: TelemetryEvent) => {
      const o = String(offset++);
      store.ingest(a, 0, o, e);
      whole.ingest(0, o, e);
    };
    for (let d = 0; d < 5; d++) both(ev(`d${d}`, T0 + 500, { x: d }, 1, T0));
    // Everyone idle: windows close, devices go quiet.
    a.advanceProcessingTime(0, T0 + 60_000);
    whole.advanceProcessingTime(0, T0 + 60_000);
    store.checkpoint(a, 0);
    expect(a.stats().devices).toBe(3); // 5 quiet, 4 allowed: the longest quiet leave, down to 3/4 of the limit
    expect(a.stats().evicted).toBe(2);
    // They return: one inside its written 10 s window (late), one retrying a seq, one new window.
    both(ev('d0', T0 + 900, { x: 9 }, 2, T0 + 61_000));
    both(ev('d1', T0 + 500, { x: 1 }, 1, T0 + 61_000));
    both(ev('d2', T0 + 20_000, { x: 2 }, 2, T0 + 61_000));
    const got = a.drain();
    const want = whole.drain();
    expect(got.windows.map((w) => w.toJSON())).toEqual(want.windows.map((w) => w.toJSON()));
    expect(got.late).toEqual(want.late);
    expect(got.late.length).toBeGreaterThan(0);
    expect(a.stats().restored).toBe(2); // d0 and d1 (d2 was still in memory)
    expect(a.stats().evicted).toBe(2);
  });

  it('never evicts a device whose state is not stored yet, or that has open windows', () => {
    const store = new MemoryStateStore();
    const a = agg({ resolutions: ['1s'], maxQuietDevices: 0 });
    feed(a, ev('open', T0, { x: 1 }, undefined, T0));
    a.advanceProcessingTime(0, T0 + 3000); // not idle yet: still open
    store.checkpoint(a, 0);
    expect(a.stats().devices).toBe(1);
    a.advanceProcessingTime(0, T0 + 6000); // idle now: quiet, but changed since the checkpoint
    a.persisted(0, 1);
    expect(a.stats().devices).toBe(1);
    store.checkpoint(a, 0);
    expect(a.stats().devices).toBe(0);
  });
});

describe('metric names per device', () => {
  it('refuses an event that would add a name past the limit, and folds the device’s other events', () => {
    const a = agg({ resolutions: ['1s'], maxMetricsPerDevice: 2 });
    feed(a, ev('d', T0, { x: 1, y: 2 }), ev('d', T0 + 1, { z: 3 }), ev('d', T0 + 2, { x: 5 }), ev('e', T0, { z: 1 }));
    const out = a.drain();
    expect(out.rejected.map((r) => [r.offset, r.event.deviceId])).toEqual([['1', 'd']]);
    expect(out.rejected[0]!.reason).toMatch(/metrics\.z: device d already has 2 distinct metric names.*limit 2/);
    a.flush(0);
    const rows = a.drain().windows.flatMap((w) => w.rows);
    expect(rows.filter((r) => r.deviceId === 'd').map((r) => [r.metric, r.count])).toEqual([
      ['x', 2],
      ['y', 1],
    ]);
    expect(a.stats().rejected).toBe(1);
  });

  it('counts the names of a device’s open windows: once they all closed, new names are welcome', () => {
    const a = agg({ resolutions: ['1s'], maxMetricsPerDevice: 1, idleTimeoutMs: 1000 });
    feed(a, ev('d', T0, { x: 1 }, undefined, T0));
    a.advanceProcessingTime(0, T0 + 2000);
    feed(a, ev('d', T0 + 5000, { y: 1 }, undefined, T0 + 2000));
    expect(a.drain().rejected).toEqual([]);
  });

  it('a flood of distinct names over many devices keeps the shared layouts bounded', () => {
    const a = agg({ resolutions: ['1s'], idleTimeoutMs: 1000, maxQuietDevices: 0 });
    const store = new MemoryStateStore();
    for (let i = 0; i < 40_000; i++) {
      store.ingest(a, 0, String(offset++), ev(`d${i % 1000}`, T0 + i, { [`m${i}`]: 1 }, undefined, T0 + i));
      if (i % 5000 === 0) store.checkpoint(a, 0);
    }
    // 40,000 distinct name sequences were seen; only those of resident devices are kept.
    expect(a.stats().layouts).toBeLessThanOrEqual(1 << 15);
  });
});

describe('provisional snapshots (liveSnapshots)', () => {
  it('gives each changed device its finest open window once, as a provisional record, until it changes again', () => {
    const a = agg({ liveSnapshots: true });
    feed(a, ev('a', T0 + 100, { temp: 1 }), ev('b', T0 + 200, { temp: 5 }), ev('a', T0 + 300, { temp: 3, hum: 9 }));
    const first = a.takeLive();
    expect(first.map((w) => [w.deviceId, w.resolution, w.windowStart, w.windowEnd, w.final, w.reason])).toEqual([
      ['a', '1s', T0, T0 + 1000, false, 'snapshot'],
      ['b', '1s', T0, T0 + 1000, false, 'snapshot'],
    ]);
    const rec = JSON.parse(first[0]!.recordJson()) as { final: boolean; metrics: Record<string, { count: number }> };
    expect(rec).toEqual(first[0]!.record());
    expect(rec.final).toBe(false);
    expect(rec.metrics.temp!.count).toBe(2);
    expect(Object.keys(rec.metrics)).toEqual(['temp', 'hum']);
    expect(a.takeLive()).toEqual([]);
    feed(a, ev('b', T0 + 400, { temp: 7 }));
    expect(a.takeLive().map((w) => [w.deviceId, w.metricCount, w.stat(0, 'count')])).toEqual([['b', 1, 2]]);
    // The snapshot is a copy: the window folds on, and closes with every event.
    feed(a, ev('b', T0 + 4000, { temp: 1 }));
    const closed = find(a.drain().windows, 'b', '1s', T0)!;
    expect([closed.final, closed.stat(0, 'count')]).toEqual([true, 2]);
    expect(a.takeLive().map((w) => [w.deviceId, w.windowStart])).toEqual([['b', T0 + 4000]]);
  });

  it('takes at most max, the rest at the next call; nothing for a device whose windows all closed', () => {
    const a = agg({ liveSnapshots: true });
    feed(a, ev('a', T0, { x: 1 }), ev('b', T0, { x: 1 }), ev('c', T0, { x: 1 }));
    expect(a.takeLive(2).map((w) => w.deviceId)).toEqual(['a', 'b']);
    a.flush(0);
    expect(a.takeLive()).toEqual([]);
  });

  it('keeps no list when off', () => {
    const a = agg();
    feed(a, ev('a', T0, { x: 1 }));
    expect(a.takeLive()).toEqual([]);
  });
});

describe('decodeRecordValue', () => {
  it('accepts one event or an array of one device’s events', () => {
    const e = { deviceId: 'd', ts: T0, metrics: { x: 1 }, seq: 1, receivedAt: T0 };
    expect(decodeRecordValue(JSON.stringify(e))).toEqual([e]);
    expect(decodeRecordValue(Buffer.from(JSON.stringify([e, e])))).toHaveLength(2);
  });

  it.each([
    ['{', /not JSON/],
    ['[]', /empty/],
    ['{"deviceId":"d","ts":"1","metrics":{"x":1}}', /ts/],
    ['{"deviceId":"d","ts":1,"metrics":{"x":"1"}}', /metrics.x/],
    ['{"deviceId":"d","ts":1,"metrics":{}}', /at least one/],
    ['{"deviceId":"d","ts":1,"metrics":{"x":1},"seq":1.5}', /seq/],
    ['[{"deviceId":"d","ts":1,"metrics":{"x":1}},{"deviceId":"e","ts":1,"metrics":{"x":1}}]', /mixes/],
  ])('rejects %s', (text, message) => {
    expect(() => decodeRecordValue(text)).toThrow(InvalidRecordError);
    expect(() => decodeRecordValue(text)).toThrow(message);
  });
});
