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
//! [`TestRegistry::start_with_tokens`] starts it with token auth instead: the registry
//! answers `401` with a `Bearer` challenge naming a [`TokenServer`] on another loopback
//! port, which issues ES256 JWTs signed by a key whose self-signed certificate is the
//! registry's `rootcertbundle` (the certificate travels in the token's `x5c` header).
//! Anonymous requests get `pull` only; the test user gets what it asks for; wrong
//! credentials get `401`.
//!
//! A missing `docker-registry` binary fails the test with the command that installs it.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

use super::tls::TestCa;

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
    tokens: Option<TokenServer>,
}

/// The `service` (the tokens' audience) of a registry with token auth.
pub const TOKEN_SERVICE: &str = "warpgate-test-registry";
/// The issuer of its tokens.
pub const TOKEN_ISSUER: &str = "warpgate-test-token-server";

/// How a [`TestRegistry`] is reached and who may use it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// TLS and htpasswd basic auth.
    Basic,
    /// TLS and token auth.
    Tokens,
    /// Plain HTTP, no auth.
    Plain,
}

impl TestRegistry {
    /// Starts a registry with htpasswd basic auth and waits until it answers.
    pub fn start() -> Self {
        Self::launch(Mode::Basic)
    }

    /// Starts a registry as `docker run registry:2` does on a developer's machine: plain
    /// `http://`, no authentication.
    pub fn start_plain() -> Self {
        Self::launch(Mode::Plain)
    }

    /// Starts a registry with token auth and its [`TokenServer`], and waits until it
    /// answers.
    pub fn start_with_tokens() -> Self {
        Self::launch(Mode::Tokens)
    }

    /// The token server, for a registry started with [`Self::start_with_tokens`].
    pub fn token_server(&self) -> &TokenServer {
        self.tokens.as_ref().expect("a registry with token auth")
    }

    fn launch(mode: Mode) -> Self {
        let binary = find_binary();
        let dir = tempfile::Builder::new()
            .prefix("warpgate-registry-")
            .tempdir()
            .unwrap();
        let certificates = TestCa::new("warpgate test registry CA", &["127.0.0.1", "localhost"]);
        let (ca_pem, cert_pem, key_pem) = (
            certificates.ca_pem.clone(),
            certificates.cert_pem.clone(),
            certificates.key_pem.clone(),
        );
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            fs_err::write(&path, text).unwrap();
            path
        };
        write("ca.pem", &ca_pem);
        let cert = write("cert.pem", &cert_pem);
        let key = write("key.pem", &key_pem);
        let hash = bcrypt::hash(PASSWORD, 4).unwrap();
        let htpasswd = write("htpasswd", &format!("{USER}:{hash}\n"));
        let storage = dir.path().join("storage");
        fs_err::create_dir(&storage).unwrap();

        // A free port: bound by the OS, released, then taken by the registry. Another process
        // taking it in between makes the start fail loudly below, never silently.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (tokens, auth) = if mode == Mode::Plain {
            (None, String::new())
        } else if mode == Mode::Tokens {
            let signing = SigningKey::generate();
            let bundle = write("token-signing.pem", &signing.cert_pem);
            let tokens = TokenServer::start(&certificates, signing);
            let auth = format!(
                "auth:
  token:
    realm: https://127.0.0.1:{}/token
    service: {TOKEN_SERVICE}
    issuer: {TOKEN_ISSUER}
    rootcertbundle: {}
",
                tokens.port(),
                bundle.display()
            );
            (Some(tokens), auth)
        } else {
            let auth = format!(
                "auth:
  htpasswd:
    realm: warpgate-test
    path: {}
",
                htpasswd.display()
            );
            (None, auth)
        };
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
{tls}{auth}",
                storage = storage.display(),
                tls = if mode == Mode::Plain {
                    String::new()
                } else {
                    format!(
                        "  tls:\n    certificate: {}\n    key: {}\n",
                        cert.display(),
                        key.display()
                    )
                },
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
            tokens,
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

/// The key tokens are signed with, and its self-signed certificate.
struct SigningKey {
    key: KeyPair,
    cert_pem: String,
    cert_der: Vec<u8>,
}

impl SigningKey {
    fn generate() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "warpgate test token signer");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key,
        }
    }

    /// A JWT (ES256) carrying `claims`, with the certificate in its `x5c` header.
    fn token(&self, claims: &serde_json::Value) -> String {
        use base64::Engine as _;
        use rcgen::SigningKey as _;
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = serde_json::json!({
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&self.cert_der)],
        });
        let signed = format!(
            "{}.{}",
            url.encode(serde_json::to_vec(&header).unwrap()),
            url.encode(serde_json::to_vec(claims).unwrap())
        );
        let der = self.key.sign(signed.as_bytes()).unwrap();
        format!("{signed}.{}", url.encode(fixed_signature(&der)))
    }
}

