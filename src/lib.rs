//! placeholder: crate docs written below
pub mod checksum;
pub mod config;
pub mod env;
pub mod id;
pub mod locator;
pub mod lockfile;
pub mod cache;

#[cfg(feature = "fetch")]
pub mod http;
#[cfg(feature = "fetch")]
pub mod github;

#[cfg(feature = "runtime")]
pub mod container;
