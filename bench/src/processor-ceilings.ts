/**
 * Cassandra's insert ceilings for the processor's own window rows, apart from the suite (processor.ts), which runs
 * the processor itself: this file only computes rows and writes them.
 *
 * The rows: the suite's records run in-process through the processor's WindowAggregator, drained as the processor
 * drains (one fetch of one partition at a time, the last windows closed by idleness once the wall clock passes), so
 * they are the rows the processor's runs wrote, key for key and value for value; written again, they overwrite
 * them with themselves (Cassandra's writes are blind: an upsert costs what an insert does), and the device list
 * gets no devices of its own. Every ceiling writes them through the processor's AggregateStore itself, one drain
 * after the other as its flushes do (the same INSERT into `windows`, the same pre-encoded parameters, the TTLs and
 * stored resolutions the processor's run parses from the same variables, and the device-list updates the store
 * makes for them). The ceilings differ only in how the store batches:
 * (a) one INSERT per row (batches of one), 512 in flight;
 * (b) the processor's batching: rows grouped by replica set (one node here: all of them), rows of one Cassandra
 *     partition adjacent, unlogged batches of <= 50, 128 in flight;
 * (c) for reference, what the processor did before: the store's fallback when the driver does not know the ring,
 *     rows of one Cassandra partition only, batches of <= 20, 128 in flight.
 */
import { MetricStatNames, type MetricStatName } from '@fleetpulse/contracts';
import { aggregateStoreFor, loadConfig, type WindowToStore } from '@fleetpulse/stream-processor';
import { WindowAggregator, type ClosedWindow } from '@fleetpulse/stream-processor/core';
import type { ArrayOrObject, Client, QueryOptions } from 'cassandra-driver';
import { records, type BenchRecord, type Layout } from './processor-input';
import { BenchTtl } from './services';

export type CeilingMethod =
  'one INSERT per row' | 'processor batches (by replica set, <= 50)' | 'single-partition batches of <= 20 (before)';

export interface InsertCeiling {
  method: CeilingMethod;
  rows: number;
  /** Requests that wrote rows (INSERTs and batches). */
  requests: number;
  rowsPerRequest: number;
  /** Device-list updates the store made for these rows (requests of their own, not counted above). */
  deviceUpdates: number;
  concurrency: number;
  seconds: number;
  rowsPerSec: number;
}

/** A closed window as the store reads it, copied out: a ClosedWindow would hold its aggregator's shared chunks. */
class KeptWindow implements WindowToStore {
  readonly deviceId: string;
  readonly resolution: string;
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly metricCount: number;
  private readonly names: string[] = [];
  /** 8 statistics per metric, in MetricStatNames order. */
  private readonly stats: Float64Array;

  constructor(w: ClosedWindow) {
    this.deviceId = w.deviceId;
    this.resolution = w.resolution;
    this.windowStart = w.windowStart;
    this.windowEnd = w.windowEnd;
    this.metricCount = w.metricCount;
    this.stats = new Float64Array(w.metricCount * MetricStatNames.length);
    for (let i = 0; i < w.metricCount; i++) {
      this.names.push(w.metricName(i));
      MetricStatNames.forEach((f, j) => (this.stats[i * MetricStatNames.length + j] = w.stat(i, f)));
    }
  }

  metricName(i: number): string {
    return this.names[i]!;
  }

  stat(i: number, field: MetricStatName): number {
    return this.stats[i * MetricStatNames.length + StatIndex[field]]!;
  }
}

const StatIndex = Object.fromEntries(MetricStatNames.map((f, j) => [f, j])) as Record<MetricStatName, number>;

export interface ClosedRows {
  /** The windows of each drain, in the processor's order, of the first `limit` rows of each stored setting. */
  drains: WindowToStore[][];
  /** Every window closed, per resolution. */
  counts: Record<string, number>;
  late: number;
}

/**
 * The windows the processor closes for the records of devices `${prefix}-<d>`, in its order: each partition's
 * records in offset order, a drain after every `recordsPerDrain` records of a partition (one fetch), partitions
 * taken in turn; the last windows close by idleness once the wall clock passes (as the processor's tick does when
 * it has caught up). Counts every window; keeps, per stored-resolution setting, its first `limit` rows.
 */
