/**
 * The telemetry parser of the ingestion path: the Rust addon when it is built (`npm run build:native -w native`),
 * else the TypeScript fallback with the same results. Which one runs is logged once, at load.
 */
import { fallbackParseTelemetry } from './fallback';
import type { ParseOptions, ParseResult, ParseTelemetry, ParserKind, RejectedEvent } from './types';

export type { ParseOptions, ParseResult, ParseTelemetry, ParserKind, RejectedEvent } from './types';
export { fallbackParseTelemetry } from './fallback';
export { recordsOf, type TelemetryRecord } from './records';

/** The addon (native/src/lib.rs): packs the result into `out` and says whether it fitted. */
interface Binding {
  /** The other options are written into `out` first (`writeOptions`). */
  parseTelemetryPacked(body: Buffer, out: Buffer, allowedDevices: string | undefined): boolean;
  /** CRC32C (native/src/crc32c.rs). */
  crc32c(data: Buffer): number;
}

// The packed layout (native/src/parser/packed.rs): below `head`, a header of 10 u32 words, per-record and per-key
// words, then text; from `head` on, a slab of values where each call's values follow the previous call's and are
// handed out as views (as `Buffer.allocUnsafe` hands out slices of a pool): no Buffer allocated, one copy.
const HEADER_WORDS = 10;
const HEAD_BYTES = 64 << 10;
const SLAB_BYTES = 1 << 20;
/** Buffers larger than this (a huge body's result) are used for their call only, not kept. */
const KEEP_BYTES = 4 << 20;

interface Scratch {
  buf: Buffer;
  w32: Uint32Array;
  f64: Float64Array;
  /** End of the region rewritten by each call; values start here. */
  head: number;
  /** End of the values handed out so far: never written again. */
  used: number;
}

function scratchOf(head: number, size: number): Scratch {
  const buf = Buffer.allocUnsafeSlow(size);
  const w32 = new Uint32Array(buf.buffer, 0, size >> 2);
  return { buf, w32, f64: new Float64Array(buf.buffer, 0, 4), head, used: head };
}

/**
 * The result's `valueEnds` and `eventCounts` are views into a shared slab, as `Buffer.allocUnsafe` hands out
 * small Buffers: a typed array of its own allocates a backing store each, which cost more than a one-event parse.
 */
const SLAB_WORDS = 16 << 10;
let slab = new Uint32Array(SLAB_WORDS);
// Its ArrayBuffer, kept: `slab.buffer` is a call into the runtime on every read (~4% of a one-event parse).
let slabBuffer = slab.buffer;
let slabUsed = 0;

function u32Copy(w32: Uint32Array, from: number, n: number): Uint32Array {
  if (n > SLAB_WORDS >> 3) return w32.slice(from, from + n);
  if (slabUsed + n > SLAB_WORDS) {
    slab = new Uint32Array(SLAB_WORDS);
    slabBuffer = slab.buffer;
    slabUsed = 0;
  }
  const at = slabUsed;
  slabUsed += n;
  if (n <= 8) {
    for (let i = 0; i < n; i++) slab[at + i] = w32[from + i]!;
  } else {
    slab.set(w32.subarray(from, from + n), at);
  }
  return new Uint32Array(slabBuffer, at * 4, n);
}

function unpack(s: Scratch): ParseResult {
  const { buf, w32 } = s;
  const flags = w32[0]!;
  const n = w32[3]!;
  const nKeys = w32[4]!;
  const nRejected = w32[5]!;
  const valuesLen = w32[6]!;
  const errorLen = w32[8]!;
  let w = HEADER_WORDS;
  const valueEnds = u32Copy(w32, w, n);
  const eventCounts = u32Copy(w32, w + n, n);
  const ids = w + 2 * n;
  w += 3 * n;
  const textAt = (w + nKeys + 4 * nRejected) * 4;
  const values = buf.subarray(s.used, s.used + valuesLen);
  s.used += valuesLen;
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

/** The options go where the result's header will be (native/src/parser/packed.rs, `read_options`). */
function writeOptions(s: Scratch, opts: ParseOptions, ct: number): void {
  s.f64[0] = opts.receivedAt;
  s.f64[1] = opts.nowMs;
  s.f64[2] = opts.maxFutureMs;
  s.f64[3] = opts.maxPastMs;
  s.w32[8] = opts.maxEvents;
  s.w32[9] = ct | (opts.groupByDevice ? 4 : 0);
  s.w32[10] = s.head;
  s.w32[11] = s.used;
}

const align8 = (n: number): number => (n + 7) & ~7;

function wrap(binding: Binding): ParseTelemetry {
  let kept = scratchOf(HEAD_BYTES, SLAB_BYTES);
  return (body, opts) => {
    const ct = opts.contentType === 'json' ? 0 : opts.contentType === 'ndjson' ? 1 : 2;
    let s = kept;
    // Room for the values, guessed before the call (canonical events are about their input's size) so that a
    // new slab is rarely found necessary after a parse, which would then be parsed again.
    let need = s.head;
    let values = body.length * 2 + 4096;
    for (;;) {
      if (need > s.head || s.used + values > s.buf.length) {
        const head = need > s.head ? align8(need * 2) : s.head;
        s = scratchOf(head, align8(Math.max(SLAB_BYTES, head + values)));
        if (s.buf.length <= KEEP_BYTES) kept = s;
      }
      writeOptions(s, opts, ct);
      if (binding.parseTelemetryPacked(body, s.buf, opts.allowedDevices)) return unpack(s);
      need = s.w32[7]!;
      values = s.w32[6]!;
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
/**
 * CRC32C of `data` (Castagnoli, Kafka's record batch checksum) with the CPU's crc32 instruction where it has one;
 * undefined when the addon did not load. For kafkajs' producers (ingestion installs it).
 */
export const nativeCrc32c: ((data: Buffer) => number) | undefined = loaded.binding?.crc32c;
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
