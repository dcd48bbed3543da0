//! The Raft node: its state, the term rules every message passes first, role changes, and
//! the public API. Election, replication and reads add their own `impl Raft` blocks in
//! `election.rs`, `leader.rs`, `follower.rs` and `ready.rs`.

use std::fmt;

use bytes::Bytes;

use super::election::{ElectionTimer, VoteTally};
use super::follower::Append;
use super::log::RaftLog;
use super::progress::Progress;
use super::read_index::ReadQueue;
use super::ready::ReadyTracker;
use super::transfer::LeaderTransfer;
use super::{
    Config, Entry, HardState, Index, Membership, Message, MessageBody, NodeId, NotLeader, Payload,
    ProposeError, RaftError, ReadState, Snapshot, SnapshotMeta, Term,
};

/// The part a node plays in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Follower,
    /// Asking for pre-votes, without having incremented its term.
    PreCandidate,
    Candidate,
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        })
    }
}

/// A node's state at a glance, for metrics and debugging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub vote: Option<NodeId>,
    pub commit: Index,
    pub applied: Index,
    pub last_index: Index,
    pub snapshot_index: Index,
    /// Campaigns this node started (each election timeout that fired, pre-vote or not, and
    /// each TimeoutNow obeyed).
    pub elections: u64,
    /// While leading: the node leadership is being handed to, if a transfer is in flight.
    pub transfer_target: Option<NodeId>,
    /// Reads this node served under a lease, without a round, since it started.
    pub reads_under_lease: u64,
}

/// One member of a Raft cluster, as a deterministic state machine: no I/O, no clock, no
/// threads. Inputs are ticks, messages, proposals and reads; outputs come from `ready()`.
#[derive(Debug)]
pub struct Raft {
    pub(super) config: Config,
    pub(super) term: Term,
    pub(super) vote: Option<NodeId>,
    pub(super) role: Role,
    pub(super) leader: Option<NodeId>,
    pub(super) log: RaftLog,
    /// One per other member (voters and learners) of the configuration in force, in id
    /// order; meaningful while leading.
    pub(super) peers: Vec<Progress>,
    pub(super) votes: VoteTally,
    pub(super) reads: ReadQueue,
    pub(super) election_timer: ElectionTimer,
    pub(super) heartbeat_elapsed: u32,
    /// While leading: the leadership transfer in flight, if any.
    pub(super) transfer: Option<LeaderTransfer>,
    /// This term's campaign was started by a TimeoutNow: its vote requests say so, also
    /// when they are sent again.
    pub(super) campaign_transfer: bool,
    /// Ticks since this node started.
    pub(super) now: u64,
    /// While leading under [`ReadMode::Lease`](super::ReadMode): reads are served without a
    /// round until this tick.
    pub(super) lease_until: u64,
    /// This leader started a leadership transfer in this term: a TimeoutNow it sent may
    /// make its target campaign at any later time, past the followers' refusals that a
    /// lease counts on, so it serves no more reads under a lease in this term.
    pub(super) lease_forfeited: bool,
    /// The tick this node last heard from a leader (`None`: not since it started). Under
    /// leases it refuses votes for an election timeout after that, whatever happened since.
    pub(super) heard_from_leader_at: Option<u64>,
    pub(super) reads_under_lease: u64,
    pub(super) elections: u64,
    pub(super) messages: Vec<Message>,
    pub(super) read_states: Vec<ReadState>,
    pub(super) failed_reads: Vec<u64>,
    /// A snapshot received from the leader, for the next Ready.
    pub(super) pending_snapshot: Option<Snapshot>,
    pub(super) ready_tracker: ReadyTracker,
}

