//! Numbers the way JavaScript sees them: `Number(text)` to read a JSON number, `Number#toString` to write one,
//! `Number.isInteger`. The contract's canonical values are what the TypeScript fallback would print, so every
//! number the parser reads or writes goes through here.
//!
//! Separate because validation (`events`) and encoding (`encoding`) both need it and neither owns it.

use super::bytes::put;
use super::scanner::Num;

/// `Number.isInteger`, without `f64::fract`, which is a libm call (`trunc`) on baseline x86-64.
#[inline]
pub(super) fn is_integer(v: f64) -> bool {
    if v.abs() < 4_503_599_627_370_496.0 {
        (v as i64) as f64 == v
    } else {
        // From 2^52 up every finite double is an integer; NaN and infinities are not.
        v.is_finite()
    }
}

/// `Number(text)` of a number token.
#[inline]
pub(super) fn parse_f64(text: &[u8]) -> f64 {
    // Plain integers of up to 15 digits are exact in a double: skip the general parser (timestamps, seq). One
    // pass without branches: a non-digit only spoils `ok` (and `v` cannot overflow: 15 steps of at most 255).
    if (9..=15).contains(&text.len()) {
        if let Some(v) = digits_9_to_15(text) {
            return v as i64 as f64;
        }
        return parse_f64_general(text);
    }
    if !text.is_empty() && text.len() <= 15 {
        let mut v = 0u64;
        let mut ok = true;
        for &c in text {
            let d = c.wrapping_sub(b'0');
            ok &= d < 10;
            v = v * 10 + u64::from(d);
        }
        if ok {
            // Below 2^63: the signed conversion, one instruction (the unsigned one is a sequence).
            return v as i64 as f64;
        }
    }
    parse_f64_general(text)
}

/// The value of 9 to 15 ASCII digits, eight at a time (timestamps are 13): `None` if any byte is not a digit.
#[inline(always)]
fn digits_9_to_15(text: &[u8]) -> Option<u64> {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let n = text.len();
    let mut a = [0u8; 8];
    let mut z = [0u8; 8];
    a.copy_from_slice(&text[..8]);
    z.copy_from_slice(&text[n - 8..]);
    // Little-endian: the first digit is the lowest byte. `a` and `z` overlap when n < 16.
    let a = u64::from_le_bytes(a) ^ ZEROS;
    let z = u64::from_le_bytes(z) ^ ZEROS;
    // A byte is a digit when (byte ^ '0') < 10 (see `simd::digits_end`).
    let bad = |t: u64| (t.wrapping_add(0x7676_7676_7676_7676) | t) & 0x8080_8080_8080_8080;
    if bad(a) | bad(z) != 0 {
        return None;
    }
    // The first n - 8 digits, as eight with leading zeros: shifted up past the 16 - n that `z` has.
    let hi = a << (8 * (16 - n));
    Some(u64::from(eight_digits(hi)) * 100_000_000 + u64::from(eight_digits(z)))
}

/// Eight digit values (0-9, first in the lowest byte) to their number (D. Lemire's multiply-and-shift).
#[inline(always)]
fn eight_digits(v: u64) -> u32 {
    const MASK: u64 = 0x0000_00ff_0000_00ff;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let v = (v & MASK)
        .wrapping_mul(MUL1)
        .wrapping_add(((v >> 16) & MASK).wrapping_mul(MUL2))
        >> 32;
    v as u32
}

#[inline(never)]
fn parse_f64_general(text: &[u8]) -> f64 {
    // The lexer only admits JSON number grammar, which Rust's float parser accepts and rounds correctly,
    // exactly like JavaScript's Number(): both give the nearest double (overflow gives infinity).
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

/// Writes a JSON number's value the way JavaScript's `String(Number(text))` would.
pub(super) fn write_number_text(out: &mut Vec<u8>, n: Num, b: &[u8]) {
    if n.canonical {
        put(out, n.text(b));
    } else {
        write_js_number(out, parse_f64(n.text(b)));
    }
}

/// Formats like `Number#toString` (ryu-js implements ECMAScript's Number::toString).
pub(super) fn write_js_number(out: &mut Vec<u8>, v: f64) {
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
        put(out, &tmp[i..]);
        return;
    }
    let mut buf = ryu_js::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

/// Displays a number as `String(v)` does in JavaScript, for the messages that quote an option.
pub(super) struct JsNum(pub(super) f64);

impl std::fmt::Display for JsNum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(ryu_js::Buffer::new().format(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_runs_read_like_the_general_parser() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for len in 1..=17 {
            for _ in 0..2000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut t: Vec<u8> = (0..len)
                    .map(|i| b'0' + ((x >> (i * 3)) % 10) as u8)
                    .collect();
                if t[0] == b'0' && len > 1 {
                    t[0] = b'7';
                }
                let want: f64 = std::str::from_utf8(&t).unwrap().parse().unwrap();
                assert_eq!(
                    parse_f64(&t).to_bits(),
                    want.to_bits(),
                    "{}",
                    String::from_utf8_lossy(&t)
                );
                // Not digits: the general parser's answer (these are not JSON numbers; it gives NaN or its value).
                let mut u = t.clone();
                u[(x as usize >> 5) % len] = b'.';
                let want = std::str::from_utf8(&u)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok());
                assert_eq!(parse_f64(&u).to_bits(), want.unwrap_or(f64::NAN).to_bits());
            }
        }
        assert_eq!(parse_f64(b"1763803140000"), 1_763_803_140_000.0);
        assert_eq!(parse_f64(b"999999999999999"), 999_999_999_999_999.0);
        assert_eq!(parse_f64(b"100000000"), 100_000_000.0);
    }
}
