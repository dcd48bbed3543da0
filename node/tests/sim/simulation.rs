//! One simulated run: a cluster of real Raft cores, a faulty network, crashing shells and
//! clients, all driven by one seeded RNG in simulated time (ticks).
//!
//! A run has two phases. During the fault phase, the network loses, duplicates and delays
//! messages, partitions come and go, nodes crash (at any step of handling a Ready) and
//! restart from what they persisted, and leaders are asked to hand leadership over. Then
//! everything heals and every node restarts from its disk, and the cluster must elect a
//! leader, commit a new write and bring every node up to it within a bounded number of
//! ticks. Safety is checked throughout.

use std::collections::VecDeque;

use faultline_node::bugs::Bugs;
use faultline_node::raft::{
    Config, MembershipChange, NodeId, NotLeader, ProposeError, Raft, ReadMode, Role, Status, Term,
    TransferError,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::clients::Clients;
use super::invariants::Invariants;
use super::network::{Network, NetworkFaults};
use super::shell::{CrashPoint, Outbox, Shell};

/// The shape of a run; the seed picks everything else.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// The cluster's initial voters.
    pub nodes: u64,
    /// Nodes started outside the cluster, ready to join it. With any, leaders are asked now
    /// and then to change membership: add a learner, promote one, add a voter, remove a
    /// member (the leader too); without, membership never changes.
    pub spares: u64,
    pub fault_ticks: u64,
    /// Ticks allowed, after healing, to elect, commit a new write and catch every node up.
    pub recovery_ticks: u64,
    /// The simulated shell compacts its log every this many applied entries.
    pub compact_threshold: Option<u64>,
    /// How the fault phase cuts the network.
    pub partitions: Partitions,
    /// Deliberate bugs of the core switched on in every node (none for the safety tests).
    pub bugs: Bugs,
    /// Each node's clock runs at a rate of its own, up to 5 % fast or slow (what a lease's
    /// drift margin must cover); otherwise every node ticks with simulated time.
    pub clock_skew: bool,
}

/// How the fault phase cuts the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partitions {
    /// Now and then one node is isolated, the cluster is split in two, or one link is cut
    /// one way; cuts add up until the network heals.
    Random,
    /// Every leader of a new term is cut off at once, together with the leader before it
    /// (the harness's `partition-leader`, made relentless). Entries of several terms then
    /// sit uncommitted on different minorities: a leader reuses log indexes where its own
    /// earlier writes still wait, and another node sometimes commits those writes after all.
    NewLeaderWithPredecessor,
}

/// What a passing run did, to show that the faults were exercised.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunStats {
    pub ticks: u64,
    pub crashes: u64,
    pub terms_with_leaders: u64,
    pub commit_index: u64,
    pub writes_acked: u64,
    /// Writes answered "not applied": another entry was applied at their index.
    pub writes_not_applied: u64,
    /// Proposals at an index where an earlier write still waited on the same node.
    pub displaced_writes: u64,
    /// Displaced writes that were applied after all.
    pub displaced_writes_applied: u64,
    pub reads_checked: u64,
    /// Reads a leader served under its lease, without a heartbeat round.
    pub reads_under_lease: u64,
    pub snapshots_installed: u64,
    /// Membership changes a leader accepted, and how many of them completed (their last
    /// configuration committed).
    pub membership_changes: u64,
    pub membership_changes_completed: u64,
    /// Leadership transfers a leader accepted.
    pub transfers_started: u64,
    /// Transfers whose target then led the very next term (one election, no split vote).
    pub transfers_completed: u64,
    /// Ticks from healing until a new write was applied everywhere.
    pub recovery_ticks: u64,
}

/// How often faults strike during the fault phase, drawn per seed.
struct FaultRates {
    crash: f64,
    partition: f64,
    heal: f64,
    max_downtime: u64,
    /// Per tick, the chance that a leader is asked to hand leadership over.
    transfer: f64,
    /// Per tick, the chance that a leader is asked to change membership.
    membership: f64,
}

