/**
 * The telemetry parser of the ingestion path: the Rust addon when it is built (`npm run build:native -w native`),
 * else the TypeScript fallback with the same results. Which one runs is logged once, at load.
 */
import { fallbackParseTelemetry } from './fallback';
import type { ParseOptions, ParseResult, ParseTelemetry, ParserKind } from './types';

export type { ParseOptions, ParseResult, ParseTelemetry, ParserKind, RejectedEvent } from './types';
export { fallbackParseTelemetry } from './fallback';
export { recordsOf, type TelemetryRecord } from './records';

/** What the addon returns: `ParseResult` with the keys interned (see native/src/lib.rs). */
type RawResult = Omit<ParseResult, 'keys'> & { uniqueKeys: string[]; keyIds: Uint32Array };

interface Binding {
  parseTelemetry(body: Buffer, opts: ParseOptions): RawResult;
}

function wrap(binding: Binding): ParseTelemetry {
  return (body, opts) => {
    const { uniqueKeys, keyIds, ...rest } = binding.parseTelemetry(body, opts);
    const keys = new Array<string>(keyIds.length);
    for (let i = 0; i < keyIds.length; i++) keys[i] = uniqueKeys[keyIds[i]!]!;
    return { ...rest, keys };
  };
}

function loadBinding(): { binding?: Binding; error?: Error } {
  if (process.env.FLEETPULSE_PARSER === 'fallback') return { error: new Error('FLEETPULSE_PARSER=fallback') };
  try {
    // The generated loader picks the .node file for this platform; it sits next to package.json, outside
    // src/ and dist/, hence the relative path that works from both.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return { binding: require('../binding.js') as Binding };
  } catch (err) {
    return { error: err instanceof Error ? err : new Error(String(err)) };
  }
}

const loaded = loadBinding();

/** The addon's parser, or undefined when it is not built (see `nativeLoadError`). */
export const nativeParseTelemetry: ParseTelemetry | undefined = loaded.binding && wrap(loaded.binding);
/** Why the addon did not load, when it did not. */
export const nativeLoadError: Error | undefined = loaded.error;
export const parserKind: ParserKind = nativeParseTelemetry ? 'native' : 'fallback';
/** Parses, validates and normalises a telemetry body into Kafka records. Never throws for any body. */
export const parseTelemetry: ParseTelemetry = nativeParseTelemetry ?? fallbackParseTelemetry;

if (process.env.NODE_ENV !== 'test') {
  console.info(
    parserKind === 'native'
      ? '[native] telemetry parser: Rust addon'
      : `[native] telemetry parser: TypeScript fallback (addon not loaded: ${nativeLoadError?.message.split('\n')[0] ?? 'unknown'})`,
  );
}
