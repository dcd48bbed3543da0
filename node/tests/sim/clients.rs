//! Simulated clients: a fixed number of them, each with at most one operation outstanding
//! (as in Jepsen), proposing unique commands and issuing linearizable reads. They check
//! that a read's index covers every write acknowledged before the read started.

use std::collections::HashMap;

use bytes::Bytes;
use faultline_node::raft::{Entry, Index, NodeId, Payload, ReadState, Term};

/// A client gives up on an operation after this many ticks.
const TIMEOUT_TICKS: u64 = 100;

/// A proposal a leader accepted, waiting to be applied there.
struct PendingWrite {
    client: usize,
    index: Index,
    term: Term,
    command: Bytes,
    proposed_at: u64,
}

/// A read a leader accepted, waiting to be confirmed.
struct PendingRead {
    client: usize,
    /// The highest acknowledged write index when the read started.
    required: Index,
}

pub struct Clients {
    /// For each client, the tick at which it gives up on its outstanding operation.
    busy_until: Vec<Option<u64>>,
    next_command: u64,
    next_read: u64,
    /// The leader the clients last heard of.
    pub leader_hint: Option<NodeId>,
    writes: HashMap<NodeId, Vec<PendingWrite>>,
    reads: HashMap<(NodeId, u64), PendingRead>,
    max_acked: Index,
    /// Writes proposed from this tick on are watched; the first acknowledged is recorded.
    watch_from: u64,
    pub watched_write: Option<Index>,
    pub writes_acked: u64,
    pub reads_checked: u64,
}

impl Clients {
    pub fn new(count: usize) -> Clients {
        Clients {
            busy_until: vec![None; count],
            next_command: 0,
            next_read: 0,
            leader_hint: None,
            writes: HashMap::new(),
            reads: HashMap::new(),
            max_acked: 0,
            watch_from: 0,
            watched_write: None,
            writes_acked: 0,
            reads_checked: 0,
        }
    }

    /// Clients whose operation timed out forget it; returns the clients free to act.
    pub fn idle(&mut self, now: u64) -> Vec<usize> {
        let mut idle = Vec::new();
        for (client, busy) in self.busy_until.iter_mut().enumerate() {
            if busy.is_some_and(|until| until <= now) {
                *busy = None;
                self.writes
                    .values_mut()
                    .for_each(|writes| writes.retain(|write| write.client != client));
                self.reads.retain(|_, read| read.client != client);
            }
            if busy.is_none() {
                idle.push(client);
            }
        }
        idle
    }

    /// A fresh, unique command.
    pub fn command(&mut self) -> Bytes {
        self.next_command += 1;
        Bytes::from(self.next_command.to_le_bytes().to_vec())
    }

    pub fn proposed(
        &mut self,
        client: usize,
        node: NodeId,
        (index, term): (Index, Term),
        command: Bytes,
        now: u64,
    ) {
        self.busy_until[client] = Some(now + TIMEOUT_TICKS);
        let write = PendingWrite {
            client,
            index,
            term,
            command,
            proposed_at: now,
        };
        self.writes.entry(node).or_default().push(write);
    }

    /// A new read id, remembering which writes the read must see.
    pub fn read_started(&mut self, client: usize, node: NodeId, now: u64) -> u64 {
        self.busy_until[client] = Some(now + TIMEOUT_TICKS);
        self.next_read += 1;
        self.reads.insert(
            (node, self.next_read),
            PendingRead {
                client,
                required: self.max_acked,
            },
        );
        self.next_read
    }

    /// The read was refused or failed: it will never be confirmed.
    pub fn read_failed(&mut self, node: NodeId, request_id: u64) {
        if let Some(read) = self.reads.remove(&(node, request_id)) {
            self.busy_until[read.client] = None;
        }
    }

    /// A node applied an entry: the write it accepted at that index is acknowledged if the
    /// entry is the one it accepted (same term), or lost if another took its place.
    pub fn applied(&mut self, node: NodeId, entry: &Entry) -> Result<(), String> {
        let Some(writes) = self.writes.get_mut(&node) else {
            return Ok(());
        };
        let (decided, waiting): (Vec<_>, Vec<_>) = std::mem::take(writes)
            .into_iter()
            .partition(|write| write.index == entry.index);
        *writes = waiting;
        for write in decided {
            self.busy_until[write.client] = None;
            if write.term != entry.term {
                continue;
            }
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
        }
        Ok(())
    }

    /// Linearizable reads: a confirmed read's index is at least that of every write
    /// acknowledged before the read started.
    pub fn read_confirmed(&mut self, node: NodeId, read: ReadState) -> Result<(), String> {
        let Some(pending) = self.reads.remove(&(node, read.request_id)) else {
            // Its client timed out and forgot it.
            return Ok(());
        };
        self.busy_until[pending.client] = None;
        if read.index < pending.required {
            return Err(format!(
                "stale read: node {node} confirmed read {} at index {}, but a write at {} was \
                 acknowledged before it started",
                read.request_id, read.index, pending.required
            ));
        }
        self.reads_checked += 1;
        Ok(())
    }

    /// The node crashed: clients waiting on it time out at once.
    pub fn node_crashed(&mut self, node: NodeId) {
        for write in self.writes.remove(&node).unwrap_or_default() {
            self.busy_until[write.client] = None;
        }
        let busy_until = &mut self.busy_until;
        self.reads.retain(|&(read_node, _), read| {
            let keep = read_node != node;
            if !keep {
                busy_until[read.client] = None;
            }
            keep
        });
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
