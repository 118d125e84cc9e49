/**
 * The evaluator's Kafka side: final window records (metrics.aggregates) and scores (anomaly.scores) in a consumer group
 * of its own, the batches of several partitions side by side (their Cassandra and Kafka round trips overlap; a
 * batch never shares a state with another: see `shared`). For each batch, in this order: the states of the (rule, device) pairs it
 * touches are read (memory, else Cassandra), the state machine runs (evaluator.ts), the transitions are written to
 * the history and to the alerts topic (acks from all in-sync replicas), the new states are written, and only then
 * is the offset committed. A crash anywhere before the commit re-reads the batch: the records whose state was written
 * are passed over, the others make the same transitions again, with the same ids. The commit itself is off the batch
 * path (committer.ts): the next batch does not wait for its round trip.
 *
 * A step that cannot write rewinds its partition to the last commit (as scoring does) and forgets the cached states,
 * so the batch runs again from what Cassandra holds. Every FLEETPULSE_ALERTING_RULES_REFRESH_MS the rules are read
 * again (while batches go on: each batch evaluates the rules as last read when it starts), and the open episodes of
 * deleted rules end (`reason: "rule-deleted"`; apart from batches).
 */
import { backoffDelay, firstLine, sleep } from '@fleetpulse/runtime';
import { globMatch, type AlertTransition, type AnomalyScore, type WindowRecord } from '@fleetpulse/contracts';
import type { Admin, Consumer, EachBatchPayload, Producer } from 'kafkajs';
import {
  closeDeleted,
  evaluateScore,
  evaluateWindow,
  idleState,
  ruleMatchesScore,
  ruleMatchesWindow,
  type AlertState,
} from './evaluator';
import { Committer } from './committer';
import type { AlertingMetrics } from './metrics';
import { compileRule, type CompiledRule } from './rule';
import type { RuleStore } from './rule-store';
import type { Rules } from './rules';
import { stateKey, type AlertStore } from './storage';

export interface EvaluatorOptions {
  aggregatesTopic: string;
  scoresTopic: string;
  alertsTopic: string;
  refreshMs: number;
  maxCachedStates: number;
  /** Sets a new group's start at the end of the topics (absent: kafkajs's latest at each first join). */
  admin?: Admin;
  groupId: string;
  metrics: AlertingMetrics;
  log: (line: string) => void;
  now?: () => number;
}

type Item = { offset: bigint; window: WindowRecord } | { offset: bigint; score: AnomalyScore };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/**
 * Partitions whose batches are evaluated side by side (kafkajs `partitionsConsumedConcurrently`): a batch spends most
 * of its time waiting on Cassandra and Kafka (history, alerts topic, states), one after the other per partition.
 */
const PartitionsConcurrently = 6;

/** A final window record, or null (not one, or provisional). */
export function readWindow(value: Buffer | null): WindowRecord | null {
  try {
    const v = JSON.parse(value?.toString() ?? '') as unknown;
    if (
      isObject(v) &&
      typeof v.deviceId === 'string' &&
      typeof v.resolution === 'string' &&
      typeof v.windowStart === 'number' &&
      v.final === true &&
      isObject(v.metrics)
    )
      return v as unknown as WindowRecord;
  } catch {
    // not JSON: skipped below
  }
  return null;
}

export function readScore(value: Buffer | null): AnomalyScore | null {
  try {
    const v = JSON.parse(value?.toString() ?? '') as unknown;
    if (
      isObject(v) &&
      typeof v.deviceId === 'string' &&
      typeof v.resolution === 'string' &&
      typeof v.windowStart === 'number' &&
      typeof v.model === 'string' &&
      typeof v.score === 'number' &&
      typeof v.anomalous === 'boolean'
    )
      return v as unknown as AnomalyScore;
  } catch {
    // not JSON: skipped below
  }
  return null;
}

export class EvaluatorConsumer {
  /** (rule, device) -> state as stored; insertion order is the eviction order. */
  private readonly cache = new Map<string, AlertState>();
  private readonly committed = new Map<string, bigint>();
  private readonly started = new Map<string, bigint>();
  private lock: Promise<unknown> = Promise.resolve();
  /** Batches running now, at most one per partition. */
  private readonly batches = new Set<Promise<unknown>>();
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private joined = false;
  private refreshing: Promise<void> | null = null;
  private readonly now: () => number;
  private readonly committer: Committer;

