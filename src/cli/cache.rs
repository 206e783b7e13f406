//! `warpgate cache dir | clean | prune`.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::Context;
use warpgate::cache::Cache;
use warpgate::config::ConfigError;
use warpgate::container::CompileCache;
use warpgate::lockfile::Lockfile;

use super::{CommandError, Failure, GlobalArgs, Outcome, Output};

/// Arguments of `warpgate cache`.
#[derive(Debug, clap::Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CacheCommand {
    /// Print the cache folder.
    Dir,
    /// Delete the whole cache (downloaded plugins and compiled machine code).
    Clean,
    /// Delete every blob that none of the given lockfiles references, and the compiled code of
    /// those plugins and of older wasmtime or Extism versions.
    Prune {
        /// Lockfiles whose plugins to keep (default: this project's `warpgate.lock`).
        #[arg(long = "lockfile", value_name = "PATH")]
        lockfiles: Vec<PathBuf>,
    },
}

/// Runs `warpgate cache …`.
pub fn run(global: &GlobalArgs, args: CacheArgs, output: &Output) -> Result<Outcome, Failure> {
    let cache = Cache::from_env()?;
    match args.command {
        CacheCommand::Dir => println!("{}", cache.root().display()),
        CacheCommand::Clean => {
            let warpgate::cache::Freed {
                mut files,
                mut bytes,
            } = cache.clean()?;
            // A compiled-module cache moved out of the cache root by `WARPGATE_COMPILE_CACHE`.
            if let Some(dir) = CompileCache::Default.directory()
                && dir != cache.compiled_dir()
            {
                let pruned = warpgate::container::compile_cache::prune(&dir, &HashSet::new())
                    .with_context(|| format!("failed to clean `{}`", dir.display()))?;
                files += pruned.entries;
                bytes += pruned.bytes;
            }
            println!("{files} files, {bytes} bytes freed");
            output.status("Cleaned", format!("`{}`", cache.root().display()));
        }
        CacheCommand::Prune { lockfiles } => {
            let lockfiles = if lockfiles.is_empty() {
                let config = match global.load_config() {
                    Ok(config) => config,
                    // "run `warpgate init`" is the wrong fix here.
                    Err(failure) => {
                        if let Some(ConfigError::NotFound { start, .. }) =
                            failure.error.downcast_ref::<ConfigError>()
                        {
                            return Err(CommandError::new(
                                format!(
                                    "no project found in `{}` or any parent folder, so no lockfile says which blobs to keep",
                                    start.display()
                                ),
                                "run `warpgate cache prune` in a project, or name lockfiles with `--lockfile PATH`",
                            )
                            .into());
                        }
                        return Err(failure);
                    }
                };
                vec![config.lockfile_path()]
            } else {
                lockfiles
            };
            let mut keep = HashSet::new();
            for path in &lockfiles {
                let lockfile = Lockfile::read(path)?.ok_or_else(|| {
                    CommandError::new(
                        format!(
                            "`{}` does not exist, so it cannot say which blobs to keep",
                            path.display()
                        ),
                        "run `warpgate lock` first, or name existing lockfiles with `--lockfile PATH`",
                    )
                })?;
                keep.extend(lockfile.plugins.values().map(|locked| locked.checksum));
            }
            let warpgate::cache::Freed {
                mut files,
                mut bytes,
            } = cache.prune(&keep)?;
            if let Some(dir) = CompileCache::Default.directory() {
                let pruned = warpgate::container::compile_cache::prune(&dir, &keep)
                    .with_context(|| format!("failed to prune `{}`", dir.display()))?;
                files += pruned.entries;
                bytes += pruned.bytes;
            }
            println!("{files} files, {bytes} bytes freed");
            output.status("Pruned", format!("{files} files, {bytes} bytes"));
        }
    }
    Ok(Outcome::Success)
}
