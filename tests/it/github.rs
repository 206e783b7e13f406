//! `warpgate::github` against the fake GitHub API.

use semver::VersionReq;
use warpgate::checksum::Checksum;
use warpgate::github::{GitHubError, ProjectRelease, ResolvedAsset};
use warpgate::http::{HttpClient, HttpError};
use warpgate::locator::{GitHubLocator, PluginLocator};

use crate::support::{FakeAsset, FakeGitHub, FakeRelease};

fn locator(input: &str) -> GitHubLocator {
    match input.parse::<PluginLocator>().unwrap() {
        PluginLocator::GitHub(locator) => locator,
        other => panic!("not a GitHub locator: {other}"),
    }
}

fn requirement(input: &str) -> VersionReq {
    input.parse().unwrap()
}

async fn resolve(github: &FakeGitHub, input: &str) -> Result<ResolvedAsset, GitHubError> {
    github.client().resolve(&locator(input), None, None).await
}

async fn resolved_tag(github: &FakeGitHub, input: &str) -> String {
    resolve(github, input)
        .await
        .unwrap_or_else(|error| panic!("{input}: {error}"))
        .tag
}

fn release(tag: &str) -> FakeRelease {
    FakeRelease::new(tag).wasm("plugin.wasm", tag.as_bytes().to_vec())
}

#[tokio::test]
async fn each_monorepo_tag_form_is_found() {
    let github = FakeGitHub::start();
    for (repo, tag) in [
        ("acme/at-v", "hello@v1.2.3"),
        ("acme/dash-v", "hello-v1.2.3"),
        ("acme/at", "hello@1.2.3"),
        ("acme/dash", "hello-1.2.3"),
    ] {
        // A decoy of another project with the same version in each repository.
        github.release(repo, release("hello-world-v1.2.3"));
        github.release(repo, release(tag));
        for written in ["v1.2.3", "1.2.3"] {
            assert_eq!(
                resolved_tag(&github, &format!("github://{repo}/hello@{written}")).await,
                tag,
                "{repo} @{written}"
            );
        }
        // Latest, without a tag.
        assert_eq!(
            resolved_tag(&github, &format!("github://{repo}/hello")).await,
            tag
        );
    }
}

#[tokio::test]
async fn a_tag_naming_the_project_is_used_as_written() {
    let github = FakeGitHub::start();
    github.release("acme/plugins", release("hello@v1.2.3"));
    github.release("acme/plugins", release("hello-1.2.3"));
    assert_eq!(
        resolved_tag(&github, "github://acme/plugins/hello@hello-1.2.3").await,
        "hello-1.2.3"
    );
    assert_eq!(
        resolved_tag(&github, "github://acme/plugins/hello@hello@v1.2.3").await,
        "hello@v1.2.3"
    );
    // The first form that exists wins, found in the listing: one request per client, no
    // request per tag form.
    assert_eq!(
        github.api_requests(),
        ["/repos/acme/plugins/releases?per_page=100"; 2]
    );
}

