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

use super::{
    Downloaded, HttpClient, HttpError, RedirectRefused, find_source, header_u64, is_transient,
};
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
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: HeaderMap::new(),
            body: None,
        }
    }
}

/// A final answer, read whole, whatever its status.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The URL that answered, after redirects.
    pub url: String,
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (empty for `HEAD`).
    pub body: Vec<u8>,
}

impl Answer {
    /// The value of header `name`, if present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Whether the status is `2xx`.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The start of the body on one line, for error messages.
    pub fn body_start(&self) -> String {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(800)]);
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
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
    /// `5xx` and `429` are retried first. Bodies over the size cap are refused.
    pub async fn request(&self, request: &Request) -> Result<Answer, HttpError> {
        let parsed = self.check_url(&request.url)?;
        let _permit = self.host_permit(&parsed).await;
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
            } else {
                self.read_body(response, &mut body, &mut Hasher::new(), &|_, _| {})
                    .await
            };
            match read {
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
                        .await?
                }
            }
        }
    }

    /// `GET`s `url` with `headers`: a `2xx` body streams into `dest` (created or truncated)
    /// while hashing, and `Ok(Ok(_))` says what was written; any other final answer is
    /// returned read whole as `Ok(Err(answer))`, with `dest` untouched. As for
    /// [`HttpClient::download_to`], `dest` may hold a partial body on error.
    pub async fn download_request(
        &self,
        url: &str,
        headers: &HeaderMap,
        dest: &Path,
        progress: &(dyn Fn(u64, Option<u64>) + Send + Sync),
    ) -> Result<Result<Downloaded, Answer>, HttpError> {
        let request = Request {
            method: Method::GET,
            url: url.to_string(),
            headers: headers.clone(),
            body: None,
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
                let _ = self
                    .read_body(response, &mut body, &mut Hasher::new(), &|_, _| {})
                    .await;
                return Ok(Err(Answer {
                    url: final_url,
                    status,
                    headers,
                    body,
                }));
            }
            if let Some(size) = response
                .content_length()
                .filter(|size| *size > self.options.max_download_size)
            {
                return Err(self.too_large(url, Some(size)));
            }
            let mut file = tokio::fs::File::create(dest)
                .await
                .map_err(|source| HttpError::Io {
                    path: dest.to_path_buf(),
                    source,
                })?;
            let mut hasher = Hasher::new();
            match self
                .read_body(response, &mut file, &mut hasher, progress)
                .await
            {
                Ok(()) => {
                    let (checksum, size) = hasher.finish();
                    return Ok(Ok(Downloaded { checksum, size }));
                }
                Err(error) => {
                    drop(file);
                    self.after_body_error(url, Some(dest), error, &mut attempt)
                        .await?
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
                Err(error) => {
                    if let Some(refused) = find_source::<RedirectRefused>(&error) {
                        return Err(HttpError::InsecureRedirect {
                            url: url.to_string(),
                            location: refused.location.clone(),
                            reason: refused.reason.clone(),
                        });
                    }
                    if !(is_transient(&error) && can_retry) {
                        return Err(HttpError::Request {
                            url: url.to_string(),
                            source: error.without_url(),
                        });
                    }
                    tracing::debug!(%url, %error, "retrying after a request error");
                    self.backoff(*attempt)
                }
            };
            tokio::time::sleep(wait).await;
            *attempt += 1;
        }
    }
}
