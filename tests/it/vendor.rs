//! The `vendor` and `verify` library operations on real folders (no network: URL plugins
//! come from a pre-filled cache, `file://` plugins from the project).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use warpgate::cache::Cache;
use warpgate::checksum::Checksum;
use warpgate::config::Config;
use warpgate::fetch::Fetcher;
use warpgate::id::Id;
use warpgate::lock::StaleReason;
use warpgate::lockfile::{LockedPlugin, Lockfile, file_lock_path};
use warpgate::source::{Origin, SourceError};
use warpgate::vendor::{
    self, CacheStatus, FileChange, MANIFEST_NAME, Problem, VendorError, VendoredStatus,
};

const REMOTE: &[u8] = b"\0asm remote plugin";
const LOCAL: &[u8] = b"\0asm local plugin";
const REMOTE_URL: &str = "https://plugins.example.invalid/remote.wasm";

/// A project with a `file://` plugin (`local`) and a URL plugin (`remote`, cached).
struct Project {
    dir: tempfile::TempDir,
    config: Config,
    lockfile: Lockfile,
    fetcher: Fetcher,
}

impl Project {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir(dir.path().join("plugins")).unwrap();
        fs_err::write(dir.path().join("plugins/local.wasm"), LOCAL).unwrap();
        fs_err::write(
            dir.path().join("warpgate.toml"),
            format!(
                "[plugins]\nlocal = \"file://./plugins/local.wasm\"\nremote = \"{REMOTE_URL}\"\n"
            ),
        )
        .unwrap();
        let config = Config::discover(dir.path()).unwrap();
        let mut lockfile = Lockfile::default();
        lockfile.plugins.insert(
            Id::new("local").unwrap(),
            LockedPlugin {
                locator: "file://./plugins/local.wasm".parse().unwrap(),
                requirement: None,
                registry: None,
                repository: None,
                digest: None,
                tag: None,
                asset: None,
                url: None,
                path: Some(file_lock_path("./plugins/local.wasm")),
                checksum: Checksum::of(LOCAL),
                size: LOCAL.len() as u64,
            },
        );
        lockfile.plugins.insert(
            Id::new("remote").unwrap(),
            LockedPlugin {
                locator: REMOTE_URL.parse().unwrap(),
                requirement: None,
                registry: None,
                repository: None,
                digest: None,
                tag: None,
                asset: None,
                url: Some(REMOTE_URL.into()),
                path: None,
                checksum: Checksum::of(REMOTE),
                size: REMOTE.len() as u64,
            },
        );
        let cache = Cache::new(dir.path().join("home"));
        let source = dir.path().join("remote.source");
        fs_err::write(&source, REMOTE).unwrap();
        cache.insert_file(&source, None).unwrap();
        fs_err::remove_file(source).unwrap();
        let http = warpgate::http::HttpClient::new(warpgate::http::HttpOptions {
            offline: Some("`--offline`".into()),
            ..Default::default()
        })
        .unwrap();
        Self {
            config,
            lockfile,
            fetcher: Fetcher::new(cache, http),
            dir,
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn vendor_dir(&self) -> PathBuf {
        self.path("vendor/warpgate")
    }

    fn vendor(&self, dir: &Path) -> Result<vendor::VendorReport, VendorError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(vendor::vendor(
                &self.config,
                &self.lockfile,
                dir,
                &self.fetcher,
            ))
    }

    fn verify(&self, dir: Option<&Path>) -> vendor::VerifyReport {
        vendor::verify(
            &self.config,
            Some(&self.lockfile),
            self.fetcher.cache(),
            dir,
        )
    }
}

fn mtime(path: &Path) -> SystemTime {
    fs_err::metadata(path).unwrap().modified().unwrap()
}

