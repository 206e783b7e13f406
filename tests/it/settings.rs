//! Runtime settings (`config`, `allowed_paths`, `allowed_hosts`, `memory`, `timeout`, `wasi`),
//! plugin logs and plugin errors, on every path: the builder, `warpgate call` with the entry's
//! settings and with flags, and embedded plugins. The plugin is `examples/plugins/settings`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use warpgate::container::{CompileCache, ContainerError, PluginContainer, PluginContainerBuilder};
use warpgate::embedded::{EmbeddedPlugin, EmbeddedSettings, Timeout};
use warpgate::settings::RuntimeSettings;
use warpgate::{Id, PluginManifest, Wasm};

use crate::support::project::{Project, Run};

const SETTINGS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/plugins/settings.wasm"
);

fn builder() -> PluginContainerBuilder {
    PluginContainer::builder(
        Id::new("settings").unwrap(),
        PluginManifest::new([Wasm::file(SETTINGS)]),
    )
    .compile_cache(CompileCache::Disabled)
}

fn call(container: &PluginContainer, function: &str, input: &str) -> String {
    String::from_utf8(container.call(function, input).unwrap()).unwrap()
}

/// A plain-HTTP server on 127.0.0.1 that answers every request with `200 hello`; stops when
/// dropped.
struct HelloServer {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl HelloServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let mut request = [0_u8; 4096];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                );
            }
        });
        Self { port, stop }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/greeting", self.port)
    }
}

impl Drop for HelloServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

// The builder.

#[test]
fn builder_config_values_reach_the_plugin() {
    let container = builder().config("greeting", "Howdy").build().unwrap();
    assert_eq!(call(&container, "greet", "Ferris"), "Howdy, Ferris!");
    let error = container.call("config_value", "absent").unwrap_err();
    assert!(
        error.to_string().contains("no config value `absent`"),
        "{error}"
    );
}

#[test]
fn builder_allowed_path_is_readable_and_writable() {
    let dir = tempfile::tempdir().unwrap();
    fs_err::write(dir.path().join("in.txt"), "from the host").unwrap();
    let container = builder()
        .allowed_path(dir.path().to_str().unwrap(), "/data")
        .build()
        .unwrap();
    assert_eq!(
        call(&container, "read_file", "/data/in.txt"),
        "from the host"
    );
    call(
        &container,
        "write_file",
        r#"{"path": "/data/out.txt", "text": "from the plugin"}"#,
    );
    assert_eq!(
        fs_err::read_to_string(dir.path().join("out.txt")).unwrap(),
        "from the plugin"
    );
    // Nothing else is reachable.
    let error = container.call("read_file", "/etc/hostname").unwrap_err();
    assert!(
        error.to_string().contains("cannot read `/etc/hostname`"),
        "{error}"
    );
}

#[test]
fn builder_allowed_hosts_let_http_through_and_refuse_the_rest() {
    let server = HelloServer::start();
    let allowed = builder().allowed_host("127.0.0.1").build().unwrap();
    assert_eq!(call(&allowed, "http_get", &server.url()), "200 hello");

    for refused in [builder().allowed_host("example.com"), builder()] {
        let error = refused
            .build()
            .unwrap()
            .call("http_get", server.url())
            .unwrap_err();
        let ContainerError::PluginFailed {
            message, details, ..
        } = &error
        else {
            panic!("{error:?}");
        };
        // The cause comes first and names the URL; wasmtime's backtrace is kept aside.
        assert_eq!(
            message,
            &format!("HTTP request to {} is not allowed", server.url())
        );
        assert!(!error.to_string().contains("backtrace"), "{error}");
        assert!(details.contains("backtrace"), "{details}");
    }
}

