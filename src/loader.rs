//! `PluginLoader`: plugins chosen at run time, through the verified cache.
//!
//! For apps that pick plugins while running (as proto does). [`PluginLoader::load_plugin`]
//! turns a locator into the absolute path of verified bytes on this machine, sharing the
//! resolvers ([`GitHubClient`]), downloader ([`Fetcher`]) and content-addressed [`Cache`]
//! with `warpgate lock`.
//!
//! Its behaviour, where the method signatures leave room:
//!
//! - The loader's cache root is `plugins_dir` (the content-addressed layout of [`Cache`]).
//!   Downloads are staged inside it so the final rename is atomic; `temp_dir` is kept for
//!   API compatibility and not written to.
//! - The returned path is the cache blob, `…/blobs/sha256/<hex>` (no `.wasm` suffix); Extism
//!   loads it by content, not by name.
//! - With a lockfile ([`PluginLoader::with_lockfile`]), a plugin whose id and locator the
//!   lock pins loads exactly the pinned bytes from the locked URL, without an API call. An id
//!   the lock pins to another locator fails ([`LoaderError::NotPinned`]) unless
//!   [`PluginLoader::allow_unpinned_locators`] lets it load without the lock (with a logged
//!   warning): a stale lock or a swapped locator never silently floats.
//! - [`PluginLoader::load_verified`] also returns the bytes' checksum ([`LoadedPlugin`]), so that
//!   Extism re-checks the file it reads; [`PluginLoader::load_plugin`] returns the path only.
//! - Otherwise a resolution is recorded in `v1/refs/<key>.json` (locator, tag, URL,
//!   checksum, time). Pinned locators (a GitHub tag) reuse the record forever; floating ones
//!   (no tag, URLs) are re-resolved after [`PluginLoader::set_cache_duration`] (default one
//!   day). When a refresh fails (offline, rate limit, 5xx) and a verified copy exists, the
//!   copy is used and the failure logged as a warning: a plugin is never lost to a refresh.
//! - Offline ([`PluginLoader::set_offline`], or `WARPGATE_OFFLINE` / `CARGO_NET_OFFLINE`),
//!   only recorded resolutions and cached blobs are used; anything else fails naming the
//!   plugin.
//! - Concurrent loads of one locator, from threads or processes, take the record's
//!   cross-process lock and re-read the record, so one resolution and one download happen.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cache::Cache;
use crate::checksum::Checksum;
use crate::diagnostic::{Class, Diagnostic};
use crate::fetch::Fetcher;
use crate::fs::FileError;
use crate::github::GitHubClient;
use crate::http::{HttpClient, HttpOptions};
use crate::id::Id;
use crate::locator::PluginLocator;
use crate::lock::LockError;
use crate::lockfile::{LockedPlugin, Lockfile};
use crate::source::{Network, SourceError, Sources};

/// Default time a floating locator's resolution is reused before it is refreshed.
pub const DEFAULT_CACHE_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoaderError {
    /// A `file://` plugin does not exist.
    #[error("plugin `{id}`: file `{}` does not exist", path.display())]
    MissingFile {
        /// The plugin.
        id: Id,
        /// The path.
        path: PathBuf,
    },
    /// Offline and never resolved.
    #[error(
        "network access is disabled by {reason}, but plugin `{id}` (`{locator}`) has no verified copy in the cache (never downloaded, or the copy failed verification)"
    )]
    Offline {
        /// The plugin.
        id: Id,
        /// The locator.
        locator: String,
        /// What disabled the network.
        reason: String,
    },
    /// The lock pins this id to another locator.
    #[error("plugin `{id}`: the lock pins `{locked}`, not `{requested}`")]
    NotPinned {
        /// The plugin.
        id: Id,
        /// The locator the lock pins.
        locked: String,
        /// The locator asked for.
        requested: String,
    },
    /// Resolving failed.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A pinned plugin's bytes could not be had.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A cache operation failed.
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    /// `WARPGATE_MIRROR` is set to something that is not a mirror (and no
    /// [`PluginLoader::with_mirror`] replaced it): every load fails, as `warpgate` and
    /// `warpgate-build` do, rather than quietly skipping the mirror.
    #[error(transparent)]
    Mirror(#[from] crate::oci::mirror::MirrorSettingError),
}

