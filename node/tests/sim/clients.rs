//! Simulated clients: a fixed number of them, each with at most one operation outstanding
//! (as in Jepsen), proposing unique commands and issuing linearizable reads.
//!
//! Each node keeps the writes proposed to it in the driver's own [`PendingWrites`], so a
//! write is answered here exactly as a real node answers it. A client that gives up leaves
//! its write waiting there, as the driver does after the API's timeout; a crash loses a
//! node's waiting writes, as a process's death does. Checked, over every answer a node
//! gives (whether or not its client still waits):
//! - a write answered "not applied" is never applied on any node;
//! - a write answered ok was applied at that index with that result (the state digest
//!   after it) on every node that applied it (commands are unique, so a command names its
//!   write);
//! - a confirmed read's index covers every write answered ok before the read started.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use faultline_node::pending::PendingWrites;
use faultline_node::raft::{Entry, Index, NodeId, Payload, ReadState, Term};

/// A client gives up on an operation after this many ticks.
const TIMEOUT_TICKS: u64 = 100;

/// A proposal a leader accepted, as that node keeps it until its index is applied.
struct ProposedWrite {
    client: usize,
    term: Term,
    command: Bytes,
    proposed_at: u64,
}

/// The operation a client waits for.
struct Outstanding {
    node: NodeId,
    gives_up_at: u64,
    op: Op,
}

enum Op {
    Write(Bytes),
    Read {
        request_id: u64,
        /// The highest index answered ok when the read started.
        required: Index,
    },
}

/// Where nodes applied each command and what its node answered, checked against each other
/// whichever comes first.
#[derive(Default)]
struct Ledger {
    /// The index and the result (state digest after it) of each command applied anywhere.
    applied: HashMap<Bytes, (Index, u64)>,
    /// Commands answered ok: where, and with which result.
    acked: HashMap<Bytes, (Index, u64)>,
    /// Commands answered "not applied".
    not_applied: HashSet<Bytes>,
}

impl Ledger {
    fn applied(
        &mut self,
        node: NodeId,
        command: &Bytes,
        index: Index,
        digest: u64,
    ) -> Result<(), String> {
        if self.not_applied.contains(command) {
            return Err(format!(
                "a write answered \"not applied\" happened: node {node} applied it at {index}"
            ));
        }
        let first = *self
            .applied
            .entry(command.clone())
            .or_insert((index, digest));
        if first != (index, digest) {
            return Err(format!(
                "node {node} applied a command at {index} with result {digest:x}, another node \
                 at {} with result {:x}",
                first.0, first.1
            ));
        }
        match self.acked.get(command) {
            Some(&acked) if acked != (index, digest) => Err(format!(
                "node {node} applied a write at {index} with result {digest:x}, but it was \
                 answered ok at {} with result {:x}",
                acked.0, acked.1
            )),
            _ => Ok(()),
        }
    }

    fn answered_ok(
        &mut self,
        node: NodeId,
        command: &Bytes,
        index: Index,
        digest: u64,
    ) -> Result<(), String> {
        match self.applied.get(command) {
            Some(&applied) if applied == (index, digest) => {
                self.acked.insert(command.clone(), (index, digest));
                Ok(())
            }
            applied => Err(format!(
                "node {node} answered a write ok at {index} with result {digest:x}, but it was \
                 applied at {applied:?}"
            )),
        }
    }

    fn answered_not_applied(
        &mut self,
        node: NodeId,
        command: &Bytes,
        index: Index,
    ) -> Result<(), String> {
        if let Some(&(at, _)) = self.applied.get(command) {
            return Err(format!(
                "node {node} answered a write proposed at {index} \"not applied\", but it was \
                 applied at {at}"
            ));
        }
        self.not_applied.insert(command.clone());
        Ok(())
    }
}

pub struct Clients {
    /// For each client, the operation it waits for.
    outstanding: Vec<Option<Outstanding>>,
    next_command: u64,
    next_read: u64,
    /// The leader the clients last heard of.
    pub leader_hint: Option<NodeId>,
    /// Each node's waiting writes.
    pending: HashMap<NodeId, PendingWrites<ProposedWrite>>,
    ledger: Ledger,
    max_acked: Index,
    /// Writes proposed from this tick on are watched; the first acknowledged is recorded.
    watch_from: u64,
    pub watched_write: Option<Index>,
    pub writes_acked: u64,
    pub writes_not_applied: u64,
    /// Proposals at an index where earlier writes still waited on the same node.
    pub displaced_writes: u64,
    /// Writes that waited while a later proposal took their index, and were applied after
    /// all: answering them "not applied" at that moment would have been wrong.
    pub displaced_writes_applied: u64,
    pub reads_checked: u64,
}

