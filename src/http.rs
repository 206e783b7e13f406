//! The one HTTP client: `reqwest` with rustls, retries, size caps and an offline switch.
//!
//! Every network access warpgate makes goes through [`HttpClient`], so the rules below hold
//! everywhere:
//!
//! - **Offline is a mode, not a probe.** With [`HttpOptions::offline`] set, every request fails
//!   at once with [`HttpError::Offline`], before a URL is even resolved: no socket is opened.
//! - **Trust.** The built-in webpki roots, plus every certificate in the PEM file named by
//!   [`HttpOptions::extra_ca_file`] (by default the file named by `SSL_CERT_FILE`). An unreadable
//!   or empty file is an error that names it, rather than a silent fallback.
//! - **Proxies** come from the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
//!   `NO_PROXY`, or their lowercase spellings), read the way `reqwest` reads them, except that
//!   loopback hosts (`localhost`, 127.0.0.0/8, `::1`) are always reached directly: a loopback
//!   server is on this machine, and a proxy would see what a plain `http://` request to it
//!   carries, an API token included.
//! - **Schemes.** A URL, and every redirect, must be `https://`, or `http://` to a loopback host
//!   ([`check_url_scheme`]). At most [`MAX_REDIRECTS`] redirects are followed; those of API
//!   requests ([`HttpClient::get_api`]) only within the requested URL's origin.
//! - **Credentials.** [`HttpClient::get_api`] sends the headers its caller built (the GitHub
//!   client binds its token to the API's origin, see `crate::github::ApiToken`); a header
//!   marked sensitive never appears in `Debug` output. API requests follow redirects only
//!   within the requested URL's origin, and on a redirect to another host or port `reqwest`
//!   drops the `Authorization` header (the integration tests check this against a real server).
//! - **Time limits**, modelled on Cargo's `http.timeout` and `http.low-speed-limit`:
//!   connecting may take [`HttpOptions::connect_timeout`]; the answer (headers) must arrive,
//!   and every read of a body must bring bytes, within [`HttpOptions::read_timeout`]; a body
//!   that brings fewer than [`HttpOptions::low_speed_limit`] bytes per second on average over
//!   a window of [`HttpOptions::low_speed_time`] is aborted ([`HttpError::TooSlow`]); and the
//!   whole request, retries and their waits included, must finish within
//!   [`HttpOptions::deadline`] ([`HttpError::DeadlineExceeded`]). [`HttpOptions::from_env`]
//!   reads them from `WARPGATE_HTTP_TIMEOUT`, `WARPGATE_HTTP_LOW_SPEED_LIMIT` and
//!   `WARPGATE_HTTP_DEADLINE`. Timeouts and too-slow bodies are retried like other transient
//!   failures (a stall is usually a dropped connection, and Cargo retries them too); the
//!   deadline is the bound on all of that and is never retried. The wait for a free slot to a
//!   host (see *Concurrency*) is not part of the deadline.
//! - **Retries.** Connect errors, timeouts, `5xx`, `429` and bodies cut short are retried up to
//!   [`HttpOptions::max_retries`] times with exponential backoff from
//!   [`HttpOptions::retry_backoff`]; a `Retry-After: <seconds>` header replaces the backoff.
//!   Every wait is capped by [`HttpOptions::max_retry_wait`]. Other `4xx` are not retried, and a
//!   `403`/`429` with `x-ratelimit-remaining: 0` fails at once with [`HttpError::RateLimited`]:
//!   the reset is usually minutes away. Certificate errors are not retried either.
//! - **Status is always checked**: a non-`2xx` final answer is an error carrying the start of
//!   the body; [`HttpClient::get_api`] also accepts `304 Not Modified` to a conditional request.
//! - **Concurrency.** At most [`HttpOptions::max_requests_per_host`] requests (redirects and
//!   body included) are in flight to one host at a time; callers may start as many as they
//!   like. Where the server offers HTTP/2 (ALPN), requests to it share connections.
//! - **Downloads** ([`HttpClient::download_to`]) stream into the destination while hashing,
//!   refuse bodies over [`HttpOptions::max_download_size`] (from `Content-Length` up front, and
//!   while streaming for bodies that lie or have none), and treat a body shorter than its
//!   `Content-Length` or a connection lost mid-body as truncated: the file is truncated and the
//!   download retried. Whatever fails, the destination may hold a partial body: callers
//!   download into a temp file and rename it only once verified.
//!
//! The client is asynchronous; callers that are not drive it from their own runtime.

#![warn(missing_docs)]

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use url::Url;

use crate::checksum::{Checksum, Hasher};
use crate::env;
use crate::locator::check_url_scheme;

mod request;
pub use request::{Answer, Request};
pub use reqwest::header::{HeaderMap, HeaderValue};

/// The most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 10;

/// The `User-Agent` sent with every request.
pub const USER_AGENT: &str = concat!("warpgate/", env!("CARGO_PKG_VERSION"));

/// The default of [`HttpOptions::max_requests_per_host`]: enough for a hundred plugins to
/// take a few round trips, and under GitHub's limit of 100 concurrent API requests.
pub const DEFAULT_REQUESTS_PER_HOST: usize = 64;

/// How much of an error response's body is kept in [`HttpError::Status`].
const BODY_START_LEN: usize = 200;

/// The default of [`HttpOptions::connect_timeout`], [`HttpOptions::read_timeout`] and
/// [`HttpOptions::low_speed_time`] (`WARPGATE_HTTP_TIMEOUT`): Cargo's `http.timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The default of [`HttpOptions::low_speed_limit`] in bytes per second
/// (`WARPGATE_HTTP_LOW_SPEED_LIMIT`): Cargo's `http.low-speed-limit`.
pub const DEFAULT_LOW_SPEED_LIMIT: u64 = 10;

