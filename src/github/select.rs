//! Choosing from a release listing: the release a locator means ([`select_release`]) and
//! the asset to take from it ([`choose_asset`]), by the rules of the module docs.

use semver::{Version, VersionReq};
use serde::Deserialize;

use super::{GitHubError, LISTED_VERSIONS, ResolvedAsset, Session};
use crate::checksum::Checksum;
use crate::locator::GitHubLocator;
use crate::release::{download_url, tag_version};

/// A release as the GitHub REST API describes it (the fields warpgate reads).
#[derive(Clone, Debug, Deserialize)]
pub(super) struct Release {
    pub(super) tag_name: String,
    #[serde(default)]
    pub(super) draft: bool,
    #[serde(default)]
    pub(super) prerelease: bool,
    #[serde(default)]
    pub(super) assets: Vec<Asset>,
}

/// A release asset as the GitHub REST API describes it.
#[derive(Clone, Debug, Deserialize)]
pub(super) struct Asset {
    pub(super) name: String,
    pub(super) browser_download_url: String,
    #[serde(default)]
    pub(super) size: u64,
    #[serde(default)]
    pub(super) digest: Option<String>,
}

/// The highest eligible release (see the module docs).
pub(super) fn select_release(
    locator: &GitHubLocator,
    releases: Vec<Release>,
    requirement: Option<&VersionReq>,
) -> Result<Release, GitHubError> {
    let project = locator.project_name.as_deref();
    let wants_prerelease = requirement.is_some_and(|requirement| {
        requirement
            .comparators
            .iter()
            .any(|comparator| !comparator.pre.is_empty())
    });
    let mut seen = Vec::new();
    let mut versioned: Vec<(Version, Release)> = Vec::new();
    for release in releases.into_iter().filter(|release| !release.draft) {
        match tag_version(&release.tag_name, project) {
            Some(version) => versioned.push((version, release)),
            None => seen.push(release.tag_name),
        }
    }
    versioned.sort_by(|(a, ra), (b, rb)| b.cmp(a).then_with(|| ra.tag_name.cmp(&rb.tag_name)));
    let stable =
        |(version, release): &&(Version, Release)| !release.prerelease && version.pre.is_empty();
    let chosen = versioned
        .iter()
        .position(|(version, release)| match requirement {
            Some(requirement) => {
                (wants_prerelease || !release.prerelease) && requirement.matches(version)
            }
            None => !release.prerelease && version.pre.is_empty(),
        });
    if let Some(index) = chosen {
        return Ok(versioned.swap_remove(index).1);
    }
    match requirement {
        Some(requirement) => Err(GitHubError::NoMatchingVersion {
            locator: locator.to_string(),
            requirement: requirement.clone(),
            available: versioned
                .iter()
                .filter(stable)
                .take(LISTED_VERSIONS)
                .map(|(version, _)| version.clone())
                .collect(),
        }),
        None => {
            let pattern = match project {
                Some(project) => format!(
                    "`{project}@v<version>`, `{project}-v<version>`, `{project}@<version>` or `{project}-<version>`"
                ),
                None => "`v<version>` or `<version>`".to_string(),
            };
            seen.extend(versioned.into_iter().map(|(_, release)| release.tag_name));
            seen.truncate(LISTED_VERSIONS);
            Err(GitHubError::NoReleases {
                locator: locator.to_string(),
                pattern,
                seen,
            })
        }
    }
}

/// The named asset, else the single `.wasm` asset. Its URL is derived from the API origin,
/// the locator's repository, the tag and the asset name ([`download_url`]), never taken from
/// the answer, so that the lock holds only URLs [`check_locked_release`] accepts.
pub(super) fn choose_asset(
    session: &Session<'_>,
    release: Release,
    asset: Option<&str>,
) -> Result<ResolvedAsset, GitHubError> {
    let locator = session.locator;
    let names = || -> Vec<String> {
        release
            .assets
            .iter()
            .map(|asset| asset.name.clone())
            .collect()
    };
    let chosen = match asset {
        Some(name) => release
            .assets
            .iter()
            .find(|asset| asset.name == name)
            .ok_or_else(|| GitHubError::AssetNotFound {
                locator: locator.to_string(),
                tag: release.tag_name.clone(),
                asset: name.to_string(),
                candidates: names(),
            })?,
        None => {
            let wasm: Vec<&Asset> = release
                .assets
                .iter()
                .filter(|asset| asset.name.to_ascii_lowercase().ends_with(".wasm"))
                .collect();
            match wasm.as_slice() {
                [single] => *single,
                [] => {
                    return Err(GitHubError::NoWasmAsset {
                        locator: locator.to_string(),
                        tag: release.tag_name.clone(),
                        candidates: names(),
                    });
                }
                several => {
                    return Err(GitHubError::AmbiguousAsset {
                        locator: locator.to_string(),
                        tag: release.tag_name.clone(),
                        candidates: several.iter().map(|asset| asset.name.clone()).collect(),
                    });
                }
            }
        }
    };
    let digest = match chosen.digest.as_deref() {
        Some(digest) if digest.starts_with("sha256:") => Some(digest.parse::<Checksum>().map_err(
            |error| GitHubError::InvalidResponse {
                locator: locator.to_string(),
                url: chosen.browser_download_url.clone(),
                reason: format!("the asset's digest is invalid: {error}"),
            },
        )?),
        _ => None,
    };
    let url = download_url(&session.base, locator, &release.tag_name, &chosen.name).map_err(
        |reason| GitHubError::InvalidResponse {
            locator: locator.to_string(),
            url: chosen.browser_download_url.clone(),
            reason,
        },
    )?;
    Ok(ResolvedAsset {
        tag: release.tag_name.clone(),
        asset: chosen.name.clone(),
        url,
        size: chosen.size,
        digest,
    })
}
