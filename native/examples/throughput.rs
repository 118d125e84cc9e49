//! `cargo run --release --example throughput -- <body.json> [ndjson] [group]`: the parser core's speed without
//! Node, to tell parsing cost from binding cost. Parses into one reused workspace, as the addon does, with the
//! vector scans on and off in turn (interleaved, so load from other processes hits both alike).
use fleetpulse_native::parser::{parse_in, simd, ParseOptions, Workspace};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let body = std::fs::read(
        args.get(1)
            .expect("usage: throughput <body> [ndjson] [group]"),
    )
    .unwrap();
    let ndjson = args.iter().any(|a| a == "ndjson");
    let opts = ParseOptions {
        content_type: if ndjson { "ndjson" } else { "json" }.into(),
        received_at: 1_763_803_200_000.0,
        now_ms: 1_763_803_200_000.0,
        max_future_ms: 300_000.0,
        max_past_ms: 2_592_000_000.0,
        max_events: 10_000,
        group_by_device: args.iter().any(|a| a == "group"),
        allowed_devices: None,
    };
    let mut ws = Workspace::default();
    let first = parse_in(&mut ws, &body, &opts, ndjson);
    println!(
        "accepted {} rejected {}",
        first.accepted,
        first.rejected.len()
    );
    for _ in 0..5 {
        for on in [true, false] {
            simd::set_enabled(on);
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed().as_millis() < 500 {
                for _ in 0..16 {
                    std::hint::black_box(parse_in(
                        &mut ws,
                        std::hint::black_box(&body),
                        &opts,
                        ndjson,
                    ));
                }
                n += 16;
            }
            let secs = start.elapsed().as_secs_f64();
            let what = if on { "vector" } else { "scalar" };
            print!(
                "{what} {:.1} MB/s  ",
                n as f64 * body.len() as f64 / secs / 1e6
            );
        }
        println!();
    }
}
