import { Partitioners, type Kafka, type PartitionMetadata, type ProducerBatch } from 'kafkajs';
import { KafkaUnavailableError, RecordTooLargeError } from './errors';
import { GroupCommitProducer, type OutgoingRecord } from './producer';

/** A kafkajs stand-in: records every sendBatch; `fail` may throw for a request. */
function fakeKafka(fail: (batch: ProducerBatch) => unknown = () => undefined, maxMessageBytes = ['1048588']) {
  const requests: { key: string; bytes: number }[][] = [];
  const kafka = {
    producer: () => ({
      connect: async () => undefined,
      disconnect: async () => undefined,
      sendBatch: async (batch: ProducerBatch) => {
        await new Promise((r) => setTimeout(r, 1));
        const error = fail(batch);
        if (error !== undefined) throw error;
        requests.push(
          batch.topicMessages!.flatMap((t) =>
            t.messages.map((m) => ({ key: String(m.key), bytes: (m.value as Buffer).length })),
          ),
        );
      },
    }),
    admin: () => ({
      connect: async () => undefined,
      disconnect: async () => undefined,
      describeConfigs: async () => ({
        resources: maxMessageBytes.map((v) => ({
          configEntries: [{ configName: 'max.message.bytes', configValue: v }],
        })),
      }),
    }),
  } as unknown as Kafka;
  return { kafka, requests };
}

const record = (key: string, bytes: number): OutgoingRecord => ({
  topic: 'telemetry.raw',
  key,
  value: Buffer.alloc(bytes, 0x61),
});

async function connected(kafka: Kafka, maxRequestBytes?: number) {
  const producer = new GroupCommitProducer(kafka, {
    maxInFlightEvents: 1_000_000,
    produceTimeoutMs: 10_000,
    ...(maxRequestBytes === undefined ? { topics: ['telemetry.raw', 'telemetry.dlq'] } : { maxRequestBytes }),
  });
  await producer.connect();
  return producer;
}

const settle = (ps: Promise<void>[]) =>
  Promise.all(
    ps.map((p) =>
      p.then(
        () => 'ok',
        (e: Error) =>
          e instanceof RecordTooLargeError ? 'too-large' : e instanceof KafkaUnavailableError ? 'failed' : e,
      ),
    ),
  );

