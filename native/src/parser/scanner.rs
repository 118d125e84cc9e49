//! The byte scanner: a cursor over the body that lexes JSON strings, numbers and literals, walks containers
//! and skips values, strictly to the JSON grammar, and reports where it stopped.
//!
//! Separate because it knows nothing about telemetry: the event reader (`events`) decides what a key means and
//! asks the scanner for the next token; everything here is the JSON grammar alone.

/// Deepest nesting accepted (the top-level array counts as 1). Bounded so recursion can never overflow.
pub const MAX_DEPTH: u32 = 32;

use super::simd::{digits_end, string_stop};

/// Byte that no pattern accepts: stands in for any non-ASCII character produced by a `\u` escape, since every
/// decoded string we look at (ids, names, timestamps, keys) must be ASCII to be valid.
const NON_ASCII: u8 = 0xff;

/// A body-level (JSON) or line-level (NDJSON) syntax error: message and absolute byte offset.
/// Kept to 8 bytes so `Result<u8, SyntaxError>` travels in registers on the hot path.
#[derive(Debug, Clone, Copy)]
pub(super) struct SyntaxError {
    pub(super) code: Code,
    pub(super) at: u32,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Code {
    Eof,
    Char,
    Number,
    Control,
    Escape,
    Depth,
    Trailing,
    NotContainer,
}

impl Code {
    pub(super) fn msg(self) -> &'static str {
        match self {
            Code::Eof => "unexpected end of input",
            Code::Char => "unexpected character",
            Code::Number => "invalid number",
            Code::Control => "control character in string",
            Code::Escape => "invalid escape",
            Code::Depth => "nesting deeper than 32 levels",
            Code::Trailing => "unexpected data after the JSON value",
            Code::NotContainer => "expected an object or an array",
        }
    }
}

pub(super) type Res<T> = Result<T, SyntaxError>;

/// A JSON string's contents in the body: `[start, end)` between the quotes.
/// Offsets are u32 (bodies are capped at 4 GiB) so `Result<Str, _>` is returned in registers: with usize
/// fields it went through the stack and stalled on store forwarding in the hottest loop.
#[derive(Clone, Copy, Default)]
pub(super) struct Str {
    pub(super) start: u32,
    pub(super) end: u32,
    pub(super) escaped: bool,
}

impl Str {
    #[inline]
    pub(super) fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A number token: its text and whether that text already is its JavaScript form (then it is copied as is).
#[derive(Clone, Copy)]
pub(super) struct Num {
    pub(super) start: u32,
    pub(super) end: u32,
    pub(super) canonical: bool,
}

impl Num {
    #[inline]
    pub(super) fn text<'b>(&self, b: &'b [u8]) -> &'b [u8] {
        &b[self.start as usize..self.end as usize]
    }
}

/// What an event field held, as far as validation needs to know.
#[derive(Clone, Copy)]
pub(super) enum Val {
    Str(Str),
    Num(Num),
    Other,
}

#[inline]
pub(super) fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// The cursor over the body. It is the one place that moves `pos`.
pub(super) struct Scanner<'a> {
    /// The body up to the end of the current scan window (offsets are the body's): one bounds check on it is
    /// both the window's and the slice's, where a separate `pos < end` made every look at a byte two compares.
    pub(super) b: &'a [u8],
    body: &'a [u8],
    pub(super) pos: usize,
    /// End of the current scan window (`b.len()`): the body for JSON, the line for NDJSON.
    pub(super) end: usize,
}

impl<'a> Scanner<'a> {
    pub(super) fn new(b: &'a [u8]) -> Self {
        Scanner {
            b,
            body: b,
            pos: 0,
            end: b.len(),
        }
    }

    /// Scans `[start, end)` from here on: one NDJSON line.
    pub(super) fn set_window(&mut self, start: usize, end: usize) {
        self.b = &self.body[..end.min(self.body.len())];
        self.pos = start;
        self.end = self.b.len();
    }

