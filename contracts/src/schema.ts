import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Folder of the JSON Schemas, the one source of the event, aggregate and score shapes. */
export const schemaDir = join(__dirname, '..', 'schema');
/** Folder of the CQL files the launcher applies in name order. */
export const cqlDir = join(__dirname, '..', 'cql');
/** Folder of the shared test vectors every parser must pass. */
export const vectorsDir = join(__dirname, '..', 'vectors');

export type SchemaName = 'event' | 'aggregate' | 'window' | 'score' | 'alert-rule' | 'alert-transition';

export function loadSchema(name: SchemaName): Record<string, unknown> {
  return JSON.parse(readFileSync(join(schemaDir, `${name}.schema.json`), 'utf8')) as Record<string, unknown>;
}

/** The CQL statements of every schema file, in order, comments stripped. */
export function cqlStatements(): string[] {
  const files = readdirSync(cqlDir)
    .filter((f) => f.endsWith('.cql'))
    .sort();
  return files.flatMap((f) =>
    readFileSync(join(cqlDir, f), 'utf8')
      .split('\n')
      .filter((line) => !line.trim().startsWith('--'))
      .join('\n')
      .split(';')
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
  );
}
