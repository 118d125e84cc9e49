/**
 * Exactly once across rebalances (KIP-447, patches/kafkajs+2.2.4.patch), against the real Kafka: two scoring
 * services in one group, one of them held in the middle of a step while the other joins and the partition moves.
 *
 * - Held after its scores were sent, before its offsets: the group goes on without it (rebalance timeout), the other
 *   instance scores the same records; released, its offsets are refused (UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION) and
 *   its transaction aborted. Unpatched kafkajs (TxnOffsetCommit v1, no generation) commits them: every window of
 *   the held step is scored twice.
 * - Held after its offsets were sent, before its transaction ends: the other instance, reading the partition's
 *   commit with require_stable, waits for that transaction instead of reading the commit before it. Unpatched, it
 *   scores the held step's records again.
 *
 * - A step whose transaction end got no answer: it committed or not, and the group's offset read after it
 *   (require_stable) says which; it is scored again only if it did not.
 *
 * The repeat window is 0: RecentWindows would not see these repeats anyway (two processes), but it is off so that
 * only the fencing is under test.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnomalyScore } from '@fleetpulse/contracts';
import { kafkaBrokers } from '@fleetpulse/compose';
import { createTestTopic, testGroupId, uniqueName } from '@fleetpulse/compose/testing';
import type { Consumer, Transaction } from 'kafkajs';
import { loadConfig, type ScoringConfig } from './config';
import { startScoring, type RunningScoring, type ScoringTestHooks } from './service';
import { PartitionFenced, TransactionalOutput, type StepOffsets, type StepOutput } from './step-output';
import { simulateAggregates } from './testing';
import {
  admin,
  completeWindows,
  countBy,
  kafka,
  models,
  positions,
  publish,
  sleep,
  until,
} from './testing/service-harness';

// Each test waits out a rebalance timeout with one member held.
jest.setTimeout(180_000);

/** Short, so that the group goes on without the held instance in seconds (kafkajs' default is 60 s). */
const RebalanceTimeoutMs = 8000;

interface Gate {
  promise: Promise<void>;
  open(): void;
}

function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/**
 * The service's own step output, with its first step that commits offsets held after its scores were sent and
 * before the offsets go; what the commit and the abort after it did is recorded.
 */
class HeldBeforeOffsets implements StepOutput {
  readonly reached = gate();
  readonly release = gate();
  /** The held step's commit returned or threw. */
  readonly settled = gate();
  /** Scores sent by the held step. */
  sentInHeldStep = 0;
  readonly commitErrors: unknown[] = [];
  aborts = 0;
  private holding = true;
  private inHeldStep = true;

  constructor(private readonly inner: StepOutput) {}

  get transactional(): boolean {
    return this.inner.transactional;
  }

  readonly producer: StepOutput['producer'] = {
    send: (record) => {
      if (this.inHeldStep) this.sentInHeldStep += record.messages.length;
      return this.inner.producer.send(record);
    },
  };

  connect = () => this.inner.connect();
  disconnect = () => this.inner.disconnect();
  begin = () => this.inner.begin();
  committedOffset = (topic: string, partition: number) => this.inner.committedOffset(topic, partition);

  async commit(offsets: StepOffsets | null): Promise<void> {
    const held = offsets !== null && this.holding;
    if (held) {
      this.holding = false;
      this.reached.open();
      await this.release.promise;
    }
    try {
      await this.inner.commit(offsets);
    } catch (e) {
      this.commitErrors.push(e);
      throw e;
    } finally {
      if (offsets) this.inHeldStep = false;
      if (held) this.settled.open();
    }
  }

  async abort(): Promise<void> {
    this.aborts++;
    await this.inner.abort();
  }
}

/** A transactional output whose first step is held after its offsets were sent, before its transaction ends. */
class HeldBeforeEnd extends TransactionalOutput {
  readonly reached = gate();
  readonly release = gate();
  private holding = true;

