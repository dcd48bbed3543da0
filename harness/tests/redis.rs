//! End-to-end: `faultline test --system redis` against real redis-servers with a
//! redis-sentinel beside each (Debian's redis-server and redis-sentinel). Partitions that
//! isolate the primary make Redis lose acknowledged writes (Jepsen's finding, 2013): the
//! sentinels promote a replica while clients still write to the old primary, and its writes
//! are thrown away when it rejoins as a replica. Faultline must report them, and show the
//! failover. Nothing of the run may be left behind.
//!
//! As root the nodes run in network namespaces, where their links can be cut; without root,
//! a partition is refused with the reason. Skipped, saying why, where Redis is not installed.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{describe, is_root, nemesis_events, read_json};

fn redis_missing() -> Option<String> {
    for program in ["redis-server", "redis-sentinel"] {
        match Command::new(program).arg("--version").output() {
            Ok(out) if out.status.success() => {}
            _ => {
                return Some(format!(
                    "{program} is not installed (apt-get install -y redis-server redis-sentinel)"
                ));
            }
        }
    }
    None
}

/// `faultline test --system redis ARGS...`, checked to leave nothing behind.
fn run(store: &Path, args: &[&str]) -> Output {
    common::run(store, &[&["--system", "redis"], args].concat())
}

#[test]
fn isolating_the_primary_loses_acknowledged_writes_and_the_report_shows_them() {
    if let Some(reason) = redis_missing() {
        eprintln!("skipped: {reason}");
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let output = run(
        store.path(),
        // Redis takes some 40,000 operations a second here: a rate keeps the history (and
        // the checking) small, and still loses writes at every failover.
        &[
            "--nemesis",
            "partition-leader",
            "--time-limit",
            "15s",
            "--rate",
            "2000",
        ],
    );
    if !is_root() {
        assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("network namespaces"), "{stderr}");
        return;
    }
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let run_dir = store.path().join("latest");
    let test = read_json(run_dir.join("test.json"));
    assert_eq!(test["system"]["name"], "redis");
    let version = test["system"]["version"].as_str().unwrap_or_default();
    assert!(version.starts_with("7."), "{version}");
    assert_eq!(test["options"]["netns"], true, "{test}");

    // The primary really was cut off, and a replica was promoted in its place after a
    // partition: the run names the failover and the fault before it.
    let partitions = nemesis_events(store.path())
        .into_iter()
        .filter(|(f, _)| f == "start-partition")
        .count();
    assert!(partitions > 0, "no partition started");
    let results = read_json(run_dir.join("results.json"));
    let leaders = results["leaders"].as_array().cloned().unwrap_or_default();
    // A status poll that times out under load may put "no leader" between n1 and its
    // successor: the partition is then named on that change rather than on the successor's.
    let promoted = leaders
        .iter()
        .any(|change| change["to"].as_str().is_some_and(|to| to != "n1"));
    let after_partition = leaders
        .iter()
        .any(|change| change["fault"]["f"] == "start-partition");
    assert!(
        promoted && after_partition,
        "no failover after a partition: {leaders:?}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("(after start-partition at"), "{stdout}");

    // Acknowledged appends are missing from the final reads, and the run says which.
    assert_eq!(results["valid"], false);
    let lost = &results["lost_writes"];
    assert_eq!(lost["valid"], false, "{lost}");
    assert!(lost["lost"].as_u64() > Some(0), "{lost}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("lost writes  INVALID"), "{stdout}");
    // The report's data holds both (tests/report_browser.rs checks how they are drawn).
    let report = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(report.contains(r#""lost_writes":{"valid":false"#));
    assert!(report.contains(r#""leaders":[{"#));
}

#[test]
fn missing_redis_is_exit_3_naming_the_packages() {
    // A PATH without Redis: the run is refused before any run directory is made.
    let store = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let output = Command::new(common::faultline())
        .args(["test", "--system", "redis", "--time-limit", "5s", "--store"])
        .arg(store.path())
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("apt-get install -y redis-server redis-sentinel"),
        "{stderr}"
    );
    assert!(!store.path().join("latest").exists());
}
