//! `warpgate.lock`: every lockfile warpgate can write reads back equal, its canonical text is
//! stable, and no text makes the reader panic.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::select;

use super::{checksum, file_path, github_locator, id, mutated, text, url_locator, version};
use crate::locator::PluginLocator;
use crate::lockfile::{LockedPlugin, Lockfile, file_lock_path};
use crate::release::{download_url, tag_candidates};

/// The API every generated GitHub entry is checked against.
const API_URL: &str = "https://api.github.com";

/// A plugin's size. TOML integers are signed 64-bit, so the lockfile holds sizes up to
/// `i64::MAX` (8 EiB); no file warpgate can hash is larger.
fn size() -> impl Strategy<Value = u64> {
    prop_oneof![0..100_000u64, 0..=i64::MAX as u64, Just(i64::MAX as u64)]
}

/// A `version` requirement in the forms a config gives.
fn requirement() -> impl Strategy<Value = semver::VersionReq> {
    (
        select(&["^", "~", "=", ">=", "<", ""][..]),
        version(),
        prop::option::of(version()),
    )
        .prop_map(|(operator, low, high)| {
            let text = match high {
                Some(high) => format!(">={low}, <{high}"),
                None => format!("{operator}{low}"),
            };
            text.parse().expect("a valid requirement")
        })
}

/// A lock entry as the resolver writes it, for any kind of locator.
fn locked_plugin() -> impl Strategy<Value = LockedPlugin> {
    let file = file_path().prop_map(|file| {
        let path = file_lock_path(&file);
        (format!("file://{file}"), None, None, None, Some(path))
    });
    let url = url_locator().prop_map(|url| (url.clone(), None, None, Some(url), None));
    let github = (
        github_locator(),
        any::<prop::sample::Index>(),
        version(),
        "[A-Za-z0-9_-]{1,10}\\.wasm",
    )
        .prop_map(|(locator, pick, released, asset)| {
            let tag = match &locator.tag {
                Some(wanted) => {
                    let forms = tag_candidates(locator.project_name.as_deref(), wanted);
                    forms[pick.index(forms.len())].clone()
                }
                None => match &locator.project_name {
                    Some(project) => format!("{project}@v{released}"),
                    None => format!("v{released}"),
                },
            };
            let url = download_url(API_URL, &locator, &tag, &asset)
                .unwrap_or_else(|error| panic!("{locator} at `{tag}`: {error}"));
            (locator.to_string(), Some(tag), Some(asset), Some(url), None)
        });
    (
        prop_oneof![file, url, github],
        prop::option::of(requirement()),
        checksum(),
        size(),
    )
        .prop_map(
            |((locator, tag, asset, url, path), requirement, checksum, size)| {
                let locator: PluginLocator = locator.parse().expect("generated locators parse");
                // The config gives a `version` only to a GitHub locator without a tag.
                let takes_requirement =
                    matches!(&locator, PluginLocator::GitHub(github) if github.tag.is_none());
                LockedPlugin {
                    locator,
                    requirement: requirement.filter(|_| takes_requirement),
                    tag,
                    asset,
                    url,
                    path,
                    registry: None,
                    repository: None,
                    digest: None,
                    checksum,
                    size,
                }
            },
        )
}

/// A lockfile of up to six plugins.
pub(crate) fn lockfile() -> impl Strategy<Value = Lockfile> {
    proptest::collection::btree_map(id(), locked_plugin(), 0..6)
        .prop_map(|plugins| Lockfile { plugins })
}

/// A lockfile's text with one random edit.
fn near_lockfile() -> impl Strategy<Value = String> {
    lockfile().prop_flat_map(|lock| mutated(lock.to_canonical_string()))
}

proptest! {
    #![proptest_config(super::config())]

    /// What warpgate writes it reads back equal, and writing that again gives the same bytes.
    #[test]
    fn lockfile_round_trips(lock in lockfile()) {
        let text = lock.to_canonical_string();
        let parsed = Lockfile::parse_for_api(&text, Path::new("warpgate.lock"), API_URL)
            .map_err(|error| TestCaseError::fail(format!("{error}\n{text}")))?;
        prop_assert_eq!(&parsed, &lock);
        prop_assert_eq!(parsed.to_canonical_string(), text);
    }

    /// Any text, and any near-valid lockfile, reads as a lockfile or an error; what is read
    /// prints canonically, and that text reads back equal.
    #[test]
    fn lockfile_parse_never_panics(input in prop_oneof![text(), near_lockfile()]) {
        if let Ok(lock) = Lockfile::parse_for_api(&input, Path::new("warpgate.lock"), API_URL) {
            let text = lock.to_canonical_string();
            let again = Lockfile::parse_for_api(&text, Path::new("warpgate.lock"), API_URL);
            prop_assert_eq!(again.ok(), Some(lock), "{}", text);
        }
    }

    /// The lock path of a `file://` locator is a fixed point: normalising it again changes
    /// nothing.
    #[test]
    fn file_lock_paths_are_stable(file in prop_oneof![file_path(), text()]) {
        let path = file_lock_path(&file);
        prop_assert_eq!(file_lock_path(&path), path.clone());
        prop_assert!(!path.split('/').any(|part| part == "."), "{}", path);
    }
}