#[test]
fn settings_from_an_entry_apply_and_override_the_builder() {
    let table: toml::Table = toml::from_str(
        r#"
config = { greeting = "Ahoy" }
memory = "2 MiB"
timeout = "none"
wasi = true
"#,
    )
    .unwrap();
    let mut settings = RuntimeSettings::default();
    for (key, value) in &table {
        settings.set(key, value).unwrap();
    }
    let container = builder()
        .config("greeting", "Howdy")
        .timeout(Duration::from_secs(5))
        .settings(&settings)
        .build()
        .unwrap();
    assert_eq!(call(&container, "greet", "Ferris"), "Ahoy, Ferris!");
    assert_eq!(container.timeout(), None);
    assert_eq!(call(&container, "grow", "1"), "256");
    let error = container.call("grow", "8").unwrap_err();
    assert!(
        matches!(
            error,
            ContainerError::MemoryExceeded {
                max_pages: Some(32),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("limit: 2 MiB"), "{error}");
}

#[test]
fn without_wasi_a_wasi_plugin_is_incompatible() {
    let error = builder().wasi(false).build().unwrap_err();
    assert!(
        matches!(error, ContainerError::Incompatible { .. }),
        "{error:?}"
    );
    assert!(
        crate::support::report(&error).contains("wasi(true)"),
        "{error}"
    );
}

#[test]
fn a_wasi_exit_status_is_its_own_error() {
    let error = builder()
        .build()
        .unwrap()
        .call("exit_with", "3")
        .unwrap_err();
    assert!(
        matches!(error, ContainerError::Exited { code: 3, .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "Function `exit_with` of plugin `settings` exited with status 3"
    );
}

#[test]
fn plugin_logs_go_to_tracing_under_the_plugin_id() {
    #[derive(Clone, Default)]
    struct Buffer(Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("warpgate::plugin=info")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let container = builder().build().unwrap();
    tracing::subscriber::with_default(subscriber, || {
        call(&container, "log_all", "hi");
    });
    let logged = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    for line in [
        r#"INFO warpgate::plugin: info: hi plugin="settings""#,
        r#"WARN warpgate::plugin: warn: hi plugin="settings""#,
        r#"ERROR warpgate::plugin: error: hi plugin="settings""#,
    ] {
        assert!(logged.contains(line), "{line} not in {logged}");
    }
    assert!(!logged.contains("debug: hi"), "{logged}");
}

// Embedded plugins.

static EMBEDDED: EmbeddedPlugin = EmbeddedPlugin {
    id: "settings",
    checksum: "sha256:0000000000000000000000000000000000000000000000000000000000000000",
    bytes: include_bytes!("../fixtures/plugins/settings.wasm"),
    settings: EmbeddedSettings {
        config: &[("greeting", "Hej")],
        allowed_paths: &[],
        allowed_hosts: &["127.0.0.1"],
        memory_max_pages: Some(32),
        timeout: Some(Timeout::After(Duration::from_millis(60_000))),
        wasi: None,
    },
};

#[test]
fn an_embedded_plugin_runs_with_its_declared_settings() {
    let checksum = warpgate::Checksum::of(EMBEDDED.bytes).to_string();
    let plugin = EmbeddedPlugin {
        checksum: Box::leak(checksum.into_boxed_str()),
        ..EMBEDDED
    };
    let container = plugin
        .builder()
        .unwrap()
        .compile_cache(CompileCache::Disabled)
        .build()
        .unwrap();
    assert_eq!(call(&container, "greet", "Ferris"), "Hej, Ferris!");
    assert_eq!(container.timeout(), Some(Duration::from_secs(60)));
    let server = HelloServer::start();
    assert_eq!(call(&container, "http_get", &server.url()), "200 hello");
    assert!(matches!(
        container.call("grow", "8").unwrap_err(),
        ContainerError::MemoryExceeded { .. }
    ));

    // Allowed paths (kept as written; an absolute one here) and WASI.
    let dir = tempfile::tempdir().unwrap();
    let host: &'static str = Box::leak(dir.path().to_str().unwrap().to_string().into_boxed_str());
    let with_path = EmbeddedPlugin {
        settings: EmbeddedSettings {
            allowed_paths: Box::leak(Box::new([(host, "/data")])),
            ..plugin.settings
        },
        ..plugin
    };
    let container = with_path
        .builder()
        .unwrap()
        .compile_cache(CompileCache::Disabled)
        .build()
        .unwrap();
    call(
        &container,
        "write_file",
        r#"{"path": "/data/x", "text": "embedded"}"#,
    );
    assert_eq!(
        fs_err::read_to_string(dir.path().join("x")).unwrap(),
        "embedded"
    );
    let without_wasi = EmbeddedPlugin {
        settings: EmbeddedSettings {
            wasi: Some(false),
            ..plugin.settings
        },
        ..plugin
    };
    let error = without_wasi
        .builder()
        .unwrap()
        .compile_cache(CompileCache::Disabled)
        .build()
        .unwrap_err();
    assert!(
        matches!(error, ContainerError::Incompatible { .. }),
        "{error:?}"
    );
}

// `warpgate call`.

/// A project whose `settings` entry is `entry` (the table's inside, after `locator`).
fn project(entry: &str) -> Project {
    let project = Project::new(&format!(
        "[plugins]\nsettings = {{ locator = \"file://./plugins/settings.wasm\"{entry} }}\nlooping = \"file://./plugins/looping.wasm\"\n"
    ));
    fs_err::copy(SETTINGS, project.path("plugins/settings.wasm")).unwrap();
    fs_err::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins/looping.wasm"),
        project.path("plugins/looping.wasm"),
    )
    .unwrap();
    project.run(&["lock"]).success();
    project
}

#[test]
fn call_applies_the_entry_config_and_the_flag_overrides_it() {
    let project = project(r#", config = { greeting = "Howdy" }"#);
    let run = project
        .run(&["call", "settings", "greet", "Ferris"])
        .success();
    assert_eq!(run.stdout, "Howdy, Ferris!");
    let run = project
        .run(&[
            "call",
            "settings",
            "greet",
            "Ferris",
            "--plugin-config",
            "greeting=Hi",
        ])
        .success();
    assert_eq!(run.stdout, "Hi, Ferris!");
    project
        .run(&["call", "settings", "greet", "x", "--plugin-config", "nokey"])
        .code(2)
        .stderr_has("expected KEY=VALUE");
}

#[test]
fn call_maps_allowed_paths_from_the_config_folder_and_the_flag() {
    let project = project(r#", allowed_paths = { "./data" = "/data" }"#);
    fs_err::create_dir(project.path("data")).unwrap();
    project
        .run(&[
            "call",
            "settings",
            "write_file",
            r#"{"path": "/data/out.txt", "text": "entry"}"#,
        ])
        .success();
    assert_eq!(project.read("data/out.txt"), "entry");

    let other = tempfile::tempdir().unwrap();
    let flag = format!("{}:/other", other.path().display());
    project
        .run(&[
            "call",
            "settings",
            "write_file",
            r#"{"path": "/other/out.txt", "text": "flag"}"#,
            "--allow-path",
            &flag,
        ])
        .success();
    assert_eq!(
        fs_err::read_to_string(other.path().join("out.txt")).unwrap(),
        "flag"
    );
}

#[test]
fn call_allows_hosts_from_the_entry_and_the_flag_and_hints_when_refused() {
    let server = HelloServer::start();
    let project = project(r#", allowed_hosts = ["127.0.0.1"]"#);
    let run = project
        .run(&["call", "settings", "http_get", &server.url()])
        .success();
    assert_eq!(run.stdout, "200 hello");

    let refusing = self::project("");
    let run = refusing
        .run(&["call", "settings", "http_get", &server.url()])
        .code(2)
        .stderr_has(&format!("HTTP request to {} is not allowed", server.url()))
        .stderr_has("hint: let the plugin reach the host");
    assert!(!run.stderr.contains("backtrace"), "{run:#?}");
    // With `-v`, wasmtime's details follow the cause.
    refusing
        .run(&["-v", "call", "settings", "http_get", &server.url()])
        .code(2)
        .stderr_has("backtrace");
    let run = refusing
        .run(&[
            "call",
            "settings",
            "http_get",
            &server.url(),
            "--allow-host",
            "127.0.0.1",
        ])
        .success();
    assert_eq!(run.stdout, "200 hello");
}

#[test]
fn call_caps_memory_from_the_entry_the_flag_and_by_default() {
    let project = project(r#", memory = "2 MiB""#);
    project
        .run(&["call", "settings", "grow", "8"])
        .code(2)
        .stderr_has("limit: 2 MiB")
        .stderr_has("hint: raise `memory`");
    project
        .run(&["call", "settings", "grow", "8", "--memory", "64 MiB"])
        .success();
    project
        .run(&["call", "settings", "grow", "8", "--memory", "lots"])
        .code(2)
        .stderr_has("invalid `--memory`: `lots` is not a memory size");
    // Without a setting, `warpgate call` caps memory at 1 GiB.
    self::project("")
        .run(&["call", "settings", "grow", "1100"])
        .code(2)
        .stderr_has("limit: 1 GiB");
}

#[test]
fn call_timeouts_from_the_entry_and_the_flag() {
    let project = project(r#", timeout = "300ms""#);
    project.run(&["call", "settings", "greet", "x"]).success();
    // The entry's timeout stops `looping`, which spins for ever.
    let config = project.read("warpgate.toml").replace(
        "looping = \"file://./plugins/looping.wasm\"",
        "looping = { locator = \"file://./plugins/looping.wasm\", timeout = \"300ms\" }",
    );
    fs_err::write(project.path("warpgate.toml"), config).unwrap();
    project
        .run(&["call", "looping", "spin"])
        .code(2)
        .stderr_has("timed out after `300ms`");
    // The flag's limit stops it too.
    project
        .run(&["call", "looping", "spin", "--timeout", "300ms"])
        .code(2)
        .stderr_has("timed out after `300ms`")
        .stderr_has("hint: raise `timeout`");
    // A bare number is seconds.
    project
        .run(&["call", "looping", "spin", "--timeout", "1"])
        .code(2)
        .stderr_has("timed out after `1s`");
    project
        .run(&["call", "looping", "spin", "--timeout", "0s"])
        .code(2)
        .stderr_has("write `none` for no limit");
    assert!(
        project
            .run(&["call", "settings", "greet", "x", "--timeout", "none"])
            .success()
            .stdout
            .starts_with("Hello")
    );
}

#[test]
fn call_without_wasi_from_the_entry_or_the_flag() {
    project(", wasi = false")
        .run(&["call", "settings", "greet", "x"])
        .code(2)
        .stderr_has("needs WASI: drop `--no-wasi`, or `wasi = false`");
    project("")
        .run(&["call", "settings", "greet", "x", "--no-wasi"])
        .code(2)
        .stderr_has("needs WASI");
}

#[test]
fn call_shows_plugin_logs_by_verbosity() {
    let project = project("");
    let run = project
        .run(&["call", "settings", "log_all", "hi"])
        .success();
    assert!(
        run.stderr.contains("warn: hi") && run.stderr.contains("error: hi"),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("info: hi"), "{run:#?}");
    let run = project
        .run(&["-v", "call", "settings", "log_all", "hi"])
        .success();
    assert!(
        run.stderr.contains("info: hi") && !run.stderr.contains("debug: hi"),
        "{run:#?}"
    );
    let run = project
        .run(&["-vv", "call", "settings", "log_all", "hi"])
        .success();
    assert!(
        run.stderr.contains("debug: hi") && run.stderr.contains("trace: hi"),
        "{run:#?}"
    );
}

#[test]
fn call_exits_with_the_plugin_exit_status() {
    let run: Run = project("").run(&["call", "settings", "exit_with", "7"]);
    assert_eq!(run.code, 7, "{run:#?}");
    assert!(run.stderr.contains("exited with status 7"), "{run:#?}");
}

#[test]
fn bad_settings_are_clear_errors_and_settings_do_not_stale_the_lock() {
    let project = Project::new(
        "[plugins]\ns = { locator = \"file://./plugins/json_tools.wasm\", memory = \"lots\" }\n",
    );
    project
        .run(&["lock"])
        .code(2)
        .stderr_has("plugin `s` (line 2, column 5): `memory`: `lots` is not a memory size");

    let project = self::project(r#", timeout = "5s""#);
    let config = project.read("warpgate.toml").replace("5s", "10s");
    fs_err::write(project.path("warpgate.toml"), config).unwrap();
    project.run(&["lock", "--locked"]).success();
}

/// A module's start function runs once per instance, before the first call; the module is
/// WebAssembly text (Extism compiles it), so `has_func` is answered by an instance.
#[test]
fn a_start_function_runs_once_per_instance() {
    let wat = fs_err::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/plugins/started/started.wat"),
    )
    .unwrap();
    let container = PluginContainer::builder(
        Id::new("started").unwrap(),
        PluginManifest::new([Wasm::data(wat)]),
    )
    .compile_cache(CompileCache::Disabled)
    .build()
    .unwrap();
    assert!(container.has_func("check"));
    for _ in 0..3 {
        container.call("check", "").unwrap();
    }
}

/// A plugin that needs host functions only its application provides: `warpgate call` says it
/// cannot run it, rather than the library's advice about builder methods.
#[test]
fn call_explains_missing_host_functions() {
    let project = project("");
    fs_err::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins/host_caller.wasm"),
        project.path("plugins/host_caller.wasm"),
    )
    .unwrap();
    let config =
        project.read("warpgate.toml") + "host_caller = \"file://./plugins/host_caller.wasm\"\n";
    fs_err::write(project.path("warpgate.toml"), config).unwrap();
    project.run(&["lock"]).success();
    let run = project
        .run(&["call", "host_caller", "double_via_host", "{}"])
        .code(2)
        .stderr_has("imports `host_double`")
        .stderr_has("hint: the plugin needs host functions that only the application it was written for provides");
    assert!(!run.stderr.contains("PluginContainerBuilder"), "{run:#?}");
}