impl Raft {
    /// Builds a node from what storage recovered (a fresh node: `HardState::default()`,
    /// `None`, no entries). It starts as a follower with no known leader.
    pub fn new(
        config: Config,
        hard_state: HardState,
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
    ) -> Result<Raft, RaftError> {
        config.validate()?;
        let initial = Membership::of_voters(config.voters.iter().copied());
        let log = RaftLog::recover(snapshot, entries, hard_state.commit, initial)?;
        if hard_state.term < log.last_term() {
            return Err(RaftError::TermBehindLog {
                term: hard_state.term,
                log_term: log.last_term(),
            });
        }
        let mut raft = Raft {
            election_timer: ElectionTimer::new(config.election_ticks.clone(), config.seed),
            term: hard_state.term,
            vote: hard_state.vote,
            role: Role::Follower,
            leader: None,
            log,
            votes: VoteTally::default(),
            reads: ReadQueue::default(),
            heartbeat_elapsed: 0,
            transfer: None,
            campaign_transfer: false,
            now: 0,
            lease_until: 0,
            lease_forfeited: false,
            heard_from_leader_at: None,
            reads_under_lease: 0,
            elections: 0,
            messages: Vec::new(),
            read_states: Vec::new(),
            failed_reads: Vec::new(),
            pending_snapshot: None,
            ready_tracker: ReadyTracker::new(hard_state),
            peers: Vec::new(),
            config,
        };
        raft.sync_peers();
        Ok(raft)
    }

