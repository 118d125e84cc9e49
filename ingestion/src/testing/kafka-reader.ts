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

/**
 * Reads `topic` in a fresh consumer group until `done(records)` holds or `timeoutMs` passes, keeping only records
 * that `keep` accepts (tests give their events unique device ids and filter on them). Starts at the records written
 * since `sinceMs` (default: 3 minutes ago), not at the beginning: the shared topics grow large under benchmarks.
 */
export async function readUntil(
  brokers: string[],
  topic: string,
  keep: (r: ReadRecord) => boolean,
  done: (records: ReadRecord[]) => boolean,
  timeoutMs = 30_000,
  sinceMs = Date.now() - 3 * 60_000,
): Promise<ReadRecord[]> {
  const kafka = new Kafka({ clientId: 'fleetpulse-test-reader', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const starts = await admin.fetchTopicOffsetsByTimestamp(topic, sinceMs).finally(() => admin.disconnect());
  const consumer = kafka.consumer({ groupId: `test-reader-${randomUUID()}` });
  const records: ReadRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
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
        if (keep(r)) records.push(r);
        if (done(records)) finish();
      },
    });
    for (const { partition, offset } of starts) consumer.seek({ topic, partition, offset });
    const timer = setTimeout(finish, timeoutMs);
    await finished;
    clearTimeout(timer);
    return records;
  } finally {
    await consumer.disconnect();
  }
}