export function closeWindows(
  prefix: string,
  l: Layout,
  recordsPerDrain: number,
  stored: readonly string[],
  limit: number,
): ClosedRows {
  const agg = new WindowAggregator({ resolutions: ['1s', '10s', '60s'] });
  const queues: BenchRecord[][] = Array.from({ length: l.partitions }, () => []);
  for (let p = 0; p < l.partitions; p++) agg.assignPartition(p);
  const drains: WindowToStore[][] = [];
  const counts: Record<string, number> = {};
  const sets = stored.map((s) => ({ labels: new Set(s.split(',')), kept: 0 }));
  const offsets = new Array<number>(l.partitions).fill(0);
  const take = () => {
    const kept: WindowToStore[] = [];
    for (const w of agg.drain().windows) {
      counts[w.resolution] = (counts[w.resolution] ?? 0) + 1;
      let keep = false;
      for (const s of sets)
        if (s.labels.has(w.resolution) && s.kept < limit) {
          s.kept++;
          keep = true;
        }
      if (keep) kept.push(new KeptWindow(w));
    }
    if (kept.length > 0) drains.push(kept);
  };
  const feed = (p: number) => {
    for (const r of queues[p]!.splice(0, recordsPerDrain)) agg.ingest(p, String(offsets[p]!++), r.events);
    take();
  };
  for (const r of records(prefix, l)) {
    queues[r.partition]!.push(r);
    if (queues[r.partition]!.length >= recordsPerDrain) feed(r.partition);
  }
  for (let p = 0; p < l.partitions; p++) while (queues[p]!.length > 0) feed(p);
  for (let p = 0; p < l.partitions; p++) agg.advanceProcessingTime(p, Date.now());
  take();
  return { drains, counts, late: agg.stats().late };
}

/** The drains' windows of `stored` resolutions, cut after the first `limit` of them. */
export function rowsOf(drains: readonly WindowToStore[][], stored: string, limit: number): WindowToStore[][] {
  const labels = new Set(stored.split(','));
  const out: WindowToStore[][] = [];
  let n = 0;
  for (const d of drains) {
    if (n >= limit) break;
    const part = d.filter((w) => labels.has(w.resolution)).slice(0, limit - n);
    if (part.length > 0) out.push(part);
    n += part.length;
  }
  return out;
}

export interface CeilingOptions {
  /** FLEETPULSE_STORED_RESOLUTIONS of the processor's run these rows belong to. */
  stored: string;
  /** [512] requests in flight for (a). */
  singleConcurrency?: number;
  /** [128] requests in flight for (b) and (c): the processor's FLEETPULSE_CASSANDRA_WRITE_CONCURRENCY. */
  batchConcurrency?: number;
}

/** The three ceilings for `drains` (see the top of this file), one after the other. */
export async function insertCeilings(
  client: Client,
  drains: readonly WindowToStore[][],
  o: CeilingOptions,
): Promise<{ single: InsertCeiling; batched: InsertCeiling; before: InsertCeiling }> {
  // The store as the processor's run configures it: the same variables, parsed by the processor's own loadConfig.
  const config = loadConfig({ ...process.env, FLEETPULSE_TTL: BenchTtl, FLEETPULSE_STORED_RESOLUTIONS: o.stored });
  const storeFor = (view: Client, concurrency: number, maxBatchRows: number) =>
    aggregateStoreFor(view, config, (line) => process.stderr.write(`  ${line}\n`), { concurrency, maxBatchRows });
  // Statements prepared and the ring learnt before any clock starts: one row written (again later, idempotently).
  await storeFor(client, 1, 1).writeAll([drains[0]![0]!]);
  const run = async (method: CeilingMethod, knowsRing: boolean, concurrency: number, maxBatchRows: number) => {
    const view = countingClient(client, knowsRing);
    const store = storeFor(view.client, concurrency, maxBatchRows);
    let rows = 0;
    const started = performance.now();
    for (const d of drains) rows += await store.writeAll(d);
    const seconds = (performance.now() - started) / 1000;
    const { rowRequests, deviceUpdates } = view.counts;
    return {
      method,
      rows,
      requests: rowRequests,
      rowsPerRequest: rows / rowRequests,
      deviceUpdates,
      concurrency,
      seconds,
      rowsPerSec: rows / seconds,
    };
  };
  const batchConcurrency = o.batchConcurrency ?? config.writeConcurrency;
  return {
    single: await run('one INSERT per row', true, o.singleConcurrency ?? 512, 1),
    batched: await run('processor batches (by replica set, <= 50)', true, batchConcurrency, 50),
    before: await run('single-partition batches of <= 20 (before)', false, batchConcurrency, 20),
  };
}

/**
 * The client as a store sees it, counting its requests: row writes (INSERTs and batches) apart from device-list
 * updates. Without the ring (`getReplicas` absent) the store batches only rows of one Cassandra partition.
 */
function countingClient(
  client: Client,
  knowsRing: boolean,
): { client: Client; counts: { rowRequests: number; deviceUpdates: number } } {
  const counts = { rowRequests: 0, deviceUpdates: 0 };
  const view = {
    execute: (query: string, params?: ArrayOrObject, options?: QueryOptions) => {
      if (query.startsWith('INSERT')) counts.rowRequests++;
      else counts.deviceUpdates++;
      return client.execute(query, params, options);
    },
    batch: (queries: Parameters<Client['batch']>[0], options?: QueryOptions) => {
      counts.rowRequests++;
      return client.batch(queries, options);
    },
    getReplicas: knowsRing ? client.getReplicas.bind(client) : undefined,
  };
  // Only the three methods AggregateStore calls are there: the store takes a Client.
  return { client: view as unknown as Client, counts };
}
