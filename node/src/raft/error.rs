//! The errors the Raft core reports to its shell.

use super::{Index, MembershipError, NodeId, Term};

/// A configuration, recovered state or compaction request the core cannot accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RaftError {
    #[error("voter {0} is listed twice")]
    DuplicateVoter(NodeId),
    #[error("heartbeat_ticks must be at least 1")]
    ZeroHeartbeat,
    #[error("the election timeout range {start}..{end} is empty")]
    EmptyElectionRange { start: u32, end: u32 },
    #[error(
        "heartbeat_ticks ({heartbeat}) must be below the shortest election timeout ({election}), \
         or followers start elections while the leader is healthy"
    )]
    HeartbeatNotBelowElection { heartbeat: u32, election: u32 },
    #[error("max_inflight must be at least 1")]
    ZeroInflight,
    #[error("max_bytes_per_message must be at least 1")]
    ZeroMessageBytes,
    #[error(
        "a lease of the shortest election timeout ({election} ticks) less one tick and the \
         drift margin ({margin} ticks) is empty; lower the margin or raise the timeout"
    )]
    NoLeaseLeft { margin: u32, election: u32 },
    #[error(
        "the lease drift margin must be at least one tick: it also covers the time a read \
         waits in the Raft loop after the clock was read"
    )]
    LeaseMarginBelowOneTick,
    #[error("the recovered log has a gap: expected entry {expected}, found entry {found}")]
    LogGap { expected: Index, found: Index },
    #[error("recovered entry {index} has term {term}, lower than the term {previous} before it")]
    TermsDecrease {
        index: Index,
        term: Term,
        previous: Term,
    },
    #[error("the recovered commit index {commit} is beyond the last log index {last_index}")]
    CommitBeyondLog { commit: Index, last_index: Index },
    #[error("the recovered term {term} is lower than the term {log_term} of the last log entry")]
    TermBehindLog { term: Term, log_term: Term },
    #[error("cannot compact through index {index}: only entries through {applied} are applied")]
    CompactBeyondApplied { index: Index, applied: Index },
    #[error("the snapshot says entry {index} has term {term}, but the log has {log_term:?} there")]
    SnapshotTermMismatch {
        index: Index,
        term: Term,
        log_term: Option<Term>,
    },
}

/// A proposal or read reached a node that is not the leader; retry at `leader` if known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("this node is not the leader ({})", describe_leader(*.leader))]
pub struct NotLeader {
    /// The leader this node knows of in its current term, if any.
    pub leader: Option<NodeId>,
}

/// Why a leader did not take a proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    /// Leadership is being handed to `target`: the leader takes no new entries, so that the
    /// target can catch up with a log that stops growing. Nothing was appended; retry once
    /// the transfer ends (at the new leader, or here if it was abandoned).
    #[error("leadership is being transferred to node {target}; nothing was proposed, retry")]
    TransferInProgress { target: NodeId },
    /// A membership change is under way (its configurations not all committed yet): one
    /// change at a time.
    #[error("a membership change is already in progress; retry once it has committed")]
    MembershipChangeInProgress,
    /// A new leader changes membership only once it has committed an entry of its own term,
    /// so that it knows the latest committed configuration (thesis §4.1, the fix for the
    /// single-server change bug); its no-op commits within a round trip.
    #[error("the leader has not committed an entry of its term yet; retry shortly")]
    LeaderNotReady,
    /// The change does not apply to the current membership.
    #[error(transparent)]
    Membership(#[from] MembershipError),
}

/// Why a leadership transfer could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// Only the leader can hand over leadership.
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    #[error("node {0} already leads; name another member to transfer leadership to")]
    ToSelf(NodeId),
    #[error("node {0} is not a voter of the cluster; name one of its voters")]
    UnknownTarget(NodeId),
}

fn describe_leader(leader: Option<NodeId>) -> String {
    match leader {
        Some(id) => format!("the leader is node {id}"),
        None => "no leader is known".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_leader_names_the_leader_to_retry_at() {
        assert_eq!(
            NotLeader { leader: Some(3) }.to_string(),
            "this node is not the leader (the leader is node 3)"
        );
        assert_eq!(
            NotLeader { leader: None }.to_string(),
            "this node is not the leader (no leader is known)"
        );
    }

    #[test]
    fn transfer_refusals_say_what_to_do() {
        let refused = TransferError::from(NotLeader { leader: Some(2) });
        assert_eq!(
            refused.to_string(),
            "this node is not the leader (the leader is node 2)"
        );
        assert_eq!(
            ProposeError::TransferInProgress { target: 3 }.to_string(),
            "leadership is being transferred to node 3; nothing was proposed, retry"
        );
    }
}
