/**
 * The webhook deliverer: the alerts topic in a consumer group of its own, each transition POSTed to its rule's webhook
 * (the topic's value byte for byte, signed), retried with exponential backoff, and the partition's offset committed
 * only once every transition of the batch has an outcome (a 2xx, or one of the documented give-ups). So a restart
 * never loses a transition; it may POST again one that was delivered but not yet committed, with the same
 * `X-Fleetpulse-Delivery` id. The commit is off the batch path (committer.ts): the partition's next transitions do
 * not wait for its round trip.
 *
 * Bounds: a batch is at most `maxBytesPerPartition` of the topic; POSTs in flight at most `maxInFlight` in all and
 * `perUrl` per URL; one POST at most `timeoutMs`; the answer's body is never read. Within a batch one rule's
 * transitions go out in order (firing before its resolve), other rules' side by side.
 *
 * A webhook that never answers 2xx: retried with backoff up to `maxBackoffMs` between attempts; its partition waits
 * (other partitions go on), `alerting_deliveries_pending` and `alerting_delivery_oldest_pending_seconds` show the
 * backlog. Once a failing transition is older than `maxAgeMs` (from its `at`) it is given up: one log line,
 * `alerting_deliveries_total{outcome="expired"}`, and the partition moves on. `maxAgeMs` 0 never gives up.
 * Not sent at all: transitions of a rule no longer in force (deleted) and episodes ended by a delete.
 */
import { backoffDelay, firstLine } from '@fleetpulse/runtime';
import type { AlertTransition } from '@fleetpulse/contracts';
import type { Consumer, EachBatchPayload } from 'kafkajs';
import { Committer } from './committer';
import type { AlertingMetrics } from './metrics';
import type { Rule } from './rule';
import { DeliveryHeader, sign, SignatureHeader } from './signature';

export interface DelivererOptions {
  topic: string;
  secret: string;
  timeoutMs: number;
  maxInFlight: number;
  perUrl: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  maxAgeMs: number;
  metrics: AlertingMetrics;
  log: (line: string) => void;
  /** The rule of a transition (null: deleted). */
  rule: (id: string) => Promise<Rule | null>;
  now?: () => number;
}

/** Ids delivered by this process, remembered so a transition sent twice on the topic is POSTed once. */
const RememberedIds = 10_000;

/** Counting semaphore; waiters are served in order. */
export class Semaphore {
  private active = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  get idle(): boolean {
    return this.active === 0 && this.waiters.length === 0;
  }

  async acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.active--;
  }
}

/** The batch was abandoned (stopping, or the partition was taken away): nothing of it is committed. */
class Abandoned extends Error {
  override readonly name = 'Abandoned';
}

export class WebhookDeliverer {
  private readonly global: Semaphore;
  private readonly perUrl = new Map<string, Semaphore>();
  private readonly delivered = new Set<string>();
  /** `at` of each transition read and not yet settled, by topic position. */
  private readonly pending = new Map<string, number>();
  private readonly stopping = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private joined = false;
  private readonly now: () => number;
  private readonly committer: Committer;

  constructor(
    private readonly consumer: Consumer,
    private readonly o: DelivererOptions,
  ) {
    this.global = new Semaphore(o.maxInFlight);
    this.now = o.now ?? Date.now;
    this.committer = new Committer((offsets) => consumer.commitOffsets(offsets), o.log);
  }

