//! The compiled-module cache: machine code compiled for a plugin, kept between processes so
//! that only the first process on a machine pays for compiling it.
//!
//! In this module "the store" is this on-disk compiled-module cache (`ModuleStore`); "the
//! cache" elsewhere in warpgate is the plugin store ([`crate::cache::Cache`]). The public names
//! [`CompileCache`] and `WARPGATE_COMPILE_CACHE` keep the word users already know.
//!
//! # What it stores
//!
//! ```text
//! <root>/<engine>/<key>/SEAL            what warpgate wrote: each file's size and SHA-256
//! <root>/<engine>/<key>/wasmtime.toml   wasmtime's cache settings for this entry
//! <root>/<engine>/<key>/wasmtime/…      wasmtime's own compile cache, for this plugin only
//! <root>/tmp/                           entries being written (renamed into place when sealed)
//! <root>/CACHEDIR.TAG                   marks the folder (backup tools skip it; `prune` needs it)
//! ```
//!
//! The root is `$WARPGATE_HOME/v1/compiled` unless [`CompileCache::Directory`] names another.
//! `<engine>` is a digest of everything that changes machine code and that the plugin's bytes
//! do not say: wasmtime's own compatibility hash of the engine configuration Extism uses
//! (wasmtime's version, the target and its CPU features, compiler settings), Extism's version
//! (which fixes its kernel module), warpgate's version, the `EXTISM_PROFILE`, `EXTISM_DEBUG` and
//! `EXTISM_COREDUMP` settings, and in a debug build the program's modification time (where a
//! debug build of wasmtime files its own cache). `<key>` is a digest
//! of the plugin's modules (their names and SHA-256). A wasmtime or Extism upgrade therefore
//! starts a new `<engine>` folder; `warpgate cache prune` deletes the old ones.
//!
//! # Why it is safe
//!
//! Extism compiles through wasmtime's file cache, and wasmtime loads a cached artifact as
//! machine code without checking its bytes. So warpgate never lets wasmtime see a cache folder
//! it has not checked: an entry is written in a private folder under `tmp/`, its files are
//! hashed into `SEAL`, and only then is the folder renamed into place, so a reader sees a
//! whole entry or none. Before every use the entry is checked against its seal: each listed
//! file is a regular file (never a symlink) of the recorded size and SHA-256, `wasmtime.toml`
//! says exactly what warpgate would write, and no other file that wasmtime could load is
//! present. A truncated, corrupt, foreign or half-written entry fails the check and is replaced
//! by a fresh compile. wasmtime itself adds a second check: an artifact is only loaded by an
//! engine whose version and settings match the ones that wrote it.
//!
//! The seal is a checksum, not a signature: it catches damage and files warpgate did not write,
//! not a person who can write arbitrary files as the same user (who could as well replace the
//! program). Point [`CompileCache::Directory`] at a folder only the application's user can
//! write, as the default under the user's cache folder is.
//!
//! # Failures
//!
//! The store only ever makes start-up faster. A store that cannot be read or written (read-only
//! folder, full disk) is logged at `debug` level and the plugin is compiled in memory, as with
//! [`CompileCache::Disabled`]; a damaged entry is logged as a warning and replaced. Two processes that compile one plugin at once both succeed; the
//! first rename wins and the other discards its copy.
//!
//! # Size
//!
//! After writing an entry, the least recently used entries are deleted while the store holds
//! more than [`SIZE_LIMIT`] bytes. Using an entry refreshes its `SEAL`'s modification time.

use fs_err as fs;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::hash::Hash as _;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::cache::Cache;
use crate::checksum::Checksum;
use crate::env;

/// The most bytes the compiled-module cache holds before it deletes least recently used entries.
pub const SIZE_LIMIT: u64 = 512 * 1024 * 1024;

/// First line of every `SEAL`.
const SEAL_HEADER: &str = "warpgate compiled-module seal v1";
/// The file that lists an entry's files.
const SEAL: &str = "SEAL";
/// wasmtime's cache settings for one entry.
const WASMTIME_CONFIG: &str = "wasmtime.toml";
/// wasmtime's cache folder inside an entry.
const WASMTIME_DIR: &str = "wasmtime";
/// Entries being written, and entries being deleted.
const TEMP_DIR: &str = "tmp";
/// A `tmp/` folder older than this belongs to a process that died.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);
/// Marks the root as a cache for backup tools, and as warpgate's for `prune`.
const TAG_TEXT: &str = "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by warpgate (compiled plugins).\n# For information about cache directory tags see https://bford.info/cachedir/\n";
/// A `SEAL` larger than this is not one warpgate wrote.
const MAX_SEAL_LEN: u64 = 64 * 1024;