  protected override async end(txn: Transaction): Promise<void> {
    if (this.holding) {
      this.holding = false;
      this.reached.open();
      await this.release.promise;
    }
    await super.end(txn);
  }
}

/**
 * A transactional output whose first step's end gets no answer, as when a broker stops with the request in flight:
 * - `went through`: its EndTxn (commit) was applied, the answer lost;
 * - `never sent`: the EndTxn never left; the transaction, still open, is aborted as usual;
 * - `abort lost too`: neither the commit nor the abort left: the broker's transaction stays open with the step's
 *   scores and offsets, until the replacement producer's InitProducerId (same transactional id) aborts it.
 */
type LostAnswer = 'went through' | 'never sent' | 'abort lost too';
class AnswerLost extends TransactionalOutput {
  lost = false;
  private abortLost = false;
  constructor(
    kafka: ConstructorParameters<typeof TransactionalOutput>[0],
    groupId: string,
    log: (line: string) => void,
    private readonly mode: LostAnswer,
  ) {
    super(kafka, groupId, log);
  }

  protected override async end(txn: Transaction): Promise<void> {
    if (this.lost) return super.end(txn);
    this.lost = true;
    if (this.mode === 'went through') await super.end(txn);
    throw new Error('Connection closed (simulated: the answer to EndTxn was lost)');
  }

  protected override async endAborted(txn: Transaction): Promise<void> {
    if (this.mode === 'abort lost too' && !this.abortLost) {
      this.abortLost = true;
      throw new Error('Connection closed (simulated: the abort never left)');
    }
    return super.endAborted(txn);
  }
}

/** A reader of the scores topic, read_committed (kafkajs' default) or read_uncommitted (sees aborted steps too). */
async function reader(
  topic: string,
  readUncommitted: boolean,
): Promise<{ consumer: Consumer; scores: AnomalyScore[] }> {
  const scores: AnomalyScore[] = [];
  const consumer = kafka.consumer({ groupId: testGroupId(), readUncommitted });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      scores.push(JSON.parse(message.value!.toString()) as AnomalyScore);
    },
  });
  return { consumer, scores };
}

interface Pair {
  config: ScoringConfig;
  committed: AnomalyScore[];
  uncommitted: AnomalyScore[];
  logs: { a: string[]; b: string[] };
  start(which: 'a' | 'b', hooks?: ScoringTestHooks): Promise<RunningScoring>;
  /** The group's commit reached the end of the source topic (one partition). */
  committedToEnd(): Promise<void>;
  close(): Promise<void>;
}

