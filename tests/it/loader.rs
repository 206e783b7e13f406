//! `PluginLoader` against the loopback server: every locator kind, lock-pinned loads,
//! refresh and stale-if-error, offline, and concurrent loads from threads and processes.

use std::sync::Arc;
use std::time::Duration;

use warpgate::checksum::Checksum;
use warpgate::id::Id;
use warpgate::loader::{LoaderError, PluginLoader};
use warpgate::locator::PluginLocator;
use warpgate::lockfile::Lockfile;

use crate::support::project::{JSON_TOOLS, Project, Run};
use crate::support::{FakeGitHub, FakeRelease, Response};

fn id(name: &str) -> Id {
    Id::new(name).unwrap()
}

fn loader(github: &FakeGitHub, dir: &std::path::Path) -> PluginLoader {
    PluginLoader::with_http(
        dir.join("plugins"),
        dir.join("temp"),
        github.server().http_client(),
        None,
    )
    .with_github(github.client())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn loads_every_locator_kind() {
    let github = FakeGitHub::start();
    github.release(
        "acme/tool",
        FakeRelease::new("v1.0.0").wasm("tool.wasm", b"\0asm tool".to_vec()),
    );
    github
        .server()
        .route("/direct.wasm", Response::ok(b"\0asm direct".to_vec()));
    let dir = tempfile::tempdir().unwrap();
    let loader = loader(&github, dir.path());
    let rt = runtime();

    let file = PluginLocator::File {
        file: JSON_TOOLS.to_string(),
        path: None,
    };
    let path = rt.block_on(loader.load_plugin(id("file"), &file)).unwrap();
    assert!(path.is_absolute());
    assert_eq!(
        fs_err::read(&path).unwrap(),
        fs_err::read(JSON_TOOLS).unwrap()
    );

    let missing = PluginLocator::File {
        file: "/no/such/plugin.wasm".into(),
        path: None,
    };
    let error = rt
        .block_on(loader.load_plugin(id("gone"), &missing))
        .unwrap_err();
    assert!(matches!(error, LoaderError::MissingFile { .. }), "{error}");
    assert!(error.to_string().contains("plugin `gone`"));

    let url: PluginLocator = github.server().url("/direct.wasm").parse().unwrap();
    let path = rt.block_on(loader.load_plugin(id("direct"), &url)).unwrap();
    assert!(path.is_absolute() && path.starts_with(dir.path().join("plugins")));
    assert_eq!(fs_err::read(&path).unwrap(), b"\0asm direct");

    let tagged: PluginLocator = "github://acme/tool@v1.0.0".parse().unwrap();
    let path = rt
        .block_on(loader.load_plugin(id("tool"), &tagged))
        .unwrap();
    assert_eq!(fs_err::read(&path).unwrap(), b"\0asm tool");

    // Everything is recorded: loading again makes no request at all.
    let requests = github.server().request_count();
    rt.block_on(loader.load_plugin(id("direct"), &url)).unwrap();
    rt.block_on(loader.load_plugin(id("tool"), &tagged))
        .unwrap();
    assert_eq!(github.server().request_count(), requests);
}

#[test]
fn lock_pinned_loads_the_pinned_bytes_without_api_calls() {
    let github = FakeGitHub::start();
    github.release(
        "acme/tool",
        FakeRelease::new("v1.0.0").wasm("tool.wasm", b"\0asm v1".to_vec()),
    );
    github.release(
        "acme/tool",
        FakeRelease::new("v2.0.0").wasm("tool.wasm", b"\0asm v2".to_vec()),
    );
    let dir = tempfile::tempdir().unwrap();
    let lock_text = format!(
        "version = 1\n\n[plugins.tool]\nlocator = \"github://acme/tool\"\ntag = \"v1.0.0\"\nasset = \"tool.wasm\"\nurl = \"{}\"\nchecksum = \"{}\"\nsize = 7\n",
        github.download_url("acme/tool", "v1.0.0", "tool.wasm"),
        Checksum::of(b"\0asm v1")
    );
    let lock_path = dir.path().join("warpgate.lock");
    let lockfile = Lockfile::parse_for_api(&lock_text, &lock_path, &github.api_url()).unwrap();
    let loader = loader(&github, dir.path()).with_lockfile(lockfile, &lock_path);
    let rt = runtime();
    let latest: PluginLocator = "github://acme/tool".parse().unwrap();
    let path = rt
        .block_on(loader.load_plugin(id("tool"), &latest))
        .unwrap();
    assert_eq!(
        fs_err::read(&path).unwrap(),
        b"\0asm v1",
        "the lock wins over `latest`"
    );
    assert!(
        github.api_requests().is_empty(),
        "{:?}",
        github.api_requests()
    );

    // A pinned checksum that the server no longer matches fails, naming the plugin.
    let bad_lock = lock_text.replace(
        &Checksum::of(b"\0asm v1").to_string(),
        &Checksum::of(b"x").to_string(),
    );
    let loader = self::loader(&github, &dir.path().join("other")).with_lockfile(
        Lockfile::parse_for_api(&bad_lock, &lock_path, &github.api_url()).unwrap(),
        &lock_path,
    );
    let error = rt
        .block_on(loader.load_plugin(id("tool"), &latest))
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("checksum mismatch for plugin `tool`"),
        "{message}"
    );
    assert!(github.api_requests().is_empty());
    // Nothing of the refused download is left: no blob, no temp file.
    let cache = dir.path().join("other/plugins/v1");
    for folder in ["blobs/sha256", "tmp"] {
        let left: Vec<_> = fs_err::read_dir(cache.join(folder))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn floating_refresh_and_stale_if_error() {
    let github = FakeGitHub::start();
    github
        .server()
        .route("/float.wasm", Response::ok(b"\0asm one".to_vec()));
    let dir = tempfile::tempdir().unwrap();
    let mut loader = loader(&github, dir.path());
    let rt = runtime();
    let url: PluginLocator = github.server().url("/float.wasm").parse().unwrap();

    let first = rt.block_on(loader.load_plugin(id("float"), &url)).unwrap();
    assert_eq!(fs_err::read(&first).unwrap(), b"\0asm one");

    // Within the cache duration: no request.
    rt.block_on(loader.load_plugin(id("float"), &url)).unwrap();
    assert_eq!(github.server().hits("/float.wasm"), 1);

    // Expired: re-resolved, and the new bytes are served.
    loader.set_cache_duration(Duration::ZERO);
    github
        .server()
        .route("/float.wasm", Response::ok(b"\0asm two".to_vec()));
    let second = rt.block_on(loader.load_plugin(id("float"), &url)).unwrap();
    assert_eq!(fs_err::read(&second).unwrap(), b"\0asm two");

    // The refresh fails (5xx): the previous verified copy keeps working.
    github.server().route("/float.wasm", Response::status(503));
    let stale = rt.block_on(loader.load_plugin(id("float"), &url)).unwrap();
    assert_eq!(stale, second);
    assert_eq!(fs_err::read(&stale).unwrap(), b"\0asm two");
}

#[test]
fn offline_uses_the_cache_or_fails_clearly() {
    let github = FakeGitHub::start();
    github
        .server()
        .route("/p.wasm", Response::ok(b"\0asm p".to_vec()));
    let dir = tempfile::tempdir().unwrap();
    let mut loader = loader(&github, dir.path());
    loader.set_offline(Some("`--offline`".into()));
    let rt = runtime();
    let url: PluginLocator = github.server().url("/p.wasm").parse().unwrap();
    let error = rt.block_on(loader.load_plugin(id("p"), &url)).unwrap_err();
    assert!(matches!(error, LoaderError::Offline { .. }), "{error}");
    assert!(error.to_string().contains("plugin `p`"));
    assert_eq!(github.server().request_count(), 0);

    loader.set_offline(None);
    let online = rt.block_on(loader.load_plugin(id("p"), &url)).unwrap();
    loader.set_offline(Some("`--offline`".into()));
    loader.set_cache_duration(Duration::ZERO);
    let offline = rt.block_on(loader.load_plugin(id("p"), &url)).unwrap();
    assert_eq!(online, offline);
    assert_eq!(github.server().request_count(), 1);
}

#[test]
fn concurrent_loads_from_threads_download_once() {
    let github = FakeGitHub::start();
    github.server().route(
        "/slow.wasm",
        Response::ok(b"\0asm slow".to_vec()).delay(Duration::from_millis(200)),
    );
    let dir = tempfile::tempdir().unwrap();
    let loader = Arc::new(loader(&github, dir.path()));
    let url: PluginLocator = github.server().url("/slow.wasm").parse().unwrap();
    let rt = runtime();
    let paths: Vec<_> = rt.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let loader = loader.clone();
                let url = url.clone();
                tokio::spawn(async move { loader.load_plugin(id("slow"), &url).await.unwrap() })
            })
            .collect();
        let mut paths = Vec::new();
        for task in tasks {
            paths.push(task.await.unwrap());
        }
        paths
    });
    assert!(paths.windows(2).all(|pair| pair[0] == pair[1]));
    assert_eq!(fs_err::read(&paths[0]).unwrap(), b"\0asm slow");
    assert_eq!(github.server().hits("/slow.wasm"), 1);
}

