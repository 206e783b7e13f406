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
//! 2. Takes each locked plugin's verified bytes from `warpgate::source::Sources`, in its
//!    documented order: the vendor directory (`WARPGATE_VENDOR_DIR`, relative to the
//!    config's folder, else `vendor/warpgate/` next to the config when it exists; one vendor
//!    directory holds exactly one lock's plugins), a `file://` plugin's own file, the content
//!    cache (`WARPGATE_HOME`), then the team mirror and the locked origin, into the cache —
//!    only when the network is allowed: never when `CARGO_NET_OFFLINE=true`,
//!    `WARPGATE_OFFLINE=1` or `DOCS_RS` is set. Cargo does not tell build scripts about
//!    `cargo build --offline` (or `--frozen`); for a build that must not download, set
//!    `CARGO_NET_OFFLINE=true`, which makes Cargo offline too.
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
#![expect(
    clippy::needless_doctest_main,
    reason = "the example is a build script, whose `main` is the point"
)]

mod directive;
mod error;
mod generate;

use std::io;
use std::path::{Path, PathBuf};

use warpgate::cache::Cache;
use warpgate::config::Config;
use warpgate::env;
use warpgate::fs::FileError;
use warpgate::id::Id;
use warpgate::lockfile::Lockfile;
use warpgate::source::{Network, Origin, SourceError, Sources};
use warpgate::vendor::{FileChange, VendoredPlugin};

pub use directive::Directive;
pub use error::Error;
pub use generate::{MODULE_NAME, PLUGINS_DIR};

/// How `flag` is named in "the lock is out of date" messages.
const FLAG: &str = "the build script (`warpgate-build`)";

/// Every variable this crate (or warpgate's code it calls) reads to decide where verified
/// bytes come from; the HTTP client reads `SSL_CERT_FILE` when a plugin is downloaded.
const WATCHED_VARS: [&str; 6] = [
    env::WARPGATE_VENDOR_DIR,
    env::WARPGATE_HOME,
    env::WARPGATE_OFFLINE,
    env::CARGO_NET_OFFLINE,
    env::DOCS_RS,
    env::SSL_CERT_FILE,
];

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
    /// Every locked plugin, sorted by id; its `change` says what happened to
    /// `OUT_DIR/plugins/<id>.wasm`.
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

    #[expect(
        clippy::disallowed_methods,
        reason = "each error is wrapped with the path it concerns; fs_err would name it twice"
    )]
    fn run(&self) -> Result<Report, Error> {
        let manifest_dir = path_or_var(self.manifest_dir.as_ref(), "CARGO_MANIFEST_DIR")?;
        let out_dir = path_or_var(self.out_dir.as_ref(), "OUT_DIR")?;
        let config = Config::discover(&manifest_dir)?;
        let lock_path = config.lockfile_path();
        let mut directives = vec![
            Directive::RerunIfChanged(config.path.clone()),
            Directive::RerunIfChanged(lock_path.clone()),
        ];
        let lockfile = Lockfile::read(&lock_path)?;
        warpgate::lock::check_locked(&config, lockfile.as_ref(), FLAG)?;
        let lockfile = lockfile.unwrap_or_default();
        directives.extend(WATCHED_VARS.map(Directive::RerunIfEnvChanged));

        let docs_rs = env::var(env::DOCS_RS).is_some();
        let offline = match self.offline {
            Some(true) => Some("`Builder::offline(true)`".to_string()),
            Some(false) => None,
            None => {
                env::offline_reason().or_else(|| docs_rs.then(|| format!("`{}`", env::DOCS_RS)))
            }
        };
        let vendor_dir = match &self.vendor_dir {
            Some(dir) => dir.clone(),
            None => warpgate::vendor::dir_from_env(&config),
        };
        let cache = match &self.cache_dir {
            Some(dir) => Some(Cache::new(dir)),
            None => Cache::from_env().ok(),
        };
        let network = match offline {
            Some(reason) => Network::Offline(reason),
            None => Network::FromEnv(&config),
        };
        let sources =
            Sources::with_network(config.root(), cache, network).vendor_dir(vendor_dir.clone());

        let plugins_dir = out_dir.join(PLUGINS_DIR);
        std::fs::create_dir_all(&plugins_dir).map_err(io_error("create", &plugins_dir))?;
        let mut plugins = Vec::with_capacity(lockfile.plugins.len());
        for (id, locked) in &lockfile.plugins {
            let target = plugins_dir.join(format!("{id}.wasm"));
            let existed = target.exists();
            let (source, written) = match sources.materialize_blocking(id, locked) {
                Ok(found) => (Some(found.origin.clone()), found.install(id, &target)?),
                Err(SourceError::Offline { .. }) if docs_rs => {
                    directives.push(Directive::Warning(format!(
                        "plugin `{id}` is neither vendored nor cached; embedding an empty placeholder for docs.rs"
                    )));
                    let written =
                        warpgate::fs::write_if_changed(&target, b"", warpgate::fs::Links::Refuse)
                            .map_err(io_error("write", &target))?;
                    (None, written)
                }
                Err(error) => return Err(error.into()),
            };
            if let Some(Origin::Vendored { path } | Origin::File { path }) = &source {
                directives.push(Directive::RerunIfChanged(path.clone()));
            }
            let change = match (written, existed) {
                (false, _) => FileChange::Unchanged,
                (true, true) => FileChange::Updated,
                (true, false) => FileChange::Added,
            };
            plugins.push(VendoredPlugin::new(id, locked, source, change));
        }
        remove_stale(&plugins_dir, &lockfile)?;

        let module = out_dir.join(MODULE_NAME);
        let text = generate::module(&lockfile, &config);
        let module_written =
            warpgate::fs::write_if_changed(&module, text.as_bytes(), warpgate::fs::Links::Refuse)
                .map_err(io_error("write", &module))?;
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

/// `path`, else the variable Cargo sets for build scripts.
fn path_or_var(path: Option<&PathBuf>, name: &'static str) -> Result<PathBuf, Error> {
    path.cloned()
        .or_else(|| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        })
        .ok_or(Error::NotInBuildScript { name })
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    FileError::of(action, path)
}

