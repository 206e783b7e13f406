//! `warpgate call`: run a locked plugin's function, for debugging plugins.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use anyhow::Context;
use warpgate::container::ContainerError;
use warpgate::id::Id;
use warpgate::loader::PluginLoader;
use warpgate::settings::{self, RuntimeSettings, Timeout};
use warpgate::{PluginContainer, PluginManifest};

use super::{CommandError, Failure, GlobalArgs, Outcome};

/// Arguments of `warpgate call`.
///
/// The plugin runs with the runtime settings of its `[plugins]` entry; each flag overrides the
/// entry's setting of the same name.
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The locked plugin's id.
    id: Id,
    /// The exported function to call.
    function: String,
    /// The input bytes (for JSON functions, a JSON document); read from stdin when absent
    /// and stdin is not a terminal.
    input: Option<String>,
    /// Set an Extism config value for the plugin (repeatable). (`--config` names the
    /// config file.)
    #[arg(long = "plugin-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    plugin_config: Vec<(String, String)>,
    /// Let WASI open the host folder HOST as GUEST (default: the same path) (repeatable).
    #[arg(long = "allow-path", value_name = "HOST[:GUEST]")]
    allow_paths: Vec<String>,
    /// Let the plugin's HTTP requests reach hosts matching PATTERN, such as `api.example.com`
    /// or `*.example.com` (repeatable).
    #[arg(long = "allow-host", value_name = "PATTERN")]
    allow_hosts: Vec<String>,
    /// Cap the plugin's memory: a size such as `64 MiB`, or `none` [default: the entry's
    /// `memory`, else 1 GiB].
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// Stop the call after this long: `500ms`, `30s`, `2m` (a bare number is seconds), or
    /// `none` for no limit [default: the entry's `timeout`, else 30s].
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// Run the plugin without WASI.
    #[arg(long)]
    no_wasi: bool,
}

/// `warpgate call`'s memory cap when neither the entry nor `--memory` sets one.
const DEFAULT_MEMORY: &str = "1 GiB";
/// `warpgate call`'s timeout when neither the entry nor `--timeout` sets one.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .filter(|(key, _)| !key.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, found `{text}`"))
}

impl CallArgs {
    /// The plugin's settings: its entry's, with relative host folders taken from the config's
    /// folder, then the flags, then `warpgate call`'s defaults for limits nobody set.
    fn settings(
        &self,
        declared: &RuntimeSettings,
        config_root: &std::path::Path,
    ) -> anyhow::Result<RuntimeSettings> {
        let mut settings = declared.clone();
        settings.allowed_paths = declared
            .allowed_paths
            .iter()
            .map(|(host, guest)| {
                (
                    config_root.join(host).to_string_lossy().into_owned(),
                    guest.clone(),
                )
            })
            .collect();
        settings.config.extend(self.plugin_config.iter().cloned());
        for path in &self.allow_paths {
            // The guest path is absolute (`/data`), so a `:` in the host path (`C:\\data`)
            // never splits it.
            let (host, guest) = path
                .rsplit_once(':')
                .filter(|(_, guest)| guest.starts_with('/'))
                .unwrap_or((path, path));
            settings
                .allowed_paths
                .insert(host.to_string(), guest.to_string());
        }
        settings
            .allowed_hosts
            .extend(self.allow_hosts.iter().cloned());
        match self.memory.as_deref() {
            Some(size) if size.eq_ignore_ascii_case("none") => settings.memory_max_pages = None,
            Some(size) => {
                settings.memory_max_pages = Some(
                    settings::parse_memory(size)
                        .map_err(|error| anyhow::anyhow!("invalid `--memory`: {error}"))?,
                );
            }
            None if settings.memory_max_pages.is_none() => {
                settings.memory_max_pages = settings::parse_memory(DEFAULT_MEMORY).ok();
            }
            None => {}
        }
        if let Some(timeout) = &self.timeout {
            // A bare number is seconds, as this flag took before it took units.
            let timeout = match timeout.parse::<u64>() {
                Ok(seconds) => format!("{seconds}s"),
                Err(_) => timeout.clone(),
            };
            settings.timeout = Some(
                settings::parse_timeout(&timeout)
                    .map_err(|error| anyhow::anyhow!("invalid `--timeout`: {error}"))?,
            );
        }
        settings
            .timeout
            .get_or_insert(Timeout::After(DEFAULT_TIMEOUT));
        if self.no_wasi {
            settings.wasi = Some(false);
        }
        Ok(settings)
    }
}

