//! The core's output: everything the shell must persist, send, apply and answer, handed
//! out in batches (`Ready`) so that one fsync covers many proposals.

use super::{Entry, HardState, Index, Message, NodeId, Raft, Role, Snapshot};

/// The volatile state the shell shows in metrics and uses to route clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftState {
    pub role: Role,
    pub leader: Option<NodeId>,
}

/// A confirmed linearizable read: answer it from the state machine once it has applied
/// `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    pub request_id: u64,
    pub index: Index,
}

/// One batch of work for the shell, in the order it must be done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Set when the role or the leader changed since the last Ready.
    pub soft_state: Option<SoftState>,
    /// Set when it changed: persist it before sending `messages`.
    pub hard_state: Option<HardState>,
    /// A snapshot received from the leader that replaces the whole log: persist it, drop
    /// every entry the WAL holds, and restore the state machine from it.
    pub snapshot: Option<Snapshot>,
    /// Entries to append to the WAL. `entries[0].index` may be at or below the last
    /// persisted index: the WAL then replaces its entries from there on.
    pub entries: Vec<Entry>,
    /// Send only after the above is durable (fsynced).
    pub messages: Vec<Message>,
    /// Apply in order, after persisting the above.
    pub committed_entries: Vec<Entry>,
    /// Confirmed reads: answer each once the state machine has applied its index.
    pub read_states: Vec<ReadState>,
    /// Request ids of reads that will never be confirmed (this node stopped leading).
    pub failed_reads: Vec<u64>,
}

/// What the shell reported and what it is working on, to compute the next Ready.
#[derive(Debug)]
pub(super) struct ReadyTracker {
    soft_state: SoftState,
    hard_state: HardState,
    /// The Ready handed out and not yet advanced.
    in_progress: Option<InProgress>,
}

#[derive(Debug)]
struct InProgress {
    last_entry: Option<Index>,
    applied_through: Index,
}

impl ReadyTracker {
    /// Starts from what storage recovered: nothing needs reporting again.
    pub fn new(hard_state: HardState) -> ReadyTracker {
        ReadyTracker {
            soft_state: SoftState {
                role: Role::Follower,
                leader: None,
            },
            hard_state,
            in_progress: None,
        }
    }
}

impl Raft {
    fn soft_state(&self) -> SoftState {
        SoftState {
            role: self.role,
            leader: self.leader,
        }
    }

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed(),
        }
    }

    /// Whether `ready()` has anything to hand out. False while a Ready is in progress.
    pub fn has_ready(&self) -> bool {
        if self.ready_tracker.in_progress.is_some() {
            return false;
        }
        self.soft_state() != self.ready_tracker.soft_state
            || self.hard_state() != self.ready_tracker.hard_state
            || self.pending_snapshot.is_some()
            || self.log.has_unstable()
            || !self.messages.is_empty()
            || self.log.committed() > self.log.applied()
            || !self.read_states.is_empty()
            || !self.failed_reads.is_empty()
            || (self.role == Role::Leader && self.has_replication_to_send())
    }

    /// Hands out the next batch of work. Every proposal and read since the last call goes
    /// out now, batched into one AppendEntries and one heartbeat round per follower. Until
    /// `advance()`, no further Ready is produced (an empty one if asked).
    pub fn ready(&mut self) -> Ready {
        if self.ready_tracker.in_progress.is_some() {
            return Ready::default();
        }
        if self.role == Role::Leader {
            self.send_replication();
        }
        let soft_state = self.soft_state();
        let hard_state = self.hard_state();
        let entries = self.log.take_unstable();
        let committed_entries = self.log.take_committed();
        self.ready_tracker.in_progress = Some(InProgress {
            last_entry: entries.last().map(|entry| entry.index),
            applied_through: self.log.committed(),
        });
        let ready = Ready {
            soft_state: (soft_state != self.ready_tracker.soft_state).then_some(soft_state),
            hard_state: (hard_state != self.ready_tracker.hard_state).then_some(hard_state),
            snapshot: self.pending_snapshot.take(),
            entries,
            messages: std::mem::take(&mut self.messages),
            committed_entries,
            read_states: std::mem::take(&mut self.read_states),
            failed_reads: std::mem::take(&mut self.failed_reads),
        };
        self.ready_tracker.soft_state = soft_state;
        self.ready_tracker.hard_state = hard_state;
        ready
    }

    /// The shell persisted, sent and applied everything in the last Ready. A leader counts
    /// its own entries towards commitment only from here.
    pub fn advance(&mut self) {
        let Some(done) = self.ready_tracker.in_progress.take() else {
            return;
        };
        if let Some(last) = done.last_entry {
            self.log.persisted_through(last);
        }
        self.log.applied_to(done.applied_through);
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::raft::MessageBody;
    use crate::raft::testing::{cycle, elect, message, plain_config, recovered};

    #[test]
    fn hard_and_soft_state_appear_only_when_they_change() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1]);
        assert!(!raft.has_ready());
        raft.step(message(
            2,
            1,
            2,
            MessageBody::Heartbeat {
                leader_commit: 1,
                read_round: 0,
            },
        ));
        let ready = cycle(&mut raft);
        assert_eq!(
            ready.hard_state,
            Some(HardState {
                term: 2,
                vote: None,
                commit: 1
            })
        );
        assert_eq!(
            ready.soft_state,
            Some(SoftState {
                role: Role::Follower,
                leader: Some(2)
            })
        );
        raft.step(message(
            2,
            1,
            2,
            MessageBody::Heartbeat {
                leader_commit: 1,
                read_round: 0,
            },
        ));
        let ready = cycle(&mut raft);
        assert_eq!((ready.hard_state, ready.soft_state), (None, None));
        assert_eq!(ready.messages.len(), 1);
    }

    #[test]
    fn no_new_ready_until_the_last_one_is_advanced() {
        let mut raft = recovered(plain_config(1, &[1]), 0, &[]);
        elect(&mut raft);
        raft.propose(Bytes::from_static(b"x")).unwrap();
        let first = raft.ready();
        assert_eq!(first.entries.len(), 1);
        raft.propose(Bytes::from_static(b"y")).unwrap();
        assert!(!raft.has_ready());
        assert_eq!(raft.ready(), Ready::default());
        raft.advance();
        let second = raft.ready();
        assert_eq!(second.entries.len(), 1);
        assert_eq!(
            second.committed_entries.len(),
            1,
            "x, persisted by the first Ready"
        );
    }

    #[test]
    fn committed_entries_are_handed_out_once() {
        let mut raft = recovered(plain_config(1, &[1]), 0, &[]);
        elect(&mut raft);
        let mut applied = Vec::new();
        for text in ["a", "b", "c"] {
            raft.propose(Bytes::from_static(text.as_bytes())).unwrap();
            while raft.has_ready() {
                applied.extend(
                    cycle(&mut raft)
                        .committed_entries
                        .into_iter()
                        .map(|entry| entry.index),
                );
            }
        }
        assert_eq!(applied, [2, 3, 4]);
        assert_eq!(raft.status().applied, 4);
    }
}
