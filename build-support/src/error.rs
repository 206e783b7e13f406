//! [`Error`]: why vendoring failed, worded for `cargo build` output.

use std::fmt;
use std::io;
use std::path::PathBuf;

use warpgate::checksum::Mismatch;
use warpgate::id::Id;

use crate::Source;

/// Why [`vendor`](crate::vendor) failed.
///
/// `Display` gives the message with its `hint:` line; `Debug` gives the same text followed by
/// the chain of causes, so that `fn main() -> Result<(), Box<dyn std::error::Error>>` in a
/// build script prints a readable message rather than a struct dump.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A variable Cargo sets for build scripts is missing.
    #[error(
        "`{name}` is not set\nhint: `warpgate_build::vendor()` runs in a build script (`build.rs`); elsewhere, set the paths with `warpgate_build::Builder`"
    )]
    NotInBuildScript {
        /// The variable.
        name: &'static str,
    },
    /// The config could not be found or read.
    #[error(transparent)]
    Config(#[from] warpgate::config::ConfigError),
    /// The lockfile could not be read.
    #[error(transparent)]
    Lockfile(#[from] warpgate::lockfile::LockfileError),
    /// The lockfile is missing or does not cover the config.
    #[error(transparent)]
    Locked(#[from] warpgate::lock::LockError),
    /// A plugin's bytes do not match the lock.
    #[error(
        "checksum mismatch for plugin `{id}` from {source_of}\n{mismatch}\nhint: {}",
        mismatch_hint(source_of)
    )]
    Mismatch {
        /// The plugin.
        id: Id,
        /// Where the bytes came from.
        source_of: Source,
        /// Expected and computed checksums.
        mismatch: Mismatch,
    },
    /// The plugin is in no vendor directory or cache, and the network is disabled.
    #[error("network access is disabled by {reason}, but plugin `{id}` is not in {}\nhint: run `warpgate fetch` once while online, or `warpgate vendor` and commit the vendor directory", searched(vendor_dir.as_ref()))]
    Offline {
        /// The plugin.
        id: Id,
        /// The variable or option that disabled the network.
        reason: String,
        /// The vendor directory that was searched, if any.
        vendor_dir: Option<PathBuf>,
    },
    /// A downloaded plugin is not in the lock's `url`.
    #[error(
        "plugin `{id}` is not cached and has no `url` in the lock\nhint: run `warpgate lock` to repair the lockfile"
    )]
    NoUrl {
        /// The plugin.
        id: Id,
    },
    /// The team mirror setting (`WARPGATE_MIRROR` or the config's `mirror`) is invalid.
    #[error("{0}")]
    Mirror(String),
    /// Downloading the plugin failed.
    #[error(transparent)]
    Fetch(#[from] warpgate::fetch::FetchError),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] warpgate::cache::CacheError),
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
    /// The async runtime for downloads could not start.
    #[error("failed to start the download runtime")]
    Runtime(#[source] io::Error),
}

fn mismatch_hint(source: &Source) -> &'static str {
    match source {
        Source::Vendored(_) => {
            "the vendored copy was modified or comes from another lock; run `warpgate vendor` to rewrite the vendor directory"
        }
        Source::File(_) => {
            "the file changed since it was locked; if you trust the new file, run `warpgate lock`"
        }
        Source::Cache(_) => {
            "the cache entry is corrupt; run `warpgate cache clean` and build again"
        }
        Source::Download(_) => {
            "the file at the URL changed since it was locked; if you trust it, run `warpgate lock --update`"
        }
        Source::Missing => "rebuild",
    }
}

fn searched(vendor_dir: Option<&PathBuf>) -> String {
    match vendor_dir {
        Some(dir) => format!("the vendor directory `{}` or the cache", dir.display()),
        None => "the cache (and no vendor directory exists)".to_string(),
    }
}

impl Error {
    /// The message and its causes, one per line, as printed by `Debug`.
    pub fn report(&self) -> String {
        let mut text = self.to_string();
        // A transparent variant forwards both `Display` and `source` to the error it wraps,
        // so the chain below starts at that error's cause.
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(&format!("\n  caused by: {cause}"));
            source = cause.source();
        }
        text
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_names_the_cause_of_a_wrapped_error() {
        let error = Error::Fetch(warpgate::fetch::FetchError::Download {
            id: warpgate::id::Id::new("slow").unwrap(),
            url: "https://plugins.example.invalid/slow.wasm".into(),
            source: warpgate::http::HttpError::DeadlineExceeded {
                url: "https://plugins.example.invalid/slow.wasm".into(),
                deadline: std::time::Duration::from_secs(2),
            },
        });
        assert_eq!(
            error.report(),
            "failed to download plugin `slow` from `https://plugins.example.invalid/slow.wasm`\n  caused by: `https://plugins.example.invalid/slow.wasm` did not finish within the deadline of 2 s\nhint: allow longer requests with `WARPGATE_HTTP_DEADLINE` (seconds, `0` means no deadline)"
        );
    }
}
