/**
 * The loaded models and their swaps. A file is loaded into a new session next to the model it replaces, checked
 * (spec, input, output, warm-up), and only then swapped in with one reference assignment, so any batch sees either
 * the old model or the new one, whole. The old session is released once no batch holds it. A file that fails stays
 * out: the model it would have replaced keeps serving and the reason is logged, counted and shown in `status()`.
 * Files are read as model-file.ts allows (regular files of the folder, size-limited); reasons name files relative to
 * the folder and quote none of their content.
 *
 * Quarantine: a model whose runs the session host died in `quarantineCrashes` times within `quarantineWindowMs` is
 * taken out of service (as if its file were removed, but listed with the reason) so that it cannot hold the scorer;
 * the records it would have scored are counted unscored (reason "quarantined"). A file for that name with other
 * bytes lifts it; the same bytes again stay quarantined.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { resolutionMs } from '@fleetpulse/contracts';
import { cleanReason, jsonErrorWithoutContent, MaxSidecarBytes, readModelFile } from './model-file';
import { readOnnxMetadata } from './onnx-meta';
import { resolveSpec, type ModelSpec } from './model-spec';
import { HostError, type Scored, type SessionHost } from './session-host';
import type { SessionInfo, ValueMeta } from './session-protocol';

export interface ActiveModel {
  readonly name: string;
  readonly spec: ModelSpec;
  /** Output actually read. */
  readonly output: string;
  readonly key: string;
  /** The file's name in the models folder. */
  readonly file: string;
  readonly sha256: string;
  readonly specSource: string;
  readonly loadedAt: number;
  /** Batches currently scoring with it. */
  refs: number;
  retired: boolean;
  /** When the session host died running it, ms (those within the quarantine window). */
  crashes: number[];
}

export interface LoadError {
  at: number;
  file: string;
  reason: string;
}

export interface ModelStatus {
  name: string;
  file: string | null;
  active: {
    version: string;
    features: string[];
    resolution: string;
    output: string;
    threshold: number;
    higherIsAnomalous: boolean;
    sha256: string;
    specSource: string;
    loadedAt: string;
  } | null;
  lastError: { at: string; file: string; reason: string } | null;
  /** Set while the model is out of service for crashing the session host; `active` is then null. */
  quarantined: { at: string; file: string; version: string; crashes: number; reason: string } | null;
}

/** A model taken out of service, and what it scored: what the Scorer counts as unscored. */
export interface Quarantined {
  name: string;
  file: string;
  version: string;
  resolution: string;
  sha256: string;
  at: number;
  crashes: number;
  reason: string;
}

export interface RegistryOptions {
  /** MODELS_DIR: every file loaded is an entry of it. */
  dir: string;
  log?: (line: string) => void;
  events?: LoadEvents;
  /** A larger model file is refused before it is read. [256 MiB] */
  maxModelBytes?: number;
  /** Session host deaths while running one model that quarantine it... [3] */
  quarantineCrashes?: number;
  /** ...within this long, ms. [600,000] */
  quarantineWindowMs?: number;
}

export interface LoadEvents {
  loaded?: (m: ActiveModel, ms: number) => void;
  rejected?: (name: string, file: string, reason: string) => void;
  unloaded?: (name: string) => void;
  /** The session host died running the model (counted towards its quarantine). */
  crashed?: (m: ActiveModel) => void;
  quarantined?: (q: Quarantined) => void;
}

export class ModelRejected extends Error {
  override readonly name = 'ModelRejected';
}

/** The model was quarantined (now or before this message): its rows are not scored. */
export class ModelQuarantined extends Error {
  override readonly name = 'ModelQuarantined';
}

const WarmupRows = 4;

function shapeText(m: ValueMeta): string {
  return m.isTensor ? `${m.type ?? '?'}[${(m.shape ?? []).join(', ')}]` : 'non-tensor (sequence/map)';
}

