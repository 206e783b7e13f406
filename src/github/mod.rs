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
//!   in the repository's release listing (first page first; the other pages only when the
//!   first holds none of them); the first that exists wins, and when none does the error
//!   lists every form tried. A tag that already names the project
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
//!
//! # Requests
//!
//! - **One listing per repository per client.** Every locator of a repository (the projects
//!   of a monorepo, pinned tags, ranges) shares one listing, fetched once even when many
//!   resolutions ask for it at the same moment. Once the first page names the last one
//!   (`Link: rel="last"`), every remaining page is requested at once. A client therefore
//!   sees a repository as it was when first asked: make a new client (or call
//!   [`GitHubClient::fresh`]) for a fresh view.
//! - **Conditional requests.** With an [`ApiCache`], every answer's `ETag` and body are kept,
//!   and the next request for the URL sends `If-None-Match`; a `304 Not Modified` is served
//!   from the stored body. GitHub does not count such answers against the primary rate limit
//!   of authenticated requests.
//! - **Costs.** [`GitHubClient::stats`] counts requests, `304` answers and the lowest
//!   `X-RateLimit-Remaining` seen; [`GitHubClient::check_budget`] fails before a run that
//!   cannot fit in what is left.

#![warn(missing_docs)]

mod api;
mod error;
mod select;

pub use api::{ApiToken, GITHUB_API_VERSION, rate_limit_remaining, request_headers};
pub use error::GitHubError;

use api::{Answer, page_urls};
use select::{Release, choose_asset, select_release};

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use semver::{Version, VersionReq};
use serde::Deserialize;
use tokio::sync::OnceCell;
use url::Url;

use crate::api_cache::{ApiCache, StoredAnswer};
use crate::checksum::Checksum;
use crate::env;
use crate::http::{HttpClient, HttpError};
use crate::locator::{GitHubLocator, check_url_scheme};
use crate::release::{encode_segment, tag_candidates, tag_version};

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

/// The releases `warpgate outdated` compares a lock entry with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewestReleases<'a> {
    /// The highest stable release matching the entry's requirement (any stable release when
    /// it has none); `None` for a locator pinned to a tag, which nothing else can match.
    pub matching: Option<&'a ProjectRelease>,
    /// The highest stable release.
    pub newest: Option<&'a ProjectRelease>,
}

impl<'a> NewestReleases<'a> {
    /// Picks from `releases` (as [`GitHubClient::releases`] lists them) for `locator` and its
    /// `version` requirement. Prereleases are never picked, as `warpgate lock` never picks
    /// them for a floating locator.
    pub fn pick(
        releases: &'a [ProjectRelease],
        locator: &GitHubLocator,
        requirement: Option<&semver::VersionReq>,
    ) -> Self {
        let stable = || releases.iter().filter(|release| !release.prerelease);
        let highest = |a: &&ProjectRelease, b: &&ProjectRelease| a.version.cmp(&b.version);
        let matching = if locator.tag.is_some() {
            None
        } else {
            stable()
                .filter(|release| {
                    requirement.is_none_or(|requirement| requirement.matches(&release.version))
                })
                .max_by(highest)
        };
        Self {
            matching,
            newest: stable().max_by(highest),
        }
    }
}

/// Resolves `github://` locators through the GitHub REST API.
///
/// Clones share the listings already fetched and the [`ApiStats`].
#[derive(Clone)]
pub struct GitHubClient {
    http: HttpClient,
    api_url: String,
    token: Option<String>,
    token_source: TokenSource,
    store: Option<ApiCache>,
    shared: Arc<Shared>,
}

/// What a [`GitHubClient`] (and its clones) spent on the API so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiStats {
    /// API requests answered (retries of one request count once).
    pub requests: u64,
    /// Of those, answered `304 Not Modified` and served from the [`ApiCache`].
    pub not_modified: u64,
    /// The lowest `X-RateLimit-Remaining` seen, if an answer had one.
    pub rate_limit_remaining: Option<u64>,
}

/// State shared by a client's clones: the listings and the counters.
#[derive(Debug)]
struct Shared {
    listings: Mutex<HashMap<String, Arc<Listing>>>,
    requests: AtomicU64,
    not_modified: AtomicU64,
    /// `u64::MAX` until an answer says otherwise.
    remaining: AtomicU64,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            listings: Mutex::default(),
            requests: AtomicU64::new(0),
            not_modified: AtomicU64::new(0),
            remaining: AtomicU64::new(u64::MAX),
        }
    }
}

