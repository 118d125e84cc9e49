import type { Kafka, ProducerBatch } from 'kafkajs';
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
