//! `warpgate-build` end to end: real `cargo build` processes on temporary application crates
//! whose `build.rs` calls `warpgate_build::vendor_or_exit()`.
//!
//! The apps depend on `warpgate` without default features (no Extism, no wasmtime) and build
//! `--offline` into the workspace's own target directory with a copy of the workspace's
//! `Cargo.lock`, so their dependencies are the workspace's already-built ones: after the
//! first app, each build compiles only the app itself. Plugins are `https://` URLs on
//! `.invalid` hosts (never reachable), served from a pre-filled cache or vendor directory,
//! except in the one test that downloads from the loopback HTTPS server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use warpgate::cache::Cache;
use warpgate::checksum::Checksum;
use warpgate::id::Id;
use warpgate::locator::PluginLocator;
use warpgate::lockfile::{LockedPlugin, Lockfile};

use crate::support::TestServer;
use crate::support::project::Run;

const WORKSPACE: &str = env!("CARGO_MANIFEST_DIR");

/// The workspace's target directory (the parent of the integration tests' temp dir).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A plugin of a test app: its id, its bytes and the URL the lock pins.
pub(crate) struct Plugin {
    id: &'static str,
    bytes: Vec<u8>,
    url: String,
}

impl Plugin {
    fn new(id: &'static str) -> Self {
        Self {
            id,
            bytes: format!("\0asm fake plugin {id}").into_bytes(),
            url: format!("https://plugins.example.invalid/{id}.wasm"),
        }
    }

    fn checksum(&self) -> Checksum {
        Checksum::of(&self.bytes)
    }
}

/// A temporary application crate with its own cache folder.
pub(crate) struct App {
    dir: tempfile::TempDir,
    /// The crate's folder: `dir` itself, or a folder in it.
    root: PathBuf,
    name: String,
}

impl App {
    /// An app named `name` (unique per test: the binary lands in the shared target dir) that
    /// declares and locks `plugins`.
    pub(crate) fn new(name: &str, plugins: &[Plugin]) -> Self {
        Self::new_in(name, plugins, "")
    }

    /// [`App::new`], with the crate in `folder` of the temp dir.
    fn new_in(name: &str, plugins: &[Plugin], folder: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = &dir.path().join(folder);
        fs_err::create_dir_all(root.join("src")).unwrap();
        fs_err::write(
            root.join("Cargo.toml"),
            format!(
                r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
warpgate = {{ path = "{WORKSPACE}", default-features = false }}

[build-dependencies]
warpgate-build = {{ path = "{WORKSPACE}/build-support" }}

[workspace]

# As in the workspace, so the shared build of sha2 is reused.
[profile.dev.package.sha2]
opt-level = 3
"#
            ),
        )
        .unwrap();
        fs_err::copy(
            Path::new(WORKSPACE).join("Cargo.lock"),
            root.join("Cargo.lock"),
        )
        .unwrap();
        fs_err::write(
            root.join("build.rs"),
            "fn main() {\n    warpgate_build::vendor_or_exit();\n}\n",
        )
        .unwrap();
        fs_err::write(
            root.join("src/main.rs"),
            r#"// The `static` form of the macro (the example app uses the expression form).
warpgate::include_plugins!(static PLUGINS);

fn main() {
    for plugin in &PLUGINS {
        plugin.verify().unwrap();
        println!("{} {} {}", plugin.id, plugin.checksum, plugin.bytes.len());
    }
}
"#,
        )
        .unwrap();
        let app = Self {
            root: root.clone(),
            dir,
            name: name.to_string(),
        };
        app.declare(plugins);
        app.lock(plugins);
        app
    }

    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    pub(crate) fn home(&self) -> PathBuf {
        self.path("home")
    }

    /// Writes `warpgate.toml` declaring `plugins`.
    fn declare(&self, plugins: &[Plugin]) {
        let mut config = String::from("[plugins]\n");
        for plugin in plugins {
            config.push_str(&format!("{} = \"{}\"\n", plugin.id, plugin.url));
        }
        fs_err::write(self.path("warpgate.toml"), config).unwrap();
    }

