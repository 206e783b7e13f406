//! `registry://` locators and `WWW-Authenticate` challenges: accepted locators keep their
//! parts and print back to themselves, challenges read back what was written, and no input
//! makes either parser panic or echo raw control characters.

use proptest::prelude::*;
use proptest::sample::select;

use super::{checksum, mutated, text};
use crate::locator::{PluginLocator, is_hidden_control};
use crate::oci::auth::{Challenge, may_send_credentials, parse_challenge};
use crate::oci::reference::RegistryLocator;

/// A registry host as locators write it.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        select(
            &[
                "ghcr.io",
                "docker.io",
                "localhost",
                "localhost:5000",
                "127.0.0.1:5000",
                "[::1]:5000",
                "registry.example.com:443",
                "xn--bcher-kva.example",
            ][..]
        )
        .prop_map(str::to_string),
        (
            "[a-z0-9]{1,8}(-[a-z0-9]{1,4})?",
            "[a-z]{2,6}",
            prop::option::of(1..65535u16)
        )
            .prop_map(|(name, top, port)| match port {
                Some(port) => format!("{name}.{top}:{port}"),
                None => format!("{name}.{top}"),
            }),
    ]
}

/// A repository name: components of the distribution grammar.
fn repository() -> impl Strategy<Value = String> {
    let component = "[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,4}){0,2}";
    proptest::collection::vec(component, 1..5).prop_map(|parts| parts.join("/"))
}

/// A valid tag.
fn tag() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => super::version().prop_map(|version| {
            // `+` is not a tag character; registries spell build metadata with `_`.
            version.to_string().replace('+', "_")
        }),
        1 => "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}",
    ]
}

/// A valid `registry://` locator, built from its parts.
fn registry_locator() -> impl Strategy<Value = RegistryLocator> {
    (
        host(),
        repository(),
        prop::option::of(tag()),
        prop::option::of(checksum()),
    )
        .prop_map(|(registry, repository, tag, digest)| RegistryLocator {
            registry,
            repository,
            tag,
            digest,
        })
}

/// A `Bearer` parameter value: anything printable, quotes and backslashes included.
fn parameter() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,24}",
        select(
            &[
                "https://auth.docker.io/token",
                "repository:a/b:pull,push",
                "\"",
                "\\",
                ","
            ][..]
        )
        .prop_map(str::to_string),
    ]
}

/// `value` as an RFC 9110 quoted-string.
fn quoted(value: &str) -> String {
    let mut out = String::from('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

proptest! {
    #![proptest_config(super::config())]

    /// Any text after `registry://` parses to a locator or an error. An accepted locator
    /// prints as the input and survives JSON; a refusal shows no raw control characters.
    #[test]
    fn registry_locator_parse_never_panics(
        input in prop_oneof![
            text().prop_map(|text| format!("registry://{text}")),
            registry_locator().prop_flat_map(|locator| mutated(locator.to_string())),
        ]
    ) {
        match input.parse::<PluginLocator>() {
            Ok(locator) => {
                prop_assert_eq!(locator.to_string(), input.clone());
                prop_assert!(!input.chars().any(is_hidden_control));
                let json = serde_json::to_string(&locator).unwrap();
                prop_assert_eq!(serde_json::from_str::<PluginLocator>(&json).unwrap(), locator);
            }
            Err(error) => {
                let message = error.to_string();
                prop_assert!(!message.chars().any(is_hidden_control), "{:?}", message);
            }
        }
    }

    /// A locator built from valid parts prints, parses back to the same parts, and keeps
    /// registry and repository apart (the host is never taken for a path, nor a port for a
    /// tag).
    #[test]
    fn registry_locator_round_trips(locator in registry_locator()) {
        let printed = locator.to_string();
        let parsed = match printed.parse::<PluginLocator>() {
            Ok(PluginLocator::Registry(parsed)) => parsed,
            other => return Err(TestCaseError::fail(format!("`{printed}`: {other:?}"))),
        };
        prop_assert_eq!(&parsed, &locator);
        prop_assert_eq!(parsed.to_string(), printed);
        prop_assert_eq!(crate::oci::reference::parse_mirror(
            &locator.repository_locator().to_string()
        ).unwrap(), locator.repository_locator());
    }

    /// Any header value parses to a challenge or nothing, without panicking; whatever it
    /// reads, the credential rule answers for any realm host.
    #[test]
    fn challenge_parse_never_panics(
        input in prop_oneof![
            text(),
            text().prop_map(|text| format!("Bearer {text}")),
            (parameter(), parameter()).prop_flat_map(|(realm, scope)| mutated(format!(
                "Bearer realm={},scope={}", quoted(&realm), quoted(&scope)
            ))),
        ],
        registry in host(),
    ) {
        if let Some(Challenge::Bearer { realm, .. }) = parse_challenge(&input) {
            let realm_host = url::Url::parse(&realm)
                .ok()
                .and_then(|url| url.host_str().map(str::to_string))
                .unwrap_or(realm);
            let _ = may_send_credentials(&registry, &realm_host);
        }
    }

    /// A `Bearer` challenge reads back the parameters written, in any order and case of the
    /// keys, quoted or not.
    #[test]
    fn challenge_round_trips(
        realm in parameter(),
        service in prop::option::of(parameter()),
        scope in prop::option::of("[a-z0-9:/,_.-]{1,24}"),
        upper in any::<bool>(),
    ) {
        let key = |name: &str| if upper { name.to_ascii_uppercase() } else { name.to_string() };
        let mut parts = Vec::new();
        if let Some(scope) = &scope {
            // Unquoted token values may carry no comma.
            parts.push(format!("{}={}", key("scope"), quoted(scope)));
        }
        parts.push(format!("{}={}", key("realm"), quoted(&realm)));
        if let Some(service) = &service {
            parts.push(format!("{}={}", key("service"), quoted(service)));
        }
        let header = format!("Bearer {}", parts.join(", "));
        prop_assert_eq!(
            parse_challenge(&header),
            Some(Challenge::Bearer { realm, service, scope }),
            "{}", header
        );
    }

    /// Credentials follow the rule for any pair of hosts: a host always gets its own, an IP
    /// address only its own.
    #[test]
    fn credentials_go_only_where_the_rule_says(registry in host(), other in host()) {
        let bare = |host: &str| url::Url::parse(&format!("https://{host}/"))
            .unwrap()
            .host_str()
            .unwrap()
            .to_string();
        prop_assert!(may_send_credentials(&registry, &bare(&registry)));
        let ip = |host: &str| bare(host).parse::<std::net::Ipv4Addr>().is_ok()
            || bare(host).starts_with('[');
        if (ip(&registry) || ip(&other)) && bare(&registry) != bare(&other) {
            prop_assert!(!may_send_credentials(&registry, &bare(&other)));
        }
    }
}
