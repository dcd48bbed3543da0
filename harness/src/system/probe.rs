//! Short commands the harness runs and waits for: the version probes of the systems'
//! binaries (`--node-binary --version`, `etcd --version`, `redis-server --version`, a system
//! file's `version`) and a system file's `ready` and `leader` commands. None may hold the
//! harness up: each runs within a time limit, its output is read up to a limit, and when the
//! limit passes or the harness stops waiting (Ctrl-C, SIGTERM), the command and everything it
//! started are killed.
//!
//! Each command runs in a process group of its own, and the whole group is SIGKILLed: a
//! probe is often `sh -c "..."`, and killing the shell alone would leave what it started
//! running, holding its output open.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::timeout;

/// How long a version probe may take: a binary answers `--version` in milliseconds, and one
/// that has not answered in 5 s on a loaded machine will not (it ignored the flag and runs).
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of each of a command's stdout and stderr that is kept; the rest is read and
/// dropped, so that the command never blocks on a full pipe. A version or a leader's name
/// is a line.
pub const MAX_OUTPUT_BYTES: usize = 64 << 10;

/// A command that ended by itself, within its time.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// At most [`MAX_OUTPUT_BYTES`] of it.
    pub stdout: Vec<u8>,
    /// At most [`MAX_OUTPUT_BYTES`] of it.
    pub stderr: Vec<u8>,
}

impl Finished {
    /// The first line of stdout, trimmed; `None` if there is none.
    pub fn first_line(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.stdout);
        let line = text.lines().next()?.trim();
        (!line.is_empty()).then(|| line.to_string())
    }
}

/// Why a command did not end by itself in time.
#[derive(Debug)]
pub enum ProbeError {
    /// It could not be started (not found, not executable).
    Start(io::Error),
    /// It was still running after its time, and was killed.
    TimedOut(Duration),
    /// Waiting for it failed.
    Wait(io::Error),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Start(e) => write!(f, "it could not be started: {e}"),
            ProbeError::TimedOut(limit) => write!(
                f,
                "it did not finish within {} s and was killed",
                limit.as_secs_f64()
            ),
            ProbeError::Wait(e) => write!(f, "waiting for it failed: {e}"),
        }
    }
}

impl std::error::Error for ProbeError {}

/// SIGKILLs a process group when dropped, unless disarmed: whatever way the wait for its
/// leader ends (its time passed, or the future waiting for it was dropped), the group goes.
struct GroupKiller(Option<Pid>);

impl GroupKiller {
    fn kill(&mut self) {
        if let Some(group) = self.0.take() {
            // ESRCH: every process of the group has exited already.
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `program` with `args` (stdin empty), and waits at most `limit` for it to exit.
/// Cancel-safe: dropping the future kills the command's process group.
pub async fn run(
    program: impl AsRef<OsStr>,
    args: &[impl AsRef<OsStr>],
    limit: Duration,
) -> Result<Finished, ProbeError> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // If the harness itself is SIGKILLed, its probes must not outlive it.
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command
            .pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from));
    }
    let mut child = command.spawn().map_err(ProbeError::Start)?;
    // Its pid is its group's id (`process_group(0)`); the leader is not reaped before the
    // wait below, so the id cannot be another's while the killer may use it.
    let mut killer = GroupKiller(child.id().map(|pid| Pid::from_raw(pid as i32)));
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let waited = timeout(limit, async {
        let (stdout, stderr, status) =
            tokio::join!(read_capped(stdout), read_capped(stderr), child.wait());
        (stdout, stderr, status)
    })
    .await;
    match waited {
        Ok((stdout, stderr, status)) => {
            // The leader is reaped: its id may be reused, so the group is no longer ours to
            // signal. (What it left running without our pipes is its own business.)
            killer.0 = None;
            Ok(Finished {
                status: status.map_err(ProbeError::Wait)?,
                stdout,
                stderr,
            })
        }
        Err(_) => {
            killer.kill();
            // Reaps it, now that it is dead.
            let _ = child.wait().await;
            Err(ProbeError::TimedOut(limit))
        }
    }
}

/// Reads `pipe` to its end, keeping the first [`MAX_OUTPUT_BYTES`].
async fn read_capped(pipe: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return kept;
    };
    let _ = (&mut pipe)
        .take(MAX_OUTPUT_BYTES as u64)
        .read_to_end(&mut kept)
        .await;
    let _ = tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await;
    kept
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn a_command_that_ends_gives_its_status_and_output() {
        let finished = run(
            "sh",
            &["-c", "echo v1.2; echo oops >&2; exit 3"],
            VERSION_TIMEOUT,
        )
        .await
        .unwrap();
        assert_eq!(finished.status.code(), Some(3));
        assert_eq!(finished.first_line().as_deref(), Some("v1.2"));
        assert_eq!(finished.stderr, b"oops\n");
    }

    #[tokio::test]
    async fn output_past_the_limit_is_read_and_dropped() {
        let finished = run("sh", &["-c", "yes | head -c 1000000"], VERSION_TIMEOUT)
            .await
            .unwrap();
        assert!(finished.status.success());
        assert_eq!(finished.stdout.len(), MAX_OUTPUT_BYTES);
    }

    /// Whether a process whose command line holds `mark` runs.
    fn runs(mark: &str) -> bool {
        std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(mark))
        })
    }

    #[tokio::test]
    async fn a_command_past_its_time_is_killed_with_what_it_started() {
        // The shell starts a sleep of its own, which holds the output open: both must go.
        let mark = format!("1000.{}1", std::process::id());
        let started = Instant::now();
        let error = run(
            "sh",
            &["-c", &format!("sleep {mark}; echo never")],
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, ProbeError::TimedOut(_)), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // SIGKILL is delivered at once, but the dead sleep is reaped by init a moment later.
        let deadline = Instant::now() + Duration::from_secs(5);
        while runs(&mark) {
            assert!(Instant::now() < deadline, "the probe's sleep outlived it");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_probe_dropped_before_its_end_is_killed() {
        let mark = format!("1000.{}2", std::process::id());
        let args = ["-c".to_string(), format!("sleep {mark}")];
        let probe = run("sh", &args, Duration::from_secs(60));
        assert!(
            timeout(Duration::from_millis(300), probe).await.is_err(),
            "still running"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while runs(&mark) {
            assert!(
                Instant::now() < deadline,
                "the dropped probe's sleep outlived it"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let missing = run("/no/such/program", &["--version"], VERSION_TIMEOUT)
            .await
            .unwrap_err();
        assert!(matches!(missing, ProbeError::Start(_)), "{missing}");
    }
}
