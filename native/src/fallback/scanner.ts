/**
 * The byte scanner (twin of `src/parser/scanner.rs`): a cursor over the body that lexes JSON strings, numbers and
 * literals, walks containers and skips values, strictly to the JSON grammar, and reports where it stopped.
 *
 * Separate because it knows nothing about telemetry: the event reader (`events.ts`) decides what a key means and
 * asks the scanner for the next token; everything here is the JSON grammar alone.
 */

/** Deepest nesting accepted (the top-level array counts as 1). */
export const MAX_DEPTH = 32;

const E_EOF = 'unexpected end of input';
export const E_CHAR = 'unexpected character';
const E_NUMBER = 'invalid number';
const E_CONTROL = 'control character in string';
const E_ESCAPE = 'invalid escape';
const E_DEPTH = 'nesting deeper than 32 levels';
const E_TRAILING = 'unexpected data after the JSON value';

/** Stands in for a non-ASCII character from a `\u` escape: no pattern accepts it (same as the Rust 0xff). */
const NON_ASCII = '\u00ff';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
export const MINUS = 0x2d;
const COMMA = 0x2c;
const COLON = 0x3a;
export const LBRACE = 0x7b;
export const RBRACE = 0x7d;
export const LBRACKET = 0x5b;
export const RBRACKET = 0x5d;

/** A syntax error: message and absolute byte offset. Thrown inside the scanner, caught per body or line. */
export class JsonSyntaxError extends Error {
  constructor(
    readonly msg: string,
    readonly at: number,
  ) {
    super(`${msg} at ${at}`);
    this.name = 'JsonSyntaxError';
  }
}

export interface Str {
  kind: 'str';
  start: number;
  end: number;
  escaped: boolean;
}
export interface Num {
  kind: 'num';
  start: number;
  end: number;
}
/** What an event field held, as far as validation needs to know. */
export type Val = Str | Num | { kind: 'other' };
const OTHER: Val = { kind: 'other' };

export function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}
export function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}
export function isAlnum(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}
export function allChars(s: string, pred: (c: number) => boolean): boolean {
  for (let i = 0; i < s.length; i++) if (!pred(s.charCodeAt(i))) return false;
  return true;
}

/** The cursor over the body. It is the one place that moves `pos`. */
export class Scanner {
  pos = 0;
  /** End of the current scan window: the body for JSON, the line for NDJSON. */
  end: number;

  constructor(readonly b: Buffer) {
    this.end = b.length;
  }

  /** Scans `[start, end)` from here on: one NDJSON line. */
  setWindow(start: number, end: number): void {
    this.pos = start;
    this.end = end;
  }

  err(msg: string): JsonSyntaxError {
    return this.pos >= this.end ? new JsonSyntaxError(E_EOF, this.end) : new JsonSyntaxError(msg, this.pos);
  }

  peek(): number {
    if (this.pos < this.end) return this.b[this.pos]!;
    throw new JsonSyntaxError(E_EOF, this.end);
  }

  skipWs(): void {
    while (this.pos < this.end && isWs(this.b[this.pos]!)) this.pos++;
  }

  /** After the top-level value: only whitespace may follow it in the window. */
  expectEnd(): void {
    this.skipWs();
    if (this.pos < this.end) throw this.err(E_TRAILING);
  }

  /**
   * At a `{` or `[` that opens a container at `depth`: steps in, calls `member` at each member (whitespace skipped
   * before it), takes the commas and leaves `pos` after `close`. The one container loop of the parser, so objects,
   * arrays, events, metrics and the top-level array all agree on separators and errors.
   */
  members(depth: number, close: number, member: () => void): void {
    if (depth > MAX_DEPTH) throw this.err(E_DEPTH);
    this.pos++;
    this.skipWs();
    if (this.peek() === close) {
      this.pos++;
      return;
    }
    for (;;) {
      this.skipWs();
      member();
      this.skipWs();
      const c = this.peek();
      if (c === COMMA) this.pos++;
      else if (c === close) {
        this.pos++;
        return;
      } else throw this.err(E_CHAR);
    }
  }

  /** `"key"` then `:`; leaves `pos` at the value. */
  key(): Str {
    if (this.peek() !== QUOTE) throw this.err(E_CHAR);
    const k = this.string();
    this.skipWs();
    if (this.peek() !== COLON) throw this.err(E_CHAR);
    this.pos++;
    this.skipWs();
    return k;
  }

  /** The value of a known scalar field: strings and numbers are kept, anything else skipped. */
  fieldValue(depth: number): Val {
    const c = this.peek();
    if (c === QUOTE) return this.string();
    if (c === MINUS || isDigit(c)) return this.number();
    this.skipValue(depth + 1);
    return OTHER;
  }

  /** At an opening quote; returns the contents and leaves `pos` after the closing quote. */
  string(): Str {
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
  number(): Num {
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
  skipValue(depth: number): void {
    const c = this.peek();
    if (c === QUOTE) this.string();
    else if (c === MINUS || isDigit(c)) this.number();
    else if (c === 0x74) this.literal('true');
    else if (c === 0x66) this.literal('false');
    else if (c === 0x6e) this.literal('null');
    else if (c === LBRACE) {
      this.members(depth, RBRACE, () => {
        this.key();
        this.skipValue(depth + 1);
      });
    } else if (c === LBRACKET) this.members(depth, RBRACKET, () => this.skipValue(depth + 1));
    else throw this.err(E_CHAR);
  }

  /** JSON number grammar is a subset of what Number() accepts, and both round to the nearest double. */
  numberValue(n: Num): number {
    return Number(this.b.toString('latin1', n.start, n.end));
  }

  /**
   * A string's value as far as validation cares: each raw byte becomes one char (non-ASCII ones never match a
   * pattern), escapes are decoded, and a `\u` escape above ASCII becomes NON_ASCII, exactly like the Rust side.
   */
  text(s: Str): string {
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
}
