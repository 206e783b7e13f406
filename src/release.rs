//! GitHub release tags and download URLs: which tags a `github://` locator's tag stands for,
//! and where a release asset is downloaded from.
//!
//! The resolver (`github`, with the `fetch` feature), which writes lock entries, and the
//! lockfile check ([`crate::lockfile`]), which every reader of `warpgate.lock` goes through,
//! share these rules, so that a GitHub entry's `tag`, `asset` and `url` always agree with its
//! locator and with the GitHub host of `GITHUB_API_URL`.

use semver::Version;
use url::Url;

use crate::env;
use crate::locator::GitHubLocator;

/// The version a tag stands for: for a project, only `project@`/`project-` followed by
/// `v<semver>` or `<semver>`; without one, `v<semver>` or `<semver>`.
pub(crate) fn tag_version(tag: &str, project: Option<&str>) -> Option<Version> {
    let rest = match project {
        Some(project) => {
            let rest = tag.strip_prefix(project)?;
            rest.strip_prefix('@').or_else(|| rest.strip_prefix('-'))?
        }
        None => tag,
    };
    let rest = rest.strip_prefix('v').unwrap_or(rest);
    Version::parse(rest).ok()
}

/// The tags to try, in order, for `tag` on a locator of `project`.
pub(crate) fn tag_candidates(project: Option<&str>, tag: &str) -> Vec<String> {
    let Some(project) = project else {
        return vec![tag.to_string()];
    };
    let mut candidates = Vec::new();
    // A tag that already names the project: `project@…` (unambiguous, as `@` is not allowed
    // in project names) or `project-` + a version (so `foo-bar-v1` is not foo's).
    let named = tag
        .strip_prefix(project)
        .and_then(|rest| {
            rest.strip_prefix('@').or_else(|| {
                rest.strip_prefix('-')
                    .filter(|version| looks_like_version(version))
            })
        })
        .filter(|rest| !rest.is_empty());
    let version = match named {
        Some(rest) => {
            candidates.push(tag.to_string());
            rest
        }
        None => tag,
    };
    let bare = version.strip_prefix('v').unwrap_or(version);
    let forms = if looks_like_version(bare) {
        vec![
            format!("{project}@v{bare}"),
            format!("{project}-v{bare}"),
            format!("{project}@{bare}"),
            format!("{project}-{bare}"),
        ]
    } else {
        vec![
            format!("{project}@{version}"),
            format!("{project}-{version}"),
        ]
    };
    for form in forms {
        if !candidates.contains(&form) {
            candidates.push(form);
        }
    }
    candidates
}

/// Whether `text` starts like a version: an optional `v`, then a digit.
fn looks_like_version(text: &str) -> bool {
    text.strip_prefix('v')
        .unwrap_or(text)
        .starts_with(|c: char| c.is_ascii_digit())
}

/// The origin release assets are downloaded from, for the API at `api_url`: the API's origin
/// with a leading `api.` dropped from its host. So `https://api.github.com` downloads from
/// `https://github.com`, GitHub Enterprise Server (`https://ghe.example/api/v3`) from
/// `https://ghe.example`, and GHE.com (`https://api.acme.ghe.com`) from `https://acme.ghe.com`.
pub fn download_origin(api_url: &str) -> Result<String, String> {
    let parsed =
        Url::parse(api_url).map_err(|e| format!("invalid GitHub API URL `{api_url}`: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("GitHub API URL `{api_url}` has no host"))?;
    let host = match host.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("api.") && host.len() > 4 => &host[4..],
        _ => host,
    };
    Ok(match parsed.port() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    })
}

/// The download URL of release `tag`'s asset `asset` in `locator`'s repository, for the API
/// at `api_url`: `<origin>/<owner>/<repo>/releases/download/<tag>/<asset>` with every segment
/// percent-encoded (see [`download_origin`]).
pub fn download_url(
    api_url: &str,
    locator: &GitHubLocator,
    tag: &str,
    asset: &str,
) -> Result<String, String> {
    check_tag(tag).map_err(|reason| format!("release tag `{tag}` {reason}"))?;
    if !is_asset_name(asset) {
        return Err(format!(
            "asset name `{}` is not a file name",
            asset.escape_debug()
        ));
    }
    Ok(format!(
        "{}/{}/{}/releases/download/{}/{}",
        download_origin(api_url)?,
        encode_segment(locator.owner()),
        encode_segment(locator.repo()),
        encode_segment(tag),
        encode_segment(asset)
    ))
}

/// Whether `asset` can be a release asset's file name: not empty, `.` or `..`, no `/` or `\\`,
/// no control characters.
pub fn is_asset_name(asset: &str) -> bool {
    !(asset.is_empty()
        || asset == "."
        || asset == ".."
        || asset.contains(['/', '\\'])
        || asset.chars().any(char::is_control))
}

