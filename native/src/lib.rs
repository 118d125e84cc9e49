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
    use napi::sys;
    use napi_derive::napi;
    use std::cell::RefCell;
    use std::ffi::CString;
    use std::ptr;

    thread_local! {
        /// One per thread (a worker thread has its own), reused by every call on it.
        static WORKSPACE: RefCell<Workspace> = RefCell::default();
    }

    /// Parses, validates and normalises a telemetry body and packs the result into `out` (layout and regions
    /// in `parser/packed.rs`). Returns whether it did: if not, only the header's sizes were written, and the
    /// caller makes room and calls again. The options other than the device glob are written by the caller into
    /// `out`'s first 48 bytes (`packed::read_options`): as N-API arguments they were a third of a one-event call's
    /// overhead. Throws only for invalid arguments.
    fn parse_telemetry_packed(
        body: &[u8],
        out: &mut [u8],
        allowed_devices: Option<String>,
    ) -> Result<bool> {
        let (opts, ndjson, regions) = packed::read_options(out, allowed_devices)
            .map_err(|e| Error::new(Status::InvalidArg, e.to_string()))?;
        // The parser is written not to panic; this only keeps a bug from taking the process down.
        let packed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            WORKSPACE.with_borrow_mut(|ws| {
                packed::pack(parser::parse_in(ws, body, &opts, ndjson), out, regions)
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

    /// `parseTelemetryPacked(body, out, allowedDevices)`, registered by hand (`init`) rather than by
    /// `#[napi]`: the generated callback opens, finishes and closes a borrow-tracking scope on every call
    /// (thread-local bookkeeping and allocations, ~10% of a one-event call in the profile), which a function
    /// that keeps nothing past its return does not need.
    unsafe extern "C" fn parse_telemetry_packed_raw(
        env: sys::napi_env,
        info: sys::napi_callback_info,
    ) -> sys::napi_value {
        let res = (|| -> Result<bool> {
            let mut argc = 3usize;
            let mut argv = [ptr::null_mut(); 3];
            check(
                sys::napi_get_cb_info(
                    env,
                    info,
                    &mut argc,
                    argv.as_mut_ptr(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                ),
                "expected (body, out, allowedDevices)",
            )?;
            // Missing arguments read as undefined (`napi_get_cb_info` fills argv so), which fail below.
            let (bp, blen) = buffer(env, argv[0], "body: expected a Buffer")?;
            let (op, olen) = buffer(env, argv[1], "out: expected a Buffer")?;
            let allowed = string_or_none(env, argv[2])?;
            // `body` is read while `out` is written: views of the same memory would alias.
            if blen != 0
                && olen != 0
                && (bp as usize) < op as usize + olen
                && (op as usize) < bp as usize + blen
            {
                return Err(Error::new(
                    Status::InvalidArg,
                    "out: must not overlap body".to_string(),
                ));
            }
            // SAFETY: N-API's pointers to the two Buffers' bytes, valid for the call (nothing here runs
            // JavaScript or lets the buffers go), and not overlapping (above). A zero length may come with any
            // pointer: then no slice is made from it.
            let body: &[u8] = if blen == 0 {
                &[]
            } else {
                std::slice::from_raw_parts(bp.cast(), blen)
            };
            let out: &mut [u8] = if olen == 0 {
                &mut []
            } else {
                std::slice::from_raw_parts_mut(op.cast(), olen)
            };
            parse_telemetry_packed(body, out, allowed)
        })();
        let mut ret = ptr::null_mut();
        match res {
            Ok(v) => {
                sys::napi_get_boolean(env, v, &mut ret);
            }
            Err(e) => {
                let code = CString::new(format!("{}", e.status)).unwrap_or_default();
                let msg = CString::new(e.reason.clone()).unwrap_or_default();
                sys::napi_throw_error(env, code.as_ptr(), msg.as_ptr());
            }
        }
        ret
    }

    fn check(status: sys::napi_status, what: &str) -> Result<()> {
        if status == sys::Status::napi_ok {
            Ok(())
        } else {
            Err(Error::new(Status::InvalidArg, what.to_string()))
        }
    }

    unsafe fn buffer(
        env: sys::napi_env,
        v: sys::napi_value,
        what: &str,
    ) -> Result<(*mut std::ffi::c_void, usize)> {
        let mut is = false;
        check(sys::napi_is_buffer(env, v, &mut is), what)?;
        if !is {
            return Err(Error::new(Status::InvalidArg, what.to_string()));
        }
        let mut p = ptr::null_mut();
        let mut len = 0usize;
        check(sys::napi_get_buffer_info(env, v, &mut p, &mut len), what)?;
        Ok((p, len))
    }

    /// A string as UTF-8, or `None` for undefined and null (what `Option<String>` accepted).
    unsafe fn string_or_none(env: sys::napi_env, v: sys::napi_value) -> Result<Option<String>> {
        const WHAT: &str = "allowedDevices: expected a string";
        let mut t = 0;
        check(sys::napi_typeof(env, v, &mut t), WHAT)?;
        if t == sys::ValueType::napi_undefined || t == sys::ValueType::napi_null {
            return Ok(None);
        }
        if t != sys::ValueType::napi_string {
            return Err(Error::new(Status::StringExpected, WHAT.to_string()));
        }
        let mut len = 0usize;
        check(
            sys::napi_get_value_string_utf8(env, v, ptr::null_mut(), 0, &mut len),
            WHAT,
        )?;
        let mut bytes = vec![0u8; len + 1];
        check(
            sys::napi_get_value_string_utf8(env, v, bytes.as_mut_ptr().cast(), len + 1, &mut len),
            WHAT,
        )?;
        bytes.truncate(len);
        // N-API writes UTF-8 (lone surrogates as U+FFFD).
        Ok(Some(String::from_utf8(bytes).map_err(|_| {
            Error::new(Status::StringExpected, WHAT.to_string())
        })?))
    }

    /// Adds the hand-registered functions to the module's exports.
    #[napi(module_exports)]
    pub fn init(exports: Object, env: Env) -> Result<()> {
        let raw_env = env.raw();
        let mut f = ptr::null_mut();
        let name = c"parseTelemetryPacked";
        // SAFETY: plain N-API calls on this module's env during its initialisation.
        unsafe {
            check(
                sys::napi_create_function(
                    raw_env,
                    name.as_ptr(),
                    name.to_bytes().len() as isize,
                    Some(parse_telemetry_packed_raw),
                    ptr::null_mut(),
                    &mut f,
                ),
                "napi_create_function",
            )?;
            check(
                sys::napi_set_named_property(raw_env, exports.raw(), name.as_ptr(), f),
                "napi_set_named_property",
            )?;
        }
        Ok(())
    }

    /// CRC32C of `data` (Kafka's record batch checksum), for kafkajs' producers: see `src/index.ts`.
    #[napi(js_name = "crc32c")]
    pub fn crc32c(data: BufferSlice) -> u32 {
        crate::crc32c::crc32c(&data)
    }
}
