import fc from 'fast-check';
import type { TelemetryEvent } from '@fleetpulse/contracts';
import { windowStart, resolutionMs } from '@fleetpulse/contracts';
import { WindowAggregator, type ClosedWindow, type LateEvent } from './index';
import { ReferenceAggregator, sortWindows, type Op } from './reference.test-util';
import { MemoryStateStore } from './state-store.test-util';

const T0 = 1_763_803_200_000;

interface Setup {
  resolutions: string[];
  lateness: number;
  idle: number;
}

const setupArb: fc.Arbitrary<Setup> = fc.record({
  resolutions: fc.constantFrom(['1s', '10s', '60s'], ['1s', '2s'], ['2s', '5s', '1s'], ['3s']),
  lateness: fc.constantFrom(0, 500, 2000, 3500),
  idle: fc.constantFrom(1000, 2500, 5000),
});

/** One step of a random stream; `build` turns a list of them into Kafka-like records and clock advances. */
interface Step {
  kind: number;
  dev: number;
  part: number;
  dt: number;
  back: number;
  mask: number;
  a: number;
  b: number;
  c: number;
  skew: number;
}

const stepArb: fc.Arbitrary<Step> = fc.record({
  kind: fc.nat({ max: 99 }),
  dev: fc.nat({ max: 4 }),
  part: fc.nat({ max: 1 }),
  dt: fc.nat({ max: 1600 }),
  back: fc.nat({ max: 4000 }),
  mask: fc.integer({ min: 1, max: 7 }),
  a: fc.integer({ min: -5000, max: 5000 }),
  b: fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }),
  c: fc.integer({ min: 0, max: 3 }),
  skew: fc.oneof(fc.nat({ max: 800 }), fc.nat({ max: 9000 })),
});

/**
 * A stream over two partitions and up to five devices: mostly in-order events with jitter, out-of-order and very
 * late ones, retries (same seq and ts, later receivedAt), events without seq, array records, idle gaps, receivedAt
 * that goes back a little, and caller clock advances.
 */
function build(steps: readonly Step[]): Op[] {
  const ops: Op[] = [];
  const nextOffset = [0, 0];
  const recv = [T0 + 50, T0 + 50];
  const clock = new Map<string, number>();
  const seqOf = new Map<string, number>();
  const sent = new Map<string, TelemetryEvent[]>();
  const metricNames = ['temp', 'hum', 'volt'];
  for (const s of steps) {
    const p = s.part;
    const deviceId = `dev-${s.dev}.${p}`; // a device lives on one partition
    const makeEvent = (ts: number, withSeq: boolean): TelemetryEvent => {
      const metrics: Record<string, number> = {};
      metricNames.forEach((m, i) => {
        if (s.mask & (1 << i)) metrics[m] = i === 0 ? s.a / 10 : i === 1 ? s.b : s.a * 0.37 + s.c;
      });
      const e: TelemetryEvent = { deviceId, ts, metrics, receivedAt: recv[p]! - (s.kind % 7 === 0 ? s.skew : 0) };
      if (withSeq) {
        const q = (seqOf.get(deviceId) ?? 0) + 1;
        seqOf.set(deviceId, q);
        e.seq = q;
      }
      const list = sent.get(deviceId) ?? [];
      list.push(e);
      sent.set(deviceId, list);
      return e;
    };
    const record = (value: TelemetryEvent | TelemetryEvent[]) =>
      ops.push({ kind: 'record', partition: p, offset: String(nextOffset[p]!++), value });
    recv[p]! += s.dt % 400;
    const cursor = (clock.get(deviceId) ?? T0 + ((s.dev * 337) % 5000)) + s.dt;
    if (s.kind < 50) {
      clock.set(deviceId, cursor);
      record(makeEvent(cursor, s.kind % 5 !== 0));
    } else if (s.kind < 62) {
      record(makeEvent(cursor - s.back, true)); // out of order
    } else if (s.kind < 72) {
      const prev = sent.get(deviceId);
      const orig = prev?.[s.c % prev.length];
      if (orig) record({ ...orig, receivedAt: recv[p] }); // retry
    } else if (s.kind < 78) {
      clock.set(deviceId, cursor + 1200);
      record([makeEvent(cursor, true), makeEvent(cursor - 300, true), makeEvent(cursor + 1200, true)]);
    } else if (s.kind < 84) {
      record(makeEvent(cursor - 20_000 - s.back * 5, true)); // very late
    } else if (s.kind < 90) {
      recv[p]! += 2000 + s.back * 2; // idle gap
    } else if (s.kind < 97) {
      ops.push({ kind: 'advance', partition: p, ms: recv[p]! + s.back - 1500 });
    } else {
      clock.set(deviceId, cursor + 90_000); // device jumps ahead
      record(makeEvent(cursor + 90_000, true));
    }
  }
  return ops;
}

