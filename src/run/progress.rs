//! A progress bar on golden replays, which take minutes on large sets: drawn on standard error,
//! and only when it is a terminal (indicatif hides itself otherwise), so logs, pipes and CI
//! output stay clean. The bar counts samples through both models.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar of one family's replay; inert when progress is off.
pub struct ReplayProgress(Option<ProgressBar>);

impl ReplayProgress {
    /// A bar for `total` sample runs of `family`; `enabled` false (quiet or machine-readable
    /// output) draws nothing.
    pub fn start(enabled: bool, family: &str, total: u64) -> ReplayProgress {
        if !enabled {
            return ReplayProgress(None);
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "  replaying {prefix} {bar:30} {pos}/{len} samples ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(family.to_string());
        ReplayProgress(Some(bar))
    }

    pub fn tick(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }

    /// Removes the bar, leaving the terminal as it was.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