    /// The whole body, whatever the window.
    pub(super) fn body(&self) -> &'a [u8] {
        self.body
    }

    #[inline(always)]
    pub(super) fn err(&self, code: Code) -> SyntaxError {
        if self.pos >= self.end {
            SyntaxError {
                code: Code::Eof,
                at: self.end as u32,
            }
        } else {
            SyntaxError {
                code,
                at: self.pos as u32,
            }
        }
    }

    #[inline(always)]
    pub(super) fn peek(&self) -> Res<u8> {
        match self.b.get(self.pos) {
            Some(&c) => Ok(c),
            None => Err(SyntaxError {
                code: Code::Eof,
                at: self.end as u32,
            }),
        }
    }

    /// The byte at the cursor, if the window has one.
    #[inline(always)]
    pub(super) fn at(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline(always)]
    pub(super) fn skip_ws(&mut self) {
        // Compact bodies have no whitespace between tokens: one compare decides, the loop stays out of line.
        if matches!(self.at(), Some(c) if c > b' ') {
            return;
        }
        self.skip_ws_loop();
    }

    #[inline(never)]
    fn skip_ws_loop(&mut self) {
        while matches!(self.at(), Some(c) if is_ws(c)) {
            self.pos += 1;
        }
    }

    /// After the top-level value: only whitespace may follow it in the window.
    pub(super) fn expect_end(&mut self) -> Res<()> {
        self.skip_ws();
        if self.pos < self.end {
            return Err(self.err(Code::Trailing));
        }
        Ok(())
    }

    #[inline(always)]
    /// `"key"` then `:`; leaves `pos` at the value.
    pub(super) fn key(&mut self) -> Res<Str> {
        if self.peek()? != b'"' {
            return Err(self.err(Code::Char));
        }
        let k = self.string()?;
        self.skip_ws();
        if self.peek()? != b':' {
            return Err(self.err(Code::Char));
        }
        self.pos += 1;
        self.skip_ws();
        Ok(k)
    }

    #[inline(always)]
    /// The value of a known scalar field: strings and numbers are kept, anything else skipped.
    pub(super) fn field_value(&mut self, depth: u32) -> Res<Val> {
        match self.peek()? {
            b'"' => Ok(Val::Str(self.string()?)),
            b'-' | b'0'..=b'9' => Ok(Val::Num(self.number()?)),
            _ => {
                self.skip_value(depth + 1)?;
                Ok(Val::Other)
            }
        }
    }

    #[inline(always)]
    /// At an opening quote; returns the contents and leaves `pos` after the closing quote.
    pub(super) fn string(&mut self) -> Res<Str> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            // Plain bytes in bulk: only quote, backslash and control characters need a decision.
            self.pos = string_stop(self.b, self.pos, self.end);
            let c = self.peek()?;
            match c {
                b'"' => {
                    let s = Str {
                        start: start as u32,
                        end: self.pos as u32,
                        escaped,
                    };
                    self.pos += 1;
                    return Ok(s);
                }
                b'\\' => {
                    escaped = true;
                    let at = self.pos;
                    let bad = SyntaxError {
                        code: Code::Escape,
                        at: at as u32,
                    };
                    self.pos += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 1,
                        b'u' => {
                            self.pos += 1;
                            for _ in 0..4 {
                                if !self.peek()?.is_ascii_hexdigit() {
                                    return Err(bad);
                                }
                                self.pos += 1;
                            }
                        }
                        _ => return Err(bad),
                    }
                }
                0..=0x1f => return Err(self.err(Code::Control)),
                _ => self.pos += 1,
            }
        }
    }

    #[inline(always)]
    /// At `-` or a digit; returns the number token. JSON grammar, strictly. On the way it decides whether the
    /// text is already what `Number#toString` prints: plain decimal, no exponent, no trailing fraction zeros,
    /// at most 15 significant digits (every such decimal survives a round trip through a double, so it is its
    /// own shortest form) and no more than 5 zeros after "0." (JavaScript switches to exponents below 1e-6).
    pub(super) fn number(&mut self) -> Res<Num> {
        let start = self.pos;
        let neg = self.b[self.pos] == b'-';
        if neg {
            self.pos += 1;
        }
        let int_start = self.pos;
        let int_zero = match self.peek()? {
            b'0' => {
                self.pos += 1;
                true
            }
            b'1'..=b'9' => {
                self.digits();
                false
            }
            _ => return Err(self.err(Code::Number)),
        };
        let int_len = self.pos - int_start;
        let mut sig = if int_zero { 0 } else { int_len };
        let mut has_frac = false;
        let mut frac_ok = true;
        if self.at() == Some(b'.') {
            self.pos += 1;
            if !self.peek()?.is_ascii_digit() {
                return Err(self.err(Code::Number));
            }
            has_frac = true;
            let frac_start = self.pos;
            self.digits();
            let frac = &self.b[frac_start..self.pos];
            if int_zero {
                let zeros = frac.iter().take_while(|&&c| c == b'0').count();
                frac_ok = zeros <= 5 && zeros < frac.len();
                sig += frac.len() - zeros;
            } else {
                sig += frac.len();
            }
            frac_ok &= frac[frac.len() - 1] != b'0';
        }
        // "-0" prints as "0".
        let mut canonical =
            int_len <= 15 && sig <= 15 && frac_ok && !(neg && int_zero && !has_frac);
        if matches!(self.at(), Some(b'e' | b'E')) {
            canonical = false;
            self.pos += 1;
            if matches!(self.peek()?, b'+' | b'-') {
                self.pos += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return Err(self.err(Code::Number));
            }
            self.digits();
        }
        Ok(Num {
            start: start as u32,
            end: self.pos as u32,
            canonical,
        })
    }

    #[inline(always)]
    fn digits(&mut self) {
        self.pos = digits_end(self.b, self.pos, self.end);
    }

    fn literal(&mut self, word: &[u8]) -> Res<()> {
        for &w in word {
            if self.peek()? != w {
                return Err(self.err(Code::Char));
            }
            self.pos += 1;
        }
        Ok(())
    }

    /// Skips any JSON value; `depth` is the depth a container opened here would have.
    pub(super) fn skip_value(&mut self, depth: u32) -> Res<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'-' | b'0'..=b'9' => self.number().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'{' => members(self, depth, b'}', |sc| {
                sc.key()?;
                sc.skip_value(depth + 1)
            }),
            b'[' => members(self, depth, b']', |sc| sc.skip_value(depth + 1)),
            _ => Err(self.err(Code::Char)),
        }
    }
}

