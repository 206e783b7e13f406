//! `warpgate vendor` and `warpgate verify`.

use std::path::PathBuf;

use anyhow::Context;
use warpgate::lockfile::Lockfile;
use warpgate::source::Origin;
use warpgate::vendor::FileChange;

use super::{Failure, GlobalArgs, Outcome, Output};

/// Arguments of `warpgate vendor`.
#[derive(Debug, clap::Args)]
pub struct VendorArgs {
    /// The vendor directory (default: `WARPGATE_VENDOR_DIR`, taken from the config's folder
    /// when relative, else `vendor/warpgate/` next to the config).
    dir: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `warpgate vendor`: every locked plugin into the vendor directory, atomically.
pub async fn vendor(
    global: &GlobalArgs,
    args: VendorArgs,
    output: &Output,
) -> Result<Outcome, Failure> {
    let config = global.load_config()?;
    let lockfile = Lockfile::read(&config.lockfile_path())?.ok_or_else(|| {
        warpgate::lock::LockError::Missing {
            path: config.lockfile_path(),
            flag: "`warpgate vendor`".into(),
        }
    })?;
    let dir = args.dir.unwrap_or_else(|| warpgate::vendor::dir(&config));
    let fetcher = global.fetcher_for(output, &config)?;
    let report = warpgate::vendor::vendor(&config, &lockfile, &dir, &fetcher).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).context("report as JSON")?
        );
    }
    for leftover in &report.swept {
        output.status(
            "Removing",
            format!("`{}` (left by an interrupted run)", leftover.display()),
        );
    }
    for plugin in &report.plugins {
        let from = match &plugin.source {
            Some(Origin::Vendored { .. }) => "vendored copy".to_string(),
            Some(Origin::File { path }) => format!("`{}`", path.display()),
            Some(Origin::Cache { .. }) => "cache".to_string(),
            Some(origin) => origin.to_string(),
            None => "nowhere".to_string(),
        };
        match plugin.change {
            FileChange::Unchanged => {}
            FileChange::Added => output.status("Vendoring", format!("{} from {from}", plugin.id)),
            FileChange::Updated => output.status("Updating", format!("{} from {from}", plugin.id)),
        }
    }
    for removed in &report.removed {
        output.status("Removing", removed);
    }
    let verb = if report.changed {
        "Vendored"
    } else {
        "Unchanged"
    };
    output.status(
        verb,
        format!(
            "{} in `{}`",
            super::output::plugin_count(report.plugins.len()),
            report.dir.display()
        ),
    );
    Ok(Outcome::Success)
}

/// Arguments of `warpgate verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The vendor directory to check (default: `WARPGATE_VENDOR_DIR`, else
    /// `vendor/warpgate/` when it exists; none otherwise).
    #[arg(long, value_name = "DIR")]
    vendor_dir: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `warpgate verify`: the lock against the config, the cache and vendor directory
/// against the lock, without network. Exit 1 when anything is wrong.
pub fn verify(global: &GlobalArgs, args: VerifyArgs, output: &Output) -> Result<Outcome, Failure> {
    let config = global.load_config()?;
    let lockfile = Lockfile::read(&config.lockfile_path())?;
    let cache = warpgate::cache::Cache::from_env()?;
    let vendor_dir = args
        .vendor_dir
        .or_else(|| warpgate::vendor::dir_from_env(&config));
    let report =
        warpgate::vendor::verify(&config, lockfile.as_ref(), &cache, vendor_dir.as_deref());
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).context("report as JSON")?
        );
    }
    if report.is_ok() {
        output.status(
            "Verified",
            format!(
                "{}{}",
                super::output::plugin_count(report.plugins.len()),
                vendor_dir
                    .map(|dir| format!(" (vendor directory `{}`)", dir.display()))
                    .unwrap_or_default()
            ),
        );
        return Ok(Outcome::Success);
    }
    for problem in &report.problems {
        output.problem(problem);
    }
    Ok(Outcome::CheckFailed)
}
