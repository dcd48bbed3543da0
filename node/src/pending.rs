//! Writes a leader proposed and that wait for their outcome, and what every answer a client
//! can get means.
//!
//! A proposal is known by its log position: the core appends it at `(index, term)` and the
//! write happened exactly if the entry committed at `index` has that `term` (Log Matching:
//! one leader per term writes one entry per index). Until this node applies `index`, it does
//! not know. In particular, a new proposal at an index where an older one still waits says
//! nothing about the older one: this node's log was cut back below it by another leader,
//! but a third node may still hold the older entry, win an election and commit it. (Five
//! nodes A to E, all holding entries 1 to 4 of term 1: leader A appends 5 to 7 in term 1 and
//! reaches only C; B wins term 2 with D and E and replaces A's entries from 5 on with its
//! no-op `(5, 2)`; A wins term 3 with B and D, appends its no-op at 6 and a new write at
//! `(7, 3)`; C, whose log ends at `(7, 1)`, still wins term 4 with D and E, whose logs end
//! at `(4, 1)`, and commits `(7, 1)`.) So both keep waiting
//! here, and [`PendingWrites::applied`] settles them when `index` is applied: the one whose
//! term matches gets the entry's result, the others certainly did not happen, since no other
//! entry can ever be committed at that index (State Machine Safety).
//!
//! # What a client may conclude from each answer
//!
//! Writes (`PUT`, `DELETE`, `POST .../cas`, `POST .../append`):
//!
//! | answer | from | the write | why |
//! |---|---|---|---|
//! | 200 | [`PendingWrites::applied`]: its own entry was applied | happened, with this result | the entry at `(index, term)` was committed and applied here |
//! | 409 cas mismatch, 409 not a list, 404 (delete of a missing key) | same | happened and changed nothing | applied like a 200, its result is a refusal |
//! | 200 or 409 to a retry (`client-id`, `request-seq`) | same | happened once, by this attempt or an earlier one | the session answers a retry of the latest write with the first result (a 409 without a value over 1 KiB: `value_bytes` instead) |
//! | 500 stale retry | same, result `StaleSequence` | unknown | this retry changed nothing, but an earlier attempt may have been applied and its answer is no longer kept |
//! | 504 outcome unknown, answer forgotten | same, result `AnswerForgotten` | unknown | the session still knows the client's latest sequence number, so this retry changed nothing; but it forgot that write's answer to stay within its bytes ([`crate::sessions`]), and an earlier attempt may have been applied |
//! | 504 outcome unknown, session expired | same, result `SessionExpired` | unknown | the session expired ([`crate::sessions`]): the table no longer knows whether this is a retry, so it applies nothing, and an earlier attempt may have been applied |
//! | 400 unknown session | same, result `UnknownSession` | did not happen | no session with this id was ever opened: every replica refused it at the same index |
//! | 307 redirect, 503 no leader | the core refused the proposal (not the leader) | did not happen | nothing was appended anywhere |
//! | 503 not applied | [`PendingWrites::applied`]: another entry was applied at its index | did not happen (this attempt) | one entry per index is ever committed, and it is another one |
//! | 503 shutting down | the loop no longer takes inputs | did not happen | the request never reached the core |
//! | 504 outcome unknown | [`PendingWrites::covered_by_snapshot`] | unknown | a snapshot from the leader replaced the log up to its index; whether it holds this write cannot be told |
//! | 504 request timeout | the API gave up waiting (`--request-timeout`) | unknown | the write may still commit, then or later; it keeps waiting here, unanswered |
//! | 500 node stopped | the loop ended (shutdown or a fatal error) with the write waiting | unknown | it may be in the log and commit after a restart |
//! | 400, 413 | the API refused the request | did not happen | it never reached the core |
//! | connection lost | the process died (crash, kill) | unknown | as for a 500 node stopped |
//!
//! Opening a session (`POST /sessions`) is answered like a write: 201 with its id when
//! opened, 503 sessions full when not (every replica refused it at the same index), and the
//! refusals and unknowns of the table's last rows.
//!
//! The session answers hold while the client's session lives: it expires once a million
//! log entries have been applied after the client's latest write ([`crate::sessions`]);
//! after that its writes get "session expired", and none is applied.
//!
//! A leader that steps down answers nothing at that moment: its waiting writes keep waiting
//! and are settled when it applies their index as a follower, by a snapshot, or by the
//! API's timeout. A restarted node has no waiting writes; their clients saw the connection
//! drop.
//!
//! Reads have no effect, so any refusal is safe to record as a failure; what matters is
//! that a 200 is linearizable:
//!
//! | answer | means |
//! |---|---|
//! | 200, 404 (`GET /kv/{key}`) | the value at some instant between request and answer (ReadIndex: leadership was confirmed by a quorum after the request arrived, and the state machine had applied the read index) |
//! | 200, 404 with `?stale=true` | whatever this node has applied; may be stale |
//! | 307 redirect, 503 no leader | not served: this node is not the leader |
//! | 503 read aborted | not served: leadership was lost before a quorum confirmed it |
//! | 504 request timeout, 500 node stopped | not served, or served too late to answer |

use std::collections::BTreeMap;

use crate::raft::{Index, Term};

/// Proposed writes waiting for their index to be applied, each with what answers it
/// (`W`: the driver's reply channel, the simulator's client). Several may wait at one index,
/// proposed in different terms.
#[derive(Debug)]
pub struct PendingWrites<W> {
    by_index: BTreeMap<Index, Vec<Proposal<W>>>,
    len: usize,
}

#[derive(Debug)]
struct Proposal<W> {
    term: Term,
    waiter: W,
}

