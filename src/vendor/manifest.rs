//! The vendor directory's manifest, `warpgate-vendor.toml`: every plugin's checksum and size.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{MANIFEST_HEADER, MANIFEST_NAME, MANIFEST_VERSION, VendorError};
use crate::checksum::Checksum;
use crate::fs::FileError;
use crate::id::Id;
use crate::lockfile::Lockfile;

/// One entry of the vendor manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// The plugin's checksum.
    pub checksum: Checksum,
    /// The plugin's size in bytes.
    pub size: u64,
}

/// The contents of `warpgate-vendor.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorManifest {
    /// The format version.
    pub version: u32,
    /// Every vendored plugin, by id.
    #[serde(default)]
    pub plugins: BTreeMap<Id, ManifestEntry>,
}

impl VendorManifest {
    /// The manifest for every plugin of `lockfile`.
    pub fn for_lockfile(lockfile: &Lockfile) -> Self {
        Self {
            version: MANIFEST_VERSION,
            plugins: lockfile
                .plugins
                .iter()
                .map(|(id, locked)| {
                    (
                        id.clone(),
                        ManifestEntry {
                            checksum: locked.checksum,
                            size: locked.size,
                        },
                    )
                })
                .collect(),
        }
    }

    /// The canonical text: header, version, one table per plugin sorted by id.
    pub fn to_canonical_string(&self) -> String {
        let mut text = format!("{MANIFEST_HEADER}version = {}\n", self.version);
        for (id, entry) in &self.plugins {
            text.push_str(&format!(
                "\n[plugins.{}]\nchecksum = \"{}\"\nsize = {}\n",
                toml_key(id),
                entry.checksum,
                entry.size
            ));
        }
        text
    }

    /// Parses manifest text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let manifest: Self = toml::from_str(text).map_err(|error| error.message().to_string())?;
        if manifest.version > MANIFEST_VERSION {
            return Err(format!(
                "format version {} is newer than this warpgate understands ({MANIFEST_VERSION})",
                manifest.version
            ));
        }
        Ok(manifest)
    }

    /// Reads `dir`'s manifest: `Ok(None)` when it does not exist.
    pub fn read(dir: &Path) -> Result<Option<Self>, VendorError> {
        let path = dir.join(MANIFEST_NAME);
        match crate::fs::read_text(&path, crate::fs::Links::Refuse) {
            Ok(text) => Self::parse(&text)
                .map(Some)
                .map_err(|reason| VendorError::Manifest { path, reason }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(VendorError::Io(FileError {
                action: "read",
                path,
                source,
            })),
        }
    }
}

/// `id` as a TOML table key: bare when it can be, else quoted (an id may hold `.`, which a
/// bare key would read as nesting; ids never hold `"` or `\`).
fn toml_key(id: &Id) -> String {
    let id = id.as_str();
    if id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        id.to_string()
    } else {
        format!("\"{id}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendor::MANIFEST_HEADER;

    #[test]
    fn manifest_round_trips() {
        let mut manifest = VendorManifest {
            version: MANIFEST_VERSION,
            plugins: BTreeMap::new(),
        };
        manifest.plugins.insert(
            Id::new("beta").unwrap(),
            ManifestEntry {
                checksum: Checksum::of(b"b"),
                size: 1,
            },
        );
        manifest.plugins.insert(
            Id::new("dotted.id").unwrap(),
            ManifestEntry {
                checksum: Checksum::of(b"d"),
                size: 1,
            },
        );
        manifest.plugins.insert(
            Id::new("alpha").unwrap(),
            ManifestEntry {
                checksum: Checksum::of(b""),
                size: 0,
            },
        );
        let text = manifest.to_canonical_string();
        assert!(text.starts_with(MANIFEST_HEADER));
        assert!(text.find("[plugins.alpha]").unwrap() < text.find("[plugins.beta]").unwrap());
        assert!(text.contains("[plugins.\"dotted.id\"]"), "{text}");
        assert_eq!(VendorManifest::parse(&text).unwrap(), manifest);
        assert!(
            VendorManifest::parse("version = 99\n")
                .unwrap_err()
                .contains("newer")
        );
    }
}