describe('GroupCommitProducer: requests bounded in bytes', () => {
  it('splits what waits together into requests of at most maxRequestBytes, in order, a large request across several', async () => {
    const { kafka, requests } = fakeKafka();
    const producer = await connected(kafka, 10_000);
    const sends = [
      producer.send([record('a0', 3000), record('a1', 3000)], 2),
      producer.send([record('b0', 6000)], 1),
      producer.send(
        [0, 1, 2, 3, 4, 5, 6, 7].map((i) => record(`c${i}`, 2000)),
        8,
      ), // 16 kB: over one request
      producer.send([record('d0', 25_000)], 1), // alone over the bound: a request of its own
      producer.send([record('e0', 100)], 1),
    ];
    expect(await settle(sends)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    const keys = requests.flat().map((r) => r.key);
    expect(keys).toEqual(['a0', 'a1', 'b0', 'c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'd0', 'e0']);
    for (const request of requests) {
      const bytes = request.reduce((n, r) => n + r.bytes + r.key.length + 32, 0);
      if (request.length > 1) expect(bytes).toBeLessThanOrEqual(10_000);
    }
    expect(requests.find((r) => r.some((m) => m.key === 'd0'))).toHaveLength(1);
    expect(requests.length).toBeGreaterThanOrEqual(4);
    expect(producer.eventsInFlight).toBe(0);
  });

  it('fails only the request whose record is too large for Kafka (not retriable), and stays healthy', async () => {
    const tooLarge = Object.assign(new Error('too large'), { type: 'MESSAGE_TOO_LARGE' });
    const { kafka } = fakeKafka((b) =>
      b.topicMessages!.some((t) => t.messages.some((m) => m.key === 'huge')) ? tooLarge : undefined,
    );
    const producer = await connected(kafka, 10_000);
    const sends = [
      producer.send([record('small-1', 100)], 1),
      producer.send([record('mixed-0', 100), record('huge', 20_000), record('mixed-2', 100)], 3),
      producer.send([record('small-2', 100)], 1),
    ];
    expect(await settle(sends)).toEqual(['ok', 'too-large', 'ok']);
    expect(producer.healthy).toBe(true);
    expect(producer.eventsInFlight).toBe(0);
  });

  it('fails everything that waited with a request Kafka could not take, at once, and reports unhealthy', async () => {
    let calls = 0;
    const { kafka } = fakeKafka(() => (++calls === 1 ? new Error('Connection error: ECONNREFUSED') : undefined));
    const producer = await connected(kafka, 1000);
    const sends = [0, 1, 2, 3].map((i) => producer.send([record(`k${i}`, 600)], 1));
    expect(await settle(sends)).toEqual(['failed', 'failed', 'failed', 'failed']);
    expect(calls).toBe(1);
    expect(producer.healthy).toBe(false);
    expect(producer.eventsInFlight).toBe(0);
  });

  it("takes the topics' smallest max.message.bytes as Kafka reports it, less room for the batch header", async () => {
    expect((await connected(fakeKafka(undefined, ['50000', '40000']).kafka)).maxRequestBytes).toBe(40_000 - 1024);
    expect((await connected(fakeKafka(undefined, []).kafka)).maxRequestBytes).toBe(1_048_588 - 1024);
    expect((await connected(fakeKafka().kafka, 70_000)).maxRequestBytes).toBe(70_000);
  });
});

/**
 * A kafkajs stand-in with several producers: each sendBatch takes 0-3 ms (so requests of different producers
 * overtake each other), then appends its messages to their partitions' logs (the key's hash, as kafkajs' default
 * partitioner), as a broker does on receipt.
 */
function fakeCluster(partitions: number, fail: (producer: number, batch: ProducerBatch) => unknown = () => undefined) {
  const logs = Array.from({ length: partitions }, () => [] as { key: string; value: Buffer; producer: number }[]);
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 0 }));
  let producers = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const kafka = {
    producer: () => {
      const id = producers++;
      let busy = false;
      return {
        connect: async () => undefined,
        disconnect: async () => undefined,
        sendBatch: async (batch: ProducerBatch) => {
          // kafkajs' idempotent producer allows one request in flight: a second would be a bug of ours.
          if (busy) throw new Error(`producer ${id}: two requests in flight`);
          busy = true;
          maxInFlight = Math.max(maxInFlight, ++inFlight);
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          inFlight--;
          busy = false;
          const error = fail(id, batch);
          if (error !== undefined) throw error;
          for (const t of batch.topicMessages!)
            for (const message of t.messages) {
              // The partition our routing set (kafkajs' partitioner returns a message's own), else the key's hash.
              const p = partitioner({
                topic: t.topic,
                partitionMetadata: partitionMetadata as PartitionMetadata[],
                message,
              });
              logs[p]!.push({ key: String(message.key), value: message.value as Buffer, producer: id });
            }
        },
      };
    },
    admin: () => ({
      connect: async () => undefined,
      disconnect: async () => undefined,
      describeConfigs: async () => ({ resources: [] }),
      fetchTopicMetadata: async ({ topics }: { topics: string[] }) => ({
        topics: topics.map((name) => ({ name, partitions: partitionMetadata })),
      }),
    }),
  } as unknown as Kafka;
  return { kafka, logs, maxInFlight: () => maxInFlight };
}

