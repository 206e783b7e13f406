//! `warpgate-build` vendors the plugins pinned in `warpgate.lock` into a crate's build, from
//! `build.rs`, so that the application embeds verified plugin bytes and runs them with no
//! network and no files outside its binary.
//!
//! ```toml
//! [dependencies]
//! warpgate = { version = "0.1", features = ["runtime"] }
//!
//! [build-dependencies]
//! warpgate-build = "0.1"
//! ```
//!
//! `build.rs`:
//!
//! ```no_run
//! fn main() {
//!     warpgate_build::vendor_or_exit();
//! }
//! ```
//!
//! or, to handle the error yourself (its `Debug` output is the readable message):
//!
//! ```no_run
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     warpgate_build::vendor()?;
//!     Ok(())
//! }
//! ```
//!
//! `src/main.rs`:
//!
//! ```ignore
//! static PLUGINS: warpgate::embedded::EmbeddedPlugins = warpgate::include_plugins!();
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let container = PLUGINS.require("json_tools")?.container()?;
//!     // container.call_func_with("add", …)
//!     Ok(())
//! }
//! ```
//!
//! This crate depends on `warpgate` without its `runtime` feature, so build scripts never
//! compile Extism or wasmtime.
//!
//! # What [`vendor`] does
//!
//! 1. Finds the config (`warpgate.toml`, or warpgate metadata in `Cargo.toml`) from
//!    `CARGO_MANIFEST_DIR`, walking up to the workspace root and no further (a stray
//!    `warpgate.toml` in `$HOME` is never used), and the `warpgate.lock` next to it. The
//!    workspace root is found as Cargo finds it, by reading the manifests (see
//!    `warpgate::config::cargo_workspace_root`); `cargo metadata` runs only when no
//!    `warpgate.toml` is found. It refuses to build when the lock is missing or does not cover the config, as
//!    `warpgate lock --locked` does, with the hint to run `warpgate lock`. It never resolves
//!    anything and never calls the GitHub API.
//! 2. Takes each locked plugin's bytes from, in order:
//!    - `file://` plugins: the locked file;
//!    - the vendor directory: `WARPGATE_VENDOR_DIR` (relative to the config's folder), else
//!      `vendor/warpgate/` next to the config when it exists (see `warpgate vendor`). With the
//!      usual layout, a config at the workspace root, that is the workspace root's
//!      `vendor/warpgate/`. A member crate with its own config has its own vendor directory
//!      next to it, where `warpgate vendor` writes it: one vendor directory holds exactly one
//!      lock's plugins, so a shared one would fail the other crates' checks;
//!    - the content cache (`WARPGATE_HOME`);
//!    - the locked `url`, into the cache — only when the network is allowed: never when
//!      `CARGO_NET_OFFLINE=true`, `WARPGATE_OFFLINE=1` or `DOCS_RS` is set. Cargo does not
//!      tell build scripts about `cargo build --offline` (or `--frozen`); for a build that
//!      must not download, set `CARGO_NET_OFFLINE=true`, which makes Cargo offline too.
//!
//!    Every file is hashed before use. A mismatch fails the build naming the plugin, where
//!    the bytes came from, the expected and computed checksums, and the fix. (A corrupt cache
//!    entry is deleted and the next source tried, as everywhere in warpgate.)
//! 3. Writes, only under `OUT_DIR`, `plugins/<id>.wasm` and the module `warpgate_plugins.rs`
//!    that `warpgate::include_plugins!()` includes. The module refers to the files through
//!    `env!("OUT_DIR")`, never an absolute path, so the same lock gives byte-identical output
//!    in any checkout on any machine. Files whose content is unchanged are not rewritten
//!    (their mtimes stay); changed ones are written to a temp file and renamed, so `OUT_DIR`
//!    never holds unverified or partial bytes. Stale `plugins/*.wasm` files are removed.
//! 4. Prints `cargo::rerun-if-changed` for the config, the lock, `file://` sources and the
//!    vendored files it used, and `cargo::rerun-if-env-changed` for every warpgate variable
//!    it reads (`WARPGATE_VENDOR_DIR`, `WARPGATE_HOME`, `WARPGATE_OFFLINE`,
//!    `CARGO_NET_OFFLINE`, `DOCS_RS`, `SSL_CERT_FILE`), so an unchanged project does not
//!    re-run the script and a changed lock does. Variables read by libraries on its behalf
//!    (the proxy variables, read by the HTTP client; `XDG_CACHE_HOME`/`HOME` for the default
//!    cache folder) are not listed: they only say where verified bytes come from, never which
//!    bytes, so a successful run's output cannot depend on them (and Cargo re-runs a failed
//!    script anyway).
//!
//! On [docs.rs](https://docs.rs) (`DOCS_RS` set), a plugin that is neither vendored nor
//! cached is embedded as an empty placeholder with a warning, so documentation still builds;
//! such a binary is never run.
//!
//! # Performance
//!
//! A run re-hashes every plugin it embeds (and compares it with `OUT_DIR`'s copy instead of
//! hashing that too). Cargo builds build-script dependencies without optimisation, and
//! unoptimised SHA-256 is about 20 times slower, so projects with large plugins should add:
//!
//! ```toml
//! [profile.dev.package.sha2]
//! opt-level = 3
//! ```
//!
//! With it, a build script embedding 10 cached plugins of 100 KiB runs in about 4 ms (as a
//! process, debug build); without it, in about 20 ms.
//!
//! [`Builder`] sets the paths and switches explicitly (for tests, benchmarks and unusual
//! layouts).

