//! Files warpgate does not control: special files and links where plugins should be, links
//! out of the project, interrupted downloads, concurrent edits of one project.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::support::listener::LoopbackListener;
use crate::support::project::{JSON_TOOLS, Project, Run};

/// How long a command that must not hang may take before the test kills it and fails.
const HANG: Duration = Duration::from_secs(60);

/// Runs `command`, failing the test (instead of hanging it) if it is still running after
/// [`HANG`].
fn run_bounded(mut command: Command) -> Run {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut child = child;
    loop {
        if child.try_wait().unwrap().is_some() {
            return Run::from(child.wait_with_output().unwrap());
        }
        if started.elapsed() > HANG {
            child.kill().unwrap();
            let run = Run::from(child.wait_with_output().unwrap());
            panic!("still running after {HANG:?} (a hang): {run:#?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[expect(unsafe_code, reason = "mkfifo has no safe wrapper in std")]
fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `name` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
}

fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
    fs_err::os::unix::fs::symlink(target, link).unwrap();
}

/// A device, a FIFO or a folder where a plugin file should be is refused at once, naming what
/// it is, by every command that reads plugin files; none of them hangs or reads without end.
#[test]
fn special_files_are_refused_before_anything_is_read() {
    let project = Project::new("[plugins]\nzero = \"file:///dev/zero\"\n");
    run_bounded(project.command(&["lock"]))
        .code(2)
        .stderr_has("plugin `zero`: cannot read `/dev/zero`")
        .stderr_has("not a regular file: it is a device");

    mkfifo(&project.path("plugins/pipe.wasm"));
    fs_err::write(
        project.path("warpgate.toml"),
        "[plugins]\npipe = \"file://./plugins/pipe.wasm\"\n",
    )
    .unwrap();
    run_bounded(project.command(&["lock"]))
        .code(2)
        .stderr_has("not a regular file: it is a FIFO");

    // A locked file later replaced by a FIFO: every reader says so and goes on.
    fs_err::write(
        project.path("warpgate.toml"),
        "[plugins]\njson = \"file://./plugins/json_tools.wasm\"\n",
    )
    .unwrap();
    project.run(&["lock"]).success();
    fs_err::remove_file(project.path("plugins/json_tools.wasm")).unwrap();
    mkfifo(&project.path("plugins/json_tools.wasm"));
    for args in [
        &["lock", "--locked"][..],
        &["verify"],
        &["fetch"],
        &["call", "json", "add", "{\"left\": 1, \"right\": 1}"],
    ] {
        let run = run_bounded(project.command(args));
        assert_ne!(run.code, 0, "{args:?}: {run:#?}");
    }
    let list = run_bounded(project.command(&["list"])).success();
    assert!(list.stdout.contains("json"), "{list:#?}");
}

/// The vendor directory and the cache never hold links: a vendored copy replaced by a link
/// (here to `/dev/zero`) is reported by `verify` and replaced by `vendor`; a cache blob
/// replaced by a link is treated as corrupt and fetched again.
#[test]
fn links_in_the_vendor_directory_and_the_cache_are_refused() {
    let project = Project::new("[plugins]\njson = \"file://./plugins/json_tools.wasm\"\n");
    project.run(&["lock"]).success();
    project.run(&["vendor"]).success();
    let vendored = project.path("vendor/warpgate/json.wasm");
    fs_err::remove_file(&vendored).unwrap();
    symlink("/dev/zero", &vendored);
    run_bounded(project.command(&["verify", "--vendor-dir", "vendor/warpgate"]))
        .code(1)
        .stderr_has("not a regular file: it is a symbolic link");
    run_bounded(project.command(&["vendor"])).success();
    assert!(
        fs_err::symlink_metadata(&vendored)
            .unwrap()
            .file_type()
            .is_file()
    );
    assert_eq!(
        fs_err::read(&vendored).unwrap(),
        fs_err::read(JSON_TOOLS).unwrap()
    );

    // A blob in the cache swapped for a link to the same bytes elsewhere: not trusted, and
    // removed like a corrupt blob.
    let cache = warpgate::cache::Cache::new(project.cache_home());
    let (blob, checksum, _) = cache.insert_file(Path::new(JSON_TOOLS), None).unwrap();
    fs_err::remove_file(&blob).unwrap();
    symlink(JSON_TOOLS, &blob);
    assert_eq!(cache.get(&checksum).unwrap(), None);
    assert!(fs_err::symlink_metadata(&blob).is_err());
    assert!(Path::new(JSON_TOOLS).is_file());
}

/// `file://./link/../x.wasm` where `link` is a link to another folder: the kernel would read
/// a different `x.wasm` than the lexical path the lock records. The file hashed is the file
/// recorded (the lexical one), and every later check agrees with the lock.
#[test]
fn a_link_before_dot_dot_hashes_the_file_it_records() {
    let project = Project::new("[plugins]\nx = \"file://./link/../x.wasm\"\n");
    fs_err::copy(JSON_TOOLS, project.path("x.wasm")).unwrap();
    fs_err::create_dir_all(project.path("elsewhere/deeper")).unwrap();
    fs_err::write(project.path("elsewhere/x.wasm"), b"\0asm other bytes").unwrap();
    symlink(project.path("elsewhere/deeper"), project.path("link"));

    project.run(&["lock"]).success();
    let lock = project.read("warpgate.lock");
    let expected = warpgate::checksum::Checksum::of(&fs_err::read(JSON_TOOLS).unwrap());
    assert!(lock.contains("path = \"x.wasm\""), "{lock}");
    assert!(
        lock.contains(&format!("checksum = \"{expected}\"")),
        "{lock}"
    );
    project.run(&["lock", "--locked"]).success();
    project.run(&["verify"]).success();
    project.run(&["fetch"]).success();
}

/// A `warpgate.lock` or `warpgate.toml` that links out of the project is not written through:
/// the command fails saying where the link points, and the file it points to is untouched. A
/// link to a file inside the project's folder is written through.
#[test]
fn files_linking_out_of_the_project_are_not_written_through() {
    let project = Project::new("[plugins]\njson = \"file://./plugins/json_tools.wasm\"\n");
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim.lock");
    fs_err::write(&victim, "version = 1\n").unwrap();
    symlink(&victim, project.path("warpgate.lock"));
    project
        .run(&["lock"])
        .code(2)
        .stderr_has("warpgate.lock`")
        .stderr_has(&format!(
            "it is a symbolic link to `{}`",
            fs_err::canonicalize(&victim).unwrap().display()
        ))
        .stderr_has("refusing to write through it")
        .stderr_has("hint: replace the link with a regular file");
    assert_eq!(fs_err::read_to_string(&victim).unwrap(), "version = 1\n");

    let config_victim = outside.path().join("config.toml");
    fs_err::copy(project.path("warpgate.toml"), &config_victim).unwrap();
    fs_err::remove_file(project.path("warpgate.toml")).unwrap();
    symlink(&config_victim, project.path("warpgate.toml"));
    fs_err::remove_file(project.path("warpgate.lock")).unwrap();
    project
        .run(&["add", "fail", "file://./plugins/failing.wasm"])
        .code(2)
        .stderr_has("refusing to write through it");
    assert!(
        !fs_err::read_to_string(&config_victim)
            .unwrap()
            .contains("fail")
    );

    // Inside the project, the link is kept and its target written.
    fs_err::remove_file(project.path("warpgate.toml")).unwrap();
    fs_err::create_dir(project.path("config")).unwrap();
    fs_err::copy(&config_victim, project.path("config/warpgate.toml")).unwrap();
    fs_err::create_dir(project.path("locks")).unwrap();
    fs_err::write(project.path("locks/warpgate.lock"), "version = 1\n").unwrap();
    symlink("config/warpgate.toml", project.path("warpgate.toml"));
    symlink("locks/warpgate.lock", project.path("warpgate.lock"));
    // Both targets lie in folders below the links' own folder: written through.
    project.run(&["lock"]).success();
    assert!(
        project
            .read("locks/warpgate.lock")
            .contains("[plugins.json]")
    );
}

/// The project lock belongs to the project folder: a `lock` holding it (another spelling of
/// the path, another `WARPGATE_HOME`) makes `add` wait, and `add` then re-reads what the
/// holder wrote instead of dropping it.
#[test]
fn one_project_lock_whatever_the_spelling_or_the_cache() {
    let project = Project::new("[plugins]\njson = \"file://./plugins/json_tools.wasm\"\n");
    project.run(&["lock"]).success();
    let alias = tempfile::tempdir().unwrap();
    let link = alias.path().join("same-project");
    symlink(project.dir.path(), &link);

    // This test holds the lock the way a running `warpgate lock` would.
    let held = warpgate::fs::lock_project_folder(project.dir.path()).unwrap();
    let other_home = tempfile::tempdir().unwrap();
    let mut add = project.command(&["add", "fail", "file://./plugins/failing.wasm"]);
    add.current_dir(&link)
        .env("WARPGATE_HOME", other_home.path().join("home"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child: Child = add.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "`add` must wait for the project lock"
    );
    // Meanwhile the holder adds an entry of its own, to the config and the lock.
    let mut config = project.read("warpgate.toml");
    config.push_str("again = \"file://./plugins/json_tools.wasm\"\n");
    fs_err::write(project.path("warpgate.toml"), config).unwrap();
    let lock = project.read("warpgate.lock");
    let json_entry = lock.split("[plugins.json]").nth(1).unwrap().to_string();
    fs_err::write(
        project.path("warpgate.lock"),
        format!("{lock}\n[plugins.again]{json_entry}"),
    )
    .unwrap();
    drop(held);

    let run = Run::from(child.wait_with_output().unwrap()).success();
    let lock = project.read("warpgate.lock");
    let config = project.read("warpgate.toml");
    for id in ["json", "again", "fail"] {
        assert!(config.contains(&format!("{id} = ")), "{id}: {config}");
        assert!(
            lock.contains(&format!("[plugins.{id}]")),
            "{id}: {lock}\n{run:#?}"
        );
    }
}

/// `add` leaves the lock covering the whole config, as `lock` would: a declared entry the
/// lock lacked is locked too, pinned entries are kept; and `call` on a stale lock names the
/// entry.
#[test]
fn add_locks_every_declared_entry() {
    let project = Project::new("[plugins]\njson = \"file://./plugins/json_tools.wasm\"\n");
    project.run(&["lock"]).success();
    let before = project.read("warpgate.lock");
    // Declared by hand, never locked.
    let mut config = project.read("warpgate.toml");
    config.push_str("again = \"file://./plugins/json_tools.wasm\"\n");
    fs_err::write(project.path("warpgate.toml"), config).unwrap();
    project
        .run(&["call", "json", "add", "{}"])
        .code(1)
        .stderr_has("`again`: declared in the config but not in the lock");

    project
        .run(&["add", "fail", "file://./plugins/failing.wasm"])
        .success()
        .stderr_has("Adding again")
        .stderr_has("Added fail");
    let lock = project.read("warpgate.lock");
    assert!(
        lock.contains("[plugins.again]") && lock.contains("[plugins.fail]"),
        "{lock}"
    );
    let json_entry = |text: &str| {
        text.split("[plugins.")
            .find(|part| part.starts_with("json]"))
            .unwrap()
            .to_string()
    };
    assert_eq!(json_entry(&lock), json_entry(&before));
    project.run(&["lock", "--locked"]).success();
}

/// A server that answers the first request with the start of a large body and then sends
/// nothing more (until the test ends), and every later request with `body` in full.
fn stalling_server(body: &'static [u8]) -> LoopbackListener {
    let first = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    LoopbackListener::start("stall", move |mut stream| {
        let first = first.swap(false, std::sync::atomic::Ordering::SeqCst);
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut request = Vec::new();
            let mut buffer = [0; 1024];
            while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => request.extend_from_slice(&buffer[..read]),
                }
            }
            if first {
                let head = "HTTP/1.1 200 OK\r\ncontent-length: 10000000\r\n\r\n";
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&[0; 4096]).await;
                let _ = stream.flush().await;
                tokio::time::sleep(Duration::from_secs(120)).await;
            } else {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body).await;
            }
        }
    })
}