/// `warpgate call` loads through the loader: several processes racing on one empty cache
/// all run the plugin, and it is downloaded once.
#[test]
fn concurrent_call_processes_share_one_download() {
    let github = FakeGitHub::start();
    let bytes = fs_err::read(JSON_TOOLS).unwrap();
    github.server().route(
        "/json_tools.wasm",
        Response::ok(bytes).delay(Duration::from_millis(200)),
    );
    let project = Project::new(&format!(
        "[plugins]\njson = \"{}\"\n",
        github.server().url("/json_tools.wasm")
    ));
    let mut command = project.command(&["lock"]);
    command.envs(github.env());
    Run::from(command.output().unwrap()).success();
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    let before = github.server().hits("/json_tools.wasm");
    let runs = crate::support::project::run_concurrently((0..4).map(|index| {
        let input = format!("{{\"left\": {index}, \"right\": 100}}");
        let mut command = project.command(&["call", "json", "add", &input]);
        command.envs(github.env());
        command
    }));
    for (index, run) in runs.into_iter().enumerate() {
        let run = run.success();
        assert_eq!(run.stdout.trim(), format!("{{\"sum\":{}}}", index + 100));
    }
    assert_eq!(github.server().hits("/json_tools.wasm") - before, 1);
}

#[test]
fn call_errors_are_clear() {
    let project = Project::new("[plugins]\njson = \"file://./plugins/json_tools.wasm\"\n");
    project
        .run(&["call", "json", "add", "{}"])
        .code(1)
        .stderr_has("warpgate lock");
    project.run(&["lock"]).success();
    project
        .run(&["call", "json", "nope"])
        .code(2)
        .stderr_has("`json` has no function `nope`");
    project
        .run(&["call", "other", "add"])
        .code(2)
        .stderr_has("plugin `other` is not declared");
    let run = project
        .run(&["call", "json", "add", "{\"left\": 1, \"right\": 2}"])
        .success();
    assert_eq!(run.stdout, "{\"sum\":3}");
}