/// Every entry of `dir`'s parent whose name starts with `.` (staging or old folders).
fn leftovers(dir: &Path) -> Vec<String> {
    fs_err::read_dir(dir.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect()
}

#[test]
fn vendors_every_plugin_with_a_manifest_and_twice_changes_nothing() {
    let project = Project::new();
    let dir = project.vendor_dir();
    let report = project.vendor(&dir).unwrap();
    assert!(report.changed);
    assert_eq!(report.plugins.len(), 2);
    assert!(matches!(
        report.plugins[0].source,
        Some(Origin::File { .. })
    ));
    assert!(matches!(
        report.plugins[1].source,
        Some(Origin::Cache { .. })
    ));
    assert!(report.plugins.iter().all(|p| p.change == FileChange::Added));
    assert_eq!(fs_err::read(dir.join("local.wasm")).unwrap(), LOCAL);
    assert_eq!(fs_err::read(dir.join("remote.wasm")).unwrap(), REMOTE);
    let manifest = fs_err::read_to_string(dir.join(MANIFEST_NAME)).unwrap();
    assert_eq!(
        manifest,
        format!(
            "# This file is automatically @generated by `warpgate vendor`.\n# It is not intended for manual editing.\nversion = 1\n\n[plugins.local]\nchecksum = \"{}\"\nsize = {}\n\n[plugins.remote]\nchecksum = \"{}\"\nsize = {}\n",
            Checksum::of(LOCAL),
            LOCAL.len(),
            Checksum::of(REMOTE),
            REMOTE.len()
        )
    );
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));

    let before: Vec<SystemTime> = ["local.wasm", "remote.wasm", MANIFEST_NAME, ""]
        .iter()
        .map(|name| mtime(&dir.join(name)))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = project.vendor(&dir).unwrap();
    assert!(!again.changed);
    assert!(
        again
            .plugins
            .iter()
            .all(|p| p.change == FileChange::Unchanged)
    );
    assert!(matches!(
        again.plugins[1].source,
        Some(Origin::Vendored { .. })
    ));
    let after: Vec<SystemTime> = ["local.wasm", "remote.wasm", MANIFEST_NAME, ""]
        .iter()
        .map(|name| mtime(&dir.join(name)))
        .collect();
    assert_eq!(before, after);
    assert!(project.verify(Some(&dir)).is_ok());
}

#[test]
fn vendoring_again_without_the_cache_uses_the_vendored_copies() {
    let project = Project::new();
    let dir = project.vendor_dir();
    project.vendor(&dir).unwrap();
    fs_err::remove_dir_all(project.path("home")).unwrap();
    let report = project.vendor(&dir).unwrap();
    assert!(!report.changed);
}

