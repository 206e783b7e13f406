//! `settings` (wasm32-wasip1): a plugin that needs what real hosts give plugins: Extism config
//! values, mapped folders, HTTP to allowed hosts, logs, a WASI exit status and memory.
//!
//! Exports are named `*_file`, not `read`/`write`: on `wasm32-wasip1` an unmangled `read`
//! replaces wasi-libc's `read(2)`, which `std::fs` calls.

use extism_pdk::*;
use serde::Deserialize;

/// `greeting` from the config (default `Hello`), then the input name: `Howdy, Ferris!`.
#[plugin_fn]
pub fn greet(name: String) -> FnResult<String> {
    let greeting = config::get("greeting")?.unwrap_or_else(|| "Hello".to_string());
    Ok(format!("{greeting}, {name}!"))
}

/// The config value named by the input, or an error naming the missing key.
#[plugin_fn]
pub fn config_value(key: String) -> FnResult<String> {
    config::get(&key)?.ok_or_else(|| Error::msg(format!("no config value `{key}`")).into())
}

#[derive(Deserialize)]
struct WriteInput {
    path: String,
    text: String,
}

/// Writes `text` to `path` (a guest path in a mapped folder).
#[plugin_fn]
pub fn write_file(Json(input): Json<WriteInput>) -> FnResult<()> {
    std::fs::write(&input.path, input.text)
        .map_err(|error| Error::msg(format!("cannot write `{}`: {error}", input.path)).into())
}

/// The text of the file at the input path.
#[plugin_fn]
pub fn read_file(path: String) -> FnResult<String> {
    std::fs::read_to_string(&path)
        .map_err(|error| Error::msg(format!("cannot read `{path}`: {error}")).into())
}

/// `GET`s the input URL through the host and returns `<status> <body>`.
#[plugin_fn]
pub fn http_get(url: String) -> FnResult<String> {
    let response = http::request::<()>(&HttpRequest::new(&url), None)?;
    Ok(format!(
        "{} {}",
        response.status_code(),
        String::from_utf8_lossy(&response.body())
    ))
}

/// Logs the input once at each level, from trace to error.
#[plugin_fn]
pub fn log_all(text: String) -> FnResult<()> {
    trace!("trace: {text}");
    debug!("debug: {text}");
    info!("info: {text}");
    warn!("warn: {text}");
    error!("error: {text}");
    Ok(())
}

/// Exits the WebAssembly process with the input as its status.
#[plugin_fn]
pub fn exit_with(code: String) -> FnResult<()> {
    let code: i32 = code.trim().parse()?;
    std::process::exit(code)
}

/// Allocates the input number of MiB, touches every page, and returns how many were taken.
#[plugin_fn]
pub fn grow(mebibytes: String) -> FnResult<String> {
    let mebibytes: usize = mebibytes.trim().parse()?;
    let mut memory = vec![0_u8; mebibytes * 1024 * 1024];
    for page in memory.chunks_mut(4096) {
        page[0] = 1;
    }
    Ok(memory.iter().filter(|byte| **byte == 1).count().to_string())
}
