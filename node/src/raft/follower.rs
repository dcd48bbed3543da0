//! The receiving side of replication: AppendEntries with its consistency check (Figure 2,
//! AppendEntries receiver rules), heartbeats, and InstallSnapshot.

use super::{Entry, Index, MessageBody, NodeId, Raft, Snapshot, Term};

/// The fields of one AppendEntries.
pub(super) struct Append {
    pub prev_log_index: Index,
    pub prev_log_term: Term,
    pub entries: Vec<Entry>,
    pub leader_commit: Index,
    /// Echoed in the answer (see `MessageBody::AppendEntries`).
    pub read_round: u64,
}

impl Append {
    /// Entries must follow `prev_log_index` one by one with terms that never decrease;
    /// anything else did not come from a correct leader.
    fn is_well_formed(&self) -> bool {
        let mut expected = (self.prev_log_index, self.prev_log_term);
        self.entries.iter().all(|entry| {
            let fits = Some(entry.index) == expected.0.checked_add(1) && entry.term >= expected.1;
            expected = (entry.index, entry.term);
            fits
        })
    }

    /// Drops the entries at or below our commit index: committed entries are in every
    /// leader's log, so they match and the check can start from the commit index instead
    /// (whose entry may already be compacted here). Returns false if nothing is left.
    fn skip_committed(&mut self, committed: Index) -> bool {
        if self.prev_log_index >= committed {
            return true;
        }
        let covered = (committed - self.prev_log_index) as usize;
        if covered > self.entries.len() {
            return false;
        }
        let rest = self.entries.split_off(covered);
        let Some(last_covered) = std::mem::replace(&mut self.entries, rest).pop() else {
            return false;
        };
        self.prev_log_index = last_covered.index;
        self.prev_log_term = last_covered.term;
        true
    }
}

/// The largest index a snapshot may claim: half the index space, which no log reaches, so that
/// the entries after a snapshot can never run out of indexes.
const MAX_PLAUSIBLE_INDEX: Index = Index::MAX / 2;

impl Raft {
    /// Applies an AppendEntries from the leader of our term and answers it.
    pub(super) fn handle_append_entries(&mut self, from: NodeId, mut append: Append) {
        if !append.is_well_formed() {
            return;
        }
        let committed = self.log.committed();
        let read_round = append.read_round;
        if !append.skip_committed(committed) {
            self.send(from, accepted_through(committed, read_round));
            return;
        }
        let prev_index = append.prev_log_index;
        match self.log.term(prev_index) {
            Some(term) if term == append.prev_log_term => {
                let mut last_new = prev_index + append.entries.len() as Index;
                if self.config.bugs.no_truncate {
                    // The mistake, whole: the suffix after a conflict stays, and the log is
                    // then taken for the leader's to its end (what "matches" means to a
                    // follower that never removes anything).
                    self.log.overwrite_keeping_suffix(append.entries);
                    last_new = last_new.max(self.log.last_index());
                } else {
                    self.log.append_from_leader(append.entries);
                }
                self.log.commit_to(append.leader_commit.min(last_new));
                self.send(from, accepted_through(last_new, read_round));
            }
            own_term => {
                // Reply false if the log has no entry at prev_log_index with prev_log_term,
                // with a hint that lets the leader skip a whole term per round trip.
                let (conflict_index, conflict_term) = match own_term {
                    Some(term) => (self.log.first_index_of_term(term, prev_index), Some(term)),
                    None => (self.log.last_index() + 1, None),
                };
                self.send(
                    from,
                    MessageBody::AppendEntriesResponse {
                        success: false,
                        match_index: 0,
                        conflict_index,
                        conflict_term,
                        read_round,
                    },
                );
            }
        }
    }

    /// A heartbeat carries the leader's commit index, capped at what it knows we match.
    pub(super) fn handle_heartbeat(&mut self, from: NodeId, leader_commit: Index, read_round: u64) {
        self.log.commit_to(leader_commit.min(self.log.last_index()));
        self.send(from, MessageBody::HeartbeatResponse { read_round });
    }