#[test]
fn a_partial_update_keeps_unchanged_files_and_removes_extras() {
    let project = Project::new();
    let dir = project.vendor_dir();
    project.vendor(&dir).unwrap();
    let local_mtime = mtime(&dir.join("local.wasm"));
    fs_err::write(dir.join("stray.wasm"), b"old plugin").unwrap();
    // A corrupted copy is replaced from the cache.
    fs_err::write(dir.join("remote.wasm"), b"tampered").unwrap();

    std::thread::sleep(std::time::Duration::from_millis(20));
    let report = project.vendor(&dir).unwrap();
    assert!(report.changed);
    assert_eq!(report.removed, ["stray.wasm"]);
    assert_eq!(report.plugins[0].change, FileChange::Unchanged);
    assert_eq!(report.plugins[1].change, FileChange::Updated);
    assert_eq!(fs_err::read(dir.join("remote.wasm")).unwrap(), REMOTE);
    assert!(!dir.join("stray.wasm").exists());
    assert_eq!(mtime(&dir.join("local.wasm")), local_mtime);
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

#[test]
fn refuses_a_folder_that_is_not_a_vendor_directory() {
    let project = Project::new();
    let dir = project.path("precious");
    fs_err::create_dir(&dir).unwrap();
    fs_err::write(dir.join("notes.txt"), b"keep me").unwrap();
    let error = project.vendor(&dir).unwrap_err();
    assert!(
        matches!(error, VendorError::NotAVendorDir { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("has no `warpgate-vendor.toml`"));
    assert_eq!(fs_err::read(dir.join("notes.txt")).unwrap(), b"keep me");
}

#[test]
fn offline_and_not_cached_names_the_plugin_and_writes_nothing() {
    let project = Project::new();
    fs_err::remove_dir_all(project.path("home")).unwrap();
    let dir = project.vendor_dir();
    let error = project.vendor(&dir).unwrap_err();
    assert!(
        matches!(&error, VendorError::Source(source) if matches!(&**source, SourceError::Offline { id, .. } if id.as_str() == "remote")),
        "{error:?}"
    );
    assert!(error.to_string().contains("`--offline`"), "{error}");
    assert!(
        !project.path("vendor").exists(),
        "nothing is created before every source is found"
    );
}

#[test]
fn a_stale_lock_is_refused() {
    let project = Project::new();
    fs_err::write(project.path("plugins/local.wasm"), b"changed").unwrap();
    let error = project.vendor(&project.vendor_dir()).unwrap_err();
    let message = crate::support::report(&error);
    assert!(
        message.contains("`local`: its file changed since it was locked"),
        "{message}"
    );
    assert!(message.contains("hint: run `warpgate lock`"), "{message}");
}

#[test]
fn verify_reports_every_problem_with_the_vendor_directory() {
    let project = Project::new();
    let dir = project.vendor_dir();
    project.vendor(&dir).unwrap();

    fs_err::write(dir.join("remote.wasm"), b"tampered").unwrap();
    fs_err::remove_file(dir.join("local.wasm")).unwrap();
    fs_err::write(dir.join("stray.wasm"), b"x").unwrap();
    let manifest = fs_err::read_to_string(dir.join(MANIFEST_NAME)).unwrap();
    fs_err::write(
        dir.join(MANIFEST_NAME),
        manifest.replace(
            &Checksum::of(REMOTE).to_string(),
            &Checksum::of(b"old").to_string(),
        ),
    )
    .unwrap();

    let report = project.verify(Some(&dir));
    assert!(!report.is_ok());
    let problems = &report.problems;
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::VendoredMissing { id, .. } if id.as_str() == "local")),
        "{problems:#?}"
    );
    assert!(problems.iter().any(|p| matches!(p, Problem::VendoredCorrupt { id, computed, .. } if id.as_str() == "remote" && *computed == Checksum::of(b"tampered"))), "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::VendoredExtra { path } if path.ends_with("stray.wasm"))),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::ManifestStale { id, .. } if id.as_str() == "remote")),
        "{problems:#?}"
    );
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert_eq!(report.plugins[0].vendored, Some(VendoredStatus::Missing));
    assert_eq!(report.plugins[1].vendored, Some(VendoredStatus::Corrupt));

    let message = crate::support::report(
        problems
            .iter()
            .find(|p| matches!(p, Problem::VendoredCorrupt { .. }))
            .unwrap(),
    );
    assert!(message.contains("Expected: `"), "{message}");
    assert!(message.contains("hint: run `warpgate vendor`"), "{message}");

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["problems"][0]["kind"], "vendored-missing", "{json:#}");
    assert_eq!(json["plugins"][1]["cache"], "cached", "{json:#}");

    fs_err::remove_file(dir.join(MANIFEST_NAME)).unwrap();
    let report = project.verify(Some(&dir));
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::ManifestInvalid { reason, .. } if reason == "missing"))
    );
}

#[test]
fn verify_treats_a_missing_cache_entry_as_information() {
    let project = Project::new();
    fs_err::remove_dir_all(project.path("home")).unwrap();
    let report = project.verify(None);
    assert!(report.is_ok(), "{:#?}", report.problems);
    let remote = &report.plugins[1];
    assert_eq!(remote.cache, CacheStatus::NotCached);
    assert!(!remote.available_offline());
    assert!(
        report.plugins[0].available_offline(),
        "a file:// plugin needs no cache"
    );

    project.vendor_missing_dir_is_a_problem();
}

