//! `warpgate lock` / `fetch` / `update` / `outdated` as real processes against the loopback
//! fake GitHub API and download host.

use std::time::Duration;

use warpgate::checksum::Checksum;

use crate::support::project::{Project, Run, run_concurrently};
use crate::support::server::{NAMED_ALT_HOST, NAMED_HOST};
use crate::support::{FakeAsset, FakeGitHub, FakeRelease, Response, TestProxy};

/// A plugin's bytes (any bytes do: locking does not run them).
fn wasm(name: &str) -> Vec<u8> {
    format!("\0asm fake plugin {name}").into_bytes()
}

fn run(project: &Project, github: &FakeGitHub, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = project.command(args);
    command.envs(github.env());
    command.envs(env.iter().copied());
    Run::from(command.output().unwrap())
}

/// A fake GitHub with a monorepo and a single-project repo, plus a plain URL plugin.
fn fake() -> FakeGitHub {
    populate(FakeGitHub::start())
}

/// [`fake`]'s repositories and plain URL plugin on `github`.
fn populate(github: FakeGitHub) -> FakeGitHub {
    github
        .release(
            "acme/plugins",
            FakeRelease::new("node_tool-v0.12.0").wasm("node_tool.wasm", wasm("node 0.12")),
        )
        .release(
            "acme/plugins",
            FakeRelease::new("node_tool-v0.13.0").wasm("node_tool.wasm", wasm("node 0.13")),
        )
        .release(
            "acme/plugins",
            FakeRelease::new("bun_tool@v0.14.1")
                .asset(FakeAsset::new("bun_tool.wasm", wasm("bun 0.14.1")).with_digest()),
        )
        .release(
            "acme/plugins",
            FakeRelease::new("bun_tool@v0.15.0").wasm("bun_tool.wasm", wasm("bun 0.15")),
        )
        .release(
            "acme/deno-plugin",
            FakeRelease::new("v1.0.0").wasm("deno.wasm", wasm("deno 1.0")),
        )
        .release(
            "acme/deno-plugin",
            FakeRelease::new("v2.0.0-rc.1")
                .prerelease()
                .wasm("deno.wasm", wasm("deno 2 rc")),
        );
    github
        .server()
        .route("/hello-1.0.0.wasm", Response::ok(wasm("hello")));
    github
}

fn config(github: &FakeGitHub) -> String {
    format!(
        "[plugins]\nnode = \"github://acme/plugins/node_tool@v0.13.0\"\ndeno = \"github://acme/deno-plugin\"\nbun = {{ locator = \"github://acme/plugins/bun_tool\", version = \"^0.14\" }}\nhello = \"{}\"\necho = \"file://./plugins/json_tools.wasm\"\n",
        github.server().url("/hello-1.0.0.wasm")
    )
}

#[test]
fn lock_resolves_every_kind_then_fetch_needs_no_api() {
    let github = fake();
    let project = Project::new(&config(&github));
    run(&project, &github, &["lock"], &[]).success();
    let lock = project.read("warpgate.lock");
    let node_url = github.download_url("acme/plugins", "node_tool-v0.13.0", "node_tool.wasm");
    assert!(
        lock.contains(&format!(
            "[plugins.node]\nlocator = \"github://acme/plugins/node_tool@v0.13.0\"\ntag = \"node_tool-v0.13.0\"\nasset = \"node_tool.wasm\"\nurl = \"{node_url}\"\nchecksum = \"{}\"\nsize = {}\n",
            Checksum::of(&wasm("node 0.13")),
            wasm("node 0.13").len()
        )),
        "{lock}"
    );
    assert!(
        lock.contains("[plugins.deno]\nlocator = \"github://acme/deno-plugin\"\ntag = \"v1.0.0\""),
        "{lock}"
    );
    assert!(
        lock.contains("requirement = \"^0.14\"\ntag = \"bun_tool@v0.14.1\""),
        "{lock}"
    );
    assert!(
        lock.contains(&format!(
            "url = \"{}\"",
            github.server().url("/hello-1.0.0.wasm")
        )),
        "{lock}"
    );
    assert!(
        !lock.contains(&project.dir.path().display().to_string()),
        "no absolute paths: {lock}"
    );

    // A fresh cache: `fetch` downloads every plugin from its locked URL, no API call.
    let api_calls = github.api_requests().len();
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    run(&project, &github, &["fetch"], &[])
        .success()
        .stderr_has("Fetched 5 plugins");
    assert_eq!(github.api_requests().len(), api_calls);
    // And again: everything is cached, not a single request.
    let requests = github.server().request_count();
    run(&project, &github, &["fetch"], &[]).success();
    assert_eq!(github.server().request_count(), requests);
    // `--locked` on an up-to-date lock makes no request either.
    run(&project, &github, &["lock", "--locked"], &[]).success();
    assert_eq!(github.server().request_count(), requests);
}

#[test]
fn token_goes_to_the_api_host_only_and_is_never_printed() {
    let github = fake();
    let project = Project::new("[plugins]\ndeno = \"github://acme/deno-plugin\"\n");
    let secret = "ghp_supersecret123";
    let result = run(
        &project,
        &github,
        &["lock", "-vv"],
        &[("GITHUB_TOKEN", secret)],
    )
    .success();
    assert!(!result.stderr.contains(secret) && !result.stdout.contains(secret));
    assert!(!project.read("warpgate.lock").contains(secret));
    let requests = github.server().requests();
    let api: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with("/repos/"))
        .collect();
    assert!(!api.is_empty());
    for request in &api {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {secret}").as_str())
        );
    }
    let downloads: Vec<_> = requests.iter().filter(|r| r.is_alt_host()).collect();
    assert_eq!(downloads.len(), 1, "{requests:#?}");
    assert_eq!(downloads[0].header("authorization"), None);
    for request in requests.iter().filter(|r| !r.path.starts_with("/repos/")) {
        assert_eq!(request.header("authorization"), None, "{request:#?}");
    }
}

