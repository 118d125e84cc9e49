import type { Client } from 'cassandra-driver';
import { AggregateStore, type WindowToStore } from './aggregate-store';

interface Call {
  kind: 'execute' | 'batch';
  statements: { query: string; params: unknown[] }[];
}

function fakeClient(failFirst = 0) {
  const calls: Call[] = [];
  let failures = failFirst;
  const answer = () => (failures-- > 0 ? Promise.reject(new Error('NoHostAvailable')) : Promise.resolve({}));
  const client = {
    execute: (query: string, params: unknown[]) => {
      calls.push({ kind: 'execute', statements: [{ query, params }] });
      return answer();
    },
    batch: (queries: { query: string; params: unknown[] }[]) => {
      calls.push({ kind: 'batch', statements: queries });
      return answer();
    },
  };
  return { calls, client: client as unknown as Client };
}

const stats = { count: 1, sum: 1, min: 1, max: 1, mean: 1, stddev: 0, first: 1, last: 1 };
const win = (deviceId: string, metrics: string[], windowStart: number, resolution = '1s'): WindowToStore => ({
  deviceId,
  resolution,
  windowStart,
  windowEnd: windowStart + (resolution === '1s' ? 1000 : 10_000),
  metricCount: metrics.length,
  metricName: (i: number) => metrics[i]!,
  stat: (_i: number, field: keyof typeof stats) => stats[field],
});
const text = (b: unknown) => (b as Buffer).toString('utf8');
const int64 = (b: unknown) => Number((b as Buffer).readBigInt64BE(0));

const store = (client: Client, storedResolutions = ['1s', '10s']) =>
  new AggregateStore(client, {
    keyspace: 'ks',
    ttlSeconds: { '1s': 60 },
    storedResolutions,
    concurrency: 4,
    initialBackoffMs: 1,
    maxBackoffMs: 2,
    maxBatchRows: 3,
    deviceTouchIntervalMs: 5000,
  });

const inserts = (calls: Call[]) =>
  calls.flatMap((c) => c.statements).filter((s) => s.query.startsWith('INSERT INTO ks.windows'));
const touches = (calls: Call[]) => calls.filter((c) => c.statements[0]!.query.startsWith('UPDATE ks.devices'));

