//! `warpgate list`.

use serde_json::json;
use warpgate::lockfile::Lockfile;

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
    let vendor_dir = warpgate::vendor::dir_from_env(&config);
    let vendored = |id: &warpgate::id::Id, checksum: &warpgate::checksum::Checksum| {
        vendor_dir.as_ref().is_some_and(|dir| {
            warpgate::fs::hash_file(
                &warpgate::vendor::plugin_path(dir, id),
                warpgate::fs::MAX_PLUGIN_SIZE,
                warpgate::fs::Links::Refuse,
            )
            .is_ok_and(|(found, _)| found == *checksum)
        })
    };
    let mut rows = Vec::new();
    for (id, entry) in &config.plugins {
        let locked = lockfile.plugins.get(id);
        let state = match locked {
            None => "not locked",
            Some(locked) if vendored(id, &locked.checksum) => "vendored",
            Some(locked) if locked.path.is_some() => "local file",
            Some(locked) if cache.get(&locked.checksum)?.is_some() => "cached",
            Some(_) => "not cached",
        };
        rows.push(json!({
            "id": id.to_string(),
            "locator": entry.locator.to_string(),
            "tag": locked.and_then(|locked| locked.tag.clone()),
            "checksum": locked.map(|locked| locked.checksum.to_string()),
            "size": locked.map(|locked| locked.size),
            "state": state,
        }));
    }
    if args.json {
        println!("{}", serde_json::Value::Array(rows));
        return Ok(Outcome::Success);
    }
    for row in &rows {
        let text = |key: &str| super::output::escape(row[key].as_str().unwrap_or("-"));
        let checksum = row["checksum"].as_str().map_or("-".to_string(), |c| {
            c.trim_start_matches("sha256:")[..12].to_string()
        });
        let size = row["size"]
            .as_u64()
            .map_or("-".to_string(), |s| s.to_string());
        println!(
            "{:<16} {:<48} {:<20} {:<12} {:>10}  {}",
            text("id"),
            text("locator"),
            text("tag"),
            checksum,
            size,
            text("state")
        );
    }
    Ok(Outcome::Success)
}
