/**
 * Scores/s of one model by each way the scoring bench compares (bench/README.md, "scoring"), every path timed the
 * same way: runs back to back for a few seconds, after a warm-up. What each path measures is said at its function;
 * the bench takes turns between them, round after round, and keeps every round so medians and spread can be told.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { WindowRecord } from '@fleetpulse/contracts';
import { Scorer, ScoringMetrics, type ModelRegistry, type RecordIn, type SessionHost } from '@fleetpulse/scoring';

/**
 * Figures of one path at one batch size over the rounds: scores/s (median, lowest, highest, each round's) and the
 * median CPU microseconds per score of the process that scores (python, in-process) or of the service's process and
 * its session host.
 */
export interface PathFigures {
  median: number;
  min: number;
  max: number;
  rounds: number[];
  cpuUsPerScore: { bench: number | null; host: number | null };
}

function median(values: readonly number[]): number | null {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length === 0 ? null : s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function figures(rounds: readonly Measured[]): PathFigures {
  const perSec = rounds.map((r) => r.perSec);
  const cpu = (v: number | null) => (v === null ? null : Math.round(v * 100) / 100);
  return {
    median: Math.round(median(perSec) ?? NaN),
    min: Math.round(Math.min(...perSec)),
    max: Math.round(Math.max(...perSec)),
    rounds: perSec.map(Math.round),
    cpuUsPerScore: {
      bench: cpu(median(rounds.map((r) => r.cpuUs.bench))),
      host: cpu(median(rounds.flatMap((r) => (r.cpuUs.host === null ? [] : [r.cpuUs.host])))),
    },
  };
}

/** What one path did at one batch size: scores/s, and CPU time per score of this process and of the session host. */
export interface Measured {
  perSec: number;
  /** Microseconds of CPU (all threads) per score: steadier than scores/s when other work shares the cores. */
  cpuUs: { bench: number; host: number | null };
}

/** CPU time of a process so far, microseconds (utime + stime from /proc; clock ticks of 10 ms). */
function cpuOfPid(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/**
 * Calls `run` for `seconds` after a warm-up, `rowsPerCall` rows each: rows/s, and CPU per row of this process and of
 * the session host whose pid `hostPid` gives (none: in-process).
 */
export async function timeLoop(
  seconds: number,
  rowsPerCall: number,
  run: () => Promise<unknown>,
  hostPid?: () => number | undefined,
): Promise<Measured> {
  for (let i = 0; i < 5; i++) await run();
  const pid = hostPid?.();
  const host0 = pid === undefined ? 0 : cpuOfPid(pid);
  const cpu0 = process.cpuUsage();
  let n = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    await run();
    n++;
  }
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const rows = n * rowsPerCall;
  return {
    perSec: rows / elapsed,
    cpuUs: {
      bench: (cpu.user + cpu.system) / rows,
      // A host replaced meanwhile (it is not, in these loops) would make the figure meaningless: then none.
      host: pid === undefined || hostPid?.() !== pid ? null : (cpuOfPid(pid) - host0) / rows,
    },
  };
}

/** `rows` rows of `width` features cut from the pool, repeated if it is shorter. */
export function tile(pool: Float32Array, width: number, rows: number): Float32Array {
  const out = new Float32Array(rows * width);
  for (let i = 0; i < rows * width; i += pool.length)
    out.set(pool.subarray(0, Math.min(pool.length, rows * width - i)), i);
  return out;
}

export interface PythonResult {
  ort: string;
  results: { batch: number; scoresPerSec: number; cpuUsPerScore: number }[];
}

/**
 * Python onnxruntime (scoring/train/bench_ort.py, its own process): `sess.run` of `batch` rows back to back, the
 * pool's rows (`poolFile`, the rows the service scores) in turn, one thread. Null (and logged) when it fails.
 */
export function pythonScoresPerSec(
  python: string,
  root: string,
  o: { model: string; batches: number[]; seconds: number; poolFile: string },
  log: (line: string) => void,
): PythonResult | null {
  const r = spawnSync(
    python,
    [
      join(root, 'scoring', 'train', 'bench_ort.py'),
      ...['--model', o.model, '--batches', o.batches.join(','), '--seconds', String(o.seconds), '--input', o.poolFile],
    ],
    { encoding: 'utf8' },
  );
  if (r.status === 0) return JSON.parse(r.stdout) as PythonResult;
  log(`python benchmark failed: ${r.stderr}`);
  return null;
}

/** onnxruntime-node in the bench's own process, `batch` rows a run: a reference, not what the service does. */
export function inProcess(
  session: ort.InferenceSession,
  x: Float32Array,
  batch: number,
  width: number,
  seconds: number,
) {
  return timeLoop(seconds, batch, () => session.run({ X: new ort.Tensor('float32', x, [batch, width]) }));
}

/**
 * The session host (child process) from this process, one run of `batch` rows per message, each awaited before the
 * next: what a step of `batch` records costs the service when records trickle in (a round trip per step).
 */
export function oneRunPerMessage(
  host: SessionHost,
  key: string,
  x: Float32Array,
  batch: number,
  width: number,
  seconds: number,
): Promise<Measured> {
  return timeLoop(
    seconds,
    batch,
    () => host.run(key, x, batch, width, 'scores'),
    () => host.pid,
  );
}

/**
 * The session host from this process as the Scorer sends a step: `rows` rows (already features) in messages of 256
 * rows or one run, whichever is more, all sent before the first answer is awaited, each cut into runs of `batch` rows
 * by the child. The model-run part of the service's path, comparable with Python's bare runs.
 */
export function stepMessages(
  host: SessionHost,
  key: string,
  x: Float32Array,
  rows: number,
  batch: number,
  width: number,
  seconds: number,
): Promise<Measured> {
  const messageRows = batch * Math.max(1, Math.floor(256 / batch));
  const parts: Float32Array[] = [];
  for (let i = 0; i < rows; i += messageRows)
    parts.push(x.subarray(i * width, Math.min(rows, i + messageRows) * width));
  return timeLoop(
    seconds,
    rows,
    async () => {
      const answers = parts.map((p) => host.score(key, p, p.length / width, width, 'scores', batch));
      for (const a of answers) if ((await a).failed.length > 0) throw new Error('a run failed');
    },
    () => host.pid,
  );
}

/**
 * The service's scoring path without Kafka: `Scorer.ingest` of steps of `records` (parsed final window records),
 * maxBatch `batch` (FLEETPULSE_SCORING_MAX_BATCH): feature rows filled, sent to the session host in messages of 256
 * rows or one run, scored there in runs of `batch` rows, answers turned into scores with their features, delivered
 * to a sink that drops them, offsets advanced; metrics counted as the service counts them.
 */
export async function scorerSteps(
  host: SessionHost,
  registry: ModelRegistry,
  records: readonly WindowRecord[],
  batch: number,
  seconds: number,
): Promise<Measured> {
  const metrics = new ScoringMetrics();
  const scorer = new Scorer(registry, { deliver: () => Promise.resolve() }, { maxBatch: batch, metrics });
  let offset = 0n;
  try {
    return await timeLoop(
      seconds,
      records.length,
      async () => {
        const step: RecordIn[] = records.map((record) => ({ partition: 0, offset: offset++, record }));
        const out = await scorer.locked(() => scorer.ingest(step));
        if (out.length !== records.length) throw new Error(`${out.length} scores for ${records.length} records`);
      },
      () => host.pid,
    );
  } finally {
    metrics.close();
  }
}
