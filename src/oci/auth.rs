//! Registry credentials, found the way container tools find them, and `WWW-Authenticate`
//! challenges.
//!
//! For a registry host, the first of these that has an entry wins:
//!
//! 1. `WARPGATE_REGISTRY_AUTH` (for CI): whitespace-separated `HOST=USERNAME:PASSWORD`
//!    entries, for example `ghcr.io=bot:ghp_xxx registry.example.com:5000=ci:secret`.
//! 2. The Docker CLI's `config.json` (in `DOCKER_CONFIG`, else `~/.docker`): the host's
//!    `credHelpers` entry, else `credsStore`, run as `docker-credential-<name> get`; else the
//!    host's `auths` entry (`auth` = base64 of `user:password`, or an `identitytoken`, or a
//!    `registrytoken`).
//!
//! Without credentials requests go anonymously, which public registries answer with an
//! anonymous bearer token. Credentials are bound to their host: the client sends them only
//! to that registry (and to its token service under the rule of [`may_send_credentials`]),
//! never along a redirect to blob storage. They never appear in `Debug` output, messages or
//! files; a malformed Docker config or helper answer is reported by position only, since
//! serde's messages quote values.

use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::env;

/// A secret for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// A username and password (or access token used as a password): Basic auth, and the
    /// token service's `GET` with Basic auth.
    Password {
        /// The username.
        username: String,
        /// The password.
        password: String,
    },
    /// An `OAuth2` refresh token (Docker's `identitytoken`), traded at the token service.
    IdentityToken(String),
    /// A ready bearer token (Docker's `registrytoken`), sent as is.
    RegistryToken(String),
}

/// Credentials for one registry host, and where they came from (for messages).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The secret.
    pub secret: Secret,
    /// Where they came from, e.g. "`WARPGATE_REGISTRY_AUTH`" or "`~/.docker/config.json`".
    pub source: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.secret {
            Secret::Password { .. } => "password",
            Secret::IdentityToken(_) => "identity token",
            Secret::RegistryToken(_) => "registry token",
        };
        f.debug_struct("Credentials")
            .field("kind", &kind)
            .field("source", &self.source)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The `Authorization: Basic …` value, for a password.
    pub fn basic(&self) -> Option<String> {
        match &self.secret {
            Secret::Password { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            _ => None,
        }
    }
}

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The Docker config is not valid JSON.
    #[error("`{}` is not a valid Docker config: {reason}", path.display())]
    DockerConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A `WARPGATE_REGISTRY_AUTH` entry is malformed.
    #[error(
        "`{}` has an entry that is not `HOST=USERNAME:PASSWORD` (entry {index})",
        env::WARPGATE_REGISTRY_AUTH
    )]
    EnvEntry {
        /// The 1-based position of the bad entry (its text is never shown: it may hold a
        /// password).
        index: usize,
    },
    /// A credential helper failed.
    #[error("the credential helper `docker-credential-{helper}` failed for `{host}`: {reason}")]
    Helper {
        /// The helper's name.
        helper: String,
        /// The registry host.
        host: String,
        /// What went wrong.
        reason: String,
    },
}

impl crate::diagnostic::Diagnostic for AuthError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Self::DockerConfig { .. } => format!(
                "fix the file or point `{}` at another folder",
                env::DOCKER_CONFIG
            ),
            Self::EnvEntry { .. } => {
                "separate entries with spaces or newlines, e.g. `ghcr.io=me:token`".into()
            }
            Self::Helper { helper, host, .. } => format!(
                "check that `docker-credential-{helper}` is on `PATH` and logged in (`docker login {host}`)"
            ),
        })
    }
}

/// Finds credentials for registry hosts (see the module docs).
#[derive(Clone, Default)]
pub struct CredentialStore {
    env_entries: Option<String>,
    docker_config: Option<PathBuf>,
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The entries hold passwords: only whether there are some is shown.
        f.debug_struct("CredentialStore")
            .field(
                "env_entries",
                &self.env_entries.as_ref().map(|_| "<redacted>"),
            )
            .field("docker_config", &self.docker_config)
            .finish()
    }
}