impl Clients {
    pub fn new(count: usize) -> Clients {
        Clients {
            outstanding: (0..count).map(|_| None).collect(),
            next_command: 0,
            next_read: 0,
            leader_hint: None,
            pending: HashMap::new(),
            ledger: Ledger::default(),
            max_acked: 0,
            watch_from: 0,
            watched_write: None,
            writes_acked: 0,
            writes_not_applied: 0,
            displaced_writes: 0,
            displaced_writes_applied: 0,
            reads_checked: 0,
        }
    }

    /// Clients whose operation timed out give up on it; returns the clients free to act.
    pub fn idle(&mut self, now: u64) -> Vec<usize> {
        let mut idle = Vec::new();
        for (client, outstanding) in self.outstanding.iter_mut().enumerate() {
            if outstanding
                .as_ref()
                .is_some_and(|waiting| waiting.gives_up_at <= now)
            {
                *outstanding = None;
            }
            if outstanding.is_none() {
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
        self.outstanding[client] = Some(Outstanding {
            node,
            gives_up_at: now + TIMEOUT_TICKS,
            op: Op::Write(command.clone()),
        });
        let write = ProposedWrite {
            client,
            term,
            command,
            proposed_at: now,
        };
        let earlier = self
            .pending
            .entry(node)
            .or_default()
            .proposed(index, term, write);
        if earlier > 0 {
            self.displaced_writes += 1;
        }
    }

    /// A new read id, remembering which writes the read must see.
    pub fn read_started(&mut self, client: usize, node: NodeId, now: u64) -> u64 {
        self.next_read += 1;
        self.outstanding[client] = Some(Outstanding {
            node,
            gives_up_at: now + TIMEOUT_TICKS,
            op: Op::Read {
                request_id: self.next_read,
                required: self.max_acked,
            },
        });
        self.next_read
    }

    /// The client waiting for this read on this node, if it still waits.
    fn reader(&self, node: NodeId, request_id: u64) -> Option<(usize, Index)> {
        self.outstanding
            .iter()
            .enumerate()
            .find_map(|(client, outstanding)| match outstanding {
                Some(Outstanding {
                    node: at,
                    op:
                        Op::Read {
                            request_id: id,
                            required,
                        },
                    ..
                }) if *at == node && *id == request_id => Some((client, *required)),
                _ => None,
            })
    }

    /// The read was refused or failed: it will never be confirmed.
    pub fn read_failed(&mut self, node: NodeId, request_id: u64) {
        if let Some((client, _)) = self.reader(node, request_id) {
            self.outstanding[client] = None;
        }
    }

    /// A node applied `entry`, reaching the state `digest`: the writes waiting there at
    /// that index are answered, as the driver answers them.
    pub fn applied(&mut self, node: NodeId, entry: &Entry, digest: u64) -> Result<(), String> {
        if let Payload::Command(command) = &entry.payload {
            self.ledger.applied(node, command, entry.index, digest)?;
        }
        let Some(pending) = self.pending.get_mut(&node) else {
            return Ok(());
        };
        let settled = pending.applied(entry.index, entry.term);
        if let Some(write) = &settled.applied
            && settled
                .not_applied
                .iter()
                .any(|other| other.term > write.term)
        {
            self.displaced_writes_applied += 1;
        }
        for write in settled.not_applied {
            self.ledger
                .answered_not_applied(node, &write.command, entry.index)?;
            self.writes_not_applied += 1;
            self.answered(&write);
        }
        let Some(write) = settled.applied else {
            return Ok(());
        };
        if entry.payload != Payload::Command(write.command.clone()) {
            return Err(format!(
                "node {node} applied {:?} at {} of term {}, where it had accepted another command",
                entry.payload, entry.index, entry.term
            ));
        }
        self.ledger
            .answered_ok(node, &write.command, entry.index, digest)?;
        self.writes_acked += 1;
        self.max_acked = self.max_acked.max(entry.index);
        if write.proposed_at >= self.watch_from && self.watched_write.is_none() {
            self.watched_write = Some(entry.index);
        }
        self.answered(&write);
        Ok(())
    }

    /// Frees the write's client, if it still waits for it.
    fn answered(&mut self, write: &ProposedWrite) {
        let outstanding = &mut self.outstanding[write.client];
        if outstanding.as_ref().is_some_and(
            |waiting| matches!(&waiting.op, Op::Write(command) if *command == write.command),
        ) {
            *outstanding = None;
        }
    }

    /// Linearizable reads: a confirmed read's index is at least that of every write
    /// answered ok before the read started.
    pub fn read_confirmed(&mut self, node: NodeId, read: ReadState) -> Result<(), String> {
        let Some((client, required)) = self.reader(node, read.request_id) else {
            // Its client gave up on it.
            return Ok(());
        };
        self.outstanding[client] = None;
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

    /// The node crashed: its waiting writes are gone, and clients waiting on it give up at
    /// once.
    pub fn node_crashed(&mut self, node: NodeId) {
        self.pending.remove(&node);
        for outstanding in &mut self.outstanding {
            if outstanding
                .as_ref()
                .is_some_and(|waiting| waiting.node == node)
            {
                *outstanding = None;
            }
        }
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