async function pair(): Promise<Pair> {
  const dir = mkdtempSync(join(tmpdir(), 'scoring-fence-'));
  copyFileSync(join(models, 'iforest.onnx'), join(dir, 'iforest.onnx'));
  copyFileSync(join(models, 'iforest.json'), join(dir, 'iforest.json'));
  // One partition: the one that moves.
  const source = await createTestTopic(admin, { partitions: 1 });
  const sink = await createTestTopic(admin, { partitions: 1 });
  const config = loadConfig({
    MODELS_DIR: dir,
    FLEETPULSE_KAFKA_BROKERS: kafkaBrokers().join(','),
    FLEETPULSE_SCORING_GROUP: testGroupId(),
    FLEETPULSE_SCORING_SOURCE_TOPIC: source,
    FLEETPULSE_SCORING_SCORES_TOPIC: sink,
    FLEETPULSE_SCORING_PORT: '0',
    FLEETPULSE_SCORING_HOST: '127.0.0.1',
    FLEETPULSE_SCORING_SETTLE_MS: '50',
    FLEETPULSE_SCORING_SESSION_TIMEOUT_MS: '10000',
    FLEETPULSE_SCORING_STORE: 'off',
    FLEETPULSE_SCORING_REPEAT_WINDOW: '0',
  });
  const committed = await reader(sink, false);
  const uncommitted = await reader(sink, true);
  const logs = { a: [] as string[], b: [] as string[] };
  const services: RunningScoring[] = [];
  return {
    config,
    committed: committed.scores,
    uncommitted: uncommitted.scores,
    logs,
    start: async (which, hooks = {}) => {
      const s = await startScoring(config, (l) => logs[which].push(l), undefined, {
        rebalanceTimeoutMs: RebalanceTimeoutMs,
        ...hooks,
      });
      services.push(s);
      return s;
    },
    committedToEnd: async () => {
      const reached = async () => {
        const pos = await positions(source, config.groupId);
        return pos.committed.join() === pos.ends.join();
      };
      for (const end = Date.now() + 30_000; !(await reached()); await sleep(200))
        if (Date.now() > end) throw new Error(`the group's commit did not reach the end of ${source}`);
    },
    close: async () => {
      await Promise.all([committed.consumer.disconnect(), uncommitted.consumer.disconnect()]);
      for (const s of services) await s.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const repeatsOf = (scores: readonly AnomalyScore[]) => [...countBy(scores)].filter(([, n]) => n > 1);

test('a step that outlived its generation has its offsets refused and is aborted: no window is scored twice', async () => {
  const sim = simulateAggregates({
    devices: 8,
    durationMs: 10 * 60_000,
    seed: 447,
    devicePrefix: `${uniqueName('fe')}-`,
  });
  const expected = completeWindows(sim.records);
  const p = await pair();
  let held: HeldBeforeOffsets | undefined;
  try {
    await publish(p.config.sourceTopic, sim.records);
    await p.start('a', { wrapOutput: (o) => (held = new HeldBeforeOffsets(o)) });
    const a = held!;
    await a.reached.promise;
    // A's step sent its scores (in its open transaction): a read_uncommitted reader sees them.
    expect(a.sentInHeldStep).toBeGreaterThan(0);
    await until(() => p.uncommitted.length >= a.sentInHeldStep, 20_000, "the held step's scores");

    // B joins; the rebalance waits for A (held mid-step, it cannot rejoin) until the rebalance timeout, then goes on
    // without it: B gets the partition, scores every window (the held step's too) and commits. (A read_committed
    // reader sees B's scores only once A's transaction ends: it is open before them in the scores partition.)
    await p.start('b');
    await p.committedToEnd();

    // A's step goes on and ends (unpatched kafkajs commits it: every window of the step twice).
    a.release.open();
    await a.settled.promise;

    // A rejoins; new windows are scored once, by whichever instance has the partition now.
    const later = sim.records.map((r) => ({
      ...r,
      windowStart: r.windowStart + 3_600_000,
      windowEnd: r.windowEnd + 3_600_000,
    }));
    await publish(p.config.sourceTopic, later);
    const all = new Set([...expected, ...completeWindows(later)]);
    await until(() => p.committed.length >= all.size, 60_000, `${all.size} scores`);
    await p.committedToEnd();
    await sleep(1500);
    const counts = countBy(p.committed);
    expect(repeatsOf(p.committed)).toEqual([]);
    expect(counts.size).toBe(all.size);

    // A's offsets were refused and its transaction aborted, logged once; not a crash.
    expect(a.commitErrors).toHaveLength(1);
    const refused = a.commitErrors[0];
    expect(refused).toBeInstanceOf(PartitionFenced);
    expect((refused as PartitionFenced).reason).toMatch(/^(UNKNOWN_MEMBER_ID|ILLEGAL_GENERATION)$/);
    expect(a.aborts).toBeGreaterThan(0);
    const fencedLines = p.logs.a.filter((l) =>
      /step aborted, its scores discarded: the offsets of .* were refused/.test(l),
    );
    expect(fencedLines).toHaveLength(1);
    expect(p.logs.a.filter((l) => /crash|failed/.test(l))).toEqual([]);
    // The race did happen: the aborted step's scores were written, and only read_uncommitted sees them.
    expect(p.uncommitted.length).toBeGreaterThanOrEqual(all.size + a.sentInHeldStep);
    console.log(
      `fencing: ${a.sentInHeldStep} scores of the held step aborted (${(refused as PartitionFenced).reason}); ` +
        `${counts.size} windows scored once each`,
    );
  } finally {
    held?.release.open();
    await p.close();
  }
});

test('a partition taken over while its last owner commits is read from that commit (require_stable): no window is scored twice', async () => {
  const sim = simulateAggregates({
    devices: 8,
    durationMs: 10 * 60_000,
    seed: 448,
    devicePrefix: `${uniqueName('fs')}-`,
  });
  const expected = completeWindows(sim.records);
  const p = await pair();
  let held: HeldBeforeEnd | undefined;
  try {
    await publish(p.config.sourceTopic, sim.records);
    await p.start('a', {
      wrapOutput: () => (held = new HeldBeforeEnd(kafka, p.config.groupId, (l) => p.logs.a.push(l))),
    });
    const a = held!;
    await a.reached.promise;
    // A's scores and offsets are in its open transaction.
    await until(() => p.uncommitted.length > 0, 20_000, "the held step's scores");
    await sleep(1000);
    const sentByA = p.uncommitted.length;

    // B joins and, once the group went on without A, gets the partition: its commit is pending in A's transaction.
    await p.start('b');
    await sleep(4000);
    // B waits for it (UNSTABLE_OFFSET_COMMIT, retried) rather than scoring from the commit before it.
    expect(p.uncommitted.length).toBe(sentByA);
    expect(p.committed).toHaveLength(0);

    // A's transaction commits (the offsets went while its generation was current); B reads from there.
    a.release.open();
    await until(() => p.committed.length >= expected.size, 60_000, `${expected.size} scores`);
    await p.committedToEnd();
    await sleep(1500);
    const counts = countBy(p.committed);
    expect(repeatsOf(p.committed)).toEqual([]);
    expect(counts.size).toBe(expected.size);
    expect(p.uncommitted).toHaveLength(expected.size);
  } finally {
    held?.release.open();
    await p.close();
  }
});

test.each<[LostAnswer, number]>([
  ['went through', 449],
  ['never sent', 450],
  ['abort lost too', 451],
])(
  "a step whose commit got no answer (%s) is scored once: the group's offset, read with require_stable, says where to go on",
  async (mode, seed) => {
    const sim = simulateAggregates({ devices: 8, durationMs: 10 * 60_000, seed, devicePrefix: `${uniqueName('fl')}-` });
    const expected = completeWindows(sim.records);
    const p = await pair();
    let output: AnswerLost | undefined;
    try {
      await publish(p.config.sourceTopic, sim.records);
      await p.start('a', {
        wrapOutput: () => (output = new AnswerLost(kafka, p.config.groupId, (l) => p.logs.a.push(l), mode)),
      });
      await until(() => p.committed.length >= expected.size, 60_000, `${expected.size} scores`);
      await p.committedToEnd();
      await sleep(1500);
      expect(output!.lost).toBe(true);
      // Before: the step was scored again from the commit before it, and a commit that had gone through repeated
      // every score of the step.
      expect(repeatsOf(p.committed)).toEqual([]);
      expect(countBy(p.committed).size).toBe(expected.size);
      const said = p.logs.a.join('\n');
      if (mode === 'went through') expect(said).toMatch(/the step's commit went through though it got no answer/);
      else expect(said).toMatch(/delivering the scores of .* failed .*; re-reading it from offset/);
      if (mode === 'abort lost too') {
        expect(said).toMatch(/aborting a step's transaction failed .*; starting a new producer/);
        // The open transaction held scores (read_uncommitted sees them); read_committed saw none of them (above).
        expect(p.uncommitted.length).toBeGreaterThan(expected.size);
      }
    } finally {
      await p.close();
    }
  },
);
