import { bucketOf, MetricStatNames } from '@fleetpulse/contracts';
import { types } from 'cassandra-driver';
// The driver's own codec: what it would have written for the same values, and how it reads ours back.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Encoder = require('cassandra-driver/lib/encoder') as new (
  version: number,
  options: object,
) => { encode(v: unknown, t: unknown): Buffer; decode(b: Buffer, t: unknown): unknown };
import { WindowAggregator } from '../core';
import { windowRowParams } from './window-row';

const { dataTypes } = types;
const statsUdt = {
  code: dataTypes.udt,
  info: {
    name: 'metric_stats',
    fields: MetricStatNames.map((name) => ({
      name,
      type: { code: name === 'count' ? dataTypes.int : dataTypes.double },
    })),
  },
};
const metricsType = { code: dataTypes.map, info: [{ code: dataTypes.text }, statsUdt] };

describe('windowRowParams', () => {
  it('encodes a closed window exactly as cassandra-driver encodes its values', () => {
    const a = new WindowAggregator({ resolutions: ['10s'] });
    a.assignPartition(0);
    const t0 = 1_763_803_200_000;
    a.ingest(0, '0', { deviceId: 'sensor-ü', ts: t0 + 1, metrics: { temp: 21.5, 'hum.rel': -3 }, receivedAt: t0 });
    a.ingest(0, '1', { deviceId: 'sensor-ü', ts: t0 + 2, metrics: { temp: 22.25, vib: 1e-9 }, receivedAt: t0 });
    a.flush(0);
    const [w] = a.drain().windows;
    const params = windowRowParams(w!, 86_400);
    const driver = new Encoder(4, {});
    expect(params[0]).toEqual(driver.encode('sensor-ü', dataTypes.text));
    expect(params[1]).toEqual(driver.encode('10s', dataTypes.text));
    expect(params[2]).toEqual(driver.encode(types.Long.fromNumber(bucketOf(t0, 10_000)), dataTypes.bigint));
    expect(params[3]).toEqual(driver.encode(types.Long.fromNumber(t0), dataTypes.bigint));
    expect(params[4]).toEqual(driver.encode(types.Long.fromNumber(t0 + 10_000), dataTypes.bigint));
    expect(params[5]).toEqual(driver.encode(w!.metricStats(), metricsType));
    expect(params[6]).toEqual(driver.encode(86_400, dataTypes.int));
    expect(driver.decode(params[5]!, metricsType)).toEqual(w!.metricStats());
  });
});