#![warn(missing_docs)]
// The examples show a whole `build.rs`, whose `fn main` is the point.
#![allow(clippy::needless_doctest_main)]

mod directive;
mod error;
mod generate;

use std::io;
use std::path::{Path, PathBuf};

use warpgate::cache::Cache;
use warpgate::checksum::{Checksum, Hasher, Mismatch};
use warpgate::config::Config;
use warpgate::env;
use warpgate::fs::Links;
use warpgate::id::Id;
use warpgate::lockfile::{LockedPlugin, Lockfile};

pub use directive::Directive;
pub use error::Error;
pub use generate::{MODULE_NAME, PLUGINS_DIR};

/// How `flag` is named in "the lock is out of date" messages.
const FLAG: &str = "the build script (`warpgate-build`)";

/// Vendors every locked plugin into `OUT_DIR` with the settings from the environment, and
/// prints the `cargo::` directives. See the crate docs.
pub fn vendor() -> Result<Report, Error> {
    Builder::new().vendor()
}

/// [`vendor`], printing the error to stderr and exiting with status 1 on failure, so that
/// `cargo build` shows the message (and no panic backtrace).
pub fn vendor_or_exit() {
    if let Err(error) = vendor() {
        eprintln!("error: {}", error.report());
        std::process::exit(1);
    }
}

/// Where a plugin's bytes came from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// A file in the vendor directory.
    Vendored(PathBuf),
    /// The plugin's own `file://` source.
    File(PathBuf),
    /// A verified blob in the content cache.
    Cache(PathBuf),
    /// Downloaded from the locked URL (and cached).
    Download(String),
    /// Nowhere: a placeholder embedded for a docs.rs build.
    Missing,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Vendored(path) => write!(f, "the vendor directory (`{}`)", path.display()),
            Self::File(path) => write!(f, "its `file://` source (`{}`)", path.display()),
            Self::Cache(path) => write!(f, "the cache (`{}`)", path.display()),
            Self::Download(url) => write!(f, "`{url}`"),
            Self::Missing => f.write_str("nowhere (docs.rs placeholder)"),
        }
    }
}

/// One plugin that [`vendor`] embedded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VendoredPlugin {
    /// The plugin.
    pub id: Id,
    /// Its locked checksum.
    pub checksum: Checksum,
    /// Its size in bytes.
    pub size: u64,
    /// Where the bytes came from.
    pub source: Source,
    /// Whether `OUT_DIR/plugins/<id>.wasm` was (re)written (`false`: already up to date).
    pub written: bool,
}

/// What [`vendor`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The config file.
    pub config: PathBuf,
    /// The lockfile.
    pub lockfile: PathBuf,
    /// The vendor directory consulted, if any.
    pub vendor_dir: Option<PathBuf>,
    /// Every locked plugin, sorted by id.
    pub plugins: Vec<VendoredPlugin>,
    /// The generated module.
    pub module: PathBuf,
    /// Whether the generated module was (re)written.
    pub module_written: bool,
    /// The directives for Cargo (printed unless turned off with
    /// [`Builder::emit_directives`]).
    pub directives: Vec<Directive>,
}