function run(agg: WindowAggregator, op: Op): void {
  if (op.kind === 'record') agg.ingest(op.partition, op.offset, op.value);
  else if (op.kind === 'advance') agg.advanceProcessingTime(op.partition, op.ms);
  else agg.flush(op.partition);
}

function lateKey(l: LateEvent) {
  return { partition: l.partition, offset: l.offset, event: l.event, missed: l.missed };
}

function configOf(s: Setup) {
  return { resolutions: s.resolutions, allowedLatenessMs: s.lateness, idleTimeoutMs: s.idle };
}

function newAgg(s: Setup): WindowAggregator {
  return new WindowAggregator(configOf(s));
}

const streamArb = fc.tuple(setupArb, fc.array(stepArb, { minLength: 1, maxLength: 160 }));
const runs = { numRuns: Number(process.env.FC_RUNS ?? 300) };

describe('WindowAggregator against the naive reference', () => {
  it('emits the same windows and late events at the same records, and the same safe commit offset', () => {
    fc.assert(
      fc.property(streamArb, fc.boolean(), ([setup, steps], flushAtEnd) => {
        const ops = build(steps);
        if (flushAtEnd) ops.push({ kind: 'flush', partition: 0 }, { kind: 'flush', partition: 1 });
        // Provisional snapshots are taken after every step: they must change nothing of the final results.
        const agg = new WindowAggregator({ ...configOf(setup), liveSnapshots: true });
        const ref = new ReferenceAggregator(setup.resolutions, setup.lateness, setup.idle);
        for (const p of [0, 1]) {
          agg.assignPartition(p);
          ref.assign(p);
        }
        /** Per device and window start: the counts of its latest snapshot, until its final record. */
        const provisional = new Map<string, number[]>();
        const finals = new Set<string>();
        const finest = [...setup.resolutions].sort((x, y) => resolutionMs(x) - resolutionMs(y))[0]!;
        const counts = (w: ClosedWindow) => Array.from({ length: w.metricCount }, (_, i) => w.stat(i, 'count'));
        for (const op of ops) {
          run(agg, op);
          const got = agg.drain();
          const want = ref.apply(op);
          expect(sortWindows(got.windows)).toEqual(sortWindows(want.windows));
          for (const w of got.windows.filter((x) => x.resolution === finest)) {
            const seen = provisional.get(`${w.deviceId}@${w.windowStart}`);
            // A final record holds at least what its window's snapshot held (events only add).
            if (seen) counts(w).forEach((n, i) => expect(n).toBeGreaterThanOrEqual(seen[i] ?? 0));
            provisional.delete(`${w.deviceId}@${w.windowStart}`);
            finals.add(`${w.deviceId}@${w.windowStart}`);
          }
          for (const w of agg.takeLive()) {
            expect([w.final, w.resolution]).toEqual([false, finest]);
            expect(finals.has(`${w.deviceId}@${w.windowStart}`)).toBe(false); // never a window already closed
            provisional.set(`${w.deviceId}@${w.windowStart}`, counts(w));
          }
          expect(got.late.map(lateKey)).toEqual(want.late.map(lateKey));
          expect(agg.safeCommitOffset(op.partition)).toBe(ref.safeCommitOffset(op.partition));
        }
        expect(agg.stats()).toMatchObject({
          events: ref.events,
          retries: ref.retries,
          late: ref.late,
          openWindows: ref.openWindows(),
        });
      }),
      runs,
    );
  });

  let restoredInAll = 0;
  it('restarting from incremental checkpoints at any point, with quiet devices out of memory, reproduces the uninterrupted run exactly', () => {
    fc.assert(
      fc.property(streamArb, fc.nat(), fc.nat({ max: 6 }), fc.boolean(), ([setup, steps], cutSeed, every, torn) => {
        const ops = build(steps);
        const whole = newAgg(setup);
        whole.assignPartition(0);
        whole.assignPartition(1);
        const perOp = ops.map((op) => {
          run(whole, op);
          return whole.drain();
        });
        const cut = cutSeed % (ops.length + 1);
        // First run: checkpoints every `every + 1` ops (through JSON, as to storage), every quiet device evicted once
        // stored and read back when it reports; it must match the uninterrupted run until it crashes after `cut` ops.
        const store = new MemoryStateStore();
        const first = new WindowAggregator({
          resolutions: setup.resolutions,
          allowedLatenessMs: setup.lateness,
          idleTimeoutMs: setup.idle,
          maxQuietDevices: 0,
        });
        first.assignPartition(0);
        first.assignPartition(1);
        ops.slice(0, cut).forEach((op, i) => {
          if (op.kind === 'record') store.ingest(first, op.partition, op.offset, op.value);
          else run(first, op);
          const out = first.drain();
          expect(sortWindows(out.windows)).toEqual(sortWindows(perOp[i]!.windows));
          expect(out.late.map(lateKey)).toEqual(perOp[i]!.late.map(lateKey));
          if (i % (every + 1) === every) for (const p of [0, 1]) store.checkpoint(first, p);
        });
        // The crash: a last checkpoint, possibly torn (device states stored, header not).
        for (const p of [0, 1]) store.checkpoint(first, p, { header: !torn });
        // Second run: Kafka re-delivers each partition from its committed offset; the caller's clock advances again.
        const second = newAgg(setup);
        for (const p of [0, 1]) {
          const header = store.headers.get(p);
          second.assignPartition(p, header ? { kind: 'resume', checkpoint: header } : { kind: 'beginning' });
        }
        const windows: ClosedWindow[] = [];
        const late: LateEvent[] = [];
        for (const op of ops) {
          const from = store.headers.get(op.partition)?.commitOffset ?? null;
          if (op.kind === 'record' && from !== null && BigInt(op.offset) < BigInt(from)) continue;
          if (op.kind === 'record') store.ingest(second, op.partition, op.offset, op.value);
          else run(second, op);
          const out = second.drain();
          windows.push(...out.windows);
          late.push(...out.late);
        }
        // Exactly what the uninterrupted run emitted after the crash; a partition without any stored header starts
        // over from its beginning and emits everything again (idempotent upserts).
        const since = (p: number) => (store.headers.has(p) ? perOp.slice(cut) : perOp);
        const expectedWindows = [0, 1].flatMap((p) =>
          since(p).flatMap((o) => o.windows.filter((w) => w.partition === p)),
        );
        const expectedLate = [0, 1].flatMap((p) => since(p).flatMap((o) => o.late.filter((l) => l.partition === p)));
        expect(sortWindows(windows)).toEqual(sortWindows(expectedWindows));
        const byPartition = (ls: LateEvent[]) =>
          [0, 1].flatMap((p) => ls.filter((l) => l.partition === p).map(lateKey));
        expect(byPartition(late)).toEqual(byPartition(expectedLate));
        expect(second.stats().openWindows).toBe(whole.stats().openWindows);
        restoredInAll += first.stats().restored + second.stats().restored;
      }),
      runs,
    );
    // The property is about devices read back from the store: make sure the streams made some leave and return.
    expect(restoredInAll).toBeGreaterThan(0);
  });

  it('a range run writes as complete only rows equal to the uninterrupted run’s, and all rows it can know', () => {
    fc.assert(
      fc.property(streamArb, fc.nat(), ([setup, steps], startSeed) => {
        // What the range rule assumes of the stream: receivedAt never goes back within a partition, and the caller's
        // clock never runs ahead of the next record's receivedAt (its safety margin).
        const ops = build(steps).filter((op) => op.kind === 'record');
        const high = [-Infinity, -Infinity];
        for (const op of ops) {
          if (op.kind !== 'record') continue;
          const events = Array.isArray(op.value) ? op.value : [op.value];
          op.value = events.map((e) => {
            high[op.partition] = Math.max(high[op.partition]!, e.receivedAt!);
            return { ...e, receivedAt: high[op.partition]! };
          });
        }
        const start = startSeed % (ops.length + 1);
        const whole = newAgg(setup);
        const range = newAgg(setup);
        for (const p of [0, 1]) {
          whole.assignPartition(p);
          range.assignPartition(p, { kind: 'range' });
        }
        const expected: ClosedWindow[] = [];
        const got: ClosedWindow[] = [];
        ops.forEach((op, i) => {
          run(whole, op);
          const out = whole.drain().windows;
          if (i >= start) {
            expected.push(...out);
            run(range, op);
            got.push(...range.drain().windows);
          }
        });
        // Per device: the first event time in the range, and whether an earlier record was newer (then the rule's
        // assumption does not hold for that device and it is left out).
        const firstTs = new Map<string, number>();
        const maxBefore = new Map<string, number>();
        ops.forEach((op, i) => {
          if (op.kind !== 'record') return;
          for (const e of op.value as TelemetryEvent[]) {
            if (i < start) maxBefore.set(e.deviceId, Math.max(maxBefore.get(e.deviceId) ?? -Infinity, e.ts));
            else if (!firstTs.has(e.deviceId)) firstTs.set(e.deviceId, e.ts);
          }
        });
        const ok = (d: string) => (maxBefore.get(d) ?? -Infinity) <= firstTs.get(d)!;
        const knowable = (w: ClosedWindow) => {
          const S = resolutionMs(w.resolution);
          return firstTs.has(w.deviceId) && w.windowStart >= windowStart(firstTs.get(w.deviceId)!, S) + S;
        };
        const complete = got.filter((w) => w.complete && ok(w.deviceId));
        expect(got.filter((w) => w.complete).every(knowable)).toBe(true);
        expect(sortWindows(complete).map(({ complete: _c, ...w }) => w)).toEqual(
          sortWindows(expected.filter((w) => ok(w.deviceId) && knowable(w))).map(({ complete: _c, ...w }) => w),
        );
      }),
      runs,
    );
  });
});