    /// Writes `warpgate.lock` pinning `plugins`.
    fn lock(&self, plugins: &[Plugin]) {
        let mut lockfile = Lockfile::default();
        for plugin in plugins {
            lockfile.plugins.insert(
                Id::new(plugin.id).unwrap(),
                LockedPlugin {
                    locator: plugin.url.parse::<PluginLocator>().unwrap(),
                    requirement: None,
                    registry: None,
                    repository: None,
                    digest: None,
                    tag: None,
                    asset: None,
                    url: Some(plugin.url.clone()),
                    path: None,
                    checksum: plugin.checksum(),
                    size: plugin.bytes.len() as u64,
                },
            );
        }
        fs_err::write(self.path("warpgate.lock"), lockfile.to_canonical_string()).unwrap();
    }

    /// Puts `plugins` into the app's cache.
    fn cache(&self, plugins: &[Plugin]) {
        let cache = Cache::new(self.home());
        for plugin in plugins {
            let source = self.path(&format!("{}.source", plugin.id));
            fs_err::write(&source, &plugin.bytes).unwrap();
            cache
                .insert_file(&source, Some(&plugin.checksum()))
                .unwrap();
            fs_err::remove_file(source).unwrap();
        }
    }

    /// `cargo build -v --offline` with the app's cache and network access disabled for the
    /// build script (unless `online`).
    pub(crate) fn cargo_build(
        &self,
        online: bool,
        extra_env: &[(&str, &std::ffi::OsStr)],
    ) -> Build {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args([
                "build",
                "-v",
                "--offline",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(&self.root)
            .env("CARGO_TARGET_DIR", target_dir())
            .env("WARPGATE_HOME", self.home());
        for name in [
            "WARPGATE_OFFLINE",
            "CARGO_NET_OFFLINE",
            "WARPGATE_VENDOR_DIR",
            "DOCS_RS",
            "SSL_CERT_FILE",
            "WARPGATE_HTTP_TIMEOUT",
            "WARPGATE_HTTP_LOW_SPEED_LIMIT",
            "WARPGATE_HTTP_DEADLINE",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
        ] {
            command.env_remove(name);
        }
        if !online {
            command.env("WARPGATE_OFFLINE", "1");
        }
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let run = Run::from(command.output().unwrap());
        Build {
            run,
            name: self.name.clone(),
        }
    }

    /// Runs the built binary; returns its stdout.
    pub(crate) fn run_binary(&self) -> String {
        let output = Command::new(target_dir().join("debug").join(&self.name))
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    }
}

/// A finished `cargo build`.
pub(crate) struct Build {
    run: Run,
    name: String,
}

impl Build {
    #[track_caller]
    pub(crate) fn success(self) -> Self {
        assert_eq!(self.run.code, 0, "cargo build failed:\n{}", self.run.stderr);
        self
    }

    #[track_caller]
    fn failure(self) -> Self {
        assert_ne!(
            self.run.code, 0,
            "cargo build succeeded:\n{}",
            self.run.stderr
        );
        self
    }

    /// The app's `OUT_DIR`, from the `build-script-executed` message.
    #[track_caller]
    fn out_dir(&self) -> PathBuf {
        self.run
            .stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| message["reason"] == "build-script-executed")
            .find(|message| {
                message["package_id"]
                    .as_str()
                    .is_some_and(|id| id.contains(&format!("#{}@", self.name)))
            })
            .map(|message| PathBuf::from(message["out_dir"].as_str().unwrap()))
            .unwrap_or_else(|| panic!("no build-script-executed message:\n{}", self.run.stdout))
    }

    /// Whether cargo ran the app's build script (rather than finding it fresh).
    fn ran_build_script(&self) -> bool {
        self.run.stderr.lines().any(|line| {
            line.trim_start().starts_with("Running")
                && line.contains(&format!("build/{}-", self.name))
                && line.contains("build-script-build")
        })
    }
}

/// Every `OUT_DIR` of packages named `name` in the shared target dir (used when the build
/// failed and cargo printed no message).
fn out_dirs(name: &str) -> Vec<PathBuf> {
    let build = target_dir().join("debug").join("build");
    fs_err::read_dir(build)
        .unwrap()
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{name}-"))
        })
        .map(|entry| entry.path().join("out"))
        .filter(|out| out.is_dir())
        .collect()
}

