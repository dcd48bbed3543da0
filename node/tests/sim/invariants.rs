//! The safety properties of Raft (Figure 3 of the paper), checked as the simulation runs:
//! election safety, log matching, leader completeness and state machine safety; and that
//! every decision follows the quorum rules of the configuration in force (both halves of a
//! joint one): each leader was elected by a quorum of voters, and each commit index a leader
//! reaches is held by a quorum.

use std::collections::{BTreeSet, HashMap};

use faultline_node::raft::{Entry, Index, NodeId, Payload, Raft, Role, Term};

use super::shell::{Disk, Shell, StateMachine};

/// An entry known to be committed: a leader's commit index covered it, or a node applied it.
#[derive(Clone, PartialEq)]
struct Committed {
    term: Term,
    payload: Payload,
    /// It was committed in this term or an earlier one: the term of the leader whose commit
    /// index covered it, or of the node that applied it (which learned of the commit from a
    /// leader of that term or an earlier one). Leaders of later terms must hold it.
    committed_by: Term,
    /// The state digest after applying it, once some node has.
    digest: Option<u64>,
}

#[derive(Default)]
pub struct Invariants {
    /// The leader of each term seen so far.
    leaders: HashMap<Term, NodeId>,
    /// Every (index, term) any node ever persisted: its payload and the term before it.
    /// If all nodes agree on these, their logs match up to any common (index, term).
    entries: HashMap<(Index, Term), (Payload, Term)>,
    /// `committed[i]` is entry i + 1 once it is known to be committed.
    committed: Vec<Option<Committed>>,
    /// Counts changes to `committed`, so that a leader is checked again only after one.
    committed_version: u64,
    /// Per leader term: the commit index recorded so far, and `committed_version` when its
    /// completeness was last checked (a leader's log only grows while it leads).
    leader_checked: HashMap<Term, (Index, u64)>,
    /// Every vote granted: by term, who voted for whom.
    votes: HashMap<Term, HashMap<NodeId, NodeId>>,
}

impl Invariants {
    /// Election safety: at most one leader per term. Every leader is also checked for leader
    /// completeness, each time: its log holds every entry known to be committed in an
    /// earlier term. Call it whenever a node may have changed role, not only once a tick,
    /// so that a node that leads only briefly is seen.
    pub fn check_leaders(&mut self, shells: &[Shell]) -> Result<(), String> {
        for at in 0..shells.len() {
            self.check_leader(shells, at)?;
        }
        Ok(())
    }

    /// A node granted its vote in `term` to `candidate`; it must not have granted it to
    /// another node in that term.
    pub fn record_vote(
        &mut self,
        node: NodeId,
        term: Term,
        candidate: NodeId,
    ) -> Result<(), String> {
        let earlier = *self
            .votes
            .entry(term)
            .or_default()
            .entry(node)
            .or_insert(candidate);
        if earlier != candidate {
            return Err(format!(
                "election safety: node {node} voted for {earlier} and for {candidate} in term {term}"
            ));
        }
        Ok(())
    }

    /// [`Invariants::check_leaders`] for the node at `at` of `shells`. What a leader's
    /// commit index covers is recorded as committed, so later leaders are checked against it
    /// before any node has applied it.
    pub fn check_leader(&mut self, shells: &[Shell], at: usize) -> Result<(), String> {
        let shell = &shells[at];
        let Some(raft) = shell.raft.as_ref() else {
            return Ok(());
        };
        let status = raft.status();
        if status.role != Role::Leader {
            return Ok(());
        }
        let first_sight = !self.leaders.contains_key(&status.term);
        let leader = *self.leaders.entry(status.term).or_insert(shell.id);
        if leader != shell.id {
            return Err(format!(
                "election safety: nodes {leader} and {} both lead term {}",
                shell.id, status.term
            ));
        }
        if first_sight {
            self.check_elected_by_a_quorum(raft, status.term)?;
        }
        let (recorded, checked_version) = self
            .leader_checked
            .get(&status.term)
            .copied()
            .unwrap_or((0, u64::MAX));
        // Checked when the commit index moves, under the configuration it moved in (not at
        // first sight: a new leader's commit index is what it learned earlier, decided under
        // an earlier configuration).
        if !first_sight && status.commit > recorded {
            self.check_commit_held_by_a_quorum(raft, shells)?;
        }
        for index in recorded + 1..=status.commit {
            if let Some(entry) = shell.disk.entry(index) {
                self.record_committed(shell.id, entry, status.term, None)?;
            }
        }
        if checked_version != self.committed_version {
            self.check_leader_completeness(shell.id, status.term, &shell.disk)?;
        }
        self.leader_checked.insert(
            status.term,
            (recorded.max(status.commit), self.committed_version),
        );
        Ok(())
    }

    /// The votes a new leader got (its own and those made durable for it) are a quorum of
    /// the configuration it campaigned in: the one in force just before its first entry
    /// (a leader is first seen as soon as it wins, with its no-op last).
    fn check_elected_by_a_quorum(&self, raft: &Raft, term: Term) -> Result<(), String> {
        let id = raft.status().id;
        let campaigned_in = raft.membership_at(raft.status().last_index.saturating_sub(1));
        let mut voters: BTreeSet<NodeId> = self
            .votes
            .get(&term)
            .into_iter()
            .flatten()
            .filter(|&(_, &candidate)| candidate == id)
            .map(|(&voter, _)| voter)
            .collect();
        voters.insert(id);
        if !campaigned_in.has_quorum(|voter| voters.contains(&voter)) {
            return Err(format!(
                "quorum rules: node {id} leads term {term} with the votes of {voters:?}, not a \
                 quorum of {campaigned_in:?}"
            ));
        }
        Ok(())
    }

