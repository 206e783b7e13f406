//! A loopback HTTPS server for tests: scripted responses, a request log, a test CA.
//!
//! ```ignore
//! let server = TestServer::start([
//!     ("/plugin.wasm", Route::from(Response::ok("bytes"))),
//!     ("/flaky", Route::sequence([Response::status(500), Response::ok("fine")])),
//! ]);
//! let client = server.http_client();
//! // … request server.url("/plugin.wasm") …
//! assert_eq!(server.hits("/flaky"), 2);
//! ```
//!
//! A route whose answer has an `ETag` answers a request whose `If-None-Match` names it with
//! `304 Not Modified` and no body (the log records the status).
//!
//! The server speaks just enough HTTP/1.1 (one request per connection, always
//! `Connection: close`) for tests to misbehave on purpose: delay, cut a body short, hang up.
//! It listens on `127.0.0.1:<random port>` with a certificate for both `127.0.0.1` and
//! `localhost`, so [`TestServer::alt_url`] reaches the same server under a *different host*
//! (for cross-host redirect and credential tests). The certificate is signed by a per-server
//! test CA whose PEM is in [`TestServer::ca_pem_path`] (for `SSL_CERT_FILE`).
//!
//! Loopback hosts never go through a proxy, so tests of proxies use
//! [`TestServer::empty_named`]: its URLs name [`NAMED_HOST`] and [`NAMED_ALT_HOST`] (the
//! certificate covers them too), which only [`TestProxy`](super::TestProxy) can reach: it
//! dials them as `127.0.0.1`. [`TestServer::empty_plain`] speaks plain `http://`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warpgate::http::{HttpClient, HttpOptions};

use super::listener::LoopbackListener;

/// The host name of [`TestServer::url`] on a [`TestServer::empty_named`] server; not
/// resolvable, only reachable through [`TestProxy`](super::TestProxy).
pub const NAMED_HOST: &str = "github.test";

/// The host name of [`TestServer::alt_url`] on a [`TestServer::empty_named`] server.
pub const NAMED_ALT_HOST: &str = "objects.test";

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    delay: Duration,
    truncate_to: Option<usize>,
    hang_up: bool,
    close_delimited: bool,
    trickle: Option<(usize, Duration)>,
}

