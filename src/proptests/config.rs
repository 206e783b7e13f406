//! `warpgate.toml`: entries written by `warpgate add` read back equal, hand-written entries
//! with runtime settings read as written, and no text makes the reader panic.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use proptest::sample::select;

use super::{github_locator, id, locator, mutated, text};
use crate::config::{Config, ConfigSource, PluginEntry};
use crate::edit::{add_entry, remove_entry};
use crate::id::Id;
use crate::locator::PluginLocator;
use crate::settings::{RuntimeSettings, Timeout};

const PATH: &str = "/project/warpgate.toml";

/// An entry `PluginEntry::new` accepts: any locator, and for a GitHub one maybe a `version`
/// (without a tag) and an `asset`.
fn entry() -> impl Strategy<Value = PluginEntry> {
    let plain = locator().prop_map(|locator| PluginEntry::new(locator, None, None));
    let github = (
        github_locator(),
        prop::option::of(select(
            &["^1.2", "~0.3.1", ">=1, <2", "=2.0.0-rc.1", "*"][..],
        )),
        prop::option::of(
            "[A-Za-z0-9 _.é-]{1,12}"
                .prop_filter("`.` or `..`", |asset| crate::release::is_asset_name(asset)),
        ),
    )
        .prop_map(|(locator, version, asset)| {
            let version = version
                .filter(|_| locator.tag.is_none())
                .map(|version| version.parse().expect("a valid requirement"));
            PluginEntry::new(PluginLocator::GitHub(locator), version, asset)
        });
    prop_oneof![plain, github].prop_map(|entry| entry.expect("a valid entry"))
}

/// Plugins with ids that differ in more than letter case.
fn plugins() -> impl Strategy<Value = BTreeMap<Id, PluginEntry>> {
    proptest::collection::btree_map(id(), entry(), 0..6).prop_map(|plugins| {
        let mut kept: BTreeMap<Id, PluginEntry> = BTreeMap::new();
        for (id, entry) in plugins {
            if crate::config::case_twin(kept.keys(), &id).is_none() {
                kept.insert(id, entry);
            }
        }
        kept
    })
}

/// Runtime settings with each field maybe given, and the TOML that gives them.
fn settings() -> impl Strategy<Value = (RuntimeSettings, toml::Table)> {
    let string_map = || proptest::collection::btree_map(text(), text(), 0..3);
    (
        prop::option::of(string_map()),
        prop::option::of(proptest::collection::btree_map(
            text().prop_filter("empty host folder", |host| !host.is_empty()),
            text(),
            0..3,
        )),
        prop::option::of(proptest::collection::vec(
            "(\\*\\.)?[a-z0-9-]{1,8}(\\.[a-z]{2,4})?|\\*|127\\.0\\.0\\.1|\\[::1\\]",
            0..3,
        )),
        prop::option::of(prop_oneof![
            (1..=65_536u32).prop_map(|pages| (pages, toml::Value::Integer(pages.into()))),
            (1..=4_096u32).prop_map(|mib| (mib * 16, toml::Value::String(format!("{mib} MiB")))),
        ]),
        prop::option::of(prop_oneof![
            Just((Timeout::Never, "none".to_string())),
            (1..10_000u64).prop_map(|ms| (
                Timeout::After(std::time::Duration::from_millis(ms)),
                format!("{ms}ms")
            )),
        ]),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(config, allowed_paths, allowed_hosts, memory, timeout, wasi)| {
                let mut settings = RuntimeSettings::default();
                let mut table = toml::Table::new();
                let strings = |map: &BTreeMap<String, String>| {
                    toml::Value::Table(
                        map.iter()
                            .map(|(key, value)| (key.clone(), toml::Value::String(value.clone())))
                            .collect(),
                    )
                };
                if let Some(config) = config {
                    table.insert("config".into(), strings(&config));
                    settings.config = config;
                }
                if let Some(allowed_paths) = allowed_paths {
                    table.insert("allowed_paths".into(), strings(&allowed_paths));
                    settings.allowed_paths = allowed_paths;
                }
                if let Some(hosts) = allowed_hosts {
                    let values = hosts.iter().cloned().map(toml::Value::String).collect();
                    table.insert("allowed_hosts".into(), toml::Value::Array(values));
                    settings.allowed_hosts = hosts;
                }
                if let Some((pages, value)) = memory {
                    table.insert("memory".into(), value);
                    settings.memory_max_pages = Some(pages);
                }
                if let Some((timeout, text)) = timeout {
                    table.insert("timeout".into(), toml::Value::String(text));
                    settings.timeout = Some(timeout);
                }
                if let Some(wasi) = wasi {
                    table.insert("wasi".into(), toml::Value::Boolean(wasi));
                    settings.wasi = Some(wasi);
                }
                (settings, table)
            },
        )
}

