//! The content-addressed plugin cache.
//!
//! Layout under the cache root (`WARPGATE_HOME`, default: the platform cache dir +
//! `warpgate`, e.g. `~/.cache/warpgate`):
//!
//! ```text
//! CACHEDIR.TAG                 marks the folder as a cache for backup tools
//! v1/blobs/sha256/<hex>        verified plugin bytes, named by their SHA-256, read-only
//! v1/locks/<hex>.lock          one cross-process lock file per blob (and `project-<hex>.lock`
//!                              per project, `vendor-<hex>.lock` per vendor directory)
//! v1/tmp/                      temp files, renamed into `blobs/` once verified
//! v1/refs/<hex>.json           what a floating locator last resolved to (`PluginLoader`)
//! v1/http/<hex>.json           GitHub API answers with their `ETag` (`api_cache`), keyed by
//!                              URL and whether a token was sent
//! v1/compiled/                 compiled machine code of plugins (see `container`, feature
//!                              `runtime`)
//! ```
//!
//! `v1` is the layout version: a future incompatible layout goes to `v2/` beside it.
//!
//! The invariant: a path under `blobs/` only ever holds complete bytes whose SHA-256 is
//! the file name. Writers stream into a temp file in the same filesystem, verify, then
//! rename; readers re-hash on every [`Cache::get`] (plugins are small and hashing is cheap)
//! and delete a blob that no longer matches, so a corrupted cache heals itself. Writers
//! and [`Cache::remove_blob`] hold the blob's lock, so pruning is safe while another
//! process fetches.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::checksum::{Checksum, Hasher};
use crate::env;

/// Layout version folder.
const LAYOUT: &str = "v1";

const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by warpgate.\n# For information about cache directory tags see https://bford.info/cachedir/\n";

/// The content-addressed store of verified plugin bytes.
#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
}

/// Why a cache operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// No cache folder could be determined.
    #[error("cannot determine a cache folder\nhint: set `WARPGATE_HOME` to a writable folder")]
    NoHome,
    /// A file operation failed.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The folder is not a warpgate cache (no `CACHEDIR.TAG` of ours).
    #[error("`{}` does not look like a warpgate cache (no warpgate `CACHEDIR.TAG`); refusing to delete anything in it\nhint: check `WARPGATE_HOME`", root.display())]
    NotACache {
        /// The folder.
        root: PathBuf,
    },
    /// Bytes being added did not match the checksum they were pinned to.
    #[error("checksum mismatch for `{}`\n{mismatch}", source_path.display())]
    Mismatch {
        /// Where the bytes came from.
        source_path: PathBuf,
        /// Expected and computed checksums.
        mismatch: crate::checksum::Mismatch,
    },
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CacheError + 'a {
    move |source| CacheError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

enum Verified {
    Intact(PathBuf),
    Missing,
    Corrupt,
}

/// An exclusive cross-process lock on one blob; released on drop.
#[derive(Debug)]
pub struct BlobLock {
    _file: File,
}

impl Cache {
    /// A cache rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache at `WARPGATE_HOME`, else the platform cache dir + `warpgate`.
    pub fn from_env() -> Result<Self, CacheError> {
        if let Some(home) = env::var(env::WARPGATE_HOME) {
            return Ok(Self::new(home));
        }
        dirs::cache_dir()
            .map(|dir| Self::new(dir.join("warpgate")))
            .ok_or(CacheError::NoHome)
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder holding blobs.
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join(LAYOUT).join("blobs").join("sha256")
    }

    fn locks_dir(&self) -> PathBuf {
        self.root.join(LAYOUT).join("locks")
    }

    /// The folder of the compiled-module cache (written by `PluginContainer`, feature
    /// `runtime`).
    pub fn compiled_dir(&self) -> PathBuf {
        self.root.join(LAYOUT).join("compiled")
    }

    /// The folder of resolution records for floating locators (see `loader`).
    pub fn refs_dir(&self) -> PathBuf {
        self.root.join(LAYOUT).join("refs")
    }

    /// The folder of stored GitHub API answers (see `api_cache`).
    pub fn http_dir(&self) -> PathBuf {
        self.root.join(LAYOUT).join("http")
    }

    fn temp_dir(&self) -> PathBuf {
        self.root.join(LAYOUT).join("tmp")
    }

