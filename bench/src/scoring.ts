/**
 * Scoring benchmark (bench/README.md, "scoring"): the service's own scoring path next to Python onnxruntime on the same
 * model and machine (with onnxruntime-node in-process and the session host one run per message beside them), taking
 * turns round after round; rename-to-first-score of a swap, event-loop lag while scoring, and RSS over repeated swaps.
 *
 *   npx tsc -b scoring bench && node bench/dist/scoring.js [--seconds 2] [--rounds 5] [--swaps 100]
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import type { WindowRecord } from '@fleetpulse/contracts';
import { compileFeatures, fillVector, FolderWatcher, ModelRegistry, SessionHost } from '@fleetpulse/scoring';
import { simulateAggregates } from '@fleetpulse/scoring/testing';
import {
  figures,
  inProcess,
  oneRunPerMessage,
  stepMessages,
  pythonScoresPerSec,
  scorerSteps,
  tile,
  timeLoop,
  type Measured,
  type PathFigures,
} from './scoring-paths';

export interface BenchScoringOptions {
  /** Model to time. [scoring/models/iforest.onnx] */
  model?: string;
  /** A second model with the same features, swapped in. [scoring/fixtures/iforest-v2.onnx] */
  swapModel?: string;
  batches?: number[];
  /** Seconds per throughput measurement. [2] */
  seconds?: number;
  /** Python and the node paths take turns this many times; medians and spread over them. [5] */
  rounds?: number;
  /** Window records per Scorer step (about one 1 MiB partition fetch of ~660-byte records). [2048] */
  stepRecords?: number;
  /** Swaps for the RSS measurement. [100] */
  swaps?: number;
  /** Python with onnxruntime. [scoring/train/.venv/bin/python] */
  python?: string;
  log?: (line: string) => void;
}

/** One batch size (rows per onnxruntime run; the service's FLEETPULSE_SCORING_MAX_BATCH). Scores/s. */
export interface ThroughputRow {
  batch: number;
  /** Medians of the paths below, by the names bench/src/cli.ts prints. nodeSessionHost: the service's path. */
  nodeInProcess: number;
  nodeSessionHost: number;
  python: number | null;
  /** nodeSessionHost / python (medians): the service's path against Python. */
  ratio: number | null;
  /** service / python of each round (measured one after the other): median, lowest, highest. */
  roundRatios: { median: number; min: number; max: number } | null;
  paths: {
    /** The headline: Scorer.ingest of steps of window records through the session host (scoring-paths.ts). */
    service: PathFigures;
    /** The session host as the Scorer sends a step, rows already features (scoring-paths.ts, stepMessages). */
    stepMessages: PathFigures;
    /** The session host from the service's process, one run per message, awaited (a trickle of records). */
    oneRunPerMessage: PathFigures;
    /** onnxruntime-node in the bench's process (a reference; the service never scores in its own process). */
    inProcess: PathFigures;
    /** Python onnxruntime, sess.run back to back. */
    python: PathFigures | null;
  };
}

export interface BenchScoringResult {
  ort: { node: string; python: string | null };
  rounds: number;
  stepRecords: number;
  throughput: ThroughputRow[];
  /** rename of a new file -> its first score, ms (each trial). */
  swapToFirstScoreMs: number[];
  /** Event-loop delay while scoring batches of 1024 flat out, ms. */
  loopLag: {
    inProcess: { p50: number; p99: number; max: number };
    sessionHost: { p50: number; p99: number; max: number };
  };
  /** RSS over `swaps` create+release cycles, MiB. */
  rss: {
    swaps: number;
    inProcess: { before: number; after: number };
    sessionHost: { parentBefore: number; parentAfter: number; childAfter: number; childGenerations: number };
  };
}

const root = resolve(__dirname, '..', '..');
const mib = (b: number) => Math.round((b / 1048576) * 10) / 10;
const SessionOptions: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

/**
 * Realistic input: the simulator's final window records that the model can score (all its features present), and
 * their feature rows in the model's order, as float32, read the way the service reads them.
 */