#[test]
fn warpgate_token_wins_over_github_token() {
    let github = fake();
    let project = Project::new("[plugins]\ndeno = \"github://acme/deno-plugin\"\n");
    run(
        &project,
        &github,
        &["lock"],
        &[
            ("GITHUB_TOKEN", "low"),
            ("GH_TOKEN", "middle"),
            ("WARPGATE_GITHUB_TOKEN", "high"),
        ],
    )
    .success();
    let requests = github.server().requests();
    let api = requests
        .iter()
        .find(|r| r.path.starts_with("/repos/"))
        .unwrap();
    assert_eq!(api.header("authorization"), Some("Bearer high"));
}

#[test]
fn offline_with_nothing_known_opens_no_connection() {
    let github = fake();
    let project = Project::new(&config(&github));
    for (args, env) in [
        (vec!["lock", "--offline"], vec![]),
        (vec!["lock"], vec![("WARPGATE_OFFLINE", "1")]),
        (vec!["lock"], vec![("CARGO_NET_OFFLINE", "true")]),
    ] {
        let result = run(&project, &github, &args, &env).code(2);
        assert!(
            result.stderr.contains("network access is disabled by"),
            "{result:#?}"
        );
        assert!(
            result
                .stderr
                .contains("must be resolved: declared in the config but not in the lock"),
            "{result:#?}"
        );
    }
    assert_eq!(github.server().request_count(), 0);
    assert!(!project.path("warpgate.lock").exists());

    // Locked and cached: offline works and still makes no request.
    run(&project, &github, &["lock"], &[]).success();
    let requests = github.server().request_count();
    run(&project, &github, &["lock", "--frozen"], &[]).success();
    run(&project, &github, &["fetch", "--offline"], &[]).success();
    // Nothing cached: offline fetch fails naming the plugin, with no request.
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    run(&project, &github, &["fetch", "--offline"], &[])
        .code(2)
        .stderr_has("but plugin `")
        .stderr_has("is not in the cache");
    assert_eq!(github.server().request_count(), requests);
}

#[test]
fn locked_on_stale_remote_lock_leaves_it_untouched() {
    let github = fake();
    let project = Project::new(&config(&github));
    run(&project, &github, &["lock"], &[]).success();
    let lock = fs_err::read(project.path("warpgate.lock")).unwrap();
    let requests = github.server().request_count();
    fs_err::write(
        project.path("warpgate.toml"),
        config(&github).replace("node_tool@v0.13.0", "node_tool@v0.12.0"),
    )
    .unwrap();
    run(&project, &github, &["lock", "--locked"], &[])
        .code(1)
        .stderr_has("`node`: its config entry changed since it was locked");
    assert_eq!(fs_err::read(project.path("warpgate.lock")).unwrap(), lock);
    assert_eq!(github.server().request_count(), requests);
    // Without --locked the one changed entry is re-resolved; the others are kept.
    run(&project, &github, &["lock"], &[])
        .success()
        .stderr_has("Updating node");
    assert!(
        project
            .read("warpgate.lock")
            .contains("tag = \"node_tool-v0.12.0\"")
    );
}

#[test]
fn update_moves_floating_entries_only_when_asked() {
    let github = fake();
    let project = Project::new(&config(&github));
    run(&project, &github, &["lock"], &[]).success();
    github.release(
        "acme/deno-plugin",
        FakeRelease::new("v1.1.0").wasm("deno.wasm", wasm("deno 1.1")),
    );
    github.release(
        "acme/plugins",
        FakeRelease::new("bun_tool@v0.14.2").wasm("bun_tool.wasm", wasm("bun 0.14.2")),
    );

    run(&project, &github, &["lock"], &[]).success();
    let lock = project.read("warpgate.lock");
    assert!(lock.contains("tag = \"v1.0.0\""));

    let dry = run(&project, &github, &["update", "--dry-run"], &[]).success();
    assert!(dry.stdout.contains("deno: v1.0.0"), "{dry:#?}");
    assert!(dry.stdout.contains("-> v1.1.0"), "{dry:#?}");
    assert!(dry.stdout.contains("bun: bun_tool@v0.14.1"), "{dry:#?}");
    assert_eq!(project.read("warpgate.lock"), lock);

    run(&project, &github, &["lock", "--update", "deno"], &[]).success();
    let updated = project.read("warpgate.lock");
    assert!(updated.contains("tag = \"v1.1.0\""));
    assert!(
        updated.contains("tag = \"bun_tool@v0.14.1\""),
        "only deno: {updated}"
    );
    run(&project, &github, &["update"], &[]).success();
    assert!(
        project
            .read("warpgate.lock")
            .contains("tag = \"bun_tool@v0.14.2\"")
    );

    let outdated = run(&project, &github, &["outdated", "--json"], &[]).success();
    let rows: serde_json::Value = serde_json::from_str(&outdated.stdout).unwrap();
    let bun = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["id"] == "bun")
        .unwrap();
    assert_eq!(bun["locked"], "bun_tool@v0.14.2");
    assert_eq!(bun["matching"], "bun_tool@v0.14.2");
    assert_eq!(bun["newest"], "bun_tool@v0.15.0");
    run(&project, &github, &["outdated", "--exit-code"], &[]).success();
}