/// A leadership transfer the simulation asked for, until its outcome is seen.
struct Transfer {
    target: NodeId,
    /// The term of the leader that accepted it.
    term: Term,
    started_at: u64,
}

/// How long a transfer may take before it no longer counts as completed: twice the longest
/// election timeout of the default configuration, by which the core has given it up.
const TRANSFER_TICKS: u64 = 60;

struct Simulation {
    scenario: Scenario,
    rng: ChaCha8Rng,
    now: u64,
    ids: Vec<NodeId>,
    shells: Vec<Shell>,
    /// The tick at which each crashed node restarts.
    down_until: Vec<Option<u64>>,
    /// A crash to strike while the node handles its next Readies.
    crash_next: Vec<Option<CrashPoint>>,
    network: Network,
    invariants: Invariants,
    clients: Clients,
    rates: FaultRates,
    stats: RunStats,
    /// The most recent events, kept only when replaying one seed.
    trace: Option<VecDeque<String>>,
    /// For [`Partitions::NewLeaderWithPredecessor`]: the leaders seen so far.
    leaders: LeaderChanges,
    /// Decides when to ask for leadership transfers and to whom. Apart from the main RNG,
    /// so that a seed whose transfer rate is zero runs exactly as it did before transfers.
    transfer_rng: ChaCha8Rng,
    /// Transfers asked for whose outcome is not seen yet.
    transfers: Vec<Transfer>,
    /// Decides membership changes; apart from the main RNG for the same reason.
    membership_rng: ChaCha8Rng,
    /// A change accepted whose completion is not seen yet: the leader and term that took it.
    change_in_flight: Option<(NodeId, Term)>,
    /// Each node's clock rate (ticks per tick of simulated time), and the fraction of a tick
    /// it has counted towards its next.
    clock_rates: Vec<f64>,
    clock_fractions: Vec<f64>,
}

/// The latest leaders, as seen at the start of each tick.
#[derive(Default)]
struct LeaderChanges {
    /// The newest term seen with a leader.
    term: Term,
    current: Option<NodeId>,
    previous: Option<NodeId>,
}

const TRACE_LINES: usize = 400;

/// Runs one seed; on a violation, the error says what broke (and, if `trace`, what led to it).
pub fn run(scenario: Scenario, seed: u64, trace: bool) -> Result<RunStats, String> {
    let mut simulation = Simulation::new(scenario, seed, trace)?;
    let result = simulation.run();
    match (result, simulation.trace) {
        (Err(error), Some(trace)) => {
            let lines: Vec<String> = trace.into_iter().collect();
            Err(format!("{error}\nlast events:\n{}", lines.join("\n")))
        }
        (result, _) => result,
    }
}

