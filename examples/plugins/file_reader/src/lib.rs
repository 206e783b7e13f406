//! `file_reader` (wasm32-wasip1): reads a file through WASI.

use extism_pdk::*;

/// Takes a path (UTF-8 string input) and returns the file's bytes. Only paths that the manifest's
/// `allowed_paths` maps into the guest can be opened; anything else fails with the WASI error.
#[plugin_fn]
pub fn read(path: String) -> FnResult<Vec<u8>> {
    std::fs::read(&path)
        .map_err(|error| Error::msg(format!("cannot read `{path}`: {error}")).into())
}