/// Where compiled machine code is kept between runs.
///
/// The default, [`CompileCache::Default`], keeps it in warpgate's cache folder; see
/// [the compiled-module cache](crate::container#the-compiled-module-cache).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompileCache {
    /// `$WARPGATE_HOME/v1/compiled` (the platform cache folder + `warpgate/v1/compiled` when
    /// `WARPGATE_HOME` is unset), unless the `WARPGATE_COMPILE_CACHE` environment variable says
    /// otherwise: `off` (or `0`, `false`, `no`) disables the compiled-module cache, an absolute path moves it.
    #[default]
    Default,
    /// This folder (for example an application's own cache folder), whatever the environment
    /// says.
    Directory(PathBuf),
    /// No cache: every container compiles its plugin in memory and nothing is written.
    Disabled,
}

impl CompileCache {
    /// The folder this choice stores compiled modules in, or `None` when it is disabled.
    pub fn directory(&self) -> Option<PathBuf> {
        self.resolve().map(|(dir, _)| dir)
    }

    /// The folder, and warpgate's cache when the folder is the one inside it.
    fn resolve(&self) -> Option<(PathBuf, Option<Cache>)> {
        let in_cache = || {
            let cache = Cache::from_env().ok()?;
            Some((cache.compiled_dir(), Some(cache)))
        };
        match self {
            Self::Directory(dir) => Some((dir.clone(), None)),
            Self::Disabled => None,
            Self::Default => match env::var(env::WARPGATE_COMPILE_CACHE) {
                Some(value) if is_off(&value) => None,
                Some(value) if Path::new(&value).is_absolute() => {
                    Some((PathBuf::from(value), None))
                }
                Some(value) => {
                    tracing::warn!(
                        "ignoring `{}={value}`: expected `off` or an absolute path",
                        env::WARPGATE_COMPILE_CACHE
                    );
                    in_cache()
                }
                None => in_cache(),
            },
        }
    }
}

fn is_off(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "off" | "0" | "false" | "no"
    )
}

/// Where a container's compiled module came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModuleOrigin {
    /// Compiled by this container (and, when the compiled-module cache is on, stored for the next process).
    Compiled,
    /// Loaded from the compiled-module cache, written by an earlier compile.
    CompileCache,
    /// Shared with another container of this process built from the same bytes and settings.
    Shared,
}

/// What identifies a plugin's compiled code: its modules' names and digests.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ModuleKey {
    digest: [u8; 32],
    /// The SHA-256 of each module, in manifest order.
    modules: Vec<String>,
}

impl ModuleKey {
    /// The key of modules given as (name, SHA-256 hex digits) pairs.
    pub(crate) fn new<'a>(modules: impl IntoIterator<Item = (Option<&'a str>, String)>) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"warpgate module key v1\n");
        let mut hashes = Vec::new();
        for (name, hex) in modules {
            hasher.update(name.unwrap_or("").as_bytes());
            hasher.update(b"\0");
            hasher.update(hex.as_bytes());
            hasher.update(b"\n");
            hashes.push(hex);
        }
        Self {
            digest: hasher.finalize().into(),
            modules: hashes,
        }
    }

    pub(crate) fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    fn hex(&self) -> String {
        Checksum::from_bytes(self.digest).hex()
    }
}

