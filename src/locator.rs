//! Where a plugin comes from: `file://`, `https://`, `github://` and `registry://` locators.
//!
//! | string form | variant |
//! | --- | --- |
//! | `file://./path/to/x.wasm` | [`PluginLocator::File`] (relative to the config file's folder) |
//! | `https://host/path/x.wasm` | [`PluginLocator::Url`] (`http://` only for loopback hosts) |
//! | `github://org/repo[/project][@tag]` | [`PluginLocator::GitHub`] |
//! | `registry://host[:port]/ns/image[:tag][@sha256:…]` | [`PluginLocator::Registry`] (see [`RegistryLocator`]) |
//!
//! Every form round-trips through [`FromStr`] / [`Display`](fmt::Display) and serde, where a
//! locator is a plain string.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::oci::reference::RegistryLocator;

/// A plugin's source.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PluginLocator {
    /// A local `.wasm` file: `file://<file>`.
    File {
        /// The path as written after `file://`.
        file: String,
        /// The absolute path, once resolved against the config file's folder.
        path: Option<PathBuf>,
    },
    /// A direct download: `https://…`, or `http://` to a loopback host.
    Url {
        /// The full URL.
        url: String,
    },
    /// A GitHub release asset: `github://org/repo[/project][@tag]`.
    GitHub(GitHubLocator),
    /// An OCI registry artifact: `registry://host[:port]/repository[:tag][@sha256:…]`.
    Registry(RegistryLocator),
}

/// A GitHub release, optionally of one project in a monorepo, optionally at a fixed tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GitHubLocator {
    /// `org/repo`.
    pub repo_slug: String,
    /// The monorepo project, whose releases are tagged `project@v1.2.3` and the like.
    pub project_name: Option<String>,
    /// The tag as written (`v1.2.3`, or a full `project@v1.2.3`); `None` means the latest release.
    pub tag: Option<String>,
}

/// Why a string is not a valid [`PluginLocator`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid plugin locator `{}`: {reason}", input.escape_debug())]
pub struct LocatorError {
    /// The rejected string.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl crate::diagnostic::Diagnostic for LocatorError {}

/// Lets `PluginLoader::load_plugin` take a locator by value or by reference.
impl AsRef<PluginLocator> for PluginLocator {
    fn as_ref(&self) -> &PluginLocator {
        self
    }
}

impl PluginLocator {
    /// Whether the locator names a moving target (a GitHub release without a tag, or a URL
    /// whose content may change), so that `--update` re-resolves it.
    pub fn is_floating(&self) -> bool {
        match self {
            Self::File { .. } => false,
            Self::Url { .. } => true,
            Self::GitHub(github) => github.tag.is_none(),
            Self::Registry(registry) => registry.is_floating(),
        }
    }
}

impl GitHubLocator {
    /// The repository's owner (`org` in `org/repo`).
    pub fn owner(&self) -> &str {
        self.repo_slug.split('/').next().unwrap_or_default()
    }

    /// The repository's name (`repo` in `org/repo`).
    pub fn repo(&self) -> &str {
        self.repo_slug.split('/').nth(1).unwrap_or_default()
    }
}

/// A character that changes how text is shown rather than showing itself: ASCII and Unicode
/// control characters, and the bidirectional overrides and isolates that can make a
/// reviewer read a different string than the one stored.
pub fn is_hidden_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Whether `host` is a loopback host: `localhost`, 127.0.0.0/8 or `::1`.
pub fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(domain) => domain.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// Checks that `url` may be fetched: `https://`, or `http://` to a loopback host.
pub fn check_url_scheme(url: &url::Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if url.host().as_ref().is_some_and(is_loopback_host) => Ok(()),
        "http" => Err(
            "plain `http://` is only allowed for loopback hosts (`localhost`, 127.0.0.0/8, `[::1]`); use `https://`"
                .to_string(),
        ),
        other => Err(format!(
            "unsupported scheme `{other}://`; expected `file://`, `https://` or `github://`"
        )),
    }
}

