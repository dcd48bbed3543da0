//! What a leader knows about one follower's log, and how fast it may send to it (etcd's
//! `Progress`): one probe at a time while it looks for where the logs match, a pipeline of
//! up to `max_inflight` AppendEntries once they match, or a wait while a snapshot travels.

use std::collections::VecDeque;

use super::{Index, NodeId};

/// How the leader currently sends to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProgressState {
    /// Where the logs match is unknown: one AppendEntries, then wait for its answer.
    Probe,
    /// The logs match through `matched`: AppendEntries are sent without waiting, up to the
    /// inflight window.
    Replicate,
    /// The entries the follower needs were compacted; the snapshot through `index` was sent
    /// at tick `sent_at`.
    Snapshot { index: Index, sent_at: u64 },
}

/// The leader's view of one follower.
#[derive(Debug)]
pub(super) struct Progress {
    pub id: NodeId,
    /// The follower's log matches the leader's through here.
    pub matched: Index,
    /// The next index to send.
    pub next: Index,
    pub state: ProgressState,
    /// In `Probe`, a probe is out and unanswered.
    probe_sent: bool,
    /// The last index of each AppendEntries in flight, oldest first.
    inflights: VecDeque<Index>,
    max_inflight: usize,
    /// Heard from in the current check-quorum period.
    pub recent_active: bool,
    /// Send an AppendEntries at the next flush even if it has no entries (to find out
    /// whether the follower is missing entries already sent).
    wants_append: bool,
    /// The highest ReadIndex round the follower has confirmed.
    pub read_round: u64,
    /// `matched` when the previous heartbeat round went out, and whether AppendEntries were
    /// in flight then: the baseline for telling lost appends from slow ones.
    matched_at_round: Index,
    in_flight_at_round: bool,
    /// Entries were in flight for a whole heartbeat interval and none was acknowledged: they
    /// were probably lost, so the next heartbeat response may send again (once per round).
    stalled: bool,
}

impl Progress {
    pub fn new(id: NodeId, max_inflight: usize) -> Progress {
        Progress {
            id,
            matched: 0,
            next: 1,
            state: ProgressState::Probe,
            probe_sent: false,
            inflights: VecDeque::new(),
            max_inflight,
            recent_active: false,
            wants_append: false,
            read_round: 0,
            matched_at_round: 0,
            in_flight_at_round: false,
            stalled: false,
        }
    }

    /// Forgets everything, for a new term of leadership: probe from the end of the log.
    pub fn reset(&mut self, last_index: Index) {
        *self = Progress {
            next: last_index + 1,
            ..Progress::new(self.id, self.max_inflight)
        };
    }

