//! The `--json` shapes printed on stdout, one type each. They are stable: fields are only ever
//! added. Fields are declared in alphabetical order, the order they are printed in.
//! (`verify --json` and `vendor --json` print the library's own report types.)

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Serialize;
use warpgate::checksum::Checksum;
use warpgate::lockfile::{LockedPlugin, Lockfile};

/// `value` as one line of JSON.
pub fn to_json(value: &impl Serialize) -> anyhow::Result<String> {
    serde_json::to_string(value).context("output as JSON")
}

/// `warpgate lock --json`: `{"plugins": {"<id>": {…}}, "written": bool}`.
#[derive(Serialize)]
pub struct LockJson {
    plugins: BTreeMap<String, LockedJson>,
    written: bool,
}

impl LockJson {
    /// The shape of `lockfile`, and whether it was written.
    pub fn new(lockfile: &Lockfile, written: bool) -> Self {
        Self {
            plugins: lockfile
                .plugins
                .iter()
                .map(|(id, locked)| (id.to_string(), LockedJson::new(locked)))
                .collect(),
            written,
        }
    }
}

/// One locked plugin: every lockfile key, `null` where it does not apply.
#[derive(Serialize)]
struct LockedJson {
    asset: Option<String>,
    checksum: Checksum,
    digest: Option<Checksum>,
    locator: String,
    path: Option<String>,
    registry: Option<String>,
    repository: Option<String>,
    requirement: Option<String>,
    size: u64,
    tag: Option<String>,
    url: Option<String>,
}

impl LockedJson {
    fn new(locked: &LockedPlugin) -> Self {
        Self {
            asset: locked.asset.clone(),
            checksum: locked.checksum,
            digest: locked.digest,
            locator: locked.locator.to_string(),
            path: locked.path.clone(),
            registry: locked.registry.clone(),
            repository: locked.repository.clone(),
            requirement: locked.requirement.as_ref().map(ToString::to_string),
            size: locked.size,
            tag: locked.tag.clone(),
            url: locked.url.clone(),
        }
    }
}

/// One row of `warpgate list --json`.
#[derive(Serialize)]
pub struct ListRow {
    /// The locked checksum.
    pub checksum: Option<Checksum>,
    /// The plugin's id.
    pub id: String,
    /// The declared locator.
    pub locator: String,
    /// The locked size.
    pub size: Option<u64>,
    /// Where its bytes are: `not locked`, `vendored`, `local file`, `cached`, `not cached`.
    pub state: &'static str,
    /// The locked tag.
    pub tag: Option<String>,
}

/// One row of `warpgate outdated --json` (release tags).
#[derive(Serialize)]
pub struct OutdatedRow {
    /// The plugin's id.
    pub id: String,
    /// The locked tag.
    pub locked: Option<String>,
    /// The highest stable release matching the requirement.
    pub matching: Option<String>,
    /// The highest stable release.
    pub newest: Option<String>,
}