/// One repository's releases: the first page, then all of them, each fetched once.
#[derive(Debug, Default)]
struct Listing {
    first: OnceCell<Result<FirstPage, ListingFailure>>,
    all: OnceCell<Result<Arc<Vec<Release>>, ListingFailure>>,
}

/// The first page of a listing and its `Link`s.
#[derive(Clone, Debug)]
struct FirstPage {
    url: String,
    releases: Arc<Vec<Release>>,
    next: Option<String>,
    last: Option<String>,
}

/// A listing failure that every locator of the repository shares (network errors are not
/// kept: the next resolution tries again).
#[derive(Clone, Debug)]
enum ListingFailure {
    NotFound,
    RateLimited { reset_in_seconds: Option<u64> },
    Invalid { url: String, reason: String },
}

impl ListingFailure {
    fn of(error: &GitHubError) -> Option<Self> {
        match error {
            GitHubError::RepoNotFound { .. } => Some(Self::NotFound),
            GitHubError::RateLimited {
                reset_in_seconds, ..
            } => Some(Self::RateLimited {
                reset_in_seconds: *reset_in_seconds,
            }),
            GitHubError::InvalidResponse { url, reason, .. } => Some(Self::Invalid {
                url: url.clone(),
                reason: reason.clone(),
            }),
            _ => None,
        }
    }