#[test]
fn fetch_checksum_mismatch_names_everything_and_caches_nothing() {
    let github = fake();
    let project = Project::new(&config(&github));
    run(&project, &github, &["lock"], &[]).success();
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    let url = github.server().url("/hello-1.0.0.wasm");
    github.server().route(
        "/hello-1.0.0.wasm",
        Response::ok(b"\0asm replaced".to_vec()),
    );
    let result = run(&project, &github, &["fetch"], &[])
        .code(1)
        .stderr_has(&format!(
            "checksum mismatch for plugin `hello` downloaded from `{url}`"
        ))
        .stderr_has(&format!("Expected: `{}`", Checksum::of(&wasm("hello"))))
        .stderr_has(&format!("Computed: `{}`", Checksum::of(b"\0asm replaced")))
        .stderr_has("hint: ");
    drop(result);
    let blobs = project.cache_home().join("v1/blobs/sha256");
    assert!(!blobs.join(Checksum::of(b"\0asm replaced").hex()).exists());
    assert!(!blobs.join(Checksum::of(&wasm("hello")).hex()).exists());
    assert_eq!(
        fs_err::read_dir(project.cache_home().join("v1/tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn api_digest_mismatch_fails_the_lock() {
    let github = FakeGitHub::start();
    github.release(
        "acme/x",
        FakeRelease::new("v1.0.0")
            .asset(FakeAsset::new("x.wasm", wasm("x")).digest(Checksum::of(b"other").to_string())),
    );
    let project = Project::new("[plugins]\nx = \"github://acme/x\"\n");
    run(&project, &github, &["lock"], &[])
        .code(1)
        .stderr_has("digest published by the release API")
        .stderr_has(&format!("Expected: `{}`", Checksum::of(b"other")));
    assert!(!project.path("warpgate.lock").exists());
}

#[test]
fn rate_limit_and_missing_repo_are_reported_as_such() {
    let github = fake();
    let project = Project::new("[plugins]\ndeno = \"github://acme/deno-plugin\"\n");
    github.rate_limit(true);
    run(&project, &github, &["lock"], &[])
        .code(2)
        .stderr_has("rate limit")
        .stderr_has("GITHUB_TOKEN");
    github.rate_limit(false);
    let project = Project::new("[plugins]\nghost = \"github://acme/ghost\"\n");
    run(&project, &github, &["lock"], &[])
        .code(2)
        .stderr_has("plugin `ghost`")
        .stderr_has("acme/ghost");
    assert!(!project.path("warpgate.lock").exists());
}

#[test]
fn concurrent_fetch_processes_share_one_cache() {
    let github = fake();
    let project = Project::new(&config(&github));
    run(&project, &github, &["lock"], &[]).success();
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    let url_path = "/hello-1.0.0.wasm";
    github.server().route(
        url_path,
        Response::ok(wasm("hello")).delay(Duration::from_millis(300)),
    );
    let before = github.server().hits(url_path);
    let runs = run_concurrently((0..6).map(|_| {
        let mut command = project.command(&["fetch"]);
        command.envs(github.env());
        command
    }));
    for run in runs {
        run.success();
    }
    // One download per blob, however many processes asked.
    assert_eq!(github.server().hits(url_path) - before, 1);
    let blobs = project.cache_home().join("v1/blobs/sha256");
    let mut count = 0;
    for entry in fs_err::read_dir(&blobs).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(Checksum::of(&fs_err::read(&path).unwrap()).hex(), name);
        count += 1;
    }
    assert_eq!(count, 4);
    assert_eq!(
        fs_err::read_dir(project.cache_home().join("v1/tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn cache_prune_keeps_referenced_blobs() {
    let github = fake();
    let project = Project::new(&config(&github));
    run(&project, &github, &["lock"], &[]).success();
    run(&project, &github, &["fetch"], &[]).success();
    // Drop two entries from the lock's point of view: relock a smaller config.
    fs_err::write(
        project.path("warpgate.toml"),
        "[plugins]\ndeno = \"github://acme/deno-plugin\"\n",
    )
    .unwrap();
    run(&project, &github, &["lock"], &[]).success();
    let blobs = project.cache_home().join("v1/blobs/sha256");
    assert_eq!(fs_err::read_dir(&blobs).unwrap().count(), 4);
    let result = run(&project, &github, &["cache", "prune"], &[]).success();
    let freed: u64 = [wasm("node 0.13"), wasm("bun 0.14.1"), wasm("hello")]
        .iter()
        .map(|bytes| bytes.len() as u64)
        .sum();
    assert_eq!(
        result.stdout.trim(),
        format!("3 files, {freed} bytes freed")
    );
    let left: Vec<_> = fs_err::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from(
            Checksum::of(&wasm("deno 1.0")).hex()
        )]
    );
    // `clean` also removes the stored API answers.
    let answers: Vec<u64> = fs_err::read_dir(project.cache_home().join("v1/http"))
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .collect();
    assert!(!answers.is_empty());
    // And the lock files (empty) that no process holds.
    let locks = project.cache_home().join("v1/locks");
    let lock_files = fs_err::read_dir(&locks).unwrap().count();
    assert!(lock_files > 0);
    let cleaned = run(&project, &github, &["cache", "clean"], &[]).success();
    assert_eq!(
        cleaned.stdout.trim(),
        format!(
            "{} files, {} bytes freed",
            1 + answers.len() + lock_files,
            wasm("deno 1.0").len() as u64 + answers.iter().sum::<u64>()
        )
    );
    assert_eq!(fs_err::read_dir(&blobs).unwrap().count(), 0);
    assert_eq!(fs_err::read_dir(&locks).unwrap().count(), 0);
    assert!(!project.cache_home().join("v1/http").exists());
}

/// A `WARPGATE_HOME` that names a folder with someone's files (or another program's cache)
/// is never marked and never cleaned: `clean` and `prune` refuse it and delete nothing, and a
/// command that must write there (an application's existing plugins folder, say) writes only
/// inside warpgate's own `v1/`, with a warning, and plants no `CACHEDIR.TAG`.
#[test]
fn a_folder_that_is_not_a_cache_is_never_marked_or_cleaned() {
    let github = fake();
    let project = Project::new(&format!(
        "[plugins]\nhello = \"{}\"\n",
        github.server().url("/hello-1.0.0.wasm")
    ));
    fs_err::create_dir_all(project.cache_home().join("precious")).unwrap();
    fs_err::write(project.cache_home().join("precious/data.txt"), "keep").unwrap();
    let home = project.cache_home();
    let listing = || {
        let mut names: Vec<_> = walkdir::WalkDir::new(&home)
            .into_iter()
            .map(|entry| entry.unwrap().path().to_path_buf())
            .filter(|path| !path.starts_with(home.join("v1")))
            .collect();
        names.sort();
        names
    };
    let before = listing();
    run(&project, &github, &["lock"], &[])
        .success()
        .stderr_has("holds other files and no warpgate `CACHEDIR.TAG`");
    assert_eq!(listing(), before);
    assert!(!home.join("CACHEDIR.TAG").exists());
    let blobs = fs_err::read_dir(home.join("v1/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 1);
    for args in [
        &["cache", "clean"][..],
        &["cache", "prune", "--lockfile", "warpgate.lock"],
    ] {
        run(&project, &github, args, &[])
            .code(2)
            .stderr_has("is not a warpgate cache: it has no warpgate `CACHEDIR.TAG`")
            .stderr_has("hint: set `WARPGATE_HOME` to the cache folder");
        assert_eq!(listing(), before, "{args:?}");
        assert_eq!(
            fs_err::read_dir(home.join("v1/blobs/sha256"))
                .unwrap()
                .count(),
            blobs
        );
    }
    // Cargo's tag (the same signature line) does not make a folder warpgate's.
    let cargo_target = project.path("target");
    fs_err::create_dir_all(cargo_target.join("debug")).unwrap();
    fs_err::write(
        cargo_target.join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by cargo.\n",
    )
    .unwrap();
    let mut command = project.command(&["cache", "clean"]);
    command.env("WARPGATE_HOME", &cargo_target);
    Run::from(command.output().unwrap())
        .code(2)
        .stderr_has("is not a warpgate cache");
    assert!(cargo_target.join("debug").is_dir());
    assert_eq!(project.read("home/precious/data.txt"), "keep");
}

#[test]
fn a_corrupted_blob_is_replaced_not_a_hang() {
    let github = fake();
    let project = Project::new(&format!(
        "[plugins]\nhello = \"{}\"\n",
        github.server().url("/hello-1.0.0.wasm")
    ));
    run(&project, &github, &["lock"], &[]).success();
    let blob = project
        .cache_home()
        .join("v1/blobs/sha256")
        .join(Checksum::of(&wasm("hello")).hex());
    let mut permissions = fs_err::metadata(&blob).unwrap().permissions();
    #[expect(
        clippy::permissions_set_readonly_false,
        reason = "the test tampers with a file on purpose"
    )]
    permissions.set_readonly(false);
    fs_err::set_permissions(&blob, permissions).unwrap();
    fs_err::write(&blob, b"tampered").unwrap();
    // Re-resolving downloads into a blob whose current file is corrupt.
    fs_err::remove_file(project.path("warpgate.lock")).unwrap();
    run(&project, &github, &["lock"], &[]).success();
    assert_eq!(fs_err::read(&blob).unwrap(), wasm("hello"));
    // And a locked fetch over a corrupt blob heals it too.
    let mut permissions = fs_err::metadata(&blob).unwrap().permissions();
    #[expect(
        clippy::permissions_set_readonly_false,
        reason = "the test tampers with a file on purpose"
    )]
    permissions.set_readonly(false);
    fs_err::set_permissions(&blob, permissions).unwrap();
    fs_err::write(&blob, b"tampered again").unwrap();
    run(&project, &github, &["fetch"], &[]).success();
    assert_eq!(fs_err::read(&blob).unwrap(), wasm("hello"));
}

#[test]
fn update_of_a_named_pinned_entry_relocks_it() {
    let github = fake();
    let project = Project::new(&format!(
        "[plugins]\nhello = \"{}\"\nnode = \"github://acme/plugins/node_tool@v0.13.0\"\n",
        github.server().url("/hello-1.0.0.wasm")
    ));
    run(&project, &github, &["lock"], &[]).success();
    // The server now serves other bytes for the pinned URL: fetch fails, naming the fix...
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    github
        .server()
        .route("/hello-1.0.0.wasm", Response::ok(b"\0asm hello 2".to_vec()));
    run(&project, &github, &["fetch"], &[])
        .code(1)
        .stderr_has("run `warpgate lock --update hello`");
    // ...and the fix works.
    run(&project, &github, &["lock", "--update", "hello"], &[]).success();
    assert!(
        project
            .read("warpgate.lock")
            .contains(&Checksum::of(b"\0asm hello 2").to_string())
    );
    run(&project, &github, &["fetch"], &[]).success();
}

#[test]
fn offline_lock_says_why_an_entry_needs_the_network() {
    let github = fake();
    let project = Project::new(&config(&github));
    run(&project, &github, &["lock"], &[]).success();
    fs_err::write(
        project.path("warpgate.toml"),
        config(&github).replace("hello-1.0.0.wasm", "hello-1.0.0.wasm?v=2"),
    )
    .unwrap();
    run(&project, &github, &["lock", "--offline"], &[])
        .code(2)
        .stderr_has("plugin `hello`")
        .stderr_has("must be resolved: its config entry changed since it was locked");
}

#[test]
fn outdated_exit_code_offline_and_plugins_not_on_github() {
    let github = fake();
    let project = Project::new(&config(&github));
    run(&project, &github, &["lock"], &[]).success();
    github.release(
        "acme/plugins",
        FakeRelease::new("bun_tool@v0.14.2").wasm("bun_tool.wasm", wasm("bun 0.14.2")),
    );

    // `bun` is behind the newest release matching `^0.14`: exit 1 with `--exit-code` only.
    let table = run(&project, &github, &["outdated"], &[])
        .success()
        .stderr_has("`echo`, `hello`: only GitHub plugins have releases to compare");
    let bun = table
        .stdout
        .lines()
        .find(|line| line.starts_with("bun "))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>();
    assert_eq!(
        bun,
        [
            "bun",
            "bun_tool@v0.14.1",
            "bun_tool@v0.14.2",
            "bun_tool@v0.15.0"
        ]
    );
    let checked = run(
        &project,
        &github,
        &["outdated", "--exit-code", "--json"],
        &[],
    )
    .code(1);
    let rows: serde_json::Value = serde_json::from_str(&checked.stdout).unwrap();
    let ids: Vec<_> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["bun", "deno", "node"]);

    // Offline: a clear error naming the cause, and not a single request.
    let requests = github.server().request_count();
    run(&project, &github, &["outdated"], &[("WARPGATE_OFFLINE", "1")])
        .code(2)
        .stderr_has("network access is disabled by `WARPGATE_OFFLINE=1`, but `warpgate outdated` must ask the GitHub API")
        .stderr_has("hint: run `warpgate outdated` while online");
    run(&project, &github, &["outdated", "--frozen"], &[])
        .code(2)
        .stderr_has("disabled by `--frozen`");
    assert_eq!(github.server().request_count(), requests);

    // Without GitHub plugins there is nothing to ask, online or not.
    let local = Project::new("[plugins]\necho = \"file://./plugins/json_tools.wasm\"\n");
    let listed = run(&local, &github, &["outdated", "--json", "--offline"], &[]).success();
    assert_eq!(listed.stdout.trim(), "[]");
}

