//! Talking to the GitHub REST API: the headers every request carries (media type, API version
//! and the token, bound to the API's origin), the rate limit an answer reports, and pagination
//! (`Link: rel="next"` / `rel="last"`).

use std::fmt;

use url::Url;

use super::MAX_PAGES;
use crate::http::{HeaderMap, HeaderValue, HttpError, parse_link};

/// The GitHub REST API version every request asks for.
pub const GITHUB_API_VERSION: &str = "2022-11-28";

/// A bearer token that may only ever be sent to one origin (scheme, host and port).
///
/// Its `Debug` output never shows the token.
#[derive(Clone)]
pub struct ApiToken {
    token: String,
    origin: url::Origin,
}

impl ApiToken {
    /// A token for the API whose base URL is `api_url`; it is sent to that origin only.
    pub fn new(token: impl Into<String>, api_url: &Url) -> Self {
        Self {
            token: token.into(),
            origin: api_url.origin(),
        }
    }

    /// Whether the token may be sent with a request to `url`: only to the exact origin
    /// (scheme, host and port) it was made for.
    pub fn is_for(&self, url: &Url) -> bool {
        self.origin.is_tuple() && url.origin() == self.origin
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("origin", &self.origin.ascii_serialization())
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The headers of a request for `url`: `Accept: application/vnd.github+json`,
/// `X-GitHub-Api-Version`, `Authorization: Bearer` when `token` is for this URL's origin
/// ([`ApiToken::is_for`]; marked sensitive, so it never shows in `Debug` output), and
/// `If-None-Match: etag` when `etag` is given.
pub fn request_headers(
    url: &str,
    token: Option<&ApiToken>,
    etag: Option<&str>,
) -> Result<HeaderMap, HttpError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        reqwest::header::ACCEPT,
        HeaderValue::from_static("application/vnd.github+json"),
    );
    headers.insert(
        "x-github-api-version",
        HeaderValue::from_static(GITHUB_API_VERSION),
    );
    let parsed = Url::parse(url).ok();
    if let Some(token) = token.filter(|token| parsed.as_ref().is_some_and(|url| token.is_for(url)))
    {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", token.token)).map_err(|_| {
                HttpError::InvalidUrl {
                    url: url.to_string(),
                    reason: "the API token contains characters not allowed in a header".into(),
                }
            })?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    if let Some(etag) = etag
        && let Ok(value) = HeaderValue::from_str(etag)
    {
        headers.insert(reqwest::header::IF_NONE_MATCH, value);
    }
    Ok(headers)
}

/// The `X-RateLimit-Remaining` header of `response` as a number.
pub fn rate_limit_remaining(response: &crate::http::Answer) -> Option<u64> {
    response
        .header("x-ratelimit-remaining")?
        .trim()
        .parse()
        .ok()
}

/// An API answer's body and `Link` header, fresh or from the [`ApiCache`].
pub(super) struct Answer {
    pub(super) body: Vec<u8>,
    pub(super) link: Option<String>,
}

impl Answer {
    pub(super) fn link(&self, rel: &str) -> Option<String> {
        self.link.as_deref().and_then(|link| parse_link(link, rel))
    }
}

/// The URLs of pages `next` to `last`, when both name their page with a `page` query
/// parameter and differ in nothing else.
pub(super) fn page_urls(next: &str, last: &str) -> Option<Vec<String>> {
    let page_of = |url: &Url| {
        url.query_pairs()
            .find(|(key, _)| key == "page")
            .and_then(|(_, value)| value.parse::<usize>().ok())
    };
    let (next_url, last_url) = (Url::parse(next).ok()?, Url::parse(last).ok()?);
    let (from, to) = (page_of(&next_url)?, page_of(&last_url)?);
    if to < from
        || to - from >= MAX_PAGES
        || with_page(&last_url, from) != with_page(&next_url, from)
    {
        return None;
    }
    Some(
        (from..=to)
            .map(|page| {
                if page == from {
                    next.to_string()
                } else if page == to {
                    last.to_string()
                } else {
                    with_page(&next_url, page)
                }
            })
            .collect(),
    )
}

/// `url` with its `page` query parameter set to `page`.
pub(super) fn with_page(url: &Url, page: usize) -> String {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(key, value)| {
            let value = if key == "page" {
                page.to_string()
            } else {
                value.into_owned()
            };
            (key.into_owned(), value)
        })
        .collect();
    let mut out = url.clone();
    out.query_pairs_mut().clear().extend_pairs(pairs);
    out.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_bound_to_its_origin() {
        let api = Url::parse("https://api.example.com/").unwrap();
        let token = ApiToken::new("secret-value", &api);
        assert!(token.is_for(&Url::parse("https://api.example.com/repos/a/b").unwrap()));
        assert!(token.is_for(&Url::parse("https://api.example.com:443/x").unwrap()));
        for other in [
            "https://api.example.com:8443/x",
            "http://api.example.com/x",
            "https://example.com/x",
            "https://api.example.com.evil.test/x",
        ] {
            assert!(!token.is_for(&Url::parse(other).unwrap()), "{other}");
        }
        assert!(!format!("{token:?}").contains("secret-value"));
    }

    #[test]
    fn pages_between_next_and_last() {
        let page =
            |n: usize| format!("https://api.example.com/repos/a/b/releases?per_page=100&page={n}");
        assert_eq!(
            page_urls(&page(2), &page(4)),
            Some(vec![page(2), page(3), page(4)])
        );
        assert_eq!(page_urls(&page(2), &page(2)), Some(vec![page(2)]));
        assert_eq!(page_urls(&page(3), &page(2)), None);
        assert_eq!(
            page_urls(
                &page(2),
                "https://api.example.com/repos/a/c/releases?per_page=100&page=4"
            ),
            None
        );
        assert_eq!(
            page_urls("https://x/a?cursor=abc", "https://x/a?cursor=def"),
            None
        );
    }
}