/// Every file under `dir`, relative path to bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            let relative = entry
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (relative, fs_err::read(entry.path()).unwrap())
        })
        .collect()
}

fn expected_stdout(plugins: &[Plugin]) -> String {
    let mut sorted: Vec<&Plugin> = plugins.iter().collect();
    sorted.sort_by_key(|plugin| plugin.id);
    sorted
        .iter()
        .map(|plugin| {
            format!(
                "{} {} {}\n",
                plugin.id,
                plugin.checksum(),
                plugin.bytes.len()
            )
        })
        .collect()
}

#[test]
fn offline_build_from_the_cache() {
    let plugins = [Plugin::new("hello"), Plugin::new("bye")];
    let app = App::new("wg-it-build-cache", &plugins);
    app.cache(&plugins);

    let build = app.cargo_build(false, &[]).success();
    assert_eq!(app.run_binary(), expected_stdout(&plugins));

    let out = build.out_dir();
    let files = tree(&out);
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [
            "plugins/bye.wasm",
            "plugins/hello.wasm",
            "warpgate_plugins.rs"
        ]
    );
    assert_eq!(files["plugins/hello.wasm"], plugins[0].bytes);
    let module = String::from_utf8(files["warpgate_plugins.rs"].clone()).unwrap();
    assert!(module.contains(r#"include_bytes!(concat!(env!("OUT_DIR"), "/plugins/hello.wasm"))"#));
    assert!(
        !module.contains(&*app.dir.path().to_string_lossy()),
        "{module}"
    );
    assert!(
        !module.contains(&*target_dir().to_string_lossy()),
        "{module}"
    );
}

#[test]
fn offline_build_from_the_vendor_directory_with_an_empty_cache() {
    let plugins = [Plugin::new("hello"), Plugin::new("bye")];
    let app = App::new("wg-it-build-vendor", &plugins);

    // `warpgate vendor`'s library operation, fed from another (throw-away) cache.
    let filler = tempfile::tempdir().unwrap();
    let other_cache = Cache::new(filler.path().join("home"));
    for plugin in &plugins {
        let source = filler.path().join(plugin.id);
        fs_err::write(&source, &plugin.bytes).unwrap();
        other_cache.insert_file(&source, None).unwrap();
    }
    let config = warpgate::config::Config::discover(app.dir.path()).unwrap();
    let lockfile = Lockfile::read(&config.lockfile_path()).unwrap().unwrap();
    let http = warpgate::http::HttpClient::new(warpgate::http::HttpOptions {
        offline: Some("the test".into()),
        ..Default::default()
    })
    .unwrap();
    let fetcher = warpgate::fetch::Fetcher::new(other_cache, http);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let vendor_dir = app.path("vendor/warpgate");
    runtime
        .block_on(warpgate::vendor::vendor(
            &config,
            &lockfile,
            &vendor_dir,
            &fetcher,
        ))
        .unwrap();

    let build = app.cargo_build(false, &[]).success();
    assert_eq!(app.run_binary(), expected_stdout(&plugins));
    assert!(!app.home().exists(), "the cache was touched");
    // The vendored files are watched.
    let script_output =
        fs_err::read_to_string(build.out_dir().parent().unwrap().join("output")).unwrap();
    assert!(
        script_output.contains(&format!(
            "cargo::rerun-if-changed={}",
            vendor_dir.join("hello.wasm").display()
        )),
        "{script_output}"
    );
}

#[test]
fn corrupt_vendored_file_fails_naming_the_plugin() {
    let plugins = [Plugin::new("hello")];
    let app = App::new("wg-it-build-corrupt", &plugins);
    // The cache holds the right bytes: a bad vendored copy must fail, not fall through.
    app.cache(&plugins);
    fs_err::create_dir_all(app.path("vendor/warpgate")).unwrap();
    fs_err::write(app.path("vendor/warpgate/hello.wasm"), b"tampered").unwrap();

    let build = app.cargo_build(false, &[]).failure();
    let stderr = &build.run.stderr;
    for needle in [
        "checksum mismatch for plugin `hello` from the vendor directory",
        "vendor/warpgate/hello.wasm`",
        &format!("Expected: `{}`", plugins[0].checksum()),
        &format!("Computed: `{}`", Checksum::of(b"tampered")),
        "hint: the vendored copy was modified",
        "`warpgate vendor`",
    ] {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    for out in out_dirs(&app.name) {
        let file = out.join("plugins/hello.wasm");
        assert!(
            !file.exists() || fs_err::read(&file).unwrap() == plugins[0].bytes,
            "`{}` holds unverified bytes",
            file.display()
        );
    }
}

#[test]
fn config_changed_without_relocking_fails_with_the_hint() {
    let plugins = [Plugin::new("hello")];
    let app = App::new("wg-it-build-stale", &plugins);
    app.cache(&plugins);
    app.declare(&[Plugin::new("hello"), Plugin::new("added")]);

    let build = app.cargo_build(false, &[]).failure();
    let stderr = &build.run.stderr;
    for needle in [
        "is out of date",
        "`added`: declared in the config but not in the lock",
        "hint: run `warpgate lock`",
    ] {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn offline_and_not_cached_fails_with_the_fix() {
    let plugins = [Plugin::new("hello")];
    let app = App::new("wg-it-build-offline", &plugins);

    let build = app.cargo_build(false, &[]).failure();
    let stderr = &build.run.stderr;
    for needle in [
        "network access is disabled by `WARPGATE_OFFLINE=1`, but plugin `hello` is not in the cache",
        "hint: run `warpgate fetch`",
    ] {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
}

#[test]
fn second_build_does_not_rerun_the_build_script_but_a_changed_lock_does() {
    let plugins = [Plugin::new("hello")];
    let app = App::new("wg-it-build-fresh", &plugins);
    app.cache(&plugins);

    let first = app.cargo_build(false, &[]).success();
    assert!(first.ran_build_script(), "{}", first.run.stderr);
    let module = first.out_dir().join("warpgate_plugins.rs");

    let second = app.cargo_build(false, &[]).success();
    assert!(!second.ran_build_script(), "{}", second.run.stderr);
    assert!(
        second.run.stderr.contains(&format!("Fresh {}", app.name)),
        "{}",
        second.run.stderr
    );

    // A changed lock re-runs the script; a new plugin is embedded.
    let more = [Plugin::new("hello"), Plugin::new("more")];
    app.cache(&more);
    app.declare(&more);
    app.lock(&more);
    let third = app.cargo_build(false, &[]).success();
    assert!(third.ran_build_script(), "{}", third.run.stderr);
    assert_eq!(app.run_binary(), expected_stdout(&more));

    // Rewriting the lock with the same bytes re-runs the script, which rewrites nothing.
    let module_mtime = fs_err::metadata(&module).unwrap().modified().unwrap();
    let hello_mtime = fs_err::metadata(third.out_dir().join("plugins/hello.wasm"))
        .unwrap()
        .modified()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let lock = fs_err::read(app.path("warpgate.lock")).unwrap();
    fs_err::write(app.path("warpgate.lock"), lock).unwrap();
    let fourth = app.cargo_build(false, &[]).success();
    assert!(fourth.ran_build_script(), "{}", fourth.run.stderr);
    assert_eq!(
        fs_err::metadata(&module).unwrap().modified().unwrap(),
        module_mtime
    );
    assert_eq!(
        fs_err::metadata(fourth.out_dir().join("plugins/hello.wasm"))
            .unwrap()
            .modified()
            .unwrap(),
        hello_mtime
    );
}

#[test]
fn two_checkouts_at_different_paths_produce_identical_output() {
    let plugins = [Plugin::new("hello"), Plugin::new("bye")];
    // Cargo derives a path package's `OUT_DIR` from its path relative to the workspace root,
    // so two single-package checkouts of one name would share an `OUT_DIR` in one target dir.
    // Different names keep them apart; nothing the build script writes depends on the name.
    let first = App::new("wg-it-build-checkout-a", &plugins);
    first.cache(&plugins);
    let second = App::new("wg-it-build-checkout-b", &plugins);
    second.cache(&plugins);
    assert_ne!(first.dir.path(), second.dir.path());

    let first_out = first.cargo_build(false, &[]).success().out_dir();
    let second_out = second.cargo_build(false, &[]).success().out_dir();
    assert_ne!(first_out, second_out);
    let first_tree = tree(&first_out);
    assert_eq!(first_tree.len(), 3);
    assert_eq!(first_tree, tree(&second_out));
}

#[test]
fn online_build_downloads_the_locked_url_into_the_cache() {
    let bytes = b"\0asm downloaded plugin".to_vec();
    let server = TestServer::start([(
        "/plugins/remote.wasm",
        crate::support::Response::ok(bytes.clone()),
    )]);
    let plugins = [Plugin {
        id: "remote",
        bytes: bytes.clone(),
        url: server.url("/plugins/remote.wasm"),
    }];
    let app = App::new("wg-it-build-online", &plugins);
    let env = server.env();
    let env: Vec<(&str, &std::ffi::OsStr)> = env
        .iter()
        .map(|(name, value)| (*name, value.as_os_str()))
        .collect();

    app.cargo_build(true, &env).success();
    assert_eq!(app.run_binary(), expected_stdout(&plugins));
    assert_eq!(server.hits("/plugins/remote.wasm"), 1);
    assert!(
        Cache::new(app.home())
            .get(&plugins[0].checksum())
            .unwrap()
            .is_some()
    );
}

/// The `json_tools` fixture as an embedded plugin, the way the generated module declares it.
static JSON_TOOLS: warpgate::embedded::EmbeddedPlugin = warpgate::embedded::EmbeddedPlugin {
    id: "json_tools",
    checksum: "sha256:61cced86a9885339a85902200d044b780db313440c78a592d3a0a605aa1fb81c",
    bytes: include_bytes!("../fixtures/plugins/json_tools.wasm"),
    settings: warpgate::embedded::EmbeddedSettings::NONE,
};

#[test]
fn an_embedded_plugin_runs_in_a_container() {
    assert_eq!(
        Checksum::of(JSON_TOOLS.bytes).to_string(),
        JSON_TOOLS.checksum,
        "the fixture changed; update the checksum"
    );
    let container = JSON_TOOLS
        .builder()
        .unwrap()
        .compile_cache(warpgate::CompileCache::Disabled)
        .build()
        .unwrap();
    let output: serde_json::Value = container
        .call_func_with("add", serde_json::json!({"left": 40, "right": 2}))
        .unwrap();
    assert_eq!(output, serde_json::json!({"sum": 42}));

    let wasm = JSON_TOOLS.wasm();
    assert_eq!(
        wasm.meta().hash.as_deref(),
        Some("61cced86a9885339a85902200d044b780db313440c78a592d3a0a605aa1fb81c")
    );
    assert_eq!(wasm.meta().name.as_deref(), Some("json_tools"));
}

#[test]
fn extism_refuses_embedded_bytes_that_do_not_match_their_hash() {
    static ALTERED: warpgate::embedded::EmbeddedPlugin = warpgate::embedded::EmbeddedPlugin {
        id: "json_tools",
        // Another plugin's checksum: Extism must refuse to compile these bytes.
        checksum: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        bytes: include_bytes!("../fixtures/plugins/json_tools.wasm"),
        settings: warpgate::embedded::EmbeddedSettings::NONE,
    };
    let error = ALTERED
        .builder()
        .unwrap()
        .compile_cache(warpgate::CompileCache::Disabled)
        .build()
        .unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("json_tools"), "{message}");
    assert!(
        message.to_lowercase().contains("hash"),
        "not Extism's hash check: {message}"
    );
}

/// Compiled code is looked up by the checksum a plugin claims; the claim is checked against
/// the bytes before any compiled code is loaded, so other bytes under a known checksum never
/// run that checksum's code (nor their own).
#[test]
fn compiled_code_never_serves_bytes_that_do_not_match_their_checksum() {
    static IMPOSTOR: warpgate::embedded::EmbeddedPlugin = warpgate::embedded::EmbeddedPlugin {
        id: "json_tools",
        checksum: JSON_TOOLS.checksum,
        bytes: include_bytes!("../fixtures/plugins/failing.wasm"),
        settings: warpgate::embedded::EmbeddedSettings::NONE,
    };
    let dir = tempfile::tempdir().unwrap();
    let store = warpgate::CompileCache::Directory(dir.path().to_path_buf());
    let build = |plugin: &warpgate::embedded::EmbeddedPlugin| {
        plugin
            .builder()
            .unwrap()
            .timeout(std::time::Duration::from_secs(60))
            .compile_cache(store.clone())
            .build()
    };
    build(&JSON_TOOLS).unwrap();
    assert_eq!(
        build(&JSON_TOOLS).unwrap().module_origin(),
        warpgate::ModuleOrigin::CompileCache
    );
    let message = format!("{:#}", build(&IMPOSTOR).unwrap_err());
    assert!(message.to_lowercase().contains("hash"), "{message}");
}

#[test]
fn docs_rs_builds_without_plugins_using_placeholders() {
    let plugins = [Plugin::new("hello")];
    let app = App::new("wg-it-build-docs-rs", &plugins);
    let build = app
        .cargo_build(true, &[("DOCS_RS", std::ffi::OsStr::new("1"))])
        .success();
    assert!(
        build
            .run
            .stderr
            .contains("plugin `hello` is neither vendored nor cached; embedding an empty placeholder for docs.rs"),
        "{}",
        build.run.stderr
    );
    assert_eq!(
        fs_err::read(build.out_dir().join("plugins/hello.wasm")).unwrap(),
        b""
    );
}

#[test]
fn plugins_declared_in_cargo_metadata_build_too() {
    let plugins = [Plugin::new("hello")];
    // The crate sits in a folder under a stray `warpgate.toml` and `warpgate.lock` (as in
    // `$HOME`): the search for a config stops at the crate's workspace root, so the build
    // takes the crate's own Cargo metadata, not the stray config.
    let app = App::new_in("wg-it-build-metadata", &plugins, "project");
    let stray = [Plugin::new("stray")];
    app.declare(&stray);
    app.lock(&stray);
    for file in ["warpgate.toml", "warpgate.lock"] {
        fs_err::rename(app.path(file), app.dir.path().join(file)).unwrap();
    }
    app.lock(&plugins);
    app.cache(&plugins);
    app.cache(&stray);
    let mut manifest = fs_err::read_to_string(app.path("Cargo.toml")).unwrap();
    manifest.push_str(&format!(
        "\n[package.metadata.warpgate.plugins]\nhello = \"{}\"\n",
        plugins[0].url
    ));
    fs_err::write(app.path("Cargo.toml"), manifest).unwrap();

    let build = app.cargo_build(false, &[]).success();
    assert_eq!(app.run_binary(), expected_stdout(&plugins));
    let script_output =
        fs_err::read_to_string(build.out_dir().parent().unwrap().join("output")).unwrap();
    assert!(
        script_output.contains(&format!(
            "cargo::rerun-if-changed={}",
            app.path("Cargo.toml").display()
        )),
        "{script_output}"
    );
}

/// The generated module carries each plugin's declared runtime settings, and the binary sees
/// them on its embedded plugins; settings never make the lock stale.
#[test]
fn embedded_plugins_carry_their_declared_settings() {
    let plugins = [Plugin::new("hello"), Plugin::new("bye")];
    let app = App::new("wg-it-build-settings", &plugins);
    app.cache(&plugins);
    fs_err::write(
        app.path("warpgate.toml"),
        format!(
            "[plugins]\nbye = \"{}\"\nhello = {{ locator = \"{}\", config = {{ greeting = \"Howdy \\\"friend\\\"\" }}, allowed_paths = {{ \"./data\" = \"/data\" }}, allowed_hosts = [\"*.example.com\"], memory = \"1 MiB\", timeout = \"1500ms\", wasi = false }}\n",
            plugins[1].url, plugins[0].url
        ),
    )
    .unwrap();
    fs_err::write(
        app.path("src/main.rs"),
        "static PLUGINS: warpgate::embedded::EmbeddedPlugins = warpgate::include_plugins!();\n\nfn main() {\n    for plugin in &PLUGINS {\n        println!(\"{} {:?}\", plugin.id, plugin.settings);\n    }\n}\n",
    )
    .unwrap();
    let build = app.cargo_build(false, &[]).success();
    let module = fs_err::read_to_string(build.out_dir().join("warpgate_plugins.rs")).unwrap();
    assert!(
        module.contains("settings: EmbeddedSettings::NONE"),
        "{module}"
    );
    assert!(
        module.contains(r#"config: &[("greeting", "Howdy \"friend\"")]"#),
        "{module}"
    );
    let stdout = app.run_binary();
    assert_eq!(
        stdout,
        "bye EmbeddedSettings { config: [], allowed_paths: [], allowed_hosts: [], memory_max_pages: None, timeout: None, wasi: None }\n\
         hello EmbeddedSettings { config: [(\"greeting\", \"Howdy \\\"friend\\\"\")], allowed_paths: [(\"./data\", \"/data\")], allowed_hosts: [\"*.example.com\"], memory_max_pages: Some(16), timeout: Some(After(1.5s)), wasi: Some(false) }\n"
    );
}

#[test]
fn a_github_entry_locked_to_another_host_fails_the_build() {
    let evil = Plugin::new("evil");
    let app = App::new("wg-it-build-injected", &[]);
    app.cache(std::slice::from_ref(&evil));
    fs_err::write(
        app.path("warpgate.toml"),
        "[plugins]\nhello = \"github://acme/plugins/hello@v1.0.0\"\n",
    )
    .unwrap();
    fs_err::write(
        app.path("warpgate.lock"),
        format!(
            "version = 1\n\n[plugins.hello]\nlocator = \"github://acme/plugins/hello@v1.0.0\"\ntag = \"hello@v1.0.0\"\nasset = \"hello.wasm\"\nurl = \"{}\"\nchecksum = \"{}\"\nsize = {}\n",
            evil.url,
            evil.checksum(),
            evil.bytes.len()
        ),
    )
    .unwrap();

    let build = app.cargo_build(false, &[]).failure();
    let stderr = &build.run.stderr;
    for needle in [
        "plugin `hello`: `url = \"https://plugins.example.invalid/evil.wasm\"` is not the download URL of its tag and asset; expected `https://github.com/acme/plugins/releases/download/hello@v1.0.0/hello.wasm`",
        "hint: ",
    ] {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_download_under_the_low_speed_limit_fails_the_build_naming_the_limit() {
    let bytes = b"\0asm a plugin served slowly".to_vec();
    // Two bytes a second, under the limit of 10 a second over a one-second window.
    let server = TestServer::start([(
        "/plugins/slow.wasm",
        crate::support::Response::ok(bytes.clone())
            .trickle(1, std::time::Duration::from_millis(500)),
    )]);
    let url = server.url("/plugins/slow.wasm");
    let plugins = [Plugin {
        id: "slow",
        bytes,
        url: url.clone(),
    }];
    let app = App::new("wg-it-build-slow", &plugins);
    let mut env = server.env();
    env.push(("WARPGATE_HTTP_TIMEOUT", "1".into()));
    let env: Vec<(&str, &std::ffi::OsStr)> = env
        .iter()
        .map(|(name, value)| (*name, value.as_os_str()))
        .collect();

    let build = app.cargo_build(true, &env).failure();
    assert!(
        build
            .run
            .stderr
            .contains(&format!("the transfer from `{url}` is too slow")),
        "{}",
        build.run.stderr
    );
    assert!(
        build.run.stderr.contains("WARPGATE_HTTP_LOW_SPEED_LIMIT"),
        "{}",
        build.run.stderr
    );
    assert!(
        Cache::new(app.home())
            .get(&plugins[0].checksum())
            .unwrap()
            .is_none()
    );
}
