//! The seeded schedule: which faults a run injects, in what order, and with
//! what targets, all drawn from one `--seed`.
//!
//! A [`Planner`] draws every random choice from a ChaCha8 generator before the
//! fault meets the cluster, and never consults the cluster while drawing, so
//! the same seed, kinds and node list always give the same sequence of
//! [`FaultPlan`]s. Only what depends on the cluster at that moment (who leads,
//! for the leader-targeted faults) may differ between replays.

use std::ops::RangeInclusive;
use std::time::Duration;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cluster::NodeName;
use crate::grudge::Grudge;
use crate::kind::{FaultKind, FaultKinds, Lane};
use crate::partition::Degradation;

/// How a run attacks the cluster: in each lane, start a fault, wait as long as it
/// [lasts](FaultPlan::lasts) (`interval`, for most), heal it, wait `interval`, repeat until
/// the time limit. The network lane starts half an interval after the process lane, so that
/// their faults overlap, except those that [run alone](FaultPlan::runs_alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The enabled faults; with none, the schedule does nothing.
    pub kinds: FaultKinds,
    /// How long each fault lasts, and each calm between faults.
    pub interval: Duration,
    /// The seed of every random choice.
    pub seed: u64,
}

impl Schedule {
    /// When `lane` starts its first fault, counted from the start of the run: the process
    /// lane after half an interval (so that the first crash finds data to lose), the network
    /// lane half an interval later (so that their faults overlap by half).
    pub fn lane_offset(&self, lane: Lane) -> Duration {
        match lane {
            Lane::Process => self.interval / 2,
            Lane::Network if self.kinds.of_lane(Lane::Process).is_empty() => self.interval / 2,
            Lane::Network => self.interval,
            Lane::Clock
                if self.kinds.of_lane(Lane::Process).is_empty()
                    && self.kinds.of_lane(Lane::Network).is_empty() =>
            {
                self.interval / 2
            }
            // A quarter of an interval after the process lane, so that a clock fault meets
            // the others' starts and ends rather than keeping in step with them.
            Lane::Clock => self.interval * 3 / 4,
            // Right after the first faults of the others, so that the first change meets
            // them (a change is asked of whoever leads, and takes a round trip or two).
            Lane::Membership => self.interval * 5 / 8,
        }
    }
}

/// Which nodes a process fault hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// These nodes.
    Nodes(Vec<NodeName>),
    /// The leader when the fault starts, or `fallback` if no leader is known.
    Leader {
        /// The node to hit when no leader is known.
        fallback: NodeName,
    },
}

/// One crash of a crash-restart storm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    /// Who is SIGKILLed and restarted at once.
    pub targets: Targets,
    /// How long to wait after the restart before the next crash.
    pub then: Duration,
}

/// One round of a flap-leader or drifting-leader fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flap {
    /// The node to isolate when no leader is known.
    pub fallback: NodeName,
    /// How long to wait, once the partition is healed, before the next round.
    pub calm: Duration,
}

/// The rate drifting-leader runs the leader's clock at: 25 % slow, the clock fault's largest
/// skew. Over the bundled node's shortest election timeout (150 ms) the others' clocks gain
/// 37.5 ms on it, which its default lease drift margin (40 ms) covers. A lease counted on
/// it lasts a third longer in true time: one that leaves no margin outlasts the others'
/// refusal of votes by up to 50 ms.
pub const LEASE_DRIFT_RATE: f64 = 0.75;

/// What a clock fault does to its node's clock. The magnitudes are drawn around the bundled
/// node's timing (heartbeat 50 ms, election timeout 150-300 ms, lease drift margin 40 ms):
/// see [`Planner`]'s `clock_change`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClockChange {
    /// Jump the clock by this many milliseconds (back if negative), and hold it there.
    Bump {
        /// The jump.
        delta_ms: i64,
    },
    /// Run the clock at this rate (1.1 is 10 % fast), from its offset of the moment.
    Skew {
        /// The rate.
        rate: f64,
    },
    /// Flip the clock between its offset of the moment and one `delta_ms` away, every
    /// `period`, for as long as the fault lasts.
    Strobe {
        /// How far the other offset is.
        delta_ms: i64,
        /// How long between flips.
        period: Duration,
    },
}