function scorable(features: readonly string[], n: number): { records: WindowRecord[]; rows: Float32Array } {
  const sim = simulateAggregates({ devices: 40, durationMs: 40 * 60_000, seed: 5 });
  const compiled = compileFeatures(features);
  const rows = new Float32Array(n * features.length);
  const records: WindowRecord[] = [];
  for (const r of sim.records) {
    if (records.length === n) break;
    if (fillVector(r, compiled, rows, records.length * features.length) === null) records.push(r);
  }
  if (records.length < n) throw new Error(`the simulation gave ${records.length} scorable records, ${n} needed`);
  return { records, rows };
}

/** The throughput figures as a table with every path named for what it measures (also in the JSON). */
function throughputTable(rows: readonly ThroughputRow[], rounds: number, stepRecords: number): string {
  const f = (p: PathFigures | null) =>
    p === null
      ? 'n/a'
      : `${p.median.toLocaleString('en-US')} (${p.min.toLocaleString('en-US')}-${p.max.toLocaleString('en-US')})`;
  return [
    `scores/s, median (lowest-highest) of ${rounds} rounds; batch = rows per onnxruntime run (FLEETPULSE_SCORING_MAX_BATCH)`,
    `  service   = the service's path without Kafka: Scorer.ingest, steps of ${stepRecords} window records -> session host (child process)`,
    `  step msgs = the session host as the Scorer sends a step of ${stepRecords} rows (features already made): messages of 256 rows or one run`,
    `  1 run/msg = the session host from the service's process, one run per message, awaited (a trickle of records)`,
    `  in-proc   = onnxruntime-node in the bench's process (reference)`,
    `  python    = Python onnxruntime, sess.run back to back (scoring/train/bench_ort.py)`,
    `  cpu us/score = CPU time per score, median: the bench's process + the session host (service paths), or the one process`,
    ...rows.map(
      (r) =>
        `batch ${r.batch}: cpu us/score: ${(
          ['service', 'stepMessages', 'oneRunPerMessage', 'inProcess', 'python'] as const
        )
          .map((p) => {
            const c = r.paths[p]?.cpuUsPerScore;
            return `${p} ${c ? [c.bench, c.host].filter((v) => v !== null).join(' + ') : 'n/a'}`;
          })
          .join(', ')}`,
    ),
    ...rows.map(
      (r) =>
        `batch ${r.batch}: service ${f(r.paths.service)} | step msgs ${f(r.paths.stepMessages)} | ` +
        `1 run/msg ${f(r.paths.oneRunPerMessage)} | ` +
        `in-proc ${f(r.paths.inProcess)} | python ${f(r.paths.python)} | service/python ${r.ratio ?? 'n/a'} ` +
        `(by round: ${r.roundRatios ? `${r.roundRatios.median}, ${r.roundRatios.min}-${r.roundRatios.max}` : 'n/a'})`,
    ),
  ].join('\n');
}

async function withLoopLag(fn: () => Promise<unknown>): Promise<{ p50: number; p99: number; max: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  await fn();
  h.disable();
  return { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6 };
}