impl Project {
    fn vendor_missing_dir_is_a_problem(&self) {
        let report = self.verify(Some(&self.path("nowhere")));
        assert!(
            matches!(
                report.problems.as_slice(),
                [Problem::VendorDirMissing { .. }]
            ),
            "{:#?}",
            report.problems
        );
    }
}

#[test]
fn verify_reports_a_corrupt_cache_entry_and_a_changed_file_without_touching_them() {
    let project = Project::new();
    let blob = project.fetcher.cache().blob_path(&Checksum::of(REMOTE));
    let mut permissions = fs_err::metadata(&blob).unwrap().permissions();
    #[expect(
        clippy::permissions_set_readonly_false,
        reason = "the test tampers with a file on purpose"
    )]
    permissions.set_readonly(false);
    fs_err::set_permissions(&blob, permissions).unwrap();
    fs_err::write(&blob, b"tampered").unwrap();
    fs_err::write(project.path("plugins/local.wasm"), b"changed").unwrap();

    let report = project.verify(None);
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::CacheCorrupt { id, .. } if id.as_str() == "remote")),
        "{:#?}",
        report.problems
    );
    assert!(report.problems.iter().any(|p| matches!(p, Problem::LockStale { id, reason: StaleReason::FileChanged } if id.as_str() == "local")), "{:#?}", report.problems);
    assert_eq!(report.plugins[0].file_intact, Some(false));
    // Verify changes nothing: the corrupt blob is still there for `warpgate fetch` to heal.
    assert_eq!(fs_err::read(&blob).unwrap(), b"tampered");
}

#[test]
fn vendor_downloads_what_the_cache_lacks() {
    let server = crate::support::TestServer::start([(
        "/remote.wasm",
        crate::support::Response::ok(REMOTE.to_vec()),
    )]);
    let url = server.url("/remote.wasm");
    let dir = tempfile::tempdir().unwrap();
    fs_err::write(
        dir.path().join("warpgate.toml"),
        format!("[plugins]\nremote = \"{url}\"\n"),
    )
    .unwrap();
    let config = Config::discover(dir.path()).unwrap();
    let mut lockfile = Lockfile::default();
    lockfile.plugins.insert(
        Id::new("remote").unwrap(),
        LockedPlugin {
            locator: url.parse().unwrap(),
            requirement: None,
            registry: None,
            repository: None,
            digest: None,
            tag: None,
            asset: None,
            url: Some(url.clone()),
            path: None,
            checksum: Checksum::of(REMOTE),
            size: REMOTE.len() as u64,
        },
    );
    let fetcher = Fetcher::new(Cache::new(dir.path().join("home")), server.http_client());
    let vendor_dir = dir.path().join("vendor/warpgate");
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(vendor::vendor(&config, &lockfile, &vendor_dir, &fetcher))
        .unwrap();
    assert_eq!(report.plugins[0].source, Some(Origin::Download { url }));
    assert_eq!(
        fs_err::read(vendor_dir.join("remote.wasm")).unwrap(),
        REMOTE
    );
    assert_eq!(server.hits("/remote.wasm"), 1);
    assert!(
        fetcher
            .cache()
            .get(&Checksum::of(REMOTE))
            .unwrap()
            .is_some()
    );
}