/// One fault, as drawn from the seed.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultPlan {
    /// SIGKILL a minority or the leader; healing restarts them.
    Kill(Targets),
    /// SIGKILL a majority at once; healing restarts them.
    KillMajority(Vec<NodeName>),
    /// SIGKILL every node at once; healing restarts them.
    KillAll,
    /// SIGKILL and restart at once, one crash after another, for as long as the fault lasts.
    CrashRestart(Vec<Crash>),
    /// SIGSTOP the targets; healing resumes them.
    Pause(Targets),
    /// SIGKILL the targets and drop what they did not fsync (keeping a torn prefix of it,
    /// drawn from the seed, when `torn` is set); healing restarts them.
    PowerLoss {
        /// Who loses power.
        targets: Targets,
        /// The seed of the torn prefixes, or `None` to lose every unsynced byte.
        torn: Option<u64>,
    },
    /// SIGSTOP a follower for `lag`, then SIGKILL the leader, and SIGCONT the follower
    /// `wake` later; healing restarts the leader. Who leads is resolved when the fault
    /// starts: the leader then, else the first node of `preference`; the follower is the
    /// first node of `preference` that is not the leader.
    LaggingFailover {
        /// The nodes in a seeded order, from which the follower (and, with no leader known,
        /// the leader) is taken.
        preference: Vec<NodeName>,
        /// How long the follower stays paused before the leader is killed.
        lag: Duration,
        /// How long after the kill the follower resumes.
        wake: Duration,
    },
    /// Cut the links of this grudge; healing restores every link.
    Partition(Grudge),
    /// Isolate the leader when the fault starts, or `fallback` if no leader is known.
    IsolateLeader {
        /// The node to isolate when no leader is known.
        fallback: NodeName,
    },
    /// Round after round, for as long as the fault lasts (two intervals, alone: see
    /// [`FaultPlan::runs_alone`]): isolate the leader of the moment; as soon as another node
    /// leads, SIGSTOP it and heal; SIGCONT it 350 ms later and crash-restart the deposed
    /// leader, then wait the round's calm. Healing heals the partition in force, or resumes
    /// the paused leader.
    FlapLeader(Vec<Flap>),
    /// Round after round, for as long as the fault lasts (three intervals, alone: see
    /// [`FaultPlan::runs_alone`]), two elections of one term that the same voters decide,
    /// with a restart of the voters between them:
    /// 1. cut the leader of the moment (with, from five nodes, enough others to make a
    ///    majority with the voters) off from the rest; of the rest, the node whose log is now
    ///    the longest is to win, and the others are the voters: slow the winner's links to
    ///    them (where the proxy is in the path) and SIGKILL them;
    /// 2. restart the voters: the winner, whose election timeout has ended meanwhile, asks
    ///    them first and wins the next term;
    /// 3. SIGSTOP the winner and SIGKILL the voters before its first entry reaches them over
    ///    the slow links; wait until the old leader, which check-quorum deposes, no longer
    ///    leads (it keeps its term: pre-vote);
    /// 4. move the voters to the old leader's side, away from the winner, and restart them:
    ///    the old leader, whose log is as long as theirs, asks them for the winner's term;
    /// 5. SIGCONT the winner, give the harness time to see it, heal every link and let the
    ///    nodes catch up.
    ///
    /// Voters that forget their vote across the restart (`forget-vote`) vote again in the
    /// term they voted in: two leaders of one term. A correct voter refuses, and the old
    /// leader follows the winner once healed. If a voter wins the first election (its own
    /// timeout ended first), the round is spent: heal and start again. With no leader known,
    /// the first node of `order` stands in for it.
    ///
    /// The kills and the pause are process actions from the network lane. With the fault
    /// running alone they meet no process fault in a schedule; applied by hand
    /// ([`crate::Nemesis::start`]) it does step 1 only, and healing restarts the voters; a
    /// voter that the process lane killed is killed again with nothing to do, and restarted
    /// by whichever lane heals first.
    RestartBridge {
        /// The nodes in a seeded order, which places them on the sides.
        order: Vec<NodeName>,
    },
    /// Slow down every link; healing restores them.
    Slow(Degradation),
    /// Drop connections on every link; healing restores them.
    Lossy(Degradation),
    /// One membership change, chosen when the fault starts from the members of the moment
    /// and `pick` (see [`crate::next_change`]): a spare joins as a learner, a learner is
    /// promoted, a voter is removed or replaced; a removed node is then retired. Nothing to
    /// heal: the new configuration stays, except for a replacement of a follower among an
    /// odd number of voters, which is asked while the network is cut as Raft's joint
    /// consensus exists for ([`crate::split_for`]): a majority of the new voters (the leader,
    /// the joining node and enough others) on one side, a majority of the old voters (the
    /// voter leaving among them) on the other. A correct leader cannot commit the change
    /// there (it needs a majority of the old voters too) and loses its leadership; one that
    /// switches straight to the new voters commits it and keeps leading while the other
    /// side elects a leader of its own. Healing heals the partition. A round that may
    /// replace runs alone ([`FaultPlan::runs_alone`]): the network is its.
    Membership {
        /// The seeded choice.
        pick: u64,
    },
    /// Round after round, for as long as the fault lasts (three intervals, alone: see
    /// [`FaultPlan::runs_alone`]), a leader's lease put to its clock assumption:
    /// 1. slow the clock of the leader of the moment (or else the round's fallback) to
    ///    [`LEASE_DRIFT_RATE`], and let it take a lease or two at that rate;
    /// 2. cut it off from every other node, its own links first;
    /// 3. once another node leads, wait until any lease the old leader holds has run out,
    ///    then set its clock back to true time and heal every link; wait the round's calm.
    ///
    /// Elections run on the others' clocks, which keep true time: they stop refusing votes
    /// one shortest election timeout after they last heard the leader. A lease that lasts
    /// that whole timeout on the slowed clock (`lease-no-drift`) ends a third later in true
    /// time, and the old leader serves reads under it that miss the new leader's writes. A
    /// lease that leaves a margin for the drift (the bundled node's default, 40 ms and a tick
    /// of 150 ms) ends before any vote is granted. Healing heals the partition and the clock.
    DriftingLeader(Vec<Flap>),
    /// Change one node's clock (the leader's when the fault starts, or one node's); healing
    /// sets it back to true time.
    Clock {
        /// Whose clock: the leader, or a single node.
        target: Targets,
        /// How.
        change: ClockChange,
    },
}

