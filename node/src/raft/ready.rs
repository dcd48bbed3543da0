//! The core's output: everything the shell must persist, send, apply and answer, handed
//! out in batches (`Ready`) so that one fsync covers many proposals; and the one order in
//! which a shell carries a batch out ([`Ready::handle`], the durability rule).

use super::{Entry, HardState, Index, Message, MessageBody, NodeId, Raft, Role, Snapshot};

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
///
/// The durability rule: nothing in `messages` or `committed_entries` may depend on state
/// that is not yet durable. Two parts of a Ready depend on nothing this Ready writes, and
/// may be carried out before its fsync, so that the fsync overlaps with the network:
/// [`Ready::take_unpersisted_sends`] and [`Ready::take_durable_committed`] split them off.
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
    /// Send only after the above is durable (fsynced), but for those that
    /// [`Ready::take_unpersisted_sends`] splits off.
    pub messages: Vec<Message>,
    /// Apply in order, after persisting the above, but for those that
    /// [`Ready::take_durable_committed`] splits off.
    pub committed_entries: Vec<Entry>,
    /// Confirmed reads: answer each once the state machine has applied its index.
    pub read_states: Vec<ReadState>,
    /// Request ids of reads that will never be confirmed (this node stopped leading).
    pub failed_reads: Vec<u64>,
}

impl Ready {
    /// Removes and returns the messages that may be sent before this Ready is durable: a
    /// leader's AppendEntries, heartbeats and snapshots. They promise nothing about this
    /// node's disk: the leader counts its own new entries towards commitment only after
    /// `advance` (Raft thesis §10.2.1), and the term they carry was made durable before the
    /// votes that made it leader were asked for. Votes and acknowledgements stay in
    /// `messages`: they promise what is on disk.
    pub fn take_unpersisted_sends(&mut self) -> Vec<Message> {
        let (early, late) = std::mem::take(&mut self.messages)
            .into_iter()
            .partition(|message| {
                matches!(
                    message.body,
                    MessageBody::AppendEntries { .. }
                        | MessageBody::Heartbeat { .. }
                        | MessageBody::InstallSnapshot { .. }
                )
            });
        self.messages = late;
        early
    }

    /// Removes and returns the committed entries that may be applied (and their writes
    /// answered) before this Ready is durable: those below its first new entry, which earlier
    /// Readies made durable here and which a quorum holds. On a leader that is all of them;
    /// on a follower the commit index may cover entries this Ready is still to write. With a
    /// snapshot to install first, none.
    pub fn take_durable_committed(&mut self) -> Vec<Entry> {
        if self.snapshot.is_some() {
            return Vec::new();
        }
        let first_new = self.entries.first().map_or(Index::MAX, |entry| entry.index);
        let durable = self
            .committed_entries
            .partition_point(|entry| entry.index < first_new);
        let waiting = self.committed_entries.split_off(durable);
        std::mem::replace(&mut self.committed_entries, waiting)
    }
}

/// A step of carrying out a Ready, in the order [`Ready::handle`] takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send a leader's replication ([`Ready::take_unpersisted_sends`]).
    SendReplication,
    /// Apply the committed entries that earlier Readies made durable
    /// ([`Ready::take_durable_committed`]) and answer their writes.
    ApplyDurable,
    /// Take the confirmed reads; each is answered once its index is applied.
    ConfirmReads,
    /// Write the snapshot, the entries and the hard state.
    Persist,
    /// Make what was written durable (one fsync for all of it).
    Sync,
    /// Send what promises the synced state: votes and acknowledgements.
    SendAcknowledgements,
    /// Apply the rest of the committed entries and answer their writes.
    ApplyCommitted,
    /// Answer the reads that will never be confirmed.
    FailReads,
    /// Tell the core the Ready is done ([`Raft::advance`]).
    Advance,
}

/// How one shell carries out each step of a Ready. The order of the steps is not the
/// shell's business: [`Ready::handle`] calls them.
pub trait ReadyShell {
    type Error;

    /// Called before each step. A shell that injects faults (the simulator crashes here)
    /// stops the Ready by returning an error; the others need not implement it.
    fn before(&mut self, step: Step) -> Result<(), Self::Error> {
        let _ = step;
        Ok(())
    }

    /// Hands messages to the transport ([`Step::SendReplication`],
    /// [`Step::SendAcknowledgements`]).
    fn send(&mut self, messages: Vec<Message>) -> Result<(), Self::Error>;

