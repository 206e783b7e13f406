//! `warpgate update` and `warpgate outdated`.

use super::json::OutdatedRow;
use warpgate::id::Id;
use warpgate::locator::PluginLocator;
use warpgate::lock::{LockOptions, Update};
use warpgate::lockfile::Lockfile;

use super::{CommandError, Failure, GlobalArgs, Outcome, Output};

/// Arguments of `warpgate update`.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// Only these plugins (default: every floating entry).
    ids: Vec<Id>,
    /// Show what would change without writing `warpgate.lock`.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `warpgate update`: re-resolves floating entries and prints `id: old -> new`.
pub async fn update(
    global: &GlobalArgs,
    args: UpdateArgs,
    output: &Output,
) -> Result<Outcome, Failure> {
    // Under `--locked` the lock would only be checked, and "up to date" would be a lie:
    // refuse, unless nothing is going to be written anyway.
    if !args.dry_run
        && let Some(flag) = global.locked_flag()
    {
        return Err(CommandError::new(
            format!("{flag} forbids changing `warpgate.lock`"),
            format!(
                "run `warpgate update` without {flag}, or with `--dry-run` to only see what would change"
            ),
        )
        .into());
    }
    let (config, _project_lock) = global.load_config_exclusive()?;
    let fetcher = global.fetcher_for(output, &config)?;
    let github = global.github(&fetcher);
    let options = LockOptions {
        locked: None,
        offline: global.offline_reason(),
        update: if args.ids.is_empty() {
            Update::All
        } else {
            Update::Only(args.ids)
        },
        dry_run: args.dry_run,
    };
    let outcome = warpgate::lock::lock(&config, &options, &fetcher, &github).await;
    output.api_costs(github.stats());
    let outcome = outcome?;
    for change in &outcome.changes {
        let describe = |locked: &Option<warpgate::lockfile::LockedPlugin>| {
            locked
                .as_ref()
                .map_or_else(|| "(none)".to_string(), super::lock::describe)
        };
        println!(
            "{}: {} -> {}",
            change.id,
            super::output::escape(&describe(&change.old)),
            super::output::escape(&describe(&change.new))
        );
    }
    if outcome.changes.is_empty() {
        output.status("Unchanged", "every plugin is up to date");
    } else if args.dry_run {
        output.warning("not writing `warpgate.lock` (`--dry-run`)");
    }
    Ok(Outcome::Success)
}

/// Arguments of `warpgate outdated`.
#[derive(Debug, clap::Args)]
pub struct OutdatedArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Exit 1 when a plugin is behind the newest release matching its requirement.
    #[arg(long)]
    exit_code: bool,
}

/// Runs `warpgate outdated`: for each GitHub plugin, the locked, newest matching and newest
/// releases.
pub async fn outdated(
    global: &GlobalArgs,
    args: OutdatedArgs,
    output: &Output,
) -> Result<Outcome, Failure> {
    let config = global.load_config()?;
    let lockfile = Lockfile::read(&config.lockfile_path())?.unwrap_or_default();
    let fetcher = global.fetcher(output)?;
    let github = global.github(&fetcher);
    let (github_plugins, others): (Vec<_>, Vec<_>) = config
        .plugins
        .iter()
        .partition(|(_, entry)| matches!(entry.locator, PluginLocator::GitHub(_)));
    if !others.is_empty() {
        let ids: Vec<String> = others.iter().map(|(id, _)| format!("`{id}`")).collect();
        output.status(
            "Skipping",
            format!(
                "{}: only GitHub plugins have releases to compare",
                ids.join(", ")
            ),
        );
    }
    if let Some(reason) = global.offline_reason()
        && let Some((id, _)) = github_plugins.first()
    {
        return Err(CommandError::new(
            format!(
                "network access is disabled by {reason}, but `warpgate outdated` must ask the GitHub API for the releases of plugin `{id}`"
            ),
            "run `warpgate outdated` while online",
        )
        .into());
    }
    let mut rows = Vec::new();
    let mut behind = false;
    for (id, entry) in github_plugins {
        let PluginLocator::GitHub(locator) = &entry.locator else {
            continue;
        };
        let releases =
            github
                .releases(locator)
                .await
                .map_err(|source| warpgate::lock::LockError::GitHub {
                    id: id.clone(),
                    source: Box::new(source),
                })?;
        let warpgate::github::NewestReleases { matching, newest } =
            warpgate::github::NewestReleases::pick(&releases, locator, entry.version.as_ref());
        let locked = lockfile
            .plugins
            .get(id)
            .and_then(|locked| locked.tag.clone());
        if let (Some(locked), Some(matching)) = (&locked, matching)
            && locked != &matching.tag
        {
            behind = true;
        }
        rows.push(OutdatedRow {
            id: id.to_string(),
            locked,
            matching: matching.map(|release| release.tag.clone()),
            newest: newest.map(|release| release.tag.clone()),
        });
    }
    output.api_costs(github.stats());
    if args.json {
        println!("{}", super::json::to_json(&rows)?);
    } else {
        println!(
            "{:<20} {:<24} {:<24} {:<24}",
            "ID", "LOCKED", "MATCHING", "NEWEST"
        );
        let cell =
            |value: Option<&String>| super::output::escape(value.map_or("-", String::as_str));
        for row in &rows {
            println!(
                "{:<20} {:<24} {:<24} {:<24}",
                super::output::escape(&row.id),
                cell(row.locked.as_ref()),
                cell(row.matching.as_ref()),
                cell(row.newest.as_ref())
            );
        }
    }
    Ok(if behind && args.exit_code {
        Outcome::CheckFailed
    } else {
        Outcome::Success
    })
}