/// The default of [`HttpOptions::deadline`] (`WARPGATE_HTTP_DEADLINE`): ten minutes. Long
/// enough for a plugin of tens of MiB on a slow link (50 MiB at 100 KiB/s takes under nine
/// minutes); short enough that a server trickling just above the low-speed limit cannot hold
/// a `lock`, `fetch` or `cargo build` for longer than that per request.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);

/// Hosts always reached without a proxy, in `NO_PROXY` syntax: every loopback host.
const LOOPBACK_NO_PROXY: &str = "localhost,127.0.0.0/8,::1";

/// Settings for an [`HttpClient`].
///
/// [`Default`] reads `SSL_CERT_FILE` for [`extra_ca_file`](Self::extra_ca_file) and nothing
/// else; [`HttpClient::from_env`] also reads the offline variables.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// When set, why network access is disabled (for example "`--offline`" or
    /// "`WARPGATE_OFFLINE=1`"); every request then fails with [`HttpError::Offline`].
    pub offline: Option<String>,
    /// How long establishing a connection (TCP + TLS) may take.
    pub connect_timeout: Duration,
    /// How long the answer (its headers, redirects included) may take once the request is
    /// sent, and how long a read may wait for the next bytes of a body.
    pub read_timeout: Duration,
    /// The window of the low-speed check: a body must bring at least
    /// [`low_speed_limit`](Self::low_speed_limit) bytes per second on average over each
    /// window of this length.
    pub low_speed_time: Duration,
    /// The lowest average speed in bytes per second a body may have over a window of
    /// [`low_speed_time`](Self::low_speed_time); `0` turns the check off.
    pub low_speed_limit: u64,
    /// The longest one request may take, retries and their waits included; `None` for no
    /// limit.
    pub deadline: Option<Duration>,
    /// How many times a failed request is retried (so at most `max_retries + 1` attempts).
    pub max_retries: u32,
    /// The wait before the first retry; it doubles for each further retry.
    pub retry_backoff: Duration,
    /// The longest wait before a retry, also for a server's `Retry-After`.
    pub max_retry_wait: Duration,
    /// The largest body accepted, for downloads and API responses alike.
    pub max_download_size: u64,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// A PEM file whose certificates are trusted on top of the built-in roots.
    pub extra_ca_file: Option<PathBuf>,
    /// How many requests may be in flight to one host (by the URL asked for) at once.
    pub max_requests_per_host: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            offline: None,
            connect_timeout: DEFAULT_TIMEOUT,
            read_timeout: DEFAULT_TIMEOUT,
            low_speed_time: DEFAULT_TIMEOUT,
            low_speed_limit: DEFAULT_LOW_SPEED_LIMIT,
            deadline: Some(DEFAULT_DEADLINE),
            max_retries: 3,
            retry_backoff: Duration::from_millis(200),
            max_retry_wait: Duration::from_secs(60),
            max_download_size: 256 * 1024 * 1024,
            user_agent: USER_AGENT.to_string(),
            extra_ca_file: env::var(env::SSL_CERT_FILE).map(PathBuf::from),
            max_requests_per_host: DEFAULT_REQUESTS_PER_HOST,
        }
    }
}

impl HttpOptions {
    /// The default options, made offline if `WARPGATE_OFFLINE` or `CARGO_NET_OFFLINE` asks so,
    /// with the time limits of `WARPGATE_HTTP_TIMEOUT`, `WARPGATE_HTTP_LOW_SPEED_LIMIT` and
    /// `WARPGATE_HTTP_DEADLINE` ([`Self::with_limits_from_env`]).
    pub fn from_env() -> Result<Self, HttpError> {
        Self::offline_from_env().with_limits_from_env()
    }

    /// The default options, made offline if `WARPGATE_OFFLINE` or `CARGO_NET_OFFLINE` asks so;
    /// no other variable is read (but see [`Default`]).
    pub fn offline_from_env() -> Self {
        Self {
            offline: env::offline_reason(),
            ..Self::default()
        }
    }

    /// These options with the time limits set by the environment, each unset variable
    /// leaving its option as it is:
    ///
    /// - `WARPGATE_HTTP_TIMEOUT` (whole seconds, at least 1) sets
    ///   [`connect_timeout`](Self::connect_timeout), [`read_timeout`](Self::read_timeout)
    ///   and [`low_speed_time`](Self::low_speed_time), as Cargo's `http.timeout` does;
    /// - `WARPGATE_HTTP_LOW_SPEED_LIMIT` (whole bytes per second, `0` for no check) sets
    ///   [`low_speed_limit`](Self::low_speed_limit);
    /// - `WARPGATE_HTTP_DEADLINE` (whole seconds, `0` for none) sets
    ///   [`deadline`](Self::deadline).
    ///
    /// A value that is not such a number is an [`HttpError::InvalidSetting`] naming the
    /// variable.
    pub fn with_limits_from_env(mut self) -> Result<Self, HttpError> {
        if let Some(seconds) = number_from_env(
            env::WARPGATE_HTTP_TIMEOUT,
            1,
            "a whole number of seconds from 1 to 1000000000 (default `30`)",
        )? {
            let timeout = Duration::from_secs(seconds);
            self.connect_timeout = timeout;
            self.read_timeout = timeout;
            self.low_speed_time = timeout;
        }
        if let Some(limit) = number_from_env(
            env::WARPGATE_HTTP_LOW_SPEED_LIMIT,
            0,
            "a whole number of bytes per second from 0 (no check) to 1000000000 (default `10`)",
        )? {
            self.low_speed_limit = limit;
        }
        if let Some(seconds) = number_from_env(
            env::WARPGATE_HTTP_DEADLINE,
            0,
            "a whole number of seconds from 0 (no deadline) to 1000000000 (default `600`)",
        )? {
            self.deadline = (seconds > 0).then(|| Duration::from_secs(seconds));
        }
        Ok(self)
    }
}

