//! Where a locked plugin's verified bytes come from: the one answer for every caller
//! (`warpgate fetch`, `vendor`, `verify`, `list`, `mirror push`, [`PluginLoader`] and
//! `warpgate-build`).
//!
//! [`Sources`] takes a lock entry and returns [`Materialized`] bytes: a local path, their
//! checksum and their [`Origin`]. The sources are tried in this order:
//!
//! 1. **The vendor directory** (when one is given): `<dir>/<id>.wasm`, a regular file (never a
//!    link), hashed on every use.
//! 2. **The plugin's own file**, for a `file://` plugin: the path the lock records (see
//!    [`lock::file_path`]), links followed, hashed on every use.
//! 3. **The content cache**: a blob is re-hashed when it is read; a corrupt one is deleted and
//!    the next source tried.
//! 4. **The team mirror** (when one is set), by sha256.
//! 5. **The locked origin**: the pinned `url`, or for a `registry://` plugin its wasm layer by
//!    digest (never a tag). Steps 4 and 5 stream into the cache and rename the blob into place
//!    only once its sha256 is the locked one.
//!
//! Offline ([`Network::Offline`], or a [`Fetcher`] whose HTTP client is offline), steps 4 and
//! 5 are skipped, no socket is opened, and a miss is [`SourceError::Offline`].
//!
//! What happens to a copy that does not match the lock depends on the [`Check`]: a build
//! fails on a bad vendored copy (a vendor directory says what to build with), `warpgate
//! vendor` passes over it (it is about to replace it), and `verify`/`list` only look.
//!
//! [`PluginLoader`]: crate::loader::PluginLoader

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use futures_util::StreamExt;
use serde::Serialize;

use crate::cache::{Cache, CacheError};
use crate::checksum::{Checksum, Mismatch};
use crate::config::Config;
use crate::diagnostic::{Class, Diagnostic};
use crate::fetch::{FetchError, Fetcher};
use crate::fs::FileError;
use crate::fs::{Bounded, CopyError, Links};
use crate::http::{HttpClient, HttpError, HttpOptions};
use crate::id::Id;
use crate::locator::PluginLocator;
use crate::lock;
use crate::lockfile::{LockedPlugin, Lockfile};
use crate::oci::client::RegistryError;
use crate::oci::reference::RegistryLocator;

/// The most plugins materialized at once; the HTTP client bounds requests per host.
const MAX_PARALLEL: usize = 1024;

/// Where a plugin's verified bytes came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Origin {
    /// A file in the vendor directory.
    Vendored {
        /// The file.
        path: PathBuf,
    },
    /// The plugin's own `file://` source.
    File {
        /// The file.
        path: PathBuf,
    },
    /// A blob already in the content cache.
    Cache {
        /// The blob.
        path: PathBuf,
    },
    /// Downloaded from the team mirror by sha256 (into the cache).
    Mirror {
        /// The mirror repository, `registry://HOST/NAMESPACE`.
        mirror: String,
    },
    /// Downloaded from the locked origin (into the cache): the URL, or the registry blob.
    Download {
        /// The URL or `registry://HOST/REPOSITORY@sha256:…`.
        url: String,
    },
}

impl Origin {
    /// The local file, for the origins that name one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Vendored { path } | Self::File { path } | Self::Cache { path } => Some(path),
            Self::Mirror { .. } | Self::Download { .. } => None,
        }
    }

    /// How the file may be opened: only a `file://` plugin's own file may be a link.
    fn links(&self) -> Links {
        match self {
            Self::File { .. } => Links::Follow,
            _ => Links::Refuse,
        }
    }

    /// What to do when this origin's bytes do not match the lock.
    fn mismatch_hint(&self, id: &Id) -> String {
        match self {
            Self::Vendored { .. } => "the vendored copy was modified or comes from another lock; run `warpgate vendor` to rewrite the vendor directory".to_string(),
            Self::File { .. } => "the file changed since it was locked; if you trust the new file, run `warpgate lock`".to_string(),
            Self::Cache { .. } => "the cache entry is corrupt; run `warpgate cache clean` and try again".to_string(),
            Self::Mirror { .. } => "the mirror serves other bytes under this digest; fix or clear the mirror".to_string(),
            Self::Download { .. } => format!("the file changed since it was locked; if you trust the new file, run `warpgate lock --update {id}`"),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vendored { path } => write!(f, "the vendor directory (`{}`)", path.display()),
            Self::File { path } => write!(f, "its `file://` source (`{}`)", path.display()),
            Self::Cache { path } => write!(f, "the cache (`{}`)", path.display()),
            Self::Mirror { mirror } => write!(f, "the mirror `{mirror}`"),
            Self::Download { url } => write!(f, "`{url}`"),
        }
    }
}