/// The writes settled by applying one index.
#[derive(Debug, PartialEq, Eq)]
pub struct Settled<W> {
    /// The write whose entry was applied: answer it with the entry's result.
    pub applied: Option<W>,
    /// Writes proposed at that index in other terms: another entry was committed there, so
    /// they never will be. Answer them "not applied".
    pub not_applied: Vec<W>,
}

impl<W> Default for PendingWrites<W> {
    fn default() -> Self {
        PendingWrites {
            by_index: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<W> PendingWrites<W> {
    /// No write waiting.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a proposal the core accepted at `(index, term)`. Returns how many earlier
    /// proposals still wait at the same index: this node's log was cut back below them and
    /// it reused the index as a new leader. They keep waiting (see the module docs).
    pub fn proposed(&mut self, index: Index, term: Term, waiter: W) -> usize {
        let waiting = self.by_index.entry(index).or_default();
        debug_assert!(
            waiting.iter().all(|proposal| proposal.term != term),
            "two proposals at index {index} in term {term}"
        );
        let earlier = waiting.len();
        waiting.push(Proposal { term, waiter });
        self.len += 1;
        earlier
    }

    /// The entry `(index, term)` was applied: settles every write waiting at `index`.
    /// Indexes must be reported in order, each once, as they are applied (or skipped by
    /// [`PendingWrites::covered_by_snapshot`]).
    pub fn applied(&mut self, index: Index, term: Term) -> Settled<W> {
        let mut settled = Settled {
            applied: None,
            not_applied: Vec::new(),
        };
        for proposal in self.by_index.remove(&index).unwrap_or_default() {
            self.len -= 1;
            if proposal.term == term {
                settled.applied = Some(proposal.waiter);
            } else {
                settled.not_applied.push(proposal.waiter);
            }
        }
        settled
    }

    /// Takes the write proposed at `(index, term)` out before its entry is applied (for the
    /// `early-ack` bug, which answers at append time).
    pub fn take(&mut self, index: Index, term: Term) -> Option<W> {
        let waiting = self.by_index.get_mut(&index)?;
        let at = waiting.iter().position(|proposal| proposal.term == term)?;
        let proposal = waiting.swap_remove(at);
        if waiting.is_empty() {
            self.by_index.remove(&index);
        }
        self.len -= 1;
        Some(proposal.waiter)
    }

    /// A snapshot from the leader replaced the log through `index`: removes and returns
    /// every write waiting at or below it. Their outcome is unknown: the snapshot holds the
    /// state, not which entries made it.
    pub fn covered_by_snapshot(&mut self, index: Index) -> Vec<W> {
        let above = self.by_index.split_off(&(index + 1));
        let covered = std::mem::replace(&mut self.by_index, above);
        let waiters: Vec<W> = covered
            .into_values()
            .flatten()
            .map(|proposal| proposal.waiter)
            .collect();
        self.len -= waiters.len();
        waiters
    }

    /// How many writes wait.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no write waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled(
        applied: Option<&'static str>,
        not_applied: &[&'static str],
    ) -> Settled<&'static str> {
        Settled {
            applied,
            not_applied: not_applied.to_vec(),
        }
    }

    #[test]
    fn a_write_is_settled_by_the_entry_applied_at_its_index() {
        let mut pending = PendingWrites::new();
        assert_eq!(pending.proposed(5, 2, "a"), 0);
        assert_eq!(pending.proposed(6, 2, "b"), 0);
        assert_eq!(pending.applied(5, 2), settled(Some("a"), &[]));
        assert_eq!(
            pending.applied(6, 3),
            settled(None, &["b"]),
            "another leader's entry took index 6: b never happens"
        );
        assert!(pending.is_empty());
        assert_eq!(pending.applied(7, 3), settled(None, &[]));
    }

    #[test]
    fn a_write_displaced_by_a_new_proposal_waits_and_may_still_be_the_one_applied() {
        let mut pending = PendingWrites::new();
        pending.proposed(7, 1, "old");
        assert_eq!(
            pending.proposed(7, 3, "new"),
            1,
            "the log was cut back and index 7 reused"
        );
        assert_eq!(pending.len(), 2);
        // Another node kept (7, 1) and committed it as leader of term 4.
        assert_eq!(pending.applied(7, 1), settled(Some("old"), &["new"]));
        assert!(pending.is_empty());

        pending.proposed(7, 1, "old");
        pending.proposed(7, 3, "new");
        assert_eq!(pending.applied(7, 3), settled(Some("new"), &["old"]));

        pending.proposed(7, 1, "old");
        pending.proposed(7, 3, "new");
        pending.proposed(7, 5, "newest");
        assert_eq!(
            pending.applied(7, 4),
            settled(None, &["old", "new", "newest"])
        );
    }

    #[test]
    fn a_snapshot_leaves_the_writes_it_covers_unknown_and_the_rest_waiting() {
        let mut pending = PendingWrites::new();
        pending.proposed(3, 1, "a");
        pending.proposed(3, 2, "b");
        pending.proposed(4, 2, "c");
        pending.proposed(5, 2, "d");
        assert_eq!(pending.covered_by_snapshot(4), ["a", "b", "c"]);
        assert_eq!(pending.len(), 1);
        assert_eq!(pending.applied(5, 2), settled(Some("d"), &[]));
    }

    #[test]
    fn an_early_answer_takes_only_the_write_of_that_term() {
        let mut pending = PendingWrites::new();
        pending.proposed(7, 1, "old");
        pending.proposed(7, 3, "new");
        assert_eq!(pending.take(7, 2), None);
        assert_eq!(pending.take(7, 3), Some("new"));
        assert_eq!(pending.take(7, 3), None);
        assert_eq!(pending.len(), 1);
        assert_eq!(pending.applied(7, 3), settled(None, &["old"]));
        assert!(pending.is_empty());
    }
}
