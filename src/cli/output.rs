//! Human output on stderr: status lines, warnings, errors with their causes and hints.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use super::progress::ProgressReporter;

/// Where and how human-facing lines are printed.
#[derive(Clone, Debug)]
pub struct Output {
    quiet: bool,
    verbose: u8,
    color: bool,
    progress: bool,
}

impl Output {
    /// Output for the given `-q` / `-v` flags; colour and progress bars only on a terminal
    /// and never with a non-empty `NO_COLOR` (as <https://no-color.org> and clap read it).
    pub fn new(quiet: bool, verbose: u8) -> Self {
        let terminal = std::io::stderr().is_terminal();
        Self {
            quiet,
            verbose,
            color: terminal && warpgate::env::var(warpgate::env::NO_COLOR).is_none(),
            progress: terminal && !quiet,
        }
    }

    /// Sets up `tracing` for `-v`/`-vv` or `RUST_LOG`, writing to stderr.
    pub fn init_tracing(&self) {
        // Plugin logs (target `warpgate::plugin`) follow: warn and error by default, info with
        // `-v`, everything with `-vv`.
        let default = match self.verbose {
            0 => "warpgate=warn",
            1 => "warpgate=info",
            _ => "warpgate=debug,warpgate::plugin=trace",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(self.color)
            .without_time()
            .try_init();
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// A status line such as `   Locked 3 plugins`, unless quiet.
    pub fn status(&self, verb: &str, message: impl std::fmt::Display) {
        if !self.quiet {
            let verb = self.paint("1;32", &format!("{verb:>12}"));
            let _ = writeln!(std::io::stderr(), "{verb} {}", escape(&message.to_string()));
        }
    }

    /// With `-v`, what the GitHub API cost: requests, `304` answers served from the cache and
    /// the rate limit left.
    pub fn api_costs(&self, stats: warpgate::github::ApiStats) {
        if self.verbose == 0 || self.quiet {
            return;
        }
        let remaining = stats
            .rate_limit_remaining
            .map_or_else(|| "unknown".to_string(), |left| left.to_string());
        self.status(
            "GitHub API",
            format!(
                "{} requests, {} answered from cache (304), rate limit left: {remaining}",
                stats.requests, stats.not_modified
            ),
        );
    }

    /// A `warning:` line, unless quiet.
    pub fn warning(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            let label = self.paint("1;33", "warning");
            let _ = writeln!(
                std::io::stderr(),
                "{label}: {}",
                escape(&message.to_string())
            );
        }
    }

    /// A problem found by a check (`verify`): an `error:` line, its detail lines indented,
    /// and its hints, indented under it (several problems follow one another).
    pub fn problem(&self, problem: &warpgate::vendor::Problem) {
        self.report(&warpgate::diagnostic::Report::new(problem), "  ");
    }

    /// An error with its chain of causes, then its hints.
    pub fn error(&self, error: &anyhow::Error) {
        self.report(&super::error::report(error), "");
    }

    /// `report` with its `hint:` lines at `margin`. Messages quote servers, tags, file names
    /// and plugins: what they say never reaches the terminal as control sequences, and a line
    /// of it is always indented past `margin`, so it can never pass for a hint.
    fn report(&self, report: &warpgate::diagnostic::Report, margin: &str) {
        let lines = |text: &str, indent: &str| {
            text.lines()
                .map(escape)
                .collect::<Vec<_>>()
                .join(&format!("\n{margin}{indent}"))
        };
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(
            stderr,
            "{}: {}",
            self.paint("1;31", "error"),
            lines(&report.message, "  ")
        );
        for cause in &report.causes {
            let _ = writeln!(stderr, "{margin}  caused by: {}", lines(cause, "    "));
        }
        for hint in &report.hints {
            let _ = writeln!(
                stderr,
                "{margin}{}: {}",
                self.paint("1;36", "hint"),
                lines(hint, "  ")
            );
        }
    }

    /// The reporter that draws download progress (a silent one off a terminal).
    pub fn reporter(&self) -> Arc<dyn warpgate::reporter::Reporter> {
        if self.progress {
            Arc::new(ProgressReporter::new())
        } else {
            Arc::new(warpgate::reporter::SilentReporter)
        }
    }
}

/// `1 plugin`, `2 plugins`: a count for status lines.
pub fn plugin_count(count: usize) -> String {
    match count {
        1 => "1 plugin".to_string(),
        _ => format!("{count} plugins"),
    }
}

/// `text` with every control character (ANSI escapes, a lone `\r`, a line break inside a
/// cell) and bidirectional override shown escaped (`\u{1b}`), so that untrusted text cannot
/// rewrite the terminal or read differently than it is.
pub fn escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if warpgate::locator::is_hidden_control(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn plugin_count_agrees_with_the_number() {
        assert_eq!(super::plugin_count(0), "0 plugins");
        assert_eq!(super::plugin_count(1), "1 plugin");
        assert_eq!(super::plugin_count(2), "2 plugins");
    }
}
