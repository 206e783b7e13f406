//! Where a locked plugin's bytes come from, for every caller that downloads (`warpgate
//! fetch`, `vendor`, `warpgate-build`, the loader, `mirror push`): the cache, else the team
//! mirror by sha256 (when one is set), else the locked origin — the pinned URL, or for a
//! `registry://` plugin the wasm layer by digest (never a tag). Whatever answers, the bytes
//! stream into a temp file in the cache and are renamed into place only when their sha256
//! is the locked one. Offline, only the cache answers.
//!
//! A mirror that fails in any way (unreachable, refusing, or serving bytes whose sha256 is
//! not the locked one) costs a logged warning and the origin is tried: the mirror is a
//! cache, never the source of truth, and its wrong bytes never reach the cache.

use std::path::PathBuf;

use crate::checksum::Checksum;
use crate::fetch::{FetchError, Fetcher};
use crate::http::HttpError;
use crate::id::Id;
use crate::locator::PluginLocator;
use crate::lockfile::LockedPlugin;
use crate::oci::client::RegistryError;
use crate::oci::reference::RegistryLocator;

/// The verified cache path of a locked plugin that is not a `file://` plugin (see the module
/// docs).
pub async fn fetch_pinned(
    fetcher: &Fetcher,
    id: &Id,
    locked: &LockedPlugin,
) -> Result<PathBuf, FetchError> {
    if let Some(path) = fetcher.cache().get(&locked.checksum)? {
        return Ok(path);
    }
    if let Some(mirror) = fetcher.mirror()
        && !fetcher.http().is_offline()
    {
        match fetch_blob(fetcher, id, mirror, &locked.checksum, locked_size(locked)).await {
            Ok(path) => return Ok(path),
            Err(error) => {
                let missing = matches!(
                    &error,
                    FetchError::Registry { source, .. } if matches!(**source, RegistryError::NotFound { .. })
                );
                if missing {
                    tracing::debug!(%id, mirror = %mirror, "not in the mirror; trying the origin");
                } else if let FetchError::Mismatch { mismatch, .. } = &error {
                    // Not the lock's hint (`lock --update`): the lock is right, the copy is not.
                    tracing::warn!(
                        "plugin `{id}`: the mirror `{mirror}` served other bytes than the lock pins (expected `{}`, computed `{}`); they were discarded, trying the origin",
                        mismatch.expected,
                        mismatch.computed
                    );
                } else {
                    tracing::warn!(
                        "plugin `{id}`: the mirror `{mirror}` failed, trying the origin: {}",
                        chain(&error)
                    );
                }
            }
        }
    }
    match &locked.locator {
        PluginLocator::Registry(locator) => {
            fetch_blob(fetcher, id, locator, &locked.checksum, locked_size(locked)).await
        }
        _ => match &locked.url {
            Some(url) => fetcher.fetch_locked(id, url, &locked.checksum).await,
            None => Err(FetchError::Task {
                id: id.clone(),
                message: format!("the lock entry of `{}` has no `url`", locked.locator),
            }),
        },
    }
}

/// The size a lock entry records, if it records one (`0` while locking).
fn locked_size(locked: &LockedPlugin) -> Option<u64> {
    Some(locked.size).filter(|size| *size > 0)
}

/// Blob `checksum` of `locator`'s repository, verified into the cache; a blob larger than
/// `size` (when known) is refused while it streams.
pub async fn fetch_blob(
    fetcher: &Fetcher,
    id: &Id,
    locator: &RegistryLocator,
    checksum: &Checksum,
    size: Option<u64>,
) -> Result<PathBuf, FetchError> {
    let source = format!(
        "registry://{}/{}@{checksum}",
        locator.registry, locator.repository
    );
    fetcher
        .fetch_verified(id, checksum, &source, |temp| async move {
            let reporter = fetcher.reporter();
            let progress = |received: u64, total: Option<u64>| {
                reporter.download_progress(id, received, total);
            };
            fetcher
                .registry()
                .pull_blob(
                    &locator.registry,
                    &locator.repository,
                    checksum,
                    &temp,
                    size,
                    &progress,
                )
                .await
                .map_err(|error| registry_error(id, &locator.to_string(), error))
        })
        .await
}

/// A registry error as a [`FetchError`]: offline stays [`FetchError::Offline`].
pub fn registry_error(id: &Id, locator: &str, error: RegistryError) -> FetchError {
    match error {
        RegistryError::Http(HttpError::Offline { reason, .. }) => FetchError::Offline {
            id: id.clone(),
            reason,
        },
        source => FetchError::Registry {
            id: id.clone(),
            locator: locator.to_string(),
            source: Box::new(source),
        },
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text.replace('\n', " ")
}
