//! The clock fault reaches the Raft loop: a node whose libfaketime control file sets a rate
//! runs its Raft clock at that rate (see `node/src/tick_clock.rs`), measured against the
//! other nodes of the same cluster over the same interval.

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::TestCluster;

/// `faultline_raft_ticks_total` of node `i`.
fn ticks(cluster: &TestCluster, i: usize) -> f64 {
    cluster.metric(i, "faultline_raft_ticks_total")
}

/// How many ticks node `i` counts per tick of node `j`, over one second.
fn ratio(cluster: &TestCluster, i: usize, j: usize) -> f64 {
    let (i0, j0) = (ticks(cluster, i), ticks(cluster, j));
    sleep(Duration::from_secs(1));
    let (i1, j1) = (ticks(cluster, i), ticks(cluster, j));
    (i1 - i0) / (j1 - j0)
}

#[test]
fn a_node_told_to_run_fast_ticks_faster_than_the_others_until_told_otherwise() {
    let mut cluster = TestCluster::new(3, &[]);
    let control = cluster.dir().join("n1.clock");
    std::fs::write(&control, "+0.000000000 x2.000000000\n").unwrap();
    cluster.nodes[0].env.push((
        "FAKETIME_TIMESTAMP_FILE".into(),
        control.to_string_lossy().into_owned(),
    ));
    let cluster = cluster.start_all();
    let fast = ratio(&cluster, 0, 1);
    assert!(
        (1.6..2.4).contains(&fast),
        "n1 ticked {fast} times as often as n2"
    );
    // Back to true time (a continuous change: nothing to see from outside but the rate).
    std::fs::write(&control, "+0.000000000 x1.000000000\n").unwrap();
    sleep(Duration::from_millis(100));
    let even = ratio(&cluster, 0, 1);
    assert!(
        (0.8..1.2).contains(&even),
        "n1 ticked {even} times as often as n2"
    );
    // The cluster works throughout.
    cluster.put_acknowledged("k", serde_json::json!(1));
}
