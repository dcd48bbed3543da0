//! One node process, on this machine or on a host over SSH (`--hosts`): what the cluster
//! does to either is the same few things, and each is said once here.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::time::timeout;
use tracing::warn;

use crate::remote::{RemoteProcess, RemoteSignal};

/// How long a node gets to exit after SIGTERM before it is SIGKILLed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running (or paused) node process.
pub enum NodeProcess {
    Local(Child),
    Remote(RemoteProcess),
}

impl NodeProcess {
    /// Its pid (on its host, for a remote one); `None` once a local one was reaped.
    pub fn pid(&self) -> Option<u32> {
        match self {
            NodeProcess::Local(child) => child.id(),
            NodeProcess::Remote(process) => Some(process.pid()),
        }
    }

    /// How it exited, if it has (`exit status: 1`, `signal: 9 (SIGKILL)`). A remote process's
    /// exit is seen within its watcher's poll.
    pub fn exited(&mut self) -> Option<String> {
        match self {
            NodeProcess::Local(child) => match child.try_wait() {
                Ok(Some(status)) => Some(status.to_string()),
                Ok(None) => None,
                Err(error) => Some(format!("cannot be waited for ({error})")),
            },
            NodeProcess::Remote(process) => process.exited(),
        }
    }

    /// SIGKILL; reaped (here) or gone (on its host, waited for within a bound) when this
    /// returns. `Some` of how it exited if it had exited by itself before the signal, which a
    /// remote process's watcher may not have seen yet.
    pub async fn kill(&mut self) -> Result<Option<String>> {
        match self {
            NodeProcess::Local(child) => {
                child.kill().await?;
                Ok(None)
            }
            NodeProcess::Remote(process) => Ok(process.kill().await?),
        }
    }

    /// SIGSTOP or SIGCONT.
    pub async fn pause(&self, paused: bool) -> Result<()> {
        match self {
            NodeProcess::Local(child) => {
                let pid = child
                    .id()
                    .ok_or_else(|| anyhow!("the process has already been reaped"))?;
                let signal = if paused {
                    Signal::SIGSTOP
                } else {
                    Signal::SIGCONT
                };
                Ok(kill(Pid::from_raw(pid as i32), signal)?)
            }
            NodeProcess::Remote(process) => {
                let signal = if paused {
                    RemoteSignal::Stop
                } else {
                    RemoteSignal::Cont
                };
                Ok(process.signal(signal).await?)
            }
        }
    }

    /// SIGCONT (it may be paused), SIGTERM, and SIGKILL after [`STOP_GRACE`].
    pub async fn stop(self, name: &str) {
        match self {
            NodeProcess::Local(child) => stop_child(name, child).await,
            NodeProcess::Remote(process) => {
                if let Err(error) = process.stop(STOP_GRACE).await {
                    warn!(node = name, "stopping it on its host failed: {error}");
                }
            }
        }
    }
}

/// SIGCONT, SIGTERM, wait, SIGKILL: a local process, a node's or one beside it.
pub async fn stop_child(name: &str, mut child: Child) {
    if let Some(pid) = child.id() {
        let pid = Pid::from_raw(pid as i32);
        let _ = kill(pid, Signal::SIGCONT);
        let _ = kill(pid, Signal::SIGTERM);
    }
    if timeout(STOP_GRACE, child.wait()).await.is_err() {
        warn!(
            node = name,
            "did not exit within {STOP_GRACE:?} of SIGTERM; killing it"
        );
        let _ = child.kill().await.context("SIGKILL");
    }
}