impl CredentialStore {
    /// Reads `WARPGATE_REGISTRY_AUTH` and locates the Docker config (`DOCKER_CONFIG`, else
    /// `~/.docker/config.json`).
    pub fn from_env() -> Self {
        let docker_config = env::var(env::DOCKER_CONFIG)
            .map(PathBuf::from)
            .or_else(|| dirs::home_dir().map(|home| home.join(".docker")))
            .map(|dir| dir.join("config.json"));
        Self {
            env_entries: env::var(env::WARPGATE_REGISTRY_AUTH),
            docker_config,
        }
    }

    /// A store holding only `entries`, written as `WARPGATE_REGISTRY_AUTH` is (no Docker
    /// config): for applications with credentials of their own, and tests.
    pub fn from_entries(entries: impl Into<String>) -> Self {
        Self {
            env_entries: Some(entries.into()),
            docker_config: None,
        }
    }

    /// A store with no credentials at all (every request anonymous).
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// The credentials for registry `host` (`host[:port]` as written in locators), if any.
    pub fn lookup(&self, host: &str) -> Result<Option<Credentials>, AuthError> {
        if let Some(entries) = &self.env_entries {
            for (index, entry) in entries.split_whitespace().enumerate() {
                let parsed = entry
                    .split_once('=')
                    .and_then(|(entry_host, rest)| {
                        let (username, password) = rest.split_once(':')?;
                        Some((entry_host, username, password))
                    })
                    .filter(|(entry_host, username, password)| {
                        !entry_host.is_empty() && !username.is_empty() && !password.is_empty()
                    });
                let Some((entry_host, username, password)) = parsed else {
                    return Err(AuthError::EnvEntry { index: index + 1 });
                };
                if same_registry(entry_host, host) {
                    return Ok(Some(Credentials {
                        secret: Secret::Password {
                            username: username.to_string(),
                            password: password.to_string(),
                        },
                        source: format!("`{}`", env::WARPGATE_REGISTRY_AUTH),
                    }));
                }
            }
        }
        let Some(path) = &self.docker_config else {
            return Ok(None);
        };
        let Ok(text) = fs_err::read_to_string(path) else {
            return Ok(None);
        };
        // A serde message may quote the offending value, which here can be a secret: only
        // the position is reported.
        let config: DockerConfig =
            serde_json::from_str(&text).map_err(|e| AuthError::DockerConfig {
                path: path.clone(),
                reason: json_position(&e),
            })?;
        let source = format!("`{}`", path.display());
        let helper = config
            .cred_helpers
            .iter()
            .find(|(key, _)| same_registry(key, host))
            .map(|(_, helper)| helper.clone())
            .or(config.creds_store.clone())
            .filter(|helper| !helper.is_empty());
        if let Some(helper) = helper
            && let Some(credentials) = run_helper(&helper, host)?
        {
            return Ok(Some(credentials));
        }
        let Some(entry) = config
            .auths
            .iter()
            .find(|(key, _)| same_registry(key, host))
            .map(|(_, entry)| entry)
        else {
            return Ok(None);
        };
        if let Some(token) = entry.registrytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials {
                secret: Secret::RegistryToken(token.clone()),
                source,
            }));
        }
        if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials {
                secret: Secret::IdentityToken(token.clone()),
                source,
            }));
        }
        let (username, password) = match (&entry.auth, &entry.username, &entry.password) {
            (Some(auth), _, _) if !auth.is_empty() => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(|| AuthError::DockerConfig {
                        path: path.clone(),
                        reason: format!("the `auth` of `{host}` is not base64 of `user:password`"),
                    })?;
                let (username, password) =
                    decoded
                        .split_once(':')
                        .ok_or_else(|| AuthError::DockerConfig {
                            path: path.clone(),
                            reason: format!("the `auth` of `{host}` is not `user:password`"),
                        })?;
                (username.to_string(), password.to_string())
            }
            (_, Some(username), Some(password)) => (username.clone(), password.clone()),
            _ => return Ok(None),
        };
        Ok(Some(Credentials {
            secret: Secret::Password { username, password },
            source,
        }))
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, DockerAuth>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// Where a JSON document is invalid, without the serde message (which may quote a value).
fn json_position(error: &serde_json::Error) -> String {
    let kind = match error.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "a value of the wrong type",
        serde_json::error::Category::Eof => "cut short",
    };
    format!("{kind} at line {}, column {}", error.line(), error.column())
}

