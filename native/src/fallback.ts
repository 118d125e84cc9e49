/**
 * TypeScript twin of the Rust parser (`src/parser.rs`), used where the addon is not built. It must return
 * byte-identical results, so it scans the bytes itself instead of calling JSON.parse: JSON.parse cannot report
 * invalid UTF-8 offsets, duplicate keys or nesting depth the way the contract needs. Keep the two in step; the
 * vectors in contracts/vectors and the differential test hold them to it.
 */
import { isUtf8 } from 'node:buffer';
import type { ParseOptions, ParseResult, RejectedEvent } from './types';

/** Deepest nesting accepted (the top-level array counts as 1). */
export const MAX_DEPTH = 32;
/** Most metrics one event may carry. */
export const MAX_METRICS = 64;
const MAX_DEVICE_ID = 128;
const MAX_METRIC_NAME = 64;
/** Below this a numeric `ts` is epoch seconds (contract: flat form). */
const SECONDS_LIMIT = 1e11;

const E_EOF = 'unexpected end of input';
const E_CHAR = 'unexpected character';
const E_NUMBER = 'invalid number';
const E_CONTROL = 'control character in string';
const E_ESCAPE = 'invalid escape';
const E_DEPTH = 'nesting deeper than 32 levels';
const E_TRAILING = 'unexpected data after the JSON value';

const DEVICE_ID_PATTERN = 'deviceId: expected 1-128 characters of [A-Za-z0-9._:-]';
const TS_FORMAT = 'ts: expected epoch milliseconds or an RFC 3339 string';
const SEQ_FORMAT = 'seq: expected a non-negative integer';
const METRICS_COUNT = 'metrics: expected 1 to 64 entries';
const METRICS_NAME = 'metrics: invalid name (expected 1-64 characters of [A-Za-z0-9._-])';

/** Stands in for a non-ASCII character from a `\u` escape: no pattern accepts it (same as the Rust 0xff). */
const NON_ASCII = '\u00ff';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const NEWLINE = 0x0a;

/** A syntax error: message and absolute byte offset. Thrown inside the scanner, caught per body or line. */
class JsonSyntaxError extends Error {
  constructor(
    readonly msg: string,
    readonly at: number,
  ) {
    super(`${msg} at ${at}`);
    this.name = 'JsonSyntaxError';
  }
}

/** The body holds more events than allowed; `at` is where the first one too many starts. */
class TooManyEvents extends Error {
  constructor(readonly at: number) {
    super('too many events');
    this.name = 'TooManyEvents';
  }
}

interface Str {
  kind: 'str';
  start: number;
  end: number;
  escaped: boolean;
}
interface Num {
  kind: 'num';
  start: number;
  end: number;
}
type Val = Str | Num | { kind: 'other' };
const OTHER: Val = { kind: 'other' };

interface Entry {
  name: Str;
  value: Val;
}

interface Fields {
  deviceId?: Val;
  ts?: Val;
  seq?: Val;
  hasMetrics: boolean;
  metricsIsObject: boolean;
  entries: Entry[];
  entriesOverflow: boolean;
  candidates: Entry[];
  candidatesOverflow: boolean;
  duplicate?: string;
}

type Event = { valid: true; device: string; json: string } | { valid: false; error: string };

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}
function isAlnum(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}
function isDeviceChar(c: number): boolean {
  return isAlnum(c) || c === 0x2e || c === 0x5f || c === 0x3a || c === 0x2d;
}
function isNameChar(c: number): boolean {
  return isAlnum(c) || c === 0x2e || c === 0x5f || c === 0x2d;
}
function allChars(s: string, pred: (c: number) => boolean): boolean {
  for (let i = 0; i < s.length; i++) if (!pred(s.charCodeAt(i))) return false;
  return true;
}

