//! `registry://` locators: a plugin stored as an OCI artifact in a container registry.
//!
//! ```text
//! registry://HOST[:PORT]/NAMESPACE/…/IMAGE[:TAG][@sha256:DIGEST]
//! ```
//!
//! The first path segment is always the registry host: it must contain a `.` or a `:` (a
//! port), or be `localhost`, the rule container tools use, so that `localhost:5000/ns/img:1.0`
//! is the host `localhost:5000`, the repository `ns/img` and the tag `1.0`. There is no
//! implicit Docker Hub: write `registry://docker.io/library/…`. Repository components follow
//! the OCI distribution grammar (lowercase letters and digits, separated by `.`, `_`, `__` or
//! dashes); a tag is at most 128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`. A locator
//! with neither tag nor digest means the tag `latest` (or, with a `version` requirement in
//! the config, the highest matching semver tag).

use std::fmt;

use crate::checksum::Checksum;

/// An OCI registry artifact: `registry://host[:port]/repository[:tag][@sha256:…]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegistryLocator {
    /// The registry's host, with its port when one was written (`ghcr.io`, `localhost:5000`).
    pub registry: String,
    /// The repository inside the registry (`moonrepo/node_tool`).
    pub repository: String,
    /// The tag, if one was written.
    pub tag: Option<String>,
    /// The manifest digest, if one was written.
    pub digest: Option<Checksum>,
}

/// The tag a locator without tag or digest stands for, as in container tools.
pub const DEFAULT_TAG: &str = "latest";

impl RegistryLocator {
    /// Parses what follows `registry://`; the error is the reason only.
    pub fn parse_body(body: &str) -> Result<Self, String> {
        let (rest, digest) = match body.split_once('@') {
            Some((rest, digest)) => {
                let parsed = parse_digest(digest)?;
                (rest, Some(parsed))
            }
            None => (body, None),
        };
        let Some((host, path)) = rest.split_once('/') else {
            return Err(
                "expected `registry://HOST[:PORT]/NAMESPACE/IMAGE[:TAG][@sha256:DIGEST]`".into(),
            );
        };
        check_host(host)?;
        let (repository, tag) = match path.rsplit_once('/') {
            Some((namespace, last)) => match last.split_once(':') {
                Some((image, tag)) => (format!("{namespace}/{image}"), Some(tag)),
                None => (path.to_string(), None),
            },
            None => match path.split_once(':') {
                Some((image, tag)) => (image.to_string(), Some(tag)),
                None => (path.to_string(), None),
            },
        };
        check_repository(&repository)?;
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        Ok(Self {
            registry: host.to_string(),
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The reference a pull starts from: the digest if written, else the tag, else `latest`.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// Whether the locator names a moving target: a tag (or `latest`) without a digest.
    pub fn is_floating(&self) -> bool {
        self.digest.is_none()
    }

    /// The host the registry API answers on: `registry-1.docker.io` for `docker.io`, the
    /// written host otherwise.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// The same repository without tag or digest (`registry://host/repository`).
    pub fn repository_locator(&self) -> Self {
        Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: None,
        }
    }
}

/// Parses a team mirror: a `registry://HOST/NAMESPACE` locator without tag or digest.
pub fn parse_mirror(text: &str) -> Result<RegistryLocator, String> {
    let Some(body) = text.strip_prefix("registry://") else {
        return Err(format!(
            "the mirror `{}` is not a `registry://HOST/NAMESPACE` repository",
            text.escape_debug()
        ));
    };
    let locator = RegistryLocator::parse_body(body)
        .map_err(|reason| format!("the mirror `{}`: {reason}", text.escape_debug()))?;
    if locator.tag.is_some() || locator.digest.is_some() {
        return Err(format!(
            "the mirror `{text}` has a tag or digest; a mirror is a repository, `registry://HOST/NAMESPACE`"
        ));
    }
    Ok(locator)
}

/// The API host of registry `host`: Docker Hub's `docker.io` answers on
/// `registry-1.docker.io`.
pub fn api_host(host: &str) -> &str {
    if host.eq_ignore_ascii_case("docker.io") || host.eq_ignore_ascii_case("index.docker.io") {
        "registry-1.docker.io"
    } else {
        host
    }
}

impl fmt::Display for RegistryLocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "registry://{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Parses a `sha256:<64 lowercase hex>` digest.
pub fn parse_digest(digest: &str) -> Result<Checksum, String> {
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| {
        format!(
            "the digest `{}` is not `sha256:<64 hex digits>`; only sha256 digests are supported",
            digest.escape_debug()
        )
    })?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "the digest `{}` is not `sha256:<64 lowercase hex digits>`",
            digest.escape_debug()
        ));
    }
    digest
        .parse::<Checksum>()
        .map_err(|e| format!("the digest `{digest}`: {e}"))
}

