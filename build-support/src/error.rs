//! [`Error`]: why vendoring failed, worded for `cargo build` output.

use std::fmt;

use warpgate::diagnostic::{Class, Diagnostic, Report};

/// Why [`vendor`](crate::vendor) failed.
///
/// `Display` gives the message alone; `Debug` gives the same text followed by the chain of
/// causes and the `hint:` lines (see [`Error::report`]), so that `fn main() -> Result<(), Box<dyn std::error::Error>>` in a
/// build script prints a readable message rather than a struct dump.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A variable Cargo sets for build scripts is missing.
    #[error("`{name}` is not set")]
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
    /// A plugin's verified bytes could not be had (a mismatch, offline and not vendored or
    /// cached, a failed download).
    #[error(transparent)]
    Source(#[from] warpgate::source::SourceError),
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] warpgate::fs::FileError),
}

impl Diagnostic for Error {
    fn class(&self) -> Class {
        match self {
            Self::NotInBuildScript { .. } => Class::Failed,
            Self::Config(inner) => inner.class(),
            Self::Lockfile(inner) => inner.class(),
            Self::Locked(inner) => inner.class(),
            Self::Source(inner) => inner.class(),
            Self::Io(inner) => inner.class(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::NotInBuildScript { .. } => Some(
                "`warpgate_build::vendor()` runs in a build script (`build.rs`); elsewhere, set the paths with `warpgate_build::Builder`".into(),
            ),
            Self::Config(inner) => inner.hint(),
            Self::Lockfile(inner) => inner.hint(),
            Self::Locked(inner) => inner.hint(),
            Self::Source(inner) => inner.hint(),
            Self::Io(inner) => inner.hint(),
        }
    }
}

impl Error {
    /// The message, its causes (one per line) and its hints, as printed by `Debug`.
    pub fn report(&self) -> String {
        Report::with(self, |cause| {
            cause
                .downcast_ref::<Self>()
                .map(|found| found as &dyn Diagnostic)
        })
        .to_string()
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
        let error = Error::Source(
            warpgate::fetch::FetchError::Download {
                id: warpgate::id::Id::new("slow").unwrap(),
                url: "https://plugins.example.invalid/slow.wasm".into(),
                source: warpgate::http::HttpError::DeadlineExceeded {
                    url: "https://plugins.example.invalid/slow.wasm".into(),
                    deadline: std::time::Duration::from_secs(2),
                },
            }
            .into(),
        );
        assert_eq!(
            error.report(),
            "failed to download plugin `slow` from `https://plugins.example.invalid/slow.wasm`\n  caused by: `https://plugins.example.invalid/slow.wasm` did not finish within the deadline of 2 s\nhint: allow longer requests with `WARPGATE_HTTP_DEADLINE` (seconds, `0` means no deadline)"
        );
    }
}
