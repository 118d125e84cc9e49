/**
 * How a step's scores and its offsets leave the service. Transactional (the default): the step's scores and the
 * commit of its source offsets go in one Kafka transaction, so a step is on anomaly.scores whole and committed, or
 * not at all (aborted: read_committed consumers never see it), and a crash between the two cannot repeat a score.
 * At least once (FLEETPULSE_SCORING_TRANSACTIONS=off, for brokers without transactions): scores, then the commit.
 */
import { randomUUID } from 'node:crypto';
import { firstLine, retry } from '@fleetpulse/runtime';
import type { Admin, Consumer, ConsumerGroupMetadata, Kafka, Producer, Transaction } from 'kafkajs';
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

/** How long a failed step waits to learn whether its unanswered transaction end committed. */
const UnknownEndWaitMs = 30_000;

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
  /**
   * After {@link abort}: when the failed step's transaction ended without an answer (it may have committed), the
   * partition's offset as the group holds it once that transaction ended either way (null: nothing committed), so
   * the step's records are neither lost nor scored twice. Undefined when the consumer's own record of its commits
   * holds (the step was aborted with an answer; at least once) or when the offset could not be read in time.
   */
  committedOffset(topic: string, partition: number): Promise<bigint | null | undefined>;
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
    committedOffset: () => Promise.resolve(undefined),
  };
}

/**
 * One transaction a step, the offsets committed in it (`sendOffsets`). Fenced by group generation (KIP-447, added to
 * kafkajs by patches/kafkajs+2.2.4.patch): the offsets carry the generation and member id the step's batch was
 * fetched in, and the group coordinator refuses them once the partition moved to another member (a process held past
 * the rebalance timeout is removed from the group while its step runs); the step is then aborted. The consumer reads
 * a newly assigned partition's commit with require_stable, so it waits for a transaction still committing its
 * offsets rather than reading the commit before it. So the transactional id need not be stable across restarts: it
 * is this process's own (`<group>-<uuid>`).
 *
 * A transaction whose end got no answer (a broker stopping with the EndTxn in flight) may have committed or not. Its
 * producer is replaced by a new one with the same transactional id, whose InitProducerId fences the old one: the
 * coordinator finishes the old transaction's commit if it had begun, and aborts it otherwise. Then the group's
 * offset, read with require_stable, says which ({@link committedOffset}). Before, the step was scored again from
 * the consumer's own record of its last commit, and a commit that had gone through repeated its scores.
 */
export class TransactionalOutput implements StepOutput {
  readonly transactional = true;
  private current: Producer;
  private txn: Transaction | null = null;
  private connected = false;
  /** This process's transactional id: kept by a replacement producer, so that it fences the one it replaces. */
  private readonly transactionalId: string;
  /** Reads the group's offsets (require_stable) after a failed step; connected on first use. */
  private admin: Admin | null = null;
  /** A transaction ended without an answer since the group's offset was last read: committedOffset reads it. */
  private endUnknown = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly groupId: string,
    private readonly log: (line: string) => void,
    private readonly transactionTimeoutMs = 60_000,
  ) {
    this.transactionalId = `${groupId}-${randomUUID()}`;
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
      transactionalId: this.transactionalId,
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
    const admin = this.admin;
    this.admin = null;
    const [producer] = await Promise.allSettled([this.current.disconnect(), admin?.disconnect()]);
    if (producer.status === 'rejected') throw producer.reason;
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

  /** Ends the step's transaction, aborted. Tests lose its answer here. */
  protected endAborted(txn: Transaction): Promise<void> {
    return txn.abort();
  }

  async abort(): Promise<void> {
    const txn = this.txn;
    this.txn = null;
    if (!txn) return;
    if (txn.isActive())
      try {
        await this.endAborted(txn);
        return;
      } catch (e) {
        this.log(`aborting a step's transaction failed (${firstLine(e)}); starting a new producer`);
      }
    // Ended neither way for sure (a commit or an abort without an answer): a new producer, a new transaction state.
    this.endUnknown = true;
    const old = this.current;
    this.current = this.newProducer();
    this.connected = false;
    await old.disconnect().catch(() => undefined);
    try {
      // Its InitProducerId (same transactional id, next epoch) ends the old transaction: committed if its commit had
      // begun, aborted otherwise. An empty transaction sends nothing else.
      await this.connect();
      await (await this.current.transaction()).abort();
    } catch (e) {
      // The coordinator ends it when it times out; committedOffset waits for that.
      this.log(`fencing the unanswered transaction failed (${firstLine(e)}); it ends when it times out`);
    }
  }

  async committedOffset(topic: string, partition: number): Promise<bigint | null | undefined> {
    if (!this.endUnknown) return undefined;
    // Well under kafkajs' 60 s rebalance timeout: the step holds its partition while it waits.
    const deadline = Date.now() + UnknownEndWaitMs;
    try {
      const offset = await retry(() => this.readCommittedOffset(topic, partition), {
        initialMs: 100,
        maxMs: 2000,
        // UNSTABLE_OFFSET_COMMIT (a transaction still writing its markers) and a coordinator away are retried.
        bail: () => Date.now() >= deadline,
      });
      this.endUnknown = false;
      return offset;
    } catch (e) {
      this.log(
        `reading the committed offset of ${topic}[${partition}] failed (${firstLine(e)}); ` +
          'scoring again from the last commit this process made (a score may repeat)',
      );
      return undefined;
    }
  }

  private async readCommittedOffset(topic: string, partition: number): Promise<bigint | null> {
    if (!this.admin) {
      const admin = this.kafka.admin();
      await admin.connect();
      this.admin = admin;
    }
    const [offsets] = await this.admin.fetchOffsets({ groupId: this.groupId, topics: [topic], requireStable: true });
    const found = offsets?.partitions.find((p) => p.partition === partition);
    if (!found) throw new Error(`no offset for ${topic}[${partition}] in the answer`);
    return Number(found.offset) < 0 ? null : BigInt(found.offset);
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
