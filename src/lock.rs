//! `warpgate lock`: resolving a [`Config`] into a [`Lockfile`].
//!
//! Behaviour follows Cargo:
//!
//! - **write** (default): entries whose lock still matches the config are kept as they are;
//!   the rest are resolved (in parallel) and the lockfile is written atomically if its
//!   bytes changed.
//! - **`--locked`**: nothing is resolved or written; if the lock is missing or disagrees with
//!   the config, [`LockError::Stale`] lists the entries (exit code 1 in the CLI).
//! - **`--offline`**: no socket is opened. `file://` entries still resolve; a GitHub or URL
//!   entry the lock does not already pin is an error naming it.
//! - **`--frozen`**: both.
//! - **`--update [ID…]`**: without ids, every floating entry (GitHub without a tag, URLs) is
//!   re-resolved even though its lock entry still matches. Named ids are re-resolved whatever
//!   their kind, so a pinned tag whose asset was replaced can be re-locked on purpose.
//!
//! Resolution runs every entry at once: the work is bounded by the HTTP client's per-host
//! limit ([`crate::http::HttpOptions::max_requests_per_host`]), not by a fixed count here, and
//! the entries of one GitHub repository share one release listing. Before any GitHub entry is
//! resolved, [`GitHubClient::check_budget`] makes sure the rate limit left can cover them.
//!
//! **Nothing is downloaded when nothing changed.** A GitHub entry whose release asset is the
//! one already locked (same tag, asset and URL) keeps its locked checksum when the cache still
//! holds those bytes, unless the entry was named in `--update ID…` and the API gives no
//! digest (the way to re-lock an asset replaced in place). When the API's `digest` names a
//! blob the cache holds, that blob is used as well.
//!
//! An entry "matches" when the lock has the same locator string, the same `version`
//! requirement, the asset named in the config (if any), and — for `file://` plugins — the
//! file still hashes to the locked checksum.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;

use crate::checksum::Checksum;
use crate::config::{Config, ConfigError, PluginEntry};
use crate::diagnostic::{Class, Diagnostic};
use crate::fetch::{FetchError, Fetcher};
use crate::github::{GitHubClient, GitHubError, ResolvedAsset};
use crate::id::Id;
use crate::locator::PluginLocator;
use crate::lockfile::{LockedPlugin, Lockfile, LockfileError};
use crate::source::{SourceError, Sources};

/// The most plugins resolved at once; the HTTP client bounds requests per host.
const MAX_PARALLEL: usize = 1024;

/// Which floating entries to re-resolve.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Update {
    /// None: keep every entry the lock still matches.
    #[default]
    Nothing,
    /// Every floating entry.
    All,
    /// These entries, floating or pinned.
    Only(Vec<Id>),
}

/// Options for [`lock`].
#[derive(Clone, Debug, Default)]
pub struct LockOptions {
    /// `--locked`: fail instead of changing the lock. Holds the flag's name for messages.
    pub locked: Option<String>,
    /// `--offline`: why the network is disabled (e.g. "`--offline`"), if it is.
    pub offline: Option<String>,
    /// Which floating entries to re-resolve.
    pub update: Update,
    /// Resolve but do not write the lockfile (`warpgate update --dry-run`).
    pub dry_run: bool,
}

/// Why an entry of the lock does not match the config.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StaleReason {
    /// The config declares it; the lock lacks it.
    NotLocked,
    /// The lock has it; the config no longer declares it.
    NotDeclared,
    /// The locator, version requirement or asset changed.
    Changed,
    /// The `file://` plugin's bytes changed.
    FileChanged,
    /// The `file://` plugin's file is missing.
    FileMissing,
}

impl std::fmt::Display for StaleReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotLocked => "declared in the config but not in the lock",
            Self::NotDeclared => "locked but no longer declared in the config",
            Self::Changed => "its config entry changed since it was locked",
            Self::FileChanged => "its file changed since it was locked",
            Self::FileMissing => "its file is missing",
        })
    }
}