/** Checks the session against the spec; returns the output to read. Throws ModelRejected with the reason. */
export function checkSignature(spec: ModelSpec, info: SessionInfo): string {
  if (info.inputs.length !== 1)
    throw new ModelRejected(`expected one input [batch, ${spec.features.length}], the model has ${info.inputs.length}`);
  const input = info.inputs[0]!;
  if (!input.isTensor || input.type !== 'float32')
    throw new ModelRejected(
      `input ${input.name} is ${shapeText(input)}, expected float32[batch, ${spec.features.length}]`,
    );
  const shape = input.shape ?? [];
  if (shape.length !== 2) throw new ModelRejected(`input ${input.name} has rank ${shape.length}, expected 2`);
  const width = shape[1];
  if (typeof width === 'number' && width !== spec.features.length)
    throw new ModelRejected(
      `input ${input.name} has ${width} features, the spec declares ${spec.features.length} (${spec.features.join(', ')})`,
    );
  let out: ValueMeta | undefined;
  if (spec.output !== null) {
    out = info.outputs.find((o) => o.name === spec.output);
    if (!out)
      throw new ModelRejected(`no output "${spec.output}"; outputs: ${info.outputs.map((o) => o.name).join(', ')}`);
  } else {
    out = info.outputs.find((o) => o.name === 'scores');
    if (!out) {
      const floats = info.outputs.filter((o) => o.isTensor && o.type === 'float32');
      if (floats.length !== 1)
        throw new ModelRejected(
          `no "scores" output and ${floats.length} float tensor outputs; name one with "output" (outputs: ${info.outputs
            .map((o) => `${o.name} ${shapeText(o)}`)
            .join(', ')})`,
        );
      out = floats[0]!;
    }
  }
  if (!out.isTensor || out.type !== 'float32')
    throw new ModelRejected(`output ${out.name} is ${shapeText(out)}, expected a float32 tensor [batch] or [batch, 1]`);
  const os = out.shape ?? [];
  if (!(os.length === 1 || (os.length === 2 && (os[1] === 1 || typeof os[1] === 'string'))))
    throw new ModelRejected(`output ${out.name} has shape [${os.join(', ')}], expected [batch] or [batch, 1]`);
  return out.name;
}

export class ModelRegistry {
  private active = new Map<string, ActiveModel>();
  private readonly errors = new Map<string, LoadError>();
  private readonly files = new Map<string, string>();
  private readonly quarantine = new Map<string, Quarantined>();
  private generation = 0;
  private readonly dir: string;
  private readonly log: (line: string) => void;
  private readonly events: LoadEvents;
  private readonly maxModelBytes: number;
  private readonly quarantineCrashes: number;
  private readonly quarantineWindowMs: number;

  constructor(
    private readonly host: SessionHost,
    opts: RegistryOptions,
  ) {
    this.dir = opts.dir;
    this.log = opts.log ?? (() => undefined);
    this.events = opts.events ?? {};
    this.maxModelBytes = opts.maxModelBytes ?? 256 * 1024 * 1024;
    this.quarantineCrashes = opts.quarantineCrashes ?? 3;
    this.quarantineWindowMs = opts.quarantineWindowMs ?? 600_000;
  }

  /** The active models now; a batch keeps this snapshot for its whole run. */
  snapshot(): ReadonlyMap<string, ActiveModel> {
    return this.active;
  }

  /** The models out of service for crashing the session host. */
  quarantined(): ReadonlyMap<string, Quarantined> {
    return this.quarantine;
  }

