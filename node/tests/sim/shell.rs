//! A simulated shell around one Raft node. It carries out each Ready through the same
//! `Ready::handle` as the real one (`node/src/driver.rs`), so both follow one durability
//! order; this file only implements the steps, then compacts. It can crash before a step,
//! losing everything that was not synced, including a commit index that the WAL writes
//! without an fsync of its own.

use std::hash::{DefaultHasher, Hash, Hasher};

use bytes::Bytes;
use faultline_node::raft::{
    Config, Entry, HardState, Index, Message, MessageBody, NodeId, Payload, Raft, ReadState,
    ReadyShell, Snapshot, SnapshotMeta, Step, Term,
};

use super::invariants::Invariants;

/// What survives a crash: the WAL and the latest snapshot.
#[derive(Default)]
pub struct Disk {
    pub hard_state: HardState,
    /// The hard state as of the last sync. The WAL syncs a new term or vote, entries and
    /// snapshots at once, but a hard state whose commit index alone changed waits for the
    /// next sync (`Storage::needs_sync`): a crash before it loses that commit index.
    synced_hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// Contiguous, starting right after the snapshot.
    pub entries: Vec<Entry>,
}

impl Disk {
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.snapshot
            .as_ref()
            .map(|snapshot| snapshot.meta)
            .unwrap_or_default()
    }

    pub fn entry(&self, index: Index) -> Option<&Entry> {
        let first = self.snapshot_meta().index + 1;
        self.entries
            .get(usize::try_from(index.checked_sub(first)?).ok()?)
    }

    pub fn term(&self, index: Index) -> Option<Term> {
        let meta = self.snapshot_meta();
        if index == meta.index {
            return Some(meta.term);
        }
        self.entry(index).map(|entry| entry.term)
    }

    pub fn last_index(&self) -> Index {
        self.snapshot_meta().index + self.entries.len() as Index
    }

    /// Writes what a Ready persisted, at its sync, the way the WAL must: a received snapshot
    /// replaces the whole log, and entries replace everything from their first index on.
    fn persist(&mut self, written: &Unsynced) -> Result<(), String> {
        if let Some(snapshot) = &written.snapshot {
            self.snapshot = Some(snapshot.clone());
            self.entries.clear();
            // `Storage::install_snapshot` syncs what was written so far, not the hard state
            // that comes after it.
            self.synced_hard_state = self.hard_state;
        }
        if let Some(first) = written.entries.first() {
            let start = self.snapshot_meta().index + 1;
            if first.index < start || first.index > self.last_index() + 1 {
                return Err(format!(
                    "Ready entries start at {} but the disk holds {start}..={}",
                    first.index,
                    self.last_index()
                ));
            }
            self.entries.truncate((first.index - start) as usize);
            self.entries.extend(written.entries.iter().cloned());
        }
        if let Some(hard_state) = written.hard_state {
            self.hard_state = hard_state;
        }
        let only_commit_changed = self.hard_state.term == self.synced_hard_state.term
            && self.hard_state.vote == self.synced_hard_state.vote;
        if !written.entries.is_empty() || !only_commit_changed {
            self.synced_hard_state = self.hard_state;
        }
        Ok(())
    }

    /// A crash: what was written without a sync is gone.
    fn lose_unsynced(&mut self) {
        self.hard_state = self.synced_hard_state;
    }

    fn compact(&mut self, snapshot: Snapshot) {
        let covered = (snapshot.meta.index - self.snapshot_meta().index) as usize;
        self.entries.drain(..covered.min(self.entries.len()));
        self.snapshot = Some(snapshot);
    }
}

/// What a Ready persisted and its sync has not yet made durable.
struct Unsynced {
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
    hard_state: Option<HardState>,
}

/// The replicated state machine: a running digest of every entry applied, so two nodes
/// agree exactly when they applied the same entries in the same order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateMachine {
    pub applied: Index,
    pub applied_term: Term,
    pub digest: u64,
}

impl StateMachine {
    fn apply(&mut self, entry: &Entry) {
        let mut hasher = DefaultHasher::new();
        (self.digest, entry.index, entry.term).hash(&mut hasher);
        match &entry.payload {
            Payload::Noop => hasher.write_u8(0),
            Payload::Command(command) => command.hash(&mut hasher),
            Payload::Membership(membership) => membership.hash(&mut hasher),
        }
        self.digest = hasher.finish();
        self.applied = entry.index;
        self.applied_term = entry.term;
    }

    /// Its snapshot, as `raft` makes it (with the configuration in force there).
    fn snapshot(&self, raft: &Raft) -> Snapshot {
        let meta = SnapshotMeta {
            index: self.applied,
            term: self.applied_term,
        };
        raft.snapshot_of(meta, Bytes::copy_from_slice(&self.digest.to_le_bytes()))
    }

