//! The in-memory replicated log: the latest snapshot followed by the entries after it.
//!
//! Entries live in a `VecDeque` whose front has index `snapshot.meta.index + 1`, so a lookup
//! by index is O(1) and compaction pops from the front. Besides the entries, the log tracks
//! how far the shell has got with them: which entries the WAL has not been handed yet
//! (`unstable_from`), which it has made durable (`persisted`), what is committed and what
//! is applied.

use std::collections::VecDeque;

use super::membership::MembershipLog;
use super::{Entry, Index, Membership, Payload, RaftError, Snapshot, Term};

/// The log of one node.
#[derive(Debug)]
pub(super) struct RaftLog {
    /// Covers every entry up to `snapshot.meta.index`; a default (empty) one for a fresh node.
    snapshot: Snapshot,
    /// `entries[k].index == snapshot.meta.index + 1 + k`.
    entries: VecDeque<Entry>,
    committed: Index,
    /// The last committed index the shell has applied (handed out in a Ready and advanced).
    applied: Index,
    /// Every entry up to here is durable in the WAL.
    persisted: Index,
    /// The first index the WAL has not been handed yet.
    unstable_from: Index,
    /// The configurations the log holds, and the one in force before them.
    memberships: MembershipLog,
}

impl RaftLog {
    /// Rebuilds the log from what storage recovered. Entries the snapshot already covers
    /// are skipped; the rest must follow it without gaps. `initial` is the configuration in
    /// force where neither the snapshot nor an entry says otherwise.
    pub fn recover(
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        commit: Index,
        initial: Membership,
    ) -> Result<RaftLog, RaftError> {
        let mut snapshot = snapshot.unwrap_or_default();
        let base = snapshot.membership.get_or_insert(initial).clone();
        let mut memberships = MembershipLog::new(base);
        let offset = snapshot.meta.index;
        let mut log = VecDeque::with_capacity(entries.len());
        let mut previous = snapshot.meta.term;
        for entry in entries.into_iter().filter(|entry| entry.index > offset) {
            let expected = offset + 1 + log.len() as Index;
            if entry.index != expected {
                return Err(RaftError::LogGap {
                    expected,
                    found: entry.index,
                });
            }
            if entry.term < previous {
                return Err(RaftError::TermsDecrease {
                    index: entry.index,
                    term: entry.term,
                    previous,
                });
            }
            previous = entry.term;
            if let Payload::Membership(membership) = &entry.payload {
                memberships.appended(entry.index, membership.clone());
            }
            log.push_back(entry);
        }
        let last_index = offset + log.len() as Index;
        if commit > last_index {
            return Err(RaftError::CommitBeyondLog { commit, last_index });
        }
        Ok(RaftLog {
            snapshot,
            entries: log,
            committed: commit.max(offset),
            applied: offset,
            persisted: last_index,
            unstable_from: last_index + 1,
            memberships,
        })
    }

    /// The configuration in force: the last one in the log, committed or not.
    pub fn membership(&self) -> &Membership {
        self.memberships.current()
    }

    /// The configuration in force at `index`.
    pub fn membership_at(&self, index: Index) -> &Membership {
        self.memberships.at(index)
    }

