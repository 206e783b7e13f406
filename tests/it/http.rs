//! `warpgate::http` against a real loopback HTTPS server.

use std::sync::Mutex;
use std::time::Duration;

use warpgate::checksum::Checksum;
use warpgate::github::ApiToken;
use warpgate::http::{Downloaded, HeaderMap, HttpClient, HttpError, HttpOptions};

use crate::support::{Response, Route, TestServer};

/// The headers the GitHub client sends with a request, without a token.
fn api_headers() -> HeaderMap {
    warpgate::github::request_headers("", None, None).unwrap()
}

/// The headers the GitHub client sends with a request for `url`, with `token` when it is for
/// `url`'s origin.
fn token_headers(url: &str, token: &ApiToken) -> HeaderMap {
    warpgate::github::request_headers(url, Some(token), None).unwrap()
}

fn no_progress(_: u64, _: Option<u64>) {}

fn client_with(server: &TestServer, change: impl FnOnce(&mut HttpOptions)) -> HttpClient {
    let mut options = server.http_options();
    change(&mut options);
    HttpClient::new(options).unwrap()
}

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect()
}

#[tokio::test]
async fn download_streams_hashes_and_reports_progress() {
    let bytes = body(200_000);
    let server = TestServer::start([("/plugin.wasm", Response::ok(bytes.clone()))]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("plugin.wasm");
    let seen = Mutex::new(Vec::new());
    let progress = |received: u64, total: Option<u64>| seen.lock().unwrap().push((received, total));

    let downloaded = server
        .http_client()
        .download_to(&server.url("/plugin.wasm"), &dest, &progress)
        .await
        .unwrap();

    assert_eq!(
        downloaded,
        Downloaded {
            checksum: Checksum::of(&bytes),
            size: bytes.len() as u64
        }
    );
    assert_eq!(fs_err::read(&dest).unwrap(), bytes);
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.first(), Some(&(0, Some(200_000))));
    assert_eq!(seen.last(), Some(&(200_000, Some(200_000))));
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0]
            .header("user-agent")
            .unwrap()
            .starts_with("warpgate/")
    );
    assert_eq!(requests[0].header("authorization"), None);
}