describe('GroupCommitProducer: several producers', () => {
  /** A record of `device` whose value starts with `seq` (4 bytes), `bytes` long. */
  const rec = (device: string, seq: number, bytes = 8): OutgoingRecord => {
    const value = Buffer.alloc(bytes, 0x61);
    value.writeUInt32BE(seq);
    return { topic: 'telemetry.raw', key: device, value };
  };
  const producerOf = (kafka: Kafka) =>
    new GroupCommitProducer(kafka, {
      maxInFlightEvents: 1_000_000,
      produceTimeoutMs: 10_000,
      producers: 3,
      maxRequestBytes: 1_000_000,
      topics: ['telemetry.raw', 'telemetry.dlq'],
    });

  it("keeps each device's records in order on its partition, with several requests in flight", async () => {
    const { kafka, logs, maxInFlight } = fakeCluster(6);
    const producer = producerOf(kafka);
    await producer.connect();
    const devices = Array.from({ length: 24 }, (_, d) => `dev-${d}`);
    const sends: Promise<void>[] = [];
    let sent = 0;
    // Rounds of concurrent requests, each of a few devices' records (seq = when it was sent); some rounds a tick
    // apart and some a few ms, so that requests join queues while other producers' requests are in flight.
    for (let round = 0; round < 60; round++) {
      for (let r = 0; r < 4; r++) {
        const of = devices.filter((_, d) => (d + round + r) % 4 === 0 && (d * 7 + round) % 3 !== 0);
        sends.push(
          producer.send(
            of.map((d, i) => rec(d, round * 4 + r, 20_000 * (1 + ((i + round) % 3)))),
            of.length,
          ),
        );
        sent += of.length;
      }
      await new Promise((resolve) => (round % 3 === 0 ? setTimeout(resolve, 1) : setImmediate(resolve)));
    }
    await Promise.all(sends);
    expect(maxInFlight()).toBeGreaterThan(1);
    expect(logs.flat()).toHaveLength(sent);
    expect(new Set(logs.flat().map((m) => m.producer)).size).toBe(3);
    const metadata = Array.from({ length: 6 }, (_, partitionId) => ({ partitionId, leader: 0 })) as PartitionMetadata[];
    const partitioner = Partitioners.DefaultPartitioner();
    for (const device of devices) {
      const where = logs.flatMap((log, partition) =>
        log.filter((m) => m.key === device).map((m) => ({ ...m, partition })),
      );
      // Sent order is seq order: so must the log be, all on the partition kafkajs hashes the key to, one producer.
      const seqs = where.map((m) => m.value.readUInt32BE(0));
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      const hashed = partitioner({
        topic: 'telemetry.raw',
        partitionMetadata: metadata,
        message: { key: device, value: null },
      });
      expect(new Set(where.map((m) => m.partition))).toEqual(new Set([hashed]));
      expect(new Set(where.map((m) => m.producer)).size).toBe(1);
    }
    expect(producer.eventsInFlight).toBe(0);
    await producer.close();
  });

  it('acknowledges a request only once every producer took its part, and fails it when one did not', async () => {
    let failing = -1;
    const { kafka, logs } = fakeCluster(6, (id) => (id === failing ? new Error('Connection error') : undefined));
    const producer = producerOf(kafka);
    await producer.connect();
    const devices = Array.from({ length: 12 }, (_, d) => `dev-${d}`);
    await producer.send(
      devices.map((d) => rec(d, 1)),
      12,
    );
    expect(new Set(logs.flat().map((m) => m.producer)).size).toBe(3); // twelve devices: every producer has a part
    failing = 1;
    await expect(
      producer.send(
        devices.map((d) => rec(d, 2)),
        12,
      ),
    ).rejects.toBeInstanceOf(KafkaUnavailableError);
    expect(producer.healthy).toBe(false);
    await new Promise((r) => setTimeout(r, 20)); // the other producers' requests end
    // The other producers' parts landed (the device resends; seq deduplicates downstream); none was acknowledged.
    const landed = logs.flat().filter((m) => m.value.readUInt32BE(0) === 2);
    expect(landed.length).toBeGreaterThan(0);
    expect(landed.length).toBeLessThan(12);
    await new Promise((r) => setTimeout(r, 20));
    expect(producer.eventsInFlight).toBe(0);
    await producer.close();
  });

  it.each([1, 3])(
    'with %i producer(s), remembers at most maxRememberedKeys partitions per topic, and routes every key as before once past it',
    async (producers) => {
      const { kafka, logs } = fakeCluster(6);
      const producer = new GroupCommitProducer(kafka, {
        maxInFlightEvents: 1_000_000,
        produceTimeoutMs: 10_000,
        producers,
        maxRequestBytes: 1_000_000,
        topics: ['telemetry.raw'],
        maxRememberedKeys: 16,
      });
      await producer.connect();
      // 100 devices, three rounds: each round passes the limit several times over.
      const devices = Array.from({ length: 100 }, (_, d) => `many-${d}`);
      for (let round = 0; round < 3; round++) {
        await Promise.all(devices.map((d) => producer.send([rec(d, round)], 1)));
        expect(producer.rememberedKeys).toBeGreaterThan(0);
        expect(producer.rememberedKeys).toBeLessThanOrEqual(16);
      }
      // Forgetting costs a hash, never a partition: every device's records sit, in order, where kafkajs hashes its key.
      const metadata = Array.from({ length: 6 }, (_, partitionId) => ({
        partitionId,
        leader: 0,
      })) as PartitionMetadata[];
      const partitioner = Partitioners.DefaultPartitioner();
      for (const device of devices) {
        const where = logs.flatMap((log, partition) =>
          log.filter((m) => m.key === device).map((m) => ({ seq: m.value.readUInt32BE(0), partition })),
        );
        const hashed = partitioner({
          topic: 'telemetry.raw',
          partitionMetadata: metadata,
          message: { key: device, value: null },
        });
        expect(where).toEqual([0, 1, 2].map((seq) => ({ seq, partition: hashed })));
      }
      await producer.close();
    },
  );

  it('refuses a producer count that is not a whole number >= 1', () => {
    const { kafka } = fakeCluster(1);
    expect(() => new GroupCommitProducer(kafka, { maxInFlightEvents: 1, produceTimeoutMs: 100, producers: 0 })).toThrow(
      RangeError,
    );
    expect(
      () => new GroupCommitProducer(kafka, { maxInFlightEvents: 1, produceTimeoutMs: 100, maxRememberedKeys: 0 }),
    ).toThrow(RangeError);
  });
});
