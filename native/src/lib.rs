#![deny(clippy::all)]
//! fleetpulse native addon: `parseTelemetry(body, opts)` for the ingestion service. The parser core lives in
//! `parser` and has no Node dependency; `binding` maps its results to JavaScript values and its failures to
//! JavaScript, in one place. The core's `ParseOptions` and `RejectedEvent` are taken and given as they are
//! (`napi(object)` under the `node` feature), so their fields are declared once.

#[cfg(feature = "node")]
mod js_buffers;
pub mod parser;

#[cfg(feature = "node")]
pub mod binding {
    use crate::js_buffers::{CopiedBuffer, CopiedU32};
    use crate::parser::{self, Output, ParseOptions, RejectedEvent};
    use napi::bindgen_prelude::*;
    use napi_derive::napi;

    #[napi(object, object_from_js = false)]
    pub struct ParseResult {
        pub ok: bool,
        pub error: Option<String>,
        pub offset: Option<u32>,
        pub too_many_events: Option<bool>,
        pub accepted: u32,
        /// Distinct device ids in order of first appearance.
        pub unique_keys: Vec<String>,
        /// Record i's key is `uniqueKeys[keyIds[i]]`. The JS wrapper expands this into `keys`: setting 500
        /// array elements through N-API cost more than the JIT-compiled loop does.
        #[napi(ts_type = "Uint32Array")]
        pub key_ids: CopiedU32,
        #[napi(ts_type = "Buffer")]
        pub values: CopiedBuffer,
        #[napi(ts_type = "Uint32Array")]
        pub value_ends: CopiedU32,
        #[napi(ts_type = "Uint32Array")]
        pub event_counts: CopiedU32,
        pub rejected: Vec<RejectedEvent>,
    }

    /// Parses, validates and normalises a telemetry body into Kafka records. Returns a result for any body;
    /// throws only for invalid options.
    #[napi]
    pub fn parse_telemetry(body: BufferSlice, opts: ParseOptions) -> Result<ParseResult> {
        let bytes: &[u8] = &body;
        // The parser is written not to panic; this only keeps a bug from taking the process down.
        let parsed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parser::parse(bytes, &opts)));
        match parsed {
            Ok(Ok(out)) => Ok(to_js(out)),
            Ok(Err(invalid)) => Err(Error::new(Status::InvalidArg, invalid.to_string())),
            Err(_) => Ok(to_js(Output::failed("internal parser error".into(), 0))),
        }
    }

    fn to_js(o: Output) -> ParseResult {
        ParseResult {
            ok: o.ok,
            error: o.error,
            offset: o.offset,
            too_many_events: o.too_many_events.then_some(true),
            accepted: o.accepted,
            unique_keys: o.unique_keys,
            key_ids: CopiedU32(o.key_ids),
            values: CopiedBuffer(o.values),
            value_ends: CopiedU32(o.value_ends),
            event_counts: CopiedU32(o.event_counts),
            rejected: o.rejected,
        }
    }
}
