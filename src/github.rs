//! Resolving `github://org/repo[/project][@tag]` locators to one release asset.
//!
//! [`GitHubClient::resolve`] turns a [`GitHubLocator`] (plus the optional `version`
//! requirement and `asset` name of the config entry) into a [`ResolvedAsset`]: the release tag,
//! the asset's name, its `browser_download_url`, its size and, when the API gives one, its
//! `sha256` digest, which the caller checks against the downloaded bytes.
//!
//! # Rules
//!
//! - **A tag on a project locator is that project's release.** `github://o/r/hello@v1.2.3` tries
//!   the tags `hello@v1.2.3`, `hello-v1.2.3`, `hello@1.2.3` and `hello-1.2.3`, in that order,
//!   through `GET /repos/o/r/releases/tags/{tag}`; the first that exists wins, and when none
//!   does the error lists every form tried. A tag that already names the project
//!   (`hello@v1.2.3`, or `hello-` followed by a version) is tried as written first. Without a
//!   project, the tag is taken as written.
//! - **No tag means the highest release**: every page of `GET /repos/o/r/releases` is read
//!   (following `Link: rel="next"`), drafts and prereleases are skipped, and the highest
//!   semantic version wins, never "the first release on page 1". For a project, a release
//!   belongs to it only when its tag is exactly `project@<semver>`, `project-<semver>`,
//!   `project@v<semver>` or `project-v<semver>`, where the remainder must parse as a whole
//!   semantic version; so project `foo` never takes `foo-bar-v1.0.0`. Without a project, tags
//!   are `v<semver>` or `<semver>`.
//! - **Prereleases.** A release flagged as a prerelease by GitHub, or whose version has a
//!   prerelease part (`1.0.0-rc.1`), is skipped unless the `version` requirement itself names a
//!   prerelease (`=1.0.0-rc.1`); then the usual semver matching rules decide. An explicit tag
//!   always resolves, prerelease or not.
//! - **A tag and a requirement together**: the tag pins the release, and when the tag's
//!   version parses it must satisfy the requirement, or resolution fails.
//! - **The asset** is the one named in the config, else the single `.wasm` asset; anything else
//!   is an error that lists the candidates. (Archives holding a `.wasm` are not unpacked here.)
//! - **Errors** name the locator. A missing repository says it may be private and names the
//!   token variable; a rate limit says so and names `GITHUB_TOKEN`.
//! - **Credentials.** The token (`WARPGATE_GITHUB_TOKEN`, else `GH_TOKEN`, else
//!   `GITHUB_TOKEN`) is wrapped in an [`ApiToken`] bound to the API base URL's origin, so it is
//!   only ever sent to the API host (see [`crate::http`]); asset downloads go to other hosts
//!   and carry no token. Private repositories' assets are therefore not downloadable yet.
//! - **Digests.** An asset's `digest` is returned when it is a `sha256:` one (a malformed one
//!   is an error); digests in other algorithms are ignored. Checking it against the
//!   downloaded bytes is the caller's job ([`ResolvedAsset::digest`]).
//! - **Limits.** Releases are listed 100 per page, at most 1000 pages; a `Link` that points
//!   back to a page already read ends the listing.

#![warn(missing_docs)]

use std::fmt;

use semver::{Version, VersionReq};
use serde::Deserialize;
use url::Url;

use crate::checksum::Checksum;
use crate::env;
use crate::http::{ApiToken, HttpClient, HttpError};
use crate::locator::{GitHubLocator, check_url_scheme};

/// The most release pages read for one repository (100 releases each).
const MAX_PAGES: usize = 1000;

/// How many versions an error lists at most.
const LISTED_VERSIONS: usize = 5;

/// One release asset, chosen for a locator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedAsset {
    /// The release's tag, e.g. `hello@v1.2.0`.
    pub tag: String,
    /// The asset's file name.
    pub asset: String,
    /// The asset's `browser_download_url`.
    pub url: String,
    /// The asset's size in bytes, as the API reports it.
    pub size: u64,
    /// The asset's digest, when the API gives a `sha256:` one.
    pub digest: Option<Checksum>,
}