/// The digest of everything besides the plugin's bytes that changes the machine code Extism's
/// engine produces; computed once per process.
fn engine_fingerprint() -> &'static str {
    static FINGERPRINT: OnceLock<String> = OnceLock::new();
    FINGERPRINT.get_or_init(|| {
        let mut hasher = DigestHasher(Sha256::new());
        // The settings Extism's `CompiledPlugin::new` applies (warpgate never asks for fuel,
        // debug info or core dumps). A setting missed here can only cause misses: wasmtime
        // refuses an artifact compiled under other settings.
        let mut config = wasmtime::Config::new();
        config
            .epoch_interruption(true)
            .wasm_tail_call(true)
            .wasm_function_references(true)
            .wasm_gc(true);
        match wasmtime::Engine::new(&config) {
            Ok(engine) => engine.precompile_compatibility_hash().hash(&mut hasher),
            Err(error) => format!("{error}").hash(&mut hasher),
        }
        extism::extism_version().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        // Extism reads these when it builds an engine: profiling, debug info, core dumps.
        std::env::var_os("EXTISM_PROFILE").hash(&mut hasher);
        std::env::var_os("EXTISM_DEBUG").is_some().hash(&mut hasher);
        std::env::var_os("EXTISM_COREDUMP")
            .is_some()
            .hash(&mut hasher);
        // A debug build of wasmtime files its cache under the executable's modification time
        // (each rebuild is a new compiler to it); so does this key, so that a debug and a
        // release program sharing one cache each keep their own entries.
        if cfg!(debug_assertions) {
            std::env::current_exe()
                .and_then(fs::metadata)
                .and_then(|metadata| metadata.modified())
                .ok()
                .hash(&mut hasher);
        }
        let digest: [u8; 32] = hasher.0.finalize().into();
        Checksum::from_bytes(digest).hex()[..32].to_string()
    })
}

struct DigestHasher(Sha256);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        unreachable!("only the SHA-256 digest is read")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// A compiled-module cache rooted at one folder.
#[derive(Clone, Debug)]
pub(crate) struct ModuleStore {
    root: PathBuf,
    /// warpgate's cache, when the store lives in it (marked as a cache before the first write).
    cache: Option<Cache>,
}

/// Why an entry was not used.
#[derive(Debug)]
enum Unusable {
    Missing,
    Invalid(String),
}

fn invalid(reason: impl Into<String>) -> Unusable {
    Unusable::Invalid(reason.into())
}

impl From<io::Error> for Unusable {
    fn from(error: io::Error) -> Self {
        if error.kind() == io::ErrorKind::NotFound {
            Unusable::Missing
        } else {
            Unusable::Invalid(error.to_string())
        }
    }
}

impl ModuleStore {
    /// The store for `choice`, or `None` when the compiled-module cache is disabled.
    pub(crate) fn open(choice: &CompileCache) -> Option<Self> {
        let (root, cache) = choice.resolve()?;
        let root = std::path::absolute(&root).unwrap_or(root);
        Some(Self { root, cache })
    }

    fn engine_dir(&self) -> PathBuf {
        self.root.join(engine_fingerprint())
    }

    fn entry_dir(&self, key: &ModuleKey) -> PathBuf {
        self.engine_dir().join(key.hex())
    }

    /// Compiles a plugin through the store: `compile` gets the wasmtime cache settings file to
    /// compile with, or `None` to compile in memory. An entry that passes its check is loaded;
    /// otherwise the plugin is compiled into a new entry, which replaces the old one.
    /// `module_files` is how many compiled files a complete entry holds.
    pub(crate) fn compile<T, E>(
        &self,
        key: &ModuleKey,
        module_files: usize,
        compile: impl Fn(Option<&Path>) -> Result<T, E>,
    ) -> Result<(T, ModuleOrigin), E> {
        let dir = self.entry_dir(key);
        match check(&dir) {
            Ok(sealed) => {
                touch(&dir.join(SEAL));
                tracing::debug!(entry = %dir.display(), "loading a compiled module");
                let Ok(compiled) = compile(Some(&dir.join(WASMTIME_CONFIG))) else {
                    // The entry vanished under us (pruned by another process), or the plugin
                    // does not compile: try without the store, which says which.
                    return compile(None).map(|compiled| (compiled, ModuleOrigin::Compiled));
                };
                // wasmtime found no artifact it could use in the entry (an engine setting this
                // key does not cover) and compiled, writing beside the sealed files: the entry
                // is dropped, and the next process writes a sound one.
                if module_files_in(&dir).map_or(true, |files| files.len() != sealed) {
                    tracing::debug!(entry = %dir.display(), "compiled module was not usable; dropping it");
                    let _ = self.remove_entry(&dir);
                    return Ok((compiled, ModuleOrigin::Compiled));
                }
                return Ok((compiled, ModuleOrigin::CompileCache));
            }
            Err(Unusable::Missing) => {}
            Err(Unusable::Invalid(reason)) => {
                tracing::warn!(
                    entry = %dir.display(),
                    "ignoring a damaged compiled module ({reason}); compiling again"
                );
            }
        }
        let stage = match self.stage() {
            Ok(stage) => stage,
            Err(error) => {
                tracing::debug!(root = %self.root.display(), "compiled-module cache not writable: {error}");
                return compile(None).map(|compiled| (compiled, ModuleOrigin::Compiled));
            }
        };
        let compiled = compile(Some(&stage.path().join(WASMTIME_CONFIG)))?;
        match self.install(stage, &dir, key, module_files) {
            Ok(()) => tracing::debug!(entry = %dir.display(), "stored a compiled module"),
            Err(error) => {
                tracing::debug!(entry = %dir.display(), "could not store a compiled module: {error}");
            }
        }
        Ok((compiled, ModuleOrigin::Compiled))
    }