/// Options for [`vendor`]: every setting defaults to what the environment says.
#[derive(Clone, Debug)]
pub struct Builder {
    manifest_dir: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    vendor_dir: Option<Option<PathBuf>>,
    cache_dir: Option<PathBuf>,
    offline: Option<bool>,
    emit_directives: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Settings from the environment; directives are printed.
    pub fn new() -> Self {
        Self {
            manifest_dir: None,
            out_dir: None,
            vendor_dir: None,
            cache_dir: None,
            offline: None,
            emit_directives: true,
        }
    }

    /// Where the config search starts (default: `CARGO_MANIFEST_DIR`).
    pub fn manifest_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.manifest_dir = Some(dir.into());
        self
    }

    /// Where the output goes (default: `OUT_DIR`).
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// The vendor directory to read first, or `None` for none (default:
    /// `WARPGATE_VENDOR_DIR`, else `vendor/warpgate/` next to the config when it exists).
    pub fn vendor_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.vendor_dir = Some(dir);
        self
    }

    /// The cache root (default: `WARPGATE_HOME`, else the platform cache dir).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Forbids (`true`) or allows (`false`) downloads (default: forbidden when
    /// `CARGO_NET_OFFLINE=true`, `WARPGATE_OFFLINE=1` or `DOCS_RS` is set).
    pub fn offline(mut self, offline: bool) -> Self {
        self.offline = Some(offline);
        self
    }

    /// Whether to print the `cargo::` directives to stdout (default: `true`). They are in
    /// [`Report::directives`] either way.
    pub fn emit_directives(mut self, emit: bool) -> Self {
        self.emit_directives = emit;
        self
    }

    /// Runs [`vendor`] with these settings.
    pub fn vendor(self) -> Result<Report, Error> {
        let report = self.run()?;
        if self.emit_directives {
            directive::emit(&report.directives);
        }
        Ok(report)
    }

    fn run(&self) -> Result<Report, Error> {
        let mut directives = Vec::new();
        let manifest_dir = match &self.manifest_dir {
            Some(dir) => dir.clone(),
            None => cargo_var("CARGO_MANIFEST_DIR")?,
        };
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => cargo_var("OUT_DIR")?,
        };

        let config = Config::discover(&manifest_dir)?;
        let lock_path = config.lockfile_path();
        directives.push(Directive::RerunIfChanged(config.path.clone()));
        directives.push(Directive::RerunIfChanged(lock_path.clone()));
        let lockfile = Lockfile::read(&lock_path)?;
        warpgate::lock::check_locked(&config, lockfile.as_ref(), FLAG)?;
        let lockfile = lockfile.unwrap_or_default();

        let docs_rs = env::var(env::DOCS_RS).is_some();
        let offline = match self.offline {
            Some(true) => Some("`Builder::offline(true)`".to_string()),
            Some(false) => None,
            None => env::offline_var()
                .map(|name| format!("`{name}={}`", env::var(name).unwrap_or_default()))
                .or_else(|| docs_rs.then(|| format!("`{}`", env::DOCS_RS))),
        };
        let vendor_dir = match &self.vendor_dir {
            Some(dir) => dir.clone(),
            None => warpgate::vendor::dir_from_env(&config),
        };
        let cache = match &self.cache_dir {
            Some(dir) => Some(Cache::new(dir)),
            None => Cache::from_env().ok(),
        };
        for name in [
            env::WARPGATE_VENDOR_DIR,
            env::WARPGATE_HOME,
            env::WARPGATE_OFFLINE,
            env::CARGO_NET_OFFLINE,
            env::DOCS_RS,
            // Read by the HTTP client when a plugin is downloaded.
            env::SSL_CERT_FILE,
        ] {
            directives.push(Directive::RerunIfEnvChanged(name));
        }

        let plugins_dir = out_dir.join(PLUGINS_DIR);
        std::fs::create_dir_all(&plugins_dir).map_err(io_error("create", &plugins_dir))?;
        let mut sources = Sources {
            config: &config,
            vendor_dir: vendor_dir.as_deref(),
            cache: cache.as_ref(),
            offline: offline.as_deref(),
            runtime: None,
            fetcher: None,
        };
        let mut plugins = Vec::with_capacity(lockfile.plugins.len());
        for (id, locked) in &lockfile.plugins {
            let target = plugins_dir.join(format!("{id}.wasm"));
            let (source, written) = match sources.install(id, locked, &target) {
                Ok(installed) => installed,
                Err(Error::Offline { .. }) if docs_rs => {
                    directives.push(Directive::Warning(format!(
                        "plugin `{id}` is neither vendored nor cached; embedding an empty placeholder for docs.rs"
                    )));
                    (Source::Missing, write_if_changed(&target, b"")?)
                }
                Err(error) => return Err(error),
            };
            match &source {
                Source::Vendored(path) | Source::File(path) => {
                    directives.push(Directive::RerunIfChanged(path.clone()));
                }
                Source::Cache(_) | Source::Download(_) | Source::Missing => {}
            }
            plugins.push(VendoredPlugin {
                id: id.clone(),
                checksum: locked.checksum,
                size: locked.size,
                source,
                written,
            });
        }
        remove_stale(&plugins_dir, &lockfile)?;

        let module = out_dir.join(MODULE_NAME);
        let module_written =
            write_if_changed(&module, generate::module(&lockfile, &config).as_bytes())?;
        Ok(Report {
            config: config.path.clone(),
            lockfile: lock_path,
            vendor_dir,
            plugins,
            module,
            module_written,
            directives,
        })
    }
}