#[test]
fn add_resolves_and_locks_only_the_new_github_entry() {
    let github = fake();
    let project = Project::new(
        "# mine\n[plugins]\nnode = \"github://acme/plugins/node_tool@v0.13.0\" # pinned\n",
    );
    run(&project, &github, &["lock"], &[]).success();
    let node_entry = project.read("warpgate.lock");
    // A newer release appears; `add` must not move `node`.
    github.release(
        "acme/plugins",
        FakeRelease::new("bun_tool@v0.14.9").wasm("bun_tool.wasm", wasm("bun 0.14.9")),
    );
    run(
        &project,
        &github,
        &[
            "add",
            "bun",
            "github://acme/plugins/bun_tool",
            "--version",
            "^0.14",
        ],
        &[],
    )
    .success()
    .stderr_has("Added bun bun_tool@v0.14.9");
    assert_eq!(
        project.read("warpgate.toml"),
        "# mine\n[plugins]\nnode = \"github://acme/plugins/node_tool@v0.13.0\" # pinned\nbun = { locator = \"github://acme/plugins/bun_tool\", version = \"^0.14\" }\n"
    );
    let lock = project.read("warpgate.lock");
    assert!(
        lock.contains("[plugins.bun]\nlocator = \"github://acme/plugins/bun_tool\"\nrequirement = \"^0.14\"\ntag = \"bun_tool@v0.14.9\""),
        "{lock}"
    );
    let node_part = |text: &str| text[text.find("[plugins.node]").unwrap()..].to_string();
    assert_eq!(node_part(&lock), node_part(&node_entry));
    run(&project, &github, &["lock", "--locked"], &[]).success();

    // A lockfile this warpgate cannot read fails `add` before any request.
    fs_err::write(project.path("warpgate.lock"), "version = 9\n").unwrap();
    let config = project.read("warpgate.toml");
    let requests = github.server().request_count();
    run(
        &project,
        &github,
        &["add", "deno", "github://acme/deno-plugin"],
        &[],
    )
    .code(2)
    .stderr_has("has format version 9");
    assert_eq!(github.server().request_count(), requests);
    assert_eq!(project.read("warpgate.toml"), config);
    assert_eq!(project.read("warpgate.lock"), "version = 9\n");
}