    /// Applies committed entries in order and answers what waits for them
    /// ([`Step::ApplyDurable`], [`Step::ApplyCommitted`]).
    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), Self::Error>;

    /// Notes confirmed reads, answering those whose index is applied already.
    fn confirm_reads(&mut self, reads: Vec<ReadState>) -> Result<(), Self::Error>;

    /// Writes a snapshot received from the leader (which replaces the whole log and the
    /// state machine), then entries (replacing the log from their first index on), then
    /// the hard state. It need not be durable before [`ReadyShell::sync`].
    fn persist(
        &mut self,
        snapshot: Option<&Snapshot>,
        entries: &[Entry],
        hard_state: Option<HardState>,
    ) -> Result<(), Self::Error>;

    /// Makes everything persisted so far durable.
    fn sync(&mut self) -> Result<(), Self::Error>;

    /// Answers reads that will never be confirmed.
    fn fail_reads(&mut self, request_ids: Vec<u64>) -> Result<(), Self::Error>;

    /// Calls [`Raft::advance`].
    fn advance(&mut self) -> Result<(), Self::Error>;
}

impl Ready {
    /// Carries out this Ready through `shell`, in the one order that keeps every promise
    /// durable. This is THE durability rule of the node: the driver and the simulator both
    /// run it, and nothing else orders these steps.
    ///
    /// 1. A leader's replication leaves first, so that followers persist in parallel with
    ///    the leader's own fsync (Raft thesis §10.2.1): it promises nothing about this
    ///    node's disk.
    /// 2. Committed entries that earlier Readies made durable are applied, and their writes
    ///    answered, without waiting for this Ready's fsync; then the confirmed reads are
    ///    taken.
    /// 3. The snapshot, entries and hard state are written, then synced once.
    /// 4. Only then do votes and acknowledgements leave: they promise what is on disk.
    /// 5. The remaining committed entries (which may be among those just written) are
    ///    applied, failed reads are answered, and the core is told the Ready is done.
    ///
    /// An error from a step stops the Ready there, without advancing: for the driver that
    /// is fatal, for the simulator a crash.
    pub fn handle<S: ReadyShell>(mut self, shell: &mut S) -> Result<(), S::Error> {
        shell.before(Step::SendReplication)?;
        shell.send(self.take_unpersisted_sends())?;
        shell.before(Step::ApplyDurable)?;
        shell.apply(self.take_durable_committed())?;
        shell.before(Step::ConfirmReads)?;
        shell.confirm_reads(std::mem::take(&mut self.read_states))?;
        shell.before(Step::Persist)?;
        shell.persist(self.snapshot.as_ref(), &self.entries, self.hard_state)?;
        shell.before(Step::Sync)?;
        shell.sync()?;
        shell.before(Step::SendAcknowledgements)?;
        shell.send(self.messages)?;
        shell.before(Step::ApplyCommitted)?;
        shell.apply(self.committed_entries)?;
        shell.before(Step::FailReads)?;
        shell.fail_reads(self.failed_reads)?;
        shell.before(Step::Advance)?;
        shell.advance()
    }
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
            hard_state: (hard_state != self.ready_tracker.hard_state)
                .then_some(hard_state)
                .map(|hard_state| self.as_persisted(hard_state)),
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

