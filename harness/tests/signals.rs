//! `faultline test` never hangs on what it runs and always stops when asked: a node binary
//! that ignores `--version` is named within seconds, and SIGTERM stops the harness in every
//! phase (the version probe, the cluster's start-up, the run) with its teardown, leaving no
//! process behind and keeping what was recorded. The nodes and clients here are shell
//! scripts (a system file with an exec client), so no bundled node is needed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{describe, faultline, leftovers};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a stopped harness may take to exit: its teardown stops every node (SIGTERM, which
/// the scripts here obey within a fraction of a second); generous for a loaded machine.
const PROMPTLY: Duration = Duration::from_secs(10);

/// Writes an executable script.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A node binary that ignores every flag, `--version` included, and sleeps "for ever": a
/// sleep marked with `mark`, so that the test can tell whether it still runs.
fn sleeping_binary(dir: &Path, mark: &str) -> PathBuf {
    script(dir, "fake-node", &format!("exec sleep {mark}"))
}

/// A number of seconds no other process sleeps for: this test's pid and `n`.
fn mark(n: u32) -> String {
    format!("9999{n}.{}", std::process::id())
}

/// Processes whose command line holds `text` (other than this test's own).
fn processes_with(text: &str) -> Vec<String> {
    let own = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy() != own)
        .filter_map(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(text).then_some(cmdline)
        })
        .collect()
}

/// Waits up to `limit` for `done`, failing with `what` if it does not come.
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM to `child` and waits for it; how long it took, and its output.
fn terminate(child: Child) -> (Duration, Output) {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let sent = Instant::now();
    let output = child.wait_with_output().unwrap();
    (sent.elapsed(), output)
}

#[test]
fn a_node_binary_that_ignores_version_is_named_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let mark = mark(1);
    let binary = sleeping_binary(dir.path(), &mark);
    let store = dir.path().join("store");
    let started = Instant::now();
    let child = common::start(
        &store,
        &[
            "--node-binary",
            binary.to_str().unwrap(),
            "--nemesis",
            "none",
        ],
    );
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "the node binary {} did not answer `--version` within 5 s",
            binary.display()
        )),
        "{stderr}"
    );
    // The probe's limit is 5 s; the rest is the harness's start on a loaded machine.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(
        processes_with(&mark),
        Vec::<String>::new(),
        "the probe was killed"
    );
    assert_eq!(leftovers(pid, dir.path()), Vec::<String>::new());
    assert!(
        !store.exists(),
        "nothing of a run is created before the probe"
    );
}

#[test]
fn sigterm_during_the_version_probe_stops_the_harness_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mark = mark(2);
    let binary = sleeping_binary(dir.path(), &mark);
    let child = common::start(
        &dir.path().join("store"),
        &[
            "--node-binary",
            binary.to_str().unwrap(),
            "--nemesis",
            "none",
        ],
    );
    let pid = child.id();
    // The probe runs once the harness handles signals.
    wait_for(Duration::from_secs(10), "the version probe starts", || {
        !processes_with(&mark).is_empty()
    });
    let (took, output) = terminate(child);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(
        took < Duration::from_secs(3),
        "took {took:?}, as long as the probe's own limit"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    assert!(
        stderr.contains("interrupted while checking the system under test"),
        "{stderr}"
    );
    wait_for(Duration::from_secs(5), "the probe is killed", || {
        processes_with(&mark).is_empty()
    });
    assert_eq!(leftovers(pid, dir.path()), Vec::<String>::new());
}

/// A system file whose nodes are shell loops that answer nothing, and whose client answers
/// every operation `ok` at once; `ready` says whether a node is ready.
fn fake_system(dir: &Path, ready: &str) -> PathBuf {
    // A loop of short sleeps, so that the node obeys SIGTERM at once.
    script(dir, "node.sh", "while :; do sleep 0.1; done");
    script(
        dir,
        "client.sh",
        r#"while IFS= read -r line; do
  case "$line" in
    *'"f":"read"'*) echo '{"type":"ok","value":null}' ;;
    *) echo '{"type":"ok"}' ;;
  esac
