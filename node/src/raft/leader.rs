//! The leader's side of replication: batched, pipelined AppendEntries per follower,
//! snapshots for followers that fell behind the compacted log, heartbeats, check-quorum,
//! commitment by counting replicas, and confirming ReadIndex rounds by the answers to
//! heartbeats and appends (which also renew the lease under [`ReadMode::Lease`](super::ReadMode)).

use super::progress::Progress;
use super::{Index, MessageBody, NodeId, Raft, Role, Term};

impl Raft {
    /// Heartbeats every `heartbeat_ticks`; with check-quorum, steps down after an election
    /// timeout in which a quorum was silent. A leadership transfer runs out of time here.
    pub(super) fn tick_leader(&mut self) {
        self.tick_transfer();
        self.heartbeat_elapsed += 1;
        if self.election_timer.tick_leader() {
            if self.config.check_quorum && !self.quorum_recently_active() {
                self.become_follower(self.term, None);
                return;
            }
            for progress in &mut self.peers {
                progress.recent_active = false;
            }
        }
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            // Only the periodic rounds measure stalls: read rounds can come much faster.
            for progress in &mut self.peers {
                progress.start_heartbeat_round();
            }
            // Under leases every periodic heartbeat is a round of its own, so that its
            // answers renew the lease from the tick it was sent.
            if self.config.lease_ticks().is_some() {
                self.reads.start_round(self.now);
            }
            self.broadcast_heartbeat();
        }
    }

    fn quorum_recently_active(&self) -> bool {
        let own = self.config.id;
        self.log.membership().has_quorum(|id| {
            id == own
                || self
                    .peers
                    .iter()
                    .any(|progress| progress.id == id && progress.recent_active)
        })
    }

    /// What each voter has reached by `value` of its progress; the leader itself by `own`.
    fn quorum_value(&self, own: u64, value: impl Fn(&Progress) -> u64) -> u64 {
        let own_id = self.config.id;
        self.log.membership().quorum_value(|id| {
            if id == own_id {
                return own;
            }
            self.peers
                .iter()
                .find(|progress| progress.id == id)
                .map_or(0, &value)
        })
    }

    /// Sends every follower a heartbeat with the latest ReadIndex round, so that its answer
    /// confirms that round too (and retries one whose heartbeats were lost).
    fn broadcast_heartbeat(&mut self) {
        let read_round = self.reads.round();
        let commit = self.log.committed();
        let heartbeats: Vec<_> = self
            .peers
            .iter()
            .map(|progress| (progress.id, progress.matched.min(commit)))
            .collect();
        for (to, leader_commit) in heartbeats {
            self.send(
                to,
                MessageBody::Heartbeat {
                    leader_commit,
                    read_round,
                },
            );
        }
    }

    /// Whether `send_replication` would send anything.
    pub(super) fn has_replication_to_send(&self) -> bool {
        let last_index = self.log.last_index();
        self.reads.has_unsent()
            || self
                .peers
                .iter()
                .any(|progress| progress.has_append_to_send(last_index))
    }

    /// Sends what accumulated since the last Ready: one heartbeat round for all new reads,
    /// and to each follower the new entries in as few AppendEntries as the byte limit and
    /// the inflight window allow.
    pub(super) fn send_replication(&mut self) {
        if self.reads.has_unsent() {
            self.reads.start_round(self.now);
            self.broadcast_heartbeat();
            self.confirm_reads();
        }
        for peer in 0..self.peers.len() {
            self.send_appends(peer);
        }
    }

    fn send_appends(&mut self, peer: usize) {
        let last_index = self.log.last_index();
        while self.peers[peer].has_append_to_send(last_index) {
            let (to, next) = (self.peers[peer].id, self.peers[peer].next);
            let prev_log_index = next - 1;
            let Some(prev_log_term) = self.log.term(prev_log_index) else {
                self.send_snapshot(peer);
                return;
            };
            let entries = self
                .log
                .entries_from(next, self.config.max_bytes_per_message);
            let last_sent = entries.last().map(|entry| entry.index);
            let leader_commit = self.log.committed();
            // Under leases the first appends of a tick start a round of their own, so that
            // their answers renew the lease from when they were sent: under load that is
            // milliseconds ago, not up to a heartbeat interval.
            if self.config.lease_ticks().is_some() && self.reads.latest_sent_at() != Some(self.now)
            {
                self.reads.start_round(self.now);
            }
            let read_round = self.reads.round();
            self.send(
                to,
                MessageBody::AppendEntries {
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                    read_round,
                },
            );
            self.peers[peer].sent_append(last_sent);
            if last_sent.is_none() {
                return;
            }
        }
    }

    /// The entries the follower needs were compacted: send the snapshot instead.
    fn send_snapshot(&mut self, peer: usize) {
        let snapshot = self.log.snapshot().clone();
        let to = self.peers[peer].id;
        self.peers[peer].become_snapshot(snapshot.meta.index, self.now);
        self.send(to, MessageBody::InstallSnapshot { snapshot });
    }

    /// The follower's log matches ours through `match_index` (an answer to AppendEntries
    /// or InstallSnapshot).
    pub(super) fn handle_accepted(&mut self, from: NodeId, match_index: Index) {
        let (first_index, last_index) = (self.log.first_index(), self.log.last_index());
        if match_index > last_index {
            return;
        }
        let Some(progress) = self.progress_mut(from) else {
            return;
        };
        progress.recent_active = true;
        if progress.accepted(match_index, first_index) {
            self.maybe_commit();
        }
        self.maybe_send_timeout_now(from);
    }

    /// The follower failed the consistency check; probe again where its hint points.
    pub(super) fn handle_rejected(
        &mut self,
        from: NodeId,
        conflict_index: Index,
        conflict_term: Option<Term>,
    ) {
        let next_hint = self.next_after_rejection(conflict_index, conflict_term);
        let Some(progress) = self.progress_mut(from) else {
            return;
        };
        progress.recent_active = true;
        // A rejection claiming the follower's log ends at or below `matched` predates what
        // the follower has since acknowledged: ignore it.
        if conflict_term.is_some() || conflict_index > progress.matched {
            progress.rejected(next_hint);
        }
    }

    /// Where to probe next after a rejection with the follower's hint (thesis §5.3): after
    /// our last entry of the follower's conflicting term if we have that term, else at the
    /// first index of that term in the follower's log (or its end).
    fn next_after_rejection(&self, conflict_index: Index, conflict_term: Option<Term>) -> Index {
        conflict_term
            .and_then(|term| self.log.last_index_of_term(term))
            .map_or(conflict_index, |last| last + 1)
            .min(self.log.last_index() + 1)
    }

    /// A follower answered a heartbeat: resume sending if it lags and its appends seem
    /// lost, and count its confirmation of the ReadIndex round.
    pub(super) fn handle_heartbeat_response(&mut self, from: NodeId, read_round: u64) {
        let (now, last_index) = (self.now, self.log.last_index());
        let snapshot_timeout = u64::from(self.election_timer.minimum());
        let Some(progress) = self.progress_mut(from) else {
            return;
        };
        progress.heartbeat_answered(now, snapshot_timeout, last_index);
        self.count_read_round(from, read_round);
        self.maybe_send_timeout_now(from);
    }

    /// `from` answered a heartbeat or an append that carried `read_round`: it followed this
    /// leader after that round was sent.
    pub(super) fn count_read_round(&mut self, from: NodeId, read_round: u64) {
        let Some(progress) = self.progress_mut(from) else {
            return;
        };
        if read_round > progress.read_round {
            progress.read_round = read_round;
            self.confirm_reads();
        }
    }

    /// Releases the reads of every round a quorum (the leader included) has confirmed.
    fn confirm_reads(&mut self) {
        let confirmed = self.quorum_value(self.reads.round(), |progress| progress.read_round);
        let sent_at = self.reads.confirm(confirmed, &mut self.read_states);
        if let (Some(sent_at), Some(lease)) = (sent_at, self.config.lease_ticks())
            && !self.lease_forfeited
        {
            self.lease_until = self.lease_until.max(sent_at + u64::from(lease));
        }
    }

    /// Whether this leader may serve a read without a round: it holds a lease (no other
    /// leader can have been elected yet) and has committed an entry of its term (so its
    /// commit index covers every write acknowledged before).
    pub(super) fn serves_reads_under_lease(&self) -> bool {
        self.role == Role::Leader
            && !self.lease_forfeited
            && self.now < self.lease_until
            && self.log.term(self.log.committed()) == Some(self.term)
    }

    /// Commits the highest index a quorum holds (of each half of a joint configuration), if
    /// it is of the current term (Raft §5.4.2: entries of earlier terms are committed only
    /// indirectly, as in Figure 8). The leader counts its own entries once they are
    /// persisted, and only where it is a voter.
    pub(super) fn maybe_commit(&mut self) {
        let candidate = self.quorum_value(self.log.persisted(), |progress| progress.matched);
        // The `commit-old-term` bug counts replicas of any term's entry.
        let own_term =
            self.config.bugs.commit_old_term || self.log.term(candidate) == Some(self.term);
        if candidate > self.log.committed() && own_term {
            self.log.commit_to(candidate);
            self.reads.release_held(candidate);
            self.membership_committed();
        }
    }

    /// The transport failed to deliver to `peer`: probe it rather than pipeline.
    pub fn report_unreachable(&mut self, peer: NodeId) {
        if self.role == Role::Leader
            && let Some(progress) = self.progress_mut(peer)
        {
            progress.unreachable();
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::bugs::{Bug, Bugs};
    use crate::raft::testing::{
        Cluster, ack, cycle, drain, elect, message, plain_config, recovered,
    };
    use crate::raft::{Config, Message, Raft, ReadState, Snapshot, SnapshotMeta};

    fn command(text: &'static str) -> Bytes {
        Bytes::from_static(text.as_bytes())
    }

    fn heartbeat_ack(from: NodeId, term: Term, read_round: u64) -> Message {
        message(from, 1, term, MessageBody::HeartbeatResponse { read_round })
    }

    fn appends_to(messages: &[Message], to: NodeId) -> Vec<(Index, Vec<Index>)> {
        messages
            .iter()
            .filter(|msg| msg.to == to)
            .filter_map(|msg| match &msg.body {
                MessageBody::AppendEntries {
                    prev_log_index,
                    entries,
                    ..
                } => Some((
                    *prev_log_index,
                    entries.iter().map(|entry| entry.index).collect(),
                )),
                _ => None,
            })
            .collect()
    }

    /// Leader 1 of `voters` whose log has `log_terms` before its no-op, with every follower
    /// already replicating from the end of its log.
    fn leader(voters: &[NodeId], log_terms: &[Term]) -> Raft {
        let mut raft = recovered(
            plain_config(1, voters),
            log_terms.last().copied().unwrap_or(0),
            log_terms,
        );
        elect(&mut raft);
        let (term, last) = (raft.term, raft.log.last_index());
        for peer in raft.peer_ids() {
            raft.step(ack(peer, term, last));
        }
        drain(&mut raft);
        raft
    }

    #[test]
    fn the_leader_commits_only_current_term_entries_by_counting_replicas() {
        // Figure 8: entry 2 of term 2 is on a majority, but committing it by counting could
        // be undone by a leader elected without it; only the term-3 no-op commits it.
        let mut raft = recovered(plain_config(1, &[1, 2, 3, 4, 5]), 2, &[1, 2]);
        elect(&mut raft);
        let term = raft.term;
        assert_eq!((term, raft.log.last_index()), (3, 3));
        raft.step(ack(2, term, 2));
        raft.step(ack(3, term, 2));
        assert_eq!(
            raft.log.committed(),
            0,
            "an old-term entry on a majority is not committed"
        );
        raft.step(ack(2, term, 3));
        assert_eq!(raft.log.committed(), 0, "two of five hold the no-op");
        raft.step(ack(3, term, 3));
        assert_eq!(raft.log.committed(), 3, "the no-op commits entry 2 with it");
    }

    #[test]
    fn the_commit_old_term_bug_commits_an_old_entry_by_counting_replicas() {
        let config = Config {
            bugs: Bugs::from_list(&[Bug::CommitOldTerm]),
            ..plain_config(1, &[1, 2, 3, 4, 5])
        };
        let mut raft = recovered(config, 2, &[1, 2]);
        elect(&mut raft);
        let term = raft.term;
        raft.step(ack(2, term, 2));
        raft.step(ack(3, term, 2));
        assert_eq!(raft.log.committed(), 2, "entry 2 of term 2, by counting");
    }

    #[test]
    fn the_leader_counts_its_own_entries_only_once_persisted() {
        let mut raft = leader(&[1, 2, 3], &[]);
        let (index, term) = raft.propose(command("x")).unwrap();
        raft.step(ack(2, term, index));
        assert_eq!(
            raft.log.committed(),
            index - 1,
            "the leader's own copy is not durable yet"
        );
        let ready = cycle(&mut raft);
        assert_eq!(ready.entries.len(), 1);
        assert_eq!(raft.log.committed(), index);
        assert_eq!(cycle(&mut raft).committed_entries.len(), 1);
    }

    #[test]
    fn proposals_between_two_readies_go_to_each_follower_in_one_append_entries() {
        let mut raft = leader(&[1, 2, 3], &[]);
        for text in ["a", "b", "c", "d"] {
            raft.propose(command(text)).unwrap();
        }
        let messages = raft.ready().messages;
        assert_eq!(appends_to(&messages, 2), [(1, vec![2, 3, 4, 5])]);
        assert_eq!(appends_to(&messages, 3), [(1, vec![2, 3, 4, 5])]);
    }

    #[test]
    fn the_leader_pipelines_up_to_max_inflight_appends_without_waiting() {
        let config = Config {
            max_inflight: 3,
            ..plain_config(1, &[1, 2])
        };
        let mut raft = recovered(config, 0, &[]);
        elect(&mut raft);
        raft.step(ack(2, raft.term, 1));
        let mut sent = Vec::new();
        for round in 0..5 {
            raft.propose(command("x")).unwrap();
            sent.push((round, appends_to(&cycle(&mut raft).messages, 2).len()));
        }
        assert_eq!(
            sent,
            [(0, 1), (1, 1), (2, 1), (3, 0), (4, 0)],
            "a window of three"
        );
        raft.step(ack(2, raft.term, 3));
        assert_eq!(appends_to(&cycle(&mut raft).messages, 2), [(4, vec![5, 6])]);
    }

    #[test]
    fn one_append_entries_carries_at_most_max_bytes_per_message() {
        let config = Config {
            max_bytes_per_message: 2,
            ..plain_config(1, &[1, 2])
        };
        let mut raft = recovered(config, 0, &[]);
        elect(&mut raft);
        raft.step(ack(2, raft.term, 1));
        for text in ["ab", "c", "d", "e"] {
            raft.propose(command(text)).unwrap();
        }
        let batches: Vec<_> = appends_to(&cycle(&mut raft).messages, 2)
            .into_iter()
            .map(|(_, batch)| batch)
            .collect();
        assert_eq!(batches, [vec![2], vec![3, 4], vec![5]]);
    }

    #[test]
    fn a_rejection_with_a_conflict_hint_skips_a_whole_term() {
        let mut raft = recovered(plain_config(1, &[1, 2]), 5, &[1, 1, 4, 4, 5, 5]);
        elect(&mut raft);
        let term = raft.term;
        // The follower has term 3 from index 3 to 9; the leader has no term 3.
        let reject = MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 0,
            conflict_index: 3,
            conflict_term: Some(3),
            read_round: 0,
        };
        raft.step(message(2, 1, term, reject));
        assert_eq!(appends_to(&drain(&mut raft), 2), [(2, vec![3, 4, 5, 6, 7])]);
        // With a term it has, the leader resumes after its own last entry of that term.
        let reject = MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 0,
            conflict_index: 2,
            conflict_term: Some(1),
            read_round: 0,
        };
        raft.step(message(2, 1, term, reject));
        assert_eq!(appends_to(&drain(&mut raft), 2), [(2, vec![3, 4, 5, 6, 7])]);
    }

    #[test]
    fn a_follower_behind_the_compacted_log_gets_the_snapshot() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1, 1, 1]);
        elect(&mut raft);
        let term = raft.term;
        raft.step(ack(2, term, 4));
        drain(&mut raft);
        let snapshot = Snapshot {
            meta: SnapshotMeta { index: 3, term: 1 },
            membership: None,
            data: command("state"),
        };
        raft.compact(snapshot.clone()).unwrap();
        // Follower 3 lost its disk and asks from the start, which is compacted.
        let reject = MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 0,
            conflict_index: 1,
            conflict_term: None,
            read_round: 0,
        };
        raft.step(message(3, 1, term, reject));
        let messages = drain(&mut raft);
        assert_eq!(messages.len(), 1);
        // It carries the configuration in force at its index.
        let snapshot = Snapshot {
            membership: Some(crate::raft::Membership::of_voters([1, 2, 3])),
            ..snapshot
        };
        assert_eq!(messages[0].body, MessageBody::InstallSnapshot { snapshot });
        raft.step(ack(3, term, 3));
        assert_eq!(appends_to(&drain(&mut raft), 3), [(3, vec![4])]);
    }

    /// Ticks the leader through one periodic heartbeat round; returns what it sent.
    fn heartbeat_round(raft: &mut Raft) -> Vec<Message> {
        let mut sent = Vec::new();
        for _ in 0..raft.config.heartbeat_ticks {
            raft.tick();
            sent.extend(drain(raft));
        }
        sent
    }

    #[test]
    fn a_new_leader_sends_append_entries_to_every_follower_at_once_then_heartbeats() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1]);
        while raft.role == Role::Follower {
            raft.tick();
        }
        drain(&mut raft);
        raft.step(message(
            2,
            1,
            2,
            MessageBody::RequestVoteResponse { granted: true },
        ));
        assert_eq!(raft.role, Role::Leader);
        let sent = drain(&mut raft);
        assert_eq!(appends_to(&sent, 2), [(1, vec![2])]);
        assert_eq!(appends_to(&sent, 3), [(1, vec![2])]);
        let mut heartbeats = Vec::new();
        for tick in 1..=16 {
            raft.tick();
            for msg in drain(&mut raft) {
                if matches!(msg.body, MessageBody::Heartbeat { .. }) {
                    heartbeats.push((tick, msg.to));
                }
            }
        }
        assert_eq!(
            heartbeats,
            [(5, 2), (5, 3), (10, 2), (10, 3), (15, 2), (15, 3)],
            "every heartbeat_ticks"
        );
    }

    #[test]
    fn a_lagging_follower_is_sent_entries_again_after_a_round_without_acks() {
        let mut raft = leader(&[1, 2], &[]);
        let term = raft.term;
        raft.propose(command("lost")).unwrap();
        assert_eq!(appends_to(&drain(&mut raft), 2), [(1, vec![2])]);
        // That append was lost; the follower answers heartbeats.
        heartbeat_round(&mut raft);
        raft.step(heartbeat_ack(2, term, 0));
        assert!(
            appends_to(&drain(&mut raft), 2).is_empty(),
            "in flight for less than a round: maybe slow"
        );
        heartbeat_round(&mut raft);
        raft.step(heartbeat_ack(2, term, 0));
        assert_eq!(
            appends_to(&drain(&mut raft), 2),
            [(2, vec![])],
            "empty append probes the gap"
        );
        let reject = MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 0,
            conflict_index: 2,
            conflict_term: None,
            read_round: 0,
        };
        raft.step(message(2, 1, term, reject));
        assert_eq!(appends_to(&drain(&mut raft), 2), [(1, vec![2])]);
    }

    #[test]
    fn a_full_window_of_lost_appends_does_not_stall_replication() {
        let config = Config {
            max_inflight: 1,
            ..plain_config(1, &[1, 2])
        };
        let mut raft = recovered(config, 0, &[]);
        elect(&mut raft);
        let term = raft.term;
        raft.step(ack(2, term, 1));
        raft.propose(command("lost")).unwrap();
        assert_eq!(appends_to(&drain(&mut raft), 2).len(), 1);
        raft.propose(command("waiting")).unwrap();
        assert!(appends_to(&drain(&mut raft), 2).is_empty(), "window full");
        for _ in 0..2 {
            heartbeat_round(&mut raft);
            raft.step(heartbeat_ack(2, term, 0));
        }
        assert_eq!(appends_to(&drain(&mut raft), 2), [(2, vec![3])]);
    }

    #[test]
    fn heartbeat_responses_that_overtake_slow_appends_send_nothing() {
        let mut raft = leader(&[1, 2], &[]);
        let term = raft.term;
        for round in 0..4 {
            raft.propose(command("slow")).unwrap();
            let sent = appends_to(&drain(&mut raft), 2);
            assert_eq!(sent.len(), 1);
            heartbeat_round(&mut raft);
            raft.step(heartbeat_ack(2, term, 0));
            assert!(appends_to(&drain(&mut raft), 2).is_empty(), "round {round}");
            let last_sent = sent[0].1.last().copied().unwrap();
            raft.step(ack(2, term, last_sent));
        }
    }

    #[test]
    fn check_quorum_makes_a_leader_without_a_live_quorum_step_down() {
        let mut cluster = Cluster::new(3, |_| {});
        cluster.elect(1);
        assert_eq!(cluster.leaders(), [1]);
        cluster.isolate(1);
        for _ in 0..30 {
            cluster.node(1).tick();
            cluster.settle();
        }
        assert_eq!(cluster.node(1).role, Role::Follower);
    }

    #[test]
    fn a_leader_that_hears_from_a_quorum_keeps_leading() {
        let mut cluster = Cluster::new(5, |_| {});
        cluster.elect(1);
        cluster.isolate(4);
        cluster.isolate(5);
        cluster.tick_all(200);
        assert_eq!(cluster.leaders(), [1]);
    }

    #[test]
    fn reads_of_one_batch_share_one_heartbeat_round_confirmed_by_a_quorum() {
        let mut raft = leader(&[1, 2, 3], &[]);
        let term = raft.term;
        let commit = raft.log.committed();
        raft.read_index(7).unwrap();
        raft.read_index(8).unwrap();
        let ready = cycle(&mut raft);
        let rounds: Vec<_> = ready
            .messages
            .iter()
            .map(|msg| (msg.to, msg.body.clone()))
            .collect();
        let heartbeat = MessageBody::Heartbeat {
            leader_commit: commit,
            read_round: 1,
        };
        assert_eq!(rounds, [(2, heartbeat.clone()), (3, heartbeat)]);
        assert!(ready.read_states.is_empty());
        raft.step(heartbeat_ack(2, term, 1));
        let expected = [
            ReadState {
                request_id: 7,
                index: commit,
            },
            ReadState {
                request_id: 8,
                index: commit,
            },
        ];
        assert_eq!(cycle(&mut raft).read_states, expected);
    }

    /// A leader of `voters` under leases with a drift margin of 2 ticks (so leases of 15 -
    /// 1 - 2 = 12 ticks), with an entry of its term committed.
    fn lease_leader(voters: &[NodeId]) -> Raft {
        let config = Config {
            read_mode: crate::raft::ReadMode::Lease {
                drift_margin_ticks: 2,
            },
            ..plain_config(1, voters)
        };
        let mut raft = recovered(config, 0, &[]);
        elect(&mut raft);
        let (term, last) = (raft.term, raft.log.last_index());
        for peer in raft.peer_ids() {
            raft.step(ack(peer, term, last));
        }
        drain(&mut raft);
        raft
    }

    fn read_now(raft: &mut Raft, request_id: u64) -> crate::raft::Ready {
        raft.read_index(request_id).unwrap();
        cycle(raft)
    }

    #[test]
    fn under_a_lease_reads_are_served_at_once_until_it_runs_out() {
        let mut raft = lease_leader(&[1, 2, 3]);
        let term = raft.term;
        let commit = raft.log.committed();
        let served = |request_id| ReadState {
            request_id,
            index: commit,
        };
        // No lease yet: the read waits for a round, whose answer starts the lease.
        let ready = read_now(&mut raft, 1);
        assert!(ready.read_states.is_empty());
        let sent_at = raft.now;
        assert!(!ready.messages.is_empty());
        let round = raft.reads.round();
        raft.step(heartbeat_ack(2, term, round));
        assert_eq!(cycle(&mut raft).read_states, [served(1)]);
        assert_eq!(raft.lease_until, sent_at + 12);

        // Within the lease a read is served without a message.
        let ready = read_now(&mut raft, 2);
        assert_eq!(ready.read_states, [served(2)]);
        assert!(ready.messages.is_empty(), "{:?}", ready.messages);

        // Periodic heartbeats go on, but nobody answers: at the lease's end reads wait again.
        while raft.now < sent_at + 12 {
            raft.tick();
            drain(&mut raft);
        }
        let ready = read_now(&mut raft, 3);
        assert!(ready.read_states.is_empty());
        // An answer to the latest periodic round renews the lease from when it was sent.
        let round = raft.reads.round();
        raft.step(heartbeat_ack(3, term, round));
        assert_eq!(cycle(&mut raft).read_states, [served(3)]);
        assert!(raft.lease_until > sent_at + 12);
        assert_eq!(read_now(&mut raft, 4).read_states, [served(4)]);
    }

    /// The round the leader's appends to `to` carry, one per append.
    fn rounds_of_appends_to(messages: &[Message], to: NodeId) -> Vec<u64> {
        messages
            .iter()
            .filter(|msg| msg.to == to)
            .filter_map(|msg| match msg.body {
                MessageBody::AppendEntries { read_round, .. } => Some(read_round),
                _ => None,
            })
            .collect()
    }

    fn append_ack(from: NodeId, term: Term, match_index: Index, read_round: u64) -> Message {
        let body = MessageBody::AppendEntriesResponse {
            success: true,
            match_index,
            conflict_index: 0,
            conflict_term: None,
            read_round,
        };
        message(from, 1, term, body)
    }

    #[test]
    fn under_a_lease_an_answered_append_renews_it_from_when_it_was_sent() {
        let mut raft = lease_leader(&[1, 2, 3]);
        let term = raft.term;
        for _ in 0..3 {
            raft.tick();
            drain(&mut raft);
        }
        assert_eq!(raft.lease_until, 0, "no round answered yet");
        let sent_at = raft.now;
        raft.propose(command("x")).unwrap();
        let rounds = rounds_of_appends_to(&cycle(&mut raft).messages, 2);
        let [round] = rounds[..] else {
            panic!("one append to 2: {rounds:?}")
        };
        // More appends in the same tick share the round.
        raft.propose(command("y")).unwrap();
        assert_eq!(rounds_of_appends_to(&cycle(&mut raft).messages, 2), [round]);
        let last = raft.log.last_index();
        raft.step(append_ack(2, term, last, round));
        cycle(&mut raft);
        assert_eq!(raft.lease_until, sent_at + 12);
        assert!(raft.serves_reads_under_lease());
    }

    #[test]
    fn an_answered_append_sent_after_a_read_round_confirms_it() {
        let mut raft = leader(&[1, 2, 3], &[]);
        let term = raft.term;
        let commit_at_read = raft.log.committed();
        raft.read_index(1).unwrap();
        raft.propose(command("x")).unwrap();
        let messages = cycle(&mut raft).messages;
        let round = raft.reads.round();
        assert_eq!(rounds_of_appends_to(&messages, 3), [round]);
        assert_eq!(raft.lease_until, 0, "no leases under ReadIndex");
        raft.step(append_ack(3, term, raft.log.last_index(), round));
        assert_eq!(
            cycle(&mut raft).read_states,
            [ReadState {
                request_id: 1,
                index: commit_at_read,
            }]
        );
    }

    /// A lease leader whose first read's round a follower answered: it holds a lease.
    fn leader_holding_a_lease() -> Raft {
        let mut raft = lease_leader(&[1, 2, 3]);
        let term = raft.term;
        read_now(&mut raft, 1);
        let round = raft.reads.round();
        raft.step(heartbeat_ack(2, term, round));
        cycle(&mut raft);
        assert!(raft.serves_reads_under_lease());
        raft
    }

    #[test]
    fn a_leader_that_steps_down_loses_its_lease_and_a_new_one_starts_without() {
        let mut raft = leader_holding_a_lease();
        let term = raft.term;
        raft.step(message(
            2,
            1,
            term + 1,
            MessageBody::HeartbeatResponse { read_round: 0 },
        ));
        assert_eq!(raft.role, Role::Follower);
        assert!(!raft.serves_reads_under_lease());
        assert_eq!(raft.lease_until, 0);
    }

    #[test]
    fn a_leader_that_starts_a_transfer_serves_no_more_reads_under_its_lease() {
        let mut raft = leader_holding_a_lease();
        let term = raft.term;
        raft.transfer_leadership(2).unwrap();
        assert!(!raft.serves_reads_under_lease());
        // Reads are confirmed by rounds again, and the answers renew no lease: the target
        // may campaign past the followers' refusals whenever the TimeoutNow reaches it.
        let ready = read_now(&mut raft, 2);
        assert!(ready.read_states.is_empty());
        let round = raft.reads.round();
        raft.step(heartbeat_ack(3, term, round));
        assert_eq!(cycle(&mut raft).read_states.len(), 1);
        assert_eq!(raft.lease_until, 0);
        assert!(read_now(&mut raft, 3).read_states.is_empty());
    }

    #[test]
    fn a_lease_needs_an_entry_of_the_leaders_term_committed() {
        let config = Config {
            read_mode: crate::raft::ReadMode::Lease {
                drift_margin_ticks: 2,
            },
            ..plain_config(1, &[1, 2, 3])
        };
        let mut raft = recovered(config, 1, &[1, 1]);
        elect(&mut raft);
        raft.lease_until = u64::MAX;
        assert!(
            !raft.serves_reads_under_lease(),
            "its commit index may lag the writes its predecessor acknowledged"
        );
    }

    #[test]
    fn a_new_leader_holds_reads_until_it_commits_an_entry_of_its_term() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1, 1]);
        elect(&mut raft);
        let term = raft.term;
        raft.read_index(1).unwrap();
        let heartbeats = drain(&mut raft);
        assert!(heartbeats.is_empty(), "{heartbeats:?}");
        raft.step(ack(2, term, 3));
        let messages = cycle(&mut raft).messages;
        assert!(
            messages
                .iter()
                .all(|msg| matches!(msg.body, MessageBody::Heartbeat { read_round: 1, .. }))
        );
        raft.step(heartbeat_ack(3, term, 1));
        assert_eq!(
            cycle(&mut raft).read_states,
            [ReadState {
                request_id: 1,
                index: 3
            }]
        );
    }

    #[test]
    fn reads_on_a_leader_that_steps_down_fail() {
        let mut raft = leader(&[1, 2, 3], &[]);
        raft.read_index(1).unwrap();
        drain(&mut raft);
        raft.read_index(2).unwrap();
        raft.step(message(
            2,
            1,
            raft.term + 1,
            MessageBody::HeartbeatResponse { read_round: 0 },
        ));
        let ready = cycle(&mut raft);
        assert_eq!(ready.failed_reads, [1, 2]);
        assert_eq!(
            raft.read_index(3),
            Err(crate::raft::NotLeader { leader: None })
        );
    }

    #[test]
    fn a_single_node_cluster_commits_and_reads_on_its_own() {
        let mut raft = recovered(plain_config(1, &[1]), 0, &[]);
        elect(&mut raft);
        let (index, _) = raft.propose(command("solo")).unwrap();
        raft.read_index(5).unwrap();
        let mut applied = Vec::new();
        let mut reads = Vec::new();
        while raft.has_ready() {
            let ready = cycle(&mut raft);
            applied.extend(ready.committed_entries.iter().map(|entry| entry.index));
            reads.extend(ready.read_states);
        }
        assert_eq!(applied, [index]);
        assert_eq!(
            reads,
            [ReadState {
                request_id: 5,
                index: index - 1
            }]
        );
    }

    #[test]
    fn an_unreachable_follower_is_probed_instead_of_pipelined() {
        let mut raft = leader(&[1, 2], &[]);
        raft.propose(command("a")).unwrap();
        drain(&mut raft);
        raft.report_unreachable(2);
        raft.propose(command("b")).unwrap();
        assert_eq!(
            appends_to(&drain(&mut raft), 2),
            [(1, vec![2, 3])],
            "resent from what matched"
        );
    }
}