impl Diagnostic for LoaderError {
    fn class(&self) -> Class {
        match self {
            Self::Lock(inner) => inner.class(),
            Self::Source(inner) => inner.class(),
            Self::Cache(inner) => inner.class(),
            _ => Class::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Offline { .. } => Some("load it once while online".into()),
            Self::NotPinned { requested, .. } => Some(format!(
                "run `warpgate lock` to pin `{requested}`, or load the locked locator (`PluginLoader::allow_unpinned_locators` loads other locators without the lock)"
            )),
            Self::MissingFile { .. } => None,
            Self::Lock(inner) => inner.hint(),
            Self::Source(inner) => inner.hint(),
            Self::Cache(inner) => inner.hint(),
            Self::Mirror(inner) => inner.hint(),
        }
    }
}

/// What a locator resolved to, as recorded in `v1/refs/`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Resolution {
    locator: String,
    checksum: Checksum,
    size: u64,
    url: Option<String>,
    tag: Option<String>,
    resolved_at: u64,
}

/// Loads plugins by locator into a verified cache.
#[derive(Debug)]
pub struct PluginLoader {
    plugins_dir: PathBuf,
    temp_dir: PathBuf,
    fetcher: Fetcher,
    github: GitHubClient,
    lockfile: Option<(Lockfile, PathBuf)>,
    /// Whether an id the lock pins may be loaded from another locator, without the lock.
    unpinned_fallback: bool,
    cache_duration: Duration,
    offline: Option<String>,
    /// Why `WARPGATE_MIRROR` is unusable, if it is.
    mirror_setting: Option<String>,
}

/// Verified plugin bytes on this machine: where they are, and their checksum.
///
/// Hand both to Extism ([`LoadedPlugin::wasm`], feature `runtime`) so that it checks the bytes
/// it reads against the checksum: the file could be changed between the check here and the
/// read there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedPlugin {
    /// The absolute path of the bytes.
    pub path: PathBuf,
    /// Their SHA-256.
    pub checksum: Checksum,
}