fn is_name_part(part: &str) -> bool {
    !part.is_empty()
        && part != "."
        && part != ".."
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_github(input: &str, rest: &str) -> Result<GitHubLocator, LocatorError> {
    let error = |reason: &str| LocatorError {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let (path, tag) = match rest.split_once('@') {
        Some((path, tag)) => (path, Some(tag)),
        None => (rest, None),
    };
    if let Some(tag) = tag
        && let Err(reason) = crate::release::check_tag(tag)
    {
        return Err(error(&format!("the tag after `@` {reason}")));
    }
    let parts: Vec<&str> = path.split('/').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(error("expected `github://org/repo[/project][@tag]`"));
    }
    if let Some(bad) = parts.iter().find(|part| !is_name_part(part)) {
        return Err(error(&format!(
            "`{bad}` is not a valid GitHub owner, repository or project name"
        )));
    }
    // A project names its release tags (`project@v1.2.3`), and a git tag cannot hold `..`.
    if let Some(project) = parts.get(2).filter(|project| project.contains("..")) {
        return Err(error(&format!(
            "project name `{project}` contains `..`, which its release tags (`{project}@…`) cannot hold"
        )));
    }
    Ok(GitHubLocator {
        repo_slug: format!("{}/{}", parts[0], parts[1]),
        project_name: parts.get(2).map(std::string::ToString::to_string),
        tag: tag.map(str::to_string),
    })
}

impl FromStr for PluginLocator {
    type Err = LocatorError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| LocatorError {
            input: input.to_string(),
            reason,
        };
        if input.trim() != input {
            return Err(error("leading or trailing whitespace".into()));
        }
        if let Some(control) = input.chars().find(|c| is_hidden_control(*c)) {
            return Err(error(format!(
                "contains the control character `{}`; locators are plain text",
                control.escape_unicode()
            )));
        }
        if let Some(file) = input.strip_prefix("file://") {
            if file.is_empty() {
                return Err(error("expected a path after `file://`".into()));
            }
            return Ok(Self::File {
                file: file.to_string(),
                path: None,
            });
        }
        if let Some(rest) = input.strip_prefix("github://") {
            return parse_github(input, rest).map(Self::GitHub);
        }
        if let Some(rest) = input.strip_prefix("registry://") {
            return RegistryLocator::parse_body(rest)
                .map(Self::Registry)
                .map_err(error);
        }
        if input.starts_with("https://") || input.starts_with("http://") {
            let url = url::Url::parse(input).map_err(|e| error(e.to_string()))?;
            check_url_scheme(&url).map_err(error)?;
            if !url.username().is_empty() || url.password().is_some() {
                return Err(error(
                    "credentials in URLs are not allowed (they would be written to the lockfile)"
                        .into(),
                ));
            }
            return Ok(Self::Url {
                url: input.to_string(),
            });
        }
        match input.split_once("://") {
            Some((scheme, _)) => Err(error(format!(
                "unsupported scheme `{scheme}://`; expected `file://`, `https://`, `github://` or `registry://`"
            ))),
            None => Err(error(
                "expected `file://…`, `https://…`, `github://org/repo[/project][@tag]` or `registry://host/repository[:tag]`".into(),
            )),
        }
    }
}

impl fmt::Display for PluginLocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { file, .. } => write!(f, "file://{file}"),
            Self::Url { url } => f.write_str(url),
            Self::GitHub(github) => github.fmt(f),
            Self::Registry(registry) => registry.fmt(f),
        }
    }
}

impl fmt::Display for GitHubLocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "github://{}", self.repo_slug)?;
        if let Some(project) = &self.project_name {
            write!(f, "/{project}")?;
        }
        if let Some(tag) = &self.tag {
            write!(f, "@{tag}")?;
        }
        Ok(())
    }
}

