//! Election Safety (Raft §5.2, Figure 3): at most one leader is elected in a given term.
//!
//! A vote is granted once per term, and a vote must survive a restart (it is part of the
//! persistent state of Figure 2). A node that forgets it can vote again in the same term
//! after a crash, and two candidates of that term can each count it towards a majority: two
//! leaders then append different entries at the same index, and followers that hear both
//! keep whichever came first, each leader counting their acknowledgement. Clients see it
//! only if they happen to write to both leaders and read the difference back.
//!
//! The status poller sees it directly: two nodes that each report being the leader of the
//! same term, whenever either was seen. The rule is about terms, not time, so the order in
//! which the poller sees them does not matter. Only for systems whose `/status` reports
//! Raft's own role and term (the Faultline contract): other systems' stand-ins, such as
//! Redis Sentinel's epochs, make no such promise.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::node_status::NodeStatus;

/// Two nodes that each led one term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoLeaders {
    /// Nanoseconds since the start of the run when the second of them was seen leading (by
    /// the status poller, or by the nemesis's own reads), or the first if that was later.
    pub time: u64,
    pub term: u64,
    /// The node seen leading the term first.
    pub first: String,
    /// The other node seen leading it.
    pub second: String,
}

/// Watches every node's status for a second leader of a term.
#[derive(Default)]
pub struct ElectionSafety {
    /// Per term, the first node seen leading it, and when.
    leaders: BTreeMap<u64, (String, u64)>,
    /// The terms already reported: one report per term.
    reported: BTreeSet<u64>,
    found: Vec<TwoLeaders>,
}

impl ElectionSafety {
    /// Takes in `node`'s status at `time`; `None` if it did not answer.
    pub fn observe(&mut self, time: u64, node: &str, status: Option<&NodeStatus>) {
        let Some(status) = status.filter(|status| status.role == "leader") else {
            return;
        };
        let (first, first_seen) = self
            .leaders
            .entry(status.term)
            .or_insert_with(|| (node.to_string(), time));
        // Observations may come in late (the nemesis's), so the pair is dated by the later.
        if first != node && self.reported.insert(status.term) {
            self.found.push(TwoLeaders {
                time: time.max(*first_seen),
                term: status.term,
                first: first.clone(),
                second: node.to_string(),
            });
        }
    }

    /// The terms that had two leaders, in the order they were seen.
    pub fn finish(self) -> Vec<TwoLeaders> {
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(id: &str, role: &str, term: u64) -> NodeStatus {
        NodeStatus::of(id, role, term, None, 10, 12)
    }

    #[test]
    fn a_second_leader_of_a_term_is_reported_once() {
        let mut safety = ElectionSafety::default();
        safety.observe(1, "n2", Some(&status("n2", "leader", 12)));
        safety.observe(2, "n1", Some(&status("n1", "follower", 12)));
        // n3 leads term 12 too, and is seen doing it twice; n1 then leads it as well.
        safety.observe(3, "n3", Some(&status("n3", "leader", 12)));
        safety.observe(4, "n3", Some(&status("n3", "leader", 12)));
        safety.observe(5, "n1", Some(&status("n1", "leader", 12)));
        assert_eq!(
            safety.finish(),
            [TwoLeaders {
                time: 3,
                term: 12,
                first: "n2".into(),
                second: "n3".into(),
            }]
        );
    }

    #[test]
    fn one_leader_per_term_whatever_the_order_is_safe() {
        let mut safety = ElectionSafety::default();
        // A deposed leader still claiming its old term, seen after the next one led.
        safety.observe(1, "n1", Some(&status("n1", "leader", 5)));
        safety.observe(2, "n2", Some(&status("n2", "leader", 6)));
        safety.observe(3, "n1", Some(&status("n1", "leader", 5)));
        // Candidates of one term, and silent nodes, say nothing.
        safety.observe(4, "n3", Some(&status("n3", "candidate", 6)));
        safety.observe(5, "n3", None);
        assert_eq!(safety.finish(), Vec::new());
    }

    #[test]
    fn a_leader_seen_late_is_dated_by_the_later_sighting() {
        let mut safety = ElectionSafety::default();
        // The poller sees n2 lead term 4 at 9; the nemesis had seen n3 lead it at 5.
        safety.observe(9, "n2", Some(&status("n2", "leader", 4)));
        safety.observe(5, "n3", Some(&status("n3", "leader", 4)));
        assert_eq!(safety.finish()[0].time, 9);
    }
}
