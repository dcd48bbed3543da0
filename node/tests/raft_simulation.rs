//! Simulation tests of the Raft core: 3- and 5-node clusters of the real core in one
//! process, over many seeds, with lossy, duplicating, reordering networks, partitions and
//! crash-restarts. Safety is checked at every tick, liveness once the faults stop.
//!
//! A failing seed prints its replay command, e.g.
//! `RAFT_SIM_SEED=123 cargo test --release -p faultline-node --test raft_simulation three_nodes`
//! (which also prints the events that led to the failure); `RAFT_SIM_SEEDS=5000` runs more
//! seeds than the default.

mod sim;

use sim::simulation::{Partitions, Scenario};
use sim::{Totals, run_seeds};

/// 1000 ticks (10 s of simulated time) of faults, then up to 2000 ticks to recover.
const FAULTS_THEN_RECOVERY: Scenario = Scenario {
    nodes: 3,
    fault_ticks: 1000,
    recovery_ticks: 2000,
    compact_threshold: None,
    partitions: Partitions::Random,
};

#[test]
fn three_nodes_stay_safe_and_recover_from_faults() {
    let totals = run_seeds(
        "three_nodes_stay_safe_and_recover_from_faults",
        FAULTS_THEN_RECOVERY,
        1000,
    );
    assert_exercised(&totals);
}

#[test]
fn five_nodes_stay_safe_and_recover_from_faults() {
    let scenario = Scenario {
        nodes: 5,
        ..FAULTS_THEN_RECOVERY
    };
    let totals = run_seeds(
        "five_nodes_stay_safe_and_recover_from_faults",
        scenario,
        500,
    );
    assert_exercised(&totals);
    if totals.seeds > 20 {
        assert!(
            totals.sum(|run| run.displaced_writes) > 0,
            "no leader ever proposed at an index where its earlier write still waited"
        );
    }
}

#[test]
fn five_nodes_whose_new_leaders_are_cut_off_at_once() {
    let scenario = Scenario {
        nodes: 5,
        partitions: Partitions::NewLeaderWithPredecessor,
        ..FAULTS_THEN_RECOVERY
    };
    let totals = run_seeds(
        "five_nodes_whose_new_leaders_are_cut_off_at_once",
        scenario,
        500,
    );
    assert_exercised(&totals);
    if totals.seeds > 20 {
        // The case that answering "not applied" when the index is reused gets wrong.
        assert!(
            totals.sum(|run| run.displaced_writes_applied) > 0,
            "no write displaced by a later proposal at its index was committed after all"
        );
    }
}

#[test]
fn snapshots_bring_lagging_nodes_back() {
    let scenario = Scenario {
        compact_threshold: Some(20),
        ..FAULTS_THEN_RECOVERY
    };
    let totals = run_seeds("snapshots_bring_lagging_nodes_back", scenario, 1000);
    assert_exercised(&totals);
    if totals.seeds > 20 {
        let installed = totals.sum(|run| run.snapshots_installed);
        assert!(installed > 0, "no InstallSnapshot was exercised");
    }
}

/// The runs must have hit what they claim to test, or passing means little.
fn assert_exercised(totals: &Totals) {
    assert!(
        totals.sum(|run| run.writes_acked) > 0,
        "no write was acknowledged"
    );
    if totals.seeds > 20 {
        assert!(totals.sum(|run| run.crashes) > 0, "no node crashed");
        assert!(
            totals.sum(|run| run.reads_checked) > 0,
            "no read was checked"
        );
        let terms = totals.sum(|run| run.terms_with_leaders);
        assert!(terms > 2 * totals.seeds, "leadership hardly ever changed");
    }
}
