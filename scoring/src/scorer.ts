/**
 * The scoring step, without Kafka: window records in, scored by the active models (which model scores which record:
 * router.ts), scores out through a sink, and the offsets that are then safe to commit. A record is scored (or not) as
 * soon as it is read: every feature comes from the record itself. Every step runs under one lock, so a model swap (a
 * reference assignment in ModelRegistry) falls between two steps: each record is scored once per model name, by
 * exactly one version, and the snapshot a step took stays loaded until the step is done. Offsets move only once the
 * step's scores are delivered. A step's rows cross to the session host in a few messages sent at once, not one
 * round trip per onnxruntime run (bench/README.md, "scoring").
 */
import type { AnomalyScore, WindowRecord } from '@fleetpulse/contracts';
import { firstLine, retry } from '@fleetpulse/runtime';
import { compileFeatures, featureObjectOf, fillVector, type CompiledFeatures } from './features';
import { ModelQuarantined, type ActiveModel, type ModelRegistry } from './models';
import type { ScoringMetrics } from './metrics';
import { byResolution, finalRecords, routeRecords } from './router';
import { HostError, type Scored } from './session-host';

export interface ScoreSink {
  /** Resolves once every score is durably out (anomaly.scores acknowledged, anomalies stored). */
  deliver(scores: AnomalyScore[]): Promise<void>;
}

export interface ScorerOptions {
  /** Largest batch handed to onnxruntime. [1024] */
  maxBatch?: number;
  /** Rows per message to the session host, rounded down to a multiple of maxBatch (at least one). [256] */
  messageRows?: number;
  log?: (line: string) => void;
  metrics?: ScoringMetrics;
}

/** One message to the session host: a model's rows of part of a step, and its answer to come. */
interface Part {
  model: ActiveModel;
  /** The rows' exact feature values (the message carries them as float32). */
  values: Float64Array;
  /** The records whose features are the message's rows, in order. */
  used: WindowRecord[];
  scored: Promise<Scored | Error>;
}

/**
 * Rows per message to the session host (rounded to a multiple of maxBatch). Big enough that a round trip (~70 us) is
 * small beside the runs; small enough that the host does not wait long for the first message of a step, nor this
 * process long over the answer to the last (filling and reading 256 rows take ~0.5 ms, running them ~4 ms).
 */
const MessageRows = 256;

/** One window record read from a partition. */
export interface RecordIn {
  partition: number;
  offset: bigint;
  record: WindowRecord;
}

