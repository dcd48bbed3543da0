//! Lease reads (`--read-mode lease`) with three real `faultline-node` processes: reads are
//! served under the lease, see every acknowledged write, and a leader paused past its lease
//! serves no stale read when it runs again.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::TestCluster;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::StatusCode;
use serde_json::{Value, json};

const LEASE: &[&str] = &["--read-mode", "lease"];

/// Generous: elections take a few hundred milliseconds, but the machine may be busy.
const LIVENESS: Duration = Duration::from_secs(20);

/// The `faultline_reads_under_lease_total` counter of node `i`.
fn reads_under_lease(cluster: &TestCluster, i: usize) -> u64 {
    cluster.metric(i, "faultline_reads_under_lease_total") as u64
}

#[test]
fn reads_under_a_lease_see_every_acknowledged_write() {
    let cluster = TestCluster::start(3, LEASE);
    let leader = cluster.wait_for_leader(LIVENESS);
    for k in 0..50 {
        cluster.put_acknowledged("k", json!(k));
        assert_eq!(cluster.read("k"), Some(json!(k)), "read after write {k}");
    }
    let leader_now = cluster.wait_for_leader(LIVENESS);
    let served = reads_under_lease(&cluster, leader_now);
    assert!(
        served > 0,
        "no read was served under the lease (leader {leader}, then {leader_now})\n{}",
        cluster.logs()
    );
}

#[test]
fn a_node_refuses_a_drift_margin_that_leaves_no_lease() {
    let mut cluster = TestCluster::new(3, &["--read-mode", "lease", "--lease-drift-margin", "1s"]);
    cluster.spawn(0);
    let status = cluster.wait_for_exit(0, LIVENESS);
    assert!(!status.success());
    let log = std::fs::read_to_string(&cluster.nodes[0].log).unwrap();
    assert!(log.contains("lower the margin"), "{log}");
}

/// The node of `candidates` that leads a term after `term`, if one does.
fn new_leader(cluster: &TestCluster, candidates: &[usize], term: u64) -> Option<usize> {
    candidates.iter().copied().find(|&i| {
        cluster
            .status(i)
            .is_some_and(|s| s["role"] == "leader" && s["term"].as_u64() > Some(term))
    })
}

#[test]
fn a_leader_paused_past_its_lease_serves_no_stale_read() {
    let cluster = TestCluster::start(3, LEASE);
    let old = cluster.wait_for_leader(LIVENESS);
    let old_term = cluster.status_u64(old, "term").unwrap();
    cluster.put_acknowledged("k", json!("before"));
    // A read on the leader, so that it holds a lease when it is paused.
    assert_eq!(cluster.read("k"), Some(json!("before")));
    let pid = Pid::from_raw(cluster.pid(old).unwrap() as i32);
    kill(pid, Signal::SIGSTOP).unwrap();

    let others: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let deadline = Instant::now() + LIVENESS;
    let successor = loop {
        if let Some(successor) = new_leader(&cluster, &others, old_term) {
            break successor;
        }
        assert!(
            Instant::now() < deadline,
            "no new leader\n{}",
            cluster.logs()
        );
        thread::sleep(Duration::from_millis(50));
    };
    let written = cluster
        .http
        .put(cluster.url(successor, "/kv/k"))
        .json(&json!({"value": "after"}))
        .send()
        .unwrap();
    assert_eq!(written.status(), StatusCode::OK);

    // A read sent to the paused leader waits in its socket, and is handled when it runs
    // again: its lease has run out by then, however its clock counts.
    let read = {
        let http = cluster.http.clone();
        let url = cluster.url(old, "/kv/k");
        thread::spawn(move || {
            let response = http.get(url).send().unwrap();
            let status = response.status();
            (status, response.json::<Value>().unwrap_or(Value::Null))
        })
    };
    thread::sleep(Duration::from_millis(300));
    kill(pid, Signal::SIGCONT).unwrap();
    let (status, answer) = read.join().unwrap();
    if status == StatusCode::OK {
        assert_eq!(
            answer["value"],
            json!("after"),
            "the old leader served a stale read: {answer}\n{}",
            cluster.logs()
        );
    } else {
        assert!(
            [
                StatusCode::TEMPORARY_REDIRECT,
                StatusCode::SERVICE_UNAVAILABLE,
                StatusCode::GATEWAY_TIMEOUT
            ]
            .contains(&status),
            "{status}: {answer}"
        );
    }
    assert_eq!(cluster.read("k"), Some(json!("after")));
}
