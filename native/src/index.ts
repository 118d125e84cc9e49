/**
 * The telemetry parser of the ingestion path: the Rust addon when it is built (`npm run build:native -w native`),
 * else the TypeScript fallback with the same results. Which one runs is logged once, at load.
 */
import { fallbackParseTelemetry } from './fallback';
import type { ParseResult, ParseTelemetry, ParserKind, RejectedEvent } from './types';

export type { ParseOptions, ParseResult, ParseTelemetry, ParserKind, RejectedEvent } from './types';
export { fallbackParseTelemetry } from './fallback';
export { recordsOf, type TelemetryRecord } from './records';

/** The addon (native/src/lib.rs): packs the result into `out` and returns the bytes it needs. */
interface Binding {
  parseTelemetryPacked(
    body: Buffer,
    out: Buffer,
    contentType: number,
    receivedAt: number,
    nowMs: number,
    maxFutureMs: number,
    maxPastMs: number,
    maxEvents: number,
    groupByDevice: boolean,
    allowedDevices: string | undefined,
  ): number;
}

// The packed layout (native/src/parser/packed.rs): a header of 10 u32 words, per-record and per-key words, then
// bytes. One Buffer kept across calls receives it, so a call creates no ArrayBuffer unless its values need one.
const HEADER_WORDS = 10;
/** Larger buffers (a huge body's result) are used for their call only, not kept. */
const KEEP_BYTES = 4 << 20;

function unpack(buf: Buffer, w32: Uint32Array): ParseResult {
  const flags = w32[0]!;
  const n = w32[3]!;
  const nKeys = w32[4]!;
  const nRejected = w32[5]!;
  const valuesLen = w32[6]!;
  const errorLen = w32[8]!;
  let w = HEADER_WORDS;
  const valueEnds = w32.slice(w, w + n);
  const eventCounts = w32.slice(w + n, w + 2 * n);
  const ids = w + 2 * n;
  w += 3 * n;
  const valuesAt = (w + nKeys + 4 * nRejected) * 4;
  const textAt = valuesAt + valuesLen;
  const values = Buffer.allocUnsafe(valuesLen);
  buf.copy(values, 0, valuesAt, textAt);
  let t = textAt + errorLen;
  // Device ids are validated ASCII: latin1 decodes them fastest.
  const unique = new Array<string>(nKeys);
  for (let i = 0; i < nKeys; i++) {
    const e = textAt + w32[w + i]!;
    unique[i] = buf.toString('latin1', t, e);
    t = e;
  }
  w += nKeys;
  const keys = new Array<string>(n);
  for (let i = 0; i < n; i++) keys[i] = unique[w32[ids + i]!]!;
  const rejected: RejectedEvent[] = [];
  for (let i = 0; i < nRejected; i++, w += 4) {
    const e = textAt + w32[w + 3]!;
    rejected.push({ index: w32[w]!, error: buf.toString('utf8', t, e), start: w32[w + 1]!, end: w32[w + 2]! });
    t = e;
  }
  const result: ParseResult = {
    ok: (flags & 1) !== 0,
    accepted: w32[2]!,
    keys,
    values,
    valueEnds,
    eventCounts,
    rejected,
  };
  if ((flags & 4) !== 0) {
    result.error = buf.toString('utf8', textAt, textAt + errorLen);
    result.offset = w32[1]!;
  }
  if ((flags & 2) !== 0) result.tooManyEvents = true;
  return result;
}

function wrap(binding: Binding): ParseTelemetry {
  let scratch = Buffer.allocUnsafeSlow(64 << 10);
  let words = new Uint32Array(scratch.buffer, 0, scratch.length >> 2);
  return (body, opts) => {
    const ct = opts.contentType === 'json' ? 0 : opts.contentType === 'ndjson' ? 1 : 2;
    let out = scratch;
    let w32 = words;
    for (;;) {
      const need = binding.parseTelemetryPacked(
        body,
        out,
        ct,
        opts.receivedAt,
        opts.nowMs,
        opts.maxFutureMs,
        opts.maxPastMs,
        opts.maxEvents,
        opts.groupByDevice,
        opts.allowedDevices,
      );
      if (need <= out.length) return unpack(out, w32);
      // Too small: grow and parse again (rare: the buffer keeps the largest size seen up to KEEP_BYTES).
      const size = (Math.max(need, out.length * 2) + 3) & ~3;
      out = Buffer.allocUnsafeSlow(size);
      w32 = new Uint32Array(out.buffer, 0, size >> 2);
      if (size <= KEEP_BYTES) {
        scratch = out;
        words = w32;
      }
    }
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
