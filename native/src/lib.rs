#![deny(clippy::all)]
//! fleetpulse native addon: `parseTelemetryPacked(body, out, ...options)` for the ingestion service's JS wrapper
//! (`src/index.ts`). The parser core lives in `parser` and has no Node dependency; `binding` is the one place
//! that touches N-API. `crc32c(data)`: Kafka's record batch checksum, for the kafkajs producers (`crc32c.rs`).

pub mod crc32c;
pub mod parser;

#[cfg(feature = "node")]
pub mod binding {
    use crate::parser::{self, packed, Output, Workspace};
    use napi::bindgen_prelude::*;
    use napi_derive::napi;
    use std::cell::RefCell;

    thread_local! {
        /// One per thread (a worker thread has its own), reused by every call on it.
        static WORKSPACE: RefCell<Workspace> = RefCell::default();
    }

    /// Parses, validates and normalises a telemetry body and packs the result into `out` (layout and regions
    /// in `parser/packed.rs`). Returns whether it did: if not, only the header's sizes were written, and the
    /// caller makes room and calls again. The options other than the device glob are written by the caller into
    /// `out`'s first 48 bytes (`packed::read_options`): as N-API arguments they were a third of a one-event call's
    /// overhead. Throws only for invalid options.
    #[napi]
    pub fn parse_telemetry_packed(
        body: BufferSlice,
        mut out: BufferSlice,
        allowed_devices: Option<String>,
    ) -> Result<bool> {
        let (opts, ndjson, regions) = packed::read_options(&out, allowed_devices)
            .map_err(|e| Error::new(Status::InvalidArg, e.to_string()))?;
        let bytes: &[u8] = &body;
        let out: &mut [u8] = &mut out;
        // The parser is written not to panic; this only keeps a bug from taking the process down.
        let packed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            WORKSPACE.with_borrow_mut(|ws| {
                packed::pack(parser::parse_in(ws, bytes, &opts, ndjson), out, regions)
            })
        }))
        .unwrap_or_else(|_| {
            // A workspace left half-way by a panic is not reused.
            WORKSPACE.with_borrow_mut(|ws| *ws = Workspace::default());
            packed::pack(
                &Output::failed("internal parser error".into(), 0),
                out,
                regions,
            )
        });
        Ok(packed)
    }

    /// CRC32C of `data` (Kafka's record batch checksum), for kafkajs' producers: see `src/index.ts`.
    #[napi(js_name = "crc32c")]
    pub fn crc32c(data: BufferSlice) -> u32 {
        crate::crc32c::crc32c(&data)
    }
}
