import { metricStatsFromUdt, windowRecordFromRow, type MetricStatsUdt, type WindowRow } from './window-row';

// Rows shaped as cassandra-driver returns them (see dashboard-api's tests for real driver rows from Cassandra):
// bigints as Long-like objects, UDTs as null-prototype objects whose fields come in the UDT's order.
const long = (n: number) => ({ toNumber: () => n, low: n | 0, high: 0 });
const udt = (fields: MetricStatsUdt): MetricStatsUdt => Object.assign(Object.create(null) as object, fields);

/** The design contract's example window record ("Window record"), as JSON. */
const contractExample =
  '{"deviceId":"sensor-12","resolution":"10s","windowStart":1763803200000,"windowEnd":1763803210000,"final":true,"metrics":{' +
  '"temp":{"count":10,"sum":235,"min":22.9,"max":24.1,"mean":23.5,"stddev":0.35,"first":23,"last":23.9},' +
  '"humidity":{"count":10,"sum":412,"min":40.1,"max":41.9,"mean":41.2,"stddev":0.5,"first":40.1,"last":41}}}';

describe('windowRecordFromRow', () => {
  it("reads a driver row as the contract's window record, fields in the contract's order", () => {
    // UDT fields in another order than the contract's, and the row's other members (a driver Row has get(), keys()).
    const row = {
      device_id: 'sensor-12',
      resolution: '10s',
      bucket: long(489945),
      window_start: long(1763803200000),
      window_end: long(1763803210000),
      metrics: {
        temp: udt({ last: 23.9, first: 23, stddev: 0.35, mean: 23.5, max: 24.1, min: 22.9, sum: 235, count: 10 }),
        humidity: udt({ count: 10, sum: 412, min: 40.1, max: 41.9, mean: 41.2, stddev: 0.5, first: 40.1, last: 41 }),
      },
      get(name: string): unknown {
        return (this as unknown as Record<string, unknown>)[name];
      },
    };
    expect(JSON.stringify(windowRecordFromRow(row))).toBe(contractExample);
  });

  it('takes bigints as bigint or number too', () => {
    const base: WindowRow = { device_id: 'd', resolution: '1s', window_start: 0, window_end: 0, metrics: null };
    expect(windowRecordFromRow({ ...base, window_start: 5000n, window_end: 6000 })).toMatchObject({
      windowStart: 5000,
      windowEnd: 6000,
    });
  });

  it('gives no metrics for a row without them, and skips null stats', () => {
    const row: WindowRow = { device_id: 'd', resolution: '1s', window_start: 0, window_end: 1000, metrics: null };
    expect(windowRecordFromRow(row).metrics).toEqual({});
    const stats = udt({ count: 1, sum: 2, min: 2, max: 2, mean: 2, stddev: 0, first: 2, last: 2 });
    expect(windowRecordFromRow({ ...row, metrics: { a: null, b: stats } }).metrics).toEqual({ b: { ...stats } });
  });
});

describe('metricStatsFromUdt', () => {
  it('is undefined for null (a window without the selected metric)', () => {
    expect(metricStatsFromUdt(null)).toBeUndefined();
    expect(metricStatsFromUdt(undefined)).toBeUndefined();
  });

  it('gives a plain object (the driver gives a null-prototype one)', () => {
    const s = metricStatsFromUdt(udt({ count: 1, sum: 2, min: 2, max: 2, mean: 2, stddev: 0, first: 2, last: 2 }))!;
    expect(Object.getPrototypeOf(s)).toBe(Object.prototype);
    expect(Object.keys(s)).toEqual(['count', 'sum', 'min', 'max', 'mean', 'stddev', 'first', 'last']);
  });
});