    /// The hard state as the shell is asked to persist it: whole, but for the `forget-vote`
    /// bug, which leaves the vote out (a restarted node then votes again in its term).
    fn as_persisted(&self, hard_state: HardState) -> HardState {
        if self.config.bugs.forget_vote {
            HardState {
                vote: None,
                ..hard_state
            }
        } else {
            hard_state
        }
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
    use crate::raft::testing::{cycle, elect, entry, message, plain_config, recovered};

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
    fn only_replication_may_be_sent_before_the_ready_is_durable() {
        let append = MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![],
            leader_commit: 0,
            read_round: 0,
        };
        let heartbeat = MessageBody::Heartbeat {
            leader_commit: 0,
            read_round: 0,
        };
        let ack = MessageBody::AppendEntriesResponse {
            success: true,
            match_index: 3,
            conflict_index: 0,
            conflict_term: None,
            read_round: 0,
        };
        let vote = MessageBody::RequestVoteResponse { granted: true };
        let mut ready = Ready {
            messages: [append, ack, heartbeat, vote]
                .into_iter()
                .map(|body| message(1, 2, 1, body))
                .collect(),
            ..Ready::default()
        };
        let early = ready.take_unpersisted_sends();
        let kinds = |messages: &[Message]| -> Vec<&'static str> {
            messages
                .iter()
                .map(|message| match message.body {
                    MessageBody::AppendEntries { .. } => "append",
                    MessageBody::Heartbeat { .. } => "heartbeat",
                    MessageBody::AppendEntriesResponse { .. } => "ack",
                    MessageBody::RequestVoteResponse { .. } => "vote",
                    _ => "other",
                })
                .collect()
        };
        assert_eq!(kinds(&early), ["append", "heartbeat"]);
        assert_eq!(
            kinds(&ready.messages),
            ["ack", "vote"],
            "acknowledgements and votes promise what is on disk"
        );
    }

    #[test]
    fn only_entries_below_the_ready_s_own_writes_may_be_applied_before_it_is_durable() {
        let mut ready = Ready {
            entries: vec![entry(5, 2), entry(6, 2)],
            committed_entries: (3..=6).map(|index| entry(index, 2)).collect(),
            ..Ready::default()
        };
        let durable = ready.take_durable_committed();
        let indexes = |entries: &[Entry]| entries.iter().map(|e| e.index).collect::<Vec<_>>();
        assert_eq!(indexes(&durable), [3, 4]);
        assert_eq!(indexes(&ready.committed_entries), [5, 6]);

        let mut leader = Ready {
            committed_entries: vec![entry(7, 2)],
            ..Ready::default()
        };
        assert_eq!(indexes(&leader.take_durable_committed()), [7]);

        let mut from_snapshot = Ready {
            snapshot: Some(Snapshot::default()),
            committed_entries: vec![entry(8, 2)],
            ..Ready::default()
        };
        assert!(
            from_snapshot.take_durable_committed().is_empty(),
            "the snapshot replaces the state first"
        );
        assert_eq!(from_snapshot.committed_entries.len(), 1);
    }

    /// Records the steps it is asked to carry out, and can fail one.
    #[derive(Default)]
    struct Recorder {
        log: Vec<String>,
        fail_before: Option<Step>,
    }

    impl ReadyShell for Recorder {
        type Error = Step;

        fn before(&mut self, step: Step) -> Result<(), Step> {
            match self.fail_before {
                Some(failing) if failing == step => Err(step),
                _ => Ok(()),
            }
        }

        fn send(&mut self, messages: Vec<Message>) -> Result<(), Step> {
            let tos: Vec<NodeId> = messages.iter().map(|message| message.to).collect();
            self.log.push(format!("send to {tos:?}"));
            Ok(())
        }

        fn apply(&mut self, entries: Vec<Entry>) -> Result<(), Step> {
            let indexes: Vec<Index> = entries.iter().map(|entry| entry.index).collect();
            self.log.push(format!("apply {indexes:?}"));
            Ok(())
        }

        fn confirm_reads(&mut self, reads: Vec<ReadState>) -> Result<(), Step> {
            self.log.push(format!("confirm {} reads", reads.len()));
            Ok(())
        }

        fn persist(
            &mut self,
            snapshot: Option<&Snapshot>,
            entries: &[Entry],
            hard_state: Option<HardState>,
        ) -> Result<(), Step> {
            self.log.push(format!(
                "persist snapshot {} entries {} hard state {}",
                snapshot.is_some(),
                entries.len(),
                hard_state.is_some()
            ));
            Ok(())
        }

        fn sync(&mut self) -> Result<(), Step> {
            self.log.push("sync".to_string());
            Ok(())
        }

        fn fail_reads(&mut self, request_ids: Vec<u64>) -> Result<(), Step> {
            self.log.push(format!("fail reads {request_ids:?}"));
            Ok(())
        }

        fn advance(&mut self) -> Result<(), Step> {
            self.log.push("advance".to_string());
            Ok(())
        }
    }

    #[test]
    fn handle_sends_promises_only_after_the_sync_and_applies_durable_entries_before_it() {
        let append = MessageBody::AppendEntries {
            prev_log_index: 4,
            prev_log_term: 2,
            entries: vec![],
            leader_commit: 4,
            read_round: 0,
        };
        let vote = MessageBody::RequestVoteResponse { granted: true };
        let ready = Ready {
            hard_state: Some(HardState::default()),
            entries: vec![entry(5, 2), entry(6, 2)],
            messages: vec![message(1, 2, 2, append), message(1, 3, 2, vote)],
            committed_entries: (3..=6).map(|index| entry(index, 2)).collect(),
            read_states: vec![ReadState {
                request_id: 7,
                index: 4,
            }],
            failed_reads: vec![8],
            ..Ready::default()
        };
        let mut shell = Recorder::default();
        ready.clone().handle(&mut shell).unwrap();
        assert_eq!(
            shell.log,
            [
                "send to [2]",
                "apply [3, 4]",
                "confirm 1 reads",
                "persist snapshot false entries 2 hard state true",
                "sync",
                "send to [3]",
                "apply [5, 6]",
                "fail reads [8]",
                "advance",
            ]
        );

        let mut failing = Recorder {
            fail_before: Some(Step::Sync),
            ..Recorder::default()
        };
        assert_eq!(ready.handle(&mut failing), Err(Step::Sync));
        assert_eq!(
            failing.log.last().map(String::as_str),
            Some("persist snapshot false entries 2 hard state true"),
            "a failed step stops the Ready: nothing is promised, nothing advanced"
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
