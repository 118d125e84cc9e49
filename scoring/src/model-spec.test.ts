import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readOnnxMetadata, OnnxFormatError } from './onnx-meta';
import { resolveSpec, ModelSpecError } from './model-spec';

const models = join(__dirname, '..', 'models');
const fixtures = join(__dirname, '..', 'fixtures');

describe('model spec', () => {
  it('reads metadata_props from an exported model and resolves the spec from them', () => {
    const meta = readOnnxMetadata(readFileSync(join(fixtures, 'iforest-v2.onnx')));
    expect(meta.version).toBe('2');
    const spec = resolveSpec(undefined, meta);
    expect(spec).toMatchObject({ version: '2', resolution: '10s', output: 'scores', higherIsAnomalous: true });
    expect(spec.features).toHaveLength(12);
    expect(spec.source).toBe('metadata_props');
  });

  it('prefers the sidecar, which must match the default model metadata', () => {
    const side = JSON.parse(readFileSync(join(models, 'iforest.json'), 'utf8')) as unknown;
    const meta = readOnnxMetadata(readFileSync(join(models, 'iforest.onnx')));
    const a = resolveSpec(side, meta);
    const b = resolveSpec(undefined, meta);
    expect(a.source).toBe('sidecar');
    expect({ ...a, source: '' }).toEqual({ ...b, source: '' });
  });

  it('rejects truncated and random bytes before onnxruntime sees them', () => {
    const bytes = readFileSync(join(fixtures, 'iforest-v2.onnx'));
    expect(() => readOnnxMetadata(bytes.subarray(0, bytes.length >> 1))).toThrow(OnnxFormatError);
    expect(() => readOnnxMetadata(Buffer.from('not a model at all, just text'))).toThrow(OnnxFormatError);
    expect(() => readOnnxMetadata(Buffer.alloc(0))).toThrow(OnnxFormatError);
  });

  it('lists every problem of a bad spec', () => {
    const bad = () => resolveSpec({ version: '1', features: ['temp'], resolution: 'x', threshold: 'a' }, {});
    expect(bad).toThrow(ModelSpecError);
    expect(bad).toThrow(/features.0.*resolution.*threshold/s);
    expect(
      resolveSpec(undefined, { version: '1', features: 'a.mean, b.max', resolution: '60s', threshold: '0.5' }),
    ).toMatchObject({ features: ['a.mean', 'b.max'], output: null, higherIsAnomalous: true });
  });
});