/// A release that belongs to a locator's project (or to the repository), with its version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectRelease {
    /// The release's tag.
    pub tag: String,
    /// The version parsed from the tag.
    pub version: Version,
    /// Whether GitHub flags it as a prerelease or its version has a prerelease part.
    pub prerelease: bool,
}

/// Why a `github://` locator could not be resolved. Every message names the locator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitHubError {
    /// The API base URL is not usable.
    #[error(
        "cannot resolve `{locator}`: invalid GitHub API URL `{api_url}` (from `{}`): {reason}",
        env::GITHUB_API_URL
    )]
    InvalidApiUrl {
        /// The locator being resolved.
        locator: String,
        /// The API base URL.
        api_url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The repository does not exist, or is private and the token cannot see it.
    #[error("cannot resolve `{locator}`: repository `{repo}` not found ({})", private_hint(*.token))]
    RepoNotFound {
        /// The locator being resolved.
        locator: String,
        /// `org/repo`.
        repo: String,
        /// The token that was sent, if any.
        token: TokenSource,
    },
    /// No release has any of the tags the locator's tag stands for.
    #[error("cannot resolve `{locator}`: no release is tagged {}", backticked(.tried, " or "))]
    TagNotFound {
        /// The locator being resolved.
        locator: String,
        /// The tags tried, in order.
        tried: Vec<String>,
    },
    /// The repository has no release with a suitable semver tag.
    #[error(
        "cannot resolve `{locator}`: no release tagged {pattern} that is not a draft or a prerelease{}",
        seen_hint(.seen)
    )]
    NoReleases {
        /// The locator being resolved.
        locator: String,
        /// The tag shapes looked for, e.g. "`hello@v<version>` (or `hello-`, `hello@`, `hello-` + `<version>`)".
        pattern: String,
        /// Some tags of other releases in the repository.
        seen: Vec<String>,
    },
    /// No release matches the `version` requirement.
    #[error(
        "cannot resolve `{locator}`: no release matches the version requirement `{requirement}`\nhint: {}",
        available_hint(.available)
    )]
    NoMatchingVersion {
        /// The locator being resolved.
        locator: String,
        /// The requirement.
        requirement: VersionReq,
        /// The newest versions available (at most a few), newest first.
        available: Vec<Version>,
    },
    /// The locator's tag does not satisfy the `version` requirement.
    #[error(
        "cannot resolve `{locator}`: release `{tag}` does not match the version requirement `{requirement}`\nhint: remove the tag or the `version` requirement"
    )]
    TagOutsideRequirement {
        /// The locator being resolved.
        locator: String,
        /// The release tag.
        tag: String,
        /// The requirement.
        requirement: VersionReq,
    },
    /// The named asset is not in the release.
    #[error(
        "cannot resolve `{locator}`: release `{tag}` has no asset named `{asset}`; its assets are {}",
        backticked_or_none(.candidates)
    )]
    AssetNotFound {
        /// The locator being resolved.
        locator: String,
        /// The release tag.
        tag: String,
        /// The asset asked for.
        asset: String,
        /// Every asset of the release.
        candidates: Vec<String>,
    },
    /// The release has no `.wasm` asset and none was named.
    #[error(
        "cannot resolve `{locator}`: release `{tag}` has no `.wasm` asset; its assets are {}\nhint: name the asset to use with `asset = \"<name>\"`",
        backticked_or_none(.candidates)
    )]
    NoWasmAsset {
        /// The locator being resolved.
        locator: String,
        /// The release tag.
        tag: String,
        /// Every asset of the release.
        candidates: Vec<String>,
    },
    /// The release has several `.wasm` assets and none was named.
    #[error(
        "cannot resolve `{locator}`: release `{tag}` has several `.wasm` assets: {}\nhint: choose one with `asset = \"<name>\"`",
        backticked(.candidates, ", ")
    )]
    AmbiguousAsset {
        /// The locator being resolved.
        locator: String,
        /// The release tag.
        tag: String,
        /// The `.wasm` assets.
        candidates: Vec<String>,
    },
    /// The GitHub API rate limit is exhausted.
    #[error(
        "cannot resolve `{locator}`: the GitHub API rate limit is exhausted{}\nhint: {}",
        reset_note(*.reset_in_seconds),
        rate_limit_hint(*.token)
    )]
    RateLimited {
        /// The locator being resolved.
        locator: String,
        /// Seconds until the limit resets, when known.
        reset_in_seconds: Option<u64>,
        /// The token that was sent, if any.
        token: TokenSource,
    },
    /// The API answered with something that is not a release as expected.
    #[error("cannot resolve `{locator}`: unexpected answer from `{url}`: {reason}")]
    InvalidResponse {
        /// The locator being resolved.
        locator: String,
        /// The API URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A request to the API failed (network, offline, status).
    #[error("cannot resolve `{locator}`")]
    Http {
        /// The locator being resolved.
        locator: String,
        /// The underlying error.
        #[source]
        source: HttpError,
    },
}

