//! Integration tests with three real `faultline-node` processes: the client API, leader
//! failover, catch-up (also through InstallSnapshot), and durability under SIGKILL.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::TestCluster;
use faultline_node::command::MAX_VALUE_DEPTH;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn body(response: reqwest::blocking::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn client_api_reads_writes_and_rejects_bad_input() {
    let cluster = TestCluster::start(3, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let follower = (leader + 1) % 3;
    let http = &cluster.http;
    let url = |path: &str| cluster.url(leader, path);

    // put / get / missing
    let (status, _) = body(
        http.put(url("/kv/a"))
            .json(&json!({"value": {"x": [1, 2]}}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cluster.read("a"), Some(json!({"x": [1, 2]})));
    let (status, missing) = body(http.get(url("/kv/nope")).send().unwrap());
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(missing["error"].is_string());

    // cas: mismatch answers 409 with the current value, match swaps
    http.put(url("/kv/r"))
        .json(&json!({"value": 1}))
        .send()
        .unwrap();
    let (status, mismatch) = body(
        http.post(url("/kv/r/cas"))
            .json(&json!({"from": 2, "to": 3}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(mismatch["value"], json!(1));
    let (status, _) = body(
        http.post(url("/kv/r/cas"))
            .json(&json!({"from": 1, "to": 3}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cluster.read("r"), Some(json!(3)));

    // append builds a list; appending to a non-list is refused
    for (i, v) in ["a", "b"].iter().enumerate() {
        let (status, appended) = body(
            http.post(url("/kv/l/append"))
                .json(&json!({"value": v}))
                .send()
                .unwrap(),
        );
        assert_eq!(status, StatusCode::OK);
        assert_eq!(appended["length"], json!(i + 1));
    }
    assert_eq!(cluster.read("l"), Some(json!(["a", "b"])));
    let (status, _) = body(
        http.post(url("/kv/r/append"))
            .json(&json!({"value": 1}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::CONFLICT);

    // delete
    assert_eq!(
        http.delete(url("/kv/r")).send().unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        http.delete(url("/kv/r")).send().unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(cluster.read("r"), None);

    // a retried write (same client-id and request-seq) applies once
    let c1 = cluster.open_session().to_string();
    for _ in 0..2 {
        let response = http
            .post(url("/kv/once/append"))
            .header("client-id", &c1)
            .header("request-seq", "1")
            .json(&json!({"value": 7}))
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(cluster.read("once"), Some(json!([7])));
    // A retry older than the client's latest write has an unknown outcome: 500, not 4xx.
    let response = http
        .put(url("/kv/twice"))
        .header("client-id", &c1)
        .header("request-seq", "2")
        .json(&json!({"value": 8}))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, stale) = body(
        http.post(url("/kv/once/append"))
            .header("client-id", &c1)
            .header("request-seq", "1")
            .json(&json!({"value": 7}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{stale}");
    assert!(
        stale["error"].as_str().unwrap().contains("may or may not"),
        "{stale}"
    );
    assert_eq!(cluster.read("once"), Some(json!([7])));
    // A session id the cluster never handed out is refused, after commit, by every replica.
    let (status, unknown) = body(
        http.post(url("/kv/once/append"))
            .header("client-id", "999999999")
            .header("request-seq", "1")
            .json(&json!({"value": 9}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{unknown}");
    assert!(
        unknown["error"]
            .as_str()
            .unwrap()
            .contains("POST /sessions"),
        "{unknown}"
    );
    assert_eq!(cluster.read("once"), Some(json!([7])));

    // a follower redirects to the leader, and can serve stale reads
    let response = http.get(cluster.url(follower, "/kv/a")).send().unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        format!("http://{}/kv/a", cluster.nodes[leader].client_addr)
    );
    let (_, redirect) = body(response);
    assert_eq!(redirect["leader"], json!(cluster.nodes[leader].name));
    let stale_read = || {
        body(
            http.get(cluster.url(follower, "/kv/l?stale=true"))
                .send()
                .unwrap(),
        )
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while stale_read().0 != StatusCode::OK && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        stale_read(),
        (StatusCode::OK, json!({"key": "l", "value": ["a", "b"]}))
    );

    // bad input: a 4xx with a JSON error, never a crash
    let bad: Vec<(reqwest::blocking::RequestBuilder, StatusCode)> = vec![
        (
            http.put(url("/kv/a")).body("{not json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            http.put(url("/kv/a")).json(&json!({"valeu": 1})),
            StatusCode::BAD_REQUEST,
        ),
        (
            http.put(url("/kv/a")).json(&json!([1])),
            StatusCode::BAD_REQUEST,
        ),
        (
            http.post(url("/kv/a/cas")).json(&json!({"from": 1})),
            StatusCode::BAD_REQUEST,
        ),
        (
            http.put(url(&format!("/kv/{}", "k".repeat(1025))))
                .json(&json!({"value": 1})),
            StatusCode::BAD_REQUEST,
        ),
        (
            http.put(url("/kv/a"))
                .body(format!("{{\"value\": \"{}\"}}", "x".repeat(1 << 20))),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            http.put(url("/kv/a")).body(format!(
                "{{\"value\": {}{}}}",
                "[".repeat(MAX_VALUE_DEPTH + 1),
                "]".repeat(MAX_VALUE_DEPTH + 1)
            )),
            StatusCode::BAD_REQUEST,
        ),
        (http.get(url("/nowhere")), StatusCode::NOT_FOUND),
        (http.post(url("/kv/a")), StatusCode::METHOD_NOT_ALLOWED),
        (
            http.put(url("/kv/a"))
                .header("request-seq", "1")
                .json(&json!({"value": 1})),
            StatusCode::BAD_REQUEST,
        ),
        (
            http.put(url("/kv/a"))
                .header("client-id", "c")
                .header("request-seq", "x")
                .json(&json!({"value": 1})),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (request, expected) in bad {
        let (status, answer) = body(request.send().unwrap());
        assert_eq!(status, expected, "{answer}");
        assert!(
            answer["error"].is_string(),
            "no JSON error for {expected}: {answer}"
        );
    }
    assert_eq!(
        cluster.read("a"),
        Some(json!({"x": [1, 2]})),
        "bad requests changed nothing"
    );

    // status, metrics, health
    let (_, status) = body(http.get(url("/status")).send().unwrap());
    assert_eq!(status["role"], "leader");
    assert_eq!(status["id"], json!(cluster.nodes[leader].name));
    for field in [
        "term",
        "commit",
        "applied",
        "last_log_index",
        "snapshot_index",
    ] {
        assert!(status[field].is_u64(), "status has no {field}: {status}");
    }
    let metrics = http.get(url("/metrics")).send().unwrap().text().unwrap();
    for name in [
        "faultline_role{role=\"leader\"} 1",
        "faultline_term ",
        "faultline_commit_index ",
        "faultline_elections_total",
        "faultline_proposals_total",
        "faultline_fsync_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}:\n{metrics}");
    }
    assert_eq!(
        http.get(url("/health")).send().unwrap().status(),
        StatusCode::OK
    );
}

#[test]
fn a_node_without_a_leader_answers_503_with_retry_after() {
    // One node of three, alone: it can never be elected, nor hear of a leader.
    let mut cluster = TestCluster::new(3, &[]);
    cluster.spawn(0);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while cluster.status(0).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "n1 never answered\n{}",
            cluster.logs()
        );
        thread::sleep(Duration::from_millis(50));
    }
    let http = &cluster.http;
    let requests = [
        http.put(cluster.url(0, "/kv/a")).json(&json!({"value": 1})),
        http.get(cluster.url(0, "/kv/a")),
        http.post(cluster.url(0, "/kv/a/cas"))
            .json(&json!({"from": null, "to": 1})),
        http.delete(cluster.url(0, "/kv/a")),
    ];
    for request in requests {
        let response = request.send().unwrap();
        let retry_after = response.headers().get("retry-after").cloned();
        let (status, answer) = body(response);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
        assert_eq!(answer, json!({"error": "no leader"}));
        assert_eq!(retry_after.as_ref().map(|v| v.to_str().unwrap()), Some("1"));
    }
    // A stale read needs no leader.
    let (status, _) = body(http.get(cluster.url(0, "/kv/a?stale=true")).send().unwrap());
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn killing_the_leader_elects_another_and_loses_no_acknowledged_write() {
    let mut cluster = TestCluster::start(3, &[]);
    let mut expected = BTreeMap::new();
    for i in 0..50 {
        cluster.put_acknowledged(&format!("k{i}"), json!(i));
        expected.insert(format!("k{i}"), json!(i));
    }
    let old_leader = cluster.wait_for_leader(Duration::from_secs(10));
    let old_term = cluster.status(old_leader).unwrap()["term"]
        .as_u64()
        .unwrap();
    cluster.kill(old_leader);

    let new_leader = cluster.wait_for_leader(Duration::from_secs(10));
    assert_ne!(new_leader, old_leader);
    assert!(
        cluster.status(new_leader).unwrap()["term"]
            .as_u64()
            .unwrap()
            > old_term
    );
    for i in 50..100 {
        cluster.put_acknowledged(&format!("k{i}"), json!(i));
        expected.insert(format!("k{i}"), json!(i));
    }

    // The old leader comes back as a follower and catches up.
    cluster.spawn(old_leader);
    let commit = cluster.status(new_leader).unwrap()["commit"]
        .as_u64()
        .unwrap();
    cluster.wait_for_applied(old_leader, commit, Duration::from_secs(15));
    for (key, value) in &expected {
        assert_eq!(cluster.read(key).as_ref(), Some(value), "{key} lost");
        let stale: Value = cluster
            .http
            .get(cluster.url(old_leader, &format!("/kv/{key}?stale=true")))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(
            &stale["value"], value,
            "{key} not caught up on the restarted node"
        );
    }
}

#[test]
fn a_lagging_follower_catches_up_through_install_snapshot() {
    let mut cluster = TestCluster::start(3, &["--snapshot-threshold", "100"]);
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let lagging = (leader + 1) % 3;
    cluster.kill(lagging);
    for i in 0..450 {
        cluster.put_acknowledged(&format!("k{}", i % 40), json!(i));
    }
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let leader_status = cluster.status(leader).unwrap();
    assert!(
        leader_status["snapshot_index"].as_u64().unwrap() >= 300,
        "the leader should have compacted its log: {leader_status}"
    );

    cluster.spawn(lagging);
    let commit = leader_status["commit"].as_u64().unwrap();
    let status = cluster.wait_for_applied(lagging, commit, Duration::from_secs(15));
    assert!(
        status["snapshot_index"].as_u64().unwrap() >= 300,
        "{status}"
    );
    let log = std::fs::read_to_string(&cluster.nodes[lagging].log).unwrap();
    assert!(
        log.contains("installed a snapshot from the leader"),
        "{}",
        cluster.logs()
    );
    for k in 0..40 {
        let last = (0..450).filter(|i| i % 40 == k).max().unwrap();
        let answer: Value = cluster
            .http
            .get(cluster.url(lagging, &format!("/kv/k{k}?stale=true")))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(
            answer["value"],
            json!(last),
            "k{k} on the caught-up follower"
        );
    }
}

#[test]
fn sigkill_of_every_node_at_once_loses_no_acknowledged_write() {
    let mut cluster = TestCluster::start(3, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let leader_url = cluster.url(leader, "");
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (acknowledged, stop, base) =
                (acknowledged.clone(), stop.clone(), leader_url.clone());
            let http = cluster.http.clone();
            thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("w{w}-{n}");
                    let sent = http
                        .put(format!("{base}/kv/{key}"))
                        .json(&json!({"value": n}))
                        .send();
                    if sent.is_ok_and(|r| r.status() == StatusCode::OK) {
                        acknowledged.lock().unwrap().push((key, n));
                    }
                    n += 1;
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(1500));
    for i in 0..3 {
        cluster.kill(i);
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 100,
        "too few writes to mean anything: {}",
        acknowledged.len()
    );

    for i in 0..3 {
        cluster.spawn(i);
    }
    for (key, n) in &acknowledged {
        assert_eq!(
            cluster.read(key),
            Some(json!(n)),
            "acknowledged write {key} lost after SIGKILL"
        );
    }
}

#[test]
fn sigterm_stops_a_node_cleanly_and_it_rejoins() {
    let mut cluster = TestCluster::start(3, &[]);
    cluster.put_acknowledged("before", json!(1));
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    assert!(
        cluster.terminate(leader),
        "SIGTERM should exit with status 0\n{}",
        cluster.logs()
    );
    cluster.put_acknowledged("during", json!(2));
    cluster.spawn(leader);
    let commit = cluster
        .status(cluster.wait_for_leader(Duration::from_secs(10)))
        .unwrap()["commit"]
        .as_u64()
        .unwrap();
    cluster.wait_for_applied(leader, commit, Duration::from_secs(10));
    assert_eq!(cluster.read("before"), Some(json!(1)));
    assert_eq!(cluster.read("during"), Some(json!(2)));
}

/// A killed leader that missed so much that the new leader compacted its log past the
/// killed node's last entry comes back through InstallSnapshot, with every acknowledged
/// write at its last acknowledged value.
#[test]
fn a_killed_former_leader_catches_up_through_install_snapshot() {
    let mut cluster = TestCluster::start(3, &["--snapshot-threshold", "50"]);
    let mut expected = BTreeMap::new();
    let mut write = |cluster: &TestCluster, i: u64| {
        let key = format!("k{}", i % 25);
        cluster.put_acknowledged(&key, json!(i));
        expected.insert(key, json!(i));
    };
    for i in 0..30 {
        write(&cluster, i);
    }
    let old_leader = cluster.wait_for_leader(Duration::from_secs(10));
    let killed_last_index = cluster
        .status_u64(old_leader, "last_log_index")
        .expect("the leader's status");
    cluster.kill(old_leader);

    // Write on until both survivors' snapshots cover more than the killed node's log.
    let survivors: Vec<usize> = (0..3).filter(|&i| i != old_leader).collect();
    let mut i = 30;
    cluster.wait_until(
        &format!("survivors compact past index {killed_last_index}"),
        Duration::from_secs(10),
        || {
            write(&cluster, i);
            i += 1;
            survivors
                .iter()
                .all(|&s| cluster.status_u64(s, "snapshot_index").unwrap_or(0) > killed_last_index)
                .then_some(())
        },
    );
    // A few more after the snapshot, so the catch-up is a snapshot plus entries.
    for j in i..i + 10 {
        write(&cluster, j);
    }

    cluster.spawn(old_leader);
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    assert_ne!(leader, old_leader);
    let commit = cluster.status_u64(leader, "commit").unwrap();
    let status = cluster.wait_for_applied(old_leader, commit, Duration::from_secs(10));
    assert!(
        status["snapshot_index"].as_u64().unwrap() > killed_last_index,
        "the restarted node should hold a snapshot past its old last index \
         {killed_last_index}: {status}"
    );
    let log = std::fs::read_to_string(&cluster.nodes[old_leader].log).unwrap();
    assert!(
        log.contains("installed a snapshot from the leader"),
        "the restarted former leader did not install a snapshot\n{}",
        cluster.logs()
    );
    for (key, value) in &expected {
        assert_eq!(
            cluster.stale_read(old_leader, key).as_ref(),
            Some(value),
            "{key} on the restarted former leader (stale read)"
        );
        assert_eq!(cluster.read(key).as_ref(), Some(value), "{key} lost");
    }

    // The fingerprint chain went on from the snapshot's: past the next checkpoint, every
    // node reports the same fingerprint there.
    let next_checkpoint = (commit / 64 + 1) * 64;
    let mut k = 0;
    while cluster.status_u64(leader, "commit").unwrap() < next_checkpoint {
        cluster.put_acknowledged(&format!("more{}", k % 25), json!(k));
        k += 1;
    }
    let fingerprints: Vec<Value> = (0..3)
        .map(|node| {
            let status = cluster.wait_for_applied(node, next_checkpoint, Duration::from_secs(10));
            let at_checkpoint = status["fingerprints"]
                .as_array()
                .expect("fingerprints in the status")
                .iter()
                .find(|c| c["index"] == json!(next_checkpoint))
                .cloned();
            at_checkpoint.unwrap_or_else(|| panic!("no checkpoint {next_checkpoint}: {status}"))
        })
        .collect();
    assert!(
        fingerprints.iter().all(|f| *f == fingerprints[0]),
        "the nodes applied different entries: {fingerprints:?}"
    );
}

/// A retried write (same `client-id` and `request-seq`) applies once even when the first
/// attempt is only in a snapshot and every node was SIGKILLed and restarted in between: the
/// retry gets the first answer again, the next sequence number applies, and a retry of the
/// older one gets 500 (outcome unknown) and changes nothing.
#[test]
fn a_retry_applies_once_across_a_snapshot_and_a_restart_of_every_node() {
    let mut cluster = TestCluster::start(3, &["--snapshot-threshold", "20"]);
    let c1 = cluster.open_session();
    let append = |cluster: &TestCluster, value: u64, seq: u64| {
        cluster.session_write("POST", "/kv/l/append", json!({ "value": value }), c1, seq)
    };
    let first = append(&cluster, 1, 1);
    assert_eq!(first, (StatusCode::OK, json!({"ok": true, "length": 1})));
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let append_index = cluster.status_u64(leader, "commit").unwrap();

    // Other writes until every node's snapshot covers the append (and so its session).
    let mut others = 0;
    cluster.wait_until(
        &format!("every node snapshots past index {append_index}"),
        Duration::from_secs(10),
        || {
            cluster.put_acknowledged(&format!("other{others}"), json!(others));
            others += 1;
            (0..3)
                .all(|n| cluster.status_u64(n, "snapshot_index").unwrap_or(0) >= append_index)
                .then_some(())
        },
    );

    for n in 0..3 {
        cluster.kill(n);
    }
    for n in 0..3 {
        cluster.spawn(n);
    }
    cluster.wait_for_leader(Duration::from_secs(10));
    for n in 0..3 {
        let status = cluster.status(n).unwrap();
        assert!(
            status["snapshot_index"].as_u64().unwrap() >= append_index,
            "{} should restart from a snapshot covering the append at {append_index}: {status}",
            cluster.nodes[n].name
        );
    }

    assert_eq!(
        append(&cluster, 1, 1),
        first,
        "a retry after the restart should get the first answer again"
    );
    assert_eq!(
        cluster.read("l"),
        Some(json!([1])),
        "the retry applied twice"
    );
    assert_eq!(
        append(&cluster, 2, 2),
        (StatusCode::OK, json!({"ok": true, "length": 2}))
    );
    let (status, stale) = append(&cluster, 1, 1);
    assert_eq!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "a retry older than the latest write: {stale}"
    );
    assert!(
        stale["error"]
            .as_str()
            .is_some_and(|e| e.contains("may or may not")),
        "{stale}"
    );
    assert_eq!(cluster.read("l"), Some(json!([1, 2])));
    for i in 0..others {
        assert_eq!(
            cluster.read(&format!("other{i}")),
            Some(json!(i)),
            "other{i} lost"
        );
    }
}
