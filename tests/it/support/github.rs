//! A fake GitHub REST API (releases only) on a [`TestServer`].
//!
//! ```ignore
//! let github = FakeGitHub::start();
//! github.release("acme/plugins", FakeRelease::new("hello@v1.2.0").wasm("hello.wasm", b"\0asm"));
//! let client = github.client();               // library tests
//! command.envs(github.env());                 // `warpgate` processes: GITHUB_API_URL, SSL_CERT_FILE
//! ```
//!
//! Served like the real API:
//! - `GET /repos/{o}/{r}`: the repository (404 for unknown ones);
//! - `GET /repos/{o}/{r}/releases?per_page=100[&page=N]`: newest first (the reverse of the
//!   order releases were added), [`FakeGitHub::page_size`] per page (default 30, so that
//!   pagination is easy to exercise), with `Link: <…>; rel="next"` headers;
//! - `GET /repos/{o}/{r}/releases/tags/{tag}`: one release (drafts excluded);
//! - asset downloads: `browser_download_url` is `https://127.0.0.1:<port>/{o}/{r}/releases/download/{tag}/{name}`,
//!   which 302-redirects to `https://localhost:<port>/objects/…` (another host, as GitHub
//!   redirects to `objects.githubusercontent.com`).
//!
//! API answers carry an `ETag` (a request naming it in `If-None-Match` gets a `304`).
//! [`FakeGitHub::rate_limit`] makes every request answer `403` with `x-ratelimit-remaining: 0`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use warpgate::checksum::Checksum;
use warpgate::github::GitHubClient;

use super::server::{Response, TestServer};

/// A release asset.
#[derive(Clone, Debug)]
pub struct FakeAsset {
    /// The file name.
    pub name: String,
    /// The bytes served.
    pub bytes: Vec<u8>,
    /// The API's `digest` field, e.g. `sha256:…`.
    pub digest: Option<String>,
}

impl FakeAsset {
    /// An asset without a digest.
    pub fn new(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            bytes: bytes.into(),
            digest: None,
        }
    }

    /// Adds the correct `sha256:` digest of the bytes.
    pub fn with_digest(mut self) -> Self {
        self.digest = Some(Checksum::of(&self.bytes).to_string());
        self
    }

    /// Sets the `digest` field to anything (e.g. a wrong one).
    pub fn digest(mut self, digest: impl Into<String>) -> Self {
        self.digest = Some(digest.into());
        self
    }
}

/// A release.
#[derive(Clone, Debug)]
pub struct FakeRelease {
    /// The tag.
    pub tag: String,
    /// Whether it is a draft.
    pub draft: bool,
    /// Whether it is flagged as a prerelease.
    pub prerelease: bool,
    /// Its assets.
    pub assets: Vec<FakeAsset>,
}

impl FakeRelease {
    /// A published release without assets.
    pub fn new(tag: impl Into<String>) -> Self {
        Self {
            tag: tag.into(),
            draft: false,
            prerelease: false,
            assets: Vec::new(),
        }
    }

    /// Marks it as a draft.
    pub fn draft(mut self) -> Self {
        self.draft = true;
        self
    }

    /// Flags it as a prerelease.
    pub fn prerelease(mut self) -> Self {
        self.prerelease = true;
        self
    }

    /// Adds an asset.
    pub fn asset(mut self, asset: FakeAsset) -> Self {
        self.assets.push(asset);
        self
    }

    /// Adds an asset with its digest.
    pub fn wasm(self, name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        self.asset(FakeAsset::new(name, bytes).with_digest())
    }
}

/// The fake API; see the module docs.
pub struct FakeGitHub {
    server: TestServer,
    repos: Mutex<BTreeMap<String, Vec<FakeRelease>>>,
    page_size: Mutex<usize>,
}

impl FakeGitHub {
    /// Starts a fake API with no repositories.
    pub fn start() -> Self {
        Self::on(TestServer::empty())
    }

    /// [`Self::start`] on [`TestServer::empty_named`]: the API and downloads on
    /// `github.test`, the objects on `objects.test`, reachable only through
    /// [`TestProxy`](super::TestProxy).
    pub fn start_named() -> Self {
        Self::on(TestServer::empty_named())
    }

    /// [`Self::start`] on [`TestServer::empty_plain`]: plain `http://` on loopback.
    pub fn start_plain() -> Self {
        Self::on(TestServer::empty_plain())
    }

    fn on(server: TestServer) -> Self {
        Self {
            server,
            repos: Mutex::new(BTreeMap::new()),
            page_size: Mutex::new(30),
        }
    }

    /// The server underneath (request log, extra routes).
    pub fn server(&self) -> &TestServer {
        &self.server
    }

    /// The API base URL, for `GITHUB_API_URL`.
    pub fn api_url(&self) -> String {
        self.server.url("")
    }

    /// A client for this API, trusting the test CA, without a token.
    pub fn client(&self) -> GitHubClient {
        GitHubClient::with_api_url(self.server.http_client(), self.api_url())
    }

