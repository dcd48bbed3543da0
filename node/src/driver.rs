//! The Raft loop: one thread that owns the Raft core, the WAL and the KV store.
//!
//! Every input (client writes and reads, peer messages, transport failures) arrives on one
//! channel. Each round ticks the clock up to now, drains what is queued into the core, then
//! carries out the core's `Ready` through [`crate::raft::Ready::handle`]: send replication,
//! apply what was already committed and answer clients, persist and fsync, send the messages
//! that promise what is on disk, apply the rest. While the loop is inside an fsync, new
//! inputs queue up and all go into the next round: that is the group commit, and the
//! batching of proposals into one AppendEntries per follower.
//!
//! Durability rule: votes, acknowledgements to peers and answers to clients leave only after
//! the fsync that covers everything they depend on. That fsync is not always this round's:
//! a write committed by a quorum's earlier fsyncs is answered before this round's own, which
//! saves a whole fsync of latency per write on the leader. The order lives in
//! `Ready::handle` alone; this module implements its steps ([`ReadyShell`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use crate::bugs::Bugs;
use crate::command::{Command, WriteResult};
use crate::fingerprint::{Applied, Checkpoint, Checkpoints};
use crate::kv::KvStore;
use crate::leadership::{TransferFailure, TransferReply, Transfers};
use crate::members::Members;
use crate::membership_changes::{ChangeReply, MembersView, MembershipChanges};
use crate::metrics::Metrics;
use crate::pending::PendingWrites;
use crate::raft::{
    Entry, HardState, Index, Membership, MembershipChange, Message, NodeId, Payload, ProposeError,
    Raft, ReadState, ReadyShell, Role, Snapshot, SnapshotMeta, Status, Term,
};
use crate::storage::Storage;
use crate::tick_clock::TickClock;

/// At most this many inputs are taken per round, so a flood cannot starve ticks and Ready.
const MAX_INPUTS_PER_ROUND: usize = 8192;

/// Something for the Raft loop to do.
pub enum Input {
    /// A client write; answered after it is committed and applied.
    Write {
        command: Command,
        reply: oneshot::Sender<Result<WriteResult, ClientError>>,
    },
    /// A linearizable read (ReadIndex); answered once the read index is applied.
    Read {
        key: String,
        reply: oneshot::Sender<Result<Option<Value>, ClientError>>,
    },
    /// A read of whatever this node has applied (`?stale=true`).
    LocalRead {
        key: String,
        reply: oneshot::Sender<Result<Option<Value>, ClientError>>,
    },
    /// Messages from a peer.
    Peer(Vec<Message>),
    /// The transport could not deliver to this peer.
    Unreachable(NodeId),
    /// Hand leadership to `to` (`None`: the most up-to-date follower); answered once this
    /// node sees it lead a newer term, or when the transfer fails (see [`crate::leadership`]).
    TransferLeadership {
        to: Option<NodeId>,
        reply: TransferReply,
    },
    /// Change membership; answered once the change has committed, or when it fails (see
    /// [`crate::membership_changes`]).
    ChangeMembership {
        change: MembershipChange,
        reply: ChangeReply,
    },
    /// The members as this node sees them.
    Members { reply: oneshot::Sender<MembersView> },
    /// Stop after syncing the WAL.
    Shutdown,
}

/// Why a client request was not carried out. Which of these are certain and which leave
/// the outcome unknown: see [`crate::pending`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The core refused the request: nothing was proposed or read. Certain.
    #[error("this node is not the leader")]
    NotLeader { leader: Option<NodeId> },
    /// Another entry was committed at the write's log index, so it can never be. Certain.
    #[error("another entry was committed at the write's place in the log; it was not applied")]
    NotApplied,
    /// A snapshot from the leader covered the write's index. Unknown.
    #[error(
        "the log was replaced by a snapshot before the write was confirmed; it may or may not have been applied"
    )]
    OutcomeUnknown,
    /// A read that was never confirmed, and never will be. Reads have no effect.
    #[error("leadership was lost before the read could be confirmed")]
    ReadAborted,
}

/// What `GET /status` shows, published by the loop after every round.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    pub id: String,
    pub role: String,
    pub term: Term,
    pub leader: Option<String>,
    pub commit: Index,
    pub applied: Index,
    pub last_log_index: Index,
    pub snapshot_index: Index,
    /// The fingerprints of what this node applied, at the latest checkpoint indexes (see
    /// [`crate::fingerprint`]), oldest first.
    pub fingerprints: Vec<Checkpoint>,
    /// The voters of the configuration in force on this node (of C_new during a joint
    /// change), by name.
    pub voters: Vec<String>,
    /// During a joint change, the voters of the configuration being left (C_old); empty
    /// otherwise.
    pub outgoing: Vec<String>,
    /// The members that get the log but do not vote.
    pub learners: Vec<String>,
}

