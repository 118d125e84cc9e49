#![deny(clippy::all)]
//! fleetpulse native addon: `parseTelemetry(body, opts)` for the ingestion service. The parser core lives in
//! `parser` and has no Node dependency; this file only maps it to and from JavaScript values.

pub mod parser;

#[cfg(feature = "node")]
pub mod binding {
    use crate::parser::{self, Options, Output};
    use napi::bindgen_prelude::*;
    use napi_derive::napi;

    #[napi(object)]
    pub struct ParseOptions {
        /// `json` (one object or an array) or `ndjson` (one event per line).
        pub content_type: String,
        /// Epoch ms stamped on every accepted event as `receivedAt`.
        pub received_at: f64,
        /// Epoch ms the `ts` bounds are relative to (a parameter, so results are reproducible).
        pub now_ms: f64,
        pub max_future_ms: f64,
        pub max_past_ms: f64,
        pub max_events: u32,
        pub group_by_device: bool,
        /// Glob of the device ids the token may send for (`*`, `?`); absent allows every device.
        pub allowed_devices: Option<String>,
    }

    #[napi(object, object_from_js = false)]
    pub struct RejectedEvent {
        pub index: u32,
        pub error: String,
        pub start: u32,
        pub end: u32,
    }

    /// Copied into a V8-owned Buffer. Handing V8 the Rust allocation (napi's default for `Buffer`) makes
    /// an external buffer with a finaliser per call; under load those pile up until a GC and throughput
    /// halved in a tight loop. A 60 KB memcpy is cheaper.
    pub struct CopiedBuffer(Vec<u8>);

    impl ToNapiValue for CopiedBuffer {
        unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
            let mut ret = std::ptr::null_mut();
            let mut data = std::ptr::null_mut();
            if val.0.is_empty() {
                check_status!(sys::napi_create_buffer(env, 0, &mut data, &mut ret))?;
            } else {
                check_status!(sys::napi_create_buffer_copy(
                    env,
                    val.0.len(),
                    val.0.as_ptr().cast(),
                    &mut data,
                    &mut ret
                ))?;
            }
            Ok(ret)
        }
    }

    /// Copied into a V8-owned Uint32Array, for the same reason as `CopiedBuffer`.
    pub struct CopiedU32(Vec<u32>);

    impl ToNapiValue for CopiedU32 {
        unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
            let bytes = val.0.len() * 4;
            let mut data: *mut std::ffi::c_void = std::ptr::null_mut();
            let mut ab = std::ptr::null_mut();
            check_status!(sys::napi_create_arraybuffer(env, bytes, &mut data, &mut ab))?;
            if bytes > 0 {
                std::ptr::copy_nonoverlapping(
                    val.0.as_ptr().cast::<u8>(),
                    data.cast::<u8>(),
                    bytes,
                );
            }
            let mut ret = std::ptr::null_mut();
            check_status!(sys::napi_create_typedarray(
                env,
                sys::TypedarrayType::uint32_array,
                val.0.len(),
                ab,
                0,
                &mut ret
            ))?;
            Ok(ret)
        }
    }

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
        let ndjson = match opts.content_type.as_str() {
            "json" => false,
            "ndjson" => true,
            _ => {
                return Err(Error::new(
                    Status::InvalidArg,
                    "contentType must be 'json' or 'ndjson'",
                ))
            }
        };
        let options = Options {
            ndjson,
            received_at: opts.received_at,
            now_ms: opts.now_ms,
            max_future_ms: opts.max_future_ms,
            max_past_ms: opts.max_past_ms,
            max_events: opts.max_events,
            group_by_device: opts.group_by_device,
            allowed_devices: opts.allowed_devices.as_deref().map(str::as_bytes),
        };
        let bytes: &[u8] = &body;
        // The parser is written not to panic; this only keeps a bug from taking the process down.
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            parser::parse(bytes, &options)
        }))
        .unwrap_or_else(|_| Output {
            ok: false,
            error: Some("internal parser error".into()),
            offset: Some(0),
            ..Default::default()
        });
        Ok(to_js(out))
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
            rejected: o
                .rejected
                .into_iter()
                .map(|r| RejectedEvent {
                    index: r.index,
                    error: r.error,
                    start: r.start,
                    end: r.end,
                })
                .collect(),
        }
    }
}
