//! Requests of any method whose answer the caller reads whatever its status: the transport of
//! the OCI registry protocol (`401` challenges, `404` for a missing blob, `202` uploads).
//!
//! They keep every rule of the [`HttpClient`]: offline mode, allowed schemes and redirects,
//! the per-host limit, retries of connect errors, `5xx` and `429`, and the size cap. A
//! download ([`HttpClient::download_request`]) streams into its file while hashing, as
//! [`HttpClient::download_to`] does. `Authorization` headers are marked sensitive, and
//! `reqwest` drops them on a redirect to another host, port or scheme.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};

use super::{Downloaded, HttpClient, HttpError, header_u64, parse_link};
use crate::checksum::Hasher;

/// One request: method, URL, headers and an optional body.
#[derive(Clone, Debug)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The URL.
    pub url: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, if any (resent as is on a retry).
    pub body: Option<Vec<u8>>,
    /// The most bytes of the answer's body read, if fewer than the client's
    /// [`HttpOptions::max_download_size`](super::HttpOptions::max_download_size): a larger
    /// body is [`HttpError::TooLarge`] with this limit.
    pub max_body: Option<u64>,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: HeaderMap::new(),
            body: None,
            max_body: None,
        }
    }
}

/// The most bytes of an error answer's body read while downloading (the start of it is all
/// a message quotes).
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// A body buffer that refuses to grow past `limit` bytes (with
/// [`std::io::ErrorKind::FileTooLarge`]).
struct Capped<'a> {
    bytes: &'a mut Vec<u8>,
    limit: u64,
}

/// A writer that refuses to write past `limit` bytes into `inner` (with
/// [`std::io::ErrorKind::FileTooLarge`]).
struct CappedWriter<'a, W> {
    inner: &'a mut W,
    written: u64,
    limit: u64,
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for CappedWriter<'_, W> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.written + buf.len() as u64 > this.limit {
            return std::task::Poll::Ready(Err(std::io::ErrorKind::FileTooLarge.into()));
        }
        let poll = std::pin::Pin::new(&mut *this.inner).poll_write(context, buf);
        if let std::task::Poll::Ready(Ok(written)) = &poll {
            this.written += *written as u64;
        }
        poll
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.get_mut().inner).poll_flush(context)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.get_mut().inner).poll_shutdown(context)
    }
}

impl tokio::io::AsyncWrite for Capped<'_> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.bytes.len() as u64 + buf.len() as u64 > this.limit {
            return std::task::Poll::Ready(Err(std::io::ErrorKind::FileTooLarge.into()));
        }
        this.bytes.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// A final answer, read whole: what [`HttpClient::request`] returns whatever its status, and
/// [`HttpClient::get_api`] for a `2xx` (or a `304` to a conditional request).
#[derive(Clone, Debug)]
pub struct Answer {
    /// The URL that answered, after redirects.
    pub url: String,
    /// The status.
    pub status: u16,
    /// The headers (`Link`, `x-ratelimit-remaining`, `WWW-Authenticate`, …).
    pub headers: HeaderMap,
    /// The body (empty for `HEAD` and `304`).
    pub body: Vec<u8>,
}

impl Answer {
    /// The value of header `name`, if present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The URL of the `Link` header entry with relation `rel`.
    pub fn link(&self, rel: &str) -> Option<String> {
        self.headers
            .get_all(header::LINK)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(|value| parse_link(value, rel))
    }

    /// Whether the status is `2xx`.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether the server answered `304 Not Modified` (to a conditional request).
    pub fn is_not_modified(&self) -> bool {
        self.status == StatusCode::NOT_MODIFIED.as_u16()
    }

