//! A leader that stays leader but commits nothing. A correct Raft leader either commits (its
//! followers accept its entries within a few round trips) or steps down (check-quorum, a
//! higher term); one that keeps its term for [`STALL_AFTER`] while its log grows and its
//! commit index stays put has followers that keep refusing it: its log conflicts with what
//! they committed, which only a broken election or log rule produces. Every write sent to it
//! times out, and without this check the run would find out only when the harness gives up on
//! the cluster after the last fault.
//!
//! Fed by the status poller from what each node's `/status` says.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::node_status::NodeStatus;

/// How long a leader may hold its term without committing while its log grows. Far longer
/// than any fault keeps a correct leader from committing without deposing it: an election
/// timeout is 150 to 300 ms.
pub const STALL_AFTER: u64 = 5_000_000_000;

/// A leader that committed nothing for [`STALL_AFTER`] while its log grew.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stall {
    /// Nanoseconds since the start of the run when the stall was [`STALL_AFTER`] long.
    pub time: u64,
    pub node: String,
    pub term: u64,
    /// The commit index it was stuck at.
    pub commit: u64,
    /// Its last log index when the stall was noticed.
    pub last_log_index: u64,
}

/// Since when a leader has led in one term with one commit index.
struct Watch {
    term: u64,
    commit: u64,
    last_log_index: u64,
    since: u64,
}

impl Watch {
    /// Watching `status` from `time` on.
    fn from(status: &NodeStatus, time: u64) -> Watch {
        Watch {
            term: status.term,
            commit: status.commit,
            last_log_index: status.last_log_index,
            since: time,
        }
    }
}

/// Watches every node's leadership through the status poller.
#[derive(Default)]
pub struct Stalls {
    watching: HashMap<String, Watch>,
    found: Vec<Stall>,
}

impl Stalls {
    /// Takes in `node`'s status at `time`; `None` if it did not answer.
    pub fn observe(&mut self, time: u64, node: &str, status: Option<&NodeStatus>) {
        let Some(status) = status.filter(|s| s.role == "leader") else {
            self.watching.remove(node);
            return;
        };
        let watch = self
            .watching
            .entry(node.to_string())
            .or_insert_with(|| Watch::from(status, time));
        if (watch.term, watch.commit) != (status.term, status.commit) {
            *watch = Watch::from(status, time);
            return;
        }
        if time - watch.since >= STALL_AFTER && status.last_log_index > watch.last_log_index {
            self.found.push(Stall {
                time,
                node: node.to_string(),
                term: status.term,
                commit: status.commit,
                last_log_index: status.last_log_index,
            });
            // One report per stall: watch again from here.
            self.watching.remove(node);
        }
    }

    /// The stalls found, in time order.
    pub fn finish(self) -> Vec<Stall> {
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn status(role: &str, term: u64, commit: u64, last: u64) -> NodeStatus {
        NodeStatus::of("n1", role, term, Some("n1"), commit, last)
    }

    #[test]
    fn a_leader_whose_log_grows_but_commits_nothing_for_five_seconds_is_a_stall() {
        let mut stalls = Stalls::default();
        for second in 0..=6 {
            let s = status("leader", 4, 100, 101 + second * 50);
            stalls.observe(second * S, "n1", Some(&s));
        }
        let found = stalls.finish();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].time, found[0].term, found[0].commit),
            (5 * S, 4, 100)
        );
    }

    #[test]
    fn a_leader_that_commits_or_steps_down_or_is_idle_or_silent_is_no_stall() {
        let mut stalls = Stalls::default();
        for second in 0..=10 {
            // Commits: n1's commit index moves.
            let moving = status("leader", 4, 100 + second, 200 + second);
            stalls.observe(second * S, "n1", Some(&moving));
            // Idle: nothing to commit, nothing new in the log.
            let idle = status("leader", 2, 50, 50);
            stalls.observe(second * S, "n2", Some(&idle));
            // Steps down and back up every few seconds, in new terms.
            let role = if second % 4 == 3 {
                "follower"
            } else {
                "leader"
            };
            let flapping = status(role, second / 4, 10, 20 + second);
            stalls.observe(second * S, "n3", Some(&flapping));
            // Paused or killed every other poll.
            let answer = (second % 2 == 0).then(|| status("leader", 1, 5, 6 + second));
            stalls.observe(second * S, "n4", answer.as_ref());
        }
        assert_eq!(stalls.finish(), Vec::new());
    }
}
