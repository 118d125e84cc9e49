import type { Client } from 'cassandra-driver';
import { retry } from '@fleetpulse/runtime';
import { runBounded } from './run-bounded';
import type { ProcessorConfig } from '../config';
import { windowRowParams, type WindowToStore } from './window-row';

export type { WindowToStore } from './window-row';

interface DeviceTouch {
  lastSeen: number;
  metrics: Set<string>;
}

export interface AggregateStoreOptions {
  keyspace: string;
  /** Seconds a row lives, per resolution label; absent or 0: forever. */
  ttlSeconds: Record<string, number>;
  /** Resolutions written to Cassandra; windows of the others are not stored (live only). */
  storedResolutions: readonly string[];
  /** Writes (inserts or batches) in flight at once. */
  concurrency: number;
  /** Rows per unlogged batch [50]: bounds a request's size and a retry's cost. */
  maxBatchRows?: number;
  /** Least event time between two `last_seen` updates of a device, ms [5000]. */
  deviceTouchIntervalMs?: number;
  /** Devices whose device-list entry is remembered [100,000]; beyond, the oldest is forgotten (see `remember`). */
  maxRememberedDevices?: number;
  /** Cassandra partitions whose replicas are remembered [200,000]; beyond, all are forgotten (see `replicasOf`). */
  maxRememberedPartitions?: number;
  /** Backoff between retries while Cassandra is slow or down, ms. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  log?: (line: string) => void;
}

/** The store as the stream-processor and replay configure it from their shared configuration. */
export function aggregateStoreFor(
  client: Client,
  config: Pick<ProcessorConfig, 'keyspace' | 'ttlSeconds' | 'writeConcurrency' | 'storedResolutions'>,
  log: (line: string) => void,
  /** The benchmark's ceilings vary these, all else as the processor has it. */
  overrides: Partial<Pick<AggregateStoreOptions, 'concurrency' | 'maxBatchRows'>> = {},
): AggregateStore {
  return new AggregateStore(client, {
    keyspace: config.keyspace,
    ttlSeconds: config.ttlSeconds,
    storedResolutions: config.storedResolutions,
    concurrency: config.writeConcurrency,
    initialBackoffMs: 100,
    maxBackoffMs: 5000,
    log,
    ...overrides,
  });
}

/**
 * Idempotent upserts of window records (contract v2, "Storage"), one row per (device, resolution, window) holding
 * every metric, keyed by (device, resolution, bucket, windowStart), so writing a window twice (a restart re-reading
 * what was open, a replay) leaves the same row. A write that fails is retried with backoff until it succeeds: the
 * caller commits offsets only after `writeAll` resolves, so Cassandra being down pauses the pipeline instead of
 * losing rows or growing memory.
 */
export class AggregateStore {
  private readonly insert: string;
  private readonly insertIfAbsent: string;
  private readonly touchDevice: string;
  private readonly opts: Required<Omit<AggregateStoreOptions, 'log'>> & Pick<AggregateStoreOptions, 'log'>;
  private readonly stored: ReadonlySet<string>;
  /** What the device list holds per device, as far as this process wrote it (bounded: see deviceTouches). */
  private readonly touched = new Map<string, DeviceTouch>();
  private stopped = false;
  private readonly replicaCache = new Map<string, string>();
  private replicaCacheSince = Date.now();

  constructor(
    private readonly client: Client,
    options: AggregateStoreOptions,
  ) {
    const opts = (this.opts = {
      maxBatchRows: 50,
      deviceTouchIntervalMs: 5000,
      maxRememberedDevices: 100_000,
      maxRememberedPartitions: 200_000,
      ...options,
    });
    this.stored = new Set(opts.storedResolutions);
    this.insert =
      `INSERT INTO ${opts.keyspace}.windows (device_id, resolution, bucket, window_start, window_end, metrics) ` +
      `VALUES (?, ?, ?, ?, ?, ?) USING TTL ?`;
    // A window that may lack records this run never read (a replay's first windows) must not overwrite a row.
    this.insertIfAbsent = this.insert.replace(' USING TTL ?', ' IF NOT EXISTS USING TTL ?');
    // Written at a timestamp of last_seen itself (µs): Cassandra keeps the newest write, so last_seen only grows, even
    // when a replay of old records touches a device the live processor has seen since.
    this.touchDevice = `UPDATE ${opts.keyspace}.devices USING TIMESTAMP ? SET last_seen = ?, metrics = metrics + ? WHERE device_id = ?`;
  }

