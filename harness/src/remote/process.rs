//! A node process on a remote host, as the cluster holds it: started by
//! [`RemoteHost::start`], signalled through its directory, and watched: a task asks the host
//! every [`EXIT_POLL`] whether the shell that waits for it wrote its exit status, so that an
//! exit nobody caused is noticed as a local child's is.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};
use tracing::warn;

use super::host::{RemoteHost, RemoteProgram, RemoteSignal, Started};
use super::ssh::SshError;

/// How often the watcher asks whether the process ended.
const EXIT_POLL: Duration = Duration::from_millis(500);

/// How often a stop asks whether the process is gone yet.
const STOP_POLL: Duration = Duration::from_millis(100);

/// One started program on a host. Dropping it stops the watching, not the program.
pub struct RemoteProcess {
    host: Arc<RemoteHost>,
    dir: String,
    pid: u32,
    /// When it started, by the host's clock (see [`Started`]).
    started_ns: Option<i128>,
    /// How it ended, once the watcher saw it (see [`RemoteHost::exit_status`]).
    ended: Arc<Mutex<Option<i32>>>,
    watcher: JoinHandle<()>,
}

impl RemoteProcess {
    /// Starts `program` on `host` and begins watching it.
    pub async fn start(
        host: Arc<RemoteHost>,
        program: &RemoteProgram,
    ) -> Result<RemoteProcess, SshError> {
        let Started {
            pid,
            at_ns: started_ns,
        } = host.start(program).await?;
        let ended = Arc::new(Mutex::new(None));
        let watcher = tokio::spawn(watch(
            host.clone(),
            program.dir.clone(),
            pid,
            Arc::downgrade(&ended),
        ));
        Ok(RemoteProcess {
            host,
            dir: program.dir.clone(),
            pid,
            started_ns,
            ended,
            watcher,
        })
    }

    /// When it started, in nanoseconds since the epoch by its host's clock, if the host said.
    pub fn started_ns(&self) -> Option<i128> {
        self.started_ns
    }

    /// Its pid on the host.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How it exited, if the watcher saw it end: as a local child's exit reads
    /// (`exit status: 1`, `signal: 9 (SIGKILL)`).
    pub fn exited(&self) -> Option<String> {
        let code = (*self.ended.lock().expect("never poisoned"))?;
        Some(describe_exit(code))
    }

    /// Sends `signal` (with [`RemoteSignal::Kill`], waits, bounded, until it is gone).
    pub async fn signal(&self, signal: RemoteSignal) -> Result<(), SshError> {
        self.host.signal(&self.dir, signal).await.map(drop)
    }

    /// SIGKILL, waiting (bounded) until it is gone. If it had already exited by itself (the
    /// watcher may not have seen it yet), how: a kill must not pass off a crash as its own.
    pub async fn kill(&self) -> Result<Option<String>, SshError> {
        if self.host.signal(&self.dir, RemoteSignal::Kill).await? {
            return Ok(None);
        }
        let code = self.host.exit_status(&self.dir, self.pid).await?;
        Ok(Some(code.map_or_else(
            || "gone, without an exit status (its waiting shell was killed too)".to_string(),
            describe_exit,
        )))
    }

    /// SIGCONT (if it was paused), SIGTERM, and SIGKILL if it still runs after `grace`.
    pub async fn stop(self, grace: Duration) -> Result<(), SshError> {
        self.signal(RemoteSignal::Cont).await?;
        self.signal(RemoteSignal::Term).await?;
        let deadline = Instant::now() + grace;
        while self.host.alive(&self.dir).await? {
            if Instant::now() >= deadline {
                warn!(
                    host = %self.host.session().host(),
                    dir = self.dir,
                    "did not exit within {grace:?} of SIGTERM; killing it"
                );
                return self.signal(RemoteSignal::Kill).await;
            }
            sleep(STOP_POLL).await;
        }
        Ok(())
    }
}

impl Drop for RemoteProcess {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// Asks the host how the process `pid` in `dir` ended until it has, or nobody holds it any
/// more. A failed question is said once: the host's loss shows everywhere else too.
async fn watch(
    host: Arc<RemoteHost>,
    dir: String,
    pid: u32,
    ended: std::sync::Weak<Mutex<Option<i32>>>,
) {
    let mut said = false;
    loop {
        sleep(EXIT_POLL).await;
        let Some(slot) = ended.upgrade() else {
            return;
        };
        match host.exit_status(&dir, pid).await {
            Ok(Some(code)) => {
                *slot.lock().expect("never poisoned") = Some(code);
                return;
            }
            Ok(None) => {}
            Err(error) if !said => {
                warn!("cannot tell whether the node in {dir} still runs: {error}");
                said = true;
            }
            Err(_) => {}
        }
    }
}

/// An exit code as the shell gives it (128 + the signal for a process a signal ended), in the
/// words of a local process's exit status.
pub fn describe_exit(code: i32) -> String {
    if code > 128
        && let Ok(signal) = nix::sys::signal::Signal::try_from(code - 128)
    {
        return format!("signal: {} ({})", code - 128, signal.as_str());
    }
    format!("exit status: {code}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_read_as_a_local_process_exit_status() {
        assert_eq!(describe_exit(0), "exit status: 0");
        assert_eq!(describe_exit(1), "exit status: 1");
        assert_eq!(describe_exit(137), "signal: 9 (SIGKILL)");
        assert_eq!(describe_exit(134), "signal: 6 (SIGABRT)");
        // Above 128 with no such signal: a program's own code.
        assert_eq!(describe_exit(200), "exit status: 200");
    }
}
