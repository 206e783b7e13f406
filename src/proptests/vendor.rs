//! `warpgate-vendor.toml`: every manifest warpgate writes reads back equal, its text is
//! stable, and no text makes the reader panic.

use proptest::prelude::*;

use super::lockfile::lockfile;
use super::{checksum, id, mutated, text};
use crate::vendor::{MANIFEST_VERSION, ManifestEntry, VendorManifest};

/// A manifest of up to six plugins. Sizes stop at `i64::MAX`, the largest TOML integer (see
/// the lockfile's sizes).
fn manifest() -> impl Strategy<Value = VendorManifest> {
    (
        0..=MANIFEST_VERSION,
        proptest::collection::btree_map(
            id(),
            (checksum(), 0..=i64::MAX as u64)
                .prop_map(|(checksum, size)| ManifestEntry { checksum, size }),
            0..6,
        ),
    )
        .prop_map(|(version, plugins)| VendorManifest { version, plugins })
}

proptest! {
    #![proptest_config(super::config())]

    /// What warpgate writes it reads back equal, and writing that again gives the same bytes.
    #[test]
    fn vendor_manifest_round_trips(manifest in manifest()) {
        let text = manifest.to_canonical_string();
        let parsed = VendorManifest::parse(&text)
            .map_err(|error| TestCaseError::fail(format!("{error}\n{text}")))?;
        prop_assert_eq!(&parsed, &manifest);
        prop_assert_eq!(parsed.to_canonical_string(), text);
    }

    /// The manifest of any lockfile reads back equal.
    #[test]
    fn vendor_manifest_of_a_lockfile_round_trips(lock in lockfile()) {
        let manifest = VendorManifest::for_lockfile(&lock);
        prop_assert_eq!(VendorManifest::parse(&manifest.to_canonical_string()), Ok(manifest));
    }

    /// Any text, and any near-valid manifest, reads as a manifest or an error; what is read
    /// prints canonically, and that text reads back equal.
    #[test]
    fn vendor_manifest_parse_never_panics(
        input in prop_oneof![
            text(),
            manifest().prop_flat_map(|manifest| mutated(manifest.to_canonical_string())),
        ],
    ) {
        if let Ok(manifest) = VendorManifest::parse(&input) {
            prop_assert!(manifest.version <= MANIFEST_VERSION);
            let text = manifest.to_canonical_string();
            prop_assert_eq!(VendorManifest::parse(&text), Ok(manifest));
        }
    }
}
