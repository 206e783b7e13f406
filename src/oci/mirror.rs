//! The team mirror: every locked plugin, whatever its source, copied into one registry
//! repository and addressed by its sha256.
//!
//! A mirror is a repository, written `registry://HOST/NAMESPACE` (no tag, no digest). For a
//! plugin whose bytes have sha256 `<hex>`, it holds:
//!
//! - the plugin as a blob, `sha256:<hex>`: what `fetch`, `vendor`, `warpgate-build` and the
//!   loader ask for first (one `GET` by digest), before the plugin's origin;
//! - a manifest tagged `sha256-<hex>` whose single wasm layer is that blob, so the registry
//!   keeps the blob (registries delete blobs no manifest references). The manifest depends
//!   only on the bytes, so every project pushing the same plugin writes the same manifest.
//!
//! [`push`] (`warpgate mirror push`) first asks for that tag (`HEAD`): when it names the
//! expected manifest, the plugin is already mirrored and nothing else is sent, so pushing an
//! unchanged lock again costs one `HEAD` per plugin and uploads nothing. Otherwise it uploads
//! what the repository lacks (each blob `HEAD`ed first) and puts the manifest.
//!
//! The mirror is set by the config's top-level `mirror` key or by `WARPGATE_MIRROR`
//! (which wins; `off` turns a configured mirror off). It is never written to the lockfile:
//! the lock names origins, and a mirror is only a faster, closer copy, verified like any.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::checksum::Checksum;
use crate::config::Config;
use crate::diagnostic::{Class, Diagnostic};
use crate::env;
use crate::fetch::{FetchError, Fetcher};
use crate::id::Id;
use crate::lockfile::Lockfile;
use crate::oci::client::RegistryError;
use crate::oci::manifest;
use crate::oci::reference::RegistryLocator;

/// The tag of the manifest that keeps plugin `checksum` in a mirror.
pub fn tag_for(checksum: &Checksum) -> String {
    format!("sha256-{}", checksum.hex())
}

/// Parses a mirror: a `registry://HOST/NAMESPACE` locator without tag or digest.
pub fn parse(text: &str) -> Result<RegistryLocator, String> {
    crate::oci::reference::parse_mirror(text)
}

/// Why the mirror setting is unusable.
#[derive(Debug, thiserror::Error)]
#[error("invalid `{}`: {reason}", env::WARPGATE_MIRROR)]
pub struct MirrorSettingError {
    /// What is wrong.
    pub reason: String,
}

impl crate::diagnostic::Diagnostic for MirrorSettingError {
    fn hint(&self) -> Option<String> {
        Some(
            "set it to a registry repository such as `registry://registry.example.com/team/plugins`, or to `off`".into(),
        )
    }
}

/// The mirror in effect: `WARPGATE_MIRROR` (`off`, `none`, `0` or `false` for none), else
/// `configured` (the config's `mirror` key).
pub fn from_env_or(
    configured: Option<&RegistryLocator>,
) -> Result<Option<RegistryLocator>, MirrorSettingError> {
    match env::var(env::WARPGATE_MIRROR) {
        Some(value)
            if matches!(
                value.to_ascii_lowercase().as_str(),
                "off" | "none" | "0" | "false" | "no"
            ) =>
        {
            Ok(None)
        }
        Some(value) => parse(&value)
            .map(Some)
            .map_err(|reason| MirrorSettingError { reason }),
        None => Ok(configured.cloned()),
    }
}

/// The mirror for `config`: [`from_env_or`] its `mirror` key.
pub fn for_config(config: &Config) -> Result<Option<RegistryLocator>, MirrorSettingError> {
    from_env_or(config.mirror.as_ref())
}

/// What [`push`] did for one plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The mirror already had it; nothing was uploaded.
    Present,
    /// Uploaded: this many blobs were sent (the plugin, the config), plus the manifest.
    Uploaded {
        /// Blobs uploaded (0 to 2).
        blobs: usize,
    },
}

/// Why a plugin could not be mirrored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// Its bytes could not be had.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Its verified bytes could not be had (a `file://` plugin that does not match the
    /// lock, a download that failed).
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// Reading the bytes failed.
    #[error("failed to read `{}` to mirror plugin `{id}`", path.display())]
    Io {
        /// The plugin.
        id: Id,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A registry request failed.
    #[error("failed to mirror plugin `{id}` to `{mirror}`")]
    Registry {
        /// The plugin.
        id: Id,
        /// The mirror.
        mirror: String,
        /// The registry error.
        #[source]
        source: Box<RegistryError>,
    },
}

impl Diagnostic for MirrorError {
    fn class(&self) -> Class {
        match self {
            Self::Fetch(inner) => inner.class(),
            Self::Source(inner) => inner.class(),
            Self::Io { .. } | Self::Registry { .. } => Class::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Fetch(inner) => inner.hint(),
            Self::Source(inner) => inner.hint(),
            Self::Io { .. } | Self::Registry { .. } => None,
        }
    }
}