    /// The index of the last configuration entry, if the log still holds one (one compacted
    /// away is committed).
    pub fn last_membership_index(&self) -> Option<Index> {
        self.memberships.last_change_index()
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub fn snapshot_index(&self) -> Index {
        self.snapshot.meta.index
    }

    /// The first index still held as an entry (one past the snapshot).
    pub fn first_index(&self) -> Index {
        self.snapshot.meta.index + 1
    }

    pub fn last_index(&self) -> Index {
        self.snapshot.meta.index + self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries
            .back()
            .map_or(self.snapshot.meta.term, |entry| entry.term)
    }

    /// The term of the entry at `index`, known for the snapshot's last entry and every entry
    /// after it; `None` when compacted away or beyond the end.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.meta.index {
            return Some(self.snapshot.meta.term);
        }
        self.position(index).map(|at| self.entries[at].term)
    }

    fn position(&self, index: Index) -> Option<usize> {
        let at = usize::try_from(index.checked_sub(self.first_index())?).ok()?;
        (at < self.entries.len()).then_some(at)
    }

    /// Whether a log ending at (`last_index`, `last_term`) is at least as up to date as this
    /// one (Raft §5.4.1): a later last term wins, and with equal terms the longer log.
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        let own_term = self.last_term();
        last_term > own_term || (last_term == own_term && last_index >= self.last_index())
    }

    /// The first index of `term` at or before `at_most` (for the conflict hint, thesis §5.3).
    /// Terms never decrease along a log, so this is a binary search.
    pub fn first_index_of_term(&self, term: Term, at_most: Index) -> Index {
        let before = self.entries.partition_point(|entry| entry.term < term);
        (self.first_index() + before as Index).min(at_most)
    }

    /// The last index holding `term`, if the log still knows one.
    pub fn last_index_of_term(&self, term: Term) -> Option<Index> {
        let through = self.entries.partition_point(|entry| entry.term <= term);
        match through.checked_sub(1) {
            Some(at) => (self.entries[at].term == term).then(|| self.first_index() + at as Index),
            None => (self.snapshot.meta.term == term).then_some(self.snapshot.meta.index),
        }
    }

    /// Appends one entry a leader created; its index is `last_index() + 1`.
    pub fn append(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        self.push(entry);
    }

    /// Adds an entry at the end, noting a configuration it carries.
    fn push(&mut self, entry: Entry) {
        if let Payload::Membership(membership) = &entry.payload {
            self.memberships.appended(entry.index, membership.clone());
        }
        self.entries.push_back(entry);
    }

    /// Merges entries from the leader that follow an entry already known to match: entries
    /// already present are kept, the first conflicting one and everything after it is
    /// replaced (Figure 2, AppendEntries steps 3 and 4). `entries` must be contiguous,
    /// follow an entry of this log and start after the commit index, so that committed
    /// entries are never replaced.
    pub fn append_from_leader(&mut self, entries: Vec<Entry>) {
        let Some(first_new) = self.first_not_held(&entries) else {
            return;
        };
        let at = entries[first_new].index;
        debug_assert!(at > self.committed && at <= self.last_index() + 1);
        if at <= self.last_index() {
            self.truncate_from(at);
        }
        for entry in entries.into_iter().skip(first_new) {
            self.push(entry);
        }
    }

    /// The `no-truncate` bug: writes the leader's entries over ours at their indexes but
    /// keeps every entry of ours that follows them, even after a conflict. The log then holds
    /// entries of a deposed leader after the new leader's, which a later consistency check
    /// on them may accept.
    pub fn overwrite_keeping_suffix(&mut self, entries: Vec<Entry>) {
        let Some(first_new) = self.first_not_held(&entries) else {
            return;
        };
        let at = entries[first_new].index;
        self.unstable_from = self.unstable_from.min(at);
        self.persisted = self.persisted.min(at - 1);
        // What the kept suffix carried is lost track of, as a node with this bug would.
        self.memberships.truncated_from(at);
        for entry in entries.into_iter().skip(first_new) {
            match self.position(entry.index) {
                Some(position) => {
                    if let Payload::Membership(membership) = &entry.payload {
                        self.memberships.appended(entry.index, membership.clone());
                    }
                    self.entries[position] = entry;
                }
                None => self.push(entry),
            }
        }
    }

    /// The position in `entries` of the first one this log does not hold (by index and
    /// term): where a conflict, or the new entries, begin.
    fn first_not_held(&self, entries: &[Entry]) -> Option<usize> {
        entries
            .iter()
            .position(|entry| self.term(entry.index) != Some(entry.term))
    }

    fn truncate_from(&mut self, index: Index) {
        self.entries.truncate((index - self.first_index()) as usize);
        self.memberships.truncated_from(index);
        self.unstable_from = self.unstable_from.min(index);
        self.persisted = self.persisted.min(index - 1);
    }

    /// Up to `max_bytes` of entry payload starting at `from` (at least one entry if any).
    /// `from` must not be compacted.
    pub fn entries_from(&self, from: Index, max_bytes: usize) -> Vec<Entry> {
        let Some(start) = self.position(from) else {
            return Vec::new();
        };
        let mut bytes = 0;
        let mut batch = Vec::new();
        for entry in self.entries.range(start..) {
            bytes += payload_len(&entry.payload);
            if !batch.is_empty() && bytes > max_bytes {
                break;
            }
            batch.push(entry.clone());
        }
        batch
    }

    /// The entries in `(after, through]`, all of which must be held.
    fn slice(&self, after: Index, through: Index) -> Vec<Entry> {
        if through <= after {
            return Vec::new();
        }
        let start = (after + 1 - self.first_index()) as usize;
        let end = (through + 1 - self.first_index()) as usize;
        self.entries.range(start..end).cloned().collect()
    }

    pub fn has_unstable(&self) -> bool {
        self.unstable_from <= self.last_index()
    }

    /// Hands the WAL every entry it has not had yet; returns them.
    pub fn take_unstable(&mut self) -> Vec<Entry> {
        let unstable = self.slice(self.unstable_from - 1, self.last_index());
        self.unstable_from = self.last_index() + 1;
        unstable
    }

    /// The WAL made durable everything handed to it through `last`. Entries replaced since
    /// they were handed out are not counted.
    pub fn persisted_through(&mut self, last: Index) {
        self.persisted = self.persisted.max(last.min(self.unstable_from - 1));
    }

    pub fn persisted(&self) -> Index {
        self.persisted
    }

    pub fn committed(&self) -> Index {
        self.committed
    }

    /// Raises the commit index (never lowers it).
    pub fn commit_to(&mut self, index: Index) {
        debug_assert!(index <= self.last_index());
        self.committed = self.committed.max(index);
    }

    pub fn applied(&self) -> Index {
        self.applied
    }

    /// The committed entries the shell has not been handed yet.
    pub fn take_committed(&self) -> Vec<Entry> {
        self.slice(self.applied, self.committed)
    }

    pub fn applied_to(&mut self, index: Index) {
        self.applied = self.applied.max(index);
    }

    /// Drops the entries a state-machine snapshot covers and keeps the snapshot, to send to
    /// followers that fall behind. A snapshot older than the current one changes nothing.
    pub fn compact(&mut self, snapshot: Snapshot) -> Result<(), RaftError> {
        let index = snapshot.meta.index;
        if index <= self.snapshot.meta.index {
            return Ok(());
        }
        if index > self.applied {
            return Err(RaftError::CompactBeyondApplied {
                index,
                applied: self.applied,
            });
        }
        let log_term = self.term(index);
        if log_term != Some(snapshot.meta.term) {
            return Err(RaftError::SnapshotTermMismatch {
                index,
                term: snapshot.meta.term,
                log_term,
            });
        }
        self.entries
            .drain(..(index - self.snapshot.meta.index) as usize);
        self.memberships.compacted_through(index);
        self.snapshot = Snapshot {
            membership: Some(self.memberships.at(index).clone()),
            ..snapshot
        };
        Ok(())
    }

    /// Replaces the whole log with a snapshot from the leader, which is committed.
    pub fn restore(&mut self, mut snapshot: Snapshot) {
        let index = snapshot.meta.index;
        // Every snapshot this build sends says its configuration; one that does not keeps
        // the configuration this node knew there.
        let membership = snapshot
            .membership
            .get_or_insert_with(|| self.memberships.at(index).clone())
            .clone();
        self.memberships.restored(membership);
        self.entries.clear();
        self.snapshot = snapshot;
        self.committed = index;
        self.applied = index;
        self.persisted = index;
        self.unstable_from = index + 1;
    }
}

