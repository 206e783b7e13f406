//! [`GitHubError`]: why a `github://` locator could not be resolved, with its hints.

use semver::{Version, VersionReq};

use super::TokenSource;
use crate::env;
use crate::http::HttpError;
use crate::release::backticked;

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
        "cannot resolve `{locator}`: no release tagged {pattern} that is not a draft or a prerelease"
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
        "cannot resolve `{locator}`: no release matches the version requirement `{requirement}`"
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
        "cannot resolve `{locator}`: release `{tag}` does not match the version requirement `{requirement}`"
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
        "cannot resolve `{locator}`: release `{tag}` has no `.wasm` asset; its assets are {}",
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
        "cannot resolve `{locator}`: release `{tag}` has several `.wasm` assets: {}",
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
        "cannot resolve `{locator}`: the GitHub API rate limit is exhausted{}",
        reset_note(*.reset_in_seconds)
    )]
    RateLimited {
        /// The locator being resolved.
        locator: String,
        /// Seconds until the limit resets, when known.
        reset_in_seconds: Option<u64>,
        /// The token that was sent, if any.
        token: TokenSource,
    },
    /// The rate limit left cannot cover the API requests a run needs.
    #[error(
        "resolving {plugins} plugin(s) from {repositories} GitHub repositories needs at least {needed} more API requests, but the rate limit allows only {remaining} more"
    )]
    BudgetExceeded {
        /// The plugins to resolve.
        plugins: usize,
        /// The distinct repositories they come from.
        repositories: usize,
        /// The fewest further requests the run needs.
        needed: u64,
        /// `X-RateLimit-Remaining`.
        remaining: u64,
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

impl crate::diagnostic::Diagnostic for GitHubError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NoReleases { seen, .. } => seen_hint(seen),
            Self::NoMatchingVersion { available, .. } => Some(available_hint(available)),
            Self::TagOutsideRequirement { .. } => {
                Some("remove the tag or the `version` requirement".into())
            }
            Self::NoWasmAsset { .. } => {
                Some("name the asset to use with `asset = \"<name>\"`".into())
            }
            Self::AmbiguousAsset { .. } => Some("choose one with `asset = \"<name>\"`".into()),
            Self::RateLimited { token, .. } => Some(rate_limit_hint(*token)),
            Self::BudgetExceeded { token, .. } => Some(budget_hint(*token)),
            Self::InvalidApiUrl { .. }
            | Self::RepoNotFound { .. }
            | Self::TagNotFound { .. }
            | Self::AssetNotFound { .. }
            | Self::InvalidResponse { .. }
            | Self::Http { .. } => None,
        }
    }
}

fn private_hint(token: TokenSource) -> String {
    match token {
        TokenSource::None => format!("or private: set `{}`", env::GITHUB_TOKEN),
        token => format!("or private, and {token} cannot see it"),
    }
}

/// The token variables, in the order they are read: `` `A`, `B` or `C` ``.
fn token_variables() -> String {
    let [first, second, third] = env::GITHUB_TOKEN_VARS;
    format!("`{first}`, `{second}` or `{third}`")
}

fn rate_limit_hint(token: TokenSource) -> String {
    match token {
        TokenSource::None => format!(
            "set {} to a GitHub token for a higher rate limit",
            token_variables()
        ),
        token => format!("{token} was used; wait for the limit to reset"),
    }
}

fn budget_hint(token: TokenSource) -> String {
    match token {
        TokenSource::None => rate_limit_hint(token),
        token => format!(
            "{token} was used; wait for the limit to reset, or use another token ({})",
            token_variables()
        ),
    }
}

fn reset_note(reset_in_seconds: Option<u64>) -> String {
    reset_in_seconds
        .map(|seconds| format!(" (it resets in {seconds} seconds)"))
        .unwrap_or_default()
}

fn backticked_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        backticked(items, ", ")
    }
}

fn seen_hint(seen: &[String]) -> Option<String> {
    (!seen.is_empty()).then(|| format!("other releases are tagged {}", backticked(seen, ", ")))
}

fn available_hint(available: &[Version]) -> String {
    if available.is_empty() {
        "there are no releases with a version".to_string()
    } else {
        let versions: Vec<String> = available.iter().map(Version::to_string).collect();
        format!("the newest versions are {}", backticked(&versions, ", "))
    }
}
