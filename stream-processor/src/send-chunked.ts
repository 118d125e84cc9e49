import type { Message, Producer, TopicMessages } from 'kafkajs';

/** A produce request's share of the broker's `message.max.bytes` (1 MiB by default): room for headers and framing. */
export const DefaultMaxRequestBytes = 900 * 1024;

/**
 * Sends `topicMessages` as a sequence of `sendBatch` calls of at most `maxBytes` of keys, values and headers each, in
 * order. A flush can hold tens of thousands of rows; one request for all would exceed the broker's message size
 * limit (a record batch per partition must fit `message.max.bytes`) and hold the producer for seconds.
 */
export async function sendChunked(
  producer: Pick<Producer, 'sendBatch'>,
  topicMessages: readonly TopicMessages[],
  maxBytes: number = DefaultMaxRequestBytes,
): Promise<void> {
  let chunk: TopicMessages[] = [];
  let bytes = 0;
  const flushChunk = async () => {
    const topicMessages = chunk.filter((t) => t.messages.length > 0);
    if (topicMessages.length > 0) await producer.sendBatch({ topicMessages, acks: -1 });
    chunk = [];
    bytes = 0;
  };
  for (const { topic, messages } of topicMessages) {
    let current: Message[] = [];
    chunk.push({ topic, messages: current });
    for (const m of messages) {
      const size = messageBytes(m);
      if (bytes > 0 && bytes + size > maxBytes) {
        await flushChunk();
        current = [];
        chunk.push({ topic, messages: current });
      }
      current.push(m);
      bytes += size;
    }
  }
  await flushChunk();
}

function messageBytes(m: Message): number {
  let n = 70; // record overhead: length, attributes, varint deltas, key/value lengths
  n += typeof m.key === 'string' ? Buffer.byteLength(m.key) : (m.key?.length ?? 0);
  n += typeof m.value === 'string' ? Buffer.byteLength(m.value) : (m.value?.length ?? 0);
  const headers = m.headers;
  if (headers)
    for (const k in headers) {
      const v = headers[k];
      n += Buffer.byteLength(k) + (typeof v === 'string' ? Buffer.byteLength(v) : Buffer.isBuffer(v) ? v.length : 64);
    }
  return n;
}
