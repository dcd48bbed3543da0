//! Leader Completeness (Raft §5.4, Figure 3): an entry committed in some term is in the log of
//! every leader of every later term. The election restriction (a vote only for a candidate
//! whose log is at least as up to date as the voter's, §5.4.1) is what makes it hold; without
//! it, a node that missed committed entries can win an election, and from then on its
//! followers refuse what it sends (it conflicts with what they committed) or, worse, it
//! overwrites committed entries.
//!
//! The status poller sees it from `/status` alone: a node that reports commit index `c` in
//! term `t` has seen every entry up to `c` committed by a leader of term `t` or earlier, so a
//! node that leads a term above `t` must have a log that reaches `c`. When did the poller see
//! either does not matter: the rule is about terms, not time. A leader whose last log index
//! is below such a commit index is a stale leader, and fails the run.
//!
//! Only for systems whose `/status` reports a real log (the Faultline contract): etcd's status
//! stands its commit index in for the log's end, which a new leader's may well lag.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::node_status::NodeStatus;

/// A leader whose log ended below an index committed in an earlier term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleLeader {
    /// Nanoseconds since the start of the run when the poller saw it lead.
    pub time: u64,
    pub node: String,
    pub term: u64,
    /// Its last log index then.
    pub last_log_index: u64,
    /// The commit index it lacks entries of.
    pub committed: u64,
    /// The node that reported that commit index, and the term it was in.
    pub committed_by: String,
    pub committed_term: u64,
}

/// The highest commit index reported in one term, and by whom.
struct Highest {
    commit: u64,
    node: String,
}

/// Watches every node's status for leaders that lack committed entries.
#[derive(Default)]
pub struct Completeness {
    /// Per term, the highest commit index a node in that term reported.
    committed: BTreeMap<u64, Highest>,
    /// The leaders (node, term) already reported: one report per leadership.
    reported: HashSet<(String, u64)>,
    found: Vec<StaleLeader>,
}

impl Completeness {
    /// Takes in `node`'s status at `time`; `None` if it did not answer.
    pub fn observe(&mut self, time: u64, node: &str, status: Option<&NodeStatus>) {
        let Some(status) = status else {
            return;
        };
        let highest = self
            .committed
            .entry(status.term)
            .or_insert_with(|| Highest {
                commit: status.commit,
                node: node.to_string(),
            });
        if status.commit > highest.commit {
            *highest = Highest {
                commit: status.commit,
                node: node.to_string(),
            };
        }
        if status.role != "leader" || self.reported.contains(&(node.to_string(), status.term)) {
            return;
        }
        let earlier = self
            .committed
            .range(..status.term)
            .max_by_key(|(_, highest)| highest.commit);
        if let Some((&term, highest)) = earlier
            && status.last_log_index < highest.commit
        {
            self.found.push(StaleLeader {
                time,
                node: node.to_string(),
                term: status.term,
                last_log_index: status.last_log_index,
                committed: highest.commit,
                committed_by: highest.node.clone(),
                committed_term: term,
            });
            self.reported.insert((node.to_string(), status.term));
        }
    }

    /// The stale leaders found, in time order.
    pub fn finish(self) -> Vec<StaleLeader> {
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(id: &str, role: &str, term: u64, commit: u64, last: u64) -> NodeStatus {
        NodeStatus::of(id, role, term, None, commit, last)
    }

    #[test]
    fn a_leader_whose_log_ends_below_an_earlier_terms_commit_index_is_stale_once() {
        let mut completeness = Completeness::default();
        // n1 led term 3 and n2 knew index 120 committed; n3 lagged at 80.
        completeness.observe(1, "n1", Some(&status("n1", "leader", 3, 120, 125)));
        completeness.observe(2, "n2", Some(&status("n2", "follower", 3, 120, 125)));
        completeness.observe(3, "n3", Some(&status("n3", "follower", 3, 70, 80)));
        // n3 wins term 4 with its short log, and is seen leading it twice.
        completeness.observe(10, "n3", Some(&status("n3", "leader", 4, 70, 81)));
        completeness.observe(11, "n3", Some(&status("n3", "leader", 4, 70, 84)));
        assert_eq!(
            completeness.finish(),
            [StaleLeader {
                time: 10,
                node: "n3".into(),
                term: 4,
                last_log_index: 81,
                committed: 120,
                committed_by: "n1".into(),
                committed_term: 3,
            }]
        );
    }

    #[test]
    fn the_order_in_which_the_poller_sees_them_does_not_matter() {
        let mut completeness = Completeness::default();
        completeness.observe(1, "n3", Some(&status("n3", "leader", 4, 70, 81)));
        completeness.observe(2, "n2", Some(&status("n2", "follower", 3, 120, 125)));
        completeness.observe(3, "n3", Some(&status("n3", "leader", 4, 70, 82)));
        let found = completeness.finish();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].time, found[0].committed), (3, 120));
    }

    #[test]
    fn leaders_that_hold_every_committed_entry_or_lead_the_same_term_are_not_stale() {
        let mut completeness = Completeness::default();
        // A new leader whose commit index lags its followers' but whose log holds it all.
        completeness.observe(1, "n1", Some(&status("n1", "follower", 5, 300, 310)));
        completeness.observe(2, "n2", Some(&status("n2", "leader", 6, 290, 310)));
        // A leader cut off in term 6 with a short log, while term 7 commits far ahead of it:
        // what was committed in its own or later terms need not be in its log.
        completeness.observe(3, "n1", Some(&status("n1", "leader", 7, 900, 905)));
        completeness.observe(4, "n2", Some(&status("n2", "leader", 6, 300, 320)));
        // Silent nodes say nothing.
        completeness.observe(5, "n3", None);
        assert_eq!(completeness.finish(), Vec::new());
    }
}
