//! [`Project`]: a temporary project with its own cache, and [`Run`]: a finished `warpgate`
//! process, with the test plugins ([`JSON_TOOLS`], [`FAILING`]).

use std::path::PathBuf;
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
    /// A project whose `warpgate.toml` holds `config`, with the `json_tools` and failing
    /// fixtures copied to `plugins/`.
    pub fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir(dir.path().join("plugins")).unwrap();
        fs_err::copy(JSON_TOOLS, dir.path().join("plugins/json_tools.wasm")).unwrap();
        fs_err::copy(FAILING, dir.path().join("plugins/failing.wasm")).unwrap();
        fs_err::write(dir.path().join("warpgate.toml"), config).unwrap();
        Self { dir }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn read(&self, relative: &str) -> String {
        fs_err::read_to_string(self.path(relative)).unwrap()
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