fn cargo_var(name: &'static str) -> Result<PathBuf, Error> {
    std::env::var_os(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .ok_or(Error::NotInBuildScript { name })
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The places bytes come from, with the download machinery made on first use.
struct Sources<'a> {
    config: &'a Config,
    vendor_dir: Option<&'a Path>,
    cache: Option<&'a Cache>,
    offline: Option<&'a str>,
    runtime: Option<tokio::runtime::Runtime>,
    fetcher: Option<warpgate::fetch::Fetcher>,
}

impl Sources<'_> {
    /// Verifies `locked`'s bytes from the first source that has them and installs them at
    /// `target`. Returns the source and whether `target` was (re)written.
    fn install(
        &mut self,
        id: &Id,
        locked: &LockedPlugin,
        target: &Path,
    ) -> Result<(Source, bool), Error> {
        if let Some(path) = &locked.path {
            let source = Source::File(warpgate::lock::file_path(self.config.root(), path));
            let written = install_verified(id, locked, &source, target)?;
            return Ok((source, written));
        }
        if let Some(dir) = self.vendor_dir {
            let path = warpgate::vendor::plugin_path(dir, id);
            if path.exists() {
                let source = Source::Vendored(path);
                let written = install_verified(id, locked, &source, target)?;
                return Ok((source, written));
            }
        }
        if let Some(cache) = self.cache {
            let path = cache.blob_path(&locked.checksum);
            if path.exists() {
                let source = Source::Cache(path);
                match install_verified(id, locked, &source, target) {
                    Ok(written) => return Ok((source, written)),
                    // `get` re-checks under the blob's lock and deletes the corrupt entry (bad
                    // bytes, or a link or another non-file in its place); the download below
                    // replaces it.
                    Err(Error::Mismatch { .. }) => {
                        cache.get(&locked.checksum)?;
                    }
                    Err(Error::Io { source, .. })
                        if matches!(
                            source.kind(),
                            io::ErrorKind::InvalidInput | io::ErrorKind::FileTooLarge
                        ) =>
                    {
                        cache.get(&locked.checksum)?;
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        if let Some(reason) = self.offline {
            return Err(Error::Offline {
                id: id.clone(),
                reason: reason.to_string(),
                vendor_dir: self.vendor_dir.map(Path::to_path_buf),
            });
        }
        let path = self.download(id, locked)?;
        let written = install_verified(id, locked, &Source::Cache(path), target)?;
        let origin = locked
            .url
            .clone()
            .unwrap_or_else(|| locked.locator.to_string());
        Ok((Source::Download(origin), written))
    }

    /// The plugin's bytes from the team mirror or its locked origin, by digest, into the
    /// cache (never a tag lookup or an API call).
    fn download(&mut self, id: &Id, locked: &LockedPlugin) -> Result<PathBuf, Error> {
        if self.runtime.is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(Error::Runtime)?;
            self.runtime = Some(runtime);
        }
        if self.fetcher.is_none() {
            let cache = match self.cache {
                Some(cache) => cache.clone(),
                None => Cache::from_env()?,
            };
            let options = warpgate::http::HttpOptions::from_env()
                .map_err(warpgate::fetch::FetchError::Client)?;
            let http = warpgate::http::HttpClient::new(options)
                .map_err(warpgate::fetch::FetchError::Client)?;
            let mirror = warpgate::oci::mirror::for_config(self.config)
                .map_err(|error| Error::Mirror(error.to_string()))?;
            self.fetcher = Some(warpgate::fetch::Fetcher::new(cache, http).with_mirror(mirror));
        }
        let (Some(runtime), Some(fetcher)) = (&self.runtime, &self.fetcher) else {
            unreachable!("both were just set");
        };
        Ok(runtime.block_on(warpgate::oci::source::fetch_pinned(fetcher, id, locked))?)
    }
}

/// Hashes `source` while comparing it with `target` byte for byte (a comparison costs far
/// less than a second hash). Returns the source's checksum and whether the files are equal.
fn hash_and_compare(source: &Source, target: &Path) -> Result<(Checksum, bool), Error> {
    let (mut input, source) = open_source(source)?;
    let mut existing = std::fs::File::open(target).map_err(io_error("read", target))?;
    let mut hasher = Hasher::new();
    let mut buffer = vec![0; 256 * 1024];
    let mut other = vec![0; 256 * 1024];
    let mut identical = true;
    loop {
        let read = io::Read::read(&mut input, &mut buffer).map_err(io_error("read", source))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        if identical {
            identical = match io::Read::read_exact(&mut existing, &mut other[..read]) {
                Ok(()) => other[..read] == buffer[..read],
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => false,
                Err(source) => {
                    return Err(Error::Io {
                        action: "read",
                        path: target.to_path_buf(),
                        source,
                    });
                }
            };
        }
    }
    if identical {
        // The target must not be longer than the source.
        identical =
            io::Read::read(&mut existing, &mut other[..1]).map_err(io_error("read", target))? == 0;
    }
    Ok((hasher.finish().0, identical))
}

/// Opens a source's file for a bounded read: a regular file, and not a link unless it is a
/// `file://` plugin's own file.
fn open_source(source: &Source) -> Result<(warpgate::fs::Bounded<std::fs::File>, &Path), Error> {
    let (path, links) = match source {
        Source::File(path) => (path, Links::Follow),
        Source::Vendored(path) | Source::Cache(path) => (path, Links::Refuse),
        Source::Download(_) | Source::Missing => unreachable!("only files are read"),
    };
    let input = warpgate::fs::open_bounded(path, warpgate::fs::MAX_PLUGIN_SIZE, links)
        .map_err(io_error("read", path))?;
    Ok((input, path))
}

fn mismatch(id: &Id, locked: &LockedPlugin, source: &Source, computed: Checksum) -> Error {
    Error::Mismatch {
        id: id.clone(),
        source_of: source.clone(),
        mismatch: Mismatch {
            expected: locked.checksum,
            computed,
        },
    }
}

/// Installs `source`'s file at `target` if its bytes hash to the locked checksum, streaming
/// (plugins may be large). The source is verified even when `target` is already up to date,
/// so a bad source fails every build alike, whatever `OUT_DIR` holds. New bytes go to a temp
/// file next to `target`, renamed only once verified. Returns whether `target` was written.
fn install_verified(
    id: &Id,
    locked: &LockedPlugin,
    source: &Source,
    target: &Path,
) -> Result<bool, Error> {
    let same_size = std::fs::metadata(target).is_ok_and(|metadata| metadata.len() == locked.size);
    if same_size {
        let (computed, identical) = hash_and_compare(source, target)?;
        if computed != locked.checksum {
            return Err(mismatch(id, locked, source, computed));
        }
        if identical {
            return Ok(false);
        }
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".warpgate-")
        .tempfile_in(dir)
        .map_err(io_error("create a temp file in", dir))?;
    let (input, path) = open_source(source)?;
    let (computed, _) =
        warpgate::fs::copy_hashed(input, &mut temp).map_err(|error| match error {
            warpgate::fs::CopyError::Read(error) => io_error("read", path)(error),
            warpgate::fs::CopyError::Write(error) => io_error("write", temp.path())(error),
        })?;
    if computed != locked.checksum {
        // Dropping `temp` deletes it: `OUT_DIR` never holds the bad bytes.
        return Err(mismatch(id, locked, source, computed));
    }
    temp.persist(target).map_err(|error| Error::Io {
        action: "write",
        path: target.to_path_buf(),
        source: error.error,
    })?;
    Ok(true)
}

/// Writes `bytes` to `path` through a temp file and a rename, unless `path` already holds
/// exactly these bytes. Returns whether it wrote.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<bool, Error> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.len() == bytes.len() as u64 => {
            let existing = std::fs::read(path).map_err(io_error("read", path))?;
            if existing == bytes {
                return Ok(false);
            }
        }
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            });
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".warpgate-")
        .tempfile_in(dir)
        .map_err(io_error("create a temp file in", dir))?;
    io::Write::write_all(&mut temp, bytes).map_err(io_error("write", temp.path()))?;
    temp.persist(path).map_err(|error| Error::Io {
        action: "write",
        path: path.to_path_buf(),
        source: error.error,
    })?;
    Ok(true)
}