/// Bytes that do not hash to the locked checksum: the one mismatch error, whatever the source.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "checksum mismatch for plugin `{id}` {} {origin}\n{mismatch}",
    preposition(origin)
)]
pub struct ChecksumMismatch {
    /// The plugin.
    pub id: Id,
    /// Where the bytes came from.
    pub origin: Origin,
    /// Expected and computed checksums.
    pub mismatch: Mismatch,
}

impl Diagnostic for ChecksumMismatch {
    fn class(&self) -> Class {
        Class::CheckFailed
    }

    fn hint(&self) -> Option<String> {
        Some(self.origin.mismatch_hint(&self.id))
    }
}

fn preposition(origin: &Origin) -> &'static str {
    match origin {
        Origin::Mirror { .. } | Origin::Download { .. } => "downloaded from",
        _ => "from",
    }
}

/// Why a locked plugin's bytes could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The bytes do not match the lock.
    #[error(transparent)]
    Mismatch(Box<ChecksumMismatch>),
    /// Network access is disabled and no local source has the plugin.
    #[error("network access is disabled by {reason}, but plugin `{id}` is not in {}", searched(vendor_dir.as_deref()))]
    Offline {
        /// The plugin.
        id: Id,
        /// The flag or variable that disabled the network (see [`crate::env::offline_reason`]).
        reason: String,
        /// The vendor directory that was searched, if any.
        vendor_dir: Option<PathBuf>,
    },
    /// A plugin that must be downloaded has no `url` in the lock.
    #[error("plugin `{id}` is not cached and has no `url` in the lock")]
    NoUrl {
        /// The plugin.
        id: Id,
    },
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] FileError),
    /// The team mirror setting (`WARPGATE_MIRROR` or the config's `mirror`) is invalid.
    #[error(transparent)]
    Mirror(#[from] crate::oci::mirror::MirrorSettingError),
    /// Downloading failed.
    #[error(transparent)]
    Fetch(Box<FetchError>),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The runtime for downloads from synchronous code could not start.
    #[error("failed to start the download runtime")]
    Runtime(#[source] io::Error),
}

impl Diagnostic for SourceError {
    fn class(&self) -> Class {
        match self {
            Self::Mismatch(inner) => inner.class(),
            Self::Fetch(inner) => inner.class(),
            Self::Cache(inner) => inner.class(),
            _ => Class::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Mismatch(inner) => inner.hint(),
            Self::Offline { .. } => Some(OFFLINE_HINT.into()),
            Self::NoUrl { .. } => Some("run `warpgate lock` to repair the lockfile".into()),
            Self::Io(inner) => inner.hint(),
            Self::Mirror(inner) => inner.hint(),
            Self::Fetch(inner) => inner.hint(),
            Self::Cache(inner) => inner.hint(),
            Self::Runtime(_) => None,
        }
    }
}

/// What to do when a plugin is needed offline but no local source has it.
pub(crate) const OFFLINE_HINT: &str =
    "run `warpgate fetch` once while online, or `warpgate vendor` and commit the vendor directory";

impl From<FetchError> for SourceError {
    fn from(error: FetchError) -> Self {
        match error {
            FetchError::Mismatch(mismatch) => Self::Mismatch(mismatch),
            FetchError::Offline { id, reason } => Self::Offline {
                id,
                reason,
                vendor_dir: None,
            },
            error => Self::Fetch(Box::new(error)),
        }
    }
}

impl From<ChecksumMismatch> for SourceError {
    fn from(error: ChecksumMismatch) -> Self {
        Self::Mismatch(Box::new(error))
    }
}

fn searched(vendor_dir: Option<&Path>) -> String {
    match vendor_dir {
        Some(dir) => format!("the vendor directory `{}` or the cache", dir.display()),
        None => "the cache".to_string(),
    }
}

fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> SourceError + 'a {
    FileError::of(action, path)
}

