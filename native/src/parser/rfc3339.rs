//! RFC 3339 timestamps to epoch milliseconds, for the `ts` field's string form.
//!
//! Separate because it is a self-contained calendar calculation with its own exact grammar, used only by
//! validation and tested through the vectors' timestamp cases.

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