/// `warpgate <args>` with `HTTPS_PROXY` pointing at `proxy` and `NO_PROXY` as given (no other
/// proxy variable, whatever the test process inherited).
fn run_through(
    project: &Project,
    github: &FakeGitHub,
    proxy: &TestProxy,
    no_proxy: Option<&str>,
    args: &[&str],
) -> Run {
    let mut command = project.command(args);
    command.envs(github.env());
    proxy.configure(&mut command, no_proxy);
    Run::from(command.output().unwrap())
}

#[test]
fn https_proxy_from_the_environment_carries_every_request() {
    // Host names that only the proxy can reach: loopback hosts never go through a proxy.
    let github = populate(FakeGitHub::start_named());
    let proxy = TestProxy::start();
    let project = Project::new(&config(&github));
    let port = github.server().port();

    run_through(&project, &github, &proxy, None, &["lock"]).success();
    let direct = format!("{NAMED_HOST}:{port}");
    let redirected = format!("{NAMED_ALT_HOST}:{port}");
    let targets = proxy.connect_targets();
    // API calls and the plain URL plugin, then GitHub's redirect to another host: the proxy
    // is asked for each host by name, and nothing else.
    assert!(targets.contains(&direct), "{targets:?}");
    assert!(targets.contains(&redirected), "{targets:?}");
    assert!(
        targets
            .iter()
            .all(|target| *target == direct || *target == redirected),
        "{targets:?}"
    );
    assert_eq!(proxy.requests().len(), targets.len(), "only CONNECTs");
    // Every connection the server saw came through the proxy, and TLS ran end to end.
    assert_eq!(github.server().connection_count(), targets.len());
    assert!(github.server().hits("/hello-1.0.0.wasm") >= 1);
    assert!(project.read("warpgate.lock").contains("[plugins.hello]"));

    // `fetch` on an empty cache downloads through the proxy as well.
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    let before = proxy.connect_targets().len();
    let hits = github.server().hits("/hello-1.0.0.wasm");
    run_through(&project, &github, &proxy, None, &["fetch"])
        .success()
        .stderr_has("Fetched 5 plugins");
    assert_eq!(github.server().hits("/hello-1.0.0.wasm"), hits + 1);
    assert!(proxy.connect_targets().len() > before);
    assert_eq!(
        github.server().connection_count(),
        proxy.connect_targets().len()
    );
}

