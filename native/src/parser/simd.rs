//! The scanner's byte searches, vectorised: the end of a string's plain run (the next quote, backslash or control
//! character), the end of a digit run, and NDJSON's line ends. SSE2 (part of x86-64) handles the first 16 bytes inline, where nearly
//! every key and id ends; longer runs go 32 bytes a step with AVX2 when the CPU has it (detected at run time).
//! Other targets, and `set_enabled(false)` (tests), take the scalar loops, which define the results.

use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the vector paths off (or back on) for the whole process: the tests compare both paths.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

#[inline(always)]
fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

#[inline(always)]
fn is_string_stop(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

/// First `i` in `[from, end)` with `b[i]` a quote, a backslash or below 0x20; `end` if none.
#[inline(always)]
pub fn string_stop(b: &[u8], from: usize, end: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    if end <= b.len() && from + 16 <= end && enabled() {
        // SAFETY: `from + 16 <= end <= b.len()`: the 16 bytes read are in the slice.
        let m = unsafe { x86::stops16(b.as_ptr().add(from)) };
        if m != 0 {
            return from + m.trailing_zeros() as usize;
        }
        return x86::string_stop_long(b, from + 16, end);
    }
    string_stop_scalar(b, from, end)
}

/// First `i` in `[from, end)` (both clamped to the slice) with `is(b[i])`; `end` if none: what each search below
/// is defined as.
#[inline(always)]
fn first_scalar(b: &[u8], from: usize, end: usize, is: impl Fn(u8) -> bool) -> usize {
    let end = end.min(b.len());
    let from = from.min(end);
    b[from..end]
        .iter()
        .position(|&c| is(c))
        .map_or(end, |i| from + i)
}

/// The definition of `string_stop`.
pub fn string_stop_scalar(b: &[u8], from: usize, end: usize) -> usize {
    first_scalar(b, from, end, is_string_stop)
}

/// First `i` in `[from, end)` with `b[i]` not an ASCII digit; `end` if none. Eight bytes a step (SWAR, any
/// target): numbers are too short for vectors to pay.
#[inline(always)]
pub fn digits_end(b: &[u8], mut from: usize, end: usize) -> usize {
    let end = end.min(b.len());
    if enabled() {
        while from + 8 <= end {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[from..from + 8]);
            let t = u64::from_le_bytes(w) ^ 0x3030_3030_3030_3030;
            // A byte is a digit when t < 10: adding 0x76 sets its high bit otherwise (t's own high bit is set
            // for bytes >= 0x80). A carry comes only out of a non-digit byte, and reaches only bytes after it.
            let nd = (t.wrapping_add(0x7676_7676_7676_7676) | t) & 0x8080_8080_8080_8080;
            if nd != 0 {
                return from + (nd.trailing_zeros() / 8) as usize;
            }
            from += 8;
        }
    }
    digits_end_scalar(b, from, end)
}

/// The definition of `digits_end`.
pub fn digits_end_scalar(b: &[u8], from: usize, end: usize) -> usize {
    first_scalar(b, from, end, |c| !c.is_ascii_digit())
}

/// First `i` in `[from, end)` with `b[i]` a line feed; `end` if none: NDJSON's line ends.
#[inline]
pub fn newline(b: &[u8], from: usize, end: usize) -> usize {
    let end = end.min(b.len());
    #[cfg(target_arch = "x86_64")]
    if enabled() {
        return match x86::scan16(b, from.min(end), end, x86::newlines16) {
            Ok(i) => i,
            Err(rest) => newline_scalar(b, rest, end),
        };
    }
    newline_scalar(b, from, end)
}

/// The definition of `newline`.
pub fn newline_scalar(b: &[u8], from: usize, end: usize) -> usize {
    first_scalar(b, from, end, |c| c == b'\n')
}

/// Whether every byte is ASCII: the UTF-8 check's fast path. 32 bytes a step, OR-ed as words (the compiler
/// makes it vector code on any target); std's `is_ascii` took more instructions than `from_utf8` on a
/// one-event body.
#[inline]
pub fn is_ascii(b: &[u8]) -> bool {
    if !enabled() {
        return b.is_ascii();
    }
    let mut chunks = b.chunks_exact(32);
    let mut acc = 0u64;
    for c in &mut chunks {
        for w in c.chunks_exact(8) {
            let mut x = [0u8; 8];
            x.copy_from_slice(w);
            acc |= u64::from_le_bytes(x);
        }
    }
    acc & 0x8080_8080_8080_8080 == 0 && chunks.remainder().is_ascii()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::string_stop_scalar;
    use std::arch::x86_64::*;

    /// Bit i set when byte i of the 16 at `p` is a quote, a backslash or a control character.
    ///
    /// # Safety
    /// `p` must point at 16 readable bytes.
    #[inline(always)]
    pub(super) unsafe fn stops16(p: *const u8) -> u32 {
        // SSE2 is in every x86-64 CPU.
        let v = _mm_loadu_si128(p.cast());
        let q = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let bs = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // c < 0x20 unsigned: min(c, 0x1f) == c.
        let ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, bs), ctl)) as u32
    }

    /// Bit i set when byte i of the 16 at `p` is a line feed.
    ///
    /// # Safety
    /// `p` must point at 16 readable bytes.
    #[inline(always)]
    pub(super) unsafe fn newlines16(p: *const u8) -> u32 {
        let v = _mm_loadu_si128(p.cast());
        _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8))) as u32
    }

    /// `string_stop` past the first 16 bytes.
    #[inline(never)]
    pub(super) fn string_stop_long(b: &[u8], from: usize, end: usize) -> usize {
        if is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present; the function reads only below `end <= b.len()`.
            return unsafe { avx2(b, from, end) };
        }
        match scan16(b, from, end, stops16) {
            Ok(i) => i,
            Err(rest) => string_stop_scalar(b, rest, end),
        }
    }

    /// From `from`, 16 bytes a step while 16 fit below `end` (which the callers keep `<= b.len()`): `Ok` with the
    /// first `i` whose bit `mask` sets, or `Err` with where the whole steps ended, for the scalar definition.
    #[inline(always)]
    pub(super) fn scan16(
        b: &[u8],
        mut from: usize,
        end: usize,
        mask: unsafe fn(*const u8) -> u32,
    ) -> Result<usize, usize> {
        let end = end.min(b.len());
        while from + 16 <= end {
            // SAFETY: `from + 16 <= end <= b.len()`: the 16 bytes `mask` reads are in the slice.
            let m = unsafe { mask(b.as_ptr().add(from)) };
            if m != 0 {
                return Ok(from + m.trailing_zeros() as usize);
            }
            from += 16;
        }
        Err(from)
    }

    #[target_feature(enable = "avx2")]
    unsafe fn avx2(b: &[u8], mut from: usize, end: usize) -> usize {
        let quote = _mm256_set1_epi8(b'"' as i8);
        let bslash = _mm256_set1_epi8(b'\\' as i8);
        let ctl = _mm256_set1_epi8(0x1f);
        while from + 32 <= end {
            let v = _mm256_loadu_si256(b.as_ptr().add(from).cast());
            let s = _mm256_or_si256(
                _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, bslash)),
                _mm256_cmpeq_epi8(_mm256_min_epu8(v, ctl), v),
            );
            let m = _mm256_movemask_epi8(s) as u32;
            if m != 0 {
                return from + m.trailing_zeros() as usize;
            }
            from += 32;
        }
        string_stop_scalar(b, from, end)
    }
}
