//! Client sessions (`client-id`, `request-seq`) on real node processes: the table that makes
//! retries apply once stays small on every node, however many clients come and go and
//! however large the values their failed CAS requests saw.

mod common;

use std::time::Duration;

use common::TestCluster;
use reqwest::StatusCode;
use serde_json::json;

/// How many clients each send one failed CAS (the probe).
const CLIENTS: usize = 150;
/// The value those CAS requests fail against: each 409 carries it back.
const BIG_VALUE_BYTES: usize = 1_000_000;
/// How much a node's resident memory may grow over the 150 requests. Before sessions kept
/// bounded answers it grew by about a megabyte a request, on every node.
const MAX_GROWTH_BYTES: u64 = 6 << 20;

/// VmRSS of process `pid`, in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status:\n{status}"));
    kib * 1024
}

/// Every node's resident memory, once every node has applied what the leader committed.
fn resident_after_catching_up(cluster: &TestCluster) -> Vec<u64> {
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let commit = cluster.status_u64(leader, "commit").unwrap();
    (0..cluster.nodes.len())
        .map(|n| {
            cluster.wait_for_applied(n, commit, Duration::from_secs(10));
            resident_bytes(cluster.pid(n).unwrap())
        })
        .collect()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

#[test]
fn failed_cas_requests_of_many_clients_against_a_large_value_leave_memory_flat() {
    let cluster = TestCluster::start(3, &[]);
    let big = json!("x".repeat(BIG_VALUE_BYTES));
    cluster.put_acknowledged("big", big.clone());
    let failed_cas = |client: u64| {
        let body = json!({"from": "something else", "to": "y"});
        cluster.session_write("POST", "/kv/big/cas", body, client, 1)
    };
    let clients: Vec<u64> = (0..CLIENTS).map(|_| cluster.open_session()).collect();
    // A few first, so that every node has served and applied such requests once (buffers,
    // allocator arenas) before the baseline is taken.
    for _ in 0..5 {
        failed_cas(cluster.open_session());
    }
    let before = resident_after_catching_up(&cluster);

    for (i, &client) in clients.iter().enumerate() {
        let (status, answer) = failed_cas(client);
        assert_eq!(status, StatusCode::CONFLICT, "client {i}");
        assert_eq!(
            answer["value"].as_str().map(str::len),
            Some(BIG_VALUE_BYTES),
            "the first answer carries the value the CAS saw"
        );
    }
    let after = resident_after_catching_up(&cluster);

    let figures: Vec<String> = (0..3)
        .map(|n| {
            format!(
                "{}: {:.1} -> {:.1} MiB",
                cluster.nodes[n].name,
                mib(before[n]),
                mib(after[n])
            )
        })
        .collect();
    eprintln!(
        "resident memory over {CLIENTS} failed CAS requests: {}",
        figures.join(", ")
    );
    for n in 0..3 {
        let growth = after[n].saturating_sub(before[n]);
        assert!(
            growth <= MAX_GROWTH_BYTES,
            "{} grew by {:.1} MiB over {CLIENTS} requests ({})",
            cluster.nodes[n].name,
            mib(growth),
            figures.join(", ")
        );
    }

    // A retry is still answered from the session, certainly and without being applied
    // again: 409, but without the large value, which the session did not keep.
    let (status, answer) = failed_cas(clients[7]);
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"], json!("cas mismatch"), "{answer}");
    assert!(answer.get("value").is_none(), "{answer}");
    assert_eq!(
        answer["value_bytes"],
        json!(BIG_VALUE_BYTES + 2),
        "{answer}"
    );
    assert_eq!(cluster.read("big"), Some(big));
}
