//! Linearizable reads without writing to the log (ReadIndex, thesis §6.4).
//!
//! A read remembers the commit index at the time it arrives. All reads that arrive between
//! two `ready()` calls form one round: the leader sends one heartbeat carrying the round's
//! number to every follower, and once a quorum has answered with that number (or a later
//! one), the leader knows it was still the leader after the reads arrived, so the reads may
//! be served from any state machine that has applied their index. A new leader holds reads
//! until it has committed an entry of its own term, because before that its commit index
//! may lag behind writes its predecessor acknowledged.
//!
//! AppendEntries carry the latest round too, so their answers confirm it as well. Under
//! [`ReadMode::Lease`](super::ReadMode) each round also remembers the tick it was sent at: a
//! quorum's answer to it starts the leader's lease from that tick. There, every periodic
//! heartbeat and the first appends of each tick start a round of their own, so that under
//! load the lease counts from the last appends a quorum answered.

use std::collections::VecDeque;

use super::{Index, ReadState};

/// The reads a leader has not yet confirmed, oldest first.
#[derive(Debug, Default)]
pub(super) struct ReadQueue {
    /// The number of the latest round sent (0: none). Never reused, across terms.
    round: u64,
    /// The tick the latest round was sent at.
    latest_sent_at: Option<u64>,
    /// Arrived before the leader committed an entry of its term; no index yet.
    held: Vec<u64>,
    /// Arrived since the last round was sent.
    unsent: Vec<ReadState>,
    /// Sent, waiting for a quorum to confirm their round.
    sent: VecDeque<SentRound>,
}

/// A round sent to the followers.
#[derive(Debug)]
struct SentRound {
    round: u64,
    /// The leader's tick when it was sent.
    sent_at: u64,
    reads: Vec<ReadState>,
}

impl ReadQueue {
    /// Queues a read; `commit` is the leader's commit index if it has committed an entry of
    /// its own term, `None` if the read must be held until it has.
    pub fn push(&mut self, request_id: u64, commit: Option<Index>) {
        match commit {
            Some(index) => self.unsent.push(ReadState { request_id, index }),
            None => self.held.push(request_id),
        }
    }

    /// The leader committed an entry of its term: held reads take today's commit index.
    pub fn release_held(&mut self, commit: Index) {
        let released = self.held.drain(..).map(|request_id| ReadState {
            request_id,
            index: commit,
        });
        self.unsent.extend(released);
    }

    pub fn has_unsent(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// The latest round sent; heartbeats carry it, so their answers confirm it.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// The tick the latest round was sent at, if one was.
    pub fn latest_sent_at(&self) -> Option<u64> {
        self.latest_sent_at
    }

    /// Puts every unsent read into a new round, sent at tick `now`, and returns its number.
    pub fn start_round(&mut self, now: u64) -> u64 {
        self.round += 1;
        self.latest_sent_at = Some(now);
        self.sent.push_back(SentRound {
            round: self.round,
            sent_at: now,
            reads: std::mem::take(&mut self.unsent),
        });
        self.round
    }

    /// A quorum confirmed leadership at `round` or later: its reads and earlier ones are
    /// ready to be served. Returns when the latest round this confirmed was sent, if any
    /// was still waiting.
    pub fn confirm(&mut self, round: u64, out: &mut Vec<ReadState>) -> Option<u64> {
        let mut sent_at = None;
        while self.sent.front().is_some_and(|sent| sent.round <= round) {
            if let Some(sent) = self.sent.pop_front() {
                out.extend(sent.reads);
                sent_at = Some(sent.sent_at);
            }
        }
        sent_at
    }

    /// The leader lost its leadership: no pending read will be confirmed. Oldest first
    /// (held reads exist only while nothing else is queued).
    pub fn fail_all(&mut self, out: &mut Vec<u64>) {
        let sent = self.sent.drain(..).flat_map(|sent| sent.reads);
        out.extend(
            sent.chain(self.unsent.drain(..))
                .map(|read| read.request_id),
        );
        out.append(&mut self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(request_id: u64, index: Index) -> ReadState {
        ReadState { request_id, index }
    }

    #[test]
    fn reads_of_one_batch_share_a_round_and_keep_their_own_index() {
        let mut queue = ReadQueue::default();
        queue.push(1, Some(5));
        queue.push(2, Some(7));
        assert_eq!(queue.start_round(10), 1);
        assert!(!queue.has_unsent());
        let mut out = Vec::new();
        queue.confirm(0, &mut out);
        assert!(out.is_empty());
        queue.confirm(1, &mut out);
        assert_eq!(out, [read(1, 5), read(2, 7)]);
    }

    #[test]
    fn confirming_a_later_round_confirms_the_earlier_ones() {
        let mut queue = ReadQueue::default();
        queue.push(1, Some(5));
        queue.start_round(10);
        queue.push(2, Some(6));
        queue.start_round(12);
        let mut out = Vec::new();
        assert_eq!(
            queue.confirm(2, &mut out),
            Some(12),
            "the later round's tick"
        );
        assert_eq!(out, [read(1, 5), read(2, 6)]);
        assert_eq!(queue.confirm(2, &mut out), None, "nothing left to confirm");
    }

    #[test]
    fn held_reads_take_the_commit_index_of_the_leaders_first_commit() {
        let mut queue = ReadQueue::default();
        queue.push(1, None);
        assert!(!queue.has_unsent());
        queue.release_held(9);
        let round = queue.start_round(3);
        let mut out = Vec::new();
        queue.confirm(round, &mut out);
        assert_eq!(out, [read(1, 9)]);
    }

    #[test]
    fn losing_leadership_fails_every_pending_read() {
        let mut queue = ReadQueue::default();
        queue.push(1, Some(1));
        queue.start_round(1);
        queue.push(2, Some(1));
        queue.push(3, None);
        let mut failed = Vec::new();
        queue.fail_all(&mut failed);
        assert_eq!(failed, [1, 2, 3]);
        let mut out = Vec::new();
        queue.confirm(u64::MAX, &mut out);
        assert!(out.is_empty());
    }
}
