//! Leadership transfer with three real `faultline-node` processes: `POST
//! /admin/transfer-leader` (done, refused, abandoned) and the handover a leader makes when it
//! gets SIGTERM.

mod common;

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::TestCluster;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Generous: a transfer takes a few round trips, but the machine may be busy.
const LIVENESS: Duration = Duration::from_secs(20);

/// `POST /admin/transfer-leader` to node `i` with this raw body: the status and JSON answer.
fn ask_transfer(cluster: &TestCluster, i: usize, body: &str) -> (StatusCode, Value) {
    let response = cluster
        .http
        .post(cluster.url(i, "/admin/transfer-leader"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

/// Waits until every thread of `pid` is stopped: `kill` returns once SIGSTOP is sent, and a
/// busy machine may let the node run on for a moment (enough to obey a TimeoutNow).
fn wait_until_stopped(pid: Pid) {
    let stopped = || {
        let tasks = fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        tasks.flatten().all(|task| {
            let stat = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // The state follows the command name's closing parenthesis.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T'))
        })
    };
    for _ in 0..500 {
        if stopped() {
            return;
        }
        thread::sleep(Duration::from_millis(2));
    }
    panic!("process {pid} did not stop within a second of SIGSTOP");
}

/// The term of node `i`, which must answer.
fn term(cluster: &TestCluster, i: usize) -> u64 {
    cluster.status_u64(i, "term").expect("the node answers")
}

/// The index of the node named `name`.
fn node_named(cluster: &TestCluster, name: &str) -> usize {
    cluster
        .nodes
        .iter()
        .position(|node| node.name == name)
        .unwrap_or_else(|| panic!("no node named {name}"))
}

/// The target named in node `i`'s log line "transferring leadership ... to=<name>".
fn chosen_target(cluster: &TestCluster, i: usize) -> Option<String> {
    let log = fs::read_to_string(&cluster.nodes[i].log).unwrap_or_default();
    let line = log
        .lines()
        .find(|line| line.contains("transferring leadership"))?;
    let to = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("to="))?;
    Some(to.trim_matches('"').to_string())
}

#[test]
fn admin_transfer_moves_leadership_to_the_named_node_and_writes_go_on() {
    let cluster = TestCluster::start(3, &[]);
    let leader = cluster.wait_for_leader(LIVENESS);
    let target = (leader + 1) % 3;
    let old_term = term(&cluster, leader);
    for k in 0..10 {
        cluster.put_acknowledged(&format!("before{k}"), json!(k));
    }

    // A client keeps writing through the transfer; every write it saw acknowledged must be
    // readable afterwards.
    let stop = AtomicBool::new(false);
    let (answer, acknowledged) = thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut acknowledged = 0;
            while !stop.load(Ordering::Relaxed) {
                cluster.put_acknowledged(&format!("during{acknowledged}"), json!(acknowledged));
                acknowledged += 1;
            }
            acknowledged
        });
        thread::sleep(Duration::from_millis(200));
        let body = json!({ "to": cluster.nodes[target].name }).to_string();
        let answer = ask_transfer(&cluster, leader, &body);
        thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        (answer, writer.join().unwrap())
    });

    let (status, body) = answer;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", cluster.logs());
    assert_eq!(body["leader"], json!(cluster.nodes[target].name));
    let new_term = body["term"].as_u64().unwrap();
    assert!(new_term > old_term, "term {new_term} after {old_term}");
    assert_eq!(cluster.wait_for_leader(LIVENESS), target);
    assert_eq!(term(&cluster, target), new_term);
    assert!(
        acknowledged > 0,
        "no write was acknowledged during the transfer"
    );

    for k in 0..10 {
        cluster.put_acknowledged(&format!("after{k}"), json!(k));
    }
    for k in 0..10 {
        assert_eq!(cluster.read(&format!("before{k}")), Some(json!(k)));
        assert_eq!(cluster.read(&format!("after{k}")), Some(json!(k)));
    }
    for k in 0..acknowledged {
        assert_eq!(cluster.read(&format!("during{k}")), Some(json!(k)));
    }
    assert_eq!(
        cluster.wait_for_leader(LIVENESS),
        target,
        "leadership stayed"
    );
}

#[test]
fn a_transfer_without_a_target_goes_to_a_follower() {
    let cluster = TestCluster::start(3, &[]);
    let leader = cluster.wait_for_leader(LIVENESS);
    cluster.put_acknowledged("k", json!(1));
    let (status, body) = ask_transfer(&cluster, leader, "");
    assert_eq!(status, StatusCode::OK, "{body}\n{}", cluster.logs());
    let new_leader = node_named(&cluster, body["leader"].as_str().unwrap());
    assert_ne!(new_leader, leader);
    assert_eq!(cluster.wait_for_leader(LIVENESS), new_leader);
    assert_eq!(
        chosen_target(&cluster, leader).as_deref(),
        Some(cluster.nodes[new_leader].name.as_str())
    );
    cluster.put_acknowledged("k", json!(2));
    assert_eq!(cluster.read("k"), Some(json!(2)));
}