/// A lock entry that differs from the config.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StaleEntry {
    /// The plugin.
    pub id: Id,
    /// What differs.
    pub reason: StaleReason,
    /// For [`StaleReason::FileChanged`]: the checksum the lock records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_checksum: Option<Checksum>,
    /// For [`StaleReason::FileChanged`]: the checksum of the file now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_checksum: Option<Checksum>,
}

impl StaleEntry {
    /// An entry whose only detail is its reason.
    pub fn new(id: Id, reason: StaleReason) -> Self {
        Self {
            id,
            reason,
            locked_checksum: None,
            current_checksum: None,
        }
    }

    /// A `file://` entry whose bytes changed from `locked` to `current`.
    pub fn file_changed(id: Id, locked: Checksum, current: Checksum) -> Self {
        Self {
            locked_checksum: Some(locked),
            current_checksum: Some(current),
            ..Self::new(id, StaleReason::FileChanged)
        }
    }
}

fn list_stale(entries: &[StaleEntry]) -> String {
    entries
        .iter()
        .map(|entry| {
            let mut line = format!("\n  - `{}`: {}", entry.id, entry.reason);
            if let (Some(locked), Some(current)) = (entry.locked_checksum, entry.current_checksum) {
                line.push_str(&format!(
                    "\n      Expected: `{locked}`\n      Computed: `{current}`"
                ));
            }
            line
        })
        .collect()
}

/// Why locking failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The config could not be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The lockfile could not be read or written.
    #[error(transparent)]
    Lockfile(#[from] LockfileError),
    /// The lockfile is missing.
    #[error("`{}` is missing and {flag} forbids creating it", path.display())]
    Missing {
        /// Where the lock was expected.
        path: PathBuf,
        /// The flag that forbade writing.
        flag: String,
    },
    /// The lockfile disagrees with the config.
    #[error("`{}` is out of date and {flag} forbids updating it:{}", path.display(), list_stale(entries))]
    Stale {
        /// The lockfile.
        path: PathBuf,
        /// The flag that forbade writing.
        flag: String,
        /// The entries that differ.
        entries: Vec<StaleEntry>,
    },
    /// An entry must be resolved but the network is disabled.
    #[error(
        "network access is disabled by {reason}, but plugin `{id}` (`{locator}`) must be resolved: {why}"
    )]
    Offline {
        /// The plugin.
        id: Id,
        /// Its locator.
        locator: String,
        /// What disabled the network.
        reason: String,
        /// Why it must be resolved (not locked, changed, asked to update).
        why: String,
    },
    /// `--update` named an id the config does not declare.
    #[error("cannot update `{id}`: no such plugin in `{}`", config.display())]
    UnknownId {
        /// The id.
        id: Id,
        /// The config file.
        config: PathBuf,
    },
    /// A `file://` plugin is missing or unreadable.
    #[error("plugin `{id}`: cannot read `{}` (from `{locator}`)", path.display())]
    File {
        /// The plugin.
        id: Id,
        /// The locator.
        locator: String,
        /// The resolved path.
        path: PathBuf,
        /// The config file.
        config: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// [`resolve_remote`] was given a `file://` locator, which only a config's folder anchors
    /// ([`resolve_entry`] resolves it).
    #[error("plugin `{id}`: `{locator}` is a local file; it is resolved from a config's folder")]
    LocalFile {
        /// The plugin.
        id: Id,
        /// The locator.
        locator: String,
    },
    /// The GitHub API rate limit left cannot cover the entries to resolve.
    #[error(transparent)]
    Budget(Box<GitHubError>),
    /// Resolving a GitHub release failed.
    #[error("failed to resolve plugin `{id}`")]
    GitHub {
        /// The plugin.
        id: Id,
        /// The resolver's error.
        #[source]
        source: Box<GitHubError>,
    },
    /// Downloading failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A locked plugin's bytes could not be had.
    #[error(transparent)]
    Source(#[from] SourceError),
}

impl Diagnostic for LockError {
    fn class(&self) -> Class {
        match self {
            Self::Missing { .. } | Self::Stale { .. } => Class::CheckFailed,
            Self::Fetch(inner) => inner.class(),
            Self::Source(inner) => inner.class(),
            _ => Class::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Missing { .. } => Some("run `warpgate lock` and commit `warpgate.lock`".into()),
            Self::Stale { .. } => Some("run `warpgate lock` to update the lockfile".into()),
            Self::Offline { .. } => Some("run `warpgate lock` while online".into()),
            Self::UnknownId { .. } => {
                Some("run `warpgate list` to see the declared plugins".into())
            }
            Self::File { config, .. } => Some(format!(
                "fix the path in `{}`; relative paths start at the config's folder",
                config.display()
            )),
            Self::Config(inner) => inner.hint(),
            Self::Lockfile(inner) => inner.hint(),
            Self::Budget(inner) => inner.hint(),
            Self::Fetch(inner) => inner.hint(),
            Self::Source(inner) => inner.hint(),
            Self::LocalFile { .. } | Self::GitHub { .. } => None,
        }
    }
}

/// The result of [`lock`].
#[derive(Clone, Debug)]
pub struct LockOutcome {
    /// The lockfile as it now stands.
    pub lockfile: Lockfile,
    /// Entries that were added, changed or removed.
    pub changes: Vec<LockChange>,
    /// Whether `warpgate.lock` was written.
    pub written: bool,
}

/// One entry's change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockChange {
    /// The plugin.
    pub id: Id,
    /// The entry before, if any.
    pub old: Option<LockedPlugin>,
    /// The entry after, if any.
    pub new: Option<LockedPlugin>,
}

