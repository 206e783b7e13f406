//! Progress events from library operations.
//!
//! The library never prints. Operations that take time report through a [`Reporter`]; the
//! CLI draws progress bars from these events, other callers ignore them with
//! [`SilentReporter`].

use crate::id::Id;

/// Receives progress events. Every method has an empty default.
pub trait Reporter: Send + Sync {
    /// Resolution of `id` started (an API call or a file read may follow).
    fn resolving(&self, id: &Id) {
        let _ = id;
    }

    /// A download of `id` from `url` started.
    fn download_started(&self, id: &Id, url: &str) {
        let _ = (id, url);
    }

    /// `received` of `total` (when known) bytes of `id` arrived.
    fn download_progress(&self, id: &Id, received: u64, total: Option<u64>) {
        let _ = (id, received, total);
    }

    /// The download of `id` ended, successfully or not.
    fn download_finished(&self, id: &Id) {
        let _ = id;
    }
}

/// A [`Reporter`] that ignores every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct SilentReporter;

impl Reporter for SilentReporter {}
