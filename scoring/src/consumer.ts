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
 *
 * Exactly once on anomaly.scores (step-output.ts, repeats.ts): a step's scores and its offsets are one Kafka
 * transaction, and a window record the partition scored lately (same bytes, same models) is passed over, so the
 * stream processor publishing windows again (after a refused flush, a crash, partitions moving) repeats no score. A
 * partition this process did not have is first read back over its last `repeatWindow` records before its commit
 * (remembered, not scored), so that holds across restarts and rebalances too.
 *
 * Across rebalances (KIP-447, patches/kafkajs+2.2.4.patch): a step's offsets carry the group generation its batch was
 * fetched in. A step that outlived its generation (this process was removed from the group while scoring, and the
 * partition went to another member, which scores the same records) has its commit refused: the step is aborted, the
 * partition forgotten and logged once, and kafkajs rejoins the group. That is not a delivery failure: nothing is
 * rewound or retried here.
 */
import { backoffDelay, firstLine, sleep } from '@fleetpulse/runtime';
import type { Consumer, ConsumerGroupMetadata, EachBatchPayload } from 'kafkajs';
import { InvalidRecord, parseWindowRecord } from './features';
import type { ScoringMetrics } from './metrics';
import { fingerprint, windowKey, type RecentWindows } from './repeats';
import type { RecordIn, Scorer } from './scorer';
import { PartitionFenced, type StepOutput } from './step-output';
import type { StepTrace } from './tracing';

/** Unreadable records logged one by one per batch; the rest of the batch's are summed up in one line. */
const InvalidLoggedPerBatch = 10;

/** A record of the step, with its window and fingerprint when it is a final one checked for repeats. */
interface ScoredRecord extends RecordIn {
  key?: string;
  fingerprint?: number;
}

export interface WindowConsumerOptions {
  topic: string;
  metrics: ScoringMetrics;
  log: (line: string) => void;
  /** Told of each step's records: its delivery's span links and stage delay (tracing.ts). */
  steps?: StepTrace;
  /** Where the step's scores and offsets go (a transaction, or scores then a commit). */
  output: StepOutput;
  /** Window records scored lately per partition (perPartition 0: no check, no read-back). */
  repeats: RecentWindows;
}