/// The largest number of seconds accepted from the environment (about 31 years), so that
/// every deadline computed from one stays representable.
const MAX_ENV_NUMBER: u64 = 1_000_000_000;

/// The whole number in variable `name`, if set: at least `min`, at most [`MAX_ENV_NUMBER`].
/// `expected` says so in words for the error, with the default.
fn number_from_env(
    name: &'static str,
    min: u64,
    expected: &'static str,
) -> Result<Option<u64>, HttpError> {
    let Some(value) = env::var(name) else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(number) if (min..=MAX_ENV_NUMBER).contains(&number) => Ok(Some(number)),
        _ => Err(HttpError::InvalidSetting {
            name: name.to_string(),
            value,
            expected,
        }),
    }
}

/// Finds the `rel="next"` URL in one `Link` header value.
#[cfg(test)]
fn parse_next_link(value: &str) -> Option<String> {
    parse_link(value, "next")
}

/// Finds the URL with relation `rel` (`next`, `last`, …) in one `Link` header value.
pub fn parse_link(value: &str, rel: &str) -> Option<String> {
    value.split(',').find_map(|entry| {
        let mut parts = entry.split(';');
        let target = parts.next()?.trim();
        let target = target.strip_prefix('<')?.strip_suffix('>')?;
        let matches = parts.any(|param| {
            let param = param.trim();
            param
                .strip_prefix("rel=")
                .map(|rels| rels.trim_matches('"'))
                .is_some_and(|rels| rels.split_whitespace().any(|found| found == rel))
        });
        matches.then(|| target.to_string())
    })
}

/// What [`HttpClient::download_to`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Downloaded {
    /// The SHA-256 of the bytes written.
    pub checksum: Checksum,
    /// How many bytes were written.
    pub size: u64,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Network access is disabled; no connection was attempted.
    #[error("cannot fetch `{url}`: network access is disabled by {reason}")]
    Offline {
        /// The URL that was asked for.
        url: String,
        /// What disabled the network, e.g. "`--offline`".
        reason: String,
    },
    /// The URL does not parse.
    #[error("invalid URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL's scheme is refused (plain `http://` to a non-loopback host, or not HTTP at all).
    #[error("refusing to fetch `{url}`: {reason}")]
    InsecureUrl {
        /// The URL as given.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// A redirect pointed somewhere refused.
    #[error("refusing the redirect from `{url}` to `{location}`: {reason}")]
    InsecureRedirect {
        /// The URL that was asked for.
        url: String,
        /// Where the server redirected to.
        location: String,
        /// Why it is refused.
        reason: String,
    },
    /// The final answer was not a success.
    #[error("`{url}` answered with HTTP status {status}{}", body_suffix(.body_start))]
    Status {
        /// The URL that was asked for.
        url: String,
        /// The status of the last answer.
        status: u16,
        /// The start of the response body, for context.
        body_start: String,
    },
    /// A rate limit was hit. The hint is generic: downloads never carry a token, and the GitHub
    /// client turns API rate limits into its own error, whose hint names the token variables.
    #[error(
        "rate limit exceeded when fetching `{url}`{}",
        reset_suffix(*.reset_in_seconds)
    )]
    RateLimited {
        /// The URL that was asked for.
        url: String,
        /// Seconds until the limit resets, from `x-ratelimit-reset` or `Retry-After`.
        reset_in_seconds: Option<u64>,
    },
    /// The body is larger than [`HttpOptions::max_download_size`].
    #[error("`{url}` is larger than the download size limit of {limit} bytes{}", size_suffix(*.size))]
    TooLarge {
        /// The URL that was asked for.
        url: String,
        /// The limit in bytes.
        limit: u64,
        /// The announced size, when the server sent a `Content-Length`.
        size: Option<u64>,
    },
    /// The body ended early, on every attempt.
    #[error(
        "the download of `{url}` was cut short: received {received} {}",
        expected_suffix(*.expected)
    )]
    Truncated {
        /// The URL that was asked for.
        url: String,
        /// The announced `Content-Length`, if any.
        expected: Option<u64>,
        /// The bytes received on the last attempt.
        received: u64,
    },
    /// The answer, or the next bytes of a body, did not come within the timeout
    /// ([`HttpOptions::connect_timeout`] or [`HttpOptions::read_timeout`]), on every attempt.
    #[error(
        "no data from `{url}` for {}",
        seconds(*.timeout)
    )]
    TimedOut {
        /// The URL that was asked for.
        url: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// A body averaged fewer than [`HttpOptions::low_speed_limit`] bytes per second over a
    /// window of [`HttpOptions::low_speed_time`], on every attempt.
    #[error(
        "the transfer from `{url}` is too slow: {received} bytes in {}, under the low-speed limit of {limit} bytes per second",
        seconds(*.window)
    )]
    TooSlow {
        /// The URL that was asked for.
        url: String,
        /// The limit in bytes per second.
        limit: u64,
        /// The window the average is taken over.
        window: Duration,
        /// The bytes received in the last window.
        received: u64,
    },
    /// The request, retries included, took longer than [`HttpOptions::deadline`]. Not
    /// retried: the deadline is the bound on every retry.
    #[error(
        "`{url}` did not finish within the deadline of {}",
        seconds(*.deadline)
    )]
    DeadlineExceeded {
        /// The URL that was asked for.
        url: String,
        /// The deadline.
        deadline: Duration,
    },
    /// An environment variable that configures the client holds an unusable value.
    #[error(
        "invalid `{name}` value `{}`: expected {expected}",
        .value.escape_debug()
    )]
    InvalidSetting {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// What it should hold (and the default, if there is one).
        expected: &'static str,
    },
    /// Writing the destination file failed.
    #[error("failed to write `{}`", .path.display())]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The request failed without an answer (connection, TLS, timeout, too many redirects).
    #[error("request to `{url}` failed")]
    Request {
        /// The URL that was asked for.
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The extra root certificates could not be loaded.
    #[error(
        "failed to load root certificates from `{}`: {reason}",
        .path.display()
    )]
    Certificates {
        /// The PEM file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("failed to set up the HTTP client")]
    Client {
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
}

impl crate::diagnostic::Diagnostic for HttpError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::RateLimited { .. } => {
                Some("wait until the limit resets, then run the command again".into())
            }
            Self::TimedOut { .. } => Some(format!(
                "a server this slow needs a larger `{}` (seconds)",
                env::WARPGATE_HTTP_TIMEOUT
            )),
            Self::TooSlow { .. } => Some(format!(
                "allow slower transfers with `{}` (bytes per second, `0` turns the check off) or a longer window with `{}` (seconds)",
                env::WARPGATE_HTTP_LOW_SPEED_LIMIT,
                env::WARPGATE_HTTP_TIMEOUT
            )),
            Self::DeadlineExceeded { .. } => Some(format!(
                "allow longer requests with `{}` (seconds, `0` means no deadline)",
                env::WARPGATE_HTTP_DEADLINE
            )),
            Self::InvalidSetting { name, .. } => Some(format!("correct `{name}`, or unset it")),
            Self::Certificates { .. } => Some(format!(
                "point `{}` at a readable PEM file of certificates, or unset it",
                env::SSL_CERT_FILE
            )),
            _ => None,
        }
    }
}

