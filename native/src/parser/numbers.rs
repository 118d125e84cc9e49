//! Numbers the way JavaScript sees them: `Number(text)` to read a JSON number, `Number#toString` to write one,
//! `Number.isInteger`. The contract's canonical values are what the TypeScript fallback would print, so every
//! number the parser reads or writes goes through here.
//!
//! Separate because validation (`events`) and encoding (`encoding`) both need it and neither owns it.

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
pub(super) fn parse_f64(text: &[u8]) -> f64 {
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
pub(super) fn write_number_text(out: &mut Vec<u8>, n: Num, b: &[u8]) {
    if n.canonical {
        out.extend_from_slice(n.text(b));
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
        out.extend_from_slice(&tmp[i..]);
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