/// What an entry counts against `max_bytes_per_message`.
fn payload_len(payload: &Payload) -> usize {
    match payload {
        Payload::Noop => 0,
        Payload::Command(command) => command.len(),
        Payload::Membership(membership) => 8 * membership.members().len(),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::raft::SnapshotMeta;

    fn entry(index: Index, term: Term) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Command(Bytes::from(vec![0; 10])),
        }
    }

    fn three() -> Membership {
        Membership::of_voters([1, 2, 3])
    }

    fn log_with_terms(terms: &[Term]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(at, &term)| entry(at as Index + 1, term));
        RaftLog::recover(None, entries.collect(), 0, three()).unwrap()
    }

    fn snapshot(index: Index, term: Term) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta { index, term },
            membership: None,
            data: Bytes::from_static(b"state"),
        }
    }

    #[test]
    fn recover_skips_entries_the_snapshot_covers() {
        let entries = (1..=5).map(|index| entry(index, 1)).collect();
        let log = RaftLog::recover(Some(snapshot(3, 1)), entries, 4, three()).unwrap();
        assert_eq!((log.first_index(), log.last_index()), (4, 5));
        assert_eq!((log.committed(), log.applied()), (4, 3));
        assert_eq!(log.term(3), Some(1));
        assert_eq!(log.term(2), None);
    }

    #[test]
    fn recover_rejects_gaps_decreasing_terms_and_commit_beyond_the_log() {
        let gap = RaftLog::recover(None, vec![entry(1, 1), entry(3, 1)], 0, three());
        assert_eq!(
            gap.unwrap_err(),
            RaftError::LogGap {
                expected: 2,
                found: 3
            }
        );
        let decreasing = RaftLog::recover(None, vec![entry(1, 2), entry(2, 1)], 0, three());
        assert!(matches!(
            decreasing,
            Err(RaftError::TermsDecrease { index: 2, .. })
        ));
        let commit = RaftLog::recover(None, vec![entry(1, 1)], 2, three());
        assert_eq!(
            commit.unwrap_err(),
            RaftError::CommitBeyondLog {
                commit: 2,
                last_index: 1
            }
        );
    }

    #[test]
    fn a_later_last_term_or_an_equal_term_and_longer_log_is_up_to_date() {
        let log = log_with_terms(&[1, 2, 2]);
        assert!(log.is_up_to_date(1, 3));
        assert!(log.is_up_to_date(3, 2));
        assert!(log.is_up_to_date(4, 2));
        assert!(!log.is_up_to_date(2, 2));
        assert!(!log.is_up_to_date(9, 1));
    }

    #[test]
    fn term_lookups_for_the_conflict_hint_use_the_sorted_terms() {
        let log = log_with_terms(&[1, 1, 3, 3, 3, 5]);
        assert_eq!(log.first_index_of_term(3, 5), 3);
        assert_eq!(log.first_index_of_term(5, 6), 6);
        assert_eq!(log.last_index_of_term(3), Some(5));
        assert_eq!(log.last_index_of_term(2), None);
        assert_eq!(log.last_index_of_term(9), None);
    }

    #[test]
    fn entries_from_stops_at_the_byte_limit_but_sends_at_least_one() {
        let log = log_with_terms(&[1; 10]);
        assert_eq!(log.entries_from(3, 25).len(), 2);
        assert_eq!(log.entries_from(3, 1).len(), 1);
        assert_eq!(log.entries_from(9, 1 << 20).len(), 2);
        assert!(log.entries_from(11, 1 << 20).is_empty());
    }

    #[test]
    fn compact_drops_covered_entries_and_refuses_unapplied_or_mismatched_snapshots() {
        let mut log = log_with_terms(&[1, 1, 2, 2]);
        log.commit_to(3);
        log.applied_to(3);
        assert!(matches!(
            log.compact(snapshot(4, 2)),
            Err(RaftError::CompactBeyondApplied { .. })
        ));
        assert!(matches!(
            log.compact(snapshot(3, 1)),
            Err(RaftError::SnapshotTermMismatch { .. })
        ));
        log.compact(snapshot(3, 2)).unwrap();
        assert_eq!(
            (log.first_index(), log.last_index(), log.term(3)),
            (4, 4, Some(2))
        );
        log.compact(snapshot(2, 1)).unwrap();
        assert_eq!(log.snapshot_index(), 3, "an older snapshot changes nothing");
    }

    fn configuration(index: Index, term: Term, membership: &Membership) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Membership(membership.clone()),
        }
    }

    /// The configurations through every way the log changes: appends by a leader and from
    /// one, a conflict, compaction inside a joint configuration, recovery, a snapshot from a
    /// leader that says its configuration and one that does not.
    #[test]
    fn the_configuration_in_force_follows_every_change_of_the_log() {
        let four = Membership::of_voters([1, 2, 3, 4]);
        let joint = three().step_towards(four.clone());
        let mut log = log_with_terms(&[1, 1]);
        log.append(configuration(3, 1, &joint));
        log.append(entry(4, 1));
        assert_eq!(log.membership(), &joint);
        assert_eq!(log.membership_at(2), &three());
        assert_eq!(log.last_membership_index(), Some(3));
        // A new leader's entries replace the joint configuration: the one before is back.
        log.append_from_leader(vec![entry(3, 2), configuration(4, 2, &four)]);
        assert_eq!(log.membership(), &four);
        assert_eq!(log.membership_at(3), &three());
        log.append_from_leader(vec![entry(4, 3)]);
        assert_eq!(log.membership(), &three());

        // Compacted inside a joint configuration: the snapshot carries it, and the log
        // rebuilt from the snapshot and the entries after it agrees.
        let mut log = log_with_terms(&[1]);
        log.append(configuration(2, 1, &joint));
        log.append(entry(3, 1));
        log.append(configuration(4, 1, &four));
        log.commit_to(3);
        log.applied_to(3);
        log.compact(snapshot(3, 1)).unwrap();
        assert_eq!(log.snapshot().membership.as_ref(), Some(&joint));
        assert_eq!(log.membership_at(3), &joint);
        assert_eq!(log.membership(), &four);
        let recovered = RaftLog::recover(
            Some(log.snapshot().clone()),
            vec![configuration(4, 1, &four)],
            3,
            three(),
        )
        .unwrap();
        assert_eq!(recovered.membership_at(3), &joint);
        assert_eq!(recovered.membership(), &four);
        // Without a configuration in the snapshot (an earlier build's), the initial one.
        let earlier = RaftLog::recover(Some(snapshot(3, 1)), Vec::new(), 3, three()).unwrap();
        assert_eq!(earlier.membership(), &three());

        // A snapshot from a leader replaces everything, its configuration too; one that says
        // none keeps what this node knew at its index.
        let mut log = log_with_terms(&[1]);
        log.append(configuration(2, 1, &joint));
        log.restore(Snapshot {
            membership: Some(four.clone()),
            ..snapshot(9, 3)
        });
        assert_eq!(log.membership(), &four);
        assert_eq!(log.last_membership_index(), None);
        log.restore(snapshot(12, 4));
        assert_eq!(log.membership(), &four);
        assert_eq!(log.snapshot().membership.as_ref(), Some(&four));
    }

    #[test]
    fn replaced_entries_are_handed_to_the_wal_again_and_not_counted_persisted() {
        let mut log = log_with_terms(&[1, 1]);
        log.append(entry(3, 1));
        log.append(entry(4, 1));
        assert_eq!(log.take_unstable().len(), 2);
        log.append_from_leader(vec![entry(4, 2), entry(5, 2)]);
        log.persisted_through(4);
        assert_eq!(log.persisted(), 3);
        let again = log.take_unstable();
        assert_eq!(
            again.iter().map(|e| (e.index, e.term)).collect::<Vec<_>>(),
            [(4, 2), (5, 2)]
        );
    }

    proptest! {
        /// After any sequence of leader appends, the log reads exactly like a plain Vec
        /// updated by the paper's rule (keep matching entries, replace from the first conflict).
        #[test]
        fn append_from_leader_matches_a_naive_vec(
            initial in prop::collection::vec(1u64..4, 0..12),
            appends in prop::collection::vec((0usize..14, prop::collection::vec(0u64..3, 0..6)), 1..8),
        ) {
            let mut terms: Vec<Term> = initial.clone();
            terms.sort_unstable();
            let mut log = log_with_terms(&terms);
            let mut model = terms.clone();
            for (after, increments) in appends {
                let after = after.min(model.len());
                let mut term = if after == 0 { 0 } else { model[after - 1] };
                let mut batch = Vec::new();
                for (k, increment) in increments.into_iter().enumerate() {
                    term += increment;
                    batch.push(entry((after + k + 1) as Index, term.max(1)));
                }
                log.append_from_leader(batch.clone());
                let conflict = batch.iter().position(|e| model.get(e.index as usize - 1) != Some(&e.term));
                if let Some(at) = conflict {
                    model.truncate(batch[at].index as usize - 1);
                    model.extend(batch[at..].iter().map(|e| e.term));
                }
                prop_assert_eq!(log.last_index(), model.len() as Index);
                for (at, &term) in model.iter().enumerate() {
                    prop_assert_eq!(log.term(at as Index + 1), Some(term));
                }
            }
        }
    }
}
