import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import {
  bucketOf,
  bucketsBetween,
  cqlStatements,
  loadSchema,
  resolutionLabel,
  resolutionMs,
  windowStart,
} from './index';

describe('generated types', () => {
  it('are up to date with the JSON Schemas', () => {
    // Throws (non-zero exit) when contracts/src/types.generated.ts differs from what the schemas generate.
    execFileSync(process.execPath, [join(__dirname, '..', 'scripts', 'generate.mjs'), '--check'], { stdio: 'pipe' });
  });
});

describe('schemas', () => {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  const event = ajv.compile(loadSchema('event'));
  const aggregate = ajv.compile(loadSchema('aggregate'));
  const score = ajv.compile(loadSchema('score'));

  it('accept the examples of the design contract', () => {
    expect(event({ deviceId: 'sensor-12', ts: 1763803200123, metrics: { temp: 23.5, humidity: 41 }, seq: 17 })).toBe(
      true,
    );
    expect(
      aggregate({
        deviceId: 'sensor-12',
        metric: 'temp',
        resolution: '10s',
        windowStart: 1763803200000,
        windowEnd: 1763803210000,
        count: 10,
        sum: 235.0,
        min: 22.9,
        max: 24.1,
        mean: 23.5,
        stddev: 0.35,
        first: 23.0,
        last: 23.9,
      }),
    ).toBe(true);
    expect(
      score({
        deviceId: 'sensor-12',
        resolution: '10s',
        windowStart: 1763803200000,
        model: 'iforest',
        modelVersion: '3',
        score: 0.71,
        anomalous: true,
        features: { 'temp.mean': 23.5 },
      }),
    ).toBe(true);
  });

  it('reject shapes the contract forbids', () => {
    expect(event({ deviceId: 'bad id', ts: 1, metrics: { temp: 1 } })).toBe(false);
    expect(event({ deviceId: 'a', ts: 1, metrics: {} })).toBe(false);
    expect(event({ deviceId: 'a', ts: 1, metrics: { temp: '23.5' } })).toBe(false);
    expect(event({ deviceId: 'a', ts: 1.5, metrics: { temp: 1 } })).toBe(false);
    expect(event({ deviceId: 'a', ts: 1, metrics: { temp: 1 }, seq: -1 })).toBe(false);
    expect(aggregate({ deviceId: 'a', metric: 'temp', resolution: '10' })).toBe(false);
    expect(
      score({
        deviceId: 'a',
        resolution: '10s',
        windowStart: 0,
        model: 'm',
        modelVersion: '1',
        score: 1,
        anomalous: 'yes',
        features: {},
      }),
    ).toBe(false);
  });
});

describe('windows', () => {
  it('parse and print resolution labels', () => {
    expect(resolutionMs('1s')).toBe(1000);
    expect(resolutionMs('60s')).toBe(60000);
    expect(() => resolutionMs('0s')).toThrow(RangeError);
    expect(() => resolutionMs('10m')).toThrow(/of the form/);
    expect(resolutionLabel(10000)).toBe('10s');
    expect(() => resolutionLabel(1500)).toThrow(RangeError);
  });

  it('align windows to the epoch, also before it', () => {
    expect(windowStart(1763803200123, 10000)).toBe(1763803200000);
    expect(windowStart(1763803209999, 10000)).toBe(1763803200000);
    expect(windowStart(1763803210000, 10000)).toBe(1763803210000);
    expect(windowStart(-1, 1000)).toBe(-1000);
  });

  it('bucket partitions by 3600 windows', () => {
    expect(bucketOf(3_599_000, 1000)).toBe(0);
    expect(bucketOf(3_600_000, 1000)).toBe(3_600_000);
    expect(bucketOf(36_000_000, 10_000)).toBe(36_000_000);
    expect(bucketsBetween(3_599_000, 3_600_001, 1000)).toEqual([0, 3_600_000]);
    expect(bucketsBetween(0, 0, 1000)).toEqual([]);
  });
});

describe('cql', () => {
  it('splits the schema files into statements without comments', () => {
    const statements = cqlStatements();
    expect(statements[0]).toMatch(/^CREATE KEYSPACE IF NOT EXISTS fleetpulse/);
    expect(statements.some((s) => s.startsWith('CREATE TABLE IF NOT EXISTS fleetpulse.windows'))).toBe(true);
    expect(statements.some((s) => s.startsWith('CREATE TYPE IF NOT EXISTS fleetpulse.metric_stats'))).toBe(true);
    expect(statements.every((s) => !s.includes('--') && !s.endsWith(';'))).toBe(true);
  });
});