/// `2 s`, or `1.5 s` for a duration that is not a whole number of seconds.
fn seconds(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

impl HttpError {
    /// Whether the server was too slow: [`HttpError::TimedOut`], [`HttpError::TooSlow`] or
    /// [`HttpError::DeadlineExceeded`].
    pub fn is_too_slow(&self) -> bool {
        matches!(
            self,
            Self::TimedOut { .. } | Self::TooSlow { .. } | Self::DeadlineExceeded { .. }
        )
    }
}

fn body_suffix(body_start: &str) -> String {
    if body_start.is_empty() {
        String::new()
    } else {
        format!(": {body_start}")
    }
}

fn reset_suffix(reset_in_seconds: Option<u64>) -> String {
    reset_in_seconds
        .map(|seconds| format!(" (it resets in {seconds} seconds)"))
        .unwrap_or_default()
}

fn size_suffix(size: Option<u64>) -> String {
    size.map(|size| format!(" (it is {size} bytes)"))
        .unwrap_or_default()
}

fn expected_suffix(expected: Option<u64>) -> String {
    match expected {
        Some(expected) => format!("of {expected} bytes"),
        None => "bytes before the connection failed".to_string(),
    }
}

/// The error a redirect policy returns for a refused redirect; found again in the source chain.
#[derive(Debug)]
struct RedirectRefused {
    location: String,
    reason: String,
}

impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "redirect to `{}` refused: {}",
            self.location, self.reason
        )
    }
}

impl StdError for RedirectRefused {}

/// The HTTP client. Cheap to clone (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: reqwest::Client,
    /// For API requests: redirects stay on the requested URL's origin.
    api: reqwest::Client,
    options: HttpOptions,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// How reading a body went wrong.
enum BodyError {
    /// Over [`HttpOptions::max_download_size`].
    TooLarge { size: Option<u64> },
    /// Fewer bytes than announced, or the connection failed mid-body.
    Short {
        received: u64,
        expected: Option<u64>,
    },
    /// No bytes for [`HttpOptions::read_timeout`].
    TimedOut,
    /// Under [`HttpOptions::low_speed_limit`] over a window: `received` bytes in it.
    TooSlow { received: u64 },
    /// Writing the bytes out failed.
    Write(io::Error),
}

impl HttpClient {
    /// Builds a client; fails if the extra root certificates cannot be loaded, or if a proxy
    /// variable holds no usable URL (neither is read at all when offline).
    pub fn new(options: HttpOptions) -> Result<Self, HttpError> {
        // Offline, no connection is ever made, so a broken `SSL_CERT_FILE` does not matter.
        let certificates = match options
            .extra_ca_file
            .as_ref()
            .filter(|_| options.offline.is_none())
        {
            Some(path) => load_certificates(path)?,
            None => Vec::new(),
        };
        let proxies = match options.offline {
            Some(_) => Vec::new(),
            None => proxies_from_env()?,
        };
        let build = |same_origin: bool| {
            // `no_proxy` drops the proxies `reqwest` would read itself; ours keep loopback
            // hosts out of every proxy.
            let mut builder = reqwest::Client::builder()
                .user_agent(options.user_agent.clone())
                .connect_timeout(options.connect_timeout)
                .read_timeout(options.read_timeout)
                .redirect(redirect_policy(same_origin))
                .tls_built_in_root_certs(true)
                .no_proxy();
            for proxy in &proxies {
                builder = builder.proxy(proxy.clone());
            }
            for certificate in &certificates {
                builder = builder.add_root_certificate(certificate.clone());
            }
            builder
                .build()
                .map_err(|source| HttpError::Client { source })
        };
        let (inner, api) = (build(false)?, build(true)?);
        Ok(Self {
            inner,
            api,
            options,
            hosts: Arc::default(),
        })
    }