export class Scorer {
  private readonly maxBatch: number;
  private readonly messageRows: number;
  private readonly log: (line: string) => void;
  private readonly metrics: ScoringMetrics | undefined;
  /** Per partition: the offset after the last record whose scores are delivered (or that needed none). */
  private readonly consumed = new Map<number, bigint>();
  /** Each loaded model's features, split once. */
  private readonly compiled = new WeakMap<ActiveModel, CompiledFeatures>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly registry: ModelRegistry,
    private readonly sink: ScoreSink,
    opts: ScorerOptions = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 1024;
    this.messageRows = this.maxBatch * Math.max(1, Math.floor((opts.messageRows ?? MessageRows) / this.maxBatch));
    this.log = opts.log ?? (() => undefined);
    this.metrics = opts.metrics;
  }

  /** Runs `fn` after every step before it. */
  locked<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /**
   * Scores the final records (partition order) with every active model at their resolution, delivers the scores,
   * and only then marks the records consumed. Records with `final: false` are never scored. If delivery fails it
   * throws and marks nothing: the caller reads the records again. Call under {@link locked}.
   */
  async ingest(records: readonly RecordIn[]): Promise<AnomalyScore[]> {
    const finals = finalRecords(records);
    this.metrics?.records.inc({ final: 'true' }, finals.length);
    if (records.length > finals.length) this.metrics?.records.inc({ final: 'false' }, records.length - finals.length);
    const out: AnomalyScore[] = [];
    const grouped = byResolution(finals);
    const routes = routeRecords(this.registry.snapshot(), grouped);
    // A quarantined model's records are passed over like the others': counted, and committed with the step.
    for (const q of this.registry.quarantined().values()) {
      const n = grouped.get(q.resolution)?.length ?? 0;
      if (n > 0) this.metrics?.unscored.inc({ model: q.name, reason: 'quarantined' }, n);
    }
    for (const r of routes) this.registry.acquire(r.model);
    // Each partition's last record, found while the session host runs (its position moves only once delivered).
    const last = new Map<number, bigint>();
    try {
      // Every message of the step is sent before the first answer is awaited: the session host runs them back to
      // back while this process fills the next ones and turns earlier answers into scores (two cores, both busy).
      const parts = routes.flatMap((r) => this.send(r.model, r.records));
      for (const r of records) if ((last.get(r.partition) ?? -1n) < r.offset) last.set(r.partition, r.offset);
      // The last message's scores are built (all but the score) while the session host runs it: what is left once
      // its answer is in is the score itself, so the step's last answer is followed by little more than the
      // delivery. The earlier ones are built once answered, while the host runs the later ones (built sooner, they
      // would only stay alive longer).
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i]!;
        const prepared = i === parts.length - 1 ? this.prepare(p) : null;
        this.collect(p, await p.scored, prepared, out);
      }
    } finally {
      for (const r of routes) this.registry.release(r.model);
    }
    if (out.length > 0) await this.sink.deliver(out);
    // Each partition's position moves past its last record: one bigint addition per partition, not per record.
    for (const [partition, offset] of last) this.advance(partition, offset + 1n);
    return out;
  }

  /**
   * Marks the partition read up to `next` (exclusive) with nothing to deliver: records that are not window records.
   * Call under {@link locked}, after the scores of every record before them are delivered.
   */
  advance(partition: number, next: bigint): void {
    if ((this.consumed.get(partition) ?? -1n) < next) this.consumed.set(partition, next);
  }

  /**
   * Moves the partition's position back to `next` (null: none), after a step whose scores were sent but not
   * committed: the records after it are read and scored again.
   */
  resetTo(partition: number, next: bigint | null): void {
    if (next === null) this.consumed.delete(partition);
    else this.consumed.set(partition, next);
  }

  /** The models that score now (name and file digest): a record scored under others may score differently. */
  modelsSignature(): string {
    const parts: string[] = [];
    for (const m of this.registry.snapshot().values()) parts.push(`${m.name}@${m.sha256}`);
    return parts.sort().join(',');
  }

  /** Offset safe to commit for the partition: after the last record whose scores are out; null if none. */
  commitOffset(partition: number): bigint | null {
    return this.consumed.get(partition) ?? null;
  }

  partitions(): number[] {
    return [...this.consumed.keys()];
  }

  /** Forgets a revoked partition (its next owner re-reads from the committed offset). */
  dropPartition(partition: number): void {
    this.consumed.delete(partition);
  }

  private featuresOf(m: ActiveModel): CompiledFeatures {
    let c = this.compiled.get(m);
    if (!c) this.compiled.set(m, (c = compileFeatures(m.spec.features)));
    return c;
  }

  /** The model's records as feature rows, in messages of {@link messageRows} rows, each sent at once. */
  private send(m: ActiveModel, records: readonly WindowRecord[]): Part[] {
    const compiled = this.featuresOf(m);
    const width = compiled.length;
    const parts: Part[] = [];
    for (let i = 0; i < records.length; i += this.messageRows) {
      const end = Math.min(records.length, i + this.messageRows);
      // Exact values first: the scores' `features` are read back from them; the model gets them as float32.
      const values = new Float64Array((end - i) * width);
      const used: WindowRecord[] = [];
      for (let j = i; j < end; j++) {
        const problem = fillVector(records[j]!, compiled, values, used.length * width);
        if (problem === null) used.push(records[j]!);
        else this.metrics?.unscorable.inc({ model: m.name, reason: problem });
      }
      if (used.length === 0) continue;
      const input = new Float32Array(values.subarray(0, used.length * width));
      parts.push({ model: m, values, used, scored: this.score(m, input, used.length) });
    }
    return parts;
  }

  /**
   * One message's scores. A retriable HostError: the session host died and is being replaced with every live
   * session; the same message again once it is, unless the model is quarantined meanwhile (the registry counts the
   * deaths it caused: a model that kills the host on these rows cannot hold the step for ever). Anything else fails
   * this message's rows only; never rejects, so the messages not awaited yet cannot become unhandled rejections.
   */
  private score(m: ActiveModel, input: Float32Array, rows: number): Promise<Scored | Error> {
    return retry(() => this.registry.score(m, input, rows, this.maxBatch), {
      initialMs: 100,
      maxMs: 2000,
      bail: (e) => !(e instanceof HostError && e.retriable),
      onRetry: (_attempt, _delay, e) => this.log(`scoring with ${m.name}: ${firstLine(e)}; retrying`),
    }).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  }

  /** The message's scores before its answer: every field but `score` and `anomalous` (set by {@link collect}). */
  private prepare({ model: m, values, used }: Part): AnomalyScore[] {
    const scores = new Array<AnomalyScore>(used.length);
    for (let i = 0; i < used.length; i++) scores[i] = scoreOf(m, used[i]!, values, i, Number.NaN, false);
    return scores;
  }

  private collect(
    { model: m, values, used }: Part,
    scored: Scored | Error,
    prepared: AnomalyScore[] | null,
    out: AnomalyScore[],
  ): void {
    const { threshold, higherIsAnomalous, version } = m.spec;
    if (scored instanceof ModelQuarantined) {
      this.metrics?.unscored.inc({ model: m.name, reason: 'quarantined' }, used.length);
      return;
    }
    const failed = scored instanceof Error ? [{ row: 0, rows: used.length, error: firstLine(scored) }] : scored.failed;
    for (const f of failed) {
      this.log(`scoring ${f.rows} windows with ${m.name} v${version} failed: ${f.error}`);
      this.metrics?.unscored.inc({ model: m.name, reason: 'run-failed' }, f.rows);
    }
    if (scored instanceof Error) return;
    const { scores } = scored;
    let count = 0;
    let anomalies = 0;
    let nonFinite = 0;
    let f = 0;
    for (let i = 0; i < used.length; i++) {
      // Rows of a failed run are counted above, not as non-finite scores.
      while (f < failed.length && failed[f]!.row + failed[f]!.rows <= i) f++;
      if (f < failed.length && failed[f]!.row <= i) continue;
      const score = scores[i]!;
      if (!Number.isFinite(score)) {
        nonFinite++;
        continue;
      }
      const anomalous = higherIsAnomalous ? score >= threshold : score <= threshold;
      const s = prepared?.[i];
      if (s === undefined) out.push(scoreOf(m, used[i]!, values, i, score, anomalous));
      else {
        s.score = score;
        s.anomalous = anomalous;
        out.push(s);
      }
      count++;
      if (anomalous) anomalies++;
    }
    if (nonFinite > 0) this.metrics?.unscored.inc({ model: m.name, reason: 'non-finite-score' }, nonFinite);
    if (anomalies > 0) this.metrics?.anomalies.inc({ model: m.name }, anomalies);
    this.metrics?.scores.inc({ model: m.name, version }, count);
  }
}

/** Row `i` of a message as a score, its fields in the order they are serialised. */
function scoreOf(
  m: ActiveModel,
  w: WindowRecord,
  values: Float64Array,
  i: number,
  score: number,
  anomalous: boolean,
): AnomalyScore {
  const { features, version } = m.spec;
  return {
    deviceId: w.deviceId,
    resolution: w.resolution,
    windowStart: w.windowStart,
    model: m.name,
    modelVersion: version,
    score,
    anomalous,
    features: featureObjectOf(features, values, i * features.length),
  };
}
