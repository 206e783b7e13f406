//! A loopback HTTP proxy for tests of proxies from the environment (`HTTPS_PROXY`, `NO_PROXY`).
//!
//! ```ignore
//! let server = TestServer::empty_named(); // URLs on `github.test`: loopback skips proxies
//! let proxy = TestProxy::start();
//! let mut command = project.command(&["lock"]);
//! command.envs(server.env());
//! proxy.configure(&mut command, None); // HTTPS_PROXY=http://127.0.0.1:<port>, no NO_PROXY
//! // … run it …
//! assert_eq!(proxy.connect_targets(), [format!("github.test:{}", server.port())]);
//! ```
//!
//! It listens on `127.0.0.1:<random port>` and speaks only `CONNECT host:port`, the way a
//! client reaches an `https://` URL through a proxy: it records the target, answers
//! `HTTP/1.1 200 Connection established` and then copies bytes both ways, so TLS runs end to
//! end between the client and the real server. It tunnels to loopback targets and to the
//! test names [`NAMED_HOST`] and [`NAMED_ALT_HOST`] only (`127.0.0.0/8`, `[::1]`, and the
//! names, which it dials as `127.0.0.1` because that is where
//! [`TestServer`](super::TestServer) listens): anything else gets a `403`, any other method a
//! `405`, and an unreachable target a `502`; all of these are still recorded. Dropping the
//! proxy stops it: its runtime, and with it every open tunnel, is shut down and its thread
//! joined.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::listener::LoopbackListener;
use super::server::{NAMED_ALT_HOST, NAMED_HOST};

/// Every variable that can point a client at a proxy or exempt hosts from it, in both cases.
pub const PROXY_VARS: [&str; 9] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    // Under CGI, `HTTP_PROXY` is ignored (it could come from a request's `Proxy:` header).
    "REQUEST_METHOD",
];

/// A request the proxy received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyRequest {
    /// `CONNECT`, or whatever else a client sent.
    pub method: String,
    /// The request target, e.g. `127.0.0.1:4321` for a `CONNECT`.
    pub target: String,
}

#[derive(Default)]
struct State {
    log: Vec<ProxyRequest>,
    connections: usize,
}

/// A running `CONNECT` proxy on 127.0.0.1; it stops when dropped.
pub struct TestProxy {
    listener: LoopbackListener,
    state: Arc<Mutex<State>>,
}

