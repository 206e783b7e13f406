//! The README's Rust examples, compiled as doctests (`cargo test --doc`).
//!
//! They live here rather than in the `warpgate` crate because this is the workspace's one crate
//! with a warpgate build script: `warpgate::include_plugins!()` expands to the module that
//! `warpgate_build::vendor()` writes into `OUT_DIR`, and Cargo sets `OUT_DIR` for the doctests
//! of a package that has a build script. The README's `build.rs` example compiles against
//! `warpgate-build`, a dev-dependency here for that purpose. Both examples are `no_run`: they
//! would otherwise write to warpgate's compiled-module cache in the user's home.

#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
