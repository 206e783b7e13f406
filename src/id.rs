//! Plugin identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest accepted id, in bytes.
const MAX_LEN: usize = 64;

/// The name a project gives a plugin (`node`, `my-tool`).
///
/// An id is also used as a file name (`<id>.wasm`) and a table key in the lockfile, so it is
/// validated: 1 to 64 ASCII characters from `A-Z a-z 0-9 - _ .`, starting with a letter or
/// digit, with no `..`, and not a Windows device name (`con`, `nul.x`, `COM1`, …). Path
/// separators can therefore never appear, and `<id>.wasm` is a file name on every system.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(String);

/// Why a string is not a valid [`Id`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The id is empty.
    #[error("plugin id is empty")]
    Empty,
    /// The id is longer than 64 bytes.
    #[error("plugin id `{0}` is longer than {MAX_LEN} characters")]
    TooLong(String),
    /// The id holds a character outside `A-Z a-z 0-9 - _ .`.
    #[error(
        "plugin id `{}` contains `{}`; ids may only contain letters, digits, `-`, `_` and `.`",
        id.escape_debug(),
        character.escape_debug()
    )]
    InvalidCharacter {
        /// The rejected id.
        id: String,
        /// The first offending character.
        character: char,
    },
    /// The id starts with a character other than a letter or digit.
    #[error("plugin id `{0}` must start with a letter or digit")]
    InvalidStart(String),
    /// The id contains `..`.
    #[error("plugin id `{0}` must not contain `..`")]
    DotDot(String),
    /// The id names a Windows device (`con`, `nul`, `com1`, …): `<id>.wasm` could not be a file
    /// there.
    #[error(
        "plugin id `{0}` is a reserved device name on Windows, where `{0}.wasm` cannot be a file"
    )]
    DeviceName(String),
}

impl crate::diagnostic::Diagnostic for IdError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::DeviceName(_) => Some("choose another id".into()),
            _ => None,
        }
    }
}

/// Names Windows reserves for devices, whatever the extension or letter case.
const DEVICE_NAMES: [&str; 22] = [
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

impl Id {
    /// Validates `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
        let id = id.into();
        if id.is_empty() {
            return Err(IdError::Empty);
        }
        if id.len() > MAX_LEN {
            return Err(IdError::TooLong(id));
        }
        if let Some(character) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(IdError::InvalidCharacter { id, character });
        }
        if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(IdError::InvalidStart(id));
        }
        if id.contains("..") {
            return Err(IdError::DotDot(id));
        }
        let stem = id.split('.').next().unwrap_or_default();
        if DEVICE_NAMES
            .iter()
            .any(|device| stem.eq_ignore_ascii_case(device))
        {
            return Err(IdError::DeviceName(id));
        }
        Ok(Self(id))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Id {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for Id {
    type Error = IdError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<String> for Id {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<Id> for Id {
    fn as_ref(&self) -> &Id {
        self
    }
}

impl std::borrow::Borrow<str> for Id {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::new(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_ids() {
        for id in ["node", "my-tool", "tool_2", "a", "v1.2", "Deno"] {
            assert_eq!(Id::new(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn rejects_unsafe_ids() {
        assert_eq!(Id::new(""), Err(IdError::Empty));
        assert!(matches!(
            Id::new("a/b"),
            Err(IdError::InvalidCharacter { character: '/', .. })
        ));
        assert!(matches!(
            Id::new("a\\b"),
            Err(IdError::InvalidCharacter {
                character: '\\',
                ..
            })
        ));
        assert!(matches!(
            Id::new("a b"),
            Err(IdError::InvalidCharacter { character: ' ', .. })
        ));
        assert!(matches!(Id::new("a..b"), Err(IdError::DotDot(_))));
        assert!(matches!(Id::new(".."), Err(IdError::InvalidStart(_))));
        assert!(matches!(Id::new("-x"), Err(IdError::InvalidStart(_))));
        assert!(matches!(Id::new("x".repeat(65)), Err(IdError::TooLong(_))));
        assert_eq!(
            Id::new("a/b").unwrap_err().to_string(),
            "plugin id `a/b` contains `/`; ids may only contain letters, digits, `-`, `_` and `.`"
        );
        // Control characters are shown escaped, never sent to the terminal.
        assert_eq!(
            Id::new("a\u{1b}[2J").unwrap_err().to_string(),
            "plugin id `a\\u{1b}[2J` contains `\\u{1b}`; ids may only contain letters, digits, `-`, `_` and `.`"
        );
    }

    #[test]
    fn rejects_windows_device_names() {
        for id in ["con", "NUL", "Com1", "lpt9", "aux.v2", "prn.x.y"] {
            assert_eq!(
                Id::new(id),
                Err(IdError::DeviceName(id.to_string())),
                "{id}"
            );
        }
        assert_eq!(
            crate::diagnostic::Report::new(&Id::new("nul").unwrap_err()).to_string(),
            "plugin id `nul` is a reserved device name on Windows, where `nul.wasm` cannot be a file\nhint: choose another id"
        );
        for id in ["console", "nullable", "com10", "my-con", "com"] {
            assert!(Id::new(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn serde_round_trip() {
        let id: Id = serde_json::from_str("\"node\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"node\"");
        assert!(serde_json::from_str::<Id>("\"../x\"").is_err());
    }
}