  /**
   * Loads `file` (plus its sidecar, if any), entries of the models folder, as model `name` and swaps it in. Resolves
   * either way; returns false and records the reason when the file is rejected.
   */
  async upsert(name: string, file: string, sidecar: string | null): Promise<boolean> {
    const t0 = performance.now();
    const fileName = basename(file);
    this.files.set(name, fileName);
    let key: string | null = null;
    try {
      const bytes = await readModelFile(this.dir, file, this.maxModelBytes);
      let side: unknown;
      let sideText = '';
      if (sidecar !== null) {
        sideText = new TextDecoder().decode(await readModelFile(this.dir, sidecar, MaxSidecarBytes));
        try {
          side = JSON.parse(sideText) as unknown;
        } catch (e) {
          throw new ModelRejected(`sidecar ${basename(sidecar)}: ${jsonErrorWithoutContent(e)}`);
        }
      }
      const sha256 = createHash('sha256').update(bytes).update(sideText).digest('hex');
      const current = this.active.get(name);
      if (current && current.sha256 === sha256) return true;
      const q = this.quarantine.get(name);
      if (q && q.sha256 === sha256)
        throw new ModelRejected(`the same bytes as the quarantined file (${q.reason}); drop another file to lift it`);
      let metadata: Record<string, string>;
      try {
        metadata = readOnnxMetadata(bytes);
      } catch (e) {
        throw new ModelRejected(`not a readable ONNX file (${(e as Error).message}); partial or corrupt?`);
      }
      const spec = (() => {
        try {
          return resolveSpec(side, metadata);
        } catch (e) {
          throw new ModelRejected((e as Error).message);
        }
      })();
      try {
        resolutionMs(spec.resolution);
      } catch (e) {
        throw new ModelRejected(`resolution: ${(e as Error).message}`);
      }
      key = `${name}#${++this.generation}`;
      let info: SessionInfo;
      try {
        info = await this.host.load(key, bytes);
      } catch (e) {
        key = null;
        throw new ModelRejected(`onnxruntime could not load it: ${(e as Error).message}`);
      }
      const output = checkSignature(spec, info);
      // Warm-up: plausible values (all 1) through the real session; one finite score per row.
      const width = spec.features.length;
      let scores: Float32Array;
      try {
        scores = await this.host.run(key, new Float32Array(WarmupRows * width).fill(1), WarmupRows, width, output);
      } catch (e) {
        throw new ModelRejected(`warm-up run failed: ${(e as Error).message}`);
      }
      if (scores.length !== WarmupRows)
        throw new ModelRejected(`warm-up gave ${scores.length} values for ${WarmupRows} rows, expected one per row`);
      if (!scores.every(Number.isFinite))
        throw new ModelRejected(`warm-up gave non-finite scores: ${[...scores].join(', ')}`);
      const model: ActiveModel = {
        name,
        spec,
        output,
        key,
        file: fileName,
        sha256,
        specSource: spec.source,
        loadedAt: Date.now(),
        refs: 0,
        retired: false,
        crashes: [],
      };
      const next = new Map(this.active);
      next.set(name, model);
      this.active = next; // the swap
      this.errors.delete(name);
      if (q) this.log(`model ${name}: quarantine lifted by a new file`);
      this.quarantine.delete(name);
      key = null;
      if (current) this.retire(current);
      const ms = performance.now() - t0;
      this.log(
        `model ${name} v${spec.version} loaded from ${fileName} (${spec.source}; ${spec.features.length} features at ${spec.resolution}, ` +
          `output ${output}) in ${ms.toFixed(0)} ms${current ? `, replacing v${current.spec.version}` : ''}`,
      );
      this.events.loaded?.(model, ms);
      return true;
    } catch (e) {
      if (key !== null) await this.host.release(key).catch(() => undefined);
      const reason = cleanReason(e instanceof Error ? e.message : String(e), this.dir);
      this.errors.set(name, { at: Date.now(), file: fileName, reason });
      const cur = this.active.get(name);
      this.log(
        `model ${name}: rejected ${fileName}: ${reason}` +
          (cur
            ? ` (v${cur.spec.version} keeps serving)`
            : this.quarantine.has(name)
              ? ' (it stays quarantined)'
              : ' (no version of it is serving)'),
      );
      this.events.rejected?.(name, fileName, reason);
      return false;
    }
  }

  /** The file of `name` is gone: unload it. */
  async remove(name: string): Promise<void> {
    this.files.delete(name);
    this.errors.delete(name);
    this.quarantine.delete(name);
    const cur = this.active.get(name);
    if (!cur) return;
    const next = new Map(this.active);
    next.delete(name);
    this.active = next;
    this.retire(cur);
    this.log(`model ${name} v${cur.spec.version} unloaded (file removed)`);
    this.events.unloaded?.(name);
    await Promise.resolve();
  }

