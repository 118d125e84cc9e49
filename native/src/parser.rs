//! Telemetry body parser: one pass over the bytes, no DOM. It validates every event against the contract
//! (shared/design.md, "Telemetry in") and writes the canonical Kafka values straight into one buffer.
//!
//! The semantics are pinned by `contracts/vectors/` and mirrored line for line by `src/fallback.ts`; any change
//! here must change both and the vectors.

use std::collections::HashMap;

/// Deepest nesting accepted (the top-level array counts as 1). Bounded so recursion can never overflow.
pub const MAX_DEPTH: u32 = 32;
/// Most metrics one event may carry.
pub const MAX_METRICS: usize = 64;
const MAX_DEVICE_ID: usize = 128;
const MAX_METRIC_NAME: usize = 64;
/// Below this a numeric `ts` is epoch seconds (contract: flat form).
const SECONDS_LIMIT: f64 = 1e11;
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

pub struct Options<'a> {
    pub ndjson: bool,
    pub received_at: f64,
    pub now_ms: f64,
    pub max_future_ms: f64,
    pub max_past_ms: f64,
    pub max_events: u32,
    pub group_by_device: bool,
    /// Glob with `*` and `?`; `None` allows every device.
    pub allowed_devices: Option<&'a [u8]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub index: u32,
    pub error: String,
    pub start: u32,
    pub end: u32,
}

#[derive(Debug, Default)]
pub struct Output {
    pub ok: bool,
    pub error: Option<String>,
    pub offset: Option<u32>,
    pub too_many_events: bool,
    pub accepted: u32,
    /// Distinct device ids in order of first appearance; record i's key is `unique_keys[key_ids[i]]`.
    /// Interned so the binding creates one JS string per device, not one per record.
    pub unique_keys: Vec<String>,
    pub key_ids: Vec<u32>,
    pub values: Vec<u8>,
    pub value_ends: Vec<u32>,
    pub event_counts: Vec<u32>,
    pub rejected: Vec<Rejected>,
}

impl Output {
    /// Kafka key of record `i`.
    pub fn key(&self, i: usize) -> &str {
        &self.unique_keys[self.key_ids[i] as usize]
    }

    fn failed(error: String, offset: usize) -> Self {
        Output {
            ok: false,
            error: Some(error),
            offset: Some(offset as u32),
            ..Default::default()
        }
    }
}

/// A body-level (JSON) or line-level (NDJSON) syntax error: message and absolute byte offset.
/// Kept to 8 bytes so `Result<u8, SyntaxError>` travels in registers on the hot path.
#[derive(Debug, Clone, Copy)]
struct SyntaxError {
    code: Code,
    at: u32,
}

#[derive(Debug, Clone, Copy)]
enum Code {
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
    fn msg(self) -> &'static str {
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

const E_EOF: Code = Code::Eof;
const E_CHAR: Code = Code::Char;
const E_NUMBER: Code = Code::Number;
const E_CONTROL: Code = Code::Control;
const E_ESCAPE: Code = Code::Escape;
const E_DEPTH: Code = Code::Depth;
const E_TRAILING: Code = Code::Trailing;

const DEVICE_ID_PATTERN: &str = "deviceId: expected 1-128 characters of [A-Za-z0-9._:-]";
const TS_FORMAT: &str = "ts: expected epoch milliseconds or an RFC 3339 string";
const SEQ_FORMAT: &str = "seq: expected a non-negative integer";
const METRICS_COUNT: &str = "metrics: expected 1 to 64 entries";
const METRICS_NAME: &str = "metrics: invalid name (expected 1-64 characters of [A-Za-z0-9._-])";

type Res<T> = Result<T, SyntaxError>;

/// A JSON string's contents in the body: `[start, end)` between the quotes.
/// Offsets are u32 (bodies are capped at 4 GiB) so `Result<Str, _>` is returned in registers: with usize
/// fields it went through the stack and stalled on store forwarding in the hottest loop.
#[derive(Clone, Copy, Default)]
struct Str {
    start: u32,
    end: u32,
    escaped: bool,
}

impl Str {
    #[inline]
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A number token: its text and whether that text already is its JavaScript form (then it is copied as is).
#[derive(Clone, Copy)]
struct Num {
    start: u32,
    end: u32,
    canonical: bool,
}

impl Num {
    #[inline]
    fn text<'b>(&self, b: &'b [u8]) -> &'b [u8] {
        &b[self.start as usize..self.end as usize]
    }
}

