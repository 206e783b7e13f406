//! `warpgate lock`.

use warpgate::id::Id;
use warpgate::lock::{LockOptions, Update};

use super::{CommandError, Failure, GlobalArgs, Outcome, Output};

/// Arguments of `warpgate lock`.
#[derive(Debug, clap::Args)]
pub struct LockArgs {
    /// Re-resolve floating entries (no tag, semver ranges, URLs); only the given ids when
    /// ids follow.
    #[arg(long, value_name = "ID", num_args = 0..)]
    update: Option<Vec<Id>>,
    /// Print the resulting lock as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `warpgate lock`.
pub async fn run(global: &GlobalArgs, args: LockArgs, output: &Output) -> Result<Outcome, Failure> {
    if args.update.is_some()
        && let Some(flag) = global.locked_flag()
    {
        return Err(CommandError::new(
            format!("`--update` changes `warpgate.lock`, which {flag} forbids"),
            format!("run `warpgate lock --update` without {flag}"),
        )
        .into());
    }
    let (config, _project_lock) = if global.locked_flag().is_some() {
        (global.load_config()?, None)
    } else {
        let (config, lock) = global.load_config_exclusive()?;
        (config, Some(lock))
    };
    let fetcher = global.fetcher_for(output, &config)?;
    let github = global.github(&fetcher);
    let update = match args.update {
        None => Update::Nothing,
        Some(ids) if ids.is_empty() => Update::All,
        Some(ids) => Update::Only(ids),
    };
    let options = LockOptions {
        locked: global.locked_flag(),
        offline: global.offline_reason(),
        update,
        dry_run: false,
    };
    let outcome = warpgate::lock::lock(&config, &options, &fetcher, &github).await;
    output.api_costs(github.stats());
    let outcome = outcome?;
    print_changes(output, &outcome.changes);
    if args.json {
        println!(
            "{}",
            super::json::to_json(&super::json::LockJson::new(
                &outcome.lockfile,
                outcome.written
            ))?
        );
    }
    let count = outcome.lockfile.plugins.len();
    let plugins = super::output::plugin_count(count);
    if outcome.written {
        output.status(
            "Locked",
            format!("{plugins} in `{}`", config.lockfile_path().display()),
        );
    } else {
        output.status(
            "Checked",
            format!(
                "{plugins}: `{}` is up to date",
                config.lockfile_path().display()
            ),
        );
    }
    Ok(Outcome::Success)
}

/// One status line per changed lock entry.
pub fn print_changes<'a>(
    output: &Output,
    changes: impl IntoIterator<Item = &'a warpgate::lock::LockChange>,
) {
    for change in changes {
        match (&change.old, &change.new) {
            (None, Some(new)) => {
                output.status("Adding", format!("{} {}", change.id, describe(new)));
            }
            (Some(_), None) => output.status("Removing", &change.id),
            (Some(old), Some(new)) => output.status(
                "Updating",
                format!("{}: {} -> {}", change.id, describe(old), describe(new)),
            ),
            (None, None) => {}
        }
    }
}

/// A short description of a locked entry: tag or file, and short checksum.
pub fn describe(locked: &warpgate::lockfile::LockedPlugin) -> String {
    let source = locked
        .tag
        .clone()
        .or_else(|| locked.path.clone())
        .or_else(|| locked.url.clone())
        .unwrap_or_default();
    format!("{source} ({})", locked.checksum.short())
}
