//! Do the replicas agree on what they applied? A node may publish in `GET /status` the
//! fingerprint of its applied state at some log indexes (`"fingerprints": [{"index": 64,
//! "fingerprint": "…"}, …]`; the bundled node chains a hash over every applied entry and
//! shows every 64th index). By Raft's State Machine Safety, every node that applied index `i`
//! has the same fingerprint there. The status poller hands every report to a [`Ledger`]; two
//! fingerprints for one index mean that the nodes applied different entries (or that one
//! node, after a restart, applied different entries than before): a replica diverged,
//! whether or not any client read from it.
//!
//! Systems whose status has no fingerprints are simply not compared.

use std::collections::HashMap;

use faultline_checker::Verdict;
use serde::{Deserialize, Serialize};

/// A node's fingerprint right after it applied `index`, as `/status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub index: u64,
    /// Opaque: compared for equality only.
    pub fingerprint: String,
}

/// One node's word on one index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub node: String,
    pub fingerprint: String,
}

/// The first index with two different fingerprints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// Nanoseconds since the start of the run when the second fingerprint was seen.
    pub time: u64,
    pub index: u64,
    /// Who reported the index first, and what.
    pub first: Report,
    /// Who reported something else for it.
    pub then: Report,
}

/// What `results.json` says of the replicas' fingerprints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Invalid if any index had two fingerprints.
    pub valid: Verdict,
    /// Indexes that at least two nodes reported (or one node twice, across a restart).
    pub compared: u64,
    /// Indexes with two or more fingerprints.
    pub mismatched: u64,
    /// The first of them to be seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_mismatch: Option<Mismatch>,
}

/// What was first reported for one index.
struct Seen {
    first: Report,
    /// Whether another report (another node, or the same one after a restart) confirmed or
    /// contradicted it.
    compared: bool,
    mismatched: bool,
}

/// Every fingerprint seen during a run, by index.
#[derive(Default)]
pub struct Ledger {
    seen: HashMap<u64, Seen>,
    first_mismatch: Option<Mismatch>,
}

impl Ledger {
    /// Takes in what `node` reported at `time` (nanoseconds since the start). A node repeats
    /// its checkpoints on every poll; repeating the same fingerprint is no comparison.
    pub fn observe(&mut self, time: u64, node: &str, checkpoints: &[Checkpoint]) {
        for checkpoint in checkpoints {
            let Some(seen) = self.seen.get_mut(&checkpoint.index) else {
                self.seen.insert(
                    checkpoint.index,
                    Seen {
                        first: Report {
                            node: node.to_string(),
                            fingerprint: checkpoint.fingerprint.clone(),
                        },
                        compared: false,
                        mismatched: false,
                    },
                );
                continue;
            };
            if seen.first.fingerprint != checkpoint.fingerprint {
                seen.compared = true;
                seen.mismatched = true;
                // Reports come in time order, and a node's checkpoints oldest first.
                if self.first_mismatch.is_none() {
                    self.first_mismatch = Some(Mismatch {
                        time,
                        index: checkpoint.index,
                        first: seen.first.clone(),
                        then: Report {
                            node: node.to_string(),
                            fingerprint: checkpoint.fingerprint.clone(),
                        },
                    });
                }
            } else if seen.first.node != node {
                seen.compared = true;
            }
        }
    }

    /// The verdict, or `None` if no node reported a fingerprint.
    pub fn finish(self) -> Option<Agreement> {
        if self.seen.is_empty() {
            return None;
        }
        let compared = self.seen.values().filter(|s| s.compared).count() as u64;
        let mismatched = self.seen.values().filter(|s| s.mismatched).count() as u64;
        Some(Agreement {
            valid: if mismatched == 0 {
                Verdict::Valid
            } else {
                Verdict::Invalid
            },
            compared,
            mismatched,
            first_mismatch: self.first_mismatch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(index: u64, fingerprint: &str) -> Checkpoint {
        Checkpoint {
            index,
            fingerprint: fingerprint.to_string(),
        }
    }

    #[test]
    fn nodes_that_applied_the_same_entries_agree() {
        let mut ledger = Ledger::default();
        ledger.observe(1, "n1", &[at(64, "a"), at(128, "b")]);
        ledger.observe(2, "n2", &[at(64, "a")]);
        ledger.observe(3, "n1", &[at(64, "a"), at(128, "b")]);
        ledger.observe(4, "n3", &[at(128, "b"), at(192, "c")]);
        let agreement = ledger.finish().expect("fingerprints were reported");
        assert_eq!(agreement.valid, Verdict::Valid);
        assert_eq!((agreement.compared, agreement.mismatched), (2, 0));
        assert!(agreement.first_mismatch.is_none());
    }

    #[test]
    fn two_fingerprints_for_one_index_are_a_divergence_found_when_the_second_is_seen() {
        let mut ledger = Ledger::default();
        ledger.observe(10, "n1", &[at(64, "a"), at(128, "b")]);
        ledger.observe(20, "n3", &[at(64, "a"), at(128, "x")]);
        ledger.observe(30, "n2", &[at(128, "y"), at(192, "z")]);
        let agreement = ledger.finish().unwrap();
        assert_eq!(agreement.valid, Verdict::Invalid);
        assert_eq!((agreement.compared, agreement.mismatched), (2, 1));
        let first = agreement.first_mismatch.unwrap();
        assert_eq!((first.time, first.index), (20, 128));
        assert_eq!(
            (first.first.node.as_str(), first.then.node.as_str()),
            ("n1", "n3")
        );
    }

    #[test]
    fn a_node_that_applies_an_index_differently_after_a_restart_diverged_from_itself() {
        let mut ledger = Ledger::default();
        ledger.observe(10, "n1", &[at(64, "a")]);
        ledger.observe(50, "n1", &[at(64, "b")]);
        let agreement = ledger.finish().unwrap();
        assert_eq!(agreement.valid, Verdict::Invalid);
        let first = agreement.first_mismatch.unwrap();
        assert_eq!(
            (first.first.node.as_str(), first.then.node.as_str()),
            ("n1", "n1")
        );
    }

    #[test]
    fn a_system_without_fingerprints_is_not_compared() {
        let mut ledger = Ledger::default();
        ledger.observe(1, "n1", &[]);
        assert!(ledger.finish().is_none());
    }
}