/// Verified bytes of one locked plugin on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Materialized {
    /// The file holding the bytes (for a download, the cache blob).
    pub path: PathBuf,
    /// Their checksum (the locked one).
    pub checksum: Checksum,
    /// Where they came from.
    pub origin: Origin,
}

impl Materialized {
    /// Opens the file for a bounded read (links refused unless it is a `file://` plugin's own
    /// file).
    pub fn open(&self) -> Result<Bounded<std::fs::File>, SourceError> {
        crate::fs::open_bounded(&self.path, crate::fs::MAX_PLUGIN_SIZE, self.origin.links())
            .map_err(io_error("read", &self.path))
    }

    /// Whether `target` already holds exactly these bytes (compared, not hashed).
    pub fn same_as(&self, target: &Path) -> Result<bool, SourceError> {
        crate::fs::same_contents(&self.path, self.origin.links(), target)
            .map_err(io_error("compare", target))
    }

    /// Streams the bytes into `output` (named `output_path` in errors), hashing them again on
    /// the way: the file may have changed since it was verified. On a mismatch the caller
    /// discards `output`.
    pub fn copy_into(
        &self,
        id: &Id,
        output: &mut impl io::Write,
        output_path: &Path,
    ) -> Result<(), SourceError> {
        let (computed, _) =
            crate::fs::copy_hashed(self.open()?, output).map_err(|error| match error {
                CopyError::Read(error) => io_error("read", &self.path)(error),
                CopyError::Write(error) => io_error("write", output_path)(error),
            })?;
        if computed != self.checksum {
            return Err(ChecksumMismatch {
                id: id.clone(),
                origin: self.origin.clone(),
                mismatch: Mismatch {
                    expected: self.checksum,
                    computed,
                },
            }
            .into());
        }
        Ok(())
    }

    /// Writes the bytes to `target` through a temp file and a rename, unless it already holds
    /// them. Returns whether it wrote.
    pub fn install(&self, id: &Id, target: &Path) -> Result<bool, SourceError> {
        if self.same_as(target)? {
            return Ok(false);
        }
        let dir = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let mut temp = crate::fs::TempFile::new_in(dir, ".warpgate-", ".tmp")
            .map_err(io_error("create a temp file in", dir))?;
        // Dropping `temp` on a mismatch deletes it: `target` never holds bad bytes.
        self.copy_into(id, &mut temp, target)?;
        temp.persist(target).map_err(io_error("write", target))?;
        Ok(true)
    }
}

/// What becomes of a local copy that does not match the lock (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Check {
    /// A vendored copy or `file://` plugin that does not match is an error; a corrupt cache
    /// entry is deleted and the next source tried (builds, `warpgate fetch`, the loader).
    #[default]
    Strict,
    /// Like [`Check::Strict`], but a vendored copy that does not match (or is not a regular
    /// file) is passed over: `warpgate vendor` replaces it.
    ReplaceVendored,
    /// Nothing is deleted or downloaded and no copy is an error: what does not match is passed
    /// over (`warpgate verify`, `warpgate list`).
    ReadOnly,
}

/// How [`Sources`] reaches the network.
pub enum Network<'a> {
    /// No socket: why (for example "`--offline`").
    Offline(String),
    /// Through this fetcher (its cache is the cache source; its mirror is the team mirror).
    Fetcher(&'a Fetcher),
    /// Through a fetcher made from the environment, with the mirror `config` sets, on first
    /// need (so a build whose plugins are all local builds no HTTP client).
    FromEnv(&'a Config),
}

/// The sources of locked plugins' bytes, in the order of the module docs.
pub struct Sources<'a> {
    root: PathBuf,
    vendor_dir: Option<PathBuf>,
    cache: Option<Cache>,
    check: Check,
    network: Network<'a>,
    /// The fetcher of [`Network::FromEnv`], made on first need.
    fetcher: OnceLock<Fetcher>,
    /// The runtime of [`Sources::materialize_blocking`], made on first need.
    runtime: OnceLock<tokio::runtime::Runtime>,
}