    /// A new private folder under `tmp/`, with wasmtime settings that point into it.
    fn stage(&self) -> io::Result<tempfile::TempDir> {
        let temp = self.root.join(TEMP_DIR);
        if let Some(cache) = &self.cache {
            cache.ensure_layout().map_err(io::Error::other)?;
        }
        // The mark first: a folder warpgate made is never left unmarked, and a folder with
        // someone else's files is never used.
        if !crate::fs::claim_folder(&self.root, TAG_TEXT)? {
            return Err(io::Error::other(format!(
                "`{}` is not empty and has no warpgate `CACHEDIR.TAG`",
                self.root.display()
            )));
        }
        fs::create_dir_all(&temp)?;
        sweep_stale(&temp);
        let stage = tempfile::Builder::new()
            .prefix("entry-")
            .tempdir_in(&temp)?;
        let config = stage.path().join(WASMTIME_CONFIG);
        fs::write(&config, wasmtime_config(&stage.path().join(WASMTIME_DIR))?)?;
        Ok(stage)
    }

    /// Seals a compiled stage and renames it into place at `dir`; a stage that cannot be
    /// installed is discarded.
    fn install(
        &self,
        stage: tempfile::TempDir,
        dir: &Path,
        key: &ModuleKey,
        module_files: usize,
    ) -> io::Result<()> {
        let stage = stage.keep();
        if let Err(error) = self.seal(&stage, dir, key, module_files) {
            self.discard(&stage);
            return Err(error);
        }
        self.move_into_place(&stage, dir)?;
        self.enforce_size_limit(SIZE_LIMIT);
        Ok(())
    }

    /// Checks what wasmtime wrote into `stage`, points its settings at `dir` and writes the
    /// `SEAL` that names every compiled file with its checksum.
    fn seal(
        &self,
        stage: &Path,
        dir: &Path,
        key: &ModuleKey,
        module_files: usize,
    ) -> io::Result<()> {
        let files = module_files_in(stage)?;
        if files.len() != module_files {
            return Err(io::Error::other(format!(
                "wasmtime wrote {} compiled files, expected {module_files}",
                files.len()
            )));
        }
        let mut seal = format!("{SEAL_HEADER}\n");
        for module in &key.modules {
            let _ = writeln!(seal, "module {module}");
        }
        for relative in &files {
            let (checksum, size) = Checksum::of_file(&stage.join(relative))?;
            let _ = writeln!(
                seal,
                "file {} {size} {}",
                checksum.hex(),
                relative_str(relative)?
            );
        }
        fs::write(
            stage.join(WASMTIME_CONFIG),
            wasmtime_config(&dir.join(WASMTIME_DIR))?,
        )?;
        fs::write(stage.join(SEAL), seal)?;
        fs::create_dir_all(self.engine_dir())
    }

    /// Renames the sealed `stage` to `dir`: the first process to do so wins, and a sound entry
    /// already there is kept.
    fn move_into_place(&self, stage: &Path, dir: &Path) -> io::Result<()> {
        match fs::rename(stage, dir) {
            Ok(()) => {}
            // Another process installed this entry first; a sound one is kept.
            Err(_) if dir.exists() && check(dir).is_ok() => {
                self.discard(stage);
            }
            Err(_) if dir.exists() => {
                let trash = self.trash_path();
                if let Err(error) = fs::rename(dir, &trash)
                    && error.kind() != io::ErrorKind::NotFound
                {
                    self.discard(stage);
                    return Err(error);
                }
                delete_tree(&trash);
                if let Err(error) = fs::rename(stage, dir) {
                    self.discard(stage);
                    return Err(error);
                }
            }
            Err(error) => {
                self.discard(stage);
                return Err(error);
            }
        }
        Ok(())
    }

