//! [`RegistryClient`]: the requests of the OCI distribution protocol warpgate makes, over the
//! crate's [`HttpClient`].
//!
//! Pulls: manifests (by tag once, when locking; by digest after), the tag list (for a
//! `version` requirement), blobs by digest. Pushes: `HEAD` a blob or manifest first, upload
//! a missing blob in one `POST` + `PUT`, `PUT` the manifest by tag.
//!
//! # Authentication
//!
//! A request goes out with what the client already knows for its registry (a bearer token
//! for the repository and actions, or Basic credentials once the registry asked for them).
//! A `401` answer's `WWW-Authenticate` challenge says what to do: `Basic` retries with the
//! registry's credentials ([`CredentialStore`]); `Bearer` asks the token service for a token
//! scoped to `repository:<name>:<actions>` — with the credentials when there are some and
//! the service may receive them ([`may_send_credentials`]), anonymously otherwise — and
//! retries once. Tokens are kept in memory per registry and scope, never written anywhere.
//! Registries are reached over `https://`; plain `http://` only for loopback hosts that
//! do not speak TLS (tried once after `https://` fails; if that fails too, the `https://`
//! error is the one reported).
//!
//! # What is trusted
//!
//! Nothing a registry says goes unchecked: a manifest's bytes must hash to the digest asked
//! for (or announced), manifests, tag lists, token answers and error bodies are read up to
//! [`MAX_DOCUMENT_SIZE`] (error bodies less), blobs up to the size the lock records, only
//! well-formed tags are ever picked, and the registry's text (media types, platforms, realms,
//! error bodies) is escaped before it reaches a message.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderValue};

use crate::checksum::{Checksum, Mismatch};
use crate::diagnostic::{Class, Diagnostic};
use crate::http::{Answer, Downloaded, HttpClient, HttpError, Request};
use crate::oci::auth::{
    AuthError, Challenge, CredentialStore, Credentials, Secret, may_send_credentials,
    parse_challenge,
};
use crate::oci::manifest::{self, Fetched, ImageManifest};
use crate::oci::reference::{self, RegistryLocator, api_host};

/// The largest manifest, index, tag-list page or token answer read (the distribution
/// registry's own limit on manifests is 4 MiB).
pub const MAX_DOCUMENT_SIZE: u64 = 4 * 1024 * 1024;

/// Why a registry request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The request failed (network, TLS, offline, an unexpected status).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// Credentials could not be read.
    #[error(transparent)]
    Credentials(#[from] AuthError),
    /// The registry refused access.
    #[error("registry `{registry}` refused access to `{repository}` ({action}){}", refused_by(.credentials.as_deref()))]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The repository.
        repository: String,
        /// What was asked (`pull`, `push`).
        action: String,
        /// Where the credentials that were refused came from, if any were sent.
        credentials: Option<String>,
    },
    /// The manifest, tag or blob does not exist.
    #[error("`{url}` was not found in the registry (HTTP 404){}", detail_suffix(.detail))]
    NotFound {
        /// The URL asked for.
        url: String,
        /// The registry's error message, if any.
        detail: String,
        /// What to do.
        hint: String,
    },
    /// The manifest is not one warpgate can take a plugin from.
    #[error("the manifest of `{locator}` cannot be used: {reason}")]
    Manifest {
        /// The locator.
        locator: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry served manifest bytes that do not match their digest.
    #[error("the manifest served for `{url}` does not match its digest\n{mismatch}")]
    ManifestDigest {
        /// The URL asked for.
        url: String,
        /// Expected and computed digests.
        mismatch: Mismatch,
    },
    /// The token service answered something unusable.
    #[error(
        "the token service `{realm}` of registry `{registry}` answered without a token: {reason}"
    )]
    Token {
        /// The registry host.
        registry: String,
        /// The token service URL.
        realm: String,
        /// What was wrong.
        reason: String,
    },
    /// No tag satisfies the requirement.
    #[error("no tag of `{locator}` matches `{requirement}` (semver tags found: {found})")]
    NoMatchingTag {
        /// The locator.
        locator: String,
        /// The requirement.
        requirement: String,
        /// The semver tags found.
        found: String,
    },
}