    fn restore(snapshot: Option<&Snapshot>) -> Result<StateMachine, String> {
        let Some(snapshot) = snapshot else {
            return Ok(StateMachine::default());
        };
        let digest = <[u8; 8]>::try_from(snapshot.data.as_ref()).map_err(|_| {
            format!(
                "snapshot data of {} bytes is not a digest",
                snapshot.data.len()
            )
        })?;
        Ok(StateMachine {
            applied: snapshot.meta.index,
            applied_term: snapshot.meta.term,
            digest: u64::from_le_bytes(digest),
        })
    }
}

/// Where in the handling of a Ready a crash strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// The Ready is lost entirely.
    BeforePersist,
    /// A leader's replication was sent and entries made durable earlier were applied; this
    /// Ready was written but not synced, so none of it reached the disk.
    BeforeSync,
    /// Persisted, but its messages never left.
    AfterPersist,
    /// Persisted and sent, but not applied.
    AfterSend,
    /// Between two Readies: nothing is lost.
    BetweenReadies,
}

impl CrashPoint {
    /// The step of `Ready::handle` the crash strikes before (none: after the last).
    fn step(self) -> Option<Step> {
        match self {
            CrashPoint::BeforePersist => Some(Step::SendReplication),
            CrashPoint::BeforeSync => Some(Step::Sync),
            CrashPoint::AfterPersist => Some(Step::SendAcknowledgements),
            CrashPoint::AfterSend => Some(Step::ApplyCommitted),
            CrashPoint::BetweenReadies => None,
        }
    }
}

/// What a node's Readies produced in one round, for the simulation to route and check.
#[derive(Default)]
pub struct Outbox {
    pub messages: Vec<Message>,
    /// Each entry applied, with the state digest after it.
    pub applied: Vec<(NodeId, Entry, u64)>,
    pub read_states: Vec<(NodeId, ReadState)>,
    pub failed_reads: Vec<(NodeId, u64)>,
    pub snapshots_installed: u64,
}

pub struct Shell {
    pub id: NodeId,
    config: Config,
    /// `None` while crashed.
    pub raft: Option<Raft>,
    pub disk: Disk,
    pub state: StateMachine,
    /// Compact once this many applied entries are not in the snapshot.
    compact_threshold: Option<u64>,
    restarts: u64,
    /// Reads served under a lease by the cores that crashed.
    reads_under_lease_before: u64,
}

impl Shell {
    pub fn new(config: Config, compact_threshold: Option<u64>) -> Result<Shell, String> {
        let mut shell = Shell {
            id: config.id,
            config,
            raft: None,
            disk: Disk::default(),
            state: StateMachine::default(),
            compact_threshold,
            restarts: 0,
            reads_under_lease_before: 0,
        };
        shell.restart()?;
        Ok(shell)
    }

    /// Reads this node served under a lease, over all its restarts.
    pub fn reads_under_lease(&self) -> u64 {
        self.reads_under_lease_before
            + self
                .raft
                .as_ref()
                .map_or(0, |raft| raft.status().reads_under_lease)
    }

    pub fn is_up(&self) -> bool {
        self.raft.is_some()
    }

    pub fn crash(&mut self) {
        self.reads_under_lease_before = self.reads_under_lease();
        self.raft = None;
        self.disk.lose_unsynced();
    }

    /// Recovers from the disk, as a restarted process would (with fresh election randomness).
    pub fn restart(&mut self) -> Result<(), String> {
        self.restarts += 1;
        let config = Config {
            seed: self.config.seed.wrapping_add(self.restarts << 32),
            ..self.config.clone()
        };
        let raft = Raft::new(
            config,
            self.disk.hard_state,
            self.disk.snapshot.clone(),
            self.disk.entries.clone(),
        )
        .map_err(|error| format!("node {} cannot restart from its disk: {error}", self.id))?;
        self.state = StateMachine::restore(self.disk.snapshot.as_ref())?;
        self.raft = Some(raft);
        Ok(())
    }

    /// Handles every Ready the node has, crashing at `crash` if given.
    pub fn handle_readies(
        &mut self,
        crash: Option<CrashPoint>,
        invariants: &mut Invariants,
        out: &mut Outbox,
    ) -> Result<(), String> {
        while let Some(raft) = self.raft.as_mut().filter(|raft| raft.has_ready()) {
            let ready = raft.ready();
            let mut steps = ReadySteps {
                shell: self,
                invariants,
                out,
                crash: crash.and_then(CrashPoint::step),
                unsynced: None,
            };
            match ready.handle(&mut steps) {
                Ok(()) => {}
                Err(Stop::Crashed) => return Ok(()),
                Err(Stop::Violation(violation)) => return Err(violation),
            }
            self.maybe_compact()?;
        }
        if crash.is_some() {
            self.crash();
        }
        Ok(())
    }