impl FaultPlan {
    /// The lane the plan runs in.
    pub fn lane(&self) -> Lane {
        match self {
            FaultPlan::Kill(_)
            | FaultPlan::KillMajority(_)
            | FaultPlan::KillAll
            | FaultPlan::CrashRestart(_)
            | FaultPlan::Pause(_)
            | FaultPlan::PowerLoss { .. }
            | FaultPlan::LaggingFailover { .. } => Lane::Process,
            FaultPlan::Partition(_)
            | FaultPlan::IsolateLeader { .. }
            | FaultPlan::FlapLeader(_)
            | FaultPlan::RestartBridge { .. }
            | FaultPlan::Slow(_)
            | FaultPlan::Lossy(_) => Lane::Network,
            FaultPlan::Clock { .. } | FaultPlan::DriftingLeader(_) => Lane::Clock,
            FaultPlan::Membership { .. } => Lane::Membership,
        }
    }

    /// How long the fault lasts in a schedule of `interval`: one interval, except those
    /// that act round after round, each round waiting for an election: restart-bridge and
    /// drifting-leader last three, flap-leader two. They run alone, one after another, early
    /// in a run (each leads its lane's first deck); flap-leader comes last of them, and with
    /// a single interval its first turn gave it one or two rounds (`no-truncate` was caught
    /// in 3 runs of 8 once drifting-leader came before it).
    pub fn lasts(&self, interval: Duration) -> Duration {
        match self {
            FaultPlan::RestartBridge { .. } | FaultPlan::DriftingLeader(_) => interval * 3,
            FaultPlan::FlapLeader(_) => interval * 2,
            _ => interval,
        }
    }

    /// Whether the plan needs the cluster to itself: the other lanes heal their faults in
    /// force and start none until this one is healed. A replacement cuts the network as it
    /// needs it (see [`FaultPlan::Membership`]). Restart-bridge needs both sides of its
    /// partition running and the bridge crashed by nobody else: a kill or pause from the
    /// process lane spoils the elections it sets up, and in a default run it would meet one
    /// most of the time. Flap-leader needs the deposed leader running, with its suffix, until
    /// it crashes it itself: a kill or pause from the process lane spoils the round (as one
    /// did when a membership replacement, ending, released both lanes at once).
    /// Drifting-leader needs the others to elect as soon as their clocks let them: a node
    /// down or paused, or a partition of the network lane, delays the election past the
    /// window it aims at.
    pub fn runs_alone(&self) -> bool {
        match self {
            FaultPlan::RestartBridge { .. }
            | FaultPlan::FlapLeader(_)
            | FaultPlan::DriftingLeader(_) => true,
            FaultPlan::Membership { pick } => crate::membership::replaces(*pick),
            _ => false,
        }
    }
}

/// Draws fault plans from a seed.
///
/// Kinds come from a shuffled deck: each enabled kind once, in a random order, then a new
/// deck. So every kind is tried within one round of the deck, early in a run, rather than
/// left to chance (with a dozen kinds, independent draws leave some out of a short run).
///
/// The first deck [leads](LEADING) with the faults that expose the most, and the first power
/// loss hits every node: a short run then always has them, early.
#[derive(Debug, Clone)]
pub struct Planner {
    rng: ChaCha8Rng,
    kinds: Vec<FaultKind>,
    deck: Vec<FaultKind>,
    /// Whether a deck has been dealt yet: the first one leads with [`LEADING`].
    dealt: bool,
    /// Whether a power loss has been planned yet: the first one hits every node.
    powered_off: bool,
    /// Whether a membership change has been planned yet: the first one may replace a voter.
    changed_members: bool,
    nodes: Vec<NodeName>,
    interval: Duration,
    /// The clock faults still to come in this round (bump, skew, strobe), dealt like the
    /// kinds, so that each is tried early.
    clock_deck: Vec<u8>,
}

/// The kinds the first deck of a lane deals first, when enabled: those that alone expose a
/// bug that nothing else does, and that a short run must therefore not leave to the shuffle.
/// A power loss of every node is the one fault that shows writes acknowledged before they
/// were durable (`no-fsync`); flap-leader is the one that gives a follower a conflicting
/// suffix to keep (`no-truncate`), and left to the shuffle it came on average a dozen seconds
/// into a run; restart-bridge, right after it, is the one that makes a voter that forgets
/// its vote vote twice (`forget-vote`), usually in its first round; drifting-leader, the clock
/// lane's first, is the one that shows a lease with no margin for drift (`lease-no-drift`), in
/// about one round of six. The faults that run alone take their turns one after another, so
/// the network lane's two come after the clock lane's (it starts earlier): flap-leader leads,
/// as a single interval of it after restart-bridge and drifting-leader left `no-truncate`
/// uncaught in 5 default runs of 8.
pub const LEADING: [FaultKind; 4] = [
    FaultKind::PowerLoss,
    FaultKind::FlapLeader,
    FaultKind::RestartBridge,
    FaultKind::DriftingLeader,
];