fn private_hint(token: TokenSource) -> String {
    match token {
        TokenSource::None => format!("or private: set `{}`", env::GITHUB_TOKEN),
        token => format!("or private, and {token} cannot see it"),
    }
}

fn rate_limit_hint(token: TokenSource) -> String {
    match token {
        TokenSource::None => format!(
            "set `{}` (or `{}`) to a GitHub token for a higher rate limit",
            env::GITHUB_TOKEN,
            env::WARPGATE_GITHUB_TOKEN
        ),
        token => format!("{token} was used; wait for the limit to reset"),
    }
}

fn reset_note(reset_in_seconds: Option<u64>) -> String {
    reset_in_seconds
        .map(|seconds| format!(" (it resets in {seconds} seconds)"))
        .unwrap_or_default()
}

fn backticked(items: &[String], separator: &str) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(separator)
}

fn backticked_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        backticked(items, ", ")
    }
}

fn seen_hint(seen: &[String]) -> String {
    if seen.is_empty() {
        String::new()
    } else {
        format!(
            "\nhint: other releases are tagged {}",
            backticked(seen, ", ")
        )
    }
}

fn available_hint(available: &[Version]) -> String {
    if available.is_empty() {
        "there are no releases with a version".to_string()
    } else {
        let versions: Vec<String> = available.iter().map(Version::to_string).collect();
        format!("the newest versions are {}", backticked(&versions, ", "))
    }
}

/// A release as the GitHub REST API describes it (the fields warpgate reads).
#[derive(Clone, Debug, Deserialize)]
struct Release {
    tag_name: String,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    prerelease: bool,
    #[serde(default)]
    assets: Vec<Asset>,
}

/// A release asset as the GitHub REST API describes it.
#[derive(Clone, Debug, Deserialize)]
struct Asset {
    name: String,
    browser_download_url: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    digest: Option<String>,
}

/// Resolves `github://` locators through the GitHub REST API.
#[derive(Clone)]
pub struct GitHubClient {
    http: HttpClient,
    api_url: String,
    token: Option<String>,
    token_source: TokenSource,
}

/// Which token a [`GitHubClient`] sends, for messages (never the token itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// No token is sent.
    None,
    /// The token came from this environment variable.
    Var(&'static str),
    /// The token was given with [`GitHubClient::with_token`].
    Explicit,
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("no token"),
            Self::Var(var) => write!(f, "the token in `{var}`"),
            Self::Explicit => f.write_str("the configured token"),
        }
    }
}

impl fmt::Debug for GitHubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubClient")
            .field("api_url", &self.api_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_source", &self.token_source)
            .finish_non_exhaustive()
    }
}

/// Where the request sequence for one locator stands: the parsed base and the token.
struct Session<'a> {
    locator: &'a GitHubLocator,
    base: String,
    token: Option<ApiToken>,
}

