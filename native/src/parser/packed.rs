//! A result packed into one caller-owned byte buffer, for the addon: the binding writes it into a Buffer the JS
//! wrapper keeps across calls, so a call creates no ArrayBuffers and sets no properties through N-API. Creating
//! four V8 backing stores and an object of eleven properties cost ~8 µs a call, ten times a one-event parse.
//!
//! Layout (little-endian u32 words, then bytes), decoded by `unpack` in `src/index.ts`:
//! - header (`HEADER_WORDS`): flags (1 ok, 2 tooManyEvents, 4 error/offset present), offset, accepted,
//!   records, unique keys, rejected, values length, total bytes, error length, 0;
//! - per record: value end, event count, key id; per unique key: end of its text; per rejected event:
//!   index, start, end, end of its message;
//! - bytes: the values, then the error, the keys and the messages back to back.

use super::encoding::Output;

pub const HEADER_WORDS: usize = 10;
/// Byte size of the header: a buffer at least this long always gets the header (with the total needed).
pub const HEADER_BYTES: usize = HEADER_WORDS * 4;

/// Bytes `o` packs into.
pub fn packed_len(o: &Output) -> usize {
    let words = HEADER_WORDS + 3 * o.value_ends.len() + o.key_ends.len() + 4 * o.rejected.len();
    let text = o.error.as_ref().map_or(0, String::len)
        + o.key_text.len()
        + o.rejected.iter().map(|r| r.error.len()).sum::<usize>();
    words * 4 + o.values.len() + text
}

/// Writes `o` into `out` when it fits; returns the bytes it needs either way. When it does not fit (and `out`
/// holds a header) only the header's total is written, so the caller can grow the buffer and call again.
pub fn pack(o: &Output, out: &mut [u8]) -> usize {
    let total = packed_len(o);
    let total32 = u32::try_from(total).unwrap_or(u32::MAX);
    if total > out.len() || total32 == u32::MAX {
        if out.len() >= HEADER_BYTES {
            put(out, 7, total32);
        }
        return total;
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
    // Text offsets count from the start of the text (after the values).
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
    let mut at = w * 4;
    let mut bytes = |b: &[u8]| {
        out[at..at + b.len()].copy_from_slice(b);
        at += b.len();
    };
    bytes(&o.values);
    bytes(err.as_bytes());
    bytes(&o.key_text);
    for r in &o.rejected {
        bytes(r.error.as_bytes());
    }
    total
}

#[inline]
fn put(out: &mut [u8], word: usize, v: u32) {
    out[word * 4..word * 4 + 4].copy_from_slice(&v.to_le_bytes());
}