    fn trash_path(&self) -> PathBuf {
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = format!(
            "trash-{}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos())
        );
        self.root.join(TEMP_DIR).join(unique)
    }

    /// Every entry of every engine: (folder, bytes, last use, module SHA-256s).
    fn entries(&self) -> Vec<StoredEntry> {
        let mut entries = Vec::new();
        for engine in read_dir(&self.root) {
            let name = engine.file_name();
            if name == TEMP_DIR || !is_hex_name(&name) || !is_dir(&engine.path()) {
                continue;
            }
            for entry in read_dir(&engine.path()) {
                let dir = entry.path();
                if !is_hex_name(&entry.file_name()) || !is_dir(&dir) {
                    continue;
                }
                let seal = read_seal(&dir).ok();
                let last_used = fs::metadata(dir.join(SEAL))
                    .and_then(|metadata| metadata.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                entries.push(StoredEntry {
                    current: name == engine_fingerprint(),
                    size: seal
                        .as_ref()
                        .map_or(0, |seal| seal.files.iter().map(|file| file.size).sum()),
                    modules: seal.map(|seal| seal.modules).unwrap_or_default(),
                    dir,
                    last_used,
                });
            }
        }
        entries
    }

    /// Deletes least recently used entries while the store holds more than `limit` bytes.
    fn enforce_size_limit(&self, limit: u64) {
        let mut entries = self.entries();
        let mut total: u64 = entries.iter().map(|entry| entry.size).sum();
        if total <= limit {
            return;
        }
        entries.sort_by_key(|entry| entry.last_used);
        for entry in entries {
            if total <= limit {
                break;
            }
            if self.remove_entry(&entry.dir).is_ok() {
                total = total.saturating_sub(entry.size);
            }
        }
    }

    /// Moves an entry out of place (atomically), then deletes it.
    fn remove_entry(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(self.root.join(TEMP_DIR))?;
        let trash = self.trash_path();
        fs::rename(dir, &trash)?;
        delete_tree(&trash);
        Ok(())
    }

    /// Deletes a stage or entry that wasmtime's cache worker may still write into: the worker
    /// writes usage statistics and cleanup locks by path, in the background. The folder is
    /// renamed first, so that later writes by the old path fail; [`delete_tree`] then waits out
    /// a write that was already under way.
    fn discard(&self, dir: &Path) {
        let trash = self.trash_path();
        match fs::rename(dir, &trash) {
            Ok(()) => delete_tree(&trash),
            Err(_) => delete_tree(dir),
        }
    }
}

struct StoredEntry {
    dir: PathBuf,
    current: bool,
    size: u64,
    last_used: SystemTime,
    modules: Vec<String>,
}

/// What `warpgate cache prune` freed in a compiled-module cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Entries deleted.
    pub entries: u64,
    /// Bytes of compiled code they held.
    pub bytes: u64,
}

