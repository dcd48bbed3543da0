//! A deterministic simulator for the Raft core (see `simulation.rs`), and the harness that
//! runs it over many seeds and turns a failure into a replay command.

pub mod clients;
pub mod invariants;
pub mod network;
pub mod shell;
pub mod simulation;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use simulation::{RunStats, Scenario};

/// Totals over all seeds of one scenario.
#[derive(Debug, Default)]
pub struct Totals {
    pub seeds: u64,
    pub runs: Vec<RunStats>,
}

impl Totals {
    pub fn sum(&self, field: impl Fn(&RunStats) -> u64) -> u64 {
        self.runs.iter().map(field).sum()
    }
}

/// Runs `scenario` over `default_seeds` seeds (`RAFT_SIM_SEEDS` overrides the count), or
/// over the one seed in `RAFT_SIM_SEED` with a trace of the last events. Panics at the first
/// failing seed with the command that replays it.
pub fn run_seeds(test_name: &str, scenario: Scenario, default_seeds: u64) -> Totals {
    let single = env_u64("RAFT_SIM_SEED");
    let seeds: Vec<u64> = match single {
        Some(seed) => vec![seed],
        None => (0..env_u64("RAFT_SIM_SEEDS").unwrap_or(default_seeds)).collect(),
    };
    let started = Instant::now();
    let mut totals = Totals::default();
    for seed in seeds {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            simulation::run(scenario, seed, single.is_some())
        }));
        let failure = match outcome {
            Ok(Ok(stats)) => {
                totals.seeds += 1;
                totals.runs.push(stats);
                continue;
            }
            Ok(Err(violation)) => violation,
            Err(_) => "the core panicked (see the message above)".to_string(),
        };
        panic!(
            "{test_name}: seed {seed} failed: {failure}\nreplay with: RAFT_SIM_SEED={seed} cargo test \
             --release -p faultline-node --test raft_simulation {test_name} -- --nocapture"
        );
    }
    eprintln!(
        "{test_name}: {} seeds passed in {:.1?}: {} ticks, {} crashes, {} leader terms, {} writes \
         acknowledged, {} not applied, {} displaced by a later proposal at their index ({} of \
         them applied after all), {} reads checked ({} served under a lease), {} snapshots \
         installed, {} leadership \
         transfers started ({} completed in one election, in {} seeds), {} membership changes \
         accepted ({} completed); recovery took at most {} ticks",
        totals.seeds,
        started.elapsed(),
        totals.sum(|run| run.ticks),
        totals.sum(|run| run.crashes),
        totals.sum(|run| run.terms_with_leaders),
        totals.sum(|run| run.writes_acked),
        totals.sum(|run| run.writes_not_applied),
        totals.sum(|run| run.displaced_writes),
        totals.sum(|run| run.displaced_writes_applied),
        totals.sum(|run| run.reads_checked),
        totals.sum(|run| run.reads_under_lease),
        totals.sum(|run| run.snapshots_installed),
        totals.sum(|run| run.transfers_started),
        totals.sum(|run| run.transfers_completed),
        totals.sum(|run| u64::from(run.transfers_completed > 0)),
        totals.sum(|run| run.membership_changes),
        totals.sum(|run| run.membership_changes_completed),
        totals
            .runs
            .iter()
            .map(|run| run.recovery_ticks)
            .max()
            .unwrap_or(0),
    );
    totals
}

/// Runs `scenario` over seeds `0..seeds` and counts those that break an invariant (or make
/// the core panic), with the first of them and why.
pub fn count_failures(scenario: Scenario, seeds: u64) -> (u64, Option<(u64, String)>) {
    let mut failed = 0;
    let mut first = None;
    for seed in 0..seeds {
        let outcome = catch_unwind(AssertUnwindSafe(|| simulation::run(scenario, seed, false)));
        let failure = match outcome {
            Ok(Ok(_)) => continue,
            Ok(Err(violation)) => violation,
            Err(_) => "the core panicked".to_string(),
        };
        failed += 1;
        first.get_or_insert((seed, failure));
    }
    (failed, first)
}

pub fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.parse() {
        Ok(number) => Some(number),
        Err(_) => panic!("{name}={value:?} is not a non-negative integer"),
    }
}
