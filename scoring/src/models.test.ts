import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelQuarantined, ModelRegistry, type ModelStatus } from './models';
import type { HostError } from './session-host';
import { SessionHost } from './session-host';

const models = join(__dirname, '..', 'models');
const fixtures = join(__dirname, '..', 'fixtures');

describe('ModelRegistry (real onnxruntime in the session host)', () => {
  let host: SessionHost;
  let reg: ModelRegistry;
  let dir: string;
  const logs: string[] = [];
  beforeAll(() => {
    host = new SessionHost({ intraOpThreads: 1 });
    dir = mkdtempSync(join(tmpdir(), 'scoring-models-'));
    for (const f of ['iforest.onnx', 'iforest.json']) copyFileSync(join(models, f), join(dir, f));
    for (const f of ['wrong-count.json', 'zipmap.json', 'iforest-v2.onnx'])
      copyFileSync(join(fixtures, f), join(dir, f));
    reg = new ModelRegistry(host, { dir, log: (l) => logs.push(l), maxModelBytes: 4 * 1024 * 1024 });
  });
  afterAll(async () => {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const active = () => reg.snapshot().get('m');

  it('loads the default model and scores with it', async () => {
    expect(await reg.upsert('m', join(dir, 'iforest.onnx'), join(dir, 'iforest.json'))).toBe(true);
    const m = active()!;
    expect(m.spec.version).toBe('1');
    const scores = await reg.run(m, new Float32Array(12 * 2).fill(0.5), 2);
    expect(scores).toHaveLength(2);
    expect(scores.every((s) => s > 0 && s <= 1)).toBe(true);
  });

  it.each([
    [
      'corrupt bytes',
      () => writeFileSync(join(dir, 'x.onnx'), Buffer.from('\x08\x07garbage that is no protobuf')),
      null,
      /not a readable ONNX/,
    ],
    [
      'a half-written file',
      () => writeFileSync(join(dir, 'x.onnx'), readFileSync(join(fixtures, 'iforest-v2.onnx')).subarray(0, 100_000)),
      null,
      /not a readable ONNX|onnxruntime could not load/,
    ],
    [
      'the wrong feature count',
      () => copyFileSync(join(fixtures, 'wrong-count.onnx'), join(dir, 'x.onnx')),
      'wrong-count.json',
      /5 features, the spec declares 12/,
    ],
    [
      'a ZipMap (non-tensor) output',
      () => copyFileSync(join(fixtures, 'zipmap.onnx'), join(dir, 'x.onnx')),
      'zipmap.json',
      /output_probability is non-tensor/,
    ],
  ])('rejects %s and keeps the old version serving', async (_what, write, sidecar, reason) => {
    write();
    const ok = await reg.upsert('m', join(dir, 'x.onnx'), sidecar === null ? null : join(dir, sidecar));
    expect(ok).toBe(false);
    expect(active()!.spec.version).toBe('1');
    const st = reg.status().find((s) => s.name === 'm')!;
    expect(st.active?.version).toBe('1');
    expect(st.lastError?.reason).toMatch(reason);
    expect(await reg.run(active()!, new Float32Array(12).fill(1), 1)).toHaveLength(1);
  });

  const statusOf = (name: string): ModelStatus => reg.status().find((s) => s.name === name)!;
  /** Neither the folder's absolute path nor any absolute path, nor a word of the file. */
  const expectNoPathNorContent = (text: string) => {
    expect(text).not.toContain(dir);
    expect(text).not.toMatch(/(^|[\s(])\/(tmp|work|home|etc|root)\b/);
    expect(text).not.toContain('secret');
  };

  it.each([
    [
      'a symbolic link to a good model in the folder',
      () => symlinkSync(join(dir, 'iforest-v2.onnx'), join(dir, 'x.onnx')),
      /x\.onnx is a symbolic link/,
    ],
    [
      'a symbolic link to a file outside the folder',
      () => symlinkSync(join(models, 'iforest.onnx'), join(dir, 'x.onnx')),
      /x\.onnx is a symbolic link/,
    ],
    ['a directory', () => execFileSync('mkdir', [join(dir, 'x.onnx')]), /x\.onnx is a directory/],
    // Unopened: a reader opening a pipe waits for a writer; O_NONBLOCK and the lstat refuse it at once.
    ['a named pipe', () => execFileSync('mkfifo', [join(dir, 'x.onnx')]), /x\.onnx is a named pipe/],
    [
      'a file over the size limit (sparse: refused by its size, unread)',
      () => {
        writeFileSync(join(dir, 'x.onnx'), 'secret');
        truncateSync(join(dir, 'x.onnx'), 5 * 1024 * 1024);
      },
      /x\.onnx is 5\.0 MiB, over the 4\.0 MiB limit \(FLEETPULSE_SCORING_MAX_MODEL_MB\); refused unread/,
    ],
  ])('refuses %s with a reason that has no path and no content', async (_what, make, reason) => {
    rmSync(join(dir, 'x.onnx'), { recursive: true, force: true });
    make();
    expect(await reg.upsert('m', join(dir, 'x.onnx'), null)).toBe(false);
    const st = statusOf('m');
    expect(st.active?.version).toBe('1');
    expect(st.file).toBe('x.onnx');
    expect(st.lastError).toMatchObject({ file: 'x.onnx', reason: expect.stringMatching(reason) });
    expectNoPathNorContent(JSON.stringify(st));
    expectNoPathNorContent(logs.at(-1)!);
    rmSync(join(dir, 'x.onnx'), { recursive: true, force: true });
  });

  it('refuses a file that is not an entry of its folder, and a symlinked sidecar', async () => {
    expect(await reg.upsert('m', join(models, 'iforest.onnx'), null)).toBe(false);
    expect(statusOf('m').lastError?.reason).toBe('iforest.onnx: not an entry of the models folder');
    symlinkSync(join(models, 'iforest.json'), join(dir, 'linked.json'));
    expect(await reg.upsert('m', join(dir, 'iforest-v2.onnx'), join(dir, 'linked.json'))).toBe(false);
    expect(statusOf('m').lastError?.reason).toMatch(/^linked\.json is a symbolic link/);
    expect(statusOf('m').active?.version).toBe('1');
  });

  it('says where a sidecar is not JSON without quoting it', async () => {
    writeFileSync(join(dir, 'bad.json'), '{"version": "1", secret: "hunter2"}');
    expect(await reg.upsert('m', join(dir, 'iforest-v2.onnx'), join(dir, 'bad.json'))).toBe(false);
    const reason = statusOf('m').lastError!.reason;
    expect(reason).toMatch(/^sidecar bad\.json: invalid JSON( at position \d+)?$/);
    expectNoPathNorContent(reason);
    expect(reason).not.toContain('hunter2');
  });

  it('swaps in a good file (metadata only) and unloads on remove', async () => {
    expect(await reg.upsert('m', join(dir, 'iforest-v2.onnx'), null)).toBe(true);
    expect(active()!.spec.version).toBe('2');
    expect(reg.status().find((s) => s.name === 'm')!.lastError).toBeNull();
    await reg.remove('m');
    expect(active()).toBeUndefined();
  });
});

describe('quarantine (a real model that kills the session host on real rows)', () => {
  let host: SessionHost;
  let dir: string;
  const logs: string[] = [];
  beforeAll(() => {
    host = new SessionHost({ intraOpThreads: 1 });
    dir = mkdtempSync(join(tmpdir(), 'scoring-quarantine-'));
    for (const f of ['crash-on-real.onnx', 'crash-on-real.json']) copyFileSync(join(fixtures, f), join(dir, f));
    for (const f of ['iforest.onnx', 'iforest.json']) copyFileSync(join(models, f), join(dir, f));
  });
  afterAll(async () => {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Real-looking rows (no feature exactly 1). */
  const real = (rows: number) => Float32Array.from({ length: rows * 12 }, (_, i) => 2 + (i % 7) / 3);

  it('loads (the warm-up passes), crashes the host on real rows, and is quarantined at the third crash', async () => {
    const quarantined: string[] = [];
    const reg = new ModelRegistry(host, {
      dir,
      log: (l) => logs.push(l),
      quarantineCrashes: 3,
      events: { quarantined: (q) => quarantined.push(q.name) },
    });
    expect(await reg.upsert('crash', join(dir, 'crash-on-real.onnx'), join(dir, 'crash-on-real.json'))).toBe(true);
    expect(await reg.upsert('iforest', join(dir, 'iforest.onnx'), join(dir, 'iforest.json'))).toBe(true);
    const m = reg.snapshot().get('crash')!;
    const good = reg.snapshot().get('iforest')!;
    const errors: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const pid = host.pid;
      errors.push(await reg.score(m, real(4), 4, 4).catch((e: unknown) => e));
      await until(() => host.pid !== pid && host.generations === i + 2);
    }
    expect(errors.slice(0, 2)).toEqual([
      expect.objectContaining({
        name: 'HostError',
        crashedRunning: true,
        message: expect.stringMatching(/signal SIGFPE/),
      }),
      expect.objectContaining({ name: 'HostError', crashedRunning: true }),
    ]);
    expect(errors[2]).toBeInstanceOf(ModelQuarantined);
    expect(quarantined).toEqual(['crash']);
    expect(reg.snapshot().has('crash')).toBe(false);
    const st = reg.status().find((s) => s.name === 'crash')!;
    expect(st.active).toBeNull();
    expect(st.quarantined).toMatchObject({ file: 'crash-on-real.onnx', version: 'crash-1', crashes: 3 });
    expect(st.quarantined!.reason).toMatch(/session host died 3 times within 600 s .*signal SIGFPE/);
    expect(st.quarantined!.reason).not.toContain(dir);
    // The other model scores on, in the host that replaced the crashed ones.
    expect((await reg.score(good, real(4), 4, 4)).scores).toHaveLength(4);
    await expect(reg.score(m, real(1), 1, 1)).rejects.toBeInstanceOf(ModelQuarantined);

    // The same bytes again stay quarantined; a file with other bytes lifts it.
    expect(await reg.upsert('crash', join(dir, 'crash-on-real.onnx'), join(dir, 'crash-on-real.json'))).toBe(false);
    expect(reg.status().find((s) => s.name === 'crash')!.quarantined).not.toBeNull();
    expect(await reg.upsert('crash', join(dir, 'iforest.onnx'), join(dir, 'iforest.json'))).toBe(true);
    const lifted = reg.status().find((s) => s.name === 'crash')!;
    expect(lifted.quarantined).toBeNull();
    expect(lifted.active?.version).toBe('1');
    await reg.remove('crash');
    await reg.remove('iforest');
  });

  it('blames only the message the host was running: the others in flight fail retriably and score again', async () => {
    const reg = new ModelRegistry(host, { dir, quarantineCrashes: 3 });
    expect(await reg.upsert('crash', join(dir, 'crash-on-real.onnx'), join(dir, 'crash-on-real.json'))).toBe(true);
    expect(await reg.upsert('iforest', join(dir, 'iforest.onnx'), join(dir, 'iforest.json'))).toBe(true);
    const [c, g] = [reg.snapshot().get('crash')!, reg.snapshot().get('iforest')!];
    const pid = host.pid;
    const inFlight = [reg.score(c, real(4), 4, 4), reg.score(g, real(64), 64, 16), reg.score(g, real(64), 64, 16)];
    const out = await Promise.all(inFlight.map((p) => p.catch((e: unknown) => e as HostError)));
    expect(out[0]).toMatchObject({ crashedRunning: true });
    for (const e of out.slice(1))
      expect(e).toMatchObject({ name: 'HostError', retriable: true, crashedRunning: false });
    await until(() => host.pid !== pid);
    expect(c.crashes).toHaveLength(1);
    expect(g.crashes).toHaveLength(0);
    expect((await reg.score(g, real(64), 64, 16)).failed).toEqual([]);
    await reg.remove('crash');
    await reg.remove('iforest');
  });
});

async function until(cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