#[tokio::test]
async fn a_missing_tag_lists_every_form_tried() {
    let github = FakeGitHub::start();
    github.release("acme/plugins", release("hello@v1.0.0"));
    let error = resolve(&github, "github://acme/plugins/hello@v9.9.9")
        .await
        .unwrap_err();
    assert!(
        matches!(error, GitHubError::TagNotFound { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "cannot resolve `github://acme/plugins/hello@v9.9.9`: no release is tagged \
         `hello@v9.9.9` or `hello-v9.9.9` or `hello@9.9.9` or `hello-9.9.9`"
    );
}

#[tokio::test]
async fn without_a_project_the_tag_is_taken_as_given() {
    let github = FakeGitHub::start();
    github.release("acme/tool", release("v2.0.0"));
    github.release("acme/tool", release("2.1.0"));
    assert_eq!(
        resolved_tag(&github, "github://acme/tool@v2.0.0").await,
        "v2.0.0"
    );
    assert_eq!(
        resolved_tag(&github, "github://acme/tool@2.1.0").await,
        "2.1.0"
    );
    let error = resolve(&github, "github://acme/tool@2.0.0")
        .await
        .unwrap_err();
    assert!(
        error.to_string().ends_with("no release is tagged `2.0.0`"),
        "{error}"
    );
    // Latest: both `v<semver>` and `<semver>` count.
    assert_eq!(resolved_tag(&github, "github://acme/tool").await, "2.1.0");
}

#[tokio::test]
async fn a_project_prefix_never_matches_another_project() {
    let github = FakeGitHub::start();
    github.release("acme/plugins", release("foo-v1.0.0"));
    github.release("acme/plugins", release("foo-bar-v9.0.0"));
    github.release("acme/plugins", release("foo-bar@10.0.0"));
    github.release("acme/plugins", release("foobar-11.0.0"));
    assert_eq!(
        resolved_tag(&github, "github://acme/plugins/foo").await,
        "foo-v1.0.0"
    );
    assert_eq!(
        resolved_tag(&github, "github://acme/plugins/foo-bar").await,
        "foo-bar@10.0.0"
    );

    let only_others = FakeGitHub::start();
    only_others.release("acme/plugins", release("foo-bar-v9.0.0"));
    let error = resolve(&only_others, "github://acme/plugins/foo")
        .await
        .unwrap_err();
    assert!(matches!(error, GitHubError::NoReleases { .. }), "{error:?}");
    let message = crate::support::report(&error);
    assert!(
        message.starts_with(
            "cannot resolve `github://acme/plugins/foo`: no release tagged `foo@v<version>`"
        ),
        "{message}"
    );
    assert!(
        message.contains("\nhint: other releases are tagged `foo-bar-v9.0.0`"),
        "{message}"
    );
}

#[tokio::test]
async fn the_latest_release_is_found_past_the_first_page() {
    let github = FakeGitHub::start();
    github.page_size(2);
    // Added first, so listed last (GitHub lists newest first): on page 3 of 3.
    github.release("acme/plugins", release("hello-v3.0.0"));
    for tag in [
        "hello-v1.0.0",
        "hello-v1.1.0",
        "other-v7.0.0",
        "hello-v2.0.0",
    ] {
        github.release("acme/plugins", release(tag));
    }
    assert_eq!(
        resolved_tag(&github, "github://acme/plugins/hello").await,
        "hello-v3.0.0"
    );
    // Page 1, then the others at once (in any order).
    let mut requests = github.api_requests();
    requests[1..].sort();
    assert_eq!(
        requests,
        [
            "/repos/acme/plugins/releases?per_page=100",
            "/repos/acme/plugins/releases?per_page=100&page=2",
            "/repos/acme/plugins/releases?per_page=100&page=3",
        ]
    );
}

#[tokio::test]
async fn drafts_and_prereleases_are_skipped() {
    let github = FakeGitHub::start();
    github.release("acme/plugins", release("hello-v1.3.0"));
    github.release("acme/plugins", release("hello-v1.4.0-rc.1"));
    github.release("acme/plugins", release("hello-v1.5.0").prerelease());
    github.release("acme/plugins", release("hello-v2.0.0").draft());
    assert_eq!(
        resolved_tag(&github, "github://acme/plugins/hello").await,
        "hello-v1.3.0"
    );
    // A requirement that names a prerelease may pick one.
    let client = github.client();
    let resolved = client
        .resolve(
            &locator("github://acme/plugins/hello"),
            Some(&requirement("=1.4.0-rc.1")),
            None,
        )
        .await
        .unwrap();
    assert_eq!(resolved.tag, "hello-v1.4.0-rc.1");
    // An explicit tag may name a prerelease.
    assert_eq!(
        resolved_tag(&github, "github://acme/plugins/hello@v1.5.0").await,
        "hello-v1.5.0"
    );
    // Drafts are not found by tag either.
    assert!(
        resolve(&github, "github://acme/plugins/hello@v2.0.0")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_version_requirement_picks_the_highest_match() {
    let github = FakeGitHub::start();
    for tag in [
        "hello@v1.0.0",
        "hello@v1.10.0",
        "hello@v1.2.0",
        "hello@v1.2.7",
        "hello@v2.0.0",
    ] {
        github.release("acme/plugins", release(tag));
    }
    let client = github.client();
    let hello = locator("github://acme/plugins/hello");
    for (wanted, tag) in [
        ("^1.2", "hello@v1.10.0"),
        ("~1.2", "hello@v1.2.7"),
        ("=1.0.0", "hello@v1.0.0"),
        (">=1, <2", "hello@v1.10.0"),
        ("*", "hello@v2.0.0"),
    ] {
        let resolved = client
            .resolve(&hello, Some(&requirement(wanted)), None)
            .await
            .unwrap();
        assert_eq!(resolved.tag, tag, "{wanted}");
    }

    let error = client
        .resolve(&hello, Some(&requirement("^3")), None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, GitHubError::NoMatchingVersion { .. }),
        "{error:?}"
    );
    assert_eq!(
        crate::support::report(&error),
        "cannot resolve `github://acme/plugins/hello`: no release matches the version \
         requirement `^3`\nhint: the newest versions are `2.0.0`, `1.10.0`, `1.2.7`, `1.2.0`, `1.0.0`"
    );

    // A tag outside the requirement is refused.
    let error = client
        .resolve(
            &locator("github://acme/plugins/hello@v2.0.0"),
            Some(&requirement("^1")),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, GitHubError::TagOutsideRequirement { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn asset_choice() {
    let github = FakeGitHub::start();
    github.release(
        "acme/one",
        FakeRelease::new("v1.0.0")
            .asset(FakeAsset::new("README.md", "docs"))
            .asset(FakeAsset::new("hello.wasm", "wasm")),
    );
    github.release(
        "acme/two",
        FakeRelease::new("v1.0.0")
            .asset(FakeAsset::new("hello.wasm", "a"))
            .asset(FakeAsset::new("hello_debug.wasm", "b"))
            .asset(FakeAsset::new("checksums.txt", "c")),
    );
    github.release(
        "acme/none",
        FakeRelease::new("v1.0.0").asset(FakeAsset::new("hello.tar.gz", "x")),
    );
    let client = github.client();

    // The single `.wasm` asset.
    let resolved = resolve(&github, "github://acme/one").await.unwrap();
    assert_eq!(resolved.asset, "hello.wasm");
    assert_eq!(resolved.size, 4);
    assert_eq!(
        resolved.url,
        github.download_url("acme/one", "v1.0.0", "hello.wasm")
    );

    // Several: an error listing them.
    let error = resolve(&github, "github://acme/two").await.unwrap_err();
    assert!(
        matches!(error, GitHubError::AmbiguousAsset { .. }),
        "{error:?}"
    );
    assert_eq!(
        crate::support::report(&error),
        "cannot resolve `github://acme/two`: release `v1.0.0` has several `.wasm` assets: \
         `hello.wasm`, `hello_debug.wasm`\nhint: choose one with `asset = \"<name>\"`"
    );

    // Named.
    let resolved = client
        .resolve(
            &locator("github://acme/two"),
            None,
            Some("hello_debug.wasm"),
        )
        .await
        .unwrap();
    assert_eq!(resolved.asset, "hello_debug.wasm");

    // Named but missing: the candidates are listed.
    let error = client
        .resolve(&locator("github://acme/two"), None, Some("nope.wasm"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot resolve `github://acme/two`: release `v1.0.0` has no asset named `nope.wasm`; \
         its assets are `hello.wasm`, `hello_debug.wasm`, `checksums.txt`"
    );

    // None at all.
    let error = resolve(&github, "github://acme/none").await.unwrap_err();
    assert!(
        matches!(error, GitHubError::NoWasmAsset { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("its assets are `hello.tar.gz`"),
        "{error}"
    );
}

#[tokio::test]
async fn the_digest_is_returned_for_checking() {
    let github = FakeGitHub::start();
    let bytes = b"\0asm\x01\0\0\0plugin".to_vec();
    github.release(
        "acme/plugins",
        FakeRelease::new("hello@v1.0.0")
            .asset(FakeAsset::new("hello.wasm", bytes.clone()).with_digest()),
    );
    github.release(
        "acme/plugins",
        FakeRelease::new("plain@v1.0.0").asset(FakeAsset::new("plain.wasm", "plain")),
    );
    github.release(
        "acme/plugins",
        FakeRelease::new("liar@v1.0.0")
            .asset(FakeAsset::new("liar.wasm", "liar").digest(Checksum::of(b"other").to_string())),
    );

    let resolved = resolve(&github, "github://acme/plugins/hello")
        .await
        .unwrap();
    assert_eq!(resolved.digest, Some(Checksum::of(&bytes)));
    assert_eq!(resolved.size, bytes.len() as u64);

    // Downloading the URL gives bytes that match the digest.
    let dir = tempfile::tempdir().unwrap();
    let downloaded = github
        .server()
        .http_client()
        .download_to(&resolved.url, &dir.path().join("hello.wasm"), &|_, _| {})
        .await
        .unwrap();
    assert_eq!(Some(downloaded.checksum), resolved.digest);

    let plain = resolve(&github, "github://acme/plugins/plain")
        .await
        .unwrap();
    assert_eq!(plain.digest, None);

    // A wrong digest is returned as given; the caller's check catches it.
    let liar = resolve(&github, "github://acme/plugins/liar")
        .await
        .unwrap();
    assert_eq!(liar.digest, Some(Checksum::of(b"other")));
}

#[tokio::test]
async fn a_rate_limit_says_so_and_names_the_token() {
    let github = FakeGitHub::start();
    github.release("acme/plugins", release("hello-v1.0.0"));
    github.rate_limit(true);
    let error = resolve(&github, "github://acme/plugins/hello")
        .await
        .unwrap_err();
    assert!(
        matches!(error, GitHubError::RateLimited { .. }),
        "{error:?}"
    );
    let message = crate::support::report(&error);
    assert!(
        message.starts_with(
            "cannot resolve `github://acme/plugins/hello`: the GitHub API rate limit is exhausted"
        ),
        "{message}"
    );
    assert!(
        message.contains(
            "\nhint: set `WARPGATE_GITHUB_TOKEN`, `GH_TOKEN` or `GITHUB_TOKEN` to a GitHub token"
        ),
        "{message}"
    );
    assert_eq!(github.server().request_count(), 1, "not retried");

    github.rate_limit(false);
    assert_eq!(
        resolved_tag(&github, "github://acme/plugins/hello").await,
        "hello-v1.0.0"
    );
}

#[tokio::test]
async fn a_missing_repository_may_be_private() {
    let github = FakeGitHub::start();
    for input in [
        "github://nobody/nothing",
        "github://nobody/nothing/hello@v1.0.0",
    ] {
        let error = resolve(&github, input).await.unwrap_err();
        assert!(
            matches!(error, GitHubError::RepoNotFound { .. }),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "cannot resolve `{input}`: repository `nobody/nothing` not found \
                 (or private: set `GITHUB_TOKEN`)"
            )
        );
    }
    let error = github
        .client()
        .with_token("t0ken")
        .resolve(&locator("github://nobody/nothing"), None, None)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("(or private, and the configured token cannot see it)"),
        "{error}"
    );
}

#[tokio::test]
async fn an_empty_repository_has_no_releases() {
    let github = FakeGitHub::start();
    github.repo("acme/empty");
    let error = resolve(&github, "github://acme/empty").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot resolve `github://acme/empty`: no release tagged `v<version>` or `<version>` \
         that is not a draft or a prerelease"
    );
}

#[tokio::test]
async fn the_token_goes_to_the_api_host_and_not_to_the_download_host() {
    let github = FakeGitHub::start();
    github.release("acme/private", release("v1.0.0"));
    let client = github.client().with_token("gh-s3cret");
    let resolved = client
        .resolve(&locator("github://acme/private"), None, None)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    client
        .http()
        .download_to(&resolved.url, &dir.path().join("x.wasm"), &|_, _| {})
        .await
        .unwrap();

    let requests = github.server().requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    let (api, downloads) = requests.split_at(1);
    assert_eq!(
        api[0].header("authorization"),
        Some("Bearer gh-s3cret"),
        "{api:#?}"
    );
    assert!(!downloads[0].is_alt_host());
    assert!(downloads[1].is_alt_host(), "redirected to the object host");
    for request in downloads {
        assert_eq!(request.header("authorization"), None, "{request:#?}");
    }
    assert!(!format!("{client:?}").contains("s3cret"));
}

#[tokio::test]
async fn offline_resolution_opens_no_connection() {
    let github = FakeGitHub::start();
    github.release("acme/plugins", release("hello-v1.0.0"));
    let mut options = github.server().http_options();
    options.offline = Some("`WARPGATE_OFFLINE=1`".to_string());
    let client = warpgate::github::GitHubClient::with_api_url(
        HttpClient::new(options).unwrap(),
        github.api_url(),
    );
    let error = client
        .resolve(&locator("github://acme/plugins/hello"), None, None)
        .await
        .unwrap_err();
    match &error {
        GitHubError::Http {
            source: HttpError::Offline { reason, .. },
            ..
        } => assert_eq!(reason, "`WARPGATE_OFFLINE=1`"),
        other => panic!("expected an offline error, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "cannot resolve `github://acme/plugins/hello`"
    );
    assert_eq!(github.server().request_count(), 0);
    assert_eq!(github.server().connection_count(), 0);
}

#[tokio::test]
async fn releases_lists_a_projects_versions_newest_first() {
    let github = FakeGitHub::start();
    github.page_size(2);
    for tag in [
        "hello-v1.0.0",
        "hello-bar-v5.0.0",
        "hello@2.0.0-rc.1",
        "hello-v1.1.0",
    ] {
        github.release("acme/plugins", release(tag));
    }
    github.release("acme/plugins", release("hello-v1.2.0").prerelease());
    github.release("acme/plugins", release("hello-v3.0.0").draft());
    let releases = github
        .client()
        .releases(&locator("github://acme/plugins/hello@v1.0.0"))
        .await
        .unwrap();
    let summary: Vec<(String, String, bool)> = releases
        .into_iter()
        .map(
            |ProjectRelease {
                 tag,
                 version,
                 prerelease,
             }| (tag, version.to_string(), prerelease),
        )
        .collect();
    assert_eq!(
        summary,
        [
            ("hello@2.0.0-rc.1".into(), "2.0.0-rc.1".into(), true),
            ("hello-v1.2.0".into(), "1.2.0".into(), true),
            ("hello-v1.1.0".into(), "1.1.0".into(), false),
            ("hello-v1.0.0".into(), "1.0.0".into(), false),
        ]
    );
}

/// A monorepo of 8 projects with 2 releases each, listed 3 per page (6 pages).
fn monorepo() -> FakeGitHub {
    let github = FakeGitHub::start();
    github.page_size(3);
    for minor in 0..2 {
        for project in 0..8 {
            github.release("acme/mono", release(&format!("proj{project}-v1.{minor}.0")));
        }
    }
    github
}

fn page_path(page: usize) -> String {
    format!("/repos/acme/mono/releases?per_page=100&page={page}")
}

#[tokio::test]
async fn a_monorepos_projects_share_one_listing_and_each_page_is_fetched_once() {
    let github = monorepo();
    let client = github.client();
    let mut inputs: Vec<String> = (0..8)
        .map(|project| format!("github://acme/mono/proj{project}"))
        .collect();
    // A pinned tag and a range from the same repository share it too.
    inputs.push("github://acme/mono/proj3@v1.0.0".into());
    let locators: Vec<GitHubLocator> = inputs.iter().map(|input| locator(input)).collect();
    let range = requirement("~1.0");
    let resolutions = locators.iter().enumerate().map(|(index, locator)| {
        let client = &client;
        let version = (index == 0).then_some(&range);
        async move { client.resolve(locator, version, None).await }
    });
    let resolved = futures_util::future::join_all(resolutions).await;
    let tags: Vec<String> = resolved
        .into_iter()
        .map(|result| result.unwrap().tag)
        .collect();
    assert_eq!(tags[0], "proj0-v1.0.0");
    assert_eq!(tags[1], "proj1-v1.1.0");
    assert_eq!(tags[7], "proj7-v1.1.0");
    assert_eq!(tags[8], "proj3-v1.0.0");

    let server = github.server();
    assert_eq!(server.hits("/repos/acme/mono/releases?per_page=100"), 1);
    for page in 2..=6 {
        assert_eq!(server.hits(&page_path(page)), 1, "page {page}");
    }
    assert_eq!(
        github.api_requests().len(),
        6,
        "{:#?}",
        github.api_requests()
    );
    assert_eq!(client.stats().requests, 6);
}

#[tokio::test]
async fn a_pinned_tag_on_the_first_page_needs_no_other_request() {
    let github = monorepo();
    let client = github.client();
    let resolved = client
        .resolve(&locator("github://acme/mono/proj7@v1.1.0"), None, None)
        .await
        .unwrap();
    assert_eq!(resolved.tag, "proj7-v1.1.0");
    // An older one is on a later page: the rest of the listing, once.
    let resolved = client
        .resolve(&locator("github://acme/mono/proj0@1.0.0"), None, None)
        .await
        .unwrap();
    assert_eq!(resolved.tag, "proj0-v1.0.0");
    // Page 1, then the other pages once each, requested at the same time (in any order).
    let requests = github.api_requests();
    assert_eq!(requests[0], "/repos/acme/mono/releases?per_page=100");
    let mut rest = requests[1..].to_vec();
    rest.sort();
    assert_eq!(rest, (2..=6).map(page_path).collect::<Vec<_>>());
}

#[tokio::test]
async fn stored_answers_are_sent_back_and_a_304_uses_them() {
    let github = monorepo();
    let dir = tempfile::tempdir().unwrap();
    let store = warpgate::api_cache::ApiCache::new(&warpgate::cache::Cache::new(dir.path()));
    let client = || {
        github
            .client()
            .with_token("s3cret-token")
            .with_api_cache(store.clone())
    };
    let first = client()
        .resolve(&locator("github://acme/mono/proj5"), None, None)
        .await
        .unwrap();
    let before = github.server().request_count();
    let again = client();
    let second = again
        .resolve(&locator("github://acme/mono/proj5"), None, None)
        .await
        .unwrap();
    assert_eq!(first, second);
    let requests = &github.server().requests()[before..];
    assert_eq!(requests.len(), 6);
    for request in requests {
        assert!(request.header("if-none-match").is_some(), "{request:#?}");
        assert_eq!(request.status, 304, "{request:#?}");
    }
    let stats = again.stats();
    assert_eq!((stats.requests, stats.not_modified), (6, 6));
    // Keyed by whether a token was sent: an anonymous client asks afresh.
    let before = github.server().request_count();
    github
        .client()
        .with_api_cache(store.clone())
        .resolve(&locator("github://acme/mono/proj5"), None, None)
        .await
        .unwrap();
    assert!(
        github.server().requests()[before..]
            .iter()
            .all(|request| request.header("if-none-match").is_none())
    );
    // The token is never written.
    for entry in fs_err::read_dir(store.dir()).unwrap() {
        let text = fs_err::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
    }
}

#[tokio::test]
async fn link_urls_to_another_origin_are_refused() {
    let github = FakeGitHub::start();
    github.release("acme/tool", release("v1.0.0"));
    // The first page names a next page on another host (same server, other name).
    let elsewhere = github
        .server()
        .alt_url("/repos/acme/tool/releases?per_page=100&page=2");
    github.server().route(
        "/repos/acme/tool/releases?per_page=100",
        crate::support::Response::json(&serde_json::json!([])).header(
            "link",
            format!("<{elsewhere}>; rel=\"next\", <{elsewhere}>; rel=\"last\""),
        ),
    );
    let error = resolve(&github, "github://acme/tool").await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!("unexpected answer from `{elsewhere}`"))
            && message.contains("a `Link` header points away from the API"),
        "{message}"
    );
    assert!(
        !github
            .server()
            .requests()
            .iter()
            .any(super::support::server::RecordedRequest::is_alt_host),
        "the other origin was asked"
    );
}

#[tokio::test]
async fn api_redirects_to_another_origin_are_refused() {
    let github = FakeGitHub::start();
    github.release("acme/tool", release("v1.0.0"));
    let elsewhere = github
        .server()
        .alt_url("/repos/acme/tool/releases?per_page=100");
    github.server().route(
        "/repos/acme/tool/releases?per_page=100",
        crate::support::Response::redirect(elsewhere.clone()),
    );
    let error = resolve(&github, "github://acme/tool").await.unwrap_err();
    let message = format!("{error}: {}", std::error::Error::source(&error).unwrap());
    assert!(
        message.contains(&format!("to `{elsewhere}`"))
            && message.contains("API requests stay on the API's origin"),
        "{message}"
    );
    assert!(
        !github
            .server()
            .requests()
            .iter()
            .any(super::support::server::RecordedRequest::is_alt_host),
        "the redirect was followed"
    );
}

#[tokio::test]
async fn tags_with_path_tricks_are_refused_before_any_request() {
    for input in [
        "github://acme/tool@../../x",
        "github://acme/tool@v1/../../x",
        "github://acme/tool@v1\u{1b}[2J",
    ] {
        let error = input.parse::<PluginLocator>().unwrap_err().to_string();
        assert!(
            error.contains("the tag after `@` contains") || error.contains("control character"),
            "{error}"
        );
    }
}