/// The path of a `file://` locator's file, relative to `root`: the path the lock records
/// ([`file_lock_path`](crate::lockfile::file_lock_path), `..` folded lexically as Cargo does
/// for path dependencies), so that the file hashed is the file recorded, even when a folder
/// before a `..` is a link.
pub fn file_path(root: &Path, file: &str) -> PathBuf {
    root.join(crate::lockfile::file_lock_path(file))
}

/// The checksum and size of a `file://` plugin's file (a regular file, links followed, read
/// up to [`MAX_PLUGIN_SIZE`](crate::fs::MAX_PLUGIN_SIZE)).
fn hash_plugin_file(path: &Path) -> std::io::Result<(Checksum, u64)> {
    crate::fs::hash_file(path, crate::fs::MAX_PLUGIN_SIZE, crate::fs::Links::Follow)
}

/// Why `entry`'s lock entry no longer matches it, if it does not, and for a changed `file://`
/// plugin the file's checksum now.
fn staleness(
    config: &Config,
    entry: &PluginEntry,
    locked: Option<&LockedPlugin>,
) -> Option<(StaleReason, Option<Checksum>)> {
    let Some(locked) = locked else {
        return Some((StaleReason::NotLocked, None));
    };
    if locked.locator.to_string() != entry.locator.to_string()
        || locked.requirement != entry.version
        || entry
            .asset
            .as_ref()
            .is_some_and(|asset| locked.asset.as_ref() != Some(asset))
    {
        return Some((StaleReason::Changed, None));
    }
    if let PluginLocator::File { file, .. } = &entry.locator {
        return match hash_plugin_file(&file_path(config.root(), file)) {
            Ok((checksum, size)) if checksum == locked.checksum && size == locked.size => None,
            Ok((checksum, _)) => Some((StaleReason::FileChanged, Some(checksum))),
            Err(_) => Some((StaleReason::FileMissing, None)),
        };
    }
    None
}