#[test]
fn no_proxy_bypasses_the_proxy_host_by_host() {
    let github = fake();
    let proxy = TestProxy::start();

    // Both loopback names exempt: the proxy is never contacted, and everything still works.
    let project = Project::new(&config(&github));
    run_through(
        &project,
        &github,
        &proxy,
        Some("127.0.0.1,localhost"),
        &["lock"],
    )
    .success();
    assert!(project.read("warpgate.lock").contains("[plugins.hello]"));
    assert!(github.server().hits("/hello-1.0.0.wasm") >= 1);
    assert_eq!(proxy.connection_count(), 0, "{:?}", proxy.requests());

    // Entries that name neither host (a parent domain without the dot rule, another host, an
    // address range) leave both going through the proxy. (A named host that `NO_PROXY`
    // exempts would be resolved, which a test without a network cannot do.)
    let github = populate(FakeGitHub::start_named());
    let port = github.server().port();
    let project = Project::new(&config(&github));
    run_through(
        &project,
        &github,
        &proxy,
        Some("hub.test,other.test,10.0.0.0/8"),
        &["lock"],
    )
    .success();
    let mut targets = proxy.connect_targets();
    targets.sort();
    targets.dedup();
    assert_eq!(
        targets,
        [
            format!("{NAMED_HOST}:{port}"),
            format!("{NAMED_ALT_HOST}:{port}")
        ],
    );
}

#[test]
fn loopback_never_goes_through_a_proxy_so_a_token_stays_on_the_machine() {
    // A plain `http://` API on loopback (the token would cross the proxy in clear text),
    // and the `https://` one.
    for github in [FakeGitHub::start_plain(), FakeGitHub::start()] {
        let github = populate(github);
        let proxy = TestProxy::start();
        let project = Project::new(&config(&github));
        let secret = "ghp_l00pback_only";
        let mut command = project.command(&["lock"]);
        command.envs(github.env()).env("GITHUB_TOKEN", secret);
        // Every proxy variable, in both cases, and no `NO_PROXY`.
        proxy.configure_every_variable(&mut command);
        let run = Run::from(command.output().unwrap()).success();
        assert!(!run.stderr.contains(secret), "{run:#?}");
        assert!(project.read("warpgate.lock").contains("[plugins.hello]"));
        assert_eq!(proxy.connection_count(), 0, "{:?}", proxy.requests());
        // The token went straight to the API, and the downloads (on `localhost` too) were
        // direct as well.
        let requests = github.server().requests();
        let api: Vec<_> = requests
            .iter()
            .filter(|request| request.path.starts_with("/repos/"))
            .collect();
        assert!(!api.is_empty());
        for request in api {
            assert_eq!(
                request.header("authorization"),
                Some(format!("Bearer {secret}").as_str())
            );
        }
        assert!(
            requests
                .iter()
                .any(super::support::server::RecordedRequest::is_alt_host)
        );
    }
}

/// GitHub plugins only: floating, a range, and an asset without a digest.
fn floating_config() -> &'static str {
    "[plugins]\ndeno = \"github://acme/deno-plugin\"\nbun = { locator = \"github://acme/plugins/bun_tool\", version = \"^0.14\" }\nnode = \"github://acme/plugins/node_tool\"\nplain = \"github://acme/plain\"\n"
}

fn fake_with_plain() -> FakeGitHub {
    let github = fake();
    github.release(
        "acme/plain",
        FakeRelease::new("v1.0.0").asset(FakeAsset::new("plain.wasm", wasm("plain 1.0"))),
    );
    github
}

/// Requests that are not API calls: downloads and their redirects.
fn downloads(github: &FakeGitHub, from: usize) -> Vec<String> {
    github.server().requests()[from..]
        .iter()
        .map(|request| request.path.clone())
        .filter(|path| !path.starts_with("/repos/"))
        .collect()
}