impl TestProxy {
    /// Starts the proxy.
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let connection_state = Arc::clone(&state);
        let listener = LoopbackListener::start("test-proxy", move |stream| {
            lock(&connection_state).connections += 1;
            serve(stream, Arc::clone(&connection_state))
        });
        Self { listener, state }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    /// `http://127.0.0.1:<port>`, the value for `HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.listener.port())
    }

    /// Clears every proxy variable a child process would inherit, then sets
    /// `HTTPS_PROXY` to this proxy and, when given, `NO_PROXY` to `no_proxy`.
    ///
    /// Call it after any `envs(…)` that may set `NO_PROXY` (such as [`TestServer::env`]),
    /// since the last setting of a variable on a `Command` wins.
    ///
    /// [`TestServer::env`]: super::TestServer::env
    pub fn configure(&self, command: &mut Command, no_proxy: Option<&str>) {
        for name in PROXY_VARS {
            command.env_remove(name);
        }
        command.envs(self.env(no_proxy));
    }

    /// Clears every proxy variable, then points all of `HTTPS_PROXY`, `HTTP_PROXY` and
    /// `ALL_PROXY` (in both cases) at this proxy, with no `NO_PROXY`.
    pub fn configure_every_variable(&self, command: &mut Command) {
        for name in PROXY_VARS {
            command.env_remove(name);
        }
        for name in &PROXY_VARS[..6] {
            command.env(name, self.url());
        }
    }

    /// `HTTPS_PROXY` for this proxy and, when given, `NO_PROXY`.
    pub fn env(&self, no_proxy: Option<&str>) -> Vec<(&'static str, OsString)> {
        let mut env = vec![("HTTPS_PROXY", self.url().into())];
        if let Some(no_proxy) = no_proxy {
            env.push(("NO_PROXY", no_proxy.into()));
        }
        env
    }

    /// Every request received so far, in order (tunnelled or refused).
    pub fn requests(&self) -> Vec<ProxyRequest> {
        lock(&self.state).log.clone()
    }

    /// The target of every `CONNECT` received so far, in order.
    pub fn connect_targets(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|request| request.method == "CONNECT")
            .map(|request| request.target)
            .collect()
    }

    /// How many TCP connections were accepted (0 proves that no client even tried the proxy).
    pub fn connection_count(&self) -> usize {
        lock(&self.state).connections
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads one request head, records it, and either tunnels or refuses it.
async fn serve(mut client: TcpStream, state: Arc<Mutex<State>>) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    let end = loop {
        if let Some(end) = head.windows(4).position(|window| window == b"\r\n\r\n") {
            break end;
        }
        if head.len() > 64 * 1024 {
            return;
        }
        match client.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).to_string();
    let mut request_line = text.split("\r\n").next().unwrap_or_default().split(' ');
    let request = ProxyRequest {
        method: request_line.next().unwrap_or_default().to_string(),
        target: request_line.next().unwrap_or_default().to_string(),
    };
    lock(&state).log.push(request.clone());

    if request.method != "CONNECT" {
        return refuse(client, "405 Method Not Allowed").await;
    }
    let Some(address) = loopback_address(&request.target) else {
        return refuse(client, "403 Forbidden").await;
    };
    let Ok(mut upstream) = TcpStream::connect(address).await else {
        return refuse(client, "502 Bad Gateway").await;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    // Bytes the client sent after the head already belong to the tunnel.
    let early = &head[end + 4..];
    if !early.is_empty() && upstream.write_all(early).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

async fn refuse(mut client: TcpStream, status: &str) {
    let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = client.write_all(answer.as_bytes()).await;
    let _ = client.shutdown().await;
}

/// The address to dial for a `CONNECT` target `host:port`, if the host is loopback or a
/// test name.
fn loopback_address(target: &str) -> Option<SocketAddr> {
    let (host, port) = target.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let names = ["localhost", NAMED_HOST, NAMED_ALT_HOST];
    let ip = if names.iter().any(|name| host.eq_ignore_ascii_case(name)) {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse::<IpAddr>().ok()?
    };
    ip.is_loopback().then_some(SocketAddr::new(ip, port))
}

#[test]
fn only_connect_to_loopback_is_tunnelled() {
    use std::io::{Read, Write};

    let proxy = TestProxy::start();
    let ask = |request: &str| {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let refused = ask("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    assert!(refused.starts_with("HTTP/1.1 403 "), "{refused}");
    let refused = ask("CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n\r\n");
    assert!(refused.starts_with("HTTP/1.1 403 "), "{refused}");
    let refused = ask("GET http://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(refused.starts_with("HTTP/1.1 405 "), "{refused}");
    assert_eq!(
        proxy.connect_targets(),
        ["example.com:443".to_string(), "10.0.0.1:443".to_string()]
    );
    assert_eq!(proxy.requests().len(), 3);

    // A test name is tunnelled (to 127.0.0.1): bytes go through both ways.
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    let echo_thread = std::thread::spawn(move || {
        let (mut stream, _) = echo.accept().unwrap();
        let mut buffer = [0u8; 5];
        stream.read_exact(&mut buffer).unwrap();
        stream.write_all(&buffer).unwrap();
    });
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
    write!(
        stream,
        "CONNECT {NAMED_HOST}:{echo_port} HTTP/1.1\r\n\r\nhello"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "HTTP/1.1 200 Connection established\r\n\r\nhello");
    echo_thread.join().unwrap();
    assert_eq!(
        proxy.connect_targets().last(),
        Some(&format!("{NAMED_HOST}:{echo_port}"))
    );
}