    /// Where the blob for `checksum` lives (whether or not it is present).
    pub fn blob_path(&self, checksum: &Checksum) -> PathBuf {
        self.blobs_dir().join(checksum.hex())
    }

    /// Creates the layout and `CACHEDIR.TAG` if missing.
    pub fn ensure_layout(&self) -> Result<(), CacheError> {
        for dir in [self.blobs_dir(), self.locks_dir(), self.temp_dir()] {
            std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
        }
        let tag = self.root.join("CACHEDIR.TAG");
        if !tag.exists() {
            crate::lockfile::write_atomically(&tag, CACHEDIR_TAG.as_bytes())
                .map_err(io_error("write", &tag))?;
        }
        Ok(())
    }

    /// The path of the blob for `checksum` if it is present and its bytes still hash to
    /// `checksum`. A blob that no longer matches is deleted (under its lock) and `None`
    /// returned. Callers that already hold the blob's lock use [`Cache::get_locked`].
    pub fn get(&self, checksum: &Checksum) -> Result<Option<PathBuf>, CacheError> {
        match self.verify(checksum)? {
            Verified::Intact(path) => Ok(Some(path)),
            Verified::Missing => Ok(None),
            Verified::Corrupt => {
                let _lock = self.lock(checksum)?;
                self.get_locked(checksum)
            }
        }
    }

    /// [`Cache::get`] for a caller holding the blob's lock (taking it again would block).
    pub fn get_locked(&self, checksum: &Checksum) -> Result<Option<PathBuf>, CacheError> {
        match self.verify(checksum)? {
            Verified::Intact(path) => Ok(Some(path)),
            Verified::Missing => Ok(None),
            Verified::Corrupt => {
                let path = self.blob_path(checksum);
                tracing::warn!("removing corrupted cache entry `{}`", path.display());
                match std::fs::remove_file(&path) {
                    Ok(()) => Ok(None),
                    Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(CacheError::Io {
                        action: "remove",
                        path,
                        source,
                    }),
                }
            }
        }
    }

