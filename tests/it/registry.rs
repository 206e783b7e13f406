//! `registry://` plugins, `warpgate publish` and the team mirror against a real registry
//! (`docker-registry`, see `support::registry`): TLS with a test CA, basic auth, filesystem
//! storage that tests can corrupt.

use std::process::Command;

use warpgate::checksum::Checksum;

use crate::support::TestRegistry;
use crate::support::project::{JSON_TOOLS, Project, Run};

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
    let bytes = fs_err::read(JSON_TOOLS).unwrap();
    let checksum = Checksum::of(&bytes);
    (bytes, checksum)
}

/// Publishes the `json_tools` fixture as `path` (e.g. `plugins/json-tools:1.0.0`); returns the
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
    let (project, locator, digest) = published_json_tools(&registry);
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
    fs_err::remove_dir_all(project.cache_home()).unwrap();
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

/// A project declaring `json = "registry://…/plugins/json-tools:1.0.0"`, with the
/// `json_tools` fixture published there: the project, the locator and the manifest digest.
fn published_json_tools(registry: &TestRegistry) -> (Project, String, String) {
    let locator = registry.locator("plugins/json-tools:1.0.0");
    let project = Project::new(&format!("[plugins]\njson = \"{locator}\"\n"));
    let digest = publish(&project, registry, "plugins/json-tools:1.0.0");
    (project, locator, digest)
}

/// Publishes `file` as `path`; returns the manifest digest.
fn publish_file(project: &Project, registry: &TestRegistry, file: &str, path: &str) -> String {
    let run = run(
        project,
        registry,
        &["publish", file, &registry.locator(path)],
    )
    .success();
    run.stdout.trim().to_string()
}