    /// Keeps `error` when it can be shared, else hands it back.
    fn keep<T>(error: GitHubError) -> Result<Result<T, Self>, GitHubError> {
        match Self::of(&error) {
            Some(failure) => Ok(Err(failure)),
            None => Err(error),
        }
    }
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
            store: None,
            shared: Arc::default(),
        }
    }

    /// The same client keeping API answers in `store` and sending conditional requests.
    pub fn with_api_cache(mut self, store: ApiCache) -> Self {
        self.store = Some(store);
        self
    }

    /// The same client, forgetting the listings fetched so far (and starting new counts).
    pub fn fresh(&self) -> Self {
        Self {
            shared: Arc::default(),
            ..self.clone()
        }
    }

    /// What this client and its clones spent on the API so far.
    pub fn stats(&self) -> ApiStats {
        let remaining = self.shared.remaining.load(Ordering::Relaxed);
        ApiStats {
            requests: self.shared.requests.load(Ordering::Relaxed),
            not_modified: self.shared.not_modified.load(Ordering::Relaxed),
            rate_limit_remaining: (remaining != u64::MAX).then_some(remaining),
        }
    }

    /// A client for the API at `api_url`, without a token (tests, explicit configuration).
    pub fn with_api_url(http: HttpClient, api_url: impl Into<String>) -> Self {
        Self {
            http,
            api_url: api_url.into().trim_end_matches('/').to_string(),
            token: None,
            token_source: TokenSource::None,
            store: None,
            shared: Arc::default(),
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
                let releases = self.all_releases(&session).await?;
                select_release(locator, releases.to_vec(), version)?
            }
        };
        choose_asset(&session, release, asset)
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
            .all_releases(&session)
            .await?
            .iter()
            .filter(|release| !release.draft)
            .filter_map(|release| {
                let version = tag_version(&release.tag_name, project)?;
                Some(ProjectRelease {
                    prerelease: release.prerelease || !version.pre.is_empty(),
                    tag: release.tag_name.clone(),
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

    /// Checks, before `locators` are resolved, that the rate limit leaves enough API requests
    /// for them: lists the first repository's first page (kept for its resolution), reads
    /// `X-RateLimit-Remaining`, and fails with [`GitHubError::BudgetExceeded`] when the other
    /// repositories need more than that (at least one request each; none for an
    /// authenticated one whose answer is stored, as its `304` is free). Nothing is checked
    /// when the API does not tell the budget; a failure of that first request is left to the
    /// resolution, which reports it for its plugin, except an API too slow to answer in time
    /// ([`HttpError::is_too_slow`]), which is returned: asking again would wait as long again.
    pub async fn check_budget(&self, locators: &[&GitHubLocator]) -> Result<(), GitHubError> {
        let mut seen = HashSet::new();
        let repositories: Vec<&GitHubLocator> = locators
            .iter()
            .copied()
            .filter(|locator| seen.insert(locator.repo_slug.to_ascii_lowercase()))
            .collect();
        let Some(first) = repositories.first() else {
            return Ok(());
        };
        let session = self.session(first)?;
        if let Err(error) = self.first_page(&session).await {
            if let GitHubError::Http { source, .. } = &error
                && source.is_too_slow()
            {
                return Err(error);
            }
            return Ok(());
        }
        let Some(remaining) = self.stats().rate_limit_remaining else {
            return Ok(());
        };
        let mut needed = 0;
        for locator in &repositories[1..] {
            let session = self.session(locator)?;
            let url = self.first_page_url(&session);
            let free = session.token.is_some()
                && self
                    .store
                    .as_ref()
                    .is_some_and(|store| store.get(&url, true).is_some());
            if !free {
                needed += 1;
            }
        }
        if needed > remaining {
            return Err(GitHubError::BudgetExceeded {
                plugins: locators.len(),
                repositories: repositories.len(),
                needed,
                remaining,
                token: self.token_source,
            });
        }
        Ok(())
    }

    /// `GET`s one API URL, conditionally when its answer is stored; maps a rate limit, and
    /// leaves a 404 to the caller.
    async fn get(&self, session: &Session<'_>, url: &str) -> Result<Option<Answer>, GitHubError> {
        // `Link` URLs come from the answers: they must stay on the API's origin.
        let same_origin = match (Url::parse(url), Url::parse(&session.base)) {
            (Ok(url), Ok(base)) => url.origin() == base.origin(),
            _ => false,
        };
        if !same_origin {
            return Err(GitHubError::InvalidResponse {
                locator: session.locator.to_string(),
                url: url.to_string(),
                reason: format!(
                    "a `Link` header points away from the API at `{}` (from `{}`)",
                    session.base,
                    env::GITHUB_API_URL
                ),
            });
        }
        let authenticated = session.token.is_some();
        let stored = self
            .store
            .as_ref()
            .and_then(|store| store.get(url, authenticated));
        let headers = request_headers(
            url,
            session.token.as_ref(),
            stored.as_ref().map(|stored| stored.etag.as_str()),
        );
        let result = match headers {
            Ok(headers) => self.http.get_api(url, &headers).await,
            Err(error) => Err(error),
        };
        if matches!(
            result,
            Ok(_) | Err(HttpError::Status { .. } | HttpError::RateLimited { .. })
        ) {
            self.shared.requests.fetch_add(1, Ordering::Relaxed);
        }
        match result {
            Ok(response) => {
                if let Some(remaining) = rate_limit_remaining(&response) {
                    self.shared
                        .remaining
                        .fetch_min(remaining, Ordering::Relaxed);
                }
                if response.is_not_modified() {
                    let Some(stored) = stored else {
                        return Err(GitHubError::InvalidResponse {
                            locator: session.locator.to_string(),
                            url: url.to_string(),
                            reason: "`304 Not Modified` to a request that was not conditional"
                                .into(),
                        });
                    };
                    self.shared.not_modified.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%url, "not modified; using the stored answer");
                    return Ok(Some(Answer {
                        body: stored.body.into_bytes(),
                        link: stored.link,
                    }));
                }
                let link = {
                    let values: Vec<&str> = response
                        .headers
                        .get_all(reqwest::header::LINK)
                        .iter()
                        .filter_map(|value| value.to_str().ok())
                        .collect();
                    (!values.is_empty()).then(|| values.join(", "))
                };
                if let (Some(store), Some(etag)) = (&self.store, response.header("etag"))
                    && let Ok(body) = std::str::from_utf8(&response.body)
                {
                    store.put(
                        &StoredAnswer {
                            url: url.to_string(),
                            etag: etag.to_string(),
                            link: link.clone(),
                            body: body.to_string(),
                        },
                        authenticated,
                    );
                }
                Ok(Some(Answer {
                    body: response.body,
                    link,
                }))
            }
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

    /// The error for a shared listing failure, naming the locator being resolved.
    fn failure(&self, session: &Session<'_>, failure: ListingFailure) -> GitHubError {
        match failure {
            ListingFailure::NotFound => self.repo_not_found(session),
            ListingFailure::RateLimited { reset_in_seconds } => GitHubError::RateLimited {
                locator: session.locator.to_string(),
                reset_in_seconds,
                token: self.token_source,
            },
            ListingFailure::Invalid { url, reason } => GitHubError::InvalidResponse {
                locator: session.locator.to_string(),
                url,
                reason,
            },
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

    fn first_page_url(&self, session: &Session<'_>) -> String {
        format!("{}/releases?per_page=100", self.repo_url(session))
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

    /// The shared listing of the session's repository.
    fn listing(&self, session: &Session<'_>) -> Arc<Listing> {
        let key = self.repo_url(session).to_ascii_lowercase();
        let mut listings = self
            .shared
            .listings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        listings.entry(key).or_default().clone()
    }

    /// One page of releases and its answer; `None` when the repository is missing.
    async fn fetch_page(
        &self,
        session: &Session<'_>,
        url: &str,
    ) -> Result<(Vec<Release>, Answer), GitHubError> {
        let Some(answer) = self.get(session, url).await? else {
            return Err(self.repo_not_found(session));
        };
        let releases = Self::parse(session, url, &answer.body)?;
        Ok((releases, answer))
    }

    /// The first page of the repository's releases (fetched once per client).
    async fn first_page(&self, session: &Session<'_>) -> Result<FirstPage, GitHubError> {
        let listing = self.listing(session);
        let outcome = listing
            .first
            .get_or_try_init(|| async {
                let url = self.first_page_url(session);
                match self.fetch_page(session, &url).await {
                    Ok((releases, answer)) => Ok(Ok(FirstPage {
                        next: answer.link("next"),
                        last: answer.link("last"),
                        url,
                        releases: Arc::new(releases),
                    })),
                    Err(error) => ListingFailure::keep(error),
                }
            })
            .await?;
        outcome
            .clone()
            .map_err(|failure| self.failure(session, failure))
    }

    /// Every release of the repository, across every page (fetched once per client).
    async fn all_releases(&self, session: &Session<'_>) -> Result<Arc<Vec<Release>>, GitHubError> {
        let listing = self.listing(session);
        let outcome = listing
            .all
            .get_or_try_init(|| async {
                let result = match self.first_page(session).await {
                    Ok(first) => self.other_pages(session, &first).await,
                    Err(error) => Err(error),
                };
                match result {
                    Ok(releases) => Ok(Ok(Arc::new(releases))),
                    Err(error) => ListingFailure::keep(error),
                }
            })
            .await?;
        outcome
            .clone()
            .map_err(|failure| self.failure(session, failure))
    }

    /// The first page's releases and every other page's: all at once when the first page's
    /// `Link` names the last page, else one `rel="next"` after the other.
    async fn other_pages(
        &self,
        session: &Session<'_>,
        first: &FirstPage,
    ) -> Result<Vec<Release>, GitHubError> {
        let mut releases = first.releases.to_vec();
        let mut seen_urls = HashSet::from([first.url.clone()]);
        let mut next = first.next.clone();
        if let Some(urls) = first
            .next
            .as_deref()
            .zip(first.last.as_deref())
            .and_then(|(next, last)| page_urls(next, last))
        {
            let pages = futures_util::future::join_all(
                urls.iter().map(|url| self.fetch_page(session, url)),
            )
            .await;
            next = None;
            for (url, page) in urls.iter().zip(pages) {
                let (page, answer) = page?;
                seen_urls.insert(url.clone());
                releases.extend(page);
                next = answer.link("next");
            }
        }
        // Pages the `last` link did not announce (or all of them, without one).
        while let Some(url) = next.take().filter(|url| !seen_urls.contains(url)) {
            if seen_urls.len() >= MAX_PAGES {
                return Err(GitHubError::InvalidResponse {
                    locator: session.locator.to_string(),
                    url,
                    reason: format!("more than {MAX_PAGES} pages of releases"),
                });
            }
            seen_urls.insert(url.clone());
            let (page, answer) = self.fetch_page(session, &url).await?;
            releases.extend(page);
            next = answer.link("next");
        }
        // A release published while the pages were read shifts the others by one.
        let mut tags = HashSet::new();
        releases.retain(|release| tags.insert(release.tag_name.clone()));
        Ok(releases)
    }

    /// The release for `tag`, trying every form the tag stands for: in the first page of the
    /// listing, then in every page.
    async fn release_by_tag(
        &self,
        session: &Session<'_>,
        tag: &str,
    ) -> Result<Release, GitHubError> {
        let tried = tag_candidates(session.locator.project_name.as_deref(), tag);
        let find = |releases: &[Release]| {
            tried.iter().find_map(|candidate| {
                releases
                    .iter()
                    .find(|release| !release.draft && &release.tag_name == candidate)
                    .cloned()
            })
        };
        let first = self.first_page(session).await?;
        if let Some(release) = find(&first.releases) {
            return Ok(release);
        }
        if first.next.is_some()
            && let Some(release) = find(&self.all_releases(session).await?)
        {
            return Ok(release);
        }
        Err(GitHubError::TagNotFound {
            locator: session.locator.to_string(),
            tried,
        })
    }
}
