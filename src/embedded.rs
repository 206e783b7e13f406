//! Plugins embedded in the binary by `warpgate-build`.
//!
//! A build script calls `warpgate_build::vendor()`, which verifies every locked plugin and
//! writes them, with a generated Rust module, under `OUT_DIR`. The application brings that
//! module in with [`include_plugins!`](crate::include_plugins) and gets a static
//! [`EmbeddedPlugins`] set: one [`EmbeddedPlugin`] per locked plugin, with its id, its
//! `sha256:` checksum and its bytes, looked up by id. Nothing is read from disk or the
//! network at run time.
//!
//! ```ignore
//! // build.rs: fn main() { warpgate_build::vendor_or_exit() }
//! use warpgate::embedded::EmbeddedPlugins;
//!
//! static PLUGINS: EmbeddedPlugins = warpgate::include_plugins!();
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let plugin = PLUGINS.require("json_tools")?;
//!     let container = plugin.container()?; // feature `runtime`
//!     let sum: serde_json::Value =
//!         container.call_func_with("add", serde_json::json!({"left": 1, "right": 2}))?;
//!     println!("{sum}");
//!     Ok(())
//! }
//! ```
//!
//! # The generated module
//!
//! The file `$OUT_DIR/warpgate_plugins.rs` is one expression of type [`EmbeddedPlugins`],
//! written against the names `EmbeddedPlugins`, `EmbeddedPlugin`, `EmbeddedSettings` and
//! `Timeout`, which the macro brings
//! into scope (through `$crate`, so a renamed `warpgate` dependency works too). Every path in
//! it is relative to `OUT_DIR` (`include_bytes!(concat!(env!("OUT_DIR"), "/plugins/<id>.wasm"))`),
//! so the same lock gives byte-identical generated code in any checkout.
//!
//! # Running an embedded plugin
//!
//! With the `runtime` feature, `EmbeddedPlugin::container`,
//! `EmbeddedPlugin::container_with_functions` and `EmbeddedPlugin::builder` make a
//! `PluginContainer`. The bytes are handed to Extism as `Wasm::Data` **with their hash**
//! (`meta.hash`), so Extism checks them again before compiling: bytes patched in the binary
//! are refused.

use std::fmt;

use crate::checksum::{Checksum, Mismatch};
use crate::settings::RuntimeSettings;
pub use crate::settings::Timeout;

/// One plugin embedded in the binary.
///
/// Values are written by `warpgate-build`'s generated module; the fields are public so that
/// the generated code can build them in a `static`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedPlugin {
    /// The plugin's id, as in `warpgate.lock`.
    pub id: &'static str,
    /// The locked checksum, `sha256:<64 lowercase hex digits>`.
    pub checksum: &'static str,
    /// The plugin's WebAssembly bytes.
    pub bytes: &'static [u8],
    /// The runtime settings its `[plugins]` entry declares.
    pub settings: EmbeddedSettings,
}

/// The runtime settings of an embedded plugin, as its `[plugins]` entry declared them (see
/// [`crate::settings`]), in a form that lives in a `static`. Host folders of `allowed_paths`
/// are kept as written; a relative one is taken from the process's working folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddedSettings {
    /// Extism config values.
    pub config: &'static [(&'static str, &'static str)],
    /// Host folder → guest path.
    pub allowed_paths: &'static [(&'static str, &'static str)],
    /// Host patterns HTTP requests may reach.
    pub allowed_hosts: &'static [&'static str],
    /// The memory cap, in 64 KiB pages.
    pub memory_max_pages: Option<u32>,
    /// The call timeout.
    pub timeout: Option<Timeout>,
    /// Whether WASI is on (`None`: the default, on).
    pub wasi: Option<bool>,
}

impl EmbeddedSettings {
    /// Nothing set.
    pub const NONE: Self = Self {
        config: &[],
        allowed_paths: &[],
        allowed_hosts: &[],
        memory_max_pages: None,
        timeout: None,
        wasi: None,
    };

    /// The settings as [`RuntimeSettings`].
    pub fn to_runtime(&self) -> RuntimeSettings {
        RuntimeSettings {
            config: self
                .config
                .iter()
                .map(|(key, value)| ((*key).to_string(), (*value).to_string()))
                .collect(),
            allowed_paths: self
                .allowed_paths
                .iter()
                .map(|(host, guest)| ((*host).to_string(), (*guest).to_string()))
                .collect(),
            allowed_hosts: self
                .allowed_hosts
                .iter()
                .map(|host| (*host).to_string())
                .collect(),
            memory_max_pages: self.memory_max_pages,
            timeout: self.timeout,
            wasi: self.wasi,
        }
    }
}