/// Every file under `dir` (relative paths), for "nothing left behind" checks.
fn files(dir: &std::path::Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            entry
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn a_moved_tag_keeps_the_locked_digest_until_update_and_versions_pick_the_highest_match() {
    let registry = TestRegistry::start();
    let locator = registry.locator("plugins/json-tools:1.0.0");
    let range = registry.locator("plugins/json-tools");
    let project = Project::new(&format!(
        "[plugins]\njson = \"{locator}\"\nranged = {{ locator = \"{range}\", version = \"^1.0\" }}\n"
    ));
    let first = publish(&project, &registry, "plugins/json-tools:1.0.0");
    publish_file(
        &project,
        &registry,
        crate::support::project::FAILING,
        "plugins/json-tools:2.0.0",
    );
    run(&project, &registry, &["lock"]).success();
    let lock = project.read("warpgate.lock");
    assert_eq!(
        lock.matches(&format!("digest = \"{first}\"")).count(),
        2,
        "{lock}"
    );
    assert!(lock.contains("requirement = \"^1.0\"\nregistry"), "{lock}");

    // The tag moves to other bytes, and a higher matching version appears.
    let moved = publish_file(
        &project,
        &registry,
        crate::support::project::FAILING,
        "plugins/json-tools:1.0.0",
    );
    let newer = publish_file(
        &project,
        &registry,
        crate::support::project::FAILING,
        "plugins/json-tools:1.2.0",
    );
    assert_ne!(moved, first);
    run(&project, &registry, &["lock"]).success();
    assert_eq!(
        project.read("warpgate.lock"),
        lock,
        "lock must keep the locked digest"
    );
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    run(&project, &registry, &["fetch"]).success();
    let output = run(
        &project,
        &registry,
        &["call", "json", "add", r#"{"left":1,"right":2}"#],
    )
    .success();
    assert_eq!(output.stdout.trim(), r#"{"sum":3}"#);

    let update = run(&project, &registry, &["update"]).success();
    assert!(update.stdout.contains("json:"), "{update:#?}");
    let lock = project.read("warpgate.lock");
    let failing = Checksum::of(&fs_err::read(crate::support::project::FAILING).unwrap());
    assert!(
        lock.contains(&format!(
            "tag = \"1.0.0\"\ndigest = \"{moved}\"\nchecksum = \"{failing}\""
        )),
        "{lock}"
    );
    assert!(
        lock.contains(&format!("tag = \"1.2.0\"\ndigest = \"{newer}\"")),
        "{lock}"
    );
}

#[test]
fn a_deleted_manifest_fails_resolution_but_locked_bytes_still_come_by_digest() {
    let registry = TestRegistry::start();
    let (project, _, digest) = published_json_tools(&registry);
    run(&project, &registry, &["lock"]).success();
    let lock = project.read("warpgate.lock");

    // Delete the manifest through the registry API.
    let client = warpgate::http::HttpClient::new(warpgate::http::HttpOptions {
        extra_ca_file: Some(registry.ca_path()),
        ..warpgate::http::HttpOptions::default()
    })
    .unwrap();
    let mut request = warpgate::http::Request::new(
        reqwest::Method::DELETE,
        format!(
            "https://{}/v2/plugins/json-tools/manifests/{digest}",
            registry.host()
        ),
    );
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        crate::support::registry::USER,
        crate::support::registry::PASSWORD
    ));
    request
        .headers
        .insert("authorization", format!("Basic {basic}").parse().unwrap());
    let answer = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(client.request(&request))
        .unwrap();
    assert_eq!(answer.status, 202, "{answer:?}");

    let update = run(&project, &registry, &["update"]).code(2);
    assert!(
        update.stderr.contains("failed to fetch plugin `json`"),
        "{update:#?}"
    );
    assert!(
        update
            .stderr
            .contains("manifests/1.0.0` was not found in the registry (HTTP 404)"),
        "{update:#?}"
    );
    assert!(update.stderr.contains("hint: check that `"), "{update:#?}");
    assert_eq!(project.read("warpgate.lock"), lock);

    // The lock pins the layer's digest: no manifest is needed to fetch it.
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    run(&project, &registry, &["fetch"]).success();
}

#[test]
fn credentials_wrong_missing_and_from_the_docker_config() {
    let registry = TestRegistry::start();
    let (project, _, _) = published_json_tools(&registry);

    let wrong = command(&project, &registry, &["lock"])
        .env(
            "WARPGATE_REGISTRY_AUTH",
            format!("{}=warpgate:wrong", registry.host()),
        )
        .output()
        .unwrap();
    let wrong = Run::from(wrong).code(2);
    assert!(
        wrong.stderr.contains(&format!(
            "registry `{}` refused access to `plugins/json-tools` (pull) with the credentials from `WARPGATE_REGISTRY_AUTH`",
            registry.host()
        )),
        "{wrong:#?}"
    );
    assert!(
        wrong.stderr.contains("hint: the credentials are wrong"),
        "{wrong:#?}"
    );
    assert!(!wrong.stderr.contains("wrong\n") && !wrong.stderr.contains(":wrong"));
    assert!(!project.path("warpgate.lock").exists());

    // Credentials for another registry are never sent here.
    let other = command(&project, &registry, &["lock"])
        .env(
            "WARPGATE_REGISTRY_AUTH",
            format!("127.0.0.1:1={}", registry.auth().split_once('=').unwrap().1),
        )
        .output()
        .unwrap();
    let other = Run::from(other).code(2);
    assert!(other.stderr.contains("without credentials"), "{other:#?}");
    assert!(
        other.stderr.contains(&format!(
            "hint: log in with `docker login {}`",
            registry.host()
        )),
        "{other:#?}"
    );

    // `~/.docker/config.json` (through `DOCKER_CONFIG`), with a credential helper.
    let docker = tempfile::tempdir().unwrap();
    let helper = docker.path().join("docker-credential-wgtest");
    fs_err::write(
        &helper,
        format!(
            "#!/bin/sh\nread host\n[ \"$host\" = \"{}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\necho '{{\"ServerURL\":\"'$host'\",\"Username\":\"{}\",\"Secret\":\"{}\"}}'\n",
            registry.host(),
            crate::support::registry::USER,
            crate::support::registry::PASSWORD
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs_err::write(
        docker.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"wgtest"}}}}"#, registry.host()),
    )
    .unwrap();
    let path = std::env::join_paths(std::iter::once(docker.path().to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let helped = command(&project, &registry, &["lock"])
        .env_remove("WARPGATE_REGISTRY_AUTH")
        .env("DOCKER_CONFIG", docker.path())
        .env("PATH", path)
        .output()
        .unwrap();
    Run::from(helped).success();

    // Plain `auths` entries.
    fs_err::remove_file(project.path("warpgate.lock")).unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD
        .encode(registry.auth().split_once('=').unwrap().1);
    fs_err::write(
        docker.path().join("config.json"),
        format!(
            r#"{{"auths":{{"https://{}":{{"auth":"{auth}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let configured = command(&project, &registry, &["lock"])
        .env_remove("WARPGATE_REGISTRY_AUTH")
        .env("DOCKER_CONFIG", docker.path())
        .output()
        .unwrap();
    Run::from(configured).success();
}

#[test]
fn a_blob_whose_bytes_do_not_match_its_digest_is_refused_and_leaves_nothing() {
    let registry = TestRegistry::start();
    let (project, _, _) = published_json_tools(&registry);
    run(&project, &registry, &["lock"]).success();
    let (bytes, checksum) = json_tools();

    // Same length, other bytes, in the registry's own storage.
    let blob = registry.blob_file(&checksum.hex());
    let mut corrupt = bytes.clone();
    corrupt[100] ^= 0xff;
    fs_err::write(&blob, &corrupt).unwrap();
    fs_err::remove_dir_all(project.cache_home()).unwrap();

    let failed = run(&project, &registry, &["fetch"]).code(1);
    assert!(
        failed
            .stderr
            .contains("checksum mismatch for plugin `json`"),
        "{failed:#?}"
    );
    assert!(
        failed.stderr.contains(&format!("Expected: `{checksum}`"))
            || failed.stderr.contains(&format!("Expected: {checksum}")),
        "{failed:#?}"
    );
    assert!(failed.stderr.contains("Computed:"), "{failed:#?}");
    assert!(failed.stderr.contains("hint:"), "{failed:#?}");
    let left: Vec<String> = files(&project.cache_home())
        .into_iter()
        .filter(|file| file.contains("blobs/") || file.contains("tmp"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn offline_opens_no_connection() {
    let registry = TestRegistry::start();
    let (project, _, _) = published_json_tools(&registry);
    registry.clear_requests();

    let lock = run(&project, &registry, &["lock", "--offline"]).code(2);
    assert!(
        lock.stderr
            .contains("network access is disabled by `--offline`, but plugin `json`"),
        "{lock:#?}"
    );
    run(&project, &registry, &["lock"]).success();
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    registry.clear_requests();
    let fetch = run(&project, &registry, &["fetch", "--offline"]).code(2);
    assert!(
        fetch.stderr.contains(
            "network access is disabled by `--offline`, but plugin `json` is not in the cache"
        ),
        "{fetch:#?}"
    );
    assert!(
        fetch.stderr.contains("hint: run `warpgate fetch`"),
        "{fetch:#?}"
    );
    assert_eq!(registry.requests(), vec![]);
    run(&project, &registry, &["fetch"]).success();
    registry.clear_requests();
    run(&project, &registry, &["fetch", "--offline"]).success();
    run(
        &project,
        &registry,
        &[
            "call",
            "--offline",
            "json",
            "add",
            r#"{"left":1,"right":1}"#,
        ],
    )
    .success();
    assert_eq!(registry.requests(), vec![]);
}

#[test]
fn mirror_push_then_a_fresh_cache_fetches_everything_from_the_mirror() {
    use crate::support::{FakeGitHub, FakeRelease, Response};
    let origin = TestRegistry::start();
    let mirror = TestRegistry::start();
    let github = FakeGitHub::start();
    let deno = b"\0asm deno from github".to_vec();
    let hello = b"\0asm hello from a URL".to_vec();
    github.release(
        "acme/deno-plugin",
        FakeRelease::new("v1.0.0").wasm("deno.wasm", deno.clone()),
    );
    github
        .server()
        .route("/hello.wasm", Response::ok(hello.clone()));
    let project = Project::new(&format!(
        "[plugins]\njson = \"{}\"\ndeno = \"github://acme/deno-plugin\"\nhello = \"{}\"\necho = \"file://./plugins/failing.wasm\"\n",
        origin.locator("plugins/json-tools:1.0.0"),
        github.server().url("/hello.wasm"),
    ));
    publish(&project, &origin, "plugins/json-tools:1.0.0");

    // One trust bundle and one credential list for every server.
    let bundle = project.path("ca-bundle.pem");
    let mut pem = fs_err::read_to_string(origin.ca_path()).unwrap();
    pem.push_str(&fs_err::read_to_string(mirror.ca_path()).unwrap());
    pem.push_str(github.server().ca_pem());
    fs_err::write(&bundle, pem).unwrap();
    let mut base: Vec<(String, std::ffi::OsString)> = github
        .env()
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
    base.push(("SSL_CERT_FILE".into(), bundle.clone().into()));
    base.push((
        "WARPGATE_REGISTRY_AUTH".into(),
        format!("{} {}", origin.auth(), mirror.auth()).into(),
    ));
    let everywhere = |args: &[&str], extra: &[(&str, String)]| {
        let mut command = command(&project, &mirror, args);
        command.envs(base.iter().map(|(name, value)| (name, value)));
        command.envs(extra.iter().map(|(name, value)| (*name, value.clone())));
        Run::from(command.output().unwrap())
    };
    everywhere(&["lock"], &[]).success();
    let target = mirror.locator("team/plugins");
    let first = everywhere(&["mirror", "push", &target], &[]).success();
    assert!(first.stderr.contains("4 plugins"), "{first:#?}");
    assert!(
        first.stderr.contains("(4 uploaded, 0 already there)"),
        "{first:#?}"
    );

    // A second push of the unchanged lock uploads nothing: one `HEAD` per plugin.
    mirror.clear_requests();
    let second = everywhere(&["mirror", "push", &target], &[]).success();
    assert!(
        second.stderr.contains("(0 uploaded, 4 already there)"),
        "{second:#?}"
    );
    let requests = mirror.requests();
    eprintln!(
        "second mirror push: {} requests: {requests:#?}",
        requests.len()
    );
    assert!(requests.iter().all(|r| r.method == "HEAD"), "{requests:#?}");
    assert_eq!(
        requests.iter().filter(|r| r.status == 200).count(),
        4,
        "{requests:#?}"
    );
    // The first request learns that the registry wants Basic auth; the others wait for it.
    assert_eq!(requests.len(), 5, "{requests:#?}");

    // The origins go away; a fresh cache fills from the mirror alone.
    drop(github);
    drop(origin);
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    mirror.clear_requests();
    everywhere(&["fetch"], &[("WARPGATE_MIRROR", target.clone())]).success();
    let requests = mirror.requests();
    eprintln!("mirrored fetch: {} requests: {requests:#?}", requests.len());
    let served: Vec<&str> = requests
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(served.len(), 3, "{requests:#?}");
    assert_eq!(requests.len(), 4, "{requests:#?}");
    assert!(
        served
            .iter()
            .all(|path| path.starts_with("/v2/team/plugins/blobs/sha256:"))
    );
    let cache = warpgate::cache::Cache::new(project.cache_home());
    for bytes in [deno, hello, json_tools().0] {
        assert!(cache.get(&Checksum::of(&bytes)).unwrap().is_some());
    }

    // Without the mirror, the dead origins are all there is.
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    everywhere(&["fetch"], &[("WARPGATE_MIRROR", "off".into())]).code(2);
}

#[test]
fn publish_lock_vendor_and_build_by_digest() {
    let registry = TestRegistry::start();
    let locator = registry.locator("plugins/json-tools:1.0.0");
    let app = crate::build::App::new("wg-it-registry-build", &[]);
    fs_err::write(
        app.path("warpgate.toml"),
        format!("[plugins]\njson = \"{locator}\"\n"),
    )
    .unwrap();
    let project = Project {
        dir: tempfile::tempdir().unwrap(),
    };
    publish(&project, &registry, "plugins/json-tools:1.0.0");
    let in_app = |args: &[&str]| {
        let mut command = command(&project, &registry, args);
        command
            .current_dir(app.path(""))
            .env("WARPGATE_HOME", app.home());
        Run::from(command.output().unwrap())
    };
    in_app(&["lock"]).success();
    let (bytes, checksum) = json_tools();

    // `warpgate vendor` with an empty cache pulls the layer by digest.
    fs_err::remove_dir_all(app.home()).unwrap();
    registry.clear_requests();
    in_app(&["vendor"]).success();
    assert_eq!(
        fs_err::read(app.path("vendor/warpgate/json.wasm")).unwrap(),
        bytes
    );
    assert!(
        registry
            .requests()
            .iter()
            .all(|r| r.path == format!("/v2/plugins/json-tools/blobs/{checksum}")),
    );

    // The build script, online with an empty cache and no vendor folder, pulls by digest too.
    fs_err::remove_dir_all(app.path("vendor")).unwrap();
    fs_err::remove_dir_all(app.home()).unwrap();
    registry.clear_requests();
    let env = registry.env();
    let env: Vec<(&str, &std::ffi::OsStr)> = env
        .iter()
        .map(|(name, value)| (*name, value.as_os_str()))
        .collect();
    app.cargo_build(true, &env).success();
    assert_eq!(
        app.run_binary(),
        format!("json {checksum} {}\n", bytes.len())
    );
    let requests = registry.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.path == format!("/v2/plugins/json-tools/blobs/{checksum}")),
        "{requests:#?}"
    );
    assert!(requests.iter().any(|r| r.status == 200), "{requests:#?}");
}

/// A registry client trusting every server of `servers`, with `entries` as its only
/// credentials (`WARPGATE_REGISTRY_AUTH` syntax).
fn fake_registry_client(
    servers: &[&crate::support::TestServer],
    entries: &str,
    dir: &std::path::Path,
) -> warpgate::oci::client::RegistryClient {
    let bundle = dir.join("bundle.pem");
    let pem: String = servers.iter().map(|server| server.ca_pem()).collect();
    fs_err::write(&bundle, pem).unwrap();
    let http = warpgate::http::HttpClient::new(warpgate::http::HttpOptions {
        extra_ca_file: Some(bundle),
        ..servers[0].http_options()
    })
    .unwrap();
    warpgate::oci::client::RegistryClient::new(
        http,
        warpgate::oci::auth::CredentialStore::from_entries(entries),
    )
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Runtime::new().unwrap().block_on(future)
}

/// `127.0.0.1:<port>`, a fake registry's host.
fn fake_host(server: &crate::support::TestServer) -> String {
    format!("127.0.0.1:{}", server.port())
}

#[test]
fn credentials_never_follow_a_blob_redirect_to_another_host() {
    use crate::support::{Response, Route, TestServer};
    let bytes = b"\0asm blob in object storage".to_vec();
    let checksum = Checksum::of(&bytes);
    let storage = TestServer::start([("/blob", Response::ok(bytes.clone()))]);
    let blob_path = format!("/v2/ns/img/blobs/{checksum}");
    let registry = TestServer::start([(
        blob_path.as_str(),
        Route::sequence([
            Response::status(401).header("www-authenticate", r#"Basic realm="test""#),
            Response::redirect(storage.url("/blob")),
        ]),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let host = fake_host(&registry);
    let client = fake_registry_client(
        &[&registry, &storage],
        &format!("{host}=user:s3cret"),
        dir.path(),
    );
    let dest = dir.path().join("blob");
    let downloaded =
        block_on(client.pull_blob(&host, "ns/img", &checksum, &dest, None, &|_, _| {})).unwrap();
    assert_eq!(downloaded.checksum, checksum);
    let sent = registry.requests();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert!(sent[0].header("authorization").is_none(), "{sent:#?}");
    assert!(
        sent[1]
            .header("authorization")
            .is_some_and(|value| value.starts_with("Basic ")),
        "{sent:#?}"
    );
    let redirected = storage.requests();
    assert_eq!(redirected.len(), 1, "{redirected:#?}");
    assert_eq!(
        redirected[0].header("authorization"),
        None,
        "{redirected:#?}"
    );

    // A blob larger than the size the lock records is refused while it streams.
    let error = block_on(client.pull_blob(&host, "ns/img", &checksum, &dest, Some(10), &|_, _| {}))
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("larger than the download size limit of 10 bytes"),
        "{error}"
    );
}

#[test]
fn bearer_tokens_stay_on_the_registry_and_credentials_reach_only_its_own_token_service() {
    use crate::support::{Response, Route, TestServer};
    let bytes = b"\0asm blob behind a token".to_vec();
    let checksum = Checksum::of(&bytes);
    let registry = TestServer::empty();
    let host = fake_host(&registry);
    let challenge = |realm: String| {
        Response::status(401).header(
            "www-authenticate",
            format!(r#"Bearer realm="{realm}",service="fake",scope="repository:ns/img:pull""#),
        )
    };
    // The token service on the registry's host; the blob redirected to another host name.
    registry.route(
        "/token",
        Response::json(&serde_json::json!({ "token": "t0ken" })),
    );
    registry.route("/blob", Response::ok(bytes.clone()));
    registry.route(
        format!("/v2/ns/img/blobs/{checksum}"),
        Route::sequence([
            challenge(registry.url("/token")),
            Response::redirect(registry.alt_url("/blob")),
        ]),
    );
    // Another repository whose token service is on another host: no credentials there.
    registry.route(
        format!("/v2/other/img/blobs/{checksum}"),
        Route::sequence([
            challenge(registry.alt_url("/token")),
            Response::ok(bytes.clone()),
        ]),
    );
    let dir = tempfile::tempdir().unwrap();
    let client = fake_registry_client(&[&registry], &format!("{host}=user:s3cret"), dir.path());
    let dest = dir.path().join("blob");
    for repository in ["ns/img", "other/img"] {
        let downloaded =
            block_on(client.pull_blob(&host, repository, &checksum, &dest, None, &|_, _| {}))
                .unwrap();
        assert_eq!(downloaded.checksum, checksum);
    }
    let sent = registry.requests();
    let find = |path: &str, alt: bool| {
        sent.iter()
            .filter(|request| request.path.starts_with(path) && request.is_alt_host() == alt)
            .collect::<Vec<_>>()
    };
    let own_token = find("/token", false);
    assert_eq!(own_token.len(), 1, "{sent:#?}");
    assert!(
        own_token[0]
            .header("authorization")
            .is_some_and(|value| value.starts_with("Basic ")),
        "{sent:#?}"
    );
    assert!(
        own_token[0]
            .path
            .contains("scope=repository%3Ans%2Fimg%3Apull")
    );
    let foreign_token = find("/token", true);
    assert_eq!(foreign_token.len(), 1, "{sent:#?}");
    assert_eq!(foreign_token[0].header("authorization"), None, "{sent:#?}");
    let blob = find("/blob", true);
    assert_eq!(blob.len(), 1, "{sent:#?}");
    assert_eq!(blob[0].header("authorization"), None, "{sent:#?}");
    let pulls = find(&format!("/v2/ns/img/blobs/{checksum}"), false);
    assert_eq!(pulls[1].header("authorization"), Some("Bearer t0ken"));
}

#[test]
fn oversized_manifests_and_malformed_tags_are_refused() {
    use crate::support::{Response, TestServer};
    let registry = TestServer::empty();
    let host = fake_host(&registry);
    let huge = vec![b' '; 5 * 1024 * 1024];
    registry.route(
        "/v2/ns/img/manifests/1.0",
        Response::ok(huge.clone()).header("content-type", warpgate::oci::manifest::OCI_MANIFEST),
    );
    registry.route(
        "/v2/ns/img/manifests/2.0",
        Response::ok(huge)
            .header("content-type", warpgate::oci::manifest::OCI_MANIFEST)
            .close_delimited(),
    );
    registry.route(
        "/v2/ns/img/tags/list",
        Response::json(&serde_json::json!({
            "name": "ns/img",
            "tags": ["9.0.0+not-a-tag", "9.0.0\u{1b}[2J\nhint: run `rm -rf ~`", "0.1.0"],
        })),
    );
    let dir = tempfile::tempdir().unwrap();
    let client = fake_registry_client(&[&registry], "", dir.path());
    for tag in ["1.0", "2.0"] {
        let locator =
            warpgate::oci::reference::RegistryLocator::parse_body(&format!("{host}/ns/img:{tag}"))
                .unwrap();
        let error = block_on(client.resolve(&locator, None)).unwrap_err();
        assert!(
            error.to_string().contains(&format!(
                "the manifest at `{tag}` is larger than 4194304 bytes"
            )),
            "{error}"
        );
    }
    let locator =
        warpgate::oci::reference::RegistryLocator::parse_body(&format!("{host}/ns/img")).unwrap();
    let requirement = semver::VersionReq::parse(">=1").unwrap();
    let error = block_on(client.resolve(&locator, Some(&requirement)))
        .unwrap_err()
        .to_string();
    assert!(error.contains("(semver tags found: `0.1.0`)"), "{error}");
    assert!(
        !error.contains('\u{1b}') && !error.contains("rm -rf"),
        "{error}"
    );
}

#[test]
fn token_auth_publishes_with_credentials_and_pulls_anonymously() {
    let registry = TestRegistry::start_with_tokens();
    let (project, _, digest) = published_json_tools(&registry);
    let (bytes, checksum) = json_tools();
    let tokens = registry.token_server().requests();
    assert!(
        !tokens.is_empty()
            && tokens.iter().all(|request| request.status == 200
                && request.user.as_deref() == Some(crate::support::registry::USER)
                && request.scopes == ["repository:plugins/json-tools:pull,push"]),
        "{tokens:#?}"
    );

    // Without credentials: an anonymous token, good for pulls.
    let anonymous = |args: &[&str]| {
        let mut command = command(&project, &registry, args);
        command.env_remove("WARPGATE_REGISTRY_AUTH");
        Run::from(command.output().unwrap())
    };
    anonymous(&["lock"]).success();
    assert!(
        project
            .read("warpgate.lock")
            .contains(&format!("digest = \"{digest}\"\nchecksum = \"{checksum}\"")),
    );
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    anonymous(&["fetch"]).success();
    let cache = warpgate::cache::Cache::new(project.cache_home());
    assert!(cache.get(&checksum).unwrap().is_some());
    let pulls: Vec<_> = registry
        .token_server()
        .requests()
        .into_iter()
        .skip(tokens.len())
        .collect();
    assert!(
        !pulls.is_empty()
            && pulls.iter().all(|request| request.user.is_none()
                && request.status == 200
                && request.scopes == ["repository:plugins/json-tools:pull"]),
        "{pulls:#?}"
    );
    assert_eq!(
        fs_err::read(cache.get(&checksum).unwrap().unwrap()).unwrap(),
        bytes
    );

    // An anonymous push gets a pull-only token, which the registry refuses.
    let pushed = anonymous(&[
        "publish",
        JSON_TOOLS,
        &registry.locator("plugins/other:1.0.0"),
    ]);
    let pushed = pushed.code(2);
    assert!(
        pushed.stderr.contains(&format!(
            "registry `{}` refused access to `plugins/other` (pull,push) without credentials",
            registry.host()
        )),
        "{pushed:#?}"
    );

    // Wrong credentials: the token service refuses them, and the password is never shown.
    let wrong = Run::from(
        command(&project, &registry, &["update"])
            .env(
                "WARPGATE_REGISTRY_AUTH",
                format!("{}=warpgate:not-the-password", registry.host()),
            )
            .output()
            .unwrap(),
    )
    .code(2);
    assert!(
        wrong
            .stderr
            .contains("with the credentials from `WARPGATE_REGISTRY_AUTH`"),
        "{wrong:#?}"
    );
    assert!(!wrong.stderr.contains("not-the-password"), "{wrong:#?}");
    let last = registry.token_server().requests().pop().unwrap();
    assert_eq!(last.status, 401, "{last:?}");
}

#[test]
fn a_mirror_serving_wrong_bytes_is_refused_and_the_origin_answers() {
    let origin = TestRegistry::start();
    let mirror = TestRegistry::start();
    let project = Project::new(&format!(
        "[plugins]\njson = \"{}\"\n",
        origin.locator("plugins/json-tools:1.0.0")
    ));
    publish(&project, &origin, "plugins/json-tools:1.0.0");
    let bundle = project.path("ca-bundle.pem");
    let pem = fs_err::read_to_string(origin.ca_path()).unwrap()
        + &fs_err::read_to_string(mirror.ca_path()).unwrap();
    fs_err::write(&bundle, pem).unwrap();
    let target = mirror.locator("team/plugins");
    let auth = format!("{} {}", origin.auth(), mirror.auth());
    let both = |args: &[&str]| {
        let mut command = command(&project, &mirror, args);
        command
            .env("SSL_CERT_FILE", &bundle)
            .env("WARPGATE_REGISTRY_AUTH", &auth)
            .env("WARPGATE_MIRROR", &target);
        Run::from(command.output().unwrap())
    };
    both(&["lock"]).success();
    both(&["mirror", "push"]).success();
    let (bytes, checksum) = json_tools();
    let mut corrupt = bytes.clone();
    corrupt[100] ^= 0xff;
    fs_err::write(mirror.blob_file(&checksum.hex()), &corrupt).unwrap();

    fs_err::remove_dir_all(project.cache_home()).unwrap();
    origin.clear_requests();
    let fetched = both(&["fetch"]).success();
    assert!(
        fetched.stderr.contains(&format!(
            "plugin `json`: the mirror `{target}` served other bytes than the lock pins (expected `{checksum}`, computed `{}`); they were discarded, trying the origin",
            Checksum::of(&corrupt)
        )),
        "{fetched:#?}"
    );
    assert!(
        origin.requests().iter().any(|r| r.path
            == format!("/v2/plugins/json-tools/blobs/{checksum}")
            && r.status == 200)
    );
    let cache = warpgate::cache::Cache::new(project.cache_home());
    let cached = cache.get(&checksum).unwrap().unwrap();
    assert_eq!(fs_err::read(cached).unwrap(), bytes);

    // With the origin gone too, the failure is the origin's, after the mirror's warning.
    drop(origin);
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    let failed = both(&["fetch"]).code(2);
    assert!(
        failed
            .stderr
            .contains("served other bytes than the lock pins"),
        "{failed:#?}"
    );
    assert!(!failed.stderr.contains("lock --update"), "{failed:#?}");
    assert!(
        failed.stderr.contains("failed to fetch plugin `json`"),
        "{failed:#?}"
    );
    let left: Vec<String> = files(&project.cache_home())
        .into_iter()
        .filter(|file| file.contains("blobs/") || file.contains("tmp"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn the_mirror_setting_comes_from_cargo_metadata_too() {
    use warpgate::config::Config;
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    };
    let package = |name: &str, metadata: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n{metadata}"
        )
    };
    let plugins = "json = \"file://./json.wasm\"\n";

    // A workspace's table, and a member that declares plugins but inherits the mirror.
    write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"app\", \"own\"]\n\n[workspace.metadata.warpgate]\nmirror = \"registry://mirror.example.com/team/plugins\"\n",
    );
    write("app/src/lib.rs", "");
    write(
        "app/Cargo.toml",
        &package(
            "app",
            &format!("[package.metadata.warpgate.plugins]\n{plugins}"),
        ),
    );
    write("own/src/lib.rs", "");
    write("own/Cargo.toml", &package("own", ""));
    let config = Config::load(&dir.path().join("app/Cargo.toml")).unwrap();
    assert_eq!(
        config.mirror.map(|mirror| mirror.to_string()).as_deref(),
        Some("registry://mirror.example.com/team/plugins")
    );

    // A package's own `mirror` wins over the workspace's.
    write(
        "own/Cargo.toml",
        &package(
            "own",
            &format!(
                "[package.metadata.warpgate]\nmirror = \"registry://localhost:5000/own\"\n\n[package.metadata.warpgate.plugins]\n{plugins}"
            ),
        ),
    );
    let config = Config::load(&dir.path().join("own/Cargo.toml")).unwrap();
    assert_eq!(
        config.mirror.map(|mirror| mirror.to_string()).as_deref(),
        Some("registry://localhost:5000/own")
    );

    // An invalid mirror is an error that names the table.
    write(
        "own/Cargo.toml",
        &package(
            "own",
            &format!(
                "[package.metadata.warpgate]\nmirror = \"registry://localhost:5000/own:1.0\"\n\n[package.metadata.warpgate.plugins]\n{plugins}"
            ),
        ),
    );
    let error = Config::load(&dir.path().join("own/Cargo.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`[package.metadata.warpgate]` `mirror`: the mirror `registry://localhost:5000/own:1.0` has a tag or digest"),
        "{error}"
    );
}

/// Set in the child process of [`an_invalid_mirror_setting_fails_the_cli_and_the_loader`].
const LOADER_CHILD: &str = "WARPGATE_IT_INVALID_MIRROR_CHILD";

#[test]
fn an_invalid_mirror_setting_fails_the_cli_and_the_loader() {
    use warpgate::loader::{LoaderError, PluginLoader};
    use warpgate::locator::PluginLocator;
    let invalid = "registry://nohost/team";
    if std::env::var_os(LOADER_CHILD).is_some() {
        // The child: `PluginLoader::new` reads `WARPGATE_MIRROR` from this process.
        let dir = tempfile::tempdir().unwrap();
        let loader = PluginLoader::new(dir.path().join("home"), dir.path().join("tmp"));
        let locator: PluginLocator = format!("file://{JSON_TOOLS}").parse().unwrap();
        let id = warpgate::Id::new("json").unwrap();
        let error = block_on(loader.load_verified(&id, &locator)).unwrap_err();
        assert!(matches!(error, LoaderError::Mirror(_)), "{error:?}");
        println!("child: {error}");
        let loader = loader.with_mirror(None);
        block_on(loader.load_verified(&id, &locator)).unwrap();
        println!("child: loaded with the mirror set explicitly");
        return;
    }
    let project = Project::new("[plugins]\njson = \"file://./plugins/json_tools.wasm\"\n");
    project.run(&["lock"]).success();
    let cli = Run::from(
        project
            .command(&["fetch"])
            .env("WARPGATE_MIRROR", invalid)
            .output()
            .unwrap(),
    )
    .code(2);
    let message = "invalid `WARPGATE_MIRROR`: the mirror `registry://nohost/team`: `nohost` is not a registry host";
    assert!(cli.stderr.contains(message), "{cli:#?}");

    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "registry::an_invalid_mirror_setting_fails_the_cli_and_the_loader",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LOADER_CHILD, "1")
        .env("WARPGATE_MIRROR", invalid)
        .env_remove("WARPGATE_OFFLINE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&child.stderr)
    );
    assert!(stdout.contains(&format!("child: {message}")), "{stdout}");
    assert!(
        stdout.contains("child: loaded with the mirror set explicitly"),
        "{stdout}"
    );
}

#[test]
fn a_plain_http_loopback_registry_serves_the_cli_and_the_loader() {
    let registry = TestRegistry::start_plain();
    let (project, locator, _) = published_json_tools(&registry);
    run(&project, &registry, &["lock"]).success();
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    run(&project, &registry, &["fetch"]).success();
    let output = run(
        &project,
        &registry,
        &["call", "json", "add", r#"{"left":40,"right":2}"#],
    )
    .success();
    assert_eq!(output.stdout.trim(), r#"{"sum":42}"#);

    // An app's loader resolves the floating tag itself, then reuses that resolution.
    let dir = tempfile::tempdir().unwrap();
    let http = warpgate::http::HttpClient::new(warpgate::http::HttpOptions::default()).unwrap();
    let loader = warpgate::PluginLoader::with_http(
        dir.path().join("plugins"),
        dir.path().join("temp"),
        http,
        None,
    );
    let id = warpgate::Id::new("json").unwrap();
    let locator: warpgate::PluginLocator = locator.parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let path = rt
        .block_on(loader.load_plugin(id.clone(), &locator))
        .unwrap();
    let (bytes, _) = json_tools();
    assert_eq!(fs_err::read(&path).unwrap(), bytes);
    registry.clear_requests();
    let again = rt.block_on(loader.load_plugin(id, &locator)).unwrap();
    assert_eq!(again, path);
    assert_eq!(registry.requests(), vec![], "a fresh resolution is reused");
}

#[test]
fn a_loopback_registry_whose_certificate_is_not_trusted_is_reported_as_such() {
    let registry = TestRegistry::start();
    let (project, _, _) = published_json_tools(&registry);
    let mut lock = command(&project, &registry, &["lock"]);
    lock.env_remove("SSL_CERT_FILE");
    let run = Run::from(lock.output().unwrap()).code(2);
    // The https:// error, not the answer of a plain http:// attempt at a TLS port.
    assert!(
        run.stderr.contains("invalid peer certificate"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("http://"), "{}", run.stderr);
    assert!(!project.path("warpgate.lock").exists());
}

/// Once plain `http://` has reached a loopback registry, its own errors are reported, not the
/// `https://` error that led to trying it.
#[test]
fn a_plain_http_registry_reports_its_own_errors() {
    use crate::support::{Response, TestServer};
    let registry = TestServer::empty_plain();
    let host = fake_host(&registry);
    registry.route(
        "/v2/ns/img/manifests/1.0",
        Response::ok(vec![b' '; 5 * 1024 * 1024])
            .header("content-type", warpgate::oci::manifest::OCI_MANIFEST),
    );
    // This server waits for the rest of a TLS handshake it cannot read: the `https://` attempt
    // ends at the read timeout, short here.
    let http = warpgate::http::HttpClient::new(warpgate::http::HttpOptions {
        read_timeout: std::time::Duration::from_millis(300),
        max_retries: 0,
        ..registry.http_options()
    })
    .unwrap();
    let client = warpgate::oci::client::RegistryClient::new(
        http,
        warpgate::oci::auth::CredentialStore::from_entries(""),
    );
    let locator =
        warpgate::oci::reference::RegistryLocator::parse_body(&format!("{host}/ns/img:1.0"))
            .unwrap();
    let error = block_on(client.resolve(&locator, None)).unwrap_err();
    let report = crate::support::report(&error);
    assert!(
        report.contains("the manifest at `1.0` is larger than 4194304 bytes"),
        "{report}"
    );
    assert!(!report.contains("https://"), "{report}");
}
