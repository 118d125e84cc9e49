import { Topics, type TelemetryEvent } from '@fleetpulse/contracts';
import { retry } from '@fleetpulse/runtime';
import { type Admin, type Consumer, type EachBatchPayload, type Kafka, type Message, type Producer } from 'kafkajs';
import {
  InvalidRecordError,
  WindowAggregator,
  type ClosedWindow,
  decodeRecordValue,
  type PartitionCheckpoint,
  type PartitionStart,
} from './core';
import type { ProcessorConfig } from './config';
import { dlqMessage, rejectedEventDlqMessage } from './dlq';
import type { ProcessorMetrics } from './metrics';
import { LivePublisher } from './live-publisher';
import { FastDefaultPartitioner } from './partitioner';
import { sendChunked } from './send-chunked';
import type { AggregateStore } from './storage/aggregate-store';
import type { CheckpointStore } from './storage/checkpoint-store';
import type { Tracing } from '@fleetpulse/runtime/tracing';
import { FlushTracing } from './tracing';

export type Log = (line: string) => void;

interface PartitionState {
  /** Records below this offset were accounted for by the checkpoint we resumed from: skip them. */
  skipBelow: bigint | undefined;
  /** The last offset folded (or skipped): the partition has nothing to read while its end is the next one. */
  lastRead: bigint;
}

/**
 * The live loop: telemetry.raw in a consumer group -> WindowAggregator -> Cassandra rows + metrics.aggregates,
 * late events to telemetry.late, invalid records to telemetry.dlq; provisional snapshots of open windows to
 * metrics.live on the side (LivePublisher).
 *
 * Durability order, per flush: drain the aggregator and take each partition's checkpoint in the same synchronous step;
 * write every drained row and publish every output (at once); only then store the checkpoints and commit their offsets (the
 * first record of each partition's oldest open window). A crash anywhere re-reads from the last commit and resumes
 * from its checkpoint, so rows are neither lost nor double-counted; upserts make re-written rows identical.
 * Rebalances bump a generation: flushes begun before it never commit, and all partition state is rebuilt from the
 * checkpoints, since kafkajs restarts every assigned partition at its committed offset after a join.
 *
 * Bounded state (contract v2): checkpoints are incremental (the devices changed since the last one, then a small
 * header), and quiet devices leave memory once stored. Before a batch is folded, the devices it names that are not in
 * memory are read back from the store in one round of batched lookups, so folding itself stays synchronous.
 */
export class StreamProcessor {
  private readonly aggregator: WindowAggregator;
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly admin: Admin;
  /** Provisional snapshots on metrics.live; null when off (FLEETPULSE_PROCESSOR_LIVE_INTERVAL_MS=0). */
  private readonly live: LivePublisher | null;
  /** Flush spans linked to the records they aggregate, and the stage delay (tracing.ts). */
  private readonly trace: FlushTracing;
  private readonly parts = new Map<number, PartitionState>();
  private pendingDlq: Message[] = [];
  private flushChain: Promise<void> = Promise.resolve();
  /** A flush asked for and not yet begun: it will drain whatever is folded until it begins, so asks coalesce. */
  private queuedFlush: Promise<void> | null = null;
  private generation = 0;
  private lastCommitAt = 0;
  /** Set while a failed flush's partitions are being sought back to their commits (see rewind). */
  private rewinding = false;
  /** Resolves when the current rewind has sought every partition. */
  private rewound: Promise<void> = Promise.resolve();
  private tick: NodeJS.Timeout | undefined;
  /** A tick still runs (asking Kafka for the partitions' ends, flushing): the next one is skipped. */
  private ticking = false;
  private running = false;