/// Whether a Docker config key (`ghcr.io`, `https://ghcr.io`, `https://index.docker.io/v1/`)
/// names registry `host`.
pub fn same_registry(key: &str, host: &str) -> bool {
    let normalise = |text: &str| -> String {
        let text = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"))
            .unwrap_or(text);
        let text = text
            .split('/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match text.as_str() {
            "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
            _ => text,
        }
    };
    normalise(key) == normalise(host)
}

/// Runs `docker-credential-<helper> get` for `host`.
fn run_helper(helper: &str, host: &str) -> Result<Option<Credentials>, AuthError> {
    let error = |reason: String| AuthError::Helper {
        helper: helper.to_string(),
        host: host.to_string(),
        reason,
    };
    if !helper
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(error("the helper name is not a plain name".into()));
    }
    let server = if same_registry(host, "docker.io") {
        "https://index.docker.io/v1/".to_string()
    } else {
        host.to_string()
    };
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| error(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| error(e.to_string()))?;
    }
    let output = child.wait_with_output().map_err(|e| error(e.to_string()))?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        if text.to_ascii_lowercase().contains("not found") {
            return Ok(None);
        }
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let line: String = line.chars().take(200).collect();
        return Err(error(format!(
            "it exited with {} ({})",
            output.status,
            line.escape_debug()
        )));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&output.stdout).map_err(|e| {
        error(format!(
            "its answer is not the expected JSON ({})",
            json_position(&e)
        ))
    })?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    let secret = if answer.username == "<token>" {
        Secret::IdentityToken(answer.secret)
    } else {
        Secret::Password {
            username: answer.username,
            password: answer.secret,
        }
    };
    Ok(Some(Credentials {
        secret,
        source: format!("`docker-credential-{helper}`"),
    }))
}

/// A `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=…`.
    Basic,
    /// `Bearer realm=…,service=…,scope=…`.
    Bearer {
        /// The token service's URL.
        realm: String,
        /// The `service` parameter, if given.
        service: Option<String>,
        /// The `scope` parameter, if given.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value (`Basic …` or `Bearer k="v",…`).
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = std::collections::BTreeMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            // A quoted-string (RFC 9110): `\x` stands for `x`.
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next()? {
                    (index, '"') => break index,
                    (_, '\\') => value.push(chars.next()?.1),
                    (_, c) => value.push(c),
                }
            };
            (value, &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim_end().to_string(), &after[end..])
        };
        params.insert(key, value);
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge::Bearer {
        realm: params.remove("realm")?,
        service: params.remove("service"),
        scope: params.remove("scope"),
    })
}

