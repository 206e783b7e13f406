//! The shared test harness.
//!
//! - [`Project`]: a temporary project and the `warpgate` processes run in it ([`Run`]).
//! - [`TestServer`]: a loopback HTTPS server (test CA, scripted [`Response`]s, a request log).
//! - [`FakeGitHub`]: the GitHub releases API on top of it.
//! - [`TestProxy`]: a loopback `CONNECT` proxy, for `HTTPS_PROXY` / `NO_PROXY`.
//! - [`TestRegistry`]: a real OCI registry (`docker-registry`) with TLS and basic auth.
//!
//! Library tests build clients explicitly ([`TestServer::http_client`], [`FakeGitHub::client`])
//! and tests of the `warpgate` binary pass [`TestServer::env`] / [`FakeGitHub::env`] to
//! `Command::envs`, so no test changes its own process environment and all run in parallel.

// Each test module uses a different part of the harness.
#![allow(
    dead_code,
    reason = "each test module uses another part of the harness"
)]

pub mod github;
pub mod listener;
pub mod project;
pub mod proxy;
pub mod registry;
pub mod server;
pub mod tls;

#[allow(unused_imports, reason = "not every test module uses every re-export")]
pub use github::{FakeAsset, FakeGitHub, FakeRelease};
#[allow(unused_imports, reason = "not every test module uses every re-export")]
pub use project::{FAILING, JSON_TOOLS, Project, Run, run_concurrently};
#[allow(unused_imports, reason = "not every test module uses every re-export")]
pub use proxy::{ProxyRequest, TestProxy};
#[allow(unused_imports, reason = "not every test module uses every re-export")]
pub use registry::TestRegistry;
#[allow(unused_imports, reason = "not every test module uses every re-export")]
pub use server::{RecordedRequest, Response, Route, TestServer};

/// `error` as people read it: its message, causes and hints (the library's one layout).
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    warpgate::diagnostic::Report::new(error).to_string()
}
