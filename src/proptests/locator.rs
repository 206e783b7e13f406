//! [`PluginLocator`]: accepted text is kept exactly, prints back to itself, and refusals are
//! errors whose message shows no raw control characters.

use proptest::prelude::*;

use super::{locator, mutated, name_part, tag, text};
use crate::locator::{PluginLocator, is_hidden_control};

/// A locator-shaped string with one random edit, for "nothing panics" properties.
fn near_locator() -> impl Strategy<Value = String> {
    locator().prop_flat_map(|locator| mutated(locator.to_string()))
}

proptest! {
    #![proptest_config(super::config())]

    /// Any text parses to a locator or an error. An accepted locator prints as the input (the
    /// canonical form is the text as written) and holds no control characters; a refusal's
    /// message shows the input escaped.
    #[test]
    fn locator_parse_never_panics(input in prop_oneof![text(), near_locator()]) {
        match input.parse::<PluginLocator>() {
            Ok(locator) => {
                prop_assert_eq!(locator.to_string(), input.clone());
                prop_assert!(!input.chars().any(is_hidden_control));
                if let PluginLocator::GitHub(github) = &locator {
                    // Every tag the locator stands for can be a git tag in a URL path.
                    let project = github.project_name.as_deref();
                    let wanted = github.tag.as_deref().unwrap_or("v1.0.0");
                    for tag in crate::release::tag_candidates(project, wanted) {
                        prop_assert!(crate::release::check_tag(&tag).is_ok(), "{}", tag);
                    }
                }
                let json = serde_json::to_string(&locator).unwrap();
                prop_assert_eq!(serde_json::from_str::<PluginLocator>(&json).unwrap(), locator);
            }
            Err(error) => {
                let message = error.to_string();
                prop_assert!(!message.chars().any(is_hidden_control), "{:?}", message);
                prop_assert!(serde_json::from_str::<PluginLocator>(
                    &serde_json::to_string(&input).unwrap()
                ).is_err());
            }
        }
    }

    /// Every locator reads back from its display form, from JSON and from a TOML string, and
    /// prints the same again.
    #[test]
    fn locator_round_trips(locator in locator()) {
        let printed = locator.to_string();
        let parsed: PluginLocator = printed.parse().unwrap();
        prop_assert_eq!(&parsed, &locator);
        prop_assert_eq!(parsed.to_string(), printed.clone());
        let json = serde_json::to_string(&locator).unwrap();
        prop_assert_eq!(&serde_json::from_str::<PluginLocator>(&json).unwrap(), &locator);
        let mut table = toml::Table::new();
        table.insert("locator".into(), toml::Value::String(printed));
        #[derive(serde::Deserialize)]
        struct Entry {
            locator: PluginLocator,
        }
        let entry: Entry = toml::from_str(&toml::to_string(&table).unwrap()).unwrap();
        prop_assert_eq!(entry.locator, locator);
    }

    /// A `github://` locator's parts are the ones written, whichever parts are given.
    #[test]
    fn github_locator_parts(
        owner in name_part(),
        repo in name_part(),
        project in prop::option::of(name_part()),
        tag in prop::option::of(tag()),
    ) {
        let mut text = format!("github://{owner}/{repo}");
        if let Some(project) = &project {
            text.push('/');
            text.push_str(project);
        }
        if let Some(tag) = &tag {
            text.push('@');
            text.push_str(tag);
        }
        if project.as_ref().is_some_and(|project| project.contains("..")) {
            // A project names its tags, and no tag can hold `..`.
            prop_assert!(text.parse::<PluginLocator>().is_err());
            return Ok(());
        }
        let Ok(PluginLocator::GitHub(locator)) = text.parse::<PluginLocator>() else {
            return Err(TestCaseError::fail(format!("`{text}` was refused")));
        };
        prop_assert_eq!(locator.owner(), owner.as_str());
        prop_assert_eq!(locator.repo(), repo.as_str());
        prop_assert_eq!(locator.project_name, project);
        prop_assert_eq!(locator.tag, tag);
    }
}