  /** Whether windows of this resolution are written (else live only). */
  stores(resolution: string): boolean {
    return this.stored.has(resolution);
  }

  /**
   * Writes every window of a stored resolution, and the device list entries they imply; resolves once all are
   * durable in Cassandra. `partialWindows` are written only where no row exists yet. Returns the rows written.
   *
   * Rows go in unlogged batches of rows that share their replicas (the same Cassandra partition, or partitions the
   * same nodes own), at most `maxBatchRows` each, rows of one partition next to each other: a batch is one request
   * the coordinator applies locally, several times cheaper than as many inserts (live traffic closes one window per
   * device and flush, so single-partition batches alone would leave most rows single). Where the driver does not
   * know the ring yet, only rows of one partition share a batch.
   */
  async writeAll(windows: readonly WindowToStore[], partialWindows: readonly WindowToStore[] = []): Promise<number> {
    const partial = partialWindows.filter((w) => this.stored.has(w.resolution));
    if (partial.length > 0)
      await runBounded(
        partial.map((w) => () => this.withRetry(() => this.writeRow(w, this.insertIfAbsent))),
        this.opts.concurrency,
      );
    const full = windows.filter((w) => this.stored.has(w.resolution));
    const tasks: (() => Promise<unknown>)[] = [];
    for (const group of this.byReplicas(full)) {
      if (group.length === 1)
        tasks.push(() => this.withRetry(() => this.client.execute(this.insert, group[0], { prepare: true })));
      else {
        const queries = group.map((params) => ({ query: this.insert, params }));
        tasks.push(() => this.withRetry(() => this.client.batch(queries, { prepare: true, logged: false })));
      }
    }
    // The device list follows every window, stored or live only: it is what the dashboard lists.
    const { due, written } = this.deviceTouches(windows);
    for (const [id, touch] of due)
      tasks.push(() =>
        this.withRetry(() =>
          this.client.execute(this.touchDevice, [touch.lastSeen * 1000, touch.lastSeen, [...touch.metrics], id], {
            prepare: true,
          }),
        ),
      );
    await runBounded(tasks, this.opts.concurrency);
    // Remembered only once written: a failed flush touches again on its retry.
    for (const [id, touch] of written) this.remember(id, touch);
    return full.length + partial.length;
  }

  /**
   * Each window's insert parameters, grouped by the replicas of its Cassandra partition (else by the partition), rows
   * of one partition adjacent, each group cut to `maxBatchRows`.
   */
  private *byReplicas(windows: readonly WindowToStore[]): Generator<unknown[][]> {
    const groups = new Map<string, Map<string, Buffer[][]>>();
    for (const w of windows) {
      const params = this.params(w);
      const partition = routingKey(params[0]!, params[1]!, params[2]!);
      const partKey = partition.toString('latin1');
      const groupKey = this.replicasOf(partition, partKey) ?? partKey;
      let g = groups.get(groupKey);
      if (!g) groups.set(groupKey, (g = new Map()));
      let rows = g.get(partKey);
      if (!rows) g.set(partKey, (rows = []));
      rows.push(params);
    }
    const max = this.opts.maxBatchRows;
    for (const g of groups.values()) {
      let batch: Buffer[][] = [];
      for (const rows of g.values())
        for (const params of rows) {
          batch.push(params);
          if (batch.length === max) {
            yield batch;
            batch = [];
          }
        }
      if (batch.length > 0) yield batch;
    }
  }

