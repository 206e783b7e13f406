//! The `--json` shapes printed on stdout. They are stable: fields are only ever added.

use serde_json::{Value, json};
use warpgate::lockfile::{LockedPlugin, Lockfile};

/// One locked plugin as JSON: every lockfile key, `null` where it does not apply.
pub fn locked_json(locked: &LockedPlugin) -> Value {
    json!({
        "locator": locked.locator.to_string(),
        "requirement": locked.requirement.as_ref().map(ToString::to_string),
        "registry": locked.registry,
        "repository": locked.repository,
        "tag": locked.tag,
        "digest": locked.digest.map(|digest| digest.to_string()),
        "asset": locked.asset,
        "url": locked.url,
        "path": locked.path,
        "checksum": locked.checksum.to_string(),
        "size": locked.size,
    })
}

/// `warpgate lock --json`: `{"written": bool, "plugins": {"<id>": {…}}}`.
pub fn lock_json(lockfile: &Lockfile, written: bool) -> Value {
    let plugins: serde_json::Map<String, Value> = lockfile
        .plugins
        .iter()
        .map(|(id, locked)| (id.to_string(), locked_json(locked)))
        .collect();
    json!({ "written": written, "plugins": plugins })
}
