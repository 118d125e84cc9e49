/**
 * Parser benchmark: the native addon (parse + validate + encode Kafka values) against the TypeScript fallback
 * and against a bare `JSON.parse` of the same body, on one thread. Payloads are deterministic: batches of
 * `batchSize` events from 50 devices with the simulator's four metrics. A one-event JSON body is the event object
 * alone, as a device sends a single reading.
 */
import { fallbackParseTelemetry, nativeParseTelemetry } from '@fleetpulse/native';
import type { ParseOptions, ParseTelemetry } from '@fleetpulse/native';
import { mulberry32 } from '@fleetpulse/runtime';

export interface BenchParseOptions {
  /** Events per body (default 500). */
  batchSize?: number;
  /** Distinct bodies cycled through (default 16), so one body's branch pattern is not all that is measured. */
  bodies?: number;
  /** `json` (an array) or `ndjson` (default `json`). */
  contentType?: 'json' | 'ndjson';
  /** Parse with groupByDevice (default false: one record per event). */
  groupByDevice?: boolean;
  /** Timed runs per parser; the median is reported (default 5). */
  runs?: number;
  /** Length of each timed run in ms (default 1000). */
  runMs?: number;
  /** Untimed warm-up per parser in ms (default 500). */
  warmupMs?: number;
  /** Another build's native parse (e.g. an earlier commit's addon), run interleaved with this one's. */
  baselineNative?: ParseTelemetry;
}

export interface Result {
  parser: 'native' | 'native (baseline)' | 'fallback' | 'JSON.parse';
  contentType: 'json' | 'ndjson';
  groupByDevice: boolean;
  /** Median over runs, MB = 1e6 bytes of request body. */
  mbPerSec: number;
  /** Median over runs. */
  eventsPerSec: number;
  /** MB/s of every run, in order. */
  runsMbPerSec: number[];
  bytesPerBody: number;
  eventsPerBody: number;
}

const NOW = 1763803200000;

const round = (v: number, digits: number): number => Number(v.toFixed(digits));

/** Deterministic bodies of `batchSize` realistic events each. */
/** `now`: event times sit in the minute before it (the service benchmark passes the wall clock: ingestion bounds ts). */
export function benchPayloads(batchSize: number, bodies: number, contentType: 'json' | 'ndjson', now = NOW): Buffer[] {
  const rand = mulberry32(42);
  const seq = new Array<number>(50).fill(0);
  return Array.from({ length: bodies }, (_, b) => {
    const events = Array.from({ length: batchSize }, (_, i) => {
      const d = Math.floor(rand() * 50);
      seq[d]!++;
      return JSON.stringify({
        deviceId: `sensor-${d}`,
        ts: now - 60_000 + b * batchSize + i,
        metrics: {
          temp: round(18 + rand() * 12, 2),
          humidity: round(30 + rand() * 30, 1),
          vib: round(0.01 + rand() * 0.5, 3),
          volt: round(3.2 + rand() * 0.2, 3),
        },
        seq: seq[d],
      });
    });
    return Buffer.from(contentType === 'json' ? `[${events.join(',')}]` : events.join('\n') + '\n', 'utf8');
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Calls `fn` on the bodies in turn for about `ms`; returns [bodies parsed, seconds]. */
function timed(bodies: Buffer[], ms: number, fn: (b: Buffer) => unknown): [number, number] {
  const start = process.hrtime.bigint();
  const limit = BigInt(ms) * 1_000_000n;
  let n = 0;
  let sink = 0;
  for (;;) {
    // Check the clock every 16 bodies so reading it costs nothing measurable.
    for (let k = 0; k < 16; k++) {
      const r = fn(bodies[n % bodies.length]!);
      if (r !== undefined) sink++;
      n++;
    }
    const elapsed = process.hrtime.bigint() - start;
    if (elapsed >= limit) {
      if (sink < 0) console.log(sink); // keeps the results observable to the optimiser
      return [n, Number(elapsed) / 1e9];
    }
  }
}

export async function benchParse(opts: BenchParseOptions = {}): Promise<Result[]> {
  const batchSize = opts.batchSize ?? 500;
  const contentType = opts.contentType ?? 'json';
  const groupByDevice = opts.groupByDevice ?? false;
  const runs = opts.runs ?? 5;
  const runMs = opts.runMs ?? 1000;
  const warmupMs = opts.warmupMs ?? 500;
  const bodies = benchPayloads(batchSize, opts.bodies ?? 16, contentType).map((b) =>
    batchSize === 1 && contentType === 'json' ? b.subarray(1, b.length - 1) : b,
  );
  const bytes = bodies.reduce((n, b) => n + b.length, 0) / bodies.length;
  const parseOpts: ParseOptions = {
    contentType,
    receivedAt: NOW,
    nowMs: NOW,
    maxFutureMs: 300_000,
    maxPastMs: 30 * 86_400_000,
    maxEvents: 10_000,
    groupByDevice,
  };
  const jsonParse =
    contentType === 'json'
      ? (b: Buffer) => JSON.parse(b.toString('utf8')) as unknown
      : (b: Buffer) =>
          b
            .toString('utf8')
            .split('\n')
            .filter((l) => l.length > 0)
            .map((l) => JSON.parse(l) as unknown);
  const parsers: [Result['parser'], (b: Buffer) => unknown][] = [];
  if (nativeParseTelemetry !== undefined) {
    const native = nativeParseTelemetry;
    parsers.push(['native', (b) => native(b, parseOpts)]);
  }
  const baseline = opts.baselineNative;
  if (baseline !== undefined) parsers.push(['native (baseline)', (b) => baseline(b, parseOpts)]);
  parsers.push(['fallback', (b) => fallbackParseTelemetry(b, parseOpts)]);
  parsers.push(['JSON.parse', jsonParse]);

  // Every parser must accept every event, or the comparison would be meaningless.
  for (const b of bodies) {
    for (const parse of [nativeParseTelemetry, baseline, fallbackParseTelemetry]) {
      const r = parse?.(b, parseOpts);
      if (r !== undefined && r.accepted !== batchSize)
        throw new Error(`benchmark payload rejected: ${JSON.stringify(r.rejected[0])}`);
    }
  }

  // Runs are interleaved (native, fallback, JSON.parse, native, ...) so that load from other processes on the
  // machine hits every parser alike; each parser is warmed up first.
  for (const [, fn] of parsers) timed(bodies, warmupMs, fn);
  const mbs = parsers.map((): number[] => []);
  const eps = parsers.map((): number[] => []);
  for (let r = 0; r < runs; r++) {
    for (const [i, [, fn]] of parsers.entries()) {
      const [n, secs] = timed(bodies, runMs, fn);
      mbs[i]!.push((n * bytes) / secs / 1e6);
      eps[i]!.push((n * batchSize) / secs);
      // Let timers and GC breathe between runs, as a server would between requests.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  const results: Result[] = parsers.map(([parser], i) => ({
    parser,
    contentType,
    groupByDevice,
    mbPerSec: median(mbs[i]!),
    eventsPerSec: median(eps[i]!),
    runsMbPerSec: mbs[i]!,
    bytesPerBody: bytes,
    eventsPerBody: batchSize,
  }));
  return results;
}
