//! `Link` headers of GitHub's paginated answers.

use proptest::prelude::*;
use proptest::sample::select;

use super::text;
use crate::http::parse_link;

/// A URL as GitHub puts in a `Link` header.
fn link_url() -> impl Strategy<Value = String> {
    (1..500u32, "[a-z0-9_-]{1,8}").prop_map(|(page, repo)| {
        format!("https://api.github.com/repos/acme/{repo}/releases?per_page=100&page={page}")
    })
}

proptest! {
    #![proptest_config(super::config())]

    /// Any header value gives a URL or none, for any relation.
    #[test]
    fn link_parse_never_panics(value in text(), rel in prop_oneof![text(), Just("next".to_string())]) {
        if let Some(url) = parse_link(&value, &rel) {
            prop_assert!(value.contains(&url));
        }
    }

    /// Each relation of a header written the way GitHub writes it reads back as its URL,
    /// whatever the order and spacing.
    #[test]
    fn link_relations_read_back(
        urls in proptest::collection::vec(link_url(), 4),
        order in Just(vec![0usize, 1, 2, 3]).prop_shuffle(),
        spacing in select(&["", " ", "  "][..]),
        quoted in any::<bool>(),
    ) {
        let rels = ["next", "last", "first", "prev"];
        let value = order
            .iter()
            .map(|&index| {
                let rel = if quoted { format!("\"{}\"", rels[index]) } else { rels[index].to_string() };
                format!("{spacing}<{}>;{spacing}rel={rel}", urls[index])
            })
            .collect::<Vec<_>>()
            .join(",");
        for (index, rel) in rels.iter().enumerate() {
            prop_assert_eq!(parse_link(&value, rel), Some(urls[index].clone()), "{}", value);
        }
    }
}
