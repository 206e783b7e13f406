//! `warpgate lock`, `fetch` and `vendor` against the loopback fake GitHub with 50 ms added to
//! every response.
//!
//! The project: 100 floating GitHub plugins from 30 repositories (10 monorepos of 8 projects
//! each, 20 single-plugin repositories), every repository with 32 releases. Each scenario runs
//! whole `warpgate` processes and prints one table row: median wall time of 5 runs, and the
//! requests (all, GitHub API, answered `304 Not Modified`) of one run.
//!
//! - lock 1 plugin, and the 100 plugins, from scratch (listings in one page, and paged at 10);
//! - an unchanged `lock --update` of the 100 plugins, without and with a token;
//! - a no-op `lock --locked` (it must make no request);
//! - `fetch` of the 100 into an empty cache (it must make no API request);
//! - `vendor` of 10 plugins of 1 MiB, against `sha256sum` + `cp` of the same files.
//!
//! Run: `cargo bench --bench lock`.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{FakeGitHub, FakeRelease, Response, TestServer};

const DELAY: Duration = Duration::from_millis(50);
const RUNS: usize = 5;
const MONOREPOS: usize = 10;
const PROJECTS: usize = 8;
const SINGLES: usize = 20;
const RELEASES: usize = 32;

/// Publishes the 30 repositories.
fn publish(github: &FakeGitHub) {
    for mono in 0..MONOREPOS {
        let slug = format!("bench/mono{mono}");
        for index in 0..RELEASES {
            let project = index % PROJECTS;
            let tag = format!("proj{project}-v1.{}.0", index / PROJECTS);
            let bytes = format!("\0asm {slug} {tag}").into_bytes();
            github.release(
                &slug,
                FakeRelease::new(&tag).wasm(format!("proj{project}.wasm"), bytes),
            );
        }
    }
    for single in 0..SINGLES {
        let slug = format!("bench/single{single}");
        for index in 0..RELEASES {
            let tag = format!("v1.{index}.0");
            let bytes = format!("\0asm {slug} {tag}").into_bytes();
            github.release(&slug, FakeRelease::new(&tag).wasm("plugin.wasm", bytes));
        }
    }
}

fn config(count: usize) -> String {
    let mut config = String::from("[plugins]\n");
    let mut locators = Vec::new();
    for mono in 0..MONOREPOS {
        for project in 0..PROJECTS {
            locators.push((
                format!("m{mono}p{project}"),
                format!("github://bench/mono{mono}/proj{project}"),
            ));
        }
    }
    for single in 0..SINGLES {
        locators.push((
            format!("s{single}"),
            format!("github://bench/single{single}"),
        ));
    }
    // One plugin is a single repository's, as a plugin usually is.
    let chosen = if count == 1 {
        vec![locators[MONOREPOS * PROJECTS].clone()]
    } else {
        locators.into_iter().take(count).collect()
    };
    for (id, locator) in chosen {
        config.push_str(&format!("{id} = \"{locator}\"\n"));
    }
    config
}

fn warpgate(dir: &Path, server: &TestServer, args: &[&str], token: bool) -> Duration {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warpgate"));
    command
        .args(args)
        .current_dir(dir)
        .env("WARPGATE_HOME", dir.join("home"))
        .env("GITHUB_API_URL", server.url(""))
        .env("EXTISM_CACHE_CONFIG", "")
        .envs(server.env())
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .env_remove("WARPGATE_GITHUB_TOKEN");
    if token {
        command.env("GITHUB_TOKEN", "bench-token");
    }
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

/// Requests of one run: all, API, `304`.
#[derive(Clone, Copy, Default)]
struct Counts {
    all: usize,
    api: usize,
    not_modified: usize,
}

fn counts(server: &TestServer, from: usize) -> Counts {
    let requests = server.requests();
    let run = &requests[from..];
    Counts {
        all: run.len(),
        api: run
            .iter()
            .filter(|request| request.path.starts_with("/repos/"))
            .count(),
        not_modified: run.iter().filter(|request| request.status == 304).count(),
    }
}

fn row(scenario: &str, times: &mut [Duration], counts: Counts) {
    times.sort();
    println!(
        "| {scenario:<44} | {:>8.3} s | {:>8} | {:>5} | {:>5} |",
        times[times.len() / 2].as_secs_f64(),
        counts.all,
        counts.api,
        counts.not_modified
    );
}

/// Median of fresh `warpgate lock`s of `count` plugins, and the counts of the last one.
fn lock_cold(server: &TestServer, count: usize) -> (Vec<Duration>, Counts) {
    let mut times = Vec::new();
    let mut last = Counts::default();
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("warpgate.toml"), config(count)).unwrap();
        let before = server.request_count();
        times.push(warpgate(dir.path(), server, &["lock", "-q"], false));
        last = counts(server, before);
    }
    (times, last)
}