/// What carries the cursor: the scanner itself, or the event reader that owns it. The reader keeps the scanner
/// inside itself rather than beside it so the hot loops address everything from one pointer: passed as a
/// second `&mut`, the scanner's pointer was spilled in the digit loop and bodies parsed about 3% slower.
pub(super) trait Cursor<'a> {
    fn scanner(&mut self) -> &mut Scanner<'a>;
}

impl<'a> Cursor<'a> for Scanner<'a> {
    #[inline(always)]
    fn scanner(&mut self) -> &mut Scanner<'a> {
        self
    }
}

/// At a `{` or `[` that opens a container at `depth`: steps in, calls `member` at each member (whitespace
/// skipped before it), takes the commas and leaves the cursor after `close`. The one container loop of the
/// parser, so objects, arrays, events, metrics and the top-level array all agree on separators and errors.
#[inline(always)]
pub(super) fn members<'a, C: Cursor<'a>, E: From<SyntaxError>>(
    c: &mut C,
    depth: u32,
    close: u8,
    mut member: impl FnMut(&mut C) -> Result<(), E>,
) -> Result<(), E> {
    let sc = c.scanner();
    if depth > MAX_DEPTH {
        return Err(sc.err(Code::Depth).into());
    }
    sc.pos += 1;
    sc.skip_ws();
    if sc.peek()? == close {
        sc.pos += 1;
        return Ok(());
    }
    loop {
        c.scanner().skip_ws();
        member(c)?;
        let sc = c.scanner();
        sc.skip_ws();
        match sc.peek()? {
            b',' => sc.pos += 1,
            b if b == close => {
                sc.pos += 1;
                return Ok(());
            }
            _ => return Err(sc.err(Code::Char).into()),
        }
    }
}

/// Decodes a string already checked by the lexer into `out` (cleared first).
pub(super) fn decode_string(b: &[u8], s: Str, out: &mut Vec<u8>) {
    out.clear();
    decode_append(b, s, out);
}

/// Appends the decoded string. Raw non-ASCII bytes are copied as they are (they never match a pattern
/// either).
pub(super) fn decode_append(b: &[u8], s: Str, out: &mut Vec<u8>) {
    let mut i = s.start as usize;
    while i < s.end as usize {
        let c = b[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = b[i + 1];
        i += 2;
        let d = match e {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut v: u32 = 0;
                for k in 0..4 {
                    v = v * 16 + (b[i + k] as char).to_digit(16).unwrap_or(0);
                }
                i += 4;
                if v < 0x80 {
                    v as u8
                } else {
                    NON_ASCII
                }
            }
            other => other,
        };
        out.push(d);
    }
}

/// Decodes a short string (timestamps) into `buf`; `None` if longer than the buffer, which no valid one is.
pub(super) fn small_decoded<'b>(b: &'b [u8], s: Str, buf: &'b mut [u8; 64]) -> Option<&'b [u8]> {
    if !s.escaped {
        return Some(&b[s.range()]);
    }
    let mut v = Vec::new();
    decode_string(b, s, &mut v);
    if v.len() > buf.len() {
        return None;
    }
    buf[..v.len()].copy_from_slice(&v);
    Some(&buf[..v.len()])
}
