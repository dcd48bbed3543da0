//! `results.json`: a run's verdict from its history, and what the report and the summary show
//! beside it. The history is checked as `faultline check` checks a file (every key for
//! linearizability against the model its operations call for, cas-register for the register
//! keys and list-append for the list keys, and the list keys for lost writes); the replicas'
//! copies and fingerprints and the final phase's healing are folded in; then the first
//! anomaly's time (`detection.rs`) and each fault's recovery (`recovery.rs`) are measured, and
//! each change of leader (`leaders.rs`) is given the fault that preceded it.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result};
use faultline_checker::{
    Budget, CheckOptions, CheckResult, DivergenceResult, HistoryCheck, ListCopy, LostWritesResult,
    Verdict, divergence,
};
use faultline_history::{History, Outcome, operations};
use serde::{Deserialize, Serialize};

use crate::completeness::StaleLeader;
use crate::election_safety::TwoLeaders;
use crate::fingerprints::Agreement;
use crate::stalls::Stall;

mod detection;
mod leaders;
mod recovery;

pub use detection::{Detection, FirstSeen, first_detection};
use leaders::name_faults;
pub use leaders::{LeaderChange, leader_changes};
pub use recovery::{FaultRecovery, Recovery};

/// What `results.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResults {
    /// The overall verdict: `true`, `false` or `"unknown"`.
    pub valid: Verdict,
    /// Why the history could not be judged at all, as the checker says
    /// ([`faultline_checker::NO_OPERATIONS`]); absent when it could.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// One linearizability result per model used by the workload.
    pub linearizability: Vec<CheckResult>,
    /// Lost writes of the list keys, if the workload had any.
    pub lost_writes: Option<LostWritesResult>,
    /// Whether every copy of every list, read from each node and by the clients, is a prefix
    /// of one sequence; absent if the workload had no lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<DivergenceResult>,
    /// Whether the nodes applied the same entries at every log index two of them reported a
    /// fingerprint for; absent if the system publishes no fingerprints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<Agreement>,
    /// Whether the cluster took writes again once every fault was healed; absent if the run
    /// was interrupted before it could be asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healing: Option<Healing>,
    /// Nodes that exited by themselves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crashes: Vec<Crash>,
    /// Leaders that held their term for seconds without committing while their log grew:
    /// followers that keep refusing a leader they elected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stalls: Vec<Stall>,
    /// Leaders whose log lacked entries committed in an earlier term (Leader Completeness).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale_leaders: Vec<StaleLeader>,
    /// Terms that two nodes each led (Election Safety).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub two_leaders: Vec<TwoLeaders>,
    /// The first anomaly, and how soon after the start it was observable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<Detection>,
    /// How long each fault kept writes from succeeding.
    #[serde(default)]
    pub recovery: Recovery,
    /// Each change of the cluster's leader, as the status poller saw it, with the fault
    /// before it; empty for a system that does not say who leads, and in runs stored before
    /// leaders were followed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leaders: Vec<LeaderChange>,
}

/// A node whose process exited by itself during the run: a panic, a fatal error, a refusal
/// to start on what it found on its disk. A correct node survives every fault Faultline
/// injects, so this fails the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crash {
    /// Nanoseconds since the start of the run when the harness noticed it.
    pub time: u64,
    pub node: String,
    /// How it exited, e.g. `exit status: 1`.
    pub status: String,
    /// The last error in its log, or its last line.
    pub last_error: String,
}

/// The final phase's question: once every fault was healed and every node restarted, does
/// the cluster take a write? A correct cluster must; one that does not is stuck, which is a
/// failure of the run as surely as a lost write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Healing {
    /// Whether a write was acknowledged before the harness gave up.
    pub recovered: bool,
    /// Seconds from the end of the healing to that write's acknowledgement, or to giving up.
    pub seconds: f64,
    /// Nanoseconds since the start of the run when the harness gave up; absent if recovered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gave_up_at: Option<u64>,
    /// Why it did not recover, as far as the harness can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the harness saw of the nodes themselves, beside the history.