impl LoadedPlugin {
    /// An Extism module for the bytes, carrying their hash for Extism to check on load.
    #[cfg(feature = "runtime")]
    pub fn wasm(&self) -> crate::container::Wasm {
        crate::container::Wasm::file(&self.path).with_hash(self.checksum.hex())
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl PluginLoader {
    /// A loader caching into `plugins_dir`, with network settings from the environment
    /// (`GITHUB_API_URL`, tokens, `SSL_CERT_FILE`, offline variables, `WARPGATE_HTTP_*`).
    ///
    /// It cannot fail: an unusable `WARPGATE_HTTP_*` value or `SSL_CERT_FILE` is logged as a
    /// warning and the default used instead. An unusable `WARPGATE_MIRROR` makes every load
    /// fail with [`LoaderError::Mirror`] unless [`PluginLoader::with_mirror`] sets the
    /// mirror.
    pub fn new(plugins_dir: impl AsRef<Path>, temp_dir: impl AsRef<Path>) -> Self {
        let options = HttpOptions::offline_from_env();
        let options = options
            .clone()
            .with_limits_from_env()
            .unwrap_or_else(|error| {
                tracing::warn!(
                    "using the default HTTP time limits: {}",
                    crate::diagnostic::Report::new(&error).one_line()
                );
                options
            });
        let offline = options.offline.clone();
        let http = HttpClient::new(options.clone()).unwrap_or_else(|error| {
            tracing::warn!(
                "ignoring extra certificates: {}",
                crate::diagnostic::Report::new(&error).one_line()
            );
            HttpClient::new(HttpOptions {
                extra_ca_file: None,
                ..options
            })
            .expect("an HTTP client without extra certificates builds")
        });
        Self::with_http(plugins_dir, temp_dir, http, offline)
    }

    /// A loader over an explicit HTTP client (tests, custom settings).
    pub fn with_http(
        plugins_dir: impl AsRef<Path>,
        temp_dir: impl AsRef<Path>,
        http: HttpClient,
        offline: Option<String>,
    ) -> Self {
        // Absolute, so that every path `load_plugin` returns is absolute whatever the current
        // folder is later.
        let plugins_dir = plugins_dir.as_ref().to_path_buf();
        let plugins_dir = std::path::absolute(&plugins_dir).unwrap_or(plugins_dir);
        let (mirror, mirror_setting) = match crate::oci::mirror::from_env_or(None) {
            Ok(mirror) => (mirror, None),
            Err(error) => (None, Some(error.reason)),
        };
        Self {
            fetcher: Fetcher::new(Cache::new(&plugins_dir), http.clone()).with_mirror(mirror),
            github: GitHubClient::new(http),
            plugins_dir,
            temp_dir: temp_dir.as_ref().to_path_buf(),
            lockfile: None,
            unpinned_fallback: false,
            cache_duration: DEFAULT_CACHE_DURATION,
            offline,
            mirror_setting,
        }
    }

    /// Tries `mirror` (a `registry://HOST/NAMESPACE` repository) by digest before a pinned
    /// plugin's origin; `None` turns off the mirror taken from `WARPGATE_MIRROR`. Either
    /// way `WARPGATE_MIRROR` no longer matters.
    pub fn with_mirror(mut self, mirror: Option<crate::oci::reference::RegistryLocator>) -> Self {
        self.fetcher = self.fetcher.with_mirror(mirror);
        self.mirror_setting = None;
        self
    }

    /// Uses `github` for `github://` locators (for example one with another API URL).
    pub fn with_github(mut self, github: GitHubClient) -> Self {
        self.github = github;
        self
    }

    /// Pins plugins to `lockfile` (found at `lockfile_path`, whose folder anchors `file://`
    /// paths): a locator the lock pins for an id loads exactly the pinned bytes.
    pub fn with_lockfile(mut self, lockfile: Lockfile, lockfile_path: &Path) -> Self {
        let root = lockfile_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        self.lockfile = Some((lockfile, root));
        self
    }

    /// Lets an id that the lock pins be loaded from another locator, without the lock (with a
    /// logged warning); by default that is an error ([`LoaderError::NotPinned`]).
    pub fn allow_unpinned_locators(mut self, allow: bool) -> Self {
        self.unpinned_fallback = allow;
        self
    }

    /// How long a floating locator's resolution is reused before it is refreshed.
    pub fn set_cache_duration(&mut self, duration: Duration) {
        self.cache_duration = duration;
    }

    /// Disables (with the reason shown in errors) or enables network access.
    pub fn set_offline(&mut self, reason: Option<String>) {
        self.offline = reason;
    }

    /// The cache root.
    pub fn plugins_dir(&self) -> &Path {
        &self.plugins_dir
    }

    /// The temp folder given at construction (kept for API compatibility).
    pub fn temp_dir(&self) -> &Path {
        &self.temp_dir
    }

    /// The absolute path of verified bytes for `locator`, downloading when needed.
    ///
    /// Prefer [`PluginLoader::load_verified`], whose checksum lets Extism check the bytes it
    /// reads.
    pub async fn load_plugin(
        &self,
        id: impl AsRef<Id>,
        locator: impl AsRef<PluginLocator>,
    ) -> Result<PathBuf, LoaderError> {
        Ok(self.load_verified(id, locator).await?.path)
    }

    /// Verified bytes for `locator`, downloading when needed: their absolute path and checksum.
    pub async fn load_verified(
        &self,
        id: impl AsRef<Id>,
        locator: impl AsRef<PluginLocator>,
    ) -> Result<LoadedPlugin, LoaderError> {
        let id = id.as_ref();
        let locator = locator.as_ref();
        if let Some(reason) = &self.mirror_setting {
            return Err(crate::oci::mirror::MirrorSettingError {
                reason: reason.clone(),
            }
            .into());
        }
        if let Some((lockfile, root)) = &self.lockfile
            && let Some(locked) = lockfile.plugins.get(id)
        {
            if locked.locator.to_string() == locator.to_string() {
                let path = self.load_pinned(id, locked, root).await?;
                return Ok(LoadedPlugin {
                    path,
                    checksum: locked.checksum,
                });
            }
            if !self.unpinned_fallback {
                return Err(LoaderError::NotPinned {
                    id: id.clone(),
                    locked: locked.locator.to_string(),
                    requested: locator.to_string(),
                });
            }
            tracing::warn!(
                "plugin `{id}`: the lock pins `{}`, not `{locator}`; loading `{locator}` without the lock",
                locked.locator
            );
        }
        if let PluginLocator::File { file, path } = locator {
            let path = path.clone().unwrap_or_else(|| PathBuf::from(file));
            let path = std::path::absolute(&path).unwrap_or(path);
            if !path.is_file() {
                return Err(LoaderError::MissingFile {
                    id: id.clone(),
                    path,
                });
            }
            let (checksum, _) =
                crate::fs::hash_file(&path, crate::fs::MAX_PLUGIN_SIZE, crate::fs::Links::Follow)
                    .map_err(FileError::of::<crate::cache::CacheError>("read", &path))?;
            return Ok(LoadedPlugin { path, checksum });
        }
        self.load_remote(id, locator).await
    }

    async fn load_pinned(
        &self,
        id: &Id,
        locked: &LockedPlugin,
        root: &Path,
    ) -> Result<PathBuf, LoaderError> {
        let network = match &self.offline {
            Some(reason) => Network::Offline(reason.clone()),
            None => Network::Fetcher(&self.fetcher),
        };
        let sources = Sources::with_network(root, Some(self.fetcher.cache().clone()), network);
        match sources.materialize(id, locked).await {
            Ok(found) => Ok(std::path::absolute(&found.path).unwrap_or(found.path)),
            // The loader's own error: its hint suits an app with its own plugins folder, which
            // `warpgate fetch` (the CLI's cache) would not fill.
            Err(SourceError::Offline { reason, .. }) => Err(LoaderError::Offline {
                id: id.clone(),
                locator: locked.locator.to_string(),
                reason,
            }),
            Err(error) => Err(error.into()),
        }
    }

    fn record_key(locator: &PluginLocator) -> String {
        Checksum::of(locator.to_string().as_bytes()).hex()
    }

    fn read_record(&self, key: &str) -> Option<Resolution> {
        let path = self.fetcher.cache().refs_dir().join(format!("{key}.json"));
        let text =
            crate::fs::read_file(&path, crate::fs::MAX_TEXT_SIZE, crate::fs::Links::Refuse).ok()?;
        serde_json::from_slice(&text).ok()
    }

    #[expect(
        clippy::disallowed_methods,
        reason = "each error is wrapped with the path it concerns; fs_err would name it twice"
    )]
    fn write_record(&self, key: &str, record: &Resolution) -> Result<(), LoaderError> {
        let dir = self.fetcher.cache().refs_dir();
        let path = dir.join(format!("{key}.json"));
        self.fetcher.cache().ensure_layout()?;
        std::fs::create_dir_all(&dir)
            .map_err(FileError::of::<crate::cache::CacheError>("write", &path))?;
        let bytes = serde_json::to_vec_pretty(record).expect("a resolution serialises");
        crate::fs::write_atomically(&path, &bytes)
            .map_err(FileError::of::<crate::cache::CacheError>("write", &path))?;
        Ok(())
    }