#[test]
fn an_unchanged_update_is_answered_by_304s_and_downloads_nothing() {
    let github = fake_with_plain();
    github.server().header_all("x-ratelimit-remaining", "4990");
    let project = Project::new(floating_config());
    let token = [("GITHUB_TOKEN", "gh-t0ken-value")];
    run(&project, &github, &["lock"], &token).success();
    let lock = project.read("warpgate.lock");
    // One listing per repository, whatever the number of its plugins.
    assert_eq!(
        github.api_requests().len(),
        3,
        "{:#?}",
        github.api_requests()
    );

    let before = github.server().request_count();
    run(&project, &github, &["lock", "--update", "-v"], &token)
        .success()
        .stderr_has("GitHub API 3 requests, 3 answered from cache (304), rate limit left: 4990");
    let requests = &github.server().requests()[before..];
    assert_eq!(requests.len(), 3, "{requests:#?}");
    for request in requests {
        assert!(request.header("if-none-match").is_some(), "{request:#?}");
        assert_eq!(request.status, 304, "{request:#?}");
    }
    assert_eq!(downloads(&github, before), Vec::<String>::new());
    assert_eq!(project.read("warpgate.lock"), lock);

    // The token is in no file of the cache.
    for entry in walkdir::WalkDir::new(project.cache_home()) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let bytes = fs_err::read(entry.path()).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("gh-t0ken-value"),
                "{}",
                entry.path().display()
            );
        }
    }

    // A new release is a full answer and one download.
    github.release(
        "acme/deno-plugin",
        FakeRelease::new("v1.1.0").wasm("deno.wasm", wasm("deno 1.1")),
    );
    let before = github.server().request_count();
    run(&project, &github, &["lock", "--update"], &token)
        .success()
        .stderr_has("deno: v1.0.0");
    assert!(project.read("warpgate.lock").contains("tag = \"v1.1.0\""));
    assert_eq!(downloads(&github, before).len(), 2, "redirect and download");
}

#[test]
fn a_named_update_without_a_digest_downloads_again() {
    let github = fake_with_plain();
    let project = Project::new(floating_config());
    run(&project, &github, &["lock"], &[]).success();
    // The asset is replaced in place: only a named update can tell, by downloading.
    github.server().route(
        "/objects/acme/plain/v1.0.0/plain.wasm",
        Response::ok(wasm("plain 1.0, rebuilt")),
    );
    let before = github.server().request_count();
    run(&project, &github, &["lock", "--update"], &[]).success();
    assert_eq!(downloads(&github, before), Vec::<String>::new());
    run(&project, &github, &["lock", "--update", "plain"], &[]).success();
    assert_eq!(downloads(&github, before).len(), 2);
    assert!(
        project
            .read("warpgate.lock")
            .contains(&Checksum::of(&wasm("plain 1.0, rebuilt")).to_string())
    );
}

#[test]
fn a_run_larger_than_the_rate_limit_left_fails_before_resolving() {
    let github = fake_with_plain();
    github.server().header_all("x-ratelimit-remaining", "1");
    let project = Project::new(floating_config());
    run(&project, &github, &["lock"], &[])
        .code(2)
        .stderr_has(
            "resolving 4 plugin(s) from 3 GitHub repositories needs at least 2 more API requests, but the rate limit allows only 1 more",
        )
        .stderr_has("`WARPGATE_GITHUB_TOKEN`, `GH_TOKEN` or `GITHUB_TOKEN`");
    assert_eq!(github.server().request_count(), 1, "only the first listing");
    assert!(!project.path("warpgate.lock").exists());
}

#[test]
fn verbose_lock_reports_what_the_api_cost() {
    let github = fake_with_plain();
    github.server().header_all("x-ratelimit-remaining", "57");
    let project = Project::new(floating_config());
    run(&project, &github, &["lock", "-v"], &[])
        .success()
        .stderr_has("GitHub API 3 requests, 0 answered from cache (304), rate limit left: 57");
    // Quiet by default.
    let run = run(&project, &github, &["lock", "--update"], &[]).success();
    assert!(!run.stderr.contains("GitHub API"), "{}", run.stderr);
}

/// What a server says reaches the terminal escaped: an error body with terminal escape
/// sequences (clear screen, set title) and a bidi override is shown as text.
#[test]
fn server_text_reaches_the_terminal_escaped() {
    let github = FakeGitHub::start();
    github.server().route(
        "/evil.wasm",
        Response::status(403).body("\u{1b}[2J\u{1b}]0;pwned\u{7} denied \u{202e}txt.exe"),
    );
    let project = Project::new(&format!(
        "[plugins]\nevil = \"{}\"\n",
        github.server().url("/evil.wasm")
    ));
    let run = run(&project, &github, &["lock"], &[]).code(2);
    assert!(run.stderr.contains("403"), "{run:#?}");
    for raw in ['\u{1b}', '\u{7}', '\u{202e}'] {
        assert!(!run.stderr.contains(raw), "raw {raw:?} in {run:#?}");
    }
}