impl fmt::Debug for EmbeddedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedPlugin")
            .field("id", &self.id)
            .field("checksum", &self.checksum)
            .field("size", &self.bytes.len())
            .finish()
    }
}

/// Why an embedded plugin could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddedError {
    /// No embedded plugin has this id.
    #[error(
        "no plugin `{id}` is embedded in this binary (embedded: {})",
        list(available)
    )]
    NotFound {
        /// The id asked for.
        id: String,
        /// The ids that are embedded.
        available: Vec<&'static str>,
    },
    /// The embedded bytes do not hash to the embedded checksum.
    #[error("embedded plugin `{id}` does not match its checksum\n{mismatch}")]
    Mismatch {
        /// The plugin.
        id: &'static str,
        /// Expected and computed checksums.
        mismatch: Mismatch,
    },
    /// The embedded checksum or id is malformed (the generated module was edited by hand).
    #[error("embedded plugin `{id}` is malformed: {reason}")]
    Malformed {
        /// The plugin.
        id: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl crate::diagnostic::Diagnostic for EmbeddedError {
    fn class(&self) -> crate::diagnostic::Class {
        match self {
            Self::Mismatch { .. } => crate::diagnostic::Class::CheckFailed,
            _ => crate::diagnostic::Class::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(
            match self {
                Self::NotFound { .. } => {
                    "declare it in `warpgate.toml`, run `warpgate lock` and rebuild"
                }
                Self::Mismatch { .. } => "the binary was modified after it was built; rebuild it",
                Self::Malformed { .. } => {
                    "rebuild; the generated module is written by `warpgate-build`"
                }
            }
            .into(),
        )
    }
}

fn list(ids: &[&str]) -> String {
    if ids.is_empty() {
        "none".to_string()
    } else {
        ids.iter()
            .map(|id| format!("`{id}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl EmbeddedPlugin {
    /// The plugin's id as an [`Id`](crate::id::Id).
    pub fn plugin_id(&self) -> Result<crate::id::Id, EmbeddedError> {
        crate::id::Id::new(self.id).map_err(|error| EmbeddedError::Malformed {
            id: self.id,
            reason: error.to_string(),
        })
    }

    /// The locked checksum, parsed.
    pub fn parsed_checksum(&self) -> Result<Checksum, EmbeddedError> {
        self.checksum
            .parse()
            .map_err(
                |error: crate::checksum::ChecksumError| EmbeddedError::Malformed {
                    id: self.id,
                    reason: error.to_string(),
                },
            )
    }

    /// The checksum's 64 hex digits (no `sha256:` prefix), the form Extism's `hash` takes.
    pub fn hash_hex(&self) -> &'static str {
        self.checksum
            .strip_prefix("sha256:")
            .unwrap_or(self.checksum)
    }

    /// Re-hashes the bytes and compares them with the checksum.
    ///
    /// Not needed before [`EmbeddedPlugin::container`], which has Extism check the hash; useful
    /// when the bytes are used some other way.
    pub fn verify(&self) -> Result<(), EmbeddedError> {
        let expected = self.parsed_checksum()?;
        let computed = Checksum::of(self.bytes);
        if computed == expected {
            Ok(())
        } else {
            Err(EmbeddedError::Mismatch {
                id: self.id,
                mismatch: Mismatch { expected, computed },
            })
        }
    }
}

/// The set of plugins embedded in a binary, sorted by id.
///
/// Made by [`include_plugins!`](crate::include_plugins); `const`-constructible, so it lives
/// in a `static`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddedPlugins {
    plugins: &'static [EmbeddedPlugin],
}

impl EmbeddedPlugins {
    /// A set over `plugins`, which must be sorted by id without duplicates (the generated
    /// module is); lookups are binary searches.
    ///
    /// # Panics
    ///
    /// When the ids are not strictly increasing. In a `static` this is a compile-time error.
    pub const fn new(plugins: &'static [EmbeddedPlugin]) -> Self {
        let mut index = 1;
        while index < plugins.len() {
            assert!(
                id_less(plugins[index - 1].id, plugins[index].id),
                "embedded plugins must be sorted by id without duplicates"
            );
            index += 1;
        }
        Self { plugins }
    }

    /// The plugin with this id, if it is embedded.
    pub fn get(&self, id: &str) -> Option<&'static EmbeddedPlugin> {
        let plugins: &'static [EmbeddedPlugin] = self.plugins;
        plugins
            .binary_search_by(|plugin| plugin.id.cmp(id))
            .ok()
            .map(|index| &plugins[index])
    }

    /// The plugin with this id, or an error listing the embedded ids.
    pub fn require(&self, id: &str) -> Result<&'static EmbeddedPlugin, EmbeddedError> {
        self.get(id).ok_or_else(|| EmbeddedError::NotFound {
            id: id.to_string(),
            available: self.ids().collect(),
        })
    }

    /// Whether a plugin with this id is embedded.
    pub fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// Every embedded plugin, sorted by id.
    pub fn iter(&self) -> std::slice::Iter<'static, EmbeddedPlugin> {
        self.plugins.iter()
    }

    /// Every embedded plugin's id, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &'static str> + use<> {
        self.plugins.iter().map(|plugin| plugin.id)
    }

    /// How many plugins are embedded.
    pub const fn len(&self) -> usize {
        self.plugins.len()
    }

    /// Whether no plugin is embedded.
    pub const fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// The plugins as a slice, sorted by id.
    pub const fn as_slice(&self) -> &'static [EmbeddedPlugin] {
        self.plugins
    }
}

