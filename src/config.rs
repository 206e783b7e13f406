//! Reading the `[plugins]` table: from `warpgate.toml`, or from Cargo metadata.
//!
//! Discovery, from a start folder: the nearest `warpgate.toml` in it or an ancestor wins;
//! otherwise `cargo metadata --no-deps` is asked for `[workspace.metadata.warpgate.plugins]`,
//! then for `[package.metadata.warpgate.plugins]` of the package whose manifest is nearest to
//! the start folder. The lockfile lives next to the file that declared the plugins.
//!
//! # Where the search stops
//!
//! Inside a Cargo project (a `Cargo.toml` in the start folder or an ancestor), the search for
//! `warpgate.toml` stops at that project's workspace root ([`cargo_workspace_root`]): a stray
//! `warpgate.toml` above it (in `$HOME`, say) never belongs to the project. Outside any Cargo
//! project it goes up from the start folder and stops after the first of: the user's home
//! folder, a version-control root (a folder with `.git`, `.hg`, `.svn` or `.jj`), the
//! filesystem root; and it never enters a folder above the start folder that another user owns,
//! nor reads a `warpgate.toml` there that another user owns, so a file planted in a shared
//! folder such as `/tmp` is never picked up.
//!
//! The `warpgate` CLI and `warpgate-build` both use [`Config::discover`], so they follow the
//! same rule: `warpgate lock` run anywhere in a crate writes exactly the lock that crate's
//! build script reads. Walking further for the CLI alone would let `warpgate lock` lock a
//! config that the build then cannot see. `--config` names a file explicitly when needed.
//!
//! An entry is a locator string or a table:
//!
//! ```toml
//! [plugins]
//! echo = "file://./plugins/echo.wasm"
//! bun  = { locator = "github://moonrepo/plugins/bun_tool", version = "^0.14", asset = "bun.wasm" }
//! ```
//!
//! A table entry may also carry the plugin's runtime settings (`config`, `allowed_paths`,
//! `allowed_hosts`, `memory`, `timeout`, `wasi`; see [`crate::settings`]).
//!
//! Unknown keys, bad ids, bad locators and bad settings are errors that name the file, the
//! entry and the line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::id::Id;
use crate::locator::PluginLocator;
use crate::lockfile::{LOCKFILE_NAME, line_column, toml_message};
use crate::release::is_asset_name;
use crate::settings::RuntimeSettings;

/// The config file name.
pub const CONFIG_NAME: &str = "warpgate.toml";

/// A plugin as the config declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginEntry {
    /// Where the plugin comes from.
    pub locator: PluginLocator,
    /// A semver requirement on the release (GitHub locators without a tag).
    pub version: Option<semver::VersionReq>,
    /// The release asset to take (GitHub locators).
    pub asset: Option<String>,
    /// How the plugin runs (config values, allowed paths and hosts, limits, WASI); not part of
    /// what is locked.
    pub settings: RuntimeSettings,
}

impl PluginEntry {
    /// An entry, checked as the config reader checks it (`version` and `asset` only for
    /// GitHub locators, a tag and a `version` not both, `asset` a plain file name).
    pub fn new(
        locator: PluginLocator,
        version: Option<semver::VersionReq>,
        asset: Option<String>,
    ) -> Result<Self, String> {
        if let Some(asset) = &asset
            && !is_asset_name(asset)
        {
            return Err(asset_message(asset));
        }
        let entry = Self {
            locator,
            version,
            asset,
            settings: RuntimeSettings::default(),
        };
        check_entry(&entry)?;
        Ok(entry)
    }
}

/// Which kind of file declared the plugins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// A `warpgate.toml`.
    WarpgateToml,
    /// `[workspace.metadata.warpgate]` in a workspace `Cargo.toml`.
    WorkspaceMetadata,
    /// `[package.metadata.warpgate]` in a package `Cargo.toml`.
    PackageMetadata,
}

