//! [`Id`]: only safe file names are accepted, and they round-trip.

use std::path::{Component, Path};

use proptest::prelude::*;

use super::{id, text};
use crate::id::Id;

proptest! {
    #![proptest_config(super::config())]

    /// Whatever the input, `Id::new` returns: an id that is a plain file name, or an error.
    #[test]
    fn id_parse_never_panics(input in text()) {
        match Id::new(input.as_str()) {
            Ok(id) => {
                prop_assert_eq!(id.as_str(), input.as_str());
                prop_assert!((1..=64).contains(&input.len()));
                let file = format!("{id}.wasm");
                let components: Vec<_> = Path::new(&file).components().collect();
                prop_assert!(matches!(components[..], [Component::Normal(_)]), "{}", file);
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    /// Every id reads back from its display form, as JSON and as a TOML key.
    #[test]
    fn id_round_trips(id in id()) {
        prop_assert_eq!(&id.to_string().parse::<Id>().unwrap(), &id);
        let json = serde_json::to_string(&id).unwrap();
        prop_assert_eq!(&serde_json::from_str::<Id>(&json).unwrap(), &id);
        let table: std::collections::BTreeMap<Id, u8> = [(id.clone(), 1)].into();
        let toml_text = toml::to_string(&table).unwrap();
        let back: std::collections::BTreeMap<Id, u8> = toml::from_str(&toml_text).unwrap();
        prop_assert_eq!(back, table);
    }
}
