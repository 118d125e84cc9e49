import { bucketOf, resolutionMs, type AggregateRow } from '@fleetpulse/contracts';
import type { Client } from 'cassandra-driver';

export interface AggregateStoreOptions {
  keyspace: string;
  /** Seconds a row lives, per resolution label; absent: forever. */
  ttlSeconds: Record<string, number>;
  /** Writes in flight at once. */
  concurrency: number;
  /** Backoff between retries while Cassandra is slow or down, ms. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  log?: (line: string) => void;
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
  private stopped = false;

  constructor(
    private readonly client: Client,
    private readonly opts: AggregateStoreOptions,
  ) {
    this.insert =
      `INSERT INTO ${opts.keyspace}.aggregates (device_id, metric, resolution, bucket, window_start, window_end, count, sum, min, max, mean, stddev, first, last) ` +
      `VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?`;
    // A window that may lack records this run never read (a replay's first windows) must not overwrite a row.
    this.insertIfAbsent = this.insert.replace(' USING TTL ?', ' IF NOT EXISTS USING TTL ?');
    this.touchDevice = `UPDATE ${opts.keyspace}.devices SET last_seen = ?, metrics = metrics + ? WHERE device_id = ?`;
  }

  /**
   * Writes every row and the device list entries they imply; resolves once all are durable in Cassandra.
   * `partialRows` are written only where no row exists yet.
   */
  async writeAll(rows: readonly AggregateRow[], partialRows: readonly AggregateRow[] = []): Promise<void> {
    if (partialRows.length > 0)
      await this.runBounded(partialRows.map((r) => () => this.writeRow(r, this.insertIfAbsent)));
    if (rows.length === 0) return;
    const devices = new Map<string, { lastSeen: number; metrics: Set<string> }>();
    for (const r of rows) {
      const d = devices.get(r.deviceId);
      if (d) {
        d.lastSeen = Math.max(d.lastSeen, r.windowEnd);
        d.metrics.add(r.metric);
      } else devices.set(r.deviceId, { lastSeen: r.windowEnd, metrics: new Set([r.metric]) });
    }
    const tasks: (() => Promise<unknown>)[] = rows.map((r) => () => this.writeRow(r, this.insert));
    for (const [id, d] of devices) {
      // last_seen only grows in practice; a replay of old data may lower it briefly, which the next live row mends.
      tasks.push(() =>
        this.withRetry(() =>
          this.client.execute(this.touchDevice, [d.lastSeen, [...d.metrics], id], { prepare: true }),
        ),
      );
    }
    await this.runBounded(tasks);
  }

  private writeRow(r: AggregateRow, statement: string): Promise<unknown> {
    const size = resolutionMs(r.resolution);
    const ttl = this.opts.ttlSeconds[r.resolution] ?? 0;
    const params = [
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
      ttl,
    ];
    return this.withRetry(() => this.client.execute(statement, params, { prepare: true }));
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
