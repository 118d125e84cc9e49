import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';

export interface ReadRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer;
  headers: Record<string, string>;
}

/** What a read saw: the records kept, and for each partition the next offset to read. */
interface ReadProgress {
  records: ReadRecord[];
  next: Map<number, bigint>;
}

/**
 * Reads `topic` in a fresh consumer group, from the records written since `sinceMs` (the shared topics grow large
 * under benchmarks), keeping those `keep` accepts, until `done` holds. Throws when `timeoutMs` passes first, with what
 * it saw: a test must never take a short read for an answer.
 */
async function read(
  brokers: string[],
  topic: string,
  keep: (r: ReadRecord) => boolean,
  done: (progress: ReadProgress) => boolean,
  what: string,
  timeoutMs: number,
  sinceMs: number,
): Promise<ReadRecord[]> {
  const kafka = new Kafka({ clientId: 'fleetpulse-test-reader', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const starts = await admin.fetchTopicOffsetsByTimestamp(topic, sinceMs).finally(() => admin.disconnect());
  const progress: ReadProgress = {
    records: [],
    next: new Map(starts.map(({ partition, offset }) => [partition, BigInt(offset)])),
  };
  const consumer = kafka.consumer({ groupId: `test-reader-${randomUUID()}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let finish!: (ok: boolean) => void;
    const finished = new Promise<boolean>((resolve) => (finish = resolve));
    if (done(progress)) finish(true);
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        const r: ReadRecord = {
          topic,
          partition,
          offset: message.offset,
          key: message.key?.toString() ?? null,
          value: message.value ?? Buffer.alloc(0),
          headers,
        };
        progress.next.set(partition, BigInt(message.offset) + 1n);
        if (keep(r)) progress.records.push(r);
        if (done(progress)) finish(true);
      },
    });
    for (const { partition, offset } of starts) consumer.seek({ topic, partition, offset });
    const timer = setTimeout(() => finish(false), timeoutMs);
    const ok = await finished;
    clearTimeout(timer);
    if (!ok)
      throw new Error(
        `${topic}: timed out after ${timeoutMs} ms waiting for ${what}; read ${progress.records.length} matching records`,
      );
    return progress.records;
  } finally {
    await consumer.disconnect();
  }
}

/** Reads `topic` (see `read`) until `done(records)` holds; throws on timeout. */
export function readUntil(
  brokers: string[],
  topic: string,
  keep: (r: ReadRecord) => boolean,
  done: (records: ReadRecord[]) => boolean,
  timeoutMs = 30_000,
  sinceMs = Date.now() - 3 * 60_000,
): Promise<ReadRecord[]> {
  return read(brokers, topic, keep, (p) => done(p.records), 'the records the test waits for', timeoutMs, sinceMs);
}

/**
 * Every matching record written to `topic` before this call: reads each partition up to its end offset as of now.
 * For absence checks ("exactly one", "none of these"): once what was acknowledged is in Kafka, nothing it returns
 * can still be on its way.
 */
export async function readToEnd(
  brokers: string[],
  topic: string,
  keep: (r: ReadRecord) => boolean,
  timeoutMs = 30_000,
  sinceMs = Date.now() - 3 * 60_000,
): Promise<ReadRecord[]> {
  const admin = new Kafka({ clientId: 'fleetpulse-test-reader', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const reached = (p: ReadProgress) =>
    ends.every(({ partition, high }) => (p.next.get(partition) ?? 0n) >= BigInt(high));
  return read(brokers, topic, keep, reached, 'the end of every partition', timeoutMs, sinceMs);
}
