import {
  ConfigResourceTypes,
  Partitioners,
  type Kafka,
  type Message,
  type Producer,
  type TopicMessages,
} from 'kafkajs';
import { KafkaUnavailableError, OverloadedError, RecordTooLargeError } from './errors';

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
  /** Its records did not all get through: the rest is not sent. */
  failed: boolean;
  timer: NodeJS.Timeout;
}

export interface GroupCommitOptions {
  maxInFlightEvents: number;
  produceTimeoutMs: number;
  /**
   * Bytes of one produce request at most; undefined: the smallest `max.message.bytes` of `topics` as Kafka reports
   * it at connect (less room for the batch header), or Kafka's default when it cannot be asked.
   */
  maxRequestBytes?: number;
  /** The topics written to, whose limit `connect` asks for when `maxRequestBytes` is not given. */
  topics?: string[];
  observer?: ProducerObserver;
}

/** Kafka's default `max.message.bytes` (1 MiB + 12): what a broker that cannot be asked is taken to accept. */
const kafkaDefaultMaxMessageBytes = 1_048_588;
/** Room left for the record batch header and the estimate's slack. */
const batchHeaderRoom = 1024;

/** A record's share of a produce request, over-estimated: value, key, headers and up to 32 bytes of framing. */
function recordBytes(r: OutgoingRecord): number {
  let n = r.value.length + (r.key === null ? 0 : Buffer.byteLength(r.key)) + 32;
  if (r.headers) for (const [k, v] of Object.entries(r.headers)) n += Buffer.byteLength(k) + Buffer.byteLength(v) + 8;
  return n;
}

