//! `status.jsonl`: every node's role and term over a run, one line per observed change of a
//! node: `{"time":ns,"node":"n1","up":true,"role":"leader","term":3,"leader":"n1","commit":120}`;
//! a node that does not answer (killed, paused, or slow) is `{"time":ns,"node":"n1","up":false}`.
//! A node that tells its membership adds the configuration in force on it:
//! `"voters":["n1","n2","n3"],"outgoing":[],"learners":["n4"]` (`outgoing` non-empty only
//! during a joint change); lines of other systems, and of runs before it was recorded, have
//! none of the three.
//! The status poller writes it, the store reads it back (`store::STATUS` names the file),
//! and the results and the report read the samples. A module of its own, below all three.

use serde::{Deserialize, Serialize};

use crate::node_status::{NodeStatus, claim};

/// One observation of one node: a line of `status.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSample {
    /// Nanoseconds since the test started (the history's clock).
    pub time: u64,
    pub node: String,
    /// Whether the node answered.
    pub up: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<u64>,
    /// The voters of the configuration in force on the node (of the new one during a joint
    /// change); `None` when the node did not answer or tells no membership.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voters: Option<Vec<String>>,
    /// During a joint change, the voters of the configuration being left; `Some` and empty
    /// otherwise, for a node that tells its membership.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing: Option<Vec<String>>,
    /// The members that get the log but do not vote, for a node that tells its membership.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learners: Option<Vec<String>>,
}

impl StatusSample {
    /// `node` did not answer at `time`.
    pub fn silent(time: u64, node: String) -> StatusSample {
        StatusSample {
            time,
            node,
            up: false,
            role: None,
            term: None,
            leader: None,
            commit: None,
            voters: None,
            outgoing: None,
            learners: None,
        }
    }

    /// `node` answered `status` at `time`. A status with no member at all is of a system
    /// that does not tell its membership: the sample then has none, so that its line reads
    /// as it did before membership was recorded.
    pub fn answered(time: u64, node: String, status: NodeStatus) -> StatusSample {
        let tells_membership =
            !(status.voters.is_empty() && status.outgoing.is_empty() && status.learners.is_empty());
        let membership = |names: Vec<String>| tells_membership.then_some(names);
        StatusSample {
            time,
            node,
            up: true,
            role: Some(status.role),
            term: Some(status.term),
            leader: status.leader,
            commit: Some(status.commit),
            voters: membership(status.voters),
            outgoing: membership(status.outgoing),
            learners: membership(status.learners),
        }
    }

    /// Whether `other` says something new about the node, and so is a line of its own
    /// (ignoring time and commit, which moves constantly). A new configuration is new.
    pub fn differs(&self, other: &StatusSample) -> bool {
        let said = (
            self.up,
            &self.role,
            self.term,
            &self.leader,
            (&self.voters, &self.outgoing, &self.learners),
        );
        said != (
            other.up,
            &other.role,
            other.term,
            &other.leader,
            (&other.voters, &other.outgoing, &other.learners),
        )
    }
}

