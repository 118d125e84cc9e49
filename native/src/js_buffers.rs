//! Result vectors copied into V8-owned memory. Handing V8 the Rust allocation (napi's default for `Buffer`) makes
//! an external buffer with a finaliser per call; under load those pile up until a GC and throughput halved in a
//! tight loop. A 60 KB memcpy is cheaper.
//!
//! Separate from the binding because it is raw N-API (unsafe pointers), not the mapping of parser results.

use napi::bindgen_prelude::*;

/// Copied into a V8-owned Buffer.
pub struct CopiedBuffer(pub Vec<u8>);

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

/// Copied into a V8-owned Uint32Array.
pub struct CopiedU32(pub Vec<u32>);

impl ToNapiValue for CopiedU32 {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        let bytes = val.0.len() * 4;
        let mut data: *mut std::ffi::c_void = std::ptr::null_mut();
        let mut ab = std::ptr::null_mut();
        check_status!(sys::napi_create_arraybuffer(env, bytes, &mut data, &mut ab))?;
        if bytes > 0 {
            std::ptr::copy_nonoverlapping(val.0.as_ptr().cast::<u8>(), data.cast::<u8>(), bytes);
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