impl Planner {
    /// A planner over `nodes` (in the cluster's stable order) and the enabled `kinds`, for
    /// faults that last `interval`, seeded with `seed`.
    pub fn new(kinds: &FaultKinds, nodes: Vec<NodeName>, interval: Duration, seed: u64) -> Self {
        Planner {
            rng: ChaCha8Rng::seed_from_u64(seed),
            kinds: kinds.iter().collect(),
            deck: Vec::new(),
            dealt: false,
            powered_off: false,
            changed_members: false,
            nodes,
            interval,
            clock_deck: Vec::new(),
        }
    }

    /// The planner of one lane of `schedule`: the lane's kinds, and a seed of its own, so
    /// that enabling a kind of one lane does not change the other lane's faults.
    pub fn for_lane(schedule: &Schedule, lane: Lane, nodes: Vec<NodeName>) -> Self {
        let lane_seed = match lane {
            Lane::Process => schedule.seed,
            Lane::Network => schedule.seed ^ 0x6e65_7477_6f72_6b00, // "network"
            Lane::Clock => schedule.seed ^ 0x636c_6f63_6b00,        // "clock"
            Lane::Membership => schedule.seed ^ 0x6d65_6d62_6572_7300, // "members"
        };
        Planner::new(
            &schedule.kinds.of_lane(lane),
            nodes,
            schedule.interval,
            lane_seed,
        )
    }

    /// Whether it has nothing to plan: no kind enabled, or no nodes.
    pub fn is_idle(&self) -> bool {
        self.kinds.is_empty() || self.nodes.is_empty()
    }

    /// The next fault, or `None` when no kind is enabled or there are no nodes.
    pub fn next_plan(&mut self) -> Option<FaultPlan> {
        if self.nodes.is_empty() || self.kinds.is_empty() {
            return None;
        }
        if self.deck.is_empty() {
            self.deck = self.kinds.clone();
            self.deck.shuffle(&mut self.rng);
            if !self.dealt {
                // The deck is dealt from its end: the leading kinds go there, in their order.
                self.deck
                    .sort_by_key(|kind| LEADING.iter().rev().position(|lead| lead == kind));
                self.dealt = true;
            }
        }
        let kind = self.deck.pop()?;
        Some(match kind {
            FaultKind::Kill => FaultPlan::Kill(self.minority_or_leader()),
            FaultKind::KillMajority => FaultPlan::KillMajority(self.some_nodes(self.quorum())),
            FaultKind::KillAll => FaultPlan::KillAll,
            FaultKind::CrashRestart => FaultPlan::CrashRestart(self.crashes()),
            FaultKind::Pause => FaultPlan::Pause(self.minority_or_leader()),
            FaultKind::PowerLoss => FaultPlan::PowerLoss {
                targets: if std::mem::replace(&mut self.powered_off, true) {
                    self.one_majority_or_all()
                } else {
                    Targets::Nodes(self.nodes.clone())
                },
                torn: self.rng.random_bool(0.5).then(|| self.rng.random()),
            },
            FaultKind::LaggingFailover => FaultPlan::LaggingFailover {
                preference: self.shuffled(),
                lag: Duration::from_millis(self.rng.random_range(100..=300)),
                // About an election timeout: the others have stopped counting on the dead
                // leader, and the follower, whose own timeout ran out while it was stopped,
                // campaigns as soon as it runs.
                wake: Duration::from_millis(self.rng.random_range(150..=300)),
            },
            FaultKind::Partition => FaultPlan::Partition(Grudge::halves(&self.shuffled())),
            FaultKind::PartitionLeader => FaultPlan::IsolateLeader {
                fallback: self.any_node(),
            },
            FaultKind::FlapLeader => FaultPlan::FlapLeader(self.flaps()),
            FaultKind::PartitionOneWay => FaultPlan::Partition(Grudge::one_way(&self.shuffled())),
            FaultKind::MajoritiesRing => {
                FaultPlan::Partition(Grudge::majorities_ring(&self.shuffled()))
            }
            FaultKind::Bridge => FaultPlan::Partition(Grudge::bridge(&self.shuffled())),
            FaultKind::RestartBridge => FaultPlan::RestartBridge {
                order: self.shuffled(),
            },
            FaultKind::Slow => FaultPlan::Slow(self.slowness()),
            FaultKind::Lossy => FaultPlan::Lossy(self.lossiness()),
            FaultKind::Clock => FaultPlan::Clock {
                target: self.one_node_or_leader(),
                change: self.clock_change(),
            },
            FaultKind::DriftingLeader => FaultPlan::DriftingLeader(self.drifts()),
            FaultKind::Membership => FaultPlan::Membership {
                pick: self.membership_pick(),
            },
        })
    }

    /// What the next membership change picks (see [`crate::next_change`]): at random, but
    /// the first change replaces a voter where it can. Of every change, only a replacement
    /// across a split exposes a switch of voters in one step (`membership-one-step`); left
    /// to chance, some runs began with a learner's joining and promotion, after which the
    /// four voters were never replaced, and those runs missed the bug.
    fn membership_pick(&mut self) -> u64 {
        let pick: u64 = self.rng.random();
        if std::mem::replace(&mut self.changed_members, true) {
            pick
        } else {
            crate::membership::replacing(pick)
        }
    }