/// A config's text with one random edit: a config `warpgate add` wrote, or one written by
/// hand with settings and values of any shape.
fn near_config() -> impl Strategy<Value = String> {
    let added = plugins().prop_map(|plugins| {
        let mut text = String::new();
        for (id, entry) in &plugins {
            text = add_entry(
                &text,
                Path::new(PATH),
                ConfigSource::WarpgateToml,
                id,
                entry,
            )
            .expect("entries are added to a valid config");
        }
        text
    });
    let written = plugins_table().prop_filter_map("not TOML", |plugins| {
        let mut document = toml::Table::new();
        document.insert("plugins".into(), toml::Value::Table(plugins));
        toml::to_string(&document).ok()
    });
    prop_oneof![added, written].prop_flat_map(mutated)
}

proptest! {
    #![proptest_config(super::config())]

    /// An `asset` the config accepts is one a release download URL can name.
    #[test]
    fn accepted_assets_can_be_downloaded(
        locator in github_locator(),
        asset in prop_oneof![text(), "[a-z.]{1,3}"],
    ) {
        let accepted = PluginEntry::new(PluginLocator::GitHub(locator.clone()), None, Some(asset.clone()));
        if accepted.is_ok() {
            let url = crate::release::download_url("https://api.github.com", &locator, "v1.0.0", &asset);
            prop_assert!(url.is_ok(), "{:?}", url);
        }
    }

    /// Entries added one by one (as `warpgate add` does) read back equal, and removing each
    /// again (as `warpgate remove` does) leaves the others.
    #[test]
    fn added_entries_read_back(plugins in plugins()) {
        let path = Path::new(PATH);
        let mut text = String::new();
        for (id, entry) in &plugins {
            text = add_entry(&text, path, ConfigSource::WarpgateToml, id, entry).unwrap();
        }
        let config = Config::parse(&text, path)
            .map_err(|error| TestCaseError::fail(format!("{error}\n{text}")))?;
        prop_assert_eq!(&config.plugins, &plugins);
        let mut left = plugins.clone();
        for id in plugins.keys() {
            text = remove_entry(&text, path, ConfigSource::WarpgateToml, id).unwrap();
            left.remove(id);
            prop_assert_eq!(&Config::parse(&text, path).unwrap().plugins, &left);
        }
    }

    /// An entry's runtime settings read as the TOML gives them.
    #[test]
    fn settings_read_as_written(
        id in id(),
        locator in locator(),
        (settings, mut table) in settings(),
    ) {
        table.insert("locator".into(), toml::Value::String(locator.to_string()));
        let mut plugins = toml::Table::new();
        plugins.insert(id.to_string(), toml::Value::Table(table));
        let mut document = toml::Table::new();
        document.insert("plugins".into(), toml::Value::Table(plugins));
        let text = toml::to_string(&document).unwrap();
        let config = Config::parse(&text, Path::new(PATH))
            .map_err(|error| TestCaseError::fail(format!("{error}\n{text}")))?;
        let entry = &config.plugins[&id];
        prop_assert_eq!(&entry.locator, &locator);
        prop_assert_eq!(&entry.settings, &settings);
    }

    /// Any text, and any near-valid config, reads as a config or an error.
    #[test]
    fn config_parse_never_panics(input in prop_oneof![text(), near_config()]) {
        let path = Path::new(PATH);
        match Config::parse(&input, path) {
            Ok(config) => {
                for (id, entry) in &config.plugins {
                    prop_assert!(crate::config::case_twin(config.plugins.keys(), id).is_none());
                    let again = PluginEntry::new(
                        entry.locator.clone(),
                        entry.version.clone(),
                        entry.asset.clone(),
                    );
                    prop_assert!(again.is_ok(), "{:?}", again);
                    if let Some(asset) = &entry.asset {
                        prop_assert!(crate::release::is_asset_name(asset));
                    }
                }
            }
            Err(error) => prop_assert!(error.to_string().starts_with("invalid config")),
        }
        let _ = add_entry(
            &input,
            path,
            ConfigSource::WarpgateToml,
            &Id::new("added").unwrap(),
            &PluginEntry::new("file://x.wasm".parse().unwrap(), None, None).unwrap(),
        );
        let _ = remove_entry(&input, path, ConfigSource::WarpgateToml, &Id::new("x").unwrap());
    }
}

/// A `[plugins]` table as a user writes it: entries as strings or tables, with settings, and
/// now and then a value of any shape.
pub(crate) fn plugins_table() -> impl Strategy<Value = toml::Table> {
    let value = (entry(), settings(), 0..5u8).prop_map(|(entry, (_, settings), shape)| {
        let mut table = settings;
        table.insert(
            "locator".into(),
            toml::Value::String(entry.locator.to_string()),
        );
        if let Some(version) = &entry.version {
            table.insert("version".into(), toml::Value::String(version.to_string()));
        }
        if let Some(asset) = &entry.asset {
            table.insert("asset".into(), toml::Value::String(asset.clone()));
        }
        match shape {
            0 => toml::Value::String(entry.locator.to_string()),
            _ => toml::Value::Table(table),
        }
    });
    let key = prop_oneof![4 => id().prop_map(|id| id.to_string()), 1 => text()];
    let value = prop_oneof![8 => value, 1 => super::settings::toml_value()];
    proptest::collection::btree_map(key, value, 0..5)
        .prop_map(|entries| entries.into_iter().collect())
}
