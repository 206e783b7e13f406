//! Downloading plugins into the [`Cache`], verified.
//!
//! A [`Fetcher`] pairs the cache with the [`HttpClient`]. Every download streams into a temp
//! file inside the cache while hashing; only bytes whose checksum matches what was expected
//! are renamed into place. Concurrent requests for the same blob are deduplicated twice:
//! in-process by a map of async locks, across processes by the cache's per-blob file lock,
//! and whoever waited re-checks the cache before downloading.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::cache::{Cache, CacheError};
use crate::checksum::{Checksum, Mismatch};
use crate::diagnostic::{Class, Diagnostic};
use crate::http::{HttpClient, HttpError, HttpOptions};
use crate::id::Id;
use crate::reporter::{Reporter, SilentReporter};
use crate::source::{ChecksumMismatch, Origin};

/// Why a plugin could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Network access is disabled and the plugin is not cached.
    #[error("network access is disabled by {reason}, but plugin `{id}` is not in the cache")]
    Offline {
        /// The plugin.
        id: Id,
        /// The flag or variable that disabled the network.
        reason: String,
    },
    /// The download failed.
    #[error("failed to download plugin `{id}` from `{url}`")]
    Download {
        /// The plugin.
        id: Id,
        /// The URL.
        url: String,
        /// The HTTP error.
        #[source]
        source: HttpError,
    },
    /// The downloaded bytes do not match the locked checksum.
    #[error(transparent)]
    Mismatch(Box<ChecksumMismatch>),
    /// The downloaded bytes do not match the digest the release API published.
    #[error(
        "checksum mismatch for plugin `{id}` downloaded from `{url}`: the bytes differ from the digest published by the release API\n{mismatch}"
    )]
    DigestMismatch {
        /// The plugin.
        id: Id,
        /// The URL.
        url: String,
        /// The API digest and the computed checksum.
        mismatch: Mismatch,
    },
    /// A registry request failed.
    #[error("failed to fetch plugin `{id}` from `{locator}`")]
    Registry {
        /// The plugin.
        id: Id,
        /// The registry locator (or mirror) asked.
        locator: String,
        /// The registry error.
        #[source]
        source: Box<crate::oci::client::RegistryError>,
    },
    /// The HTTP client could not be set up.
    #[error("failed to set up the HTTP client")]
    Client(#[source] HttpError),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A blocking cache task panicked or was cancelled.
    #[error("a cache task for plugin `{id}` failed: {message}")]
    Task {
        /// The plugin.
        id: Id,
        /// What happened.
        message: String,
    },
}

impl Diagnostic for FetchError {
    fn class(&self) -> Class {
        match self {
            Self::Mismatch(_) | Self::DigestMismatch { .. } => Class::CheckFailed,
            Self::Cache(inner) => inner.class(),
            _ => Class::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Offline { .. } => Some(crate::source::OFFLINE_HINT.into()),
            Self::Mismatch(inner) => inner.hint(),
            Self::DigestMismatch { .. } => Some(
                "the download was altered or the release asset was replaced; retry later or report it to the plugin's authors".into(),
            ),
            Self::Cache(inner) => inner.hint(),
            Self::Download { .. } | Self::Registry { .. } | Self::Client(_) | Self::Task { .. } => {
                None
            }
        }
    }
}

/// Downloaded bytes from `url` that are not the pinned `expected` ones.
fn mismatch(id: &Id, url: &str, expected: &Checksum, computed: Checksum) -> FetchError {
    FetchError::Mismatch(Box::new(ChecksumMismatch {
        id: id.clone(),
        origin: Origin::Download {
            url: url.to_string(),
        },
        mismatch: Mismatch {
            expected: *expected,
            computed,
        },
    }))
}

