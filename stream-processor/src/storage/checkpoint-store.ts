import type { Client } from 'cassandra-driver';
import type { PartitionCheckpoint } from '../core';

/** Aggregator checkpoints per (group, topic, partition) in Cassandra; see contracts/cql/002-processor-checkpoints.cql. */
export class CheckpointStore {
  private readonly select: string;
  private readonly upsert: string;

  constructor(
    private readonly client: Client,
    keyspace: string,
    private readonly groupId: string,
    private readonly topic: string,
  ) {
    this.select = `SELECT commit_offset, state FROM ${keyspace}.processor_checkpoints WHERE group_id = ? AND topic = ? AND partition = ?`;
    this.upsert = `INSERT INTO ${keyspace}.processor_checkpoints (group_id, topic, partition, commit_offset, state, updated_at) VALUES (?, ?, ?, ?, ?, ?)`;
  }

  async load(partition: number): Promise<PartitionCheckpoint | undefined> {
    const rs = await this.client.execute(this.select, [this.groupId, this.topic, partition], { prepare: true });
    const row = rs.first();
    if (!row) return undefined;
    return JSON.parse(row.get('state') as string) as PartitionCheckpoint;
  }

  async save(partition: number, checkpoint: PartitionCheckpoint): Promise<void> {
    await this.client.execute(
      this.upsert,
      [this.groupId, this.topic, partition, checkpoint.commitOffset, JSON.stringify(checkpoint), new Date()],
      { prepare: true },
    );
  }
}