impl fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources")
            .field("root", &self.root)
            .field("vendor_dir", &self.vendor_dir)
            .field("cache", &self.cache)
            .field("check", &self.check)
            .finish_non_exhaustive()
    }
}

impl<'a> Sources<'a> {
    /// Sources for a lock whose `file://` paths start at `root` (the config's folder): no
    /// vendor directory, `fetcher`'s cache, mirror and network.
    pub fn new(root: impl Into<PathBuf>, fetcher: &'a Fetcher) -> Self {
        Self::with_network(
            root,
            Some(fetcher.cache().clone()),
            Network::Fetcher(fetcher),
        )
    }

    /// Sources with an explicit cache (or none) and network.
    pub fn with_network(
        root: impl Into<PathBuf>,
        cache: Option<Cache>,
        network: Network<'a>,
    ) -> Self {
        Self {
            root: root.into(),
            vendor_dir: None,
            cache,
            check: Check::Strict,
            network,
            fetcher: OnceLock::new(),
            runtime: OnceLock::new(),
        }
    }

    /// Reads `dir` (a vendor directory) first.
    pub fn vendor_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.vendor_dir = dir;
        self
    }

    /// Sets what becomes of copies that do not match (default [`Check::Strict`]).
    pub fn check(mut self, check: Check) -> Self {
        self.check = check;
        self
    }

    /// The first local source (vendor directory, own file, cache) with verified bytes, or
    /// `None`. Opens no socket.
    pub fn locate(
        &self,
        id: &Id,
        locked: &LockedPlugin,
    ) -> Result<Option<Materialized>, SourceError> {
        if let Some(dir) = &self.vendor_dir {
            let path = crate::vendor::plugin_path(dir, id);
            let pass_over = self.check != Check::Strict;
            if let Some(found) = self.verified(id, locked, Origin::Vendored { path }, pass_over)? {
                return Ok(Some(found));
            }
        }
        if let Some(file) = &locked.path {
            let path = lock::file_path(&self.root, file);
            let read_only = self.check == Check::ReadOnly;
            match self.verified(id, locked, Origin::File { path: path.clone() }, read_only)? {
                Some(found) => return Ok(Some(found)),
                // A missing `file://` plugin has no other source worth trying.
                None if !read_only => {
                    return Err(SourceError::Io(FileError {
                        action: "read",
                        path,
                        source: io::ErrorKind::NotFound.into(),
                    }));
                }
                None => {}
            }
        }
        let Some(cache) = &self.cache else {
            return Ok(None);
        };
        let blob = if self.check == Check::ReadOnly {
            let path = cache.blob_path(&locked.checksum);
            crate::fs::hash_file(&path, crate::fs::MAX_PLUGIN_SIZE, Links::Refuse)
                .is_ok_and(|(computed, _)| computed == locked.checksum)
                .then_some(path)
        } else {
            cache.get(&locked.checksum)?
        };
        Ok(blob.map(|path| Materialized {
            path: path.clone(),
            checksum: locked.checksum,
            origin: Origin::Cache { path },
        }))
    }

    /// `origin`'s file if it holds the locked bytes; `None` when it is missing, or does not
    /// match and `pass_over` says so.
    fn verified(
        &self,
        id: &Id,
        locked: &LockedPlugin,
        origin: Origin,
        pass_over: bool,
    ) -> Result<Option<Materialized>, SourceError> {
        let path = origin.path().unwrap_or(Path::new("")).to_path_buf();
        match crate::fs::hash_file(&path, crate::fs::MAX_PLUGIN_SIZE, origin.links()) {
            Ok((computed, _)) if computed == locked.checksum => Ok(Some(Materialized {
                path,
                checksum: computed,
                origin,
            })),
            Ok(_) | Err(_) if pass_over => Ok(None),
            Ok((computed, _)) => Err(ChecksumMismatch {
                id: id.clone(),
                origin,
                mismatch: Mismatch {
                    expected: locked.checksum,
                    computed,
                },
            }
            .into()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SourceError::Io(FileError {
                action: "read",
                path,
                source,
            })),
        }
    }

    /// Verified bytes of `locked` from the first source that has them (see the module docs).
    pub async fn materialize(
        &self,
        id: &Id,
        locked: &LockedPlugin,
    ) -> Result<Materialized, SourceError> {
        if let Some(found) = self.locate(id, locked)? {
            return Ok(found);
        }
        let fetcher = self.online(id)?;
        download(fetcher, id, locked).await
    }

    /// [`Sources::materialize`] for synchronous code (a build script): a download runs on a
    /// runtime made on first need and dropped with the [`Sources`], which must therefore not
    /// be dropped inside an async context.
    pub fn materialize_blocking(
        &self,
        id: &Id,
        locked: &LockedPlugin,
    ) -> Result<Materialized, SourceError> {
        match self.locate(id, locked)? {
            Some(found) => Ok(found),
            None => self.runtime()?.block_on(self.materialize(id, locked)),
        }
    }

    /// Every plugin of `lockfile`, in parallel, sorted by id.
    pub async fn materialize_all(
        &self,
        lockfile: &Lockfile,
    ) -> Result<Vec<(Id, Materialized)>, SourceError> {
        let results: Vec<Result<(Id, Materialized), SourceError>> =
            futures_util::stream::iter(lockfile.plugins.iter().map(|(id, locked)| async move {
                self.materialize(id, locked)
                    .await
                    .map(|found| (id.clone(), found))
            }))
            .buffer_unordered(lockfile.plugins.len().clamp(1, MAX_PARALLEL))
            .collect()
            .await;
        let mut found = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    /// The fetcher to download with, or [`SourceError::Offline`].
    fn online(&self, id: &Id) -> Result<&Fetcher, SourceError> {
        let offline = |reason: &str| SourceError::Offline {
            id: id.clone(),
            reason: reason.to_string(),
            vendor_dir: self.vendor_dir.clone(),
        };
        if self.check == Check::ReadOnly {
            return Err(offline("a read-only check"));
        }
        match &self.network {
            Network::Offline(reason) => Err(offline(reason)),
            Network::Fetcher(fetcher) => match fetcher.http().offline_reason() {
                Some(reason) => Err(offline(reason)),
                None => Ok(fetcher),
            },
            Network::FromEnv(config) => {
                if let Some(fetcher) = self.fetcher.get() {
                    return Ok(fetcher);
                }
                let cache = match &self.cache {
                    Some(cache) => cache.clone(),
                    None => Cache::from_env()?,
                };
                let options = HttpOptions::from_env().map_err(FetchError::Client)?;
                let http = HttpClient::new(options).map_err(FetchError::Client)?;
                let mirror = crate::oci::mirror::for_config(config)?;
                Ok(self
                    .fetcher
                    .get_or_init(|| Fetcher::new(cache, http).with_mirror(mirror)))
            }
        }
    }

    /// The runtime for [`Sources::materialize_blocking`], made on first need.
    fn runtime(&self) -> Result<&tokio::runtime::Runtime, SourceError> {
        if let Some(runtime) = self.runtime.get() {
            return Ok(runtime);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(SourceError::Runtime)?;
        Ok(self.runtime.get_or_init(|| runtime))
    }
}

/// `locked`'s bytes from the team mirror, else its locked origin, by digest, verified into the
/// cache (the fetcher re-checks the cache under the blob's lock first).
async fn download(
    fetcher: &Fetcher,
    id: &Id,
    locked: &LockedPlugin,
) -> Result<Materialized, SourceError> {
    let checksum = locked.checksum;
    let found = |path: PathBuf, origin: Origin| Materialized {
        path,
        checksum,
        origin,
    };
    // A mirror that fails in any way (unreachable, refusing, or serving bytes whose sha256 is
    // not the locked one) costs a logged warning and the origin is tried: the mirror is a
    // cache, never the source of truth, and its wrong bytes never reach the cache.
    if let Some(mirror) = fetcher.mirror() {
        match fetch_blob(fetcher, id, mirror, &checksum, locked_size(locked)).await {
            Ok(path) => {
                return Ok(found(
                    path,
                    Origin::Mirror {
                        mirror: mirror.to_string(),
                    },
                ));
            }
            Err(error) => {
                let missing = matches!(
                    &error,
                    FetchError::Registry { source, .. } if matches!(**source, RegistryError::NotFound { .. })
                );
                if missing {
                    tracing::debug!(%id, mirror = %mirror, "not in the mirror; trying the origin");
                } else if let FetchError::Mismatch(found) = &error {
                    // Not the lock's hint (`lock --update`): the lock is right, the copy is not.
                    tracing::warn!(
                        "plugin `{id}`: the mirror `{mirror}` served other bytes than the lock pins (expected `{}`, computed `{}`); they were discarded, trying the origin",
                        found.mismatch.expected,
                        found.mismatch.computed
                    );
                } else {
                    tracing::warn!(
                        "plugin `{id}`: the mirror `{mirror}` failed, trying the origin: {}",
                        crate::diagnostic::Report::new(&error).one_line()
                    );
                }
            }
        }
    }
    match &locked.locator {
        PluginLocator::Registry(locator) => {
            let path = fetch_blob(fetcher, id, locator, &checksum, locked_size(locked)).await?;
            let url = format!(
                "registry://{}/{}@{checksum}",
                locator.registry, locator.repository
            );
            Ok(found(path, Origin::Download { url }))
        }
        _ => {
            let url = locked
                .url
                .as_ref()
                .ok_or_else(|| SourceError::NoUrl { id: id.clone() })?;
            let path = fetcher.fetch_pinned(id, url, &checksum).await?;
            Ok(found(path, Origin::Download { url: url.clone() }))
        }
    }
}

/// The size a lock entry records, if it records one (`0` while locking).
fn locked_size(locked: &LockedPlugin) -> Option<u64> {
    Some(locked.size).filter(|size| *size > 0)
}

/// Blob `checksum` of `locator`'s repository, verified into the cache; a blob larger than
/// `size` (when known) is refused while it streams.
pub async fn fetch_blob(
    fetcher: &Fetcher,
    id: &Id,
    locator: &RegistryLocator,
    checksum: &Checksum,
    size: Option<u64>,
) -> Result<PathBuf, FetchError> {
    let url = format!(
        "registry://{}/{}@{checksum}",
        locator.registry, locator.repository
    );
    fetcher
        .fetch_verified(id, checksum, &url, |temp| async move {
            let reporter = fetcher.reporter();
            let progress = |received: u64, total: Option<u64>| {
                reporter.download_progress(id, received, total);
            };
            fetcher
                .registry()
                .pull_blob(
                    &locator.registry,
                    &locator.repository,
                    checksum,
                    &temp,
                    size,
                    &progress,
                )
                .await
                .map_err(|error| registry_error(id, &locator.to_string(), error))
        })
        .await
}

/// A registry error as a [`FetchError`]: offline stays [`FetchError::Offline`].
pub fn registry_error(id: &Id, locator: &str, error: RegistryError) -> FetchError {
    match error {
        RegistryError::Http(HttpError::Offline { reason, .. }) => FetchError::Offline {
            id: id.clone(),
            reason,
        },
        source => FetchError::Registry {
            id: id.clone(),
            locator: locator.to_string(),
            source: Box::new(source),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://plugins.example.invalid/hello.wasm";

    fn id() -> Id {
        Id::new("hello").unwrap()
    }

    fn locked(bytes: &[u8]) -> LockedPlugin {
        LockedPlugin {
            url: Some(URL.to_string()),
            ..LockedPlugin::pinned(
                URL.parse().unwrap(),
                None,
                Checksum::of(bytes),
                bytes.len() as u64,
            )
        }
    }

    /// Offline sources over a cache in `dir/home` and a vendor directory `dir/vendor`.
    fn sources(dir: &Path, check: Check) -> Sources<'static> {
        Sources::with_network(
            dir,
            Some(Cache::new(dir.join("home"))),
            Network::Offline("`--offline`".to_string()),
        )
        .vendor_dir(Some(dir.join("vendor")))
        .check(check)
    }

    fn cache(dir: &Path, bytes: &[u8]) -> PathBuf {
        let source = dir.join("source");
        fs_err::write(&source, bytes).unwrap();
        let (path, _, _) = Cache::new(dir.join("home"))
            .insert_file(&source, None)
            .unwrap();
        path
    }

    fn vendor(dir: &Path, bytes: &[u8]) -> PathBuf {
        fs_err::create_dir_all(dir.join("vendor")).unwrap();
        let path = dir.join("vendor/hello.wasm");
        fs_err::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn the_vendor_directory_comes_before_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        cache(dir.path(), b"hello");
        let vendored = vendor(dir.path(), b"hello");
        let found = sources(dir.path(), Check::Strict)
            .locate(&id(), &locked(b"hello"))
            .unwrap()
            .unwrap();
        assert_eq!(found.origin, Origin::Vendored { path: vendored });
    }

    #[test]
    fn a_bad_vendored_copy_fails_a_build_and_is_passed_over_by_vendor_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let blob = cache(dir.path(), b"hello");
        vendor(dir.path(), b"other");
        let error = sources(dir.path(), Check::Strict)
            .materialize_blocking(&id(), &locked(b"hello"))
            .unwrap_err();
        let message = crate::diagnostic::Report::new(&error).to_string();
        assert!(
            message.starts_with("checksum mismatch for plugin `hello` from the vendor directory"),
            "{message}"
        );
        assert!(
            message.contains("hint: the vendored copy was modified"),
            "{message}"
        );
        for check in [Check::ReplaceVendored, Check::ReadOnly] {
            let found = sources(dir.path(), check)
                .locate(&id(), &locked(b"hello"))
                .unwrap()
                .unwrap();
            assert_eq!(found.origin, Origin::Cache { path: blob.clone() });
        }
    }

    #[test]
    fn a_corrupt_cache_entry_is_removed_and_the_next_source_tried_but_not_by_a_check() {
        let dir = tempfile::tempdir().unwrap();
        let blob = cache(dir.path(), b"hello");
        let mut permissions = fs_err::metadata(&blob).unwrap().permissions();
        #[expect(
            clippy::permissions_set_readonly_false,
            reason = "the test corrupts a read-only blob"
        )]
        permissions.set_readonly(false);
        fs_err::set_permissions(&blob, permissions).unwrap();
        fs_err::write(&blob, b"rotten").unwrap();

        let read_only = sources(dir.path(), Check::ReadOnly);
        assert!(
            read_only
                .locate(&id(), &locked(b"hello"))
                .unwrap()
                .is_none()
        );
        assert!(blob.exists(), "a read-only check deleted the blob");

        let error = sources(dir.path(), Check::Strict)
            .materialize_blocking(&id(), &locked(b"hello"))
            .unwrap_err();
        assert_eq!(
            error.to_string().lines().next().unwrap(),
            format!(
                "network access is disabled by `--offline`, but plugin `hello` is not in the vendor directory `{}` or the cache",
                dir.path().join("vendor").display()
            )
        );
        assert!(!blob.exists(), "the corrupt blob was kept");
    }

    #[test]
    fn install_writes_only_changed_bytes_through_a_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        cache(dir.path(), b"hello");
        let found = sources(dir.path(), Check::Strict)
            .materialize_blocking(&id(), &locked(b"hello"))
            .unwrap();
        let target = dir.path().join("out.wasm");
        assert!(found.install(&id(), &target).unwrap());
        assert!(!found.install(&id(), &target).unwrap());
        fs_err::write(&target, b"HELLO").unwrap();
        assert!(found.install(&id(), &target).unwrap());
        assert_eq!(fs_err::read(&target).unwrap(), b"hello");
    }
}
