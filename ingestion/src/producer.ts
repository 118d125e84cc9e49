import {
  ConfigResourceTypes,
  Partitioners,
  type Kafka,
  type Message,
  type PartitionMetadata,
  type Producer,
  type TopicMessages,
} from 'kafkajs';
import { KafkaUnavailableError, OverloadedError, RecordTooLargeError } from './errors';

export interface OutgoingRecord {
  topic: string;
  key: string | null;
  value: Buffer;
  headers?: Record<string, string>;
  /** Set by the producer's routing: the partition the key's hash gives, as kafkajs' would, remembered per key. */
  partition?: number;
}

export interface ProducerObserver {
  onBatch?(records: number, events: number, seconds: number, ok: boolean): void;
  onInFlight?(events: number): void;
}

/** One caller's `send`: acknowledged once every one of its parts is. */
interface Pending {
  events: number;
  /** Parts not finished yet (acknowledged or failed). */
  open: number;
  resolve: () => void;
  reject: (e: Error) => void;
  settled: boolean;
  timer: NodeJS.Timeout;
}

/** A pending's records that go through one lane (one producer), in the caller's order. */
interface Part {
  pending: Pending;
  records: OutgoingRecord[];
  /** Events credited to this part in the batch metrics: the pending's on its first part, 0 on the others. */
  events: number;
  /** Its records did not all get through: the rest is not sent. */
  failed: boolean;
}

export interface GroupCommitOptions {
  maxInFlightEvents: number;
  produceTimeoutMs: number;
  /**
   * [1] Idempotent producers, each owning the partitions p with p % producers == its index (keyless records go to
   * any). A key always hashes to the same partition, hence the same producer, so each device's records keep their
   * order while up to this many produce requests are in flight.
   */
  producers?: number;
  /**
   * Bytes of one produce request at most; undefined: the smallest `max.message.bytes` of `topics` as Kafka reports
   * it at connect (less room for the batch header), or Kafka's default when it cannot be asked.
   */
  maxRequestBytes?: number;
  /**
   * The topics written to: `connect` asks for their limit when `maxRequestBytes` is not given, and for their
   * partition counts when there are several producers (a topic it could not ask is routed by key hash alone).
   */
  topics?: string[];
  observer?: ProducerObserver;
  /**
   * [100,000] Keys whose partition is remembered per topic (~100 bytes each), at most; at the limit the memory starts
   * afresh (keys are hashed again: a cost, never a different partition).
   */
  maxRememberedKeys?: number;
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

/** Partition metadata of `n` partitions, enough for kafkajs' default partitioner to hash a key as it does. */
function fakePartitions(n: number): PartitionMetadata[] {
  return Array.from({ length: n }, (_, partitionId) => ({
    partitionErrorCode: 0,
    partitionId,
    leader: 0,
    replicas: [0],
    isr: [0],
  }));
}

/** Partition metadata to hash keys against, and the keys hashed so far. */
interface Hashed {
  metadata: PartitionMetadata[];
  byKey: Map<string, number>;
}

const defaultMaxRememberedKeys = 100_000;

/** What a lane needs of the producer that owns it. */
interface LaneOwner {
  readonly requestBytes: number;
  /** A produce request of a lane starts (+1) or ends (-1). */
  requesting(delta: 1 | -1): void;
  readonly observer: ProducerObserver | undefined;
  failed(error: unknown): void;
  finished(part: Part, error: unknown): void;
}

/**
 * One idempotent kafkajs producer and what waits for it. kafkajs' idempotent producer is only safe with one
 * request in flight, so one `sendBatch` runs at a time and everything that arrives meanwhile rides in the next
 * ones: under load batches grow, which is what gives throughput.
 */
class Lane {
  private queue: Part[] = [];
  private scheduled = false;
  sending = false;

  constructor(
    readonly producer: Producer,
    private readonly owner: LaneOwner,
  ) {}

  get busy(): boolean {
    return this.sending || this.scheduled || this.queue.length > 0;
  }

  push(part: Part): void {
    this.queue.push(part);
    // After this turn's I/O callbacks, so that what arrived together goes together; once per turn, not per part.
    if (!this.sending && !this.scheduled) {
      this.scheduled = true;
      setImmediate(this.startPump);
    }
  }

