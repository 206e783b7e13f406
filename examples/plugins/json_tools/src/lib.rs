//! `json_tools`: small JSON functions used by warpgate's `PluginContainer` tests and benches.

use extism_pdk::*;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct AddInput {
    left: i64,
    right: i64,
}

#[derive(Serialize)]
struct AddOutput {
    sum: i64,
}

#[derive(Deserialize)]
struct GreetInput {
    name: String,
}

#[derive(Serialize)]
struct GreetOutput {
    greeting: String,
}

/// `{"left": i64, "right": i64}` -> `{"sum": i64}`.
#[plugin_fn]
pub fn add(Json(input): Json<AddInput>) -> FnResult<Json<AddOutput>> {
    Ok(Json(AddOutput {
        sum: input.left.wrapping_add(input.right),
    }))
}

/// Returns its input bytes unchanged.
#[plugin_fn]
pub fn echo(input: Vec<u8>) -> FnResult<Vec<u8>> {
    Ok(input)
}

/// `{"name": "..."}` -> `{"greeting": "<prefix>, <name>!"}`, the prefix being the manifest
/// config value `greeting` (default `Hello`).
#[plugin_fn]
pub fn greet(Json(input): Json<GreetInput>) -> FnResult<Json<GreetOutput>> {
    let prefix = config::get("greeting")?.unwrap_or_else(|| "Hello".to_string());
    Ok(Json(GreetOutput {
        greeting: format!("{prefix}, {}!", input.name),
    }))
}

/// Counts its own calls on this plugin instance (kept in a plugin var) and returns the count,
/// this call included, as a JSON number: 1 on the first call.
#[plugin_fn]
pub fn count() -> FnResult<Json<i64>> {
    let count = var::get::<i64>("count")?.unwrap_or(0) + 1;
    var::set("count", count)?;
    Ok(Json(count))
}
