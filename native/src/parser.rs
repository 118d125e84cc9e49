//! Telemetry body parser: one pass over the bytes, no DOM. It validates every event against the contract
//! (docs/contract.md, "Telemetry in") and writes the canonical Kafka values straight into one buffer.
//!
//! The semantics are pinned by `contracts/vectors/` and mirrored line for line by `src/fallback.ts`; any change
//! here must change both and the vectors.
//!
//! This file is the entry: the options, the checks on a whole body, and the two body forms (one JSON value,
//! NDJSON lines). The work is in the modules below, in the order bytes flow through them:
//! - `scanner`: the JSON grammar (tokens, containers, skipping), and string decoding;
//! - `events`: one event's keys and their validation, in the contract's order;
//! - `numbers`, `rfc3339`: JavaScript's number semantics and timestamps, used by validation and encoding;
//! - `encoding`: canonical events, the Kafka records and rejected events, the result.

mod bytes;
mod encoding;
mod events;
mod intern;
mod numbers;
pub mod packed;
mod rfc3339;
mod scanner;
pub mod simd;

pub use encoding::{Output, RejectedEvent};
pub use events::{glob_match, MAX_METRICS};
pub use rfc3339::rfc3339_ms;
pub use scanner::MAX_DEPTH;

use encoding::Sink;
use events::{EventReader, ReaderParts};
use scanner::{is_ws, members, Code, SyntaxError};

/// Options of one `parseTelemetry` call, in JavaScript's shape (content type as a string included).
pub struct ParseOptions {
    /// `json` (one object or an array) or `ndjson` (one event per line).
    pub content_type: String,
    /// Epoch ms stamped on every accepted event as `receivedAt`.
    pub received_at: f64,
    /// Epoch ms the `ts` bounds are relative to (a parameter, so results are reproducible).
    pub now_ms: f64,
    pub max_future_ms: f64,
    pub max_past_ms: f64,
    pub max_events: u32,
    pub group_by_device: bool,
    /// Glob of the device ids the token may send for (`*`, `?`); absent allows every device.
    pub allowed_devices: Option<String>,
}

/// Options that no body can be parsed with. Only options are refused: any body gets an `Output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidOptions(&'static str);

impl std::fmt::Display for InvalidOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Parses a body. Never panics on any input (the binding still guards with catch_unwind).
pub fn parse(body: &[u8], opts: &ParseOptions) -> Result<Output, InvalidOptions> {
    let ndjson = match opts.content_type.as_str() {
        "json" => false,
        "ndjson" => true,
        _ => return Err(InvalidOptions("contentType must be 'json' or 'ndjson'")),
    };
    let mut ws = Workspace::default();
    parse_in(&mut ws, body, opts, ndjson);
    Ok(std::mem::take(&mut ws.sink.out))
}

/// The buffers of a parse, kept across bodies so that a small body's parse allocates almost nothing (the addon
/// keeps one per thread). Holds the last result.
#[derive(Default)]
pub struct Workspace {
    sink: Sink,
    reader: ReaderParts,
}

/// `parse` with the content type decided (the addon passes it as a flag), into `ws`; returns the result there.
pub fn parse_in<'w>(
    ws: &'w mut Workspace,
    body: &[u8],
    opts: &ParseOptions,
    ndjson: bool,
) -> &'w Output {
    let sink = &mut ws.sink;
    sink.reset(opts.group_by_device, body.len());
    if body.len() > u32::MAX as usize {
        sink.out.fail("body too large".into(), 0);
        return &sink.out;
    }
    // ASCII (nearly every body) is checked several times faster than UTF-8 in general.
    if !simd::is_ascii(body) {
        if let Err(e) = std::str::from_utf8(body) {
            sink.out.fail("invalid UTF-8".into(), e.valid_up_to());
            return &sink.out;
        }
    }
    if body.iter().all(|&c| is_ws(c)) {
        sink.out.fail("empty body".into(), 0);
        return &sink.out;
    }
    let mut p = Parser {
        r: EventReader::new(body, opts, std::mem::take(&mut ws.reader)),
        max_events: opts.max_events,
    };
    sink.swap_values(p.r.encoded());
    let res = if ndjson { p.ndjson(sink) } else { p.json(sink) };
    sink.swap_values(p.r.encoded());
    ws.reader = p.r.into_parts();
    match res {
        Ok(()) => sink.finish(),
        Err(Stop::Syntax(e)) => sink.out.fail(e.code.msg().into(), e.at as usize),
        Err(Stop::TooMany(at)) => {
            sink.out
                .fail(format!("more than {} events", opts.max_events), at);
            sink.out.too_many_events = true;
        }
    }
    &sink.out
}

/// Why a body is refused as a whole.
enum Stop {
    Syntax(SyntaxError),
    /// More events than `max_events`; the offset of the first one too many.
    TooMany(usize),
}

impl From<SyntaxError> for Stop {
    fn from(e: SyntaxError) -> Self {
        Stop::Syntax(e)
    }
}

/// The body forms: where each event starts and ends, and how many there may be.
struct Parser<'a, 'o> {
    r: EventReader<'a, 'o>,
    max_events: u32,
}

impl Parser<'_, '_> {
    /// One JSON value: an event object, or an array of events.
    fn json(&mut self, sink: &mut Sink) -> Result<(), Stop> {
        let max_events = self.max_events;
        let r = &mut self.r;
        r.sc.skip_ws();
        match r.sc.b[r.sc.pos] {
            b'{' => {
                if max_events == 0 {
                    return Err(Stop::TooMany(r.sc.pos));
                }
                r.event_into(sink, 0, 1)?;
            }
            b'[' => {
                let mut index: u32 = 0;
                // The array is depth 1, its events depth 2.
                members(r, 1, b']', |r| {
                    if r.sc.pos < r.sc.end && index >= max_events {
                        return Err(Stop::TooMany(r.sc.pos));
                    }
                    r.event_into(sink, index, 2)?;
                    index += 1;
                    Ok(())
                })?;
            }
            _ => {
                return Err(Stop::Syntax(SyntaxError {
                    code: Code::NotContainer,
                    at: r.sc.pos as u32,
                }))
            }
        }
        r.sc.expect_end()?;
        Ok(())
    }

    /// One event per line; a line's syntax error rejects that line only.
    fn ndjson(&mut self, sink: &mut Sink) -> Result<(), Stop> {
        let r = &mut self.r;
        let b = r.sc.body();
        let len = b.len();
        let mut line_start = 0;
        let mut line: u32 = 0;
        let mut events: u32 = 0;
        while line_start < len {
            let nl = simd::newline(b, line_start, len);
            // The event's bytes are the line without surrounding whitespace (and without its `\r\n`).
            let mut s = line_start;
            let mut e = nl;
            while s < e && is_ws(b[s]) {
                s += 1;
            }
            while e > s && is_ws(b[e - 1]) {
                e -= 1;
            }
            if s < e {
                if events >= self.max_events {
                    return Err(Stop::TooMany(s));
                }
                events += 1;
                r.sc.set_window(s, e);
                let base = r.encoded().len();
                let res = r.event(1).and_then(|ev| r.sc.expect_end().map(|()| ev));
                match res {
                    Ok(ev) => r.emit(sink, ev, line, s, e),
                    Err(err) => {
                        // The event may have been encoded before junk after it was found.
                        r.encoded().truncate(base);
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
}