/// Checks that a tag may be put in a URL path: not empty, not `.` (which a URL path drops),
/// no `/` or `\\`, no `..`, no whitespace or control characters.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        Err("is empty".into())
    } else if tag == "." {
        Err("is `.`, which a URL path drops".into())
    } else if tag.contains(['/', '\\']) || tag.contains("..") {
        Err("contains `/`, `\\` or `..`".into())
    } else if tag.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("contains whitespace or control characters".into())
    } else {
        Ok(())
    }
}

/// Checks that a lock entry's `tag`, `asset` and `url` belong to `locator`, for the API at
/// `api_url`: the tag is one of the forms the locator's tag stands for (or, without one, a
/// versioned tag of the locator's project or repository), and the URL is the one
/// [`download_url`] derives from them. Segments are compared percent-decoded, and the owner and
/// repository case-insensitively, so every URL GitHub or warpgate wrote is accepted.
pub fn check_locked_release(
    api_url: &str,
    locator: &GitHubLocator,
    tag: &str,
    asset: &str,
    url: &str,
) -> Result<(), String> {
    let project = locator.project_name.as_deref();
    match &locator.tag {
        Some(wanted) => {
            let forms = tag_candidates(project, wanted);
            if !forms.iter().any(|form| form == tag) {
                return Err(format!(
                    "`tag = \"{}\"` is not a tag of the locator; expected {}",
                    tag.escape_debug(),
                    backticked(&forms, " or ")
                ));
            }
        }
        None => {
            if tag_version(tag, project).is_none() {
                let pattern = match project {
                    Some(project) => format!("`{project}@v<version>` or `{project}-v<version>`"),
                    None => "`v<version>` or `<version>`".to_string(),
                };
                return Err(format!(
                    "`tag = \"{}\"` is not a release tag of the locator; expected {pattern}",
                    tag.escape_debug()
                ));
            }
        }
    }
    let derived = download_url(api_url, locator, tag, asset)?;
    let mismatch = || {
        format!(
            "`url = \"{url}\"` is not the download URL of its tag and asset; expected `{derived}` (from `{}`)",
            env::GITHUB_API_URL
        )
    };
    let (Ok(found), Ok(expected)) = (Url::parse(url), Url::parse(&derived)) else {
        return Err(mismatch());
    };
    if found.origin() != expected.origin()
        || !found.username().is_empty()
        || found.password().is_some()
        || found.query().is_some()
        || found.fragment().is_some()
    {
        return Err(mismatch());
    }
    let segments = |url: &Url| -> Vec<String> {
        url.path_segments()
            .map(|segments| segments.map(percent_decode).collect())
            .unwrap_or_default()
    };
    let (found_segments, expected_segments) = (segments(&found), segments(&expected));
    let same = found_segments.len() == expected_segments.len()
        && found_segments
            .iter()
            .zip(&expected_segments)
            .enumerate()
            .all(|(index, (found, expected))| {
                if index < 2 {
                    found.eq_ignore_ascii_case(expected)
                } else {
                    found == expected
                }
            });
    if same { Ok(()) } else { Err(mismatch()) }
}

