//! The vector scans against their scalar definitions, on arbitrary bytes and through whole parses; and a reused
//! workspace (the addon's) against a fresh parse. One test function: the scan switch is process-wide, so nothing
//! else in this binary may run while it is off.
use fleetpulse_native::parser::{parse, parse_in, simd, ParseOptions, Workspace};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn opts(ndjson: bool, group: bool) -> ParseOptions {
    ParseOptions {
        content_type: if ndjson { "ndjson" } else { "json" }.into(),
        received_at: 1_763_803_200_500.0,
        now_ms: 1_763_803_200_000.0,
        max_future_ms: 300_000.0,
        max_past_ms: 2_592_000_000.0,
        max_events: 100,
        group_by_device: group,
        allowed_devices: None,
    }
}

/// Bytes that hit the scans' cases: quotes, escapes, controls, digits, high bytes, around valid events.
fn bodies() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"{\"deviceId\":\"sensor-1\",\"ts\":1763803200000,\"metrics\":{\"temp\":21.5},\"seq\":7}".to_vec()),
        Just(b"\"a-rather-long-device-identifier-of-forty-bytes\"".to_vec()),
        Just(b"12345678901234567890".to_vec()),
        Just(b"\\\"\\u00e9\\n".to_vec()),
        Just(vec![b'\n']),
        Just(vec![0x1f]),
        Just(vec![0xc3, 0xa9]),
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(prop::sample::select(b"0123456789\".,[]{}:\\ ".to_vec()), 0..40),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

/// `is_ascii` with one high byte (or a NUL, or none) at every position of every length around its 32-byte steps.
fn ascii_edges() {
    for len in 0..130 {
        let plain = vec![b'a'; len];
        assert!(simd::is_ascii(&plain));
        for at in 0..len {
            for (c, ascii) in [
                (0x80u8, false),
                (0xffu8, false),
                (0x00u8, true),
                (0x7fu8, true),
            ] {
                let mut b = plain.clone();
                b[at] = c;
                assert_eq!(simd::is_ascii(&b), ascii, "len {len} at {at} byte {c:#x}");
            }
        }
    }
}

/// `newline` with one line feed (or none) at every position of every length around its 16-byte steps.
#[test]
fn newline_edges() {
    simd::set_enabled(true);
    for len in 0..70 {
        let plain = vec![b'{'; len];
        for from in 0..=len {
            assert_eq!(
                simd::newline(&plain, from, len),
                len,
                "len {len} from {from}: none"
            );
        }
        for at in 0..len {
            let mut b = plain.clone();
            b[at] = b'\n';
            for from in 0..=len {
                let want = if at >= from { at } else { len };
                assert_eq!(
                    simd::newline(&b, from, len),
                    want,
                    "len {len} at {at} from {from}"
                );
                assert_eq!(
                    simd::newline_scalar(&b, from, len),
                    want,
                    "scalar: len {len} at {at} from {from}"
                );
            }
        }
    }
}

#[test]
fn vector_scans_equal_scalar() {
    simd::set_enabled(true);
    ascii_edges();
    let mut runner = TestRunner::new(Config {
        cases: 3000,
        ..Config::default()
    });
    let ws = std::cell::RefCell::new(Workspace::default());
    runner
        .run(
            &(bodies(), any::<bool>(), any::<bool>()),
            |(body, nd, group)| {
                simd::set_enabled(true);
                for from in 0..=body.len() {
                    for end in [
                        body.len(),
                        (from + 17).min(body.len()),
                        (from + 40).min(body.len()),
                    ] {
                        prop_assert_eq!(
                            simd::string_stop(&body, from, end),
                            simd::string_stop_scalar(&body, from, end)
                        );
                        prop_assert_eq!(
                            simd::digits_end(&body, from, end),
                            simd::digits_end_scalar(&body, from, end)
                        );
                        prop_assert_eq!(
                            simd::newline(&body, from, end),
                            simd::newline_scalar(&body, from, end)
                        );
                        prop_assert_eq!(
                            simd::is_ascii(&body[from..end]),
                            body[from..end].is_ascii()
                        );
                    }
                }
                let o = opts(nd, group);
                let fast = parse(&body, &o).unwrap();
                // The reused workspace gives what a fresh parse does, whatever it parsed before.
                let mut w = ws.borrow_mut();
                prop_assert_eq!(parse_in(&mut w, &body, &o, nd), &fast);
                drop(w);
                simd::set_enabled(false);
                let scalar = parse(&body, &o).unwrap();
                simd::set_enabled(true);
                prop_assert_eq!(fast, scalar);
                Ok(())
            },
        )
        .unwrap();
}
