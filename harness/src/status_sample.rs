//! `status.jsonl`: every node's role and term over a run, one line per observed change of a
//! node: `{"time":ns,"node":"n1","up":true,"role":"leader","term":3,"leader":"n1","commit":120}`;
//! a node that does not answer (killed, paused, or slow) is `{"time":ns,"node":"n1","up":false}`.
//! The status poller writes it, the store reads it back (`store::STATUS` names the file),
//! and the results and the report read the samples. A module of its own, below all three.

use serde::{Deserialize, Serialize};

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
}

impl StatusSample {
    /// Whether `other` says something new about the node, and so is a line of its own
    /// (ignoring time and commit, which moves constantly).
    pub fn differs(&self, other: &StatusSample) -> bool {
        (self.up, &self.role, self.term, &self.leader)
            != (other.up, &other.role, other.term, &other.leader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(time: u64, term: u64, commit: u64) -> StatusSample {
        StatusSample {
            time,
            node: "n1".into(),
            up: true,
            role: Some("leader".into()),
            term: Some(term),
            leader: Some("n1".into()),
            commit: Some(commit),
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
        assert!(!down.up);
        assert_eq!((down.role, down.term, down.commit), (None, None, None));
    }

    #[test]
    fn a_commit_that_moved_is_no_change_but_a_new_term_is() {
        assert!(!leader(1, 3, 120).differs(&leader(2, 3, 180)));
        assert!(leader(1, 3, 120).differs(&leader(2, 4, 120)));
    }
}