    /// Advances logical time by one tick: heartbeats, election timeouts, check-quorum.
    pub fn tick(&mut self) {
        self.now += 1;
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => self.tick_election(),
        }
    }

    /// Handles a message from a peer. Messages from a lower term and messages for another
    /// node are ignored (some get an answer that tells the sender about the newer term);
    /// nothing a peer sends makes this panic. Senders outside this node's configuration are
    /// heard like any other: a node's configuration may be behind the cluster's (a node added
    /// back with an old log, or joining with none), and a leader or a candidate of the newer
    /// one must reach it. Votes count only by the candidate's configuration, and a removed
    /// node that does not know it is kept from disturbing the cluster by pre-vote and leader
    /// stickiness (thesis §4.2.3), not by being ignored.
    pub fn step(&mut self, msg: Message) {
        if msg.to != self.config.id || msg.from == self.config.id {
            return;
        }
        if msg.term > self.term && !self.accept_higher_term(&msg) {
            return;
        }
        if msg.term < self.term {
            self.answer_lower_term(&msg);
            return;
        }
        self.dispatch(msg);
    }

    /// Raft §5.1: a higher term in any message makes this node a follower in that term,
    /// except for (pre-)vote traffic that must not disturb a live leader. Returns whether
    /// the message should still be handled.
    fn accept_higher_term(&mut self, msg: &Message) -> bool {
        match msg.body {
            // Leader stickiness: a live leader is not deposed by a higher term (etcd ignores
            // the request too), unless that leader handed over leadership itself. A pre-vote
            // is refused in `handle_vote_request` instead, which lets the pre-candidate count
            // the refusal.
            MessageBody::RequestVote {
                transfer: false, ..
            } if self.in_leader_lease() => false,
            // A pre-vote asks about a term the sender has not entered; a granted pre-vote
            // carries the term this node would campaign in.
            MessageBody::PreVote { .. } | MessageBody::PreVoteResponse { granted: true } => true,
            // Only the leader of a term sends these in it.
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. }
            | MessageBody::TimeoutNow => {
                self.become_follower(msg.term, Some(msg.from));
                true
            }
            _ => {
                self.become_follower(msg.term, None);
                true
            }
        }
    }

    /// A message from an older term is stale, but its sender may be a leader cut off from
    /// the newer term (with leader stickiness or pre-vote it would not learn it from vote
    /// requests), or a (pre-)candidate waiting for answers: reply false with our term
    /// (Figure 2), which makes the sender a follower in it. Answers are not answered.
    fn answer_lower_term(&mut self, msg: &Message) {
        match msg.body {
            MessageBody::AppendEntries { .. } | MessageBody::Heartbeat { .. } => {
                self.send(
                    msg.from,
                    MessageBody::AppendEntriesResponse {
                        success: false,
                        match_index: 0,
                        conflict_index: 0,
                        conflict_term: None,
                        read_round: 0,
                    },
                );
            }
            MessageBody::PreVote { .. } => {
                self.send(msg.from, MessageBody::PreVoteResponse { granted: false })
            }
            MessageBody::RequestVote { .. } => self.send(
                msg.from,
                MessageBody::RequestVoteResponse { granted: false },
            ),
            _ => {}
        }
    }

    /// Handles a message of the current term (or a pre-vote for a later one).
    fn dispatch(&mut self, msg: Message) {
        let from = msg.from;
        match msg.body {
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
            }
            | MessageBody::RequestVote {
                last_log_index,
                last_log_term,
                ..
            } => {
                self.handle_vote_request(&msg, last_log_index, last_log_term);
            }
            MessageBody::PreVoteResponse { granted }
            | MessageBody::RequestVoteResponse { granted } => {
                self.handle_vote_response(&msg, granted);
            }
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                read_round,
            } => {
                if self.follow(from) {
                    let append = Append {
                        prev_log_index,
                        prev_log_term,
                        entries,
                        leader_commit,
                        read_round,
                    };
                    self.handle_append_entries(from, append);
                }
            }
            MessageBody::Heartbeat {
                leader_commit,
                read_round,
            } => {
                if self.follow(from) {
                    self.handle_heartbeat(from, leader_commit, read_round);
                }
            }
            MessageBody::InstallSnapshot { snapshot } => {
                if self.follow(from) {
                    self.handle_install_snapshot(from, snapshot);
                }
            }
            MessageBody::AppendEntriesResponse {
                success,
                match_index,
                conflict_index,
                conflict_term,
                read_round,
            } => {
                if self.role == Role::Leader && success {
                    self.handle_accepted(from, match_index);
                } else if self.role == Role::Leader {
                    self.handle_rejected(from, conflict_index, conflict_term);
                }
                if self.role == Role::Leader {
                    self.count_read_round(from, read_round);
                }
            }
            MessageBody::HeartbeatResponse { read_round } => {
                if self.role == Role::Leader {
                    self.handle_heartbeat_response(from, read_round);
                }
            }
            MessageBody::TimeoutNow => {
                if self.follow(from) {
                    self.handle_timeout_now();
                }
            }
        }
    }

    /// `from` leads the current term: a (pre-)candidate gives up, and the election timer
    /// starts over. False if this node itself leads the term (a peer is confused).
    fn follow(&mut self, from: NodeId) -> bool {
        match self.role {
            Role::Leader => return false,
            Role::PreCandidate | Role::Candidate => self.become_follower(self.term, Some(from)),
            Role::Follower => self.leader = Some(from),
        }
        self.election_timer.reset_elapsed();
        self.heard_from_leader_at = Some(self.now);
        true
    }

    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if self.role == Role::Leader {
            self.reads.fail_all(&mut self.failed_reads);
        }
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.transfer = None;
        self.lease_until = 0;
        self.election_timer.restart();
    }

    /// Won the election: take over replication, starting with a no-op entry of the new
    /// term, through which the entries of earlier terms get committed (Raft §5.4.2).
    pub(super) fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        self.transfer = None;
        self.lease_until = 0;
        self.lease_forfeited = false;
        self.election_timer.restart();
        self.heartbeat_elapsed = 0;
        self.sync_peers();
        let last_index = self.log.last_index();
        for progress in &mut self.peers {
            progress.reset(last_index);
        }
        self.log.append(Entry {
            term: self.term,
            index: last_index + 1,
            payload: Payload::Noop,
        });
        // A single-node cluster commits on its own once the entry is persisted.
        self.maybe_commit();
    }

    /// Appends a command to the leader's log; it goes to the followers with the next Ready.
    /// Returns where it will be if it commits: the shell answers the client once the entry
    /// at that index, with that term, is applied. Refused, with nothing appended, on a node
    /// that does not lead and while leadership is being transferred.
    pub fn propose(&mut self, command: Bytes) -> Result<(Index, Term), ProposeError> {
        self.takes_proposals()?;
        let index = self.log.last_index() + 1;
        self.log.append(Entry {
            term: self.term,
            index,
            payload: Payload::Command(command),
        });
        Ok((index, self.term))
    }

    /// Whether this node takes new entries: it leads, and is not handing leadership over.
    pub(super) fn takes_proposals(&self) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader(NotLeader {
                leader: self.leader,
            }));
        }
        if let Some(transfer) = &self.transfer {
            return Err(ProposeError::TransferInProgress {
                target: transfer.target,
            });
        }
        Ok(())
    }

    /// Starts a linearizable read; it comes out of a later Ready in `read_states` (serve it
    /// once the state machine has applied its index) or in `failed_reads`.
    pub fn read_index(&mut self, request_id: u64) -> Result<(), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            });
        }
        let commit = self.log.committed();
        if self.serves_reads_under_lease() {
            self.reads_under_lease += 1;
            self.read_states.push(ReadState {
                request_id,
                index: commit,
            });
            return Ok(());
        }
        let committed_in_term = self.log.term(commit) == Some(self.term);
        self.reads
            .push(request_id, committed_in_term.then_some(commit));
        Ok(())
    }

    /// A snapshot of the state machine `data` taken at `meta.index`, with the configuration
    /// in force there: build every snapshot to persist or compact with through this.
    pub fn snapshot_of(&self, meta: SnapshotMeta, data: Bytes) -> Snapshot {
        Snapshot {
            meta,
            membership: Some(self.membership_at(meta.index).clone()),
            data,
        }
    }

    /// The shell took a state-machine snapshot at an applied index: drop the log up to it.
    pub fn compact(&mut self, snapshot: Snapshot) -> Result<(), RaftError> {
        self.log.compact(snapshot)
    }

    pub fn status(&self) -> Status {
        Status {
            id: self.config.id,
            role: self.role,
            term: self.term,
            leader: self.leader,
            vote: self.vote,
            commit: self.log.committed(),
            applied: self.log.applied(),
            last_index: self.log.last_index(),
            snapshot_index: self.log.snapshot_index(),
            elections: self.elections,
            transfer_target: self.transfer.as_ref().map(|transfer| transfer.target),
            reads_under_lease: self.reads_under_lease,
        }
    }

    #[cfg(test)]
    pub(super) fn peer_ids(&self) -> Vec<NodeId> {
        self.peers.iter().map(|progress| progress.id).collect()
    }

    pub(super) fn progress_mut(&mut self, peer: NodeId) -> Option<&mut Progress> {
        self.peers.iter_mut().find(|progress| progress.id == peer)
    }

    /// Queues a message in the current term.
    pub(super) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_in_term(to, self.term, body);
    }

    pub(super) fn send_in_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        self.messages.push(Message {
            from: self.config.id,
            to,
            term,
            body,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::testing::{Cluster, drain, elect, entries, message, plain_config, recovered};

    #[test]
    fn a_higher_term_in_any_message_makes_the_node_a_follower_of_that_term() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1]);
        elect(&mut raft);
        raft.step(message(
            3,
            1,
            7,
            MessageBody::HeartbeatResponse { read_round: 0 },
        ));
        assert_eq!(
            (raft.role, raft.term, raft.vote, raft.leader),
            (Role::Follower, 7, None, None)
        );
        raft.step(message(
            2,
            1,
            8,
            MessageBody::Heartbeat {
                leader_commit: 0,
                read_round: 0,
            },
        ));
        assert_eq!((raft.term, raft.leader), (8, Some(2)));
    }

    #[test]
    fn a_message_from_a_lower_term_is_answered_with_the_current_term_and_changes_nothing() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 5, &[1]);
        raft.step(message(
            2,
            1,
            4,
            MessageBody::Heartbeat {
                leader_commit: 1,
                read_round: 0,
            },
        ));
        raft.step(message(
            3,
            1,
            4,
            MessageBody::RequestVote {
                last_log_index: 9,
                last_log_term: 4,
                transfer: false,
            },
        ));
        raft.step(message(
            3,
            1,
            4,
            MessageBody::PreVote {
                last_log_index: 9,
                last_log_term: 4,
            },
        ));
        let answers: Vec<_> = drain(&mut raft)
            .into_iter()
            .map(|msg| (msg.to, msg.term, msg.body))
            .collect();
        let refused = MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 0,
            conflict_index: 0,
            conflict_term: None,
            read_round: 0,
        };
        assert_eq!(
            answers,
            [
                (2, 5, refused),
                (3, 5, MessageBody::RequestVoteResponse { granted: false }),
                (3, 5, MessageBody::PreVoteResponse { granted: false }),
            ],
            "each stale sender learns the term"
        );
        assert_eq!(
            (raft.term, raft.vote, raft.leader, raft.log.committed()),
            (5, None, None, 0)
        );
    }

    #[test]
    fn messages_for_other_nodes_are_ignored_and_strangers_are_heard() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1]);
        let vote = MessageBody::RequestVote {
            last_log_index: 1,
            last_log_term: 1,
            transfer: false,
        };
        raft.step(message(2, 3, 2, vote.clone()));
        raft.step(message(1, 1, 2, vote.clone()));
        assert_eq!(raft.term, 1);
        assert!(!raft.has_ready());
        // A candidate or a leader of a configuration this node has not learned yet.
        raft.step(message(9, 1, 2, vote));
        assert_eq!((raft.term, raft.vote), (2, Some(9)));
        let heartbeat = MessageBody::Heartbeat {
            leader_commit: 0,
            read_round: 0,
        };
        raft.step(message(9, 1, 2, heartbeat));
        assert_eq!(raft.leader, Some(9));
    }

    #[test]
    fn proposals_and_reads_on_a_follower_name_the_leader() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1]);
        raft.step(message(
            2,
            1,
            1,
            MessageBody::Heartbeat {
                leader_commit: 0,
                read_round: 0,
            },
        ));
        let not_leader = NotLeader { leader: Some(2) };
        assert_eq!(
            raft.propose(Bytes::from_static(b"x")),
            Err(ProposeError::NotLeader(not_leader))
        );
        assert_eq!(raft.read_index(1), Err(not_leader));
    }

    #[test]
    fn new_rejects_recovered_state_that_cannot_be_right() {
        let config = plain_config(1, &[1, 2, 3]);
        let behind = HardState {
            term: 1,
            vote: None,
            commit: 0,
        };
        let result = Raft::new(config.clone(), behind, None, entries(&[1, 2]));
        assert_eq!(
            result.unwrap_err(),
            RaftError::TermBehindLog {
                term: 1,
                log_term: 2
            }
        );
        let bad_config = Config {
            heartbeat_ticks: 0,
            ..config
        };
        let result = Raft::new(bad_config, HardState::default(), None, Vec::new());
        assert_eq!(result.unwrap_err(), RaftError::ZeroHeartbeat);
    }

    #[test]
    fn a_restarted_node_reapplies_committed_entries_from_its_log() {
        let hard_state = HardState {
            term: 2,
            vote: Some(1),
            commit: 2,
        };
        let mut raft = Raft::new(
            plain_config(1, &[1, 2, 3]),
            hard_state,
            None,
            entries(&[1, 2, 2]),
        )
        .unwrap();
        let ready = raft.ready();
        assert_eq!(
            (ready.hard_state, ready.soft_state),
            (None, None),
            "nothing new to persist"
        );
        let applied: Vec<_> = ready
            .committed_entries
            .iter()
            .map(|entry| entry.index)
            .collect();
        assert_eq!(applied, [1, 2]);
        assert!(ready.entries.is_empty());
    }

    #[test]
    fn roles_display_in_lowercase() {
        let names = [
            Role::Follower,
            Role::PreCandidate,
            Role::Candidate,
            Role::Leader,
        ]
        .map(|role| role.to_string());
        assert_eq!(names, ["follower", "pre-candidate", "candidate", "leader"]);
    }

    #[test]
    fn a_partitioned_leader_is_replaced_and_catches_up_after_healing() {
        let mut cluster = Cluster::new(3, |_| {});
        cluster.elect(1);
        cluster
            .node(1)
            .propose(Bytes::from_static(b"before"))
            .unwrap();
        cluster.settle();
        cluster.isolate(1);
        cluster
            .node(1)
            .propose(Bytes::from_static(b"lost"))
            .unwrap();
        cluster.tick_all(60);
        let leaders = cluster.leaders();
        assert!(leaders == [2] || leaders == [3], "leaders: {leaders:?}");
        let new_leader = leaders[0];
        let (index, term) = cluster
            .node(new_leader)
            .propose(Bytes::from_static(b"after"))
            .unwrap();
        cluster.settle();
        cluster.heal();
        cluster.tick_all(40);
        assert_eq!(cluster.leaders(), [new_leader]);
        for id in 1..=3 {
            let raft = cluster.node(id);
            assert!(raft.log.committed() >= index, "node {id} did not catch up");
            assert_eq!(raft.log.term(index), Some(term));
        }
    }
}
