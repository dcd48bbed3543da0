//! The progress bar of a run: time against the limit, operations so far, and the phase.

use std::sync::Arc;
use std::time::Duration;

use faultline_workloads::Recorder;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

/// A bar on stderr (hidden when stderr is not a terminal), updated in the background.
pub struct Progress {
    bar: ProgressBar,
    updater: JoinHandle<()>,
}

/// Shows the bar until [`Progress::finish`].
pub fn start(limit: Duration, recorder: Arc<Recorder>) -> Progress {
    let bar = ProgressBar::new(limit.as_secs().max(1));
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed:>4} {wide_bar} {pos}/{len}s  {prefix}  {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message("running");
    let updating = bar.clone();
    let updater = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(200));
        loop {
            ticker.tick().await;
            let counts = recorder.counts();
            updating.set_position(
                updating
                    .elapsed()
                    .as_secs()
                    .min(updating.length().unwrap_or(0)),
            );
            updating.set_prefix(format!(
                "{} ok {} fail {} info, {} nemesis events",
                counts.ok, counts.fail, counts.info, counts.nemesis
            ));
            updating.tick();
        }
    });
    Progress { bar, updater }
}

impl Progress {
    /// Names the phase the run is in.
    pub fn set_message(&self, phase: &'static str) {
        self.bar.set_message(phase);
    }

    /// Removes the bar.
    pub fn finish(self) {
        self.updater.abort();
        self.bar.finish_and_clear();
    }
}