/// Deletes, from the compiled-module cache at `root`, every entry written by another engine
/// (an older wasmtime or Extism), every entry of a plugin none of whose modules is in `keep`,
/// and the leftovers of interrupted writes.
///
/// A folder that exists but lacks the compiled-module cache's mark (`CACHEDIR.TAG`, written
/// with the first entry) is refused: nothing is deleted in a folder warpgate did not make.
pub fn prune(root: &Path, keep: &std::collections::HashSet<Checksum>) -> io::Result<Pruned> {
    if !root.exists() {
        return Ok(Pruned::default());
    }
    if !is_marked(root) {
        return Err(io::Error::other(format!(
            "`{}` is not a warpgate compiled-module cache (no `CACHEDIR.TAG`); refusing to delete anything in it",
            root.display()
        )));
    }
    let store = ModuleStore {
        root: root.to_path_buf(),
        cache: None,
    };
    let mut pruned = Pruned::default();
    for entry in store.entries() {
        let kept = entry.current
            && entry.modules.iter().any(|module| {
                module
                    .parse::<Checksum>()
                    .is_ok_and(|checksum| keep.contains(&checksum))
            });
        if !kept {
            match store.remove_entry(&entry.dir) {
                Ok(()) => {
                    pruned.entries += 1;
                    pruned.bytes += entry.size;
                }
                // Another process removed it first.
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
    }
    // Empty folders of other engines.
    for engine in read_dir(root) {
        if engine.file_name() != engine_fingerprint() && is_hex_name(&engine.file_name()) {
            let _ = fs::remove_dir(engine.path());
        }
    }
    sweep_stale(&root.join(TEMP_DIR));
    Ok(pruned)
}

/// The wasmtime cache settings of an entry whose wasmtime folder is `dir`: the worker that
/// wasmtime runs beside its cache never recompresses (rewrites) a sealed file, and its clean-up
/// limits are far above one plugin's size.
fn wasmtime_config(dir: &Path) -> io::Result<String> {
    #[derive(serde::Serialize)]
    struct Settings<'a> {
        cache: CacheSettings<'a>,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "kebab-case")]
    struct CacheSettings<'a> {
        directory: &'a str,
        optimized_compression_usage_counter_threshold: &'static str,
        cleanup_interval: &'static str,
    }
    let directory = dir
        .to_str()
        .ok_or_else(|| io::Error::other(format!("`{}` is not valid UTF-8", dir.display())))?;
    toml::to_string(&Settings {
        cache: CacheSettings {
            directory,
            optimized_compression_usage_counter_threshold: "1000P",
            cleanup_interval: "36500d",
        },
    })
    .map_err(io::Error::other)
}

/// A file in the entry's wasmtime folder that holds no code and that wasmtime's worker writes
/// on its own: usage statistics and its lock files.
fn is_bookkeeping(name: &str) -> bool {
    Path::new(name)
        .extension()
        .is_some_and(|extension| extension == "stats")
        || name.contains(".wip-")
        || name.starts_with(".cleanup")
}

/// The files under `entry/wasmtime` that wasmtime could load, relative to `entry`, sorted.
fn module_files_in(entry: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for item in walkdir::WalkDir::new(entry.join(WASMTIME_DIR))
        .follow_links(false)
        .follow_root_links(false)
    {
        let item = match item {
            Ok(item) => item,
            // Gone while listed: one of the worker's own temp files, renamed or deleted by the
            // worker of a process that is loading this entry. A sealed file that is gone
            // fails the size check of `check` instead.
            Err(error)
                if error.io_error().map(io::Error::kind) == Some(io::ErrorKind::NotFound) =>
            {
                continue;
            }
            Err(error) => return Err(io::Error::other(error)),
        };
        let file_type = item.file_type();
        if file_type.is_dir() {
            continue;
        }
        let name = item.file_name().to_string_lossy();
        if file_type.is_file() && is_bookkeeping(&name) {
            continue;
        }
        if !file_type.is_file() {
            return Err(io::Error::other(format!(
                "`{}` is not a regular file",
                item.path().display()
            )));
        }
        let relative = item
            .path()
            .strip_prefix(entry)
            .map_err(io::Error::other)?
            .to_path_buf();
        files.push(relative);
    }
    files.sort();
    Ok(files)
}

fn relative_str(path: &Path) -> io::Result<&str> {
    path.to_str()
        .filter(|text| !text.contains('\n'))
        .ok_or_else(|| io::Error::other(format!("`{}` cannot be sealed", path.display())))
}

struct Seal {
    modules: Vec<String>,
    files: Vec<SealedFile>,
}

struct SealedFile {
    checksum: Checksum,
    size: u64,
    path: PathBuf,
}

fn read_seal(entry: &Path) -> Result<Seal, Unusable> {
    let path = entry.join(SEAL);
    let metadata = fs::symlink_metadata(&path)?;
    if !metadata.is_file() || metadata.len() > MAX_SEAL_LEN {
        return Err(invalid("`SEAL` is not a small regular file"));
    }
    let text = fs::read_to_string(&path)?;
    let mut lines = text.lines();
    if lines.next() != Some(SEAL_HEADER) {
        return Err(invalid("`SEAL` has an unknown header"));
    }
    let mut seal = Seal {
        modules: Vec::new(),
        files: Vec::new(),
    };
    for line in lines {
        if let Some(module) = line.strip_prefix("module ") {
            seal.modules.push(module.to_string());
        } else if let Some(rest) = line.strip_prefix("file ") {
            let mut parts = rest.splitn(3, ' ');
            let (Some(checksum), Some(size), Some(relative)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(invalid("`SEAL` has a malformed line"));
            };
            let relative = PathBuf::from(relative);
            let inside = relative.starts_with(WASMTIME_DIR)
                && relative
                    .components()
                    .all(|component| matches!(component, Component::Normal(_)));
            if !inside {
                return Err(invalid("`SEAL` names a file outside the entry"));
            }
            seal.files.push(SealedFile {
                checksum: checksum
                    .parse()
                    .map_err(|_| invalid("`SEAL` has a malformed checksum"))?,
                size: size
                    .parse()
                    .map_err(|_| invalid("`SEAL` has a malformed size"))?,
                path: relative,
            });
        } else {
            return Err(invalid("`SEAL` has a malformed line"));
        }
    }
    if seal.files.is_empty() {
        return Err(invalid("`SEAL` lists no files"));
    }
    Ok(seal)
}

/// Checks an entry against its seal (see the module docs); returns how many files it seals.
fn check(entry: &Path) -> Result<usize, Unusable> {
    for (path, what) in [
        (entry.to_path_buf(), "the entry"),
        (entry.join(WASMTIME_DIR), "`wasmtime`"),
        (entry.join(WASMTIME_CONFIG), "`wasmtime.toml`"),
    ] {
        if fs::symlink_metadata(&path)?.file_type().is_symlink() {
            return Err(invalid(format!("{what} is a symlink")));
        }
    }
    let seal = read_seal(entry)?;
    let config = fs::read(entry.join(WASMTIME_CONFIG))?;
    if config != wasmtime_config(&entry.join(WASMTIME_DIR))?.as_bytes() {
        return Err(invalid("`wasmtime.toml` differs from what warpgate writes"));
    }
    let present = module_files_in(entry).map_err(|error| invalid(error.to_string()))?;
    let listed: BTreeSet<&Path> = seal.files.iter().map(|file| file.path.as_path()).collect();
    if let Some(extra) = present.iter().find(|path| !listed.contains(path.as_path())) {
        return Err(invalid(format!("`{}` is not in the seal", extra.display())));
    }
    for file in &seal.files {
        let path = entry.join(&file.path);
        let metadata = fs::symlink_metadata(&path)?;
        if !metadata.is_file() {
            return Err(invalid(format!(
                "`{}` is not a regular file",
                file.path.display()
            )));
        }
        if metadata.len() != file.size {
            return Err(invalid(format!(
                "`{}` has {} bytes, the seal says {}",
                file.path.display(),
                metadata.len(),
                file.size
            )));
        }
        let (checksum, _) = Checksum::of_file(&path)?;
        if checksum != file.checksum {
            return Err(invalid(format!(
                "`{}` does not match its checksum",
                file.path.display()
            )));
        }
    }
    Ok(seal.files.len())
}

/// Whether `root` holds the mark that warpgate writes when it creates a compiled-module cache.
fn is_marked(root: &Path) -> bool {
    crate::fs::is_claimed(root, TAG_TEXT)
}

/// Marks an entry as used now (least recently used entries go first); best effort.
fn touch(seal: &Path) {
    if let Ok(file) = fs::File::options().append(true).open(seal) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// Deletes folders under `tmp/` older than an hour (left by processes that died mid-write).
fn sweep_stale(temp: &Path) {
    for item in read_dir(temp) {
        let stale = item
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_dir)
            .and_then(|metadata| metadata.modified().ok())
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age >= STALE_TEMP_AGE);
        let ours = item
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with("entry-") || name.starts_with("trash-"));
        if stale && ours {
            delete_tree(&item.path());
        }
    }
}