/// Decodes `%XX` escapes of one URL path segment; invalid escapes stay as written.
fn percent_decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// Percent-encodes one URL path segment (`/`, `%`, spaces and the like; `@` stays).
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@+!$&'()*,;=:".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `items` in backticks, joined by `separator`.
pub(crate) fn backticked(items: &[String], separator: &str) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locator::PluginLocator;

    #[test]
    fn project_tags_never_cross_projects() {
        let version = |tag: &str| tag_version(tag, Some("foo")).map(|v| v.to_string());
        assert_eq!(version("foo@v1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(version("foo-v1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(version("foo@1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(version("foo-1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(version("foo-1.2.3-rc.1").as_deref(), Some("1.2.3-rc.1"));
        assert_eq!(version("foo-bar-v1.0.0"), None);
        assert_eq!(version("foo-bar@1.0.0"), None);
        assert_eq!(version("foobar-1.0.0"), None);
        assert_eq!(version("v1.0.0"), None);
        assert_eq!(version("foo@v1.2"), None);
        assert_eq!(tag_version("v1.0.0", None), Some(Version::new(1, 0, 0)));
        assert_eq!(tag_version("1.0.0", None), Some(Version::new(1, 0, 0)));
        assert_eq!(tag_version("foo-1.0.0", None), None);
    }

    #[test]
    fn tag_forms() {
        assert_eq!(
            tag_candidates(Some("hello"), "v1.2.3"),
            ["hello@v1.2.3", "hello-v1.2.3", "hello@1.2.3", "hello-1.2.3"]
        );
        assert_eq!(
            tag_candidates(Some("hello"), "1.2.3"),
            ["hello@v1.2.3", "hello-v1.2.3", "hello@1.2.3", "hello-1.2.3"]
        );
        assert_eq!(
            tag_candidates(Some("hello"), "hello-1.2.3"),
            ["hello-1.2.3", "hello@v1.2.3", "hello-v1.2.3", "hello@1.2.3"]
        );
        assert_eq!(
            tag_candidates(Some("hello"), "hello@nightly"),
            ["hello@nightly", "hello-nightly"]
        );
        assert_eq!(
            tag_candidates(Some("foo"), "foo-bar-v1.0.0"),
            ["foo@foo-bar-v1.0.0", "foo-foo-bar-v1.0.0"]
        );
        assert_eq!(tag_candidates(None, "v1.2.3"), ["v1.2.3"]);
    }

    #[test]
    fn download_urls_follow_the_api_origin() {
        let locator = |text: &str| match text.parse().unwrap() {
            PluginLocator::GitHub(locator) => locator,
            _ => unreachable!(),
        };
        let hello = locator("github://acme/plugins/hello@v1.2.0");
        for (api, expected) in [
            (
                "https://api.github.com",
                "https://github.com/acme/plugins/releases/download/hello@v1.2.0/hello.wasm",
            ),
            (
                "https://ghe.example/api/v3",
                "https://ghe.example/acme/plugins/releases/download/hello@v1.2.0/hello.wasm",
            ),
            (
                "https://api.acme.ghe.com",
                "https://acme.ghe.com/acme/plugins/releases/download/hello@v1.2.0/hello.wasm",
            ),
            (
                "https://127.0.0.1:8443",
                "https://127.0.0.1:8443/acme/plugins/releases/download/hello@v1.2.0/hello.wasm",
            ),
        ] {
            assert_eq!(
                download_url(api, &hello, "hello@v1.2.0", "hello.wasm").unwrap(),
                expected
            );
            check_locked_release(api, &hello, "hello@v1.2.0", "hello.wasm", expected).unwrap();
        }
        // GitHub's own spelling: `@` encoded, the owner in its canonical case.
        check_locked_release(
            "https://api.github.com",
            &hello,
            "hello-v1.2.0",
            "hello.wasm",
            "https://github.com/Acme/Plugins/releases/download/hello-v1.2.0/hello.wasm",
        )
        .unwrap();
        check_locked_release(
            "https://api.github.com",
            &locator("github://acme/plugins/hello"),
            "hello@v1.3.0",
            "hello.wasm",
            "https://github.com/acme/plugins/releases/download/hello%40v1.3.0/hello.wasm",
        )
        .unwrap();
        for (tag, url) in [
            (
                "hello@v1.2.0",
                "https://github.com/acme/plugins/releases/download/hello@v1.2.0/other.wasm",
            ),
            (
                "hello@v1.2.0",
                "https://github.com.evil/acme/plugins/releases/download/hello@v1.2.0/hello.wasm",
            ),
            (
                "hello@v1.2.0",
                "http://github.com/acme/plugins/releases/download/hello@v1.2.0/hello.wasm",
            ),
            (
                "hello@v1.2.0",
                "https://github.com/acme/plugins/releases/download/HELLO@v1.2.0/hello.wasm",
            ),
            (
                "hello@v9.9.9",
                "https://github.com/acme/plugins/releases/download/hello@v9.9.9/hello.wasm",
            ),
        ] {
            assert!(
                check_locked_release("https://api.github.com", &hello, tag, "hello.wasm", url)
                    .is_err(),
                "{tag} {url}"
            );
        }
    }

    /// A URL path drops a `.` segment, so a tag `.` would name no release.
    #[test]
    fn dot_tags_are_refused() {
        assert_eq!(
            check_tag("."),
            Err("is `.`, which a URL path drops".to_string())
        );
        let PluginLocator::GitHub(locator) = "github://a/b".parse().unwrap() else {
            unreachable!()
        };
        assert_eq!(
            download_url("https://api.github.com", &locator, ".", "x.wasm"),
            Err("release tag `.` is `.`, which a URL path drops".to_string())
        );
        assert!(
            check_locked_release(
                "https://api.github.com",
                &locator,
                ".",
                "x.wasm",
                "https://github.com/a/b/releases/download/x.wasm"
            )
            .is_err()
        );
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("hello@v1.0.0"), "hello@v1.0.0");
        assert_eq!(encode_segment("release/1 0%"), "release%2F1%200%25");
    }
}
