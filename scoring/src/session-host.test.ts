import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostError, SessionHost } from './session-host';

const model = new Uint8Array(readFileSync(join(__dirname, '..', 'models', 'iforest.onnx')));
const Width = 12;

/** `rows` rows of plausible, distinct features. */
function rowsOf(rows: number, seed = 0): Float32Array {
  return Float32Array.from({ length: rows * Width }, (_, i) => 1 + ((i * 7 + seed * 13) % 29) / 7);
}

describe('SessionHost (real onnxruntime in a child process)', () => {
  let host: SessionHost;
  const logs: string[] = [];
  beforeEach(async () => {
    logs.length = 0;
    host = new SessionHost({ intraOpThreads: 1, log: (l) => logs.push(l) });
    await host.load('m', model);
  });
  afterEach(async () => {
    await host.close();
  });

  it('scores a message in runs of runRows with the same scores as one run per row', async () => {
    const x = rowsOf(10);
    const one = await Promise.all(
      Array.from({ length: 10 }, (_, r) => host.run('m', x.slice(r * Width, (r + 1) * Width), 1, Width, 'scores')),
    );
    const byRow = Float32Array.from(one.map((s) => s[0]!));
    expect(new Set(byRow).size).toBeGreaterThan(1);
    for (const runRows of [1, 3, 10, 64]) {
      const r = await host.score('m', x, 10, Width, 'scores', runRows);
      expect(r.failed).toEqual([]);
      expect([...r.scores]).toEqual([...byRow]);
    }
  });

  it('answers each of many messages in flight with its own scores', async () => {
    const inputs = Array.from({ length: 20 }, (_, i) => rowsOf(1 + (i % 5), i));
    const alone: Float32Array[] = [];
    for (const x of inputs) alone.push(await host.run('m', x, x.length / Width, Width, 'scores'));
    const together = await Promise.all(inputs.map((x) => host.run('m', x, x.length / Width, Width, 'scores')));
    expect(together.map((s) => [...s])).toEqual(alone.map((s) => [...s]));
  });

  it('lists every failed run of a message, with NaN in its rows; run() rejects, not retriable', async () => {
    // 5 columns where the model takes 12: onnxruntime refuses each run.
    const r = await host.score('m', new Float32Array(7 * 5), 7, 5, 'scores', 3);
    expect(r.failed.map((f) => [f.row, f.rows])).toEqual([
      [0, 3],
      [3, 3],
      [6, 1],
    ]);
    expect(r.failed[0]!.error).toMatch(/dimension|shape|Got/i);
    expect([...r.scores].every(Number.isNaN)).toBe(true);
    const err = await host.run('m', new Float32Array(5), 1, 5, 'scores').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostError);
    expect((err as HostError).retriable).toBe(false);
  });

  it('survives its child dying mid-run: those runs fail retriable, a new child serves every live session', async () => {
    const x = rowsOf(64);
    const before = await host.run('m', x, 64, Width, 'scores');
    const pid = host.pid!;
    const inFlight = Array.from({ length: 8 }, () => host.score('m', rowsOf(1024), 1024, Width, 'scores', 64));
    process.kill(pid, 'SIGKILL');
    const outcomes = await Promise.all(
      inFlight.map((p) =>
        p.then(
          () => 'scored',
          (e: unknown) => e,
        ),
      ),
    );
    const failures = outcomes.filter((o) => o !== 'scored');
    expect(failures.length).toBeGreaterThan(0);
    for (const e of failures) expect(e).toMatchObject({ name: 'HostError', retriable: true });
    await until(() => host.generations === 2 && host.pid !== pid);
    expect([...(await host.run('m', x, 64, Width, 'scores'))]).toEqual([...before]);
    expect(logs.join('\n')).toMatch(/exited unexpectedly[\s\S]*replaced \(crash\); 1 session\(s\) carried over/);
  });

  it('recycles its child after recycleAfterLoads loads, carrying the live sessions over', async () => {
    await host.close();
    host = new SessionHost({ intraOpThreads: 1, recycleAfterLoads: 3 });
    await host.load('m', model);
    const x = rowsOf(4);
    const before = await host.run('m', x, 4, Width, 'scores');
    const pid = host.pid;
    for (const k of ['a', 'b']) {
      await host.load(k, model);
      await host.release(k);
    }
    expect(host.generations).toBe(2);
    expect(host.pid).not.toBe(pid);
    expect([...(await host.run('m', x, 4, Width, 'scores'))]).toEqual([...before]);
  });
});

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
