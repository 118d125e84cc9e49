import type { TopicMessages } from 'kafkajs';
import { sendChunked } from './send-chunked';

function recorder() {
  const calls: TopicMessages[][] = [];
  return {
    calls,
    producer: {
      sendBatch: ({ topicMessages }: { topicMessages: TopicMessages[] }) => {
        calls.push(topicMessages.map((t) => ({ topic: t.topic, messages: [...t.messages] })));
        return Promise.resolve([]);
      },
    },
  };
}

const msg = (i: number, size = 100) => ({ key: `d-${i}`, value: 'x'.repeat(size) });

describe('sendChunked', () => {
  it('sends everything in order, in requests no larger than the limit', async () => {
    const { calls, producer } = recorder();
    const aggregates = Array.from({ length: 1000 }, (_, i) => msg(i));
    const late = Array.from({ length: 10 }, (_, i) => msg(i, 50));
    await sendChunked(
      producer,
      [
        { topic: 'a', messages: aggregates },
        { topic: 'l', messages: late },
      ],
      10_000,
    );
    expect(calls.length).toBeGreaterThan(10);
    for (const call of calls) {
      const bytes = call
        .flatMap((t) => t.messages)
        .reduce((n, m) => n + 70 + String(m.key).length + String(m.value).length, 0);
      expect(bytes).toBeLessThanOrEqual(10_000);
      for (const t of call) expect(t.messages.length).toBeGreaterThan(0);
    }
    const sent = (topic: string) => calls.flatMap((c) => c.filter((t) => t.topic === topic).flatMap((t) => t.messages));
    expect(sent('a')).toEqual(aggregates);
    expect(sent('l')).toEqual(late);
  });

  it('sends a message larger than the limit on its own rather than dropping it', async () => {
    const { calls, producer } = recorder();
    await sendChunked(producer, [{ topic: 'a', messages: [msg(1), msg(2, 5000), msg(3)] }], 1000);
    expect(calls.map((c) => c[0]!.messages.map((m) => m.key))).toEqual([['d-1'], ['d-2'], ['d-3']]);
  });

  it('never sends a topic without messages, when a topic begins at a chunk boundary', async () => {
    const { calls, producer } = recorder();
    await sendChunked(
      producer,
      [
        { topic: 'a', messages: [msg(1, 800)] },
        { topic: 'l', messages: [msg(2, 800)] },
      ],
      1000,
    );
    expect(calls).toEqual([[{ topic: 'a', messages: [msg(1, 800)] }], [{ topic: 'l', messages: [msg(2, 800)] }]]);
  });

  it('sends nothing for nothing', async () => {
    const { calls, producer } = recorder();
    await sendChunked(producer, [{ topic: 'a', messages: [] }]);
    expect(calls).toEqual([]);
  });
});