/// Whether credentials for registry host `registry` (`host[:port]`) may go to the token
/// service at `realm_host`: the same host (on any port), or, for domain names, a sibling
/// under the same parent domain or that parent itself, where the parent has at least two
/// labels (`auth.docker.io` for `registry-1.docker.io`, `gitlab.example.com` or
/// `example.com` for `registry.example.com`, but never `b.io` for `a.io`). IP addresses
/// only match themselves.
pub fn may_send_credentials(registry: &str, realm_host: &str) -> bool {
    let host = |text: &str| -> Option<url::Host> {
        let parsed = url::Url::parse(&format!("https://{text}/")).ok()?;
        parsed.host().map(|host| host.to_owned())
    };
    let (Some(registry), Some(realm)) = (host(registry), host(realm_host)) else {
        return false;
    };
    match (&registry, &realm) {
        (url::Host::Domain(registry), url::Host::Domain(realm)) => {
            let (registry, realm) = (registry.to_ascii_lowercase(), realm.to_ascii_lowercase());
            if registry == realm {
                return true;
            }
            let parent = |host: &str| -> Option<String> {
                let (_, parent) = host.split_once('.')?;
                parent.contains('.').then(|| parent.to_string())
            };
            match parent(&registry) {
                Some(shared) => parent(&realm).as_ref() == Some(&shared) || realm == shared,
                None => false,
            }
        }
        _ => registry == realm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/x:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/x:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(
            parse_challenge("Bearer\trealm=\"https://a.io/t\\\"x\\\\\",service=reg , scope=s"),
            Some(Challenge::Bearer {
                realm: "https://a.io/t\"x\\".into(),
                service: Some("reg".into()),
                scope: Some("s".into()),
            })
        );
        assert_eq!(parse_challenge(r#"Bearer realm="unterminated"#), None);
    }

    #[test]
    fn credentials_stay_with_their_host() {
        assert!(same_registry("https://ghcr.io", "ghcr.io"));
        assert!(same_registry("https://index.docker.io/v1/", "docker.io"));
        assert!(!same_registry("ghcr.io", "ghcr.io.evil.test"));
        assert!(!same_registry("localhost:5000", "localhost:5001"));
        assert!(may_send_credentials(
            "registry-1.docker.io",
            "auth.docker.io"
        ));
        assert!(may_send_credentials("ghcr.io", "ghcr.io"));
        assert!(may_send_credentials("127.0.0.1:5000", "127.0.0.1"));
        assert!(!may_send_credentials("ghcr.io", "evil.io"));
        assert!(!may_send_credentials("a.example.com", "b.attacker.com"));
        assert!(may_send_credentials("registry.gitlab.com", "gitlab.com"));
        assert!(may_send_credentials("[::1]:5000", "[::1]"));
        assert!(!may_send_credentials("10.0.0.5:5000", "20.0.0.5"));
        assert!(!may_send_credentials("127.0.0.1:5000", "localhost"));
        assert!(!may_send_credentials("example.com", "com"));
    }

    #[test]
    fn env_and_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs_err::write(
            &path,
            r#"{"auths":{"https://reg.example.com":{"auth":"dXNlcjpwYXNz"},"tok.example.com":{"identitytoken":"refresh"}}}"#,
        )
        .unwrap();
        let store = CredentialStore {
            env_entries: Some("ci.example.com=bot:s3cret:with:colons".into()),
            docker_config: Some(path),
        };
        let found = store.lookup("ci.example.com").unwrap().unwrap();
        assert!(
            found.secret
                == Secret::Password {
                    username: "bot".into(),
                    password: "s3cret:with:colons".into()
                }
        );
        assert!(!format!("{found:?}").contains("s3cret"));
        assert!(!format!("{store:?}").contains("s3cret"));
        let found = store.lookup("reg.example.com").unwrap().unwrap();
        assert_eq!(found.basic().as_deref(), Some("Basic dXNlcjpwYXNz"));
        assert!(
            store.lookup("tok.example.com").unwrap().unwrap().secret
                == Secret::IdentityToken("refresh".into())
        );
        assert!(store.lookup("other.example.com").unwrap().is_none());
        let bad = CredentialStore {
            env_entries: Some("nonsense".into()),
            docker_config: None,
        };
        let message = bad.lookup("x.io").unwrap_err().to_string();
        assert!(
            message.contains("entry 1") && !message.contains("nonsense"),
            "{message}"
        );
        for entries in ["a.io=:pw", "a.io=user:", "=user:pw", "a.io=b.io=user"] {
            let bad = CredentialStore {
                env_entries: Some(format!("ok.io=u:p {entries}")),
                docker_config: None,
            };
            let message = bad.lookup("x.io").unwrap_err().to_string();
            assert!(message.contains("entry 2"), "{entries}: {message}");
        }
    }

    #[test]
    fn docker_config_errors_never_quote_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs_err::write(&path, r#"{"auths":{"reg.example.com":"dG9wOnNlY3JldA=="}}"#).unwrap();
        let store = CredentialStore {
            env_entries: None,
            docker_config: Some(path),
        };
        let message = store.lookup("reg.example.com").unwrap_err().to_string();
        assert!(
            !message.contains("dG9wOnNlY3JldA") && message.contains("line 1, column"),
            "{message}"
        );
    }
}
