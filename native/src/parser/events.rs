//! One telemetry event: which keys it has (canonical form with a `metrics` object, or flat form where every
//! other numeric field is a metric), their checks in the contract's order, and handing the result to the sink.
//!
//! Separate because this is the contract (docs/contract.md, "Telemetry in") as code: the scanner below it
//! knows only JSON, the encoder after it only the output format.

use super::bytes::{all_in, DEVICE};
use super::encoding::{Encoder, Sink, Ts};
use super::numbers::{is_integer, parse_f64, JsNum};
use super::rfc3339::rfc3339_ms;
use super::scanner::{
    decode_string, members, small_decoded, Cursor, Res, Scanner, Str, Val, MAX_DEPTH,
};
use super::simd::string_stop;
use super::ParseOptions;

/// Most metrics one event may carry.
pub const MAX_METRICS: usize = 64;
const MAX_DEVICE_ID: usize = 128;
/// Below this a numeric `ts` is epoch seconds (contract: flat form).
const SECONDS_LIMIT: f64 = 1e11;
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

const DEVICE_ID_PATTERN: &str = "deviceId: expected 1-128 characters of [A-Za-z0-9._:-]";
const TS_FORMAT: &str = "ts: expected epoch milliseconds or an RFC 3339 string";
const SEQ_FORMAT: &str = "seq: expected a non-negative integer";

/// A metric as scanned: its name and what its value was.
pub(super) struct Entry {
    pub(super) name: Str,
    pub(super) value: Val,
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

pub(super) enum Event {
    /// The event's canonical JSON is at the end of the encoder's buffer.
    Valid {
        device: DeviceRef,
    },
    Invalid(String),
}

/// Where a valid event's device id is: `[start, end)` of the body, or (when it had escapes) decoded in the
/// scratch.
#[derive(Clone, Copy)]
pub(super) enum DeviceRef {
    Body(usize, usize),
    Decoded,
}

impl DeviceRef {
    fn bytes<'x>(self, b: &'x [u8], decoded: &'x [u8]) -> &'x [u8] {
        match self {
            DeviceRef::Body(s, e) => &b[s..e],
            DeviceRef::Decoded => decoded,
        }
    }
}

/// Per-event scratch, reused across events so the hot path does not allocate.
#[derive(Default)]
struct Scratch {
    /// The `metrics` object's entries.
    entries: Vec<Entry>,
    /// Flat form: the numeric fields other than `ts` and `seq`.
    candidates: Vec<Entry>,
    /// The device id, when it had escapes.
    decoded: Vec<u8>,
}

/// The reader's buffers, kept across bodies (see `Workspace`).
#[derive(Default)]
pub(super) struct ReaderParts {
    s: Scratch,
    enc: Encoder,
}

/// Reads, validates and encodes events one at a time, at the cursor it owns; the body forms move the cursor
/// between events.
pub(super) struct EventReader<'a, 'o> {
    pub(super) sc: Scanner<'a>,
    opts: &'o ParseOptions,
    s: Scratch,
    enc: Encoder,
}

impl<'a> Cursor<'a> for EventReader<'a, '_> {
    #[inline(always)]
    fn scanner(&mut self) -> &mut Scanner<'a> {
        &mut self.sc
    }
}

enum Key {
    Device,
    Ts,
    Seq,
    Metrics,
    Other,
}

/// By length first, then a compare of that many bytes the compiler inlines (the slice patterns of a `match`
/// called `memcmp` for every key).
#[inline(always)]
fn classify(n: &[u8]) -> Key {
    match n.len() {
        2 if n == b"ts" => Key::Ts,
        3 if n == b"seq" => Key::Seq,
        7 if n == b"metrics" => Key::Metrics,
        8 if n == b"deviceId" => Key::Device,
        9 if n == b"device_id" => Key::Device,
        _ => Key::Other,
    }
}

