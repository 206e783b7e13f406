//! Progress bars for downloads, drawn on stderr with `indicatif`.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use warpgate::id::Id;
use warpgate::reporter::Reporter;

/// Draws one bar per download: bytes, total and speed.
pub struct ProgressReporter {
    bars: MultiProgress,
    active: Mutex<HashMap<Id, ProgressBar>>,
}

impl ProgressReporter {
    /// A reporter drawing on stderr.
    pub fn new() -> Self {
        Self {
            bars: MultiProgress::new(),
            active: Mutex::new(HashMap::new()),
        }
    }
}

impl Reporter for ProgressReporter {
    fn download_started(&self, id: &Id, _url: &str) {
        let bar = self.bars.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12.cyan.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(id.to_string());
        self.active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), bar);
    }

    fn download_progress(&self, id: &Id, received: u64, total: Option<u64>) {
        if let Some(bar) = self
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
        {
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(received);
        }
    }

    fn download_finished(&self, id: &Id) {
        if let Some(bar) = self
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id)
        {
            bar.finish_and_clear();
        }
    }
}