  /** Scores `rows` rows with the model in one run; the caller holds it (acquire/release) for the batch. */
  run(m: ActiveModel, input: Float32Array, rows: number): Promise<Float32Array> {
    return this.host.run(m.key, input, rows, m.spec.features.length, m.output);
  }

  /**
   * Scores `rows` rows with the model in runs of at most `runRows`, one message to the session host. The session host
   * dying while it ran this message counts against the model; the last crash its quarantine allows (and any message
   * of a quarantined model) rejects with {@link ModelQuarantined}.
   */
  async score(m: ActiveModel, input: Float32Array, rows: number, runRows: number): Promise<Scored> {
    if (this.quarantine.get(m.name)?.sha256 === m.sha256) throw new ModelQuarantined(`model ${m.name} is quarantined`);
    try {
      return await this.host.score(m.key, input, rows, m.spec.features.length, m.output, runRows);
    } catch (e) {
      if (e instanceof HostError && e.crashedRunning) this.crashed(m, e.message);
      if (this.quarantine.get(m.name)?.sha256 === m.sha256)
        throw new ModelQuarantined(`model ${m.name} is quarantined`);
      throw e;
    }
  }

  /** The session host died running the model: counted, and the model quarantined at the limit. */
  private crashed(m: ActiveModel, why: string): void {
    const now = Date.now();
    m.crashes = [...m.crashes.filter((t) => now - t < this.quarantineWindowMs), now];
    const n = m.crashes.length;
    this.events.crashed?.(m);
    if (n < this.quarantineCrashes || m.retired) {
      this.log(
        `model ${m.name} v${m.spec.version}: the session host died running it (${why}); crash ${n} of ${this.quarantineCrashes}`,
      );
      return;
    }
    const reason = cleanReason(
      `the session host died ${n} times within ${Math.round(this.quarantineWindowMs / 1000)} s while running this ` +
        `model (last: ${why}); not served until a new file for ${m.name} is dropped`,
      this.dir,
    );
    const q: Quarantined = {
      name: m.name,
      file: m.file,
      version: m.spec.version,
      resolution: m.spec.resolution,
      sha256: m.sha256,
      at: now,
      crashes: n,
      reason,
    };
    this.quarantine.set(m.name, q);
    const next = new Map(this.active);
    next.delete(m.name);
    this.active = next;
    this.retire(m);
    this.log(`model ${m.name} v${m.spec.version} quarantined: ${reason}`);
    this.events.quarantined?.(q);
  }

  acquire(m: ActiveModel): void {
    m.refs++;
  }

  release(m: ActiveModel): void {
    m.refs--;
    if (m.retired && m.refs === 0) this.dispose(m);
  }

  private retire(m: ActiveModel): void {
    m.retired = true;
    if (m.refs === 0) this.dispose(m);
  }

  private dispose(m: ActiveModel): void {
    this.host.release(m.key).catch((e: unknown) => this.log(`releasing ${m.key}: ${String(e)}`));
  }

  status(): ModelStatus[] {
    const names = new Set([
      ...this.active.keys(),
      ...this.errors.keys(),
      ...this.files.keys(),
      ...this.quarantine.keys(),
    ]);
    return [...names].sort().map((name) => {
      const a = this.active.get(name);
      const err = this.errors.get(name);
      const q = this.quarantine.get(name);
      return {
        name,
        file: this.files.get(name) ?? a?.file ?? null,
        active: a
          ? {
              version: a.spec.version,
              features: [...a.spec.features],
              resolution: a.spec.resolution,
              output: a.output,
              threshold: a.spec.threshold,
              higherIsAnomalous: a.spec.higherIsAnomalous,
              sha256: a.sha256,
              specSource: a.specSource,
              loadedAt: new Date(a.loadedAt).toISOString(),
            }
          : null,
        lastError: err ? { at: new Date(err.at).toISOString(), file: err.file, reason: err.reason } : null,
        quarantined: q
          ? { at: new Date(q.at).toISOString(), file: q.file, version: q.version, crashes: q.crashes, reason: q.reason }
          : null,
      };
    });
  }
}