  constructor(
    private readonly consumer: Consumer,
    private readonly producer: Producer,
    private readonly store: AlertStore,
    private readonly ruleStore: RuleStore,
    private readonly rules: Rules,
    private readonly o: EvaluatorOptions,
  ) {
    this.now = o.now ?? Date.now;
    this.committer = new Committer((offsets) => consumer.commitOffsets(offsets), o.log);
  }

  get ruleCount(): number {
    return this.rules.all.length;
  }

  /** Consuming and a member of its group: the evaluator half of /readyz. */
  get ready(): boolean {
    return this.running && this.joined;
  }

  async start(): Promise<void> {
    await this.producer.connect();
    await this.refresh();
    await this.startAtEnd();
    await this.consumer.connect();
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      this.o.log(
        `evaluator consumer crashed (${firstLine(e.payload.error)}); ${e.payload.restart ? 'restarting' : 'stopped'}`,
      );
      if (!e.payload.restart) this.running = false;
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
      // Partitions may have moved: what another member wrote meanwhile is read back from Cassandra.
      void this.locked(async () => {
        this.cache.clear();
        this.committed.clear();
        this.started.clear();
        this.joined = true;
        await Promise.resolve();
      });
    });
    // A new group starts at the end of the topics: rules apply to windows closed from now on, not to the backlog.
    await this.consumer.subscribe({ topics: [this.o.aggregatesTopic, this.o.scoresTopic], fromBeginning: false });
    await this.consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: PartitionsConcurrently,
      eachBatch: (p) => this.step(p),
    });
    this.running = true;
    this.timer = setInterval(() => {
      void this.refresh().catch((e: unknown) => this.o.log(`reading the rules failed: ${firstLine(e)}`));
    }, this.o.refreshMs);
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.timer);
    await this.committer.flush();
    await this.consumer.stop();
    await this.consumer.disconnect();
    await this.lock.catch(() => undefined);
    await Promise.allSettled([...this.batches]);
    await this.producer.disconnect();
  }

  /**
   * The first start of a group begins at the end of the topics: rules apply to windows closed from then on, not to
   * the backlog. The end is committed before the group first joins, so a crash before the first batch of a partition
   * does not move its start to a later end (and skip what came between).
   */
  private async startAtEnd(): Promise<void> {
    const admin = this.o.admin;
    if (!admin) return;
    await admin.connect();
    try {
      const topics = [this.o.aggregatesTopic, this.o.scoresTopic];
      const committed = await admin.fetchOffsets({ groupId: this.o.groupId, topics });
      for (const { topic, partitions } of committed) {
        if (!partitions.some((p) => p.offset === '-1')) continue;
        const ends = await admin.fetchTopicOffsets(topic);
        const missing = partitions.filter((p) => p.offset === '-1').map((p) => p.partition);
        const offsets = ends
          .filter((e) => missing.includes(e.partition))
          .map((e) => ({ partition: e.partition, offset: e.high }));
        try {
          await admin.setOffsets({ groupId: this.o.groupId, topic, partitions: offsets });
          this.o.log(`new group ${this.o.groupId}: ${topic} starts at its end (${offsets.length} partition(s))`);
        } catch (e) {
          // Another member runs already: the group has its positions.
          this.o.log(`not setting the start of ${topic} (${firstLine(e)})`);
        }
      }
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * Runs one partition's batch, beside other partitions' batches but never beside a `locked` step. Batches share no
   * state: records are keyed by device (docs/contract.md, "Topics"), so a device's window records are in one
   * partition of metrics.aggregates and its scores in one of anomaly.scores, and a (rule, device) state is fed by
   * one of the two topics only (threshold rules by windows, anomaly rules by scores).
   */
  private async shared<T>(f: () => Promise<T>): Promise<T> {
    for (let lock = this.lock; ; lock = this.lock) {
      await lock;
      // No locked step was queued meanwhile: this batch is in `batches` before any later one looks.
      if (lock === this.lock) break;
    }
    const run = f();
    this.batches.add(run);
    try {
      return await run;
    } finally {
      this.batches.delete(run);
    }
  }

  /** Runs `f` alone: after the batches running now, before any batch that starts later, one at a time. */
  private locked<T>(f: () => Promise<T>): Promise<T> {
    const run = this.lock.then(async () => {
      await Promise.allSettled([...this.batches]);
      return f();
    });
    this.lock = run.catch(() => undefined);
    return run;
  }

  /**
   * Reads the rules; ends the open episodes of deleted ones, then removes them for good. The reads do not hold
   * batches up: a batch takes the rules as they stand when it runs, and the new list replaces the old one at once.
   * A deleted rule is out of that list before its episodes are ended, under the lock, after any batch that still
   * evaluates it. One refresh at a time (a slow read is not overtaken by a later one).
   */
  refresh(): Promise<void> {
    this.refreshing ??= this.refreshOnce().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async refreshOnce(): Promise<void> {
    // Deleted ones first: a rule deleted between the two reads is in neither (the next refresh ends it), never in both.
    const deleted = await this.ruleStore.deleted();
    await this.rules.refresh();
    this.o.metrics.rules.set({ kind: 'threshold' }, this.rules.count('threshold'));
    this.o.metrics.rules.set({ kind: 'anomaly' }, this.rules.count('anomaly'));
    if (deleted.length === 0) return;
    await this.locked(async () => {
      for (const rule of deleted) {
        const compiled = compileRule(rule);
        const now = this.now();
        const ended = (await this.store.firing(rule.id))
          .map(({ deviceId, state }) => closeDeleted(compiled, deviceId, state, now))
          .filter((t): t is AlertTransition => t !== null);
        await this.emit(ended);
        await this.ruleStore.purge(rule.id);
        for (const k of this.cache.keys()) if (k.startsWith(`${rule.id}\u0000`)) this.cache.delete(k);
        this.o.log(`rule ${rule.id} (${rule.name}) deleted: ${ended.length} open episode(s) ended`);
      }
    });
  }

  /** History first, then the topic: both before the state that says they were made. */
  private async emit(ts: readonly AlertTransition[]): Promise<void> {
    if (ts.length === 0) return;
    await this.store.writeTransitions(ts);
    await this.producer.send({
      topic: this.o.alertsTopic,
      acks: -1,
      messages: ts.map((t) => ({ key: t.ruleId, value: JSON.stringify(t) })),
    });
    for (const t of ts) this.o.metrics.transitions.inc({ state: t.state, reason: t.reason });
  }

  private async step({ batch, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale()) return;
    const first = batch.messages[0];
    const last = batch.messages.at(-1);
    if (!first || !last) return;
    const source = `${batch.topic}:${batch.partition}`;
    if (!this.started.has(source)) this.started.set(source, BigInt(first.offset));
    const beat = setInterval(() => void heartbeat().catch(() => undefined), 3000);
    try {
      const done = await this.shared(async () => {
        if (isStale()) return false;
        try {
          // The rules as they stand now: the end of a deleted rule never runs beside a batch using it.
          const rules = this.rules.all;
          await this.evaluate(source, this.read(batch, rules), rules);
          const next = BigInt(last.offset) + 1n;
          // Stored: committed soon, off this path (a stop waits for it).
          this.committer.add(batch.topic, batch.partition, next.toString());
          this.committed.set(source, next);
          return true;
        } catch (e) {
          this.rewind(batch.topic, batch.partition, source, e);
          return false;
        }
      });
      if (!this.running) await this.committer.flush();
      if (done) this.failures = 0;
      else if (isRunning()) await sleep(backoffDelay(this.failures - 1, { initialMs: 500, maxMs: 10_000 }));
    } finally {
      clearInterval(beat);
    }
    await heartbeat();
  }

  /**
   * The batch's records a rule may read. Records are keyed by their device (docs/contract.md, "Topics"): one whose
   * key no rule's device glob matches is passed over unparsed (`unmatched`). Where rules cover part of a fleet that
   * is most of the topic, and parsing every record was most of the evaluator's CPU (bench/README.md, "alerts").
   * A record without a key is parsed and matched by its `deviceId`, as before.
   */
  private read(batch: EachBatchPayload['batch'], rules: readonly CompiledRule[]): Item[] {
    const items: Item[] = [];
    const scores = batch.topic === this.o.scoresTopic;
    const kind = scores ? 'anomaly' : 'threshold';
    const globs = [...new Set(rules.filter((c) => c.kind === kind).map((c) => c.rule.devices))];
    const counts = { window: 0, score: 0, skipped: 0, unmatched: 0 };
    for (const m of batch.messages) {
      if (m.key !== null && m.key.length > 0) {
        const device = m.key.toString();
        if (!globs.some((g) => globMatch(g, device))) {
          counts.unmatched++;
          continue;
        }
      }
      const offset = BigInt(m.offset);
      let item: Item | null = null;
      if (scores) {
        const score = readScore(m.value);
        if (score) item = { offset, score };
      } else {
        const window = readWindow(m.value);
        if (window) item = { offset, window };
      }
      if (item) items.push(item);
      counts[item === null ? 'skipped' : scores ? 'score' : 'window']++;
    }
    for (const [k, n] of Object.entries(counts)) if (n > 0) this.o.metrics.records.inc({ kind: k }, n);
    return items;
  }

  private async evaluate(source: string, items: readonly Item[], rules: readonly CompiledRule[]): Promise<void> {
    // Which rules each record feeds, and the states they need.
    const plan: { item: Item; rules: typeof rules }[] = [];
    const need = new Map<string, { ruleId: string; deviceId: string }>();
    // Cached states as they are now: another partition's batch may evict them from the cache meanwhile.
    const known = new Map<string, AlertState>();
    for (const item of items) {
      const matched = rules.filter((c) =>
        'window' in item ? ruleMatchesWindow(c, item.window) : ruleMatchesScore(c, item.score),
      );
      if (matched.length === 0) continue;
      plan.push({ item, rules: matched });
      const deviceId = 'window' in item ? item.window.deviceId : item.score.deviceId;
      for (const c of matched) {
        const k = stateKey(c.rule.id, deviceId);
        const cached = this.cache.get(k);
        if (cached) known.set(k, cached);
        else need.set(k, { ruleId: c.rule.id, deviceId });
      }
    }
    if (plan.length === 0) return;
    const loaded = need.size > 0 ? await this.store.loadStates([...need.values()]) : new Map<string, AlertState>();

    const now = this.now();
    const changed = new Map<string, { ruleId: string; deviceId: string; state: AlertState }>();
    const transitions: AlertTransition[] = [];
    for (const { item, rules: matched } of plan) {
      const at = { source, offset: item.offset };
      for (const c of matched) {
        const deviceId = 'window' in item ? item.window.deviceId : item.score.deviceId;
        const k = stateKey(c.rule.id, deviceId);
        const prev = changed.get(k)?.state ?? known.get(k) ?? loaded.get(k) ?? idleState();
        const step =
          'window' in item
            ? c.kind === 'threshold'
              ? evaluateWindow(c, prev, item.window, at, now)
              : null
            : c.kind === 'anomaly'
              ? evaluateScore(c, prev, item.score, at, now)
              : null;
        if (!step) continue;
        changed.set(k, { ruleId: c.rule.id, deviceId, state: step.state });
        if (step.transition) transitions.push(step.transition);
      }
    }
    await this.emit(transitions);
    await this.store.saveStates([...changed.values()]);
    // Only what is stored enters the cache: a failed step leaves it as Cassandra has it.
    for (const [k, v] of loaded) this.cache.set(k, v);
    for (const [k, v] of changed) {
      this.cache.delete(k);
      this.cache.set(k, v.state);
    }
    for (const k of this.cache.keys()) {
      if (this.cache.size <= this.o.maxCachedStates) break;
      this.cache.delete(k);
    }
  }

  private rewind(topic: string, partition: number, source: string, cause: unknown): void {
    this.failures++;
    this.o.metrics.evaluationFailures.inc();
    this.cache.clear();
    const to = this.committed.get(source) ?? this.started.get(source);
    if (to === undefined || !this.running) return;
    this.o.log(`evaluating ${source} failed (${firstLine(cause)}); re-reading it from offset ${to}`);
    this.consumer.seek({ topic, partition, offset: to.toString() });
  }
}