    /// The start of the body on one line, for error messages, control characters escaped
    /// (the body is the server's text).
    pub fn body_start(&self) -> String {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(800)]);
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let line: String = line
            .chars()
            .map(|c| {
                if crate::locator::is_hidden_control(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        match line.char_indices().nth(200) {
            Some((index, _)) => format!("{}…", &line[..index]),
            None => line,
        }
    }

    /// [`HttpError::Status`] for this answer to a request of `url`.
    pub fn into_error(self, url: &str) -> HttpError {
        HttpError::Status {
            url: url.to_string(),
            status: self.status,
            body_start: self.body_start(),
        }
    }
}

impl HttpClient {
    /// Sends `request` and reads the whole answer, whatever its status; connect errors,
    /// `5xx` and `429` are retried first. Bodies over the size cap (or
    /// [`Request::max_body`]) are refused.
    pub async fn request(&self, request: &Request) -> Result<Answer, HttpError> {
        let parsed = self.check_url(&request.url)?;
        let _permit = self.host_permit(&parsed).await;
        let limit = request
            .max_body
            .map_or(self.options.max_download_size, |max| {
                max.min(self.options.max_download_size)
            });
        let too_large = |size: Option<u64>| HttpError::TooLarge {
            url: request.url.clone(),
            limit,
            size,
        };
        let mut attempt = 0;
        loop {
            let response = self.send_any(request, &parsed, &mut attempt).await?;
            let url = response.url().to_string();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let mut body = Vec::new();
            // A `HEAD` answer's `Content-Length` describes a body that is never sent.
            let read = if request.method == Method::HEAD {
                Ok(())
            } else if let Some(size) = response.content_length().filter(|size| *size > limit) {
                return Err(too_large(Some(size)));
            } else {
                let mut capped = Capped {
                    bytes: &mut body,
                    limit,
                };
                self.read_body(response, &mut capped, &mut Hasher::new(), &|_, _| {})
                    .await
            };
            match read {
                Err(super::BodyError::Write(error))
                    if error.kind() == std::io::ErrorKind::FileTooLarge =>
                {
                    return Err(too_large(None));
                }
                Ok(()) => {
                    return Ok(Answer {
                        url,
                        status,
                        headers,
                        body,
                    });
                }
                Err(error) => {
                    self.after_body_error(&request.url, None, error, &mut attempt)
                        .await?;
                }
            }
        }
    }

    /// `GET`s `url` with `headers`: a `2xx` body streams into `dest` (created or truncated)
    /// while hashing, and `Ok(Ok(_))` says what was written; any other final answer is
    /// returned as `Ok(Err(answer))` (its body's first 64 KiB), with `dest` untouched. A body
    /// over `max_size` (when given, else the size cap) is [`HttpError::TooLarge`]. As for
    /// [`HttpClient::download_to`], `dest` may hold a partial body on error.
    #[expect(
        clippy::disallowed_methods,
        reason = "each error is wrapped with the path it concerns; fs_err would name it twice"
    )]
    pub async fn download_request(
        &self,
        url: &str,
        headers: &HeaderMap,
        dest: &Path,
        max_size: Option<u64>,
        progress: &(dyn Fn(u64, Option<u64>) + Send + Sync),
    ) -> Result<Result<Downloaded, Answer>, HttpError> {
        let request = Request {
            method: Method::GET,
            url: url.to_string(),
            headers: headers.clone(),
            body: None,
            max_body: None,
        };
        let limit = max_size.map_or(self.options.max_download_size, |max| {
            max.min(self.options.max_download_size)
        });
        let too_large = |size: Option<u64>| HttpError::TooLarge {
            url: url.to_string(),
            limit,
            size,
        };
        let parsed = self.check_url(url)?;
        let _permit = self.host_permit(&parsed).await;
        let mut attempt = 0;
        loop {
            let response = self.send_any(&request, &parsed, &mut attempt).await?;
            if !response.status().is_success() {
                let final_url = response.url().to_string();
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let mut body = Vec::new();
                let mut capped = Capped {
                    bytes: &mut body,
                    limit: MAX_ERROR_BODY,
                };
                let _ = self
                    .read_body(response, &mut capped, &mut Hasher::new(), &|_, _| {})
                    .await;
                return Ok(Err(Answer {
                    url: final_url,
                    status,
                    headers,
                    body,
                }));
            }
            if let Some(size) = response.content_length().filter(|size| *size > limit) {
                return Err(too_large(Some(size)));
            }
            let mut file = tokio::fs::File::create(dest)
                .await
                .map_err(|source| HttpError::Io {
                    path: dest.to_path_buf(),
                    source,
                })?;
            let mut hasher = Hasher::new();
            let mut capped = CappedWriter {
                inner: &mut file,
                written: 0,
                limit,
            };
            match self
                .read_body(response, &mut capped, &mut hasher, progress)
                .await
            {
                Err(super::BodyError::Write(error))
                    if error.kind() == std::io::ErrorKind::FileTooLarge =>
                {
                    return Err(too_large(None));
                }
                Ok(()) => {
                    let (checksum, size) = hasher.finish();
                    return Ok(Ok(Downloaded { checksum, size }));
                }
                Err(error) => {
                    drop(file);
                    self.after_body_error(url, Some(dest), error, &mut attempt)
                        .await?;
                }
            }
        }
    }

    /// Sends `request` until an answer that is not retried (any status but `5xx` and `429`)
    /// or a final error.
    async fn send_any(
        &self,
        request: &Request,
        parsed: &url::Url,
        attempt: &mut u32,
    ) -> Result<reqwest::Response, HttpError> {
        let url = request.url.as_str();
        loop {
            let mut builder = self
                .inner
                .request(request.method.clone(), parsed.clone())
                .headers(request.headers.clone());
            if let Some(body) = &request.body {
                builder = builder.body(body.clone());
            }
            let can_retry = *attempt < self.options.max_retries;
            let wait = match builder.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = header_u64(response.headers(), header::RETRY_AFTER.as_str());
                    let retryable =
                        status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    if !(retryable && can_retry) {
                        if status == StatusCode::TOO_MANY_REQUESTS {
                            return Err(HttpError::RateLimited {
                                url: url.to_string(),
                                reset_in_seconds: retry_after,
                            });
                        }
                        return Ok(response);
                    }
                    tracing::debug!(%url, %status, "retrying after an error status");
                    retry_after
                        .map(|seconds| {
                            Duration::from_secs(seconds).min(self.options.max_retry_wait)
                        })
                        .unwrap_or_else(|| self.backoff(*attempt))
                }
                Err(error) => self.after_request_error(url, error, *attempt)?,
            };
            tokio::time::sleep(wait).await;
            *attempt += 1;
        }
    }
}
