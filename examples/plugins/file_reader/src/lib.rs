//! `file_reader` (wasm32-wasip1): reads a file through WASI.
//!
//! The export is `read_file`, not `read`: a `#[plugin_fn]` export is an unmangled symbol, and on
//! `wasm32-wasip1` one named `read` replaces wasi-libc's `read(2)`, which `std::fs` calls, so the
//! function would end up calling itself.

use extism_pdk::*;

/// Takes a path (UTF-8 string input) and returns the file's bytes. Only paths that the manifest's
/// `allowed_paths` maps into the guest can be opened; anything else fails with the WASI error.
#[plugin_fn]
pub fn read_file(path: String) -> FnResult<Vec<u8>> {
    std::fs::read(&path)
        .map_err(|error| Error::msg(format!("cannot read `{path}`: {error}")).into())
}