/// Copies every plugin of `lockfile` into `mirror` (see the module docs), in parallel.
/// Bytes come from the cache, the plugin's file, or its origin (verified). Returns what
/// happened per plugin, sorted by id.
#[expect(
    clippy::disallowed_methods,
    reason = "each error is wrapped with the path it concerns; fs_err would name it twice"
)]
pub async fn push(
    config: &Config,
    lockfile: &Lockfile,
    fetcher: &Fetcher,
    mirror: &RegistryLocator,
) -> Result<Vec<(Id, Pushed)>, MirrorError> {
    use futures_util::StreamExt;
    let results: Vec<Result<(Id, Pushed), MirrorError>> =
        futures_util::stream::iter(lockfile.plugins.iter().map(|(id, locked)| async move {
            let path = crate::source::Sources::new(config.root(), fetcher)
                .materialize(id, locked)
                .await?
                .path;
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|source| MirrorError::Io {
                    id: id.clone(),
                    path: path.clone(),
                    source,
                })?;
            let pushed = push_bytes(fetcher, mirror, &locked.checksum, &bytes)
                .await
                .map_err(|source| MirrorError::Registry {
                    id: id.clone(),
                    mirror: mirror.to_string(),
                    source: Box::new(source),
                })?;
            Ok((id.clone(), pushed))
        }))
        .buffer_unordered(lockfile.plugins.len().clamp(1, 64))
        .collect()
        .await;
    let mut pushed = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    pushed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(pushed)
}

/// Mirrors `bytes` (whose sha256 is `checksum`) into `mirror`.
async fn push_bytes(
    fetcher: &Fetcher,
    mirror: &RegistryLocator,
    checksum: &Checksum,
    bytes: &[u8],
) -> Result<Pushed, RegistryError> {
    let client = fetcher.registry();
    let artifact = manifest::artifact(checksum, bytes.len() as u64, None, BTreeMap::new());
    let tag = tag_for(checksum);
    let (registry, repository) = (&mirror.registry, &mirror.repository);
    if client
        .manifest_digest(registry, repository, &tag)
        .await?
        .is_some_and(|digest| digest == artifact.manifest_digest)
    {
        return Ok(Pushed::Present);
    }
    let mut blobs = 0;
    if client
        .push_blob(registry, repository, checksum, bytes)
        .await?
    {
        blobs += 1;
    }
    if client
        .push_blob(
            registry,
            repository,
            &artifact.config_digest,
            &artifact.config,
        )
        .await?
    {
        blobs += 1;
    }
    client
        .push_manifest(
            registry,
            repository,
            &tag,
            manifest::OCI_MANIFEST,
            &artifact.manifest,
        )
        .await?;
    Ok(Pushed::Uploaded { blobs })
}

/// Publishes the plugin at `path` to `target` (a `registry://…:TAG` locator) as an OCI
/// artifact: a wasm config, one [`manifest::WASM_LAYER`] layer titled with the file name,
/// and the `source` and `version` annotations. Returns the manifest digest.
#[expect(
    clippy::disallowed_methods,
    reason = "each error is wrapped with the path it concerns; fs_err would name it twice"
)]
pub async fn publish(
    fetcher: &Fetcher,
    path: &std::path::Path,
    target: &RegistryLocator,
    source: Option<&str>,
    version: Option<&str>,
) -> Result<Checksum, PublishError> {
    let Some(tag) = &target.tag else {
        return Err(PublishError::NoTag {
            locator: target.to_string(),
        });
    };
    if target.digest.is_some() {
        return Err(PublishError::NoTag {
            locator: target.to_string(),
        });
    }
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|source| PublishError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if !bytes.starts_with(b"\0asm") {
        return Err(PublishError::NotWasm {
            path: path.to_path_buf(),
        });
    }
    let checksum = Checksum::of(&bytes);
    let mut annotations = BTreeMap::new();
    if let Some(source) = source {
        annotations.insert(manifest::ANNOTATION_SOURCE.to_string(), source.to_string());
    }
    annotations.insert(
        manifest::ANNOTATION_VERSION.to_string(),
        version.unwrap_or(tag).to_string(),
    );
    let title = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned());
    let artifact = manifest::artifact(&checksum, bytes.len() as u64, title.as_deref(), annotations);
    let client = fetcher.registry();
    let (registry, repository) = (&target.registry, &target.repository);
    let wrap = |source: RegistryError| PublishError::Registry {
        locator: target.to_string(),
        source: Box::new(source),
    };
    client
        .push_blob(registry, repository, &checksum, &bytes)
        .await
        .map_err(wrap)?;
    client
        .push_blob(
            registry,
            repository,
            &artifact.config_digest,
            &artifact.config,
        )
        .await
        .map_err(wrap)?;
    client
        .push_manifest(
            registry,
            repository,
            tag,
            manifest::OCI_MANIFEST,
            &artifact.manifest,
        )
        .await
        .map_err(wrap)
}

/// Why `warpgate publish` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The target has no tag (or has a digest).
    #[error("cannot publish to `{locator}`: a publish target needs a tag and no digest")]
    NoTag {
        /// The target.
        locator: String,
    },
    /// The file could not be read.
    #[error("failed to read `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not WebAssembly.
    #[error("`{}` is not a WebAssembly module (it does not start with `\\0asm`)", path.display())]
    NotWasm {
        /// The file.
        path: PathBuf,
    },
    /// A registry request failed.
    #[error("failed to publish to `{locator}`")]
    Registry {
        /// The target.
        locator: String,
        /// The registry error.
        #[source]
        source: Box<RegistryError>,
    },
}

impl Diagnostic for PublishError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NoTag { locator } => Some(format!("name the tag, e.g. `{locator}:1.0.0`")),
            Self::NotWasm { .. } => {
                Some("publish the `.wasm` file the plugin's build produced".into())
            }
            Self::Io { .. } | Self::Registry { .. } => None,
        }
    }
}
