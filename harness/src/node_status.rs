//! What a node answers on `GET /status`: the cluster asks every node for it, the status
//! poller logs it and watches leaders for stalls, the replica sampler waits on it. A type of
//! its own, so that what reads a status need not depend on the processes it came from.

use serde::{Deserialize, Serialize};

use crate::fingerprints::Checkpoint;

/// What a node answers on `GET /status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub id: String,
    pub role: String,
    pub term: u64,
    pub leader: Option<String>,
    pub commit: u64,
    pub applied: u64,
    pub last_log_index: u64,
    pub snapshot_index: u64,
    /// Fingerprints of the applied state at some indexes, if the system publishes them.
    #[serde(default)]
    pub fingerprints: Vec<Checkpoint>,
    /// The voters of the configuration in force on the node (of the new one during a
    /// joint change), by name; empty for a system that does not tell its membership.
    #[serde(default)]
    pub voters: Vec<String>,
    /// During a joint change, the voters of the configuration being left; empty otherwise.
    #[serde(default)]
    pub outgoing: Vec<String>,
    /// Members that get the log but do not vote.
    #[serde(default)]
    pub learners: Vec<String>,
}

#[cfg(test)]
impl NodeStatus {
    /// A status for tests: `id` as `role` in `term`, following `leader`, with its commit
    /// (and applied) index and last log index; no snapshot, no fingerprints, no membership.
    pub fn of(
        id: &str,
        role: &str,
        term: u64,
        leader: Option<&str>,
        commit: u64,
        last_log_index: u64,
    ) -> NodeStatus {
        NodeStatus {
            id: id.into(),
            role: role.into(),
            term,
            leader: leader.map(str::to_string),
            commit,
            applied: commit,
            last_log_index,
            snapshot_index: 0,
            ..NodeStatus::default()
        }
    }
}

/// How strongly a node that says it leads claims the lead: by its term, then by whether it
/// names itself as the leader rather than a successor it has heard of (a deposed Redis
/// primary still takes writes, but the sentinels know better). The greater claim leads; the
/// one rule for the nemesis's target ([`leading`]) and the run's leader timeline
/// (`results::leaders`).
pub fn claim(id: &str, term: u64, leader: Option<&str>) -> (u64, bool) {
    (term, leader == Some(id))
}

/// The node that leads, of `statuses`: of those that call themselves leader, the greatest
/// [`claim`]; of equal claims, the first by name.
pub fn leading<'a>(statuses: impl IntoIterator<Item = &'a NodeStatus>) -> Option<&'a NodeStatus> {
    statuses
        .into_iter()
        .filter(|status| status.role == "leader")
        .max_by_key(|status| {
            (
                claim(&status.id, status.term, status.leader.as_deref()),
                std::cmp::Reverse(status.id.as_str()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(id: &str, role: &str, term: u64, leader: &str) -> NodeStatus {
        NodeStatus::of(id, role, term, Some(leader), 0, 0)
    }

    #[test]
    fn the_leader_of_the_highest_term_leads_and_a_deposed_one_that_knows_it_does_not() {
        let cut_off = status("n1", "leader", 1, "n1");
        let elected = status("n3", "leader", 2, "n3");
        let follower = status("n2", "follower", 2, "n3");
        let all = [cut_off.clone(), elected.clone(), follower.clone()];
        assert_eq!(leading(&all).map(|s| s.id.as_str()), Some("n3"));

        // n3 still takes writes after n2 was promoted in the same epoch, but names n2.
        let deposed = status("n3", "leader", 2, "n2");
        let promoted = status("n2", "leader", 2, "n2");
        for order in [
            [deposed.clone(), promoted.clone()],
            [promoted.clone(), deposed.clone()],
        ] {
            assert_eq!(leading(&order).map(|s| s.id.as_str()), Some("n2"));
        }
        assert_eq!(leading(&[follower]), None);
    }
}
