//! An application that runs a plugin embedded at build time: no network, no plugin files on
//! disk. The first run on a machine compiles the plugin and keeps the machine code in
//! warpgate's compiled-module cache (`$WARPGATE_HOME/v1/compiled`); later runs load it.
//!
//! `build.rs` calls `warpgate_build::vendor()`, which checks `warpgate.lock` against
//! `warpgate.toml`, verifies the plugin's bytes and generates the module that
//! `warpgate::include_plugins!()` brings in here.
//!
//! ```text
//! cargo run -p warpgate-example-app -- 40 2
//! ```

use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use warpgate::embedded::EmbeddedPlugins;

/// Every plugin locked in `warpgate.lock`, embedded in the binary.
static PLUGINS: EmbeddedPlugins = warpgate::include_plugins!();

#[derive(Serialize)]
struct AddInput {
    left: i64,
    right: i64,
}

#[derive(Deserialize)]
struct AddOutput {
    sum: i64,
}

#[derive(Serialize)]
struct GreetInput<'a> {
    name: &'a str,
}

#[derive(Deserialize)]
struct GreetOutput {
    greeting: String,
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let left = args.next().map_or(Ok(40), |arg| arg.parse())?;
    let right = args.next().map_or(Ok(2), |arg| arg.parse())?;

    let plugin = PLUGINS.require("json_tools")?;
    eprintln!(
        "plugin `{}`: {} bytes, {}",
        plugin.id,
        plugin.bytes.len(),
        plugin.checksum
    );
    // Extism re-checks the bytes against the embedded checksum before they are compiled or
    // their compiled code is loaded from the cache.
    let container = plugin.container()?;

    let output: AddOutput = container.call_func_with("add", AddInput { left, right })?;
    println!("{left} + {right} = {}", output.sum);

    let output: GreetOutput = container.call_func_with("greet", GreetInput { name: "warpgate" })?;
    println!("{}", output.greeting);
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