/// A `warpgate` project (the CLI's test project) with `count` `file://` plugins of `size`
/// bytes each, locked.
fn locked_cli_project(count: usize, size: usize) -> crate::support::project::Project {
    let mut config = String::from("[plugins]\n");
    for index in 0..count {
        config.push_str(&format!("p{index} = \"file://./plugins/p{index}.wasm\"\n"));
    }
    let project = crate::support::project::Project::new(&config);
    for index in 0..count {
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        bytes.resize(size.max(bytes.len()), u8::try_from(index).unwrap());
        fs_err::write(project.path(&format!("plugins/p{index}.wasm")), bytes).unwrap();
    }
    project.run(&["lock"]).success();
    project
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs_err::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn vendor_without_a_dir_writes_where_warpgate_vendor_dir_points() {
    let project = locked_cli_project(1, 64);
    // Run from a subfolder: a relative `WARPGATE_VENDOR_DIR` is taken from the config's
    // folder, as the build helper and `verify` take it, not from the current folder.
    let mut command = project.command(&["vendor"]);
    command
        .current_dir(project.path("plugins"))
        .env("WARPGATE_VENDOR_DIR", "third_party/plugins");
    crate::support::project::Run::from(command.output().unwrap())
        .success()
        .stderr_has("third_party");
    let dir = project.path("third_party/plugins");
    assert_eq!(names(&dir), ["p0.wasm", MANIFEST_NAME]);
    assert!(!project.path("vendor").exists());
    assert!(!project.path("plugins/third_party").exists());

    let mut command = project.command(&["verify"]);
    command.env("WARPGATE_VENDOR_DIR", "third_party/plugins");
    crate::support::project::Run::from(command.output().unwrap())
        .success()
        .stderr_has("third_party");
    project
        .run(&["vendor", "--help"])
        .success()
        .stdout
        .contains("WARPGATE_VENDOR_DIR")
        .then_some(())
        .expect("`vendor --help` names `WARPGATE_VENDOR_DIR`");
}

#[test]
fn concurrent_vendor_runs_all_succeed_and_leave_an_intact_directory() {
    // Large enough that vendoring takes a while, so that the runs overlap.
    let project = locked_cli_project(4, 4 << 20);
    // Each round starts without a vendor directory, so that every run has something to write.
    for _ in 0..6 {
        let _ = fs_err::remove_dir_all(project.path("vendor"));
        for run in
            crate::support::project::run_concurrently((0..8).map(|_| project.command(&["vendor"])))
        {
            run.success();
        }
        project.run(&["verify"]).success();
        assert_eq!(
            names(&project.path("vendor/warpgate")),
            ["p0.wasm", "p1.wasm", "p2.wasm", "p3.wasm", MANIFEST_NAME]
        );
        // No staging, old or lock file next to it or in the project.
        assert_eq!(names(&project.path("vendor")), ["warpgate"]);
        assert_eq!(
            names(project.dir.path()),
            [
                "home",
                "plugins",
                "vendor",
                "warpgate.lock",
                "warpgate.toml"
            ]
        );
    }
}

/// Plants, next to vendor directory `dir`, the folders an interrupted run leaves (returned)
/// and look-alikes that are not ours (which must survive).
fn plant_leftovers(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let parent = dir.parent().unwrap();
    fs_err::create_dir_all(parent).unwrap();
    let ours = vec![
        parent.join(".warpgate.old-Zy9x8W"),
        parent.join(".warpgate.staging-a1B2c3"),
    ];
    fs_err::create_dir_all(ours[0].join("warpgate")).unwrap();
    fs_err::write(ours[0].join("warpgate/remote.wasm"), REMOTE).unwrap();
    fs_err::write(
        ours[0].join("warpgate").join(MANIFEST_NAME),
        "version = 1\n",
    )
    .unwrap();
    fs_err::create_dir(&ours[1]).unwrap();
    fs_err::write(ours[1].join("remote.wasm"), b"\0asm half wri").unwrap();

    let theirs: Vec<PathBuf> = [
        ".warpgate.staging-a1B2c",   // random part too short
        ".warpgate.staging-a1B2c3d", // too long
        ".warpgate.old-a1B2-3",      // not letters and digits
        ".other.staging-a1B2c3",     // another folder's
        "warpgate.staging-a1B2c3",   // not hidden
        ".warpgate.backup-a1B2c3",   // not a kind we make
    ]
    .iter()
    .map(|name| parent.join(name))
    .collect();
    for folder in &theirs {
        fs_err::create_dir(folder).unwrap();
        fs_err::write(folder.join("keep.txt"), b"keep me").unwrap();
    }
    // A file with our exact naming pattern is not ours either.
    let file = parent.join(".warpgate.old-b2C3d4");
    fs_err::write(&file, b"keep me").unwrap();
    let mut theirs = theirs;
    theirs.push(file);
    (ours, theirs)
}

#[test]
fn leftovers_of_interrupted_runs_are_swept_and_nothing_else() {
    let project = Project::new();
    let dir = project.vendor_dir();
    project.vendor(&dir).unwrap();
    let before: Vec<SystemTime> = ["local.wasm", "remote.wasm", MANIFEST_NAME, ""]
        .iter()
        .map(|name| mtime(&dir.join(name)))
        .collect();
    let (ours, theirs) = plant_leftovers(&dir);

    // The folder is up to date: the sweep is all that happens.
    let report = project.vendor(&dir).unwrap();
    assert!(!report.changed);
    assert_eq!(report.swept, ours);
    for folder in &ours {
        assert!(!folder.exists(), "{} was not swept", folder.display());
    }
    for path in &theirs {
        assert!(path.exists(), "{} is not ours", path.display());
    }
    let after: Vec<SystemTime> = ["local.wasm", "remote.wasm", MANIFEST_NAME, ""]
        .iter()
        .map(|name| mtime(&dir.join(name)))
        .collect();
    assert_eq!(before, after);
    assert!(project.verify(Some(&dir)).is_ok());

    // Nothing left to sweep.
    assert!(project.vendor(&dir).unwrap().swept.is_empty());
}

#[test]
fn a_run_killed_between_the_renames_is_repaired_by_the_next() {
    let project = Project::new();
    let dir = project.vendor_dir();
    // The state after a kill between "move the old folder aside" and "move the new one in":
    // `DIR` is missing, its old copy and the staged new one are hidden next to it.
    let (ours, theirs) = plant_leftovers(&dir);
    assert!(!dir.exists());
    // The old copy holds the only `remote` bytes on this (offline) machine.
    let blob = project.fetcher.cache().blob_path(&Checksum::of(REMOTE));
    fs_err::remove_file(&blob).unwrap();

    let report = project.vendor(&dir).unwrap();
    assert!(report.changed);
    assert_eq!(report.swept, ours);
    let changes: Vec<_> = report
        .plugins
        .iter()
        .map(|plugin| (plugin.id.to_string(), plugin.change, plugin.source.clone()))
        .collect();
    assert_eq!(
        changes,
        [
            (
                "local".to_string(),
                FileChange::Added,
                Some(Origin::File {
                    path: project.path("plugins/local.wasm")
                })
            ),
            (
                "remote".to_string(),
                FileChange::Unchanged,
                Some(Origin::Vendored {
                    path: dir.join("remote.wasm")
                })
            ),
        ]
    );
    assert!(project.verify(Some(&dir)).is_ok());
    assert_eq!(fs_err::read(dir.join("remote.wasm")).unwrap(), REMOTE);
    let mut hidden = leftovers(&dir);
    hidden.sort();
    let mut expected: Vec<String> = theirs
        .iter()
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    expected.sort();
    assert_eq!(hidden, expected);
}

#[cfg(unix)]
#[test]
fn a_symlink_named_like_a_leftover_is_not_followed_or_removed() {
    let project = Project::new();
    let dir = project.vendor_dir();
    let target = project.path("elsewhere");
    fs_err::create_dir(&target).unwrap();
    fs_err::write(target.join("keep.txt"), b"keep me").unwrap();
    fs_err::create_dir_all(project.path("vendor")).unwrap();
    let link = project.path("vendor/.warpgate.staging-a1B2c3");
    fs_err::os::unix::fs::symlink(&target, &link).unwrap();

    let report = project.vendor(&dir).unwrap();
    assert!(report.swept.is_empty(), "{:?}", report.swept);
    assert!(fs_err::symlink_metadata(&link).is_ok());
    assert_eq!(fs_err::read(target.join("keep.txt")).unwrap(), b"keep me");
}
