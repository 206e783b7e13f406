//! [`vendor`]: writing a vendor directory, swapped in atomically, and sweeping what killed
//! runs left behind (see the module docs of [`crate::vendor`]).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{
    MANIFEST_NAME, VendorError, VendorManifest, hash_if_present, io_error, listing, plugin_path,
};
use crate::checksum::Checksum;
use crate::config::Config;
use crate::fetch::Fetcher;
use crate::fs::FileError;
use crate::id::Id;
use crate::lock;
use crate::lockfile::{LockedPlugin, Lockfile};
use crate::source::{Check, Origin, Sources};

/// What vendoring did to one plugin's file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileChange {
    /// The file was already there with the right bytes.
    Unchanged,
    /// The file is new.
    Added,
    /// The file existed with other bytes.
    Updated,
}

/// One plugin that was vendored: into a vendor directory by [`vendor`], or into `OUT_DIR` by
/// `warpgate-build`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VendoredPlugin {
    /// The plugin.
    pub id: Id,
    /// Its checksum.
    pub checksum: Checksum,
    /// Its size in bytes.
    pub size: u64,
    /// Where the bytes came from (`None`: nowhere, an empty placeholder for a docs.rs build).
    pub source: Option<Origin>,
    /// What happened to its file.
    pub change: FileChange,
}

impl VendoredPlugin {
    /// A plugin vendored from `found` (`None`: a placeholder).
    pub fn new(id: &Id, locked: &LockedPlugin, source: Option<Origin>, change: FileChange) -> Self {
        Self {
            id: id.clone(),
            checksum: locked.checksum,
            size: locked.size,
            source,
            change,
        }
    }
}

/// What [`vendor`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VendorReport {
    /// The vendor directory.
    pub dir: PathBuf,
    /// Whether anything in it changed (`false`: nothing was written).
    pub changed: bool,
    /// Every locked plugin, sorted by id.
    pub plugins: Vec<VendoredPlugin>,
    /// Files that were in the folder but not in the lock, now removed.
    pub removed: Vec<String>,
    /// Hidden staging and old folders that interrupted earlier runs left next to the folder,
    /// now deleted (an old copy standing in for a missing folder was first moved back).
    pub swept: Vec<PathBuf>,
}