/// `set_offline` covers lock-pinned plugins too: a pinned plugin that is not cached fails
/// without a request, and one that is cached loads.
#[test]
fn offline_lock_pinned_loads_make_no_request() {
    let github = FakeGitHub::start();
    github
        .server()
        .route("/pinned.wasm", Response::ok(b"\0asm pinned".to_vec()));
    let dir = tempfile::tempdir().unwrap();
    let lock_text = format!(
        "version = 1\n\n[plugins.pinned]\nlocator = \"{url}\"\nurl = \"{url}\"\nchecksum = \"{}\"\nsize = 11\n",
        Checksum::of(b"\0asm pinned"),
        url = github.server().url("/pinned.wasm"),
    );
    let lock_path = dir.path().join("warpgate.lock");
    let lockfile = Lockfile::parse_for_api(&lock_text, &lock_path, &github.api_url()).unwrap();
    let mut loader = loader(&github, dir.path()).with_lockfile(lockfile, &lock_path);
    loader.set_offline(Some("`--offline`".into()));
    let rt = runtime();
    let locator: PluginLocator = github.server().url("/pinned.wasm").parse().unwrap();

    let error = rt
        .block_on(loader.load_plugin(id("pinned"), &locator))
        .unwrap_err();
    let message = crate::support::report(&error);
    assert!(
        message.contains("network access is disabled by `--offline`"),
        "{message}"
    );
    assert!(matches!(error, LoaderError::Offline { .. }), "{error:?}");
    assert!(message.contains("plugin `pinned`"), "{message}");
    assert!(
        message.contains("hint: load it once while online"),
        "{message}"
    );
    assert_eq!(github.server().request_count(), 0);
    assert!(
        fs_err::read_dir(dir.path().join("plugins/v1/tmp"))
            .map(std::iter::Iterator::count)
            .unwrap_or(0)
            == 0,
        "a temp file was left behind"
    );

    loader.set_offline(None);
    let online = rt
        .block_on(loader.load_plugin(id("pinned"), &locator))
        .unwrap();
    assert_eq!(github.server().request_count(), 1);
    loader.set_offline(Some("`--offline`".into()));
    let offline = rt
        .block_on(loader.load_plugin(id("pinned"), &locator))
        .unwrap();
    assert_eq!(online, offline);
    assert_eq!(fs_err::read(&offline).unwrap(), b"\0asm pinned");
    assert_eq!(github.server().request_count(), 1);
}