/// Deletes files in `OUT_DIR/plugins` that the lock does not list (plugins removed from the
/// lock, temp files of a killed run).
fn remove_stale(plugins_dir: &Path, lockfile: &Lockfile) -> Result<(), Error> {
    let entries = std::fs::read_dir(plugins_dir).map_err(io_error("list", plugins_dir))?;
    for entry in entries {
        let entry = entry.map_err(io_error("list", plugins_dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let listed = name
            .strip_suffix(".wasm")
            .and_then(|id| Id::new(id).ok())
            .is_some_and(|id| lockfile.plugins.contains_key(&id));
        if !listed {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io_error("remove", &path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://plugins.example.invalid/hello.wasm";

    /// A project locking one URL plugin `hello` with `bytes`; returns (project, out dir).
    fn project(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("warpgate.toml"),
            format!("[plugins]\nhello = \"{URL}\"\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("warpgate.lock"),
            format!(
                "# This file is automatically @generated by warpgate.\n# It is not intended for manual editing.\nversion = 1\n\n[plugins.hello]\nlocator = \"{URL}\"\nurl = \"{URL}\"\nchecksum = \"{}\"\nsize = {}\n",
                Checksum::of(bytes),
                bytes.len()
            ),
        )
        .unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        (dir, out)
    }

    fn builder(dir: &Path, out: &Path) -> Builder {
        Builder::new()
            .manifest_dir(dir)
            .out_dir(out)
            .cache_dir(dir.join("home"))
            .vendor_dir(None)
            .offline(true)
            .emit_directives(false)
    }

    fn cache(dir: &Path, bytes: &[u8]) -> PathBuf {
        let source = dir.join("source");
        std::fs::write(&source, bytes).unwrap();
        let (path, _, _) = Cache::new(dir.join("home"))
            .insert_file(&source, None)
            .unwrap();
        path
    }

    #[test]
    fn writes_plugins_and_module_once_and_removes_stale_files() {
        let (dir, out) = project(b"hello bytes");
        cache(dir.path(), b"hello bytes");
        std::fs::create_dir(out.join(PLUGINS_DIR)).unwrap();
        std::fs::write(out.join("plugins/removed.wasm"), b"old").unwrap();

        let report = builder(dir.path(), &out).vendor().unwrap();
        assert!(report.module_written);
        assert!(report.plugins[0].written);
        assert!(matches!(report.plugins[0].source, Source::Cache(_)));
        assert_eq!(
            std::fs::read(out.join("plugins/hello.wasm")).unwrap(),
            b"hello bytes"
        );
        assert!(!out.join("plugins/removed.wasm").exists());
        // Every variable the helper (or warpgate's code it calls) reads.
        for name in [
            "WARPGATE_VENDOR_DIR",
            "WARPGATE_HOME",
            "WARPGATE_OFFLINE",
            "CARGO_NET_OFFLINE",
            "DOCS_RS",
            "SSL_CERT_FILE",
        ] {
            assert!(
                report
                    .directives
                    .contains(&Directive::RerunIfEnvChanged(name)),
                "{name}"
            );
        }
        assert!(
            report
                .directives
                .contains(&Directive::RerunIfChanged(dir.path().join("warpgate.lock")))
        );

        let again = builder(dir.path(), &out).vendor().unwrap();
        assert!(!again.module_written);
        assert!(!again.plugins[0].written);

        // Same size, other bytes: rewritten.
        std::fs::write(out.join("plugins/hello.wasm"), b"HELLO BYTES").unwrap();
        let repaired = builder(dir.path(), &out).vendor().unwrap();
        assert!(repaired.plugins[0].written);
        assert_eq!(
            std::fs::read(out.join("plugins/hello.wasm")).unwrap(),
            b"hello bytes"
        );
    }

    #[test]
    fn a_corrupt_cache_entry_is_removed_and_the_next_source_tried() {
        let (dir, out) = project(b"hello bytes");
        let blob = cache(dir.path(), b"hello bytes");
        let mut permissions = std::fs::metadata(&blob).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        permissions.set_readonly(false);
        std::fs::set_permissions(&blob, permissions).unwrap();
        std::fs::write(&blob, b"rotten bytes").unwrap();

        let error = builder(dir.path(), &out).vendor().unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("network access is disabled by `Builder::offline(true)`, but plugin `hello` is not in the cache"),
            "{message}"
        );
        assert!(!blob.exists(), "the corrupt blob was kept");
        assert!(!out.join("plugins/hello.wasm").exists());
        assert_eq!(
            std::fs::read_dir(out.join(PLUGINS_DIR)).unwrap().count(),
            0,
            "a temp file was left behind"
        );
    }

    #[test]
    fn a_vendored_mismatch_keeps_out_dir_clean_and_debug_is_readable() {
        let (dir, out) = project(b"hello bytes");
        let vendor = dir.path().join("vendor");
        std::fs::create_dir(&vendor).unwrap();
        std::fs::write(vendor.join("hello.wasm"), b"other bytes").unwrap();

        let error = builder(dir.path(), &out)
            .vendor_dir(Some(vendor.clone()))
            .vendor()
            .unwrap_err();
        let debug = format!("{error:?}");
        assert!(
            debug.starts_with("checksum mismatch for plugin `hello` from the vendor directory"),
            "{debug}"
        );
        assert!(debug.contains(&format!("  Expected: `{}`", Checksum::of(b"hello bytes"))));
        assert!(debug.contains(&format!("  Computed: `{}`", Checksum::of(b"other bytes"))));
        assert_eq!(std::fs::read_dir(out.join(PLUGINS_DIR)).unwrap().count(), 0);
    }

    /// Each id becomes `<id>.wasm` in `OUT_DIR`; on macOS and Windows `Hello.wasm` and
    /// `hello.wasm` would be one file, so the config reader refuses such pairs everywhere.
    #[test]
    fn ids_that_differ_only_in_case_are_refused() {
        let (dir, out) = project(b"hello bytes");
        std::fs::write(
            dir.path().join("warpgate.toml"),
            format!("[plugins]\nhello = \"{URL}\"\nHello = \"{URL}\"\n"),
        )
        .unwrap();
        cache(dir.path(), b"hello bytes");

        let message = builder(dir.path(), &out).vendor().unwrap_err().to_string();
        assert!(
            message.contains(
                "plugin `hello` (line 2, column 9): differs from `Hello` only in letter case"
            ),
            "{message}"
        );
        assert!(message.contains("hint: rename one of them"), "{message}");
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            0,
            "OUT_DIR was written"
        );
    }

    #[test]
    fn outside_a_build_script_names_the_missing_variable() {
        // Cargo sets neither variable for unit tests of a library.
        if std::env::var_os("OUT_DIR").is_some() {
            return;
        }
        let error = Builder::new()
            .manifest_dir(".")
            .emit_directives(false)
            .vendor()
            .unwrap_err();
        assert!(
            error.to_string().starts_with("`OUT_DIR` is not set"),
            "{error}"
        );
    }
}