impl Response {
    /// An empty answer with `status`.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
            truncate_to: None,
            hang_up: false,
            close_delimited: false,
            trickle: None,
        }
    }

    /// `200 OK` with `body`.
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self::status(200).body(body)
    }

    /// `200 OK` with a JSON body.
    pub fn json(value: &serde_json::Value) -> Self {
        Self::ok(serde_json::to_vec(value).unwrap()).header("content-type", "application/json")
    }

    /// `404 Not Found` with GitHub's JSON body.
    pub fn not_found() -> Self {
        Self::status(404)
            .header("content-type", "application/json")
            .body(r#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}"#)
    }

    /// `302 Found` to `location`.
    pub fn redirect(location: impl Into<String>) -> Self {
        Self::status(302).header("location", location)
    }

    /// Closes the connection after reading the request, without answering.
    pub fn hang_up() -> Self {
        Self {
            hang_up: true,
            ..Self::status(0)
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body (and so the `Content-Length`).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Waits this long before answering.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Announces the full `Content-Length` but closes after `bytes` bytes of the body.
    pub fn truncate_to(mut self, bytes: usize) -> Self {
        self.truncate_to = Some(bytes);
        self
    }

    /// Sends the body `bytes` at a time, waiting `interval` before each piece (the headers go
    /// at once). Stops when the client goes away.
    pub fn trickle(mut self, bytes: usize, interval: Duration) -> Self {
        assert!(bytes > 0);
        self.trickle = Some((bytes, interval));
        self
    }

    /// Sends no `Content-Length`: the body ends when the connection closes.
    pub fn close_delimited(mut self) -> Self {
        self.close_delimited = true;
        self
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(header, _)| header.eq_ignore_ascii_case(name))
    }
}

/// What a path answers: a sequence of responses, one per hit; the last one repeats.
#[derive(Clone, Debug)]
pub struct Route {
    responses: Vec<Response>,
}

impl Route {
    /// Answers the first hit with the first response, and so on; the last one repeats.
    pub fn sequence(responses: impl IntoIterator<Item = Response>) -> Self {
        let responses: Vec<Response> = responses.into_iter().collect();
        assert!(!responses.is_empty(), "a route needs at least one response");
        Self { responses }
    }
}

impl From<Response> for Route {
    fn from(response: Response) -> Self {
        Self::sequence([response])
    }
}

impl From<Vec<Response>> for Route {
    fn from(responses: Vec<Response>) -> Self {
        Self::sequence(responses)
    }
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// The request target: path and query, e.g. `/repos/a/b/releases?per_page=100`.
    pub path: String,
    /// The `Host` header, e.g. `127.0.0.1:4321` or `localhost:4321`.
    pub host: Option<String>,
    /// Every header, names in lowercase, in order.
    pub headers: Vec<(String, String)>,
    /// The status the server answered with (`304` for a matching `If-None-Match`).
    pub status: u16,
}

impl RecordedRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether the request was sent to the other name (`localhost` or [`NAMED_ALT_HOST`]; see
    /// [`TestServer::alt_url`]).
    pub fn is_alt_host(&self) -> bool {
        self.host
            .as_deref()
            .is_some_and(|host| host.starts_with("localhost") || host.starts_with(NAMED_ALT_HOST))
    }
}

#[derive(Default)]
struct State {
    routes: HashMap<String, (Route, usize)>,
    log: Vec<RecordedRequest>,
    intercept: Option<Response>,
    connections: usize,
    delay: std::time::Duration,
    extra_headers: Vec<(String, String)>,
}

impl State {
    /// The response for `target`: the intercept, the exact target, the path without query,
    /// else a 404.
    fn answer(&mut self, target: &str) -> Response {
        if let Some(response) = &self.intercept {
            return response.clone();
        }
        let path = target.split('?').next().unwrap_or(target);
        let key = if self.routes.contains_key(target) {
            target
        } else {
            path
        };
        match self.routes.get_mut(key) {
            Some((route, hits)) => {
                let index = (*hits).min(route.responses.len() - 1);
                *hits += 1;
                route.responses[index].clone()
            }
            None => Response::not_found(),
        }
    }
}

/// A running HTTPS server on 127.0.0.1; it stops when dropped.
pub struct TestServer {
    listener: LoopbackListener,
    state: Arc<Mutex<State>>,
    ca_pem: String,
    ca_file: tempfile::NamedTempFile,
    /// `https` or `http`.
    scheme: &'static str,
    /// The hosts of [`Self::url`] and [`Self::alt_url`].
    hosts: (&'static str, &'static str),
}

impl TestServer {
    /// Starts a server answering `routes` (keyed by path, or path + query for an exact match).
    pub fn start<P, R>(routes: impl IntoIterator<Item = (P, R)>) -> Self
    where
        P: Into<String>,
        R: Into<Route>,
    {
        let server = Self::empty();
        for (path, route) in routes {
            server.route(path, route);
        }
        server
    }

    /// Starts a server with no routes (every request gets a 404 until routes are added).
    pub fn empty() -> Self {
        Self::launch("https", ("127.0.0.1", "localhost"))
    }

    /// [`Self::empty`], with URLs on [`NAMED_HOST`] and [`NAMED_ALT_HOST`] instead of the
    /// loopback names: for tests that go through [`TestProxy`](super::TestProxy).
    pub fn empty_named() -> Self {
        Self::launch("https", (NAMED_HOST, NAMED_ALT_HOST))
    }

    /// [`Self::empty`] speaking plain `http://` (no TLS).
    pub fn empty_plain() -> Self {
        Self::launch("http", ("127.0.0.1", "localhost"))
    }

    fn launch(scheme: &'static str, hosts: (&'static str, &'static str)) -> Self {
        let ca = super::tls::TestCa::new(
            "warpgate test CA",
            &["127.0.0.1", "localhost", NAMED_HOST, NAMED_ALT_HOST],
        );
        let (ca_pem, tls) = (ca.ca_pem.clone(), ca.server_config());
        let mut ca_file = tempfile::Builder::new()
            .prefix("warpgate-test-ca-")
            .suffix(".pem")
            .tempfile()
            .unwrap();
        std::io::Write::write_all(&mut ca_file, ca_pem.as_bytes()).unwrap();

        let state = Arc::new(Mutex::new(State::default()));
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let connection_state = Arc::clone(&state);
        let listener = LoopbackListener::start("test-server", move |stream| {
            connection_state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .connections += 1;
            let acceptor = (scheme == "https").then(|| acceptor.clone());
            let state = Arc::clone(&connection_state);
            async move {
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve(stream, state).await;
                        }
                    }
                    None => serve(stream, state).await,
                }
            }
        });
        Self {
            listener,
            state,
            ca_pem,
            ca_file,
            scheme,
            hosts,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds (or replaces) what `path` answers; resets its hit count.
    pub fn route(&self, path: impl Into<String>, route: impl Into<Route>) -> &Self {
        let path = path.into();
        assert!(path.starts_with('/'), "route paths start with `/`: {path}");
        self.state().routes.insert(path, (route.into(), 0));
        self
    }

    /// Answers every request with `response` (e.g. a rate limit) until called with `None`.
    pub fn intercept(&self, response: Option<Response>) {
        self.state().intercept = response;
    }

    /// Adds `delay` to every answer (a latency-injecting server for benchmarks).
    pub fn delay_all(&self, delay: Duration) {
        self.state().delay = delay;
    }

    /// Adds header `name: value` to every answer that does not set it itself.
    pub fn header_all(&self, name: impl Into<String>, value: impl Into<String>) {
        self.state().extra_headers.push((name.into(), value.into()));
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    /// `https://127.0.0.1:<port><path>` (or the [`NAMED_HOST`], or `http://`; see the
    /// constructors).
    pub fn url(&self, path: &str) -> String {
        let (scheme, (host, _)) = (self.scheme, self.hosts);
        format!("{scheme}://{host}:{}{path}", self.listener.port())
    }

    /// `https://localhost:<port><path>` (or the [`NAMED_ALT_HOST`], or `http://`): the same
    /// server under another host name.
    pub fn alt_url(&self, path: &str) -> String {
        let (scheme, (_, host)) = (self.scheme, self.hosts);
        format!("{scheme}://{host}:{}{path}", self.listener.port())
    }

    /// The test CA's certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A file holding the test CA's certificate, for `SSL_CERT_FILE`.
    pub fn ca_pem_path(&self) -> &Path {
        self.ca_file.path()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().log.clone()
    }

    /// How many requests were received (0 proves no connection got as far as a request).
    pub fn request_count(&self) -> usize {
        self.state().log.len()
    }

    /// How many TCP connections were accepted (0 proves that no socket reached the server;
    /// a failed TLS handshake counts as a connection but not as a request).
    pub fn connection_count(&self) -> usize {
        self.state().connections
    }

    /// How many requests hit exactly `target` (path, or path + query).
    pub fn hits(&self, target: &str) -> usize {
        self.state()
            .log
            .iter()
            .filter(|request| {
                request.path == target || request.path.split('?').next() == Some(target)
            })
            .count()
    }

    /// Client options trusting the test CA, with tiny retry waits and no `SSL_CERT_FILE`
    /// lookup, so tests need no environment variables.
    pub fn http_options(&self) -> HttpOptions {
        HttpOptions {
            offline: None,
            extra_ca_file: Some(self.ca_pem_path().to_path_buf()),
            retry_backoff: Duration::from_millis(5),
            max_retry_wait: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(10),
            ..HttpOptions::default()
        }
    }

    /// A client built from [`Self::http_options`].
    pub fn http_client(&self) -> HttpClient {
        HttpClient::new(self.http_options()).unwrap()
    }

    /// Environment for a spawned `warpgate` process that talks to this server
    /// (`SSL_CERT_FILE`, and `NO_PROXY` so a proxy in the environment is bypassed).
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("SSL_CERT_FILE", self.ca_pem_path().into()),
            ("NO_PROXY", "127.0.0.1,localhost".into()),
            ("no_proxy", "127.0.0.1,localhost".into()),
        ]
    }
}

