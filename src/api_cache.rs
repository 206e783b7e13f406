//! Stored GitHub API answers, for conditional requests.
//!
//! Each successful API answer that carries an `ETag` is kept, with its body and `Link`
//! header, in one JSON file under `$WARPGATE_HOME/v1/http/`. The next request for the same URL
//! sends `If-None-Match`; a `304 Not Modified` answer is then served from the stored body
//! (and, for authenticated requests, does not count against GitHub's primary rate limit).
//!
//! - **Keys.** A file is named by the SHA-256 of the URL and whether a token was sent, never
//!   of the token itself; nothing here ever holds a token or an `Authorization` header.
//! - **Stale or damaged entries are harmless.** An entry that does not parse is ignored (a
//!   full request follows), and every plugin resolved from an answer is still verified by its
//!   bytes' sha256. Entries are written through a temp file and a rename, so a reader never
//!   sees half an entry.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::checksum::Checksum;

/// One stored API answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    /// The URL asked for.
    pub url: String,
    /// The answer's `ETag`, sent back as `If-None-Match`.
    pub etag: String,
    /// The answer's `Link` header, if any (pagination).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The answer's body (JSON text).
    pub body: String,
}

/// The folder of stored API answers (see the module docs).
#[derive(Clone, Debug)]
pub struct ApiCache {
    cache: Cache,
    dir: PathBuf,
}

impl ApiCache {
    /// The store in `cache` ([`Cache::http_dir`], created on first write).
    pub fn new(cache: &Cache) -> Self {
        Self {
            cache: cache.clone(),
            dir: cache.http_dir(),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn path(&self, url: &str, authenticated: bool) -> PathBuf {
        let key = format!(
            "{}\n{url}",
            if authenticated { "token" } else { "anonymous" }
        );
        self.dir
            .join(format!("{}.json", Checksum::of(key.as_bytes()).hex()))
    }

    /// The stored answer for `url` (asked with or without a token), if there is a usable one.
    pub fn get(&self, url: &str, authenticated: bool) -> Option<StoredAnswer> {
        let bytes = crate::fs::read_file(
            &self.path(url, authenticated),
            crate::fs::MAX_TEXT_SIZE,
            crate::fs::Links::Refuse,
        )
        .ok()?;
        serde_json::from_slice::<StoredAnswer>(&bytes)
            .ok()
            .filter(|answer| answer.url == url)
    }

    /// Stores `answer` for its URL; a failure is logged and otherwise ignored (the store is
    /// an optimisation).
    pub fn put(&self, answer: &StoredAnswer, authenticated: bool) {
        let path = self.path(&answer.url, authenticated);
        let result = (self.cache.ensure_layout().map_err(std::io::Error::other))
            .and_then(|()| fs_err::create_dir_all(&self.dir))
            .and_then(|()| {
                let bytes = serde_json::to_vec(answer).map_err(std::io::Error::other)?;
                crate::fs::write_atomically(&path, &bytes)
            });
        if let Err(error) = result {
            tracing::debug!(path = %path.display(), %error, "cannot store an API answer");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_keyed_by_url_and_token_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = ApiCache::new(&Cache::new(dir.path().join("home")));
        let answer = StoredAnswer {
            url: "https://api.example.com/repos/a/b/releases".into(),
            etag: "W/\"1\"".into(),
            link: None,
            body: "[]".into(),
        };
        assert_eq!(store.get(&answer.url, false), None);
        store.put(&answer, true);
        assert_eq!(store.get(&answer.url, true), Some(answer.clone()));
        assert_eq!(store.get(&answer.url, false), None);
        fs_err::write(store.path(&answer.url, true), b"{ half").unwrap();
        assert_eq!(store.get(&answer.url, true), None);
    }
}