    async fn load_remote(
        &self,
        id: &Id,
        locator: &PluginLocator,
    ) -> Result<LoadedPlugin, LoaderError> {
        let key = Self::record_key(locator);
        let cache = self.fetcher.cache().clone();
        let lock_name = format!("ref-{key}");
        let _lock = tokio::task::spawn_blocking(move || cache.lock_named(&lock_name))
            .await
            .map_err(|error| {
                LoaderError::Lock(LockError::Fetch(crate::fetch::FetchError::Task {
                    id: id.clone(),
                    message: error.to_string(),
                }))
            })??;

        let record = self.read_record(&key);
        let cached = match &record {
            Some(record) => self
                .fetcher
                .cache()
                .get(&record.checksum)?
                .map(|path| (record, path)),
            None => None,
        };
        if let Some((record, path)) = &cached {
            let fresh = !locator.is_floating()
                || now().saturating_sub(record.resolved_at) < self.cache_duration.as_secs();
            if fresh || self.offline.is_some() {
                return Ok(LoadedPlugin {
                    path: path.clone(),
                    checksum: record.checksum,
                });
            }
        }
        if let Some(reason) = &self.offline {
            return Err(LoaderError::Offline {
                id: id.clone(),
                locator: locator.to_string(),
                reason: reason.clone(),
            });
        }
        let entry = crate::config::PluginEntry {
            locator: locator.clone(),
            version: None,
            asset: None,
            settings: Default::default(),
        };
        // A fresh view of the repository: this loader may live long after its last listing.
        let github = self.github.fresh();
        let resolved = crate::lock::resolve_remote(
            id,
            &entry,
            &self.fetcher,
            &github,
            crate::lock::Reuse::default(),
        )
        .await;
        match resolved {
            Ok(locked) => {
                let path = self.fetcher.cache().blob_path(&locked.checksum);
                self.write_record(
                    &key,
                    &Resolution {
                        locator: locator.to_string(),
                        checksum: locked.checksum,
                        size: locked.size,
                        url: locked.url,
                        tag: locked.tag,
                        resolved_at: now(),
                    },
                )?;
                Ok(LoadedPlugin {
                    path,
                    checksum: locked.checksum,
                })
            }
            Err(error) => match cached {
                Some((record, path)) => {
                    tracing::warn!(
                        "could not refresh plugin `{id}` (`{locator}`), using the cached copy: {}",
                        crate::diagnostic::Report::new(&error).one_line()
                    );
                    Ok(LoadedPlugin {
                        path,
                        checksum: record.checksum,
                    })
                }
                None => Err(error.into()),
            },
        }
    }
}
