import {
  createFleet,
  LateThresholdMs,
  MetricNames,
  PhysicalRange,
  type AnomalyTruth,
  type EventBatch,
  type FleetOptions,
  type SimEvent,
} from './fleet';
import { encodeBatch } from './encode';

const START = Date.UTC(2025, 10, 22, 6, 0, 0);
/** No transport impairments and no anomalies: the clean baseline tests add one effect to. */
const CLEAN: Partial<FleetOptions> = {
  outOfOrderRate: 0,
  lateRate: 0,
  retryRate: 0,
  dropoutRate: 0,
  metricDropoutRate: 0,
  offlineRate: 0,
  anomalyRate: 0,
};

function collect(options: FleetOptions): { batches: EventBatch[]; events: SimEvent[] } {
  const fleet = createFleet(options);
  const batches = [...fleet.batches()];
  return { batches, events: batches.filter((b) => !b.retry).flatMap((b) => b.events) };
}

/** Binomial bound: |observed - n p| within 5 standard deviations (plus 2 for tiny expectations). */
function expectRate(observed: number, n: number, p: number): void {
  const sd = Math.sqrt(n * p * (1 - p));
  expect(Math.abs(observed - n * p)).toBeLessThanOrEqual(5 * sd + 2);
}

describe('determinism', () => {
  const options: FleetOptions = { devices: 40, seed: 1234, start: START, maxEvents: 20_000, anomalyRate: 0.01 };

  it('gives the same batches and ground truth for the same seed and start', () => {
    const a = createFleet(options);
    const b = createFleet(options);
    expect(JSON.stringify([...a.batches()])).toEqual(JSON.stringify([...b.batches()]));
    expect(a.groundTruth()).toEqual(b.groundTruth());
    expect(a.groundTruth().length).toBeGreaterThan(0);
  });

  it('gives different events for another seed', () => {
    const a = collect(options).events;
    const b = collect({ ...options, seed: 1235 }).events;
    expect(JSON.stringify(a)).not.toEqual(JSON.stringify(b));
  });

  it('gives the same events whatever the batch size and number of lanes', () => {
    const key = (e: SimEvent): string => `${e.deviceId}/${e.seq}`;
    const sorted = (events: SimEvent[]): SimEvent[] => [...events].sort((x, y) => (key(x) < key(y) ? -1 : 1));
    const a = collect({ ...options, batchSize: 500, lanes: 1 }).events;
    const b = collect({ ...options, batchSize: 37, lanes: 7 }).events;
    expect(sorted(b)).toEqual(sorted(a));
  });

  it('shifts timestamps with the start time', () => {
    const a = collect({ ...options, ...CLEAN, maxEvents: 100 }).events;
    const b = collect({ ...options, ...CLEAN, maxEvents: 100, start: START + 3_600_000 }).events;
    expect(b.map((e) => e.ts - 3_600_000)).toEqual(a.map((e) => e.ts));
  });
});

describe('signals', () => {
  it('stay within physical ranges, with valid canonical events, even with many anomalies', () => {
    const { events } = collect({ devices: 100, seed: 7, start: START, maxEvents: 100_000, anomalyRate: 0.02 });
    expect(events).toHaveLength(100_000);
    // Plain checks in the hot loops: 100,000 expect() calls would take most of the test's time.
    const idPattern = /^[A-Za-z0-9._:-]{1,128}$/;
    for (const e of events) {
      const names = Object.keys(e.metrics);
      if (!idPattern.test(e.deviceId) || !Number.isInteger(e.ts) || !Number.isInteger(e.seq) || e.seq < 0)
        throw new Error(`not a canonical event: ${JSON.stringify(e)}`);
      if (names.length < 3) throw new Error(`more than one metric missing: ${JSON.stringify(e)}`);
      for (const name of names) {
        const v = e.metrics[name]!;
        const [lo, hi] = PhysicalRange[name as (typeof MetricNames)[number]];
        if (!(Number.isFinite(v) && v >= lo && v <= hi)) throw new Error(`${name}=${v} out of [${lo}, ${hi}]`);
      }
    }
  });

  it('follow a daily cycle: temperature warmer around the device peak than 12 hours away', () => {
    // One device, one reading a minute for two days; the cycle amplitude (1-5 °C) dwarfs noise and drift.
    const { events } = collect({
      devices: 1,
      rate: 1 / 60,
      seed: 3,
      start: START,
      durationMs: 2 * 86_400_000,
      ...CLEAN,
    });
    const temps = events.map((e) => e.metrics.temp!);
    const max = Math.max(...temps);
    const min = Math.min(...temps);
    expect(max - min).toBeGreaterThan(1.5);
  });

  it('encode to JSON and NDJSON bodies that parse back to the same events', () => {
    const { events } = collect({ devices: 5, seed: 2, start: START, maxEvents: 50 });
    expect(JSON.parse(encodeBatch(events, 'json').toString())).toEqual(events);
    const lines = encodeBatch(events, 'ndjson').toString().split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual(events);
  });
});