/// Paths are absolute even for a relative `plugins_dir`, and `load_plugin` takes the locator by
/// value or by reference (`L: AsRef<PluginLocator>`).
#[test]
fn relative_plugins_dir_gives_absolute_paths() {
    let github = FakeGitHub::start();
    github
        .server()
        .route("/rel.wasm", Response::ok(b"\0asm rel".to_vec()));
    let dir = tempfile::tempdir().unwrap();
    // The same folder, written relative to the current folder (tests never change it).
    let current = fs_err::canonicalize(std::env::current_dir().unwrap()).unwrap();
    let target = fs_err::canonicalize(dir.path()).unwrap();
    let mut relative = std::path::PathBuf::new();
    for _ in current.components().skip(1) {
        relative.push("..");
    }
    relative.push(target.strip_prefix("/").unwrap());
    assert!(relative.is_relative());
    let loader = PluginLoader::with_http(
        relative.join("plugins"),
        relative.join("temp"),
        github.server().http_client(),
        None,
    )
    .with_github(github.client());
    let rt = runtime();
    let url: PluginLocator = github.server().url("/rel.wasm").parse().unwrap();
    let path = rt
        .block_on(loader.load_plugin(id("rel"), url.clone()))
        .unwrap();
    assert!(path.is_absolute(), "{}", path.display());
    assert!(loader.plugins_dir().is_absolute());
    assert_eq!(fs_err::read(&path).unwrap(), b"\0asm rel");
    let again = rt.block_on(loader.load_plugin(id("rel"), &url)).unwrap();
    assert_eq!(again, path);

    let file = PluginLocator::File {
        file: "unused".into(),
        path: Some(
            relative
                .join("plugins")
                .join("v1/blobs/sha256")
                .join(path.file_name().unwrap()),
        ),
    };
    let path = rt.block_on(loader.load_plugin(id("file"), file)).unwrap();
    assert!(path.is_absolute(), "{}", path.display());
}