/// Deletes files in `OUT_DIR/plugins` that the lock does not list (plugins removed from the
/// lock, temp files of a killed run).
#[expect(
    clippy::disallowed_methods,
    reason = "each error is wrapped with the path it concerns; fs_err would name it twice"
)]
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
    use warpgate::checksum::Checksum;

    const URL: &str = "https://plugins.example.invalid/hello.wasm";

    /// A project locking one URL plugin `hello` with `bytes`; returns (project, out dir).
    fn project(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(
            dir.path().join("warpgate.toml"),
            format!("[plugins]\nhello = \"{URL}\"\n"),
        )
        .unwrap();
        fs_err::write(
            dir.path().join("warpgate.lock"),
            format!(
                "# This file is automatically @generated by warpgate.\n# It is not intended for manual editing.\nversion = 1\n\n[plugins.hello]\nlocator = \"{URL}\"\nurl = \"{URL}\"\nchecksum = \"{}\"\nsize = {}\n",
                Checksum::of(bytes),
                bytes.len()
            ),
        )
        .unwrap();
        let out = dir.path().join("out");
        fs_err::create_dir(&out).unwrap();
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
        fs_err::write(&source, bytes).unwrap();
        let (path, _, _) = Cache::new(dir.join("home"))
            .insert_file(&source, None)
            .unwrap();
        path
    }

    #[test]
    fn writes_plugins_and_module_once_and_removes_stale_files() {
        let (dir, out) = project(b"hello bytes");
        cache(dir.path(), b"hello bytes");
        fs_err::create_dir(out.join(PLUGINS_DIR)).unwrap();
        fs_err::write(out.join("plugins/removed.wasm"), b"old").unwrap();

        let report = builder(dir.path(), &out).vendor().unwrap();
        assert!(report.module_written);
        assert!((report.plugins[0].change != FileChange::Unchanged));
        assert!(matches!(
            report.plugins[0].source,
            Some(Origin::Cache { .. })
        ));
        assert_eq!(
            fs_err::read(out.join("plugins/hello.wasm")).unwrap(),
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
        assert!(!(again.plugins[0].change != FileChange::Unchanged));

        // Same size, other bytes: rewritten.
        fs_err::write(out.join("plugins/hello.wasm"), b"HELLO BYTES").unwrap();
        let repaired = builder(dir.path(), &out).vendor().unwrap();
        assert!((repaired.plugins[0].change != FileChange::Unchanged));
        assert_eq!(
            fs_err::read(out.join("plugins/hello.wasm")).unwrap(),
            b"hello bytes"
        );
    }

    #[test]
    fn a_vendored_mismatch_keeps_out_dir_clean_and_debug_is_readable() {
        let (dir, out) = project(b"hello bytes");
        let vendor = dir.path().join("vendor");
        fs_err::create_dir(&vendor).unwrap();
        fs_err::write(vendor.join("hello.wasm"), b"other bytes").unwrap();

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
        assert_eq!(fs_err::read_dir(out.join(PLUGINS_DIR)).unwrap().count(), 0);
    }

    /// Each id becomes `<id>.wasm` in `OUT_DIR`; on macOS and Windows `Hello.wasm` and
    /// `hello.wasm` would be one file, so the config reader refuses such pairs everywhere.
    #[test]
    fn ids_that_differ_only_in_case_are_refused() {
        let (dir, out) = project(b"hello bytes");
        fs_err::write(
            dir.path().join("warpgate.toml"),
            format!("[plugins]\nhello = \"{URL}\"\nHello = \"{URL}\"\n"),
        )
        .unwrap();
        cache(dir.path(), b"hello bytes");

        let message = builder(dir.path(), &out).vendor().unwrap_err().report();
        assert!(
            message.contains(
                "plugin `hello` (line 2, column 9): differs from `Hello` only in letter case"
            ),
            "{message}"
        );
        assert!(message.contains("hint: rename one of them"), "{message}");
        assert_eq!(
            fs_err::read_dir(&out).unwrap().count(),
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
