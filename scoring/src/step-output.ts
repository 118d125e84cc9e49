/**
 * How a step's scores and its offsets leave the service. Transactional (the default): the step's scores and the
 * commit of its source offsets go in one Kafka transaction, so a step is on anomaly.scores whole and committed, or
 * not at all (aborted: read_committed consumers never see it), and a crash between the two cannot repeat a score.
 * At least once (FLEETPULSE_SCORING_TRANSACTIONS=off, for brokers without transactions): scores, then the commit.
 */
import { randomUUID } from 'node:crypto';
import { firstLine } from '@fleetpulse/runtime';
import type { Consumer, ConsumerGroupMetadata, Kafka, Producer, Transaction } from 'kafkajs';
import { Partitioners } from 'kafkajs';

export interface StepOffsets {
  topic: string;
  partition: number;
  offset: string;
  /**
   * The consumer's generation and member id when the step's batch was fetched (the eachBatch payload's): the group
   * coordinator refuses the offsets once that generation is over (KIP-447, TxnOffsetCommit v3).
   */
  group?: ConsumerGroupMetadata;
}

/** Errors of a commit refused because this consumer is no longer the partition's owner in its group. */
const FencingErrors = new Set(['ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID']);

/**
 * The step's offsets were refused: the partition moved to another member of the group in a rebalance (ILLEGAL_GENERATION,
 * UNKNOWN_MEMBER_ID or FENCED_INSTANCE_ID). Its transaction must be aborted, and its records are the new owner's to
 * score; nothing failed here.
 */
export class PartitionFenced extends Error {
  override readonly name = 'PartitionFenced';
  constructor(
    readonly topic: string,
    readonly partition: number,
    /** The broker's error, e.g. UNKNOWN_MEMBER_ID. */
    readonly reason: string,
    readonly generationId: number | undefined,
    cause: unknown,
  ) {
    super(
      `the offsets of ${topic}[${partition}] were refused (${reason}): generation ${generationId ?? '?'} is over ` +
        'and the partition belongs to another member of the group',
      { cause },
    );
  }
}

/** The fencing error (ILLEGAL_GENERATION ...) that `e` is or wraps, if any. */
export function fencingReason(e: unknown): string | null {
  for (let c = e, depth = 0; c instanceof Error && depth < 5; c = c.cause, depth++) {
    const type = (c as { type?: unknown }).type;
    if (typeof type === 'string' && FencingErrors.has(type)) return type;
  }
  return null;
}

export interface StepOutput {
  /** What the score sink sends through: the step's transaction, or the producer. */
  readonly producer: Pick<Producer, 'send'>;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  /** Before a step's first score. */
  begin(): Promise<void>;
  /**
   * The step's scores (sent) and its offsets (null: unchanged) made durable together. Throws {@link PartitionFenced}
   * when the group refuses the offsets (the step is to be aborted, its partition forgotten).
   */
  commit(offsets: StepOffsets | null): Promise<void>;
  /** The step failed: none of its scores may count (a transaction is aborted; sent scores stay at least once). */
  abort(): Promise<void>;
  readonly transactional: boolean;
}

/** Scores then offsets, each acknowledged: at least once. */
export function atLeastOnceOutput(producer: Producer, consumer: Consumer): StepOutput {
  return {
    producer,
    transactional: false,
    connect: () => producer.connect(),
    disconnect: () => producer.disconnect(),
    begin: () => Promise.resolve(),
    commit: async (offsets) => {
      if (!offsets) return;
      const { topic, partition, offset } = offsets;
      try {
        // kafkajs sends its own generation and member id with these (OffsetCommit).
        await consumer.commitOffsets([{ topic, partition, offset }]);
      } catch (e) {
        const reason = fencingReason(e);
        if (reason) throw new PartitionFenced(topic, partition, reason, offsets.group?.generationId, e);
        throw e;
      }
    },
    abort: () => Promise.resolve(),
  };
}

/**
 * One transaction a step, the offsets committed in it (`sendOffsets`). Fenced by group generation (KIP-447, added to
 * kafkajs by patches/kafkajs+2.2.4.patch): the offsets carry the generation and member id the step's batch was
 * fetched in, and the group coordinator refuses them once the partition moved to another member (a process held past
 * the rebalance timeout is removed from the group while its step runs); the step is then aborted. The consumer reads
 * a newly assigned partition's commit with require_stable, so it waits for a transaction still committing its
 * offsets rather than reading the commit before it. So the transactional id need not be stable across restarts: it
 * is this process's own (`<group>-<uuid>`). A transaction whose end got no answer leaves the producer's state
 * unknown: it is replaced by a new producer (another id); the coordinator aborts the old transaction when it times
 * out.
 */
export class TransactionalOutput implements StepOutput {
  readonly transactional = true;
  private current: Producer;
  private txn: Transaction | null = null;
  private connected = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly groupId: string,
    private readonly log: (line: string) => void,
    private readonly transactionTimeoutMs = 60_000,
  ) {
    this.current = this.newProducer();
  }

  readonly producer: Pick<Producer, 'send'> = {
    send: (record) => {
      if (!this.txn) throw new Error('scores sent outside a step (no transaction begun)');
      return this.txn.send(record);
    },
  };

  private newProducer(): Producer {
    return this.kafka.producer({
      transactionalId: `${this.groupId}-${randomUUID()}`,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: this.transactionTimeoutMs,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  }

  async connect(): Promise<void> {
    await this.current.connect();
    this.connected = true;
  }

  async disconnect(): Promise<void> {
    if (this.txn?.isActive()) await this.abort();
    this.connected = false;
    await this.current.disconnect();
  }

  async begin(): Promise<void> {
    if (!this.connected) await this.connect();
    this.txn = await this.current.transaction();
  }

  async commit(offsets: StepOffsets | null): Promise<void> {
    const txn = this.txn;
    if (!txn) throw new Error('commit without a step');
    try {
      if (offsets)
        await txn.sendOffsets({
          consumerGroupId: this.groupId,
          topics: [{ topic: offsets.topic, partitions: [{ partition: offsets.partition, offset: offsets.offset }] }],
          ...(offsets.group ? { consumerGroupMetadata: offsets.group } : {}),
        });
      await this.end(txn);
    } catch (e) {
      const reason = offsets && fencingReason(e);
      // Left active for abort(): the caller aborts a step whose commit failed.
      if (reason) throw new PartitionFenced(offsets.topic, offsets.partition, reason, offsets.group?.generationId, e);
      throw e;
    }
    this.txn = null;
  }

  /** Ends the step's transaction, its offsets sent: committed. Tests hold a step here (offsets pending). */
  protected end(txn: Transaction): Promise<void> {
    return txn.commit();
  }

  async abort(): Promise<void> {
    const txn = this.txn;
    this.txn = null;
    if (!txn) return;
    if (txn.isActive())
      try {
        await txn.abort();
        return;
      } catch (e) {
        this.log(`aborting a step's transaction failed (${firstLine(e)}); starting a new producer`);
      }
    // Ended neither way for sure (a commit or an abort without an answer): a new producer, a new transaction state.
    const old = this.current;
    this.current = this.newProducer();
    this.connected = false;
    await old.disconnect().catch(() => undefined);
  }
}

/** The step output the configuration asks for. */
export function stepOutput(
  kafka: Kafka,
  consumer: Consumer,
  groupId: string,
  transactional: boolean,
  log: (line: string) => void,
): StepOutput {
  if (transactional) return new TransactionalOutput(kafka, groupId, log);
  return atLeastOnceOutput(
    kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner }),
    consumer,
  );
}