impl GitHubClient {
    /// A client for the API at `GITHUB_API_URL` (default `https://api.github.com`), with the
    /// token from `WARPGATE_GITHUB_TOKEN`, `GH_TOKEN` or `GITHUB_TOKEN`.
    pub fn new(http: HttpClient) -> Self {
        let (token_source, token) = match env::github_token() {
            Some((var, token)) => (TokenSource::Var(var), Some(token)),
            None => (TokenSource::None, None),
        };
        Self {
            http,
            api_url: env::github_api_url(),
            token,
            token_source,
        }
    }

    /// A client for the API at `api_url`, without a token (tests, explicit configuration).
    pub fn with_api_url(http: HttpClient, api_url: impl Into<String>) -> Self {
        Self {
            http,
            api_url: api_url.into().trim_end_matches('/').to_string(),
            token: None,
            token_source: TokenSource::None,
        }
    }

    /// The same client using `token` (sent to the API host only).
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self.token_source = TokenSource::Explicit;
        self
    }

    /// The API base URL, without a trailing slash.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The HTTP client used for API calls.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Resolves `locator` to one release asset (see the module docs for the rules).
    ///
    /// `version` is the config entry's semver requirement, `asset` its asset name.
    pub async fn resolve(
        &self,
        locator: &GitHubLocator,
        version: Option<&VersionReq>,
        asset: Option<&str>,
    ) -> Result<ResolvedAsset, GitHubError> {
        let session = self.session(locator)?;
        let project = locator.project_name.as_deref();
        let release = match &locator.tag {
            Some(tag) => {
                let release = self.release_by_tag(&session, tag).await?;
                if let Some(requirement) = version
                    && let Some(found) = tag_version(&release.tag_name, project)
                        .or_else(|| tag_version(&release.tag_name, None))
                    && !requirement.matches(&found)
                {
                    return Err(GitHubError::TagOutsideRequirement {
                        locator: locator.to_string(),
                        tag: release.tag_name,
                        requirement: requirement.clone(),
                    });
                }
                release
            }
            None => {
                let releases = self.list_releases(&session).await?;
                select_release(locator, releases, version)?
            }
        };
        choose_asset(locator, release, asset)
    }

    /// Every non-draft release of the locator's project (or repository) with a semver tag,
    /// highest version first, prereleases included (and marked). The locator's tag is ignored.
    pub async fn releases(
        &self,
        locator: &GitHubLocator,
    ) -> Result<Vec<ProjectRelease>, GitHubError> {
        let session = self.session(locator)?;
        let project = locator.project_name.as_deref();
        let mut releases: Vec<ProjectRelease> = self
            .list_releases(&session)
            .await?
            .into_iter()
            .filter(|release| !release.draft)
            .filter_map(|release| {
                let version = tag_version(&release.tag_name, project)?;
                Some(ProjectRelease {
                    prerelease: release.prerelease || !version.pre.is_empty(),
                    tag: release.tag_name,
                    version,
                })
            })
            .collect();
        releases.sort_by(|a, b| b.version.cmp(&a.version).then_with(|| a.tag.cmp(&b.tag)));
        Ok(releases)
    }

    fn session<'a>(&self, locator: &'a GitHubLocator) -> Result<Session<'a>, GitHubError> {
        let error = |reason: String| GitHubError::InvalidApiUrl {
            locator: locator.to_string(),
            api_url: self.api_url.clone(),
            reason,
        };
        let parsed = Url::parse(&self.api_url).map_err(|e| error(e.to_string()))?;
        check_url_scheme(&parsed).map_err(error)?;
        Ok(Session {
            locator,
            base: self.api_url.trim_end_matches('/').to_string(),
            token: self
                .token
                .as_ref()
                .map(|token| ApiToken::new(token.clone(), &parsed)),
        })
    }

    /// `GET`s one API URL; maps a rate limit, and leaves a 404 to the caller.
    async fn get(
        &self,
        session: &Session<'_>,
        url: &str,
    ) -> Result<Option<crate::http::ApiResponse>, GitHubError> {
        match self.http.get_api(url, session.token.as_ref()).await {
            Ok(response) => Ok(Some(response)),
            Err(HttpError::Status { status: 404, .. }) => Ok(None),
            Err(HttpError::RateLimited {
                reset_in_seconds, ..
            }) => Err(GitHubError::RateLimited {
                locator: session.locator.to_string(),
                reset_in_seconds,
                token: self.token_source,
            }),
            Err(source) => Err(GitHubError::Http {
                locator: session.locator.to_string(),
                source,
            }),
        }
    }

    fn repo_not_found(&self, session: &Session<'_>) -> GitHubError {
        GitHubError::RepoNotFound {
            locator: session.locator.to_string(),
            repo: session.locator.repo_slug.clone(),
            token: self.token_source,
        }
    }

    fn repo_url(&self, session: &Session<'_>) -> String {
        format!(
            "{}/repos/{}/{}",
            session.base,
            encode_segment(session.locator.owner()),
            encode_segment(session.locator.repo())
        )
    }

    fn parse<T: for<'de> Deserialize<'de>>(
        session: &Session<'_>,
        url: &str,
        body: &[u8],
    ) -> Result<T, GitHubError> {
        serde_json::from_slice(body).map_err(|error| GitHubError::InvalidResponse {
            locator: session.locator.to_string(),
            url: url.to_string(),
            reason: error.to_string(),
        })
    }

    /// The release for `tag`, trying every form the tag stands for.
    async fn release_by_tag(
        &self,
        session: &Session<'_>,
        tag: &str,
    ) -> Result<Release, GitHubError> {
        let tried = tag_candidates(session.locator.project_name.as_deref(), tag);
        for candidate in &tried {
            let url = format!(
                "{}/releases/tags/{}",
                self.repo_url(session),
                encode_segment(candidate)
            );
            if let Some(response) = self.get(session, &url).await? {
                return Self::parse(session, &url, &response.body);
            }
        }
        // Every form was missing: tell a missing repository from a missing release.
        if self.get(session, &self.repo_url(session)).await?.is_none() {
            return Err(self.repo_not_found(session));
        }
        Err(GitHubError::TagNotFound {
            locator: session.locator.to_string(),
            tried,
        })
    }

    /// Every release of the repository, across every page.
    async fn list_releases(&self, session: &Session<'_>) -> Result<Vec<Release>, GitHubError> {
        let mut url = format!("{}/releases?per_page=100", self.repo_url(session));
        let mut seen_urls = std::collections::HashSet::new();
        let mut releases = Vec::new();
        for _ in 0..MAX_PAGES {
            seen_urls.insert(url.clone());
            let Some(response) = self.get(session, &url).await? else {
                return Err(self.repo_not_found(session));
            };
            let page: Vec<Release> = Self::parse(session, &url, &response.body)?;
            releases.extend(page);
            match response.next_link() {
                Some(next) if !seen_urls.contains(&next) => url = next,
                _ => return Ok(releases),
            }
        }
        Err(GitHubError::InvalidResponse {
            locator: session.locator.to_string(),
            url,
            reason: format!("more than {MAX_PAGES} pages of releases"),
        })
    }
}

