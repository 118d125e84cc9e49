/**
 * The session host: a child process that owns every onnxruntime session, so that (1) session creation and runs
 * (synchronous native calls in onnxruntime-node) never block the service's event loop, and (2) the native memory
 * onnxruntime-node keeps after a session is released (microsoft/onnxruntime#25325) goes away with the process when
 * the service recycles it (SessionHost). Started by SessionHost with `fork`, advanced serialization.
 */
import * as ort from 'onnxruntime-node';
import type { HostOptions, Request, Response, RunFailure, SessionInfo, ValueMeta } from './session-protocol';

const opts = JSON.parse(process.argv[2] ?? '{}') as HostOptions;
const sessionOptions: ort.InferenceSession.SessionOptions = {
  // One thread per session: the box has 2 cores and the service's own thread needs one.
  intraOpNumThreads: opts.intraOpThreads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};
const sessions = new Map<string, ort.InferenceSession>();

function meta(list: readonly ort.InferenceSession.ValueMetadata[]): ValueMeta[] {
  return list.map((m) =>
    m.isTensor
      ? { name: m.name, isTensor: true, type: m.type, shape: [...m.shape] }
      : { name: m.name, isTensor: false },
  );
}

/** One onnxruntime run: `rows` rows in, one float32 score per row out. */
async function runOnce(
  s: ort.InferenceSession,
  input: Float32Array,
  rows: number,
  cols: number,
  output: string,
): Promise<Float32Array> {
  const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', input, [rows, cols]) }, [output]);
  const t = out[output];
  if (!t) throw new Error(`output ${output} missing`);
  if (!(t.data instanceof Float32Array)) throw new Error(`output ${output} is ${t.type}, not float32`);
  if (t.data.length !== rows) throw new Error(`output ${output} has ${t.data.length} values for ${rows} rows`);
  return t.data;
}

async function handle(m: Request): Promise<Response> {
  switch (m.op) {
    case 'load': {
      const t0 = performance.now();
      const s = await ort.InferenceSession.create(m.bytes, sessionOptions);
      const info: SessionInfo = {
        inputs: meta(s.inputMetadata),
        outputs: meta(s.outputMetadata),
        createMs: performance.now() - t0,
      };
      await sessions.get(m.key)?.release();
      sessions.set(m.key, s);
      return { id: m.id, ok: true, info };
    }
    case 'run': {
      const s = sessions.get(m.key);
      if (!s) throw new Error(`no session ${m.key}`);
      const scores = new Float32Array(m.rows);
      const failed: RunFailure[] = [];
      // Runs one after another: a failed run costs its own rows only, as when each was a message of its own.
      for (let row = 0; row < m.rows; row += m.runRows) {
        const rows = Math.min(m.runRows, m.rows - row);
        try {
          scores.set(
            await runOnce(s, m.input.subarray(row * m.cols, (row + rows) * m.cols), rows, m.cols, m.output),
            row,
          );
        } catch (e) {
          failed.push({ row, rows, error: e instanceof Error ? e.message : String(e) });
          scores.fill(Number.NaN, row, row + rows);
        }
      }
      return { id: m.id, ok: true, scores, failed };
    }
    case 'release': {
      const s = sessions.get(m.key);
      sessions.delete(m.key);
      await s?.release();
      return { id: m.id, ok: true };
    }
    case 'stats':
      return { id: m.id, ok: true, rss: process.memoryUsage.rss() };
  }
}

/**
 * Runs one message after another, in arrival order: messages sent together would otherwise interleave their runs and
 * all finish at the end, so the service could not turn the first answers into scores while the later ones run.
 * Loads, releases and stats do not wait for runs (a scrape must not wait for a step).
 */
let runs: Promise<unknown> = Promise.resolve();

function answer(m: Request): Promise<void> {
  return handle(m).then(
    (r) => void process.send?.(r),
    (e: unknown) => void process.send?.({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) }),
  );
}

process.on('message', (m: Request) => {
  if (m.op === 'run') runs = runs.then(() => answer(m));
  else void answer(m);
});
process.on('disconnect', () => process.exit(0));
// Ctrl-C signals the whole process group: the parent decides when this host ends (it disconnects or kills it),
// so that scores in flight during its shutdown are still answered.
process.on('SIGINT', () => undefined);
