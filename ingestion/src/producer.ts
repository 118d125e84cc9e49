import { Partitioners, type Kafka, type Message, type Producer, type TopicMessages } from 'kafkajs';
import { KafkaUnavailableError, OverloadedError } from './errors';

export interface OutgoingRecord {
  topic: string;
  key: string | null;
  value: Buffer;
  headers?: Record<string, string>;
}

export interface ProducerObserver {
  onBatch?(records: number, events: number, seconds: number, ok: boolean): void;
  onInFlight?(events: number): void;
}

interface Pending {
  records: OutgoingRecord[];
  events: number;
  resolve: () => void;
  reject: (e: Error) => void;
  settled: boolean;
  timer: NodeJS.Timeout;
}

/**
 * Group commit over one idempotent kafkajs producer (acks from all in-sync replicas).
 *
 * kafkajs' idempotent producer is only safe with one request in flight, so one `sendBatch` runs at a time and
 * everything that arrives meanwhile rides in the next one: under load batches grow, which is what gives
 * throughput. A caller's promise resolves only once Kafka acknowledged its records; it rejects with a retriable
 * error after `produceTimeoutMs` (the records may still land: the device's retry is then deduplicated by `seq`
 * downstream). Events count against `maxInFlightEvents` until their send has settled, timed out or not, so memory
 * stays bounded while Kafka is away.
 */
export class GroupCommitProducer {
  private readonly producer: Producer;
  private queue: Pending[] = [];
  private sending = false;
  private inFlightEvents = 0;
  private lastFailureAt = 0;
  private lastError: unknown;
  private connected = false;
  private closed = false;

  constructor(
    kafka: Kafka,
    private readonly opts: { maxInFlightEvents: number; produceTimeoutMs: number; observer?: ProducerObserver },
  ) {
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  }

  async connect(): Promise<void> {
    await this.producer.connect();
    this.connected = true;
  }

  get eventsInFlight(): number {
    return this.inFlightEvents;
  }

  /** True while the last send succeeded (or none failed in the last 5 s). */
  get healthy(): boolean {
    return this.connected && Date.now() - this.lastFailureAt > 5000;
  }

  /**
   * Resolves when Kafka acknowledged every record. Rejects with OverloadedError at once when the in-flight bound
   * would be passed, or KafkaUnavailableError when Kafka failed or did not answer in time.
   */
  send(records: OutgoingRecord[], events: number): Promise<void> {
    if (this.closed) return Promise.reject(new KafkaUnavailableError('ingestion is shutting down'));
    if (!this.connected) return Promise.reject(new KafkaUnavailableError('not connected to Kafka yet'));
    if (this.inFlightEvents > 0 && this.inFlightEvents + events > this.opts.maxInFlightEvents) {
      return Promise.reject(
        new OverloadedError(
          `${this.inFlightEvents} events are waiting for Kafka (limit ${this.opts.maxInFlightEvents})`,
        ),
      );
    }
    // While Kafka is failing and a send is still retrying, answer at once instead of queueing behind it.
    if (this.sending && !this.healthy) {
      return Promise.reject(
        new KafkaUnavailableError(`Kafka is unavailable: ${describe(this.lastError)}`, this.lastError),
      );
    }
    this.inFlightEvents += events;
    this.opts.observer?.onInFlight?.(this.inFlightEvents);
    return new Promise<void>((resolve, reject) => {
      const pending: Pending = {
        records,
        events,
        resolve,
        reject,
        settled: false,
        timer: setTimeout(() => {
          if (pending.settled) return;
          pending.settled = true;
          reject(new KafkaUnavailableError(`Kafka did not acknowledge within ${this.opts.produceTimeoutMs} ms`));
        }, this.opts.produceTimeoutMs),
      };
      this.queue.push(pending);
      if (!this.sending) setImmediate(() => void this.pump());
    });
  }

  private async pump(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        await this.sendOne(batch);
      }
    } finally {
      this.sending = false;
    }
  }

  private async sendOne(batch: Pending[]): Promise<void> {
    const byTopic = new Map<string, Message[]>();
    let records = 0;
    let events = 0;
    for (const p of batch) {
      events += p.events;
      for (const r of p.records) {
        let list = byTopic.get(r.topic);
        if (!list) byTopic.set(r.topic, (list = []));
        list.push(r.headers ? { key: r.key, value: r.value, headers: r.headers } : { key: r.key, value: r.value });
        records++;
      }
    }
    const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    const started = process.hrtime.bigint();
    let error: unknown;
    try {
      // acks -1: every in-sync replica; required by (and implied for) the idempotent producer.
      await this.producer.sendBatch({ topicMessages, acks: -1 });
    } catch (e) {
      error = e;
      this.lastError = e;
      this.lastFailureAt = Date.now();
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.opts.observer?.onBatch?.(records, events, seconds, error === undefined);
    for (const p of batch) {
      this.inFlightEvents -= p.events;
      clearTimeout(p.timer);
      if (p.settled) continue;
      p.settled = true;
      if (error === undefined) p.resolve();
      else p.reject(new KafkaUnavailableError(`Kafka did not take the events: ${describe(error)}`, error));
    }
    this.opts.observer?.onInFlight?.(this.inFlightEvents);
  }

  /** Waits for queued sends to settle, then disconnects. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.sending || this.queue.length > 0) await new Promise((r) => setTimeout(r, 20));
    if (this.connected) await this.producer.disconnect();
    this.connected = false;
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