  /** Made once: a closure per scheduling is what `push` avoids. */
  private readonly startPump = (): void => void this.pump();

  private async pump(): Promise<void> {
    this.scheduled = false;
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
  private async sendInRequests(batch: Part[]): Promise<void> {
    const requestBytes = this.owner.requestBytes;
    let p = 0; // the part whose records come next
    let r = 0; // its next record
    while (p < batch.length) {
      const byTopic = new Map<string, Message[]>();
      const whole: Part[] = []; // parts whose last record is in this request
      let bytes = 0;
      let records = 0;
      fill: for (; p < batch.length; p++, r = 0) {
        const part = batch[p]!;
        if (part.failed) continue;
        for (; r < part.records.length; r++) {
          const record = part.records[r]!;
          const size = recordBytes(record);
          if (bytes > 0 && bytes + size > requestBytes) break fill;
          bytes += size;
          records++;
          let list = byTopic.get(record.topic);
          if (!list) byTopic.set(record.topic, (list = []));
          list.push(toMessage(record));
        }
        whole.push(part);
      }
      const partial = p < batch.length && r > 0 ? batch[p] : undefined;
      const error = await this.sendRequest(byTopic, records, whole);
      for (const part of whole) this.finish(part, error);
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
  private async sendRequest(byTopic: Map<string, Message[]>, records: number, whole: Part[]): Promise<unknown> {
    const topicMessages: TopicMessages[] = [];
    for (const [topic, messages] of byTopic) topicMessages.push({ topic, messages });
    const started = process.hrtime.bigint();
    let error: unknown;
    try {
      // acks -1: every in-sync replica; required by (and implied for) the idempotent producer.
      if (topicMessages.length > 0) {
        this.owner.requesting(1);
        try {
          await this.producer.sendBatch({ topicMessages, acks: -1 });
        } finally {
          this.owner.requesting(-1);
        }
      }
    } catch (e) {
      error = e;
      this.owner.failed(e);
    }
    const observer = this.owner.observer;
    if (observer?.onBatch) {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      let events = 0;
      for (const part of whole) events += part.events;
      observer.onBatch(records, events, seconds, error === undefined);
    }
    return error;
  }

  private finish(part: Part, error: unknown): void {
    part.failed = error !== undefined;
    this.owner.finished(part, error);
  }
}

function toMessage(r: OutgoingRecord): Message {
  if (r.partition === undefined)
    return r.headers ? { key: r.key, value: r.value, headers: r.headers } : { key: r.key, value: r.value };
  return r.headers
    ? { key: r.key, value: r.value, headers: r.headers, partition: r.partition }
    : { key: r.key, value: r.value, partition: r.partition };
}

/**
 * Group commit over `producers` idempotent kafkajs producers (acks from all in-sync replicas), each with one
 * request in flight (see Lane). A record goes to the producer that owns its partition: its key hashed as kafkajs'
 * default partitioner does (so a device stays on the partition it had with one producer), against the partition
 * count read at connect; a topic that grows keeps that mapping until the next start, so a device never moves
 * partition while ingestion runs. Keyless records (unparseable bodies in telemetry.dlq) go to any producer.
 *
 * kafkajs does not split a batch at the broker's `max.message.bytes`, and the broker refuses a whole partition's
 * records (kafkajs then fails the whole request) when they pass it, so each queue goes out in requests of at most
 * `maxRequestBytes`, in order; a caller's records may span several requests (and producers), and it is
 * acknowledged once the last of them is. A caller's promise resolves only once Kafka acknowledged all its records;
 * it rejects as soon as one part failed, or with a retriable error after `produceTimeoutMs` (the records may still
 * land: the device's retry is then deduplicated by `seq` downstream). Events count against `maxInFlightEvents`
 * until every part of their send has settled, timed out or not, so memory stays bounded while Kafka is away.
 */
export class GroupCommitProducer implements LaneOwner {
  private readonly lanes: Lane[];
  private inFlightEvents = 0;
  private lastFailureAt = 0;
  private lastError: unknown;
  private connected = false;
  private closed = false;
  requestBytes: number;
  readonly observer: ProducerObserver | undefined;
  private requests = 0;
  private peakRequests = 0;
  /** Per topic, the partitions a key hashes over; absent: route by key hash over the lanes. */
  private readonly partitionsOf = new Map<string, Hashed>();
  private readonly lanesAsPartitions: Hashed;
  private readonly partitioner = Partitioners.DefaultPartitioner();
  private readonly maxRememberedKeys: number;
  private keyless = 0;

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: GroupCommitOptions,
  ) {
    const producers = opts.producers ?? 1;
    if (!Number.isInteger(producers) || producers < 1)
      throw new RangeError(`producers must be a whole number >= 1, not ${producers}`);
    this.lanes = Array.from(
      { length: producers },
      () =>
        new Lane(
          kafka.producer({
            idempotent: true,
            maxInFlightRequests: 1,
            allowAutoTopicCreation: false,
            createPartitioner: Partitioners.DefaultPartitioner,
          }),
          this,
        ),
    );
    this.lanesAsPartitions = { metadata: fakePartitions(producers), byKey: new Map() };
    this.maxRememberedKeys = opts.maxRememberedKeys ?? defaultMaxRememberedKeys;
    if (!Number.isInteger(this.maxRememberedKeys) || this.maxRememberedKeys < 1)
      throw new RangeError(`maxRememberedKeys must be a whole number >= 1, not ${this.maxRememberedKeys}`);
    this.observer = opts.observer;
    this.requestBytes = opts.maxRequestBytes ?? kafkaDefaultMaxMessageBytes - batchHeaderRoom;
  }

  async connect(): Promise<void> {
    try {
      await Promise.all(this.lanes.map((l) => l.producer.connect()));
    } catch (e) {
      await Promise.all(this.lanes.map((l) => l.producer.disconnect().catch(() => undefined)));
      throw e;
    }
    const topics = this.opts.topics === undefined ? [] : [...new Set(this.opts.topics)];
    if (this.opts.maxRequestBytes === undefined && topics.length > 0)
      this.requestBytes = (await this.topicsMaxMessageBytes(topics)) - batchHeaderRoom;
    // Also with one producer: kafkajs would hash every record's key again (murmur2 over a Buffer made of the key).
    if (topics.length > 0) await this.readPartitionCounts(topics);
    this.connected = true;
  }

  /** Bytes of one produce request at most (known once connected). */
  get maxRequestBytes(): number {
    return this.requestBytes;
  }

  /** Keys whose partition is remembered now, over every topic (each topic holds `maxRememberedKeys` at most). */
  get rememberedKeys(): number {
    let n = this.lanesAsPartitions.byKey.size;
    for (const h of this.partitionsOf.values()) n += h.byKey.size;
    return n;
  }

  /** Idempotent producers, each with one produce request in flight at most. */
  get producers(): number {
    return this.lanes.length;
  }

  /** The partition count of each of `topics` Kafka reports; those it does not are routed by key hash alone. */
  private async readPartitionCounts(topics: string[]): Promise<void> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      const { topics: found } = await admin.fetchTopicMetadata({ topics });
      for (const t of found)
        if (t.partitions.length > 0)
          this.partitionsOf.set(t.name, { metadata: fakePartitions(t.partitions.length), byKey: new Map() });
    } catch {
      // Per-device order holds either way: a key always hashes to the same producer.
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** The smallest `max.message.bytes` of `topics` (the broker's `message.max.bytes` unless a topic overrides it). */
  private async topicsMaxMessageBytes(topics: string[]): Promise<number> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: topics.map((name) => ({
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

  /** The most produce requests that were in flight at once (at most `producers`). */
  get peakRequestsInFlight(): number {
    return this.peakRequests;
  }

  requesting(delta: 1 | -1): void {
    this.requests += delta;
    if (this.requests > this.peakRequests) this.peakRequests = this.requests;
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
    if (!this.healthy && this.lanes.some((l) => l.sending)) {
      return Promise.reject(
        new KafkaUnavailableError(`Kafka is unavailable: ${describe(this.lastError)}`, this.lastError),
      );
    }
    this.inFlightEvents += events;
    this.opts.observer?.onInFlight?.(this.inFlightEvents);
    return new Promise<void>((resolve, reject) => {
      const pending: Pending = {
        events,
        open: 0,
        resolve,
        reject,
        settled: false,
        timer: setTimeout(() => {
          if (pending.settled) return;
          pending.settled = true;
          reject(new KafkaUnavailableError(`Kafka did not acknowledge within ${this.opts.produceTimeoutMs} ms`));
        }, this.opts.produceTimeoutMs),
      };
      this.route(pending, records);
    });
  }

  /** The lane (producer) of `record`; sets its partition when the topic's partition count is known. */
  private laneOf(record: OutgoingRecord): number {
    const n = this.lanes.length;
    if (record.key === null) return (this.keyless = (this.keyless + 1) % n);
    const partitions = this.partitionsOf.get(record.topic);
    if (partitions === undefined) return this.hash(this.lanesAsPartitions, record.key);
    const partition = this.hash(partitions, record.key);
    record.partition = partition;
    return partition % n;
  }

  /** `key`'s partition among `hashed` as kafkajs' default partitioner computes it (murmur2), remembered. */
  private hash(hashed: Hashed, key: string): number {
    let partition = hashed.byKey.get(key);
    if (partition === undefined) {
      // The hash allocates (the key as a Buffer) and shows in a profile; devices send again and again.
      if (hashed.byKey.size >= this.maxRememberedKeys) hashed.byKey.clear();
      partition = this.partitioner({ topic: '', partitionMetadata: hashed.metadata, message: { key, value: null } });
      hashed.byKey.set(key, partition);
    }
    return partition;
  }

  /** Hands `records` to their lanes, in order; the common case (one lane) without copying the array. */
  private route(pending: Pending, records: OutgoingRecord[]): void {
    if (this.lanes.length === 1 || records.length === 0) {
      for (const r of records) {
        if (r.key === null || r.partition !== undefined) continue;
        const partitions = this.partitionsOf.get(r.topic);
        if (partitions !== undefined) r.partition = this.hash(partitions, r.key);
      }
      pending.open = 1;
      this.lanes[0]!.push({ pending, records, events: pending.events, failed: false });
      return;
    }
    const first = this.laneOf(records[0]!);
    let split: OutgoingRecord[][] | undefined;
    for (let i = 1; i < records.length; i++) {
      const lane = this.laneOf(records[i]!);
      if (split === undefined) {
        if (lane === first) continue;
        split = this.lanes.map(() => []);
        for (let j = 0; j < i; j++) split[first]!.push(records[j]!);
      }
      split[lane]!.push(records[i]!);
    }
    if (split === undefined) {
      pending.open = 1;
      this.lanes[first]!.push({ pending, records, events: pending.events, failed: false });
      return;
    }
    let events = pending.events;
    pending.open = split.filter((part) => part.length > 0).length;
    split.forEach((part, lane) => {
      if (part.length === 0) return;
      this.lanes[lane]!.push({ pending, records: part, events, failed: false });
      events = 0; // credited to the first part only
    });
  }

  /** A lane's request failed: Kafka's health as the readiness probe and new requests see it. */
  failed(error: unknown): void {
    this.lastError = error;
    // A request refused for its size says nothing of Kafka's health.
    if (!isTooLarge(error)) this.lastFailureAt = Date.now();
  }

  /** A part is done: acknowledged (no error) or failed; its pending's events stop counting once all its parts are. */
  finished(part: Part, error: unknown): void {
    const pending = part.pending;
    if (--pending.open === 0) {
      this.inFlightEvents -= pending.events;
      this.opts.observer?.onInFlight?.(this.inFlightEvents);
      clearTimeout(pending.timer);
    }
    if (pending.settled) return;
    if (error !== undefined) {
      pending.settled = true;
      if (isTooLarge(error) && part.records.some((r) => recordBytes(r) > this.requestBytes))
        pending.reject(
          new RecordTooLargeError(
            `one device's events make a Kafka record over the limit of ${this.requestBytes} bytes; send fewer at once`,
            error,
          ),
        );
      else pending.reject(new KafkaUnavailableError(`Kafka did not take the events: ${describe(error)}`, error));
    } else if (pending.open === 0) {
      pending.settled = true;
      pending.resolve();
    }
  }

  /** Waits for queued sends to settle, then disconnects. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.lanes.some((l) => l.busy)) await new Promise((r) => setTimeout(r, 20));
    if (this.connected) await Promise.all(this.lanes.map((l) => l.producer.disconnect()));
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
