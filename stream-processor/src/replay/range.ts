import type { Admin } from 'kafkajs';

/** Where a replay starts or ends: a time (ISO 8601) or an offset (a whole number, the same for every partition). */
export type RangeBound = { kind: 'time'; ms: number; text: string } | { kind: 'offset'; offset: bigint };

export class ReplayError extends Error {
  override name = 'ReplayError';
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export function parseBound(flag: string, text: string): RangeBound {
  if (/^[0-9]+$/.test(text)) return { kind: 'offset', offset: BigInt(text) };
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(ms))
    throw new ReplayError(
      `${flag} "${text}" is neither an ISO 8601 time (2026-11-23T10:00:00Z) nor an offset (a whole number)`,
    );
  return { kind: 'time', ms, text };
}

export interface PartitionRange {
  partition: number;
  /** First offset to read. */
  start: bigint;
  /** One past the last offset to read. */
  end: bigint;
  /** The partition's first retained offset: a range starting there has no history before it. */
  low: bigint;
}

/**
 * Resolves the bounds to offsets per partition (times through Kafka's offset-by-timestamp index), and refuses a range
 * the topic no longer holds or a topic that does not exist, saying which and why.
 */
export async function resolveRange(
  admin: Admin,
  topic: string,
  from: RangeBound,
  to: RangeBound | undefined,
): Promise<PartitionRange[]> {
  const topics = await admin.listTopics();
  if (!topics.includes(topic))
    throw new ReplayError(
      `topic "${topic}" does not exist`,
      `topics here: ${topics
        .filter((t) => !t.startsWith('__'))
        .sort()
        .join(', ')}`,
    );
  const watermarks = await admin.fetchTopicOffsets(topic);
  const atTime = async (ms: number) =>
    new Map((await admin.fetchTopicOffsetsByTimestamp(topic, ms)).map((o) => [o.partition, BigInt(o.offset)]));
  const starts = from.kind === 'time' ? await atTime(from.ms) : undefined;
  const ends = to?.kind === 'time' ? await atTime(to.ms) : undefined;
  const ranges: PartitionRange[] = [];
  for (const w of watermarks) {
    const low = BigInt(w.low);
    const high = BigInt(w.high);
    let start = from.kind === 'offset' ? from.offset : (starts!.get(w.partition) ?? high);
    // Kafka answers -1 when no record is at or after the time: the partition has nothing in range.
    if (start < 0n) start = high;
    if (from.kind === 'offset' && from.offset < low)
      throw new ReplayError(
        `--from offset ${from.offset} is older than what partition ${w.partition} of ${topic} still holds (its first offset is ${low}): the records were deleted by retention`,
        `replay from offset ${low} or later, or from a time after the oldest record`,
      );
    let end = to === undefined ? high : to.kind === 'offset' ? to.offset : (ends!.get(w.partition) ?? high);
    if (end < 0n || end > high) end = high;
    if (end < start) end = start;
    ranges.push({ partition: w.partition, start, end, low });
  }
  return ranges.sort((a, b) => a.partition - b.partition);
}
