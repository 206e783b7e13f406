//! SHA-256 checksums: parsing, printing and hashing files and streams.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// A SHA-256 digest of a plugin's bytes.
///
/// Printed as `sha256:<64 lowercase hex digits>`. On input, bare hex (any case) and the
/// Subresource Integrity form `sha256-<base64>` are accepted as well.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Checksum([u8; 32]);

/// Why a string is not a valid [`Checksum`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid checksum `{0}`: expected `sha256:<64 hex digits>`, 64 hex digits, or `sha256-<base64>`"
)]
pub struct ChecksumError(pub String);

impl Checksum {
    /// Wraps a raw digest.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// The digest and length of everything `reader` yields.
    pub fn of_reader(mut reader: impl Read) -> io::Result<(Self, u64)> {
        let mut hasher = Hasher::new();
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            hasher.update(&buffer[..read]);
        }
        Ok(hasher.finish())
    }

    /// The digest and length of the file at `path`.
    pub fn of_file(path: &Path) -> io::Result<(Self, u64)> {
        Self::of_reader(fs_err::File::open(path)?)
    }

    /// The 64 lowercase hex digits, without the `sha256:` prefix.
    pub fn hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        out
    }

    /// The first 12 hex digits, for display in tables.
    pub fn short(&self) -> String {
        self.hex()[..12].to_string()
    }

    /// The Subresource Integrity form, `sha256-<base64>`.
    pub fn sri(&self) -> String {
        format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        )
    }

    fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (index, pair) in hex.as_bytes().chunks(2).enumerate() {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            out[index] = u8::try_from(high << 4 | low).ok()?;
        }
        Some(Self(out))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({self})")
    }
}

impl FromStr for Checksum {
    type Err = ChecksumError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = || ChecksumError(input.to_string());
        if let Some(hex) = input.strip_prefix("sha256:") {
            return Self::from_hex(hex).ok_or_else(error);
        }
        if let Some(encoded) = input.strip_prefix("sha256-") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| error())?;
            return <[u8; 32]>::try_from(bytes.as_slice())
                .map(Self)
                .map_err(|_| error());
        }
        Self::from_hex(input).ok_or_else(error)
    }
}

impl Serialize for Checksum {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Checksum {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental SHA-256 hasher that also counts bytes.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: Sha256,
    len: u64,
}

impl Hasher {
    /// A hasher that has seen no bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
        self.len += data.len() as u64;
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes were fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest and the number of bytes fed.
    pub fn finish(self) -> (Checksum, u64) {
        (Checksum(self.inner.finalize().into()), self.len)
    }
}

/// A checksum that did not match: what was expected and what the bytes hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The pinned checksum.
    pub expected: Checksum,
    /// The checksum of the bytes found.
    pub computed: Checksum,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  Expected: `{}`\n  Computed: `{}`",
            self.expected, self.computed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn prints_prefixed_lowercase_hex() {
        assert_eq!(Checksum::of(b"").to_string(), format!("sha256:{EMPTY_HEX}"));
    }

    #[test]
    fn accepts_every_input_form() {
        let expected = Checksum::of(b"");
        for input in [
            format!("sha256:{EMPTY_HEX}"),
            EMPTY_HEX.to_string(),
            EMPTY_HEX.to_uppercase(),
            expected.sri(),
        ] {
            assert_eq!(input.parse::<Checksum>().unwrap(), expected, "{input}");
        }
        assert_eq!(
            expected.sri(),
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn rejects_malformed_input() {
        for input in [
            "",
            "sha256:",
            "sha256:abc",
            &format!("sha512:{EMPTY_HEX}"),
            &format!("sha256:{}", &EMPTY_HEX[..63]),
            &format!("{}g", &EMPTY_HEX[..63]),
            "sha256-notbase64!",
            "sha256-AAAA",
        ] {
            assert!(input.parse::<Checksum>().is_err(), "{input}");
        }
    }

    #[test]
    fn hasher_counts_bytes() {
        let mut hasher = Hasher::new();
        hasher.update(b"ab");
        hasher.update(b"c");
        let (checksum, len) = hasher.finish();
        assert_eq!((checksum, len), (Checksum::of(b"abc"), 3));
    }
}
