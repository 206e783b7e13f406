//! `warpgate init`, `warpgate add` and `warpgate remove`: config edits that keep the user's
//! formatting, followed by the matching lock change. Nothing is written unless every step
//! before the write succeeded.

use std::path::{Path, PathBuf};

use anyhow::Context;
use warpgate::config::{CONFIG_NAME, Config, PluginEntry};
use warpgate::fs::write_atomically;
use warpgate::id::Id;
use warpgate::locator::PluginLocator;
use warpgate::lock::LockOptions;
use warpgate::lockfile::Lockfile;

use super::{CommandError, Failure, GlobalArgs, Outcome, Output};

const TEMPLATE: &str = r#"# Plugins for this project, managed by warpgate.
# `warpgate lock` pins each one in `warpgate.lock`; commit both files.
#
# Locators:
#   "file://./plugins/x.wasm"                 a local file, relative to this folder
#   "https://example.com/x.wasm"              a download (`http://` only for loopback)
#   "github://org/repo"                       the latest release of a repository
#   "github://org/repo/project@v1.2.3"        a monorepo project's release
#   { locator = "github://org/repo", version = "^1.2", asset = "x.wasm" }
[plugins]
"#;

/// Arguments of `warpgate init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The folder to create `warpgate.toml` in.
    #[arg(default_value = ".")]
    dir: PathBuf,
}

/// Runs `warpgate init`: writes a commented `warpgate.toml`, never over an existing one.
pub fn init(args: InitArgs, output: &Output) -> Result<Outcome, Failure> {
    let path = args.dir.join(CONFIG_NAME);
    if path.exists() {
        return Err(CommandError::new(
            format!("`{}` already exists", path.display()),
            "edit it, or add plugins with `warpgate add <ID> <LOCATOR>`",
        )
        .into());
    }
    // Written beside the target and moved into place without replacing anything, so a failed
    // write leaves no partial `warpgate.toml` (which would then block the next `init`).
    let mut builder = tempfile::Builder::new();
    // Not tempfile's private 0600: the mode a new file normally gets (0666 less the umask).
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut staged = builder
        .tempfile_in(&args.dir)
        .with_context(|| format!("failed to create a file in `{}`", args.dir.display()))?;
    std::io::Write::write_all(&mut staged, TEMPLATE.as_bytes())
        .with_context(|| format!("failed to write `{}`", staged.path().display()))?;
    staged
        .persist_noclobber(&path)
        .map_err(|error| error.error)
        .with_context(|| format!("failed to create `{}`", path.display()))?;
    output.status("Created", format!("`{}`", path.display()));
    Ok(Outcome::Success)
}

/// Arguments of `warpgate add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The plugin's id.
    id: Id,
    /// Where it comes from (`file://…`, `https://…`, `github://org/repo[/project][@tag]`).
    locator: PluginLocator,
    /// A semver requirement on the release (GitHub locators).
    #[arg(long, value_name = "REQ")]
    version: Option<semver::VersionReq>,
    /// The release asset to take (GitHub locators).
    #[arg(long, value_name = "NAME")]
    asset: Option<String>,
}

fn locked_flag_forbids(global: &GlobalArgs) -> Result<(), Failure> {
    if let Some(flag) = global.locked_flag() {
        return Err(CommandError::new(
            format!("{flag} forbids changing `warpgate.lock`"),
            format!("run the command without {flag}"),
        )
        .into());
    }
    Ok(())
}

/// Writes the edited config, then runs `write_lock`; if that fails, puts the config's
/// original text back, so that a failed command leaves both files as they were.
fn write_config_then_lock(
    config_path: &Path,
    original: &str,
    edited: &str,
    write_lock: impl FnOnce() -> Result<(), Failure>,
) -> Result<(), Failure> {
    write_atomically(config_path, edited.as_bytes())
        .with_context(|| format!("failed to write `{}`", config_path.display()))?;
    if let Err(failure) = write_lock() {
        write_atomically(config_path, original.as_bytes()).with_context(|| {
            // Name the first failure too: it is why the config had to be put back.
            format!(
                "failed to restore `{}` after the lockfile could not be written ({})",
                config_path.display(),
                super::error::report(&failure.error).one_line()
            )
        })?;
        return Err(failure);
    }
    Ok(())
}

/// Runs `warpgate add`: resolves the new entry, then writes the config and the lock.
pub async fn add(global: &GlobalArgs, args: AddArgs, output: &Output) -> Result<Outcome, Failure> {
    locked_flag_forbids(global)?;
    let (config, _project_lock) = global.load_config_exclusive()?;
    let entry = PluginEntry::new(args.locator, args.version, args.asset)
        .map_err(|message| anyhow::anyhow!("cannot add plugin `{}`: {message}", args.id))?;
    let text = warpgate::edit::read(&config.path)?;
    let new_text = warpgate::edit::add_entry(&text, &config.path, config.source, &args.id, &entry)?;
    // Only a local file can be locked without the network; say so before trying.
    if let Some(reason) = global.offline_reason()
        && !matches!(entry.locator, PluginLocator::File { .. })
    {
        return Err(CommandError::new(
            format!(
                "network access is disabled by {reason}, but plugin `{}` (`{}`) must be downloaded to be locked",
                args.id, entry.locator
            ),
            "run `warpgate add` while online",
        )
        .into());
    }

    // The lock then covers the whole config, as `warpgate lock` would leave it: entries it
    // already pins are kept, other declared but unlocked (or changed) entries are locked too.
    let mut new_config = config.clone();
    new_config.plugins.insert(args.id.clone(), entry.clone());
    let fetcher = global.fetcher_for(output, &config)?;
    let github = global.github(&fetcher);
    let options = LockOptions {
        offline: global.offline_reason(),
        dry_run: true,
        ..LockOptions::default()
    };
    let outcome = warpgate::lock::lock(&new_config, &options, &fetcher, &github).await?;

    let lock_path = config.lockfile_path();
    write_config_then_lock(&config.path, &text, &new_text, || {
        outcome.lockfile.write(&lock_path)?;
        Ok(())
    })?;
    super::lock::print_changes(
        output,
        outcome.changes.iter().filter(|change| change.id != args.id),
    );
    if let Some(locked) = outcome.lockfile.plugins.get(&args.id) {
        output.status(
            "Added",
            format!("{} {}", args.id, super::lock::describe(locked)),
        );
    }
    Ok(Outcome::Success)
}

/// Arguments of `warpgate remove`.
#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// The plugin's id.
    id: Id,
}

/// Runs `warpgate remove`: drops the entry from the config and the lock.
pub fn remove(global: &GlobalArgs, args: RemoveArgs, output: &Output) -> Result<Outcome, Failure> {
    locked_flag_forbids(global)?;
    let (config, _project_lock): (Config, _) = global.load_config_exclusive()?;
    let text = warpgate::edit::read(&config.path)?;
    let new_text = warpgate::edit::remove_entry(&text, &config.path, config.source, &args.id)?;
    let lock_path = config.lockfile_path();
    let lockfile = Lockfile::read(&lock_path)?;
    write_config_then_lock(&config.path, &text, &new_text, || {
        if let Some(mut lockfile) = lockfile
            && lockfile.plugins.remove(&args.id).is_some()
        {
            lockfile.write(&lock_path)?;
        }
        Ok(())
    })?;
    output.status("Removed", &args.id);
    Ok(Outcome::Success)
}
