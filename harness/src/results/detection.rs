//! Time to detection: how soon after the start of a run its first anomaly was observable.
//! For a key that is not linearizable, that is the completion after which its history is no
//! longer linearizable ([`faultline_checker::Counterexample::detected_at`]); for lost or
//! unexpected elements, when the final read that missed them completed; for replicas whose
//! fingerprints differ, when the harness saw the second one; for a leader that stalled, when
//! it had committed nothing for five seconds; for a leader that lacked committed entries, when
//! the harness first saw it lead; for a cluster that did not recover, when the harness gave up
//! on it.
//! A bug caught only at the end of a long run is a bug most short runs miss.

use std::collections::HashMap;

use faultline_checker::{CheckResult, DivergenceResult, LostWritesResult};
use faultline_history::{History, operations};

use super::Crash;
use crate::completeness::StaleLeader;
use crate::election_safety::TwoLeaders;
use crate::fingerprints::Mismatch;
use crate::stalls::Stall;
use serde::{Deserialize, Serialize};

/// The first anomaly of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Seconds from the start of the run.
    pub seconds: f64,
    /// What was observed: `not linearizable`, `lost write`, `unexpected element`, `replicas
    /// diverged` (lists), `replicas applied different entries` (fingerprints), `leader
    /// stalled`, `leader lacks committed entries`, `node crashed` or `did not recover`.
    pub anomaly: String,
    /// The key it was observed on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The history index of the operation that showed it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<u64>,
}

/// The first of each kind of anomaly the harness saw in the nodes themselves, beside the
/// history.
#[derive(Clone, Copy, Default)]
pub struct FirstSeen<'a> {
    /// Two fingerprints for one log index.
    pub mismatch: Option<&'a Mismatch>,
    /// A leader that committed nothing for seconds.
    pub stall: Option<&'a Stall>,
    /// A leader whose log lacked entries committed in an earlier term.
    pub stale_leader: Option<&'a StaleLeader>,
    /// A second leader of one term.
    pub two_leaders: Option<&'a TwoLeaders>,
    /// A node that exited by itself.
    pub crash: Option<&'a Crash>,
    /// When the harness stopped waiting for a cluster that did not recover (nanoseconds
    /// since the start).
    pub gave_up: Option<u64>,
}

