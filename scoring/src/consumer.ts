/**
 * The Kafka side of the service: window records read from the source topic (autoCommit off, one partition's batch at
 * a time), handed to the Scorer as one step, and committed only once that step's scores are out. A crash re-reads
 * from the last commit (at least once). A record that is not a window record is counted, logged with its topic,
 * partition and offset, and passed over; its offset moves with the records around it.
 *
 * A step whose scores cannot be delivered (Kafka refusing them past the producer's retries, Cassandra while stopping)
 * rewinds its partition to the last commit, as the stream processor does: the offset is sought back, batches fetched
 * before the seek are stale and passed over unread, and the records are scored again. So no later step of the
 * partition can commit past records whose scores never went out, whatever kafkajs would do with a thrown error.
 */
import { backoffDelay, firstLine, sleep } from '@fleetpulse/runtime';
import type { Consumer, EachBatchPayload } from 'kafkajs';
import { InvalidRecord, parseWindowRecord } from './features';
import type { ScoringMetrics } from './metrics';
import type { RecordIn, Scorer } from './scorer';

/** Unreadable records logged one by one per batch; the rest of the batch's are summed up in one line. */
const InvalidLoggedPerBatch = 10;

export interface WindowConsumerOptions {
  topic: string;
  metrics: ScoringMetrics;
  log: (line: string) => void;
}

export class WindowConsumer {
  /** Per partition, the offset last committed, so an unchanged position is not committed again. */
  private readonly committed = new Map<number, bigint>();
  /** Per partition, where this assignment started reading: the rewind target until a commit is made. */
  private readonly started = new Map<number, bigint>();
  /** Failed deliveries in a row: the wait before reading a rewound partition again grows with them. */
  private failures = 0;
  private running = false;

  constructor(
    private readonly consumer: Consumer,
    private readonly scorer: Scorer,
    private readonly o: WindowConsumerOptions,
  ) {}

  /** True once the consumer runs, until {@link stop}: the Kafka half of /readyz. */
  get consuming(): boolean {
    return this.running;
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    // A crash kafkajs does not restart from leaves nothing consuming: /readyz says so.
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      this.o.log(`consumer crashed (${firstLine(e.payload.error)}); ${e.payload.restart ? 'restarting' : 'stopped'}`);
      if (!e.payload.restart) this.running = false;
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      const assigned = new Set(e.payload.memberAssignment[this.o.topic] ?? []);
      // Under the Scorer's lock, so a revoked partition is not forgotten in the middle of its step.
      void this.scorer.locked(async () => {
        for (const p of this.scorer.partitions())
          if (!assigned.has(p)) {
            this.scorer.dropPartition(p);
            this.committed.delete(p);
          }
        // kafkajs restarts every assigned partition at its commit after a join.
        this.started.clear();
        await Promise.resolve();
      });
    });
    await this.consumer.subscribe({ topic: this.o.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.step(payload),
    });
    this.running = true;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.consumer.stop();
    await this.consumer.disconnect();
  }

  private async step({ batch, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale()) return;
    const first = batch.messages[0];
    const last = batch.messages.at(-1);
    if (!first || !last) return;
    const p = batch.partition;
    if (!this.started.has(p)) this.started.set(p, BigInt(first.offset));
    const t0 = performance.now();
    const records = this.read(batch);
    // Keeps the group membership while a slow Kafka or Cassandra holds the delivery.
    const beat = setInterval(() => void heartbeat().catch(() => undefined), 3000);
    try {
      const delivered = await this.scorer.locked(async () => {
        // Stale: sought back by a rewind after this batch was fetched; it is read again from there.
        if (isStale()) return false;
        try {
          await this.scorer.ingest(records);
        } catch (e) {
          this.rewind(p, e);
          return false;
        }
        // Records that are not window records (and non-final ones) move the position too, once the scores of every
        // record before them are out.
        this.scorer.advance(p, BigInt(last.offset) + 1n);
        await this.commit(p);
        return true;
      });
      if (delivered) {
        this.failures = 0;
        this.o.metrics.batchSeconds.observe((performance.now() - t0) / 1000);
      } else if (isRunning()) await sleep(backoffDelay(this.failures - 1, { initialMs: 500, maxMs: 10_000 }));
    } finally {
      clearInterval(beat);
    }
    await heartbeat();
  }

  /**
   * The step's scores did not all go out: seek the partition back to its last commit (where this assignment started
   * if none was made), so that nothing after it is committed before it is scored and delivered again.
   */
  private rewind(partition: number, cause: unknown): void {
    this.failures++;
    this.o.metrics.deliveryFailures.inc();
    const to = this.committed.get(partition) ?? this.started.get(partition);
    if (to === undefined || !this.running) return; // stopping: the next start reads from the commit anyway
    this.o.log(
      `delivering the scores of ${this.o.topic}[${partition}] failed (${firstLine(cause)}); ` +
        `re-reading it from offset ${to}`,
    );
    this.consumer.seek({ topic: this.o.topic, partition, offset: to.toString() });
  }

  /** The batch's window records; the others counted and logged (the first few one by one). */
  private read(batch: EachBatchPayload['batch']): RecordIn[] {
    const records: RecordIn[] = [];
    const invalid: string[] = [];
    for (const m of batch.messages) {
      try {
        records.push({ partition: batch.partition, offset: BigInt(m.offset), record: parseWindowRecord(m.value) });
      } catch (e) {
        if (!(e instanceof InvalidRecord)) throw e;
        this.o.metrics.invalid.inc({ reason: e.reason });
        if (invalid.length < InvalidLoggedPerBatch)
          this.o.log(`skipping ${batch.topic}[${batch.partition}]@${m.offset}: not a window record: ${e.message}`);
        invalid.push(m.offset);
      }
    }
    if (invalid.length > InvalidLoggedPerBatch)
      this.o.log(
        `skipping ${invalid.length - InvalidLoggedPerBatch} more records of ${batch.topic}[${batch.partition}] ` +
          `that are not window records, up to @${invalid.at(-1)}`,
      );
    return records;
  }

  /** Commits the partition's position if it moved: after the last record whose scores are out. */
  private async commit(partition: number): Promise<void> {
    const o = this.scorer.commitOffset(partition);
    if (o === null || this.committed.get(partition) === o) return;
    await this.consumer.commitOffsets([{ topic: this.o.topic, partition, offset: o.toString() }]);
    this.committed.set(partition, o);
  }
}