#[test]
fn a_hand_edited_github_entry_is_refused_by_every_command() {
    let github = fake();
    let project = Project::new("[plugins]\nnode = \"github://acme/plugins/node_tool@v0.13.0\"\n");
    run(&project, &github, &["lock"], &[]).success();
    let locked = project.read("warpgate.lock");
    let node_url = github.download_url("acme/plugins", "node_tool-v0.13.0", "node_tool.wasm");
    assert!(
        locked.contains(&format!("url = \"{node_url}\"")),
        "{locked}"
    );

    // Another host serving other bytes, with their checksum: reviewed as a checksum change.
    let evil = b"\0asm evil".to_vec();
    github
        .server()
        .route("/evil.wasm", Response::ok(evil.clone()));
    let evil_url = github.server().url("/evil.wasm");
    let node_sum = locked
        .lines()
        .find_map(|line| line.strip_prefix("checksum = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let old_size = locked
        .lines()
        .find(|line| line.starts_with("size = "))
        .unwrap()
        .to_string();
    let injected = locked
        .replace(&node_url, &evil_url)
        .replace(&node_sum, &Checksum::of(&evil).to_string())
        .replace(&old_size, &format!("size = {}", evil.len()));
    let credentials = locked.replace("https://", "https://me:secret@");
    let other_tag = locked
        .replace("node_tool-v0.13.0", "node_tool-v0.12.0")
        .replace(
            "github://acme/plugins/node_tool@v0.12.0",
            "github://acme/plugins/node_tool@v0.13.0",
        );
    for (lock, field) in [
        (
            &injected,
            format!(
                "`url = \"{evil_url}\"` is not the download URL of its tag and asset; expected `{node_url}`"
            ),
        ),
        (&credentials, "holds credentials".to_string()),
        (
            &other_tag,
            "`tag = \"node_tool-v0.12.0\"` is not a tag of the locator".to_string(),
        ),
    ] {
        fs_err::write(project.path("warpgate.lock"), lock).unwrap();
        for args in [
            &["lock", "--locked"][..],
            &["list"],
            &["fetch"],
            &["vendor"],
            &["verify"],
        ] {
            let run = run(&project, &github, args, &[]);
            assert_ne!(run.code, 0, "{args:?} accepted {lock}: {run:#?}");
            for needle in ["plugin `node`", field.as_str(), "hint: "] {
                assert!(
                    run.stderr.contains(needle),
                    "{args:?}: stderr lacks {needle:?}: {run:#?}"
                );
            }
        }
    }
    assert!(
        !github
            .server()
            .requests()
            .iter()
            .any(|request| request.path.contains("evil")),
        "the injected URL was requested"
    );
    assert!(!project.path("vendor").exists());
}

#[test]
fn a_download_under_the_low_speed_limit_fails_fetch_and_leaves_nothing_behind() {
    let github = fake();
    let project = Project::new(&config(&github));
    run(&project, &github, &["lock"], &[]).success();
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    // Two bytes a second, under the limit of 10 a second over a one-second window; every
    // read brings bytes, so only the low-speed check can stop it.
    github.server().route(
        "/hello-1.0.0.wasm",
        Response::ok(wasm("hello")).trickle(1, Duration::from_millis(500)),
    );
    let url = github.server().url("/hello-1.0.0.wasm");
    let hits = github.server().hits("/hello-1.0.0.wasm");
    let started = std::time::Instant::now();
    run(
        &project,
        &github,
        &["fetch"],
        &[
            ("WARPGATE_HTTP_TIMEOUT", "1"),
            ("WARPGATE_HTTP_LOW_SPEED_LIMIT", "10"),
        ],
    )
    .code(2)
    .stderr_has(&format!("the transfer from `{url}` is too slow"))
    .stderr_has("under the low-speed limit of 10 bytes per second")
    .stderr_has("hint: allow slower transfers with `WARPGATE_HTTP_LOW_SPEED_LIMIT`");
    assert!(started.elapsed() < Duration::from_secs(60));
    // Retried like any transient failure (three retries), then given up.
    assert_eq!(github.server().hits("/hello-1.0.0.wasm") - hits, 4);
    let blobs = project.cache_home().join("v1/blobs/sha256");
    assert!(!blobs.join(Checksum::of(&wasm("hello")).hex()).exists());
    assert_eq!(
        fs_err::read_dir(project.cache_home().join("v1/tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn an_api_answer_that_never_ends_fails_lock_at_the_deadline() {
    let github = fake();
    // Fast enough for the low-speed check (200 bytes a second), but ten seconds long.
    let listing = "/repos/acme/deno-plugin/releases?per_page=100";
    let mut body = vec![b' '; 2_000];
    body[0] = b'[';
    body[1_999] = b']';
    github.server().route(
        listing,
        Response::ok(body).trickle(20, Duration::from_millis(100)),
    );
    let project = Project::new("[plugins]\ndeno = \"github://acme/deno-plugin\"\n");
    let started = std::time::Instant::now();
    run(
        &project,
        &github,
        &["lock"],
        &[
            ("WARPGATE_HTTP_TIMEOUT", "1"),
            ("WARPGATE_HTTP_DEADLINE", "2"),
        ],
    )
    .code(2)
    .stderr_has("cannot resolve `github://acme/deno-plugin`")
    .stderr_has(&format!(
        "`{}` did not finish within the deadline of 2 s",
        github.server().url(listing)
    ))
    .stderr_has("hint: allow longer requests with `WARPGATE_HTTP_DEADLINE`");
    assert!(started.elapsed() < Duration::from_secs(60));
    // The deadline covers the retries, so it ends the request: one attempt.
    assert_eq!(github.server().hits(listing), 1);
    assert!(!project.path("warpgate.lock").exists());
}

#[test]
fn unusable_http_settings_are_refused_naming_the_variable() {
    let github = fake();
    // `fetch` on an empty cache, and `lock` with an entry to resolve: both need the network.
    let fetching = Project::new(&config(&github));
    run(&fetching, &github, &["lock"], &[]).success();
    fs_err::remove_dir_all(fetching.cache_home()).unwrap();
    let locking = Project::new("[plugins]\ndeno = \"github://acme/deno-plugin\"\n");
    let requests = github.server().request_count();
    for (name, value, expected) in [
        (
            "WARPGATE_HTTP_TIMEOUT",
            "abc",
            "a whole number of seconds from 1",
        ),
        (
            "WARPGATE_HTTP_TIMEOUT",
            "0",
            "a whole number of seconds from 1",
        ),
        (
            "WARPGATE_HTTP_LOW_SPEED_LIMIT",
            "-1",
            "a whole number of bytes per second from 0 (no check)",
        ),
        (
            "WARPGATE_HTTP_DEADLINE",
            "1.5",
            "a whole number of seconds from 0 (no deadline)",
        ),
        ("WARPGATE_HTTP_DEADLINE", "99999999999", "to 1000000000"),
    ] {
        for (project, command) in [(&fetching, "fetch"), (&locking, "lock")] {
            run(project, &github, &[command], &[(name, value)])
                .code(2)
                .stderr_has(&format!("invalid `{name}` value `{value}`: expected"))
                .stderr_has(expected)
                .stderr_has(&format!("hint: correct `{name}`, or unset it"));
        }
    }
    assert_eq!(github.server().request_count(), requests);
    assert!(!locking.path("warpgate.lock").exists());
}