/// Settings of the loop itself.
#[derive(Clone, Debug)]
pub struct LoopSettings {
    pub tick: Duration,
    /// Catch up at most this many missed ticks (e.g. after SIGSTOP) in one round.
    pub max_catch_up_ticks: u32,
    pub snapshot_threshold: u64,
    /// How long a leadership transfer request waits to see the target lead.
    pub transfer_timeout: Duration,
    /// How long a membership change request waits for the change to commit.
    pub membership_change_timeout: Duration,
    pub bugs: Bugs,
}

/// How the loop answers a write.
type WriteReply = oneshot::Sender<Result<WriteResult, ClientError>>;

struct PendingRead {
    key: String,
    reply: oneshot::Sender<Result<Option<Value>, ClientError>>,
}

/// The Raft loop's state. Built by `server`, then moved onto its own thread by [`Driver::run`].
pub struct Driver {
    raft: Raft,
    storage: Storage,
    kv: KvStore,
    members: Members,
    settings: LoopSettings,
    outboxes: HashMap<NodeId, mpsc::UnboundedSender<Message>>,
    metrics: Arc<Metrics>,
    status: watch::Sender<NodeStatus>,
    /// Proposed writes waiting for their log index to be applied.
    writes: PendingWrites<WriteReply>,
    /// Reads waiting for the core to confirm leadership, by request id.
    reads: HashMap<u64, PendingRead>,
    /// Confirmed reads waiting for their read index to be applied.
    confirmed_reads: BTreeMap<Index, Vec<PendingRead>>,
    /// Leadership transfer requests waiting for leadership to move.
    transfers: Transfers,
    /// Membership change requests waiting to commit.
    membership_changes: MembershipChanges,
    next_read_id: u64,
    applied: Index,
    applied_term: Term,
    snapshot_index: Index,
    /// The core's status and configuration as last published to `/status` (the status to
    /// the metrics too).
    published: Option<(Status, Membership)>,
    /// The fingerprints at the latest checkpoint indexes this process applied.
    checkpoints: Checkpoints,
    /// Only for the `early-ack` bug: the store with every appended entry applied, and the
    /// index of the last one.
    speculative: Option<(KvStore, Index)>,
    /// Only for the `early-ack` bug: the entries persisted by this Ready, answered after
    /// its sync.
    early_acks: Vec<Entry>,
}