/// Runs `warpgate call`: loads the plugin's pinned bytes (verified, through the cache) and
/// prints the function's output on stdout.
pub async fn run(global: &GlobalArgs, args: CallArgs) -> Result<Outcome, Failure> {
    let config = global.load_config()?;
    let lock_path = config.lockfile_path();
    let lockfile = warpgate::lock::read_locked(&config, "`warpgate call`")?;
    let Some(locked) = lockfile.plugins.get(&args.id).cloned() else {
        return Err(warpgate::edit::EditError::NotDeclared {
            id: args.id,
            path: config.path,
        }
        .into());
    };
    let cache = warpgate::cache::Cache::from_env()?;
    let mut http_options = warpgate::http::HttpOptions::from_env()?;
    if let Some(reason) = global.offline_reason() {
        http_options.offline = Some(reason);
    }
    let offline = http_options.offline.clone();
    let http = warpgate::http::HttpClient::new(http_options)?;
    let loader = PluginLoader::with_http(cache.root(), std::env::temp_dir(), http, offline)
        .with_lockfile(lockfile, &lock_path);
    let path = loader.load_plugin(&args.id, &locked.locator).await?;

    let input = match &args.input {
        Some(input) => input.clone().into_bytes(),
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
    let declared = config
        .plugins
        .get(&args.id)
        .map(|entry| entry.settings.clone())
        .unwrap_or_default();
    let settings = args.settings(&declared, config.root())?;
    let container = PluginContainer::builder(args.id.clone(), manifest)
        .settings(&settings)
        .build()
        .map_err(|error| container_failure(error, &settings))?;
    let output = container
        .call(&args.function, input)
        .map_err(|error| container_failure(error, &settings))?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&output)
        .context("failed to write to stdout")?;
    if std::io::stdout().is_terminal() && !output.ends_with(b"\n") {
        let _ = writeln!(stdout);
    }
    Ok(Outcome::Success)
}

/// A container error as `warpgate call` reports it: the plugin's own exit status becomes the
/// process's, and hints name the entry's key or the flag that changes the outcome.
fn container_failure(error: ContainerError, settings: &RuntimeSettings) -> Failure {
    let hint = match &error {
        ContainerError::Exited { code, .. } => {
            let code = u8::try_from(*code).unwrap_or(u8::MAX);
            return Failure::with_code(anyhow::Error::new(error), code);
        }
        ContainerError::Timeout { .. } => Some(
            "raise `timeout` in the plugin's entry, or pass `--timeout DURATION` (`none` for no limit)",
        ),
        ContainerError::MemoryExceeded { .. } => Some(
            "raise `memory` in the plugin's entry, or pass `--memory SIZE` (`none` for no cap)",
        ),
        ContainerError::Incompatible { missing, .. }
            if missing
                .iter()
                .any(|name| name.starts_with("wasi_snapshot_preview1::")) =>
        {
            Some(if settings.wasi == Some(false) {
                "the plugin needs WASI: drop `--no-wasi`, or `wasi = false` from its entry"
            } else {
                "the plugin needs WASI"
            })
        }
        ContainerError::Incompatible { .. } => Some(
            "the plugin needs host functions that only the application it was written for provides; `warpgate call` cannot run it",
        ),
        ContainerError::PluginFailed { message, .. }
            if message.contains("http_request") || message.contains("not allowed") =>
        {
            Some(
                "let the plugin reach the host: add it to `allowed_hosts` in the plugin's entry, or pass `--allow-host HOST`",
            )
        }
        _ => None,
    };
    let details = match &error {
        ContainerError::PluginFailed { details, .. } => Some(details.clone()),
        _ => None,
    };
    let mut message = error.to_string();
    if let Some(details) = details
        && tracing::enabled!(tracing::Level::INFO)
    {
        message = format!("{message}\n{details}");
    }
    // The library's hints speak to an application's code; these name the entry's keys and
    // this command's flags instead.
    Failure::from(CommandError::maybe_hinted(
        message,
        hint.map(str::to_string),
    ))
}
