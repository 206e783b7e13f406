//! `host_caller`: calls a host function that the embedding application must provide.

use extism_pdk::*;
use serde::{Deserialize, Serialize};

#[host_fn]
extern "ExtismHost" {
    /// Provided by the host (namespace `extism:host/user`). As with every `#[host_fn]`, the
    /// argument and the result travel through Extism memory: one `PTR` in, one `PTR` out, each
    /// pointing at an `i64` in little-endian bytes.
    fn host_double(value: i64) -> i64;
}

#[derive(Deserialize)]
struct Input {
    value: i64,
}

#[derive(Serialize)]
struct Output {
    doubled: i64,
}

/// `{"value": i64}` -> `{"doubled": i64}`, computed by the host's `host_double`.
#[plugin_fn]
pub fn double_via_host(Json(input): Json<Input>) -> FnResult<Json<Output>> {
    let doubled = unsafe { host_double(input.value)? };
    Ok(Json(Output { doubled }))
}
