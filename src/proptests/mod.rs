//! Property tests of every parser: what is accepted round-trips through its printed form,
//! printed forms are stable, and no input (control characters, any Unicode, very long text)
//! makes a parser panic; refusals are ordinary errors.
//!
//! Each test runs [`CASES`] cases unless `PROPTEST_CASES` asks for another number, so the
//! default test run stays fast and a longer search is one variable away.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config;

use crate::checksum::Checksum;
use crate::id::Id;
use crate::locator::{GitHubLocator, PluginLocator};

mod checksum;
mod config;
pub(crate) use config::plugins_table;
mod id;
#[cfg(feature = "fetch")]
mod link;
mod locator;
mod lockfile;
#[cfg(feature = "fetch")]
mod registry;
mod release;
mod settings;
#[cfg(feature = "fetch")]
mod vendor;

/// Cases per property when `PROPTEST_CASES` is not set.
const CASES: u32 = 256;

/// The configuration of every property: [`CASES`] cases (or `PROPTEST_CASES`), and no
/// regression files written next to the sources; a failure found is kept as a plain test.
pub(crate) fn config() -> Config {
    // `Config::default()` reads `PROPTEST_CASES` itself; only its absence is overridden.
    let cases = match std::env::var("PROPTEST_CASES") {
        Ok(_) => Config::default().cases,
        Err(_) => CASES,
    };
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Pieces that parsers give meaning to, and characters that have tripped parsers elsewhere.
const FRAGMENTS: &[&str] = &[
    "file://",
    "https://",
    "http://",
    "github://",
    "ftp://",
    "://",
    "sha256:",
    "sha256-",
    "/",
    "\\",
    ".",
    "..",
    "./",
    "../",
    "@",
    "-",
    "_",
    "v",
    "1.2.3",
    "0",
    "-rc.1",
    "+build",
    "%",
    "%2e",
    "%2F",
    "?",
    "#",
    ":",
    "[::1]",
    "127.0.0.1",
    "localhost",
    "api.",
    "github.com",
    " ",
    "\t",
    "\n",
    "\r",
    "\0",
    "\u{1b}[2J",
    "\u{202e}",
    "\u{2066}",
    "\u{feff}",
    "é",
    "日本",
    "🦀",
    "\"",
    "'",
    "=",
    "[",
    "]",
    "{",
    "}",
    ",",
    ";",
    "<",
    ">",
    "MiB",
    "KiB",
    "GiB",
    "B",
    "ms",
    "s",
    "m",
    "h",
    "none",
    "18446744073709551616",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    "[plugins]\n",
    "version = 1\n",
    "checksum = ",
    "size = ",
    "locator = ",
];

/// One piece of [`text`]: a fragment, a short word or any character.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(FRAGMENTS).prop_map(str::to_string),
        2 => "[a-zA-Z0-9]{1,6}",
        2 => any::<char>().prop_map(String::from),
    ]
}

/// Arbitrary text for "nothing panics" properties: any characters, strings assembled from
/// pieces that parsers give meaning to, and long inputs.
pub(crate) fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::collection::vec(any::<char>(), 0..48).prop_map(String::from_iter),
        5 => proptest::collection::vec(fragment(), 0..16).prop_map(|parts| parts.concat()),
        1 => proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        1 => (proptest::collection::vec(fragment(), 1..4), 1..4_000usize)
            .prop_map(|(parts, times)| parts.concat().repeat(times)),
    ]
}

/// `text` with one edit at a position chosen by `at`: a fragment inserted, a character
/// removed, or the text cut there. Feeding parsers near-valid input reaches deeper checks than
/// random text does.
pub(crate) fn mutated(text: String) -> impl Strategy<Value = String> {
    (any::<prop::sample::Index>(), 0..3u8, fragment()).prop_map(move |(at, kind, piece)| {
        let boundaries: Vec<usize> = text
            .char_indices()
            .map(|(index, _)| index)
            .chain([text.len()])
            .collect();
        let at = boundaries[at.index(boundaries.len())];
        let mut out = text.clone();
        match kind {
            0 => out.insert_str(at, &piece),
            1 if at < text.len() => {
                out.remove(at);
            }
            _ => out.truncate(at),
        }
        out
    })
}

/// A valid id.
pub(crate) fn id() -> impl Strategy<Value = Id> {
    "[A-Za-z0-9][A-Za-z0-9_.-]{0,24}".prop_filter_map("not an id", |text| Id::new(text).ok())
}