impl Driver {
    /// Assembles the loop; `kv` and `snapshot` come from storage recovery.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        raft: Raft,
        storage: Storage,
        kv: KvStore,
        snapshot: Option<SnapshotMeta>,
        members: Members,
        settings: LoopSettings,
        outboxes: HashMap<NodeId, mpsc::UnboundedSender<Message>>,
        metrics: Arc<Metrics>,
        status: watch::Sender<NodeStatus>,
    ) -> Driver {
        let snapshot = snapshot.unwrap_or_default();
        let transfers = Transfers::new(members.clone(), settings.transfer_timeout);
        let membership_changes =
            MembershipChanges::new(members.clone(), settings.membership_change_timeout);
        Driver {
            raft,
            storage,
            kv,
            members,
            settings,
            outboxes,
            metrics,
            status,
            writes: PendingWrites::new(),
            reads: HashMap::new(),
            confirmed_reads: BTreeMap::new(),
            transfers,
            membership_changes,
            next_read_id: 1,
            applied: snapshot.index,
            applied_term: snapshot.term,
            snapshot_index: snapshot.index,
            published: None,
            checkpoints: Checkpoints::default(),
            speculative: None,
            early_acks: Vec::new(),
        }
    }

    /// Runs until `Input::Shutdown` or until every sender is gone. An error (the WAL cannot
    /// be written, a snapshot cannot be read) is fatal: the node must stop rather than go
    /// on without durability.
    pub fn run(mut self, inputs: Receiver<Input>) -> Result<()> {
        self.publish_status();
        // The Raft clock: elections, heartbeats and leases run on it (see `tick_clock`).
        let mut clock = TickClock::from_env();
        let mut next_tick = clock.now() + self.settings.tick;
        loop {
            let first = match inputs.recv_deadline(clock.instant_of(next_tick)) {
                Ok(input) => Some(input),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // The clock catches up before the inputs are handled: after a pause (SIGSTOP, a
            // stalled disk) a leader must see its lease run out before it serves a read
            // that waited, and a follower must not reset its election timer on a heartbeat
            // that waited and then count the missed ticks against it.
            let now = clock.now();
            let mut ticks = 0;
            while now >= next_tick {
                if ticks == self.settings.max_catch_up_ticks {
                    next_tick = now + self.settings.tick;
                    break;
                }
                self.raft.tick();
                ticks += 1;
                next_tick += self.settings.tick;
            }
            if ticks > 0 {
                self.metrics.ticked(ticks);
            }
            let mut stop = false;
            for input in first
                .into_iter()
                .chain(inputs.try_iter().take(MAX_INPUTS_PER_ROUND))
            {
                stop |= self.handle(input)?;
            }
            while self.raft.has_ready() {
                self.handle_ready()?;
            }
            self.maybe_snapshot()?;
            self.transfers.settle(&self.raft.status(), Instant::now());
            self.membership_changes.settle(&self.raft, Instant::now());
            self.publish_status();
            if stop {
                break;
            }
        }
        self.storage.sync().context("final WAL sync")?;
        info!("raft loop stopped");
        Ok(())
    }

    /// Feeds one input to the core. Returns whether the loop should stop.
    fn handle(&mut self, input: Input) -> Result<bool> {
        match input {
            Input::Write { command, reply } => self.propose(command, reply)?,
            Input::Read { key, reply } if self.settings.bugs.stale_read => {
                let _ = reply.send(Ok(self.kv.get(&key).cloned()));
            }
            Input::Read { key, reply } => self.start_read(key, reply),
            Input::LocalRead { key, reply } => {
                let _ = reply.send(Ok(self.kv.get(&key).cloned()));
            }
            Input::Peer(messages) => {
                for message in messages {
                    self.raft.step(message);
                }
            }
            Input::Unreachable(peer) => self.raft.report_unreachable(peer),
            Input::TransferLeadership { to, reply } => self.transfer_leadership(to, reply),
            Input::ChangeMembership { change, reply } => {
                self.membership_changes
                    .start(&mut self.raft, change, Instant::now(), reply)
            }
            Input::Members { reply } => {
                let _ = reply.send(MembersView::of(&self.raft, &self.members));
            }
            Input::Shutdown => return Ok(true),
        }
        Ok(false)
    }

    fn propose(&mut self, command: Command, reply: WriteReply) -> Result<()> {
        let data = serde_json::to_vec(&command).context("encoding a command")?;
        match self.raft.propose(Bytes::from(data)) {
            Ok((index, term)) => {
                self.metrics.proposal();
                let earlier = self.writes.proposed(index, term, reply);
                if earlier > 0 {
                    // Not answered: another node may still commit one of them.
                    debug!(
                        index,
                        term, earlier, "proposed at an index where earlier writes still wait"
                    );
                }
            }
            Err(ProposeError::NotLeader(not_leader)) => {
                let _ = reply.send(Err(ClientError::NotLeader {
                    leader: not_leader.leader,
                }));
            }
            // Nothing was proposed. No node takes writes until the target leads (or this
            // node gives up the transfer): to a client that is "no leader, retry".
            Err(ProposeError::TransferInProgress { .. }) => {
                let _ = reply.send(Err(ClientError::NotLeader { leader: None }));
            }
            Err(
                refused @ (ProposeError::MembershipChangeInProgress
                | ProposeError::LeaderNotReady
                | ProposeError::Membership(_)),
            ) => unreachable!("a command proposal is never refused for membership: {refused}"),
        }
        Ok(())
    }

    /// Starts handing leadership over; the request waits in `transfers` for the outcome.
    fn transfer_leadership(&mut self, to: Option<NodeId>, reply: TransferReply) {
        let status = self.raft.status();
        let Some(target) = to.or_else(|| self.raft.most_up_to_date_follower()) else {
            // Only a leader has followers to choose from.
            let failure = if status.role == Role::Leader {
                TransferFailure::NoFollower
            } else {
                TransferFailure::NotLeader {
                    leader: status.leader.map(|id| self.members.name_of(id)),
                }
            };
            self.transfers.refuse(None, failure, reply);
            return;
        };
        match self.raft.transfer_leadership(target) {
            Ok(()) => self
                .transfers
                .started(target, status.term, Instant::now(), reply),
            Err(error) => self.transfers.refused(Some(target), error, reply),
        }
    }

    fn start_read(
        &mut self,
        key: String,
        reply: oneshot::Sender<Result<Option<Value>, ClientError>>,
    ) {
        let id = self.next_read_id;
        self.next_read_id += 1;
        match self.raft.read_index(id) {
            Ok(()) => {
                self.metrics.read();
                self.reads.insert(id, PendingRead { key, reply });
            }
            Err(not_leader) => {
                let _ = reply.send(Err(ClientError::NotLeader {
                    leader: not_leader.leader,
                }));
            }
        }
    }

    fn handle_ready(&mut self) -> Result<()> {
        let ready = self.raft.ready();
        if let Some(soft) = &ready.soft_state {
            let leader = soft.leader.map(|id| self.members.name_of(id));
            info!(role = %soft.role, leader = leader.as_deref().unwrap_or("none"), "raft role changed");
        }
        ready.handle(self)
    }

    fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<()> {
        // Decoded before it is saved: a snapshot this node cannot read must not replace the
        // log it can still restart from.
        let kv = KvStore::restore(&snapshot.data).context("decoding a snapshot from the leader")?;
        self.storage
            .install_snapshot(snapshot)
            .context("saving a snapshot from the leader")?;
        self.kv = kv;
        self.applied = snapshot.meta.index;
        self.applied_term = snapshot.meta.term;
        self.snapshot_index = snapshot.meta.index;
        // Writes proposed at or below the snapshot were either in it or replaced by the
        // leader's log; this node cannot tell which.
        for reply in self.writes.covered_by_snapshot(snapshot.meta.index) {
            let _ = reply.send(Err(ClientError::OutcomeUnknown));
        }
        info!(
            index = snapshot.meta.index,
            term = snapshot.meta.term,
            "installed a snapshot from the leader"
        );
        Ok(())
    }

    /// The `early-ack` bug: answer writes as soon as the leader has them on its own disk,
    /// with the result they will have if they commit (computed on a copy of the store that
    /// has every appended entry applied). Correct while the leader stays; a leader change
    /// loses acknowledged writes.
    fn acknowledge_early(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else {
            return;
        };
        let (mut store, mut last) = match self.speculative.take() {
            Some((store, last)) if last + 1 == first.index => (store, last),
            _ => (self.kv.clone(), self.applied),
        };
        for entry in entries {
            last = entry.index;
            let Payload::Command(data) = &entry.payload else {
                continue;
            };
            let Ok(command) = serde_json::from_slice::<Command>(data) else {
                continue;
            };
            let result = store.apply(entry.index, command);
            if let Some(reply) = self.writes.take(entry.index, entry.term) {
                let _ = reply.send(Ok(result));
            }
        }
        self.speculative = Some((store, last));
    }

    fn send_message(&self, message: Message) {
        match self.outboxes.get(&message.to) {
            // A closed outbox means the runtime is shutting down; Raft tolerates the loss.
            Some(outbox) => {
                let _ = outbox.send(message);
            }
            None => warn!(
                to = message.to,
                "dropping a message to a node outside the membership"
            ),
        }
    }

    fn apply_entry(&mut self, entry: Entry) {
        let applied = match &entry.payload {
            Payload::Noop => Applied::Noop,
            Payload::Command(data) => Applied::Command(data),
            Payload::Membership(membership) => Applied::Membership(membership),
        };
        let fingerprint = self.kv.fingerprint_entry(entry.index, entry.term, applied);
        self.checkpoints.applied(entry.index, fingerprint);
        let result = match entry.payload {
            // A configuration took effect when it was appended; the state machine has none.
            Payload::Noop | Payload::Membership(_) => None,
            Payload::Command(data) => match serde_json::from_slice::<Command>(&data) {
                Ok(command) => Some(self.kv.apply(entry.index, command)),
                Err(e) => {
                    // Every node skips the same undecodable entry, so replicas stay equal.
                    error!(index = entry.index, "skipping an undecodable command: {e}");
                    None
                }
            },
        };
        self.applied = entry.index;
        self.applied_term = entry.term;
        let settled = self.writes.applied(entry.index, entry.term);
        if let Some(reply) = settled.applied {
            // A command no node can decode changed nothing anywhere.
            let _ = reply.send(result.ok_or(ClientError::NotApplied));
        }
        for reply in settled.not_applied {
            let _ = reply.send(Err(ClientError::NotApplied));
        }
    }

    fn confirm_read(&mut self, read: ReadState) {
        if let Some(pending) = self.reads.remove(&read.request_id) {
            self.confirmed_reads
                .entry(read.index)
                .or_default()
                .push(pending);
        }
    }

    fn answer_applied_reads(&mut self) {
        while let Some(entry) = self.confirmed_reads.first_entry() {
            if *entry.key() > self.applied {
                break;
            }
            for read in entry.remove() {
                let _ = read.reply.send(Ok(self.kv.get(&read.key).cloned()));
            }
        }
    }

    /// Takes a snapshot once `snapshot_threshold` entries were applied since the last one.
    fn maybe_snapshot(&mut self) -> Result<()> {
        if self.applied < self.snapshot_index + self.settings.snapshot_threshold {
            return Ok(());
        }
        let meta = SnapshotMeta {
            index: self.applied,
            term: self.applied_term,
        };
        let snapshot = self.raft.snapshot_of(meta, Bytes::from(self.kv.snapshot()));
        self.storage
            .compact(&snapshot)
            .context("writing a snapshot")?;
        self.raft
            .compact(snapshot)
            .context("compacting the Raft log")?;
        self.snapshot_index = self.applied;
        info!(
            index = self.applied,
            keys = self.kv.len(),
            "took a snapshot"
        );
        Ok(())
    }

    fn publish_status(&mut self) {
        let status = self.raft.status();
        let membership = self.raft.membership();
        // Compared on its own: the configuration can change while nothing else the status
        // shows does (a follower's uncommitted configuration entry replaced by the leader's
        // entry at the same index).
        if let Some((published, published_membership)) = &self.published
            && *published == status
            && published_membership == membership
        {
            return;
        }
        let membership = membership.clone();
        self.metrics.observe_status(&status);
        let node_status = NodeStatus {
            id: self.members.name_of(status.id),
            role: status.role.to_string(),
            term: status.term,
            leader: status.leader.map(|id| self.members.name_of(id)),
            commit: status.commit,
            applied: status.applied,
            last_log_index: status.last_index,
            snapshot_index: status.snapshot_index,
            fingerprints: self.checkpoints.to_vec(),
            voters: self.members.names_of(&membership.voters),
            outgoing: self.members.names_of(&membership.outgoing),
            learners: self.members.names_of(&membership.learners),
        };
        self.published = Some((status, membership));
        self.status.send_replace(node_status);
    }
}

