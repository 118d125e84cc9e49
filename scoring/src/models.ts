/**
 * The loaded models and their swaps. A file is loaded into a new session next to the model it replaces, checked
 * (spec, input, output, warm-up), and only then swapped in with one reference assignment, so any batch sees either
 * the old model or the new one, whole. The old session is released once no batch holds it. A file that fails stays
 * out: the model it would have replaced keeps serving and the reason is logged, counted and shown in `status()`.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolutionMs } from '@fleetpulse/contracts';
import { readOnnxMetadata } from './onnx-meta';
import { resolveSpec, type ModelSpec } from './model-spec';
import type { Scored, SessionHost } from './session-host';
import type { SessionInfo, ValueMeta } from './session-protocol';

export interface ActiveModel {
  readonly name: string;
  readonly spec: ModelSpec;
  /** Output actually read. */
  readonly output: string;
  readonly key: string;
  readonly file: string;
  readonly sha256: string;
  readonly specSource: string;
  readonly loadedAt: number;
  /** Batches currently scoring with it. */
  refs: number;
  retired: boolean;
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
}

export interface LoadEvents {
  loaded?: (m: ActiveModel, ms: number) => void;
  rejected?: (name: string, file: string, reason: string) => void;
  unloaded?: (name: string) => void;
}

export class ModelRejected extends Error {
  override readonly name = 'ModelRejected';
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
  private generation = 0;

  constructor(
    private readonly host: SessionHost,
    private readonly log: (line: string) => void = () => undefined,
    private readonly events: LoadEvents = {},
  ) {}

  /** The active models now; a batch keeps this snapshot for its whole run. */
  snapshot(): ReadonlyMap<string, ActiveModel> {
    return this.active;
  }

  /**
   * Loads `file` (plus its sidecar, if any) as model `name` and swaps it in. Resolves either way; returns false and
   * records the reason when the file is rejected.
   */
  async upsert(name: string, file: string, sidecar: string | null): Promise<boolean> {
    const t0 = performance.now();
    this.files.set(name, file);
    let key: string | null = null;
    try {
      const bytes = new Uint8Array(await readFile(file));
      let side: unknown;
      let sideText = '';
      if (sidecar !== null) {
        sideText = await readFile(sidecar, 'utf8');
        try {
          side = JSON.parse(sideText) as unknown;
        } catch (e) {
          throw new ModelRejected(`sidecar ${sidecar} is not JSON: ${(e as Error).message}`);
        }
      }
      const sha256 = createHash('sha256').update(bytes).update(sideText).digest('hex');
      const current = this.active.get(name);
      if (current && current.sha256 === sha256) return true;
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
        file,
        sha256,
        specSource: spec.source,
        loadedAt: Date.now(),
        refs: 0,
        retired: false,
      };
      const next = new Map(this.active);
      next.set(name, model);
      this.active = next; // the swap
      this.errors.delete(name);
      key = null;
      if (current) this.retire(current);
      const ms = performance.now() - t0;
      this.log(
        `model ${name} v${spec.version} loaded from ${file} (${spec.source}; ${spec.features.length} features at ${spec.resolution}, ` +
          `output ${output}) in ${ms.toFixed(0)} ms${current ? `, replacing v${current.spec.version}` : ''}`,
      );
      this.events.loaded?.(model, ms);
      return true;
    } catch (e) {
      if (key !== null) await this.host.release(key).catch(() => undefined);
      const reason = e instanceof Error ? e.message : String(e);
      this.errors.set(name, { at: Date.now(), file, reason });
      const cur = this.active.get(name);
      this.log(
        `model ${name}: rejected ${file}: ${reason}` +
          (cur ? ` (v${cur.spec.version} keeps serving)` : ' (no version of it is serving)'),
      );
      this.events.rejected?.(name, file, reason);
      return false;
    }
  }

  /** The file of `name` is gone: unload it. */
  async remove(name: string): Promise<void> {
    this.files.delete(name);
    this.errors.delete(name);
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

  /** Scores `rows` rows with the model in runs of at most `runRows`, one message to the session host. */
  score(m: ActiveModel, input: Float32Array, rows: number, runRows: number): Promise<Scored> {
    return this.host.score(m.key, input, rows, m.spec.features.length, m.output, runRows);
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
    const names = new Set([...this.active.keys(), ...this.errors.keys(), ...this.files.keys()]);
    return [...names].sort().map((name) => {
      const a = this.active.get(name);
      const err = this.errors.get(name);
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
      };
    });
  }
}