/// Any checksum.
pub(crate) fn checksum() -> impl Strategy<Value = Checksum> {
    any::<[u8; 32]>().prop_map(Checksum::from_bytes)
}

/// A semantic version, sometimes with a pre-release and build metadata.
pub(crate) fn version() -> impl Strategy<Value = semver::Version> {
    (
        0..30u64,
        0..30u64,
        0..300u64,
        prop::option::of("(alpha|beta|rc)(\\.(0|[1-9][0-9]?))?"),
        prop::option::of("[a-z0-9]{1,6}"),
    )
        .prop_map(|(major, minor, patch, pre, build)| {
            let mut version = semver::Version::new(major, minor, patch);
            if let Some(pre) = pre {
                version.pre = semver::Prerelease::new(&pre).expect("a valid pre-release");
            }
            if let Some(build) = build {
                version.build = semver::BuildMetadata::new(&build).expect("valid build metadata");
            }
            version
        })
}

/// A GitHub owner, repository or project name (`.` and `..` aside).
pub(crate) fn name_part() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-][A-Za-z0-9_.-]{0,12}".prop_filter("`.` or `..`", |part| part != "..")
}

/// A tag as a locator may pin it: versions in each spelling, or free-form names.
pub(crate) fn tag() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (select(&["", "v"][..]), version())
            .prop_map(|(prefix, version)| format!("{prefix}{version}")),
        1 => "[A-Za-z0-9_.@+-]{1,16}",
        1 => select(&[".", "-", "@", "_", "+", ".v1", "v1.", "@v1"][..]).prop_map(str::to_string),
    ]
    .prop_filter("not a tag", |tag| crate::release::check_tag(tag).is_ok())
}

/// A `github://` locator, parsed from its parts.
pub(crate) fn github_locator() -> impl Strategy<Value = GitHubLocator> {
    (
        name_part(),
        name_part(),
        prop::option::of(name_part()),
        prop::option::of(tag()),
    )
        .prop_filter_map("not a locator", |(owner, repo, project, tag)| {
            let mut text = format!("github://{owner}/{repo}");
            if let Some(project) = &project {
                text = format!("{text}/{project}");
            }
            if let Some(tag) = &tag {
                text = format!("{text}@{tag}");
            }
            match text.parse() {
                Ok(PluginLocator::GitHub(locator)) => Some(locator),
                _ => None,
            }
        })
}

/// A relative or absolute path as a `file://` locator may give it, with `.`/`..` segments,
/// spaces, quotes, backslashes and non-ASCII names.
pub(crate) fn file_path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        4 => "[A-Za-z0-9_-]{1,8}(\\.wasm)?",
        1 => Just(".".to_string()),
        1 => Just("..".to_string()),
        1 => "[A-Za-z0-9 \"'\\\\#=é日]{1,6}",
    ];
    (
        select(&["", "./", "../", "/"][..]),
        proptest::collection::vec(segment, 1..6),
    )
        .prop_map(|(start, segments)| format!("{start}{}", segments.join("/")))
        .prop_filter("not a locator path", |path| {
            path.trim() == path && format!("file://{path}").parse::<PluginLocator>().is_ok()
        })
}

/// An `https://` (or loopback `http://`) URL locator.
pub(crate) fn url_locator() -> impl Strategy<Value = String> {
    (
        select(
            &[
                "https://plugins.example.com",
                "https://example.com:8443",
                "https://xn--bcher-kva.example",
                "http://127.0.0.1:8080",
                "http://localhost",
                "http://[::1]:9000",
            ][..],
        ),
        proptest::collection::vec("[A-Za-z0-9_.~%-]{1,8}", 0..4),
        prop::option::of("[a-z]{1,4}=[a-z0-9]{0,4}"),
    )
        .prop_map(|(origin, segments, query)| {
            let mut url = format!("{origin}/{}", segments.join("/"));
            if let Some(query) = query {
                url = format!("{url}?{query}");
            }
            url
        })
        .prop_filter("not a locator", |url| url.parse::<PluginLocator>().is_ok())
}

/// Any valid locator.
pub(crate) fn locator() -> impl Strategy<Value = PluginLocator> {
    prop_oneof![
        file_path().prop_map(|file| format!("file://{file}")),
        url_locator(),
        github_locator().prop_map(|locator| locator.to_string()),
    ]
    .prop_map(|text| text.parse().expect("generated locators parse"))
}
