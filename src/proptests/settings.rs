//! Runtime settings: memory sizes, timeouts and the TOML values of a plugin entry's settings.

use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::select;

use super::text;
use crate::settings::{PAGE_SIZE, RuntimeSettings, Timeout, parse_memory, parse_timeout};

/// Units of a memory size and their sizes in bytes.
const MEMORY_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
];

/// Units of a timeout and their lengths.
const TIMEOUT_UNITS: &[(&str, Duration)] = &[
    ("ms", Duration::from_millis(1)),
    ("s", Duration::from_secs(1)),
    ("m", Duration::from_secs(60)),
    ("h", Duration::from_secs(3600)),
];

/// Spacing around and inside a setting, which is allowed.
fn spacing() -> impl Strategy<Value = &'static str> {
    select(&["", " ", "  ", "\t"][..])
}

/// Any TOML value, nested a little.
pub(crate) fn toml_value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        text().prop_map(toml::Value::String),
        any::<i64>().prop_map(toml::Value::Integer),
        (-70_000..70_000i64).prop_map(toml::Value::Integer),
        any::<f64>().prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
            proptest::collection::btree_map(text(), inner, 0..4)
                .prop_map(|map| toml::Value::Table(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(super::config())]

    /// Any text is a memory size in range, or an error.
    #[test]
    fn memory_parse_never_panics(input in text()) {
        if let Ok(pages) = parse_memory(&input) {
            prop_assert!((1..=65_536).contains(&pages), "{:?} gave {}", input, pages);
        }
    }

    /// A number and a unit read as that many bytes rounded up to whole pages, when the result
    /// is between one page and 4 GiB; a bare number is a number of pages.
    #[test]
    fn memory_sizes_read_as_written(
        number in prop_oneof![0..70_000u64, any::<u64>()],
        unit in select(MEMORY_UNITS),
        before in spacing(),
        between in spacing(),
        after in spacing(),
    ) {
        let (name, size) = unit;
        let parsed = parse_memory(&format!("{before}{number}{between}{name}{after}"));
        let pages = number.checked_mul(size).map(|bytes| bytes.div_ceil(PAGE_SIZE));
        match pages {
            Some(pages) if (1..=65_536).contains(&pages) => {
                prop_assert_eq!(parsed, Ok(u32::try_from(pages).unwrap()));
            }
            _ => prop_assert!(parsed.is_err()),
        }
        let bare = parse_memory(&format!("{before}{number}{after}"));
        if (1..=65_536).contains(&number) {
            prop_assert_eq!(bare, Ok(u32::try_from(number).unwrap()));
        } else {
            prop_assert!(bare.is_err());
        }
    }

    /// Any text is a timeout or an error; an accepted one is never zero.
    #[test]
    fn timeout_parse_never_panics(input in text()) {
        if let Ok(Timeout::After(duration)) = parse_timeout(&input) {
            prop_assert!(!duration.is_zero());
        }
    }

    /// A whole number and a unit read as that long (saturating), and zero is refused in favour
    /// of `none`, which reads in any letter case.
    #[test]
    fn timeouts_read_as_written(
        number in prop_oneof![0..100_000u64, any::<u64>()],
        unit in select(TIMEOUT_UNITS),
        before in spacing(),
        between in spacing(),
        after in spacing(),
        none in "[nN][oO][nN][eE]",
    ) {
        let (name, length) = unit;
        let parsed = parse_timeout(&format!("{before}{number}{between}{name}{after}"));
        if number == 0 {
            prop_assert!(parsed.is_err());
        } else {
            let expected = length.checked_mul(u32::try_from(number).unwrap_or(u32::MAX));
            match (number, name) {
                (_, "ms") => prop_assert_eq!(parsed, Ok(Timeout::After(Duration::from_millis(number)))),
                (_, "s") => prop_assert_eq!(parsed, Ok(Timeout::After(Duration::from_secs(number)))),
                _ if u32::try_from(number).is_ok() => {
                    prop_assert_eq!(parsed, Ok(Timeout::After(expected.unwrap())));
                }
                _ => prop_assert!(matches!(parsed, Ok(Timeout::After(_)))),
            }
        }
        prop_assert_eq!(parse_timeout(&format!("{before}{none}{after}")), Ok(Timeout::Never));
    }

    /// Any TOML value under any setting key (or another key) is taken, within the limits, or
    /// refused with a message.
    #[test]
    fn settings_from_any_value_never_panic(
        key in prop_oneof![select(&RuntimeSettings::KEYS[..]).prop_map(str::to_string), text()],
        value in toml_value(),
    ) {
        let mut settings = RuntimeSettings::default();
        match settings.set(&key, &value) {
            Ok(()) => {
                if let Some(pages) = settings.memory_max_pages {
                    prop_assert!((1..=65_536).contains(&pages));
                }
                prop_assert!(!settings.allowed_paths.contains_key(""));
            }
            Err(message) => prop_assert!(!message.is_empty()),
        }
    }
}
