//! A plugin's runtime settings: what the host gives it when it runs.
//!
//! Declared in the table form of a `[plugins]` entry, next to what locks it:
//!
//! ```toml
//! [plugins]
//! greeter = { locator = "file://./greeter.wasm", config = { greeting = "Howdy" }, allowed_paths = { "./data" = "/data" }, allowed_hosts = ["api.example.com"], memory = "64 MiB", timeout = "5s", wasi = true }
//! ```
//!
//! | key | value | Extism |
//! | --- | --- | --- |
//! | `config` | table of strings | the plugin's config values (`config::get`) |
//! | `allowed_paths` | table: host folder → guest path | folders WASI may open; relative host folders are taken from the config's folder by `warpgate call`, from the working folder by an embedded plugin |
//! | `allowed_hosts` | array of host patterns (`*.example.com`) | hosts the plugin's HTTP requests may reach (feature `http`) |
//! | `memory` | a size (`"64 MiB"`, `"512 KiB"`) or a number of 64 KiB pages | the most memory one instance may grow to |
//! | `timeout` | a duration (`"500ms"`, `"5s"`, `"2m"`, `"1h"`) or `"none"` | how long one call may run |
//! | `wasi` | bool (default `true`) | whether the plugin gets WASI |
//!
//! Settings are not part of a plugin's identity: the lockfile does not record them, and
//! changing one never makes the lock stale.

use std::collections::BTreeMap;
use std::time::Duration;

/// 64 KiB, the size of one WebAssembly memory page.
pub const PAGE_SIZE: u64 = 64 * 1024;
/// The most pages a 32-bit memory has (4 GiB).
const MAX_PAGES: u64 = 65_536;

/// How long one call may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// No limit (`"none"`).
    Never,
    /// Stop a call after this long.
    After(Duration),
}

/// What a plugin's entry says about how it runs; every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeSettings {
    /// Extism config values.
    pub config: BTreeMap<String, String>,
    /// Host folder → guest path, for WASI.
    pub allowed_paths: BTreeMap<String, String>,
    /// Host patterns HTTP requests may reach.
    pub allowed_hosts: Vec<String>,
    /// The memory cap, in 64 KiB pages.
    pub memory_max_pages: Option<u32>,
    /// The call timeout.
    pub timeout: Option<Timeout>,
    /// Whether WASI is on (`None`: the default, on).
    pub wasi: Option<bool>,
}

