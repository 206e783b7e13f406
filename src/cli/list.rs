//! `warpgate list`.

use super::json::ListRow;
use warpgate::lockfile::Lockfile;
use warpgate::source::{Check, Network, Origin, Sources};

use super::{Failure, GlobalArgs, Outcome};

/// Arguments of `warpgate list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `warpgate list`: every declared plugin with what the lock and the cache know.
pub fn run(global: &GlobalArgs, args: ListArgs) -> Result<Outcome, Failure> {
    let config = global.load_config()?;
    let lockfile = Lockfile::read(&config.lockfile_path())?.unwrap_or_default();
    let cache = warpgate::cache::Cache::from_env()?;
    // Where an offline build would take each plugin from (nothing is downloaded or deleted).
    let sources = Sources::with_network(
        config.root(),
        Some(cache),
        Network::Offline("`warpgate list`".to_string()),
    )
    .vendor_dir(warpgate::vendor::dir_from_env(&config))
    .check(Check::ReadOnly);
    let mut rows = Vec::new();
    for (id, entry) in &config.plugins {
        let locked = lockfile.plugins.get(id);
        let state = match locked.map(|locked| sources.locate(id, locked)) {
            None => "not locked",
            Some(Ok(Some(found))) => match found.origin {
                Origin::Vendored { .. } => "vendored",
                Origin::File { .. } => "local file",
                _ => "cached",
            },
            Some(_) => "not cached",
        };
        rows.push(ListRow {
            id: id.to_string(),
            locator: entry.locator.to_string(),
            tag: locked.and_then(|locked| locked.tag.clone()),
            checksum: locked.map(|locked| locked.checksum),
            size: locked.map(|locked| locked.size),
            state,
        });
    }
    if args.json {
        println!("{}", super::json::to_json(&rows)?);
        return Ok(Outcome::Success);
    }
    for row in &rows {
        let checksum = row
            .checksum
            .map_or("-".to_string(), |checksum| checksum.hex()[..12].to_string());
        let size = row.size.map_or("-".to_string(), |size| size.to_string());
        println!(
            "{:<16} {:<48} {:<20} {:<12} {:>10}  {}",
            super::output::escape(&row.id),
            super::output::escape(&row.locator),
            super::output::escape(row.tag.as_deref().unwrap_or("-")),
            checksum,
            size,
            row.state
        );
    }
    Ok(Outcome::Success)
}
