import type { Client } from 'cassandra-driver';
import { runBounded } from './run-bounded';
import type { DeviceStateTuple, PartitionCheckpoint, StoredDeviceState } from '../core';

/** Buckets of a partition's device states (contracts/cql/004-processor-device-state.cql). */
export const DeviceStateBuckets = 256;
/** Device states per single-partition unlogged batch, and per `IN` list of a lookup. */
const BatchSize = 50;

/** FNV-1a of the device id: its bucket, stable across processes and versions. */
export function deviceStateBucket(deviceId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < deviceId.length; i++) {
    h ^= deviceId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % DeviceStateBuckets;
}

/**
 * The processor's restart state in Cassandra, per (group, topic, partition): a small header (the checkpoint without
 * its devices: offsets, processing time, epoch) in processor_checkpoints, and each device's event-time state in
 * processor_device_state, written incrementally and read back device by device (contract v2, bounded state).
 */
export class CheckpointStore {
  private readonly select: string;
  private readonly upsert: string;
  private readonly upsertDevice: string;
  private readonly selectDevices: string;

  constructor(
    private readonly client: Client,
    keyspace: string,
    private readonly groupId: string,
    private readonly topic: string,
    /** Runs a Cassandra operation until it succeeds (the aggregate store's retry), or once. */
    private readonly retry: <T>(op: () => Promise<T>) => Promise<T> = (op) => op(),
    private readonly concurrency = 32,
  ) {
    this.select = `SELECT commit_offset, state FROM ${keyspace}.processor_checkpoints WHERE group_id = ? AND topic = ? AND partition = ?`;
    this.upsert = `INSERT INTO ${keyspace}.processor_checkpoints (group_id, topic, partition, commit_offset, state, updated_at) VALUES (?, ?, ?, ?, ?, ?)`;
    this.upsertDevice =
      `INSERT INTO ${keyspace}.processor_device_state (group_id, topic, partition, epoch, bucket, device_id, max_ts, received_at, known_from, frontiers, through) ` +
      `VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`;
    this.selectDevices =
      `SELECT device_id, max_ts, received_at, known_from, frontiers, through FROM ${keyspace}.processor_device_state ` +
      `WHERE group_id = ? AND topic = ? AND partition = ? AND epoch = ? AND bucket = ? AND device_id IN ?`;
  }

  /** The partition's header (v2) or whole checkpoint (v1, as earlier versions stored it); undefined if none. */
  async load(partition: number): Promise<PartitionCheckpoint | undefined> {
    const rs = await this.client.execute(this.select, [this.groupId, this.topic, partition], { prepare: true });
    const row = rs.first();
    if (!row) return undefined;
    return JSON.parse(row.get('state') as string) as PartitionCheckpoint;
  }

  /**
   * Stores a checkpoint: its changed devices first, then the header, so that a header never names state that is not
   * stored. (Device states newer than the header are harmless: each carries the offset it had seen.)
   */
  async save(partition: number, checkpoint: PartitionCheckpoint): Promise<void> {
    if (checkpoint.v === 2 && checkpoint.devices.length > 0)
      await this.saveDevices(partition, checkpoint.epoch!, checkpoint.devices);
    const header = checkpoint.v === 2 ? { ...checkpoint, devices: [] } : checkpoint;
    await this.retry(() =>
      this.client.execute(
        this.upsert,
        [this.groupId, this.topic, partition, checkpoint.commitOffset, JSON.stringify(header), new Date()],
        { prepare: true },
      ),
    );
  }

  /** Reads the stored states of these devices (absent ones are new to the partition's epoch). */
  async loadDevices(partition: number, epoch: string, deviceIds: readonly string[]): Promise<StoredDeviceState[]> {
    const out: StoredDeviceState[] = [];
    const tasks = [...this.byBucket(deviceIds)].map(([bucket, ids]) => async () => {
      const rs = await this.retry(() =>
        this.client.execute(this.selectDevices, [this.groupId, this.topic, partition, epoch, bucket, ids], {
          prepare: true,
        }),
      );
      for (const r of rs.rows) {
        const frontiers = (r.get('frontiers') as (number | null)[] | null) ?? [];
        const state: DeviceStateTuple = [
          r.get('device_id') as string,
          r.get('max_ts') as number | null,
          r.get('received_at') as number | null,
          r.get('known_from') as number | null,
          ...frontiers,
        ];
        out.push({ state, through: Number(r.get('through')) });
      }
    });
    await runBounded(tasks, this.concurrency);
    return out;
  }

  private async saveDevices(partition: number, epoch: string, devices: readonly DeviceStateTuple[]): Promise<void> {
    const groups = new Map<number, unknown[][]>();
    for (const d of devices) {
      const id = String(d[0]);
      const bucket = deviceStateBucket(id);
      const params = [
        this.groupId,
        this.topic,
        partition,
        epoch,
        bucket,
        id,
        d[1],
        d[2],
        d[3],
        d.slice(4, -1).map((f) => (typeof f === 'number' ? f : -Infinity)), // no nulls inside a collection
        d[d.length - 1],
        // Written at the offset it had seen: of two writes of one device (an instance that lost the partition still
        // retrying its last checkpoint, and the one that took it over), the state that has seen more wins.
        Math.max(0, Number(d[d.length - 1])),
      ];
      let g = groups.get(bucket);
      if (!g) groups.set(bucket, (g = []));
      g.push(params);
    }
    const tasks: (() => Promise<unknown>)[] = [];
    for (const g of groups.values())
      for (let i = 0; i < g.length; i += BatchSize) {
        const queries = g.slice(i, i + BatchSize).map((params) => ({ query: this.upsertDevice, params }));
        tasks.push(() =>
          this.retry(() =>
            queries.length === 1
              ? this.client.execute(this.upsertDevice, queries[0]!.params, { prepare: true })
              : this.client.batch(queries, { prepare: true, logged: false }),
          ),
        );
      }
    await runBounded(tasks, this.concurrency);
  }

  private *byBucket(ids: readonly string[]): Generator<[number, string[]]> {
    const groups = new Map<number, string[]>();
    for (const id of ids) {
      const b = deviceStateBucket(id);
      let g = groups.get(b);
      if (!g) groups.set(b, (g = []));
      g.push(id);
      if (g.length === BatchSize) {
        yield [b, g];
        groups.delete(b);
      }
    }
    yield* groups.entries();
  }
}
