//! OCI registries: `registry://` plugins, publishing, and the team mirror.
//!
//! warpgate speaks the small part of the [OCI distribution
//! protocol](https://github.com/opencontainers/distribution-spec) it needs — manifests and
//! blobs by digest, the tag list, blob uploads — over the crate's one [`crate::http`] client,
//! so a registry request follows the same rules as every other request: offline mode, the
//! extra roots of `SSL_CERT_FILE`, proxies from the environment, `https://` only (plain
//! `http://` only to loopback hosts), retries, download size caps, and downloads that stream
//! into the cache's temp files and are renamed into place only once verified.
//!
//! - [`reference`](mod@reference): the `registry://` locator.
//! - [`manifest`]: manifests and indexes, and which layer is the plugin.
//! - [`auth`] (feature `fetch`): credentials and the bearer-token flow.
//! - [`client`] (feature `fetch`): [`client::RegistryClient`], pulling and pushing.
//! - [`mirror`] (feature `fetch`): the team mirror, plugins addressed by their sha256.
//!
//! Where a locked plugin's bytes come from (vendor directory, own file, cache, mirror, origin)
//! is [`crate::source`] (feature `fetch`), for every caller.

pub mod manifest;
pub mod reference;

#[cfg(feature = "fetch")]
pub mod auth;
#[cfg(feature = "fetch")]
pub mod client;
#[cfg(feature = "fetch")]
pub mod mirror;
