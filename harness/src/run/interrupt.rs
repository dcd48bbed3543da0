//! Ctrl-C and SIGTERM: turned into a flag every phase of a run watches, so that clients and
//! the nemesis stop and the teardown still runs. The phases (`run/mod.rs`) and how each stops:
//! the version probes are killed (nothing exists yet); the cluster's start-up stops waiting
//! for a leader; clients and the nemesis stop, faults are healed, and the healing check and
//! the final reads are skipped (or cut short, if under way); the check of the history is left
//! behind (the history is on disk). In every case the teardown runs, the run's files stay,
//! and the exit code is 3: an interrupted run has no verdict.

use std::future::Future;

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::console::errln;

/// Set once the user (or a supervisor) asked the run to stop.
#[derive(Clone)]
pub struct Interrupt {
    flag: watch::Receiver<bool>,
}

impl Interrupt {
    /// Starts listening for SIGINT and SIGTERM. From then on they no longer kill the
    /// process: they set the flag.
    pub fn install() -> Result<Interrupt> {
        let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
        let (set, flag) = watch::channel(false);
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            let _ = set.send(true);
            errln!("\n{name}: stopping; what was started is torn down first");
        });
        Ok(Interrupt { flag })
    }

    /// Whether a stop was asked for.
    pub fn is_set(&self) -> bool {
        *self.flag.borrow()
    }

    /// Completes when a stop is asked for.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut flag = self.flag.clone();
        async move {
            // An error means the listener is gone: then no stop will ever come.
            if flag.wait_for(|set| *set).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
