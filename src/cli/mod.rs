//! Argument parsing, dispatch, output conventions and exit codes.
//!
//! Conventions: data a script would pipe goes to stdout (`--json` shapes included); status,
//! progress, `warning:` and `hint:` lines go to stderr. Exit codes: 0 ok, 1 a check failed
//! (stale lock, checksum mismatch, outdated with `--exit-code`), 2 usage or other errors.

mod cache;
mod call;
mod edit;
mod error;
mod fetch;
mod json;
mod list;
mod lock;
mod mirror;
mod output;
mod progress;
mod publish;
mod update;
mod vendor;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::{CommandError, Failure, Outcome};
pub use output::Output;

/// Declare, lock, vendor and run Extism WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "warpgate", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Flags every command accepts.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Use this config file instead of searching for `warpgate.toml` upward from the
    /// current folder (a `Cargo.toml` means its `[*.metadata.warpgate]` table).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Fail instead of changing `warpgate.lock`.
    #[arg(long, global = true)]
    locked: bool,
    /// Open no network connection (also `WARPGATE_OFFLINE=1`, `CARGO_NET_OFFLINE=true`).
    #[arg(long, global = true)]
    offline: bool,
    /// `--locked` and `--offline` together.
    #[arg(long, global = true)]
    frozen: bool,
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more detail (`-vv` for debug tracing; `RUST_LOG` also works).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Resolve every plugin in the config and write `warpgate.lock`.
    Lock(lock::LockArgs),
    /// Download and verify every locked plugin into the cache (no API calls).
    Fetch(fetch::FetchArgs),
    /// Write a commented `warpgate.toml` (never over an existing one).
    Init(edit::InitArgs),
    /// Declare a plugin in the config and lock it.
    Add(edit::AddArgs),
    /// Remove a plugin from the config and the lock.
    Remove(edit::RemoveArgs),
    /// Re-resolve floating entries and print `id: old -> new` for each change.
    Update(update::UpdateArgs),
    /// Show, per GitHub plugin, the locked, newest matching and newest releases.
    Outdated(update::OutdatedArgs),
    /// Copy every locked plugin into a vendor directory (default `WARPGATE_VENDOR_DIR`, else
    /// `vendor/warpgate/`).
    Vendor(vendor::VendorArgs),
    /// Check the cache and the vendor directory against the lock, without network.
    Verify(vendor::VerifyArgs),
    /// List declared plugins with their locked version, checksum, size and cache state.
    List(list::ListArgs),
    /// Inspect or clean the plugin cache.
    Cache(cache::CacheArgs),
    /// Run a locked plugin's function and print its output (for debugging plugins).
    Call(call::CallArgs),
    /// Push a `.wasm` plugin to an OCI registry as `registry://HOST/NAMESPACE/IMAGE:TAG`
    /// and print its manifest digest.
    Publish(publish::PublishArgs),
    /// Copy every locked plugin into the team mirror (`mirror push registry://HOST/NAMESPACE`).
    Mirror(mirror::MirrorArgs),
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

impl GlobalArgs {
    /// Why the network is disabled, naming the flag or variable, if it is.
    pub fn offline_reason(&self) -> Option<String> {
        if self.frozen {
            return Some("`--frozen`".into());
        }
        if self.offline {
            return Some("`--offline`".into());
        }
        warpgate::env::offline_reason()
    }

    /// The flag that forbids changing the lock, if any.
    pub fn locked_flag(&self) -> Option<String> {
        if self.frozen {
            Some("`--frozen`".into())
        } else if self.locked {
            Some("`--locked`".into())
        } else {
            None
        }
    }

    /// The config named by `--config`, else the one found from the current folder.
    pub fn load_config(&self) -> Result<warpgate::config::Config, Failure> {
        let config = match &self.config {
            Some(path) => warpgate::config::Config::load(path)?,
            None => warpgate::config::Config::discover(&std::env::current_dir()?)?,
        };
        Ok(config)
    }

