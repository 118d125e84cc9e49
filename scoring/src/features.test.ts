import Ajv2020 from 'ajv/dist/2020';
import type { MetricStats, WindowRecord } from '@fleetpulse/contracts';
import { loadSchema } from '@fleetpulse/contracts';
import { compileFeatures, featureObject, fillVector, InvalidRecord, parseWindowRecord } from './features';

const stats = (v: number): MetricStats => ({
  count: 10,
  sum: 10 * v,
  min: v - 1,
  max: v + 1,
  mean: v,
  stddev: 0.5,
  first: v,
  last: v,
});

const record = (metrics: Record<string, MetricStats>, over: Partial<WindowRecord> = {}): WindowRecord => ({
  deviceId: 'd1',
  resolution: '10s',
  windowStart: 1_763_803_200_000,
  windowEnd: 1_763_803_210_000,
  final: true,
  metrics,
  ...over,
});

const bytes = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

describe('parseWindowRecord', () => {
  it('reads a window record as the contract writes it', () => {
    const r = record({ temp: stats(23.5), humidity: stats(41.2) });
    expect(parseWindowRecord(bytes(r))).toEqual(r);
  });

  it.each<[string, Buffer | null, string, RegExp]>([
    ['null value (tombstone)', null, 'empty', /empty/],
    ['empty value', Buffer.alloc(0), 'empty', /empty/],
    ['garbage', bytes('{"deviceId": "d1", '), 'not-json', /not JSON/],
    ['a JSON array', bytes([record({ temp: stats(1) })]), 'not-a-window-record', /array/],
    ['JSON null', bytes('null'), 'not-a-window-record', /null/],
    [
      'a v1 aggregate row',
      bytes({ deviceId: 'd1', metric: 'temp', resolution: '10s', windowStart: 0, windowEnd: 10_000, ...stats(1) }),
      'not-a-window-record',
      /v1 aggregate row/,
    ],
    ['no deviceId', bytes({ ...record({ temp: stats(1) }), deviceId: undefined }), 'not-a-window-record', /deviceId/],
    ['bad resolution', bytes(record({ temp: stats(1) }, { resolution: '10' })), 'not-a-window-record', /resolution/],
    ['string windowStart', bytes({ ...record({}), windowStart: '0' }), 'not-a-window-record', /windowStart/],
    ['fractional windowEnd', bytes(record({ t: stats(1) }, { windowEnd: 1.5 })), 'not-a-window-record', /windowEnd/],
    ['no final', bytes({ ...record({ temp: stats(1) }), final: undefined }), 'not-a-window-record', /final/],
    ['metrics an array', bytes({ ...record({}), metrics: [stats(1)] }), 'not-a-window-record', /metrics/],
    ['no metrics', bytes(record({})), 'not-a-window-record', /metrics: empty/],
    ['a metric not an object', bytes({ ...record({}), metrics: { temp: 3 } }), 'not-a-window-record', /temp/],
  ])('refuses %s, with the reason', (_what, value, reason, detail) => {
    let err: unknown;
    try {
      parseWindowRecord(value);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidRecord);
    expect((err as InvalidRecord).reason).toBe(reason);
    expect((err as InvalidRecord).message).toMatch(detail);
  });

  it('agrees with contracts/schema/window.schema.json on the record shape', () => {
    const validate = new Ajv2020({ strict: true, allErrors: true }).compile(loadSchema('window'));
    const accepts = (v: unknown) => {
      try {
        parseWindowRecord(bytes(v));
        return true;
      } catch {
        return false;
      }
    };
    const valid = [
      record({ temp: stats(1) }),
      record({ temp: stats(1), vib: stats(0.2) }, { final: false, resolution: '1s' }),
    ];
    const badShape: unknown[] = [
      record({}),
      { ...record({ temp: stats(1) }), final: 'true' },
      { ...record({ temp: stats(1) }), windowStart: null },
      { ...record({ temp: stats(1) }), metrics: null },
      { ...record({ temp: stats(1) }), metrics: { temp: [] } },
      { deviceId: 'd1', metric: 'temp', resolution: '10s', windowStart: 0, windowEnd: 10_000, ...stats(1) },
      [record({ temp: stats(1) })],
      42,
    ];
    // Refused by the schema, read by the parser: a broken stat only keeps the models that need it from scoring.
    const badStat: unknown[] = [record({ temp: { ...stats(1), stddev: Number.NaN } })];
    for (const v of valid) expect([v, validate(v), accepts(v)]).toEqual([v, true, true]);
    for (const v of badShape) expect([v, validate(v), accepts(v)]).toEqual([v, false, false]);
    for (const v of badStat) expect([v, validate(JSON.parse(JSON.stringify(v))), accepts(v)]).toEqual([v, false, true]);
  });
});

describe('fillVector', () => {
  const features = ['temp.max', 'vib.mean', 'temp.stddev'];
  const compiled = compileFeatures(features);

  it('writes the features in the model order at the given row', () => {
    const r = record({ vib: stats(3), temp: stats(20), humidity: stats(40) });
    const buf = new Float32Array(6);
    expect(fillVector(r, compiled, buf, 3)).toBeNull();
    expect([...buf]).toEqual([0, 0, 0, 21, 3, 0.5]);
    expect(featureObject(r, features, compiled)).toEqual({ 'temp.max': 21, 'vib.mean': 3, 'temp.stddev': 0.5 });
  });

  it('refuses a record that lacks a feature metric, whatever else is wrong', () => {
    const buf = new Float32Array(3);
    expect(fillVector(record({ temp: stats(20) }), compiled, buf, 0)).toBe('missing-metric');
    expect(fillVector(record({ temp: { ...stats(20), max: Number.NaN } }), compiled, buf, 0)).toBe('missing-metric');
  });

  it('refuses a value that is not a finite number (JSON writes NaN and Infinity as null)', () => {
    const buf = new Float32Array(3);
    const nulled = parseWindowRecord(bytes(record({ temp: { ...stats(20), stddev: Number.NaN }, vib: stats(3) })));
    expect(nulled.metrics.temp!.stddev).toBeNull();
    expect(fillVector(nulled, compiled, buf, 0)).toBe('non-finite-feature');
    const inf = record({ temp: { ...stats(20), max: Number.POSITIVE_INFINITY }, vib: stats(3) });
    expect(fillVector(inf, compiled, buf, 0)).toBe('non-finite-feature');
    const partial = record({ temp: stats(20), vib: { ...stats(3), mean: undefined } as unknown as MetricStats });
    expect(fillVector(partial, compiled, buf, 0)).toBe('non-finite-feature');
  });

  it('reads only the record own metrics: a metric named like an Object member is missing, not inherited', () => {
    const r = parseWindowRecord(bytes(record({ temp: stats(20) })));
    const buf = new Float32Array(1);
    expect(fillVector(r, compileFeatures(['constructor.count']), buf, 0)).toBe('missing-metric');
    expect(fillVector(r, compileFeatures(['__proto__.count']), buf, 0)).toBe('missing-metric');
    const own = parseWindowRecord(bytes({ ...record({}), metrics: { constructor: stats(7) } }));
    expect(fillVector(own, compileFeatures(['constructor.mean']), buf, 0)).toBeNull();
    expect(buf[0]).toBe(7);
  });
});
