/**
 * A model's declaration (docs/contract.md, "Scoring"): from its sidecar `<name>.json`, else from the ONNX
 * metadata_props with the same keys (string values; `features` as a JSON array or comma-separated).
 */
import { z } from 'zod';

export interface ModelSpec {
  version: string;
  /** `metric.stat`, in the order of the input's columns. */
  features: string[];
  resolution: string;
  /** Output to read; null: `scores` if present, else the only float tensor output. */
  output: string | null;
  threshold: number;
  higherIsAnomalous: boolean;
}

export const FeatureStats = ['count', 'sum', 'min', 'max', 'mean', 'stddev', 'first', 'last'] as const;
export type FeatureStat = (typeof FeatureStats)[number];

const feature = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,64}\.(count|sum|min|max|mean|stddev|first|last)$/, 'must be "<metric>.<stat>"');

const specSchema = z.object({
  version: z.union([z.string().min(1), z.number()]).transform(String),
  features: z.array(feature).min(1).max(1024),
  resolution: z.string().regex(/^[1-9][0-9]*s$/, 'must be like "10s"'),
  output: z.string().min(1).optional(),
  threshold: z.number().finite(),
  higherIsAnomalous: z.boolean().default(true),
});

export class ModelSpecError extends Error {
  override readonly name = 'ModelSpecError';
}

/** Metadata strings -> the sidecar's JSON shape. */
function fromMetadata(props: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(props)) {
    if (k === 'features') {
      const t = v.trim();
      out[k] = t.startsWith('[') ? (JSON.parse(t) as unknown) : t.split(',').map((s) => s.trim());
    } else if (k === 'threshold') out[k] = Number(v);
    else if (k === 'higherIsAnomalous') out[k] = v === 'true' ? true : v === 'false' ? false : v;
    else out[k] = v;
  }
  return out;
}

/**
 * The spec of a model: the sidecar when there is one (all of it), else the metadata. Throws {@link ModelSpecError}
 * listing every problem.
 */
export function resolveSpec(sidecar: unknown, metadata: Record<string, string>): ModelSpec & { source: string } {
  let raw: unknown;
  let source: string;
  if (sidecar !== undefined) {
    raw = sidecar;
    source = 'sidecar';
  } else {
    try {
      raw = fromMetadata(metadata);
    } catch (e) {
      throw new ModelSpecError(`metadata_props: ${(e as Error).message}`);
    }
    source = 'metadata_props';
  }
  const parsed = specSchema.safeParse(raw);
  if (!parsed.success)
    throw new ModelSpecError(
      `${source}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  const s = parsed.data;
  if (new Set(s.features).size !== s.features.length) throw new ModelSpecError(`${source}: features repeat`);
  return { ...s, output: s.output ?? null, source };
}

/** `temp.mean` -> ['temp', 'mean']. */
export function splitFeature(f: string): [metric: string, stat: FeatureStat] {
  const i = f.lastIndexOf('.');
  return [f.slice(0, i), f.slice(i + 1) as FeatureStat];
}