/// Every difference between the config and the lock (empty when the lock is up to date).
/// Needs no network; hashes `file://` plugins.
pub fn stale_entries(config: &Config, lockfile: &Lockfile) -> Vec<StaleEntry> {
    let mut stale: Vec<StaleEntry> = config
        .plugins
        .iter()
        .filter_map(|(id, entry)| {
            let locked = lockfile.plugins.get(id);
            staleness(config, entry, locked).map(|(reason, current)| match (current, locked) {
                (Some(current), Some(locked)) => {
                    StaleEntry::file_changed(id.clone(), locked.checksum, current)
                }
                _ => StaleEntry::new(id.clone(), reason),
            })
        })
        .collect();
    stale.extend(
        lockfile
            .plugins
            .keys()
            .filter(|id| !config.plugins.contains_key(*id))
            .map(|id| StaleEntry::new(id.clone(), StaleReason::NotDeclared)),
    );
    stale.sort_by(|a, b| a.id.cmp(&b.id));
    stale
}

/// Checks that `lockfile` covers `config` exactly, as `--locked` does; `flag` names what
/// demanded it in the error (for example "`--locked`" or "the build script").
pub fn check_locked(
    config: &Config,
    lockfile: Option<&Lockfile>,
    flag: &str,
) -> Result<(), LockError> {
    let path = config.lockfile_path();
    let Some(lockfile) = lockfile else {
        return Err(LockError::Missing {
            path,
            flag: flag.to_string(),
        });
    };
    let entries = stale_entries(config, lockfile);
    if entries.is_empty() {
        Ok(())
    } else {
        Err(LockError::Stale {
            path,
            flag: flag.to_string(),
            entries,
        })
    }
}

/// Reads `config`'s lockfile for a command that uses it without changing it, and checks that
/// it covers the config exactly. `flag` names the command in the errors: a missing lockfile
/// is [`LockError::Missing`], a stale one [`LockError::Stale`] (both failed checks).
pub fn read_locked(config: &Config, flag: &str) -> Result<Lockfile, LockError> {
    let lockfile = Lockfile::read(&config.lockfile_path())?;
    check_locked(config, lockfile.as_ref(), flag)?;
    Ok(lockfile.unwrap_or_default())
}

