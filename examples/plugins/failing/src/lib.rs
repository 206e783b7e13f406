//! `failing`: always returns an Extism error.

use extism_pdk::*;

/// Fails with the message `deliberate failure: <input>` (the input read as UTF-8, lossily).
#[plugin_fn]
pub fn fail(input: Vec<u8>) -> FnResult<()> {
    Err(Error::msg(format!(
        "deliberate failure: {}",
        String::from_utf8_lossy(&input)
    ))
    .into())
}
