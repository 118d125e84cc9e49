//! A result packed into one caller-owned byte buffer, for the addon: the binding writes it into a Buffer the JS
//! wrapper keeps across calls, so a call creates no ArrayBuffers and sets no properties through N-API. Creating
//! four V8 backing stores and an object of eleven properties cost ~8 µs a call, ten times a one-event parse.
//!
//! The buffer has two regions. `[0, head)` takes the rest of the result, rewritten by every call. `[head, len)`
//! is a slab of values: each call's values go at `vpos`, after those of the calls before, and the JS wrapper
//! hands them out as a view of the slab, so they are copied once (here) and no Buffer is allocated for them.
//!
//! Layout of `[0, head)` (little-endian u32 words, then bytes), decoded by `unpack` in `src/index.ts`:
//! - header (`HEADER_WORDS`): flags (1 ok, 2 tooManyEvents, 4 error/offset present), offset, accepted,
//!   records, unique keys, rejected, values length, bytes of this region's part, error length, 0;
//! - per record: value end, event count, key id; per unique key: end of its text; per rejected event:
//!   index, start, end, end of its message;
//! - bytes: the error, the keys and the messages back to back.
//!
//! The call's options come in the same buffer, written by the caller where the header goes (read before the
//! result overwrites them): f64 receivedAt, nowMs, maxFutureMs, maxPastMs at bytes 0, 8, 16, 24; u32
//! maxEvents at 32; u32 flags at 36 (bits 0-1 content type: 0 json, 1 ndjson; bit 2 groupByDevice); u32
//! `head` at 40 and `vpos` at 44. Numbers written into a buffer cost the JS side nothing, where each N-API
//! argument cost ~15-30 ns of a ~1 µs call.

use super::encoding::Output;
use super::{InvalidOptions, ParseOptions};

pub const HEADER_WORDS: usize = 10;
/// Byte size of the header: a buffer at least this long always gets the header (with the sizes needed).
pub const HEADER_BYTES: usize = HEADER_WORDS * 4;
/// Byte size of the options the caller writes.
pub const OPTIONS_BYTES: usize = 48;

/// Where a call's result goes in the buffer: the region of the rest below `head`, the values at `vpos`.
#[derive(Debug, Clone, Copy)]
pub struct Regions {
    pub head: usize,
    pub vpos: usize,
}

/// The options the caller wrote into `out` (see the layout above), whether the body is NDJSON, and where the
/// result goes.
pub fn read_options(
    out: &[u8],
    allowed_devices: Option<String>,
) -> Result<(ParseOptions, bool, Regions), InvalidOptions> {
    if out.len() < OPTIONS_BYTES {
        return Err(InvalidOptions("out: expected at least 48 bytes"));
    }
    let f = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&out[at..at + 8]);
        f64::from_le_bytes(w)
    };
    let u = |at: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&out[at..at + 4]);
        u32::from_le_bytes(w)
    };
    let flags = u(36);
    let ndjson = match flags & 3 {
        0 => false,
        1 => true,
        _ => return Err(InvalidOptions("contentType must be 'json' or 'ndjson'")),
    };
    let regions = Regions {
        head: u(40) as usize,
        vpos: u(44) as usize,
    };
    if regions.head < OPTIONS_BYTES || regions.vpos < regions.head || regions.vpos > out.len() {
        return Err(InvalidOptions(
            "out: expected OPTIONS_BYTES <= head <= vpos <= length",
        ));
    }
    let opts = ParseOptions {
        content_type: String::new(),
        received_at: f(0),
        now_ms: f(8),
        max_future_ms: f(16),
        max_past_ms: f(24),
        max_events: u(32),
        group_by_device: flags & 4 != 0,
        allowed_devices,
    };
    Ok((opts, ndjson, regions))
}

/// Bytes `o` packs into below `head` (its values apart).
pub fn packed_len(o: &Output) -> usize {
    let words = HEADER_WORDS + 3 * o.value_ends.len() + o.key_ends.len() + 4 * o.rejected.len();
    let text = o.error.as_ref().map_or(0, String::len)
        + o.key_text.len()
        + o.rejected.iter().map(|r| r.error.len()).sum::<usize>();
    words * 4 + text
}

/// Writes `o` into `out` when both parts fit their regions, and says whether it did. Either way the header's
/// values length and `packed_len` are written (`out` holds at least a header: `read_options` checked), so the
/// caller can make room and call again.
pub fn pack(o: &Output, out: &mut [u8], at: Regions) -> bool {
    let total = packed_len(o);
    let total32 = u32::try_from(total).unwrap_or(u32::MAX);
    let vlen = o.values.len();
    let vlen32 = u32::try_from(vlen).unwrap_or(u32::MAX);
    if out.len() >= HEADER_BYTES {
        put(out, 6, vlen32);
        put(out, 7, total32);
    }
    let fits = total <= at.head
        && at.head <= at.vpos
        && at.vpos <= out.len()
        && vlen <= out.len() - at.vpos
        && total32 != u32::MAX
        && vlen32 != u32::MAX;
    if !fits {
        return false;
    }
    let err = o.error.as_deref().unwrap_or("");
    let flags = u32::from(o.ok)
        | (u32::from(o.too_many_events) << 1)
        | (u32::from(o.error.is_some() || o.offset.is_some()) << 2);
    let n = o.value_ends.len();
    let header = [
        flags,
        o.offset.unwrap_or(0),
        o.accepted,
        n as u32,
        o.key_ends.len() as u32,
        o.rejected.len() as u32,
        o.values.len() as u32,
        total32,
        err.len() as u32,
        0,
    ];
    let mut w = 0;
    for v in header {
        put(out, w, v);
        w += 1;
    }
    for i in 0..n {
        put(out, w, o.value_ends[i]);
        put(out, w + n, o.event_counts[i]);
        put(out, w + 2 * n, o.key_ids[i]);
        w += 1;
    }
    w += 2 * n;
    // Text offsets count from the start of the text (after the words).
    let mut text_end = err.len() as u32;
    for &k in &o.key_ends {
        put(out, w, text_end + k);
        w += 1;
    }
    text_end += o.key_text.len() as u32;
    for r in &o.rejected {
        text_end += r.error.len() as u32;
        for v in [r.index, r.start, r.end, text_end] {
            put(out, w, v);
            w += 1;
        }
    }
    out[at.vpos..at.vpos + vlen].copy_from_slice(&o.values);
    let mut pos = w * 4;
    let mut bytes = |b: &[u8]| {
        out[pos..pos + b.len()].copy_from_slice(b);
        pos += b.len();
    };
    bytes(err.as_bytes());
    bytes(&o.key_text);
    for r in &o.rejected {
        bytes(r.error.as_bytes());
    }
    true
}

#[inline]
fn put(out: &mut [u8], word: usize, v: u32) {
    out[word * 4..word * 4 + 4].copy_from_slice(&v.to_le_bytes());
}
