#![deny(clippy::all)]
//! fleetpulse native addon: `parseTelemetryPacked(body, out, ...options)` for the ingestion service's JS wrapper
//! (`src/index.ts`). The parser core lives in `parser` and has no Node dependency; `binding` is the one place
//! that touches N-API.

pub mod parser;

#[cfg(feature = "node")]
pub mod binding {
    use crate::parser::{self, packed, Output, ParseOptions, Workspace};
    use napi::bindgen_prelude::*;
    use napi_derive::napi;
    use std::cell::RefCell;

    thread_local! {
        /// One per thread (a worker thread has its own), reused by every call on it.
        static WORKSPACE: RefCell<Workspace> = RefCell::default();
    }

    /// Parses, validates and normalises a telemetry body and packs the result into `out` (layout in
    /// `parser/packed.rs`). Returns the bytes the result needs: more than `out.length` means nothing but the
    /// header was written, and the caller calls again with a larger buffer. Options come as arguments, not an
    /// object: reading eleven named properties through N-API cost more than a small body's parse.
    /// `content_type`: 0 json, 1 ndjson, anything else refused. Throws only for invalid options.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn parse_telemetry_packed(
        body: BufferSlice,
        mut out: BufferSlice,
        content_type: u32,
        received_at: f64,
        now_ms: f64,
        max_future_ms: f64,
        max_past_ms: f64,
        max_events: u32,
        group_by_device: bool,
        allowed_devices: Option<String>,
    ) -> Result<u32> {
        let ndjson = match content_type {
            0 => false,
            1 => true,
            _ => {
                return Err(Error::new(
                    Status::InvalidArg,
                    "contentType must be 'json' or 'ndjson'".to_owned(),
                ))
            }
        };
        let opts = ParseOptions {
            content_type: String::new(),
            received_at,
            now_ms,
            max_future_ms,
            max_past_ms,
            max_events,
            group_by_device,
            allowed_devices,
        };
        let bytes: &[u8] = &body;
        let out: &mut [u8] = &mut out;
        // The parser is written not to panic; this only keeps a bug from taking the process down.
        let total = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            WORKSPACE
                .with_borrow_mut(|ws| packed::pack(parser::parse_in(ws, bytes, &opts, ndjson), out))
        }))
        .unwrap_or_else(|_| {
            // A workspace left half-way by a panic is not reused.
            WORKSPACE.with_borrow_mut(|ws| *ws = Workspace::default());
            packed::pack(&Output::failed("internal parser error".into(), 0), out)
        });
        Ok(u32::try_from(total).unwrap_or(u32::MAX))
    }
}
