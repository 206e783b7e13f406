//! The `warpgate` binary on real files: lock, fetch, add/remove, list, cache, exit codes.
//! (GitHub and URL plugins are covered against the loopback server in `lock_remote`.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary project with its own cache, and a way to run `warpgate` in it.
pub struct Project {
    pub dir: tempfile::TempDir,
}

pub const JSON_TOOLS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/plugins/json_tools.wasm"
);
pub const FAILING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/plugins/failing.wasm"
);

impl Project {
    /// A project whose `warpgate.toml` holds `config`, with the json_tools and failing
    /// fixtures copied to `plugins/`.
    pub fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        std::fs::copy(JSON_TOOLS, dir.path().join("plugins/json_tools.wasm")).unwrap();
        std::fs::copy(FAILING, dir.path().join("plugins/failing.wasm")).unwrap();
        std::fs::write(dir.path().join("warpgate.toml"), config).unwrap();
        Self { dir }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap()
    }

    pub fn cache_home(&self) -> PathBuf {
        self.path("home")
    }

    /// `warpgate <args>` in the project folder with a clean environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_warpgate"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("WARPGATE_HOME", self.cache_home())
            .env("EXTISM_CACHE_CONFIG", "")
            .env("NO_COLOR", "1");
        for name in [
            "WARPGATE_OFFLINE",
            "CARGO_NET_OFFLINE",
            "WARPGATE_GITHUB_TOKEN",
            "GH_TOKEN",
            "GITHUB_TOKEN",
            "GITHUB_API_URL",
            "SSL_CERT_FILE",
            "RUST_LOG",
            "WARPGATE_VENDOR_DIR",
            "WARPGATE_COMPILE_CACHE",
            "WARPGATE_HTTP_TIMEOUT",
            "WARPGATE_HTTP_LOW_SPEED_LIMIT",
            "WARPGATE_HTTP_DEADLINE",
        ] {
            command.env_remove(name);
        }
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().unwrap())
    }
}

/// Starts every command at once (output captured) and waits for them all.
pub fn run_concurrently(commands: impl IntoIterator<Item = Command>) -> Vec<Run> {
    let children: Vec<_> = commands
        .into_iter()
        .map(|mut command| {
            command
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            command.spawn().unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| Run::from(child.wait_with_output().unwrap()))
        .collect()
}

/// A finished process.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        self
    }

    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}: {self:#?}"
        );
        self
    }
}