    /// Waits for a free slot among the requests to `url`'s host.
    async fn host_permit(&self, url: &Url) -> OwnedSemaphorePermit {
        let host = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        );
        let semaphore = {
            let mut hosts = self
                .hosts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            hosts
                .entry(host)
                .or_insert_with(|| {
                    Arc::new(Semaphore::new(self.options.max_requests_per_host.max(1)))
                })
                .clone()
        };
        semaphore
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// A client with [`HttpOptions::from_env`]: offline when `WARPGATE_OFFLINE` or
    /// `CARGO_NET_OFFLINE` says so, extra roots from `SSL_CERT_FILE`, time limits from
    /// `WARPGATE_HTTP_*`.
    pub fn from_env() -> Result<Self, HttpError> {
        Self::new(HttpOptions::from_env()?)
    }

    /// The options the client was built with.
    pub fn options(&self) -> &HttpOptions {
        &self.options
    }

    /// Whether network access is disabled.
    pub fn is_offline(&self) -> bool {
        self.options.offline.is_some()
    }

    /// Why network access is disabled (for example "`--offline`"), if it is.
    pub fn offline_reason(&self) -> Option<&str> {
        self.options.offline.as_deref()
    }

    /// `GET`s a JSON API URL with `headers` (the API's own: `Accept`, version, credentials)
    /// and reads the whole body. Redirects stay within the URL's origin. With
    /// `If-None-Match` among `headers`, a `304 Not Modified` answer is returned too, with an
    /// empty body ([`Answer::is_not_modified`]).
    pub async fn get_api(&self, url: &str, headers: &HeaderMap) -> Result<Answer, HttpError> {
        let parsed = self.check_url(url)?;
        let conditional = headers.contains_key(header::IF_NONE_MATCH);
        let _permit = self.host_permit(&parsed).await;
        self.within_deadline(url, async {
            let mut attempt = 0;
            loop {
                let response = self
                    .send(&self.api, url, &parsed, headers, conditional, &mut attempt)
                    .await?;
                let final_url = response.url().to_string();
                let status = response.status().as_u16();
                let response_headers = response.headers().clone();
                let mut body = Vec::new();
                match self
                    .read_body(response, &mut body, &mut Hasher::new(), &|_, _| {})
                    .await
                {
                    Ok(()) => {
                        return Ok(Answer {
                            url: final_url,
                            status,
                            headers: response_headers,
                            body,
                        });
                    }
                    Err(error) => {
                        self.after_body_error(url, None, error, &mut attempt)
                            .await?;
                    }
                }
            }
        })
        .await
    }