/// Resolves `config` into a lockfile according to `options` (see the module docs).
pub async fn lock(
    config: &Config,
    options: &LockOptions,
    fetcher: &Fetcher,
    github: &GitHubClient,
) -> Result<LockOutcome, LockError> {
    let path = config.lockfile_path();
    let previous = Lockfile::read(&path)?;

    if let Update::Only(ids) = &options.update
        && let Some(unknown) = ids.iter().find(|id| !config.plugins.contains_key(*id))
    {
        return Err(LockError::UnknownId {
            id: unknown.clone(),
            config: config.path.clone(),
        });
    }

    if let Some(flag) = &options.locked {
        check_locked(config, previous.as_ref(), flag)?;
        return Ok(LockOutcome {
            lockfile: previous.unwrap_or_default(),
            changes: Vec::new(),
            written: false,
        });
    }

    let old = previous.clone().unwrap_or_default();
    let mut to_resolve = Vec::new();
    let mut next = Lockfile::default();
    for (id, entry) in &config.plugins {
        let locked = old.plugins.get(id);
        let update = match &options.update {
            Update::Nothing => false,
            Update::All => entry.locator.is_floating(),
            Update::Only(ids) => ids.contains(id),
        };
        match (staleness(config, entry, locked), locked) {
            (None, Some(locked)) if !update => {
                next.plugins.insert(id.clone(), locked.clone());
            }
            (None, _) => to_resolve.push((id, entry, "was asked to update".to_string())),
            (Some((stale, _)), _) => to_resolve.push((id, entry, stale.to_string())),
        }
    }

    if let Some(reason) = &options.offline
        && let Some((id, entry, why)) = to_resolve
            .iter()
            .find(|(_, entry, _)| !matches!(entry.locator, PluginLocator::File { .. }))
    {
        return Err(LockError::Offline {
            id: (*id).clone(),
            locator: entry.locator.to_string(),
            reason: reason.clone(),
            why: why.clone(),
        });
    }

    let repositories: Vec<&crate::locator::GitHubLocator> = to_resolve
        .iter()
        .filter_map(|(_, entry, _)| match &entry.locator {
            PluginLocator::GitHub(locator) => Some(locator),
            _ => None,
        })
        .collect();
    github
        .check_budget(&repositories)
        .await
        .map_err(|error| LockError::Budget(Box::new(error)))?;

    let parallel = to_resolve.len().clamp(1, MAX_PARALLEL);
    let resolved: Vec<Result<(Id, LockedPlugin), LockError>> =
        futures_util::stream::iter(to_resolve.into_iter().map(|(id, entry, _)| {
            let previous = old.plugins.get(id);
            let named = matches!(&options.update, Update::Only(ids) if ids.contains(id));
            async move {
                let reuse = Reuse {
                    previous,
                    same_url_is_enough: !named,
                };
                resolve_entry_reusing(config, id, entry, fetcher, github, reuse)
                    .await
                    .map(|locked| (id.clone(), locked))
            }
        }))
        .buffer_unordered(parallel)
        .collect()
        .await;
    for result in resolved {
        let (id, locked) = result?;
        next.plugins.insert(id, locked);
    }

    let mut changes = Vec::new();
    for id in old.plugins.keys().chain(next.plugins.keys()) {
        let (before, after) = (old.plugins.get(id), next.plugins.get(id));
        if before != after && !changes.iter().any(|change: &LockChange| &change.id == id) {
            changes.push(LockChange {
                id: id.clone(),
                old: before.cloned(),
                new: after.cloned(),
            });
        }
    }
    changes.sort_by(|a, b| a.id.cmp(&b.id));
    let written = !options.dry_run && next.write(&path)?;
    Ok(LockOutcome {
        lockfile: next,
        changes,
        written,
    })
}

/// Resolves one entry to exact bytes, downloading them into the cache.
pub async fn resolve_entry(
    config: &Config,
    id: &Id,
    entry: &PluginEntry,
    fetcher: &Fetcher,
    github: &GitHubClient,
) -> Result<LockedPlugin, LockError> {
    resolve_entry_reusing(config, id, entry, fetcher, github, Reuse::default()).await
}

/// What a resolution may take over instead of downloading (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct Reuse<'a> {
    /// The entry as locked before, if it was.
    pub previous: Option<&'a LockedPlugin>,
    /// Whether the same tag, asset and URL as `previous` are enough to keep its checksum when
    /// the API gives no digest (`false` re-downloads, to catch an asset replaced in place).
    pub same_url_is_enough: bool,
}

impl Reuse<'_> {
    /// The cached checksum and size for `asset`, when its bytes need no download.
    fn cached(
        &self,
        fetcher: &Fetcher,
        asset: &ResolvedAsset,
    ) -> Result<Option<(Checksum, u64)>, LockError> {
        let cache = fetcher.cache();
        let size_of = |path: &Path| fs_err::metadata(path).map(|metadata| metadata.len()).ok();
        if let Some(digest) = &asset.digest {
            if let Some(path) = cache.get(digest).map_err(FetchError::from)?
                && let Some(size) = size_of(&path)
            {
                return Ok(Some((*digest, size)));
            }
            return Ok(None);
        }
        if let Some(previous) = self.previous
            && self.same_url_is_enough
            && previous.tag.as_deref() == Some(asset.tag.as_str())
            && previous.asset.as_deref() == Some(asset.asset.as_str())
            && previous.url.as_deref() == Some(asset.url.as_str())
            && cache
                .get(&previous.checksum)
                .map_err(FetchError::from)?
                .is_some()
        {
            return Ok(Some((previous.checksum, previous.size)));
        }
        Ok(None)
    }
}