  /**
   * The replica set owning a partition (its routing key), as a key; null while the driver does not know the ring.
   * Remembered per partition (hashing a key costs the driver a dozen Long objects): a device's partitions recur every
   * flush. Forgotten every minute, and past `maxRememberedPartitions`, so a changed ring is seen.
   */
  private replicasOf(routing: Buffer, key: string): string | null {
    const now = Date.now();
    if (this.replicaCache.size >= this.opts.maxRememberedPartitions || now - this.replicaCacheSince > 60_000) {
      this.replicaCache.clear();
      this.replicaCacheSince = now;
    }
    const known = this.replicaCache.get(key);
    if (known !== undefined) return known;
    const hosts = this.client.getReplicas?.(this.opts.keyspace, routing) as { address: string }[] | null | undefined;
    if (!hosts || hosts.length === 0) return null;
    const replicas = hosts.length === 1 ? hosts[0]!.address : hosts.map((h) => h.address).join(',');
    this.replicaCache.set(key, replicas);
    return replicas;
  }

  /**
   * Device list updates the windows call for: a device's first window from this process, a metric not yet listed,
   * or a window ending `deviceTouchIntervalMs` after the last written `last_seen`. Live views take `lastSeen` from
   * the windows themselves, so the list may lag by that interval; writing it per window would add a write per device
   * per flush.
   */
  private deviceTouches(windows: readonly WindowToStore[]): {
    due: Map<string, DeviceTouch>;
    written: Map<string, DeviceTouch>;
  } {
    const due = new Map<string, DeviceTouch>();
    const written = new Map<string, DeviceTouch>();
    const latest = new Map<string, DeviceTouch>();
    // A window's end may lie ahead of the wall clock (a coarse window closed by idleness, a device clock running
    // fast); last_seen is capped at now, since a write timestamp ahead of it would shadow the updates that follow.
    const now = Date.now();
    for (const w of windows) {
      const seen = Math.min(w.windowEnd, now);
      let t = latest.get(w.deviceId);
      if (!t) latest.set(w.deviceId, (t = { lastSeen: seen, metrics: new Set() }));
      t.lastSeen = Math.max(t.lastSeen, seen);
      for (let i = 0; i < w.metricCount; i++) t.metrics.add(w.metricName(i));
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

  /**
   * What this process remembers of the device list is a cache, bounded at `maxRememberedDevices` (the oldest entry goes
   * first): a device forgotten is touched again with its next window, which is only one more idempotent write.
   */
  private remember(id: string, touch: DeviceTouch): void {
    this.touched.delete(id);
    this.touched.set(id, touch);
    if (this.touched.size > this.opts.maxRememberedDevices) this.touched.delete(this.touched.keys().next().value!);
  }

  private writeRow(w: WindowToStore, statement: string): Promise<unknown> {
    return this.client.execute(statement, this.params(w), { prepare: true });
  }

  private params(w: WindowToStore): Buffer[] {
    return windowRowParams(w, this.opts.ttlSeconds[w.resolution] ?? 0);
  }

  /** Runs `op` until it succeeds, backing off with jitter; gives up only after stop(). */
  withRetry<T>(op: () => Promise<T>): Promise<T> {
    return retry(op, {
      initialMs: this.opts.initialBackoffMs,
      maxMs: this.opts.maxBackoffMs,
      bail: () => this.stopped,
      onRetry: (attempt, delay, e) => {
        if (attempt === 1 || attempt % 10 === 0)
          this.opts.log?.(
            `cassandra write failed (attempt ${attempt}), retrying in ${Math.round(delay)} ms: ${e instanceof Error ? e.message : String(e)}`,
          );
      },
    });
  }

  /** Makes pending retries give up (on shutdown: their offsets stay uncommitted, so nothing is lost). */
  stop(): void {
    this.stopped = true;
  }
}

/** A composite partition key as the driver hashes it: each component as uint16 length, bytes, and a zero byte. */
function routingKey(...parts: Buffer[]): Buffer {
  let n = 0;
  for (const p of parts) n += p.length + 3;
  const key = Buffer.allocUnsafe(n);
  let at = 0;
  for (const p of parts) {
    at = key.writeUInt16BE(p.length, at);
    at += p.copy(key, at);
    key[at++] = 0;
  }
  return key;
}
