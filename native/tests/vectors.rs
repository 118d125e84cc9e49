//! The contract's vectors (contracts/vectors) and arbitrary bytes through the Rust core, without Node.
use base64::Engine;
use fleetpulse_native::parser::{parse, Output, ParseOptions};
use proptest::prelude::*;
use serde_json::{json, Value};

fn vectors_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/vectors")
}

fn read(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(vectors_dir().join(name)).unwrap()).unwrap()
}

fn plain(o: &Output) -> Value {
    if !o.ok {
        let mut v = json!({"ok": false, "error": o.error, "offset": o.offset});
        if o.too_many_events {
            v["tooManyEvents"] = json!(true);
        }
        return v;
    }
    let mut start = 0usize;
    let records: Vec<Value> = (0..o.key_ids.len())
        .map(|i| {
            let k = o.key(i);
            let end = o.value_ends[i] as usize;
            let value = std::str::from_utf8(&o.values[start..end]).unwrap();
            start = end;
            json!({"key": k, "events": o.event_counts[i], "value": value})
        })
        .collect();
    let rejected: Vec<Value> = o
        .rejected
        .iter()
        .map(|r| json!({"index": r.index, "error": r.error, "start": r.start, "end": r.end}))
        .collect();
    json!({"ok": true, "accepted": o.accepted, "records": records, "rejected": rejected})
}

#[test]
fn every_vector_passes() {
    // With the vector scans and without (the switch is process-wide: the other tests here give the same results
    // either way, so they may run meanwhile).
    for on in [false, true] {
        fleetpulse_native::parser::simd::set_enabled(on);
        every_vector_once();
    }
}

fn every_vector_once() {
    let defaults = read("options.json")["options"].clone();
    let mut count = 0;
    for entry in std::fs::read_dir(vectors_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name == "options.json" {
            continue;
        }
        for v in read(&name)["vectors"].as_array().unwrap() {
            let mut o = defaults.clone();
            if let Some(over) = v.get("options").and_then(Value::as_object) {
                for (k, x) in over {
                    o[k] = x.clone();
                }
            }
            let body = match (v.get("body"), v.get("bodyBase64")) {
                (Some(b), None) => b.as_str().unwrap().as_bytes().to_vec(),
                (None, Some(b)) => base64::engine::general_purpose::STANDARD
                    .decode(b.as_str().unwrap())
                    .unwrap(),
                _ => panic!("{name}: {}: needs body or bodyBase64", v["name"]),
            };
            let opts = ParseOptions {
                content_type: o["contentType"].as_str().unwrap().into(),
                received_at: o["receivedAt"].as_f64().unwrap(),
                now_ms: o["nowMs"].as_f64().unwrap(),
                max_future_ms: o["maxFutureMs"].as_f64().unwrap(),
                max_past_ms: o["maxPastMs"].as_f64().unwrap(),
                max_events: o["maxEvents"].as_u64().unwrap() as u32,
                group_by_device: o["groupByDevice"].as_bool().unwrap(),
                allowed_devices: o
                    .get("allowedDevices")
                    .and_then(Value::as_str)
                    .map(String::from),
            };
            let got = plain(&parse(&body, &opts).unwrap());
            assert_eq!(got, v["expect"], "{name}: {}", v["name"]);
            count += 1;
        }
    }
    assert!(count > 150, "only {count} vectors found");
}

fn opts(ndjson: bool, group: bool, max_events: u32) -> ParseOptions {
    ParseOptions {
        content_type: if ndjson { "ndjson" } else { "json" }.into(),
        received_at: 1_763_803_200_500.0,
        now_ms: 1_763_803_200_000.0,
        max_future_ms: 300_000.0,
        max_past_ms: 2_592_000_000.0,
        max_events,
        group_by_device: group,
        allowed_devices: Some("s*".into()),
    }
}

#[test]
fn only_the_content_type_is_refused() {
    let mut o = opts(false, false, 100);
    o.content_type = "xml".into();
    let err = parse(b"{}", &o).unwrap_err();
    assert_eq!(err.to_string(), "contentType must be 'json' or 'ndjson'");
    // A bad body is never refused, however bad: it gets a failed result.
    assert!(!parse(b"\xff", &opts(false, false, 100)).unwrap().ok);
}

/// Every record value must itself be valid JSON, every rejected range inside the body.
fn check_invariants(body: &[u8], o: &Output) {
    if !o.ok {
        assert!(o.offset.unwrap() as usize <= body.len());
        assert!(o.key_ids.is_empty() && o.values.is_empty() && o.rejected.is_empty());
        return;
    }
    let mut start = 0usize;
    for &end in &o.value_ends {
        let v: Value = serde_json::from_slice(&o.values[start..end as usize]).unwrap();
        assert!(v.is_object() || v.is_array());
        start = end as usize;
    }
    assert_eq!(start, o.values.len());
    for r in &o.rejected {
        assert!(r.start <= r.end && r.end as usize <= body.len());
    }
}

const ALPHABET: &[u8] = b"{}[]\",:0123456789-+.eE tfnrulsa\\\n\r\"deviceIdtsmetricsq";

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256), nd in any::<bool>(), g in any::<bool>(), m in 0u32..8) {
        let o = parse(&body, &opts(nd, g, m)).unwrap();
        check_invariants(&body, &o);
    }

    #[test]
    fn json_like_bytes_never_panic(idx in proptest::collection::vec(0usize..ALPHABET.len(), 0..256), nd in any::<bool>(), g in any::<bool>()) {
        let body: Vec<u8> = idx.iter().map(|&i| ALPHABET[i]).collect();
        let o = parse(&body, &opts(nd, g, 100)).unwrap();
        check_invariants(&body, &o);
    }

    #[test]
    fn damaged_valid_bodies_never_panic(cut in 0usize..200, byte in any::<u8>(), at in 0usize..200, nd in any::<bool>()) {
        let good = if nd {
            "{\"deviceId\":\"s1\",\"ts\":1763803200000,\"metrics\":{\"t\":1.5},\"seq\":3}\n{\"device_id\":\"s2\",\"temp\":2,\"ts\":1763803200}".as_bytes().to_vec()
        } else {
            "[{\"deviceId\":\"s1\",\"ts\":\"2025-11-22T09:20:00.1+01:00\",\"metrics\":{\"t\":1.5}},{\"device_id\":\"s2\",\"temp\":2e0,\"ts\":1763803200}]".as_bytes().to_vec()
        };
        let mut body = good[..cut.min(good.len())].to_vec();
        let at = at.min(body.len());
        body.insert(at, byte);
        let o = parse(&body, &opts(nd, true, 100)).unwrap();
        check_invariants(&body, &o);
    }
}
