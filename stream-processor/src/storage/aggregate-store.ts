import { bucketOf, resolutionMs, type AggregateRow } from '@fleetpulse/contracts';
import type { Client } from 'cassandra-driver';
import type { ProcessorConfig } from '../config';

interface DeviceTouch {
  lastSeen: number;
  metrics: Set<string>;
}

export interface AggregateStoreOptions {
  keyspace: string;
  /** Seconds a row lives, per resolution label; absent: forever. */
  ttlSeconds: Record<string, number>;
  /** Writes (inserts or batches) in flight at once. */
  concurrency: number;
  /** Rows of one partition per unlogged batch [20]: bounds a request's size and a retry's cost. */
  maxBatchRows?: number;
  /** Least event time between two `last_seen` updates of a device, ms [5000]. */
  deviceTouchIntervalMs?: number;
  /** Backoff between retries while Cassandra is slow or down, ms. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  log?: (line: string) => void;
}

/** The store as the stream-processor and replay configure it from their shared configuration. */
export function aggregateStoreFor(
  client: Client,
  config: Pick<ProcessorConfig, 'keyspace' | 'ttlSeconds' | 'writeConcurrency'>,
  log: (line: string) => void,
): AggregateStore {
  return new AggregateStore(client, {
    keyspace: config.keyspace,
    ttlSeconds: config.ttlSeconds,
    concurrency: config.writeConcurrency,
    initialBackoffMs: 100,
    maxBackoffMs: 5000,
    log,
  });
}

/**
 * Idempotent upserts of window rows, keyed by (device, metric, resolution, bucket, windowStart), so writing a row
 * twice (a restart re-reading what was open, a replay) leaves the same row. A write that fails is retried with
 * backoff until it succeeds: the caller commits offsets only after `writeAll` resolves, so Cassandra being down
 * pauses the pipeline instead of losing rows or growing memory.
 */
export class AggregateStore {
  private readonly insert: string;
  private readonly insertIfAbsent: string;
  private readonly touchDevice: string;
  private readonly opts: Required<Omit<AggregateStoreOptions, 'log'>> & Pick<AggregateStoreOptions, 'log'>;
  /** What the device list holds per device, as far as this process wrote it. */
  private readonly touched = new Map<string, DeviceTouch>();
  private stopped = false;

  constructor(
    private readonly client: Client,
    options: AggregateStoreOptions,
  ) {
    const opts = (this.opts = { maxBatchRows: 20, deviceTouchIntervalMs: 5000, ...options });
    this.insert =
      `INSERT INTO ${opts.keyspace}.aggregates (device_id, metric, resolution, bucket, window_start, window_end, count, sum, min, max, mean, stddev, first, last) ` +
      `VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?`;
    // A window that may lack records this run never read (a replay's first windows) must not overwrite a row.
    this.insertIfAbsent = this.insert.replace(' USING TTL ?', ' IF NOT EXISTS USING TTL ?');
    // Written at a timestamp of last_seen itself (µs): Cassandra keeps the newest write, so last_seen only grows, even
    // when a replay of old records touches a device the live processor has seen since.
    this.touchDevice = `UPDATE ${opts.keyspace}.devices USING TIMESTAMP ? SET last_seen = ?, metrics = metrics + ? WHERE device_id = ?`;
  }

  /**
   * Writes every row and the device list entries they imply; resolves once all are durable in Cassandra.
   * `partialRows` are written only where no row exists yet.
   *
   * Rows of one Cassandra partition (device, metric, resolution, bucket) go in one unlogged batch of at most
   * `maxBatchRows`: a single-partition batch is one mutation for the node, several times cheaper than as many
   * inserts, and as atomic. A backlog closes many windows per partition at once; live traffic mostly one.
   */
  async writeAll(rows: readonly AggregateRow[], partialRows: readonly AggregateRow[] = []): Promise<void> {
    if (partialRows.length > 0)
      await this.runBounded(partialRows.map((r) => () => this.withRetry(() => this.writeRow(r, this.insertIfAbsent))));
    if (rows.length === 0) return;
    const tasks: (() => Promise<unknown>)[] = [];
    for (const group of this.byPartition(rows)) {
      if (group.length === 1)
        tasks.push(() => this.withRetry(() => this.client.execute(this.insert, group[0], { prepare: true })));
      else {
        const queries = group.map((params) => ({ query: this.insert, params }));
        tasks.push(() => this.withRetry(() => this.client.batch(queries, { prepare: true, logged: false })));
      }
    }
    const { due, written } = this.deviceTouches(rows);
    for (const [id, touch] of due)
      tasks.push(() =>
        this.withRetry(() =>
          this.client.execute(this.touchDevice, [touch.lastSeen * 1000, touch.lastSeen, [...touch.metrics], id], {
            prepare: true,
          }),
        ),
      );
    await this.runBounded(tasks);
    // Remembered only once written: a failed flush touches again on its retry.
    for (const [id, touch] of written) this.touched.set(id, touch);
  }

