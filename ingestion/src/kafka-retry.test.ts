/*
 * kafkajs' produce retries as patched (patches/kafkajs+2.2.4.patch, producer/sendMessages.js), the path every send of
 * ingestion takes: a request refused because its partitions' leader moved is sent again to the new leader, even when
 * that broker already answered for other partitions of the same send. Unpatched, those partitions were never sent
 * again and the send resolved: events acknowledged to a device and never written (found on the local cluster with
 * one broker stopped, stream-processor/src/cluster.int.test.ts).
 */

interface Message {
  key: string;
  value: string;
  partition: number;
}
interface TopicData {
  topic: string;
  partitions: { partition: number; messages: Message[]; firstSequence?: number }[];
}
type SendMessages = (o: {
  acks: number;
  timeout: number;
  topicMessages: { topic: string; messages: Message[] }[];
}) => Promise<{ topicName: string; partition: number }[]>;

const createSendMessages = jest.requireActual<(deps: Record<string, unknown>) => SendMessages>(
  'kafkajs/src/producer/sendMessages',
);
const { createErrorFromCode } = jest.requireActual<{ createErrorFromCode: (code: number) => Error }>(
  'kafkajs/src/protocol/error',
);
const createRetry = jest.requireActual<(o: Record<string, number>) => unknown>('kafkajs/src/retry');

const NotLeader = 6;
const topic = 'telemetry.raw';

/** Two brokers, partition p led by broker p + 1; `moves` says where a partition's leadership goes on refresh. */
function fakeCluster(moves: Record<number, number>) {
  const leaders = new Map<number, number>([
    [0, 1],
    [1, 2],
  ]);
  const written: { broker: number; partition: number; keys: string[]; firstSequence?: number }[] = [];
  const refusedOnce = new Set<number>();
  const broker = (nodeId: number) => ({
    nodeId,
    produce: async ({ topicData }: { topicData: TopicData[] }) => {
      await new Promise((r) => setTimeout(r, nodeId === 1 ? 1 : 5));
      const parts = topicData[0]!.partitions;
      // A broker that lost the leadership of a partition refuses the request (kafkajs throws for the whole request).
      for (const p of parts)
        if (
          leaders.get(p.partition) !== nodeId ||
          (moves[p.partition] !== undefined && !refusedOnce.has(p.partition))
        ) {
          refusedOnce.add(p.partition);
          throw createErrorFromCode(NotLeader);
        }
      for (const p of parts)
        written.push({
          broker: nodeId,
          partition: p.partition,
          keys: p.messages.map((m) => m.key),
          firstSequence: p.firstSequence,
        });
      return {
        topics: [
          {
            topicName: topic,
            partitions: parts.map((p) => ({ partition: p.partition, errorCode: 0, baseOffset: '0' })),
          },
        ],
      };
    },
  });
  const brokers = new Map([1, 2].map((n) => [n, broker(n)]));
  const cluster = {
    targetTopics: new Set<string>(),
    isConnected: () => true,
    addMultipleTargetTopics: async () => undefined,
    refreshMetadataIfNecessary: async () => undefined,
    refreshMetadata: async () => {
      for (const [p, to] of Object.entries(moves)) leaders.set(Number(p), to);
    },
    findTopicPartitionMetadata: () => [...leaders].map(([partitionId, leader]) => ({ partitionId, leader })),
    findLeaderForPartitions: (_t: string, partitions: (string | number)[]) => {
      const out: Record<number, number[]> = {};
      for (const id of partitions) {
        const p = Number(id);
        (out[leaders.get(p)!] ??= []).push(p);
      }
      return out;
    },
    findBroker: async ({ nodeId }: { nodeId: string | number }) => brokers.get(Number(nodeId))!,
  };
  return { cluster, written };
}

function fakeEosManager() {
  const sequences = new Map<string, number>();
  return {
    isTransactional: () => false,
    acquireBrokerLock: async () => undefined,
    releaseBrokerLock: async () => undefined,
    getProducerId: () => 1,
    getProducerEpoch: () => 0,
    getSequence: (t: string, p: number) => sequences.get(`${t}|${p}`) ?? 0,
    updateSequence: (t: string, p: number, n: number) =>
      sequences.set(`${t}|${p}`, (sequences.get(`${t}|${p}`) ?? 0) + n),
  };
}

function sendMessagesWith(cluster: unknown): SendMessages {
  const silent = () => undefined;
  return createSendMessages({
    logger: { debug: silent, info: silent, warn: silent, error: silent },
    cluster,
    partitioner: ({ message }: { message: Message }) => message.partition,
    eosManager: fakeEosManager(),
    retrier: createRetry({ retries: 3, initialRetryTime: 1, maxRetryTime: 10 }),
  });
}

const messages: Message[] = [
  { key: 'a', value: '1', partition: 0 },
  { key: 'b', value: '2', partition: 1 },
];

describe('kafkajs produce retries (patched)', () => {
  it('sends a refused partition again to its new leader, though that broker already answered this send', async () => {
    // Partition 1 moves from broker 2 to broker 1, which has just taken partition 0 of the same send.
    const { cluster, written } = fakeCluster({ 1: 1 });
    const result = await sendMessagesWith(cluster)({ acks: -1, timeout: 1000, topicMessages: [{ topic, messages }] });
    expect(written.map((w) => [w.broker, w.partition, w.keys])).toEqual([
      [1, 0, ['a']],
      [1, 1, ['b']],
    ]);
    expect(result.map((r) => r.partition).sort()).toEqual([0, 1]);
  });

  it('writes each partition once, at the sequence its refused attempt had', async () => {
    const { cluster, written } = fakeCluster({ 1: 1 });
    await sendMessagesWith(cluster)({ acks: -1, timeout: 1000, topicMessages: [{ topic, messages }] });
    expect(written.filter((w) => w.partition === 1)).toEqual([
      { broker: 1, partition: 1, keys: ['b'], firstSequence: 0 },
    ]);
  });
});
