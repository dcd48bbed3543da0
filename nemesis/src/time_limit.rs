//! The commands the nemesis runs (`ip`, `iptables`, `fusermount3`) each get a time limit and
//! are killed past it: none of them should wait on anything for long, so a wedged one must
//! fail its fault or its teardown rather than hang the run.

use std::io::{self, Read};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `command` to its end and returns its output; `None` if it took longer than `limit`
/// (it is killed then).
pub(crate) async fn output_within(
    command: &mut tokio::process::Command,
    limit: Duration,
) -> Option<io::Result<Output>> {
    let output = command.kill_on_drop(true).output();
    tokio::time::timeout(limit, output).await.ok()
}

/// [`output_within`] for a caller that cannot await (an unmount on a drop path). Keeps stderr
/// only; a command past `limit` is killed and fails with `TimedOut`.
pub(crate) fn output_within_blocking(
    command: &mut std::process::Command,
    limit: Duration,
) -> io::Result<Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{command:?} did not finish within {limit:?}; killed"),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = Vec::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_end(&mut stderr)?;
    }
    Ok(Output {
        status,
        stdout: Vec::new(),
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn a_command_that_hangs_is_killed_at_its_limit_and_one_that_ends_gives_its_stderr() {
        let error =
            output_within_blocking(Command::new("sleep").arg("30"), Duration::from_millis(200))
                .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(error.to_string().contains("sleep"), "{error}");

        let output = output_within_blocking(
            Command::new("sh").args(["-c", "echo not mounted >&2; exit 1"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(output.status.code(), Some(1));
        assert_eq!(output.stderr, b"not mounted\n");
    }

    #[tokio::test]
    async fn the_async_one_gives_up_at_its_limit_and_otherwise_gives_the_output() {
        let hung = output_within(
            tokio::process::Command::new("sleep").arg("30"),
            Duration::from_millis(200),
        )
        .await;
        assert!(hung.is_none());
        let output = output_within(
            tokio::process::Command::new("sh").args(["-c", "echo out"]),
            Duration::from_secs(10),
        )
        .await
        .expect("within the limit")
        .unwrap();
        assert_eq!(output.stdout, b"out\n");
    }
}
