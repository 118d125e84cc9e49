import { randomUUID } from 'node:crypto';
import { connectedCassandra, kafkaClient } from '@fleetpulse/compose/testing';
import { Topics, type TelemetryEvent, type WindowRecord } from '@fleetpulse/contracts';
import type { Client } from 'cassandra-driver';
import type { Kafka, Producer } from 'kafkajs';
import { loadConfig } from './config';
import type { ClosedWindow } from './core';
import { ProcessorMetrics } from './metrics';
import { StreamProcessor } from './processor';
import type { AggregateStore } from './storage/aggregate-store';
import { CheckpointStore } from './storage/checkpoint-store';
import { newTopic, waitFor } from './testing/harness';

/*
 * Provisional snapshots never wait for Cassandra (issue 15): a batch is folded as soon as it is read, while the
 * previous flush is still being written. Here the store holds every write until the test lets it go; events of a
 * second device, sent while the first device's windows are stuck in that write, must show up on metrics.live at once,
 * and nothing may be committed before the held write is done.
 */

let kafka: Kafka;
let producer: Producer;
let cassandra: Client;

beforeAll(async () => {
  kafka = kafkaClient();
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  cassandra = await connectedCassandra();
});

afterAll(async () => {
  await producer.disconnect();
  await cassandra.shutdown();
});

/** An aggregate store whose writes wait for `release()`: what a slow or stopped Cassandra does to a flush. */
class HeldStore {
  writes = 0;
  written = 0;
  private gate!: Promise<void>;
  release!: () => void;

  constructor() {
    this.gate = new Promise((resolve) => (this.release = resolve));
  }

  async writeAll(complete: ClosedWindow[], partial: ClosedWindow[]): Promise<void> {
    this.writes++;
    await this.gate;
    this.written += complete.length + partial.length;
  }

  stores(): boolean {
    return true;
  }
}

const event = (deviceId: string, ts: number, seq: number): TelemetryEvent => ({
  deviceId,
  ts,
  seq,
  metrics: { temp: 20 + seq },
});

