/**
 * TypeScript twin of the Rust parser (`src/parser.rs`), used where the addon is not built. It must return
 * byte-identical results, so it scans the bytes itself instead of calling JSON.parse: JSON.parse cannot report
 * invalid UTF-8 offsets, duplicate keys or nesting depth the way the contract needs. Keep the two in step; the
 * vectors in contracts/vectors and the differential test hold them to it.
 *
 * This file is the entry, as parser.rs is: the checks on a whole body and the two body forms (one JSON value,
 * NDJSON lines). The modules in `fallback/` mirror the Rust modules of the same names: `scanner` (the JSON grammar),
 * `events` (one event's keys and validation), `rfc3339` (timestamps) and `encoding` (canonical events, records,
 * the result).
 */
import { isUtf8 } from 'node:buffer';
import type { ParseOptions, ParseResult } from './types';
import { failed, Sink } from './fallback/encoding';
import { EventReader } from './fallback/events';
import { JsonSyntaxError, LBRACE, LBRACKET, RBRACKET, Scanner, isWs } from './fallback/scanner';

export { MAX_DEPTH } from './fallback/scanner';
export { MAX_METRICS } from './fallback/events';
export { rfc3339Ms } from './fallback/rfc3339';

const NEWLINE = 0x0a;

/** The body holds more events than allowed; `at` is where the first one too many starts. */
class TooManyEvents extends Error {
  constructor(readonly at: number) {
    super('too many events');
    this.name = 'TooManyEvents';
  }
}

/** Offset of the first byte that starts an invalid UTF-8 sequence (what Rust's `valid_up_to` reports). */
export function invalidUtf8Offset(b: Uint8Array): number {
  let i = 0;
  const n = b.length;
  while (i < n) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f; // no UTF-16 surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f; // nothing above U+10FFFF
    } else return i;
    const c1 = b[i + 1];
    if (c1 === undefined || c1 < lo || c1 > hi) return i;
    for (let k = 2; k <= need; k++) {
      const ck = b[i + k];
      if (ck === undefined || ck < 0x80 || ck > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** One JSON value: an event object, or an array of events. */
function json(r: EventReader, sink: Sink, maxEvents: number): void {
  const sc = r.sc;
  sc.skipWs();
  const first = sc.b[sc.pos];
  if (first === LBRACE) {
    if (maxEvents === 0) throw new TooManyEvents(sc.pos);
    r.eventInto(sink, 0, 1);
  } else if (first === LBRACKET) {
    let index = 0;
    // The array is depth 1, its events depth 2.
    sc.members(1, RBRACKET, () => {
      if (sc.pos < sc.end && index >= maxEvents) throw new TooManyEvents(sc.pos);
      r.eventInto(sink, index, 2);
      index++;
    });
  } else {
    throw new JsonSyntaxError('expected an object or an array', sc.pos);
  }
  sc.expectEnd();
}

/** One event per line; a line's syntax error rejects that line only. */
function ndjson(r: EventReader, sink: Sink, maxEvents: number): void {
  const sc = r.sc;
  const b = sc.b;
  const len = b.length;
  let lineStart = 0;
  let line = 0;
  let events = 0;
  while (lineStart < len) {
    let nl = b.indexOf(NEWLINE, lineStart);
    if (nl < 0) nl = len;
    // The event's bytes are the line without surrounding whitespace (and without its `\r\n`).
    let s = lineStart;
    let e = nl;
    while (s < e && isWs(b[s]!)) s++;
    while (e > s && isWs(b[e - 1]!)) e--;
    if (s < e) {
      if (events >= maxEvents) throw new TooManyEvents(s);
      events++;
      sc.setWindow(s, e);
      try {
        const ev = r.event(1);
        sc.expectEnd();
        r.emit(sink, ev, line, s, e);
      } catch (err) {
        if (!(err instanceof JsonSyntaxError)) throw err;
        sink.reject(line, `invalid JSON at offset ${err.at}: ${err.msg}`, s, e);
      }
    }
    line++;
    lineStart = nl + 1;
  }
}

/** Parses, validates and normalises a telemetry body into Kafka records (TypeScript implementation). */
export function fallbackParseTelemetry(body: Buffer, opts: ParseOptions): ParseResult {
  if (opts.contentType !== 'json' && opts.contentType !== 'ndjson') {
    throw new TypeError("contentType must be 'json' or 'ndjson'");
  }
  if (body.length > 0xffffffff) return failed('body too large', 0);
  if (!isUtf8(body)) return failed('invalid UTF-8', invalidUtf8Offset(body));
  let blank = true;
  for (const c of body) {
    if (!isWs(c)) {
      blank = false;
      break;
    }
  }
  if (blank) return failed('empty body', 0);
  const r = new EventReader(new Scanner(body), opts);
  const sink = new Sink(opts.groupByDevice);
  try {
    if (opts.contentType === 'ndjson') ndjson(r, sink, opts.maxEvents);
    else json(r, sink, opts.maxEvents);
  } catch (err) {
    if (err instanceof JsonSyntaxError) return failed(err.msg, err.at);
    if (err instanceof TooManyEvents) {
      return { ...failed(`more than ${String(opts.maxEvents)} events`, err.at), tooManyEvents: true };
    }
    throw err;
  }
  return sink.finish();
}