function failed(error: string, offset: number): ParseResult {
  return {
    ok: false,
    error,
    offset,
    accepted: 0,
    keys: [],
    values: Buffer.alloc(0),
    valueEnds: new Uint32Array(0),
    eventCounts: new Uint32Array(0),
    rejected: [],
  };
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

/** `*` any run of characters, `?` exactly one, anything else itself. */
export function globMatch(p: string, s: string): boolean {
  let pi = 0;
  let si = 0;
  let starP = -1;
  let starS = 0;
  while (si < s.length) {
    const pc = pi < p.length ? p.charCodeAt(pi) : -1;
    if (pc !== -1 && (pc === 0x3f || pc === s.charCodeAt(si))) {
      pi++;
      si++;
    } else if (pc === 0x2a) {
      starP = pi;
      starS = si;
      pi++;
    } else if (starP >= 0) {
      pi = starP + 1;
      starS++;
      si = starS;
    } else return false;
  }
  while (pi < p.length && p.charCodeAt(pi) === 0x2a) pi++;
  return pi === p.length;
}

/** `YYYY-MM-DDTHH:MM:SS[.fff...](Z|+HH:MM|-HH:MM)`, at most 64 chars, to epoch ms; fraction truncated to ms. */
export function rfc3339Ms(t: string): number | undefined {
  const num = (a: number, n: number): number | undefined => {
    if (a + n > t.length) return undefined;
    let v = 0;
    for (let i = a; i < a + n; i++) {
      const c = t.charCodeAt(i);
      if (!isDigit(c)) return undefined;
      v = v * 10 + (c - 0x30);
    }
    return v;
  };
  // Bounded so a huge fraction cannot cost anything; no real timestamp comes close.
  if (t.length < 20 || t.length > 64) return undefined;
  const year = num(0, 4);
  if (t[4] !== '-' || t[7] !== '-' || (t[10] !== 'T' && t[10] !== 't') || t[13] !== ':' || t[16] !== ':') {
    return undefined;
  }
  const month = num(5, 2);
  const day = num(8, 2);
  const hour = num(11, 2);
  const minute = num(14, 2);
  const second = num(17, 2);
  if (
    year === undefined ||
    month === undefined ||
    day === undefined ||
    hour === undefined ||
    minute === undefined ||
    second === undefined
  ) {
    return undefined;
  }
  let i = 19;
  let fracMs = 0;
  if (t[i] === '.') {
    i++;
    const fs = i;
    while (i < t.length && isDigit(t.charCodeAt(i))) i++;
    if (i === fs) return undefined;
    for (let k = 0; k < 3; k++) fracMs = fracMs * 10 + (fs + k < i ? t.charCodeAt(fs + k) - 0x30 : 0);
  }
  const c = t[i];
  let offsetMin: number;
  if ((c === 'Z' || c === 'z') && i + 1 === t.length) offsetMin = 0;
  else if ((c === '+' || c === '-') && i + 6 === t.length && t[i + 3] === ':') {
    const oh = num(i + 1, 2);
    const om = num(i + 4, 2);
    if (oh === undefined || om === undefined || oh > 23 || om > 59) return undefined;
    offsetMin = c === '-' ? -(oh * 60 + om) : oh * 60 + om;
  } else return undefined;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const days = daysFromCivil(year, month, day);
  return days * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + fracMs - offsetMin * 60_000;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
function daysFromCivil(y0: number, m: number, d: number): number {
  const y = m <= 2 ? y0 - 1 : y0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = m > 2 ? m - 3 : m + 9;
  const doy = Math.floor((153 * mp + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** Collects accepted events into Kafka records, grouped per device or one per event. */
class Sink {
  accepted = 0;
  readonly keys: string[] = [];
  readonly rejected: RejectedEvent[] = [];
  private readonly values: string[] = [];
  private readonly counts: number[] = [];
  private readonly groups = new Map<string, number>();

  constructor(private readonly group: boolean) {}

  accept(device: string, json: string): void {
    this.accepted++;
    if (!this.group) {
      this.values.push(json);
      this.keys.push(device);
      this.counts.push(1);
      return;
    }
    let idx = this.groups.get(device);
    if (idx === undefined) {
      idx = this.values.length;
      this.groups.set(device, idx);
      this.values.push('[' + json);
      this.keys.push(device);
      this.counts.push(1);
    } else {
      this.values[idx] += ',' + json;
      this.counts[idx]!++;
    }
  }

  reject(index: number, error: string, start: number, end: number): void {
    this.rejected.push({ index, error, start, end });
  }

  finish(): ParseResult {
    const vals = this.group ? this.values.map((v) => v + ']') : this.values;
    const ends = new Uint32Array(vals.length);
    let off = 0;
    // Canonical values are pure ASCII, so string length is byte length.
    vals.forEach((v, i) => {
      off += v.length;
      ends[i] = off;
    });
    return {
      ok: true,
      accepted: this.accepted,
      keys: this.keys,
      values: Buffer.from(vals.join(''), 'latin1'),
      valueEnds: ends,
      eventCounts: Uint32Array.from(this.counts),
      rejected: this.rejected,
    };
  }
}

class Parser {
  pos = 0;
  /** End of the current scan window: the body for JSON, the line for NDJSON. */
  end: number;
  private readonly receivedAt: string;

  constructor(
    private readonly b: Buffer,
    private readonly opts: ParseOptions,
  ) {
    this.end = b.length;
    this.receivedAt = String(opts.receivedAt);
  }

  // ------------------------------------------------------------------ body forms

  json(sink: Sink): void {
    this.skipWs();
    const first = this.b[this.pos];
    if (first === LBRACE) {
      if (this.opts.maxEvents === 0) throw new TooManyEvents(this.pos);
      this.eventInto(sink, 0, 1);
    } else if (first === LBRACKET) {
      this.pos++;
      this.skipWs();
      let index = 0;
      if (this.peek() === RBRACKET) this.pos++;
      else {
        for (;;) {
          this.skipWs();
          if (this.pos < this.end && index >= this.opts.maxEvents) throw new TooManyEvents(this.pos);
          this.eventInto(sink, index, 2);
          index++;
          this.skipWs();
          const c = this.peek();
          if (c === COMMA) this.pos++;
          else if (c === RBRACKET) {
            this.pos++;
            break;
          } else throw this.err(E_CHAR);
        }
      }
    } else {
      throw new JsonSyntaxError('expected an object or an array', this.pos);
    }
    this.skipWs();
    if (this.pos < this.end) throw this.err(E_TRAILING);
  }

  ndjson(sink: Sink): void {
    const b = this.b;
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
        if (events >= this.opts.maxEvents) throw new TooManyEvents(s);
        events++;
        this.pos = s;
        this.end = e;
        try {
          const ev = this.event(1);
          this.skipWs();
          if (this.pos < this.end) throw this.err(E_TRAILING);
          this.emit(sink, ev, line, s, e);
        } catch (err) {
          if (!(err instanceof JsonSyntaxError)) throw err;
          sink.reject(line, `invalid JSON at offset ${err.at}: ${err.msg}`, s, e);
        }
      }
      line++;
      lineStart = nl + 1;
    }
  }

  private eventInto(sink: Sink, index: number, depth: number): void {
    const start = this.pos;
    const ev = this.event(depth);
    this.emit(sink, ev, index, start, this.pos);
  }

  private emit(sink: Sink, ev: Event, index: number, start: number, end: number): void {
    if (ev.valid) sink.accept(ev.device, ev.json);
    else sink.reject(index, ev.error, start, end);
  }

  // ------------------------------------------------------------------ one event

  /** Scans one event value at `pos` (any JSON value), then validates and encodes it. */
  private event(depth: number): Event {
    if (this.peek() !== LBRACE) {
      this.skipValue(depth);
      return { valid: false, error: 'expected an object' };
    }
    if (depth > MAX_DEPTH) throw this.err(E_DEPTH);
    this.pos++;
    const f: Fields = {
      hasMetrics: false,
      metricsIsObject: false,
      entries: [],
      entriesOverflow: false,
      candidates: [],
      candidatesOverflow: false,
    };
    this.skipWs();
    if (this.peek() === RBRACE) this.pos++;
    else {
      for (;;) {
        this.skipWs();
        const key = this.key();
        const kind = this.keyKind(key);
        if (kind === 'deviceId' || kind === 'ts' || kind === 'seq') {
          const v = this.fieldValue(depth);
          if (f[kind] !== undefined) f.duplicate ??= `${kind}: duplicate key`;
          else f[kind] = v;
        } else if (kind === 'metrics') {
          if (f.hasMetrics) {
            f.duplicate ??= 'metrics: duplicate key';
            this.skipValue(depth + 1);
          } else {
            f.hasMetrics = true;
            if (this.peek() === LBRACE) {
              f.metricsIsObject = true;
              this.metricsObject(depth + 1, f);
            } else this.skipValue(depth + 1);
          }
        } else {
          // Flat form: every numeric top-level field is a metric candidate.
          const c = this.peek();
          if (c === MINUS || isDigit(c)) {
            const n = this.number();
            if (f.candidates.length < MAX_METRICS) f.candidates.push({ name: key, value: n });
            else f.candidatesOverflow = true;
          } else this.skipValue(depth + 1);
        }
        this.skipWs();
        const c = this.peek();
        if (c === COMMA) this.pos++;
        else if (c === RBRACE) {
          this.pos++;
          break;
        } else throw this.err(E_CHAR);
      }
    }
    return this.validate(f);
  }

  /** `"key"` then `:`; leaves `pos` at the value. */
  private key(): Str {
    if (this.peek() !== QUOTE) throw this.err(E_CHAR);
    const k = this.string();
    this.skipWs();
    if (this.peek() !== COLON) throw this.err(E_CHAR);
    this.pos++;
    this.skipWs();
    return k;
  }

  private keyKind(k: Str): 'deviceId' | 'ts' | 'seq' | 'metrics' | 'other' {
    if (k.escaped && k.end - k.start > 64) return 'other';
    switch (this.text(k)) {
      case 'deviceId':
      case 'device_id':
        return 'deviceId';
      case 'ts':
        return 'ts';
      case 'seq':
        return 'seq';
      case 'metrics':
        return 'metrics';
      default:
        return 'other';
    }
  }

  /** The value of a known scalar field: strings and numbers are kept, anything else skipped. */
  private fieldValue(depth: number): Val {
    const c = this.peek();
    if (c === QUOTE) return this.string();
    if (c === MINUS || isDigit(c)) return this.number();
    this.skipValue(depth + 1);
    return OTHER;
  }

  private metricsObject(depth: number, f: Fields): void {
    if (depth > MAX_DEPTH) throw this.err(E_DEPTH);
    this.pos++;
    this.skipWs();
    if (this.peek() === RBRACE) {
      this.pos++;
      return;
    }
    for (;;) {
      this.skipWs();
      const name = this.key();
      const value = this.fieldValue(depth);
      if (f.entries.length < MAX_METRICS) f.entries.push({ name, value });
      else f.entriesOverflow = true;
      this.skipWs();
      const c = this.peek();
      if (c === COMMA) this.pos++;
      else if (c === RBRACE) {
        this.pos++;
        return;
      } else throw this.err(E_CHAR);
    }
  }

  // ------------------------------------------------------------------ validation + encoding

  /** Checks in a fixed order (duplicates, deviceId, ts, seq, metrics), then encodes the canonical event. */
  private validate(f: Fields): Event {
    const bad = (error: string): Event => ({ valid: false, error });
    if (f.duplicate !== undefined) return bad(f.duplicate);
    // deviceId
    if (f.deviceId === undefined) return bad('deviceId: required');
    if (f.deviceId.kind !== 'str') return bad('deviceId: expected a string');
    const device = this.text(f.deviceId);
    if (device.length === 0 || device.length > MAX_DEVICE_ID || !allChars(device, isDeviceChar)) {
      return bad(DEVICE_ID_PATTERN);
    }
    if (this.opts.allowedDevices !== undefined && !globMatch(this.opts.allowedDevices, device)) {
      return bad('deviceId: not allowed for this token');
    }
    // ts
    let ts: number;
    if (f.ts === undefined) return bad('ts: required');
    if (f.ts.kind === 'num') {
      const v = this.numberValue(f.ts);
      if (!Number.isFinite(v)) return bad(TS_FORMAT);
      if (v < SECONDS_LIMIT) ts = Math.floor(v * 1000 + 0.5);
      else if (!Number.isInteger(v)) return bad('ts: expected an integer number of milliseconds');
      else ts = v;
    } else if (f.ts.kind === 'str') {
      const ms = rfc3339Ms(this.text(f.ts));
      if (ms === undefined) return bad(TS_FORMAT);
      ts = ms;
    } else return bad(TS_FORMAT);
    if (ts > this.opts.nowMs + this.opts.maxFutureMs) {
      return bad(`ts: more than ${String(this.opts.maxFutureMs)} ms in the future`);
    }
    if (ts < this.opts.nowMs - this.opts.maxPastMs) {
      return bad(`ts: more than ${String(this.opts.maxPastMs)} ms in the past`);
    }
    // seq
    let seq: string | undefined;
    if (f.seq !== undefined) {
      if (f.seq.kind !== 'num') return bad(SEQ_FORMAT);
      const v = this.numberValue(f.seq);
      if (!(Number.isFinite(v) && v >= 0 && Number.isInteger(v) && v <= Number.MAX_SAFE_INTEGER)) {
        return bad(SEQ_FORMAT);
      }
      seq = String(v);
    }
    // metrics
    if (f.hasMetrics && !f.metricsIsObject) return bad('metrics: expected an object');
    const entries = f.hasMetrics ? f.entries : f.candidates;
    const overflow = f.hasMetrics ? f.entriesOverflow : f.candidatesOverflow;
    const names: string[] = [];
    let metrics = '';
    for (const en of entries) {
      const name = this.text(en.name);
      if (name.length === 0 || name.length > MAX_METRIC_NAME || !allChars(name, isNameChar)) return bad(METRICS_NAME);
      // At most 64 names, so a linear duplicate scan is bounded and cheap.
      if (names.includes(name)) return bad(`metrics.${name}: duplicate key`);
      if (en.value.kind !== 'num') return bad(`metrics.${name}: expected a number`);
      const v = this.numberValue(en.value);
      if (!Number.isFinite(v)) return bad(`metrics.${name}: expected a finite number`);
      metrics += `${names.length > 0 ? ',' : ''}"${name}":${String(v)}`;
      names.push(name);
    }
    if (overflow || entries.length === 0) return bad(METRICS_COUNT);
    const seqPart = seq === undefined ? '' : `,"seq":${seq}`;
    const json = `{"deviceId":"${device}","ts":${String(ts)},"metrics":{${metrics}}${seqPart},"receivedAt":${this.receivedAt}}`;
    return { valid: true, device, json };
  }

  /** JSON number grammar is a subset of what Number() accepts, and both round to the nearest double. */
  private numberValue(n: Num): number {
    return Number(this.b.toString('latin1', n.start, n.end));
  }

  /**
   * A string's value as far as validation cares: each raw byte becomes one char (non-ASCII ones never match a
   * pattern), escapes are decoded, and a `\u` escape above ASCII becomes NON_ASCII, exactly like the Rust side.
   */
  private text(s: Str): string {
    if (!s.escaped) return this.b.toString('latin1', s.start, s.end);
    const b = this.b;
    let out = '';
    let i = s.start;
    while (i < s.end) {
      const c = b[i]!;
      if (c !== BACKSLASH) {
        out += String.fromCharCode(c);
        i++;
        continue;
      }
      const e = b[i + 1]!;
      i += 2;
      switch (e) {
        case 0x62:
          out += '\b';
          break;
        case 0x66:
          out += '\f';
          break;
        case 0x6e:
          out += '\n';
          break;
        case 0x72:
          out += '\r';
          break;
        case 0x74:
          out += '\t';
          break;
        case 0x75: {
          const v = parseInt(b.toString('latin1', i, i + 4), 16);
          i += 4;
          out += v < 0x80 ? String.fromCharCode(v) : NON_ASCII;
          break;
        }
        default:
          out += String.fromCharCode(e);
      }
    }
    return out;
  }

  // ------------------------------------------------------------------ lexer

  private err(msg: string): JsonSyntaxError {
    return this.pos >= this.end ? new JsonSyntaxError(E_EOF, this.end) : new JsonSyntaxError(msg, this.pos);
  }

  private peek(): number {
    if (this.pos < this.end) return this.b[this.pos]!;
    throw new JsonSyntaxError(E_EOF, this.end);
  }

  private skipWs(): void {
    while (this.pos < this.end && isWs(this.b[this.pos]!)) this.pos++;
  }

  /** At an opening quote; returns the contents and leaves `pos` after the closing quote. */
  private string(): Str {
    this.pos++;
    const start = this.pos;
    let escaped = false;
    for (;;) {
      const c = this.peek();
      if (c === QUOTE) {
        const s: Str = { kind: 'str', start, end: this.pos, escaped };
        this.pos++;
        return s;
      }
      if (c === BACKSLASH) {
        escaped = true;
        const bad = new JsonSyntaxError(E_ESCAPE, this.pos);
        this.pos++;
        const e = this.peek();
        // " \ / b f n r t
        if (
          e === 0x22 ||
          e === 0x5c ||
          e === 0x2f ||
          e === 0x62 ||
          e === 0x66 ||
          e === 0x6e ||
          e === 0x72 ||
          e === 0x74
        ) {
          this.pos++;
        } else if (e === 0x75) {
          this.pos++;
          for (let k = 0; k < 4; k++) {
            if (!isHex(this.peek())) throw bad;
            this.pos++;
          }
        } else throw bad;
      } else if (c < 0x20) throw this.err(E_CONTROL);
      else this.pos++;
    }
  }

  /** At `-` or a digit; returns the number's text range. JSON grammar, strictly. */
  private number(): Num {
    const start = this.pos;
    const b = this.b;
    if (b[this.pos] === MINUS) this.pos++;
    const c = this.peek();
    if (c === 0x30) this.pos++;
    else if (c >= 0x31 && c <= 0x39) this.digits();
    else throw this.err(E_NUMBER);
    if (this.pos < this.end && b[this.pos] === 0x2e) {
      this.pos++;
      if (!isDigit(this.peek())) throw this.err(E_NUMBER);
      this.digits();
    }
    if (this.pos < this.end && (b[this.pos] === 0x65 || b[this.pos] === 0x45)) {
      this.pos++;
      const s = this.peek();
      if (s === 0x2b || s === MINUS) this.pos++;
      if (!isDigit(this.peek())) throw this.err(E_NUMBER);
      this.digits();
    }
    return { kind: 'num', start, end: this.pos };
  }

  private digits(): void {
    while (this.pos < this.end && isDigit(this.b[this.pos]!)) this.pos++;
  }

  private literal(word: string): void {
    for (let i = 0; i < word.length; i++) {
      if (this.peek() !== word.charCodeAt(i)) throw this.err(E_CHAR);
      this.pos++;
    }
  }

  /** Skips any JSON value; `depth` is the depth a container opened here would have. */
  private skipValue(depth: number): void {
    const c = this.peek();
    if (c === QUOTE) this.string();
    else if (c === MINUS || isDigit(c)) this.number();
    else if (c === 0x74) this.literal('true');
    else if (c === 0x66) this.literal('false');
    else if (c === 0x6e) this.literal('null');
    else if (c === LBRACE || c === LBRACKET) {
      if (depth > MAX_DEPTH) throw this.err(E_DEPTH);
      const close = c === LBRACE ? RBRACE : RBRACKET;
      this.pos++;
      this.skipWs();
      if (this.peek() === close) {
        this.pos++;
        return;
      }
      for (;;) {
        this.skipWs();
        if (close === RBRACE) this.key();
        this.skipValue(depth + 1);
        this.skipWs();
        const d = this.peek();
        if (d === COMMA) this.pos++;
        else if (d === close) {
          this.pos++;
          return;
        } else throw this.err(E_CHAR);
      }
    } else throw this.err(E_CHAR);
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
  const p = new Parser(body, opts);
  const sink = new Sink(opts.groupByDevice);
  try {
    if (opts.contentType === 'ndjson') p.ndjson(sink);
    else p.json(sink);
  } catch (err) {
    if (err instanceof JsonSyntaxError) return failed(err.msg, err.at);
    if (err instanceof TooManyEvents) {
      return { ...failed(`more than ${String(opts.maxEvents)} events`, err.at), tooManyEvents: true };
    }
    throw err;
  }
  return sink.finish();
}