    fn verify(&self, checksum: &Checksum) -> Result<Verified, CacheError> {
        let path = self.blob_path(checksum);
        match Checksum::of_file(&path) {
            Ok((computed, _)) if computed == *checksum => Ok(Verified::Intact(path)),
            Ok(_) => Ok(Verified::Corrupt),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Verified::Missing),
            Err(source) => Err(CacheError::Io {
                action: "read",
                path,
                source,
            }),
        }
    }

    /// Takes the cross-process lock for `checksum`'s blob, waiting for other holders.
    pub fn lock(&self, checksum: &Checksum) -> Result<BlobLock, CacheError> {
        self.lock_named(&checksum.hex())
    }

    /// Takes a cross-process lock named `name` (checksum hex digits or another file-name-safe
    /// key), waiting for other holders.
    pub fn lock_named(&self, name: &str) -> Result<BlobLock, CacheError> {
        self.ensure_layout()?;
        let path = self.locks_dir().join(format!("{name}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error("open", &path))?;
        file.lock().map_err(io_error("lock", &path))?;
        Ok(BlobLock { _file: file })
    }

    /// Takes the cross-process lock of a project, named by its config file, so that two
    /// `warpgate` processes never edit one project's config and lockfile at the same time.
    /// The lock file lives in the cache, not in the project.
    pub fn lock_project(&self, config_path: &Path) -> Result<BlobLock, CacheError> {
        let key = Checksum::of(config_path.as_os_str().as_encoded_bytes()).hex();
        self.lock_named(&format!("project-{key}"))
    }

    /// Takes the cross-process lock of vendor directory `dir`, so that two `warpgate vendor`
    /// runs never build and swap one folder at the same time. `dir` should be canonical, so
    /// that every spelling of the folder names one lock. Like the project lock, the lock file
    /// lives in the cache, not next to the folder (runs with different caches are therefore
    /// not serialised).
    pub fn lock_vendor_dir(&self, dir: &Path) -> Result<BlobLock, CacheError> {
        let key = Checksum::of(dir.as_os_str().as_encoded_bytes()).hex();
        self.lock_named(&format!("vendor-{key}"))
    }

    /// A new temp file inside the cache (same filesystem as the blobs), deleted on drop.
    pub fn temp_file(&self) -> Result<tempfile::NamedTempFile, CacheError> {
        self.ensure_layout()?;
        let dir = self.temp_dir();
        tempfile::Builder::new()
            .prefix("download-")
            .tempfile_in(&dir)
            .map_err(io_error("create a temp file in", &dir))
    }

    /// Moves an already verified temp file into place as the blob for `checksum`.
    ///
    /// The caller must have checked that the temp file's bytes hash to `checksum`; this
    /// takes the blob's lock and renames. An existing blob is kept.
    pub fn commit(
        &self,
        temp: tempfile::NamedTempFile,
        checksum: &Checksum,
    ) -> Result<PathBuf, CacheError> {
        let _lock = self.lock(checksum)?;
        self.commit_locked(temp, checksum)
    }

    /// [`Cache::commit`] for a caller that already holds the blob's lock.
    pub fn commit_locked(
        &self,
        temp: tempfile::NamedTempFile,
        checksum: &Checksum,
    ) -> Result<PathBuf, CacheError> {
        let path = self.blob_path(checksum);
        temp.as_file()
            .sync_all()
            .map_err(io_error("sync", temp.path()))?;
        let mut permissions = temp
            .as_file()
            .metadata()
            .map_err(io_error("read", temp.path()))?
            .permissions();
        permissions.set_readonly(true);
        std::fs::set_permissions(temp.path(), permissions)
            .map_err(io_error("protect", temp.path()))?;
        temp.persist(&path).map_err(|error| CacheError::Io {
            action: "rename into",
            path: path.clone(),
            source: error.error,
        })?;
        Ok(path)
    }

    /// Copies `source` into the cache while hashing it. With `expected`, the bytes must
    /// match it or nothing is stored. Returns the blob path, checksum and size.
    pub fn insert_file(
        &self,
        source: &Path,
        expected: Option<&Checksum>,
    ) -> Result<(PathBuf, Checksum, u64), CacheError> {
        let mut input = File::open(source).map_err(io_error("read", source))?;
        let mut temp = self.temp_file()?;
        let mut hasher = Hasher::new();
        let mut buffer = vec![0; 256 * 1024];
        loop {
            let read = input.read(&mut buffer).map_err(io_error("read", source))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            temp.write_all(&buffer[..read])
                .map_err(io_error("write", &self.temp_dir()))?;
        }
        let (computed, size) = hasher.finish();
        if let Some(expected) = expected
            && *expected != computed
        {
            return Err(CacheError::Mismatch {
                source_path: source.to_path_buf(),
                mismatch: crate::checksum::Mismatch {
                    expected: *expected,
                    computed,
                },
            });
        }
        if let Some(existing) = self.get(&computed)? {
            return Ok((existing, computed, size));
        }
        let path = self.commit(temp, &computed)?;
        Ok((path, computed, size))
    }

    /// Every blob in the cache (checksum and path), in no particular order; files whose
    /// names are not checksums are skipped.
    pub fn blobs(&self) -> Result<Vec<(Checksum, PathBuf)>, CacheError> {
        let dir = self.blobs_dir();
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut blobs = Vec::new();
        for entry in walkdir::WalkDir::new(&dir).min_depth(1).max_depth(1) {
            let entry = entry.map_err(|error| CacheError::Io {
                action: "list",
                path: dir.clone(),
                source: error.into(),
            })?;
            let name = entry.file_name();
            let name = name.to_str().unwrap_or_default();
            // Only canonical names (64 lowercase hex digits) are blobs.
            if let Some(checksum) = name
                .parse::<Checksum>()
                .ok()
                .filter(|checksum| checksum.hex() == name)
            {
                blobs.push((checksum, entry.into_path()));
            }
        }
        Ok(blobs)
    }

    /// Deletes temp files older than `age` (left by killed processes; a live download
    /// writes its temp file continuously, so it is younger). Returns files and bytes freed.
    pub fn remove_stale_temp_files(
        &self,
        age: std::time::Duration,
    ) -> Result<(u64, u64), CacheError> {
        let dir = self.temp_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(source) => {
                return Err(CacheError::Io {
                    action: "list",
                    path: dir,
                    source,
                });
            }
        };
        let (mut files, mut bytes) = (0, 0);
        for entry in entries.flatten() {
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            let stale = metadata
                .modified()
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|elapsed| elapsed >= age);
            if metadata.is_file() && stale && std::fs::remove_file(entry.path()).is_ok() {
                files += 1;
                bytes += metadata.len();
            }
        }
        Ok((files, bytes))
    }

    /// Deletes every blob (each under its lock), every resolution record, the stored API
    /// answers and the compiled-module cache, keeping nothing else but the (empty) layout. Refuses a folder that lacks warpgate's
    /// `CACHEDIR.TAG`, so a mistaken `WARPGATE_HOME` never deletes someone's files.
    /// Returns files and bytes freed.
    pub fn clean(&self) -> Result<(u64, u64), CacheError> {
        if !self.root.exists() {
            return Ok((0, 0));
        }
        let tag = self.root.join("CACHEDIR.TAG");
        let is_ours = std::fs::read_to_string(&tag)
            .is_ok_and(|text| text.starts_with("Signature: 8a477f597d28d172789f06886806bc55"));
        if !is_ours {
            return Err(CacheError::NotACache {
                root: self.root.clone(),
            });
        }
        let (mut files, mut bytes) = (0, 0);
        for (checksum, _) in self.blobs()? {
            bytes += self.remove_blob(&checksum)?;
            files += 1;
        }
        for dir in [self.refs_dir(), self.compiled_dir(), self.http_dir()] {
            if dir.exists() {
                let (dir_files, dir_bytes) = tree_size(&dir);
                std::fs::remove_dir_all(&dir).map_err(io_error("remove", &dir))?;
                files += dir_files;
                bytes += dir_bytes;
            }
        }
        let (temp_files, temp_bytes) =
            self.remove_stale_temp_files(std::time::Duration::from_secs(3600))?;
        Ok((files + temp_files, bytes + temp_bytes))
    }

    /// Deletes the blob for `checksum` under its lock; returns the bytes freed.
    pub fn remove_blob(&self, checksum: &Checksum) -> Result<u64, CacheError> {
        let _lock = self.lock(checksum)?;
        let path = self.blob_path(checksum);
        let size = match std::fs::metadata(&path) {
            Ok(metadata) => metadata.len(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(CacheError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        std::fs::remove_file(&path).map_err(io_error("remove", &path))?;
        Ok(size)
    }
}

/// Files and bytes under `dir` (symlinks are not followed).
fn tree_size(dir: &Path) -> (u64, u64) {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_file())
        .filter_map(|entry| entry.metadata().ok())
        .fold((0, 0), |(files, bytes), metadata| {
            (files + 1, bytes + metadata.len())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_and_heal() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("home"));
        let source = dir.path().join("plugin.wasm");
        std::fs::write(&source, b"\0asm plugin").unwrap();
        let (path, checksum, size) = cache.insert_file(&source, None).unwrap();
        assert_eq!((checksum, size), (Checksum::of(b"\0asm plugin"), 11));
        assert_eq!(cache.get(&checksum).unwrap(), Some(path.clone()));
        assert!(dir.path().join("home/CACHEDIR.TAG").is_file());

        // A corrupted blob is detected on read and removed.
        let mut permissions = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        permissions.set_readonly(false);
        std::fs::set_permissions(&path, permissions).unwrap();
        std::fs::write(&path, b"tampered").unwrap();
        assert_eq!(cache.get(&checksum).unwrap(), None);
        assert!(!path.exists());
    }

    #[test]
    fn mismatch_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("home"));
        let source = dir.path().join("plugin.wasm");
        std::fs::write(&source, b"bytes").unwrap();
        let expected = Checksum::of(b"other");
        let error = cache.insert_file(&source, Some(&expected)).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(&format!("Expected: `{expected}`")),
            "{message}"
        );
        assert!(message.contains(&format!("Computed: `{}`", Checksum::of(b"bytes"))));
        assert!(cache.blobs().unwrap().is_empty());
        assert_eq!(std::fs::read_dir(cache.temp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn remove_blob_reports_size() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let source = dir.path().join("p");
        std::fs::write(&source, b"12345").unwrap();
        let (_, checksum, _) = cache.insert_file(&source, None).unwrap();
        assert_eq!(cache.blobs().unwrap().len(), 1);
        assert_eq!(cache.remove_blob(&checksum).unwrap(), 5);
        assert_eq!(cache.remove_blob(&checksum).unwrap(), 0);
    }
}