/// An ASN.1 DER ECDSA P-256 signature (`SEQUENCE { r INTEGER, s INTEGER }`) as JWS wants
/// it: `r` and `s` as 32 big-endian bytes each.
fn fixed_signature(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x30, "not a DER sequence");
    let mut rest = if der[1] & 0x80 == 0 {
        &der[2..]
    } else {
        &der[3..]
    };
    let mut out = Vec::with_capacity(64);
    for _ in 0..2 {
        assert_eq!(rest[0], 0x02, "not a DER integer");
        let length = rest[1] as usize;
        let mut integer = &rest[2..2 + length];
        while integer.len() > 32 && integer[0] == 0 {
            integer = &integer[1..];
        }
        out.extend(std::iter::repeat_n(0, 32 - integer.len()));
        out.extend_from_slice(integer);
        rest = &rest[2 + length..];
    }
    out
}

/// One request the [`TokenServer`] answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The user whose Basic credentials came with it (`None`: anonymous).
    pub user: Option<String>,
    /// The `scope` parameters.
    pub scopes: Vec<String>,
    /// The status answered: `200`, or `401` for wrong credentials.
    pub status: u16,
}

/// A loopback token service for a registry with token auth (see the module docs); it stops
/// when dropped.
pub struct TokenServer {
    listener: super::listener::LoopbackListener,
    log: Arc<Mutex<Vec<TokenRequest>>>,
}

impl TokenServer {
    fn start(certificates: &TestCa, signing: SigningKey) -> Self {
        let acceptor = tokio_rustls::TlsAcceptor::from(certificates.server_config());
        let log = Arc::new(Mutex::new(Vec::new()));
        let signing = Arc::new(signing);
        let connection_log = Arc::clone(&log);
        let listener = super::listener::LoopbackListener::start("token-server", move |stream| {
            let (acceptor, log, signing) = (
                acceptor.clone(),
                Arc::clone(&connection_log),
                Arc::clone(&signing),
            );
            async move {
                if let Ok(stream) = acceptor.accept(stream).await {
                    serve_token(stream, &log, &signing).await;
                }
            }
        });
        Self { listener, log }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.log.lock().unwrap().clone()
    }
}

/// Answers one `GET /token?service=…&scope=…` (see the module docs) and closes.
async fn serve_token<S>(mut stream: S, log: &Mutex<Vec<TokenRequest>>, signing: &SigningKey)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use base64::Engine as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut lines = text.split("\r\n");
    let target = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or_default()
        .to_string();
    let basic = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.trim().strip_prefix("Basic ").map(str::to_string))
        .and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok());
    let query = target.split_once('?').map(|(_, query)| query).unwrap_or("");
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let scopes: Vec<String> = pairs
        .iter()
        .filter(|(name, _)| name == "scope")
        .map(|(_, value)| value.clone())
        .collect();
    let service_ok = pairs
        .iter()
        .any(|(name, value)| name == "service" && value == TOKEN_SERVICE);
    let (user, authorised) = match basic.as_deref().and_then(|text| text.split_once(':')) {
        Some((user, password)) => (Some(user.to_string()), user == USER && password == PASSWORD),
        None => (None, true),
    };
    let status = if authorised && service_ok { 200 } else { 401 };
    log.lock().unwrap().push(TokenRequest {
        user: user.clone(),
        scopes: scopes.clone(),
        status,
    });
    let body = if status == 200 {
        // `repository:NAME:ACTIONS`; anonymous requests get `pull` at most.
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .filter_map(|scope| {
                let (rest, actions) = scope.rsplit_once(':')?;
                let (kind, name) = rest.split_once(':')?;
                let granted: Vec<&str> = actions
                    .split(',')
                    .filter(|action| user.is_some() || *action == "pull")
                    .collect();
                Some(serde_json::json!({ "type": kind, "name": name, "actions": granted }))
            })
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let token = signing.token(&serde_json::json!({
            "iss": TOKEN_ISSUER,
            "sub": user.clone().unwrap_or_default(),
            "aud": TOKEN_SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{now}-{}", log.lock().unwrap().len()),
            "access": access,
        }));
        serde_json::json!({ "token": token, "expires_in": 300 }).to_string()
    } else {
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_string()
    };
    let reason = if status == 200 { "OK" } else { "Unauthorized" };
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
}

/// Whether `path` is an empty folder or missing.
pub fn is_empty_dir(path: &Path) -> bool {
    fs_err::read_dir(path).map_or(true, |mut entries| entries.next().is_none())
}