export async function benchScoring(opts: BenchScoringOptions = {}): Promise<BenchScoringResult> {
  const model = opts.model ?? join(root, 'scoring', 'models', 'iforest.onnx');
  const swapModel = opts.swapModel ?? join(root, 'scoring', 'fixtures', 'iforest-v2.onnx');
  const batches = opts.batches ?? [1, 64, 1024];
  const seconds = opts.seconds ?? 2;
  const swaps = opts.swaps ?? 100;
  const python = opts.python ?? join(root, 'scoring', 'train', '.venv', 'bin', 'python');
  const log = opts.log ?? (() => undefined);
  const sidecar = model.replace(/\.onnx$/, '.json');
  const features = (JSON.parse(readFileSync(sidecar, 'utf8')) as { features: string[] }).features;
  const width = features.length;
  const stepRecords = opts.stepRecords ?? 2048;
  const input = scorable(features, Math.max(stepRecords, 4096));
  const pool = input.rows;
  const step = input.records.slice(0, stepRecords);
  const stepRows = pool.subarray(0, stepRecords * width);
  const bytes = new Uint8Array(readFileSync(model));

  // Python and the node paths take turns, `rounds` times, the node paths in alternating order; every round is kept.
  // On a shared 2-core box whatever else runs then lands on every path alike, and the spread shows how much it did.
  const rounds = opts.rounds ?? 5;
  const poolFile = join(mkdtempSync(join(tmpdir(), 'bench-scoring-')), 'rows.f32');
  writeFileSync(poolFile, Buffer.from(pool.buffer, pool.byteOffset, pool.byteLength));
  const havePython = existsSync(python);
  if (!havePython) log(`no ${python}: run scoring/train/export.sh first; skipping Python`);

  const session = await ort.InferenceSession.create(bytes, SessionOptions);
  const host = new SessionHost({ intraOpThreads: 1, recycleAfterLoads: 25 });
  await host.load('bench', bytes);
  // The service's path: a registry of its own on the same host, the model loaded as the service loads it.
  const registry = new ModelRegistry(host, { dir: dirname(model) });
  if (!(await registry.upsert('bench', model, sidecar))) throw new Error(`${model} was rejected`);
  const runs = new Map<string, Measured[]>();
  const ratios = new Map<number, number[]>();
  const keep = (path: string, b: number, m: Measured) =>
    runs.set(`${path}@${b}`, [...(runs.get(`${path}@${b}`) ?? []), m]);
  let pyVersion: string | null = null;
  const pythonAt = async (b: number): Promise<Measured | null> => {
    const py = havePython ? pythonScoresPerSec(python, root, { model, batches: [b], seconds, poolFile }, log) : null;
    if (py) pyVersion = py.ort;
    const r = py?.results[0];
    return r ? { perSec: r.scoresPerSec, cpuUs: { bench: r.cpuUsPerScore, host: null } } : null;
  };
  for (let round = 0; round < rounds; round++) {
    for (const b of batches) {
      const x = tile(pool, width, b);
      // Python measured batch by batch between the node paths, so each round's service/python pair is close in time.
      const paths: [string, () => Promise<Measured | null>][] = [
        ['service', () => scorerSteps(host, registry, step, b, seconds)],
        ['python', () => pythonAt(b)],
        ['stepMessages', () => stepMessages(host, 'bench', stepRows, stepRecords, b, width, seconds)],
        ['oneRunPerMessage', () => oneRunPerMessage(host, 'bench', x, b, width, seconds)],
        ['inProcess', () => inProcess(session, x, b, width, seconds)],
      ];
      if (round % 2 === 1) paths.reverse();
      const got = new Map<string, Measured>();
      for (const [path, measure] of paths) {
        const m = await measure();
        if (m === null) continue;
        keep(path, b, m);
        got.set(path, m);
      }
      const [sv, py] = [got.get('service'), got.get('python')];
      if (sv && py) ratios.set(b, [...(ratios.get(b) ?? []), sv.perSec / py.perSec]);
      log(
        `round ${round + 1}/${rounds}, batch ${b}: ` +
          [...got].map(([p, m]) => `${p} ${Math.round(m.perSec)}`).join(', '),
      );
    }
  }
  rmSync(poolFile, { force: true });
  const throughput: ThroughputRow[] = batches.map((b) => {
    const of = (path: string) => figures(runs.get(`${path}@${b}`) ?? []);
    const py = runs.has(`python@${b}`) ? of('python') : null;
    const service = of('service');
    const byRound = [...(ratios.get(b) ?? [])].sort((x, y) => x - y);
    const r2 = (v: number) => Math.round(v * 100) / 100;
    return {
      batch: b,
      nodeInProcess: of('inProcess').median,
      nodeSessionHost: service.median,
      python: py?.median ?? null,
      ratio: py === null ? null : r2(service.median / py.median),
      roundRatios:
        byRound.length === 0
          ? null
          : { median: r2(byRound[byRound.length >> 1]!), min: r2(byRound[0]!), max: r2(byRound.at(-1)!) },
      paths: {
        service,
        stepMessages: of('stepMessages'),
        oneRunPerMessage: of('oneRunPerMessage'),
        inProcess: of('inProcess'),
        python: py,
      },
    };
  });
  log(throughputTable(throughput, rounds, stepRecords));

  const big = tile(pool, width, 1024);
  const lagIn = await withLoopLag(() =>
    timeLoop(seconds, 1024, () => session.run({ X: new ort.Tensor('float32', big, [1024, width]) })),
  );
  const lagHost = await withLoopLag(() => scorerSteps(host, registry, step, 1024, seconds));
  log(`loop lag in-process ${JSON.stringify(lagIn)}, service path ${JSON.stringify(lagHost)}`);
  await session.release();
  await registry.remove('bench');

  // Rename -> first score, through the service's watcher and registry, while a loop scores every 5 ms.
  const swapToFirstScoreMs: number[] = [];
  {
    const dir = mkdtempSync(join(tmpdir(), 'bench-swap-'));
    copyFileSync(model, join(dir, 'm.onnx'));
    copyFileSync(sidecar, join(dir, 'm.json'));
    const reg = new ModelRegistry(host, { dir });
    const w = new FolderWatcher(dir, {
      change: (name, f) => reg.upsert(name, f.onnx, f.sidecar),
      remove: (name) => reg.remove(name),
    });
    await w.start();
    const x = tile(pool, width, 64);
    for (let trial = 0; trial < 5; trial++) {
      const next = trial % 2 === 0 ? swapModel : model;
      const version = `bench-${trial}`;
      const spec = { ...(JSON.parse(readFileSync(sidecar, 'utf8')) as object), version };
      writeFileSync(join(dir, '.m.json.tmp'), JSON.stringify(spec));
      copyFileSync(next, join(dir, '.m.onnx.tmp'));
      const t0 = performance.now();
      renameSync(join(dir, '.m.json.tmp'), join(dir, 'm.json'));
      renameSync(join(dir, '.m.onnx.tmp'), join(dir, 'm.onnx'));
      for (;;) {
        const m = reg.snapshot().get('m')!;
        reg.acquire(m);
        try {
          await reg.run(m, x, 64);
        } finally {
          reg.release(m);
        }
        if (m.spec.version === version) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      swapToFirstScoreMs.push(Math.round(performance.now() - t0));
    }
    w.close();
    await reg.remove('m');
    rmSync(dir, { recursive: true, force: true });
    log(`rename -> first score: ${swapToFirstScoreMs.join(', ')} ms`);
  }

  // RSS over repeated swaps: in-process create/release, then the service's path (session host, recycled).
  const rssBefore = process.memoryUsage.rss();
  {
    let s = await ort.InferenceSession.create(bytes, SessionOptions);
    for (let i = 0; i < swaps; i++) {
      const n = await ort.InferenceSession.create(
        i % 2 ? bytes : new Uint8Array(readFileSync(swapModel)),
        SessionOptions,
      );
      await n.run({ X: new ort.Tensor('float32', big.subarray(0, width), [1, width]) });
      await s.release();
      s = n;
    }
    await s.release();
  }
  const rssAfter = process.memoryUsage.rss();
  const parentBefore = process.memoryUsage.rss();
  const v2 = new Uint8Array(readFileSync(swapModel));
  let key = 'bench';
  for (let i = 0; i < swaps; i++) {
    const k = `swap-${i}`;
    await host.load(k, i % 2 ? bytes : v2);
    await host.run(k, big.subarray(0, width), 1, width, 'scores');
    await host.release(key);
    key = k;
  }
  const childAfter = await host.childRss();
  const parentAfter = process.memoryUsage.rss();
  const generations = host.generations;
  await host.close();
  const result: BenchScoringResult = {
    ort: { node: ort.env.versions.node ?? '?', python: pyVersion },
    rounds,
    stepRecords,
    throughput,
    swapToFirstScoreMs,
    loopLag: { inProcess: lagIn, sessionHost: lagHost },
    rss: {
      swaps,
      inProcess: { before: mib(rssBefore), after: mib(rssAfter) },
      sessionHost: {
        parentBefore: mib(parentBefore),
        parentAfter: mib(parentAfter),
        childAfter: mib(childAfter),
        childGenerations: generations,
      },
    },
  };
  return result;
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string' },
      rounds: { type: 'string' },
      swaps: { type: 'string' },
      batches: { type: 'string' },
    },
  });
  benchScoring({
    ...(values.seconds !== undefined ? { seconds: Number(values.seconds) } : {}),
    ...(values.swaps !== undefined ? { swaps: Number(values.swaps) } : {}),
    ...(values.rounds !== undefined ? { rounds: Number(values.rounds) } : {}),
    ...(values.batches !== undefined ? { batches: values.batches.split(',').map(Number) } : {}),
    log: (l) => process.stderr.write(`${l}\n`),
  }).then(
    (r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`),
    (e: unknown) => {
      process.stderr.write(`bench scoring failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