    /// The leader (half the time) or one random node.
    fn one_node_or_leader(&mut self) -> Targets {
        if self.rng.random_bool(0.5) {
            self.leader()
        } else {
            Targets::Nodes(self.some_nodes(1))
        }
    }

    /// A bump, a skew or a strobe, each once in every three clock faults (in a seeded order).
    ///
    /// - A bump jumps 100 to 500 ms, ahead or back: from below the shortest election timeout
    ///   (150 ms) to well past the longest (300 ms), so that some jumps ahead run a timeout out
    ///   at once and some jumps back hold a leader's heartbeats (50 ms) for several rounds.
    /// - A skew runs the clock 2 to 25 % fast or slow: from a drift that any lease margin
    ///   covers to the most the bundled node's default covers (40 ms of a 150 ms election
    ///   timeout); over a one-second fault that is 20 to 250 ms of offset.
    /// - A strobe flips between two offsets 100 to 400 ms apart every 20 to 60 ms: several
    ///   flips within a heartbeat and within an election timeout, so the node's timers see its
    ///   clock step back and forth between them.
    fn clock_change(&mut self) -> ClockChange {
        if self.clock_deck.is_empty() {
            self.clock_deck = vec![0, 1, 2];
            self.clock_deck.shuffle(&mut self.rng);
        }
        let sign = if self.rng.random_bool(0.5) { 1 } else { -1 };
        match self.clock_deck.pop() {
            Some(0) => ClockChange::Bump {
                delta_ms: sign * self.rng.random_range(100..=500),
            },
            Some(1) => ClockChange::Skew {
                rate: 1.0 + sign as f64 * self.rng.random_range(0.02..=0.25),
            },
            _ => ClockChange::Strobe {
                delta_ms: sign * self.rng.random_range(100..=400),
                period: Duration::from_millis(self.rng.random_range(20..=60)),
            },
        }
    }

    /// The leader (half the time) or a random minority.
    fn minority_or_leader(&mut self) -> Targets {
        if self.rng.random_bool(0.5) {
            return self.leader();
        }
        let largest_minority = ((self.nodes.len() - 1) / 2).max(1);
        let size = self.rng.random_range(1..=largest_minority);
        Targets::Nodes(self.some_nodes(size))
    }

    /// Every node half the time (what only a cluster-wide outage shows: data that no node
    /// made durable), else a random majority or one node (the leader half the time), a
    /// quarter of the time each.
    fn one_majority_or_all(&mut self) -> Targets {
        match self.rng.random_range(0..4) {
            0 if self.rng.random_bool(0.5) => self.leader(),
            0 => Targets::Nodes(self.some_nodes(1)),
            1 => Targets::Nodes(self.some_nodes(self.quorum())),
            _ => Targets::Nodes(self.nodes.clone()),
        }
    }

    /// Crashes spaced by a random 50 to 500 ms (about an election timeout), filling the
    /// fault's interval; each hits one node, the leader a third of the time.
    fn crashes(&mut self) -> Vec<Crash> {
        let mut crashes = Vec::new();
        let mut planned = Duration::ZERO;
        while planned < self.interval || crashes.is_empty() {
            let targets = if self.rng.random_bool(1.0 / 3.0) {
                self.leader()
            } else {
                Targets::Nodes(self.some_nodes(1))
            };
            let then = Duration::from_millis(self.rng.random_range(50..=500));
            planned += then;
            crashes.push(Crash { targets, then });
        }
        crashes
    }

    /// Drifting-leader rounds, each with a fallback and a calm of 100 to 200 ms (the old
    /// leader catches up, and the new one takes a lease), enough of them that their calms
    /// alone fill the fault's three intervals.
    fn drifts(&mut self) -> Vec<Flap> {
        self.leader_rounds(3, 100..=200)
    }

    /// Flap-leader rounds, each with a fallback and a calm of 100 to 300 ms, enough of
    /// them that their calms alone fill the fault's two intervals (each round also waits for an
    /// election, so the fault ends before they run out).
    fn flaps(&mut self) -> Vec<Flap> {
        self.leader_rounds(2, 100..=300)
    }

    /// Rounds aimed at the leader, each with a fallback and a calm of `calms` ms, enough of
    /// them that their calms fill `intervals` intervals (the calms drawn first).
    fn leader_rounds(&mut self, intervals: usize, calms: RangeInclusive<u64>) -> Vec<Flap> {
        let calms: Vec<Duration> = (0..intervals)
            .flat_map(|_| self.fill_interval(calms.clone()))
            .collect();
        calms
            .into_iter()
            .map(|calm| Flap {
                fallback: self.any_node(),
                calm,
            })
            .collect()
    }

    /// Random waits of `millis` that add up to the fault's interval at least (one at least).
    fn fill_interval(&mut self, millis: RangeInclusive<u64>) -> Vec<Duration> {
        let mut waits = Vec::new();
        let mut planned = Duration::ZERO;
        while planned < self.interval || waits.is_empty() {
            let wait = Duration::from_millis(self.rng.random_range(millis.clone()));
            planned += wait;
            waits.push(wait);
        }
        waits
    }

    /// 20 to 300 ms on every message, with as much jitter again at most.
    fn slowness(&mut self) -> Degradation {
        let latency = Duration::from_millis(self.rng.random_range(20..=300));
        Degradation {
            latency,
            jitter: latency,
            drop: 0.0,
            seed: self.rng.random(),
        }
    }

