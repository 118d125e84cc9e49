/**
 * How a step's scores and its offsets leave the service. Transactional (the default): the step's scores and the
 * commit of its source offsets go in one Kafka transaction, so a step is on anomaly.scores whole and committed, or
 * not at all (aborted: read_committed consumers never see it), and a crash between the two cannot repeat a score.
 * At least once (FLEETPULSE_SCORING_TRANSACTIONS=off, for brokers without transactions): scores, then the commit.
 */
import { randomUUID } from 'node:crypto';
import { firstLine } from '@fleetpulse/runtime';
import type { Consumer, Kafka, Producer, Transaction } from 'kafkajs';
import { Partitioners } from 'kafkajs';

export interface StepOffsets {
  topic: string;
  partition: number;
  offset: string;
}

export interface StepOutput {
  /** What the score sink sends through: the step's transaction, or the producer. */
  readonly producer: Pick<Producer, 'send'>;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  /** Before a step's first score. */
  begin(): Promise<void>;
  /** The step's scores (sent) and its offsets (null: unchanged) made durable together. */
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
      if (offsets) await consumer.commitOffsets([offsets]);
    },
    abort: () => Promise.resolve(),
  };
}

/**
 * One transaction a step, the offsets committed in it (`sendOffsets`). The transactional id is this process's own
 * (`<group>-<uuid>`): kafkajs does not fence by group generation (KIP-447), and a process that lost its partitions in
 * a rebalance has finished its step before the group moves on (kafkajs rejoins between batches), so ids need not be
 * stable across restarts. A transaction whose end got no answer leaves the producer's state unknown: it is replaced
 * by a new producer (another id); the coordinator aborts the old transaction when it times out.
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
    if (offsets)
      await txn.sendOffsets({
        consumerGroupId: this.groupId,
        topics: [{ topic: offsets.topic, partitions: [{ partition: offsets.partition, offset: offsets.offset }] }],
      });
    await txn.commit();
    this.txn = null;
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