  constructor(
    kafka: Kafka,
    private readonly config: ProcessorConfig,
    private readonly store: AggregateStore,
    private readonly checkpoints: CheckpointStore,
    private readonly metrics: ProcessorMetrics,
    private readonly log: Log,
    /** Undefined: tracing off. */
    tracing?: Tracing,
  ) {
    this.trace = new FlushTracing(tracing, metrics);
    this.aggregator = new WindowAggregator({
      resolutions: config.aggregator.labels,
      allowedLatenessMs: config.aggregator.allowedLatenessMs,
      idleTimeoutMs: config.aggregator.idleTimeoutMs,
      maxMetricsPerDevice: config.aggregator.maxMetricsPerDevice,
      maxQuietDevices: config.aggregator.maxQuietDevices,
      liveSnapshots: config.aggregator.liveSnapshots,
    });
    this.consumer = kafka.consumer({
      groupId: config.groupId,
      sessionTimeout: config.sessionTimeoutMs,
      heartbeatInterval: 3000,
      maxBytesPerPartition: config.fetchMaxBytesPerPartition,
    });
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: FastDefaultPartitioner,
    });
    this.admin = kafka.admin();
    this.live =
      config.liveIntervalMs > 0
        ? new LivePublisher(
            kafka,
            { intervalMs: config.liveIntervalMs, minGapMs: config.liveMinGapMs, maxPerSec: config.liveMaxPerSec },
            (max, now, gap) => this.aggregator.takeLive(max, now, gap),
            metrics,
            log,
          )
        : null;
  }

  get isRunning(): boolean {
    return this.running;
  }

  stats(): ReturnType<WindowAggregator['stats']> {
    return this.aggregator.stats();
  }

  async start(): Promise<void> {
    await Promise.all([this.producer.connect(), this.consumer.connect(), this.admin.connect(), this.live?.start()]);
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      // kafkajs resumes every assigned partition from its committed offset after a join: rebuild all state.
      this.generation++;
      for (const p of [...this.parts.keys()]) this.dropPartition(p);
      this.pendingDlq = []; // their records are read again
      const assigned = e.payload.memberAssignment[this.config.sourceTopic] ?? [];
      this.log(
        `stream-processor: joined ${this.config.groupId} (generation ${this.generation}), partitions [${assigned.join(',')}]`,
      );
    });
    await this.consumer.subscribe({ topic: this.config.sourceTopic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.onBatch(payload),
    });
    this.running = true;
    this.tick = setInterval(() => void this.onTick(), this.config.tickMs);
  }

  /** Stops reading; the last flush completes (rows written, offsets committed) before it returns. */
  async stop(): Promise<void> {
    if (this.tick) clearInterval(this.tick);
    this.running = false;
    await this.live?.stop();
    // Commit while the group is still joined (kafkajs cannot commit after stop): pause, flush, then leave.
    this.consumer.pause([{ topic: this.config.sourceTopic }]);
    await this.flush(true).catch((e: unknown) =>
      this.log(`stream-processor: final flush failed (will re-read on restart): ${String(e)}`),
    );
    await this.consumer.stop();
    await Promise.allSettled([this.consumer.disconnect(), this.producer.disconnect(), this.admin.disconnect()]);
  }

  private dropPartition(p: number): void {
    this.parts.delete(p);
    if (this.aggregator.assignedPartitions().includes(p)) this.aggregator.dropPartition(p);
  }

  private async assign(p: number, firstOffset: bigint): Promise<PartitionState> {
    let checkpoint: PartitionCheckpoint | undefined;
    try {
      checkpoint = await this.checkpoints.load(p);
    } catch (e) {
      throw new Error(`cannot read the checkpoint of partition ${p} from Cassandra: ${String(e)}`, { cause: e });
    }
    let start: PartitionStart = { kind: 'range' };
    let skipBelow: bigint | undefined;
    if (checkpoint?.commitOffset != null && firstOffset <= BigInt(checkpoint.commitOffset)) {
      start = { kind: 'resume', checkpoint };
      skipBelow = BigInt(checkpoint.commitOffset);
    } else {
      const offsets = await this.admin.fetchTopicOffsets(this.config.sourceTopic);
      const low = offsets.find((o) => o.partition === p)?.low;
      if (low !== undefined && firstOffset <= BigInt(low)) start = { kind: 'beginning' };
      else if (checkpoint)
        this.log(
          `stream-processor: partition ${p}: checkpoint (offset ${checkpoint.commitOffset}) is behind offset ${firstOffset}; windows at the start are written only where absent`,
        );
    }
    try {
      this.aggregator.assignPartition(p, start);
    } catch (e) {
      // A checkpoint of another configuration (resolutions, lateness): start as a range, never over complete rows.
      this.log(
        `stream-processor: partition ${p}: checkpoint not usable (${e instanceof Error ? e.message : String(e)}); starting as a range`,
      );
      this.aggregator.assignPartition(p, { kind: 'range' });
      skipBelow = undefined;
      start = { kind: 'range' };
    }
    this.log(`stream-processor: partition ${p} from offset ${firstOffset} (${start.kind})`);
    const state: PartitionState = { skipBelow, lastRead: -1n };
    this.parts.set(p, state);
    return state;
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const p = batch.partition;
    const generation = this.generation;
    if (batch.messages.length === 0 || !this.running || isStale()) return;
    // Fetched before a rewind's seek: read again from the commit instead (waiting, not re-fetching in a loop).
    if (this.rewinding) return void (await this.rewound);
    // Keep the group membership alive while a slow Cassandra holds the flushes below.
    const beat = setInterval(() => void heartbeat().catch(() => undefined), 3000);
    try {
      const state = this.parts.get(p) ?? (await this.assign(p, BigInt(batch.firstOffset()!)));
      if (generation !== this.generation) return;
      // Decode first, so that the devices absent from memory are read back in one round before any is folded.
      const decoded: (TelemetryEvent[] | InvalidRecordError | undefined)[] = new Array(batch.messages.length);
      for (let i = 0; i < batch.messages.length; i++) {
        const m = batch.messages[i]!;
        if (state.skipBelow !== undefined && BigInt(m.offset) < state.skipBelow) continue;
        try {
          decoded[i] = decodeRecordValue(m.value ?? Buffer.alloc(0));
        } catch (e) {
          if (!(e instanceof InvalidRecordError)) throw e;
          decoded[i] = e;
        }
      }
      await this.restoreAbsentDevices(p, decoded, generation);
      // No await from here to the end of the fold: no flush can evict a device the batch names in between.
      if (!isRunning() || isStale() || generation !== this.generation || !this.parts.has(p)) return;
      let events = 0;
      for (let i = 0; i < batch.messages.length; i++) {
        const m = batch.messages[i]!;
        const d = decoded[i];
        if (d === undefined) {
          resolveOffset(m.offset);
          continue;
        }
        if (d instanceof InvalidRecordError) {
          this.metrics.invalid.inc();
          this.pendingDlq.push(dlqMessage(m, { topic: this.config.sourceTopic, partition: p }, d.message));
          resolveOffset(m.offset);
          continue;
        }
        this.aggregator.ingest(p, m.offset, d);
        events += d.length;
        resolveOffset(m.offset);
      }
      this.metrics.events.inc(events);
      this.trace.consumed(batch.messages);
      const last = BigInt(batch.lastOffset());
      state.lastRead = last;
      this.metrics.lag.set({ partition: String(p) }, Number(BigInt(batch.highWatermark) - last - 1n));
      // Folded at once, whatever is being written (live snapshots see it within one round); the windows it closed go
      // with the next flush. A failure rewinds every partition (see flush): nothing of this batch is committed then.
      void this.requestFlush().catch(() => undefined);
      this.metrics.pendingOutputs.set(this.aggregator.pendingOutputs());
      // Bounded: while too many outputs wait, the batch waits for the flush that drains them (after the running one).
      while (this.aggregator.pendingOutputs() >= this.config.maxPendingOutputs && generation === this.generation)
        await this.requestFlush().catch(() => undefined);
      await heartbeat();
    } finally {
      clearInterval(beat);
    }
  }

  /**
   * Reads back the stored state of the devices these records name that are not in memory (quiet devices that left
   * it, or every device after a restart), in batched lookups. Retried while Cassandra is down (the batch waits).
   */
  private async restoreAbsentDevices(
    p: number,
    decoded: readonly (TelemetryEvent[] | Error | undefined)[],
    generation: number,
  ): Promise<void> {
    /** Looked up and not stored: new devices, folded from nothing. */
    const unknown = new Set<string>();
    // Again until none is absent: a flush ending during a lookup may evict a quiet device the batch names.
    while (generation === this.generation && this.aggregator.assignedPartitions().includes(p)) {
      if (!this.aggregator.needsLookup(p)) return;
      const absent = new Set<string>();
      for (const d of decoded) {
        if (!Array.isArray(d)) continue;
        const id = d[0]!.deviceId;
        if (!unknown.has(id) && !this.aggregator.isResident(p, id)) absent.add(id);
      }
      if (absent.size === 0) return;
      const found = await this.checkpoints.loadDevices(p, this.aggregator.epochOf(p), [...absent]);
      this.metrics.lookups.inc({ found: 'true' }, found.length);
      this.metrics.lookups.inc({ found: 'false' }, absent.size - found.length);
      if (generation !== this.generation || !this.aggregator.assignedPartitions().includes(p)) return;
      this.aggregator.restoreDevices(p, found);
      const stored = new Set(found.map(({ state }) => String(state[0])));
      for (const id of absent) if (!stored.has(id)) unknown.add(id);
    }
  }

  private async onTick(): Promise<void> {
    if (!this.running || this.ticking) return;
    this.ticking = true;
    try {
      await this.advanceQuietPartitions();
      await this.requestFlush().catch(() => undefined); // logged by the rewind it causes
    } finally {
      this.ticking = false;
    }
  }

  /**
   * A partition with nothing to read lets the wall clock (less a margin) close its idle devices' windows. "Nothing to
   * read" is checked against the partition's end asked for now, not against the end the last batch saw: while the
   * processor is behind, records arrive after a batch that reached the end, and the wall clock would then close
   * devices whose next records are still unread (they would be reported late). Processing time moves to the moment
   * the end was asked for, less the margin: every record after that end was received after it.
   */
  private async advanceQuietPartitions(): Promise<void> {
    if (this.parts.size === 0) return;
    const asked = Date.now();
    let ends: { partition: number; high: string }[];
    try {
      ends = await this.admin.fetchTopicOffsets(this.config.sourceTopic);
    } catch {
      return; // Kafka unreachable: processing time waits
    }
    for (const { partition, high } of ends) {
      const s = this.parts.get(partition);
      if (s && s.lastRead + 1n >= BigInt(high) && this.aggregator.assignedPartitions().includes(partition))
        this.aggregator.advanceProcessingTime(partition, asked - this.config.idleSafetyMarginMs);
    }
  }

  /**
   * Serialised: one flush at a time, in order, so checkpoints and commits never go backwards. A failed flush (Kafka
   * refusing the outputs past the producer's retries) has drained windows that are now nowhere but in Cassandra, so
   * no later flush may commit past them: every partition is rewound to its last commit first.
   */
  private flush(force: boolean): Promise<void> {
    const run = this.flushChain.then(() => {
      // Begun: what is folded from now on needs the next flush.
      if (this.queuedFlush === run) this.queuedFlush = null;
      return this.flushOnce(force);
    });
    this.flushChain = run.catch((e: unknown) => this.rewind(e));
    return run;
  }

  /** A flush that drains what is folded now: the one queued if it has not begun (asks coalesce), else a new one. */
  private requestFlush(): Promise<void> {
    if (this.queuedFlush) return this.queuedFlush;
    const run = this.flush(false);
    this.queuedFlush = run;
    return run;
  }

  /**
   * Drops all partition state and seeks every assigned partition back to its committed offset, as a rebalance does:
   * the next batches restore from the checkpoints and rebuild the lost outputs (rewrites are idempotent upserts).
   * Batches that arrive meanwhile are ignored unread. Retries until Kafka answers, or until stop().
   */
  private async rewind(cause: unknown): Promise<void> {
    // Even while stopping: no later flush (the final one) may commit past the failed flush's drained windows.
    this.generation++;
    const partitions = [...this.parts.keys()];
    for (const p of partitions) this.dropPartition(p);
    this.pendingDlq = []; // their records are read again
    if (!this.running) return;
    this.rewinding = true;
    let done!: () => void;
    this.rewound = new Promise((resolve) => (done = resolve));
    this.log(
      `stream-processor: flush failed (${cause instanceof Error ? cause.message : String(cause)}); re-reading partitions [${partitions.join(',')}] from their last commit`,
    );
    const topic = this.config.sourceTopic;
    const seekToCommitted = async () => {
      const [committed, ends] = await Promise.all([
        this.admin.fetchOffsets({ groupId: this.config.groupId, topics: [topic] }),
        this.admin.fetchTopicOffsets(topic),
      ]);
      for (const p of partitions) {
        const offset = committed[0]?.partitions.find((c) => c.partition === p)?.offset;
        const low = ends.find((e) => e.partition === p)?.low ?? '0';
        this.consumer.seek({ topic, partition: p, offset: offset !== undefined && offset !== '-1' ? offset : low });
      }
    };
    // Stopping ends the retries: the next start reads from the last commit anyway.
    await retry(seekToCommitted, {
      initialMs: 500,
      bail: () => !this.running,
      onRetry: (_attempt, delay, e) =>
        this.log(`stream-processor: cannot rewind yet (retrying in ${Math.round(delay)} ms): ${String(e)}`),
    }).catch(() => undefined);
    this.rewinding = false;
    done();
  }

  private async flushOnce(force: boolean): Promise<void> {
    const generation = this.generation;
    const out = this.aggregator.drain();
    this.metrics.pendingOutputs.set(this.aggregator.pendingOutputs());
    const dlq = this.pendingDlq;
    this.pendingDlq = [];
    const commitDue = force || Date.now() - this.lastCommitAt >= this.config.commitIntervalMs;
    // Taken in the same synchronous step as the drain: each names only state whose windows are being written now.
    const checkpoints = commitDue ? [...this.parts.keys()].map((p) => ({ p, cp: this.aggregator.checkpoint(p) })) : [];
    this.metrics.openWindows.set(this.aggregator.stats().openWindows);

    const complete: ClosedWindow[] = [];
    const partial: ClosedWindow[] = [];
    const published: Message[] = [];
    for (const w of out.windows) {
      (w.complete ? complete : partial).push(w);
      // Serialised straight from the window's numbers (the same text as JSON.stringify of its record), as bytes at
      // once: a flush can hold 200,000 records, and each text is a rope of ~60 pieces until encoded (4x the memory).
      if (w.complete) published.push({ key: Buffer.from(w.deviceId), value: Buffer.from(w.recordJson()) });
    }
    for (const r of out.rejected) dlq.push(rejectedEventDlqMessage(r, this.config.sourceTopic));
    if (complete.length + partial.length + out.late.length + dlq.length > 0) {
      const started = process.hrtime.bigint();
      const topicMessages = [];
      if (published.length > 0) topicMessages.push({ topic: Topics.aggregates, messages: published });
      if (out.late.length > 0)
        topicMessages.push({
          topic: Topics.late,
          messages: out.late.map((l) => ({
            key: l.event.deviceId,
            value: JSON.stringify(l.event),
            headers: { missed: l.missed },
          })),
        });
      if (dlq.length > 0) topicMessages.push({ topic: Topics.dlq, messages: dlq });
      const span = this.trace.begin(published);
      // Rows and outputs go at once (Cassandra and Kafka work in parallel); the commit below waits for both.
      await Promise.all([this.store.writeAll(complete, partial), sendChunked(this.producer, topicMessages)]);
      this.trace.published(span, complete);
      this.metrics.writeSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
      const byResolution = new Map<string, number>();
      for (const w of complete) byResolution.set(w.resolution, (byResolution.get(w.resolution) ?? 0) + 1);
      for (const [resolution, n] of byResolution) {
        this.metrics.windows.inc({ resolution }, n);
        if (this.store.stores(resolution)) this.metrics.rows.inc({ resolution }, n);
      }
      this.metrics.late.inc(out.late.length);
      this.metrics.rejected.inc(out.rejected.length);
    }
    if (!commitDue || generation !== this.generation) return;
    const commits = checkpoints.filter(({ p, cp }) => cp.commitOffset !== null && this.parts.has(p));
    if (commits.length === 0) return;
    await Promise.all(commits.map(({ p, cp }) => this.checkpoints.save(p, cp)));
    if (generation !== this.generation) return;
    // Their device states are stored: quiet devices may leave memory.
    for (const { p, cp } of commits) {
      this.metrics.checkpointDevices.inc(cp.devices.length);
      this.metrics.evicted.inc(this.aggregator.persisted(p, cp.seq!));
    }
    this.metrics.residentDevices.set(this.aggregator.stats().devices);
    await this.consumer.commitOffsets(
      commits.map(({ p, cp }) => ({ topic: this.config.sourceTopic, partition: p, offset: cp.commitOffset! })),
    );
    this.lastCommitAt = Date.now();
    this.metrics.commits.inc();
  }
}