    fn apply(
        &mut self,
        committed: Vec<Entry>,
        invariants: &mut Invariants,
        out: &mut Outbox,
    ) -> Result<(), String> {
        // This node learned of these commits from a leader of this term or an earlier one.
        let term = self
            .raft
            .as_ref()
            .map_or(Term::MAX, |raft| raft.status().term);
        for entry in committed {
            if entry.index != self.state.applied + 1 {
                return Err(format!(
                    "node {} was handed entry {} to apply after {}",
                    self.id, entry.index, self.state.applied
                ));
            }
            self.state.apply(&entry);
            invariants.check_applied(self.id, term, &entry, self.state.digest)?;
            out.applied.push((self.id, entry, self.state.digest));
        }
        Ok(())
    }

    fn maybe_compact(&mut self) -> Result<(), String> {
        let Some(threshold) = self.compact_threshold else {
            return Ok(());
        };
        if self.state.applied < self.disk.snapshot_meta().index + threshold {
            return Ok(());
        }
        let Some(raft) = self.raft.as_mut() else {
            return Ok(());
        };
        let snapshot = self.state.snapshot(raft);
        raft.compact(snapshot.clone())
            .map_err(|error| format!("node {} cannot compact: {error}", self.id))?;
        self.disk.compact(snapshot);
        Ok(())
    }
}

/// Why the simulated shell stopped in the middle of a Ready.
enum Stop {
    /// It crashed, as it was told to: not a failure.
    Crashed,
    /// An invariant broke.
    Violation(String),
}

impl From<String> for Stop {
    fn from(violation: String) -> Stop {
        Stop::Violation(violation)
    }
}

/// The simulated shell's part of each step of one Ready (the order is `Ready::handle`'s):
/// what it sends, applies and answers goes to the [`Outbox`], what it persists waits in
/// `unsynced` until the sync.
struct ReadySteps<'a> {
    shell: &'a mut Shell,
    invariants: &'a mut Invariants,
    out: &'a mut Outbox,
    /// Crash before this step.
    crash: Option<Step>,
    unsynced: Option<Unsynced>,
}

impl ReadyShell for ReadySteps<'_> {
    type Error = Stop;

    fn before(&mut self, step: Step) -> Result<(), Stop> {
        if self.crash == Some(step) {
            // What was written and not synced is lost with the process.
            self.shell.crash();
            return Err(Stop::Crashed);
        }
        Ok(())
    }

    fn send(&mut self, messages: Vec<Message>) -> Result<(), Stop> {
        for msg in &messages {
            if msg.body == (MessageBody::RequestVoteResponse { granted: true }) {
                self.invariants.record_vote(msg.from, msg.term, msg.to)?;
            }
        }
        self.out.messages.extend(messages);
        Ok(())
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), Stop> {
        Ok(self.shell.apply(entries, self.invariants, self.out)?)
    }

    fn confirm_reads(&mut self, reads: Vec<ReadState>) -> Result<(), Stop> {
        let id = self.shell.id;
        self.out
            .read_states
            .extend(reads.into_iter().map(|read| (id, read)));
        Ok(())
    }

    fn persist(
        &mut self,
        snapshot: Option<&Snapshot>,
        entries: &[Entry],
        hard_state: Option<HardState>,
    ) -> Result<(), Stop> {
        if snapshot.is_some() {
            // The state machine restarts from the snapshot, as the driver's store does.
            self.shell.state = StateMachine::restore(snapshot)?;
            self.invariants
                .check_restored(self.shell.id, &self.shell.state)?;
        }
        self.unsynced = Some(Unsynced {
            snapshot: snapshot.cloned(),
            entries: entries.to_vec(),
            hard_state,
        });
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Stop> {
        if let Some(unsynced) = self.unsynced.take() {
            self.shell.disk.persist(&unsynced)?;
            if unsynced.snapshot.is_some() {
                self.out.snapshots_installed += 1;
            }
            self.invariants
                .check_persisted(self.shell.id, &self.shell.disk, &unsynced.entries)?;
        }
        Ok(())
    }

    fn fail_reads(&mut self, request_ids: Vec<u64>) -> Result<(), Stop> {
        let id = self.shell.id;
        self.out
            .failed_reads
            .extend(request_ids.into_iter().map(|request_id| (id, request_id)));
        Ok(())
    }

    fn advance(&mut self) -> Result<(), Stop> {
        if let Some(raft) = self.shell.raft.as_mut() {
            raft.advance();
        }
        Ok(())
    }
}