/// The version a tag stands for: for a project, only `project@`/`project-` followed by
/// `v<semver>` or `<semver>`; without one, `v<semver>` or `<semver>`.
fn tag_version(tag: &str, project: Option<&str>) -> Option<Version> {
    let rest = match project {
        Some(project) => {
            let rest = tag.strip_prefix(project)?;
            rest.strip_prefix('@').or_else(|| rest.strip_prefix('-'))?
        }
        None => tag,
    };
    let rest = rest.strip_prefix('v').unwrap_or(rest);
    Version::parse(rest).ok()
}

/// The tags to try, in order, for `tag` on a locator of `project`.
fn tag_candidates(project: Option<&str>, tag: &str) -> Vec<String> {
    let Some(project) = project else {
        return vec![tag.to_string()];
    };
    let mut candidates = Vec::new();
    // A tag that already names the project: `project@…` (unambiguous, as `@` is not allowed
    // in project names) or `project-` + a version (so `foo-bar-v1` is not foo's).
    let named = tag
        .strip_prefix(project)
        .and_then(|rest| {
            rest.strip_prefix('@').or_else(|| {
                rest.strip_prefix('-')
                    .filter(|version| looks_like_version(version))
            })
        })
        .filter(|rest| !rest.is_empty());
    let version = match named {
        Some(rest) => {
            candidates.push(tag.to_string());
            rest
        }
        None => tag,
    };
    let bare = version.strip_prefix('v').unwrap_or(version);
    let forms = if looks_like_version(bare) {
        vec![
            format!("{project}@v{bare}"),
            format!("{project}-v{bare}"),
            format!("{project}@{bare}"),
            format!("{project}-{bare}"),
        ]
    } else {
        vec![
            format!("{project}@{version}"),
            format!("{project}-{version}"),
        ]
    };
    for form in forms {
        if !candidates.contains(&form) {
            candidates.push(form);
        }
    }
    candidates
}