/// The driver's part of each step of a Ready; the order is [`crate::raft::Ready::handle`]'s. The
/// `forget-vote` and `early-ack` bugs hook into `persist` and `sync`.
impl ReadyShell for Driver {
    type Error = anyhow::Error;

    fn send(&mut self, messages: Vec<Message>) -> Result<()> {
        for message in messages {
            self.send_message(message);
        }
        Ok(())
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<()> {
        for entry in entries {
            self.apply_entry(entry);
        }
        self.answer_applied_reads();
        Ok(())
    }

    fn confirm_reads(&mut self, reads: Vec<ReadState>) -> Result<()> {
        for read in reads {
            self.confirm_read(read);
        }
        self.answer_applied_reads();
        Ok(())
    }

    fn persist(
        &mut self,
        snapshot: Option<&Snapshot>,
        entries: &[Entry],
        hard_state: Option<HardState>,
    ) -> Result<()> {
        if let Some(snapshot) = snapshot {
            self.install_snapshot(snapshot)?;
        }
        if !entries.is_empty() {
            self.storage
                .append(entries)
                .context("appending to the WAL")?;
            if self.settings.bugs.early_ack {
                self.early_acks = entries.to_vec();
            }
        }
        if let Some(hard_state) = hard_state {
            self.storage
                .set_hard_state(&hard_state)
                .context("writing the hard state")?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        if self.storage.needs_sync() {
            let synced = self.storage.sync().context("fsync of the WAL")?;
            if let Some(took) = synced.fsync {
                self.metrics.fsync(took);
            }
        }
        if self.settings.bugs.early_ack {
            let entries = std::mem::take(&mut self.early_acks);
            self.acknowledge_early(&entries);
        }
        Ok(())
    }

    fn fail_reads(&mut self, request_ids: Vec<u64>) -> Result<()> {
        for id in request_ids {
            if let Some(read) = self.reads.remove(&id) {
                let _ = read.reply.send(Err(ClientError::ReadAborted));
            }
        }
        Ok(())
    }

    fn advance(&mut self) -> Result<()> {
        self.raft.advance();
        Ok(())
    }
}
