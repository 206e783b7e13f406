//! Tag rules and release download URLs: the tags a locator stands for, the version a tag
//! names, and the URL the lock records must all agree, so that what the resolver writes the
//! lockfile check accepts.

use proptest::prelude::*;
use proptest::sample::select;

use super::{github_locator, text, version};
use crate::release::{
    check_locked_release, check_tag, download_origin, download_url, tag_candidates, tag_version,
};

/// API URLs whose download origins differ in each way [`download_origin`] handles.
const API_URLS: &[&str] = &[
    "https://api.github.com",
    "https://ghe.example/api/v3",
    "https://api.acme.ghe.com",
    "https://127.0.0.1:8443",
    "http://localhost:9000/api",
];

/// A release asset's file name.
fn asset() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z0-9_-]{1,10}\\.wasm", "[A-Za-z0-9 _.@%+é-]{1,12}",]
        .prop_filter("not a file name", |asset| {
            !matches!(asset.as_str(), "." | "..")
        })
}

/// A project name in the usual spelling: words joined by `_` or `-`, each starting with a
/// letter.
fn plain_project() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,6}([_-][a-z][a-z0-9]{0,6}){0,2}"
}

/// The four spellings of a project's release tag.
fn project_tag(project: &str, version: &semver::Version, form: usize) -> String {
    match form {
        0 => format!("{project}@v{version}"),
        1 => format!("{project}-v{version}"),
        2 => format!("{project}@{version}"),
        _ => format!("{project}-{version}"),
    }
}

proptest! {
    #![proptest_config(super::config())]

    /// The tag rules, the URL builder and the lock check give an answer, never a panic, for
    /// any text in any field.
    #[test]
    fn release_rules_never_panic(
        tag in text(),
        asset in text(),
        url in text(),
        api in prop_oneof![select(API_URLS).prop_map(str::to_string), text()],
        project in prop::option::of(text()),
        locator in github_locator(),
    ) {
        let _ = check_tag(&tag);
        let _ = tag_version(&tag, project.as_deref());
        let candidates = tag_candidates(project.as_deref(), &tag);
        prop_assert!(!candidates.is_empty());
        let _ = download_origin(&api);
        let _ = download_url(&api, &locator, &tag, &asset);
        let _ = check_locked_release(&api, &locator, &tag, &asset, &url);
    }

    /// Whatever tag the resolver settles on for a locator (one of its tag forms, or for a
    /// locator without a tag any release tag that names a version), the URL it derives passes
    /// the lockfile check, on every GitHub host.
    #[test]
    fn derived_download_urls_pass_the_lock_check(
        locator in github_locator(),
        pick in any::<prop::sample::Index>(),
        released in version(),
        form in 0..4usize,
        asset in asset(),
        api in select(API_URLS),
    ) {
        let project = locator.project_name.as_deref();
        let tag = match &locator.tag {
            Some(wanted) => {
                let forms = tag_candidates(project, wanted);
                forms[pick.index(forms.len())].clone()
            }
            None => match project {
                Some(project) => project_tag(project, &released, form),
                None => format!("{}{released}", if form % 2 == 0 { "v" } else { "" }),
            },
        };
        let url = download_url(api, &locator, &tag, &asset)
            .map_err(|error| TestCaseError::fail(format!("{locator} {tag}: {error}")))?;
        // The URL names exactly the repository, the tag and the asset.
        let parsed = url::Url::parse(&url).unwrap();
        let segments: Vec<String> = parsed
            .path_segments()
            .unwrap()
            .map(|segment| {
                percent_encoding::percent_decode_str(segment).decode_utf8().unwrap().into_owned()
            })
            .collect();
        let tail = &segments[segments.len().saturating_sub(6)..];
        prop_assert_eq!(
            tail,
            [locator.owner(), locator.repo(), "releases", "download", tag.as_str(), asset.as_str()],
            "{}", url
        );
        let checked = check_locked_release(api, &locator, &tag, &asset, &url);
        prop_assert!(checked.is_ok(), "{} {} {}: {:?}", locator, tag, url, checked);
        // GitHub's own spelling of the same URL (`@` escaped) is accepted too.
        let escaped = url.replace('@', "%40");
        prop_assert!(check_locked_release(api, &locator, &tag, &asset, &escaped).is_ok());
    }

    /// Each spelling of a project's tag names its version, comes first among the forms it
    /// stands for, and is among the forms of the bare version.
    #[test]
    fn project_tags_name_their_version(
        project in plain_project(),
        released in version(),
        form in 0..4usize,
    ) {
        let tag = project_tag(&project, &released, form);
        prop_assert_eq!(tag_version(&tag, Some(&project)), Some(released.clone()));
        prop_assert_eq!(&tag_candidates(Some(&project), &tag)[0], &tag);
        let bare = format!("v{released}");
        prop_assert!(tag_candidates(Some(&project), &bare).contains(&tag));
        prop_assert!(tag_candidates(Some(&project), &released.to_string()).contains(&tag));
        prop_assert_eq!(tag_version(&bare, None), Some(released));
    }

    /// A project's tag is never read as another project's release.
    #[test]
    fn project_tags_never_cross_projects(
        project in plain_project(),
        other in plain_project(),
        released in version(),
        form in 0..4usize,
    ) {
        prop_assume!(project != other);
        let tag = project_tag(&project, &released, form);
        prop_assert_eq!(tag_version(&tag, Some(&other)), None, "{} read as {}'s", tag, other);
        prop_assert_eq!(tag_version(&tag, None), None);
    }
}
