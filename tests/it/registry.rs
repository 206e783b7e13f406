//! `registry://` plugins, `warpgate publish` and the team mirror against a real registry
//! (`docker-registry`, see `support::registry`): TLS with a test CA, basic auth, filesystem
//! storage that tests can corrupt.

use std::process::Command;

use warpgate::checksum::Checksum;

use crate::cli::{JSON_TOOLS, Project, Run};
use crate::support::TestRegistry;

/// `warpgate <args>` in `project` against `registry` (its CA and credentials).
fn command(project: &Project, registry: &TestRegistry, args: &[&str]) -> Command {
    let mut command = project.command(args);
    for name in ["WARPGATE_REGISTRY_AUTH", "WARPGATE_MIRROR", "DOCKER_CONFIG"] {
        command.env_remove(name);
    }
    command.envs(registry.env());
    command
}

fn run(project: &Project, registry: &TestRegistry, args: &[&str]) -> Run {
    Run::from(command(project, registry, args).output().unwrap())
}

fn json_tools() -> (Vec<u8>, Checksum) {
    let bytes = std::fs::read(JSON_TOOLS).unwrap();
    let checksum = Checksum::of(&bytes);
    (bytes, checksum)
}

/// Publishes the json_tools fixture as `path` (e.g. `plugins/json-tools:1.0.0`); returns the
/// manifest digest printed.
fn publish(project: &Project, registry: &TestRegistry, path: &str) -> String {
    let run = run(
        project,
        registry,
        &[
            "publish",
            JSON_TOOLS,
            &registry.locator(path),
            "--source",
            "https://example.com/json-tools",
        ],
    )
    .success();
    let digest = run.stdout.trim().to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{run:#?}"
    );
    digest
}

#[test]
fn publish_lock_fetch_and_call_by_digest() {
    let registry = TestRegistry::start();
    let locator = registry.locator("plugins/json-tools:1.0.0");
    let project = Project::new(&format!("[plugins]\njson = \"{locator}\"\n"));
    let digest = publish(&project, &registry, "plugins/json-tools:1.0.0");
    let (bytes, checksum) = json_tools();

    run(&project, &registry, &["lock"]).success();
    let lock = project.read("warpgate.lock");
    assert!(
        lock.contains(&format!(
            "[plugins.json]\nlocator = \"{locator}\"\nregistry = \"{}\"\nrepository = \"plugins/json-tools\"\ntag = \"1.0.0\"\ndigest = \"{digest}\"\nchecksum = \"{checksum}\"\nsize = {}\n",
            registry.host(),
            bytes.len()
        )),
        "{lock}"
    );

    // A fresh cache: fetch pulls the layer by digest, with no manifest or tag request.
    std::fs::remove_dir_all(project.cache_home()).unwrap();
    registry.clear_requests();
    run(&project, &registry, &["fetch"]).success();
    let requests = registry.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.path == format!("/v2/plugins/json-tools/blobs/{checksum}")),
        "{requests:#?}"
    );
    let output = run(
        &project,
        &registry,
        &["call", "json", "add", r#"{"left":40,"right":2}"#],
    )
    .success();
    assert_eq!(output.stdout.trim(), r#"{"sum":42}"#);
}