/// `left < right` byte-wise, in a `const` context (the order of `str::cmp`).
const fn id_less(left: &str, right: &str) -> bool {
    let (left, right) = (left.as_bytes(), right.as_bytes());
    let mut index = 0;
    while index < left.len() && index < right.len() {
        if left[index] != right[index] {
            return left[index] < right[index];
        }
        index += 1;
    }
    left.len() < right.len()
}

impl IntoIterator for EmbeddedPlugins {
    type Item = &'static EmbeddedPlugin;
    type IntoIter = std::slice::Iter<'static, EmbeddedPlugin>;

    fn into_iter(self) -> Self::IntoIter {
        self.plugins.iter()
    }
}

impl IntoIterator for &EmbeddedPlugins {
    type Item = &'static EmbeddedPlugin;
    type IntoIter = std::slice::Iter<'static, EmbeddedPlugin>;

    fn into_iter(self) -> Self::IntoIter {
        self.plugins.iter()
    }
}

#[cfg(feature = "runtime")]
mod runtime {
    use super::{EmbeddedError, EmbeddedPlugin};
    use crate::container::{
        ContainerError, Function, PluginContainer, PluginContainerBuilder, PluginManifest, Wasm,
    };
    use crate::diagnostic::{Class, Diagnostic};

    /// Why a container could not be made from an embedded plugin.
    #[derive(Debug, thiserror::Error)]
    #[non_exhaustive]
    pub enum EmbeddedContainerError {
        /// The embedded plugin is malformed.
        #[error(transparent)]
        Embedded(#[from] EmbeddedError),
        /// Extism refused the plugin (including a hash mismatch: the bytes were altered).
        #[error(transparent)]
        Container(#[from] ContainerError),
    }

    impl Diagnostic for EmbeddedContainerError {
        fn class(&self) -> Class {
            match self {
                Self::Embedded(inner) => inner.class(),
                Self::Container(inner) => inner.class(),
            }
        }

        fn hint(&self) -> Option<String> {
            match self {
                Self::Embedded(inner) => inner.hint(),
                Self::Container(inner) => inner.hint(),
            }
        }
    }

    impl EmbeddedPlugin {
        /// The bytes as an Extism [`Wasm::Data`], named by the plugin id and carrying the
        /// checksum's hex digits as `hash`, so Extism re-checks the bytes before compiling.
        ///
        /// The bytes are copied once (Extism's manifest owns a `Vec<u8>`).
        pub fn wasm(&self) -> Wasm {
            Wasm::data(self.bytes)
                .with_name(self.id)
                .with_hash(self.hash_hex())
        }

        /// A manifest with just this plugin's module; adjust it (config, allowed paths) before
        /// handing it to [`PluginContainer::builder`].
        pub fn manifest(&self) -> PluginManifest {
            PluginManifest::new([self.wasm()])
        }

        /// A [`PluginContainerBuilder`] for this plugin with its declared runtime settings
        /// applied ([`EmbeddedPlugin::settings`]); change them, or add host functions, before
        /// building. Compiled code goes to the compiled-module cache, as for any container
        /// (see [`crate::container`]).
        pub fn builder(&self) -> Result<PluginContainerBuilder, EmbeddedError> {
            Ok(PluginContainer::builder(self.plugin_id()?, self.manifest())
                .settings(&self.settings.to_runtime()))
        }

        /// A container for this plugin with its declared settings and no host functions.
        pub fn container(&self) -> Result<PluginContainer, EmbeddedContainerError> {
            Ok(self.builder()?.build()?)
        }

        /// A container for this plugin with its declared settings and the given host functions.
        pub fn container_with_functions(
            &self,
            functions: impl IntoIterator<Item = Function>,
        ) -> Result<PluginContainer, EmbeddedContainerError> {
            Ok(self.builder()?.functions(functions).build()?)
        }
    }
}

#[cfg(feature = "runtime")]
pub use runtime::EmbeddedContainerError;

/// Brings the plugins that `warpgate-build` embedded into scope as an
/// [`EmbeddedPlugins`](crate::embedded::EmbeddedPlugins) value.
///
/// Expands to the generated `$OUT_DIR/warpgate_plugins.rs`, so the crate's build script must
/// call `warpgate_build::vendor()`. Use it as the initializer of a `static`:
///
/// ```ignore
/// static PLUGINS: warpgate::embedded::EmbeddedPlugins = warpgate::include_plugins!();
/// ```
///
/// or give it the static's visibility and name:
///
/// ```ignore
/// warpgate::include_plugins!(pub static PLUGINS);
/// ```
#[macro_export]
macro_rules! include_plugins {
    () => {{
        #[allow(unused_imports, reason = "the generated list uses what its plugins need")]
        use $crate::embedded::{EmbeddedPlugin, EmbeddedPlugins, EmbeddedSettings, Timeout};
        include!(concat!(env!("OUT_DIR"), "/warpgate_plugins.rs"))
    }};
    ($visibility:vis static $name:ident) => {
        $visibility static $name: $crate::embedded::EmbeddedPlugins = $crate::include_plugins!();
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    static PLUGINS: EmbeddedPlugins = EmbeddedPlugins::new(&[
        EmbeddedPlugin {
            id: "alpha",
            checksum: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            bytes: b"",
            settings: EmbeddedSettings::NONE,
        },
        EmbeddedPlugin {
            id: "beta",
            checksum: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            bytes: b"tampered",
            settings: EmbeddedSettings::NONE,
        },
    ]);

    #[test]
    fn lookup_by_id() {
        assert_eq!(PLUGINS.len(), 2);
        assert_eq!(PLUGINS.get("alpha").unwrap().id, "alpha");
        assert_eq!(PLUGINS.get("beta").unwrap().id, "beta");
        assert!(PLUGINS.get("gamma").is_none());
        assert_eq!(PLUGINS.ids().collect::<Vec<_>>(), ["alpha", "beta"]);
        let message = PLUGINS.require("gamma").unwrap_err().to_string();
        assert!(message.contains("no plugin `gamma`"), "{message}");
        assert!(message.contains("`alpha`, `beta`"), "{message}");
    }

    #[test]
    #[should_panic(expected = "sorted by id")]
    fn unsorted_sets_are_refused() {
        static UNSORTED: [EmbeddedPlugin; 2] = [
            EmbeddedPlugin {
                id: "beta",
                checksum: "",
                bytes: b"",
                settings: EmbeddedSettings::NONE,
            },
            EmbeddedPlugin {
                id: "alpha",
                checksum: "",
                bytes: b"",
                settings: EmbeddedSettings::NONE,
            },
        ];
        let _ = EmbeddedPlugins::new(&UNSORTED);
    }

    #[test]
    fn id_order_matches_str_order() {
        for (left, right) in [
            ("a", "b"),
            ("a", "ab"),
            ("ab", "b"),
            ("a", "a"),
            ("b", "a"),
            ("a_b", "a-b"),
        ] {
            assert_eq!(id_less(left, right), left < right, "{left} {right}");
        }
    }

    #[test]
    fn verify_rehashes() {
        PLUGINS.get("alpha").unwrap().verify().unwrap();
        let message = PLUGINS
            .get("beta")
            .unwrap()
            .verify()
            .unwrap_err()
            .to_string();
        assert!(message.contains("embedded plugin `beta`"), "{message}");
        assert!(message.contains("Computed:"), "{message}");
        assert_eq!(
            PLUGINS.get("alpha").unwrap().hash_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