    /// A 5 to 30 % chance that any chunk of traffic takes its connection down with it.
    fn lossiness(&mut self) -> Degradation {
        Degradation {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            drop: self.rng.random_range(0.05..=0.3),
            seed: self.rng.random(),
        }
    }

    fn leader(&mut self) -> Targets {
        Targets::Leader {
            fallback: self.any_node(),
        }
    }

    fn quorum(&self) -> usize {
        self.nodes.len() / 2 + 1
    }

    /// `size` distinct random nodes, sorted.
    fn some_nodes(&mut self, size: usize) -> Vec<NodeName> {
        let mut chosen: Vec<NodeName> = self
            .nodes
            .choose_multiple(&mut self.rng, size)
            .cloned()
            .collect();
        chosen.sort();
        chosen
    }

    fn any_node(&mut self) -> NodeName {
        let index = self.rng.random_range(0..self.nodes.len());
        self.nodes[index].clone()
    }

    fn shuffled(&mut self) -> Vec<NodeName> {
        let mut order = self.nodes.clone();
        order.shuffle(&mut self.rng);
        order
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn nodes(n: usize) -> Vec<NodeName> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn plans(kinds: &str, n: usize, seed: u64, count: usize) -> Vec<FaultPlan> {
        let kinds = kinds.parse().expect("valid kinds");
        let mut planner = Planner::new(&kinds, nodes(n), Duration::from_secs(5), seed);
        (0..count)
            .map(|_| planner.next_plan().expect("a plan"))
            .collect()
    }

    fn kind_of(plan: &FaultPlan) -> &'static str {
        match plan {
            FaultPlan::Kill(_) => "kill",
            FaultPlan::KillMajority(_) => "kill-majority",
            FaultPlan::KillAll => "kill-all",
            FaultPlan::CrashRestart(_) => "crash-restart",
            FaultPlan::Pause(_) => "pause",
            FaultPlan::PowerLoss { .. } => "power-loss",
            FaultPlan::LaggingFailover { .. } => "lagging-failover",
            FaultPlan::Partition(_) => "partition",
            FaultPlan::IsolateLeader { .. } => "isolate-leader",
            FaultPlan::FlapLeader(_) => "flap-leader",
            FaultPlan::RestartBridge { .. } => "restart-bridge",
            FaultPlan::Slow(_) => "slow",
            FaultPlan::Lossy(_) => "lossy",
            FaultPlan::Clock {
                change: ClockChange::Bump { .. },
                ..
            } => "bump-clock",
            FaultPlan::Clock {
                change: ClockChange::Skew { .. },
                ..
            } => "skew-clock",
            FaultPlan::Clock {
                change: ClockChange::Strobe { .. },
                ..
            } => "strobe-clock",
            FaultPlan::DriftingLeader(_) => "drifting-leader",
            FaultPlan::Membership { .. } => "membership",
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_plans() {
        assert_eq!(plans("all", 5, 42, 200), plans("all", 5, 42, 200));
    }

    #[test]
    fn different_seeds_give_different_plans() {
        assert_ne!(plans("all", 5, 1, 50), plans("all", 5, 2, 50));
    }

    #[test]
    fn only_enabled_kinds_are_drawn_and_each_of_them_is() {
        let drawn: BTreeSet<_> = plans("pause,partition-leader", 3, 7, 100)
            .iter()
            .map(kind_of)
            .collect();
        assert_eq!(drawn, BTreeSet::from(["isolate-leader", "pause"]));
        let aimed = "flap-leader,lagging-failover,restart-bridge";
        let drawn: BTreeSet<_> = plans(aimed, 3, 7, 30).iter().map(kind_of).collect();
        assert_eq!(
            drawn,
            BTreeSet::from(["flap-leader", "lagging-failover", "restart-bridge"])
        );
    }

    #[test]
    fn process_faults_hit_the_leader_or_a_minority_of_distinct_nodes() {
        let mut leader_targeted = 0;
        let mut sizes = BTreeSet::new();
        for plan in plans("kill,pause", 5, 3, 300) {
            let (FaultPlan::Kill(targets) | FaultPlan::Pause(targets)) = plan else {
                panic!("unexpected plan {plan:?}");
            };
            match targets {
                Targets::Leader { .. } => leader_targeted += 1,
                Targets::Nodes(chosen) => {
                    let distinct: BTreeSet<_> = chosen.iter().collect();
                    assert_eq!(distinct.len(), chosen.len(), "{chosen:?}");
                    sizes.insert(chosen.len());
                }
            }
        }
        assert!(leader_targeted > 0);
        assert_eq!(
            sizes,
            BTreeSet::from([1, 2]),
            "minorities of five are 1 or 2"
        );
    }

    #[test]
    fn three_node_minorities_are_single_nodes() {
        for plan in plans("kill", 3, 11, 100) {
            if let FaultPlan::Kill(Targets::Nodes(chosen)) = plan {
                assert_eq!(chosen.len(), 1);
            }
        }
    }

    #[test]
    fn partitions_are_drawn_over_varied_node_orders() {
        let grudges: BTreeSet<_> = plans("partition", 5, 5, 100)
            .into_iter()
            .map(|plan| match plan {
                FaultPlan::Partition(grudge) => format!("{}", grudge.to_json()),
                other => panic!("unexpected plan {other:?}"),
            })
            .collect();
        // 5 choose 2 = 10 ways to split five nodes into two and three.
        assert_eq!(grudges.len(), 10);
    }

    #[test]
    fn power_loss_hits_one_node_a_majority_or_everyone_torn_or_not() {
        let mut sizes = BTreeSet::new();
        let mut torn = BTreeSet::new();
        for plan in plans("power-loss", 5, 13, 200) {
            let FaultPlan::PowerLoss {
                targets,
                torn: seed,
            } = plan
            else {
                panic!("unexpected plan {plan:?}");
            };
            sizes.insert(match targets {
                Targets::Leader { .. } => 1,
                Targets::Nodes(nodes) => nodes.len(),
            });
            torn.insert(seed.is_some());
        }
        assert_eq!(sizes, BTreeSet::from([1, 3, 5]));
        assert_eq!(torn, BTreeSet::from([false, true]));
    }

    #[test]
    fn the_first_deck_leads_with_a_power_loss_of_every_node_then_flap_leader_and_restart_bridge() {
        let process = "kill,crash-restart,pause,power-loss,lagging-failover";
        let network = "partition,partition-leader,flap-leader,restart-bridge,slow,lossy";
        let mut seconds = BTreeSet::new();
        for seed in 0..50 {
            let first = plans(process, 5, seed, 6);
            let FaultPlan::PowerLoss { targets, .. } = &first[0] else {
                panic!("seed {seed}: {:?} first", first[0]);
            };
            assert_eq!(targets, &Targets::Nodes(nodes(5)), "seed {seed}");
            // The rest of the deck stays shuffled, and the deck after it is whole.
            seconds.insert(kind_of(&first[1]));
            let second_deck: BTreeSet<_> = first[5..].iter().map(kind_of).collect();
            assert_eq!(second_deck.len(), 1);
            let network_plans = plans(network, 3, seed, 2);
            assert_eq!(kind_of(&network_plans[0]), "flap-leader");
            assert_eq!(kind_of(&network_plans[1]), "restart-bridge");
            let clock_plans = plans("clock,drifting-leader", 3, seed, 1);
            assert_eq!(kind_of(&clock_plans[0]), "drifting-leader");
        }
        assert_eq!(seconds.len(), 4, "{seconds:?}");
    }

    #[test]
    fn the_first_membership_change_may_replace_and_the_later_ones_are_left_to_the_seed() {
        let mut later = BTreeSet::new();
        for seed in 0..50 {
            let picks: Vec<u64> = plans("membership", 5, seed, 8)
                .into_iter()
                .map(|plan| match plan {
                    FaultPlan::Membership { pick } => pick,
                    other => panic!("seed {seed}: {other:?}"),
                })
                .collect();
            assert!(crate::membership::replaces(picks[0]), "seed {seed}");
            later.extend(
                picks[1..]
                    .iter()
                    .map(|pick| crate::membership::replaces(*pick)),
            );
        }
        assert_eq!(later, BTreeSet::from([false, true]));
    }

    #[test]
    fn a_crash_restart_storm_fills_the_fault_with_crashes_an_election_timeout_apart() {
        for plan in plans("crash-restart", 3, 17, 20) {
            let FaultPlan::CrashRestart(crashes) = plan else {
                panic!("unexpected plan {plan:?}");
            };
            let total: Duration = crashes.iter().map(|crash| crash.then).sum();
            assert!(total >= Duration::from_secs(5), "{total:?}");
            assert!(crashes.len() >= 10, "{} crashes", crashes.len());
            assert!(
                crashes
                    .iter()
                    .all(|crash| crash.then <= Duration::from_millis(500))
            );
        }
    }

    #[test]
    fn flap_leader_plans_enough_rounds_with_calms_of_100_to_300_ms_to_fill_the_fault() {
        let mut fallbacks = BTreeSet::new();
        for plan in plans("flap-leader", 3, 19, 20) {
            let FaultPlan::FlapLeader(flaps) = plan else {
                panic!("unexpected plan {plan:?}");
            };
            let calms: Duration = flaps.iter().map(|flap| flap.calm).sum();
            assert!(calms >= Duration::from_secs(5), "{calms:?}");
            let (shortest, longest) = (Duration::from_millis(100), Duration::from_millis(300));
            assert!(
                flaps
                    .iter()
                    .all(|flap| (shortest..=longest).contains(&flap.calm))
            );
            fallbacks.extend(flaps.into_iter().map(|flap| flap.fallback));
        }
        assert_eq!(fallbacks, nodes(3).into_iter().collect());
    }

    #[test]
    fn lagging_failover_orders_every_node_lags_100_to_300_ms_and_wakes_150_to_300_ms_later() {
        let mut firsts = BTreeSet::new();
        for plan in plans("lagging-failover", 3, 23, 50) {
            let FaultPlan::LaggingFailover {
                preference,
                lag,
                wake,
            } = plan
            else {
                panic!("unexpected plan {plan:?}");
            };
            assert!((150..=300).contains(&wake.as_millis()), "{wake:?}");
            let mut sorted = preference.clone();
            sorted.sort();
            assert_eq!(sorted, nodes(3), "a fallback for each role, all distinct");
            assert!((100..=300).contains(&lag.as_millis()), "{lag:?}");
            firsts.insert(preference[0].clone());
        }
        assert_eq!(firsts.len(), 3, "every node comes first sometimes");
    }

    #[test]
    fn restart_bridge_orders_every_node() {
        let mut fallback_bridges = BTreeSet::new();
        for plan in plans("restart-bridge", 5, 29, 30) {
            let FaultPlan::RestartBridge { order } = plan else {
                panic!("unexpected plan {plan:?}");
            };
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, nodes(5));
            fallback_bridges.extend(Grudge::bridge_node(&order).cloned());
        }
        assert_eq!(fallback_bridges.len(), 5, "any node may be the bridge");
    }

    #[test]
    fn each_lane_draws_only_its_own_kinds_from_a_seed_of_its_own() {
        let schedule = Schedule {
            kinds: "kill,partition".parse().unwrap(),
            interval: Duration::from_secs(1),
            seed: 3,
        };
        let mut process = Planner::for_lane(&schedule, Lane::Process, nodes(3));
        let mut network = Planner::for_lane(&schedule, Lane::Network, nodes(3));
        for _ in 0..20 {
            assert_eq!(process.next_plan().map(|p| p.lane()), Some(Lane::Process));
            assert_eq!(network.next_plan().map(|p| p.lane()), Some(Lane::Network));
        }
        let only_kills = Schedule {
            kinds: "kill".parse().unwrap(),
            ..schedule.clone()
        };
        let mut alone = Planner::for_lane(&only_kills, Lane::Process, nodes(3));
        let mut with_partitions = Planner::for_lane(&schedule, Lane::Process, nodes(3));
        for _ in 0..20 {
            assert_eq!(alone.next_plan(), with_partitions.next_plan());
        }
        assert_eq!(
            schedule.lane_offset(Lane::Process),
            Duration::from_millis(500)
        );
        assert_eq!(schedule.lane_offset(Lane::Network), Duration::from_secs(1));
        let only_partitions = Schedule {
            kinds: "partition".parse().unwrap(),
            ..schedule
        };
        assert_eq!(
            only_partitions.lane_offset(Lane::Network),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn every_kind_plans_a_fault_of_its_own_lane() {
        for kind in FaultKind::ALL {
            let kinds: FaultKinds = [kind].into_iter().collect();
            let mut planner = Planner::new(&kinds, nodes(3), Duration::from_secs(1), 1);
            let plan = planner.next_plan().expect("a plan");
            assert_eq!(plan.lane(), kind.lane(), "{kind}: {plan:?}");
        }
    }

    #[test]
    fn every_kind_comes_once_in_each_round_of_the_deck() {
        let kinds = "kill,crash-restart,pause,power-loss,kill-all,lagging-failover"
            .parse()
            .unwrap();
        let mut planner = Planner::new(&kinds, nodes(3), Duration::from_secs(1), 9);
        for _ in 0..4 {
            let round: BTreeSet<_> = (0..6)
                .map(|_| kind_of(&planner.next_plan().unwrap()))
                .collect();
            assert_eq!(round.len(), 6, "{round:?}");
        }
    }

    #[test]
    fn clock_faults_hit_one_node_with_every_change_in_its_bounds_each_once_a_round() {
        let mut leader_targeted = 0;
        let mut signs = BTreeSet::new();
        let all = plans("clock", 5, 31, 300);
        for round in all.chunks(3) {
            let kinds: BTreeSet<_> = round.iter().map(kind_of).collect();
            assert_eq!(
                kinds.len(),
                3,
                "bump, skew and strobe each round: {round:?}"
            );
        }
        for plan in all {
            let FaultPlan::Clock { target, change } = plan else {
                panic!("unexpected plan {plan:?}");
            };
            match target {
                Targets::Leader { .. } => leader_targeted += 1,
                Targets::Nodes(nodes) => assert_eq!(nodes.len(), 1),
            }
            match change {
                ClockChange::Bump { delta_ms } => {
                    assert!((100..=500).contains(&delta_ms.abs()), "{delta_ms}");
                    signs.insert(("bump", delta_ms > 0));
                }
                ClockChange::Skew { rate } => {
                    let by = (rate - 1.0).abs();
                    assert!((0.02..=0.25 + 1e-12).contains(&by), "{rate}");
                    signs.insert(("skew", rate > 1.0));
                }
                ClockChange::Strobe { delta_ms, period } => {
                    assert!((100..=400).contains(&delta_ms.abs()), "{delta_ms}");
                    assert!((20..=60).contains(&period.as_millis()), "{period:?}");
                    signs.insert(("strobe", delta_ms > 0));
                }
            }
        }
        assert!(leader_targeted > 0);
        assert_eq!(signs.len(), 6, "ahead and back, fast and slow: {signs:?}");
    }

    #[test]
    fn no_kinds_or_no_nodes_give_no_plan() {
        let second = Duration::from_secs(1);
        let mut planner = Planner::new(&FaultKinds::none(), nodes(3), second, 1);
        assert_eq!(planner.next_plan(), None);
        let mut planner = Planner::new(&FaultKinds::all(), Vec::new(), second, 1);
        assert_eq!(planner.next_plan(), None);
    }
}