    /// Downloads `url` into `dest` (created or truncated), hashing as it streams.
    ///
    /// `progress(received, total)` is called as bytes arrive (`total` from `Content-Length`).
    /// On error `dest` may hold a partial body: download into a temporary file and rename it
    /// once verified.
    #[expect(
        clippy::disallowed_methods,
        reason = "each error is wrapped with the path it concerns; fs_err would name it twice"
    )]
    pub async fn download_to(
        &self,
        url: &str,
        dest: &Path,
        progress: &(dyn Fn(u64, Option<u64>) + Send + Sync),
    ) -> Result<Downloaded, HttpError> {
        let parsed = self.check_url(url)?;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        let io_error = |source| HttpError::Io {
            path: dest.to_path_buf(),
            source,
        };
        let _permit = self.host_permit(&parsed).await;
        self.within_deadline(url, async {
            let mut attempt = 0;
            loop {
                let response = self
                    .send(&self.inner, url, &parsed, &headers, false, &mut attempt)
                    .await?;
                if let Some(size) = response
                    .content_length()
                    .filter(|size| *size > self.options.max_download_size)
                {
                    return Err(self.too_large(url, Some(size)));
                }
                let mut file = tokio::fs::File::create(dest).await.map_err(io_error)?;
                let mut hasher = Hasher::new();
                match self
                    .read_body(response, &mut file, &mut hasher, progress)
                    .await
                {
                    Ok(()) => {
                        let (checksum, size) = hasher.finish();
                        return Ok(Downloaded { checksum, size });
                    }
                    Err(error) => {
                        drop(file);
                        self.after_body_error(url, Some(dest), error, &mut attempt)
                            .await?;
                    }
                }
            }
        })
        .await
    }

    /// Runs `request` (every attempt of one request) under [`HttpOptions::deadline`].
    async fn within_deadline<T>(
        &self,
        url: &str,
        request: impl Future<Output = Result<T, HttpError>>,
    ) -> Result<T, HttpError> {
        let Some(deadline) = self.options.deadline else {
            return request.await;
        };
        tokio::time::timeout(deadline, request)
            .await
            .unwrap_or_else(|_| {
                tracing::debug!(%url, ?deadline, "deadline exceeded");
                Err(HttpError::DeadlineExceeded {
                    url: url.to_string(),
                    deadline,
                })
            })
    }

    fn too_large(&self, url: &str, size: Option<u64>) -> HttpError {
        HttpError::TooLarge {
            url: url.to_string(),
            limit: self.options.max_download_size,
            size,
        }
    }

    /// Decides what a body that went wrong means: an error, or (after a wait) a retry.
    async fn after_body_error(
        &self,
        url: &str,
        dest: Option<&Path>,
        error: BodyError,
        attempt: &mut u32,
    ) -> Result<(), HttpError> {
        match error {
            BodyError::TooLarge { size } => Err(self.too_large(url, size)),
            BodyError::Write(source) => Err(HttpError::Io {
                path: dest.map(Path::to_path_buf).unwrap_or_default(),
                source,
            }),
            BodyError::Short { received, expected } if *attempt < self.options.max_retries => {
                tracing::debug!(%url, received, ?expected, "body cut short; retrying");
                tokio::time::sleep(self.backoff(*attempt)).await;
                *attempt += 1;
                Ok(())
            }
            BodyError::Short { received, expected } => Err(HttpError::Truncated {
                url: url.to_string(),
                expected,
                received,
            }),
            BodyError::TimedOut | BodyError::TooSlow { .. }
                if *attempt < self.options.max_retries =>
            {
                tracing::debug!(%url, "body too slow; retrying");
                tokio::time::sleep(self.backoff(*attempt)).await;
                *attempt += 1;
                Ok(())
            }
            BodyError::TimedOut => Err(HttpError::TimedOut {
                url: url.to_string(),
                timeout: self.options.read_timeout,
            }),
            BodyError::TooSlow { received } => Err(HttpError::TooSlow {
                url: url.to_string(),
                limit: self.options.low_speed_limit,
                window: self.options.low_speed_time,
                received,
            }),
        }
    }

    /// Streams a body into `out` and `hasher`, enforcing the size limit and the
    /// `Content-Length`, and reporting `progress(received, total)`.
    async fn read_body(
        &self,
        response: reqwest::Response,
        out: &mut (impl AsyncWrite + Unpin),
        hasher: &mut Hasher,
        progress: &(dyn Fn(u64, Option<u64>) + Send + Sync),
    ) -> Result<(), BodyError> {
        let expected = response.content_length();
        let limit = self.options.max_download_size;
        if let Some(size) = expected.filter(|size| *size > limit) {
            return Err(BodyError::TooLarge { size: Some(size) });
        }
        progress(0, expected);
        let mut stream = response.bytes_stream();
        let mut window =
            LowSpeedWindow::start(self.options.low_speed_limit, self.options.low_speed_time);
        loop {
            let next = match window.as_ref().map(|window| window.end) {
                Some(end) => match tokio::time::timeout_at(end, stream.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        if let Some(window) = &mut window {
                            window.record(0)?;
                        }
                        continue;
                    }
                },
                None => stream.next().await,
            };
            let Some(chunk) = next else { break };
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) if error.is_timeout() => return Err(BodyError::TimedOut),
                Err(_) => {
                    return Err(BodyError::Short {
                        received: hasher.len(),
                        expected,
                    });
                }
            };
            if hasher.len() + chunk.len() as u64 > limit {
                return Err(BodyError::TooLarge { size: None });
            }
            out.write_all(&chunk).await.map_err(BodyError::Write)?;
            hasher.update(&chunk);
            progress(hasher.len(), expected);
            if let Some(window) = &mut window {
                window.record(chunk.len() as u64)?;
            }
        }
        out.flush().await.map_err(BodyError::Write)?;
        if expected.is_some_and(|size| size != hasher.len()) {
            return Err(BodyError::Short {
                received: hasher.len(),
                expected,
            });
        }
        Ok(())
    }

    /// Checks offline mode, then parses `url` and checks its scheme.
    fn check_url(&self, url: &str) -> Result<Url, HttpError> {
        if let Some(reason) = &self.options.offline {
            return Err(HttpError::Offline {
                url: url.to_string(),
                reason: reason.clone(),
            });
        }
        let parsed = Url::parse(url).map_err(|error| HttpError::InvalidUrl {
            url: url.to_string(),
            reason: error.to_string(),
        })?;
        check_url_scheme(&parsed).map_err(|reason| HttpError::InsecureUrl {
            url: url.to_string(),
            reason,
        })?;
        Ok(parsed)
    }

    /// Sends a `GET` until it gets a `2xx` answer (or a `304` when `conditional`) or a final
    /// error, counting attempts in `attempt` (shared with the body retries of the caller).
    async fn send(
        &self,
        client: &reqwest::Client,
        url: &str,
        parsed: &Url,
        headers: &HeaderMap,
        conditional: bool,
        attempt: &mut u32,
    ) -> Result<reqwest::Response, HttpError> {
        loop {
            let result = client
                .get(parsed.clone())
                .headers(headers.clone())
                .send()
                .await;
            let can_retry = *attempt < self.options.max_retries;
            let wait = match result {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) if conditional && response.status() == StatusCode::NOT_MODIFIED => {
                    return Ok(response);
                }
                Ok(response) => {
                    let status = response.status();
                    let rate_limited = matches!(
                        status,
                        StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
                    );
                    let remaining = header_u64(response.headers(), "x-ratelimit-remaining");
                    let retry_after = header_u64(response.headers(), header::RETRY_AFTER.as_str());
                    if rate_limited && remaining == Some(0) {
                        return Err(HttpError::RateLimited {
                            url: url.to_string(),
                            reset_in_seconds: reset_in_seconds(response.headers()).or(retry_after),
                        });
                    }
                    let retryable = status.is_server_error()
                        || status == StatusCode::TOO_MANY_REQUESTS
                        || (status == StatusCode::FORBIDDEN && retry_after.is_some());
                    if retryable && can_retry {
                        tracing::debug!(%url, %status, "retrying after an error status");
                        retry_after
                            .map(|seconds| {
                                Duration::from_secs(seconds).min(self.options.max_retry_wait)
                            })
                            .unwrap_or_else(|| self.backoff(*attempt))
                    } else if rate_limited && (retry_after.is_some() || status.as_u16() == 429) {
                        return Err(HttpError::RateLimited {
                            url: url.to_string(),
                            reset_in_seconds: retry_after,
                        });
                    } else {
                        return Err(HttpError::Status {
                            url: url.to_string(),
                            status: status.as_u16(),
                            body_start: body_start(response, self.options.read_timeout).await,
                        });
                    }
                }
                Err(error) => self.after_request_error(url, error, *attempt)?,
            };
            tokio::time::sleep(wait).await;
            *attempt += 1;
        }
    }

    /// After a request to `url` got no answer: the wait before trying again, or the error to
    /// report (a refused redirect, a timeout naming its setting, an error that is not
    /// transient, or retries used up).
    fn after_request_error(
        &self,
        url: &str,
        error: reqwest::Error,
        attempt: u32,
    ) -> Result<Duration, HttpError> {
        if let Some(refused) = find_source::<RedirectRefused>(&error) {
            return Err(HttpError::InsecureRedirect {
                url: url.to_string(),
                location: refused.location.clone(),
                reason: refused.reason.clone(),
            });
        }
        if !(is_transient(&error) && attempt < self.options.max_retries) {
            if error.is_timeout() {
                return Err(HttpError::TimedOut {
                    url: url.to_string(),
                    timeout: if error.is_connect() {
                        self.options.connect_timeout
                    } else {
                        self.options.read_timeout
                    },
                });
            }
            return Err(HttpError::Request {
                url: url.to_string(),
                source: error.without_url(),
            });
        }
        tracing::debug!(%url, %error, "retrying after a request error");
        Ok(self.backoff(attempt))
    }

    /// The wait before retry number `attempt + 1`.
    fn backoff(&self, attempt: u32) -> Duration {
        self.options
            .retry_backoff
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.options.max_retry_wait)
    }
}