/// [`resolve_entry`], keeping bytes that `reuse` says need no download.
pub async fn resolve_entry_reusing(
    config: &Config,
    id: &Id,
    entry: &PluginEntry,
    fetcher: &Fetcher,
    github: &GitHubClient,
    reuse: Reuse<'_>,
) -> Result<LockedPlugin, LockError> {
    let PluginLocator::File { file, .. } = &entry.locator else {
        return resolve_remote(id, entry, fetcher, github, reuse).await;
    };
    fetcher.reporter().resolving(id);
    let path = file_path(config.root(), file);
    let (checksum, size) = hash_plugin_file(&path).map_err(|source| LockError::File {
        id: id.clone(),
        locator: entry.locator.to_string(),
        path: path.clone(),
        config: config.path.clone(),
        source,
    })?;
    Ok(LockedPlugin {
        path: Some(crate::lockfile::file_lock_path(file)),
        ..LockedPlugin::pinned(entry.locator.clone(), entry.version.clone(), checksum, size)
    })
}

/// Resolves an entry that is not a `file://` plugin (a URL, GitHub or registry locator) to
/// exact bytes, downloading them into the cache; needs no config.
pub async fn resolve_remote(
    id: &Id,
    entry: &PluginEntry,
    fetcher: &Fetcher,
    github: &GitHubClient,
    reuse: Reuse<'_>,
) -> Result<LockedPlugin, LockError> {
    fetcher.reporter().resolving(id);
    let pinned = |checksum, size| {
        LockedPlugin::pinned(entry.locator.clone(), entry.version.clone(), checksum, size)
    };
    let locked = match &entry.locator {
        PluginLocator::File { .. } => {
            return Err(LockError::LocalFile {
                id: id.clone(),
                locator: entry.locator.to_string(),
            });
        }
        PluginLocator::Url { url } => {
            let (_, checksum, size) = fetcher.fetch_unpinned(id, url, None).await?;
            LockedPlugin {
                url: Some(url.clone()),
                ..pinned(checksum, size)
            }
        }
        PluginLocator::GitHub(locator) => {
            let asset = github
                .resolve(locator, entry.version.as_ref(), entry.asset.as_deref())
                .await
                .map_err(|source| LockError::GitHub {
                    id: id.clone(),
                    source: Box::new(source),
                })?;
            let (checksum, size) = match reuse.cached(fetcher, &asset)? {
                Some(cached) => {
                    tracing::debug!(%id, url = %asset.url, "unchanged and cached; not downloading");
                    cached
                }
                None => {
                    let (_, checksum, size) = fetcher
                        .fetch_unpinned(id, &asset.url, asset.digest.as_ref())
                        .await?;
                    (checksum, size)
                }
            };
            LockedPlugin {
                tag: Some(asset.tag),
                asset: Some(asset.asset),
                url: Some(asset.url),
                ..pinned(checksum, size)
            }
        }
        PluginLocator::Registry(locator) => {
            let resolved = fetcher
                .registry()
                .resolve(locator, entry.version.as_ref())
                .await
                .map_err(|error| crate::source::registry_error(id, &locator.to_string(), error))?;
            let locked = LockedPlugin {
                registry: Some(locator.registry.clone()),
                repository: Some(locator.repository.clone()),
                tag: resolved.tag,
                digest: Some(resolved.manifest_digest),
                ..pinned(resolved.layer_digest, resolved.size)
            };
            // The layer, by digest, from the mirror or the registry, verified into the cache (a
            // registry entry has no `file://` path to anchor, hence no root).
            let found = Sources::new("", fetcher).materialize(id, &locked).await?;
            let size = fs_err::metadata(&found.path).map_or(locked.size, |metadata| metadata.len());
            LockedPlugin { size, ..locked }
        }
    };
    Ok(locked)
}
