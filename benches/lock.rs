//! `warpgate lock` against the loopback fake GitHub with 50 ms added to every response.
//!
//! Measures (wall clock, whole `warpgate` processes):
//! - locking 1 plugin and 100 plugins from scratch (parallel resolution should make 100 cost
//!   a small multiple of 1, not 100x);
//! - a no-op `warpgate lock --locked` on an up-to-date lock (and that it makes no request).
//!
//! Run: `cargo bench --bench lock`.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Response, TestServer};

const DELAY: Duration = Duration::from_millis(50);

fn serve_plugins(server: &TestServer, count: usize) {
    for index in 0..count {
        let bytes = format!("\0asm bench plugin {index}").into_bytes();
        let download = format!("/dl/p{index}.wasm");
        let release = json!([{
            "tag_name": "v1.0.0",
            "draft": false,
            "prerelease": false,
            "assets": [{
                "name": format!("p{index}.wasm"),
                "browser_download_url": server.url(&download),
                "size": bytes.len(),
            }],
        }]);
        server.route(
            format!("/repos/bench/p{index}/releases?per_page=100"),
            Response::json(&release).delay(DELAY),
        );
        server.route(download, Response::ok(bytes).delay(DELAY));
    }
}

fn warpgate(dir: &Path, server: &TestServer, args: &[&str]) -> Duration {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warpgate"));
    command
        .args(args)
        .current_dir(dir)
        .env("WARPGATE_HOME", dir.join("home"))
        .env("GITHUB_API_URL", server.url(""))
        .envs(server.env())
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .env_remove("WARPGATE_GITHUB_TOKEN");
    let start = Instant::now();
    let output = command.output().unwrap();
    let elapsed = start.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

fn lock_from_scratch(server: &TestServer, count: usize, runs: usize) -> Duration {
    let mut times = Vec::new();
    for _ in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let mut config = String::from("[plugins]\n");
        for index in 0..count {
            config.push_str(&format!("p{index} = \"github://bench/p{index}\"\n"));
        }
        std::fs::write(dir.path().join("warpgate.toml"), config).unwrap();
        times.push(warpgate(dir.path(), server, &["lock", "-q"]));
    }
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let server = TestServer::empty();
    serve_plugins(&server, 100);

    let one = lock_from_scratch(&server, 1, 5);
    let hundred = lock_from_scratch(&server, 100, 5);
    println!("lock, 1 GitHub plugin, 50 ms/response:    median {one:?}");
    println!(
        "lock, 100 GitHub plugins, 50 ms/response: median {hundred:?} ({:.1}x one plugin)",
        hundred.as_secs_f64() / one.as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    let mut config = String::from("[plugins]\n");
    for index in 0..100 {
        config.push_str(&format!("p{index} = \"github://bench/p{index}\"\n"));
    }
    std::fs::write(dir.path().join("warpgate.toml"), config).unwrap();
    warpgate(dir.path(), &server, &["lock", "-q"]);
    let requests = server.request_count();
    let mut times: Vec<Duration> = (0..30)
        .map(|_| warpgate(dir.path(), &server, &["lock", "--locked", "-q"]))
        .collect();
    times.sort();
    assert_eq!(server.request_count(), requests, "--locked made a request");
    println!(
        "no-op `lock --locked`, 100 plugins: median {:?}, min {:?} (process start included), 0 requests",
        times[times.len() / 2],
        times[0]
    );
}