describe('AggregateStore', () => {
  it('writes each window once as one row of every metric, batching only rows of one Cassandra partition', async () => {
    const { calls, client } = fakeClient();
    const t0 = 1_700_000_000_000 - (1_700_000_000_000 % 3_600_000);
    const windows = [
      ...Array.from({ length: 7 }, (_, i) => win('a', ['temp', 'hum'], t0 + i * 1000)),
      win('b', ['temp'], t0),
      win('a', ['temp'], t0, '10s'),
      // the next hour's bucket: another partition
      win('a', ['temp'], t0 + 3_600_000),
    ];
    await store(client).writeAll(windows);
    const written = inserts(calls);
    expect(written.map((s) => `${text(s.params[0])}/${text(s.params[1])}/${int64(s.params[3])}`).sort()).toEqual(
      windows.map((w) => `${w.deviceId}/${w.resolution}/${w.windowStart}`).sort(),
    );
    expect((written[0]!.params[6] as Buffer).readInt32BE(0)).toBe(60); // the resolution's TTL
    for (const c of calls.filter((c) => c.kind === 'batch')) {
      expect(c.statements.length).toBeLessThanOrEqual(3);
      const partitions = new Set(
        c.statements.map((s) => `${text(s.params[0])}/${text(s.params[1])}/${int64(s.params[2])}`),
      );
      expect(partitions.size).toBe(1);
    }
    expect(calls.filter((c) => c.kind === 'batch').map((c) => c.statements.length)).toEqual([3, 3]);
  });

  it('batches rows of different partitions only where the same replicas own them', async () => {
    const { calls, client } = fakeClient();
    // Devices a and b live on node 1, c on node 2 (the routing key starts with the device id's length and bytes).
    (client as unknown as { getReplicas: (ks: string, key: Buffer) => { address: string }[] }).getReplicas = (
      _ks,
      key,
    ) => [{ address: key.toString('utf8', 2, 3) === 'c' ? '10.0.0.2' : '10.0.0.1' }];
    const t0 = 1_700_000_000_000 - (1_700_000_000_000 % 3_600_000);
    const windows = [
      win('a', ['temp'], t0),
      win('c', ['temp'], t0),
      win('b', ['temp'], t0),
      win('a', ['temp'], t0 + 1000),
      win('c', ['temp'], t0 + 1000),
    ];
    await store(client).writeAll(windows);
    const batches = calls.filter((c) => c.kind === 'batch' && c.statements[0]!.query.startsWith('INSERT'));
    const devicesOf = (c: Call) => c.statements.map((st) => `${text(st.params[0])}@${int64(st.params[3]) - t0}`);
    // maxBatchRows 3: node 1's rows a, a, b (a's two adjacent), then node 2's c, c.
    expect(batches.map(devicesOf)).toEqual([
      ['a@0', 'a@1000', 'b@0'],
      ['c@0', 'c@1000'],
    ]);
  });

  it('writes no row for a live-only resolution, and still lists the device', async () => {
    const { calls, client } = fakeClient();
    await store(client, ['10s']).writeAll([win('a', ['temp'], 0, '1s'), win('a', ['temp'], 0, '10s')]);
    expect(inserts(calls).map((s) => text(s.params[1]))).toEqual(['10s']);
    expect(touches(calls)).toHaveLength(1);
  });

  it('updates the device list on a new device or metric, or when last_seen moved by the interval', async () => {
    const { calls, client } = fakeClient();
    const s = store(client);
    await s.writeAll([win('a', ['temp'], 0), win('b', ['temp'], 0)]);
    expect(touches(calls).map((c) => c.statements[0]!.params)).toEqual([
      [1_000_000, 1000, ['temp'], 'a'],
      [1_000_000, 1000, ['temp'], 'b'],
    ]);
    calls.length = 0;
    await s.writeAll([win('a', ['temp'], 1000), win('b', ['hum'], 1000)]);
    expect(touches(calls).map((c) => c.statements[0]!.params)).toEqual([[2_000_000, 2000, ['hum'], 'b']]);
    calls.length = 0;
    await s.writeAll([win('a', ['temp'], 5000)]);
    expect(touches(calls).map((c) => c.statements[0]!.params)).toEqual([[6_000_000, 6000, ['temp'], 'a']]);
  });

  it('remembers at most maxRememberedDevices device-list entries: a forgotten device is listed again', async () => {
    const { calls, client } = fakeClient();
    const s = new AggregateStore(client, {
      keyspace: 'ks',
      ttlSeconds: {},
      storedResolutions: ['1s'],
      concurrency: 4,
      initialBackoffMs: 1,
      maxBackoffMs: 2,
      maxRememberedDevices: 2,
    });
    await s.writeAll([win('a', ['temp'], 0), win('b', ['temp'], 0), win('c', ['temp'], 0)]);
    calls.length = 0;
    // a was forgotten (the oldest); b and c are remembered, so only a is listed again.
    await s.writeAll([win('a', ['temp'], 1000), win('b', ['temp'], 1000), win('c', ['temp'], 1000)]);
    expect(touches(calls).map((c) => c.statements[0]!.params[3])).toEqual(['a']);
  });

  it('remembers at most maxRememberedPartitions replica sets, then asks the driver again', async () => {
    const { client } = fakeClient();
    let asked = 0;
    (client as unknown as { getReplicas: () => { address: string }[] }).getReplicas = () => {
      asked++;
      return [{ address: '10.0.0.1' }];
    };
    const s = new AggregateStore(client, {
      keyspace: 'ks',
      ttlSeconds: {},
      storedResolutions: ['1s'],
      concurrency: 4,
      initialBackoffMs: 1,
      maxBackoffMs: 2,
      maxRememberedPartitions: 3,
    });
    const devices = ['a', 'b', 'c', 'd', 'e'];
    const cached = () => (s as unknown as { replicaCache: Map<string, string> }).replicaCache.size;
    await s.writeAll(devices.map((d) => win(d, ['temp'], 0)));
    expect(asked).toBe(5);
    expect(cached()).toBeLessThanOrEqual(3); // full at c: emptied, then d and e remembered
    await s.writeAll([win('d', ['temp'], 1000), win('e', ['temp'], 1000)]);
    expect(asked).toBe(5); // remembered
    await s.writeAll([win('a', ['temp'], 1000)]);
    expect(asked).toBe(6); // forgotten when the cache was emptied
  });

  it('retries failed writes until they succeed', async () => {
    const { calls, client } = fakeClient(2);
    await store(client).writeAll([win('a', ['temp'], 0)]);
    // Two failures, then one success each for the row and the device entry.
    expect(calls).toHaveLength(4);
    expect(inserts(calls).length).toBeGreaterThanOrEqual(1);
    expect(touches(calls).length).toBeGreaterThanOrEqual(1);
  });
});