/// The low-speed check of one body: back-to-back windows of `length`, each of which must
/// bring at least `needed` bytes (the limit times the window), as `curl` checks
/// `CURLOPT_LOW_SPEED_LIMIT` over `CURLOPT_LOW_SPEED_TIME` for Cargo.
struct LowSpeedWindow {
    length: Duration,
    needed: u64,
    end: Instant,
    received: u64,
}

impl LowSpeedWindow {
    /// The check of a body starting now; `None` when `limit` is 0 (or the window is empty
    /// or absurdly long).
    fn start(limit: u64, length: Duration) -> Option<Self> {
        if limit == 0 || length.is_zero() || length > Duration::from_secs(MAX_ENV_NUMBER) {
            return None;
        }
        let needed = u128::from(limit) * length.as_millis() / 1000;
        Some(Self {
            length,
            needed: u64::try_from(needed).unwrap_or(u64::MAX).max(1),
            end: Instant::now().checked_add(length)?,
            received: 0,
        })
    }

    /// Counts `bytes` just received. Once the window is over, fails if it brought too few
    /// bytes, else starts the next one.
    fn record(&mut self, bytes: u64) -> Result<(), BodyError> {
        self.received = self.received.saturating_add(bytes);
        let now = Instant::now();
        if now < self.end {
            return Ok(());
        }
        if self.received < self.needed {
            return Err(BodyError::TooSlow {
                received: self.received,
            });
        }
        self.received = 0;
        self.end = now.checked_add(self.length).unwrap_or(self.end);
        Ok(())
    }
}

/// The proxies the environment asks for, each skipping the hosts in `NO_PROXY` and every
/// loopback host ([`LOOPBACK_NO_PROXY`]). `HTTPS_PROXY` and `HTTP_PROXY` come before
/// `ALL_PROXY`, so that a scheme's own proxy wins. Under CGI (`REQUEST_METHOD` set),
/// `HTTP_PROXY` is ignored: a request's `Proxy:` header would arrive as that variable.
fn proxies_from_env() -> Result<Vec<reqwest::Proxy>, HttpError> {
    let no_proxy = match env::var_any_case(env::NO_PROXY) {
        Some((_, list)) => format!("{list},{LOOPBACK_NO_PROXY}"),
        None => LOOPBACK_NO_PROXY.to_string(),
    };
    let cgi = env::var(env::REQUEST_METHOD).is_some();
    type MakeProxy = fn(String) -> reqwest::Result<reqwest::Proxy>;
    let kinds: [(&str, MakeProxy); 3] = [
        (env::HTTPS_PROXY, reqwest::Proxy::https),
        (env::HTTP_PROXY, reqwest::Proxy::http),
        (env::ALL_PROXY, reqwest::Proxy::all),
    ];
    let mut proxies = Vec::new();
    for (name, make) in kinds {
        if cgi && name == env::HTTP_PROXY {
            continue;
        }
        let Some((name, value)) = env::var_any_case(name) else {
            continue;
        };
        let proxy = make(value.clone()).map_err(|_| HttpError::InvalidSetting {
            name,
            value,
            expected: "a proxy URL such as `http://proxy.example:3128`",
        })?;
        proxies.push(proxy.no_proxy(reqwest::NoProxy::from_string(&no_proxy)));
    }
    Ok(proxies)
}