#[tokio::test]
async fn server_error_then_success_is_retried() {
    let server = TestServer::start([(
        "/flaky.wasm",
        Route::sequence([
            Response::status(500),
            Response::status(503),
            Response::ok("fine"),
        ]),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let downloaded = server
        .http_client()
        .download_to(&server.url("/flaky.wasm"), &dest, &no_progress)
        .await
        .unwrap();
    assert_eq!(downloaded.size, 4);
    assert_eq!(server.hits("/flaky.wasm"), 3);
}

#[tokio::test]
async fn server_errors_stop_after_max_retries() {
    let server = TestServer::start([("/down", Response::status(502).body("upstream is down"))]);
    let client = client_with(&server, |options| options.max_retries = 2);
    let error = client
        .get_api(&server.url("/down"), &api_headers())
        .await
        .unwrap_err();
    assert!(
        matches!(error, HttpError::Status { status: 502, .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "`{}` answered with HTTP status 502: upstream is down",
            server.url("/down")
        )
    );
    assert_eq!(server.hits("/down"), 3);
}

#[tokio::test]
async fn not_found_is_not_retried() {
    let server = TestServer::empty();
    let dir = tempfile::tempdir().unwrap();
    let error = server
        .http_client()
        .download_to(
            &server.url("/missing.wasm"),
            &dir.path().join("x"),
            &no_progress,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, HttpError::Status { status: 404, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("/missing.wasm"), "{error}");
    assert_eq!(server.hits("/missing.wasm"), 1);
    assert!(!dir.path().join("x").exists(), "nothing written on a 404");
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let server = TestServer::start([(
        "/busy",
        Route::sequence([
            Response::status(429).header("retry-after", "0"),
            Response::ok("{}"),
        ]),
    )]);
    let response = server
        .http_client()
        .get_api(&server.url("/busy"), &api_headers())
        .await
        .unwrap();
    assert_eq!(response.body, b"{}");
    assert_eq!(server.hits("/busy"), 2);
}

#[tokio::test]
async fn exhausted_rate_limit_fails_at_once() {
    let server = TestServer::start([(
        "/repos/a/b/releases",
        Response::status(403)
            .header("x-ratelimit-remaining", "0")
            .body(r#"{"message":"API rate limit exceeded"}"#),
    )]);
    let error = server
        .http_client()
        .get_api(&server.url("/repos/a/b/releases"), &api_headers())
        .await
        .unwrap_err();
    assert!(matches!(error, HttpError::RateLimited { .. }), "{error:?}");
    let message = crate::support::report(&error);
    assert!(message.contains("rate limit"), "{message}");
    assert!(
        message.contains("\nhint: wait until the limit resets"),
        "{message}"
    );
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn truncated_download_is_retried_then_succeeds() {
    let bytes = body(10_000);
    let server = TestServer::start([(
        "/cut.wasm",
        Route::sequence([
            Response::ok(bytes.clone()).truncate_to(5_000),
            Response::ok(bytes.clone()),
        ]),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("cut.wasm");
    let downloaded = server
        .http_client()
        .download_to(&server.url("/cut.wasm"), &dest, &no_progress)
        .await
        .unwrap();
    assert_eq!(downloaded.checksum, Checksum::of(&bytes));
    assert_eq!(downloaded.size, 10_000);
    assert_eq!(
        fs_err::read(&dest).unwrap(),
        bytes,
        "file truncated on retry"
    );
    assert_eq!(server.hits("/cut.wasm"), 2);
}

#[tokio::test]
async fn permanently_truncated_download_fails_with_truncated() {
    let server = TestServer::start([("/cut.wasm", Response::ok(body(1_000)).truncate_to(100))]);
    let client = client_with(&server, |options| options.max_retries = 2);
    let dir = tempfile::tempdir().unwrap();
    let error = client
        .download_to(
            &server.url("/cut.wasm"),
            &dir.path().join("x"),
            &no_progress,
        )
        .await
        .unwrap_err();
    match &error {
        HttpError::Truncated {
            expected, received, ..
        } => assert_eq!((*expected, *received), (Some(1_000), 100)),
        other => panic!("expected Truncated, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        format!(
            "the download of `{}` was cut short: received 100 of 1000 bytes",
            server.url("/cut.wasm")
        )
    );
    assert_eq!(server.hits("/cut.wasm"), 3);
}

#[tokio::test]
async fn truncated_api_body_is_retried() {
    let server = TestServer::start([(
        "/api",
        Route::sequence([
            Response::ok(r#"{"a":"bcdefgh"}"#).truncate_to(4),
            Response::ok(r#"{"a":"bcdefgh"}"#),
        ]),
    )]);
    let response = server
        .http_client()
        .get_api(&server.url("/api"), &api_headers())
        .await
        .unwrap();
    assert_eq!(response.body, br#"{"a":"bcdefgh"}"#);
    assert_eq!(server.hits("/api"), 2);
}

#[tokio::test]
async fn hang_up_before_answering_is_retried() {
    let server = TestServer::start([(
        "/x.wasm",
        Route::sequence([Response::hang_up(), Response::ok("wasm")]),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let downloaded = server
        .http_client()
        .download_to(&server.url("/x.wasm"), &dir.path().join("x"), &no_progress)
        .await
        .unwrap();
    assert_eq!(downloaded.size, 4);
    assert_eq!(server.hits("/x.wasm"), 2);
}

#[tokio::test]
async fn slow_answer_times_out_and_is_retried() {
    let server = TestServer::start([(
        "/slow",
        Route::sequence([
            Response::ok("late").delay(Duration::from_secs(5)),
            Response::ok("quick"),
        ]),
    )]);
    let client = client_with(&server, |options| {
        options.read_timeout = Duration::from_secs(1);
    });
    let response = client
        .get_api(&server.url("/slow"), &api_headers())
        .await
        .unwrap();
    assert_eq!(response.body, b"quick");
    assert_eq!(server.hits("/slow"), 2);
}

#[tokio::test]
async fn size_cap_from_content_length() {
    let server = TestServer::start([("/big.wasm", Response::ok(body(1_000)))]);
    let client = client_with(&server, |options| options.max_download_size = 999);
    let dir = tempfile::tempdir().unwrap();
    let error = client
        .download_to(
            &server.url("/big.wasm"),
            &dir.path().join("x"),
            &no_progress,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            HttpError::TooLarge {
                limit: 999,
                size: Some(1_000),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("is larger than the download size limit of 999 bytes"),
        "{error}"
    );
    assert_eq!(server.hits("/big.wasm"), 1, "a size error is not retried");
}

#[tokio::test]
async fn size_cap_while_streaming_without_content_length() {
    let server = TestServer::start([("/big.wasm", Response::ok(body(100_000)).close_delimited())]);
    let client = client_with(&server, |options| options.max_download_size = 50_000);
    let dir = tempfile::tempdir().unwrap();
    let error = client
        .download_to(
            &server.url("/big.wasm"),
            &dir.path().join("x"),
            &no_progress,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            HttpError::TooLarge {
                limit: 50_000,
                size: None,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(server.hits("/big.wasm"), 1);

    // Under the cap, a body without `Content-Length` is fine.
    server.route("/small.wasm", Response::ok(body(10)).close_delimited());
    let downloaded = client
        .download_to(
            &server.url("/small.wasm"),
            &dir.path().join("y"),
            &no_progress,
        )
        .await
        .unwrap();
    assert_eq!(downloaded.size, 10);
}

#[tokio::test]
async fn offline_opens_no_connection() {
    let server = TestServer::start([("/x.wasm", Response::ok("wasm"))]);
    let client = client_with(&server, |options| {
        options.offline = Some("`--offline`".to_string());
    });
    assert!(client.is_offline());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.wasm");

    let error = client
        .download_to(&server.url("/x.wasm"), &dest, &no_progress)
        .await
        .unwrap_err();
    assert!(matches!(error, HttpError::Offline { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "cannot fetch `{}`: network access is disabled by `--offline`",
            server.url("/x.wasm")
        )
    );
    let error = client
        .get_api(&server.url("/api"), &api_headers())
        .await
        .unwrap_err();
    assert!(matches!(error, HttpError::Offline { .. }), "{error:?}");

    assert_eq!(server.request_count(), 0, "no request reached the server");
    assert_eq!(server.connection_count(), 0, "no connection was opened");
    assert!(!dest.exists(), "nothing written");
}

#[tokio::test]
async fn redirect_to_plain_http_elsewhere_is_refused() {
    let server = TestServer::start([(
        "/moved.wasm",
        Response::redirect("http://example.com/x.wasm"),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let error = server
        .http_client()
        .download_to(
            &server.url("/moved.wasm"),
            &dir.path().join("x"),
            &no_progress,
        )
        .await
        .unwrap_err();
    match &error {
        HttpError::InsecureRedirect { location, .. } => {
            assert_eq!(location, "http://example.com/x.wasm");
        }
        other => panic!("expected InsecureRedirect, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("`http://example.com/x.wasm`"), "{message}");
    assert!(message.contains("only allowed for loopback"), "{message}");
    assert_eq!(server.request_count(), 1, "the redirect is not retried");
}

#[tokio::test]
async fn redirect_from_https_to_plain_http_loopback_is_a_refused_downgrade() {
    // A remote HTTPS host must not be able to aim requests at local plain-HTTP services.
    let server = TestServer::start([(
        "/moved.wasm",
        Response::redirect("http://127.0.0.1:9/x.wasm"),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let error = server
        .http_client()
        .download_to(
            &server.url("/moved.wasm"),
            &dir.path().join("x"),
            &no_progress,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, HttpError::InsecureRedirect { .. }),
        "expected InsecureRedirect, got {error:?}"
    );
    assert!(error.to_string().contains("downgrade"), "{error}");
}

#[tokio::test]
async fn redirect_to_another_https_host_is_followed() {
    let server = TestServer::empty();
    server.route("/a.wasm", Response::redirect(server.alt_url("/b.wasm")));
    server.route("/b.wasm", Response::ok("bee"));
    let dir = tempfile::tempdir().unwrap();
    let downloaded = server
        .http_client()
        .download_to(&server.url("/a.wasm"), &dir.path().join("x"), &no_progress)
        .await
        .unwrap();
    assert_eq!(downloaded.checksum, Checksum::of(b"bee"));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].is_alt_host());
}

#[tokio::test]
async fn redirect_loops_are_cut() {
    let server = TestServer::start([("/loop", Response::redirect("/loop"))]);
    let error = server
        .http_client()
        .get_api(&server.url("/loop"), &api_headers())
        .await
        .unwrap_err();
    assert!(matches!(error, HttpError::Request { .. }), "{error:?}");
    assert_eq!(server.hits("/loop"), 11);
}

#[tokio::test]
async fn plain_http_to_a_non_loopback_host_is_refused_up_front() {
    let client = HttpClient::new(HttpOptions {
        extra_ca_file: None,
        ..HttpOptions::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let error = client
        .download_to(
            "http://example.com/x.wasm",
            &dir.path().join("x"),
            &no_progress,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, HttpError::InsecureUrl { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("refusing to fetch `http://example.com/x.wasm`"),
        "{error}"
    );
}

#[tokio::test]
async fn token_goes_to_the_api_host_only() {
    let server = TestServer::empty();
    server.route(
        "/api/thing",
        Response::redirect(server.alt_url("/elsewhere")),
    );
    server.route("/elsewhere", Response::ok("{}"));
    server.route("/api/plain", Response::ok("{}"));
    let token = ApiToken::new("s3cr3t-token", &url::Url::parse(&server.url("")).unwrap());
    let client = server.http_client();

    // Same origin: sent. A redirect to another origin: refused, never followed.
    let error = client
        .get_api(
            &server.url("/api/thing"),
            &token_headers(&server.url("/api/thing"), &token),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, HttpError::InsecureRedirect { .. }),
        "{error:?}"
    );
    // Asked directly for another host: never attached.
    client
        .get_api(
            &server.alt_url("/api/plain"),
            &token_headers(&server.alt_url("/api/plain"), &token),
        )
        .await
        .unwrap();
    // Downloads never carry it.
    let dir = tempfile::tempdir().unwrap();
    client
        .download_to(
            &server.url("/api/plain"),
            &dir.path().join("x"),
            &no_progress,
        )
        .await
        .unwrap();

    let requests = server.requests();
    let auth: Vec<(String, bool, Option<&str>)> = requests
        .iter()
        .map(|request| {
            (
                request.path.clone(),
                request.is_alt_host(),
                request.header("authorization"),
            )
        })
        .collect();
    assert_eq!(
        auth,
        [
            ("/api/thing".to_string(), false, Some("Bearer s3cr3t-token")),
            ("/api/plain".to_string(), true, None),
            ("/api/plain".to_string(), false, None),
        ]
    );
    assert!(!format!("{token:?}").contains("s3cr3t"));
    assert!(!format!("{client:?}").contains("s3cr3t"));
}

#[tokio::test]
async fn api_requests_send_github_headers_and_expose_answers() {
    let server = TestServer::empty();
    let next = server.url("/items?page=2");
    server.route(
        "/items",
        Response::json(&serde_json::json!([1, 2]))
            .header("x-ratelimit-remaining", "42")
            .header(
                "link",
                format!("<{next}>; rel=\"next\", <{next}>; rel=\"last\""),
            ),
    );
    let response = server
        .http_client()
        .get_api(&server.url("/items"), &api_headers())
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"[1,2]");
    assert_eq!(warpgate::github::rate_limit_remaining(&response), Some(42));
    assert_eq!(response.link("next"), Some(next));
    let request = &server.requests()[0];
    assert_eq!(request.method, "GET");
    assert_eq!(
        request.header("accept"),
        Some("application/vnd.github+json")
    );
    assert_eq!(request.header("x-github-api-version"), Some("2022-11-28"));
}

#[tokio::test]
async fn untrusted_certificate_fails() {
    let server = TestServer::start([("/x", Response::ok("x"))]);
    let client = client_with(&server, |options| options.extra_ca_file = None);
    let error = client
        .get_api(&server.url("/x"), &api_headers())
        .await
        .unwrap_err();
    assert!(matches!(error, HttpError::Request { .. }), "{error:?}");
    assert_eq!(server.request_count(), 0);
    assert_eq!(
        server.connection_count(),
        1,
        "a certificate error is not retried"
    );
}

#[test]
fn unreadable_or_empty_certificate_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let error = HttpClient::new(HttpOptions {
        extra_ca_file: Some(missing.clone()),
        ..HttpOptions::default()
    })
    .unwrap_err();
    assert!(matches!(error, HttpError::Certificates { .. }), "{error:?}");
    let message = crate::support::report(&error);
    assert!(
        message.contains(&format!("`{}`", missing.display())),
        "{message}"
    );
    assert!(
        message.contains("\nhint: point `SSL_CERT_FILE`"),
        "{message}"
    );

    let empty = dir.path().join("empty.pem");
    fs_err::write(&empty, "not a certificate\n").unwrap();
    let error = HttpClient::new(HttpOptions {
        extra_ca_file: Some(empty),
        ..HttpOptions::default()
    })
    .unwrap_err();
    assert!(error.to_string().contains("no PEM certificates"), "{error}");
}

#[tokio::test]
async fn persistent_too_many_requests_is_a_rate_limit() {
    let server = TestServer::start([("/busy", Response::status(429).header("retry-after", "0"))]);
    let client = client_with(&server, |options| options.max_retries = 1);
    let error = client
        .get_api(&server.url("/busy"), &api_headers())
        .await
        .unwrap_err();
    assert!(matches!(error, HttpError::RateLimited { .. }), "{error:?}");
    assert_eq!(server.hits("/busy"), 2);
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = TestServer::empty();
    let url = format!("https://127.0.0.1:{port}/x.wasm");
    let dir = tempfile::tempdir().unwrap();
    let error = server
        .http_client()
        .download_to(&url, &dir.path().join("x"), &no_progress)
        .await
        .unwrap_err();
    assert!(matches!(error, HttpError::Request { .. }), "{error:?}");
    assert_eq!(error.to_string(), format!("request to `{url}` failed"));
    assert!(!dir.path().join("x").exists());
}

#[test]
fn offline_clients_do_not_read_the_certificate_file() {
    let dir = tempfile::tempdir().unwrap();
    let client = HttpClient::new(HttpOptions {
        offline: Some("`--offline`".to_string()),
        extra_ca_file: Some(dir.path().join("missing.pem")),
        ..HttpOptions::default()
    })
    .unwrap();
    assert!(client.is_offline());
}

#[tokio::test]
async fn a_body_under_the_low_speed_limit_is_retried_then_fails() {
    // Four bytes a second against a limit of ten a second over one-second windows.
    let server = TestServer::start([(
        "/slow.wasm",
        Response::ok(body(100)).trickle(1, Duration::from_millis(250)),
    )]);
    let client = client_with(&server, |options| {
        options.low_speed_limit = 10;
        options.low_speed_time = Duration::from_secs(1);
        options.max_retries = 1;
    });
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/slow.wasm");
    let error = client
        .download_to(&url, &dir.path().join("x"), &no_progress)
        .await
        .unwrap_err();
    let HttpError::TooSlow {
        limit,
        window,
        received,
        ..
    } = &error
    else {
        panic!("expected TooSlow, got {error:?}");
    };
    assert_eq!((*limit, *window), (10, Duration::from_secs(1)));
    assert!(*received < 10, "{error}");
    let message = crate::support::report(&error);
    assert!(
        message.starts_with(&format!("the transfer from `{url}` is too slow: ")),
        "{message}"
    );
    assert!(
        message.contains("WARPGATE_HTTP_LOW_SPEED_LIMIT"),
        "{message}"
    );
    assert!(message.contains("WARPGATE_HTTP_TIMEOUT"), "{message}");
    assert_eq!(server.hits("/slow.wasm"), 2, "retried once");

    // The same for an API answer.
    let error = client.get_api(&url, &api_headers()).await.unwrap_err();
    assert!(matches!(error, HttpError::TooSlow { .. }), "{error:?}");
}

#[tokio::test]
async fn a_slow_body_over_the_low_speed_limit_completes() {
    // 100 bytes a second in pieces, against a limit of 10 a second over half-second windows.
    let bytes = body(150);
    let server = TestServer::start([(
        "/steady.wasm",
        Response::ok(bytes.clone()).trickle(10, Duration::from_millis(100)),
    )]);
    let client = client_with(&server, |options| {
        options.low_speed_limit = 10;
        options.low_speed_time = Duration::from_millis(500);
        options.max_retries = 0;
    });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x");
    let downloaded = client
        .download_to(&server.url("/steady.wasm"), &dest, &no_progress)
        .await
        .unwrap();
    assert_eq!(downloaded.checksum, Checksum::of(&bytes));
    assert_eq!(fs_err::read(dest).unwrap(), bytes);
}

#[tokio::test]
async fn the_deadline_ends_a_request_that_keeps_going_and_is_not_retried() {
    let server = TestServer::start([(
        "/endless",
        Response::ok(body(1_000_000)).trickle(50, Duration::from_millis(50)),
    )]);
    let client = client_with(&server, |options| {
        options.deadline = Some(Duration::from_millis(1500));
        options.max_retries = 3;
    });
    let url = server.url("/endless");
    let error = client.get_api(&url, &api_headers()).await.unwrap_err();
    assert!(
        matches!(
            error,
            HttpError::DeadlineExceeded { deadline, .. } if deadline == Duration::from_millis(1500)
        ),
        "{error:?}"
    );
    assert_eq!(
        crate::support::report(&error),
        format!(
            "`{url}` did not finish within the deadline of 1.5 s\nhint: allow longer requests with `WARPGATE_HTTP_DEADLINE` (seconds, `0` means no deadline)"
        )
    );
    assert_eq!(server.hits("/endless"), 1);
}

#[tokio::test]
async fn an_answer_that_never_comes_times_out_naming_the_variable() {
    let server = TestServer::start([(
        "/silent",
        Response::ok("late").delay(Duration::from_secs(30)),
    )]);
    let client = client_with(&server, |options| {
        options.read_timeout = Duration::from_secs(1);
        options.max_retries = 1;
    });
    let url = server.url("/silent");
    let error = client.get_api(&url, &api_headers()).await.unwrap_err();
    assert!(
        matches!(error, HttpError::TimedOut { timeout, .. } if timeout == Duration::from_secs(1)),
        "{error:?}"
    );
    assert_eq!(
        crate::support::report(&error),
        format!(
            "no data from `{url}` for 1 s\nhint: a server this slow needs a larger `WARPGATE_HTTP_TIMEOUT` (seconds)"
        )
    );
    assert_eq!(server.hits("/silent"), 2, "retried once");
}
