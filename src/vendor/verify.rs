//! [`verify`]: a network-free check of the lock, the cache and a vendor directory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{MANIFEST_NAME, VendorError, VendorManifest, hash_if_present, listing, plugin_path};
use crate::cache::Cache;
use crate::checksum::{Checksum, Mismatch};
use crate::config::Config;
use crate::fs::FileError;
use crate::id::Id;
use crate::lock::{self, StaleReason};
use crate::lockfile::Lockfile;
use crate::source::{Check, Network, Origin, Sources};

/// The state of a plugin's cache entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheStatus {
    /// Present and intact.
    Cached,
    /// Not in the cache (information, not a problem).
    NotCached,
    /// Present but its bytes do not match (a problem; the next read deletes it).
    Corrupt,
}

/// The state of a plugin's vendored copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VendoredStatus {
    /// Present and intact.
    Intact,
    /// Missing (a problem).
    Missing,
    /// Present but its bytes do not match (a problem).
    Corrupt,
}

/// One plugin in a [`VerifyReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PluginCheck {
    /// The plugin.
    pub id: Id,
    /// Its locked checksum.
    pub checksum: Checksum,
    /// Its cache entry.
    pub cache: CacheStatus,
    /// Its vendored copy, when a vendor directory was checked.
    pub vendored: Option<VendoredStatus>,
    /// Its `file://` source is present and matches the lock (`None` for other plugins).
    pub file_intact: Option<bool>,
    /// Where an offline build would take its verified bytes from, if anywhere: the first
    /// source of [`crate::source`] that holds them.
    pub offline_source: Option<Origin>,
}

impl PluginCheck {
    /// Whether an offline build would find verified bytes for this plugin (vendored, its own
    /// `file://` source, or cached).
    pub fn available_offline(&self) -> bool {
        self.offline_source.is_some()
    }
}

/// Something [`verify`] found wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Problem {
    /// The lock does not match the config for this plugin (this includes a `file://` plugin
    /// whose file changed or is missing).
    #[error("`{id}`: {reason}")]
    LockStale {
        /// The plugin.
        id: Id,
        /// What differs.
        reason: StaleReason,
    },
    /// The lockfile is missing.
    #[error("`{}` is missing", path.display())]
    LockMissing {
        /// Where it was expected.
        path: PathBuf,
    },
    /// A cache entry's bytes do not match its checksum.
    #[error("`{id}`: the cache entry `{}` is corrupt", path.display())]
    CacheCorrupt {
        /// The plugin.
        id: Id,
        /// The blob.
        path: PathBuf,
    },
    /// A file or folder could not be read.
    #[error("`{}` could not be read: {error}", path.display())]
    Unreadable {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        error: String,
    },
    /// The vendor directory does not exist.
    #[error("the vendor directory `{}` does not exist", path.display())]
    VendorDirMissing {
        /// The folder.
        path: PathBuf,
    },
    /// A locked plugin is not in the vendor directory.
    #[error("`{id}`: not vendored (`{}` is missing)", path.display())]
    VendoredMissing {
        /// The plugin.
        id: Id,
        /// The expected file.
        path: PathBuf,
    },
    /// A vendored file does not match the lock.
    #[error("`{id}`: the vendored file `{}` does not match the lock\n{}", path.display(), Mismatch { expected: *expected, computed: *computed })]
    VendoredCorrupt {
        /// The plugin.
        id: Id,
        /// The file.
        path: PathBuf,
        /// The locked checksum.
        expected: Checksum,
        /// The file's checksum.
        computed: Checksum,
    },
    /// A file in the vendor directory that the lock does not list.
    #[error("`{}` is in the vendor directory but not in the lock", path.display())]
    VendoredExtra {
        /// The file.
        path: PathBuf,
    },
    /// The vendor manifest is missing or cannot be parsed.
    #[error("the vendor manifest `{}` is {reason}", path.display())]
    ManifestInvalid {
        /// The manifest file.
        path: PathBuf,
        /// `missing`, or what is wrong.
        reason: String,
    },
    /// The vendor manifest disagrees with the lock for this plugin.
    #[error("`{id}`: the vendor manifest records {} but the lock has {}", show(recorded.as_ref()), show(locked.as_ref()))]
    ManifestStale {
        /// The plugin.
        id: Id,
        /// What the manifest records.
        recorded: Option<Checksum>,
        /// What the lock has.
        locked: Option<Checksum>,
    },
}

impl crate::diagnostic::Diagnostic for Problem {
    fn class(&self) -> crate::diagnostic::Class {
        crate::diagnostic::Class::CheckFailed
    }

    fn hint(&self) -> Option<String> {
        let hint = match self {
            Self::LockStale { .. } => "run `warpgate lock` to update the lockfile",
            Self::LockMissing { .. } => "run `warpgate lock`",
            Self::CacheCorrupt { .. } => "run `warpgate fetch` to replace it",
            Self::Unreadable { .. } => return None,
            Self::VendorDirMissing { .. }
            | Self::VendoredMissing { .. }
            | Self::VendoredCorrupt { .. }
            | Self::VendoredExtra { .. }
            | Self::ManifestInvalid { .. }
            | Self::ManifestStale { .. } => "run `warpgate vendor`",
        };
        Some(hint.into())
    }
}

fn show(checksum: Option<&Checksum>) -> String {
    checksum.map_or_else(
        || "no entry".to_string(),
        |checksum| format!("`{checksum}`"),
    )
}