impl Diagnostic for RegistryError {
    fn class(&self) -> Class {
        match self {
            Self::ManifestDigest { .. } => Class::CheckFailed,
            Self::Http(inner) => inner.class(),
            _ => Class::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Http(inner) => inner.hint(),
            Self::Credentials(inner) => inner.hint(),
            Self::Unauthorized {
                registry,
                credentials,
                ..
            } => Some(unauthorized_hint(registry, credentials.as_deref())),
            Self::NotFound { hint, .. } => Some(hint.clone()),
            Self::Manifest { locator, .. } => Some(format!(
                "publish the plugin with exactly one wasm layer (`warpgate publish FILE {locator}`)"
            )),
            Self::ManifestDigest { .. } => Some(
                "the registry or a proxy altered the manifest; retry, and report it to the registry's operators if it persists".into(),
            ),
            Self::Token { .. } => Some("check the registry's authentication settings".into()),
            Self::NoMatchingTag { .. } => {
                Some("loosen the `version` requirement, or publish a matching tag".into())
            }
        }
    }
}

/// Whether `error` means the registry was not reached (no answer: connection, TLS, timeout).
fn unreachable(error: &HttpError) -> bool {
    matches!(
        error,
        HttpError::Request { .. } | HttpError::TimedOut { .. }
    )
}

fn refused_by(credentials: Option<&str>) -> String {
    match credentials {
        Some(source) => format!(" with the credentials from {source}"),
        None => " without credentials".to_string(),
    }
}

fn unauthorized_hint(registry: &str, credentials: Option<&str>) -> String {
    match credentials {
        Some(_) => format!(
            "the credentials are wrong or lack the permission: log in again (`docker login {registry}`) or fix `{}`",
            crate::env::WARPGATE_REGISTRY_AUTH
        ),
        None => format!(
            "log in with `docker login {registry}`, or set `{}={registry}=USERNAME:TOKEN`",
            crate::env::WARPGATE_REGISTRY_AUTH
        ),
    }
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// What a `registry://` locator resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The tag resolved (`None` for a locator by digest alone).
    pub tag: Option<String>,
    /// The digest of the manifest (or index) the tag points to.
    pub manifest_digest: Checksum,
    /// The wasm layer's digest: the plugin's checksum.
    pub layer_digest: Checksum,
    /// The wasm layer's size.
    pub size: u64,
}

/// What the client knows about one registry.
#[derive(Default)]
struct HostState {
    credentials: Option<Option<Credentials>>,
    basic: bool,
    tokens: HashMap<String, String>,
    plain_http: bool,
    /// A request without credentials was answered (the registry is open).
    open: bool,
    /// One lock per scope, held by the first request while it learns how to authenticate,
    /// so that parallel requests do not each collect a `401`.
    probes: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
}

/// The OCI registry client. Cheap to clone (state is shared).
#[derive(Clone)]
pub struct RegistryClient {
    http: HttpClient,
    store: CredentialStore,
    hosts: Arc<Mutex<HashMap<String, HostState>>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient").finish_non_exhaustive()
    }
}

/// How a request is authorised.
enum Auth {
    None,
    Header(String),
}

impl RegistryClient {
    /// A client over `http` finding credentials in `store`.
    pub fn new(http: HttpClient, store: CredentialStore) -> Self {
        Self {
            http,
            store,
            hosts: Arc::default(),
        }
    }

