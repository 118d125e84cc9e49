import { randomUUID } from 'node:crypto';
import { Topics } from '@fleetpulse/contracts';
import type { Kafka } from 'kafkajs';
import { InvalidRecordError, WindowAggregator, decodeRecordValue, type ClosedWindow } from '../core';
import type { ResolvedConfig } from '../core';
import type { AggregateStore } from '../storage/aggregate-store';
import { FastDefaultPartitioner } from '../partitioner';
import { sendChunked } from '../send-chunked';
import { ReplayError, type PartitionRange, type RangeBound } from './range';

export interface ReplayOptions {
  topic: string;
  ranges: PartitionRange[];
  from: RangeBound;
  aggregator: ResolvedConfig;
  /** Publish the rebuilt rows to metrics.aggregates so the scoring service scores them with its models of now. */
  rescore: boolean;
  /** Where `rescore` publishes the rebuilt rows [metrics.aggregates]: the topic the scoring service reads. */
  rescoreTopic?: string;
  onProgress?: (p: ReplayProgress) => void;
}

export interface ReplayProgress {
  records: number;
  totalRecords: number;
  events: number;
  rowsWritten: number;
  partialRowsOffered: number;
  invalid: number;
  seconds: number;
}

/**
 * Re-reads a topic range through the same WindowAggregator the live processor uses and upserts the rows it closes.
 * A partition whose range starts mid-stream starts as a `range` (see PartitionStart): windows that may hold records
 * from before the start are written only where no row exists, so a replay never overwrites a row with a partial one;
 * windows still open at the end of the range are not written at all. Nothing is committed: the replay's consumer
 * group is its own and throwaway, so live consumers are untouched.
 */
export async function replay(kafka: Kafka, store: AggregateStore, opts: ReplayOptions): Promise<ReplayProgress> {
  const aggregator = new WindowAggregator({
    resolutions: opts.aggregator.labels,
    allowedLatenessMs: opts.aggregator.allowedLatenessMs,
    idleTimeoutMs: opts.aggregator.idleTimeoutMs,
    // The live processor's limit: an event it refused for too many names is refused here too, same rows.
    maxMetricsPerDevice: opts.aggregator.maxMetricsPerDevice,
  });
  const pending = new Map(opts.ranges.filter((r) => r.end > r.start).map((r) => [r.partition, r]));
  const progress: ReplayProgress = {
    records: 0,
    totalRecords: opts.ranges.reduce((n, r) => n + Number(r.end - r.start), 0),
    events: 0,
    rowsWritten: 0,
    partialRowsOffered: 0,
    invalid: 0,
    seconds: 0,
  };
  if (pending.size === 0) return progress;
  for (const r of pending.values())
    aggregator.assignPartition(r.partition, r.start <= r.low ? { kind: 'beginning' } : { kind: 'range' });
  const started = performance.now();
  const consumer = kafka.consumer({
    groupId: `fleetpulse-replay-${randomUUID()}`,
    maxBytesPerPartition: 8 * 1024 * 1024,
  });
  const producer = opts.rescore
    ? kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: FastDefaultPartitioner })
    : undefined;
  const checkedHead = new Set<number>();
  await consumer.connect();
  await producer?.connect();
  let failure: Error | undefined;
  try {
    await consumer.subscribe({ topic: opts.topic, fromBeginning: true });
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    let seeked = false;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (seeked) return;
      seeked = true;
      for (const r of pending.values())
        consumer.seek({ topic: opts.topic, partition: r.partition, offset: r.start.toString() });
    });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset }) => {
        const range = pending.get(batch.partition);
        if (!range || failure) return;
        for (const m of batch.messages) {
          const offset = BigInt(m.offset);
          if (offset < range.start) continue;
          if (offset >= range.end) break;
          if (
            !checkedHead.has(range.partition) &&
            opts.from.kind === 'time' &&
            range.start === range.low &&
            range.low > 0n &&
            Number(m.timestamp) > opts.from.ms
          ) {
            failure = new ReplayError(
              `--from ${opts.from.text} is older than what partition ${range.partition} of ${opts.topic} still holds: its oldest record is from ${new Date(Number(m.timestamp)).toISOString()} (older ones were deleted by retention)`,
              `replay from ${new Date(Number(m.timestamp)).toISOString()} or later`,
            );
            finish();
            return;
          }
          checkedHead.add(range.partition);
          progress.records++;
          try {
            const events = decodeRecordValue(m.value ?? Buffer.alloc(0));
            aggregator.ingest(range.partition, m.offset, events);
            progress.events += events.length;
          } catch (e) {
            if (!(e instanceof InvalidRecordError)) throw e;
            progress.invalid++; // the live processor already sent it to telemetry.dlq
          }
          resolveOffset(m.offset);
        }
        await writeDrained();
        const last = BigInt(batch.lastOffset());
        if (last + 1n >= range.end || batch.messages.some((m) => BigInt(m.offset) + 1n >= range.end))
          pending.delete(range.partition);
        progress.seconds = (performance.now() - started) / 1000;
        opts.onProgress?.(progress);
        if (pending.size === 0) finish();
      },
    });
    await finished;
  } finally {
    await consumer.disconnect();
    await producer?.disconnect();
  }
  if (failure) throw failure;
  progress.seconds = (performance.now() - started) / 1000;
  return progress;

  async function writeDrained(): Promise<void> {
    const out = aggregator.drain();
    const complete: ClosedWindow[] = [];
    const partial: ClosedWindow[] = [];
    for (const w of out.windows) (w.complete ? complete : partial).push(w);
    await store.writeAll(complete, partial);
    progress.rowsWritten += complete.filter((w) => store.stores(w.resolution)).length;
    progress.partialRowsOffered += partial.filter((w) => store.stores(w.resolution)).length;
    if (producer && complete.length > 0)
      await sendChunked(producer, [
        {
          topic: opts.rescoreTopic ?? Topics.aggregates,
          messages: complete.map((w) => ({ key: w.deviceId, value: w.recordJson() })),
        },
      ]);
  }
}