    /// Environment for a spawned `warpgate` process using this API.
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        let mut env = self.server.env();
        env.push(("GITHUB_API_URL", self.api_url().into()));
        env
    }

    /// Sets how many releases a page holds (whatever `per_page` asks for).
    pub fn page_size(&self, size: usize) -> &Self {
        assert!(size > 0);
        *self.page_size.lock().unwrap() = size;
        let slugs: Vec<String> = self.repos.lock().unwrap().keys().cloned().collect();
        for slug in slugs {
            self.publish(&slug);
        }
        self
    }

    /// Creates an empty repository (`org/repo`).
    pub fn repo(&self, slug: &str) -> &Self {
        self.repos
            .lock()
            .unwrap()
            .entry(slug.to_string())
            .or_default();
        self.publish(slug);
        self
    }

    /// Adds a release (the newest so far) to `slug`, creating the repository if needed.
    pub fn release(&self, slug: &str, release: FakeRelease) -> &Self {
        self.repos
            .lock()
            .unwrap()
            .entry(slug.to_string())
            .or_default()
            .push(release);
        self.publish(slug);
        self
    }

    /// Makes every request answer with an exhausted rate limit (or stops doing so).
    pub fn rate_limit(&self, on: bool) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        self.server.intercept(on.then(|| {
            Response::status(403)
                .header("content-type", "application/json")
                .header("x-ratelimit-limit", "60")
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-reset", (now + 1800).to_string())
                .body(r#"{"message":"API rate limit exceeded for 127.0.0.1."}"#)
        }));
    }

    /// The `browser_download_url` of an asset.
    pub fn download_url(&self, slug: &str, tag: &str, name: &str) -> String {
        self.server.url(&download_path(slug, tag, name))
    }

    /// The URL a download redirects to (on the other host name).
    pub fn object_url(&self, slug: &str, tag: &str, name: &str) -> String {
        self.server.alt_url(&object_path(slug, tag, name))
    }

    /// The API paths requested so far (release listing pages, tags…), in order.
    pub fn api_requests(&self) -> Vec<String> {
        self.server
            .requests()
            .into_iter()
            .map(|request| request.path)
            .filter(|path| path.starts_with("/repos/"))
            .collect()
    }

    /// Registers every route of `slug` from the current model.
    fn publish(&self, slug: &str) {
        let releases = self.repos.lock().unwrap()[slug].clone();
        let page_size = *self.page_size.lock().unwrap();
        let base = format!("/repos/{slug}");
        let (owner, name) = slug.split_once('/').expect("slug is `org/repo`");
        self.server.route(
            base.clone(),
            Response::json(&json!({
                "name": name,
                "full_name": slug,
                "owner": { "login": owner },
                "private": false,
            })),
        );

        let newest_first: Vec<&FakeRelease> = releases.iter().rev().collect();
        let pages: Vec<&[&FakeRelease]> = if newest_first.is_empty() {
            vec![&[]]
        } else {
            newest_first.chunks(page_size).collect()
        };
        let page_path = |page: usize| format!("{base}/releases?per_page=100&page={page}");
        for (index, page) in pages.iter().enumerate() {
            let number = index + 1;
            let body = json!(
                page.iter()
                    .map(|release| self.release_json(slug, release))
                    .collect::<Vec<_>>()
            );
            let mut response = with_etag(Response::json(&body), &body);
            let mut links = Vec::new();
            if number < pages.len() {
                links.push(format!(
                    "<{}>; rel=\"next\"",
                    self.server.url(&page_path(number + 1))
                ));
                links.push(format!(
                    "<{}>; rel=\"last\"",
                    self.server.url(&page_path(pages.len()))
                ));
            }
            if number > 1 {
                links.push(format!(
                    "<{}>; rel=\"prev\"",
                    self.server.url(&page_path(number - 1))
                ));
                links.push(format!(
                    "<{}>; rel=\"first\"",
                    self.server.url(&page_path(1))
                ));
            }
            if !links.is_empty() {
                response = response.header("link", links.join(", "));
            }
            if number == 1 {
                self.server
                    .route(format!("{base}/releases?per_page=100"), response.clone());
            }
            self.server.route(page_path(number), response);
        }

        for release in &releases {
            if !release.draft {
                let body = self.release_json(slug, release);
                self.server.route(
                    format!("{base}/releases/tags/{}", encode_segment(&release.tag)),
                    with_etag(Response::json(&body), &body),
                );
            }
            for asset in &release.assets {
                self.server.route(
                    download_path(slug, &release.tag, &asset.name),
                    Response::redirect(self.object_url(slug, &release.tag, &asset.name)),
                );
                self.server.route(
                    object_path(slug, &release.tag, &asset.name),
                    Response::ok(asset.bytes.clone())
                        .header("content-type", "application/octet-stream"),
                );
            }
        }
    }

    fn release_json(&self, slug: &str, release: &FakeRelease) -> serde_json::Value {
        json!({
            "tag_name": release.tag,
            "name": release.tag,
            "draft": release.draft,
            "prerelease": release.prerelease,
            "assets": release.assets.iter().map(|asset| json!({
                "name": asset.name,
                "size": asset.bytes.len(),
                "digest": asset.digest,
                "content_type": "application/wasm",
                "browser_download_url": self.download_url(slug, &release.tag, &asset.name),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Adds an `ETag` that changes whenever `body` does (GitHub's are opaque, like this one).
fn with_etag(response: Response, body: &serde_json::Value) -> Response {
    let digest = Checksum::of(&serde_json::to_vec(body).unwrap()).hex();
    response.header("etag", format!("W/\"{}\"", &digest[..32]))
}

/// The API paths requested so far that were answered `304 Not Modified`.
pub fn not_modified(server: &TestServer) -> Vec<String> {
    server
        .requests()
        .into_iter()
        .filter(|request| request.status == 304)
        .map(|request| request.path)
        .collect()
}

fn download_path(slug: &str, tag: &str, name: &str) -> String {
    format!(
        "/{slug}/releases/download/{}/{}",
        encode_segment(tag),
        encode_segment(name)
    )
}

fn object_path(slug: &str, tag: &str, name: &str) -> String {
    format!(
        "/objects/{slug}/{}/{}",
        encode_segment(tag),
        encode_segment(name)
    )
}

/// Percent-encodes a path segment the way warpgate does (`@` stays, `/` does not).
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::new();
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@+!$&'()*,;=:".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