/// Downloads plugins into the cache, verifying and deduplicating.
pub struct Fetcher {
    cache: Cache,
    http: HttpClient,
    registry: crate::oci::client::RegistryClient,
    mirror: Option<crate::oci::reference::RegistryLocator>,
    reporter: Arc<dyn Reporter>,
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher over `cache` and `http`, reporting nothing.
    pub fn new(cache: Cache, http: HttpClient) -> Self {
        let registry = crate::oci::client::RegistryClient::new(
            http.clone(),
            crate::oci::auth::CredentialStore::from_env(),
        );
        Self {
            cache,
            http,
            registry,
            mirror: None,
            reporter: Arc::new(SilentReporter),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// The cache from `WARPGATE_HOME` and an HTTP client from the environment (offline when
    /// `WARPGATE_OFFLINE` or `CARGO_NET_OFFLINE` say so).
    pub fn from_env() -> Result<Self, FetchError> {
        let cache = Cache::from_env()?;
        let options = HttpOptions::from_env().map_err(FetchError::Client)?;
        let http = HttpClient::new(options).map_err(FetchError::Client)?;
        Ok(Self::new(cache, http))
    }

    /// Sends progress events to `reporter`.
    pub fn with_reporter(mut self, reporter: Arc<dyn Reporter>) -> Self {
        self.reporter = reporter;
        self
    }

    /// Tries `mirror` (a `registry://HOST/NAMESPACE` repository) by digest before a locked
    /// plugin's origin; see [`crate::oci::mirror`].
    pub fn with_mirror(mut self, mirror: Option<crate::oci::reference::RegistryLocator>) -> Self {
        self.mirror = mirror;
        self
    }

    /// The team mirror, if one is set.
    pub fn mirror(&self) -> Option<&crate::oci::reference::RegistryLocator> {
        self.mirror.as_ref()
    }

    /// The OCI registry client (over the same HTTP client).
    pub fn registry(&self) -> &crate::oci::client::RegistryClient {
        &self.registry
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The HTTP client.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The reporter.
    pub fn reporter(&self) -> &dyn Reporter {
        &*self.reporter
    }

    fn in_flight_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(key.to_string()).or_default().clone()
    }

    /// Drops `key` from the in-flight map when no other task holds or awaits it, so the map
    /// does not grow in long-running hosts.
    fn release_in_flight(&self, key: &str, lock: &Arc<tokio::sync::Mutex<()>>) {
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // One reference in the map, one here: nobody else is waiting.
        if Arc::strong_count(lock) == 2 {
            map.remove(key);
        }
    }

    /// The verified cache path of `checksum`, downloading it from `url` if it is not cached.
    ///
    /// Used for locked plugins: no API call, only the pinned URL. Offline, a cache miss is
    /// [`FetchError::Offline`]; a download whose bytes differ is [`FetchError::Mismatch`] and
    /// leaves nothing in the cache.
    pub async fn fetch_pinned(
        &self,
        id: &Id,
        url: &str,
        checksum: &Checksum,
    ) -> Result<PathBuf, FetchError> {
        if let Some(path) = self.cache.get(checksum)? {
            return Ok(path);
        }
        let key = checksum.hex();
        let in_process = self.in_flight_lock(&key);
        let result = {
            let _in_process = in_process.lock().await;
            self.fetch_pinned_exclusive(id, url, checksum).await
        };
        self.release_in_flight(&key, &in_process);
        result
    }

    /// [`Fetcher::fetch_pinned`] once this task is the only one in the process for the blob.
    async fn fetch_pinned_exclusive(
        &self,
        id: &Id,
        url: &str,
        checksum: &Checksum,
    ) -> Result<PathBuf, FetchError> {
        let _cross_process = self.lock_blob(id, checksum).await?;
        if let Some(path) = self.cache.get_while_locked(checksum)? {
            return Ok(path);
        }
        let (temp, downloaded) = self.download(id, url).await?;
        if downloaded.checksum != *checksum {
            return Err(mismatch(id, url, checksum, downloaded.checksum));
        }
        Ok(self.cache.commit_while_locked(temp, checksum)?)
    }

    /// Downloads `url` (whose checksum is not known yet) into the cache and returns the blob
    /// path, checksum and size. When the source publishes a digest, the bytes must match it.
    pub async fn fetch_unpinned(
        &self,
        id: &Id,
        url: &str,
        published_digest: Option<&Checksum>,
    ) -> Result<(PathBuf, Checksum, u64), FetchError> {
        let (temp, downloaded) = self.download(id, url).await?;
        if let Some(digest) = published_digest
            && *digest != downloaded.checksum
        {
            return Err(FetchError::DigestMismatch {
                id: id.clone(),
                url: url.to_string(),
                mismatch: Mismatch {
                    expected: *digest,
                    computed: downloaded.checksum,
                },
            });
        }
        let checksum = downloaded.checksum;
        let _cross_process = self.lock_blob(id, &checksum).await?;
        let path = match self.cache.get_while_locked(&checksum)? {
            Some(path) => path,
            None => self.cache.commit_while_locked(temp, &checksum)?,
        };
        Ok((path, checksum, downloaded.size))
    }

    /// The verified cache path of `checksum`: the cache entry, else the bytes `download`
    /// writes into the temp file it is given (from `source`, named in errors), deduplicated
    /// like [`Fetcher::fetch_pinned`]. Bytes that do not match are
    /// [`FetchError::Mismatch`] and leave nothing in the cache.
    pub async fn fetch_verified<F, Fut>(
        &self,
        id: &Id,
        checksum: &Checksum,
        source: &str,
        download: F,
    ) -> Result<PathBuf, FetchError>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: std::future::Future<Output = Result<crate::http::Downloaded, FetchError>>,
    {
        if let Some(path) = self.cache.get(checksum)? {
            return Ok(path);
        }
        let key = checksum.hex();
        let in_process = self.in_flight_lock(&key);
        let result = async {
            let _in_process = in_process.lock().await;
            let _cross_process = self.lock_blob(id, checksum).await?;
            if let Some(path) = self.cache.get_while_locked(checksum)? {
                return Ok(path);
            }
            let temp = self.cache.temp_file()?;
            self.reporter.download_started(id, source);
            let downloaded = download(temp.path().to_path_buf()).await;
            self.reporter.download_finished(id);
            let downloaded = downloaded?;
            if downloaded.checksum != *checksum {
                return Err(mismatch(id, source, checksum, downloaded.checksum));
            }
            Ok(self.cache.commit_while_locked(temp, checksum)?)
        }
        .await;
        self.release_in_flight(&key, &in_process);
        result
    }

    async fn lock_blob(
        &self,
        id: &Id,
        checksum: &Checksum,
    ) -> Result<crate::fs::FileLock, FetchError> {
        let cache = self.cache.clone();
        let checksum = *checksum;
        tokio::task::spawn_blocking(move || cache.lock(&checksum))
            .await
            .map_err(|error| FetchError::Task {
                id: id.clone(),
                message: error.to_string(),
            })?
            .map_err(FetchError::from)
    }

    async fn download(
        &self,
        id: &Id,
        url: &str,
    ) -> Result<(crate::fs::TempFile, crate::http::Downloaded), FetchError> {
        let temp = self.cache.temp_file()?;
        self.reporter.download_started(id, url);
        let reporter = &self.reporter;
        let progress = |received: u64, total: Option<u64>| {
            reporter.download_progress(id, received, total);
        };
        let result = self.http.download_to(url, temp.path(), &progress).await;
        self.reporter.download_finished(id);
        match result {
            Ok(downloaded) => Ok((temp, downloaded)),
            Err(HttpError::Offline { reason, .. }) => Err(FetchError::Offline {
                id: id.clone(),
                reason,
            }),
            Err(source) => Err(FetchError::Download {
                id: id.clone(),
                url: url.to_string(),
                source,
            }),
        }
    }
}
