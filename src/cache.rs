//! The content-addressed plugin cache.
//!
//! Layout under the cache root (`WARPGATE_HOME`, default: the platform cache dir +
//! `warpgate`, e.g. `~/.cache/warpgate`):
//!
//! ```text
//! CACHEDIR.TAG                 marks the folder as warpgate's cache (and for backup tools)
//! v1/blobs/sha256/<hex>        verified plugin bytes, named by their SHA-256, read-only
//! v1/locks/<hex>.lock          one cross-process lock file per blob (and `vendor-<hex>.lock`
//!                              per vendor directory)
//! v1/tmp/download-*            temp files, renamed into `blobs/` once verified
//! v1/refs/<hex>.json           what a floating locator last resolved to (`PluginLoader`)
//! v1/http/<hex>.json           GitHub API answers with their `ETag` (`api_cache`), keyed by
//!                              URL and whether a token was sent
//! v1/compiled/                 compiled machine code of plugins (see `container`, feature
//!                              `runtime`)
//! ```
//!
//! `v1` is the layout version: a future incompatible layout goes to `v2/` beside it.
//!
//! The root is marked before anything is written in it: a new or empty folder gets
//! warpgate's `CACHEDIR.TAG`. A folder with other content and no such tag (a mistaken
//! `WARPGATE_HOME=~/Documents`, or an application's existing plugins folder handed to
//! `PluginLoader`) is never marked: warpgate writes only inside its own `v1/` there, with a
//! warning, and `clean` and `prune` refuse it, so nothing of anyone else's is ever hidden from
//! backups or deleted. Temp files are locked by the process that writes them; files
//! that no live process holds (left by a `kill -9`) are swept by the next process that
//! writes to the cache, and [`crate::fs::remove_temp_files`] deletes a process's own on
//! Ctrl-C.
//!
//! The invariant: a path under `blobs/` only ever holds complete bytes whose SHA-256 is
//! the file name. Writers stream into a temp file in the same filesystem, verify, then
//! rename; readers re-hash on every [`Cache::get`] (plugins are small and hashing is cheap)
//! and delete a blob that no longer matches, so a corrupted cache heals itself. Writers
//! and [`Cache::remove_blob`] hold the blob's lock, so pruning is safe while another
//! process fetches.

use std::io;
use std::path::{Path, PathBuf};

use crate::checksum::Checksum;
use crate::env;
use crate::fs::FileError;
use crate::fs::{FileLock, Links, TempFile};

/// Layout version folder.
const LAYOUT: &str = "v1";

/// How the names of the cache's temp files start.
const TEMP_PREFIX: &str = "download-";

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
    #[error("cannot determine a cache folder")]
    NoHome,
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] FileError),
    /// `clean` or `prune` was asked of a folder without warpgate's `CACHEDIR.TAG`.
    #[error("`{}` is not a warpgate cache: it has no warpgate `CACHEDIR.TAG`; refusing to delete anything in it", root.display())]
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

impl crate::diagnostic::Diagnostic for CacheError {
    fn class(&self) -> crate::diagnostic::Class {
        match self {
            Self::Mismatch { .. } => crate::diagnostic::Class::CheckFailed,
            _ => crate::diagnostic::Class::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::NoHome => Some("set `WARPGATE_HOME` to a writable folder".into()),
            Self::NotACache { .. } => Some(
                "set `WARPGATE_HOME` to the cache folder (`warpgate cache dir` prints it), or to a new or empty folder".into(),
            ),
            Self::Io(_) | Self::Mismatch { .. } => None,
        }
    }
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CacheError + 'a {
    FileError::of(action, path)
}

/// What [`Cache::clean`] or [`Cache::prune`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Freed {
    /// Files deleted.
    pub files: u64,
    /// Bytes those files held.
    pub bytes: u64,
}

enum Verified {
    Intact(PathBuf),
    Missing,
    Corrupt,
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

