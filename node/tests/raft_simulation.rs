//! Simulation tests of the Raft core: 3- and 5-node clusters of the real core in one
//! process, over many seeds, with lossy, duplicating, reordering networks, partitions and
//! crash-restarts. Safety is checked at every tick; liveness after the faults stop.
//!
//! A failing seed prints its replay command, e.g.
//! `RAFT_SIM_SEED=123 cargo test --release -p faultline-node --test raft_simulation three_nodes`;
//! `RAFT_SIM_SEEDS=5000` runs more seeds.

mod sim;

use sim::run_seeds;
use sim::simulation::Scenario;

#[test]
fn three_nodes_stay_safe_and_recover_from_faults() {
    let scenario = Scenario {
        nodes: 3,
        fault_ticks: 1000,
        recovery_ticks: 1000,
        compact_threshold: None,
    };
    let totals = run_seeds(
        "three_nodes_stay_safe_and_recover_from_faults",
        scenario,
        300,
    );
    assert_exercised(&totals);
}

#[test]
fn five_nodes_stay_safe_and_recover_from_faults() {
    let scenario = Scenario {
        nodes: 5,
        fault_ticks: 1000,
        recovery_ticks: 1000,
        compact_threshold: None,
    };
    let totals = run_seeds(
        "five_nodes_stay_safe_and_recover_from_faults",
        scenario,
        150,
    );
    assert_exercised(&totals);
}

#[test]
fn snapshots_bring_lagging_nodes_back() {
    let scenario = Scenario {
        nodes: 3,
        fault_ticks: 1000,
        recovery_ticks: 1000,
        compact_threshold: Some(20),
    };
    let totals = run_seeds("snapshots_bring_lagging_nodes_back", scenario, 200);
    assert_exercised(&totals);
    if totals.seeds > 20 {
        assert!(
            totals.sum(|run| run.snapshots_installed) > 0,
            "no InstallSnapshot was exercised"
        );
    }
}

/// The runs must have hit what they claim to test, or passing means little.
fn assert_exercised(totals: &sim::Totals) {
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
        assert!(
            totals.sum(|run| run.terms_with_leaders) > 2 * totals.seeds,
            "leadership hardly ever changed"
        );
    }
}