/// What an event field held, as far as validation needs to know.
#[derive(Clone, Copy)]
enum Val {
    Str(Str),
    Num(Num),
    Other,
}

struct Entry {
    name: Str,
    value: Val,
}

/// Per-event scratch, reused across events so the hot path does not allocate.
#[derive(Default)]
struct Scratch {
    entries: Vec<Entry>,
    candidates: Vec<Entry>,
    names: Vec<u8>,
    /// Validated metric names: range in `names` (decoded) or in the body.
    name_ranges: Vec<(usize, usize, bool)>,
    decoded: Vec<u8>,
    event: Vec<u8>,
}

/// Fields of one event object found by the scan.
#[derive(Default)]
struct Fields {
    device: Option<Val>,
    ts: Option<Val>,
    seq: Option<Val>,
    has_metrics: bool,
    metrics_is_object: bool,
    /// More than MAX_METRICS entries seen (in `metrics`, or flat candidates).
    entries_overflow: bool,
    candidates_overflow: bool,
    duplicate: Option<&'static str>,
}

enum Event {
    /// The event's canonical JSON is in `Scratch::event`; the device id is `[start, end)` of `Scratch::decoded`
    /// or of the body.
    Valid {
        device: DeviceRef,
    },
    Invalid(String),
}

#[derive(Clone, Copy)]
enum DeviceRef {
    Body(usize, usize),
    Decoded,
}

struct Parser<'a, 'o> {
    b: &'a [u8],
    pos: usize,
    /// End of the current scan window: the body for JSON, the line for NDJSON.
    end: usize,
    opts: &'o Options<'o>,
    received_at: Vec<u8>,
    s: Scratch,
}

#[inline]
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// Parses a body. Never panics on any input (the binding still guards with catch_unwind).
pub fn parse(body: &[u8], opts: &Options) -> Output {
    if body.len() > u32::MAX as usize {
        return Output::failed("body too large".into(), 0);
    }
    if let Err(e) = std::str::from_utf8(body) {
        return Output::failed("invalid UTF-8".into(), e.valid_up_to());
    }
    if body.iter().all(|&c| is_ws(c)) {
        return Output::failed("empty body".into(), 0);
    }
    let mut received_at = Vec::new();
    write_js_number(&mut received_at, opts.received_at);
    let mut p = Parser {
        b: body,
        pos: 0,
        end: body.len(),
        opts,
        received_at,
        s: Scratch::default(),
    };
    let mut sink = Sink::new(opts.group_by_device);
    if !opts.group_by_device {
        // Canonical output is about the input's size (receivedAt added, whitespace dropped): one allocation
        // instead of a chain of reallocations, each copying what was written so far.
        let events = body.len() / 64 + 1;
        sink.out.values.reserve(body.len() + body.len() / 4 + 64);
        sink.out.value_ends.reserve(events);
        sink.out.event_counts.reserve(events);
        sink.out.key_ids.reserve(events);
        // Events are encoded straight into the output buffer (see `emit`).
        std::mem::swap(&mut p.s.event, &mut sink.out.values);
    }
    let res = if opts.ndjson {
        p.ndjson(&mut sink)
    } else {
        p.json(&mut sink)
    };
    if !opts.group_by_device {
        std::mem::swap(&mut p.s.event, &mut sink.out.values);
    }
    match res {
        Ok(()) => sink.finish(),
        Err(Stop::Syntax(e)) => Output::failed(e.code.msg().into(), e.at as usize),
        Err(Stop::TooMany(at)) => {
            let mut o = Output::failed(format!("more than {} events", opts.max_events), at);
            o.too_many_events = true;
            o
        }
    }
}

enum Stop {
    Syntax(SyntaxError),
    TooMany(usize),
}

impl From<SyntaxError> for Stop {
    fn from(e: SyntaxError) -> Self {
        Stop::Syntax(e)
    }
}

/// Collects accepted events into Kafka records, grouped per device or one per event.
struct Sink {
    group: bool,
    out: Output,
    /// Device id -> index in `out.unique_keys` (and, grouped, the record index). SipHash: ids come from
    /// clients, so a fixed fast hash would invite collisions.
    devices: HashMap<Vec<u8>, u32>,
    /// Grouped mode: each record's events so far.
    group_values: Vec<Vec<u8>>,
}

