//! Typed build-script output: the `cargo::` lines this crate prints.

use std::fmt;
use std::path::PathBuf;

/// One instruction to Cargo, printed on its own line of the build script's stdout.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Directive {
    /// `cargo::rerun-if-changed=PATH`: re-run the build script when the file changes.
    RerunIfChanged(PathBuf),
    /// `cargo::rerun-if-env-changed=NAME`: re-run the build script when the variable changes.
    RerunIfEnvChanged(&'static str),
    /// `cargo::warning=MESSAGE`: show a warning in `cargo build` output (one line each).
    Warning(String),
}

impl fmt::Display for Directive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RerunIfChanged(path) => {
                let text = path.to_string_lossy();
                if text.contains(['\n', '\r']) {
                    // A line break would end the directive and start another one of the path's
                    // choosing: the file is not watched, and Cargo is told why.
                    write!(
                        f,
                        "cargo::warning=cannot watch `{}` for changes: its name holds a line break",
                        text.escape_debug()
                    )
                } else {
                    write!(f, "cargo::rerun-if-changed={text}")
                }
            }
            Self::RerunIfEnvChanged(name) => write!(f, "cargo::rerun-if-env-changed={name}"),
            Self::Warning(message) => {
                // A directive ends at the newline: print each line as its own warning, with
                // control characters (a lone `\r`, terminal escapes) shown escaped.
                let mut lines = message.lines().map(escape_controls);
                write!(f, "cargo::warning={}", lines.next().unwrap_or_default())?;
                for line in lines {
                    write!(f, "\ncargo::warning={line}")?;
                }
                Ok(())
            }
        }
    }
}

fn escape_controls(line: &str) -> String {
    line.chars()
        .map(|c| {
            if warpgate::locator::is_hidden_control(c) {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Prints `directives` to stdout, where Cargo reads them.
pub fn emit(directives: &[Directive]) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    for directive in directives {
        // A closed stdout cannot happen under Cargo; nothing useful to do about it otherwise.
        let _ = writeln!(stdout, "{directive}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(
            Directive::RerunIfChanged("a/warpgate.lock".into()).to_string(),
            "cargo::rerun-if-changed=a/warpgate.lock"
        );
        assert_eq!(
            Directive::RerunIfEnvChanged("WARPGATE_HOME").to_string(),
            "cargo::rerun-if-env-changed=WARPGATE_HOME"
        );
        assert_eq!(
            Directive::Warning("one\ntwo".into()).to_string(),
            "cargo::warning=one\ncargo::warning=two"
        );
    }

    #[test]
    fn nothing_can_inject_a_directive() {
        let path = "plugins/x\ncargo::rustc-link-arg=-evil.wasm";
        let line = Directive::RerunIfChanged(path.into()).to_string();
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.starts_with("cargo::warning=cannot watch"), "{line}");
        let line = Directive::Warning("a\rcargo::rustc-cfg=evil \u{1b}[31m".into()).to_string();
        assert_eq!(line, "cargo::warning=a\\rcargo::rustc-cfg=evil \\u{1b}[31m");
    }
}