/**
 * Group commit over one idempotent kafkajs producer (acks from all in-sync replicas).
 *
 * kafkajs' idempotent producer is only safe with one request in flight, so one `sendBatch` runs at a time and
 * everything that arrives meanwhile rides in the next ones: under load batches grow, which is what gives
 * throughput. kafkajs does not split a batch at the broker's `max.message.bytes`, and the broker refuses a whole
 * partition's records (kafkajs then fails the whole request) when they pass it, so the queue goes out in requests
 * of at most `maxRequestBytes`, in order; a request's records may span several of them, and it is acknowledged
 * once its last one is. A caller's promise resolves only once Kafka acknowledged its records; it rejects with a
 * retriable error after `produceTimeoutMs` (the records may still land: the device's retry is then deduplicated by
 * `seq` downstream). Events count against `maxInFlightEvents` until their send has settled, timed out or not, so
 * memory stays bounded while Kafka is away.
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
  private requestBytes: number;

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: GroupCommitOptions,
  ) {
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    this.requestBytes = opts.maxRequestBytes ?? kafkaDefaultMaxMessageBytes - batchHeaderRoom;
  }

  async connect(): Promise<void> {
    await this.producer.connect();
    if (this.opts.maxRequestBytes === undefined && this.opts.topics !== undefined)
      this.requestBytes = (await this.topicsMaxMessageBytes(this.opts.topics)) - batchHeaderRoom;
    this.connected = true;
  }

  /** Bytes of one produce request at most (known once connected). */
  get maxRequestBytes(): number {
    return this.requestBytes;
  }

  /** The smallest `max.message.bytes` of `topics` (the broker's `message.max.bytes` unless a topic overrides it). */
  private async topicsMaxMessageBytes(topics: string[]): Promise<number> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [...new Set(topics)].map((name) => ({
          type: ConfigResourceTypes.TOPIC,
          name,
          configNames: ['max.message.bytes'],
        })),
      });
      const limits = resources.flatMap((r) => r.configEntries.map((c) => Number(c.configValue)));
      return limits.length > 0 && limits.every((n) => Number.isFinite(n) && n > 2 * batchHeaderRoom)
        ? Math.min(...limits)
        : kafkaDefaultMaxMessageBytes;
    } catch {
      return kafkaDefaultMaxMessageBytes;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
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
        failed: false,
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
        await this.sendInRequests(batch);
      }
    } finally {
      this.sending = false;
    }
  }

  /** `batch` in order, in requests of at most `requestBytes` (a single larger record goes alone). */
  private async sendInRequests(batch: Pending[]): Promise<void> {
    let p = 0; // the pending whose records come next
    let r = 0; // its next record
    while (p < batch.length) {
      const byTopic = new Map<string, Message[]>();
      const whole: Pending[] = []; // pendings whose last record is in this request
      let bytes = 0;
      let records = 0;
      fill: for (; p < batch.length; p++, r = 0) {
        const pending = batch[p]!;
        if (pending.failed) continue;
        for (; r < pending.records.length; r++) {
          const record = pending.records[r]!;
          const size = recordBytes(record);
          if (bytes > 0 && bytes + size > this.requestBytes) break fill;
          bytes += size;
          records++;
          let list = byTopic.get(record.topic);
          if (!list) byTopic.set(record.topic, (list = []));
          list.push(
            record.headers
              ? { key: record.key, value: record.value, headers: record.headers }
              : { key: record.key, value: record.value },
          );
        }
        whole.push(pending);
      }
      const partial = p < batch.length && r > 0 ? batch[p] : undefined;
      const error = await this.sendRequest(byTopic, records, whole);
      for (const pending of whole) this.finish(pending, error);
      if (partial !== undefined && error !== undefined) {
        this.finish(partial, error);
        p++;
        r = 0;
      }
      // Kafka unavailable (not a request it refused for its size): what is left of the batch fails now, rather than
      // waiting for a retry budget per request.
      if (error !== undefined && !isTooLarge(error)) {
        for (; p < batch.length; p++) if (!batch[p]!.failed) this.finish(batch[p]!, error);
      }
    }
  }

  /** One produce request; resolves with its error, if any. */
  private async sendRequest(byTopic: Map<string, Message[]>, records: number, whole: Pending[]): Promise<unknown> {
    const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    const started = process.hrtime.bigint();
    let error: unknown;
    try {
      // acks -1: every in-sync replica; required by (and implied for) the idempotent producer.
      if (topicMessages.length > 0) await this.producer.sendBatch({ topicMessages, acks: -1 });
    } catch (e) {
      error = e;
      this.lastError = e;
      // A request refused for its size says nothing of Kafka's health.
      if (!isTooLarge(e)) this.lastFailureAt = Date.now();
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const events = whole.reduce((n, pending) => n + pending.events, 0);
    this.opts.observer?.onBatch?.(records, events, seconds, error === undefined);
    return error;
  }

  /** A pending is done: acknowledged (no error) or failed; its events no longer count as in flight. */
  private finish(pending: Pending, error: unknown): void {
    pending.failed = error !== undefined;
    this.inFlightEvents -= pending.events;
    this.opts.observer?.onInFlight?.(this.inFlightEvents);
    clearTimeout(pending.timer);
    if (pending.settled) return;
    pending.settled = true;
    if (error === undefined) pending.resolve();
    else if (isTooLarge(error) && pending.records.some((r) => recordBytes(r) > this.requestBytes))
      pending.reject(
        new RecordTooLargeError(
          `one device's events make a Kafka record over the limit of ${this.requestBytes} bytes; send fewer at once`,
          error,
        ),
      );
    else pending.reject(new KafkaUnavailableError(`Kafka did not take the events: ${describe(error)}`, error));
  }

  /** Waits for queued sends to settle, then disconnects. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.sending || this.queue.length > 0) await new Promise((r) => setTimeout(r, 20));
    if (this.connected) await this.producer.disconnect();
    this.connected = false;
  }
}

/** Did Kafka refuse the request for the size of its records (not retriable, and no sign of an outage)? */
function isTooLarge(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const x = e as { type?: unknown; cause?: unknown; errors?: unknown };
  if (x.type === 'MESSAGE_TOO_LARGE' || x.type === 'RECORD_LIST_TOO_LARGE') return true;
  if (Array.isArray(x.errors) && x.errors.some(isTooLarge)) return true;
  return x.cause !== undefined && isTooLarge(x.cause);
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