impl Sink {
    fn new(group: bool) -> Self {
        Sink {
            group,
            out: Output {
                ok: true,
                ..Default::default()
            },
            devices: HashMap::new(),
            group_values: Vec::new(),
        }
    }

    fn intern(&mut self, device: &[u8]) -> u32 {
        if let Some(&i) = self.devices.get(device) {
            return i;
        }
        let i = self.out.unique_keys.len() as u32;
        self.devices.insert(device.to_vec(), i);
        self.out.unique_keys.push(ascii_string(device));
        i
    }

    /// Ungrouped: the event is already in the output buffer, ending at `end`.
    fn accept_in_place(&mut self, device: &[u8], end: usize) {
        self.out.accepted += 1;
        let id = self.intern(device);
        self.out.value_ends.push(end as u32);
        self.out.event_counts.push(1);
        self.out.key_ids.push(id);
    }

    /// Grouped: appends the event to its device's record.
    fn accept(&mut self, device: &[u8], event: &[u8]) {
        self.out.accepted += 1;
        let id = self.intern(device);
        let idx = id as usize;
        if idx == self.group_values.len() {
            self.group_values
                .push(Vec::with_capacity(event.len() * 8 + 2));
            self.out.key_ids.push(id);
            self.out.event_counts.push(0);
        }
        let v = &mut self.group_values[idx];
        v.push(if v.is_empty() { b'[' } else { b',' });
        v.extend_from_slice(event);
        self.out.event_counts[idx] += 1;
    }

    fn reject(&mut self, index: u32, error: String, start: usize, end: usize) {
        self.out.rejected.push(Rejected {
            index,
            error,
            start: start as u32,
            end: end as u32,
        });
    }

    fn finish(mut self) -> Output {
        if self.group {
            let total: usize = self.group_values.iter().map(|v| v.len() + 1).sum();
            self.out.values.reserve(total);
            for v in &self.group_values {
                self.out.values.extend_from_slice(v);
                self.out.values.push(b']');
                self.out.value_ends.push(self.out.values.len() as u32);
            }
        }
        self.out
    }
}