    /// The HTTP client.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    fn with_host<T>(&self, host: &str, f: impl FnOnce(&mut HostState) -> T) -> T {
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(hosts.entry(host.to_ascii_lowercase()).or_default())
    }

    /// `https://<api host>/v2/<repository>/<path>` (or `http://` for a loopback registry
    /// without TLS).
    fn url(&self, registry: &str, repository: &str, path: &str) -> String {
        let scheme = if self.with_host(registry, |state| state.plain_http) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/v2/{repository}/{path}", api_host(registry))
    }

    fn credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        if let Some(known) = self.with_host(registry, |state| state.credentials.clone()) {
            return Ok(known);
        }
        let found = self.store.lookup(registry)?;
        self.with_host(registry, |state| state.credentials = Some(found.clone()));
        Ok(found)
    }

    /// Until the client knows how `registry` authenticates `scope`, the lock that makes
    /// parallel requests wait for the first one to find out.
    async fn probe(&self, registry: &str, scope: &str) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let lock = self.with_host(registry, |state| {
            let known = state.open || state.basic || state.tokens.contains_key(scope);
            (!known).then(|| state.probes.entry(scope.to_string()).or_default().clone())
        })?;
        Some(lock.lock_owned().await)
    }

    /// What to send with a request for `scope` on `registry`, from what is known so far.
    fn known_auth(&self, registry: &str, scope: &str) -> Result<Auth, RegistryError> {
        let (token, basic) = self.with_host(registry, |state| {
            (state.tokens.get(scope).cloned(), state.basic)
        });
        if let Some(token) = token {
            return Ok(Auth::Header(format!("Bearer {token}")));
        }
        if basic && let Some(credentials) = self.credentials(registry)? {
            return Ok(credentials.basic().map_or(Auth::None, Auth::Header));
        }
        Ok(Auth::None)
    }

    /// Handles a `401`: learns what the registry wants for `scope` so that a retry can
    /// succeed. `Err` when a retry cannot help.
    async fn authenticate(
        &self,
        registry: &str,
        repository: &str,
        scope: &str,
        action: &str,
        answer: &Answer,
    ) -> Result<(), RegistryError> {
        let credentials = self.credentials(registry)?;
        let unauthorized = |sent_credentials: bool| RegistryError::Unauthorized {
            registry: registry.to_string(),
            repository: repository.to_string(),
            action: action.to_string(),
            credentials: credentials
                .as_ref()
                .filter(|_| sent_credentials)
                .map(|c| c.source.clone()),
        };
        let challenge = answer
            .headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(parse_challenge);
        match challenge {
            Some(Challenge::Basic) => match &credentials {
                Some(found) if found.basic().is_some() => {
                    self.with_host(registry, |state| state.basic = true);
                    Ok(())
                }
                _ => Err(unauthorized(false)),
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                let token = self
                    .token(
                        registry,
                        repository,
                        action,
                        scope,
                        &realm,
                        service.as_deref(),
                        credentials.as_ref(),
                    )
                    .await?;
                self.with_host(registry, |state| {
                    state.tokens.insert(scope.to_string(), token)
                });
                Ok(())
            }
            None => Err(unauthorized(false)),
        }
    }

    /// Asks the token service at `realm` for a token for `scope`.
    #[expect(
        clippy::too_many_arguments,
        reason = "the token request's parts, each from another place"
    )]
    async fn token(
        &self,
        registry: &str,
        repository: &str,
        action: &str,
        scope: &str,
        realm: &str,
        service: Option<&str>,
        credentials: Option<&Credentials>,
    ) -> Result<String, RegistryError> {
        // The realm and the answer are the registry's text: escaped for messages.
        let token_error = |reason: String| RegistryError::Token {
            registry: registry.to_string(),
            realm: realm.escape_debug().to_string(),
            reason: reason.escape_debug().to_string(),
        };
        let mut url = url::Url::parse(realm)
            .map_err(|e| token_error(format!("the realm is not a URL ({e})")))?;
        let realm_host = url.host_str().unwrap_or_default().to_string();
        let credentials =
            credentials.filter(|_| may_send_credentials(api_host(registry), &realm_host));
        if let Some(Credentials {
            secret: Secret::RegistryToken(token),
            ..
        }) = credentials
        {
            return Ok(token.clone());
        }
        let mut request = match credentials {
            Some(Credentials {
                secret: Secret::IdentityToken(refresh),
                ..
            }) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("client_id", "warpgate")
                    .append_pair("refresh_token", refresh)
                    .append_pair("scope", scope);
                if let Some(service) = service {
                    form.append_pair("service", service);
                }
                let mut request = Request::new(Method::POST, url.to_string());
                request.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                request.body = Some(form.finish().into_bytes());
                request
            }
            _ => {
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = service {
                        query.append_pair("service", service);
                    }
                    query.append_pair("scope", scope);
                }
                let mut request = Request::new(Method::GET, url.to_string());
                if let Some(basic) = credentials.and_then(Credentials::basic) {
                    request
                        .headers
                        .insert(header::AUTHORIZATION, sensitive(&basic)?);
                }
                request
            }
        };
        request
            .headers
            .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        request.max_body = Some(MAX_DOCUMENT_SIZE);
        let answer = self.http.request(&request).await?;
        if answer.status == 401 || answer.status == 403 {
            return Err(RegistryError::Unauthorized {
                registry: registry.to_string(),
                repository: repository.to_string(),
                action: action.to_string(),
                credentials: credentials.map(|c| c.source.clone()),
            });
        }
        if !answer.is_success() {
            return Err(answer.into_error(&realm.escape_debug().to_string()).into());
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        let parsed: TokenAnswer = serde_json::from_slice(&answer.body)
            .map_err(|e| token_error(format!("the answer is not JSON ({e})")))?;
        parsed
            .token
            .or(parsed.access_token)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| token_error("no `token` or `access_token` field".into()))
    }

    /// Sends `request` (built by `make` from the URL of `path`) with authentication,
    /// answering one challenge. `actions` is `pull` or `pull,push`.
    async fn send(
        &self,
        registry: &str,
        repository: &str,
        actions: &str,
        path: &str,
        make: impl Fn(String) -> Request,
    ) -> Result<Answer, RegistryError> {
        let scope = format!("repository:{repository}:{actions}");
        let _probe = self.probe(registry, &scope).await;
        let mut sent = false;
        let mut https_error = None;
        loop {
            let mut request = make(self.url(registry, repository, path));
            request.max_body.get_or_insert(MAX_DOCUMENT_SIZE);
            let auth = self.known_auth(registry, &scope)?;
            if let Auth::Header(value) = &auth {
                request
                    .headers
                    .insert(header::AUTHORIZATION, sensitive(value)?);
            }
            let answer = match self.http.request(&request).await {
                Ok(answer) if answer.status == 400 && https_error.is_some() => {
                    return Err(self.back_to_https(registry, &mut https_error).into());
                }
                Ok(answer) => {
                    // Whichever scheme answered is the registry's: errors from here on are its own.
                    https_error = None;
                    answer
                }
                Err(error) => match self.after_failure(registry, error, &mut https_error) {
                    None => continue,
                    Some(error) => return Err(error.into()),
                },
            };
            if answer.status != 401 {
                if matches!(auth, Auth::None) {
                    self.with_host(registry, |state| state.open = true);
                }
                return Ok(answer);
            }
            if sent {
                return Err(self.refused(registry, repository, actions)?);
            }
            self.authenticate(registry, repository, &scope, actions, &answer)
                .await?;
            sent = true;
        }
    }

    /// The error for a `401` after authenticating.
    fn refused(
        &self,
        registry: &str,
        repository: &str,
        action: &str,
    ) -> Result<RegistryError, RegistryError> {
        Ok(RegistryError::Unauthorized {
            registry: registry.to_string(),
            repository: repository.to_string(),
            action: action.to_string(),
            credentials: self.credentials(registry)?.map(|c| c.source),
        })
    }

    /// After a request to `registry` failed with `error`: `None` to send it again over plain
    /// `http://` (a loopback registry that may not speak TLS; tried once, the `https://` error
    /// kept in `https_error`), else the error to report. When the plain attempt cannot reach
    /// the registry either, the registry goes back to `https://` and its error is the one
    /// reported: it says why the registry could not be reached as registries are (an untrusted
    /// certificate, say). When plain `http://` reached it, its own error is reported.
    fn after_failure(
        &self,
        registry: &str,
        error: HttpError,
        https_error: &mut Option<HttpError>,
    ) -> Option<HttpError> {
        if https_error.is_some() {
            if unreachable(&error) {
                tracing::debug!(registry, %error, "plain http:// failed as well");
                return Some(self.back_to_https(registry, https_error));
            }
            *https_error = None;
            return Some(error);
        }
        if self.switch_to_plain_http(registry, &error) {
            *https_error = Some(error);
            return None;
        }
        Some(error)
    }

    /// Gives up on plain `http://` for `registry` (a TLS server answers it with `400`, a
    /// closed port refuses it) and returns the `https://` error that led to trying it.
    fn back_to_https(&self, registry: &str, https_error: &mut Option<HttpError>) -> HttpError {
        self.with_host(registry, |state| state.plain_http = false);
        https_error
            .take()
            .expect("a plain http:// attempt follows an https:// error")
    }

    /// For a loopback registry that does not speak TLS: switches it to `http://` once.
    fn switch_to_plain_http(&self, registry: &str, error: &HttpError) -> bool {
        let loopback = url::Url::parse(&format!("https://{registry}/"))
            .ok()
            .and_then(|url| url.host().map(|host| host.to_owned()))
            .is_some_and(|host| {
                crate::locator::is_loopback_host(&match &host {
                    url::Host::Domain(domain) => url::Host::Domain(domain.as_str()),
                    url::Host::Ipv4(ip) => url::Host::Ipv4(*ip),
                    url::Host::Ipv6(ip) => url::Host::Ipv6(*ip),
                })
            });
        if !loopback || !unreachable(error) {
            return false;
        }
        self.with_host(registry, |state| {
            if state.plain_http {
                false
            } else {
                state.plain_http = true;
                true
            }
        })
    }

    /// The manifest at `reference` (a tag or digest) and its digest; the digest is computed
    /// from the bytes and must match the reference (when a digest) and `Docker-Content-Digest`.
    async fn manifest(
        &self,
        locator: &RegistryLocator,
        reference: &str,
    ) -> Result<(Fetched, Checksum), RegistryError> {
        let path = format!("manifests/{reference}");
        let answer = self
            .send(
                &locator.registry,
                &locator.repository,
                "pull",
                &path,
                |url| get_accepting(url, manifest::MANIFEST_ACCEPT),
            )
            .await
            .map_err(|error| match error {
                RegistryError::Http(HttpError::TooLarge { size, .. }) => RegistryError::Manifest {
                    locator: locator.to_string(),
                    reason: format!(
                        "the manifest at `{reference}` is larger than {MAX_DOCUMENT_SIZE} bytes{}",
                        size.map(|size| format!(" ({size} bytes)"))
                            .unwrap_or_default()
                    ),
                },
                other => other,
            })?;
        let url = self.url(&locator.registry, &locator.repository, &path);
        if answer.status == 404 {
            return Err(RegistryError::NotFound {
                url,
                detail: answer.body_start(),
                hint: format!(
                    "check that `{locator}` exists; if it was deleted or moved, run `warpgate lock --update` to lock what the registry has now"
                ),
            });
        }
        if !answer.is_success() {
            return Err(answer.into_error(&url).into());
        }
        let computed = Checksum::of(&answer.body);
        let expected = reference::parse_digest(reference).ok().or_else(|| {
            answer
                .header("docker-content-digest")
                .and_then(|value| reference::parse_digest(value).ok())
        });
        if let Some(expected) = expected
            && expected != computed
        {
            return Err(RegistryError::ManifestDigest {
                url,
                mismatch: Mismatch { expected, computed },
            });
        }
        let fetched =
            manifest::parse(&answer.body, answer.header("content-type")).map_err(|reason| {
                RegistryError::Manifest {
                    locator: locator.to_string(),
                    reason,
                }
            })?;
        Ok((fetched, computed))
    }

    /// Resolves `locator` (its digest, else its tag, else the highest tag matching
    /// `requirement`, else `latest`) to the manifest digest and the wasm layer.
    pub async fn resolve(
        &self,
        locator: &RegistryLocator,
        requirement: Option<&semver::VersionReq>,
    ) -> Result<Resolved, RegistryError> {
        let tag = match (requirement, &locator.digest, &locator.tag) {
            (Some(requirement), None, None) => Some(self.matching_tag(locator, requirement).await?),
            (_, Some(_), None) => None,
            _ => Some(locator.reference()),
        };
        let reference = match &locator.digest {
            Some(digest) => digest.to_string(),
            None => tag.clone().unwrap_or_else(|| locator.reference()),
        };
        let (fetched, manifest_digest) = self.manifest(locator, &reference).await?;
        let image: ImageManifest = match fetched {
            Fetched::Manifest(image) => *image,
            Fetched::Index(index) => {
                let entry = manifest::pick_from_index(&index).map_err(|reason| {
                    RegistryError::Manifest {
                        locator: locator.to_string(),
                        reason,
                    }
                })?;
                let digest = entry.digest.clone();
                reference::parse_digest(&digest).map_err(|reason| RegistryError::Manifest {
                    locator: locator.to_string(),
                    reason,
                })?;
                match self.manifest(locator, &digest).await?.0 {
                    Fetched::Manifest(image) => *image,
                    Fetched::Index(_) => {
                        return Err(RegistryError::Manifest {
                            locator: locator.to_string(),
                            reason: "the image index points to another index".into(),
                        });
                    }
                }
            }
        };
        let (layer, layer_digest) =
            manifest::wasm_layer(&image).map_err(|reason| RegistryError::Manifest {
                locator: locator.to_string(),
                reason,
            })?;
        Ok(Resolved {
            tag: if locator.digest.is_some() {
                locator.tag.clone()
            } else {
                tag
            },
            manifest_digest,
            layer_digest,
            size: layer.size,
        })
    }

    /// Every tag of `locator`'s repository, following `Link` pagination.
    pub async fn tags(&self, locator: &RegistryLocator) -> Result<Vec<String>, RegistryError> {
        let mut tags = Vec::new();
        let mut path = "tags/list?n=1000".to_string();
        for _ in 0..100 {
            let answer = self
                .send(
                    &locator.registry,
                    &locator.repository,
                    "pull",
                    &path,
                    |url| get_accepting(url, "application/json"),
                )
                .await?;
            let url = self.url(&locator.registry, &locator.repository, &path);
            if answer.status == 404 {
                return Err(RegistryError::NotFound {
                    url,
                    detail: answer.body_start(),
                    hint: format!("check the repository of `{locator}`"),
                });
            }
            if !answer.is_success() {
                return Err(answer.into_error(&url).into());
            }
            #[derive(serde::Deserialize)]
            struct TagList {
                #[serde(default)]
                tags: Option<Vec<String>>,
            }
            let list: TagList =
                serde_json::from_slice(&answer.body).map_err(|e| RegistryError::Manifest {
                    locator: locator.to_string(),
                    reason: format!(
                        "the tag list is not valid JSON ({})",
                        e.to_string().escape_debug()
                    ),
                })?;
            tags.extend(list.tags.unwrap_or_default());
            let next = answer
                .headers
                .get_all(header::LINK)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .find_map(|value| crate::http::parse_link(value, "next"));
            match next.and_then(|link| {
                link.split_once(&format!("/v2/{}/", locator.repository))
                    .map(|(_, rest)| rest.to_string())
            }) {
                Some(rest) => path = rest,
                None => break,
            }
        }
        Ok(tags)
    }

    async fn matching_tag(
        &self,
        locator: &RegistryLocator,
        requirement: &semver::VersionReq,
    ) -> Result<String, RegistryError> {
        let tags = self.tags(locator).await?;
        // Only well-formed tags: the one picked goes into the lockfile, and the others into
        // a message.
        let versioned: Vec<(semver::Version, &String)> = tags
            .iter()
            .filter(|tag| reference::check_tag(tag).is_ok())
            .filter_map(|tag| reference::tag_version(tag).map(|version| (version, tag)))
            .collect();
        versioned
            .iter()
            .filter(|(version, _)| requirement.matches(version))
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.len().cmp(&a.1.len())))
            .map(|(_, tag)| (*tag).clone())
            .ok_or_else(|| RegistryError::NoMatchingTag {
                locator: locator.to_string(),
                requirement: requirement.to_string(),
                found: if versioned.is_empty() {
                    "none".into()
                } else {
                    versioned
                        .iter()
                        .map(|(_, tag)| format!("`{tag}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
    }

    /// Downloads blob `digest` of `registry`/`repository` into `dest`, hashing as it
    /// streams (the caller compares the checksum); a blob over `max_size` bytes (the size
    /// the lock recorded, when known) is refused as it streams. A `404` is
    /// [`RegistryError::NotFound`].
    pub async fn pull_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &Checksum,
        dest: &Path,
        max_size: Option<u64>,
        progress: &(dyn Fn(u64, Option<u64>) + Send + Sync),
    ) -> Result<Downloaded, RegistryError> {
        let scope = format!("repository:{repository}:pull");
        let path = format!("blobs/{digest}");
        let mut probe = self.probe(registry, &scope).await;
        let mut sent = false;
        let mut https_error = None;
        loop {
            let url = self.url(registry, repository, &path);
            let mut headers = HeaderMap::new();
            let auth = self.known_auth(registry, &scope)?;
            if let Auth::Header(value) = &auth {
                headers.insert(header::AUTHORIZATION, sensitive(value)?);
            }
            let answer = match self
                .http
                .download_request(&url, &headers, dest, max_size, progress)
                .await
            {
                Ok(Ok(downloaded)) => {
                    if matches!(auth, Auth::None) {
                        self.with_host(registry, |state| state.open = true);
                    }
                    return Ok(downloaded);
                }
                Ok(Err(answer)) if answer.status == 400 && https_error.is_some() => {
                    return Err(self.back_to_https(registry, &mut https_error).into());
                }
                Ok(Err(answer)) => {
                    https_error = None;
                    answer
                }
                Err(error) => match self.after_failure(registry, error, &mut https_error) {
                    None => continue,
                    Some(error) => return Err(error.into()),
                },
            };
            match answer.status {
                401 if !sent => {
                    self.authenticate(registry, repository, &scope, "pull", &answer)
                        .await?;
                    // Known now: the other requests may go while this one downloads.
                    probe.take();
                    sent = true;
                }
                401 => return Err(self.refused(registry, repository, "pull")?),
                404 => {
                    return Err(RegistryError::NotFound {
                        url,
                        detail: answer.body_start(),
                        hint: format!(
                            "the blob is gone from `{registry}/{repository}`; if the plugin was republished, run `warpgate lock --update` to lock it again"
                        ),
                    });
                }
                _ => return Err(answer.into_error(&url).into()),
            }
        }
    }

    /// Whether blob `digest` exists in `repository` (`HEAD`).
    pub async fn blob_exists(
        &self,
        registry: &str,
        repository: &str,
        digest: &Checksum,
    ) -> Result<bool, RegistryError> {
        let path = format!("blobs/{digest}");
        let answer = self
            .send(registry, repository, "pull,push", &path, |url| {
                Request::new(Method::HEAD, url)
            })
            .await?;
        self.exists(answer, registry, repository, &path)
    }

    /// The digest `reference` (a tag or digest) points to, if the manifest exists (`HEAD`).
    pub async fn manifest_digest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Checksum>, RegistryError> {
        let path = format!("manifests/{reference}");
        let answer = self
            .send(registry, repository, "pull,push", &path, |url| {
                let mut request = Request::new(Method::HEAD, url);
                request.headers.insert(
                    header::ACCEPT,
                    HeaderValue::from_static(manifest::MANIFEST_ACCEPT),
                );
                request
            })
            .await?;
        let digest = answer
            .header("docker-content-digest")
            .and_then(|value| reference::parse_digest(value).ok());
        Ok(self
            .exists(answer, registry, repository, &path)?
            .then_some(digest)
            .flatten())
    }

    fn exists(
        &self,
        answer: Answer,
        registry: &str,
        repository: &str,
        path: &str,
    ) -> Result<bool, RegistryError> {
        match answer.status {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(answer
                .into_error(&self.url(registry, repository, path))
                .into()),
        }
    }

    /// Uploads `bytes` as blob `digest` unless the repository has it; returns whether it
    /// was uploaded.
    pub async fn push_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &Checksum,
        bytes: &[u8],
    ) -> Result<bool, RegistryError> {
        if self.blob_exists(registry, repository, digest).await? {
            return Ok(false);
        }
        let answer = self
            .send(registry, repository, "pull,push", "blobs/uploads/", |url| {
                let mut request = Request::new(Method::POST, url);
                request
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
                request
            })
            .await?;
        let start_url = self.url(registry, repository, "blobs/uploads/");
        if answer.status != 202 {
            return Err(self.push_error(answer, registry, repository, &start_url));
        }
        let location = answer.header("location").unwrap_or_default().to_string();
        let mut upload = url::Url::parse(&start_url)
            .and_then(|base| base.join(&location))
            .map_err(|e| {
                RegistryError::Http(HttpError::InvalidUrl {
                    url: location.clone(),
                    reason: format!("the upload location is not a URL ({e})"),
                })
            })?;
        upload
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        // The upload URL is the registry's; only its path and query are ours to follow.
        let relative = upload
            .path()
            .split_once(&format!("/v2/{repository}/"))
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default();
        let relative = format!("{relative}?{}", upload.query().unwrap_or_default());
        let answer = self
            .send(registry, repository, "pull,push", &relative, |url| {
                let mut request = Request::new(Method::PUT, url);
                request.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                request.body = Some(bytes.to_vec());
                request
            })
            .await?;
        if answer.status != 201 {
            return Err(self.push_error(answer, registry, repository, upload.as_str()));
        }
        Ok(true)
    }

    /// Puts manifest `bytes` (of type `media_type`) at `reference` (a tag); returns the
    /// digest the registry reports (checked against the bytes).
    pub async fn push_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        media_type: &'static str,
        bytes: &[u8],
    ) -> Result<Checksum, RegistryError> {
        let path = format!("manifests/{reference}");
        let answer = self
            .send(registry, repository, "pull,push", &path, |url| {
                let mut request = Request::new(Method::PUT, url);
                request
                    .headers
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
                request.body = Some(bytes.to_vec());
                request
            })
            .await?;
        let url = self.url(registry, repository, &path);
        if answer.status != 201 && answer.status != 200 {
            return Err(self.push_error(answer, registry, repository, &url));
        }
        let computed = Checksum::of(bytes);
        if let Some(reported) = answer
            .header("docker-content-digest")
            .and_then(|value| reference::parse_digest(value).ok())
            && reported != computed
        {
            return Err(RegistryError::ManifestDigest {
                url,
                mismatch: Mismatch {
                    expected: computed,
                    computed: reported,
                },
            });
        }
        Ok(computed)
    }

    fn push_error(
        &self,
        answer: Answer,
        registry: &str,
        repository: &str,
        url: &str,
    ) -> RegistryError {
        if answer.status == 403 {
            return RegistryError::Unauthorized {
                registry: registry.to_string(),
                repository: repository.to_string(),
                action: "push".into(),
                credentials: self.credentials(registry).ok().flatten().map(|c| c.source),
            };
        }
        answer.into_error(url).into()
    }
}

/// A header value marked sensitive (left out of debug output).
fn sensitive(value: &str) -> Result<HeaderValue, RegistryError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        RegistryError::Http(HttpError::InvalidUrl {
            url: String::new(),
            reason: "the registry credentials contain characters not allowed in a header".into(),
        })
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// A `GET` of `url` that accepts the media types `accept` lists.
fn get_accepting(url: String, accept: &'static str) -> Request {
    let mut request = Request::new(Method::GET, url);
    request
        .headers
        .insert(header::ACCEPT, HeaderValue::from_static(accept));
    request
}