/// The loaded plugin declarations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The file that declared the plugins.
    pub path: PathBuf,
    /// What kind of file it is.
    pub source: ConfigSource,
    /// Every declared plugin, by id.
    pub plugins: BTreeMap<Id, PluginEntry>,
    /// The team mirror (`mirror = "registry://HOST/NAMESPACE"` at the top of
    /// `warpgate.toml`, or in `[workspace.metadata.warpgate]` / `[package.metadata.warpgate]`,
    /// a package's own before its workspace's), tried by digest before each plugin's origin;
    /// `WARPGATE_MIRROR` overrides it ([`crate::oci::mirror`]).
    pub mirror: Option<crate::oci::reference::RegistryLocator>,
}

/// Why the config could not be found or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither a `warpgate.toml` nor Cargo metadata was found.
    #[error("no `warpgate.toml` found in `{}` or any parent folder{}, and no `[package.metadata.warpgate.plugins]` in a `Cargo.toml`", start.display(), up_to(boundary.as_deref()))]
    NotFound {
        /// Where the search started.
        start: PathBuf,
        /// The Cargo workspace root where the search stopped, if it ran inside one.
        boundary: Option<PathBuf>,
    },
    /// The file could not be read.
    #[error("failed to read `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file or one of its entries is invalid.
    #[error("invalid config `{}`: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the entry and position when known.
        message: String,
        /// What to do about it, if the fix is known.
        hint: Option<String>,
    },
    /// `cargo metadata` failed.
    #[error("failed to read Cargo metadata in `{}`: {message}", dir.display())]
    CargoMetadata {
        /// The folder it ran in.
        dir: PathBuf,
        /// cargo's error.
        message: String,
    },
}

impl ConfigError {
    /// This error with `hint`, if it is [`ConfigError::Invalid`].
    fn with_hint(mut self, text: &str) -> Self {
        if let Self::Invalid { hint, .. } = &mut self {
            *hint = Some(text.to_string());
        }
        self
    }

    /// This error with the hint of `cause`, if it has one.
    fn hinted(self, cause: &dyn Diagnostic) -> Self {
        match cause.hint() {
            Some(hint) => self.with_hint(&hint),
            None => self,
        }
    }
}

impl Diagnostic for ConfigError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NotFound { .. } => Some("run `warpgate init` to create one".into()),
            Self::Invalid { hint, .. } => hint.clone(),
            Self::Io { .. } | Self::CargoMetadata { .. } => None,
        }
    }
}

fn up_to(boundary: Option<&Path>) -> String {
    boundary
        .map(|root| format!(" up to the workspace root `{}`", root.display()))
        .unwrap_or_default()
}

