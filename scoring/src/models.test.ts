import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelRegistry } from './models';
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
    reg = new ModelRegistry(host, (l) => logs.push(l));
    dir = mkdtempSync(join(tmpdir(), 'scoring-models-'));
  });
  afterAll(async () => {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const active = () => reg.snapshot().get('m');

  it('loads the default model and scores with it', async () => {
    expect(await reg.upsert('m', join(models, 'iforest.onnx'), join(models, 'iforest.json'))).toBe(true);
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
    const ok = await reg.upsert('m', join(dir, 'x.onnx'), sidecar === null ? null : join(fixtures, sidecar));
    expect(ok).toBe(false);
    expect(active()!.spec.version).toBe('1');
    const st = reg.status().find((s) => s.name === 'm')!;
    expect(st.active?.version).toBe('1');
    expect(st.lastError?.reason).toMatch(reason);
    expect(await reg.run(active()!, new Float32Array(12).fill(1), 1)).toHaveLength(1);
  });

  it('swaps in a good file (metadata only) and unloads on remove', async () => {
    expect(await reg.upsert('m', join(fixtures, 'iforest-v2.onnx'), null)).toBe(true);
    expect(active()!.spec.version).toBe('2');
    expect(reg.status().find((s) => s.name === 'm')!.lastError).toBeNull();
    await reg.remove('m');
    expect(active()).toBeUndefined();
  });
});