export class WindowConsumer {
  /** Per partition, the offset last committed, so an unchanged position is not committed again. */
  private readonly committed = new Map<number, bigint>();
  /** Per partition, where this assignment started reading: the rewind target until a commit is made. */
  private readonly started = new Map<number, bigint>();
  /** Failed deliveries in a row: the wait before reading a rewound partition again grows with them. */
  private failures = 0;
  /** Partitions being read back before their commit (to this offset), remembered and not scored. */
  private readonly readingBack = new Map<number, bigint>();
  /** Partitions read back (or with nothing before their commit): scored from their commit on. */
  private readonly readBack = new Set<number>();
  private running = false;
  /** The generation (member id and generation id) in which a commit was refused: its later batches are not scored. */
  private fenced: string | null = null;

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
    await Promise.all([this.consumer.connect(), this.o.output.connect()]);
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
        for (const p of [...this.readBack, ...this.readingBack.keys()])
          if (!assigned.has(p)) {
            this.readBack.delete(p);
            this.o.repeats.drop(p);
          }
        // A read-back cut short: kafkajs restarts the partition at its commit, so it starts over.
        this.readingBack.clear();
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
    await this.o.output.disconnect();
  }

  private async step({
    batch,
    heartbeat,
    isRunning,
    isStale,
    consumerGroupMetadata: group,
  }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale()) return;
    // Fetched in a generation the group has left behind: another member scores these records.
    if (this.fenced !== null && this.fenced === generationOf(group)) return;
    const first = batch.messages[0];
    const last = batch.messages.at(-1);
    if (!first || !last) return;
    const p = batch.partition;
    if (this.startReadBack(p, BigInt(first.offset))) return;
    if (!this.started.has(p)) this.started.set(p, BigInt(first.offset));
    let messages = batch.messages;
    const until = this.readingBack.get(p);
    if (until !== undefined) {
      // Before the commit: scored by this partition's earlier owner (or this process before a restart).
      const models = this.scorer.modelsSignature();
      let i = 0;
      for (; i < messages.length && BigInt(messages[i]!.offset) < until; i++) this.remember(p, messages[i]!, models);
      if (i < messages.length || BigInt(last.offset) + 1n >= until) {
        this.readingBack.delete(p);
        this.readBack.add(p);
        this.o.log(
          `${this.o.topic}[${p}]: read back to offset ${until} (${this.o.repeats.size(p)} windows remembered)`,
        );
      }
      messages = messages.slice(i);
      if (messages.length === 0) return;
    }
    const t0 = performance.now();
    // Keeps the group membership while a slow Kafka or Cassandra holds the delivery.
    const beat = setInterval(() => void heartbeat().catch(() => undefined), 3000);
    let fenced = null as PartitionFenced | null;
    try {
      const delivered = await this.scorer.locked(async () => {
        // Stale: sought back by a rewind after this batch was fetched; it is read again from there.
        if (isStale()) return false;
        this.o.steps?.read(batch.topic, messages);
        const models = this.scorer.modelsSignature();
        const { records, repeated } = this.read(batch.topic, p, messages, models);
        try {
          await this.o.output.begin();
          await this.scorer.ingest(records);
          // Records that are not window records (and non-final ones, and repeats) move the position too, once the
          // scores of every record before them are out.
          this.scorer.advance(p, BigInt(last.offset) + 1n);
          await this.commit(p, group);
        } catch (e) {
          await this.o.output.abort().catch(() => undefined);
          if (e instanceof PartitionFenced) {
            fenced = e;
            this.forget(p, group, e);
            return false;
          }
          // A commit without an answer may have gone through: the group's offset says so. Not while stopping: the
          // next start reads that offset anyway.
          const held = this.running && isRunning() ? await this.o.output.committedOffset(this.o.topic, p) : undefined;
          const end = BigInt(last.offset) + 1n;
          if (held !== undefined && held !== null) {
            this.committed.set(p, held);
            if (held >= end) {
              this.o.log(
                held === end
                  ? `${this.o.topic}[${p}]: the step's commit went through though it got no answer ` +
                      `(${firstLine(e)}); reading on from offset ${held}`
                  : `${this.o.topic}[${p}]: the group's offset is ${held}, past this step's end (${end}), after ` +
                      `${firstLine(e)}; reading on from there`,
              );
              this.scorer.resetTo(p, held);
              // Past what kafkajs fetches next: an earlier transaction whose end was unknown committed later.
              if (held > end) this.consumer.seek({ topic: this.o.topic, partition: p, offset: held.toString() });
              this.delivered(p, records, repeated);
              return true;
            }
          }
          this.scorer.resetTo(p, this.committed.get(p) ?? this.started.get(p) ?? null);
          this.rewind(p, e);
          return false;
        }
        this.delivered(p, records, repeated);
        return true;
      });
      if (delivered) {
        this.failures = 0;
        this.o.metrics.batchSeconds.observe((performance.now() - t0) / 1000);
      } else if (!fenced && isRunning())
        await sleep(backoffDelay(this.failures - 1, { initialMs: 500, maxMs: 10_000 }));
    } finally {
      clearInterval(beat);
    }
    // The broker's refusal, out of eachBatch: kafkajs rejoins the group at once (as when a heartbeat learns of a
    // rebalance), instead of fetching on with a generation that is over.
    if (fenced) throw fenced.cause;
    await heartbeat();
  }

  /** The step's scores and offsets are committed: its final window records are remembered as scored. */
  private delivered(p: number, records: ScoredRecord[], repeated: number): void {
    if (repeated > 0) this.o.metrics.repeats.inc(repeated);
    for (const r of records) if (r.fingerprint !== undefined) this.o.repeats.remember(p, r.key!, r.fingerprint);
  }

  /**
   * The partition's commit was refused: it belongs to another member now. What this process knew of it (position,
   * commit, read-back, windows scored) is dropped; the generation is marked so its other batches are passed over.
   * Logged once per generation, however many of its partitions were refused.
   */
  private forget(p: number, group: ConsumerGroupMetadata, e: PartitionFenced): void {
    this.scorer.dropPartition(p);
    this.committed.delete(p);
    this.started.delete(p);
    this.readingBack.delete(p);
    this.readBack.delete(p);
    this.o.repeats.drop(p);
    const generation = generationOf(group);
    if (this.fenced === generation) return;
    this.fenced = generation;
    this.o.log(
      `${this.o.topic}[${p}]: step aborted, its scores discarded: ${e.message} (a rebalance went on without this ` +
        'process, e.g. a step longer than the rebalance timeout); rejoining the group',
    );
  }

  /**
   * A partition's first batch since this process has it: unless it starts at the topic's beginning, seek back over the
   * `repeats.perPartition` records before it and read them back first (they are remembered, not scored). True when
   * the batch is to be passed over for that.
   */
  private startReadBack(p: number, from: bigint): boolean {
    if (this.readBack.has(p) || this.readingBack.has(p)) return false;
    const window = BigInt(this.o.repeats.perPartition);
    if (window === 0n || from === 0n) {
      this.readBack.add(p);
      return false;
    }
    this.readingBack.set(p, from);
    this.started.set(p, from);
    const back = from > window ? from - window : 0n;
    this.consumer.seek({ topic: this.o.topic, partition: p, offset: back.toString() });
    return true;
  }

  /** A record read back from before the partition's commit: a final window record is remembered as scored. */
  private remember(p: number, m: EachBatchPayload['batch']['messages'][number], models: string): void {
    if (!m.value) return;
    try {
      const r = parseWindowRecord(m.value);
      if (r.final !== false)
        this.o.repeats.remember(p, windowKey(r.deviceId, r.resolution, r.windowStart), fingerprint(m.value, models));
    } catch (e) {
      if (!(e instanceof InvalidRecord)) throw e;
    }
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

  /**
   * The step's window records, less the final ones the partition scored lately or the step holds already (same
   * bytes, same models: published again); the others counted and logged (the first few one by one).
   */
  private read(
    topic: string,
    partition: number,
    messages: EachBatchPayload['batch']['messages'],
    models: string,
  ): { records: ScoredRecord[]; repeated: number } {
    const records: ScoredRecord[] = [];
    const invalid: string[] = [];
    const checking = this.o.repeats.perPartition > 0;
    // This step's own final windows: a record and its repeat can come in one batch (a consumer behind, catching up
    // after an outage), before either is remembered.
    const inStep = new Map<string, number>();
    let repeated = 0;
    for (const m of messages) {
      try {
        const record = parseWindowRecord(m.value);
        const r: ScoredRecord = { partition, offset: BigInt(m.offset), record };
        if (checking && record.final !== false) {
          r.key = windowKey(record.deviceId, record.resolution, record.windowStart);
          r.fingerprint = fingerprint(m.value!, models);
          if (this.o.repeats.has(partition, r.key, r.fingerprint) || inStep.get(r.key) === r.fingerprint) {
            repeated++;
            continue;
          }
          inStep.set(r.key, r.fingerprint);
        }
        records.push(r);
      } catch (e) {
        if (!(e instanceof InvalidRecord)) throw e;
        this.o.metrics.invalid.inc({ reason: e.reason });
        if (invalid.length < InvalidLoggedPerBatch)
          this.o.log(`skipping ${topic}[${partition}]@${m.offset}: not a window record: ${e.message}`);
        invalid.push(m.offset);
      }
    }
    if (invalid.length > InvalidLoggedPerBatch)
      this.o.log(
        `skipping ${invalid.length - InvalidLoggedPerBatch} more records of ${topic}[${partition}] ` +
          `that are not window records, up to @${invalid.at(-1)}`,
      );
    return { records, repeated };
  }

  /**
   * Commits the partition's position if it moved: after the last record whose scores are out; fenced by the
   * generation the step's batch was fetched in.
   */
  private async commit(partition: number, group: ConsumerGroupMetadata): Promise<void> {
    const o = this.scorer.commitOffset(partition);
    const moved = o !== null && this.committed.get(partition) !== o;
    await this.o.output.commit(moved ? { topic: this.o.topic, partition, offset: o.toString(), group } : null);
    if (moved) this.committed.set(partition, o);
  }
}

/** A member's generation, as one key. */
function generationOf(group: ConsumerGroupMetadata): string {
  return `${group.memberId}@${group.generationId}`;
}