/// Deletes `dir` and everything in it, trying again a few times when a file appears in it
/// while it is being deleted (a write of wasmtime's cache worker that was under way).
/// Failures are logged, never returned: what is left is swept by a later run.
fn delete_tree(dir: &Path) {
    for attempt in 1..=5 {
        match fs::remove_dir_all(dir) {
            Ok(()) => return,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return,
            Err(error) if error.kind() == io::ErrorKind::DirectoryNotEmpty && attempt < 5 => {
                std::thread::sleep(Duration::from_millis(10 * attempt));
            }
            Err(error) => {
                tracing::debug!(dir = %dir.display(), "could not delete: {error}");
                return;
            }
        }
    }
}

/// The entries of `dir`; a missing or unreadable folder has none.
fn read_dir(dir: &Path) -> impl Iterator<Item = fs::DirEntry> {
    fs::read_dir(dir).into_iter().flatten().flatten()
}

fn is_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|metadata| metadata.is_dir())
}

fn is_hex_name(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|name| !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sealed entry of `size` bytes whose `SEAL` was last used `age` ago.
    fn fake_entry(store: &ModuleStore, name: &str, size: usize, age: Duration) -> PathBuf {
        let dir = store.engine_dir().join(name);
        let file = dir.join(WASMTIME_DIR).join("modules/code");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, vec![7; size]).unwrap();
        let checksum = Checksum::of(&vec![7; size]);
        fs::write(
            dir.join(SEAL),
            format!(
                "{SEAL_HEADER}\nmodule {}\nfile {} {size} wasmtime/modules/code\n",
                checksum.hex(),
                checksum.hex()
            ),
        )
        .unwrap();
        fs::write(
            dir.join(WASMTIME_CONFIG),
            wasmtime_config(&dir.join(WASMTIME_DIR)).unwrap(),
        )
        .unwrap();
        let seal = fs::File::options()
            .append(true)
            .open(dir.join(SEAL))
            .unwrap();
        seal.set_modified(SystemTime::now() - age).unwrap();
        assert!(check(&dir).is_ok());
        dir
    }

    /// wasmtime's cache worker writes statistics into a stage by path, in the background,
    /// possibly while a process that lost the race to install the entry deletes its stage.
    #[test]
    fn a_discarded_stage_is_gone_even_while_something_writes_into_it() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};

        let temp = tempfile::tempdir().unwrap();
        let store = ModuleStore {
            root: temp.path().to_path_buf(),
            cache: None,
        };
        let stage = temp.path().join(TEMP_DIR).join("entry-test");
        let modules = stage.join(WASMTIME_DIR);
        fs::create_dir_all(&modules).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writer = std::thread::spawn({
            let stop = Arc::clone(&stop);
            let modules = modules.clone();
            move || {
                let mut written = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    if fs::write(modules.join(format!("{written}.stats")), b"1").is_ok() {
                        written += 1;
                    }
                }
                written
            }
        });
        while fs::read_dir(&modules).map_or(0, Iterator::count) < 100 {
            std::thread::yield_now();
        }
        store.discard(&stage);
        std::thread::sleep(Duration::from_millis(20));
        stop.store(true, Ordering::Relaxed);
        assert!(writer.join().unwrap() >= 100);
        assert!(!stage.exists());
        let left: Vec<_> = read_dir(&temp.path().join(TEMP_DIR)).collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn least_recently_used_entries_go_first_past_the_limit() {
        let temp = tempfile::tempdir().unwrap();
        let store = ModuleStore {
            root: temp.path().to_path_buf(),
            cache: None,
        };
        let old = fake_entry(&store, "aa", 100, Duration::from_secs(300));
        let used = fake_entry(&store, "bb", 100, Duration::from_secs(200));
        let new = fake_entry(&store, "cc", 100, Duration::from_secs(100));
        // Using an entry makes it the most recent.
        touch(&used.join(SEAL));
        store.enforce_size_limit(250);
        assert!(!old.exists());
        assert!(used.exists() && new.exists());
        store.enforce_size_limit(100);
        assert!(!new.exists());
        assert!(used.exists());
        store.enforce_size_limit(1000);
        assert!(used.exists());
        // Deleted entries pass through `tmp/` and leave nothing there.
        assert_eq!(fs::read_dir(temp.path().join(TEMP_DIR)).unwrap().count(), 0);
    }

    #[test]
    fn env_var_turns_off_or_moves_the_default_only() {
        assert!(is_off("OFF") && is_off("0") && is_off("false") && is_off("no"));
        assert!(!is_off("/srv/compiled"));
        let dir = PathBuf::from("/srv/compiled");
        assert_eq!(CompileCache::Directory(dir.clone()).directory(), Some(dir));
        assert_eq!(CompileCache::Disabled.directory(), None);
    }

    #[test]
    fn seals_only_name_files_inside_the_entry() {
        let temp = tempfile::tempdir().unwrap();
        let store = ModuleStore {
            root: temp.path().to_path_buf(),
            cache: None,
        };
        let entry = fake_entry(&store, "aa", 10, Duration::ZERO);
        let checksum = Checksum::of(&[7; 10]).hex();
        for path in [
            "wasmtime/../../x",
            "/etc/passwd",
            "elsewhere/code",
            "wasmtime/./code",
        ] {
            fs::write(
                entry.join(SEAL),
                format!("{SEAL_HEADER}\nfile {checksum} 10 {path}\n"),
            )
            .unwrap();
            assert!(matches!(check(&entry), Err(Unusable::Invalid(_))), "{path}");
        }
    }
}