/// Of the latest samples of each node at one moment, the one that leads: up and calling
/// itself leader, with the greatest [`claim`]; of equal claims `current` (the leader so far,
/// if the caller keeps one), then the first by name. The one rule for who led when
/// (`results::leaders`) and whose configuration was the cluster's (`report::node_states`).
pub fn leading_sample<'a>(
    latest: impl IntoIterator<Item = &'a StatusSample>,
    current: Option<&str>,
) -> Option<&'a StatusSample> {
    latest
        .into_iter()
        .filter(|sample| sample.up && sample.role.as_deref() == Some("leader"))
        .max_by_key(|sample| {
            (
                claim(
                    &sample.node,
                    sample.term.unwrap_or(0),
                    sample.leader.as_deref(),
                ),
                Some(sample.node.as_str()) == current,
                std::cmp::Reverse(&sample.node),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(time: u64, term: u64, commit: u64) -> StatusSample {
        StatusSample {
            role: Some("leader".into()),
            term: Some(term),
            leader: Some("n1".into()),
            commit: Some(commit),
            up: true,
            ..StatusSample::silent(time, "n1".into())
        }
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    /// A leader that tells its membership: `voters`, leaving `outgoing`, and `learners`.
    fn member_leader(voters: &[&str], outgoing: &[&str], learners: &[&str]) -> StatusSample {
        StatusSample {
            voters: Some(names(voters)),
            outgoing: Some(names(outgoing)),
            learners: Some(names(learners)),
            ..leader(5, 3, 120)
        }
    }

    #[test]
    fn lines_read_back_as_written_and_a_silent_node_is_just_down() {
        let up = leader(5, 3, 120);
        let line = serde_json::to_string(&up).unwrap();
        assert_eq!(
            line,
            r#"{"time":5,"node":"n1","up":true,"role":"leader","term":3,"leader":"n1","commit":120}"#
        );
        assert_eq!(serde_json::from_str::<StatusSample>(&line).unwrap(), up);
        let down: StatusSample =
            serde_json::from_str(r#"{"time":9,"node":"n2","up":false}"#).unwrap();
        assert_eq!(down, StatusSample::silent(9, "n2".into()));
        assert_eq!(
            serde_json::to_string(&down).unwrap(),
            r#"{"time":9,"node":"n2","up":false}"#
        );
    }

    #[test]
    fn a_sample_with_membership_reads_back_as_written() {
        let joint = member_leader(&["n1", "n2", "n4"], &["n1", "n2", "n3"], &["n5"]);
        let line = serde_json::to_string(&joint).unwrap();
        assert_eq!(
            line,
            r#"{"time":5,"node":"n1","up":true,"role":"leader","term":3,"leader":"n1","commit":120,"voters":["n1","n2","n4"],"outgoing":["n1","n2","n3"],"learners":["n5"]}"#
        );
        assert_eq!(serde_json::from_str::<StatusSample>(&line).unwrap(), joint);
        let plain = member_leader(&["n1", "n2", "n3"], &[], &[]);
        let line = serde_json::to_string(&plain).unwrap();
        assert!(
            line.ends_with(r#""voters":["n1","n2","n3"],"outgoing":[],"learners":[]}"#),
            "{line}"
        );
        assert_eq!(serde_json::from_str::<StatusSample>(&line).unwrap(), plain);
    }

    #[test]
    fn a_status_without_members_makes_a_sample_without_membership() {
        let status = NodeStatus::of("n1", "leader", 3, Some("n1"), 120, 121);
        assert_eq!(
            StatusSample::answered(5, "n1".into(), status.clone()),
            leader(5, 3, 120)
        );
        let status = NodeStatus {
            voters: names(&["n1", "n2", "n3"]),
            learners: names(&["n4"]),
            ..status
        };
        assert_eq!(
            StatusSample::answered(5, "n1".into(), status),
            member_leader(&["n1", "n2", "n3"], &[], &["n4"])
        );
    }

    #[test]
    fn a_commit_that_moved_is_no_change_but_a_new_term_or_configuration_is() {
        assert!(!leader(1, 3, 120).differs(&leader(2, 3, 180)));
        assert!(leader(1, 3, 120).differs(&leader(2, 4, 120)));
        let before = member_leader(&["n1", "n2", "n3"], &[], &[]);
        assert!(!before.differs(&StatusSample {
            commit: Some(500),
            ..before.clone()
        }));
        assert!(before.differs(&member_leader(&["n1", "n2", "n3"], &[], &["n4"])));
        assert!(before.differs(&member_leader(
            &["n1", "n2", "n4"],
            &["n1", "n2", "n3"],
            &[]
        )));
        assert!(
            before.differs(&leader(5, 3, 120)),
            "membership no longer told"
        );
    }
}