impl RuntimeSettings {
    /// The keys a `[plugins]` entry may use for runtime settings.
    pub const KEYS: [&'static str; 6] = [
        "config",
        "allowed_paths",
        "allowed_hosts",
        "memory",
        "timeout",
        "wasi",
    ];

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Reads the setting `key` of an entry from its TOML value; the error says what was
    /// expected and what was found.
    pub fn set(&mut self, key: &str, value: &toml::Value) -> Result<(), String> {
        match key {
            "config" => self.config = string_table(key, value)?,
            "allowed_paths" => {
                self.allowed_paths = string_table(key, value)?;
                if let Some(host) = self.allowed_paths.keys().find(|host| host.is_empty()) {
                    return Err(format!("`allowed_paths` has an empty host folder `{host}`"));
                }
            }
            "allowed_hosts" => {
                let toml::Value::Array(items) = value else {
                    return Err(expected(key, "an array of host patterns", value));
                };
                self.allowed_hosts = items
                    .iter()
                    .map(|item| match item {
                        toml::Value::String(host) if valid_host_pattern(host) => Ok(host.clone()),
                        toml::Value::String(host) => Err(format!(
                            "`allowed_hosts` entry `{host}` is not a host pattern (a host name, optionally starting with `*.`)"
                        )),
                        other => Err(expected(key, "an array of strings", other)),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "memory" => {
                self.memory_max_pages = Some(match value {
                    toml::Value::Integer(pages) => pages_from_count(*pages)?,
                    toml::Value::String(size) => {
                        parse_memory(size).map_err(|error| format!("`memory`: {error}"))?
                    }
                    other => {
                        return Err(expected(
                            key,
                            "a size such as \"64 MiB\" or a number of 64 KiB pages",
                            other,
                        ));
                    }
                });
            }
            "timeout" => {
                let toml::Value::String(text) = value else {
                    return Err(expected(
                        key,
                        "a duration such as \"5s\", or \"none\"",
                        value,
                    ));
                };
                self.timeout =
                    Some(parse_timeout(text).map_err(|error| format!("`timeout`: {error}"))?);
            }
            "wasi" => {
                let toml::Value::Boolean(enabled) = value else {
                    return Err(expected(key, "`true` or `false`", value));
                };
                self.wasi = Some(*enabled);
            }
            other => return Err(format!("`{other}` is not a runtime setting")),
        }
        Ok(())
    }
}

fn expected(key: &str, what: &str, found: &toml::Value) -> String {
    format!("`{key}` must be {what}, found {}", found.type_str())
}

fn string_table(key: &str, value: &toml::Value) -> Result<BTreeMap<String, String>, String> {
    let toml::Value::Table(table) = value else {
        return Err(expected(key, "a table of strings", value));
    };
    table
        .iter()
        .map(|(name, value)| match value {
            toml::Value::String(text) => Ok((name.clone(), text.clone())),
            other => Err(format!(
                "`{key}.{name}` must be a string, found {}",
                other.type_str()
            )),
        })
        .collect()
}

/// A host name or IP address, optionally `*.`-prefixed, or `*` (any host).
fn valid_host_pattern(pattern: &str) -> bool {
    let host = pattern.strip_prefix("*.").unwrap_or(pattern);
    pattern == "*"
        || (!host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')))
}

fn pages_from_count(pages: i64) -> Result<u32, String> {
    match u32::try_from(pages) {
        Ok(pages) if pages > 0 && u64::from(pages) <= MAX_PAGES => Ok(pages),
        _ => Err(format!(
            "`memory = {pages}` pages is out of range: expected 1 to {MAX_PAGES} pages of 64 KiB"
        )),
    }
}

/// A memory size (`64 MiB`, `512KiB`, `1 GiB`, `100 MB`, `65536 B`) in 64 KiB pages, rounded up,
/// or a bare number of pages.
pub fn parse_memory(text: &str) -> Result<u32, String> {
    let invalid = || {
        format!(
            "`{text}` is not a memory size: expected a number and a unit (`B`, `KiB`, `MiB`, `GiB`, `KB`, `MB`, `GB`), such as `64 MiB`, or a number of 64 KiB pages"
        )
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let unit = unit.trim();
    if unit.is_empty() {
        return pages_from_count(i64::try_from(number).map_err(|_| invalid())?);
    }
    let multiplier: u64 = match unit {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(invalid()),
    };
    let bytes = number.checked_mul(multiplier).ok_or_else(invalid)?;
    let pages = bytes.div_ceil(PAGE_SIZE);
    if pages == 0 || pages > MAX_PAGES {
        return Err(format!(
            "memory size `{text}` is out of range: expected more than 0 and at most 4 GiB"
        ));
    }
    u32::try_from(pages).map_err(|_| invalid())
}

/// A timeout: `none`, or a whole number with a unit (`ms`, `s`, `m`, `h`), such as `5s`.
pub fn parse_timeout(text: &str) -> Result<Timeout, String> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("none") {
        return Ok(Timeout::Never);
    }
    let invalid = || {
        format!(
            "`{text}` is not a timeout: expected a whole number with a unit (`ms`, `s`, `m`, `h`), such as `5s`, or `none` for no limit"
        )
    };
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let duration = match unit.trim() {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        _ => return Err(invalid()),
    };
    if duration.is_zero() {
        return Err(format!(
            "a timeout of `{text}` would stop every call at once; write `none` for no limit"
        ));
    }
    Ok(Timeout::After(duration))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("64 MiB"), Ok(1024));
        assert_eq!(parse_memory("64MiB"), Ok(1024));
        assert_eq!(parse_memory("1 B"), Ok(1));
        assert_eq!(parse_memory("65 KiB"), Ok(2));
        assert_eq!(parse_memory("4 GiB"), Ok(65_536));
        assert_eq!(parse_memory("16"), Ok(16));
        for bad in ["", "64 mib", "5 GiB", "0 MiB", "-1 MiB", "MiB", "1.5 MiB"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("none"), Ok(Timeout::Never));
        assert_eq!(
            parse_timeout("250ms"),
            Ok(Timeout::After(Duration::from_millis(250)))
        );
        assert_eq!(
            parse_timeout("2m"),
            Ok(Timeout::After(Duration::from_secs(120)))
        );
        assert!(parse_timeout("0s").unwrap_err().contains("`none`"));
        for bad in ["", "5", "5 sec", "s", "1.5s"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_from_toml() {
        let table: toml::Table = toml::from_str(
            r#"
config = { greeting = "Howdy" }
allowed_paths = { "./data" = "/data" }
allowed_hosts = ["*.example.com", "127.0.0.1"]
memory = "1 MiB"
timeout = "none"
wasi = false
"#,
        )
        .unwrap();
        let mut settings = RuntimeSettings::default();
        for (key, value) in &table {
            settings.set(key, value).unwrap();
        }
        assert_eq!(settings.config["greeting"], "Howdy");
        assert_eq!(settings.allowed_paths["./data"], "/data");
        assert_eq!(settings.allowed_hosts, ["*.example.com", "127.0.0.1"]);
        assert_eq!(settings.memory_max_pages, Some(16));
        assert_eq!(settings.timeout, Some(Timeout::Never));
        assert_eq!(settings.wasi, Some(false));

        let errors = [
            (
                "config",
                "\"Howdy\"",
                "`config` must be a table of strings, found string",
            ),
            (
                "config",
                "{ n = 1 }",
                "`config.n` must be a string, found integer",
            ),
            ("allowed_hosts", "\"a.com\"", "must be an array"),
            ("allowed_hosts", "[\"a b\"]", "not a host pattern"),
            ("memory", "true", "must be a size"),
            ("timeout", "5", "must be a duration"),
            ("wasi", "\"yes\"", "`wasi` must be `true` or `false`"),
            (
                "allowed_paths",
                "{ \"\" = \"/data\" }",
                "`allowed_paths` has an empty host folder",
            ),
            (
                "memory",
                "\"5 GiB\"",
                "out of range: expected more than 0 and at most 4 GiB",
            ),
            ("memory", "0", "out of range: expected 1 to 65536 pages"),
        ];
        for (key, value, message) in errors {
            let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .unwrap()
                .remove("v")
                .unwrap();
            let error = RuntimeSettings::default().set(key, &value).unwrap_err();
            assert!(error.contains(message), "{key} = {value}: {error}");
        }
    }
}