    /// The config, loaded while holding the project's cross-process lock (returned), for
    /// commands that change the config or the lockfile.
    pub fn load_config_exclusive(
        &self,
    ) -> Result<(warpgate::config::Config, warpgate::fs::FileLock), Failure> {
        let config = self.load_config()?;
        let lock = anyhow::Context::with_context(
            warpgate::fs::lock_project_folder(config.root()),
            || {
                format!(
                    "failed to lock the project in `{}`",
                    config.root().display()
                )
            },
        )?;
        // Another process may have changed the config while we waited.
        Ok((self.load_config()?, lock))
    }

    /// A GitHub client over `fetcher`'s HTTP client, keeping API answers in `fetcher`'s cache
    /// for conditional requests.
    pub fn github(&self, fetcher: &warpgate::fetch::Fetcher) -> warpgate::github::GitHubClient {
        warpgate::github::GitHubClient::new(fetcher.http().clone())
            .with_api_cache(warpgate::api_cache::ApiCache::new(fetcher.cache()))
    }

    /// A fetcher over the environment's cache, offline as the flags say, drawing progress
    /// on `output`.
    pub fn fetcher(&self, output: &Output) -> Result<warpgate::fetch::Fetcher, Failure> {
        let cache = warpgate::cache::Cache::from_env()?;
        let options = warpgate::http::HttpOptions {
            offline: self.offline_reason(),
            ..warpgate::http::HttpOptions::default().with_limits_from_env()?
        };
        let http = warpgate::http::HttpClient::new(options)?;
        Ok(warpgate::fetch::Fetcher::new(cache, http).with_reporter(output.reporter()))
    }
}

impl GlobalArgs {
    /// [`GlobalArgs::fetcher`] trying `config`'s team mirror (or `WARPGATE_MIRROR`) first.
    pub fn fetcher_for(
        &self,
        output: &Output,
        config: &warpgate::config::Config,
    ) -> Result<warpgate::fetch::Fetcher, Failure> {
        let mirror = warpgate::oci::mirror::for_config(config)?;
        Ok(self.fetcher(output)?.with_mirror(mirror))
    }
}

/// Runs the tool and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = Output::new(cli.global.quiet, cli.global.verbose);
    output.init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            output.error(&anyhow::Error::from(error));
            return ExitCode::from(2);
        }
    };
    runtime.spawn(exit_on_interrupt());
    let result = runtime.block_on(run(cli, &output));
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(1),
        Err(failure) => {
            output.error(&failure.error);
            ExitCode::from(failure.code)
        }
    }
}

/// On Ctrl-C (or `SIGTERM`), deletes the temp files being written and exits at once with the
/// shell's code for the signal, so an interrupted download leaves nothing in the cache.
async fn exit_on_interrupt() {
    #[cfg(unix)]
    let code = {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! {
            _ = interrupt.recv() => 130,
            _ = terminate.recv() => 143,
        }
    };
    #[cfg(not(unix))]
    let code = match tokio::signal::ctrl_c().await {
        Ok(()) => 130,
        Err(_) => return,
    };
    warpgate::fs::remove_temp_files();
    std::process::exit(code);
}

async fn run(cli: Cli, output: &Output) -> Result<Outcome, Failure> {
    match cli.command {
        Command::Lock(args) => lock::run(&cli.global, args, output).await,
        Command::Fetch(args) => fetch::run(&cli.global, args, output).await,
        Command::Init(args) => edit::init(args, output),
        Command::Add(args) => edit::add(&cli.global, args, output).await,
        Command::Remove(args) => edit::remove(&cli.global, args, output),
        Command::Update(args) => update::update(&cli.global, args, output).await,
        Command::Outdated(args) => update::outdated(&cli.global, args, output).await,
        Command::List(args) => list::run(&cli.global, args),
        Command::Vendor(args) => vendor::vendor(&cli.global, args, output).await,
        Command::Verify(args) => vendor::verify(&cli.global, args, output),
        Command::Cache(args) => cache::run(&cli.global, args, output),
        Command::Call(args) => call::run(&cli.global, args).await,
        Command::Publish(args) => publish::run(&cli.global, args, output).await,
        Command::Mirror(args) => mirror::run(&cli.global, args, output).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "warpgate",
                &mut std::io::stdout(),
            );
            Ok(Outcome::Success)
        }
    }
}
