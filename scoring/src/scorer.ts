/**
 * The scoring step, without Kafka: window records in, scored by the active models (which model scores which record:
 * router.ts), scores out through a sink, and the offsets that are then safe to commit. A record is scored (or not) as soon as it is read: every feature comes
 * from the record itself. Every step runs under one lock, so a model swap (a reference assignment in ModelRegistry)
 * falls between two steps: each record is scored once per model name, by exactly one version, and the snapshot a step
 * took stays loaded until the step is done. Offsets move only once the step's scores are delivered.
 */
import type { AnomalyScore, WindowRecord } from '@fleetpulse/contracts';
import { firstLine, retry } from '@fleetpulse/runtime';
import { compileFeatures, featureObject, fillVector, type CompiledFeatures } from './features';
import type { ActiveModel, ModelRegistry } from './models';
import type { ScoringMetrics } from './metrics';
import { finalRecords, routeRecords } from './router';
import { HostError } from './session-host';

export interface ScoreSink {
  /** Resolves once every score is durably out (anomaly.scores acknowledged, anomalies stored). */
  deliver(scores: AnomalyScore[]): Promise<void>;
}

export interface ScorerOptions {
  /** Largest batch handed to onnxruntime. [1024] */
  maxBatch?: number;
  log?: (line: string) => void;
  metrics?: ScoringMetrics;
}

/** One window record read from a partition. */
export interface RecordIn {
  partition: number;
  offset: bigint;
  record: WindowRecord;
}

export class Scorer {
  private readonly maxBatch: number;
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
    for (const { model: m, records: mine } of routeRecords(this.registry.snapshot(), finals)) {
      this.registry.acquire(m);
      try {
        for (let i = 0; i < mine.length; i += this.maxBatch)
          await this.scoreBatch(m, mine.slice(i, i + this.maxBatch), out);
      } finally {
        this.registry.release(m);
      }
    }
    if (out.length > 0) await this.sink.deliver(out);
    for (const r of records) this.advance(r.partition, r.offset + 1n);
    return out;
  }

  /**
   * Marks the partition read up to `next` (exclusive) with nothing to deliver: records that are not window records.
   * Call under {@link locked}, after the scores of every record before them are delivered.
   */
  advance(partition: number, next: bigint): void {
    if ((this.consumed.get(partition) ?? -1n) < next) this.consumed.set(partition, next);
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

  private async scoreBatch(m: ActiveModel, ws: readonly WindowRecord[], out: AnomalyScore[]): Promise<void> {
    const compiled = this.featuresOf(m);
    const width = compiled.length;
    const buf = new Float32Array(ws.length * width);
    const used: WindowRecord[] = [];
    for (const w of ws) {
      const problem = fillVector(w, compiled, buf, used.length * width);
      if (problem === null) used.push(w);
      else this.metrics?.unscorable.inc({ model: m.name, reason: problem });
    }
    if (used.length === 0) return;
    let scores: Float32Array;
    try {
      // A retriable HostError: the session host died and is being replaced with every live session; the same batch
      // again once it is. Anything else is this batch's own failure: counted, and the step goes on.
      scores = await retry(() => this.registry.run(m, buf.subarray(0, used.length * width), used.length), {
        initialMs: 100,
        maxMs: 2000,
        bail: (e) => !(e instanceof HostError && e.retriable),
        onRetry: (_attempt, _delay, e) => this.log(`scoring with ${m.name}: ${firstLine(e)}; retrying`),
      });
    } catch (e) {
      this.log(`scoring ${used.length} windows with ${m.name} v${m.spec.version} failed: ${firstLine(e)}`);
      this.metrics?.unscored.inc({ model: m.name, reason: 'run-failed' }, used.length);
      return;
    }
    const { threshold, higherIsAnomalous, version } = m.spec;
    let scored = 0;
    for (let i = 0; i < used.length; i++) {
      const w = used[i]!;
      const score = scores[i]!;
      if (!Number.isFinite(score)) {
        this.metrics?.unscored.inc({ model: m.name, reason: 'non-finite-score' });
        continue;
      }
      const anomalous = higherIsAnomalous ? score >= threshold : score <= threshold;
      out.push({
        deviceId: w.deviceId,
        resolution: w.resolution,
        windowStart: w.windowStart,
        model: m.name,
        modelVersion: version,
        score,
        anomalous,
        features: featureObject(w, m.spec.features, compiled),
      });
      scored++;
      if (anomalous) this.metrics?.anomalies.inc({ model: m.name });
    }
    this.metrics?.scores.inc({ model: m.name, version }, scored);
  }
}