    /// The entry at a leader's commit index is held, with its term, by a quorum of the
    /// configuration in force on the leader (counting a node whose snapshot covers it).
    fn check_commit_held_by_a_quorum(&self, raft: &Raft, shells: &[Shell]) -> Result<(), String> {
        let status = raft.status();
        let commit = status.commit;
        let Some(term) = shells
            .iter()
            .find(|shell| shell.id == status.id)
            .and_then(|shell| shell.disk.term(commit))
        else {
            return Ok(());
        };
        let holds = |id: NodeId| {
            shells.iter().any(|shell| {
                shell.id == id
                    && (shell.disk.snapshot_meta().index >= commit
                        || shell.disk.term(commit) == Some(term))
            })
        };
        let membership = raft.membership();
        if commit > 0 && !membership.has_quorum(holds) {
            return Err(format!(
                "quorum rules: node {}, leader of term {}, committed entry {commit} (term \
                 {term}), which no quorum of {membership:?} holds",
                status.id, status.term
            ));
        }
        Ok(())
    }

    /// Records that `entry` is committed; it must be the only entry ever committed at its
    /// index.
    fn record_committed(
        &mut self,
        node: NodeId,
        entry: &Entry,
        committed_by: Term,
        digest: Option<u64>,
    ) -> Result<(), String> {
        let at = (entry.index - 1) as usize;
        if self.committed.len() <= at {
            self.committed.resize(at + 1, None);
        }
        let known = self.committed[at].get_or_insert_with(|| {
            self.committed_version += 1;
            Committed {
                term: entry.term,
                payload: entry.payload.clone(),
                committed_by,
                digest,
            }
        });
        if committed_by < known.committed_by {
            known.committed_by = committed_by;
            self.committed_version += 1;
        }
        if known.term != entry.term || known.payload != entry.payload {
            return Err(format!(
                "state machine safety: node {node} has entry {} of term {} ({:?}) committed, \
                 but term {} ({:?}) was committed there",
                entry.index, entry.term, entry.payload, known.term, known.payload
            ));
        }
        match (known.digest, digest) {
            (None, Some(digest)) => known.digest = Some(digest),
            (Some(first), Some(digest)) if first != digest => {
                return Err(format!(
                    "state machine safety: node {node}'s state after entry {} differs from \
                     another node's",
                    entry.index
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn check_leader_completeness(
        &self,
        leader: NodeId,
        term: Term,
        disk: &Disk,
    ) -> Result<(), String> {
        let snapshot = disk.snapshot_meta();
        for (at, committed) in self
            .committed
            .iter()
            .enumerate()
            .skip(snapshot.index as usize)
        {
            let index = at as Index + 1;
            let Some(committed) = committed
                .as_ref()
                .filter(|committed| committed.committed_by < term)
            else {
                continue;
            };
            let held = disk.entry(index);
            if held.is_none_or(|entry| {
                entry.term != committed.term || entry.payload != committed.payload
            }) {
                return Err(format!(
                    "leader completeness: node {leader}, leader of term {term}, lacks entry {index} \
                     of term {}, committed by term {} (it holds {:?})",
                    committed.term,
                    committed.committed_by,
                    held.map(|entry| entry.term)
                ));
            }
        }
        Ok(())
    }

    /// Log matching: entries with the same index and term hold the same command and follow
    /// entries of the same term (so by induction the logs agree up to there).
    pub fn check_persisted(
        &mut self,
        node: NodeId,
        disk: &Disk,
        entries: &[Entry],
    ) -> Result<(), String> {
        for entry in entries {
            let Some(previous) = disk.term(entry.index - 1) else {
                return Err(format!(
                    "node {node} persisted entry {} after a gap",
                    entry.index
                ));
            };
            let seen = self
                .entries
                .entry((entry.index, entry.term))
                .or_insert_with(|| (entry.payload.clone(), previous));
            if *seen != (entry.payload.clone(), previous) {
                return Err(format!(
                    "log matching: node {node} holds entry {} of term {} as {:?} after term {previous}, \
                     another node as {:?} after term {}",
                    entry.index, entry.term, entry.payload, seen.0, seen.1
                ));
            }
        }
        Ok(())
    }

    /// State machine safety: no two nodes apply different entries at an index, and their
    /// states agree after it.
    /// `term` is the node's current term.
    pub fn check_applied(
        &mut self,
        node: NodeId,
        term: Term,
        entry: &Entry,
        digest: u64,
    ) -> Result<(), String> {
        self.record_committed(node, entry, term, Some(digest))
    }

    /// A state restored from a snapshot equals the state every node had at that index.
    pub fn check_restored(&self, node: NodeId, state: &StateMachine) -> Result<(), String> {
        let Some(index) = state.applied.checked_sub(1) else {
            return Ok(());
        };
        match self.committed.get(index as usize).and_then(Option::as_ref) {
            Some(committed)
                if committed
                    .digest
                    .is_some_and(|digest| digest != state.digest) =>
            {
                Err(format!(
                    "state machine safety: node {node} restored a snapshot at {} that differs from \
                 the applied state there",
                    state.applied
                ))
            }
            _ => Ok(()),
        }
    }

    /// The highest index known to be committed.
    pub fn commit_index(&self) -> Index {
        self.committed.len() as Index
    }

    pub fn terms_with_leaders(&self) -> usize {
        self.leaders.len()
    }
}