/// The temp files of the cache.
fn temp_files(project: &Project) -> Vec<std::path::PathBuf> {
    fs_err::read_dir(project.cache_home().join("v1/tmp"))
        .map(|entries| entries.map(|entry| entry.unwrap().path()).collect())
        .unwrap_or_default()
}

/// Starts `warpgate lock` on a download that stalls, and waits until its temp file holds
/// bytes.
fn start_stalled_lock(project: &Project) -> Child {
    let mut child = project
        .command(&["lock"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !temp_files(project)
        .iter()
        .any(|path| fs_err::metadata(path).is_ok_and(|metadata| metadata.len() > 0))
    {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("`lock` ended early ({status}): {stderr}");
        }
        assert!(started.elapsed() < HANG, "no temp file appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

const PLUGIN: &[u8] = b"\0asm\x01\0\0\0";

/// Ctrl-C during a download deletes the partial file and exits at once with 130.
#[test]
#[expect(unsafe_code, reason = "kill has no safe wrapper in std")]
fn ctrl_c_removes_the_partial_download() {
    let server = stalling_server(PLUGIN);
    let project = Project::new(&format!(
        "[plugins]\nslow = \"http://127.0.0.1:{}/slow.wasm\"\n",
        server.port()
    ));
    let mut child = start_stalled_lock(&project);
    // SAFETY: sending a signal to our own child process.
    assert_eq!(
        unsafe { libc::kill(child.id().cast_signed(), libc::SIGINT) },
        0
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < HANG, "Ctrl-C did not stop `lock`");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    assert_eq!(temp_files(&project), Vec::<std::path::PathBuf>::new());
    assert!(!project.path("warpgate.lock").exists());
}

/// After a `kill -9` mid-download the partial file stays; the next run that writes to the
/// cache deletes it, because no live process holds it, while a temp file some live process
/// holds is left alone.
#[test]
fn a_killed_download_is_swept_by_the_next_run() {
    let server = stalling_server(PLUGIN);
    let project = Project::new(&format!(
        "[plugins]\nslow = \"http://127.0.0.1:{}/slow.wasm\"\n",
        server.port()
    ));
    let mut child = start_stalled_lock(&project);
    child.kill().unwrap();
    child.wait().unwrap();
    let left = temp_files(&project);
    assert_eq!(left.len(), 1, "{left:?}");
    // Old enough not to be a file whose owner has not locked it yet.
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let age = |path: &Path| {
        fs_err::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
    };
    age(&left[0]);
    // A temp file a live process (this test) holds.
    let live = project.cache_home().join("v1/tmp/download-live");
    let mut held = fs_err::File::create(&live).unwrap();
    held.write_all(b"partial").unwrap();
    held.lock().unwrap();
    age(&live);

    project.run(&["lock"]).success();
    assert_eq!(temp_files(&project), vec![live.clone()]);
    assert!(project.read("warpgate.lock").contains("slow"));
    drop(held);
}

/// A vendored copy that changes while `vendor` runs (after it was checked, before it is
/// linked into the new folder) is caught: the linked file is hashed again, and the run fails
/// with both checksums instead of vendoring the changed bytes.
#[test]
fn vendor_hashes_again_what_it_links() {
    use crate::support::{Response, Route, TestServer};
    let remote: &[u8] = b"\0asm\x01\0\0\0remote";
    let server = TestServer::start([(
        "/remote.wasm",
        Route::sequence([
            Response::ok(remote),
            Response::ok(remote).delay(Duration::from_secs(2)),
        ]),
    )]);
    let project = Project::new(&format!(
        "[plugins]\njson = \"file://./plugins/json_tools.wasm\"\nremote = \"{}\"\n",
        server.url("/remote.wasm")
    ));
    let command = |args: &[&str]| {
        let mut command = project.command(args);
        command.envs(server.env());
        command
    };
    Run::from(command(&["lock"]).output().unwrap()).success();
    Run::from(command(&["vendor"]).output().unwrap()).success();
    // The next run must download `remote` again (slowly), and finds `json` intact first.
    fs_err::remove_file(project.path("vendor/warpgate/remote.wasm")).unwrap();
    fs_err::remove_dir_all(project.cache_home()).unwrap();
    let requests = server.request_count();
    let mut vendor = command(&["vendor"]);
    let child = vendor
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while server.request_count() == requests {
        assert!(
            started.elapsed() < HANG,
            "`vendor` never asked for the download"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // While the download is delayed: the vendored copy changes in place.
    let json = project.path("vendor/warpgate/json.wasm");
    let mut permissions = fs_err::metadata(&json).unwrap().permissions();
    #[expect(
        clippy::permissions_set_readonly_false,
        reason = "the test tampers with a file on purpose"
    )]
    permissions.set_readonly(false);
    fs_err::set_permissions(&json, permissions).unwrap();
    fs_err::OpenOptions::new()
        .write(true)
        .open(&json)
        .unwrap()
        .write_all(b"tampered")
        .unwrap();
    let run = Run::from(child.wait_with_output().unwrap());
    let run = run.code(1).stderr_has("json");
    assert!(run.stderr.contains("Expected:"), "{run:#?}");
}
