//! Simulated clients: they propose unique commands and issue linearizable reads, and check
//! that a read's index covers every write acknowledged before the read started.

use std::collections::HashMap;

use bytes::Bytes;
use faultline_node::raft::{Entry, Index, NodeId, Payload, ReadState, Term};

/// A proposal the leader accepted, waiting to be applied there.
struct PendingWrite {
    index: Index,
    term: Term,
    command: Bytes,
    proposed_at: u64,
}

#[derive(Default)]
pub struct Clients {
    next_command: u64,
    next_read: u64,
    /// The leader the clients last heard of.
    pub leader_hint: Option<NodeId>,
    writes: HashMap<NodeId, Vec<PendingWrite>>,
    /// (node, request id) -> the highest acknowledged write index when the read started.
    reads: HashMap<(NodeId, u64), Index>,
    /// The highest index of an acknowledged write.
    max_acked: Index,
    /// The first write proposed at or after this tick that was acknowledged, once one is.
    watch_from: u64,
    pub watched_write: Option<Index>,
    pub writes_acked: u64,
    pub reads_checked: u64,
}

impl Clients {
    /// A fresh, unique command.
    pub fn command(&mut self) -> Bytes {
        self.next_command += 1;
        Bytes::from(self.next_command.to_le_bytes().to_vec())
    }

    pub fn proposed(
        &mut self,
        node: NodeId,
        (index, term): (Index, Term),
        command: Bytes,
        now: u64,
    ) {
        let write = PendingWrite {
            index,
            term,
            command,
            proposed_at: now,
        };
        self.writes.entry(node).or_default().push(write);
    }

    /// A new read id, remembering which writes it must see.
    pub fn read_started(&mut self, node: NodeId) -> u64 {
        self.next_read += 1;
        self.reads.insert((node, self.next_read), self.max_acked);
        self.next_read
    }

    pub fn read_refused(&mut self, node: NodeId, request_id: u64) {
        self.reads.remove(&(node, request_id));
    }

    /// A node applied an entry: the write it proposed there is acknowledged, or lost if a
    /// different entry took its place.
    pub fn applied(&mut self, node: NodeId, entry: &Entry) -> Result<(), String> {
        let Some(writes) = self.writes.get_mut(&node) else {
            return Ok(());
        };
        let (at_index, others): (Vec<_>, Vec<_>) = std::mem::take(writes)
            .into_iter()
            .partition(|write| write.index == entry.index);
        *writes = others;
        let Some(write) = at_index.into_iter().find(|write| write.term == entry.term) else {
            return Ok(());
        };
        if entry.payload != Payload::Command(write.command.clone()) {
            return Err(format!(
                "node {node} applied {:?} at {} of term {}, where it had accepted another command",
                entry.payload, entry.index, entry.term
            ));
        }
        self.writes_acked += 1;
        self.max_acked = self.max_acked.max(write.index);
        if write.proposed_at >= self.watch_from && self.watched_write.is_none() {
            self.watched_write = Some(write.index);
        }
        Ok(())
    }

    /// Linearizable reads: a confirmed read's index is at least that of every write
    /// acknowledged before the read started.
    pub fn read_confirmed(&mut self, node: NodeId, read: ReadState) -> Result<(), String> {
        let Some(required) = self.reads.remove(&(node, read.request_id)) else {
            return Err(format!(
                "node {node} confirmed read {} that it was never asked",
                read.request_id
            ));
        };
        if read.index < required {
            return Err(format!(
                "stale read: node {node} confirmed read {} at index {}, but a write at {required} \
                 was acknowledged before it started",
                read.request_id, read.index
            ));
        }
        self.reads_checked += 1;
        Ok(())
    }

    /// The node crashed: its clients time out and forget what they were waiting for.
    pub fn node_crashed(&mut self, node: NodeId) {
        self.writes.remove(&node);
        self.reads.retain(|&(read_node, _), _| read_node != node);
        if self.leader_hint == Some(node) {
            self.leader_hint = None;
        }
    }

    /// From now on, watch for the first write proposed and acknowledged.
    pub fn watch_writes_from(&mut self, now: u64) {
        self.watch_from = now;
        self.watched_write = None;
    }
}
