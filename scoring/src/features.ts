/**
 * Features from window records (docs/contract.md, "Window record", "Scoring"): a model's feature `metric.stat` is
 * read from the one record of a device and window at the model's resolution, so a record is scored (or not) as soon
 * as it is read. Nothing waits for other records.
 */
import type { MetricStats, WindowRecord } from '@fleetpulse/contracts';
import { splitFeature, type FeatureStat } from './model-spec';

/** Why a model cannot score a record: a feature's metric is absent, or one of its values is not a finite number. */
export type Unscorable = 'missing-metric' | 'non-finite-feature';

/** Why a Kafka value is not a window record (the label of `scoring_records_invalid_total`). */
export type InvalidReason = 'empty' | 'not-json' | 'not-a-window-record';

export class InvalidRecord extends Error {
  override readonly name = 'InvalidRecord';
  constructor(
    readonly reason: InvalidReason,
    detail: string,
  ) {
    super(detail);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What is wrong with a parsed value as a window record (contracts/schema/window.schema.json), or null. */
function recordProblem(v: unknown): string | null {
  if (!isObject(v)) return `a JSON ${Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v}, not an object`;
  if (typeof v.metric === 'string' && !('metrics' in v)) return 'a v1 aggregate row (one metric), not a window record';
  if (typeof v.deviceId !== 'string' || v.deviceId.length === 0) return 'deviceId: not a non-empty string';
  if (typeof v.resolution !== 'string' || !/^[0-9]+s$/.test(v.resolution)) return 'resolution: not like "10s"';
  if (!Number.isSafeInteger(v.windowStart)) return 'windowStart: not an integer';
  if (!Number.isSafeInteger(v.windowEnd)) return 'windowEnd: not an integer';
  if (typeof v.final !== 'boolean') return 'final: not a boolean';
  if (!isObject(v.metrics)) return 'metrics: not an object';
  let n = 0;
  for (const [name, stats] of Object.entries(v.metrics)) {
    if (!isObject(stats)) return `metrics.${name}: not an object`;
    n++;
  }
  if (n === 0) return 'metrics: empty';
  return null;
}

/**
 * A Kafka value as a window record; throws {@link InvalidRecord} when it is not one. Only the record's shape is
 * checked here: a stat that is missing or not a finite number (JSON writes NaN as null) only keeps the models that
 * need it from scoring the record (see {@link fillVector}).
 */
export function parseWindowRecord(value: Buffer | null): WindowRecord {
  if (!value || value.length === 0) throw new InvalidRecord('empty', 'empty value');
  let v: unknown;
  try {
    v = JSON.parse(value.toString('utf8'));
  } catch (e) {
    throw new InvalidRecord('not-json', `not JSON: ${(e as Error).message}`);
  }
  const problem = recordProblem(v);
  if (problem !== null) throw new InvalidRecord('not-a-window-record', problem);
  return v as WindowRecord;
}

/** A model's features, split once: `[metric, stat]` in the order of the input's columns. */
export type CompiledFeatures = readonly (readonly [metric: string, stat: FeatureStat])[];

export function compileFeatures(features: readonly string[]): CompiledFeatures {
  return features.map(splitFeature);
}

function statsOf(record: WindowRecord, metric: string): MetricStats | undefined {
  // Own properties only: a metric named like an Object.prototype member must not read the prototype.
  return Object.prototype.hasOwnProperty.call(record.metrics, metric) ? record.metrics[metric] : undefined;
}

/**
 * The feature vector of one record for one model, written into `out` at `at`; null when it is complete, else why
 * the model cannot score the record: `missing-metric` if any feature's metric is absent, else `non-finite-feature`.
 * A Float64Array keeps the values exact (the score's `features` can then be read back with {@link featureObjectOf}).
 */
export function fillVector(
  record: WindowRecord,
  features: CompiledFeatures,
  out: Float32Array | Float64Array,
  at: number,
): Unscorable | null {
  let problem: Unscorable | null = null;
  // A model's features usually come grouped by metric: its stats are looked up once per run of the same metric.
  let metric: string | null = null;
  let s: MetricStats | undefined;
  for (let i = 0; i < features.length; i++) {
    const [m, stat] = features[i]!;
    if (m !== metric) s = statsOf(record, (metric = m));
    if (s === undefined) return 'missing-metric';
    const v: unknown = s[stat];
    if (typeof v !== 'number' || !Number.isFinite(v)) problem = 'non-finite-feature';
    else out[at + i] = v;
  }
  return problem;
}

/** The score's `features` object: `metric.stat` -> value, for a record {@link fillVector} accepted. */
export function featureObject(
  record: WindowRecord,
  features: readonly string[],
  compiled: CompiledFeatures,
): Record<string, number> {
  const o: Record<string, number> = {};
  for (let i = 0; i < features.length; i++) {
    const [metric, stat] = compiled[i]!;
    o[features[i]!] = statsOf(record, metric)![stat];
  }
  return o;
}

/** The same object from the exact values {@link fillVector} wrote into a Float64Array at `at` (no second lookup). */
export function featureObjectOf(features: readonly string[], values: Float64Array, at: number): Record<string, number> {
  const o: Record<string, number> = {};
  for (let i = 0; i < features.length; i++) o[features[i]!] = values[at + i]!;
  return o;
}
