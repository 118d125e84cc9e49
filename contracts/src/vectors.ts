/**
 * Loader of the telemetry parser vectors (contracts/vectors/, format in its README): the one corpus every
 * implementation of ingestion's parse + validate + normalise step must pass byte for byte.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { vectorsDir } from './schema';

/** Same shape as `ParseOptions` of @fleetpulse/native (declared here: contracts depends on nothing). */
export interface VectorParseOptions {
  contentType: 'json' | 'ndjson';
  receivedAt: number;
  nowMs: number;
  maxFutureMs: number;
  maxPastMs: number;
  maxEvents: number;
  groupByDevice: boolean;
  allowedDevices?: string;
}

export interface VectorRecord {
  /** Kafka key: the device id. */
  key: string;
  /** Events in the record: 1, or the group size with groupByDevice. */
  events: number;
  /** Kafka value, exactly (UTF-8 JSON). */
  value: string;
}

export interface VectorRejected {
  index: number;
  error: string;
  /** Byte range of the event in the body. */
  start: number;
  end: number;
}

export type VectorExpect =
  | { ok: true; accepted: number; records: VectorRecord[]; rejected: VectorRejected[] }
  | { ok: false; error: string; offset: number; tooManyEvents?: true };

export interface TelemetryVector {
  /** File the vector came from, e.g. `valid.json`. */
  file: string;
  name: string;
  /** Defaults of options.json with the vector's overrides applied. */
  options: VectorParseOptions;
  body: Buffer;
  expect: VectorExpect;
}

interface VectorFile {
  vectors: {
    name: string;
    options?: Partial<VectorParseOptions>;
    body?: string;
    bodyBase64?: string;
    expect: VectorExpect;
  }[];
}

/** Every vector of every `*.json` file except options.json, in file and then file order. */
export function loadTelemetryVectors(dir: string = vectorsDir): TelemetryVector[] {
  const defaults = (JSON.parse(readFileSync(join(dir, 'options.json'), 'utf8')) as { options: VectorParseOptions })
    .options;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f !== 'options.json')
    .sort();
  return files.flatMap((file) => {
    const content = JSON.parse(readFileSync(join(dir, file), 'utf8')) as VectorFile;
    return content.vectors.map((v) => {
      if ((v.body === undefined) === (v.bodyBase64 === undefined)) {
        throw new Error(`${file}: vector "${v.name}" needs exactly one of body and bodyBase64`);
      }
      return {
        file,
        name: v.name,
        options: { ...defaults, ...v.options },
        body: v.body !== undefined ? Buffer.from(v.body, 'utf8') : Buffer.from(v.bodyBase64 ?? '', 'base64'),
        expect: v.expect,
      };
    });
  });
}