/// Checks a registry host: a first segment with a `.` or a port, or `localhost`.
pub fn check_host(host: &str) -> Result<(), String> {
    let named = host.contains(['.', ':']) || host.eq_ignore_ascii_case("localhost");
    if !named {
        return Err(format!(
            "`{}` is not a registry host: the first segment must name the registry (`ghcr.io`, `registry.example.com:5000`, `localhost:5000`); Docker Hub is `docker.io`",
            host.escape_debug()
        ));
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(':') && !port.contains(']') => (name, Some(port)),
        _ => (host, None),
    };
    if let Some(port) = port
        && (port.is_empty() || port.parse::<u16>().is_err())
    {
        return Err(format!("`{}` has an invalid port", host.escape_debug()));
    }
    let parsed = url::Url::parse(&format!("https://{host}/")).map_err(|e| {
        format!(
            "`{}` is not a valid registry host: {e}",
            host.escape_debug()
        )
    })?;
    let valid_name = name.starts_with('[')
        || name.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !valid_name || parsed.host_str().is_none() {
        return Err(format!(
            "`{}` is not a valid registry host",
            host.escape_debug()
        ));
    }
    Ok(())
}

/// Checks a repository name against the OCI distribution grammar.
pub fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() || repository.len() > 255 {
        return Err("expected a repository (`NAMESPACE/IMAGE`) after the registry host".into());
    }
    for component in repository.split('/') {
        if !is_path_component(component) {
            return Err(format!(
                "`{}` is not a valid repository name component: use lowercase letters and digits, separated by `.`, `_`, `__` or `-`",
                component.escape_debug()
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        if alnum(bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !alnum(bytes[index]) {
            index += 1;
        }
        let separator = &component[start..index];
        let ok = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && !tag.starts_with(['.', '-']);
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid tag: up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
            tag.escape_debug()
        ))
    }
}

/// Checks that a lock entry of a `registry://` locator records exactly that registry and
/// repository, a tag the locator stands for, and a manifest digest (the locator's, when it
/// names one), and nothing of other kinds (`url`, `path`, `asset`). A hand-edited lock
/// therefore cannot send a pull to another registry or repository.
pub fn check_locked(
    locator: &RegistryLocator,
    locked: &crate::lockfile::LockedPlugin,
) -> Result<(), String> {
    if locked.url.is_some() || locked.path.is_some() || locked.asset.is_some() {
        return Err("a `registry://` entry has no `url`, `path` or `asset`".into());
    }
    match &locked.registry {
        Some(registry) if registry.eq_ignore_ascii_case(&locator.registry) => {}
        Some(registry) => {
            return Err(format!(
                "`registry = \"{}\"` is not the locator's registry; expected `{}`",
                registry.escape_debug(),
                locator.registry
            ));
        }
        None => {
            return Err(format!(
                "a `registry://` entry needs `registry = \"{}\"` (from its locator)",
                locator.registry
            ));
        }
    }
    if locked.repository.as_deref() != Some(locator.repository.as_str()) {
        return Err(match &locked.repository {
            Some(repository) => format!(
                "`repository = \"{}\"` is not the locator's repository; expected `{}`",
                repository.escape_debug(),
                locator.repository
            ),
            None => format!(
                "a `registry://` entry needs `repository = \"{}\"` (from its locator)",
                locator.repository
            ),
        });
    }
    let Some(digest) = &locked.digest else {
        return Err("a `registry://` entry needs the manifest `digest`".into());
    };
    if let Some(wanted) = &locator.digest
        && wanted != digest
    {
        return Err(format!(
            "`digest = \"{digest}\"` is not the locator's digest; expected `{wanted}`"
        ));
    }
    match (&locator.tag, &locator.digest, &locked.tag) {
        (Some(wanted), _, Some(tag)) if wanted == tag => {}
        (Some(wanted), _, _) => {
            return Err(format!(
                "a `registry://` entry needs `tag = \"{wanted}\"` (its locator's)"
            ));
        }
        (None, Some(_), None) => {}
        (None, Some(_), Some(_)) => {
            return Err("a `registry://` entry locked by digest alone has no `tag`".into());
        }
        (None, None, Some(tag)) => {
            check_tag(tag)
                .map_err(|reason| format!("`tag = \"{}\"`: {reason}", tag.escape_debug()))?;
            match &locked.requirement {
                Some(requirement) => {
                    if !tag_version(tag).is_some_and(|version| requirement.matches(&version)) {
                        return Err(format!(
                            "`tag = \"{}\"` does not match `requirement = \"{requirement}\"`",
                            tag.escape_debug()
                        ));
                    }
                }
                None if tag == DEFAULT_TAG => {}
                None => {
                    return Err(format!(
                        "`tag = \"{}\"` is not the locator's tag; expected `{DEFAULT_TAG}`",
                        tag.escape_debug()
                    ));
                }
            }
        }
        (None, None, None) => {
            return Err("a `registry://` entry needs the `tag` it resolved".into());
        }
    }
    Ok(())
}

/// The semver version a tag stands for: `1.2.3` or `v1.2.3`.
pub fn tag_version(tag: &str) -> Option<semver::Version> {
    semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let parsed = RegistryLocator::parse_body("localhost:5000/ns/img:1.0").unwrap();
        assert_eq!(parsed.registry, "localhost:5000");
        assert_eq!(parsed.repository, "ns/img");
        assert_eq!(parsed.tag.as_deref(), Some("1.0"));
        assert_eq!(parsed.reference(), "1.0");
        let digest = format!("sha256:{}", "a".repeat(64));
        let parsed =
            RegistryLocator::parse_body(&format!("ghcr.io/moonrepo/tools/node_tool@{digest}"))
                .unwrap();
        assert_eq!(parsed.repository, "moonrepo/tools/node_tool");
        assert_eq!(parsed.tag, None);
        assert_eq!(parsed.reference(), digest);
        assert!(!parsed.is_floating());
        let parsed = RegistryLocator::parse_body("localhost/img").unwrap();
        assert_eq!(parsed.reference(), "latest");
        assert_eq!(
            RegistryLocator::parse_body("docker.io/library/x")
                .unwrap()
                .api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn rejected() {
        for (body, reason) in [
            ("moonrepo/node_tool:1.0", "not a registry host"),
            ("ghcr.io", "expected `registry://HOST"),
            ("ghcr.io/", "expected a repository"),
            ("ghcr.io/Moon/x", "not a valid repository name component"),
            ("ghcr.io/a//b", "not a valid repository name component"),
            ("ghcr.io/a/b:", "not a valid tag"),
            ("ghcr.io/a/b:-x", "not a valid tag"),
            ("ghcr.io/a/b@sha512:00", "only sha256"),
            ("ghcr.io/a/b@sha256:abc", "64 lowercase hex"),
            ("localhost:99999/a", "invalid port"),
            ("bad_host.io/a", "not a valid registry host"),
        ] {
            let error = RegistryLocator::parse_body(body).unwrap_err();
            assert!(error.contains(reason), "{body}: {error} (wanted {reason})");
        }
    }

    #[test]
    fn components() {
        for ok in ["a", "a.b", "a_b", "a__b", "a---b", "0x"] {
            assert!(is_path_component(ok), "{ok}");
        }
        for bad in ["", "A", "a..b", "a___b", "-a", "a-", "a/b", "a._b"] {
            assert!(!is_path_component(bad), "{bad}");
        }
    }
}