impl Config {
    /// The folder that relative `file://` locators and the lockfile are relative to.
    pub fn root(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Where this config's lockfile lives.
    pub fn lockfile_path(&self) -> PathBuf {
        self.root().join(LOCKFILE_NAME)
    }

    /// Finds and loads the config for `start` (see the module docs for the search order and
    /// where it stops).
    pub fn discover(start: &Path) -> Result<Self, ConfigError> {
        let start = std::path::absolute(start).map_err(|source| ConfigError::Io {
            path: start.to_path_buf(),
            source,
        })?;
        let boundary = match nearest_cargo_manifest(&start) {
            Some(manifest) => {
                let package_dir = manifest.parent().unwrap_or(Path::new("."));
                let root = cargo_workspace_root(package_dir)?;
                // A `package.workspace` elsewhere than above: stop at the package itself.
                Some(if start.starts_with(&root) {
                    root
                } else {
                    package_dir.to_path_buf()
                })
            }
            None => None,
        };
        let home = dirs::home_dir();
        for folder in start.ancestors() {
            let outside_cargo = boundary.is_none();
            // Above the start folder, outside a Cargo project: never read a config that
            // another user could have planted (in `/tmp`, say).
            if outside_cargo && folder != start && !owned_by_current_user(folder) {
                break;
            }
            let candidate = folder.join(CONFIG_NAME);
            if candidate.is_file() && (folder == start || owned_by_current_user(&candidate)) {
                return Self::load(&candidate);
            }
            if boundary.as_deref() == Some(folder) {
                break;
            }
            if outside_cargo && (home.as_deref() == Some(folder) || is_vcs_root(folder)) {
                break;
            }
        }
        Self::from_cargo_metadata(&start, boundary)
    }

    /// Loads a `warpgate.toml` or, for a file named `Cargo.toml`, its warpgate metadata.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let path = std::path::absolute(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if path.file_name().is_some_and(|name| name == "Cargo.toml") {
            return Self::from_cargo_metadata(path.parent().unwrap_or(Path::new(".")), None);
        }
        let text = crate::fs::read_text(&path, crate::fs::Links::Follow).map_err(|source| {
            ConfigError::Io {
                path: path.clone(),
                source,
            }
        })?;
        Self::parse(&text, &path)
    }

    /// Parses `warpgate.toml` text; `path` names the file in errors and anchors `file://`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
            hint: None,
        };
        let document: BTreeMap<toml::Spanned<String>, toml::Spanned<toml::Value>> =
            toml::from_str(text).map_err(|e| invalid(toml_message(&e, text)))?;
        let mut plugins = BTreeMap::new();
        let mut mirror = None;
        for (key, value) in document {
            let (line, column) = line_column(text, key.span().start);
            match key.get_ref().as_str() {
                "plugins" => {}
                "mirror" => {
                    let parsed = value
                        .get_ref()
                        .as_str()
                        .ok_or_else(|| "`mirror` must be a string".to_string())
                        .and_then(crate::oci::reference::parse_mirror)
                        .map_err(|reason| {
                            invalid(format!("{reason} (line {line}, column {column})"))
                        })?;
                    mirror = Some(parsed);
                    continue;
                }
                other => {
                    return Err(invalid(format!(
                        "unknown key `{other}` (line {line}, column {column}); expected only a `[plugins]` table and `mirror`"
                    )));
                }
            }
            let toml::Value::Table(_) = value.get_ref() else {
                return Err(invalid(format!(
                    "`plugins` must be a table (line {line}, column {column})"
                )));
            };
            // Re-read the table with spans for each entry.
            #[derive(serde::Deserialize)]
            struct Spans {
                plugins: BTreeMap<toml::Spanned<String>, toml::Spanned<toml::Value>>,
            }
            let spans: Spans = toml::from_str(text).map_err(|e| invalid(toml_message(&e, text)))?;
            for (id, entry) in spans.plugins {
                let (line, column) = line_column(text, entry.span().start);
                let at = |message: &dyn std::fmt::Display| {
                    invalid(format!(
                        "plugin `{}` (line {line}, column {column}): {message}",
                        id.get_ref()
                    ))
                };
                let parsed_id = Id::new(id.get_ref().as_str()).map_err(|e| at(&e).hinted(&e))?;
                let entry = parse_entry(entry.get_ref()).map_err(|message| at(&message))?;
                if let Some(twin) = case_twin(plugins.keys(), &parsed_id) {
                    return Err(at(&case_twin_message(twin)).with_hint(CASE_TWIN_HINT));
                }
                plugins.insert(parsed_id, entry);
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            source: ConfigSource::WarpgateToml,
            plugins,
            mirror,
        })
    }

    fn from_cargo_metadata(start: &Path, boundary: Option<PathBuf>) -> Result<Self, ConfigError> {
        let Some(manifest) = nearest_cargo_manifest(start) else {
            return Err(ConfigError::NotFound {
                start: start.to_path_buf(),
                boundary,
            });
        };
        let mut command = cargo_metadata::MetadataCommand::new();
        command.manifest_path(&manifest).no_deps();
        if let Some(cargo) = std::env::var_os("CARGO") {
            command.cargo_path(cargo);
        }
        let metadata = command.exec().map_err(|e| ConfigError::CargoMetadata {
            dir: start.to_path_buf(),
            message: e.to_string(),
        })?;
        let workspace_manifest = metadata
            .workspace_root
            .join("Cargo.toml")
            .into_std_path_buf();
        let workspace_mirror = metadata.workspace_metadata.pointer("/warpgate/mirror");
        if let Some(plugins) = metadata.workspace_metadata.pointer("/warpgate/plugins") {
            return Self::from_json(
                plugins,
                workspace_mirror.map(|mirror| (mirror, "workspace.metadata.warpgate")),
                workspace_manifest,
                ConfigSource::WorkspaceMetadata,
                "workspace.metadata.warpgate.plugins",
            );
        }
        let package = metadata
            .packages
            .iter()
            .filter(|package| {
                package
                    .manifest_path
                    .parent()
                    .is_some_and(|dir| start.starts_with(dir.as_std_path()))
            })
            .max_by_key(|package| package.manifest_path.as_str().len());
        if let Some(package) = package
            && let Some(plugins) = package.metadata.pointer("/warpgate/plugins")
        {
            // The package's own `mirror`, else the workspace's: a team sets it once.
            let mirror = match package.metadata.pointer("/warpgate/mirror") {
                Some(mirror) => Some((mirror, "package.metadata.warpgate")),
                None => workspace_mirror.map(|mirror| (mirror, "workspace.metadata.warpgate")),
            };
            return Self::from_json(
                plugins,
                mirror,
                package.manifest_path.clone().into_std_path_buf(),
                ConfigSource::PackageMetadata,
                "package.metadata.warpgate.plugins",
            );
        }
        Err(ConfigError::NotFound {
            start: start.to_path_buf(),
            boundary,
        })
    }

    /// The config of a `[plugins]` table from Cargo metadata, and the `mirror` key of the
    /// metadata table named with it.
    fn from_json(
        plugins: &serde_json::Value,
        mirror: Option<(&serde_json::Value, &str)>,
        path: PathBuf,
        source: ConfigSource,
        table: &str,
    ) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.clone(),
            message,
            hint: None,
        };
        let mirror = match mirror {
            Some((value, mirror_table)) => Some(
                value
                    .as_str()
                    .ok_or_else(|| "`mirror` must be a string".to_string())
                    .and_then(crate::oci::reference::parse_mirror)
                    .map_err(|reason| invalid(format!("`[{mirror_table}]` `mirror`: {reason}")))?,
            ),
            None => None,
        };
        let serde_json::Value::Object(entries) = plugins else {
            return Err(invalid(format!("`[{table}]` must be a table")));
        };
        let mut parsed = BTreeMap::new();
        for (id, value) in entries {
            let at = |message: &dyn std::fmt::Display| {
                invalid(format!("`[{table}]` plugin `{id}`: {message}"))
            };
            let value: toml::Value = serde_json::from_value(value.clone()).map_err(|e| at(&e))?;
            let parsed_id = Id::new(id.as_str()).map_err(|e| at(&e).hinted(&e))?;
            if let Some(twin) = case_twin(parsed.keys(), &parsed_id) {
                return Err(at(&case_twin_message(twin)).with_hint(CASE_TWIN_HINT));
            }
            parsed.insert(
                parsed_id,
                parse_entry(&value).map_err(|message| at(&message))?,
            );
        }
        Ok(Self {
            path,
            source,
            plugins: parsed,
            mirror,
        })
    }
}