fn repeated(
    dir: &Path,
    server: &TestServer,
    args: &[&str],
    token: bool,
    prepare: &dyn Fn(),
) -> (Vec<Duration>, Counts) {
    let mut times = Vec::new();
    let mut last = Counts::default();
    for _ in 0..RUNS {
        prepare();
        let before = server.request_count();
        times.push(warpgate(dir, server, args, token));
        last = counts(server, before);
    }
    (times, last)
}

fn main() {
    let github = FakeGitHub::start();
    publish(&github);
    let server = github.server();
    server.delay_all(DELAY);

    println!(
        "| {:<44} | {:>10} | {:>8} | {:>5} | {:>5} |",
        "scenario (50 ms per response)", "wall", "requests", "API", "304"
    );
    println!(
        "|{:-<46}|{:->12}|{:->10}|{:->7}|{:->7}|",
        "", "", "", "", ""
    );

    github.page_size(100);
    let (mut times, counts_one) = lock_cold(server, 1);
    row("lock, 1 plugin", &mut times, counts_one);
    let one = times[times.len() / 2];
    let (mut times, counts_hundred) = lock_cold(server, 100);
    row("lock, 100 plugins (30 repos)", &mut times, counts_hundred);
    let hundred = times[times.len() / 2];

    github.page_size(10);
    let (mut times, counts_paged) = lock_cold(server, 100);
    row("lock, 100 plugins, pages of 10", &mut times, counts_paged);
    github.page_size(100);

    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    fs_err::write(dir.join("warpgate.toml"), config(100)).unwrap();
    warpgate(dir, server, &["lock", "-q"], false);
    let (mut times, counts) = repeated(dir, server, &["lock", "--update", "-q"], false, &|| {});
    row(
        "unchanged `lock --update`, 100, no token",
        &mut times,
        counts,
    );
    let (mut times, counts) = repeated(dir, server, &["lock", "--update", "-q"], true, &|| {});
    row("unchanged `lock --update`, 100, token", &mut times, counts);
    let (mut times, counts) = repeated(dir, server, &["lock", "--locked", "-q"], false, &|| {});
    assert_eq!(counts.all, 0, "`lock --locked` made a request");
    row("no-op `lock --locked`, 100", &mut times, counts);
    let home = dir.join("home");
    let (mut times, counts) = repeated(dir, server, &["fetch", "-q"], false, &|| {
        fs_err::remove_dir_all(&home).unwrap();
    });
    assert_eq!(counts.api, 0, "`fetch` made an API request");
    row("`fetch` 100 into an empty cache", &mut times, counts);

    println!();
    println!(
        "lock 100 / lock 1: {:.2}x",
        hundred.as_secs_f64() / one.as_secs_f64()
    );

    vendor(server);
}

/// `warpgate vendor` of 10 cached plugins of 1 MiB against `sha256sum` + `cp` of the blobs.
fn vendor(server: &TestServer) {
    server.delay_all(Duration::ZERO);
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    let mut config = String::from("[plugins]\n");
    for index in 0..10u8 {
        let bytes: Vec<u8> = (0..1024 * 1024)
            .map(|i: usize| i.to_le_bytes()[0] ^ index.wrapping_mul(31))
            .collect();
        let path = format!("/big/{index}.wasm");
        server.route(&path, Response::ok(bytes));
        config.push_str(&format!("big{index} = \"{}\"\n", server.url(&path)));
    }
    fs_err::write(dir.join("warpgate.toml"), config).unwrap();
    warpgate(dir, server, &["lock", "-q"], false);
    let mut ours = Vec::new();
    let mut baseline = Vec::new();
    for _ in 0..RUNS {
        let _ = fs_err::remove_dir_all(dir.join("vendor"));
        ours.push(warpgate(dir, server, &["vendor", "-q"], false));
        let target = dir.join("copy");
        let _ = fs_err::remove_dir_all(&target);
        fs_err::create_dir_all(&target).unwrap();
        let blobs = dir.join("home/v1/blobs/sha256");
        let script = format!(
            "sha256sum {blobs}/* > /dev/null && cp {blobs}/* {target}/",
            blobs = blobs.display(),
            target = target.display()
        );
        let start = Instant::now();
        let status = Command::new("sh").arg("-c").arg(&script).status().unwrap();
        baseline.push(start.elapsed());
        assert!(status.success());
    }
    ours.sort();
    baseline.sort();
    let (ours, baseline) = (ours[RUNS / 2], baseline[RUNS / 2]);
    println!(
        "`vendor` 10 x 1 MiB: {:.3} s; `sha256sum` + `cp`: {:.3} s ({:.2}x)",
        ours.as_secs_f64(),
        baseline.as_secs_f64(),
        ours.as_secs_f64() / baseline.as_secs_f64()
    );
}
