//! Short copies and compares, inline. An event's pieces (ids, names, numbers) are 2-16 bytes, for which the
//! calls `extend_from_slice` and `==` make to libc's `memmove`/`memcmp` cost more than the work: ~10% of a
//! 500-event parse went there. Longer slices still take the library routines.

/// Character classes of the contract's patterns, by byte: `NAME` metric names `[A-Za-z0-9._-]`, `DEVICE` device
/// ids `[A-Za-z0-9._:-]`.
pub(super) const NAME: u8 = 1;
pub(super) const DEVICE: u8 = 2;

static CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-' {
            t[c] = NAME | DEVICE;
        } else if b == b':' {
            t[c] = DEVICE;
        }
        c += 1;
    }
    t
};

/// Whether every byte of `s` is in `class`: a table look-up a byte, no branch (names and ids are short).
#[inline(always)]
pub(super) fn all_in(s: &[u8], class: u8) -> bool {
    s.iter().fold(class, |acc, &c| acc & CLASSES[c as usize]) != 0
}

#[inline(always)]
fn load8(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_ne_bytes(w)
}

#[inline(always)]
fn load16(s: &[u8], at: usize) -> u128 {
    let mut w = [0u8; 16];
    w.copy_from_slice(&s[at..at + 16]);
    u128::from_ne_bytes(w)
}

#[inline(always)]
fn load4(s: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&s[at..at + 4]);
    u32::from_ne_bytes(w)
}

/// `out.extend_from_slice(s)`.
#[inline(always)]
pub(super) fn put(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if !(4..=32).contains(&n) {
        out.extend_from_slice(s);
        return;
    }
    out.reserve(32);
    let len = out.len();
    let p = out.as_mut_ptr();
    // Two loads that overlap when `n` is under twice their size, so every length takes two moves.
    // SAFETY: `reserve(32)` leaves room for 32 bytes at `len`, and both stores end at `len + n <= len + 32`;
    // every byte below `len + n` is then written, so `set_len` exposes no uninitialised memory.
    unsafe {
        if n > 16 {
            p.add(len).cast::<u128>().write_unaligned(load16(s, 0));
            p.add(len + n - 16)
                .cast::<u128>()
                .write_unaligned(load16(s, n - 16));
        } else if n >= 8 {
            p.add(len).cast::<u64>().write_unaligned(load8(s, 0));
            p.add(len + n - 8)
                .cast::<u64>()
                .write_unaligned(load8(s, n - 8));
        } else {
            p.add(len).cast::<u32>().write_unaligned(load4(s, 0));
            p.add(len + n - 4)
                .cast::<u32>()
                .write_unaligned(load4(s, n - 4));
        }
        out.set_len(len + n);
    }
}

/// `a == b`.
#[inline(always)]
pub(super) fn eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        8..=16 => load8(a, 0) == load8(b, 0) && load8(a, n - 8) == load8(b, n - 8),
        4..=7 => load4(a, 0) == load4(b, 0) && load4(a, n - 4) == load4(b, n - 4),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_match_the_patterns() {
        for c in 0..=255u8 {
            let name = c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-');
            let device = name || c == b':';
            assert_eq!(all_in(&[c], NAME), name);
            assert_eq!(all_in(&[b'a', c], DEVICE), device);
        }
        assert!(all_in(b"", NAME));
    }

    #[test]
    fn put_and_eq_agree_with_std() {
        let src: Vec<u8> = (0u8..60).collect();
        for a in 0..20 {
            for n in 0..=36 {
                let s = &src[a..a + n];
                let mut out = b"xyz".to_vec();
                put(&mut out, s);
                assert_eq!(&out[3..], s);
                assert_eq!(out.len(), 3 + n);
                for b in 0..20 {
                    let t = &src[b..b + n];
                    assert_eq!(eq(s, t), s == t);
                    let mut u = t.to_vec();
                    if n > 0 {
                        u[n - 1] ^= 1;
                        assert_eq!(eq(s, &u), s == &u[..]);
                    }
                }
            }
        }
    }
}