impl Simulation {
    fn new(scenario: Scenario, seed: u64, trace: bool) -> Result<Simulation, String> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let ids: Vec<NodeId> = (1..=scenario.nodes + scenario.spares).collect();
        let initial_voters: Vec<NodeId> = (1..=scenario.nodes).collect();
        // Small messages and windows split a leader's log over many AppendEntries, which
        // is where commitment rules (Figure 8) and flow control get tested.
        let max_bytes_per_message = pick(&mut rng, &[1 << 20, 16]);
        let max_inflight = pick(&mut rng, &[256, 4, 1]);
        let pre_vote = rng.random_bool(0.75);
        let check_quorum = rng.random_bool(0.75);
        // Drawn apart, so that the other draws (and what each seed does) stay as they were.
        let mut lease_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6c65_6173_6573);
        let read_mode = if lease_rng.random_bool(0.5) {
            ReadMode::Lease {
                drift_margin_ticks: pick(&mut lease_rng, &[1, 3]),
            }
        } else {
            ReadMode::ReadIndex
        };
        let shells = ids
            .iter()
            .map(|&id| {
                let config = Config {
                    seed: rng.random(),
                    max_bytes_per_message,
                    max_inflight,
                    pre_vote,
                    check_quorum,
                    read_mode,
                    bugs: scenario.bugs,
                    // A spare knows no configuration: it learns one once a change adds it.
                    ..Config::new(
                        id,
                        if id <= scenario.nodes {
                            initial_voters.clone()
                        } else {
                            Vec::new()
                        },
                    )
                };
                Shell::new(config, scenario.compact_threshold)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let faults = NetworkFaults {
            loss: pick(&mut rng, &[0.0, 0.01, 0.05, 0.2]),
            duplication: pick(&mut rng, &[0.0, 0.02, 0.1]),
            max_delay: pick(&mut rng, &[1, 2, 5, 10]),
        };
        let rates = FaultRates {
            crash: pick(&mut rng, &[0.0, 0.002, 0.01, 0.03]),
            partition: pick(&mut rng, &[0.0, 0.005, 0.02, 0.05]),
            heal: 0.02,
            max_downtime: pick(&mut rng, &[5, 50, 200]),
            transfer: 0.0,
            membership: 0.0,
        };
        let mut transfer_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7472_616e_7366_6572);
        let mut membership_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6d65_6d62_6572_7321);
        let membership = if scenario.spares > 0 {
            pick(&mut membership_rng, &[0.005, 0.01, 0.03])
        } else {
            0.0
        };
        let rates = FaultRates {
            transfer: pick(&mut transfer_rng, &[0.0, 0.005, 0.01, 0.03]),
            membership,
            ..rates
        };
        let size = ids.len();
        // Drawn apart again, so that seeds without skew run as before.
        let mut clock_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x636c_6f63_6b73);
        let clock_rates = (0..size)
            .map(|_| {
                if scenario.clock_skew {
                    pick(&mut clock_rng, &[0.95, 0.97, 1.0, 1.03, 1.05])
                } else {
                    1.0
                }
            })
            .collect();
        Ok(Simulation {
            scenario,
            rng,
            now: 0,
            ids,
            shells,
            down_until: vec![None; size],
            crash_next: vec![None; size],
            network: Network::new(faults),
            invariants: Invariants::default(),
            clients: Clients::new(2 * size),
            rates,
            stats: RunStats::default(),
            trace: trace.then(VecDeque::new),
            leaders: LeaderChanges::default(),
            transfer_rng,
            transfers: Vec::new(),
            membership_rng,
            change_in_flight: None,
            clock_rates,
            clock_fractions: vec![0.0; size],
        })
    }

    fn note(&mut self, event: impl FnOnce() -> String) {
        if let Some(trace) = self.trace.as_mut() {
            if trace.len() == TRACE_LINES {
                trace.pop_front();
            }
            let line = format!("t={} {}", self.now, event());
            trace.push_back(line);
        }
    }

    fn run(&mut self) -> Result<RunStats, String> {
        for _ in 0..self.scenario.fault_ticks {
            self.inject_faults()?;
            self.tick()?;
        }
        self.heal_and_restart_everyone()?;
        let healed_at = self.now;
        while self.now < healed_at + self.scenario.recovery_ticks {
            self.tick()?;
            if let Some(index) = self.clients.watched_write
                && self.members_applied(index)
            {
                self.stats.recovery_ticks = self.now - healed_at;
                return Ok(self.finish());
            }
        }
        let statuses: Vec<String> = self
            .shells
            .iter()
            .filter_map(|shell| {
                shell
                    .raft
                    .as_ref()
                    .map(|raft| format!("{:?} {:?}", raft.status(), raft.membership()))
            })
            .collect();
        Err(format!(
            "liveness: {} ticks after healing, no new write was committed and applied everywhere \
             (watched write: {:?})\n{}",
            self.scenario.recovery_ticks,
            self.clients.watched_write,
            statuses.join("\n")
        ))
    }

    fn finish(&mut self) -> RunStats {
        self.stats.ticks = self.now;
        self.stats.terms_with_leaders = self.invariants.terms_with_leaders() as u64;
        self.stats.commit_index = self.invariants.commit_index();
        self.stats.writes_acked = self.clients.writes_acked;
        self.stats.writes_not_applied = self.clients.writes_not_applied;
        self.stats.displaced_writes = self.clients.displaced_writes;
        self.stats.displaced_writes_applied = self.clients.displaced_writes_applied;
        self.stats.reads_checked = self.clients.reads_checked;
        self.stats.reads_under_lease = self.shells.iter().map(Shell::reads_under_lease).sum();
        self.stats
    }

    /// One tick: clients act, every node ticks, due messages arrive, every node handles its
    /// Readies, and the invariants are checked.
    fn tick(&mut self) -> Result<(), String> {
        self.now += 1;
        self.restart_due_nodes()?;
        self.clients_act();
        for (at, shell) in self.shells.iter_mut().enumerate() {
            // A node counts as many ticks as its clock's rate makes whole.
            self.clock_fractions[at] += self.clock_rates[at];
            while self.clock_fractions[at] >= 1.0 {
                self.clock_fractions[at] -= 1.0;
                if let Some(raft) = shell.raft.as_mut() {
                    raft.tick();
                }
            }
        }
        for msg in self.network.due(self.now) {
            let at = self.position(msg.to);
            if self.shells[at].is_up() {
                self.note(|| format!("deliver {}", describe(&msg)));
                if let Some(raft) = self.shells[at].raft.as_mut() {
                    raft.step(msg);
                }
                // A node can win an election and lose it again within one tick.
                self.invariants.check_leader(&self.shells, at)?;
            }
        }
        let mut out = Outbox::default();
        let mut crashed = Vec::new();
        for at in 0..self.shells.len() {
            let crash = self.crash_next[at].take();
            self.shells[at].handle_readies(crash, &mut self.invariants, &mut out)?;
            if crash.is_some() {
                let id = self.ids[at];
                self.note(|| format!("node {id} crashed ({crash:?})"));
                crashed.push(at);
            }
        }
        // What a node handed out before crashing still happened.
        self.route(out)?;
        for at in crashed {
            self.node_down(at);
        }
        self.invariants.check_leaders(&self.shells)?;
        self.follow_transfers();
        self.follow_membership_change();
        Ok(())
    }

    fn position(&self, id: NodeId) -> usize {
        (id - 1) as usize
    }

    fn route(&mut self, out: Outbox) -> Result<(), String> {
        self.stats.snapshots_installed += out.snapshots_installed;
        for msg in out.messages {
            let to = self.position(msg.to);
            let reachable = self.shells[to].is_up() && !self.network.is_cut(msg.from, msg.to);
            if reachable {
                self.network.send(msg, self.now, &mut self.rng);
            } else if self.rng.random_bool(0.5) {
                // Sometimes the transport notices the failure and says so.
                let from = self.position(msg.from);
                if let Some(raft) = self.shells[from].raft.as_mut() {
                    raft.report_unreachable(msg.to);
                }
            }
        }
        for (node, entry, digest) in &out.applied {
            self.clients.applied(*node, entry, *digest)?;
        }
        for (node, read) in out.read_states {
            self.clients.read_confirmed(node, read)?;
        }
        for (node, request_id) in out.failed_reads {
            self.clients.read_failed(node, request_id);
        }
        Ok(())
    }

    /// Each idle client, now and then, sends a write (or sometimes a read) to the node it
    /// believes leads.
    fn clients_act(&mut self) {
        for client in self.clients.idle(self.now) {
            if !self.rng.random_bool(0.5) {
                continue;
            }
            let target = match self.clients.leader_hint {
                Some(leader) if self.rng.random_bool(0.9) => leader,
                _ => self.ids[self.rng.random_range(0..self.ids.len())],
            };
            let at = self.position(target);
            let Some(raft) = self.shells[at].raft.as_mut() else {
                self.clients.leader_hint = None;
                continue;
            };
            let result = if self.rng.random_bool(0.75) {
                let command = self.clients.command();
                raft.propose(command.clone()).map(|position| {
                    self.clients
                        .proposed(client, target, position, command, self.now)
                })
            } else {
                let request_id = self.clients.read_started(client, target, self.now);
                raft.read_index(request_id)
                    .inspect_err(|_| self.clients.read_failed(target, request_id))
                    .map_err(ProposeError::from)
            };
            match result {
                Ok(()) => self.clients.leader_hint = Some(target),
                Err(ProposeError::NotLeader(NotLeader { leader })) => {
                    self.clients.leader_hint = leader
                }
                // It will lead soon, if the transfer works.
                Err(ProposeError::TransferInProgress { target }) => {
                    self.clients.leader_hint = Some(target)
                }
                Err(other) => unreachable!("a command or read refused for {other}"),
            }
        }
    }

    fn inject_faults(&mut self) -> Result<(), String> {
        if self.transfer_rng.random_bool(self.rates.transfer) {
            self.ask_for_transfer()?;
        }
        if self.rates.membership > 0.0 && self.membership_rng.random_bool(self.rates.membership) {
            self.ask_for_membership_change()?;
        }
        if self.rng.random_bool(self.rates.crash) {
            let at = self.rng.random_range(0..self.shells.len());
            if self.shells[at].is_up() && self.crash_next[at].is_none() {
                let points = [
                    CrashPoint::BeforePersist,
                    CrashPoint::BeforeSync,
                    CrashPoint::AfterPersist,
                    CrashPoint::AfterSend,
                    CrashPoint::BetweenReadies,
                ];
                self.crash_next[at] = Some(pick(&mut self.rng, &points));
            }
        }
        match self.scenario.partitions {
            Partitions::Random => {
                if self.rng.random_bool(self.rates.partition) {
                    self.partition();
                }
            }
            Partitions::NewLeaderWithPredecessor => self.cut_off_new_leader(),
        }
        if self.rng.random_bool(self.rates.heal) {
            self.note(|| "heal".to_string());
            self.network.heal();
        }
        Ok(())
    }

    /// The status of the running node that leads the newest term, if any does.
    fn newest_leader(&self) -> Option<Status> {
        self.shells
            .iter()
            .filter_map(|shell| shell.raft.as_ref().map(Raft::status))
            .filter(|status| status.role == Role::Leader)
            .max_by_key(|status| status.term)
    }

    /// Asks the leader of the newest term to hand leadership to another node, now and then
    /// to itself or to a stranger, which it must refuse.
    fn ask_for_transfer(&mut self) -> Result<(), String> {
        let Some(leader) = self.newest_leader() else {
            return Ok(());
        };
        let size = self.ids.len() as NodeId;
        let target = if self.transfer_rng.random_bool(0.1) {
            self.transfer_rng.random_range(1..=size + 1)
        } else {
            let other = self.transfer_rng.random_range(1..size);
            if other >= leader.id { other + 1 } else { other }
        };
        let at = self.position(leader.id);
        let raft = self.shells[at].raft.as_mut().expect("a leader is up");
        let is_voter = raft.membership().voters.contains(&target);
        let result = raft.transfer_leadership(target);
        self.note(|| {
            format!(
                "node {} asked to transfer to {target}: {result:?}",
                leader.id
            )
        });
        let expected = if target == leader.id {
            Err(TransferError::ToSelf(target))
        } else if !is_voter {
            Err(TransferError::UnknownTarget(target))
        } else {
            Ok(())
        };
        if result != expected {
            return Err(format!(
                "leader {} asked to transfer to {target} answered {result:?}, not {expected:?}",
                leader.id
            ));
        }
        let already_followed = self
            .transfers
            .iter()
            .any(|transfer| transfer.target == target && transfer.term == leader.term);
        // Asked again for the same target, the leader carries on with the same transfer.
        if result.is_ok() && !already_followed {
            self.stats.transfers_started += 1;
            self.transfers.push(Transfer {
                target,
                term: leader.term,
                started_at: self.now,
            });
        }
        Ok(())
    }

    /// Asks the leader of the newest term for a membership change drawn at random among
    /// those that apply: add a node as a learner or a voter, promote a learner, remove a
    /// member (itself too). A leader may refuse only for a reason of the moment (a change or
    /// a transfer in flight, its term's first entry not committed yet).
    fn ask_for_membership_change(&mut self) -> Result<(), String> {
        let Some(leader) = self.newest_leader() else {
            return Ok(());
        };
        let at = self.position(leader.id);
        let raft = self.shells[at].raft.as_mut().expect("a leader is up");
        let membership = raft.membership().clone();
        let mut changes = Vec::new();
        for &id in &self.ids {
            // A replacement, of which C_old's and C_new's majorities can be disjoint.
            if !membership.voters.contains(&id) {
                for &remove in &membership.voters {
                    changes.push(MembershipChange::Replace { remove, add: id });
                }
            }
            if membership.voters.contains(&id) {
                if membership.voters.len() > 1 {
                    changes.push(MembershipChange::Remove(id));
                }
            } else if membership.learners.contains(&id) {
                changes.push(MembershipChange::AddVoter(id));
                changes.push(MembershipChange::Remove(id));
            } else {
                changes.push(MembershipChange::AddLearner(id));
                changes.push(MembershipChange::AddVoter(id));
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        let change = pick(&mut self.membership_rng, &changes);
        let result = raft.propose_membership(change);
        self.note(|| format!("node {} asked for {change:?}: {result:?}", leader.id));
        match result {
            Ok(_) => {
                self.stats.membership_changes += 1;
                self.change_in_flight = Some((leader.id, leader.term));
                Ok(())
            }
            Err(
                ProposeError::MembershipChangeInProgress
                | ProposeError::LeaderNotReady
                | ProposeError::TransferInProgress { .. },
            ) => Ok(()),
            Err(other) => Err(format!(
                "leader {} refused {change:?} of {membership:?}: {other}",
                leader.id
            )),
        }
    }

    /// Whether every member of the newest leader's configuration (learners too) has applied
    /// `index`; nodes outside it (spares never added, removed nodes) are not waited for.
    fn members_applied(&self, index: faultline_node::raft::Index) -> bool {
        let Some(leader) = self.newest_leader() else {
            return false;
        };
        let raft = self.shells[self.position(leader.id)]
            .raft
            .as_ref()
            .expect("a leader is up");
        let members = raft.membership().members();
        self.shells
            .iter()
            .filter(|shell| members.contains(&shell.id))
            .all(|shell| shell.state.applied >= index)
    }

    /// Counts the membership change in flight once its leader has no change pending.
    fn follow_membership_change(&mut self) {
        let Some((leader, term)) = self.change_in_flight else {
            return;
        };
        let shell = &self.shells[self.position(leader)];
        let Some(raft) = shell.raft.as_ref() else {
            self.change_in_flight = None;
            return;
        };
        let status = raft.status();
        if status.term != term {
            self.change_in_flight = None;
        } else if !raft.membership_change_pending() {
            self.stats.membership_changes_completed += 1;
            self.change_in_flight = None;
        }
    }

    /// Counts the transfers whose target now leads the next term, and forgets those that
    /// another leader overtook or that ran out of time.
    fn follow_transfers(&mut self) {
        if self.transfers.is_empty() {
            return;
        }
        let leaders: Vec<(NodeId, Term)> = self
            .shells
            .iter()
            .filter_map(|shell| shell.raft.as_ref().map(Raft::status))
            .filter(|status| status.role == Role::Leader)
            .map(|status| (status.id, status.term))
            .collect();
        let now = self.now;
        let mut completed = 0;
        self.transfers.retain(|transfer| {
            if leaders.contains(&(transfer.target, transfer.term + 1)) {
                completed += 1;
                return false;
            }
            let overtaken = leaders.iter().any(|&(_, term)| term > transfer.term);
            !overtaken && now < transfer.started_at + TRANSFER_TICKS
        });
        self.stats.transfers_completed += completed;
    }

    /// Isolates one node, splits the cluster in two, or cuts one link one way.
    fn partition(&mut self) {
        let mut shuffled = self.ids.clone();
        for at in (1..shuffled.len()).rev() {
            shuffled.swap(at, self.rng.random_range(0..=at));
        }
        match self.rng.random_range(0..3) {
            0 => self.network.partition(&shuffled[..1], &self.ids),
            1 => {
                let cut = self.rng.random_range(1..shuffled.len());
                self.network.partition(&shuffled[..cut], &self.ids);
            }
            _ => self.network.cut_one_way(shuffled[0], shuffled[1]),
        }
        self.note(|| format!("partition {shuffled:?}"));
    }

    /// If a node leads a newer term than any seen so far, cuts it off together with the
    /// leader before it (replacing the previous cut).
    fn cut_off_new_leader(&mut self) {
        let Some(leader) = self.newest_leader() else {
            return;
        };
        if leader.term <= self.leaders.term {
            return;
        }
        self.leaders.term = leader.term;
        if self.leaders.current != Some(leader.id) {
            self.leaders.previous = self.leaders.current.replace(leader.id);
        }
        let mut side = vec![leader.id];
        side.extend(self.leaders.previous);
        self.network.heal();
        self.network.partition(&side, &self.ids);
        self.note(|| format!("cut off {side:?}, leader of term {}", leader.term));
    }

    fn node_down(&mut self, at: usize) {
        self.stats.crashes += 1;
        let downtime = self.rng.random_range(1..=self.rates.max_downtime);
        self.down_until[at] = Some(self.now + downtime);
        self.clients.node_crashed(self.ids[at]);
    }

    fn restart_due_nodes(&mut self) -> Result<(), String> {
        for at in 0..self.shells.len() {
            if self.down_until[at].is_some_and(|until| until <= self.now) {
                self.down_until[at] = None;
                self.shells[at].restart()?;
                let id = self.ids[at];
                self.note(|| format!("node {id} restarted"));
            }
        }
        Ok(())
    }

    /// Ends the fault phase: a perfect network, and every node restarted from its disk.
    fn heal_and_restart_everyone(&mut self) -> Result<(), String> {
        self.network.heal();
        self.network.faults.loss = 0.0;
        self.network.faults.duplication = 0.0;
        for at in 0..self.shells.len() {
            self.shells[at].crash();
            self.clients.node_crashed(self.ids[at]);
            self.down_until[at] = None;
            self.crash_next[at] = None;
            self.shells[at].restart()?;
        }
        self.note(|| "healed; every node restarted".to_string());
        self.clients.watch_writes_from(self.now);
        Ok(())
    }
}

/// One of `options`, uniformly.
fn pick<T: Copy>(rng: &mut ChaCha8Rng, options: &[T]) -> T {
    options[rng.random_range(0..options.len())]
}

/// A one-line summary of a message for the trace.
fn describe(msg: &faultline_node::raft::Message) -> String {
    use faultline_node::raft::MessageBody;
    let body = match &msg.body {
        MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
            read_round,
        } => format!(
            "AppendEntries prev=({prev_log_index},{prev_log_term}) entries={} \
             commit={leader_commit} round={read_round}",
            entries.len()
        ),
        MessageBody::InstallSnapshot { snapshot } => format!("InstallSnapshot {:?}", snapshot.meta),
        other => format!("{other:?}"),
    };
    format!("{}->{} term {} {body}", msg.from, msg.to, msg.term)
}