    /// Nothing may be sent until an answer, a heartbeat response or a timeout.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.len() >= self.max_inflight,
            ProgressState::Snapshot { .. } => true,
        }
    }

    /// Whether the next flush should send this follower an AppendEntries.
    pub fn has_append_to_send(&self, last_index: Index) -> bool {
        !self.is_paused() && (self.next <= last_index || self.wants_append)
    }

    pub fn become_probe(&mut self) {
        self.next = match self.state {
            // Optimistically assume the snapshot arrived; a rejection will correct it.
            ProgressState::Snapshot { index, .. } => self.matched.max(index) + 1,
            _ => self.matched + 1,
        };
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.inflights.clear();
    }

    fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next = self.matched + 1;
        self.probe_sent = false;
        self.inflights.clear();
        // The pipeline starts empty: it can stall only from the next round on.
        self.in_flight_at_round = false;
        self.stalled = false;
    }

    pub fn become_snapshot(&mut self, index: Index, now: u64) {
        self.state = ProgressState::Snapshot {
            index,
            sent_at: now,
        };
        self.inflights.clear();
        self.wants_append = false;
    }

    /// Records an AppendEntries sent from `self.next`, whose last entry is `last_sent`.
    pub fn sent_append(&mut self, last_sent: Option<Index>) {
        self.wants_append = false;
        match self.state {
            ProgressState::Replicate => {
                if let Some(last) = last_sent {
                    self.next = last + 1;
                    self.inflights.push_back(last);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot { .. } => {}
        }
    }

    /// The follower accepted entries through `match_index`. Returns whether `matched` grew.
    pub fn accepted(&mut self, match_index: Index, first_index: Index) -> bool {
        let advanced = match_index > self.matched;
        self.matched = self.matched.max(match_index);
        self.next = self.next.max(self.matched + 1);
        match self.state {
            ProgressState::Probe => self.become_replicate(),
            ProgressState::Replicate => {
                while self
                    .inflights
                    .front()
                    .is_some_and(|&last| last <= match_index)
                {
                    self.inflights.pop_front();
                }
            }
            ProgressState::Snapshot { .. } => {
                if self.matched + 1 >= first_index {
                    self.become_replicate();
                }
            }
        }
        advanced
    }

    /// The follower rejected an AppendEntries; the leader's best guess of where the logs
    /// match is now `next_hint - 1`. Goes back to probing, never below `matched` and never
    /// forward.
    pub fn rejected(&mut self, next_hint: Index) {
        if matches!(self.state, ProgressState::Snapshot { .. }) {
            // Answers an AppendEntries sent before the snapshot: stale.
            return;
        }
        let upper = self.next.max(self.matched + 1);
        self.become_probe();
        self.next = next_hint.clamp(self.matched + 1, upper);
    }

    /// A periodic heartbeat round goes out: decide whether the follower has stalled since
    /// the previous one. A follower that is slow but alive keeps `matched` growing; one that
    /// acknowledged nothing while appends were in flight for the whole interval probably
    /// lost them.
    pub fn start_heartbeat_round(&mut self) {
        self.stalled = self.state == ProgressState::Replicate
            && self.in_flight_at_round
            && self.matched == self.matched_at_round;
        self.matched_at_round = self.matched;
        self.in_flight_at_round = !self.inflights.is_empty();
    }

    /// The follower answered a heartbeat: it is alive, so resume sending if that was paused
    /// for lack of news, and find out whether it misses entries `last_index` has. A
    /// snapshot unanswered for `snapshot_timeout` ticks is assumed lost.
    pub fn heartbeat_answered(&mut self, now: u64, snapshot_timeout: u64, last_index: Index) {
        self.recent_active = true;
        match self.state {
            // The probe or its answer may have been lost; one probe at a time still holds.
            ProgressState::Probe => {
                self.probe_sent = false;
                if self.matched < last_index {
                    self.wants_append = true;
                }
            }
            // Only once the pipeline has stalled: sending on every heartbeat response would
            // grow the window past `max_inflight` for a follower that is merely slow, and an
            // empty AppendEntries overtaking the entries in flight would be rejected and drop
            // the follower back to probing.
            ProgressState::Replicate => {
                if self.stalled && self.matched < last_index {
                    self.stalled = false;
                    // Lost appends are found out by the follower rejecting the next one.
                    self.wants_append = true;
                    if self.inflights.len() >= self.max_inflight {
                        self.inflights.pop_front();
                    }
                }
            }
            ProgressState::Snapshot { sent_at, .. } => {
                if now.saturating_sub(sent_at) >= snapshot_timeout {
                    // The snapshot was probably lost: probe at once rather than a round later.
                    self.become_probe();
                    if self.matched < last_index {
                        self.wants_append = true;
                    }
                }
            }
        }
    }

    /// The transport could not deliver to the follower: stop pipelining into the void.
    pub fn unreachable(&mut self) {
        match self.state {
            ProgressState::Replicate => self.become_probe(),
            ProgressState::Snapshot { .. } => {
                self.become_probe();
                self.probe_sent = true;
            }
            ProgressState::Probe => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replicating(matched: Index, max_inflight: usize) -> Progress {
        let mut progress = Progress::new(2, max_inflight);
        progress.reset(matched);
        progress.accepted(matched, 1);
        assert_eq!(progress.state, ProgressState::Replicate);
        progress
    }

    #[test]
    fn a_probe_pauses_until_answered_and_success_switches_to_replicate() {
        let mut progress = Progress::new(2, 4);
        progress.reset(10);
        assert!(progress.has_append_to_send(11));
        progress.sent_append(Some(11));
        assert!(progress.is_paused());
        assert!(progress.accepted(11, 1));
        assert_eq!(
            (progress.state, progress.matched, progress.next),
            (ProgressState::Replicate, 11, 12)
        );
    }

    #[test]
    fn replicate_pipelines_until_the_window_is_full_and_acks_free_it() {
        let mut progress = replicating(5, 2);
        progress.sent_append(Some(7));
        assert!(!progress.is_paused());
        progress.sent_append(Some(9));
        assert!(progress.is_paused(), "two messages fill a window of two");
        assert_eq!(progress.next, 10);
        progress.accepted(7, 1);
        assert!(!progress.is_paused());
        assert_eq!(progress.matched, 7);
    }

    #[test]
    fn a_heartbeat_response_frees_a_slot_only_after_a_whole_round_without_acks() {
        let mut progress = replicating(5, 1);
        progress.sent_append(Some(9));
        progress.start_heartbeat_round();
        progress.heartbeat_answered(0, 100, 9);
        assert!(
            progress.is_paused(),
            "in flight for less than a round: maybe slow"
        );
        progress.start_heartbeat_round();
        progress.heartbeat_answered(0, 100, 9);
        assert!(
            !progress.is_paused(),
            "a whole round without an ack: probably lost"
        );
        assert!(progress.has_append_to_send(9), "an empty append finds out");
        progress.sent_append(None);
        progress.heartbeat_answered(0, 100, 9);
        assert!(!progress.has_append_to_send(9), "once per round");
    }

    #[test]
    fn a_slow_follower_that_keeps_acknowledging_never_gets_more_than_the_window() {
        let mut progress = replicating(5, 2);
        let mut last_sent = 5;
        for round in 0..10 {
            while !progress.is_paused() {
                last_sent += 2;
                progress.sent_append(Some(last_sent));
            }
            progress.start_heartbeat_round();
            // The heartbeat answers overtake the appends, which are slow but arrive.
            progress.heartbeat_answered(0, 100, last_sent);
            progress.heartbeat_answered(0, 100, last_sent);
            assert_eq!(progress.inflights.len(), 2, "round {round}");
            assert!(!progress.has_append_to_send(last_sent), "round {round}");
            progress.accepted(progress.matched + 2, 1);
        }
    }

    #[test]
    fn a_probe_is_retried_on_every_heartbeat_response() {
        let mut progress = Progress::new(2, 8);
        progress.reset(10);
        progress.sent_append(Some(11));
        assert!(progress.is_paused());
        progress.heartbeat_answered(0, 100, 11);
        assert!(progress.has_append_to_send(11));
    }

    #[test]
    fn a_rejection_probes_from_the_hint_but_never_below_matched_or_forward() {
        let mut progress = replicating(5, 8);
        progress.sent_append(Some(20));
        progress.rejected(12);
        assert_eq!((progress.state, progress.next), (ProgressState::Probe, 12));
        progress.rejected(2);
        assert_eq!(progress.next, 6);
        progress.rejected(50);
        assert_eq!(progress.next, 6);
    }

    #[test]
    fn a_lost_snapshot_is_retried_after_the_timeout() {
        let mut progress = Progress::new(2, 8);
        progress.become_snapshot(100, 10);
        assert!(progress.is_paused());
        progress.heartbeat_answered(15, 20, 200);
        assert!(progress.is_paused(), "still within the timeout");
        progress.heartbeat_answered(30, 20, 200);
        assert_eq!((progress.state, progress.next), (ProgressState::Probe, 101));
        assert!(!progress.is_paused());
    }

    #[test]
    fn an_acknowledged_snapshot_resumes_replication_after_it() {
        let mut progress = Progress::new(2, 8);
        progress.become_snapshot(100, 10);
        progress.accepted(100, 101);
        assert_eq!(
            (progress.state, progress.next),
            (ProgressState::Replicate, 101)
        );
    }

    #[test]
    fn an_unreachable_follower_is_probed_instead_of_pipelined() {
        let mut progress = replicating(5, 8);
        progress.sent_append(Some(9));
        progress.unreachable();
        assert_eq!((progress.state, progress.next), (ProgressState::Probe, 6));
    }
}
