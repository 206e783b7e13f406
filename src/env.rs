//! Every environment variable warpgate reads, named in one place.
//!
//! Values are read where they are used through [`var`] and [`flag`], so that a
//! grep for a constant finds every reader.

/// Root of the content cache (default: the platform cache dir + `warpgate`).
pub const WARPGATE_HOME: &str = "WARPGATE_HOME";
/// `1`/`true` disables all network access, like `--offline`.
pub const WARPGATE_OFFLINE: &str = "WARPGATE_OFFLINE";
/// Cargo's offline switch; `true` disables all network access.
pub const CARGO_NET_OFFLINE: &str = "CARGO_NET_OFFLINE";
/// GitHub token, preferred over [`GH_TOKEN`] and [`GITHUB_TOKEN`].
pub const WARPGATE_GITHUB_TOKEN: &str = "WARPGATE_GITHUB_TOKEN";
/// GitHub token used by the `gh` CLI.
pub const GH_TOKEN: &str = "GH_TOKEN";
/// GitHub token (as set by GitHub Actions).
pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
/// Base URL of the GitHub REST API (GitHub Enterprise, tests).
pub const GITHUB_API_URL: &str = "GITHUB_API_URL";
/// PEM file of extra root certificates trusted on top of the built-in roots.
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
/// Seconds (a whole number, at least 1; default 30): the connect timeout, the longest wait for
/// an answer or for the next bytes of a body, and the window of the low-speed check
/// ([`WARPGATE_HTTP_LOW_SPEED_LIMIT`]). Cargo's `http.timeout`.
pub const WARPGATE_HTTP_TIMEOUT: &str = "WARPGATE_HTTP_TIMEOUT";
/// Bytes per second (a whole number; default 10; `0` turns the check off): a transfer that
/// averages less over [`WARPGATE_HTTP_TIMEOUT`] seconds is aborted (and retried). Cargo's
/// `http.low-speed-limit`.
pub const WARPGATE_HTTP_LOW_SPEED_LIMIT: &str = "WARPGATE_HTTP_LOW_SPEED_LIMIT";
/// Seconds (a whole number; default 600; `0` means no deadline): the longest one request may
/// take, from its first byte sent to its last byte received, retries included.
pub const WARPGATE_HTTP_DEADLINE: &str = "WARPGATE_HTTP_DEADLINE";
/// Proxy for `https://` URLs (`https_proxy` is read too). Never used for loopback hosts.
pub const HTTPS_PROXY: &str = "HTTPS_PROXY";
/// Proxy for plain `http://` URLs (`http_proxy` is read too; ignored under CGI, where
/// [`REQUEST_METHOD`] is set). Never used for loopback hosts.
pub const HTTP_PROXY: &str = "HTTP_PROXY";
/// Proxy for any URL without a scheme-specific proxy (`all_proxy` is read too).
pub const ALL_PROXY: &str = "ALL_PROXY";
/// Hosts reached without a proxy (`no_proxy` is read too); loopback hosts always are.
pub const NO_PROXY: &str = "NO_PROXY";
/// Set by a web server running a CGI program: `HTTP_PROXY` may then come from a request's
/// `Proxy:` header, so it is ignored (as `curl` and `reqwest` do).
pub const REQUEST_METHOD: &str = "REQUEST_METHOD";
/// The compiled-module cache: `off` (or `0`, `false`, `no`) disables it, an absolute path
/// moves it (default: `$WARPGATE_HOME/v1/compiled`).
pub const WARPGATE_COMPILE_CACHE: &str = "WARPGATE_COMPILE_CACHE";
/// Directory of vendored plugins used by `warpgate-build` before the cache.
pub const WARPGATE_VENDOR_DIR: &str = "WARPGATE_VENDOR_DIR";
/// Set by docs.rs builds; the build helper never touches the network then.
pub const DOCS_RS: &str = "DOCS_RS";
/// Disables colored output when set to a non-empty value.
pub const NO_COLOR: &str = "NO_COLOR";
/// Registry credentials for CI: whitespace-separated `HOST=USERNAME:PASSWORD` entries, each
/// sent only to its own registry host; preferred over the Docker config.
pub const WARPGATE_REGISTRY_AUTH: &str = "WARPGATE_REGISTRY_AUTH";
/// The team mirror (`registry://HOST/NAMESPACE`), tried by digest before a plugin's origin;
/// overrides the config's `mirror` key. `off` disables the config's mirror.
pub const WARPGATE_MIRROR: &str = "WARPGATE_MIRROR";
/// The folder of the Docker CLI's `config.json` (default `~/.docker`).
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// Default GitHub API base URL.
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";

/// The GitHub token variables, in the order they are consulted.
pub const GITHUB_TOKEN_VARS: [&str; 3] = [WARPGATE_GITHUB_TOKEN, GH_TOKEN, GITHUB_TOKEN];

/// The value of `name`, if it is set and not empty.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// Whether `name` holds a true value (`1`, `true`, `yes`, `on`, case-insensitive).
pub fn flag(name: &str) -> bool {
    var(name).is_some_and(|value| {
        matches!(
            value.to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// The environment variable that asks for offline mode, if any is set.
///
/// `WARPGATE_OFFLINE` is checked before `CARGO_NET_OFFLINE`.
pub fn offline_var() -> Option<&'static str> {
    [WARPGATE_OFFLINE, CARGO_NET_OFFLINE]
        .into_iter()
        .find(|name| flag(name))
}

/// Why the environment disables the network, worded for messages (`` `WARPGATE_OFFLINE=1` ``),
/// if it does: the one wording of an offline reason taken from a variable.
pub fn offline_reason() -> Option<String> {
    offline_var().map(|name| format!("`{name}={}`", var(name).unwrap_or_default()))
}

/// The GitHub token and the variable it came from, if any is set.
///
/// The token is never printed or written anywhere; only the variable name may be shown.
pub fn github_token() -> Option<(&'static str, String)> {
    GITHUB_TOKEN_VARS
        .into_iter()
        .find_map(|name| var(name).map(|token| (name, token)))
}

/// The variable and value of `name`, else of its lowercase spelling (`HTTPS_PROXY`, then
/// `https_proxy`), if either is set and not empty.
pub fn var_any_case(name: &str) -> Option<(String, String)> {
    [name.to_string(), name.to_ascii_lowercase()]
        .into_iter()
        .find_map(|name| var(&name).map(|value| (name, value)))
}

/// The GitHub API base URL without a trailing slash.
pub fn github_api_url() -> String {
    var(GITHUB_API_URL)
        .unwrap_or_else(|| DEFAULT_GITHUB_API_URL.to_string())
        .trim_end_matches('/')
        .to_string()
}