/// The id among `ids` that differs from `id` only in ASCII letter case (ids are ASCII).
///
/// Such pairs are refused everywhere: each plugin becomes a file `<id>.wasm` (in `OUT_DIR`
/// and the vendor directory), and on macOS and Windows the two files would be one.
pub fn case_twin<'a>(ids: impl IntoIterator<Item = &'a Id>, id: &Id) -> Option<&'a Id> {
    ids.into_iter()
        .find(|other| *other != id && other.as_str().eq_ignore_ascii_case(id.as_str()))
}

fn case_twin_message(twin: &Id) -> String {
    format!(
        "differs from `{twin}` only in letter case; their files would be one file on macOS and Windows"
    )
}

const CASE_TWIN_HINT: &str = "rename one of them";

/// Whether `folder` is the root of a version-control checkout.
fn is_vcs_root(folder: &Path) -> bool {
    [".git", ".hg", ".svn", ".jj"]
        .iter()
        .any(|marker| folder.join(marker).exists())
}

/// Whether the current user owns `path` (always true where ownership is not known).
#[cfg_attr(
    unix,
    expect(unsafe_code, reason = "geteuid has no safe wrapper in std")
)]
fn owned_by_current_user(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: `geteuid` has no preconditions and cannot fail.
        let user = unsafe { libc::geteuid() };
        fs_err::metadata(path).is_ok_and(|metadata| metadata.uid() == user)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        true
    }
}