/// Follows at most [`MAX_REDIRECTS`] redirects, each to an allowed scheme, and with
/// `same_origin` only to the origin (scheme, host and port) of the URL first asked for.
fn redirect_policy(same_origin: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let first_origin = attempt.previous().first().map(Url::origin);
        if same_origin
            && let Some(origin) = first_origin
            && origin != attempt.url().origin()
        {
            let location = attempt.url().to_string();
            return attempt.error(RedirectRefused {
                location,
                reason: format!(
                    "API requests stay on the API's origin `{}`",
                    origin.ascii_serialization()
                ),
            });
        }
        if let Err(reason) = check_url_scheme(attempt.url()) {
            let location = attempt.url().to_string();
            return attempt.error(RedirectRefused { location, reason });
        }
        let downgrade = attempt.url().scheme() == "http"
            && attempt
                .previous()
                .iter()
                .any(|previous| previous.scheme() == "https");
        if downgrade {
            let location = attempt.url().to_string();
            return attempt.error(RedirectRefused {
                location,
                reason: "a redirect from `https://` to plain `http://` is a downgrade".into(),
            });
        }
        attempt.follow()
    })
}

/// Reads every certificate of the PEM file at `path`.
#[expect(
    clippy::disallowed_methods,
    reason = "each error is wrapped with the path it concerns; fs_err would name it twice"
)]
fn load_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, HttpError> {
    let error = |reason: String| HttpError::Certificates {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|source| error(source.to_string()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|source| error(format!("not a valid PEM bundle ({source})")))?;
    if certificates.is_empty() {
        return Err(error("the file holds no PEM certificates".into()));
    }
    Ok(certificates)
}

/// Whether a request error is worth retrying: connection trouble and timeouts, but not TLS
/// certificate errors (reported by rustls as `InvalidData`), redirects or bad requests.
fn is_transient(error: &reqwest::Error) -> bool {
    if error.is_builder() || error.is_redirect() || error.is_status() {
        return false;
    }
    let mut source = error.source();
    while let Some(inner) = source {
        // `io::Error::source` skips the error it wraps, so look inside with `get_ref`.
        let mut io = inner.downcast_ref::<io::Error>();
        while let Some(current) = io {
            if current.kind() == io::ErrorKind::InvalidData {
                return false;
            }
            io = current
                .get_ref()
                .and_then(|wrapped| wrapped.downcast_ref::<io::Error>());
        }
        source = inner.source();
    }
    error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
}

/// The first error of type `T` in `error`'s source chain.
fn find_source<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(inner) = current {
        if let Some(found) = inner.downcast_ref::<T>() {
            return Some(found);
        }
        current = inner.source();
    }
    None
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Seconds until `x-ratelimit-reset` (a Unix time).
fn reset_in_seconds(headers: &HeaderMap) -> Option<u64> {
    let reset = header_u64(headers, "x-ratelimit-reset")?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(reset.saturating_sub(now))
}

/// The first [`BODY_START_LEN`] characters of an error body, on one line: what arrives
/// within `timeout`.
async fn body_start(mut response: reqwest::Response, timeout: Duration) -> String {
    let mut bytes = Vec::new();
    let read = async {
        while bytes.len() < BODY_START_LEN * 4 {
            match response.chunk().await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
    let text = String::from_utf8_lossy(&bytes);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(BODY_START_LEN) {
        Some((index, _)) => format!("{}…", &line[..index]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link() {
        let value = r#"<https://api.example.com/x?page=2>; rel="next", <https://api.example.com/x?page=5>; rel="last""#;
        assert_eq!(
            parse_next_link(value).as_deref(),
            Some("https://api.example.com/x?page=2")
        );
        assert_eq!(parse_next_link(r#"<https://a/x?page=1>; rel="prev""#), None);
        assert_eq!(parse_next_link(""), None);
        assert_eq!(
            parse_link(value, "last").as_deref(),
            Some("https://api.example.com/x?page=5")
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let client = HttpClient::new(HttpOptions {
            retry_backoff: Duration::from_millis(100),
            max_retry_wait: Duration::from_millis(500),
            extra_ca_file: None,
            ..HttpOptions::default()
        })
        .unwrap();
        let waits: Vec<_> = (0..5).map(|attempt| client.backoff(attempt)).collect();
        assert_eq!(
            waits,
            [100, 200, 400, 500, 500]
                .map(Duration::from_millis)
                .to_vec()
        );
    }

    #[test]
    fn the_expected_forms_of_the_limit_variables_name_their_bounds_and_defaults() {
        let source = include_str!("http.rs");
        for (expected, default) in [
            ("seconds from 1 to", DEFAULT_TIMEOUT.as_secs()),
            (
                "bytes per second from 0 (no check) to",
                DEFAULT_LOW_SPEED_LIMIT,
            ),
            (
                "seconds from 0 (no deadline) to",
                DEFAULT_DEADLINE.as_secs(),
            ),
        ] {
            let text = format!("{expected} {MAX_ENV_NUMBER} (default `{default}`)");
            assert!(source.contains(&text), "{text}");
        }
    }

    #[test]
    fn messages() {
        let error = HttpError::RateLimited {
            url: "https://api.github.com/x".into(),
            reset_in_seconds: Some(30),
        };
        let message = crate::diagnostic::Report::new(&error).to_string();
        assert!(message.contains("rate limit"), "{message}");
        assert!(
            message.ends_with("\nhint: wait until the limit resets, then run the command again"),
            "{message}"
        );
        let error = HttpError::Truncated {
            url: "https://x/y".into(),
            expected: Some(10),
            received: 4,
        };
        assert_eq!(
            error.to_string(),
            "the download of `https://x/y` was cut short: received 4 of 10 bytes"
        );
    }
}