/// Output of a `tracing` subscriber, for checking what the loader logs.
#[derive(Clone, Default)]
struct CapturedLog(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLog {
    /// Runs `load` on this thread with a subscriber writing here.
    fn during<T>(&self, load: impl FnOnce() -> T) -> T {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, load)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A GitHub locator without a tag whose refresh hits the rate limit keeps its verified copy,
/// and the failure is logged with the plugin, the locator and the reason.
#[test]
fn stale_if_error_on_rate_limit_is_logged() {
    let github = FakeGitHub::start();
    github.release(
        "acme/tool",
        FakeRelease::new("v1.0.0").wasm("tool.wasm", b"\0asm tool one".to_vec()),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut loader = loader(&github, dir.path());
    // The subscriber is per thread: everything runs on this one.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let latest: PluginLocator = "github://acme/tool".parse().unwrap();
    let first = rt
        .block_on(loader.load_plugin(id("tool"), &latest))
        .unwrap();

    loader.set_cache_duration(Duration::ZERO);
    github.rate_limit(true);
    let log = CapturedLog::default();
    let stale = log
        .during(|| rt.block_on(loader.load_plugin(id("tool"), &latest)))
        .unwrap();
    assert_eq!(stale, first);
    assert_eq!(fs_err::read(&stale).unwrap(), b"\0asm tool one");
    let text = log.text();
    assert!(text.contains("WARN"), "{text}");
    assert!(
        text.contains("could not refresh plugin `tool` (`github://acme/tool`)"),
        "{text}"
    );
    assert!(text.contains("rate limit"), "{text}");

    // Once the API answers again, the refresh picks up a newer release.
    github.rate_limit(false);
    github.release(
        "acme/tool",
        FakeRelease::new("v1.1.0").wasm("tool.wasm", b"\0asm tool two".to_vec()),
    );
    let fresh = rt
        .block_on(loader.load_plugin(id("tool"), &latest))
        .unwrap();
    assert_eq!(fs_err::read(&fresh).unwrap(), b"\0asm tool two");
}

/// An id that the lock pins to another locator fails closed, naming both locators; with the
/// opt-out it loads what the caller asked for, and the loader warns that the lock was not used.
#[test]
fn a_locator_the_lock_does_not_pin_fails_unless_allowed() {
    let github = FakeGitHub::start();
    for (tag, bytes) in [("v1.0.0", b"\0asm v1"), ("v2.0.0", b"\0asm v2")] {
        github.release(
            "acme/tool",
            FakeRelease::new(tag).wasm("tool.wasm", bytes.to_vec()),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let lock_text = format!(
        "version = 1\n\n[plugins.tool]\nlocator = \"github://acme/tool@v1.0.0\"\ntag = \"v1.0.0\"\nasset = \"tool.wasm\"\nurl = \"{}\"\nchecksum = \"{}\"\nsize = 7\n",
        github.download_url("acme/tool", "v1.0.0", "tool.wasm"),
        Checksum::of(b"\0asm v1")
    );
    let lock_path = dir.path().join("warpgate.lock");
    let lockfile = Lockfile::parse_for_api(&lock_text, &lock_path, &github.api_url()).unwrap();
    let strict = loader(&github, dir.path()).with_lockfile(lockfile.clone(), &lock_path);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let v2 = "github://acme/tool@v2.0.0"
        .parse::<PluginLocator>()
        .unwrap();
    let before = github.server().requests().len();
    let error = rt
        .block_on(strict.load_plugin(id("tool"), &v2))
        .unwrap_err();
    assert!(matches!(error, LoaderError::NotPinned { .. }), "{error:?}");
    assert!(
        error.to_string().starts_with(
            "plugin `tool`: the lock pins `github://acme/tool@v1.0.0`, not `github://acme/tool@v2.0.0`"
        ),
        "{error}"
    );
    assert_eq!(
        github.server().requests().len(),
        before,
        "no request when refused"
    );

    let loader = loader(&github, dir.path())
        .with_lockfile(lockfile, &lock_path)
        .allow_unpinned_locators(true);
    let log = CapturedLog::default();
    let path = log
        .during(|| {
            rt.block_on(
                loader.load_plugin(
                    id("tool"),
                    "github://acme/tool@v2.0.0"
                        .parse::<PluginLocator>()
                        .unwrap(),
                ),
            )
        })
        .unwrap();
    assert_eq!(fs_err::read(&path).unwrap(), b"\0asm v2");
    let text = log.text();
    assert!(text.contains("WARN"), "{text}");
    assert!(
        text.contains("plugin `tool`: the lock pins `github://acme/tool@v1.0.0`, not `github://acme/tool@v2.0.0`; loading `github://acme/tool@v2.0.0` without the lock"),
        "{text}"
    );
}

/// `load_verified` returns the bytes' checksum with their path; handed to Extism together
/// (`LoadedPlugin::wasm`), a file swapped after loading is refused instead of run.
#[test]
fn verified_bytes_carry_their_checksum_to_extism() {
    use warpgate::container::{CompileCache, PluginContainer, PluginManifest};

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("json_tools.wasm");
    fs_err::copy(JSON_TOOLS, &file).unwrap();
    let loader = PluginLoader::new(dir.path().join("home"), dir.path().join("tmp"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let locator: PluginLocator = format!("file://{}", file.display()).parse().unwrap();
    let loaded = rt
        .block_on(loader.load_verified(id("json"), &locator))
        .unwrap();
    assert_eq!(loaded.path, file);
    assert_eq!(
        loaded.checksum,
        Checksum::of(&fs_err::read(JSON_TOOLS).unwrap())
    );
    let build = || {
        PluginContainer::builder(id("json"), PluginManifest::new([loaded.wasm()]))
            .compile_cache(CompileCache::Disabled)
            .build()
    };
    build().unwrap();
    fs_err::copy(crate::support::project::FAILING, &file).unwrap();
    let error = build().unwrap_err().to_string();
    assert!(error.to_lowercase().contains("hash"), "{error}");
}

/// An application's existing plugins folder (files of an older layout in it) keeps working:
/// plugins load into warpgate's own `v1/` there, the folder is not marked as a cache, and the
/// files already in it stay.
#[test]
fn an_existing_plugins_folder_is_used_without_being_marked() {
    let github = FakeGitHub::start();
    github
        .server()
        .route("/direct.wasm", Response::ok(b"\0asm direct".to_vec()));
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    fs_err::create_dir_all(&plugins).unwrap();
    fs_err::write(plugins.join("node_tool-v0.13.0.wasm"), b"\0asm old layout").unwrap();
    let loader = loader(&github, dir.path());
    let locator = PluginLocator::Url {
        url: github.server().url("/direct.wasm"),
    };
    let path = runtime()
        .block_on(loader.load_plugin(&id("direct"), &locator))
        .unwrap();
    assert!(path.starts_with(plugins.join("v1")), "{}", path.display());
    assert_eq!(fs_err::read(&path).unwrap(), b"\0asm direct");
    assert!(!plugins.join("CACHEDIR.TAG").exists());
    assert_eq!(
        fs_err::read(plugins.join("node_tool-v0.13.0.wasm")).unwrap(),
        b"\0asm old layout"
    );
}