    /// Installs a snapshot from the leader, unless the log already holds its last entry, in
    /// which case that entry is simply committed.
    pub(super) fn handle_install_snapshot(&mut self, from: NodeId, snapshot: Snapshot) {
        let meta = snapshot.meta;
        if meta.index > MAX_PLAUSIBLE_INDEX {
            // No log gets that long: the snapshot is corrupt (and a log starting there would
            // run out of indexes).
            return;
        }
        let committed = self.log.committed();
        if meta.index <= committed {
            self.send(from, accepted_through(committed, 0));
            return;
        }
        if self.log.term(meta.index) == Some(meta.term) {
            self.log.commit_to(meta.index);
        } else {
            self.log.restore(snapshot);
            // As restored: with its configuration filled in if the leader left it out.
            self.pending_snapshot = Some(self.log.snapshot().clone());
        }
        self.send(from, accepted_through(meta.index, 0));
    }
}

fn accepted_through(match_index: Index, read_round: u64) -> MessageBody {
    MessageBody::AppendEntriesResponse {
        success: true,
        match_index,
        conflict_index: 0,
        conflict_term: None,
        read_round,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::bugs::{Bug, Bugs};
    use crate::raft::testing::{cycle, drain, entry, message, plain_config, recovered};
    use crate::raft::{Config, Message, Raft, Role, SnapshotMeta};

    const LEADER: NodeId = 2;
    /// The ReadIndex round the leader's appends carry, which their answers must echo.
    const READ_ROUND: u64 = 7;

    /// Follower 1 at `term` with a log of `log_terms`.
    fn follower(term: Term, log_terms: &[Term]) -> Raft {
        recovered(plain_config(1, &[1, 2, 3]), term, log_terms)
    }

    fn append(
        term: Term,
        prev: (Index, Term),
        new: &[(Index, Term)],
        leader_commit: Index,
    ) -> Message {
        let entries = new
            .iter()
            .map(|&(index, term)| entry(index, term))
            .collect();
        let body = MessageBody::AppendEntries {
            prev_log_index: prev.0,
            prev_log_term: prev.1,
            entries,
            leader_commit,
            read_round: READ_ROUND,
        };
        message(LEADER, 1, term, body)
    }

    fn response(raft: &mut Raft) -> (Term, MessageBody) {
        let messages = drain(raft);
        assert_eq!(messages.len(), 1, "{messages:?}");
        (messages[0].term, messages[0].body.clone())
    }

    fn accepted(match_index: Index) -> MessageBody {
        accepted_through(match_index, READ_ROUND)
    }

    fn rejected(conflict_index: Index, conflict_term: Option<Term>) -> MessageBody {
        MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 0,
            conflict_index,
            conflict_term,
            read_round: READ_ROUND,
        }
    }

    fn log_terms(raft: &Raft) -> Vec<Term> {
        (raft.log.first_index()..=raft.log.last_index())
            .filter_map(|index| raft.log.term(index))
            .collect()
    }

    #[test]
    fn reply_false_if_term_is_less_than_current_term() {
        let mut raft = follower(3, &[1, 2]);
        raft.step(append(2, (2, 2), &[(3, 2)], 3));
        // Answered before any check, by a node of a later term: no round is echoed.
        let refused = MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 0,
            conflict_index: 0,
            conflict_term: None,
            read_round: 0,
        };
        assert_eq!(response(&mut raft), (3, refused));
        assert_eq!(log_terms(&raft), [1, 2]);
    }

    #[test]
    fn reply_false_if_the_log_has_no_entry_at_prev_log_index() {
        let mut raft = follower(2, &[1, 2]);
        raft.step(append(2, (5, 2), &[(6, 2)], 0));
        assert_eq!(
            response(&mut raft),
            (2, rejected(3, None)),
            "hint: my log ends at 2"
        );
    }

    #[test]
    fn reply_false_if_the_entry_at_prev_log_index_has_another_term_with_its_first_index() {
        let mut raft = follower(5, &[1, 3, 3, 3]);
        raft.step(append(5, (4, 4), &[(5, 5)], 0));
        assert_eq!(
            response(&mut raft),
            (5, rejected(2, Some(3))),
            "hint: term 3 starts at 2"
        );
        assert_eq!(log_terms(&raft), [1, 3, 3, 3]);
    }

    #[test]
    fn a_conflicting_entry_is_deleted_with_all_that_follow() {
        let mut raft = follower(3, &[1, 1, 2, 2]);
        raft.step(append(3, (2, 1), &[(3, 3)], 0));
        assert_eq!(response(&mut raft).1, accepted(3));
        assert_eq!(log_terms(&raft), [1, 1, 3]);
    }

    #[test]
    fn the_no_truncate_bug_keeps_the_entries_after_a_conflict() {
        let mut raft = recovered(
            Config {
                bugs: Bugs::from_list(&[Bug::NoTruncate]),
                ..plain_config(1, &[1, 2, 3])
            },
            3,
            &[1, 1, 2, 2],
        );
        raft.step(append(3, (2, 1), &[(3, 3)], 0));
        assert_eq!(
            response(&mut raft).1,
            accepted(4),
            "the whole log is acknowledged"
        );
        assert_eq!(log_terms(&raft), [1, 1, 3, 2], "entry 4 of term 2 survived");
    }

    #[test]
    fn new_entries_not_already_in_the_log_are_appended_and_handed_to_the_wal() {
        let mut raft = follower(2, &[1, 2]);
        raft.step(append(2, (1, 1), &[(2, 2), (3, 2), (4, 2)], 0));
        let ready = cycle(&mut raft);
        let appended: Vec<_> = ready.entries.iter().map(|entry| entry.index).collect();
        assert_eq!(appended, [3, 4], "entry 2 was already there");
        assert_eq!(log_terms(&raft), [1, 2, 2, 2]);
    }

    #[test]
    fn an_old_shorter_append_does_not_truncate_entries_that_match() {
        let mut raft = follower(2, &[1, 2, 2, 2]);
        raft.step(append(2, (1, 1), &[(2, 2)], 0));
        assert_eq!(response(&mut raft).1, accepted(2));
        assert_eq!(log_terms(&raft), [1, 2, 2, 2]);
    }

    #[test]
    fn commit_is_the_minimum_of_leader_commit_and_the_last_new_entry() {
        let mut raft = follower(2, &[1, 1, 1, 1]);
        raft.step(append(2, (1, 1), &[(2, 1)], 4));
        let unchecked = "entries 3 and 4 were not checked against the leader";
        assert_eq!(raft.log.committed(), 2, "{unchecked}");
        raft.step(append(2, (2, 1), &[(3, 2)], 2));
        assert_eq!(raft.log.committed(), 2);
        raft.step(append(2, (3, 2), &[], 3));
        assert_eq!(raft.log.committed(), 3);
        let applied: Vec<_> = cycle(&mut raft)
            .committed_entries
            .iter()
            .map(|entry| entry.index)
            .collect();
        assert_eq!(applied, [1, 2, 3]);
    }

    #[test]
    fn an_append_from_the_current_leader_makes_a_candidate_follow_it() {
        let mut raft = follower(2, &[1]);
        while raft.role != Role::Candidate {
            raft.tick();
        }
        raft.step(append(3, (1, 1), &[], 0));
        assert_eq!(
            (raft.role, raft.leader, raft.term),
            (Role::Follower, Some(LEADER), 3)
        );
    }

    #[test]
    fn an_append_below_the_commit_index_is_checked_from_the_commit_index() {
        let mut raft = follower(2, &[1, 1, 2]);
        raft.step(append(2, (3, 2), &[], 3));
        raft.compact(Snapshot {
            meta: SnapshotMeta { index: 0, term: 0 },
            membership: None,
            data: Bytes::new(),
        })
        .unwrap();
        drain(&mut raft);
        raft.step(append(2, (1, 1), &[(2, 1), (3, 2), (4, 2)], 3));
        assert_eq!(response(&mut raft).1, accepted(4));
        raft.step(append(2, (0, 0), &[(1, 1)], 3));
        assert_eq!(
            response(&mut raft).1,
            accepted(3),
            "all covered by the commit index"
        );
    }

    #[test]
    fn an_append_that_contradicts_a_committed_entry_is_refused() {
        let mut raft = follower(2, &[1, 1]);
        raft.step(append(2, (2, 1), &[], 2));
        drain(&mut raft);
        raft.step(append(2, (0, 0), &[(1, 1), (2, 2), (3, 2)], 2));
        assert_eq!(response(&mut raft).1, rejected(1, Some(1)));
        assert_eq!(log_terms(&raft), [1, 1]);
    }

    #[test]
    fn a_malformed_append_is_ignored() {
        let mut raft = follower(2, &[1, 1]);
        raft.step(append(2, (2, 1), &[(3, 1), (4, 9), (6, 9)], 2));
        raft.step(append(2, (2, 1), &[(3, 3), (4, 2)], 2));
        assert!(drain(&mut raft).is_empty());
        assert_eq!(log_terms(&raft), [1, 1]);
    }

    #[test]
    fn a_heartbeat_commits_at_most_through_the_last_entry() {
        let mut raft = follower(2, &[1, 2]);
        raft.step(message(
            LEADER,
            1,
            2,
            MessageBody::Heartbeat {
                leader_commit: 9,
                read_round: 4,
            },
        ));
        assert_eq!(raft.log.committed(), 2);
        assert_eq!(
            response(&mut raft),
            (2, MessageBody::HeartbeatResponse { read_round: 4 })
        );
    }

    fn install(index: Index, term: Term) -> Message {
        let snapshot = Snapshot {
            meta: SnapshotMeta { index, term },
            membership: None,
            data: Bytes::from_static(b"kv"),
        };
        message(LEADER, 1, 3, MessageBody::InstallSnapshot { snapshot })
    }

    #[test]
    fn install_snapshot_replaces_a_conflicting_log_and_hands_the_snapshot_to_the_shell() {
        let mut raft = follower(3, &[1, 1, 2, 2]);
        raft.step(install(5, 3));
        let ready = cycle(&mut raft);
        assert_eq!(
            ready.snapshot.map(|snapshot| snapshot.meta),
            Some(SnapshotMeta { index: 5, term: 3 })
        );
        assert!(
            ready.committed_entries.is_empty(),
            "the snapshot already holds their effect"
        );
        assert_eq!(ready.messages[0].body, accepted_through(5, 0));
        let status = raft.status();
        assert_eq!(
            (
                status.commit,
                status.applied,
                status.last_index,
                status.snapshot_index
            ),
            (5, 5, 5, 5)
        );
    }

    #[test]
    fn install_snapshot_of_an_entry_already_in_the_log_only_commits_through_it() {
        let mut raft = follower(3, &[1, 1, 2, 2]);
        raft.step(install(3, 2));
        let ready = cycle(&mut raft);
        assert_eq!(ready.snapshot, None);
        assert_eq!(ready.committed_entries.len(), 3);
        assert_eq!(ready.messages[0].body, accepted_through(3, 0));
        assert_eq!(log_terms(&raft), [1, 1, 2, 2], "entry 4 is kept");
    }

    #[test]
    fn an_old_snapshot_is_answered_with_the_commit_index() {
        let mut raft = follower(3, &[1, 1, 2, 2]);
        raft.step(append(3, (4, 2), &[], 4));
        drain(&mut raft);
        raft.step(install(2, 1));
        assert_eq!(response(&mut raft).1, accepted_through(4, 0));
        assert_eq!(raft.log.snapshot_index(), 0);
    }
}
