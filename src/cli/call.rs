//! `warpgate call`: run a locked plugin's function, for debugging plugins.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use anyhow::Context;
use warpgate::id::Id;
use warpgate::loader::PluginLoader;
use warpgate::lockfile::Lockfile;
use warpgate::{PluginContainer, PluginManifest};

use super::{Failure, GlobalArgs, Outcome};

/// Arguments of `warpgate call`.
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The locked plugin's id.
    id: Id,
    /// The exported function to call.
    function: String,
    /// The input bytes (for JSON functions, a JSON document); read from stdin when absent
    /// and stdin is not a terminal.
    input: Option<String>,
    /// Stop the call after this many seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    timeout: u64,
}

/// Runs `warpgate call`: loads the plugin's pinned bytes (verified, through the cache) and
/// prints the function's output on stdout.
pub async fn run(global: &GlobalArgs, args: CallArgs) -> Result<Outcome, Failure> {
    let config = global.load_config()?;
    let lock_path = config.lockfile_path();
    let lockfile = Lockfile::read(&lock_path)?.ok_or_else(|| {
        anyhow::anyhow!(
            "`{}` does not exist\nhint: run `warpgate lock` first",
            lock_path.display()
        )
    })?;
    warpgate::lock::check_locked(&config, Some(&lockfile), "`warpgate call`")?;
    let Some(locked) = lockfile.plugins.get(&args.id).cloned() else {
        return Err(anyhow::anyhow!(
            "plugin `{}` is not declared in `{}`\nhint: run `warpgate list` to see the declared plugins",
            args.id,
            config.path.display()
        )
        .into());
    };
    let cache = warpgate::cache::Cache::from_env()?;
    let mut http_options = warpgate::http::HttpOptions::from_env();
    if let Some(reason) = global.offline_reason() {
        http_options.offline = Some(reason);
    }
    let offline = http_options.offline.clone();
    let http = warpgate::http::HttpClient::new(http_options)?;
    let loader = PluginLoader::with_http(cache.root(), std::env::temp_dir(), http, offline)
        .with_lockfile(lockfile, &lock_path);
    let path = loader.load_plugin(&args.id, &locked.locator).await?;

    let input = match args.input {
        Some(input) => input.into_bytes(),
        None if !std::io::stdin().is_terminal() => {
            let mut buffer = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buffer)
                .context("failed to read the input from stdin")?;
            buffer
        }
        None => Vec::new(),
    };
    // The hash makes Extism re-check the bytes it reads.
    let manifest = PluginManifest::new([
        warpgate::container::Wasm::file(&path).with_hash(locked.checksum.hex())
    ]);
    let container = PluginContainer::builder(args.id.clone(), manifest)
        .timeout(Duration::from_secs(args.timeout))
        .build()?;
    let output = container.call(&args.function, input)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&output)
        .context("failed to write to stdout")?;
    if std::io::stdout().is_terminal() && !output.ends_with(b"\n") {
        let _ = writeln!(stdout);
    }
    Ok(Outcome::Success)
}