#[inline(always)]
fn key_kind(b: &[u8], k: Str) -> Key {
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

/// The `metrics` object's entries (any value; validation comes later), up to MAX_METRICS.
fn metrics_object(r: &mut EventReader, depth: u32, overflow: &mut bool) -> Res<()> {
    let (start, had) = (r.sc.pos, r.s.entries.len());
    if depth <= MAX_DEPTH && metrics_compact(r).is_some() {
        return Ok(());
    }
    r.sc.pos = start;
    r.s.entries.truncate(had);
    members(r, depth, b'}', |r| {
        let name = r.sc.key()?;
        let value = r.sc.field_value(depth)?;
        if r.s.entries.len() < MAX_METRICS {
            r.s.entries.push(Entry { name, value });
        } else {
            *overflow = true;
        }
        Ok(())
    })
}

/// At the `{` of a `metrics` object in the form nearly every body has (compact JSON, 1 to MAX_METRICS entries,
/// names without escapes, numbers): the entries `metrics_object` would find, from a loop with no whitespace
/// skips and no error values. `None` at anything else, leaving cursor and entries to be reset by the caller,
/// whose general loop then reads the object again (and finds its error, if it has one).
#[inline(always)]
fn metrics_compact(r: &mut EventReader) -> Option<()> {
    let sc = &mut r.sc;
    sc.pos += 1;
    loop {
        if sc.at()? != b'"' {
            return None;
        }
        let name = sc.pos + 1;
        let q = string_stop(sc.b, name, sc.end);
        if sc.b.get(q) != Some(&b'"') || sc.b.get(q + 1) != Some(&b':') {
            return None;
        }
        sc.pos = q + 2;
        if !matches!(sc.at()?, b'-' | b'0'..=b'9') || r.s.entries.len() >= MAX_METRICS {
            return None;
        }
        let n = sc.number().ok()?;
        r.s.entries.push(Entry {
            name: Str {
                start: name as u32,
                end: q as u32,
                escaped: false,
            },
            value: Val::Num(n),
        });
        match sc.at()? {
            b',' => sc.pos += 1,
            b'}' => {
                sc.pos += 1;
                return Some(());
            }
            _ => return None,
        }
    }
}

impl<'a, 'o> EventReader<'a, 'o> {
    pub(super) fn new(body: &'a [u8], opts: &'o ParseOptions, parts: ReaderParts) -> Self {
        let ReaderParts { s, mut enc } = parts;
        enc.reset(opts.received_at);
        EventReader {
            sc: Scanner::new(body),
            opts,
            s,
            enc,
        }
    }

    /// The buffers back, for the next body.
    pub(super) fn into_parts(self) -> ReaderParts {
        ReaderParts {
            s: self.s,
            enc: self.enc,
        }
    }

    /// The encoder's buffer: lent the output's values by `parse`, trimmed when an NDJSON line has junk after
    /// its event.
    pub(super) fn encoded(&mut self) -> &mut Vec<u8> {
        &mut self.enc.out
    }

    /// Reads the event at the cursor and hands it to the sink; `index` is its position in the array.
    pub(super) fn event_into(&mut self, sink: &mut Sink, index: u32, depth: u32) -> Res<()> {
        let start = self.sc.pos;
        let ev = self.event(depth)?;
        self.emit(sink, ev, index, start, self.sc.pos);
        Ok(())
    }

    /// Accepts a valid event under its device id, or rejects an invalid one with its byte range.
    pub(super) fn emit(
        &mut self,
        sink: &mut Sink,
        ev: Event,
        index: u32,
        start: usize,
        end: usize,
    ) {
        match ev {
            Event::Valid { device } => {
                sink.accept(device.bytes(self.sc.b, &self.s.decoded), &mut self.enc.out)
            }
            Event::Invalid(msg) => sink.reject(index, msg, start, end),
        }
    }

    /// Scans one event value at the cursor (any JSON value), then validates and encodes it.
    pub(super) fn event(&mut self, depth: u32) -> Res<Event> {
        if self.sc.peek()? != b'{' {
            self.sc.skip_value(depth)?;
            return Ok(Event::Invalid("expected an object".into()));
        }
        self.s.entries.clear();
        self.s.candidates.clear();
        let mut f = Fields::default();
        let start = self.sc.pos;
        if depth < MAX_DEPTH && self.event_compact(depth, &mut f).is_some() {
            return Ok(self.checked(&f));
        }
        self.sc.pos = start;
        self.s.entries.clear();
        self.s.candidates.clear();
        f = Fields::default();
        members(self, depth, b'}', |r| {
            let key = r.sc.key()?;
            match key_kind(r.sc.b, key) {
                Key::Device => {
                    let v = r.sc.field_value(depth)?;
                    set_once(
                        &mut f.device,
                        v,
                        &mut f.duplicate,
                        "deviceId: duplicate key",
                    );
                }
                Key::Ts => {
                    let v = r.sc.field_value(depth)?;
                    set_once(&mut f.ts, v, &mut f.duplicate, "ts: duplicate key");
                }
                Key::Seq => {
                    let v = r.sc.field_value(depth)?;
                    set_once(&mut f.seq, v, &mut f.duplicate, "seq: duplicate key");
                }
                Key::Metrics => {
                    if f.has_metrics {
                        if f.duplicate.is_none() {
                            f.duplicate = Some("metrics: duplicate key");
                        }
                        r.sc.skip_value(depth + 1)?;
                    } else {
                        f.has_metrics = true;
                        if r.sc.peek()? == b'{' {
                            f.metrics_is_object = true;
                            metrics_object(r, depth + 1, &mut f.entries_overflow)?;
                        } else {
                            r.sc.skip_value(depth + 1)?;
                        }
                    }
                }
                Key::Other => {
                    // Flat form: every numeric top-level field is a metric candidate.
                    let c = r.sc.peek()?;
                    if c == b'-' || c.is_ascii_digit() {
                        let n = r.sc.number()?;
                        if r.s.candidates.len() < MAX_METRICS {
                            r.s.candidates.push(Entry {
                                name: key,
                                value: Val::Num(n),
                            });
                        } else {
                            f.candidates_overflow = true;
                        }
                    } else {
                        r.sc.skip_value(depth + 1)?;
                    }
                }
            }
            Ok(())
        })?;
        Ok(self.checked(&f))
    }

    fn checked(&mut self, f: &Fields) -> Event {
        match self.validate(f) {
            Ok(device) => Event::Valid { device },
            Err(msg) => Event::Invalid(msg),
        }
    }

    /// At an event's `{`, the fields of the form nearly every event has: compact JSON, the keys `deviceId`
    /// (or `device_id`), `ts`, `seq` with a string or number each, a `metrics` object that `metrics_compact`
    /// reads, each once, and any other keys (flat-form candidates, or skipped). Fills `f`, the entries and the
    /// candidates as the general loop in `event` would, without its whitespace skips and error values (the
    /// per-token `Result`s were most of a parse). `None` at anything else (an escaped key, a duplicate,
    /// whitespace, a syntax error): the caller resets and reads the event with the general loop, which decides
    /// every other case.
    #[inline(always)]
    fn event_compact(&mut self, depth: u32, f: &mut Fields) -> Option<()> {
        self.sc.pos += 1;
        loop {
            let sc = &mut self.sc;
            if sc.at()? != b'"' {
                return None;
            }
            let key = sc.pos + 1;
            let q = string_stop(sc.b, key, sc.end);
            if sc.b.get(q) != Some(&b'"') || sc.b.get(q + 1) != Some(&b':') {
                return None;
            }
            sc.pos = q + 2;
            let slot = match classify(&sc.b[key..q]) {
                Key::Device => &mut f.device,
                Key::Ts => &mut f.ts,
                Key::Seq => &mut f.seq,
                Key::Metrics => {
                    if f.has_metrics || sc.at()? != b'{' {
                        return None;
                    }
                    f.has_metrics = true;
                    f.metrics_is_object = true;
                    metrics_compact(self)?;
                    if !self.compact_next()? {
                        return Some(());
                    }
                    continue;
                }
                Key::Other => {
                    // As the general loop: a number is a flat-form candidate, anything else is skipped.
                    if matches!(sc.at()?, b'-' | b'0'..=b'9') {
                        let n = sc.number().ok()?;
                        if self.s.candidates.len() < MAX_METRICS {
                            self.s.candidates.push(Entry {
                                name: Str {
                                    start: key as u32,
                                    end: q as u32,
                                    escaped: false,
                                },
                                value: Val::Num(n),
                            });
                        } else {
                            f.candidates_overflow = true;
                        }
                    } else {
                        sc.skip_value(depth + 1).ok()?;
                    }
                    if !self.compact_next()? {
                        return Some(());
                    }
                    continue;
                }
            };
            if slot.is_some() {
                return None;
            }
            *slot = Some(match sc.at()? {
                b'"' => Val::Str(sc.string().ok()?),
                b'-' | b'0'..=b'9' => Val::Num(sc.number().ok()?),
                _ => return None,
            });
            if !self.compact_next()? {
                return Some(());
            }
        }
    }

    /// After a member of a compact object: `Some(true)` past a comma, `Some(false)` past the closing brace.
    #[inline(always)]
    fn compact_next(&mut self) -> Option<bool> {
        let more = match self.sc.at()? {
            b',' => true,
            b'}' => false,
            _ => return None,
        };
        self.sc.pos += 1;
        Some(more)
    }

    /// Checks the fields in a fixed order (duplicates, deviceId, ts, seq, metrics) and encodes the canonical
    /// event. The order is part of the contract: the vectors pin which error wins.
    fn validate(&mut self, f: &Fields) -> Result<DeviceRef, String> {
        let b = self.sc.b;
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
            decode_string(b, device, &mut self.s.decoded);
            DeviceRef::Decoded
        } else {
            DeviceRef::Body(device.start as usize, device.end as usize)
        };
        let dev = dev_ref.bytes(b, &self.s.decoded);
        if dev.is_empty() || dev.len() > MAX_DEVICE_ID || !all_in(dev, DEVICE) {
            return Err(DEVICE_ID_PATTERN.into());
        }
        if let Some(glob) = &self.opts.allowed_devices {
            if !glob_match(glob.as_bytes(), dev) {
                return Err("deviceId: not allowed for this token".into());
            }
        }
        // ts
        let mut ts_text = None;
        let ts = match f.ts {
            None => return Err("ts: required".into()),
            Some(Val::Num(n)) => {
                let v = parse_f64(n.text(b));
                if !v.is_finite() {
                    return Err(TS_FORMAT.into());
                }
                if v < SECONDS_LIMIT {
                    (v * 1000.0 + 0.5).floor()
                } else if !is_integer(v) {
                    return Err("ts: expected an integer number of milliseconds".into());
                } else {
                    // An integer in its canonical text is plain digits: copied, not reformatted.
                    ts_text = n.canonical.then_some(n);
                    v
                }
            }
            Some(Val::Str(s)) => {
                let mut buf = [0u8; 64];
                let text = small_decoded(b, s, &mut buf);
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
                let v = parse_f64(n.text(b));
                if !((0.0..=MAX_SAFE_INTEGER).contains(&v) && is_integer(v)) {
                    return Err(SEQ_FORMAT.into());
                }
                Some(n)
            }
            Some(_) => return Err(SEQ_FORMAT.into()),
        };
        // metrics
        if f.has_metrics && !f.metrics_is_object {
            return Err("metrics: expected an object".into());
        }
        let (entries, overflow) = if f.has_metrics {
            (&self.s.entries, f.entries_overflow)
        } else {
            (&self.s.candidates, f.candidates_overflow)
        };
        self.enc.event(
            b,
            dev_ref.bytes(b, &self.s.decoded),
            ts_text.map_or(Ts::Ms(ts), Ts::Text),
            seq,
            entries,
            overflow,
        )?;
        Ok(dev_ref)
    }
}