/// Reads one request, records it, answers it as scripted, and closes the connection.
async fn serve<S>(mut stream: S, state: Arc<Mutex<State>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    let end = loop {
        if let Some(end) = find(&head, b"\r\n\r\n") {
            break end;
        }
        if head.len() > 64 * 1024 {
            return;
        }
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).to_string();
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let path = request_line.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let request = RecordedRequest {
        host: headers
            .iter()
            .find(|(name, _)| name == "host")
            .map(|(_, value)| value.clone()),
        method,
        path,
        headers,
        status: 0,
    };
    // Drain a request body, if any (tests only send `GET`s, but be correct).
    let body_length: usize = request
        .header("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut received = head.len() - end - 4;
    while received < body_length {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => received += read,
        }
    }

    let response = {
        let mut state = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut response = state.answer(&request.path);
        // A conditional request whose `If-None-Match` names the answer's `ETag` gets a
        // bodiless `304 Not Modified` with the same headers, as GitHub answers.
        let etag = response
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("etag"))
            .map(|(_, value)| value.clone());
        if response.status == 200
            && let (Some(etag), Some(wanted)) = (etag, request.header("if-none-match"))
            && wanted.split(',').any(|candidate| candidate.trim() == etag)
        {
            response.status = 304;
            response.body.clear();
        }
        for (name, value) in &state.extra_headers {
            if !response.has_header(name) {
                response.headers.push((name.clone(), value.clone()));
            }
        }
        response.delay += state.delay;
        let mut recorded = request.clone();
        recorded.status = response.status;
        state.log.push(recorded);
        response
    };
    if !response.delay.is_zero() {
        tokio::time::sleep(response.delay).await;
    }
    if response.hang_up {
        let _ = stream.shutdown().await;
        return;
    }
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !response.has_header("content-length") && !response.close_delimited {
        out.push_str(&format!("content-length: {}\r\n", response.body.len()));
    }
    out.push_str("connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    let sent = response
        .truncate_to
        .unwrap_or(response.body.len())
        .min(response.body.len());
    let body = if request.method == "HEAD" {
        &[][..]
    } else {
        &response.body[..sent]
    };
    match response.trickle {
        Some((piece, interval)) => {
            if stream.write_all(&bytes).await.is_err() || stream.flush().await.is_err() {
                return;
            }
            for chunk in body.chunks(piece) {
                tokio::time::sleep(interval).await;
                if stream.write_all(chunk).await.is_err() || stream.flush().await.is_err() {
                    return;
                }
            }
        }
        None => {
            bytes.extend_from_slice(body);
            let _ = stream.write_all(&bytes).await;
        }
    }
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
