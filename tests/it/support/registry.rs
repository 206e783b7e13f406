//! A real OCI registry for tests: the CNCF `distribution` registry, as Debian packages it
//! (`docker-registry`), on `127.0.0.1` with a free port, TLS from a per-registry test CA,
//! htpasswd (bcrypt) basic auth, and filesystem storage in a temp dir. It is killed when
//! the [`TestRegistry`] is dropped.
//!
//! ```ignore
//! let registry = TestRegistry::start();
//! command.envs(registry.env());        // SSL_CERT_FILE, NO_PROXY, WARPGATE_REGISTRY_AUTH
//! registry.requests();                 // the access log: (method, path, status)
//! ```
//!
//! A missing `docker-registry` binary fails the test with the command that installs it.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The user the registry accepts.
pub const USER: &str = "warpgate";
/// Its password.
pub const PASSWORD: &str = "correct-horse-battery-staple";

/// One line of the registry's access log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    /// `GET`, `HEAD`, `PUT`, …
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The status answered.
    pub status: u16,
}

/// A running `docker-registry`.
pub struct TestRegistry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    log: Arc<Mutex<Vec<LoggedRequest>>>,
}

impl TestRegistry {
    /// Starts a registry and waits until it answers.
    pub fn start() -> Self {
        let binary = find_binary();
        let dir = tempfile::Builder::new()
            .prefix("warpgate-registry-")
            .tempdir()
            .unwrap();
        let (ca_pem, cert_pem, key_pem) = certificates();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        write("ca.pem", &ca_pem);
        let cert = write("cert.pem", &cert_pem);
        let key = write("key.pem", &key_pem);
        let hash = bcrypt::hash(PASSWORD, 4).unwrap();
        let htpasswd = write("htpasswd", &format!("{USER}:{hash}\n"));
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();

        // A free port: bound by the OS, released, then taken by the registry. Another process
        // taking it in between makes the start fail loudly below, never silently.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = write(
            "config.yml",
            &format!(
                "version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  tls:
    certificate: {cert}
    key: {key}
auth:
  htpasswd:
    realm: warpgate-test
    path: {htpasswd}
",
                storage = storage.display(),
                cert = cert.display(),
                key = key.display(),
                htpasswd = htpasswd.display(),
            ),
        );
        let mut child = Command::new(&binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", binary.display()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr_lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = Arc::clone(&log);
            let lines = Arc::clone(&stderr_lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    match parse_access_line(&line) {
                        Some(request) => log.lock().unwrap().push(request),
                        None => lines.lock().unwrap().push(line),
                    }
                }
            });
        }
        let mut registry = Self {
            child,
            dir,
            port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!(
                    "docker-registry exited with {status}:\n{}",
                    stderr_lines.lock().unwrap().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on port {port}:\n{}",
                stderr_lines.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        registry
    }

    /// `127.0.0.1:<port>`, the host part of `registry://` locators.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `registry://127.0.0.1:<port>/<path>`.
    pub fn locator(&self, path: &str) -> String {
        format!("registry://{}/{path}", self.host())
    }

    /// The test CA (PEM file) the registry's certificate is signed by.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The registry's storage folder.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage/docker/registry/v2")
    }

    /// The file holding blob `hex` in the registry's storage.
    pub fn blob_file(&self, hex: &str) -> PathBuf {
        self.storage()
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// `WARPGATE_REGISTRY_AUTH` for this registry.
    pub fn auth(&self) -> String {
        format!("{}={USER}:{PASSWORD}", self.host())
    }

    /// Environment for a `warpgate` process using this registry: its CA in `SSL_CERT_FILE`,
    /// no proxy for loopback, the credentials in `WARPGATE_REGISTRY_AUTH`.
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("SSL_CERT_FILE", self.ca_path().into()),
            ("NO_PROXY", "127.0.0.1,localhost".into()),
            ("no_proxy", "127.0.0.1,localhost".into()),
            ("WARPGATE_REGISTRY_AUTH", self.auth().into()),
            (
                "DOCKER_CONFIG",
                self.dir.path().join("no-docker-config").into(),
            ),
        ]
    }

    /// Every request logged so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        // The access log is written after the answer; give the last lines a moment.
        std::thread::sleep(Duration::from_millis(200));
        self.log.lock().unwrap().clone()
    }

    /// Forgets the requests logged so far.
    pub fn clear_requests(&self) {
        std::thread::sleep(Duration::from_millis(200));
        self.log.lock().unwrap().clear();
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `docker-registry` binary, or a panic saying how to install it.
fn find_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("docker-registry"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the registry tests need the CNCF distribution registry (`docker-registry`), which is not on PATH\nhint: install it with `apt-get install -y docker-registry` (`.ci/run` does this)"
            )
        })
}

/// `127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 401 87 "" "agent"` → method, path, status.
fn parse_access_line(line: &str) -> Option<LoggedRequest> {
    let (_, rest) = line.split_once('"')?;
    let (request, rest) = rest.split_once('"')?;
    let mut parts = request.split(' ');
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let status = rest.trim_start().split(' ').next()?.parse().ok()?;
    Some(LoggedRequest {
        method,
        path,
        status,
    })
}

/// A test CA's PEM, and a leaf certificate and key for `127.0.0.1` and `localhost`.
fn certificates() -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "warpgate test registry CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    (ca_cert.pem(), leaf_cert.pem(), leaf_key.serialize_pem())
}

/// Whether `path` is an empty folder or missing.
pub fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).map_or(true, |mut entries| entries.next().is_none())
}