/// The entries (folders holding a `SEAL`) of the compiled-module cache under `home`.
fn compiled_entries(home: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(home.join("v1/compiled"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name() == "SEAL")
        .map(|entry| entry.path().parent().unwrap().to_path_buf())
        .collect()
}

/// What is left in the compiled-module cache's staging folder.
fn compiled_staging(home: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(home.join("v1/compiled/tmp"))
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default()
}

fn sha(path: &Path) -> String {
    warpgate::checksum::Checksum::of(&std::fs::read(path).unwrap()).to_string()
}

const TWO_PLUGINS: &str = "# my project\n[plugins]\njson = \"file://./plugins/json_tools.wasm\"\nfail = { locator = \"file://plugins/../plugins/failing.wasm\" }\n";

#[test]
fn lock_writes_canonical_lockfile_and_is_idempotent() {
    let project = Project::new(TWO_PLUGINS);
    project
        .run(&["lock"])
        .success()
        .stderr_has("Adding json plugins/json_tools.wasm");
    let expected = format!(
        "# This file is automatically @generated by warpgate.\n# It is not intended for manual editing.\nversion = 1\n\n[plugins.fail]\nlocator = \"file://plugins/../plugins/failing.wasm\"\npath = \"plugins/failing.wasm\"\nchecksum = \"{}\"\nsize = {}\n\n[plugins.json]\nlocator = \"file://./plugins/json_tools.wasm\"\npath = \"plugins/json_tools.wasm\"\nchecksum = \"{}\"\nsize = {}\n",
        sha(Path::new(FAILING)),
        std::fs::metadata(FAILING).unwrap().len(),
        sha(Path::new(JSON_TOOLS)),
        std::fs::metadata(JSON_TOOLS).unwrap().len(),
    );
    assert_eq!(project.read("warpgate.lock"), expected);

    // Unchanged: not rewritten (same mtime), `--locked` passes.
    let before = std::fs::metadata(project.path("warpgate.lock"))
        .unwrap()
        .modified()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    project.run(&["lock"]).success().stderr_has("is up to date");
    project.run(&["lock", "--locked"]).success();
    project.run(&["lock", "--frozen"]).success();
    let after = std::fs::metadata(project.path("warpgate.lock"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
}

#[test]
fn locked_on_stale_lock_exits_1_and_leaves_it_untouched() {
    let project = Project::new(TWO_PLUGINS);
    project.run(&["lock"]).success();
    let lock = project.read("warpgate.lock");

    // A new entry and a removed one.
    std::fs::write(
        project.path("warpgate.toml"),
        "[plugins]\njson = \"file://./plugins/json_tools.wasm\"\nnew = \"file://plugins/json_tools.wasm\"\n",
    )
    .unwrap();
    let run = project
        .run(&["lock", "--locked"])
        .code(1)
        .stderr_has("is out of date and `--locked` forbids updating it")
        .stderr_has("`fail`: locked but no longer declared in the config")
        .stderr_has("`new`: declared in the config but not in the lock")
        .stderr_has("hint: run `warpgate lock`");
    assert!(run.stdout.is_empty());
    assert_eq!(project.read("warpgate.lock"), lock);
    project
        .run(&["lock", "--frozen"])
        .code(1)
        .stderr_has("`--frozen` forbids");

    // A changed file plugin is stale too.
    std::fs::write(project.path("warpgate.toml"), TWO_PLUGINS).unwrap();
    std::fs::write(project.path("plugins/failing.wasm"), b"\0asm changed").unwrap();
    project
        .run(&["lock", "--locked"])
        .code(1)
        .stderr_has("`fail`: its file changed since it was locked");
    assert_eq!(project.read("warpgate.lock"), lock);
}

#[test]
fn locked_without_lockfile_exits_1_and_writes_nothing() {
    let project = Project::new(TWO_PLUGINS);
    project
        .run(&["lock", "--locked"])
        .code(1)
        .stderr_has("warpgate.lock` is missing and `--locked` forbids creating it");
    assert!(!project.path("warpgate.lock").exists());
}

#[test]
fn bad_config_is_a_clear_error_with_exit_2() {
    let project = Project::new("[plugins]\necho = \"ftp://example.com/x.wasm\"\n");
    project
        .run(&["lock"])
        .code(2)
        .stderr_has("warpgate.toml`: plugin `echo` (line 2, column 8): invalid plugin locator `ftp://example.com/x.wasm`");
    assert!(!project.path("warpgate.lock").exists());

    let project = Project::new("[plugins]\nmissing = \"file://./plugins/nope.wasm\"\n");
    project
        .run(&["lock"])
        .code(2)
        .stderr_has("plugin `missing`: cannot read")
        .stderr_has("nope.wasm");
    assert!(!project.path("warpgate.lock").exists());
}

#[test]
fn newer_lockfile_version_is_refused() {
    let project = Project::new(TWO_PLUGINS);
    std::fs::write(project.path("warpgate.lock"), "version = 7\n").unwrap();
    project
        .run(&["lock"])
        .code(2)
        .stderr_has("has format version 7, but this warpgate reads only version 1");
    assert_eq!(project.read("warpgate.lock"), "version = 7\n");
}

#[test]
fn config_flag_and_discovery_from_a_subfolder() {
    let project = Project::new(TWO_PLUGINS);
    std::fs::create_dir_all(project.path("deep/er")).unwrap();
    let mut command = project.command(&["lock"]);
    command.current_dir(project.path("deep/er"));
    Run::from(command.output().unwrap()).success();
    assert!(project.path("warpgate.lock").is_file());

    let other = tempfile::tempdir().unwrap();
    let config = project.path("warpgate.toml");
    let mut command = project.command(&["lock", "--locked", "--config", config.to_str().unwrap()]);
    command.current_dir(other.path());
    Run::from(command.output().unwrap()).success();
}

#[test]
fn cargo_metadata_config() {
    let project = Project::new("");
    std::fs::remove_file(project.path("warpgate.toml")).unwrap();
    std::fs::create_dir(project.path("src")).unwrap();
    std::fs::write(project.path("src/lib.rs"), "").unwrap();
    std::fs::write(
        project.path("Cargo.toml"),
        "[package]\nname = \"meta-app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.warpgate.plugins]\njson = \"file://./plugins/json_tools.wasm\"\n",
    )
    .unwrap();
    project.run(&["lock"]).success();
    assert!(project.read("warpgate.lock").contains("[plugins.json]"));
}

#[test]
fn fetch_verifies_file_plugins() {
    let project = Project::new(TWO_PLUGINS);
    project.run(&["lock"]).success();
    project
        .run(&["fetch"])
        .success()
        .stderr_has("Fetched 2 plugins");
    std::fs::write(project.path("plugins/json_tools.wasm"), b"tampered").unwrap();
    let locked = sha(std::path::Path::new(JSON_TOOLS));
    let current = warpgate::checksum::Checksum::of(b"tampered");
    // Both checksums are named, for `fetch` and for `lock --locked`.
    for args in [&["fetch"][..], &["lock", "--locked"][..]] {
        project
            .run(args)
            .code(1)
            .stderr_has("`json`: its file changed since it was locked")
            .stderr_has(&format!("Expected: `{locked}`"))
            .stderr_has(&format!("Computed: `{current}`"));
    }
}

#[test]
fn add_and_remove_keep_formatting_and_lock() {
    let config = "# top comment\n[plugins]   # trailing\n\n# about json\njson   =   \"file://./plugins/json_tools.wasm\"   # keep me\n\n[plugins.extra]\nlocator = \"file://plugins/failing.wasm\"\n";
    let project = Project::new(config);
    project.run(&["lock"]).success();
    let lock_before = project.read("warpgate.lock");

    project
        .run(&["add", "second", "file://./plugins/failing.wasm"])
        .success()
        .stderr_has("Added second");
    let edited = project.read("warpgate.toml");
    assert_eq!(
        edited,
        "# top comment\n[plugins]   # trailing\n\n# about json\njson   =   \"file://./plugins/json_tools.wasm\"   # keep me\nsecond = \"file://./plugins/failing.wasm\"\n\n[plugins.extra]\nlocator = \"file://plugins/failing.wasm\"\n"
    );
    assert!(project.read("warpgate.lock").contains("[plugins.second]"));
    project.run(&["lock", "--locked"]).success();

    project.run(&["remove", "second"]).success();
    assert_eq!(project.read("warpgate.toml"), config);
    assert_eq!(project.read("warpgate.lock"), lock_before);
}

#[test]
fn add_errors_leave_files_untouched() {
    let project = Project::new(TWO_PLUGINS);
    project.run(&["lock"]).success();
    let (config, lock) = (project.read("warpgate.toml"), project.read("warpgate.lock"));
    project
        .run(&["add", "json", "file://./plugins/json_tools.wasm"])
        .code(2)
        .stderr_has("plugin `json` is already declared");
    project
        .run(&["add", "JSON", "file://./plugins/json_tools.wasm"])
        .code(2)
        .stderr_has("plugin `JSON` differs from the declared `json` only in letter case");
    project
        .run(&["add", "../x", "file://./plugins/json_tools.wasm"])
        .code(2)
        .stderr_has("plugin id `../x`");
    project
        .run(&["add", "x", "gopher://x"])
        .code(2)
        .stderr_has("unsupported scheme `gopher://`");
    project
        .run(&["add", "x", "file://./plugins/absent.wasm"])
        .code(2)
        .stderr_has("plugin `x`: cannot read");
    project
        .run(&[
            "add",
            "x",
            "file://./plugins/json_tools.wasm",
            "--version",
            "^1",
        ])
        .code(2)
        .stderr_has("apply only to `github://` locators");
    project
        .run(&["remove", "nope"])
        .code(2)
        .stderr_has("plugin `nope` is not declared");
    project
        .run(&["add", "x", "file://./plugins/json_tools.wasm", "--locked"])
        .code(2)
        .stderr_has("`--locked` forbids changing");
    assert_eq!(project.read("warpgate.toml"), config);
    assert_eq!(project.read("warpgate.lock"), lock);
}

#[test]
fn init_refuses_to_overwrite() {
    let project = Project::new("");
    std::fs::remove_file(project.path("warpgate.toml")).unwrap();
    project.run(&["init"]).success();
    let written = project.read("warpgate.toml");
    assert!(written.contains("[plugins]"));
    #[cfg(unix)]
    {
        // The mode any new file gets (not a temp file's private 0600).
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(project.path("plain"), "").unwrap();
        let mode = |name: &str| {
            std::fs::metadata(project.path(name))
                .unwrap()
                .permissions()
                .mode()
        };
        assert_eq!(mode("warpgate.toml"), mode("plain"));
    }
    project.run(&["init"]).code(2).stderr_has("already exists");
    assert_eq!(project.read("warpgate.toml"), written);
    // The template is a valid, empty config.
    project.run(&["lock"]).success();
}

#[test]
fn list_json_shape() {
    let project = Project::new(TWO_PLUGINS);
    project.run(&["lock"]).success();
    let run = project.run(&["list", "--json"]).success();
    let rows: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["id"], "json");
    assert_eq!(rows[1]["locator"], "file://./plugins/json_tools.wasm");
    assert_eq!(rows[1]["checksum"], sha(Path::new(JSON_TOOLS)));
    assert_eq!(
        rows[1]["size"],
        std::fs::metadata(JSON_TOOLS).unwrap().len()
    );
    assert_eq!(rows[1]["state"], "local file");
    assert!(rows[1]["tag"].is_null());
}

#[test]
fn lock_json_shape() {
    let project = Project::new(TWO_PLUGINS);
    let run = project.run(&["lock", "--json"]).success();
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(value["written"], true);
    let json = &value["plugins"]["json"];
    assert_eq!(json["path"], "plugins/json_tools.wasm");
    assert_eq!(json["checksum"], sha(Path::new(JSON_TOOLS)));
    assert!(json["url"].is_null());
}

#[test]
fn help_for_every_command() {
    let project = Project::new("");
    for command in [
        "lock",
        "fetch",
        "init",
        "add",
        "remove",
        "update",
        "outdated",
        "list",
        "vendor",
        "verify",
        "call",
        "cache",
        "completions",
    ] {
        let run = project.run(&[command, "--help"]).success();
        assert!(
            run.stdout.contains("Usage: warpgate"),
            "{command}: {run:#?}"
        );
    }
    project.run(&["no-such-command"]).code(2);
    let run = project.run(&["completions", "bash"]).success();
    assert!(run.stdout.contains("warpgate"));
}

#[test]
fn add_and_remove_in_cargo_metadata() {
    let project = Project::new("");
    std::fs::remove_file(project.path("warpgate.toml")).unwrap();
    std::fs::create_dir(project.path("src")).unwrap();
    std::fs::write(project.path("src/lib.rs"), "").unwrap();
    let manifest = "[package]\nname = \"meta-app\" # the app\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n";
    std::fs::write(project.path("Cargo.toml"), manifest).unwrap();
    // No plugins table yet: there is nothing to discover.
    project
        .run(&["add", "json", "file://./plugins/json_tools.wasm"])
        .code(2)
        .stderr_has("warpgate init");
    std::fs::write(
        project.path("Cargo.toml"),
        format!("{manifest}\n[package.metadata.warpgate.plugins]\n"),
    )
    .unwrap();
    project
        .run(&["add", "json", "file://./plugins/json_tools.wasm"])
        .success();
    assert_eq!(
        project.read("Cargo.toml"),
        format!(
            "{manifest}\n[package.metadata.warpgate.plugins]\njson = \"file://./plugins/json_tools.wasm\"\n"
        )
    );
    project.run(&["lock", "--locked"]).success();
    project.run(&["remove", "json"]).success();
    assert_eq!(
        project.read("Cargo.toml"),
        format!("{manifest}\n[package.metadata.warpgate.plugins]\n")
    );
}

#[test]
fn list_human_output() {
    let project = Project::new(TWO_PLUGINS);
    let unlocked = project.run(&["list"]).success();
    assert_eq!(
        unlocked.stdout,
        "fail             file://plugins/../plugins/failing.wasm           -                    -                     -  not locked\n\
         json             file://./plugins/json_tools.wasm                 -                    -                     -  not locked\n"
    );
    project.run(&["lock"]).success();
    let locked = project.run(&["list"]).success();
    let json_sum = sha(Path::new(JSON_TOOLS));
    let json_size = std::fs::metadata(JSON_TOOLS).unwrap().len();
    let json_line = format!(
        "json             file://./plugins/json_tools.wasm                 -                    {}     {json_size:>6}  local file",
        &json_sum["sha256:".len().."sha256:".len() + 12]
    );
    assert!(
        locked.stdout.lines().any(|line| line == json_line),
        "{locked:#?}\nwanted: {json_line}"
    );
}

#[test]
fn concurrent_adds_lose_nothing() {
    let project = Project::new("[plugins]\n");
    for index in 0..5 {
        std::fs::copy(JSON_TOOLS, project.path(&format!("plugins/p{index}.wasm"))).unwrap();
    }
    let runs = run_concurrently((0..5).map(|index| {
        let locator = format!("file://./plugins/p{index}.wasm");
        project.command(&["add", &format!("p{index}"), &locator])
    }));
    for run in runs {
        run.success();
    }
    let config = project.read("warpgate.toml");
    let lock = project.read("warpgate.lock");
    for index in 0..5 {
        assert!(config.contains(&format!("p{index} = ")), "{config}");
        assert!(lock.contains(&format!("[plugins.p{index}]")), "{lock}");
    }
    project.run(&["lock", "--locked"]).success();
}

#[cfg(unix)]
#[test]
fn edits_keep_file_modes() {
    use std::os::unix::fs::PermissionsExt;
    let project = Project::new("[plugins]\n");
    std::fs::set_permissions(
        project.path("warpgate.toml"),
        std::fs::Permissions::from_mode(0o664),
    )
    .unwrap();
    project
        .run(&["add", "json", "file://./plugins/json_tools.wasm"])
        .success();
    let mode = |name: &str| {
        std::fs::metadata(project.path(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("warpgate.toml"), 0o664);
    assert_eq!(mode("warpgate.lock"), 0o644);
}

#[test]
fn vendor_then_verify() {
    let project = Project::new(TWO_PLUGINS);
    project.run(&["lock"]).success();
    project
        .run(&["verify"])
        .success()
        .stderr_has("Verified 2 plugins");
    project
        .run(&["vendor"])
        .success()
        .stderr_has("Vendored 2 plugins");
    let vendored = project.path("vendor/warpgate/json.wasm");
    assert_eq!(
        std::fs::read(&vendored).unwrap(),
        std::fs::read(JSON_TOOLS).unwrap()
    );
    // Twice: nothing changes.
    project
        .run(&["vendor"])
        .success()
        .stderr_has("Unchanged 2 plugins");
    let listed = project.run(&["list", "--json"]).success();
    let rows: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|row| row["state"] == "vendored")
    );

    let report = project.run(&["verify", "--json"]).success();
    let value: serde_json::Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(value["problems"].as_array().unwrap().len(), 0);
    assert_eq!(value["plugins"].as_array().unwrap().len(), 2);

    // A corrupted vendored file: exit 1, the plugin and the fix named, nothing rewritten.
    std::fs::write(&vendored, b"\0asm corrupted").unwrap();
    let failed = project
        .run(&["verify"])
        .code(1)
        .stderr_has("`json`: the vendored file")
        .stderr_has("does not match the lock")
        .stderr_has(&format!(
            "Computed: `{}`",
            warpgate::checksum::Checksum::of(b"\0asm corrupted")
        ))
        .stderr_has("hint: run `warpgate vendor`");
    drop(failed);
    assert_eq!(std::fs::read(&vendored).unwrap(), b"\0asm corrupted");
    let report = project.run(&["verify", "--json"]).code(1);
    let value: serde_json::Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(value["problems"][0]["kind"], "vendored-corrupt");
    // `vendor` repairs it.
    project.run(&["vendor"]).success();
    project.run(&["verify"]).success();
}

#[test]
fn vendor_refuses_a_stale_lock() {
    let project = Project::new(TWO_PLUGINS);
    project.run(&["lock"]).success();
    std::fs::write(project.path("plugins/failing.wasm"), b"\0asm changed").unwrap();
    project
        .run(&["vendor"])
        .code(1)
        .stderr_has("`fail`: its file changed since it was locked")
        .stderr_has("hint: run `warpgate lock`");
    assert!(!project.path("vendor").exists());
    project
        .run(&["verify"])
        .code(1)
        .stderr_has("`fail`: its file changed");
}

#[test]
fn add_offline_names_the_cause_and_changes_nothing() {
    let project = Project::new(TWO_PLUGINS);
    project.run(&["lock"]).success();
    let (config, lock) = (project.read("warpgate.toml"), project.read("warpgate.lock"));
    // No socket is opened: the ports below are never listened on.
    let mut command = project.command(&["add", "u", "https://127.0.0.1:9/x.wasm"]);
    command.env("WARPGATE_OFFLINE", "1");
    Run::from(command.output().unwrap())
        .code(2)
        .stderr_has("network access is disabled by `WARPGATE_OFFLINE=1`, but plugin `u` (`https://127.0.0.1:9/x.wasm`)")
        .stderr_has("hint: run `warpgate add` while online");
    let mut command = project.command(&["add", "g", "github://acme/x"]);
    command.env("CARGO_NET_OFFLINE", "true");
    Run::from(command.output().unwrap())
        .code(2)
        .stderr_has("disabled by `CARGO_NET_OFFLINE=true`, but plugin `g` (`github://acme/x`)")
        .stderr_has("hint: run `warpgate add` while online");
    project
        .run(&["add", "g", "github://acme/x", "--offline"])
        .code(2)
        .stderr_has("disabled by `--offline`");
    assert_eq!(project.read("warpgate.toml"), config);
    assert_eq!(project.read("warpgate.lock"), lock);
    // A local file needs no network.
    project
        .run(&["add", "x", "file://./plugins/json_tools.wasm", "--offline"])
        .success();
}

#[cfg(unix)]
#[test]
fn add_puts_the_config_back_when_the_lock_cannot_be_written() {
    let project = Project::new(TWO_PLUGINS);
    let config = project.read("warpgate.toml");
    // A dangling symlink reads as "no lockfile" but cannot be written through.
    std::os::unix::fs::symlink(
        project.path("missing/folder/warpgate.lock"),
        project.path("warpgate.lock"),
    )
    .unwrap();
    project
        .run(&["add", "x", "file://./plugins/json_tools.wasm"])
        .code(2)
        .stderr_has("warpgate.lock`");
    assert_eq!(project.read("warpgate.toml"), config);
    assert!(!project.path("missing").exists());
    let leftovers: Vec<_> = std::fs::read_dir(project.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn remove_of_the_last_plugin_leaves_an_empty_table_and_lock() {
    let project =
        Project::new("[plugins]\njson = \"file://./plugins/json_tools.wasm\" # only one\n");
    project.run(&["lock"]).success();
    project.run(&["remove", "json"]).success();
    assert_eq!(project.read("warpgate.toml"), "[plugins]\n");
    assert_eq!(
        project.read("warpgate.lock"),
        "# This file is automatically @generated by warpgate.\n# It is not intended for manual editing.\nversion = 1\n"
    );
    project.run(&["lock", "--locked"]).success();
    let listed = project.run(&["list", "--json"]).success();
    assert_eq!(listed.stdout.trim(), "[]");
    project
        .run(&["remove", "json"])
        .code(2)
        .stderr_has("plugin `json` is not declared")
        .stderr_has("hint: run `warpgate list`");
}

#[test]
fn locked_flags_refuse_updates_instead_of_claiming_up_to_date() {
    let project = Project::new(TWO_PLUGINS);
    project.run(&["lock"]).success();
    let lock = project.read("warpgate.lock");
    for flag in ["--locked", "--frozen"] {
        let run = project
            .run(&["update", flag])
            .code(2)
            .stderr_has(&format!("`{flag}` forbids changing `warpgate.lock`"))
            .stderr_has("--dry-run");
        assert!(!run.stderr.contains("up to date"), "{run:#?}");
        project
            .run(&["lock", "--update", flag])
            .code(2)
            .stderr_has(&format!(
                "`--update` changes `warpgate.lock`, which `{flag}` forbids"
            ));
        project
            .run(&["lock", "--update", "json", flag])
            .code(2)
            .stderr_has("`--update`");
    }
    // A dry run writes nothing, so it is allowed.
    project.run(&["update", "--locked", "--dry-run"]).success();
    assert_eq!(project.read("warpgate.lock"), lock);
    project
        .run(&["lock", "--update", "nope"])
        .code(2)
        .stderr_has("cannot update `nope`")
        .stderr_has("hint: run `warpgate list`");
}

#[test]
fn quiet_silences_status_but_not_errors_or_data() {
    let project = Project::new(TWO_PLUGINS);
    let run = project.run(&["-q", "lock", "--json"]).success();
    assert_eq!(run.stderr, "");
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(value["written"], true);
    let run = project.run(&["fetch", "--quiet"]).success();
    assert_eq!(run.stderr, "");
    let run = project.run(&["list", "-q"]).success();
    assert_eq!(run.stdout.lines().count(), 2);
    project
        .run(&["-q", "add", "json", "file://./plugins/json_tools.wasm"])
        .code(2)
        .stderr_has("error: plugin `json` is already declared")
        .stderr_has("hint: ");
    // Usage errors are exit 2 too.
    project.run(&["-q", "-v", "list"]).code(2);
    project.run(&["add", "only-an-id"]).code(2);
}

#[test]
fn cache_prune_without_a_lockfile_deletes_nothing_and_says_how() {
    let project = Project::new(TWO_PLUGINS);
    // A blob in the cache that only `other`'s lock references.
    std::fs::create_dir(project.path("other")).unwrap();
    std::fs::write(
        project.path("other/warpgate.toml"),
        "[plugins]\njson = \"file://../plugins/json_tools.wasm\"\n",
    )
    .unwrap();
    let blob = project
        .cache_home()
        .join("v1/blobs/sha256")
        .join(&sha(Path::new(JSON_TOOLS))["sha256:".len()..]);
    warpgate::cache::Cache::new(project.cache_home())
        .ensure_layout()
        .unwrap();
    std::fs::copy(JSON_TOOLS, &blob).unwrap();

    // This project has no lockfile yet.
    project
        .run(&["cache", "prune"])
        .code(2)
        .stderr_has("warpgate.lock` does not exist, so it cannot say which blobs to keep")
        .stderr_has(
            "hint: run `warpgate lock` first, or name existing lockfiles with `--lockfile PATH`",
        );
    assert!(blob.is_file());

    // Outside any project: the hint is not `warpgate init`.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut command = project.command(&["cache", "prune"]);
    command.current_dir(elsewhere.path());
    let run = Run::from(command.output().unwrap())
        .code(2)
        .stderr_has("no project found")
        .stderr_has("`--lockfile PATH`");
    assert!(!run.stderr.contains("warpgate init"), "{run:#?}");
    assert!(blob.is_file());

    // With a lockfile that references it, it is kept.
    let mut command = project.command(&["lock"]);
    command.current_dir(project.path("other"));
    Run::from(command.output().unwrap()).success();
    let run = project
        .run(&["cache", "prune", "--lockfile", "other/warpgate.lock"])
        .success();
    assert_eq!(run.stdout.trim(), "0 files, 0 bytes freed");
    assert!(blob.is_file());
}

/// Colour only on a terminal, and never with a non-empty `NO_COLOR`. `script` (util-linux)
/// gives the process a pseudo-terminal.
#[cfg(target_os = "linux")]
#[test]
fn colour_on_a_terminal_unless_no_color() {
    let project = Project::new(TWO_PLUGINS);
    let on_terminal = |no_color: &str| {
        let line = format!("{} remove nope", env!("CARGO_BIN_EXE_warpgate"));
        let mut script = Command::new("script");
        script
            .args(["-qec", &line, "/dev/null"])
            .current_dir(project.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("WARPGATE_HOME", project.cache_home())
            .env("NO_COLOR", no_color);
        Run::from(script.output().expect("`script` from util-linux"))
    };
    let coloured = on_terminal("").code(2);
    assert!(
        coloured
            .stdout
            .contains("\x1b[1;31merror\x1b[0m: plugin `nope`"),
        "{coloured:#?}"
    );
    let plain = on_terminal("1").code(2);
    assert!(plain.stdout.contains("error: plugin `nope`"), "{plain:#?}");
    assert!(!plain.stdout.contains('\x1b'), "{plain:#?}");
    // Off a terminal there is no colour either.
    let mut piped = project.command(&["remove", "nope"]);
    piped.env_remove("NO_COLOR");
    let piped = Run::from(piped.output().unwrap()).code(2);
    assert!(!piped.stderr.contains('\x1b'), "{piped:#?}");
}

/// Processes that start at once all compile, one entry lands; later processes load it; `cache
/// clean` removes it; `WARPGATE_COMPILE_CACHE=off` writes none.
#[test]
fn call_compiles_once_per_machine() {
    let project = Project::new("[plugins]\njson = \"file://./plugins/json_tools.wasm\"\n");
    project.run(&["lock"]).success();
    let home = project.cache_home();
    let runs = run_concurrently((0..4).map(|index| {
        let input = format!("{{\"left\": {index}, \"right\": 10}}");
        project.command(&["call", "json", "add", &input])
    }));
    for (index, run) in runs.into_iter().enumerate() {
        assert_eq!(run.success().stdout, format!("{{\"sum\":{}}}", index + 10));
    }
    assert_eq!(compiled_entries(&home).len(), 1);
    assert!(compiled_staging(&home).is_empty());

    project
        .run(&["-vv", "call", "json", "add", "{\"left\": 1, \"right\": 2}"])
        .success()
        .stderr_has("loading a compiled module");

    project.run(&["cache", "clean"]).success();
    assert!(!home.join("v1/compiled").exists());
    let run = project
        .command(&["-vv", "call", "json", "add", "{\"left\": 1, \"right\": 2}"])
        .env("WARPGATE_COMPILE_CACHE", "off")
        .output()
        .unwrap();
    let run = Run::from(run).success();
    assert!(!run.stderr.contains("compiled module"), "{run:#?}");
    assert!(compiled_entries(&home).is_empty());
}

/// Runs `script` with bash in a private mount namespace (`unshare -m`, as root, which CI is),
/// so that its mounts end with it; `$WARPGATE` is the binary, `$COMPILED` the project's
/// compiled-module cache folder (created first).
fn run_with_mounts(project: &Project, script: &str) -> Run {
    warpgate::cache::Cache::new(project.cache_home())
        .ensure_layout()
        .unwrap();
    let compiled = project.cache_home().join("v1/compiled");
    std::fs::create_dir_all(&compiled).unwrap();
    let template = project.command(&[]);
    let mut command = Command::new("unshare");
    for (name, value) in template.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command
        .args(["-m", "bash", "-c", &format!("set -e\n{script}")])
        .current_dir(project.dir.path())
        .env("WARPGATE", template.get_program())
        .env("COMPILED", &compiled);
    Run::from(command.output().unwrap())
}

/// A read-only compiled-module cache (a read-only bind mount: root cannot write it either)
/// still serves what it holds, and a plugin it lacks is compiled in memory.
#[test]
fn a_read_only_compiled_cache_is_used_and_never_required() {
    let project = Project::new("[plugins]\njson = \"file://./plugins/json_tools.wasm\"\n");
    project.run(&["lock"]).success();
    let read_only = r#"mount --bind "$COMPILED" "$COMPILED"
mount -o remount,bind,ro "$COMPILED"
"$WARPGATE" -vv call json add '{"left": 2, "right": 3}'"#;

    let run = run_with_mounts(&project, read_only).success();
    assert_eq!(run.stdout, "{\"sum\":5}");
    assert!(compiled_entries(&project.cache_home()).is_empty());

    project
        .run(&["call", "json", "add", "{\"left\": 1, \"right\": 1}"])
        .success();
    let run = run_with_mounts(&project, read_only)
        .success()
        .stderr_has("loading a compiled module");
    assert_eq!(run.stdout, "{\"sum\":5}");
}

/// A disk that fills up while compiled code is written leaves no entry and no staging folder,
/// and the call still succeeds; the next run with room stores the entry. The full disk is a
/// 64 KiB tmpfs over the compiled-module cache.
#[test]
fn a_full_disk_leaves_no_compiled_entry_behind() {
    let project = Project::new("[plugins]\njson = \"file://./plugins/json_tools.wasm\"\n");
    project.run(&["lock"]).success();
    let home = project.cache_home();
    let script = r#"mount -t tmpfs -o size=64k tmpfs "$COMPILED"
"$WARPGATE" call json add '{"left": 2, "right": 2}'
echo
cd "$COMPILED" && find . -mindepth 1 | sort"#;
    let run = run_with_mounts(&project, script).success();
    let mut lines = run.stdout.lines();
    assert_eq!(lines.next(), Some("{\"sum\":4}"), "{run:#?}");
    let left: Vec<&str> = lines.collect();
    // Only the mark and the (empty) staging folder may remain.
    assert_eq!(left, ["./CACHEDIR.TAG", "./tmp"], "{run:#?}");

    project
        .run(&["call", "json", "add", "{\"left\": 2, \"right\": 2}"])
        .success();
    assert_eq!(compiled_entries(&home).len(), 1);
}

/// Outside a Cargo project, discovery stops at the user's home: a `warpgate.toml` above it is
/// never picked up.
#[test]
fn discovery_stops_at_home() {
    let project = Project::new("[plugins]\njson = \"file://./plugins/json_tools.wasm\"\n");
    let home = project.path("home-dir");
    let work = home.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut command = project.command(&["list"]);
    command.current_dir(&work).env("HOME", &home);
    Run::from(command.output().unwrap())
        .code(2)
        .stderr_has("no `warpgate.toml` found");
    // Without that home, the project's config above is found.
    let mut command = project.command(&["list"]);
    command
        .current_dir(&work)
        .env("HOME", project.path("elsewhere"));
    Run::from(command.output().unwrap()).success();
}
