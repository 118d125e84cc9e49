import { allTopics, bucketOf, Keyspace } from '@fleetpulse/contracts';
import { loadStackConfig } from './config';
import { silentLogger } from './log';
import { stackStatus, stackUp } from './stack';
import { connectedCassandra, createTestTopic, kafkaClient, testGroupId } from './testing/helpers';

// The stack is up: jest's globalSetup (compose/src/testing/global-setup.ts) started or reused it.
const config = loadStackConfig();

describe('the local Kafka', () => {
  const kafka = kafkaClient();
  const admin = kafka.admin();
  beforeAll(() => admin.connect());
  afterAll(() => admin.disconnect());

  it('has every contract topic with the configured partitions', async () => {
    const meta = await admin.fetchTopicMetadata({ topics: [...allTopics] });
    expect(meta.topics.map((t) => t.name).sort()).toEqual([...allTopics].sort());
    for (const t of meta.topics) expect(t.partitions.length).toBeGreaterThanOrEqual(config.topicPartitions);
  });

  it('does not create topics on demand', async () => {
    const producer = kafka.producer({ allowAutoTopicCreation: true, retry: { retries: 1 } });
    await producer.connect();
    try {
      await expect(
        producer.send({ topic: `no-such-topic-${process.pid}`, messages: [{ value: 'x' }] }),
      ).rejects.toThrow();
    } finally {
      await producer.disconnect();
    }
  });

  it('delivers what is produced to a consumer group, keyed and in order', async () => {
    const topic = await createTestTopic(admin, { partitions: 3 });
    const producer = kafka.producer();
    await producer.connect();
    const sent = Array.from({ length: 20 }, (_, i) => ({ key: 'sensor-1', value: JSON.stringify({ seq: i }) }));
    await producer.send({ topic, acks: -1, messages: sent });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: testGroupId() });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received: string[] = [];
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ message }) => {
            received.push(message.value!.toString());
            if (received.length === sent.length) resolve();
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();
    expect(received).toEqual(sent.map((m) => m.value));
  });
});

describe('the local Cassandra', () => {
  it('stores and returns window rows of fleetpulse.windows (a frozen map of metric_stats)', async () => {
    const client = await connectedCassandra(Keyspace);
    try {
      const deviceId = `it-${process.pid}-${Date.now()}`;
      const windowStart = 1763803200000;
      const bucket = bucketOf(windowStart, 10_000);
      const metrics = {
        temp: { count: 10, sum: 235.0, min: 22.9, max: 24.1, mean: 23.5, stddev: 0.35, first: 23.0, last: 23.9 },
        humidity: { count: 10, sum: 412.0, min: 40.1, max: 41.9, mean: 41.2, stddev: 0.5, first: 40.1, last: 41.0 },
      };
      const insert = `INSERT INTO windows (device_id, resolution, bucket, window_start, window_end, metrics) VALUES (?, '10s', ?, ?, ?, ?)`;
      await client.execute(insert, [deviceId, bucket, windowStart, windowStart + 10_000, metrics], { prepare: true });
      // Same key again: an upsert, still one row (the replay guarantee of the contract relies on it).
      await client.execute(insert, [deviceId, bucket, windowStart, windowStart + 10_000, metrics], { prepare: true });
      const rs = await client.execute(
        'SELECT window_start, metrics FROM windows WHERE device_id = ? AND resolution = ? AND bucket = ?',
        [deviceId, '10s', bucket],
        { prepare: true },
      );
      expect(rs.rows).toHaveLength(1);
      expect(Number(rs.rows[0]!.get('window_start'))).toBe(windowStart);
      expect(rs.rows[0]!.get('metrics')).toEqual(metrics);
    } finally {
      await client.shutdown();
    }
  });
});

describe('stackUp and stackStatus', () => {
  it('reuse the running stack: a second up starts nothing', async () => {
    const again = await stackUp({ log: silentLogger });
    expect(again.started).toEqual([]);
    expect(again.kafka.state).not.toBe('started');
    expect(again.cassandra.state).not.toBe('started');
    expect(again.cassandra.identity).toMatch(/^5\.0\./);
  });

  it('status reports both components answering', async () => {
    const s = await stackStatus();
    for (const c of [s.kafka, s.cassandra]) {
      expect(['running', 'external']).toContain(c.state);
      expect(c.identity).toBeTruthy();
      if (c.state === 'running') expect(c.pid).toEqual(expect.any(Number));
    }
    expect(s.kafka.port).toBe(config.kafka.port);
  });
});