describe('stream-processor pipelining', () => {
  it('folds and snapshots new batches while the previous flush is still being written; commits only after it', async () => {
    const topic = await newTopic(kafka, 2);
    const group = `pipe-${randomUUID()}`;
    const config = loadConfig({
      ...process.env,
      FLEETPULSE_PROCESSOR_TOPIC: topic,
      FLEETPULSE_PROCESSOR_GROUP: group,
      FLEETPULSE_COMMIT_INTERVAL_MS: '0',
      FLEETPULSE_PROCESSOR_LIVE_MIN_GAP_MS: '0',
    });
    const store = new HeldStore();
    const checkpoints = new CheckpointStore(cassandra, config.keyspace, group, topic);
    const log: string[] = [];
    const processor = new StreamProcessor(
      kafka,
      config,
      store as unknown as AggregateStore,
      checkpoints,
      new ProcessorMetrics(),
      (line) => log.push(line),
    );
    const stamp = randomUUID().slice(0, 8);
    const first = `pipe-a-${stamp}`;
    const second = `pipe-b-${stamp}`;
    const live: WindowRecord[] = [];
    const watcher = kafka.consumer({ groupId: `pipe-watch-${randomUUID()}`, maxWaitTimeInMs: 100 });
    await watcher.connect();
    await watcher.subscribe({ topic: Topics.live, fromBeginning: false });
    await watcher.run({
      eachMessage: async ({ message }) => {
        const key = message.key?.toString();
        if (key === first || key === second) live.push(JSON.parse(message.value!.toString()) as WindowRecord);
        await Promise.resolve();
      },
    });
    await new Promise((r) => setTimeout(r, 3000)); // the watcher joined, at the topic's end
    await processor.start();
    try {
      // The first device: 4 s of readings, so its first 1 s windows close (lateness 2 s) and a flush begins.
      const t0 = Date.UTC(2031, 0, 1);
      await producer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: 9 }, (_, i) => ({
          key: first,
          value: JSON.stringify(event(first, t0 + i * 500, i)),
        })),
      });
      await waitFor('the first flush to be held in its write', async () => store.writes > 0, 60_000, 100);
      // The second device, while that write is held.
      await producer.send({
        topic,
        acks: -1,
        messages: [1, 2, 3].map((seq) => ({ key: second, value: JSON.stringify(event(second, t0 + seq * 100, seq)) })),
      });
      await waitFor(
        "the second device's readings in a provisional record, the first flush still held",
        async () => live.some((r) => r.deviceId === second && r.metrics.temp?.count === 3),
        60_000,
        100,
      );
      expect(store.written).toBe(0);
      const snapshot = live.filter((r) => r.deviceId === second).pop()!;
      expect({ final: snapshot.final, windowStart: snapshot.windowStart, count: snapshot.metrics.temp?.count }).toEqual(
        { final: false, windowStart: t0, count: 3 },
      );
      // Nothing committed while the write is held: the group has no offset for the topic yet.
      const admin = kafka.admin();
      await admin.connect();
      const committed = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      await admin.disconnect();
      expect(committed[0]!.partitions.map((p) => p.offset)).toEqual(['-1', '-1']);
    } finally {
      store.release();
      await processor.stop();
      await watcher.disconnect();
    }
    // Once released, the held windows were written (and the flushes after them).
    expect(store.written).toBeGreaterThan(0);
  }, 180_000);

  it('stops reading while FLEETPULSE_PROCESSOR_MAX_PENDING_OUTPUTS closed windows wait for a held write, and goes on after it', async () => {
    const topic = await newTopic(kafka, 1);
    const group = `bound-${randomUUID()}`;
    const maxPending = 4;
    const config = loadConfig({
      ...process.env,
      FLEETPULSE_PROCESSOR_TOPIC: topic,
      FLEETPULSE_PROCESSOR_GROUP: group,
      FLEETPULSE_COMMIT_INTERVAL_MS: '0',
      FLEETPULSE_PROCESSOR_LIVE_MIN_GAP_MS: '0',
      FLEETPULSE_PROCESSOR_MAX_PENDING_OUTPUTS: String(maxPending),
    });
    const store = new HeldStore();
    const metrics = new ProcessorMetrics();
    const processor = new StreamProcessor(
      kafka,
      config,
      store as unknown as AggregateStore,
      new CheckpointStore(cassandra, config.keyspace, group, topic),
      metrics,
      () => undefined,
    );
    const pending = async () => (await metrics.pendingOutputs.get()).values[0]?.value ?? 0;
    // Read means folded: the processor's own count of events, not a snapshot seen by another consumer (whose join
    // and first fetch race the processor on a loaded machine).
    const folded = async () => (await metrics.events.get()).values[0]?.value ?? 0;
    const state = async () =>
      `folded ${await folded()}, pending ${await pending()}, writes ${store.writes}, written ${store.written}`;
    const stamp = randomUUID().slice(0, 8);
    await processor.start();
    // 4 s of readings a device: each closes its first two 1 s windows (lateness 2 s).
    const t0 = Date.UTC(2031, 0, 2);
    const readings = (deviceId: string) =>
      Array.from({ length: 9 }, (_, i) => ({ key: deviceId, value: JSON.stringify(event(deviceId, t0 + i * 500, i)) }));
    try {
      await producer.send({ topic, acks: -1, messages: readings(`bound-a-${stamp}`) });
      await waitFor('the first flush to be held in its write', async () => store.writes > 0, 60_000, 100);
      // Three more devices, one batch: six closed windows wait, over the bound of four; reading stops.
      await producer.send({
        topic,
        acks: -1,
        messages: [1, 2, 3].flatMap((n) => readings(`bound-b${n}-${stamp}`)),
      });
      await waitFor('the closed windows over the bound', async () => (await pending()) >= maxPending, 60_000, 100);
      const atBound = await pending();
      const foldedAtBound = await folded();
      // A device sent now is not read while the write is held: nothing more folded, nothing more pending.
      await producer.send({ topic, acks: -1, messages: readings(`bound-late-${stamp}`) });
      await new Promise((r) => setTimeout(r, 4000));
      expect(await state()).toBe(`folded ${foldedAtBound}, pending ${atBound}, writes 1, written 0`);
      store.release();
      // Every event of the five devices folded, the late device's too, and every closed window written (a device's
      // first two windows: 2 x 5).
      await waitFor(
        'the device sent at the bound, read once the write is done',
        async () => (await folded()) >= 5 * 9,
        60_000,
        100,
        state,
      );
      await waitFor('every closed window written', async () => store.written >= 2 * 5, 60_000, 100, state);
    } finally {
      store.release();
      await processor.stop();
    }
  }, 180_000);
});