describe('anomaly ground truth', () => {
  const options: FleetOptions = {
    devices: 30,
    rate: 30,
    seed: 99,
    start: START,
    maxEvents: 150_000,
    ...CLEAN,
    anomalyRate: 0.005,
  };
  const fleet = createFleet(options);
  const events = [...fleet.batches()].flatMap((b) => b.events);
  const truth = fleet.groundTruth();
  const covering = new Map<string, AnomalyTruth[]>();
  for (const t of truth) covering.set(t.deviceId, [...(covering.get(t.deviceId) ?? []), t]);
  const find = (e: SimEvent): AnomalyTruth | undefined =>
    covering.get(e.deviceId)?.find((t) => e.ts >= t.startTs && e.ts <= t.endTs);
  const band = (e: SimEvent, m: (typeof MetricNames)[number]): [number, number] => fleet.normalBand(e.deviceId, m);

  it('injects every kind', () => {
    expect(new Set(truth.map((t) => t.kind))).toEqual(new Set(['spike', 'stuck', 'drift', 'vibburst']));
    expect(fleet.stats.anomalies).toBe(truth.length);
  });

  it('leaves every reading outside the truth ranges inside its normal band', () => {
    let checked = 0;
    for (const e of events) {
      if (find(e)) continue;
      for (const m of MetricNames) {
        const [lo, hi] = band(e, m);
        const v = e.metrics[m]!;
        if (!(v >= lo && v <= hi))
          throw new Error(`${e.deviceId}@${e.ts} ${m}=${v} outside [${lo}, ${hi}] with no anomaly`);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(300_000);
  });

  it('makes the affected metric abnormal during the range, as each kind says', () => {
    const inRange = new Map<number, SimEvent[]>();
    for (const e of events) {
      const t = find(e);
      if (t) inRange.set(t.id, [...(inRange.get(t.id) ?? []), e]);
    }
    for (const t of truth) {
      const evs = inRange.get(t.id) ?? [];
      expect(evs).toHaveLength(t.readings);
      expect(evs[0]!.ts).toBe(t.startTs);
      expect(evs[evs.length - 1]!.ts).toBe(t.endTs);
      const m = t.metrics[0]!;
      // Anomalies still running when generation stopped are cut at the last reading; they can be shorter.
      const completed = fleet.truth.includes(t);
      const values = evs.map((e) => e.metrics[m]!);
      const outside = (e: SimEvent): boolean => {
        const [lo, hi] = band(e, m);
        return e.metrics[m]! < lo || e.metrics[m]! > hi;
      };
      switch (t.kind) {
        case 'spike':
        case 'vibburst':
          for (const e of evs) expect(outside(e)).toBe(true);
          break;
        case 'stuck':
          if (completed) expect(t.readings).toBeGreaterThanOrEqual(5);
          expect(new Set(values)).toEqual(new Set([t.magnitude]));
          break;
        case 'drift':
          if (completed) expect(t.readings).toBeGreaterThanOrEqual(10);
          // A ramp: starts inside the band, the last reading of a completed drift is outside it.
          expect(outside(evs[0]!)).toBe(false);
          if (completed) expect(outside(evs[evs.length - 1]!)).toBe(true);
          break;
      }
    }
  });

  it('does not overlap anomalies on one device', () => {
    for (const list of covering.values())
      for (let i = 1; i < list.length; i++) expect(list[i]!.startTs).toBeGreaterThan(list[i - 1]!.endTs);
  });
});

describe('offline periods', () => {
  const fleet = createFleet({
    devices: 20,
    seed: 5,
    start: START,
    maxEvents: 40_000,
    ...CLEAN,
    offlineRate: 0.002,
    offlineDurationMs: 30_000,
  });
  const batches = [...fleet.batches()];

  it('upload the backlog in order, with the original timestamps, after the device is back', () => {
    expect(fleet.stats.offlinePeriods).toBeGreaterThan(10);
    expect(fleet.stats.backlogEvents).toBeGreaterThan(1000);
    const last = new Map<string, SimEvent>();
    let delayed = 0;
    for (const b of batches)
      for (const e of b.events) {
        const prev = last.get(e.deviceId);
        // No dropouts configured: seq is contiguous, and time only moves forward.
        if (prev && (e.seq !== prev.seq + 1 || e.ts <= prev.ts))
          throw new Error(`${e.deviceId}: seq ${e.seq}@${e.ts} after seq ${prev.seq}@${prev.ts}`);
        last.set(e.deviceId, e);
        // The original timestamp: the device's reading schedule, not the time of the upload.
        const index = fleet.deviceIds.indexOf(e.deviceId);
        const scheduled = START + (e.seq + index / 20) * fleet.intervalMs;
        if (e.ts - scheduled < -0.5 || e.ts - scheduled > 50.5)
          throw new Error(`${e.deviceId} seq ${e.seq}: ts ${e.ts} is not its scheduled time ${scheduled}`);
        if (b.sendAt - e.ts > 14_000) delayed++;
      }
    expect(delayed).toBeGreaterThan(500);
    expect(fleet.stats.outOfOrder + fleet.stats.late).toBe(0);
  });
});

describe('impairment rates over a large sample', () => {
  const p = { outOfOrderRate: 0.01, lateRate: 0.001, retryRate: 0.02, dropoutRate: 0.002, metricDropoutRate: 0.003 };
  const fleet = createFleet({
    devices: 200,
    seed: 11,
    start: START,
    maxEvents: 300_000,
    batchSize: 100,
    ...CLEAN,
    ...p,
  });
  const batches = [...fleet.batches()];
  const events = batches.filter((b) => !b.retry).flatMap((b) => b.events);

  it('sends out-of-order and late events at the configured rates', () => {
    const newest = new Map<string, number>();
    let outOfOrder = 0;
    let late = 0;
    for (const e of events) {
      const max = newest.get(e.deviceId) ?? -Infinity;
      if (e.ts < max) {
        if (max - e.ts > LateThresholdMs) late++;
        else outOfOrder++;
      } else newest.set(e.deviceId, e.ts);
    }
    expect(outOfOrder).toBe(fleet.stats.outOfOrder);
    expect(late).toBe(fleet.stats.late);
    expectRate(outOfOrder, events.length, p.outOfOrderRate);
    expectRate(late, events.length, p.lateRate);
  });

  it('resends whole batches, unchanged, at the configured rate', () => {
    let retries = 0;
    for (let i = 0; i < batches.length; i++) {
      const b = batches[i]!;
      if (!b.retry) continue;
      retries++;
      const original = batches
        .slice(0, i)
        .reverse()
        .find((x) => x.lane === b.lane && !x.retry)!;
      expect(b.events).toBe(original.events);
    }
    expect(retries).toBe(fleet.stats.retryBatches);
    expectRate(retries, fleet.stats.batches, p.retryRate);
  });

  it('drops readings (seq gaps) and single metrics at the configured rates', () => {
    const seqs = new Map<string, number>();
    for (const e of events) seqs.set(e.deviceId, Math.max(seqs.get(e.deviceId) ?? -1, e.seq));
    const readings = [...seqs.values()].reduce((s, v) => s + v + 1, 0);
    const gaps = readings - events.length;
    expect(gaps).toBe(fleet.stats.dropped);
    expectRate(gaps, readings, p.dropoutRate);
    const partial = events.filter((e) => Object.keys(e.metrics).length < 4).length;
    expectRate(partial, events.length, p.metricDropoutRate);
  });
});

describe('limits', () => {
  it('emits exactly maxEvents readings, held and buffered ones included', () => {
    const { events } = collect({
      devices: 13,
      seed: 1,
      start: START,
      maxEvents: 12_345,
      offlineRate: 0.001,
      lateRate: 0.01,
    });
    expect(events).toHaveLength(12_345);
    expect(new Set(events.map((e) => `${e.deviceId}/${e.seq}`)).size).toBe(12_345);
  });

  it('on stop() flushes what devices hold (held-back readings, offline backlogs) and ends', () => {
    const fleet = createFleet({ devices: 50, seed: 2, start: START, offlineRate: 0.01, lateRate: 0.05 });
    const seen: SimEvent[] = [];
    for (const b of fleet.batches()) {
      if (!b.retry) seen.push(...b.events);
      if (fleet.stats.readings > 20_000) fleet.stop();
    }
    expect(seen.length).toBe(fleet.stats.readings - fleet.stats.dropped);
    expect(seen.length).toBe(fleet.stats.emitted);
  });

  it('stops at durationMs of event time', () => {
    const { events } = collect({ devices: 10, rate: 100, seed: 1, start: START, durationMs: 60_000, ...CLEAN });
    expect(events).toHaveLength(6000);
    for (const e of events) expect(e.ts).toBeLessThan(START + 60_000 + 50);
  });

  it('closes batches by event-time span so slow fleets send promptly', () => {
    const fleet = createFleet({ devices: 10, seed: 1, start: START, maxEvents: 1000, maxBatchSpanMs: 250, ...CLEAN });
    for (const b of fleet.batches()) expect(b.events.length).toBeLessThanOrEqual(3);
  });

  it('rejects options it cannot honour, listing every problem', () => {
    expect(() => createFleet({ devices: 0, rate: -1, outOfOrderRate: 2 })).toThrow(
      /devices must be.*rate must be.*outOfOrderRate must be/,
    );
    expect(() => createFleet({ devices: 1, rate: 5000 })).toThrow(/1000 readings\/s per device/);
  });
});
