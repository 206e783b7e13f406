//! warpgate manages [Extism](https://extism.org) WebAssembly plugins for Rust applications
//! the way Cargo manages crates: declare them, pin them in `warpgate.lock`, fetch and verify
//! them into a content-addressed cache, vendor them into the build, and run them.
//!
//! The default feature, `cli`, is for installing the `warpgate` tool (`cargo install
//! warpgate`). A program that depends on the library turns it off and picks what it uses:
//!
//! ```toml
//! [dependencies]
//! # An app that runs plugins its build script vendored (see `warpgate-build`):
//! warpgate = { version = "0.1", default-features = false, features = ["runtime"] }
//! # An app that also resolves and downloads plugins at run time (`PluginLoader`):
//! # warpgate = { version = "0.1", default-features = false, features = ["runtime", "fetch"] }
//! ```
//!
//! One plugin's way from a `[plugins]` entry to a running container, a module per step:
//!
//! 1. [`config`]: [`config::Config`] reads the `[plugins]` table: each [`id::Id`], its
//!    [`locator::PluginLocator`] and its [`settings`] (config, allowed paths and hosts, limits).
//! 2. [`lock`] (feature `fetch`): resolves each entry ([`github`] for releases, [`oci`] for
//!    registries) and writes the pins into a [`lockfile::Lockfile`] (tag or digest, URL,
//!    `sha256`, size).
//! 3. [`source`] (feature `fetch`): the one way to a locked plugin's verified bytes, in one
//!    order: the vendor directory, a `file://` plugin's own file, the [`cache`], the team
//!    mirror, then the origin through [`fetch::Fetcher`] and its [`http::HttpClient`].
//! 4. [`vendor`] (feature `fetch`) copies those bytes into a vendor directory; the
//!    `warpgate-build` crate embeds them at build time, and [`embedded::EmbeddedPlugins`] with
//!    [`include_plugins!`] hands them to the program. An app that picks plugins at run time
//!    uses [`PluginLoader`] (feature `fetch`) instead, over the same steps.
//! 5. [`container`] (feature `runtime`): a [`PluginContainer`] runs the plugin through Extism
//!    with its settings, compiling it once per machine.
//!
//! Every error on the way implements [`diagnostic::Diagnostic`] (its hint, and whether it is
//! a failed check); [`diagnostic::Report`] lays one out for people.
//!
//! The names most programs need (`Id`, `PluginLocator`, `GitHubLocator`, `PluginLoader`,
//! `PluginContainer`, `PluginManifest`, `Wasm`) are also re-exported at the crate root.
//!
//! ```
//! use warpgate::{Checksum, Id, PluginLocator};
//!
//! let id = Id::new("node").unwrap();
//! let locator: PluginLocator = "github://moonrepo/plugins/node_tool@v0.13.0".parse().unwrap();
//! assert_eq!(locator.to_string(), "github://moonrepo/plugins/node_tool@v0.13.0");
//! assert!(Id::new("../escape").is_err());
//! assert_eq!(
//!     Checksum::of(b"").to_string(),
//!     "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
//! );
//! # let _ = id;
//! ```
//!
//! Features: `fetch` (resolving and downloading: reqwest, tokio), `runtime` (Extism), `http`
//! (plugins' own HTTP requests, to their `allowed_hosts`), `cli` (the `warpgate` binary: all
//! of them; the default). With none, the library reads and checks configs, lockfiles and the
//! cache. The build helper `warpgate-build` uses only `fetch`, so build scripts never compile
//! wasmtime. CI builds each of these sets alone.
#![warn(missing_docs)]

// The README's Rust examples are doctests of `examples/app` (its `src/lib.rs`), not of this
// crate: the `include_plugins!` one needs the `OUT_DIR` of a crate whose build script runs
// `warpgate_build::vendor()`, and that crate is the one that has it.

pub mod cache;
pub mod checksum;
pub mod config;
pub mod diagnostic;
pub mod edit;
pub mod env;
pub mod fs;
pub mod id;
pub mod locator;
pub mod lockfile;
pub mod oci;
pub mod release;
pub mod reporter;
pub mod settings;

#[cfg(feature = "fetch")]
pub mod api_cache;
#[cfg(feature = "fetch")]
pub mod fetch;
#[cfg(feature = "fetch")]
pub mod github;
#[cfg(feature = "fetch")]
pub mod http;
#[cfg(feature = "fetch")]
pub mod loader;
#[cfg(feature = "fetch")]
pub mod lock;
#[cfg(feature = "fetch")]
pub mod source;

#[cfg(feature = "runtime")]
pub mod container;

pub use checksum::Checksum;
pub use id::Id;
#[cfg(feature = "fetch")]
pub use loader::PluginLoader;
pub use locator::{GitHubLocator, PluginLocator};

#[cfg(feature = "runtime")]
pub use container::{
    CompileCache, ContainerError, ModuleOrigin, PluginContainer, PluginContainerBuilder,
    PluginManifest, Wasm,
};

pub mod embedded;
#[cfg(feature = "fetch")]
pub mod vendor;

#[cfg(test)]
mod proptests;