/// Whether `text` starts like a version: an optional `v`, then a digit.
fn looks_like_version(text: &str) -> bool {
    text.strip_prefix('v')
        .unwrap_or(text)
        .starts_with(|c: char| c.is_ascii_digit())
}

/// The highest eligible release (see the module docs).
fn select_release(
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

/// The named asset, else the single `.wasm` asset.
fn choose_asset(
    locator: &GitHubLocator,
    release: Release,
    asset: Option<&str>,
) -> Result<ResolvedAsset, GitHubError> {
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
    Ok(ResolvedAsset {
        tag: release.tag_name.clone(),
        asset: chosen.name.clone(),
        url: chosen.browser_download_url.clone(),
        size: chosen.size,
        digest,
    })
}

/// Percent-encodes one URL path segment (`/`, `%`, spaces and the like; `@` stays).
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@+!$&'()*,;=:".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_tags_never_cross_projects() {
        let version = |tag: &str| tag_version(tag, Some("foo")).map(|v| v.to_string());
        assert_eq!(version("foo@v1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(version("foo-v1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(version("foo@1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(version("foo-1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(version("foo-1.2.3-rc.1").as_deref(), Some("1.2.3-rc.1"));
        assert_eq!(version("foo-bar-v1.0.0"), None);
        assert_eq!(version("foo-bar@1.0.0"), None);
        assert_eq!(version("foobar-1.0.0"), None);
        assert_eq!(version("v1.0.0"), None);
        assert_eq!(version("foo@v1.2"), None);
        assert_eq!(tag_version("v1.0.0", None), Some(Version::new(1, 0, 0)));
        assert_eq!(tag_version("1.0.0", None), Some(Version::new(1, 0, 0)));
        assert_eq!(tag_version("foo-1.0.0", None), None);
    }

    #[test]
    fn tag_forms() {
        assert_eq!(
            tag_candidates(Some("hello"), "v1.2.3"),
            ["hello@v1.2.3", "hello-v1.2.3", "hello@1.2.3", "hello-1.2.3"]
        );
        assert_eq!(
            tag_candidates(Some("hello"), "1.2.3"),
            ["hello@v1.2.3", "hello-v1.2.3", "hello@1.2.3", "hello-1.2.3"]
        );
        assert_eq!(
            tag_candidates(Some("hello"), "hello-1.2.3"),
            ["hello-1.2.3", "hello@v1.2.3", "hello-v1.2.3", "hello@1.2.3"]
        );
        assert_eq!(
            tag_candidates(Some("hello"), "hello@nightly"),
            ["hello@nightly", "hello-nightly"]
        );
        assert_eq!(
            tag_candidates(Some("foo"), "foo-bar-v1.0.0"),
            ["foo@foo-bar-v1.0.0", "foo-foo-bar-v1.0.0"]
        );
        assert_eq!(tag_candidates(None, "v1.2.3"), ["v1.2.3"]);
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("hello@v1.0.0"), "hello@v1.0.0");
        assert_eq!(encode_segment("release/1 0%"), "release%2F1%200%25");
    }
}