  get ready(): boolean {
    return this.running && this.joined;
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      this.o.log(
        `webhook consumer crashed (${firstLine(e.payload.error)}); ${e.payload.restart ? 'restarting' : 'stopped'}`,
      );
      if (!e.payload.restart) this.running = false;
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
      this.joined = true;
    });
    // The evaluator may have written transitions before this group first joined: read them all.
    await this.consumer.subscribe({ topic: this.o.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      // Partitions deliver side by side: one webhook that never answers holds only its own partition.
      partitionsConsumedConcurrently: 4,
      eachBatch: (p) => this.batch(p),
    });
    this.running = true;
    this.timer = setInterval(() => this.gauges(), 1000);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    clearInterval(this.timer);
    await this.committer.flush();
    await this.consumer.stop();
    await this.consumer.disconnect();
  }

  private gauges(): void {
    this.o.metrics.pending.set(this.pending.size);
    let oldest = Infinity;
    for (const at of this.pending.values()) oldest = Math.min(oldest, at);
    this.o.metrics.oldestPending.set(oldest === Infinity ? 0 : Math.max(0, (this.now() - oldest) / 1000));
  }

  private async batch({ batch, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale() || batch.messages.length === 0) return;
    const alive = () => isRunning() && !isStale() && !this.stopping.signal.aborted;
    const byRule = new Map<string, { position: string; body: string; t: AlertTransition }[]>();
    for (const m of batch.messages) {
      const body = m.value?.toString() ?? '';
      let t: AlertTransition;
      try {
        t = JSON.parse(body) as AlertTransition;
        if (typeof t.id !== 'string' || typeof t.ruleId !== 'string' || typeof t.at !== 'number') throw new Error();
      } catch {
        this.o.metrics.deliveries.inc({ outcome: 'invalid' });
        this.o.log(`skipping ${batch.topic}[${batch.partition}]@${m.offset}: not an alert transition`);
        continue;
      }
      const position = `${batch.topic}:${batch.partition}:${m.offset}`;
      this.pending.set(position, t.at);
      const list = byRule.get(t.ruleId) ?? [];
      list.push({ position, body, t });
      byRule.set(t.ruleId, list);
    }
    const beat = setInterval(() => void heartbeat().catch(() => undefined), 3000);
    try {
      await Promise.all(
        [...byRule.values()].map(async (list) => {
          for (const { position, body, t } of list) {
            await this.deliver(t, body, alive);
            this.pending.delete(position);
          }
        }),
      );
      const next = (BigInt(batch.messages.at(-1)!.offset) + 1n).toString();
      this.committer.add(batch.topic, batch.partition, next);
      // Stopping: committed before the consumer stops (it waits for this batch).
      if (!alive()) await this.committer.flush();
    } catch (e) {
      if (!(e instanceof Abandoned)) throw e;
    } finally {
      clearInterval(beat);
      for (const m of batch.messages) this.pending.delete(`${batch.topic}:${batch.partition}:${m.offset}`);
    }
    await heartbeat().catch(() => undefined);
  }

  /** One transition to its outcome; throws {@link Abandoned} when the batch is given up for a stop or rebalance. */
  private async deliver(t: AlertTransition, body: string, alive: () => boolean): Promise<void> {
    if (this.delivered.has(t.id)) return void this.o.metrics.deliveries.inc({ outcome: 'duplicate' });
    if (t.reason === 'rule-deleted') return void this.o.metrics.deliveries.inc({ outcome: 'rule-deleted' });
    for (let attempt = 0; ; attempt++) {
      if (!alive()) throw new Abandoned();
      // Asked on every attempt: a rule deleted while its webhook fails stops being retried.
      let rule: Rule | null;
      try {
        rule = await this.o.rule(t.ruleId);
      } catch (e) {
        // Cassandra unreachable: no answer on the rule yet; wait as for a failed POST.
        this.o.log(`reading rule ${t.ruleId} failed (${firstLine(e)}); retrying`);
        await this.wait(
          backoffDelay(attempt, { initialMs: this.o.initialBackoffMs, maxMs: this.o.maxBackoffMs }),
          alive,
        );
        continue;
      }
      if (!rule) return void this.o.metrics.deliveries.inc({ outcome: 'rule-deleted' });
      const result = await this.post(rule.webhook, body, t.id);
      this.o.metrics.attempts.inc({ result: result.kind });
      if (result.kind === '2xx') {
        this.o.metrics.deliveries.inc({ outcome: 'delivered' });
        this.o.metrics.lag.observe(Math.max(0, this.now() - t.at) / 1000);
        this.remember(t.id);
        return;
      }
      const age = this.now() - t.at;
      if (this.o.maxAgeMs > 0 && age >= this.o.maxAgeMs) {
        this.o.metrics.deliveries.inc({ outcome: 'expired' });
        this.o.log(
          `giving up transition ${t.id} (rule ${t.ruleId}, ${t.state}, device ${t.deviceId}) after ${attempt + 1} ` +
            `attempt(s) over ${Math.round(age / 1000)} s: ${result.detail}`,
        );
        return;
      }
      const delay = backoffDelay(attempt, { initialMs: this.o.initialBackoffMs, maxMs: this.o.maxBackoffMs });
      if (attempt === 0 || attempt % 10 === 9)
        this.o.log(`webhook of rule ${t.ruleId} failed (${result.detail}); attempt ${attempt + 1}, retrying`);
      await this.wait(delay, alive);
    }
  }

  /** Sleeps `ms`, waking early (to abandon) on stop or when the partition is taken away. */
  private async wait(ms: number, alive: () => boolean): Promise<void> {
    const until = this.now() + ms;
    while (this.now() < until) {
      if (!alive()) throw new Abandoned();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(250, Math.max(0, until - this.now())));
        this.stopping.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
    }
  }

  private async post(
    url: string,
    body: string,
    id: string,
  ): Promise<{ kind: '2xx' | 'status' | 'timeout' | 'error'; detail: string }> {
    let sem = this.perUrl.get(url);
    if (!sem) this.perUrl.set(url, (sem = new Semaphore(this.o.perUrl)));
    await sem.acquire();
    await this.global.acquire();
    try {
      const res = await fetch(url, {
        method: 'POST',
        body,
        redirect: 'manual',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'fleetpulse-alerting',
          [SignatureHeader]: sign(body, this.o.secret),
          [DeliveryHeader]: id,
        },
        signal: AbortSignal.any([AbortSignal.timeout(this.o.timeoutMs), this.stopping.signal]),
      });
      await res.body?.cancel().catch(() => undefined);
      return res.status >= 200 && res.status < 300
        ? { kind: '2xx', detail: String(res.status) }
        : { kind: 'status', detail: `HTTP ${res.status}` };
    } catch (e) {
      const timeout = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
      return timeout
        ? { kind: 'timeout', detail: `no answer within ${this.o.timeoutMs} ms` }
        : { kind: 'error', detail: firstLine((e as { cause?: unknown }).cause ?? e) };
    } finally {
      this.global.release();
      sem.release();
      if (sem.idle) this.perUrl.delete(url);
    }
  }

  private remember(id: string): void {
    this.delivered.add(id);
    if (this.delivered.size > RememberedIds) this.delivered.delete(this.delivered.values().next().value!);
  }
}