/// Writes every plugin of `lockfile` into `dir` with a manifest (see the module docs).
///
/// Refuses when the lock does not cover `config` ([`VendorError::Lock`], with the `warpgate
/// lock` hint). `dir` should be absolute or relative to the current directory.
#[expect(
    clippy::disallowed_methods,
    reason = "each error is wrapped with the path it concerns; fs_err would name it twice"
)]
pub async fn vendor(
    config: &Config,
    lockfile: &Lockfile,
    dir: &Path,
    fetcher: &Fetcher,
) -> Result<VendorReport, VendorError> {
    lock::check_locked(config, Some(lockfile), "`warpgate vendor`")?;
    let dir = std::path::absolute(dir).map_err(io_error("resolve", dir))?;
    let parent = dir
        .parent()
        .ok_or_else(|| VendorError::NotAVendorDir { dir: dir.clone() })?
        .to_path_buf();
    let name = dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();

    // Held to the end: another run on this folder waits here, then finds it up to date.
    let _dir_lock = fetcher.cache().lock_vendor_dir(&lock_key(&dir))?;
    let swept = sweep_leftovers(&parent, &name)?;

    let manifest_path = dir.join(MANIFEST_NAME);
    let old_manifest_text = match crate::fs::read_text(&manifest_path, crate::fs::Links::Refuse) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(VendorError::Io(FileError {
                action: "read",
                path: manifest_path,
                source,
            }));
        }
    };
    let old_names = listing(&dir)?;
    if old_manifest_text.is_none() && !old_names.is_empty() {
        return Err(VendorError::NotAVendorDir { dir });
    }

    // Where each plugin's bytes come from; intact existing files first.
    let sources = Sources::new(config.root(), fetcher)
        .vendor_dir(Some(dir.clone()))
        .check(Check::ReplaceVendored);
    let mut plugins = Vec::with_capacity(lockfile.plugins.len());
    let mut found = Vec::with_capacity(lockfile.plugins.len());
    for (id, locked) in &lockfile.plugins {
        let existed = fs_err::symlink_metadata(plugin_path(&dir, id)).is_ok();
        let materialized = sources.materialize(id, locked).await?;
        let change = match (&materialized.origin, existed) {
            (Origin::Vendored { .. }, _) => FileChange::Unchanged,
            (_, true) => FileChange::Updated,
            (_, false) => FileChange::Added,
        };
        plugins.push(VendoredPlugin::new(
            id,
            locked,
            Some(materialized.origin.clone()),
            change,
        ));
        found.push(materialized);
    }

    let wanted: BTreeSet<String> = lockfile
        .plugins
        .keys()
        .map(|id| format!("{id}.wasm"))
        .collect();
    let removed: Vec<String> = old_names.difference(&wanted).cloned().collect();
    let manifest_text = VendorManifest::for_lockfile(lockfile).to_canonical_string();
    let changed = old_manifest_text.as_deref() != Some(manifest_text.as_str())
        || !removed.is_empty()
        || plugins
            .iter()
            .any(|plugin| plugin.change != FileChange::Unchanged);
    if !changed {
        return Ok(VendorReport {
            dir,
            changed,
            plugins,
            removed,
            swept,
        });
    }

    std::fs::create_dir_all(&parent).map_err(io_error("create", &parent))?;
    let staging = hidden_folder(&parent, &name, STAGING)
        .map_err(io_error("create a staging folder in", &parent))?;

    for (plugin, found) in plugins.iter().zip(&found) {
        let target = plugin_path(staging.path(), &plugin.id);
        // A linked file is hashed again: the copy may have changed since it was checked.
        let mut linked = plugin.change == FileChange::Unchanged
            && fs_err::hard_link(&found.path, &target).is_ok();
        if linked
            && !matches!(hash_if_present(&target), Ok(Some((checksum, _))) if checksum == plugin.checksum)
        {
            // Copying from the same file then fails with the checksums in the message.
            std::fs::remove_file(&target).map_err(io_error("remove", &target))?;
            linked = false;
        }
        if !linked {
            let mut output = File::create_new(&target).map_err(io_error("create", &target))?;
            found.copy_into(&plugin.id, &mut output, &target)?;
            output.sync_all().map_err(io_error("sync", &target))?;
        }
    }
    let staged_manifest = staging.path().join(MANIFEST_NAME);
    // Synced like the plugin files, so the swapped-in folder never holds an empty manifest.
    let mut manifest_file =
        File::create_new(&staged_manifest).map_err(io_error("create", &staged_manifest))?;
    manifest_file
        .write_all(manifest_text.as_bytes())
        .and_then(|()| manifest_file.sync_all())
        .map_err(io_error("write", &staged_manifest))?;

    // Swap: move the old folder aside, the new one in, then delete the old one.
    let aside = if dir.exists() {
        let aside =
            hidden_folder(&parent, &name, OLD).map_err(io_error("create a folder in", &parent))?;
        let aside_path = aside.path().join(&name);
        std::fs::rename(&dir, &aside_path).map_err(io_error("move aside", &dir))?;
        Some(aside)
    } else {
        None
    };
    let staged = staging.keep();
    if let Err(source) = std::fs::rename(&staged, &dir) {
        // Put the old folder back; the staged one is deleted. Should that fail too (something
        // else took `dir` meanwhile), the old folder is kept where it was moved, not deleted.
        if let Some(aside) = aside
            && fs_err::rename(aside.path().join(&name), &dir).is_err()
        {
            let _ = aside.keep();
        }
        let _ = fs_err::remove_dir_all(&staged);
        return Err(VendorError::Io(FileError {
            action: "move into place",
            path: dir,
            source,
        }));
    }
    // Dropping `aside` deletes the old folder.
    drop(aside);

    Ok(VendorReport {
        dir,
        changed,
        plugins,
        removed,
        swept,
    })
}

