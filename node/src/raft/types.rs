//! Plain data shared by the Raft core, the write-ahead log and the peer transport.
//!
//! These types carry no behaviour; the core (`raft::Raft`) gives them meaning. They derive
//! serde so the WAL and the transport can encode them without hand-written codecs.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Membership;

/// Identifies a cluster member inside the core (the shell maps names like `n1` to ids).
pub type NodeId = u64;
/// A Raft term.
pub type Term = u64;
/// A position in the replicated log; the first entry has index 1, 0 means "none".
pub type Index = u64;

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    pub payload: Payload,
}

/// What an entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Appended by every new leader at the start of its term, so that it can commit
    /// entries of earlier terms (Raft §5.4.2) and serve ReadIndex requests.
    Noop,
    /// An opaque command for the state machine.
    Command(Bytes),
    /// A configuration (thesis §4.3): in force on each node from the moment it is appended.
    Membership(Membership),
}

/// The state that must be durable before the node answers any message (Raft Figure 2,
/// "persistent state on all servers"), plus the commit index as a hint for restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub vote: Option<NodeId>,
    pub commit: Index,
}

/// Which prefix of the log a snapshot replaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Index of the last entry the snapshot includes.
    pub index: Index,
    /// Term of that entry.
    pub term: Term,
}

/// A state-machine snapshot: the effect of every entry up to `meta.index`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    /// The configuration in force at `meta.index`; `None` in a snapshot taken before
    /// membership could change, meaning the initial voters.
    pub membership: Option<Membership>,
    /// The state machine's serialized state; opaque to Raft and to storage.
    pub data: Bytes,
}

/// A message between two Raft peers. `term` is the sender's current term, except for
/// pre-votes, where it is the term the sender would campaign in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: MessageBody,
}

/// The RPCs of the Raft paper, plus pre-vote (thesis §9.6), ReadIndex heartbeats (§6.4) and
/// leadership transfer (§3.10).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    /// Would you vote for me if I campaigned in `term`? Changes no state on the receiver.
    PreVote {
        last_log_index: Index,
        last_log_term: Term,
    },
    PreVoteResponse {
        granted: bool,
    },
    RequestVote {
        last_log_index: Index,
        last_log_term: Term,
        /// The candidate campaigns because its leader handed it leadership (`TimeoutNow`):
        /// voters grant it even while they hear from that leader, which leader stickiness
        /// would otherwise refuse (etcd's `campaignTransfer`). The log check still applies.
        transfer: bool,
    },
    RequestVoteResponse {
        granted: bool,
    },
    AppendEntries {
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
        /// The latest ReadIndex round when this was sent: the answer confirms it, as a
        /// heartbeat's does, so that under leases a stream of appends renews the lease.
        read_round: u64,
    },
    AppendEntriesResponse {
        /// Whether the consistency check passed.
        success: bool,
        /// On success: the index of the last entry known to match the leader's log.
        match_index: Index,
        /// On rejection: a hint for fast backtracking (thesis §5.3): the first index of
        /// `conflict_term` in the follower's log, or its last index + 1 when its log is shorter.
        conflict_index: Index,
        /// On rejection: the term of the follower's entry at `prev_log_index`, if it has one.
        conflict_term: Option<Term>,
        /// The `read_round` of the AppendEntries answered (0 for InstallSnapshot).
        read_round: u64,
    },
    /// Leader liveness, commit propagation and ReadIndex confirmation in one message.
    Heartbeat {
        leader_commit: Index,
        /// The ReadIndex round this heartbeat confirms leadership for (0: none).
        read_round: u64,
    },
    HeartbeatResponse {
        read_round: u64,
    },
    /// Sent instead of AppendEntries when the entries the follower needs were compacted.
    /// Answered with an `AppendEntriesResponse` whose `match_index` is the snapshot's index.
    InstallSnapshot {
        snapshot: Snapshot,
    },
    /// The leader hands over leadership (thesis §3.10): the receiver, whose log matches the
    /// leader's to its last entry, campaigns at once, without pre-vote.
    TimeoutNow,
}