done"#,
    );
    let path = dir.join("system.toml");
    std::fs::write(
        &path,
        format!(
            r#"name = "shell"
[node]
start = ["sh", "{{system_dir}}/node.sh", "{{data_dir}}"]
ready = {ready}
[client]
kind = "exec"
command = ["sh", "{{system_dir}}/client.sh", "{{run_dir}}"]
"#
        ),
    )
    .unwrap();
    path
}

/// `faultline test` of the fake system for a minute, storing in `dir/store`.
fn start_fake(dir: &Path, system: &Path) -> Child {
    common::start(
        &dir.join("store"),
        &[
            "--system-file",
            system.to_str().unwrap(),
            "--nemesis",
            "none",
            "--nodes",
            "3",
            "--concurrency",
            "2",
            "--rate",
            "200",
            "--time-limit",
            "60s",
        ],
    )
}

#[test]
fn sigterm_while_the_cluster_starts_stops_every_node() {
    let dir = tempfile::tempdir().unwrap();
    // Never ready: the harness waits for the nodes (up to 30 s) when the signal comes.
    let system = fake_system(dir.path(), r#"["false"]"#);
    let child = start_fake(dir.path(), &system);
    let pid = child.id();
    let node = dir.path().join("node.sh").display().to_string();
    wait_for(Duration::from_secs(20), "the nodes start", || {
        processes_with(&node).len() >= 3
    });
    let (took, output) = terminate(child);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(took < PROMPTLY, "took {took:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "interrupted; nodes stopped and partitions removed. Nothing was recorded yet"
        ),
        "{stderr}"
    );
    assert_eq!(leftovers(pid, dir.path()), Vec::<String>::new());
    // The run's files stay, for its node logs.
    assert!(dir.path().join("store/latest/test.json").is_file());
}

#[test]
fn sigterm_during_a_run_stops_it_keeps_the_history_and_leaves_no_process() {
    let dir = tempfile::tempdir().unwrap();
    let system = fake_system(dir.path(), r#"["true"]"#);
    let child = start_fake(dir.path(), &system);
    let pid = child.id();
    let history = dir.path().join("store/latest/history.jsonl");
    let recorded = || std::fs::read_to_string(&history).unwrap_or_default();
    // The recorder flushes at least once a second: wait for a few dozen operations.
    wait_for(Duration::from_secs(30), "operations are recorded", || {
        recorded().lines().count() >= 40
    });
    let before = recorded();
    let clients = dir.path().join("client.sh").display().to_string();
    assert!(!processes_with(&clients).is_empty(), "the exec clients run");
    let (took, output) = terminate(child);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(took < PROMPTLY, "took {took:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("SIGTERM: stopping; what was started is torn down first"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "interrupted; nodes stopped and partitions removed. The partial history is in {}",
            dir.path().join("store").display()
        )),
        "{stderr}"
    );
    assert_eq!(leftovers(pid, dir.path()), Vec::<String>::new());
    // Everything recorded before the signal is kept, and the history still reads.
    let after = recorded();
    assert!(
        after.starts_with(&before) && after.len() >= before.len(),
        "the history lost lines"
    );
    let output = std::process::Command::new(faultline())
        .args(["check", "--json"])
        .arg(&history)
        .output()
        .unwrap();
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(result.get("error").is_none(), "{result}");
    // Stopped before its end, the run has no verdict of its own.
    assert!(!dir.path().join("store/latest/results.json").exists());
}

/// A reader that went away (`faultline test | head`, a dead log collector) leaves stdout and
/// stderr closed pipes: SIGTERM must still stop the run and stop every process it started.
#[test]
fn sigterm_stops_a_run_whose_output_nobody_reads() {
    let dir = tempfile::tempdir().unwrap();
    let system = fake_system(dir.path(), r#"["true"]"#);
    let mut child = start_fake(dir.path(), &system);
    let pid = child.id();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let history = dir.path().join("store/latest/history.jsonl");
    wait_for(Duration::from_secs(30), "operations are recorded", || {
        std::fs::read_to_string(&history)
            .unwrap_or_default()
            .lines()
            .count()
            >= 40
    });
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).unwrap();
    let sent = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            sent.elapsed() < PROMPTLY,
            "still running {PROMPTLY:?} after SIGTERM"
        );
        sleep(Duration::from_millis(50));
    }
    assert_eq!(leftovers(pid, dir.path()), Vec::<String>::new());
}
