/**
 * The session host: a child process that owns every onnxruntime session, so that (1) session creation and runs
 * (synchronous native calls in onnxruntime-node) never block the service's event loop, and (2) the native memory
 * onnxruntime-node keeps after a session is released (microsoft/onnxruntime#25325) goes away with the process when
 * the service recycles it (SessionHost). Started by SessionHost with `fork`, advanced serialization.
 */
import * as ort from 'onnxruntime-node';
import type { HostOptions, Request, Response, SessionInfo, ValueMeta } from './session-protocol';

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
      const input = s.inputNames[0]!;
      const out = await s.run({ [input]: new ort.Tensor('float32', m.input, [m.rows, m.cols]) }, [m.output]);
      const t = out[m.output];
      if (!t) throw new Error(`output ${m.output} missing`);
      if (!(t.data instanceof Float32Array)) throw new Error(`output ${m.output} is ${t.type}, not float32`);
      return { id: m.id, ok: true, scores: t.data, dims: [...t.dims] };
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

process.on('message', (m: Request) => {
  handle(m).then(
    (r) => process.send?.(r),
    (e: unknown) => process.send?.({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) }),
  );
});
process.on('disconnect', () => process.exit(0));
// Ctrl-C signals the whole process group: the parent decides when this host ends (it disconnects or kills it),
// so that scores in flight during its shutdown are still answered.
process.on('SIGINT', () => undefined);