  /** Each row's insert parameters, grouped by Cassandra partition (the first four), each group cut to `maxBatchRows`. */
  private *byPartition(rows: readonly AggregateRow[]): Generator<unknown[][]> {
    const groups = new Map<string, unknown[][]>();
    for (const r of rows) {
      const params = this.params(r);
      const key = `${r.deviceId}\u0000${r.metric}\u0000${r.resolution}\u0000${String(params[3])}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = []));
      g.push(params);
      if (g.length === this.opts.maxBatchRows) {
        yield g;
        groups.delete(key);
      }
    }
    yield* groups.values();
  }

  /**
   * Device list updates the rows call for: a device's first row from this process, a metric not yet listed, or a
   * window ending `deviceTouchIntervalMs` after the last written `last_seen`. Live views take `lastSeen` from the
   * rows themselves, so the list may lag by that interval; writing it per row would add a write per device per flush.
   */
  private deviceTouches(rows: readonly AggregateRow[]): {
    due: Map<string, DeviceTouch>;
    written: Map<string, DeviceTouch>;
  } {
    const due = new Map<string, DeviceTouch>();
    const written = new Map<string, DeviceTouch>();
    const latest = new Map<string, DeviceTouch>();
    // A window's end may lie ahead of the wall clock (a coarse window closed by idleness, a device clock running
    // fast); last_seen is capped at now, since a write timestamp ahead of it would shadow the updates that follow.
    const now = Date.now();
    for (const r of rows) {
      const seen = Math.min(r.windowEnd, now);
      let t = latest.get(r.deviceId);
      if (!t) latest.set(r.deviceId, (t = { lastSeen: seen, metrics: new Set() }));
      t.lastSeen = Math.max(t.lastSeen, seen);
      t.metrics.add(r.metric);
    }
    for (const [id, t] of latest) {
      const before = this.touched.get(id);
      const newMetric = !before || [...t.metrics].some((m) => !before.metrics.has(m));
      if (newMetric || t.lastSeen - before.lastSeen >= this.opts.deviceTouchIntervalMs) {
        due.set(id, t);
        const metrics = new Set([...(before?.metrics ?? []), ...t.metrics]);
        written.set(id, { lastSeen: Math.max(t.lastSeen, before?.lastSeen ?? 0), metrics });
      }
    }
    return { due, written };
  }

  private writeRow(r: AggregateRow, statement: string): Promise<unknown> {
    return this.client.execute(statement, this.params(r), { prepare: true });
  }

  private params(r: AggregateRow): unknown[] {
    const size = resolutionMs(r.resolution);
    return [
      r.deviceId,
      r.metric,
      r.resolution,
      bucketOf(r.windowStart, size),
      r.windowStart,
      r.windowEnd,
      r.count,
      r.sum,
      r.min,
      r.max,
      r.mean,
      r.stddev,
      r.first,
      r.last,
      this.opts.ttlSeconds[r.resolution] ?? 0,
    ];
  }

  private async runBounded(tasks: (() => Promise<unknown>)[]): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < tasks.length) await tasks[next++]!();
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, tasks.length) }, worker));
  }

  /** Runs `op` until it succeeds, backing off with jitter; gives up only after stop(). */
  async withRetry<T>(op: () => Promise<T>): Promise<T> {
    let backoff = this.opts.initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await op();
      } catch (e) {
        if (this.stopped) throw e;
        if (attempt === 1 || attempt % 10 === 0)
          this.opts.log?.(
            `cassandra write failed (attempt ${attempt}), retrying in ${backoff} ms: ${e instanceof Error ? e.message : String(e)}`,
          );
        const jittered = backoff / 2 + Math.random() * (backoff / 2);
        await new Promise((r) => setTimeout(r, jittered));
        backoff = Math.min(this.opts.maxBackoffMs, backoff * 2);
      }
    }
  }

  /** Makes pending retries give up (on shutdown: their offsets stay uncommitted, so nothing is lost). */
  stop(): void {
    this.stopped = true;
  }
}
