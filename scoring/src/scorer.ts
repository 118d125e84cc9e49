/**
 * The scoring step, without Kafka: rows in, windows assembled, scored by the active models, scores out through a
 * sink, and the offsets that are then safe to commit. Every step runs under one lock, so a model swap (a reference
 * assignment in ModelRegistry) falls between two steps: each window is scored once per model name, by exactly one
 * version, and the snapshot a step took stays loaded until the step is done.
 */
import type { AggregateRow, AnomalyScore } from '@fleetpulse/contracts';
import { featureObject, fillVector, needsOf, WindowAssembler, type WindowRows } from './features';
import type { ActiveModel, ModelRegistry } from './models';
import type { ScoringMetrics } from './metrics';
import { HostError } from './session-host';

export interface ScoreSink {
  /** Resolves once every score is durably out (anomaly.scores acknowledged, anomalies stored). */
  deliver(scores: AnomalyScore[]): Promise<void>;
}

export interface ScorerOptions {
  /** Largest batch handed to onnxruntime. [1024] */
  maxBatch?: number;
  /** Longest wait for a window's missing features, ms of processing time. [10000] */
  maxWaitMs?: number;
  log?: (line: string) => void;
  metrics?: ScoringMetrics;
}

export interface RowIn {
  partition: number;
  offset: bigint;
  row: AggregateRow;
}

export class Scorer {
  private readonly assembler: WindowAssembler;
  private readonly maxBatch: number;
  private readonly log: (line: string) => void;
  private readonly metrics: ScoringMetrics | undefined;
  /** Per partition: the offset after the last row taken in. */
  private readonly consumed = new Map<number, bigint>();
  private lastSnapshot: ReadonlyMap<string, ActiveModel> | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly registry: ModelRegistry,
    private readonly sink: ScoreSink,
    opts: ScorerOptions = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 1024;
    this.assembler = new WindowAssembler(opts.maxWaitMs ?? 10_000);
    this.log = opts.log ?? (() => undefined);
    this.metrics = opts.metrics;
  }

  /** Runs `fn` after every step before it. */
  locked<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  get waiting(): number {
    return this.assembler.waiting;
  }

  private refreshNeeds(): ReadonlyMap<string, ActiveModel> {
    const snap = this.registry.snapshot();
    if (snap !== this.lastSnapshot) {
      this.assembler.setNeeds(needsOf(snap.values()));
      this.lastSnapshot = snap;
    }
    return snap;
  }

  /** Takes rows in (partition order), scores what they complete, delivers. Call under {@link locked}. */
  async ingest(rows: readonly RowIn[], now = Date.now()): Promise<AnomalyScore[]> {
    const snap = this.refreshNeeds();
    const ready: WindowRows[] = [];
    for (const r of rows) {
      for (const w of this.assembler.add(r.partition, r.offset, r.row, now)) ready.push(w);
      const next = r.offset + 1n;
      if ((this.consumed.get(r.partition) ?? -1n) < next) this.consumed.set(r.partition, next);
    }
    this.metrics?.rows.inc(rows.length);
    return this.scoreAndDeliver(snap, ready);
  }

  /** Lets go of windows that waited too long (all of them with `all`), scores and delivers. Under {@link locked}. */
  async expire(now = Date.now(), all = false): Promise<AnomalyScore[]> {
    const snap = this.refreshNeeds();
    return this.scoreAndDeliver(snap, this.assembler.expire(now, all));
  }

  /** Offset safe to commit for the partition after the last delivery; null if nothing was read. */
  commitOffset(partition: number): bigint | null {
    const pinned = this.assembler.pinnedOffset(partition);
    const c = this.consumed.get(partition) ?? null;
    if (pinned !== null && (c === null || pinned < c)) return pinned;
    return c;
  }

  partitions(): number[] {
    return [...this.consumed.keys()];
  }

  dropPartition(partition: number): void {
    this.assembler.dropPartition(partition);
    this.consumed.delete(partition);
  }

  private async scoreAndDeliver(snap: ReadonlyMap<string, ActiveModel>, ready: WindowRows[]): Promise<AnomalyScore[]> {
    this.metrics?.waiting.set(this.assembler.waiting);
    if (ready.length === 0) return [];
    const out: AnomalyScore[] = [];
    for (const m of snap.values()) {
      const mine = ready.filter((w) => w.resolution === m.spec.resolution);
      if (mine.length === 0) continue;
      this.registry.acquire(m);
      try {
        for (let i = 0; i < mine.length; i += this.maxBatch)
          await this.scoreBatch(m, mine.slice(i, i + this.maxBatch), out);
      } finally {
        this.registry.release(m);
      }
    }
    if (out.length > 0) await this.sink.deliver(out);
    return out;
  }

  private async scoreBatch(m: ActiveModel, ws: WindowRows[], out: AnomalyScore[]): Promise<void> {
    const width = m.spec.features.length;
    const buf = new Float32Array(ws.length * width);
    const used: WindowRows[] = [];
    for (const w of ws) {
      if (fillVector(w, m.spec.features, buf, used.length * width)) used.push(w);
      else this.metrics?.unscored.inc({ model: m.name, reason: 'incomplete' });
    }
    if (used.length === 0) return;
    let scores: Float32Array | null = null;
    for (let attempt = 0; scores === null; attempt++) {
      try {
        scores = await this.registry.run(m, buf.subarray(0, used.length * width), used.length);
      } catch (e) {
        if (e instanceof HostError && e.retriable) {
          // The session host died and is being replaced with every live session: wait, then the same batch again.
          this.log(`scoring with ${m.name}: ${e.message}; retrying`);
          await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
          continue;
        }
        this.log(`scoring ${used.length} windows with ${m.name} v${m.spec.version} failed: ${(e as Error).message}`);
        this.metrics?.unscored.inc({ model: m.name, reason: 'run-failed' }, used.length);
        return;
      }
    }
    const { threshold, higherIsAnomalous, version } = m.spec;
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
        features: featureObject(w, m.spec.features),
      });
      if (anomalous) this.metrics?.anomalies.inc({ model: m.name });
    }
    this.metrics?.scores.inc({ model: m.name, version }, used.length);
  }
}