impl Serialize for PluginLocator {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PluginLocator {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms_round_trip() {
        for input in [
            "file://./plugins/echo.wasm",
            "file://../x.wasm",
            "file:///abs/path/x.wasm",
            "https://plugins.example.com/hello-1.0.0.wasm",
            "https://example.com:8443/a/b.wasm?x=1",
            "http://127.0.0.1:8080/x.wasm",
            "http://127.5.0.1/x.wasm",
            "http://localhost/x.wasm",
            "http://[::1]:9000/x.wasm",
            "github://moonrepo/deno-plugin",
            "github://moonrepo/deno-plugin@v1.0.0",
            "github://moonrepo/plugins/node_tool",
            "github://moonrepo/plugins/node_tool@v0.13.0",
            "github://moonrepo/plugins/node_tool@node_tool@v0.13.0",
            "github://org/repo.js/project-1@1.2.3-rc.1",
            "registry://ghcr.io/moonrepo/node_tool:0.17.9",
            "registry://localhost:5000/ns/sub/img",
            "registry://127.0.0.1:5000/ns/img:v1.0@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ] {
            let locator: PluginLocator = input.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(locator.to_string(), input);
            let json = serde_json::to_string(&locator).unwrap();
            assert_eq!(json, format!("\"{input}\""));
            assert_eq!(
                serde_json::from_str::<PluginLocator>(&json).unwrap(),
                locator
            );
        }
    }

    #[test]
    fn control_and_bidi_characters_are_refused_and_shown_escaped() {
        for input in [
            "file://./x\u{1b}[2J.wasm",
            "file://./a\nb.wasm",
            "file://./evil\u{202e}mvsaw.wasm",
            "https://example.com/\u{2066}x.wasm",
            "github://org/repo@v1\u{7}",
        ] {
            let error = input.parse::<PluginLocator>().unwrap_err();
            let message = error.to_string();
            assert!(message.contains("control character"), "{message}");
            assert!(
                !message.chars().any(is_hidden_control),
                "raw control character in {message:?}"
            );
        }
    }

    #[test]
    fn github_parts() {
        let PluginLocator::GitHub(github) = "github://moonrepo/plugins/node_tool@v0.13.0"
            .parse()
            .unwrap()
        else {
            panic!("not github")
        };
        assert_eq!(github.repo_slug, "moonrepo/plugins");
        assert_eq!(github.owner(), "moonrepo");
        assert_eq!(github.repo(), "plugins");
        assert_eq!(github.project_name.as_deref(), Some("node_tool"));
        assert_eq!(github.tag.as_deref(), Some("v0.13.0"));
    }

    #[test]
    fn rejected_forms() {
        for (input, reason) in [
            ("", "expected `file://"),
            ("plugins/x.wasm", "expected `file://"),
            (" file://x.wasm", "whitespace"),
            ("file://", "expected a path"),
            ("ftp://example.com/x.wasm", "unsupported scheme `ftp://`"),
            ("http://example.com/x.wasm", "only allowed for loopback"),
            ("http://10.0.0.1/x.wasm", "only allowed for loopback"),
            ("https://user:pw@example.com/x.wasm", "credentials"),
            ("https://", "empty host"),
            ("github://moonrepo", "expected `github://org/repo"),
            ("github://a/b/c/d", "expected `github://org/repo"),
            ("github://a//c", "not a valid GitHub"),
            ("github://a/../c", "not a valid GitHub"),
            ("github://a/b@", "tag after `@` is empty"),
            ("github://a/b@v 1", "tag after `@` contains whitespace"),
            ("github://a/b@../../x", "tag after `@` contains `/`"),
            (
                "github://a/b@v1..2",
                "tag after `@` contains `/`, `\\` or `..`",
            ),
            ("github://a/b@a\\b", "tag after `@` contains `/`"),
            ("github://a/b@v1\u{7}", "control character"),
            ("github://a/b@.", "tag after `@` is `.`"),
            ("github://a/b/c..d@v1", "project name `c..d` contains `..`"),
            ("github://a/b/_..", "project name `_..` contains `..`"),
            ("github://a b/c", "not a valid GitHub"),
        ] {
            let error = input.parse::<PluginLocator>().unwrap_err();
            assert!(
                error.to_string().contains(reason),
                "{input}: {error} (wanted {reason})"
            );
            assert!(serde_json::from_str::<PluginLocator>(&format!("{input:?}")).is_err());
        }
    }

    #[test]
    fn floating() {
        let floating = |s: &str| s.parse::<PluginLocator>().unwrap().is_floating();
        assert!(floating("github://a/b"));
        assert!(floating("https://example.com/x.wasm"));
        assert!(!floating("github://a/b@v1"));
        assert!(!floating("file://x.wasm"));
    }
}