/// What [`verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The vendor directory that was checked, if any.
    pub vendor_dir: Option<PathBuf>,
    /// Every locked plugin, sorted by id.
    pub plugins: Vec<PluginCheck>,
    /// Everything wrong, in a stable order (lock, then per plugin, then the vendor folder).
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether nothing is wrong (the CLI exits 0).
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the lock against the config, and the cache and (when given) the vendor directory
/// against the lock, with no network and no writes. See the module docs for what counts as a
/// problem.
pub fn verify(
    config: &Config,
    lockfile: Option<&Lockfile>,
    cache: &Cache,
    vendor_dir: Option<&Path>,
) -> VerifyReport {
    let mut report = VerifyReport {
        vendor_dir: vendor_dir.map(Path::to_path_buf),
        ..VerifyReport::default()
    };
    let Some(lockfile) = lockfile else {
        report.problems.push(Problem::LockMissing {
            path: config.lockfile_path(),
        });
        return report;
    };
    let stale = lock::stale_entries(config, lockfile);
    report
        .problems
        .extend(stale.iter().map(|entry| Problem::LockStale {
            id: entry.id.clone(),
            reason: entry.reason.clone(),
        }));

    let vendor_dir = vendor_dir.filter(|dir| {
        let exists = dir.is_dir();
        if !exists {
            report.problems.push(Problem::VendorDirMissing {
                path: dir.to_path_buf(),
            });
        }
        exists
    });

    let sources = Sources::with_network(
        config.root(),
        Some(cache.clone()),
        Network::Offline("`warpgate verify`".to_string()),
    )
    .vendor_dir(vendor_dir.map(Path::to_path_buf))
    .check(Check::ReadOnly);
    for (id, locked) in &lockfile.plugins {
        let blob = cache.blob_path(&locked.checksum);
        let cache_status = match hash_if_present(&blob) {
            Ok(None) => CacheStatus::NotCached,
            Ok(Some((computed, _))) if computed == locked.checksum => CacheStatus::Cached,
            Ok(Some(_)) => {
                report.problems.push(Problem::CacheCorrupt {
                    id: id.clone(),
                    path: blob,
                });
                CacheStatus::Corrupt
            }
            Err(error) => {
                report.problems.push(unreadable(&blob, &error));
                CacheStatus::Corrupt
            }
        };
        let vendored = vendor_dir.map(|dir| {
            let path = plugin_path(dir, id);
            match hash_if_present(&path) {
                Ok(Some((computed, _))) if computed == locked.checksum => VendoredStatus::Intact,
                Ok(Some((computed, _))) => {
                    report.problems.push(Problem::VendoredCorrupt {
                        id: id.clone(),
                        path,
                        expected: locked.checksum,
                        computed,
                    });
                    VendoredStatus::Corrupt
                }
                Ok(None) => {
                    report.problems.push(Problem::VendoredMissing {
                        id: id.clone(),
                        path,
                    });
                    VendoredStatus::Missing
                }
                Err(error) => {
                    report.problems.push(unreadable(&path, &error));
                    VendoredStatus::Corrupt
                }
            }
        });
        let file_intact = locked.path.as_ref().map(|_| {
            !stale.iter().any(|entry| {
                entry.id == *id
                    && matches!(
                        entry.reason,
                        StaleReason::FileChanged | StaleReason::FileMissing
                    )
            })
        });
        let offline_source = sources
            .locate(id, locked)
            .ok()
            .flatten()
            .map(|found| found.origin);
        report.plugins.push(PluginCheck {
            id: id.clone(),
            checksum: locked.checksum,
            cache: cache_status,
            vendored,
            file_intact,
            offline_source,
        });
    }

    if let Some(dir) = vendor_dir {
        check_vendor_manifest(dir, lockfile, &mut report.problems);
    }
    report
}

fn unreadable(path: &Path, error: &VendorError) -> Problem {
    let error = match error {
        VendorError::Io(FileError { source, .. }) => source.to_string(),
        other => other.to_string(),
    };
    Problem::Unreadable {
        path: path.to_path_buf(),
        error,
    }
}

/// Adds the problems of `dir`'s manifest and extra files.
fn check_vendor_manifest(dir: &Path, lockfile: &Lockfile, problems: &mut Vec<Problem>) {
    let path = dir.join(MANIFEST_NAME);
    match VendorManifest::read(dir) {
        Ok(None) => problems.push(Problem::ManifestInvalid {
            path,
            reason: "missing".to_string(),
        }),
        Err(VendorError::Manifest { reason, .. }) => {
            problems.push(Problem::ManifestInvalid { path, reason });
        }
        Err(error) => problems.push(unreadable(&path, &error)),
        Ok(Some(manifest)) => {
            let ids: BTreeSet<&Id> = manifest
                .plugins
                .keys()
                .chain(lockfile.plugins.keys())
                .collect();
            for id in ids {
                let recorded = manifest.plugins.get(id).map(|entry| entry.checksum);
                let locked = lockfile.plugins.get(id).map(|locked| locked.checksum);
                let same_size = manifest.plugins.get(id).map(|entry| entry.size)
                    == lockfile.plugins.get(id).map(|locked| locked.size);
                if recorded != locked || !same_size {
                    problems.push(Problem::ManifestStale {
                        id: id.clone(),
                        recorded,
                        locked,
                    });
                }
            }
        }
    }
    match listing(dir) {
        Ok(names) => {
            let wanted: BTreeSet<String> = lockfile
                .plugins
                .keys()
                .map(|id| format!("{id}.wasm"))
                .collect();
            problems.extend(
                names
                    .difference(&wanted)
                    .map(|name| Problem::VendoredExtra {
                        path: dir.join(name),
                    }),
            );
        }
        Err(error) => problems.push(unreadable(dir, &error)),
    }
}