/// The `Cargo.toml` in `start` or its nearest ancestor that has one.
fn nearest_cargo_manifest(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|folder| folder.join(CARGO_MANIFEST))
        .find(|candidate| candidate.is_file())
}

const CARGO_MANIFEST: &str = "Cargo.toml";

/// The root folder of the Cargo workspace that the package (or virtual manifest) in
/// `package_dir` belongs to, found the way Cargo finds it, by reading manifests (no `cargo`
/// process):
///
/// - a manifest with a `[workspace]` table is its own root;
/// - `package.workspace = "path"` names the root explicitly;
/// - otherwise the nearest ancestor whose `Cargo.toml` has a `[workspace]` table that does
///   not `exclude` the package (unless its `members` list it by path), not looking past a
///   `target/package` folder (where `cargo package` verifies a crate);
/// - otherwise `package_dir` itself: the package is a workspace of its own.
///
/// `package_dir` should be absolute. Cargo also stops at `CARGO_HOME` (for registry and git
/// dependencies); this does not, as Cargo does not tell build scripts where that is.
pub fn cargo_workspace_root(package_dir: &Path) -> Result<PathBuf, ConfigError> {
    let manifest = read_cargo_manifest(&package_dir.join(CARGO_MANIFEST))?;
    if manifest.contains_key("workspace") {
        return Ok(package_dir.to_path_buf());
    }
    if let Some(root) = manifest
        .get("package")
        .and_then(|package| package.get("workspace"))
        .and_then(toml::Value::as_str)
    {
        return Ok(normalize(&package_dir.join(root)));
    }
    let package_manifest = package_dir.join(CARGO_MANIFEST);
    for folder in package_dir.ancestors().skip(1) {
        if folder.ends_with("target/package") {
            break;
        }
        let candidate = folder.join(CARGO_MANIFEST);
        if !candidate.is_file() {
            continue;
        }
        let ancestor = read_cargo_manifest(&candidate)?;
        let Some(workspace) = ancestor.get("workspace") else {
            continue;
        };
        let listed = |key: &str| {
            workspace
                .get(key)
                .and_then(toml::Value::as_array)
                .is_some_and(|paths| {
                    paths
                        .iter()
                        .filter_map(toml::Value::as_str)
                        .any(|path| package_manifest.starts_with(normalize(&folder.join(path))))
                })
        };
        if !listed("exclude") || listed("members") {
            return Ok(folder.to_path_buf());
        }
    }
    Ok(package_dir.to_path_buf())
}

fn read_cargo_manifest(path: &Path) -> Result<toml::Table, ConfigError> {
    let text =
        crate::fs::read_text(path, crate::fs::Links::Follow).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    toml::from_str(&text).map_err(|error| ConfigError::Invalid {
        path: path.to_path_buf(),
        message: toml_message(&error, &text),
        hint: None,
    })
}

/// `path` with `.` and `..` resolved lexically (as Cargo joins manifest paths).
fn normalize(path: &Path) -> PathBuf {
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                normalized.pop();
            }
            other => normalized.push(other),
        }
    }
    normalized
}