/// Device ids are validated ASCII before they get here.
fn ascii_string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl<'a, 'o> Parser<'a, 'o> {
    // ---------------------------------------------------------------- body forms

    fn json(&mut self, sink: &mut Sink) -> Result<(), Stop> {
        self.skip_ws();
        let first = self.b[self.pos];
        match first {
            b'{' => {
                if self.opts.max_events == 0 {
                    return Err(Stop::TooMany(self.pos));
                }
                self.event_into(sink, 0, 1)?;
            }
            b'[' => {
                self.pos += 1;
                self.skip_ws();
                let mut index: u32 = 0;
                if self.peek()? == b']' {
                    self.pos += 1;
                } else {
                    loop {
                        self.skip_ws();
                        if self.pos < self.end && index >= self.opts.max_events {
                            return Err(Stop::TooMany(self.pos));
                        }
                        self.event_into(sink, index, 2)?;
                        index += 1;
                        self.skip_ws();
                        match self.peek()? {
                            b',' => self.pos += 1,
                            b']' => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(self.err(E_CHAR).into()),
                        }
                    }
                }
            }
            _ => {
                return Err(Stop::Syntax(SyntaxError {
                    code: Code::NotContainer,
                    at: self.pos as u32,
                }))
            }
        }
        self.skip_ws();
        if self.pos < self.end {
            return Err(self.err(E_TRAILING).into());
        }
        Ok(())
    }

    fn ndjson(&mut self, sink: &mut Sink) -> Result<(), Stop> {
        let len = self.b.len();
        let mut line_start = 0;
        let mut line: u32 = 0;
        let mut events: u32 = 0;
        while line_start < len {
            let nl = self.b[line_start..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(len, |i| line_start + i);
            // The event's bytes are the line without surrounding whitespace (and without its `\r\n`).
            let mut s = line_start;
            let mut e = nl;
            while s < e && is_ws(self.b[s]) {
                s += 1;
            }
            while e > s && is_ws(self.b[e - 1]) {
                e -= 1;
            }
            if s < e {
                if events >= self.opts.max_events {
                    return Err(Stop::TooMany(s));
                }
                events += 1;
                self.pos = s;
                self.end = e;
                let base = self.s.event.len();
                let r = self.event(1).and_then(|ev| {
                    self.skip_ws();
                    if self.pos < self.end {
                        Err(self.err(E_TRAILING))
                    } else {
                        Ok(ev)
                    }
                });
                match r {
                    Ok(ev) => self.emit(sink, ev, line, s, e),
                    Err(err) => {
                        // The event may have been encoded before junk after it was found.
                        self.s.event.truncate(base);
                        sink.reject(
                            line,
                            format!("invalid JSON at offset {}: {}", err.at, err.code.msg()),
                            s,
                            e,
                        )
                    }
                }
            }
            line += 1;
            line_start = nl + 1;
        }
        Ok(())
    }

    fn event_into(&mut self, sink: &mut Sink, index: u32, depth: u32) -> Res<()> {
        let start = self.pos;
        let ev = self.event(depth)?;
        let end = self.pos;
        self.emit(sink, ev, index, start, end);
        Ok(())
    }

    fn emit(&mut self, sink: &mut Sink, ev: Event, index: u32, start: usize, end: usize) {
        match ev {
            Event::Valid { device } => {
                let dev = match device {
                    DeviceRef::Body(s, e) => &self.b[s..e],
                    DeviceRef::Decoded => &self.s.decoded[..],
                };
                if sink.group {
                    sink.accept(dev, &self.s.event);
                    self.s.event.clear();
                } else {
                    // Ungrouped, `event` is the output buffer itself (swapped in by `parse`): nothing to copy.
                    sink.accept_in_place(dev, self.s.event.len());
                }
            }
            Event::Invalid(msg) => sink.reject(index, msg, start, end),
        }
    }

    // ---------------------------------------------------------------- one event

    /// Scans one event value at `pos` (any JSON value), then validates and encodes it.
    fn event(&mut self, depth: u32) -> Res<Event> {
        if self.peek()? != b'{' {
            self.skip_value(depth)?;
            return Ok(Event::Invalid("expected an object".into()));
        }
        if depth > MAX_DEPTH {
            return Err(self.err(E_DEPTH));
        }
        self.pos += 1;
        self.s.entries.clear();
        self.s.candidates.clear();
        let mut f = Fields::default();
        self.skip_ws();
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                let key = self.key()?;
                match key_kind(self.b, key) {
                    Key::Device => {
                        let v = self.field_value(depth)?;
                        set_once(
                            &mut f.device,
                            v,
                            &mut f.duplicate,
                            "deviceId: duplicate key",
                        );
                    }
                    Key::Ts => {
                        let v = self.field_value(depth)?;
                        set_once(&mut f.ts, v, &mut f.duplicate, "ts: duplicate key");
                    }
                    Key::Seq => {
                        let v = self.field_value(depth)?;
                        set_once(&mut f.seq, v, &mut f.duplicate, "seq: duplicate key");
                    }
                    Key::Metrics => {
                        if f.has_metrics {
                            if f.duplicate.is_none() {
                                f.duplicate = Some("metrics: duplicate key");
                            }
                            self.skip_value(depth + 1)?;
                        } else {
                            f.has_metrics = true;
                            if self.peek()? == b'{' {
                                f.metrics_is_object = true;
                                self.metrics_object(depth + 1, &mut f)?;
                            } else {
                                self.skip_value(depth + 1)?;
                            }
                        }
                    }
                    Key::Other => {
                        // Flat form: every numeric top-level field is a metric candidate.
                        let c = self.peek()?;
                        if c == b'-' || c.is_ascii_digit() {
                            let n = self.number()?;
                            if self.s.candidates.len() < MAX_METRICS {
                                self.s.candidates.push(Entry {
                                    name: key,
                                    value: Val::Num(n),
                                });
                            } else {
                                f.candidates_overflow = true;
                            }
                        } else {
                            self.skip_value(depth + 1)?;
                        }
                    }
                }
                self.skip_ws();
                match self.peek()? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.err(E_CHAR)),
                }
            }
        }
        Ok(match self.validate(&f) {
            Ok(device) => Event::Valid { device },
            Err(msg) => Event::Invalid(msg),
        })
    }

    #[inline(always)]
    /// `"key"` then `:`; leaves `pos` at the value.
    fn key(&mut self) -> Res<Str> {
        if self.peek()? != b'"' {
            return Err(self.err(E_CHAR));
        }
        let k = self.string()?;
        self.skip_ws();
        if self.peek()? != b':' {
            return Err(self.err(E_CHAR));
        }
        self.pos += 1;
        self.skip_ws();
        Ok(k)
    }

    #[inline(always)]
    /// The value of a known scalar field: strings and numbers are kept, anything else skipped.
    fn field_value(&mut self, depth: u32) -> Res<Val> {
        match self.peek()? {
            b'"' => Ok(Val::Str(self.string()?)),
            b'-' | b'0'..=b'9' => Ok(Val::Num(self.number()?)),
            _ => {
                self.skip_value(depth + 1)?;
                Ok(Val::Other)
            }
        }
    }

    fn metrics_object(&mut self, depth: u32, f: &mut Fields) -> Res<()> {
        if depth > MAX_DEPTH {
            return Err(self.err(E_DEPTH));
        }
        self.pos += 1;
        self.skip_ws();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            let name = self.key()?;
            let value = self.field_value(depth)?;
            if self.s.entries.len() < MAX_METRICS {
                self.s.entries.push(Entry { name, value });
            } else {
                f.entries_overflow = true;
            }
            self.skip_ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.err(E_CHAR)),
            }
        }
    }

    // ---------------------------------------------------------------- validation + encoding

    /// Checks the fields in a fixed order (duplicates, deviceId, ts, seq, metrics) and writes the canonical
    /// event into `Scratch::event`. The order is part of the contract: the vectors pin which error wins.
    fn validate(&mut self, f: &Fields) -> Result<DeviceRef, String> {
        if let Some(d) = f.duplicate {
            return Err(d.into());
        }
        // deviceId
        let device = match f.device {
            None => return Err("deviceId: required".into()),
            Some(Val::Str(s)) => s,
            Some(_) => return Err("deviceId: expected a string".into()),
        };
        let dev_ref = if device.escaped {
            let mut d = std::mem::take(&mut self.s.decoded);
            decode_string(self.b, device, &mut d);
            self.s.decoded = d;
            DeviceRef::Decoded
        } else {
            DeviceRef::Body(device.start as usize, device.end as usize)
        };
        let dev: &[u8] = match dev_ref {
            DeviceRef::Body(s, e) => &self.b[s..e],
            DeviceRef::Decoded => &self.s.decoded,
        };
        if dev.is_empty() || dev.len() > MAX_DEVICE_ID || !dev.iter().all(|&c| is_device_char(c)) {
            return Err(DEVICE_ID_PATTERN.into());
        }
        if let Some(glob) = self.opts.allowed_devices {
            if !glob_match(glob, dev) {
                return Err("deviceId: not allowed for this token".into());
            }
        }
        // ts
        let ts = match f.ts {
            None => return Err("ts: required".into()),
            Some(Val::Num(n)) => {
                let v = parse_f64(n.text(self.b));
                if !v.is_finite() {
                    return Err(TS_FORMAT.into());
                }
                if v < SECONDS_LIMIT {
                    (v * 1000.0 + 0.5).floor()
                } else if !is_integer(v) {
                    return Err("ts: expected an integer number of milliseconds".into());
                } else {
                    v
                }
            }
            Some(Val::Str(s)) => {
                let mut buf = [0u8; 64];
                let text = small_decoded(self.b, s, &mut buf);
                match text.and_then(rfc3339_ms) {
                    Some(ms) => ms as f64,
                    None => return Err(TS_FORMAT.into()),
                }
            }
            Some(Val::Other) => return Err(TS_FORMAT.into()),
        };
        if ts > self.opts.now_ms + self.opts.max_future_ms {
            return Err(format!(
                "ts: more than {} ms in the future",
                JsNum(self.opts.max_future_ms)
            ));
        }
        if ts < self.opts.now_ms - self.opts.max_past_ms {
            return Err(format!(
                "ts: more than {} ms in the past",
                JsNum(self.opts.max_past_ms)
            ));
        }
        // seq
        let seq = match f.seq {
            None => None,
            Some(Val::Num(n)) => {
                let v = parse_f64(n.text(self.b));
                if !((0.0..=MAX_SAFE_INTEGER).contains(&v) && is_integer(v)) {
                    return Err(SEQ_FORMAT.into());
                }
                Some(n)
            }
            Some(_) => return Err(SEQ_FORMAT.into()),
        };
        // metrics
        let entries = if f.has_metrics {
            if !f.metrics_is_object {
                return Err("metrics: expected an object".into());
            }
            std::mem::take(&mut self.s.entries)
        } else {
            std::mem::take(&mut self.s.candidates)
        };
        let overflow = if f.has_metrics {
            f.entries_overflow
        } else {
            f.candidates_overflow
        };
        let base = self.s.event.len();
        let r = self.encode(dev_ref, ts, seq, &entries, overflow);
        if r.is_err() {
            self.s.event.truncate(base);
        }
        if f.has_metrics {
            self.s.entries = entries;
        } else {
            self.s.candidates = entries;
        }
        r.map(|()| dev_ref)
    }

    /// Validates the metrics and writes the canonical event into `Scratch::event` in the same pass (on an
    /// error the half-written scratch is simply dropped).
    fn encode(
        &mut self,
        dev_ref: DeviceRef,
        ts: f64,
        seq: Option<Num>,
        entries: &[Entry],
        overflow: bool,
    ) -> Result<(), String> {
        let b = self.b;
        let s = &mut self.s;
        s.names.clear();
        s.name_ranges.clear();
        // Appends: ungrouped, `event` is the output buffer; the caller truncates on an error.
        let out = &mut s.event;
        out.extend_from_slice(b"{\"deviceId\":\"");
        out.extend_from_slice(match dev_ref {
            DeviceRef::Body(x, y) => &b[x..y],
            DeviceRef::Decoded => &s.decoded,
        });
        out.extend_from_slice(b"\",\"ts\":");
        write_js_number(out, ts);
        out.extend_from_slice(b",\"metrics\":{");
        for en in entries {
            // Escaped names are decoded onto the end of `names`; plain ones are used in place.
            let (a, z, esc) = if en.name.escaped {
                let a = s.names.len();
                decode_append(b, en.name, &mut s.names);
                (a, s.names.len(), true)
            } else {
                (en.name.start as usize, en.name.end as usize, false)
            };
            let name: &[u8] = if esc { &s.names[a..z] } else { &b[a..z] };
            if name.is_empty()
                || name.len() > MAX_METRIC_NAME
                || !name.iter().all(|&c| is_name_char(c))
            {
                return Err(METRICS_NAME.into());
            }
            // At most 64 names, so a linear duplicate scan is bounded and cheap.
            let dup = s.name_ranges.iter().any(|&(x, y, e)| {
                let other: &[u8] = if e { &s.names[x..y] } else { &b[x..y] };
                other == name
            });
            if dup {
                return Err(format!("metrics.{}: duplicate key", ascii(name)));
            }
            let n = match en.value {
                Val::Num(n) => n,
                _ => return Err(format!("metrics.{}: expected a number", ascii(name))),
            };
            if !s.name_ranges.is_empty() {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(name);
            out.extend_from_slice(b"\":");
            if n.canonical {
                out.extend_from_slice(n.text(b));
            } else {
                let v = parse_f64(n.text(b));
                if !v.is_finite() {
                    return Err(format!("metrics.{}: expected a finite number", ascii(name)));
                }
                write_js_number(out, v);
            }
            s.name_ranges.push((a, z, esc));
        }
        if overflow || entries.is_empty() {
            return Err(METRICS_COUNT.into());
        }
        out.push(b'}');
        if let Some(n) = seq {
            out.extend_from_slice(b",\"seq\":");
            write_number_text(out, n, b);
        }
        out.extend_from_slice(b",\"receivedAt\":");
        out.extend_from_slice(&self.received_at);
        out.push(b'}');
        Ok(())
    }

    // ---------------------------------------------------------------- lexer

    #[inline(always)]
    fn err(&self, code: Code) -> SyntaxError {
        if self.pos >= self.end {
            SyntaxError {
                code: E_EOF,
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
    fn peek(&self) -> Res<u8> {
        if self.pos < self.end {
            Ok(self.b[self.pos])
        } else {
            Err(SyntaxError {
                code: E_EOF,
                at: self.end as u32,
            })
        }
    }

    #[inline(always)]
    fn skip_ws(&mut self) {
        while self.pos < self.end && is_ws(self.b[self.pos]) {
            self.pos += 1;
        }
    }

    #[inline(always)]
    /// At an opening quote; returns the contents and leaves `pos` after the closing quote.
    fn string(&mut self) -> Res<Str> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            // Plain bytes in bulk: only quote, backslash and control characters need a decision.
            let rest = &self.b[self.pos..self.end];
            self.pos += rest
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .unwrap_or(rest.len());
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
                        code: E_ESCAPE,
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
                0..=0x1f => return Err(self.err(E_CONTROL)),
                _ => self.pos += 1,
            }
        }
    }

    #[inline(always)]
    /// At `-` or a digit; returns the number token. JSON grammar, strictly. On the way it decides whether the
    /// text is already what `Number#toString` prints: plain decimal, no exponent, no trailing fraction zeros,
    /// at most 15 significant digits (every such decimal survives a round trip through a double, so it is its
    /// own shortest form) and no more than 5 zeros after "0." (JavaScript switches to exponents below 1e-6).
    fn number(&mut self) -> Res<Num> {
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
            _ => return Err(self.err(E_NUMBER)),
        };
        let int_len = self.pos - int_start;
        let mut sig = if int_zero { 0 } else { int_len };
        let mut has_frac = false;
        let mut frac_ok = true;
        if self.pos < self.end && self.b[self.pos] == b'.' {
            self.pos += 1;
            if !self.peek()?.is_ascii_digit() {
                return Err(self.err(E_NUMBER));
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
        if self.pos < self.end && matches!(self.b[self.pos], b'e' | b'E') {
            canonical = false;
            self.pos += 1;
            if matches!(self.peek()?, b'+' | b'-') {
                self.pos += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return Err(self.err(E_NUMBER));
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
        while self.pos < self.end && self.b[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Res<()> {
        for &w in word {
            if self.peek()? != w {
                return Err(self.err(E_CHAR));
            }
            self.pos += 1;
        }
        Ok(())
    }

    /// Skips any JSON value; `depth` is the depth a container opened here would have.
    fn skip_value(&mut self, depth: u32) -> Res<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'-' | b'0'..=b'9' => self.number().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'{' => {
                if depth > MAX_DEPTH {
                    return Err(self.err(E_DEPTH));
                }
                self.pos += 1;
                self.skip_ws();
                if self.peek()? == b'}' {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.skip_ws();
                    self.key()?;
                    self.skip_value(depth + 1)?;
                    self.skip_ws();
                    match self.peek()? {
                        b',' => self.pos += 1,
                        b'}' => {
                            self.pos += 1;
                            return Ok(());
                        }
                        _ => return Err(self.err(E_CHAR)),
                    }
                }
            }
            b'[' => {
                if depth > MAX_DEPTH {
                    return Err(self.err(E_DEPTH));
                }
                self.pos += 1;
                self.skip_ws();
                if self.peek()? == b']' {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.skip_ws();
                    self.skip_value(depth + 1)?;
                    self.skip_ws();
                    match self.peek()? {
                        b',' => self.pos += 1,
                        b']' => {
                            self.pos += 1;
                            return Ok(());
                        }
                        _ => return Err(self.err(E_CHAR)),
                    }
                }
            }
            _ => Err(self.err(E_CHAR)),
        }
    }
}

/// Byte that no pattern accepts: stands in for any non-ASCII character produced by a `\u` escape, since every
/// decoded string we look at (ids, names, timestamps, keys) must be ASCII to be valid.
const NON_ASCII: u8 = 0xff;

/// Decodes a string already checked by the lexer into `out` (cleared first).
fn decode_string(b: &[u8], s: Str, out: &mut Vec<u8>) {
    out.clear();
    decode_append(b, s, out);
}

/// Appends the decoded string. Raw non-ASCII bytes are copied as they are (they never match a pattern
/// either).
fn decode_append(b: &[u8], s: Str, out: &mut Vec<u8>) {
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
fn small_decoded<'b>(b: &'b [u8], s: Str, buf: &'b mut [u8; 64]) -> Option<&'b [u8]> {
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

enum Key {
    Device,
    Ts,
    Seq,
    Metrics,
    Other,
}

fn key_kind(b: &[u8], k: Str) -> Key {
    let classify = |n: &[u8]| match n {
        b"deviceId" | b"device_id" => Key::Device,
        b"ts" => Key::Ts,
        b"seq" => Key::Seq,
        b"metrics" => Key::Metrics,
        _ => Key::Other,
    };
    if !k.escaped {
        return classify(&b[k.range()]);
    }
    if k.end - k.start > 64 {
        return Key::Other;
    }
    let mut v = Vec::new();
    decode_string(b, k, &mut v);
    classify(&v)
}

fn set_once(slot: &mut Option<Val>, v: Val, dup: &mut Option<&'static str>, msg: &'static str) {
    if slot.is_some() {
        if dup.is_none() {
            *dup = Some(msg);
        }
    } else {
        *slot = Some(v);
    }
}

#[inline]
fn is_device_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-')
}

#[inline]
fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')
}

fn ascii(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

/// `*` any run of characters, `?` exactly one, anything else itself. Iterative, linear in practice.
pub fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

// -------------------------------------------------------------------- numbers

/// `Number.isInteger`, without `f64::fract`, which is a libm call (`trunc`) on baseline x86-64.
#[inline]
fn is_integer(v: f64) -> bool {
    if v.abs() < 4_503_599_627_370_496.0 {
        (v as i64) as f64 == v
    } else {
        // From 2^52 up every finite double is an integer; NaN and infinities are not.
        v.is_finite()
    }
}

fn parse_f64(text: &[u8]) -> f64 {
    // Plain integers of up to 15 digits are exact in a double: skip the general parser (timestamps, seq).
    if !text.is_empty() && text.len() <= 15 && text.iter().all(u8::is_ascii_digit) {
        return text.iter().fold(0u64, |v, &c| v * 10 + u64::from(c - b'0')) as f64;
    }
    // The lexer only admits JSON number grammar, which Rust's float parser accepts and rounds correctly,
    // exactly like JavaScript's Number(): both give the nearest double (overflow gives infinity).
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

/// Writes a JSON number's value the way JavaScript's `String(Number(text))` would.
fn write_number_text(out: &mut Vec<u8>, n: Num, b: &[u8]) {
    if n.canonical {
        out.extend_from_slice(n.text(b));
    } else {
        write_js_number(out, parse_f64(n.text(b)));
    }
}

/// Formats like `Number#toString` (ryu-js implements ECMAScript's Number::toString).
fn write_js_number(out: &mut Vec<u8>, v: f64) {
    // Integers below 1e15 print as plain digits in JavaScript; format them without the float algorithm.
    if v.abs() < 1e15 && is_integer(v) && !(v == 0.0 && v.is_sign_negative()) {
        let mut n = v.abs() as u64;
        if v < 0.0 {
            out.push(b'-');
        }
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&tmp[i..]);
        return;
    }
    let mut buf = ryu_js::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

struct JsNum(f64);

impl std::fmt::Display for JsNum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(ryu_js::Buffer::new().format(self.0))
    }
}

// -------------------------------------------------------------------- RFC 3339

/// `YYYY-MM-DDTHH:MM:SS[.fff...](Z|+HH:MM|-HH:MM)`, at most 64 bytes, to epoch ms; fraction truncated to ms.
pub fn rfc3339_ms(t: &[u8]) -> Option<i64> {
    fn num(t: &[u8], a: usize, n: usize) -> Option<i64> {
        let mut v = 0i64;
        for &c in t.get(a..a + n)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    }
    // Bounded so a huge fraction cannot cost anything; no real timestamp comes close.
    if t.len() < 20 || t.len() > 64 {
        return None;
    }
    let year = num(t, 0, 4)?;
    if t[4] != b'-'
        || t[7] != b'-'
        || !matches!(t[10], b'T' | b't')
        || t[13] != b':'
        || t[16] != b':'
    {
        return None;
    }
    let month = num(t, 5, 2)?;
    let day = num(t, 8, 2)?;
    let hour = num(t, 11, 2)?;
    let minute = num(t, 14, 2)?;
    let second = num(t, 17, 2)?;
    let mut i = 19;
    let mut frac_ms = 0i64;
    if t[i] == b'.' {
        i += 1;
        let fs = i;
        while i < t.len() && t[i].is_ascii_digit() {
            i += 1;
        }
        if i == fs {
            return None;
        }
        for k in 0..3 {
            let d = if fs + k < i {
                i64::from(t[fs + k] - b'0')
            } else {
                0
            };
            frac_ms = frac_ms * 10 + d;
        }
    }
    let offset_min = match t.get(i)? {
        b'Z' | b'z' if i + 1 == t.len() => 0,
        &c @ (b'+' | b'-') if i + 6 == t.len() && t[i + 3] == b':' => {
            let oh = num(t, i + 1, 2)?;
            let om = num(t, i + 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if c == b'-' {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(
        days * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + frac_ms
            - offset_min * 60_000,
    )
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