/// The earliest of the anomalies the checks found, if any.
pub fn first_detection(
    history: &History,
    linearizability: &[CheckResult],
    lost_writes: Option<&LostWritesResult>,
    replicas: Option<&DivergenceResult>,
    nodes: FirstSeen<'_>,
) -> Option<Detection> {
    let FirstSeen {
        mismatch,
        stall,
        stale_leader,
        two_leaders,
        crash,
        gave_up,
    } = nodes;
    let mut found = Vec::new();
    for example in linearizability
        .iter()
        .flat_map(|check| &check.counterexamples)
    {
        if let Some((time, id)) = example.detected_at() {
            found.push((time, "not linearizable", example.key.clone(), Some(id)));
        }
    }
    if let Some(lost) = lost_writes {
        let returns: HashMap<u64, u64> = operations(history)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|op| Some((op.id, op.return_time?)))
            .collect();
        for key in &lost.keys {
            let anomaly = match (key.lost.is_empty(), key.unexpected.is_empty()) {
                (false, _) => "lost write",
                (true, false) => "unexpected element",
                (true, true) => continue,
            };
            let Some(read) = key.final_read else { continue };
            if let Some(&time) = returns.get(&read) {
                found.push((time, anomaly, key.key.clone(), Some(read)));
            }
        }
    }
    for divergence in replicas.into_iter().flat_map(|r| &r.divergences) {
        let copy = &divergence.diverging;
        found.push((
            copy.time,
            "replicas diverged",
            Some(divergence.key.clone()),
            copy.operation,
        ));
    }
    if let Some(mismatch) = mismatch {
        found.push((
            mismatch.time,
            "replicas applied different entries",
            None,
            None,
        ));
    }
    if let Some(stall) = stall {
        found.push((stall.time, "leader stalled", None, None));
    }
    if let Some(stale) = stale_leader {
        found.push((stale.time, "leader lacks committed entries", None, None));
    }
    if let Some(two) = two_leaders {
        found.push((two.time, "two leaders in one term", None, None));
    }
    if let Some(crash) = crash {
        found.push((crash.time, "node crashed", None, None));
    }
    if let Some(time) = gave_up {
        found.push((time, "did not recover", None, None));
    }
    found
        .into_iter()
        .min_by_key(|(time, ..)| *time)
        .map(|(time, anomaly, key, operation)| Detection {
            seconds: time as f64 / 1e9,
            anomaly: anomaly.to_string(),
            key,
            operation,
        })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;
    use crate::completeness::Completeness;
    use crate::election_safety::ElectionSafety;
    use crate::fingerprints::{Checkpoint, Ledger};
    use crate::node_status::NodeStatus;
    use crate::results::{Healing, Observed, check};

    const MS: u64 = 1_000_000;

    /// Checks `h` with nothing else to go on: no replica copies, no crashes.
    fn check_alone(h: &History, healing: Option<Healing>) -> crate::results::RunResults {
        check(
            h,
            Duration::from_secs(5),
            healing,
            Observed::default(),
            Duration::MAX,
        )
        .unwrap()
    }

    fn history(steps: &[(u64, u64, &str, &str, &str, Value)]) -> History {
        let events = steps
            .iter()
            .enumerate()
            .map(|(i, (time, process, kind, f, key, value))| {
                serde_json::from_value(json!({"index": i, "time": time * MS, "process": process,
                                              "type": kind, "f": f, "key": key, "value": value}))
                .unwrap()
            })
            .collect();
        History::new(events)
    }

    #[test]
    fn a_stale_read_is_detected_when_it_completes() {
        let h = history(&[
            (0, 1, "invoke", "write", "r1", json!(3)),
            (10, 1, "ok", "write", "r1", json!(3)),
            (20, 2, "invoke", "read", "r1", Value::Null),
            (2500, 2, "ok", "read", "r1", Value::Null),
            (3000, 1, "invoke", "read", "r1", Value::Null),
            (3100, 1, "ok", "read", "r1", Value::Null),
        ]);
        let results = check_alone(&h, None);
        let detection = results.detection.expect("an anomaly");
        assert_eq!(detection.anomaly, "not linearizable");
        assert_eq!(detection.seconds, 2.5);
        assert_eq!(
            (detection.key.as_deref(), detection.operation),
            (Some("r1"), Some(2))
        );
    }

    #[test]
    fn a_lost_append_is_detected_when_the_final_read_misses_it() {
        let h = history(&[
            (0, 1, "invoke", "append", "l1", json!(5)),
            (10, 1, "ok", "append", "l1", json!(5)),
            (7000, 1, "invoke", "read", "l1", Value::Null),
            (7250, 1, "ok", "read", "l1", json!([])),
        ]);
        let results = check_alone(&h, None);
        let detection = results.detection.expect("an anomaly");
        assert_eq!(detection.seconds, 7.25);
        assert!(
            ["lost write", "not linearizable"].contains(&detection.anomaly.as_str()),
            "{detection:?}"
        );
    }

    #[test]
    fn replicas_that_applied_different_entries_fail_the_run_when_the_second_fingerprint_is_seen() {
        let h = history(&[
            (0, 1, "invoke", "write", "r1", json!(3)),
            (10, 1, "ok", "write", "r1", json!(3)),
        ]);
        let mut ledger = Ledger::default();
        let at = |fingerprint: &str| {
            vec![Checkpoint {
                index: 640,
                fingerprint: fingerprint.into(),
            }]
        };
        ledger.observe(1_000 * MS, "n1", &at("aa"));
        ledger.observe(1_200 * MS, "n2", &at("aa"));
        ledger.observe(4_500 * MS, "n3", &at("bb"));
        let observed = Observed {
            agreement: ledger.finish(),
            ..Observed::default()
        };
        let results = check(&h, Duration::from_secs(5), None, observed, Duration::MAX).unwrap();
        assert_eq!(results.valid, faultline_checker::Verdict::Invalid);
        let detection = results.detection.expect("an anomaly");
        assert_eq!(
            (detection.anomaly.as_str(), detection.seconds),
            ("replicas applied different entries", 4.5)
        );
    }

    #[test]
    fn a_leader_that_lacks_committed_entries_fails_the_run_when_first_seen_leading() {
        let h = history(&[
            (0, 1, "invoke", "write", "r1", json!(3)),
            (10, 1, "ok", "write", "r1", json!(3)),
        ]);
        let lagging =
            |role: &str, term, commit, last| NodeStatus::of("n3", role, term, None, commit, last);
        let mut completeness = Completeness::default();
        let committed = NodeStatus::of("n1", "leader", 2, None, 500, 510);
        completeness.observe(900 * MS, "n1", Some(&committed));
        completeness.observe(1_000 * MS, "n3", Some(&lagging("follower", 2, 300, 320)));
        completeness.observe(2_300 * MS, "n3", Some(&lagging("leader", 3, 300, 321)));
        let observed = Observed {
            stale_leaders: completeness.finish(),
            ..Observed::default()
        };
        let results = check(&h, Duration::from_secs(5), None, observed, Duration::MAX).unwrap();
        assert_eq!(results.valid, faultline_checker::Verdict::Invalid);
        let detection = results.detection.as_ref().expect("an anomaly");
        assert_eq!(
            (detection.anomaly.as_str(), detection.seconds),
            ("leader lacks committed entries", 2.3)
        );
        let written = serde_json::to_value(&results).unwrap();
        assert_eq!(
            written["stale_leaders"][0],
            json!({"time": 2_300 * MS, "node": "n3", "term": 3, "last_log_index": 321,
                   "committed": 500, "committed_by": "n1", "committed_term": 2})
        );
    }

    #[test]
    fn two_leaders_of_one_term_fail_a_run_whose_clients_saw_nothing() {
        let h = history(&[
            (0, 1, "invoke", "write", "r1", json!(3)),
            (10, 1, "ok", "write", "r1", json!(3)),
        ]);
        let leader = |id: &str, term| NodeStatus::of(id, "leader", term, None, 40, 41);
        let mut safety = ElectionSafety::default();
        safety.observe(9_200 * MS, "n2", Some(&leader("n2", 12)));
        safety.observe(9_300 * MS, "n3", Some(&leader("n3", 12)));
        let observed = Observed {
            two_leaders: safety.finish(),
            ..Observed::default()
        };
        let results = check(&h, Duration::from_secs(5), None, observed, Duration::MAX).unwrap();
        assert_eq!(results.valid, faultline_checker::Verdict::Invalid);
        let detection = results.detection.as_ref().expect("an anomaly");
        assert_eq!(
            (detection.anomaly.as_str(), detection.seconds),
            ("two leaders in one term", 9.3)
        );
        let written = serde_json::to_value(&results).unwrap();
        assert_eq!(
            written["two_leaders"][0],
            json!({"time": 9_300 * MS, "term": 12, "first": "n2", "second": "n3"})
        );
    }

    #[test]
    fn a_stuck_cluster_is_detected_when_the_harness_gives_up_and_fails_the_run() {
        let h = history(&[
            (0, 1, "invoke", "write", "r1", json!(3)),
            (10, 1, "ok", "write", "r1", json!(3)),
        ]);
        let healing = Healing {
            recovered: false,
            seconds: 30.0,
            gave_up_at: Some(40_000 * MS),
            reason: Some("no write".into()),
        };
        let results = check_alone(&h, Some(healing));
        assert_eq!(results.valid, faultline_checker::Verdict::Invalid);
        let detection = results.detection.expect("an anomaly");
        assert_eq!(
            (detection.anomaly.as_str(), detection.seconds),
            ("did not recover", 40.0)
        );
        let clean = check_alone(&h, None);
        assert_eq!(clean.valid, faultline_checker::Verdict::Valid);
        assert!(clean.detection.is_none());
    }
}