#[derive(Default)]
pub struct Observed {
    /// Every node's own copies of the lists, read during the run and at the end.
    pub copies: Vec<ListCopy>,
    /// Nodes that exited by themselves.
    pub crashes: Vec<Crash>,
    /// Whether the fingerprints of what the nodes applied agreed, if they publish any.
    pub agreement: Option<Agreement>,
    /// Leaders that held their term without committing while their log grew.
    pub stalls: Vec<Stall>,
    /// Leaders whose log lacked entries committed in an earlier term.
    pub stale_leaders: Vec<StaleLeader>,
    /// Terms that two nodes each led.
    pub two_leaders: Vec<TwoLeaders>,
    /// Each change of the cluster's leader ([`leader_changes`]), without faults yet.
    pub leaders: Vec<LeaderChange>,
}

/// How many counterexamples of each model results.json (and the report) keep: the earliest.
const COUNTEREXAMPLES_KEPT: usize = 20;

/// Checks a run's history as `faultline check` does ([`faultline_checker::check`], within
/// `budget` for every model together), the
/// nodes' own copies of the lists together with the clients' reads of them, and folds in
/// whether the nodes' fingerprints agreed, the nodes that crashed and whether the cluster
/// recovered after healing, and names the fault before each change of leader. Recovery is
/// measured on the writes the clients invoked in their first `clients_until`.
pub fn check(
    history: &History,
    budget: Duration,
    healing: Option<Healing>,
    observed: Observed,
    clients_until: Duration,
) -> Result<RunResults> {
    let Observed {
        copies,
        crashes,
        agreement,
        stalls,
        stale_leaders,
        two_leaders,
        mut leaders,
    } = observed;
    let options = CheckOptions {
        budget: Budget {
            timeout: Some(budget),
            ..Budget::default()
        },
        ..CheckOptions::default()
    };
    let HistoryCheck {
        valid,
        reason,
        mut linearizability,
        lost_writes: lost,
    } = faultline_checker::check(history, None, &options).context("checking the history")?;
    let replicas = lost
        .as_ref()
        .map(|lists| divergence(copies.into_iter().chain(list_reads(history, lists))));
    name_faults(&mut leaders, history);
    let gave_up = healing.as_ref().and_then(|healing| healing.gave_up_at);
    let detection = first_detection(
        history,
        &linearizability,
        lost.as_ref(),
        replicas.as_ref(),
        FirstSeen {
            mismatch: agreement.as_ref().and_then(|a| a.first_mismatch.as_ref()),
            stall: stalls.first(),
            stale_leader: stale_leaders.first(),
            two_leaders: two_leaders.first(),
            crash: crashes.first(),
            gave_up,
        },
    );
    for result in &mut linearizability {
        result.keep_earliest_counterexamples(COUNTEREXAMPLES_KEPT);
    }
    let mut results = RunResults {
        valid,
        reason,
        linearizability,
        lost_writes: lost,
        replicas,
        agreement,
        healing,
        crashes,
        stalls,
        stale_leaders,
        two_leaders,
        detection,
        recovery: Recovery::of(history, clients_until.as_nanos() as u64),
        leaders,
    };
    results.valid = valid.and(results.run_verdict());
    Ok(results)
}

impl RunResults {
    /// The verdict of what only a run sees, beside its history: the replicas' copies, the
    /// fingerprints, nodes that crashed, stalled, led without committed entries or shared a
    /// term, and whether the cluster took writes again once healed. A run's verdict is its
    /// history's verdict and this; `faultline check` folds it in from a run's results.json
    /// too, so that checking a run's history again gives the run's verdict.
    pub fn run_verdict(&self) -> Verdict {
        let mut valid = Verdict::Valid;
        if let Some(replicas) = &self.replicas {
            valid = valid.and(replicas.valid);
        }
        if let Some(agreement) = &self.agreement {
            valid = valid.and(agreement.valid);
        }
        if !self.crashes.is_empty()
            || !self.stalls.is_empty()
            || !self.stale_leaders.is_empty()
            || !self.two_leaders.is_empty()
            || self
                .healing
                .as_ref()
                .is_some_and(|healing| !healing.recovered)
        {
            valid = valid.and(Verdict::Invalid);
        }
        valid
    }
}