fn parse_entry(value: &toml::Value) -> Result<PluginEntry, String> {
    let entry = match value {
        toml::Value::String(locator) => PluginEntry {
            locator: locator
                .parse()
                .map_err(|e: crate::locator::LocatorError| e.to_string())?,
            version: None,
            asset: None,
            settings: RuntimeSettings::default(),
        },
        toml::Value::Table(table) => {
            let mut locator = None;
            let mut version = None;
            let mut asset = None;
            let mut settings = RuntimeSettings::default();
            for (key, value) in table {
                if RuntimeSettings::KEYS.contains(&key.as_str()) {
                    settings.set(key, value)?;
                    continue;
                }
                let text = || {
                    value.as_str().ok_or_else(|| {
                        format!("`{key}` must be a string, found {}", value.type_str())
                    })
                };
                match key.as_str() {
                    "locator" => {
                        locator = Some(
                            text()?
                                .parse::<PluginLocator>()
                                .map_err(|e| e.to_string())?,
                        );
                    }
                    "version" => {
                        let text = text()?;
                        version = Some(text.parse::<semver::VersionReq>().map_err(|e| {
                            format!("`version = \"{text}\"` is not a semver requirement: {e}")
                        })?);
                    }
                    "asset" => {
                        let text = text()?;
                        if !is_asset_name(text) {
                            return Err(asset_message(text));
                        }
                        asset = Some(text.to_string());
                    }
                    other => {
                        return Err(format!(
                            "unknown key `{other}`; expected `locator`, `version`, `asset` or a runtime setting ({})",
                            RuntimeSettings::KEYS
                                .iter()
                                .map(|key| format!("`{key}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                }
            }
            PluginEntry {
                locator: locator.ok_or("missing `locator`")?,
                version,
                asset,
                settings,
            }
        }
        other => {
            return Err(format!(
                "expected a locator string or a table, found {}",
                other.type_str()
            ));
        }
    };
    check_entry(&entry)?;
    Ok(entry)
}

fn asset_message(asset: &str) -> String {
    format!("`asset = \"{}\"` must be a file name", asset.escape_debug())
}

fn check_entry(entry: &PluginEntry) -> Result<(), String> {
    let github = matches!(entry.locator, PluginLocator::GitHub(_));
    if let PluginLocator::Registry(registry) = &entry.locator {
        if entry.asset.is_some() {
            return Err("`asset` applies only to `github://` locators".into());
        }
        if entry.version.is_some() && (registry.tag.is_some() || registry.digest.is_some()) {
            return Err(
                "give either a tag (`:…`), a digest (`@sha256:…`) or a `version` requirement, not both"
                    .into(),
            );
        }
        return Ok(());
    }
    if !github && (entry.version.is_some() || entry.asset.is_some()) {
        return Err(
            "`version` and `asset` apply only to `github://` locators (`version` also to `registry://`)".into(),
        );
    }
    if let PluginLocator::GitHub(github) = &entry.locator
        && github.tag.is_some()
        && entry.version.is_some()
    {
        return Err("give either a tag (`@…`) or a `version` requirement, not both".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_stops_at_a_vcs_root() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(
            dir.path().join(CONFIG_NAME),
            "[plugins]\nx = \"file://x.wasm\"\n",
        )
        .unwrap();
        let sub = dir.path().join("repo/sub");
        fs_err::create_dir_all(&sub).unwrap();
        assert!(Config::discover(&sub).is_ok());
        fs_err::create_dir(dir.path().join("repo/.git")).unwrap();
        assert!(matches!(
            Config::discover(&sub),
            Err(ConfigError::NotFound { .. })
        ));
    }

    /// A config in a folder that another user owns, above the start folder, is never read
    /// (needs root to give the folder away, as in CI).
    #[cfg(unix)]
    #[test]
    #[expect(unsafe_code, reason = "geteuid has no safe wrapper in std")]
    fn discovery_never_reads_another_users_folder() {
        let dir = tempfile::tempdir().unwrap();
        let outer = dir.path().join("outer");
        let inner = outer.join("inner");
        fs_err::create_dir_all(&inner).unwrap();
        fs_err::write(
            outer.join(CONFIG_NAME),
            "[plugins]\nx = \"file://x.wasm\"\n",
        )
        .unwrap();
        assert!(Config::discover(&inner).is_ok());
        // SAFETY: `geteuid` has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("not root: cannot give a folder to another user; skipping");
            return;
        }
        let status = std::process::Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(&outer)
            .status()
            .unwrap();
        assert!(status.success());
        std::process::Command::new("chown")
            .args(["0:0"])
            .arg(&inner)
            .status()
            .unwrap();
        assert!(matches!(
            Config::discover(&inner),
            Err(ConfigError::NotFound { .. })
        ));
        // The start folder itself is the user's choice, whoever owns it.
        assert!(Config::discover(&outer).is_ok());
    }

    #[test]
    fn parses_strings_and_tables() {
        let text = r#"
[plugins]
echo = "file://./plugins/echo.wasm"
bun = { locator = "github://moonrepo/plugins/bun_tool", version = "^0.14", asset = "bun.wasm" }
"#;
        let config = Config::parse(text, Path::new("/p/warpgate.toml")).unwrap();
        assert_eq!(config.plugins.len(), 2);
        let bun = &config.plugins[&Id::new("bun").unwrap()];
        assert_eq!(bun.version, Some("^0.14".parse().unwrap()));
        assert_eq!(bun.asset.as_deref(), Some("bun.wasm"));
        assert_eq!(config.lockfile_path(), Path::new("/p/warpgate.lock"));
    }

    #[test]
    fn errors_name_file_entry_and_position() {
        let cases = [
            (
                "[plugins]\necho = \"ftp://x\"\n",
                "plugin `echo` (line 2, column 8): invalid plugin locator `ftp://x`",
            ),
            (
                "[plugins]\n\"a/b\" = \"file://x.wasm\"\n",
                "plugin `a/b` (line 2",
            ),
            (
                "[plugins]\nx = { locator = \"file://x\", colour = \"red\" }\n",
                "unknown key `colour`",
            ),
            ("[plugins]\nx = { version = \"^1\" }\n", "missing `locator`"),
            (
                "[plugins]\nx = { locator = \"github://a/b\", version = \"one\" }\n",
                "not a semver requirement",
            ),
            (
                "[plugins]\nx = { locator = \"file://x\", version = \"^1\" }\n",
                "apply only to `github://`",
            ),
            ("[plugins]\nx = 3\n", "found integer"),
            (
                "[plugins]\nx = { locator = \"github://a/b\", asset = \"..\" }\n",
                "`asset = \"..\"` must be a file name",
            ),
            (
                "[plugins]\nx = { locator = \"github://a/b\", asset = \"x\\u007f.wasm\" }\n",
                "`asset = \"x\\u{7f}.wasm\"` must be a file name",
            ),
            (
                "[plugins]\nhello = \"file://a.wasm\"\nHello = \"file://b.wasm\"\n",
                "plugin `hello` (line 2, column 9): differs from `Hello` only in letter case; their files would be one file on macOS and Windows\nhint: rename one of them",
            ),
            ("[plugin]\n", "unknown key `plugin` (line 1, column 2)"),
            ("[plugins\n", "line 1"),
        ];
        for (text, wanted) in cases {
            let error = Config::parse(text, Path::new("/p/warpgate.toml")).unwrap_err();
            let message = crate::diagnostic::Report::new(&error).to_string();
            assert!(
                message.starts_with("invalid config `/p/warpgate.toml`"),
                "{message}"
            );
            assert!(message.contains(wanted), "{message}\nwanted: {wanted}");
        }
    }

    fn write(path: &Path, text: &str) {
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    }

    const PACKAGE: &str = "[package]\nname = \"member\"\nversion = \"0.1.0\"\n";

    #[test]
    fn workspace_root_follows_cargo() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        write(
            &ws.join("Cargo.toml"),
            "[workspace]\nmembers = [\"crates/*\", \"skipped/listed\"]\nexclude = [\"skipped\"]\n",
        );
        // A member, at any depth, belongs to the nearest `[workspace]` above it.
        write(&ws.join("crates/a/Cargo.toml"), PACKAGE);
        assert_eq!(cargo_workspace_root(&ws.join("crates/a")).unwrap(), ws);
        // A manifest with `[workspace]` is its own root.
        assert_eq!(cargo_workspace_root(&ws).unwrap(), ws);
        write(
            &ws.join("crates/nested/Cargo.toml"),
            &format!("{PACKAGE}[workspace]\n"),
        );
        assert_eq!(
            cargo_workspace_root(&ws.join("crates/nested")).unwrap(),
            ws.join("crates/nested")
        );
        // Excluded: its own root (no other workspace above), unless `members` names it.
        write(&ws.join("skipped/b/Cargo.toml"), PACKAGE);
        assert_eq!(
            cargo_workspace_root(&ws.join("skipped/b")).unwrap(),
            ws.join("skipped/b")
        );
        write(&ws.join("skipped/listed/Cargo.toml"), PACKAGE);
        assert_eq!(
            cargo_workspace_root(&ws.join("skipped/listed")).unwrap(),
            ws
        );
        // `package.workspace` names the root.
        write(
            &ws.join("elsewhere/c/Cargo.toml"),
            "[package]\nname = \"c\"\nworkspace = \"../..\"\n",
        );
        assert_eq!(cargo_workspace_root(&ws.join("elsewhere/c")).unwrap(), ws);
        // `cargo package` verifies crates under `target/package`: never part of the workspace.
        write(&ws.join("target/package/d-0.1.0/Cargo.toml"), PACKAGE);
        assert_eq!(
            cargo_workspace_root(&ws.join("target/package/d-0.1.0")).unwrap(),
            ws.join("target/package/d-0.1.0")
        );
        // A broken manifest on the way is an error naming it.
        write(&ws.join("Cargo.toml"), "[workspace\n");
        let error = cargo_workspace_root(&ws.join("crates/a")).unwrap_err();
        assert!(
            error
                .to_string()
                .contains(&format!("`{}`", ws.join("Cargo.toml").display())),
            "{error}"
        );
    }

    #[test]
    fn discovery_stops_at_the_workspace_root() {
        let dir = tempfile::tempdir().unwrap();
        // A stray config above the workspace (as in `$HOME`) must not be picked up.
        write(
            &dir.path().join(CONFIG_NAME),
            "[plugins]\nstray = \"file://./stray.wasm\"\n",
        );
        let ws = dir.path().join("ws");
        write(&ws.join("Cargo.toml"), "[workspace]\nmembers = [\"app\"]\n");
        write(&ws.join("app/Cargo.toml"), PACKAGE);
        write(&ws.join("app/src/lib.rs"), "");
        // Found at the workspace root, from a member's folder.
        write(
            &ws.join(CONFIG_NAME),
            "[plugins]\nhello = \"file://./hello.wasm\"\n",
        );
        let config = Config::discover(&ws.join("app/src")).unwrap();
        assert_eq!(config.path, ws.join(CONFIG_NAME));

        fs_err::remove_file(ws.join(CONFIG_NAME)).unwrap();
        let error = Config::discover(&ws.join("app")).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(&format!("up to the workspace root `{}`", ws.display())),
            "{message}"
        );

        // Outside any Cargo project the search goes on up.
        let loose = dir.path().join("loose/deeper");
        fs_err::create_dir_all(&loose).unwrap();
        assert_eq!(
            Config::discover(&loose).unwrap().path,
            dir.path().join(CONFIG_NAME)
        );
    }

    #[test]
    fn discovery_walks_up() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(
            dir.path().join(CONFIG_NAME),
            "[plugins]\necho = \"file://./echo.wasm\"\n",
        )
        .unwrap();
        let nested = dir.path().join("a/b");
        fs_err::create_dir_all(&nested).unwrap();
        let config = Config::discover(&nested).unwrap();
        assert_eq!(config.root(), dir.path());
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(crate::proptests::config())]

        /// A `[plugins]` table declares the same plugins, or fails alike, whether it is read
        /// from `warpgate.toml` or from Cargo metadata (as JSON).
        #[test]
        fn cargo_metadata_reads_as_warpgate_toml(plugins in crate::proptests::plugins_table()) {
            let path = Path::new("/project/Cargo.toml");
            let mut document = toml::Table::new();
            document.insert("plugins".into(), toml::Value::Table(plugins.clone()));
            let text = toml::to_string(&document).unwrap();
            let from_toml = Config::parse(&text, path);
            let json = serde_json::to_value(&plugins).unwrap();
            let from_json = Config::from_json(
                &json,
                None,
                path.to_path_buf(),
                ConfigSource::WorkspaceMetadata,
                "workspace.metadata.warpgate.plugins",
            );
            match (from_toml, from_json) {
                (Ok(from_toml), Ok(from_json)) => {
                    prop_assert_eq!(from_toml.plugins, from_json.plugins);
                }
                (Err(_), Err(_)) => {}
                (from_toml, from_json) => {
                    return Err(TestCaseError::fail(format!(
                        "{text}\nfrom TOML: {from_toml:?}\nfrom JSON: {from_json:?}"
                    )));
                }
            }
        }
    }
}