/// The kind of hidden folder [`vendor`] makes next to `DIR` for the new contents.
const STAGING: &str = "staging";
/// The kind of hidden folder [`vendor`] moves the old `DIR` into during the swap.
const OLD: &str = "old";
/// How many random ASCII letters and digits end a hidden folder's name.
const RANDOM_LEN: usize = 6;

/// A new, empty hidden folder `.<name>.<kind>-XXXXXX` in `parent` (deleted on drop).
fn hidden_folder(parent: &Path, name: &str, kind: &str) -> io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!(".{name}.{kind}-"))
        .rand_bytes(RANDOM_LEN)
        .tempdir_in(parent)
}

/// The kind ([`STAGING`] or [`OLD`]) of `file_name` if it is what [`hidden_folder`] names a
/// folder for vendor directory `name`.
fn hidden_folder_kind(file_name: &str, name: &str) -> Option<&'static str> {
    [STAGING, OLD].into_iter().find(|kind| {
        file_name
            .strip_prefix(&format!(".{name}.{kind}-"))
            .is_some_and(|random| {
                random.len() == RANDOM_LEN
                    && random.bytes().all(|byte| byte.is_ascii_alphanumeric())
            })
    })
}

/// Deletes the hidden folders that earlier runs, killed before they could clean up, left in
/// `parent` next to vendor directory `name`, and returns them. Only folders named exactly as
/// [`hidden_folder`] names them are touched (never a file or a symlink). Callers hold the
/// folder's lock, so no running `vendor` is using them. When `DIR` is missing (a run killed
/// between the two renames), an old copy of it is moved back to `DIR` before its hidden
/// folder is deleted, so that no vendored bytes are lost.
#[expect(
    clippy::disallowed_methods,
    reason = "each error is wrapped with the path it concerns; fs_err would name it twice"
)]
fn sweep_leftovers(parent: &Path, name: &str) -> Result<Vec<PathBuf>, VendorError> {
    let dir = parent.join(name);
    let mut dir_missing = matches!(
        fs_err::symlink_metadata(&dir),
        Err(error) if error.kind() == io::ErrorKind::NotFound
    );
    let entries = match std::fs::read_dir(parent) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(VendorError::Io(FileError {
                action: "list",
                path: parent.to_path_buf(),
                source,
            }));
        }
    };
    let mut swept = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error("list", parent))?;
        let Some(kind) = entry
            .file_name()
            .to_str()
            .and_then(|file_name| hidden_folder_kind(file_name, name))
        else {
            continue;
        };
        // `DirEntry::file_type` does not follow symlinks.
        if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            continue;
        }
        let path = entry.path();
        let old_copy = path.join(name);
        if kind == OLD
            && dir_missing
            && fs_err::symlink_metadata(&old_copy).is_ok_and(|meta| meta.is_dir())
        {
            std::fs::rename(&old_copy, &dir).map_err(io_error("move back", &old_copy))?;
            dir_missing = false;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => swept.push(path),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(VendorError::Leftover { path, source }),
        }
    }
    swept.sort();
    Ok(swept)
}

/// `dir` with its longest existing ancestor made canonical (symlinks and `..` resolved), so
/// that every spelling of one folder names one lock, whether or not the folder exists yet.
fn lock_key(dir: &Path) -> PathBuf {
    for ancestor in dir.ancestors() {
        if let Ok(canonical) = fs_err::canonicalize(ancestor) {
            return match dir.strip_prefix(ancestor) {
                Ok(rest) if !rest.as_os_str().is_empty() => canonical.join(rest),
                _ => canonical,
            };
        }
    }
    dir.to_path_buf()
}