/// The results of a history checked alone (`faultline check --report`), for its page: the
/// check's own verdict and findings (its earliest counterexamples, as a run keeps), when the
/// first of them became visible, and how soon writes came back after each fault the history
/// records; nothing of nodes, which only a run sees.
pub fn of_history(history: &History, checked: HistoryCheck) -> RunResults {
    let HistoryCheck {
        valid,
        reason,
        mut linearizability,
        lost_writes,
    } = checked;
    let detection = first_detection(
        history,
        &linearizability,
        lost_writes.as_ref(),
        None,
        FirstSeen::default(),
    );
    for result in &mut linearizability {
        result.keep_earliest_counterexamples(COUNTEREXAMPLES_KEPT);
    }
    RunResults {
        valid,
        reason,
        linearizability,
        lost_writes,
        replicas: None,
        agreement: None,
        healing: None,
        crashes: Vec::new(),
        stalls: Vec::new(),
        stale_leaders: Vec::new(),
        two_leaders: Vec::new(),
        detection,
        // The clients' writes cannot be told from a run's own probe after healing: all count.
        recovery: Recovery::of(history, u64::MAX),
        leaders: Vec::new(),
    }
}

/// The clients' `ok` reads of the keys the checker judged as lists, as copies read through
/// the leader.
fn list_reads(history: &History, lists: &LostWritesResult) -> Vec<ListCopy> {
    let list_keys: HashSet<&str> = lists.keys.iter().filter_map(|k| k.key.as_deref()).collect();
    operations(history)
        .unwrap_or_default()
        .into_iter()
        .filter(|op| op.f == "read" && op.outcome == Outcome::Ok)
        .filter_map(|op| {
            let key = op.key?;
            if !list_keys.contains(key.as_str()) {
                return None;
            }
            Some(ListCopy {
                key: key.to_string(),
                node: None,
                time: op.return_time?,
                operation: Some(op.id),
                value: match &*op.value {
                    serde_json::Value::Array(elements) => elements.clone(),
                    _ => Vec::new(),
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;

    #[test]
    fn each_leader_change_gets_the_fault_before_it_and_old_results_read_without_any() {
        let history = History::from_jsonl(
            r#"{"index":0,"time":100,"process":0,"type":"invoke","f":"write","key":"r1","value":1}
{"index":1,"time":200,"process":0,"type":"ok","f":"write","key":"r1","value":1}
{"index":2,"time":300,"process":"nemesis","type":"info","f":"pause","value":["n1"]}
"#,
        )
        .unwrap();
        let leaders = vec![
            LeaderChange {
                time: 10,
                from: None,
                to: Some("n1".into()),
                fault: None,
            },
            LeaderChange {
                time: 400,
                from: Some("n1".into()),
                to: Some("n2".into()),
                fault: None,
            },
        ];
        let observed = Observed {
            leaders,
            ..Observed::default()
        };
        let results = check(
            &history,
            Duration::from_secs(5),
            None,
            observed,
            Duration::MAX,
        )
        .unwrap();
        let faults: Vec<Option<String>> = results
            .leaders
            .iter()
            .map(|change| change.fault.as_ref().map(leaders::PrecedingFault::name))
            .collect();
        assert_eq!(faults, [None, Some("pause n1".to_string())]);
        let written = serde_json::to_value(&results).unwrap();
        assert_eq!(
            written["leaders"][1],
            json!({"time": 400, "from": "n1", "to": "n2",
                   "fault": {"time": 300, "f": "pause", "nodes": ["n1"]}})
        );

        // A run stored before leaders were followed, and one of a system that does not
        // say who leads: no `leaders` in the file.
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-invalid");
        let old: RunResults = serde_json::from_str(
            &std::fs::read_to_string(fixture.join(crate::store::RESULTS)).unwrap(),
        )
        .unwrap();
        assert!(old.leaders.is_empty());
        let none = serde_json::to_value(&old).unwrap();
        assert!(none.get("leaders").is_none(), "{none}");
    }
}