#[test]
fn transfer_requests_that_cannot_work_are_refused_with_the_reason() {
    let cluster = TestCluster::start(3, &[]);
    let leader = cluster.wait_for_leader(LIVENESS);
    let follower = (leader + 1) % 3;
    let leader_name = cluster.nodes[leader].name.clone();
    let old_term = term(&cluster, leader);

    // A follower sends the caller to the leader.
    let (status, body) = ask_transfer(&cluster, follower, "");
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["leader"], json!(leader_name));
    assert!(body["error"].as_str().unwrap().contains("not the leader"));

    // Unknown members, the leader itself and bodies that are not {"to": NAME}.
    let (status, body) = ask_transfer(&cluster, leader, r#"{"to": "n9"}"#);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("n9"), "{body}");
    let to_itself = json!({ "to": leader_name }).to_string();
    let (status, body) = ask_transfer(&cluster, leader, &to_itself);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    for bad in [r#"{"to": 2}"#, r#"{"target": "n2"}"#, "n2"] {
        let (status, body) = ask_transfer(&cluster, leader, bad);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let response = cluster
        .http
        .get(cluster.url(leader, "/admin/transfer-leader"))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    // None of it moved leadership or stopped writes.
    cluster.put_acknowledged("k", json!(1));
    assert_eq!(cluster.wait_for_leader(LIVENESS), leader);
    assert_eq!(term(&cluster, leader), old_term);
}

#[test]
fn a_transfer_to_a_paused_node_is_abandoned_and_the_leader_takes_writes_again() {
    let cluster = TestCluster::start(3, &[]);
    let leader = cluster.wait_for_leader(LIVENESS);
    let target = (leader + 1) % 3;
    let old_term = term(&cluster, leader);
    cluster.put_acknowledged("k", json!(1));
    let target_pid = Pid::from_raw(cluster.pid(target).unwrap() as i32);
    kill(target_pid, Signal::SIGSTOP).unwrap();
    wait_until_stopped(target_pid);

    let body = json!({ "to": cluster.nodes[target].name }).to_string();
    let (status, answer) = ask_transfer(&cluster, leader, &body);
    let leader_now = cluster.status(leader);
    kill(target_pid, Signal::SIGCONT).unwrap();
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{answer}\n{}",
        cluster.logs()
    );
    assert!(
        answer["error"].as_str().unwrap().contains("abandoned"),
        "{answer}"
    );
    let leader_now = leader_now.expect("the leader answers");
    assert_eq!(leader_now["role"], json!("leader"), "{leader_now}");
    assert_eq!(leader_now["term"], json!(old_term), "{leader_now}");

    // The paused node may still obey the TimeoutNow once it runs again; either way writes go on.
    cluster.put_acknowledged("k", json!(2));
    assert_eq!(cluster.read("k"), Some(json!(2)));
}

#[test]
fn sigterm_on_the_leader_hands_leadership_to_the_follower_it_chose() {
    let mut cluster = TestCluster::start(3, &[]);
    let leader = cluster.wait_for_leader(LIVENESS);
    let old_term = term(&cluster, leader);
    for k in 0..10 {
        cluster.put_acknowledged(&format!("k{k}"), json!(k));
    }

    assert!(
        cluster.terminate(leader),
        "the leader did not exit cleanly\n{}",
        cluster.logs()
    );
    let chosen = chosen_target(&cluster, leader)
        .unwrap_or_else(|| panic!("the leader chose no target\n{}", cluster.logs()));
    let log = fs::read_to_string(&cluster.nodes[leader].log).unwrap();
    assert!(
        log.contains("handed leadership over before stopping"),
        "{}",
        cluster.logs()
    );

    let new_leader = cluster.wait_for_leader(LIVENESS);
    assert_eq!(cluster.nodes[new_leader].name, chosen);
    assert_eq!(
        term(&cluster, new_leader),
        old_term + 1,
        "one election, without a split vote"
    );
    cluster.put_acknowledged("k10", json!(10));
    for k in 0..=10 {
        assert_eq!(cluster.read(&format!("k{k}")), Some(json!(k)));
    }
}

#[test]
fn sigterm_on_a_follower_stops_it_without_a_transfer() {
    let mut cluster = TestCluster::start(3, &[]);
    let leader = cluster.wait_for_leader(LIVENESS);
    let follower = (leader + 1) % 3;
    let old_term = term(&cluster, leader);
    assert!(cluster.terminate(follower), "{}", cluster.logs());
    assert_eq!(chosen_target(&cluster, follower), None);
    assert_eq!(cluster.wait_for_leader(LIVENESS), leader);
    assert_eq!(term(&cluster, leader), old_term);
    cluster.put_acknowledged("k", json!(1));
}
