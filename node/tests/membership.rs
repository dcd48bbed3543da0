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
