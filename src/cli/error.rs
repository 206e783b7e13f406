//! How a command fails: [`Failure`] (an error and its exit code), [`CommandError`] (a
//! command's own refusal, with its hint) and [`report`], the one way an error is laid out.

use warpgate::diagnostic::{Class, Diagnostic, Report};

/// How a command ended, mapped to the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: a check failed.
    CheckFailed,
}

/// An error together with the exit code it should produce.
#[derive(Debug)]
pub struct Failure {
    pub error: anyhow::Error,
    pub code: u8,
}

impl Failure {
    /// A failure that exits with `code`.
    pub fn with_code(error: anyhow::Error, code: u8) -> Self {
        Self { error, code }
    }
}

/// Exit 1 for an error whose chain holds a failed check ([`Class::CheckFailed`]), else 2.
impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        let error = error.into();
        let code = match report(&error).class {
            Class::CheckFailed => 1,
            _ => 2,
        };
        Self { error, code }
    }
}

/// A command's own refusal (a flag that forbids what was asked, a missing argument): its
/// message and, when there is one, what to do instead.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    message: String,
    hint: Option<String>,
}

impl CommandError {
    /// A refusal with its hint.
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// A refusal whose hint may be unknown.
    pub fn maybe_hinted(message: impl Into<String>, hint: Option<String>) -> Self {
        Self {
            message: message.into(),
            hint,
        }
    }
}

impl Diagnostic for CommandError {
    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
}

/// `error` laid out with its causes, hints and class, knowing the library's error types and
/// the CLI's own.
pub fn report(error: &anyhow::Error) -> Report {
    Report::with(error.as_ref(), |cause| {
        cause
            .downcast_ref::<CommandError>()
            .map(|found| found as &dyn Diagnostic)
    })
}
