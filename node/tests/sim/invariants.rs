//! The safety properties of Raft (Figure 3 of the paper), checked as the simulation runs:
//! election safety, log matching, leader completeness and state machine safety.

use std::collections::HashMap;

use faultline_node::raft::{Entry, Index, NodeId, Payload, Role, Term};

use super::shell::{Disk, Shell, StateMachine};

/// A committed entry as first applied anywhere, and the state digest after applying it.
#[derive(Clone)]
struct Committed {
    term: Term,
    payload: Payload,
    digest: u64,
}

#[derive(Default)]
pub struct Invariants {
    /// The leader of each term seen so far.
    leaders: HashMap<Term, NodeId>,
    /// Every (index, term) any node ever persisted: its payload and the term before it.
    /// If all nodes agree on these, their logs match up to any common (index, term).
    entries: HashMap<(Index, Term), (Payload, Term)>,
    /// `committed[i]` is entry i + 1 once some node applied it.
    committed: Vec<Option<Committed>>,
}

impl Invariants {
    /// Election safety: at most one leader per term. Each new leader is also checked for
    /// leader completeness: its log holds every entry committed in an earlier term.
    pub fn check_leaders(&mut self, shells: &[Shell]) -> Result<(), String> {
        for shell in shells {
            let Some(raft) = shell.raft.as_ref() else {
                continue;
            };
            let status = raft.status();
            if status.role != Role::Leader {
                continue;
            }
            match self.leaders.get(&status.term) {
                Some(&leader) if leader != shell.id => {
                    return Err(format!(
                        "election safety: nodes {leader} and {} both lead term {}",
                        shell.id, status.term
                    ));
                }
                Some(_) => {}
                None => {
                    self.leaders.insert(status.term, shell.id);
                    self.check_leader_completeness(shell.id, status.term, &shell.disk)?;
                }
            }
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
        for (at, committed) in self.committed.iter().enumerate() {
            let index = at as Index + 1;
            let Some(committed) = committed.as_ref().filter(|committed| committed.term < term)
            else {
                continue;
            };
            if index <= snapshot.index {
                continue;
            }
            let held = disk.entry(index);
            if held.is_none_or(|entry| {
                entry.term != committed.term || entry.payload != committed.payload
            }) {
                return Err(format!(
                    "leader completeness: node {leader}, leader of term {term}, lacks entry {index} \
                     committed in term {} (it holds {:?})",
                    committed.term,
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
    pub fn check_applied(
        &mut self,
        node: NodeId,
        entry: &Entry,
        digest: u64,
    ) -> Result<(), String> {
        let at = (entry.index - 1) as usize;
        if self.committed.len() <= at {
            self.committed.resize(at + 1, None);
        }
        let applied = Committed {
            term: entry.term,
            payload: entry.payload.clone(),
            digest,
        };
        let first = self.committed[at].get_or_insert_with(|| applied.clone());
        if first.term != applied.term || first.payload != applied.payload || first.digest != digest
        {
            return Err(format!(
                "state machine safety: node {node} applied entry {} of term {} ({:?}), \
                 another node applied term {} ({:?}) there",
                entry.index, entry.term, entry.payload, first.term, first.payload
            ));
        }
        Ok(())
    }

    /// A state restored from a snapshot equals the state every node had at that index.
    pub fn check_restored(&self, node: NodeId, state: &StateMachine) -> Result<(), String> {
        let Some(index) = state.applied.checked_sub(1) else {
            return Ok(());
        };
        match self.committed.get(index as usize).and_then(Option::as_ref) {
            Some(committed) if committed.digest != state.digest => Err(format!(
                "state machine safety: node {node} restored a snapshot at {} that differs from \
                 the applied state there",
                state.applied
            )),
            _ => Ok(()),
        }
    }

    /// The highest index any node has applied.
    pub fn commit_index(&self) -> Index {
        self.committed.len() as Index
    }

    pub fn terms_with_leaders(&self) -> usize {
        self.leaders.len()
    }
}