    /// Claims the root (see the module docs) and creates the layout if missing.
    #[expect(
        clippy::disallowed_methods,
        reason = "each error is wrapped with the path it concerns; fs_err would name it twice"
    )]
    pub fn ensure_layout(&self) -> Result<(), CacheError> {
        self.claim()?;
        for dir in [self.blobs_dir(), self.locks_dir(), self.temp_dir()] {
            std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
        }
        Ok(())
    }

    /// Marks a new or empty root as warpgate's; a folder with other content is used without
    /// being marked (see the module docs), with a warning once per process.
    fn claim(&self) -> Result<(), CacheError> {
        match crate::fs::claim_folder(&self.root, CACHEDIR_TAG) {
            Ok(true) => Ok(()),
            Ok(false) => {
                static WARNED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
                let mut warned = WARNED
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if !warned.contains(&self.root) {
                    tracing::warn!(
                        "`{}` holds other files and no warpgate `CACHEDIR.TAG`: using only its `{LAYOUT}/` folder, and `warpgate cache clean`/`prune` will refuse it",
                        self.root.display()
                    );
                    warned.push(self.root.clone());
                }
                Ok(())
            }
            Err(source) => Err(CacheError::Io(FileError {
                action: "create",
                path: self.root.clone(),
                source,
            })),
        }
    }

    /// Refuses a root without warpgate's tag, before anything in it is deleted.
    fn check_claimed(&self) -> Result<(), CacheError> {
        if crate::fs::is_claimed(&self.root, CACHEDIR_TAG) {
            Ok(())
        } else {
            Err(self.not_a_cache())
        }
    }

    fn not_a_cache(&self) -> CacheError {
        CacheError::NotACache {
            root: self.root.clone(),
        }
    }

    /// The path of the blob for `checksum` if it is present and its bytes still hash to
    /// `checksum`. A blob that no longer matches is deleted (under its lock) and `None`
    /// returned. Callers that already hold the blob's lock use [`Cache::get_while_locked`].
    pub fn get(&self, checksum: &Checksum) -> Result<Option<PathBuf>, CacheError> {
        match self.verify(checksum)? {
            Verified::Intact(path) => Ok(Some(path)),
            Verified::Missing => Ok(None),
            Verified::Corrupt => {
                let _lock = self.lock(checksum)?;
                self.get_while_locked(checksum)
            }
        }
    }

    /// [`Cache::get`] for a caller holding the blob's lock (taking it again would block).
    #[expect(
        clippy::disallowed_methods,
        reason = "each error is wrapped with the path it concerns; fs_err would name it twice"
    )]
    pub fn get_while_locked(&self, checksum: &Checksum) -> Result<Option<PathBuf>, CacheError> {
        match self.verify(checksum)? {
            Verified::Intact(path) => Ok(Some(path)),
            Verified::Missing => Ok(None),
            Verified::Corrupt => {
                let path = self.blob_path(checksum);
                tracing::warn!("removing corrupted cache entry `{}`", path.display());
                match std::fs::remove_file(&path) {
                    Ok(()) => Ok(None),
                    Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(CacheError::Io(FileError {
                        action: "remove",
                        path,
                        source,
                    })),
                }
            }
        }
    }

    fn verify(&self, checksum: &Checksum) -> Result<Verified, CacheError> {
        let path = self.blob_path(checksum);
        match crate::fs::hash_file(&path, crate::fs::MAX_PLUGIN_SIZE, Links::Refuse) {
            Ok((computed, _)) if computed == *checksum => Ok(Verified::Intact(path)),
            Ok(_) => Ok(Verified::Corrupt),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Verified::Missing),
            // A link, a FIFO or an oversized file in place of a blob: removed like bad bytes.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::InvalidInput | io::ErrorKind::FileTooLarge
                ) =>
            {
                Ok(Verified::Corrupt)
            }
            Err(source) => Err(CacheError::Io(FileError {
                action: "read",
                path,
                source,
            })),
        }
    }

    /// Takes the cross-process lock for `checksum`'s blob, waiting for other holders.
    pub fn lock(&self, checksum: &Checksum) -> Result<FileLock, CacheError> {
        self.lock_named(&checksum.hex())
    }

    /// Takes a cross-process lock named `name` (checksum hex digits or another file-name-safe
    /// key), waiting for other holders.
    pub fn lock_named(&self, name: &str) -> Result<FileLock, CacheError> {
        self.ensure_layout()?;
        let path = self.locks_dir().join(format!("{name}.lock"));
        crate::fs::lock_file(&path).map_err(io_error("lock", &path))
    }

    /// Takes the cross-process lock of vendor directory `dir`, so that two `warpgate vendor`
    /// runs never build and swap one folder at the same time. `dir` should be canonical, so
    /// that every spelling of the folder names one lock. Like the project lock, the lock file
    /// lives in the cache, not next to the folder (runs with different caches are therefore
    /// not serialised).
    pub fn lock_vendor_dir(&self, dir: &Path) -> Result<FileLock, CacheError> {
        let key = Checksum::of(dir.as_os_str().as_encoded_bytes()).hex();
        self.lock_named(&format!("vendor-{key}"))
    }

    /// A new temp file inside the cache (same filesystem as the blobs), deleted on drop. The
    /// first call in a process sweeps the temp files that no live process owns.
    pub fn temp_file(&self) -> Result<TempFile, CacheError> {
        self.ensure_layout()?;
        let dir = self.temp_dir();
        static SWEPT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
        {
            let mut swept = SWEPT
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !swept.contains(&dir) {
                crate::fs::sweep_temp_files(&dir, TEMP_PREFIX);
                swept.push(dir.clone());
            }
        }
        TempFile::new_in(&dir, TEMP_PREFIX, "").map_err(io_error("create a temp file in", &dir))
    }

    /// Moves an already verified temp file into place as the blob for `checksum`.
    ///
    /// The caller must have checked that the temp file's bytes hash to `checksum`; this
    /// takes the blob's lock and renames. An existing blob is kept.
    pub fn commit(&self, temp: TempFile, checksum: &Checksum) -> Result<PathBuf, CacheError> {
        let _lock = self.lock(checksum)?;
        self.commit_while_locked(temp, checksum)
    }

    /// [`Cache::commit`] for a caller that already holds the blob's lock.
    #[expect(
        clippy::disallowed_methods,
        reason = "each error is wrapped with the path it concerns; fs_err would name it twice"
    )]
    pub fn commit_while_locked(
        &self,
        temp: TempFile,
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
        temp.persist(&path)
            .map_err(io_error("rename into", &path))?;
        Ok(path)
    }

    /// Copies `source` into the cache while hashing it. With `expected`, the bytes must
    /// match it or nothing is stored. Returns the blob path, checksum and size.
    pub fn insert_file(
        &self,
        source: &Path,
        expected: Option<&Checksum>,
    ) -> Result<(PathBuf, Checksum, u64), CacheError> {
        let input = crate::fs::open_bounded(source, crate::fs::MAX_PLUGIN_SIZE, Links::Follow)
            .map_err(io_error("read", source))?;
        let mut temp = self.temp_file()?;
        let (computed, size) =
            crate::fs::copy_hashed(input, &mut temp).map_err(|error| match error {
                crate::fs::CopyError::Read(error) => io_error("read", source)(error),
                crate::fs::CopyError::Write(error) => io_error("write", temp.path())(error),
            })?;
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
            let entry = entry.map_err(|error| {
                CacheError::Io(FileError {
                    action: "list",
                    path: dir.clone(),
                    source: error.into(),
                })
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

    /// Deletes the temp files that no live process owns (see the module docs). Returns files
    /// and bytes freed.
    pub fn remove_abandoned_temp_files(&self) -> Result<Freed, CacheError> {
        self.check_claimed()?;
        let (files, bytes) = crate::fs::sweep_temp_files(&self.temp_dir(), TEMP_PREFIX);
        Ok(Freed { files, bytes })
    }

    /// Deletes every blob (each under its lock), every resolution record, the stored API
    /// answers, the compiled-module cache, abandoned temp files and the lock files no process
    /// holds, keeping nothing else but the layout. Refuses a folder that lacks warpgate's
    /// `CACHEDIR.TAG` (another program's tag is not enough), so a mistaken `WARPGATE_HOME`
    /// never deletes someone's files. Returns files and bytes freed.
    #[expect(
        clippy::disallowed_methods,
        reason = "each error is wrapped with the path it concerns; fs_err would name it twice"
    )]
    pub fn clean(&self) -> Result<Freed, CacheError> {
        if !self.root.exists() {
            return Ok(Freed::default());
        }
        self.check_claimed()?;
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
        let temp = self.remove_abandoned_temp_files()?;
        files += temp.files;
        bytes += temp.bytes;
        let locks = self.locks_dir();
        for entry in fs_err::read_dir(&locks).into_iter().flatten().flatten() {
            let path = entry.path();
            if path
                .extension()
                .is_some_and(|extension| extension == "lock")
                && crate::fs::remove_unheld_lock_file(&path).map_err(io_error("remove", &path))?
            {
                files += 1;
            }
        }
        Ok(Freed { files, bytes })
    }

    /// Deletes every blob whose checksum is not in `keep` (each under its lock) and the
    /// abandoned temp files. Refuses a folder that lacks warpgate's `CACHEDIR.TAG`.
    pub fn prune(&self, keep: &std::collections::HashSet<Checksum>) -> Result<Freed, CacheError> {
        if !self.root.exists() {
            return Ok(Freed::default());
        }
        let mut freed = self.remove_abandoned_temp_files()?;
        for (checksum, _) in self.blobs()? {
            if !keep.contains(&checksum) {
                freed.bytes += self.remove_blob(&checksum)?;
                freed.files += 1;
            }
        }
        Ok(freed)
    }

    /// Deletes the blob for `checksum` under its lock; returns the bytes freed.
    #[expect(
        clippy::disallowed_methods,
        reason = "each error is wrapped with the path it concerns; fs_err would name it twice"
    )]
    pub fn remove_blob(&self, checksum: &Checksum) -> Result<u64, CacheError> {
        let _lock = self.lock(checksum)?;
        let path = self.blob_path(checksum);
        let size = match std::fs::metadata(&path) {
            Ok(metadata) => metadata.len(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(CacheError::Io(FileError {
                    action: "read",
                    path,
                    source,
                }));
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
        fs_err::write(&source, b"\0asm plugin").unwrap();
        let (path, checksum, size) = cache.insert_file(&source, None).unwrap();
        assert_eq!((checksum, size), (Checksum::of(b"\0asm plugin"), 11));
        assert_eq!(cache.get(&checksum).unwrap(), Some(path.clone()));
        assert!(dir.path().join("home/CACHEDIR.TAG").is_file());

        // A corrupted blob is detected on read and removed.
        let mut permissions = fs_err::metadata(&path).unwrap().permissions();
        #[expect(
            clippy::permissions_set_readonly_false,
            reason = "the test tampers with a blob on purpose"
        )]
        permissions.set_readonly(false);
        fs_err::set_permissions(&path, permissions).unwrap();
        fs_err::write(&path, b"tampered").unwrap();
        assert_eq!(cache.get(&checksum).unwrap(), None);
        assert!(!path.exists());
    }

    #[test]
    fn mismatch_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("home"));
        let source = dir.path().join("plugin.wasm");
        fs_err::write(&source, b"bytes").unwrap();
        let expected = Checksum::of(b"other");
        let error = cache.insert_file(&source, Some(&expected)).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(&format!("Expected: `{expected}`")),
            "{message}"
        );
        assert!(message.contains(&format!("Computed: `{}`", Checksum::of(b"bytes"))));
        assert!(cache.blobs().unwrap().is_empty());
        assert_eq!(fs_err::read_dir(cache.temp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn remove_blob_reports_size() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("home"));
        let source = dir.path().join("p");
        fs_err::write(&source, b"12345").unwrap();
        let (_, checksum, _) = cache.insert_file(&source, None).unwrap();
        assert_eq!(cache.blobs().unwrap().len(), 1);
        assert_eq!(cache.remove_blob(&checksum).unwrap(), 5);
        assert_eq!(cache.remove_blob(&checksum).unwrap(), 0);
    }
}
