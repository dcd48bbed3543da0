//! Membership changes with real `faultline-node` processes: a node started outside the
//! initial voters joins as a learner, catches up and is promoted; a voter is replaced in one
//! change; the leader removes itself and steps down; refusals say why. Every acknowledged
//! write survives each change.

mod common;

use std::time::Duration;

use common::TestCluster;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Generous: a change takes a few round trips, but the machine may be busy.
const LIVENESS: Duration = Duration::from_secs(20);

/// A request to node `i`'s admin API: the status and JSON answer.
fn admin(
    cluster: &TestCluster,
    i: usize,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = cluster.http.request(method, cluster.url(i, path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().unwrap();
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

/// The node that leads among `candidates`, once one does.
fn leader_among(cluster: &TestCluster, candidates: &[usize]) -> usize {
    cluster.wait_until("a leader among the members", LIVENESS, || {
        candidates
            .iter()
            .copied()
            .find(|&i| cluster.status(i).is_some_and(|s| s["role"] == "leader"))
    })
}

fn names(view: &Value, field: &str) -> Vec<String> {
    view[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {view}"))
        .iter()
        .map(|name| name.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn nodes_join_as_learners_are_promoted_replaced_and_removed_and_no_write_is_lost() {
    let mut cluster = TestCluster::new(5, &["--initial-members", "n1,n2,n3"]);
    for i in 0..3 {
        cluster.spawn(i);
    }
    let leader = leader_among(&cluster, &[0, 1, 2]);
    cluster.put_acknowledged("before", json!(1));

    // n4 starts with no place in the cluster: it waits, and never campaigns.
    cluster.spawn(3);
    let (status, view) = admin(&cluster, leader, "GET", "/admin/members", None);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&view, "voters"), ["n1", "n2", "n3"]);
    assert!(names(&view, "learners").is_empty());

    // Refusals: not the leader, an unknown node, a change that does not apply.
    let follower = (0..3).find(|&i| i != leader).unwrap();
    let (status, answer) = admin(
        &cluster,
        follower,
        "POST",
        "/admin/members",
        Some(json!({"name": "n4", "role": "learner"})),
    );
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["leader"], json!(cluster.nodes[leader].name));
    let (status, answer) = admin(
        &cluster,
        leader,
        "POST",
        "/admin/members",
        Some(json!({"name": "n9", "role": "learner"})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = admin(
        &cluster,
        leader,
        "POST",
        "/admin/members",
        Some(json!({"name": "n2", "role": "voter"})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("n2 is already a voter")
    );

    // n4 joins as a learner and catches up; then it is promoted.
    let (status, view) = admin(
        &cluster,
        leader,
        "POST",
        "/admin/members",
        Some(json!({"name": "n4", "role": "learner"})),
    );
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(names(&view, "learners"), ["n4"]);
    assert_eq!(view["pending"], json!(false));
    let commit = cluster.status_u64(leader, "commit").unwrap();
    let caught_up = cluster.wait_for_applied(3, commit, LIVENESS);
    assert_eq!(caught_up["role"], "follower");
    // Its /status shows the configuration it got with the log, itself a learner.
    assert_eq!(names(&caught_up, "voters"), ["n1", "n2", "n3"]);
    assert_eq!(names(&caught_up, "learners"), ["n4"]);
    let (status, view) = admin(
        &cluster,
        leader,
        "POST",
        "/admin/members",
        Some(json!({"name": "n4", "role": "voter"})),
    );
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(names(&view, "voters"), ["n1", "n2", "n3", "n4"]);
    assert!(names(&view, "learners").is_empty());
    // The leader's /status shows the new voter: C_new was in force (and published) from
    // the round that appended it, before the change committed and was answered.
    let status = cluster.status(leader).expect("the leader answers /status");
    assert_eq!(
        names(&status, "voters"),
        ["n1", "n2", "n3", "n4"],
        "{status}"
    );
    assert!(names(&status, "outgoing").is_empty(), "{status}");
    assert!(names(&status, "learners").is_empty(), "{status}");
    cluster.put_acknowledged("promoted", json!(2));

    // n5 takes the place of a follower in one change (through the joint configuration).
    cluster.spawn(4);
    let replaced = (0..3).find(|&i| i != leader).unwrap();
    let replaced_name = cluster.nodes[replaced].name.clone();
    let (status, view) = admin(
        &cluster,
        leader,
        "POST",
        "/admin/members",
        Some(json!({"name": "n5", "replaces": replaced_name})),
    );
    assert_eq!(status, StatusCode::OK, "{view}");
    let voters = names(&view, "voters");
    assert!(
        voters.contains(&"n5".to_string()) && !voters.contains(&replaced_name),
        "{view}"
    );
    assert_eq!(voters.len(), 4);
    cluster.kill(replaced);
    cluster.put_acknowledged("replaced", json!(3));

    // The leader removes itself: answered once the change committed, then it steps down.
    let leader_name = cluster.nodes[leader].name.clone();
    let (status, view) = admin(
        &cluster,
        leader,
        "DELETE",
        &format!("/admin/members/{leader_name}"),
        None,
    );
    assert_eq!(status, StatusCode::OK, "{view}");
    assert!(!names(&view, "voters").contains(&leader_name), "{view}");
    cluster.wait_until("the removed leader to step down", LIVENESS, || {
        (cluster.status(leader)?["role"] != "leader").then_some(())
    });
    cluster.kill(leader);
    let remaining: Vec<usize> = (0..5).filter(|&i| cluster.is_running(i)).collect();
    assert_eq!(remaining.len(), 3);
    let new_leader = leader_among(&cluster, &remaining);
    let (_, view) = admin(&cluster, new_leader, "GET", "/admin/members", None);
    assert_eq!(names(&view, "voters").len(), 3, "{view}");
    cluster.put_acknowledged("after", json!(4));
    for (key, value) in [
        ("before", 1),
        ("promoted", 2),
        ("replaced", 3),
        ("after", 4),
    ] {
        assert_eq!(cluster.read(key), Some(json!(value)), "{key}");
    }
}

/// The node that leads the newest term among the running nodes, if one does.
fn current_leader(cluster: &TestCluster) -> Option<usize> {
    (0..cluster.nodes.len())
        .filter(|&i| cluster.is_running(i))
        .filter_map(|i| Some((i, cluster.status(i)?)))
        .filter(|(_, status)| status["role"] == "leader")
        .max_by_key(|(_, status)| status["term"].as_u64())
        .map(|(i, _)| i)
}

/// One membership change a test asks for, and how to tell it is done.
struct Change {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    done: fn(&Value) -> bool,
}

/// Asks whoever leads for `change` until the members it answers with show it done;
/// leadership may move, and an answer may be lost (504), meanwhile.
fn change_until(cluster: &TestCluster, change: &Change) {
    let deadline = std::time::Instant::now() + LIVENESS;
    let mut last = String::new();
    while std::time::Instant::now() < deadline {
        if let Some(leader) = current_leader(cluster) {
            let (_, view) = admin(cluster, leader, "GET", "/admin/members", None);
            if view["pending"] == json!(false) && (change.done)(&view) {
                return;
            }
            let (status, answer) = admin(
                cluster,
                leader,
                change.method,
                change.path,
                change.body.clone(),
            );
            last = format!("{status}: {answer}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{}: not done within {LIVENESS:?}; last answer {last}\n{}",
        change.what,
        cluster.logs()
    );
}

/// Writes `key` = `value` through whoever leads until it is acknowledged.
fn put(cluster: &TestCluster, key: &str, value: u64) {
    let deadline = std::time::Instant::now() + LIVENESS;
    while std::time::Instant::now() < deadline {
        if let Some(leader) = current_leader(cluster) {
            let answer = cluster
                .http
                .put(cluster.url(leader, &format!("/kv/{key}")))
                .json(&json!({ "value": value }))
                .send();
            if answer.is_ok_and(|answer| answer.status().is_success()) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{key} = {value} not acknowledged within {LIVENESS:?}\n{}",
        cluster.logs()
    );
}

fn has(view: &Value, field: &str, name: &str) -> bool {
    names(view, field).iter().any(|n| n == name)
}

/// Changes of every kind, each with a crash of another node around it (the leader's too),
/// and writes between them: every acknowledged write is read back at the end.
#[test]
fn membership_changes_among_crashes_lose_no_acknowledged_write() {
    let mut cluster = TestCluster::new(5, &["--initial-members", "n1,n2,n3"]);
    for i in 0..5 {
        cluster.spawn(i);
    }
    leader_among(&cluster, &[0, 1, 2]);
    let mut written = Vec::new();
    let mut write = |cluster: &TestCluster, step: usize| {
        for k in 0..5 {
            let key = format!("k{step}-{k}");
            put(cluster, &key, (step * 10 + k) as u64);
            written.push((key, (step * 10 + k) as u64));
        }
    };
    // A crash of the leader or of a follower, restarted at once on its data.
    let crash = |cluster: &mut TestCluster, leader_too: bool| {
        let victim = current_leader(cluster).filter(|_| leader_too).or_else(|| {
            (0..5).find(|&i| cluster.is_running(i) && Some(i) != current_leader(cluster))
        });
        if let Some(victim) = victim {
            cluster.kill(victim);
            cluster.spawn(victim);
        }
    };
    let steps = [
        Change {
            what: "add n4 as a learner",
            method: "POST",
            path: "/admin/members",
            body: Some(json!({"name": "n4", "role": "learner"})),
            done: |v| has(v, "learners", "n4"),
        },
        Change {
            what: "promote n4",
            method: "POST",
            path: "/admin/members",
            body: Some(json!({"name": "n4", "role": "voter"})),
            done: |v| has(v, "voters", "n4"),
        },
        Change {
            what: "n5 replaces n2",
            method: "POST",
            path: "/admin/members",
            body: Some(json!({"name": "n5", "replaces": "n2"})),
            done: |v| has(v, "voters", "n5") && !has(v, "voters", "n2"),
        },
        Change {
            what: "remove n1",
            method: "DELETE",
            path: "/admin/members/n1",
            body: None,
            done: |v| !has(v, "voters", "n1"),
        },
        Change {
            what: "add n2 back as a voter",
            method: "POST",
            path: "/admin/members",
            body: Some(json!({"name": "n2", "role": "voter"})),
            done: |v| has(v, "voters", "n2"),
        },
    ];
    for (step, change) in steps.into_iter().enumerate() {
        write(&cluster, step);
        crash(&mut cluster, step % 2 == 1);
        change_until(&cluster, &change);
    }
    write(&cluster, 99);
    let leader = current_leader(&cluster).expect("a leader at the end");
    let (_, view) = admin(&cluster, leader, "GET", "/admin/members", None);
    assert_eq!(names(&view, "voters"), ["n2", "n3", "n4", "n5"], "{view}");
    for (key, value) in written {
        let answer: Value = cluster
            .http
            .get(cluster.url(leader, &format!("/kv/{key}")))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(answer["value"], json!(value), "{key}");
    }
}
