//! The nemesis: applies faults to a [`Cluster`] and a network ([`Degrader`]), one at a time in
//! each lane of the [`Schedule`] (process, network, clock and membership faults run side by
//! side, so they overlap, except those that run alone), keeps track of what it broke so it
//! can always heal it, reports every start and stop as an [`Event`], and runs the seeded
//! schedule until a deadline or a cancellation.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, SemaphorePermit, watch};
use tokio::time::Instant;

use crate::clock::ClockSetting;
use crate::cluster::{Cluster, NodeName};
use crate::event::{Event, EventName};
use crate::grudge::{Grudge, Link};
use crate::kind::Lane;
use crate::partition::{Degradation, Degrader, PartitionError};
use crate::schedule::{ClockChange, Crash, FaultPlan, Flap, Planner, Schedule, Targets};

mod drifting_leader;
mod membership_round;
mod restart_bridge;

use restart_bridge::Sides;

/// How often flap-leader and restart-bridge ask who leads while they wait for a new leader
/// (or for an old one to step down): a fraction of an election timeout, so that they act soon
/// after.
const LEADER_POLL: Duration = Duration::from_millis(20);

/// How often the membership nemesis asks again for the members while no leader answers or a
/// change is under way.
const MEMBERS_POLL: Duration = Duration::from_millis(100);

/// How often flap-leader asks who leads once it has cut the leader off: the successor is
/// paused as soon as it is seen leading, and its log must then still be shorter than the
/// deposed leader's suffix (about one write per client). The node-bound writers write to a new
/// leader within milliseconds of its election, so at [`LEADER_POLL`] its log outgrew the
/// suffix in most rounds (`no-truncate` caught in 2 default runs of 5).
const SUCCESSOR_POLL: Duration = Duration::from_millis(5);

/// How long flap-leader holds each successor paused after the heal: an election timeout of the
/// bundled node and the next election (its follower's, which the deposed leader cannot win:
/// its last entry is of an older term), so that the deposed leader's uncommitted suffix meets
/// a leader whose log is shorter still.
const SUCCESSOR_PAUSED: Duration = Duration::from_millis(350);

/// How long a leader being cut off is not heard before it stops hearing, too. The bundled node
/// (as many do) answers a Raft message with a message of its own the other way: cut both ways
/// at once, or the way back first (as the links' order made it for some node names), the
/// leader's last entries reach the followers but their acknowledgements do not, its clients
/// wait on entries every node holds, and it is deposed with no entry of its own. Its own links
/// cut first, the acknowledgements already on their way arrive, its clients send their next
/// writes, and those it alone holds: the uncommitted suffix that a deposed leader must give up
/// (flap-leader's aim). A loopback round trip is well under this.
const UNHEARD_FIRST: Duration = Duration::from_millis(20);

/// How long a fault that runs alone lets the cluster settle before it starts: long enough for
/// a node that the other lane just restarted to catch up with the leader.
const SETTLE: Duration = Duration::from_millis(300);

/// A fault could not be applied or healed.
#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    /// The cluster failed to kill, restart, power off, pause or resume a node.
    #[error("could not {action} node {node}")]
    Cluster {
        /// `"kill"`, `"restart"`, `"power off"`, `"pause"` or `"resume"`.
        action: &'static str,
        /// The node.
        node: NodeName,
        /// What the cluster reported.
        #[source]
        source: anyhow::Error,
    },
    /// The partition backend failed to cut, degrade or heal links.
    #[error("could not change the network")]
    Network(#[from] PartitionError),
    /// A schedule with faults but a zero interval would start and heal
    /// faults in a busy loop.
    #[error("the nemesis interval must be longer than zero")]
    ZeroInterval,
}

/// A fault in force in a lane, remembered so that it can be healed.
#[derive(Debug, Clone, PartialEq)]
enum ActiveFault {
    /// Killed or powered off: healed by restarting them.
    Down(Vec<NodeName>),
    /// Healed by resuming them.
    Paused(Vec<NodeName>),
    /// Cut or degraded links: healed by healing the network, then reported as `stop`
    /// with the start's value.
    Network { stop: EventName, value: Value },
    /// Clocks off true time: healed by setting them back, each reported as `reset-clock`.
    Clock(Vec<NodeName>),
}

/// A process fault and its remedy.
#[derive(Debug, Clone, Copy)]
enum Action {
    Kill,
    Restart,
    Pause,
    Resume,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Kill => "kill",
            Action::Restart => "restart",
            Action::Pause => "pause",
            Action::Resume => "resume",
        }
    }
}

/// Injects faults into a cluster, one at a time per lane.
///
/// Generic over the cluster and the network (a [`Degrader`], which can also cut links) (both use `async fn`
/// in traits, which cannot be `dyn`); the harness uses its own cluster type
/// and [`crate::PartitionBackend`]. Both are shared (`Arc`) so the harness
/// keeps a handle to tear them down on any path.
pub struct Nemesis<C, P> {
    cluster: Arc<C>,
    network: Arc<P>,
    on_event: Mutex<Box<dyn FnMut(Event) + Send>>,
    /// What each lane broke and has not healed yet: one fault, or two: a lagging failover's
    /// paused follower and killed leader until the follower wakes, or a fault of two actions
    /// that half failed (a crash of restart-bridge whose restart failed beside its
    /// partition, a lagging failover whose resume failed beside its kill).
    active: Mutex<BTreeMap<Lane, Vec<ActiveFault>>>,
    /// Numbers the crash-restart storms, so that the crashes of one can be told apart.
    storms: AtomicU64,
    /// When a node last came back, restarted or resumed: it missed entries while it was out,
    /// and flap-leader lets it catch up before a round.
    last_return: Mutex<Option<Instant>>,
    /// Each node's clock, where the nemesis moved it off true time.
    clocks: Mutex<BTreeMap<NodeName, ClockSetting>>,
    /// The members at the membership nemesis's last look, if it looked: a node that was one
    /// then and is not now left, and is retired.
    members_seen: Mutex<Option<BTreeSet<NodeName>>>,
    /// One permit a lane: a fault in force holds its lane's, and a fault that
    /// [runs alone](FaultPlan::runs_alone) holds them all. Fair: once a fault waits to run
    /// alone, the other lane's next fault waits behind it.
    turns: Semaphore,
}

/// How many lanes a schedule has, and so how many permits a fault that runs alone takes.
const LANES: u32 = 4;

impl<C: Cluster, P: Degrader> Nemesis<C, P> {
    /// A nemesis that reports every fault start and stop to `on_event`,
    /// called right before a fault is applied and right after it is healed:
    /// take the history timestamp inside it.
    pub fn new(
        cluster: Arc<C>,
        network: Arc<P>,
        on_event: impl FnMut(Event) + Send + 'static,
    ) -> Self {
        Nemesis {
            cluster,
            network,
            on_event: Mutex::new(Box::new(on_event)),
            active: Mutex::default(),
            storms: AtomicU64::new(0),
            last_return: Mutex::default(),
            clocks: Mutex::default(),
            members_seen: Mutex::default(),
            turns: Semaphore::new(LANES as usize),
        }
    }

    /// Runs `schedule` until `deadline` or until `cancel` completes: in each lane, start a
    /// fault (one that runs alone waits for the other lane's to be healed), wait as long as
    /// it lasts, heal it, wait `interval`, repeat. Faults in force when time
    /// runs out, the run is cancelled or a lane fails are healed before this returns; after
    /// an error, [`Nemesis::heal_all`] heals what is left. Returns at once if no fault kind
    /// is enabled, and fails at once if faults are enabled with a zero interval.
    pub async fn run(
        &self,
        schedule: &Schedule,
        deadline: Instant,
        cancel: impl Future<Output = ()>,
    ) -> Result<(), NemesisError> {
        if schedule.interval.is_zero() && !schedule.kinds.is_empty() {
            return Err(NemesisError::ZeroInterval);
        }
        let (stop, stopped) = watch::channel(false);
        let lane = |lane: Lane| {
            let planner = Planner::for_lane(schedule, lane, self.cluster.nodes());
            let start = Instant::now() + schedule.lane_offset(lane);
            let (stop, stopped) = (&stop, stopped.clone());
            async move {
                let ran = self
                    .run_lane(lane, planner, schedule.interval, start, deadline, stopped)
                    .await;
                if ran.is_err() {
                    // One lane failing stops the other: the harness reports the error.
                    let _ = stop.send(true);
                }
                ran.and(self.stop(lane).await)
            }
        };
        let lanes = async {
            tokio::join!(
                lane(Lane::Process),
                lane(Lane::Network),
                lane(Lane::Clock),
                lane(Lane::Membership)
            )
        };
        let mut lanes = pin!(lanes);
        let (process, network, clock, membership) = tokio::select! {
            results = &mut lanes => results,
            () = cancel => {
                let _ = stop.send(true);
                lanes.await
            }
        };
        process.and(network).and(clock).and(membership)
    }

    async fn run_lane(
        &self,
        lane: Lane,
        mut planner: Planner,
        interval: Duration,
        start: Instant,
        deadline: Instant,
        mut stopped: watch::Receiver<bool>,
    ) -> Result<(), NemesisError> {
        if planner.is_idle() || !wait_until(start, deadline, &mut stopped).await {
            return Ok(());
        }
        while Instant::now() < deadline {
            let Some(plan) = planner.next_plan() else {
                return Ok(());
            };
            debug_assert_eq!(plan.lane(), lane, "the planner of a lane plans for it");
            let Some(turn) = self.take_turn(&plan, deadline, &mut stopped).await else {
                return Ok(());
            };
            let fault_ends = Instant::now() + plan.lasts(interval);
            self.inflict(plan, fault_ends, deadline, &mut stopped)
                .await?;
            if !wait_until(fault_ends, deadline, &mut stopped).await {
                return Ok(());
            }
            self.stop(lane).await?;
            drop(turn);
            if !wait_until(Instant::now() + interval, deadline, &mut stopped).await {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Waits for the turn of `plan`: at once for most faults; for one that runs alone, until
    /// the other lane's fault in force is healed (the other lane then waits for this one).
    /// `None` when the deadline passes or the run stops first.
    async fn take_turn(
        &self,
        plan: &FaultPlan,
        deadline: Instant,
        stopped: &mut watch::Receiver<bool>,
    ) -> Option<SemaphorePermit<'_>> {
        let turn = async {
            let lanes = if plan.runs_alone() { LANES } else { 1 };
            // Never closed, so never an error.
            let permit = self.turns.acquire_many(lanes).await.ok()?;
            if plan.runs_alone() {
                // Nodes the other lane just restarted or resumed catch up first.
                tokio::time::sleep(SETTLE).await;
            }
            Some(permit)
        };
        // Biased: a turn that comes free at the deadline (the other lane ending) must not
        // start a fault after it.
        tokio::select! {
            biased;
            _ = stopped.wait_for(|stopped| *stopped) => None,
            () = tokio::time::sleep_until(deadline) => None,
            turn = turn => turn,
        }
    }

    /// Applies one fault as the schedule does, after healing the one in force in its lane:
    /// most at once, with [`Nemesis::start`]; those that act again and again (crash-restart,
    /// flap-leader, restart-bridge, drifting-leader) or wait between two actions
    /// (lagging-failover) until
    /// `fault_ends`, stopping early at the `deadline` or when the run stops. What is left in
    /// force then is for [`Nemesis::stop`] to heal.
    async fn inflict(
        &self,
        plan: FaultPlan,
        fault_ends: Instant,
        deadline: Instant,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<(), NemesisError> {
        let lane = plan.lane();
        self.stop(lane).await?;
        let fault_ends = fault_ends.min(deadline);
        match plan {
            FaultPlan::CrashRestart(crashes) => {
                self.crash_restart(crashes, deadline, stopped).await
            }
            FaultPlan::LaggingFailover {
                preference,
                lag,
                wake,
            } => {
                let Some(leader) = self.pause_a_follower(&preference).await? else {
                    return Ok(());
                };
                if !wait_until(Instant::now() + lag, deadline, stopped).await {
                    return Ok(());
                }
                self.kill_leader(leader).await?;
                if !wait_until(Instant::now() + wake, fault_ends, stopped).await {
                    return Ok(());
                }
                self.resume_paused(Lane::Process).await
            }
            FaultPlan::FlapLeader(flaps) => {
                self.flap_leader(flaps, fault_ends, deadline, stopped).await
            }
            FaultPlan::RestartBridge { order } => {
                self.restart_bridge(lane, &order, fault_ends, stopped).await
            }
            FaultPlan::DriftingLeader(rounds) => {
                self.drifting_leader(rounds, fault_ends, stopped).await
            }
            FaultPlan::Membership { pick } => {
                // No leader known, or a change still under way: ask again while the fault lasts.
                while !self.change_membership(pick).await? {
                    if !wait_until(Instant::now() + MEMBERS_POLL, fault_ends, stopped).await {
                        break;
                    }
                }
                Ok(())
            }
            FaultPlan::Clock {
                target,
                change: ClockChange::Strobe { delta_ms, period },
            } => {
                let Some(node) = self.resolve(target).await.into_iter().next() else {
                    return Ok(());
                };
                self.strobe(lane, &node, delta_ms, period, fault_ends, stopped)
                    .await
            }
            plan => self.start(plan).await,
        }
    }

    /// Applies one fault, after healing the one in force in its lane, if any. Leader
    /// targets are resolved now, falling back to the plan's node when no leader is known.
    /// The faults that act again and again do it once this way: a crash-restart storm is a
    /// single round of crashes, each node restarted as soon as it is dead; flap-leader
    /// isolates the leader once, until healed, and drifting-leader slows the leader's clock
    /// and isolates it once; restart-bridge cuts its partition, slows the
    /// links into the bridge and crash-restarts the bridge once. A lagging failover is applied whole: it sleeps
    /// through its (short) lag and wake.
    pub async fn start(&self, plan: FaultPlan) -> Result<(), NemesisError> {
        let lane = plan.lane();
        self.stop(lane).await?;
        match plan {
            FaultPlan::Kill(targets) => {
                let nodes = self.resolve(targets).await;
                self.kill(lane, EventName::Kill, nodes_json(&nodes), nodes)
                    .await
            }
            FaultPlan::KillMajority(nodes) => {
                self.kill(lane, EventName::KillMajority, nodes_json(&nodes), nodes)
                    .await
            }
            FaultPlan::KillAll => {
                let nodes = self.cluster.nodes();
                self.kill(lane, EventName::KillAll, nodes_json(&nodes), nodes)
                    .await
            }
            FaultPlan::CrashRestart(crashes) => {
                let storm = self.storms.fetch_add(1, Ordering::Relaxed);
                for crash in crashes {
                    self.crash(lane, storm, crash.targets).await?;
                }
                Ok(())
            }
            FaultPlan::Pause(targets) => {
                let nodes = self.resolve(targets).await;
                self.pause(lane, nodes).await
            }
            FaultPlan::PowerLoss { targets, torn } => {
                let nodes = self.resolve(targets).await;
                self.power_loss(lane, nodes, torn).await
            }
            FaultPlan::LaggingFailover {
                preference,
                lag,
                wake,
            } => {
                let Some(leader) = self.pause_a_follower(&preference).await? else {
                    return Ok(());
                };
                tokio::time::sleep(lag).await;
                self.kill_leader(leader).await?;
                tokio::time::sleep(wake).await;
                self.resume_paused(Lane::Process).await
            }
            FaultPlan::Partition(grudge) => self.partition(lane, grudge).await,
            FaultPlan::IsolateLeader { fallback } => {
                self.isolate_leader(lane, fallback).await?;
                Ok(())
            }
            FaultPlan::FlapLeader(flaps) => {
                if let Some(flap) = flaps.into_iter().next() {
                    self.isolate_leader(lane, flap.fallback).await?;
                }
                Ok(())
            }
            FaultPlan::RestartBridge { order } => {
                let order = self.voting(&order).await;
                let leader = self.cluster.leader().await;
                let Some(leader) = leader.or_else(|| order.first().cloned()) else {
                    return Ok(());
                };
                match Sides::around(&leader, &order) {
                    Some(sides) => self.cut_off_leader(lane, sides).await.map(drop),
                    None => Ok(()),
                }
            }
            FaultPlan::DriftingLeader(rounds) => {
                if let Some(round) = rounds.into_iter().next() {
                    self.slow_and_cut_off_leader(lane, round.fallback).await?;
                }
                Ok(())
            }
            FaultPlan::Slow(how) => {
                self.degrade(lane, EventName::StartSlow, EventName::StopSlow, how)
                    .await
            }
            FaultPlan::Lossy(how) => {
                self.degrade(lane, EventName::StartLossy, EventName::StopLossy, how)
                    .await
            }
            FaultPlan::Clock { target, change } => {
                let Some(node) = self.resolve(target).await.into_iter().next() else {
                    return Ok(());
                };
                let (event, setting) = match change {
                    ClockChange::Bump { delta_ms } => (
                        EventName::BumpClock,
                        self.clock_of(&node)
                            .jumped(Instant::now(), delta_ms * 1_000_000),
                    ),
                    ClockChange::Skew { rate } => (
                        EventName::SkewClock,
                        self.clock_of(&node).with_rate(Instant::now(), rate),
                    ),
                    // One flip, away from the offset of the moment.
                    ClockChange::Strobe { delta_ms, .. } => (
                        EventName::StrobeClock,
                        self.clock_of(&node)
                            .jumped(Instant::now(), delta_ms * 1_000_000),
                    ),
                };
                self.set_clock(lane, &node, event, setting).await
            }
            FaultPlan::Membership { pick } => self.change_membership(pick).await.map(drop),
        }
    }

    /// Heals the faults in force in `lane`, if any: restarts killed nodes, resumes paused
    /// ones, or heals the network. Nodes that could not be healed stay remembered, so a
    /// later call retries them. Returns the first failure, after trying every fault.
    pub async fn stop(&self, lane: Lane) -> Result<(), NemesisError> {
        let faults = self.active().remove(&lane).unwrap_or_default();
        let mut result = Ok(());
        for fault in faults {
            let healed = self.heal(lane, fault).await;
            result = result.and(healed);
        }
        result
    }

    /// Heals one fault of `lane`, remembering in it what could not be healed.
    async fn heal(&self, lane: Lane, fault: ActiveFault) -> Result<(), NemesisError> {
        match fault {
            ActiveFault::Down(nodes) => {
                let (restarted, result) = self.restart(&nodes).await;
                self.remember(lane, ActiveFault::Down(unhealed(nodes, &restarted)));
                result
            }
            ActiveFault::Paused(nodes) => {
                let (resumed, result) = apply(&*self.cluster, Action::Resume, &nodes).await;
                self.note_return(&resumed);
                self.report_healed(EventName::Resume, &resumed);
                self.remember(lane, ActiveFault::Paused(unhealed(nodes, &resumed)));
                result
            }
            ActiveFault::Network { stop, value } => {
                if let Err(error) = self.network.heal().await {
                    self.remember(lane, ActiveFault::Network { stop, value });
                    return Err(error.into());
                }
                self.emit(stop, value);
                Ok(())
            }
            ActiveFault::Clock(nodes) => {
                let mut result = Ok(());
                for node in nodes {
                    let true_time = ClockSetting::true_time(Instant::now());
                    let reset = self
                        .set_clock(lane, &node, EventName::ResetClock, true_time)
                        .await;
                    result = result.and(reset);
                }
                result
            }
        }
    }

    /// The final phase: heals the faults in force and the whole network (even
    /// links this nemesis does not know it cut), reporting what it heals.
    pub async fn heal_all(&self) -> Result<(), NemesisError> {
        let process = self.stop(Lane::Process).await;
        let network = self.stop(Lane::Network).await;
        let clock = self.stop(Lane::Clock).await;
        let healed = self.network.heal().await.map_err(NemesisError::from);
        process.and(network).and(clock).and(healed)
    }

    /// The node's clock as the nemesis left it: true time unless it moved it.
    fn clock_of(&self, node: &str) -> ClockSetting {
        let clocks = self
            .clocks
            .lock()
            .expect("never poisoned: no panics while held");
        clocks
            .get(node)
            .copied()
            .unwrap_or_else(|| ClockSetting::true_time(Instant::now()))
    }

    /// Sets the node's clock to `setting` and reports `event` with the node, its offset and
    /// rate, and the offset its own clock then read. A clock off true time stays in force in
    /// `lane` until healed (`reset-clock`, which this is when `setting` is true time).
    async fn set_clock(
        &self,
        lane: Lane,
        node: &NodeName,
        event: EventName,
        setting: ClockSetting,
    ) -> Result<(), NemesisError> {
        let observed = self.cluster.set_clock(node, setting).await;
        let observed = match observed {
            Ok(observed) => observed,
            Err(source) => {
                // Not known to have changed: still to be healed, if it was off.
                if !self.clock_of(node).is_true() {
                    self.remember(lane, ActiveFault::Clock(vec![node.clone()]));
                }
                return Err(NemesisError::Cluster {
                    action: "set the clock of",
                    node: node.clone(),
                    source,
                });
            }
        };
        let now = Instant::now();
        {
            let mut clocks = self
                .clocks
                .lock()
                .expect("never poisoned: no panics while held");
            if setting.is_true() {
                clocks.remove(node);
            } else {
                clocks.insert(node.clone(), setting);
            }
        }
        if !setting.is_true() {
            self.remember(lane, ActiveFault::Clock(vec![node.clone()]));
        }
        let mut value = json!({
            "node": node,
            "offset_ms": round_ms(setting.offset_ms_at(now)),
            "rate": setting.rate,
        });
        if let Some(observed) = observed {
            value["observed_ms"] = json!(round_ms(observed));
        }
        self.emit(event, value);
        Ok(())
    }

    /// A strobe until `fault_ends`: the node's clock flips between its setting of the moment
    /// and one `delta_ms` away, every `period`. The flip in force at the end stays, for the
    /// lane to heal.
    async fn strobe(
        &self,
        lane: Lane,
        node: &NodeName,
        delta_ms: i64,
        period: Duration,
        fault_ends: Instant,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<(), NemesisError> {
        let home = self.clock_of(node);
        let away = home.jumped(Instant::now(), delta_ms * 1_000_000);
        for flip in 0.. {
            let setting = if flip % 2 == 0 { away } else { home };
            self.set_clock(lane, node, EventName::StrobeClock, setting)
                .await?;
            if !wait_until(Instant::now() + period, fault_ends, stopped).await {
                break;
            }
        }
        Ok(())
    }

    /// The crashes of a crash-restart storm, each followed by its pause, until the last
    /// one or until the run stops.
    async fn crash_restart(
        &self,
        crashes: Vec<Crash>,
        deadline: Instant,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<(), NemesisError> {
        let storm = self.storms.fetch_add(1, Ordering::Relaxed);
        for crash in crashes {
            self.crash(Lane::Process, storm, crash.targets).await?;
            if !wait_until(Instant::now() + crash.then, deadline, stopped).await {
                break;
            }
        }
        Ok(())
    }

    /// SIGKILLs the targets and restarts each as soon as it is dead, as a crash of `storm`.
    /// The crash leaves the lane's fault in force alone (restart-bridge's partition); a node
    /// that fails to restart is remembered in `lane` beside it.
    async fn crash(&self, lane: Lane, storm: u64, targets: Targets) -> Result<(), NemesisError> {
        let nodes = self.resolve(targets).await;
        self.emit(
            EventName::CrashRestart,
            json!({"nodes": nodes_json(&nodes), "storm": storm}),
        );
        let (killed, killing) = apply(&*self.cluster, Action::Kill, &nodes).await;
        let (restarted, restarting) = self.restart(&killed).await;
        self.remember(lane, ActiveFault::Down(unhealed(killed, &restarted)));
        killing.and(restarting)
    }

    /// The first half of a lagging failover: SIGSTOPs the first node of `preference` that
    /// does not lead, and returns the node that leads now (or else the first of
    /// `preference`), to be killed once the follower lags. `None` when there is no node.
    async fn pause_a_follower(
        &self,
        preference: &[NodeName],
    ) -> Result<Option<NodeName>, NemesisError> {
        let leader = self.cluster.leader().await;
        let Some(leader) = leader.or_else(|| preference.first().cloned()) else {
            return Ok(None);
        };
        let follower: Vec<NodeName> = self
            .voting(preference)
            .await
            .iter()
            .filter(|node| **node != leader)
            .take(1)
            .cloned()
            .collect();
        if !follower.is_empty() {
            self.pause(Lane::Process, follower).await?;
        }
        Ok(Some(leader))
    }

    /// `nodes`, in their order, less those that have no vote now: with the membership fault,
    /// spares, learners and retired nodes stand beside the voters, and the faults aimed at
    /// an election (lagging-failover, restart-bridge) are played among the nodes that vote in
    /// it. All of `nodes` when the cluster does not tell its members.
    pub(super) async fn voting(&self, nodes: &[NodeName]) -> Vec<NodeName> {
        let Some(members) = self.cluster.members().await else {
            return nodes.to_vec();
        };
        let votes =
            |node: &NodeName| members.voters.contains(node) || members.outgoing.contains(node);
        if !nodes.iter().any(votes) {
            return nodes.to_vec();
        }
        nodes.iter().filter(|node| votes(node)).cloned().collect()
    }

    /// The second step of a lagging failover: SIGKILLs `leader` while the follower is still
    /// paused. The faults in force are both.
    async fn kill_leader(&self, leader: NodeName) -> Result<(), NemesisError> {
        let leader = vec![leader];
        self.kill(Lane::Process, EventName::Kill, nodes_json(&leader), leader)
            .await
    }

    /// Resumes the nodes that `lane` paused (the lagging follower of a lagging failover),
    /// leaving its other faults in force.
    async fn resume_paused(&self, lane: Lane) -> Result<(), NemesisError> {
        self.heal_only(lane, |fault| matches!(fault, ActiveFault::Paused(_)))
            .await
    }

    /// Heals the faults of `lane` that `which` picks, leaving the others in force.
    async fn heal_only(
        &self,
        lane: Lane,
        which: impl Fn(&ActiveFault) -> bool,
    ) -> Result<(), NemesisError> {
        let picked: Vec<ActiveFault> = {
            let mut active = self.active();
            let faults = active.entry(lane).or_default();
            let (picked, rest) = std::mem::take(faults).into_iter().partition(&which);
            *faults = rest;
            picked
        };
        let mut result = Ok(());
        for fault in picked {
            let healed = self.heal(lane, fault).await;
            result = result.and(healed);
        }
        result
    }

    /// Cuts the leader of the moment (or else `fallback`) off from every other node, both
    /// ways, its own links first (see [`UNHEARD_FIRST`]); returns the node cut off.
    async fn isolate_leader(
        &self,
        lane: Lane,
        fallback: NodeName,
    ) -> Result<NodeName, NemesisError> {
        let leader = self.cluster.leader().await.unwrap_or(fallback);
        self.isolate(lane, &leader).await?;
        Ok(leader)
    }

    /// Cuts `node` off from every other node, both ways, its own links first (see
    /// [`UNHEARD_FIRST`]).
    async fn isolate(&self, lane: Lane, node: &NodeName) -> Result<(), NemesisError> {
        let grudge = Grudge::isolate(node, &self.cluster.nodes());
        let (its_own, to_it) = grudge
            .links()
            .into_iter()
            .partition(|link| &link.from == node);
        self.partition_in_steps(lane, &grudge, &[its_own, to_it])
            .await
    }

    /// Flap-leader's rounds until `fault_ends`: once every node runs and has caught up,
    /// isolate the leader, pause the next one and heal as soon as it leads, resume it, restart
    /// the deposed leader, wait the round's calm. A partition in force when the time is up
    /// stays, for the lane to heal; a round whose successor is paused is finished (at most
    /// [`SUCCESSOR_PAUSED`] past `fault_ends`, never past `deadline`).
    async fn flap_leader(
        &self,
        flaps: Vec<Flap>,
        fault_ends: Instant,
        deadline: Instant,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<(), NemesisError> {
        let lane = Lane::Network;
        for flap in flaps {
            // A node down, paused or just restarted (the process lane's) lags: it cannot win
            // the election that meets the deposed leader's suffix, and the round is wasted.
            if !self.await_settled(fault_ends, stopped).await {
                return Ok(());
            }
            let isolated = self.isolate_leader(lane, flap.fallback).await?;
            let Some(successor) = self
                .await_leader_other_than(Some(&isolated), SUCCESSOR_POLL, fault_ends, stopped)
                .await
            else {
                return Ok(());
            };
            // Held still, the successor lets its follower, whose last entry is of the newest
            // term, lead next with a log still shorter than the deposed leader's.
            self.pause(lane, vec![successor]).await?;
            self.heal_only(lane, |fault| matches!(fault, ActiveFault::Network { .. }))
                .await?;
            // Cut short at the fault's end, the round would have paused in vain.
            if !wait_until(Instant::now() + SUCCESSOR_PAUSED, deadline, stopped).await {
                return Ok(());
            }
            self.stop(lane).await?;
            // The deposed leader restarts from what it wrote, which must still be a log
            // (terms never decrease along it) now that a newer leader replaced its suffix.
            let storm = self.storms.fetch_add(1, Ordering::Relaxed);
            self.crash(lane, storm, Targets::Nodes(vec![isolated]))
                .await?;
            if !wait_until(Instant::now() + flap.calm, fault_ends, stopped).await {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Waits for a node other than `deposed` to lead, asking every `poll`: `None` if the
    /// fault or the run ends first.
    async fn await_leader_other_than(
        &self,
        deposed: Option<&str>,
        poll: Duration,
        until: Instant,
        stopped: &mut watch::Receiver<bool>,
    ) -> Option<NodeName> {
        loop {
            if let Some(leader) = self.cluster.leader().await
                && Some(leader.as_str()) != deposed
            {
                return Some(leader);
            }
            if !wait_until(Instant::now() + poll, until, stopped).await {
                return None;
            }
        }
    }

    /// SIGSTOPs `nodes`, all at once, reporting a `pause` first; they stay paused in `lane`
    /// until it heals them ([`Nemesis::resume_paused`], or its fault's end).
    async fn pause(&self, lane: Lane, nodes: Vec<NodeName>) -> Result<(), NemesisError> {
        self.emit(EventName::Pause, nodes_json(&nodes));
        let (paused, result) = apply(&*self.cluster, Action::Pause, &nodes).await;
        self.remember(lane, ActiveFault::Paused(paused));
        result
    }

    /// SIGKILLs `nodes`, all at once, reporting `event` with `value` first.
    async fn kill(
        &self,
        lane: Lane,
        event: EventName,
        value: Value,
        nodes: Vec<NodeName>,
    ) -> Result<(), NemesisError> {
        self.emit(event, value);
        let (killed, result) = apply(&*self.cluster, Action::Kill, &nodes).await;
        self.remember(lane, ActiveFault::Down(killed));
        result
    }

    /// Powers off every node in `nodes` at once (each with a torn seed of its own), then
    /// reports what each lost.
    async fn power_loss(
        &self,
        lane: Lane,
        nodes: Vec<NodeName>,
        torn: Option<u64>,
    ) -> Result<(), NemesisError> {
        self.emit(
            EventName::PowerLoss,
            json!({"nodes": nodes_json(&nodes), "torn": torn.is_some()}),
        );
        let cuts = nodes.iter().enumerate().map(|(position, node)| {
            let seed = torn.map(|seed| seed.wrapping_add(position as u64));
            self.cluster.power_off(node, seed)
        });
        let outcomes = join_all(cuts).await;
        let mut down = Vec::new();
        let mut lost = serde_json::Map::new();
        let mut first_error = Ok(());
        for (node, outcome) in nodes.iter().zip(outcomes) {
            match outcome {
                Ok(loss) => {
                    down.push(node.clone());
                    lost.insert(node.clone(), loss);
                }
                Err(source) if first_error.is_ok() => {
                    first_error = Err(NemesisError::Cluster {
                        action: "power off",
                        node: node.clone(),
                        source,
                    });
                }
                Err(_) => {}
            }
        }
        self.remember(lane, ActiveFault::Down(down));
        if !lost.is_empty() {
            self.emit(EventName::LostUnsynced, lost.into());
        }
        first_error
    }

    async fn partition(&self, lane: Lane, grudge: Grudge) -> Result<(), NemesisError> {
        self.partition_in_steps(lane, &grudge, &[grudge.links()])
            .await
    }

    /// Puts `grudge` in force as one fault (one start event, one heal), cutting its links in
    /// `steps`, [`UNHEARD_FIRST`] apart.
    async fn partition_in_steps(
        &self,
        lane: Lane,
        grudge: &Grudge,
        steps: &[Vec<Link>],
    ) -> Result<(), NemesisError> {
        let value = grudge.to_json();
        self.emit(EventName::StartPartition, value.clone());
        // Remembered before cutting: a cut that fails halfway still gets healed.
        let stop = EventName::StopPartition;
        self.remember(lane, ActiveFault::Network { stop, value });
        for (step, links) in steps.iter().enumerate() {
            if step > 0 {
                tokio::time::sleep(UNHEARD_FIRST).await;
            }
            self.network.cut(links).await?;
        }
        Ok(())
    }

    /// Degrades every link between the cluster's nodes.
    async fn degrade(
        &self,
        lane: Lane,
        start: EventName,
        stop: EventName,
        how: Degradation,
    ) -> Result<(), NemesisError> {
        let value = json!({
            "latency_ms": how.latency.as_millis() as u64,
            "jitter_ms": how.jitter.as_millis() as u64,
            "drop": how.drop,
        });
        self.emit(start, value.clone());
        self.remember(lane, ActiveFault::Network { stop, value });
        self.network
            .degrade(&every_link(&self.cluster.nodes()), &how)
            .await?;
        Ok(())
    }

    async fn resolve(&self, targets: Targets) -> Vec<NodeName> {
        match targets {
            Targets::Nodes(nodes) => nodes,
            Targets::Leader { fallback } => vec![self.cluster.leader().await.unwrap_or(fallback)],
        }
    }

    fn active(&self) -> MutexGuard<'_, BTreeMap<Lane, Vec<ActiveFault>>> {
        self.active
            .lock()
            .expect("never poisoned: no panics while held")
    }

    fn members_seen(&self) -> MutexGuard<'_, Option<BTreeSet<NodeName>>> {
        self.members_seen
            .lock()
            .expect("never poisoned: no panics while held")
    }

    /// Remembers a fault of `lane`, beside any other in force there, unless it hit no node;
    /// clocks off true time are one fault of the lane, each node once.
    fn remember(&self, lane: Lane, fault: ActiveFault) {
        let hit_nobody =
            matches!(&fault, ActiveFault::Down(n) | ActiveFault::Paused(n) if n.is_empty());
        if hit_nobody {
            return;
        }
        let mut active = self.active();
        let faults = active.entry(lane).or_default();
        if let ActiveFault::Clock(nodes) = &fault
            && let Some(ActiveFault::Clock(off)) = faults
                .iter_mut()
                .find(|fault| matches!(fault, ActiveFault::Clock(_)))
        {
            for node in nodes {
                if !off.contains(node) {
                    off.push(node.clone());
                }
            }
            return;
        }
        faults.push(fault);
    }

    /// Restarts `nodes`, all at once, reports those that came back and notes when.
    async fn restart(&self, nodes: &[NodeName]) -> (Vec<NodeName>, Result<(), NemesisError>) {
        let (restarted, result) = apply(&*self.cluster, Action::Restart, nodes).await;
        self.note_return(&restarted);
        self.report_healed(EventName::Restart, &restarted);
        (restarted, result)
    }

    /// Notes that `nodes` came back (restarted or resumed) now, if any did.
    fn note_return(&self, nodes: &[NodeName]) {
        if !nodes.is_empty() {
            *self
                .last_return
                .lock()
                .expect("never poisoned: no panics while held") = Some(Instant::now());
        }
    }

    /// Waits until the cluster has [settled](Nemesis::settled), asking every [`LEADER_POLL`];
    /// false if `until` or the end of the run comes first.
    async fn await_settled(&self, until: Instant, stopped: &mut watch::Receiver<bool>) -> bool {
        while !self.settled() {
            if !wait_until(Instant::now() + LEADER_POLL, until, stopped).await {
                return false;
            }
        }
        true
    }

    /// Whether every node runs, and the last one back (restarted or resumed) has had
    /// [`SETTLE`] to catch up. A resume counts as much as a restart: a paused node misses
    /// entries too, and a node paused right after its restart only starts up when resumed.
    fn settled(&self) -> bool {
        let any_out = self.active().values().flatten().any(|fault| {
            matches!(fault, ActiveFault::Down(nodes) | ActiveFault::Paused(nodes) if !nodes.is_empty())
        });
        let last_return = *self
            .last_return
            .lock()
            .expect("never poisoned: no panics while held");
        !any_out && last_return.is_none_or(|at| at.elapsed() >= SETTLE)
    }

    fn report_healed(&self, name: EventName, nodes: &[NodeName]) {
        if !nodes.is_empty() {
            self.emit(name, nodes_json(nodes));
        }
    }

    fn emit(&self, f: EventName, value: Value) {
        let mut on_event = self
            .on_event
            .lock()
            .expect("never poisoned: the sink does not panic");
        on_event(Event { f, value });
    }
}

/// Applies `action` to every node at once (a kill of every node is one instant, not one
/// node after another), even where it fails on some; returns the nodes it succeeded on, in
/// order, and the first failure.
async fn apply(
    cluster: &impl Cluster,
    action: Action,
    nodes: &[NodeName],
) -> (Vec<NodeName>, Result<(), NemesisError>) {
    let outcomes = join_all(nodes.iter().map(|node| async move {
        match action {
            Action::Kill => cluster.kill(node).await,
            Action::Restart => cluster.restart(node).await,
            Action::Pause => cluster.pause(node).await,
            Action::Resume => cluster.resume(node).await,
        }
    }))
    .await;
    let mut done = Vec::new();
    let mut first_error = Ok(());
    for (node, outcome) in nodes.iter().zip(outcomes) {
        match outcome {
            Ok(()) => done.push(node.clone()),
            Err(source) if first_error.is_ok() => {
                first_error = Err(NemesisError::Cluster {
                    action: action.verb(),
                    node: node.clone(),
                    source,
                });
            }
            Err(_) => {}
        }
    }
    (done, first_error)
}

/// Waits until `until` or `deadline`, whichever is first; false if the run was stopped
/// first or the deadline was reached.
async fn wait_until(
    until: Instant,
    deadline: Instant,
    stopped: &mut watch::Receiver<bool>,
) -> bool {
    let until = until.min(deadline);
    tokio::select! {
        () = tokio::time::sleep_until(until) => until < deadline,
        // An error means the sender is gone with the run: stop too.
        _ = stopped.wait_for(|stopped| *stopped) => false,
    }
}

/// Every directed link between `nodes`.
fn every_link(nodes: &[NodeName]) -> Vec<Link> {
    nodes
        .iter()
        .flat_map(|from| {
            nodes.iter().filter(move |to| *to != from).map(|to| Link {
                from: from.clone(),
                to: to.clone(),
            })
        })
        .collect()
}

fn unhealed(nodes: Vec<NodeName>, healed: &[NodeName]) -> Vec<NodeName> {
    nodes.into_iter().filter(|n| !healed.contains(n)).collect()
}

fn nodes_json(nodes: &[NodeName]) -> Value {
    nodes.iter().cloned().collect()
}

/// Milliseconds to the microsecond, for the history.
fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;
    use crate::event::FaultClass;
    use crate::fake::{FakeCluster, FakeNetwork, Journal, recorder};
    use crate::grudge::Link;
    use crate::kind::FaultKinds;
    use crate::schedule::LEASE_DRIFT_RATE;

    struct Setup {
        cluster: Arc<FakeCluster>,
        network: Arc<FakeNetwork>,
        journal: Journal,
        events: Arc<Mutex<Vec<Event>>>,
        /// When each of `events` came, since the setup.
        times: Arc<Mutex<Vec<Duration>>>,
        nemesis: Nemesis<FakeCluster, FakeNetwork>,
    }

    fn setup(size: usize) -> Setup {
        let journal = Journal::default();
        let cluster = Arc::new(FakeCluster::new(size, &journal));
        let network = Arc::new(FakeNetwork::new(&journal));
        let (events, mut record) = recorder(&journal);
        let times = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let sink = {
            let times = times.clone();
            move |event: Event| {
                times.lock().unwrap().push(started.elapsed());
                record(event);
            }
        };
        let nemesis = Nemesis::new(cluster.clone(), network.clone(), sink);
        Setup {
            cluster,
            network,
            journal,
            events,
            times,
            nemesis,
        }
    }

    /// The events with the time each came, in seconds since the setup.
    fn timeline(setup: &Setup) -> Vec<(f64, Event)> {
        let times = setup.times.lock().unwrap().clone();
        let events = setup.events.lock().unwrap().clone();
        times
            .into_iter()
            .map(|time| time.as_secs_f64())
            .zip(events)
            .collect()
    }

    fn isolation(node: &str, size: usize) -> Value {
        let nodes: Vec<NodeName> = (1..=size).map(|i| format!("n{i}")).collect();
        Grudge::isolate(node, &nodes).to_json()
    }

    fn schedule(kinds: &str, seed: u64) -> Schedule {
        Schedule {
            kinds: kinds.parse().expect("valid kinds"),
            interval: Duration::from_secs(1),
            seed,
        }
    }

    fn names(events: &Mutex<Vec<Event>>) -> Vec<EventName> {
        events.lock().unwrap().iter().map(|e| e.f).collect()
    }

    fn journal(setup: &Setup) -> Vec<String> {
        setup.journal.lock().unwrap().clone()
    }

    fn assert_all_healed(setup: &Setup) {
        assert_eq!(setup.cluster.dead(), BTreeSet::new(), "dead nodes left");
        assert_eq!(setup.cluster.paused(), BTreeSet::new(), "paused nodes left");
        assert_eq!(setup.network.cut_links(), BTreeSet::new(), "cut links left");
        assert_eq!(
            setup.network.degraded_links(),
            BTreeSet::new(),
            "degraded links left"
        );
        assert_eq!(
            setup.cluster.clocks_off(),
            BTreeSet::new(),
            "clocks left off"
        );
    }

    async fn run_for(setup: &Setup, schedule: &Schedule, limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        setup
            .nemesis
            .run(schedule, deadline, std::future::pending())
            .await
            .expect("schedule ran");
        deadline
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_seed_replays_the_same_faults() {
        // Every fault of the lanes that overlap. Faults that run alone take turns with the
        // other lanes, and two lanes that end a fault at one instant may take the next turn in
        // either order, which shifts the faults after it.
        let kinds = "kill,kill-majority,kill-all,crash-restart,pause,power-loss,lagging-failover,\
                     partition,partition-leader,partition-one-way,majorities-ring,bridge,slow,\
                     lossy,clock";
        let mut runs = Vec::new();
        for seed in [7, 7, 8] {
            let setup = setup(5);
            setup.cluster.set_leader(Some("n2"));
            run_for(&setup, &schedule(kinds, seed), Duration::from_secs(60)).await;
            // Events of one instant from different lanes may come in either order, and so may
            // a clock's reset and its node's restart: what the node's clock read then
            // (`observed_ms`) is there only if the restart came first.
            let mut events: Vec<(Duration, String)> = setup
                .times
                .lock()
                .unwrap()
                .iter()
                .zip(setup.events.lock().unwrap().iter())
                .map(|(time, event)| {
                    let mut event = event.clone();
                    if let Some(value) = event.value.as_object_mut() {
                        value.remove("observed_ms");
                    }
                    (*time, format!("{event:?}"))
                })
                .collect();
            events.sort();
            runs.push(events);
        }
        assert_eq!(runs[0], runs[1]);
        assert_ne!(runs[0], runs[2]);
    }

    #[tokio::test(start_paused = true)]
    async fn every_fault_is_stopped_the_lanes_overlap_and_everything_is_healed_at_the_end() {
        let journal = Journal::default();
        let cluster = Arc::new(FakeCluster::new(5, &journal));
        cluster.set_leader(Some("n1"));
        cluster.set_members(&["n1", "n2", "n3"], &[]);
        let network = Arc::new(FakeNetwork::new(&journal));
        let started = Instant::now();
        let timeline = Arc::new(Mutex::new(Vec::new()));
        let sink = {
            let timeline = timeline.clone();
            move |event: Event| timeline.lock().unwrap().push((started.elapsed(), event))
        };
        let nemesis = Nemesis::new(cluster.clone(), network.clone(), sink);
        let deadline = started + Duration::from_secs(100);
        nemesis
            .run(&schedule("all", 3), deadline, std::future::pending())
            .await
            .expect("schedule ran");
        let timeline = timeline.lock().unwrap().clone();
        let names: BTreeSet<&str> = timeline.iter().map(|(_, e)| e.f.as_str()).collect();
        assert_eq!(
            names.len(),
            EventName::ALL.len(),
            "every kind of event shows up: {names:?}"
        );
        let mut open: BTreeMap<FaultClass, usize> = BTreeMap::new();
        let mut overlapped = false;
        // A clock is off until its node's reset, however often it changed meanwhile.
        let mut clocks_off = BTreeSet::new();
        let mut clock_overlapped = false;
        for (_, event) in &timeline {
            if event.f.starts() == Some(FaultClass::Clock) {
                clocks_off.extend(event.f.nodes(&event.value));
                clock_overlapped |= open.values().any(|&count| count > 0);
                continue;
            }
            if event.f == EventName::ResetClock {
                for node in event.f.nodes(&event.value) {
                    assert!(clocks_off.remove(&node), "{node}'s clock was not off");
                }
                continue;
            }
            if let Some(class) = event.f.starts() {
                *open.entry(class).or_default() += 1;
            }
            if let Some(class) = event.f.stops() {
                let count = open.entry(class).or_default();
                assert!(*count > 0, "{} stops nothing", event.f);
                *count -= 1;
            }
            let in_force = |classes: &[FaultClass]| {
                classes
                    .iter()
                    .any(|class| open.get(class).copied().unwrap_or(0) > 0)
            };
            // A process-lane fault (not restart-bridge's own crashes) starting while a
            // network fault holds.
            let process_fault = matches!(
                event.f,
                EventName::Kill
                    | EventName::KillMajority
                    | EventName::KillAll
                    | EventName::PowerLoss
                    | EventName::Pause
            );
            overlapped |= process_fault
                && in_force(&[FaultClass::Partitioned, FaultClass::Slow, FaultClass::Lossy]);
        }
        assert!(
            open.values().all(|&count| count == 0),
            "left open: {open:?}"
        );
        assert!(clocks_off.is_empty(), "clocks left off: {clocks_off:?}");
        assert!(clock_overlapped, "a clock changed while another fault held");
        assert!(
            overlapped,
            "a process fault and a network fault were in force together"
        );
        // Only the nodes that left the cluster stay down.
        assert_eq!(cluster.dead(), cluster.retired());
        assert!(cluster.paused().is_empty());
        assert!(network.cut_links().is_empty() && network.degraded_links().is_empty());
        assert!(cluster.clocks_off().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_fault_in_force_at_the_deadline_is_healed_at_the_deadline() {
        let journal = Journal::default();
        let cluster = Arc::new(FakeCluster::new(3, &journal));
        let network = Arc::new(FakeNetwork::new(&journal));
        let started = Instant::now();
        let timeline = Arc::new(Mutex::new(Vec::new()));
        let sink = {
            let timeline = timeline.clone();
            move |event: Event| timeline.lock().unwrap().push((event.f, started.elapsed()))
        };
        let nemesis = Nemesis::new(cluster.clone(), network, sink);
        let deadline = started + Duration::from_millis(5000);
        nemesis
            .run(&schedule("pause", 1), deadline, std::future::pending())
            .await
            .unwrap();
        assert_eq!(Instant::now(), deadline, "returns when the time is up");
        let seconds = |s: f64| Duration::from_secs_f64(s);
        assert_eq!(
            *timeline.lock().unwrap(),
            [
                (EventName::Pause, seconds(0.5)),
                (EventName::Resume, seconds(1.5)),
                (EventName::Pause, seconds(2.5)),
                (EventName::Resume, seconds(3.5)),
                (EventName::Pause, seconds(4.5)),
                (EventName::Resume, seconds(5.0)),
            ]
        );
        assert!(cluster.paused().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_heals_the_faults_in_force_and_returns() {
        let setup = setup(3);
        let started = Instant::now();
        let cancel = tokio::time::sleep(Duration::from_millis(3200));
        let deadline = started + Duration::from_secs(600);
        setup
            .nemesis
            .run(&schedule("kill,partition", 9), deadline, cancel)
            .await
            .expect("schedule ran");
        assert_eq!(Instant::now(), started + Duration::from_millis(3200));
        // The network lane runs half an interval behind the process lane; at the
        // cancellation both lanes heal, in either order.
        let mut names = names(&setup.events);
        assert_eq!(
            names[..6],
            [
                EventName::Kill,
                EventName::StartPartition,
                EventName::Restart,
                EventName::StopPartition,
                EventName::Kill,
                EventName::StartPartition,
            ]
        );
        names[6..].sort_by_key(|name| name.as_str());
        assert_eq!(names[6..], [EventName::Restart, EventName::StopPartition]);
        assert_all_healed(&setup);
    }

    #[tokio::test(start_paused = true)]
    async fn no_enabled_fault_means_nothing_happens() {
        let setup = setup(3);
        let schedule = Schedule {
            kinds: FaultKinds::none(),
            ..schedule("kill", 1)
        };
        let started = Instant::now();
        run_for(&setup, &schedule, Duration::from_secs(60)).await;
        assert_eq!(Instant::now(), started, "returns at once");
        assert!(journal(&setup).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_interval_is_refused() {
        let setup = setup(3);
        let schedule = Schedule {
            interval: Duration::ZERO,
            ..schedule("kill", 1)
        };
        let deadline = Instant::now() + Duration::from_secs(1);
        let result = setup
            .nemesis
            .run(&schedule, deadline, std::future::pending())
            .await;
        assert!(
            matches!(result, Err(NemesisError::ZeroInterval)),
            "{result:?}"
        );
        assert!(journal(&setup).is_empty());
    }

    #[tokio::test]
    async fn start_events_come_before_the_fault_and_stop_events_after_the_heal() {
        let setup = setup(3);
        let nemesis = &setup.nemesis;
        nemesis
            .start(FaultPlan::Kill(Targets::Nodes(vec!["n1".into()])))
            .await
            .unwrap();
        nemesis
            .start(FaultPlan::Partition(Grudge::isolate(
                "n2",
                &setup.cluster.nodes(),
            )))
            .await
            .unwrap();
        nemesis.stop(Lane::Network).await.unwrap();
        nemesis.stop(Lane::Process).await.unwrap();
        assert_eq!(
            journal(&setup),
            [
                r#"event kill ["n1"]"#,
                "kill n1",
                r#"event start-partition {"n1":["n2"],"n2":["n1","n3"],"n3":["n2"]}"#,
                "cut n2->n1 n1->n2 n3->n2 n2->n3",
                "heal",
                r#"event stop-partition {"n1":["n2"],"n2":["n1","n3"],"n3":["n2"]}"#,
                "restart n1",
                r#"event restart ["n1"]"#,
            ]
        );
    }

    #[tokio::test]
    async fn a_new_fault_heals_the_one_in_force_in_its_own_lane_only() {
        let setup = setup(3);
        let nemesis = &setup.nemesis;
        let kill = |node: &str| FaultPlan::Kill(Targets::Nodes(vec![node.into()]));
        nemesis.start(kill("n1")).await.unwrap();
        nemesis
            .start(FaultPlan::Partition(Grudge::isolate(
                "n3",
                &setup.cluster.nodes(),
            )))
            .await
            .unwrap();
        nemesis.start(kill("n2")).await.unwrap();
        assert_eq!(setup.cluster.dead(), BTreeSet::from(["n2".to_owned()]));
        assert_eq!(setup.network.cut_links().len(), 4, "the partition holds");
    }

    #[tokio::test]
    async fn a_power_loss_reports_what_each_node_lost_and_is_healed_by_restarts() {
        let setup = setup(5);
        let plan = FaultPlan::PowerLoss {
            targets: Targets::Nodes(vec!["n2".into(), "n4".into()]),
            torn: Some(7),
        };
        setup.nemesis.start(plan).await.unwrap();
        assert_eq!(setup.cluster.dead().len(), 2);
        setup.nemesis.heal_all().await.unwrap();
        assert_all_healed(&setup);
        let events = setup.events.lock().unwrap().clone();
        let summary: Vec<_> = events.iter().map(|e| (e.f, e.value.clone())).collect();
        assert_eq!(
            summary,
            [
                (
                    EventName::PowerLoss,
                    json!({"nodes": ["n2", "n4"], "torn": true})
                ),
                (
                    EventName::LostUnsynced,
                    json!({"n2": {"bytes": 1, "torn": true}, "n4": {"bytes": 1, "torn": true}})
                ),
                (EventName::Restart, json!(["n2", "n4"])),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_crash_restart_storm_brings_each_node_back_at_once_until_the_fault_ends() {
        let setup = setup(3);
        let started = Instant::now();
        let deadline = started + Duration::from_millis(1500);
        setup
            .nemesis
            .run(
                &schedule("crash-restart", 4),
                deadline,
                std::future::pending(),
            )
            .await
            .unwrap();
        let names = names(&setup.events);
        assert!(names.len() >= 4, "several crashes in a second: {names:?}");
        for pair in names.chunks(2) {
            assert_eq!(pair, [EventName::CrashRestart, EventName::Restart]);
        }
        assert_all_healed(&setup);
    }

    #[tokio::test]
    async fn slow_and_lossy_degrade_every_link_until_healed() {
        let setup = setup(3);
        let how = Degradation {
            latency: Duration::from_millis(100),
            jitter: Duration::from_millis(50),
            drop: 0.0,
            seed: 1,
        };
        setup.nemesis.start(FaultPlan::Slow(how)).await.unwrap();
        assert_eq!(setup.network.degraded_links().len(), 6);
        setup.nemesis.stop(Lane::Network).await.unwrap();
        assert!(setup.network.degraded_links().is_empty());
        assert_eq!(
            names(&setup.events),
            [EventName::StartSlow, EventName::StopSlow]
        );
    }

    #[tokio::test]
    async fn leader_targets_hit_the_current_leader_or_else_the_fallback() {
        let setup = setup(3);
        let leader_plan = || {
            FaultPlan::Pause(Targets::Leader {
                fallback: "n3".into(),
            })
        };
        setup.cluster.set_leader(Some("n2"));
        setup.nemesis.start(leader_plan()).await.unwrap();
        assert_eq!(setup.cluster.paused(), BTreeSet::from(["n2".to_owned()]));
        setup.cluster.set_leader(None);
        setup.nemesis.start(leader_plan()).await.unwrap();
        assert_eq!(setup.cluster.paused(), BTreeSet::from(["n3".to_owned()]));
        let values: Vec<_> = setup
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.value.clone())
            .collect();
        assert_eq!(values, [json!(["n2"]), json!(["n2"]), json!(["n3"])]);
    }

    #[tokio::test]
    async fn isolating_the_leader_cuts_it_from_everyone_both_ways() {
        let setup = setup(5);
        setup.cluster.set_leader(Some("n4"));
        setup
            .nemesis
            .start(FaultPlan::IsolateLeader {
                fallback: "n1".into(),
            })
            .await
            .unwrap();
        let cut = setup.network.cut_links();
        assert_eq!(cut.len(), 8);
        assert!(cut.iter().all(|link| link.from == "n4" || link.to == "n4"));
        assert!(cut.contains(&Link {
            from: "n1".into(),
            to: "n4".into()
        }));
    }

    /// A leader that still hears the others once they stop hearing it (the bug this
    /// prevents: the way back cut first) gets their acknowledgements of what it sent, and
    /// holds its clients' next writes alone.
    #[tokio::test(start_paused = true)]
    async fn isolating_the_leader_cuts_its_own_links_first_then_the_links_to_it() {
        for leader in ["n1", "n2", "n3"] {
            let setup = setup(3);
            setup.cluster.set_leader(Some(leader));
            let start = Instant::now();
            setup
                .nemesis
                .start(FaultPlan::IsolateLeader {
                    fallback: "n1".into(),
                })
                .await
                .unwrap();
            assert_eq!(start.elapsed(), UNHEARD_FIRST);
            let cuts: Vec<String> = journal(&setup)
                .into_iter()
                .filter(|line| line.starts_with("cut "))
                .collect();
            let others: Vec<_> = ["n1", "n2", "n3"]
                .into_iter()
                .filter(|n| *n != leader)
                .collect();
            let [a, b] = others[..] else { unreachable!() };
            assert_eq!(
                cuts,
                [
                    format!("cut {leader}->{a} {leader}->{b}"),
                    format!("cut {a}->{leader} {b}->{leader}")
                ],
                "isolating {leader}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn flap_leader_isolates_the_leader_holds_the_next_still_and_restarts_the_deposed() {
        let setup = setup(3);
        setup.cluster.set_leader(Some("n1"));
        let election = Duration::from_millis(150);
        setup.cluster.hold_elections(&setup.network, election);
        // Two faults, from 0.8 s to 2.8 s and from 4.1 s: each runs alone, after the cluster
        // settled, for two intervals.
        run_for(
            &setup,
            &schedule("flap-leader", 5),
            Duration::from_millis(4200),
        )
        .await;
        let timeline = timeline(&setup);
        let starts: Vec<usize> = (0..timeline.len())
            .filter(|&at| timeline[at].1.f == EventName::StartPartition)
            .chain([timeline.len()])
            .collect();
        let rounds: Vec<_> = starts
            .windows(2)
            .map(|pair| &timeline[pair[0]..pair[1]])
            .filter(|round| round.len() == 6)
            .collect();
        assert!(rounds.len() >= 2, "a whole round a fault: {timeline:?}");
        use EventName::*;
        for round in rounds {
            let names: Vec<EventName> = round.iter().map(|(_, event)| event.f).collect();
            assert_eq!(
                names,
                [
                    StartPartition,
                    Pause,
                    StopPartition,
                    Resume,
                    CrashRestart,
                    Restart
                ]
            );
            // The fake elects the next node in order: the successor of the one cut off.
            let deposed = round[4].1.value["nodes"][0].as_str().unwrap().to_owned();
            assert_eq!(
                round[0].1.value,
                isolation(&deposed, 3),
                "cuts {deposed} off"
            );
            let successor = round[1].1.value.clone();
            let next = format!("n{}", deposed[1..].parse::<usize>().unwrap() % 3 + 1);
            assert_eq!(successor, json!([next]));
            assert_eq!(round[3].1.value, successor, "the successor resumed");
            // Healed within a poll of the election; resumed an election timeout later, even
            // past the fault's end, then the deposed leader restarted at once.
            let held = round[2].0 - round[0].0;
            let polled = (election + 2 * LEADER_POLL).as_secs_f64();
            assert!((0.15..polled).contains(&held), "held {held} s");
            let paused = round[3].0 - round[2].0;
            assert!((0.349..=0.36).contains(&paused), "paused {paused} s");
            assert!(round[4].0 - round[3].0 < 0.01, "{round:?}");
        }
        assert_all_healed(&setup);
    }

    #[tokio::test(start_paused = true)]
    async fn drifting_leader_slows_the_leaders_clock_cuts_it_off_and_heals_both_each_round() {
        let setup = setup(3);
        setup.cluster.set_leader(Some("n1"));
        let election = Duration::from_millis(150);
        setup.cluster.hold_elections(&setup.network, election);
        // One fault, from 0.8 s (the lane's start and the settle) until the run ends at 3.6 s.
        run_for(
            &setup,
            &schedule("drifting-leader", 9),
            Duration::from_millis(3600),
        )
        .await;
        let timeline = timeline(&setup);
        let rounds: Vec<_> = timeline
            .chunks(4)
            .filter(|round| round.len() == 4)
            .collect();
        assert!(rounds.len() >= 4, "several rounds a fault: {timeline:?}");
        use EventName::*;
        // The last round may be cut short by the fault's end.
        for (number, round) in rounds.iter().enumerate() {
            let names: Vec<EventName> = round.iter().map(|(_, event)| event.f).collect();
            assert_eq!(
                names,
                [SkewClock, StartPartition, ResetClock, StopPartition]
            );
            let slowed = round[0].1.value["node"].as_str().unwrap().to_owned();
            assert_eq!(round[0].1.value["rate"], json!(LEASE_DRIFT_RATE));
            assert_eq!(round[1].1.value, isolation(&slowed, 3), "cuts {slowed} off");
            assert_eq!(
                round[2].1.value["node"],
                json!(slowed),
                "its clock set back"
            );
            // The node reads its slowed clock first; the others elect (150 ms, seen within a
            // poll); the old lease runs out (80 ms more) before the heal.
            let slow_first = round[1].0 - round[0].0;
            assert!((0.029..0.04).contains(&slow_first), "{slow_first} s");
            let held = round[3].0 - round[1].0;
            let polled = (election + 2 * LEADER_POLL).as_secs_f64() + 0.08;
            if number + 1 < rounds.len() {
                assert!(
                    (0.23..polled).contains(&held),
                    "held {held} s: {timeline:?}"
                );
            }
        }
        // The fake elects the next node in order: each round cuts off the one after.
        let slowed: Vec<&Value> = timeline
            .iter()
            .filter(|(_, event)| event.f == SkewClock)
            .map(|(_, event)| &event.value["node"])
            .collect();
        assert_eq!(slowed[..3], [&json!("n1"), &json!("n2"), &json!("n3")]);
        assert_all_healed(&setup);
    }

    #[tokio::test(start_paused = true)]
    async fn drifting_leader_runs_alone_no_process_fault_lands_inside_its_rounds() {
        let setup = setup(3);
        setup.cluster.set_leader(Some("n1"));
        setup
            .cluster
            .hold_elections(&setup.network, Duration::from_millis(150));
        run_for(
            &setup,
            &schedule("kill,pause,drifting-leader", 4),
            Duration::from_secs(8),
        )
        .await;
        let timeline = timeline(&setup);
        let nodes = |value: &Value| -> Vec<String> {
            let list = value.as_array().cloned().unwrap_or_default();
            list.iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect()
        };
        // Which nodes the process lane has down or paused, and whether a round is under way.
        let mut out: BTreeSet<String> = BTreeSet::new();
        let (mut slowed, mut process_faults, mut rounds) = (false, 0, 0);
        for (at, event) in &timeline {
            match event.f {
                EventName::SkewClock => {
                    assert!(
                        out.is_empty(),
                        "a round starts with {out:?} out: {timeline:?}"
                    );
                    (slowed, rounds) = (true, rounds + 1);
                }
                EventName::ResetClock => slowed = false,
                EventName::Kill | EventName::Pause => {
                    assert!(!slowed, "{:?} at {at} s inside a round", event.f);
                    out.extend(nodes(&event.value));
                    process_faults += 1;
                }
                EventName::Restart | EventName::Resume => {
                    for node in nodes(&event.value) {
                        out.remove(&node);
                    }
                }
                _ => {}
            }
        }
        assert!(rounds > 0 && process_faults > 0, "{timeline:?}");
        assert_all_healed(&setup);
    }

    #[tokio::test(start_paused = true)]
    async fn flap_leader_holds_the_partition_until_the_fault_ends_if_no_one_else_leads() {
        let setup = setup(3);
        setup.cluster.set_leader(Some("n2"));
        run_for(
            &setup,
            &schedule("flap-leader", 5),
            Duration::from_millis(2900),
        )
        .await;
        let summary: Vec<_> = timeline(&setup)
            .into_iter()
            .map(|(time, event)| (time, event.f, event.value))
            .collect();
        // The fault lasts two intervals.
        assert_eq!(
            summary,
            [
                (0.8, EventName::StartPartition, isolation("n2", 3)),
                (2.8, EventName::StopPartition, isolation("n2", 3)),
            ]
        );
    }

    /// In a default run with the membership fault, a replacement that ran alone released the
    /// process and network lanes together, and the process lane's kill or pause landed in
    /// flap-leader's round. Flap-leader runs alone: every node runs when a round cuts the
    /// leader off, and until the heal only the round's successor is paused.
    #[tokio::test(start_paused = true)]
    async fn flap_leader_runs_alone_no_process_fault_lands_inside_its_rounds() {
        use EventName::*;
        for seed in 1..=8 {
            let setup = setup(5);
            setup.cluster.set_members(&["n1", "n2", "n3"], &[]);
            setup.cluster.set_leader(Some("n1"));
            setup
                .cluster
                .hold_elections(&setup.network, Duration::from_millis(150));
            run_for(
                &setup,
                &schedule("kill,pause,flap-leader,membership", seed),
                Duration::from_secs(12),
            )
            .await;
            let timeline = timeline(&setup);
            let nodes = setup.cluster.nodes();
            let mut out = BTreeSet::<String>::new();
            let mut rounds = 0;
            for (at, (_, event)) in timeline.iter().enumerate() {
                let these = || {
                    let nodes = event.value.as_array().into_iter().flatten();
                    nodes.map(|node| node.as_str().unwrap_or_default().to_owned())
                };
                match event.f {
                    Kill | Pause => out.extend(these()),
                    Restart | Resume => these().for_each(|node| {
                        out.remove(&node);
                    }),
                    _ => {}
                }
                let isolated = nodes.iter().any(|node| event.value == isolation(node, 5));
                if event.f != StartPartition || !isolated {
                    continue;
                }
                rounds += 1;
                assert_eq!(out, BTreeSet::new(), "seed {seed}, at {at}: {timeline:?}");
                let healed = (at..timeline.len())
                    .find(|&then| timeline[then].1.f == StopPartition)
                    .expect("the isolation is healed");
                let inside: Vec<EventName> = timeline[at + 1..healed]
                    .iter()
                    .map(|(_, event)| event.f)
                    .filter(|f| !matches!(f, ChangeMembers | MembersChanged))
                    .collect();
                assert!(
                    inside.is_empty() || inside == [Pause],
                    "seed {seed}, at {at}: {timeline:?}"
                );
            }
            assert!(rounds > 0, "seed {seed}: flap-leader ran: {timeline:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn flap_leader_waits_for_the_other_lanes_killed_node_to_run_and_catch_up() {
        flap_leader_waits_for_the_other_lanes_node(Action::Kill, EventName::Restart).await;
    }

    #[tokio::test(start_paused = true)]
    async fn flap_leader_waits_for_the_other_lanes_paused_node_to_catch_up() {
        flap_leader_waits_for_the_other_lanes_node(Action::Pause, EventName::Resume).await;
    }

    /// The process lane takes n3 out (`out`: a kill or a pause) until 0.4 s; flap-leader's
    /// round must wait until n3 is `back` and then [`SETTLE`] more.
    async fn flap_leader_waits_for_the_other_lanes_node(out: Action, back: EventName) {
        let setup = setup(3);
        setup.cluster.set_leader(Some("n1"));
        setup
            .cluster
            .hold_elections(&setup.network, Duration::from_millis(150));
        let nemesis = &setup.nemesis;
        let n3 = vec!["n3".to_string()];
        match out {
            Action::Kill => nemesis
                .kill(Lane::Process, EventName::Kill, json!(n3), n3)
                .await
                .unwrap(),
            Action::Pause => nemesis.pause(Lane::Process, n3).await.unwrap(),
            other => unreachable!("n3 is taken out by a kill or a pause, not {other:?}"),
        }
        let process_lane = async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            nemesis.stop(Lane::Process).await.unwrap();
        };
        let (_stop, stopped) = watch::channel(false);
        let flap = Flap {
            fallback: "n1".into(),
            calm: Duration::from_millis(100),
        };
        let start = Instant::now();
        let network_lane = async {
            let mut stopped = stopped.clone();
            nemesis
                .flap_leader(
                    vec![flap],
                    start + Duration::from_secs(1),
                    start + Duration::from_secs(5),
                    &mut stopped,
                )
                .await
                .unwrap();
        };
        tokio::join!(process_lane, network_lane);
        nemesis.stop(Lane::Network).await.unwrap();
        let timeline = timeline(&setup);
        let at = |name: EventName| {
            timeline
                .iter()
                .find(|(_, event)| event.f == name)
                .map(|(time, _)| *time)
                .unwrap_or_else(|| panic!("no {name:?} in {timeline:?}"))
        };
        let returned = at(back);
        let isolated = at(EventName::StartPartition);
        assert!((0.399..0.41).contains(&returned), "{timeline:?}");
        assert!(
            isolated >= returned + SETTLE.as_secs_f64() - 0.001,
            "the leader was cut off {isolated} s, n3 back at {returned} s: {timeline:?}"
        );
        assert_all_healed(&setup);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lagging_failover_pauses_a_follower_kills_the_leader_then_resumes_the_follower() {
        let setup = setup(3);
        setup.cluster.set_leader(Some("n2"));
        run_for(
            &setup,
            &schedule("lagging-failover", 8),
            Duration::from_millis(1600),
        )
        .await;
        let timeline = timeline(&setup);
        let summary: Vec<_> = timeline
            .iter()
            .map(|(_, e)| (e.f, e.value.clone()))
            .collect();
        let follower = summary[0].1[0].as_str().expect("a paused node").to_owned();
        assert_ne!(follower, "n2", "the leader is not the one that lags");
        assert_eq!(
            summary,
            [
                (EventName::Pause, json!([follower])),
                (EventName::Kill, json!(["n2"])),
                (EventName::Resume, json!([follower])),
                (EventName::Restart, json!(["n2"])),
            ]
        );
        let times: Vec<f64> = timeline.iter().map(|(time, _)| *time).collect();
        let lag = times[1] - times[0];
        assert!((0.1..=0.3 + 1e-9).contains(&lag), "lagged {lag} s");
        let wake = times[2] - times[1];
        assert!((0.15..=0.3 + 1e-9).contains(&wake), "woke {wake} s later");
        assert_eq!(times[3], 1.5, "the leader is restarted at the fault's end");
        // The follower stays paused while the leader dies.
        let journal = journal(&setup);
        let kill = journal.iter().position(|line| line == "kill n2").unwrap();
        let resume = format!("resume {follower}");
        let resumed = journal.iter().position(|line| *line == resume).unwrap();
        assert!(kill < resumed, "{journal:?}");
        assert_all_healed(&setup);
    }

    #[tokio::test]
    async fn with_no_leader_known_a_lagging_failover_takes_its_seeded_fallbacks() {
        let setup = setup(3);
        let plan = FaultPlan::LaggingFailover {
            preference: vec!["n3".into(), "n1".into(), "n2".into()],
            lag: Duration::from_millis(1),
            wake: Duration::from_millis(1),
        };
        setup.nemesis.start(plan).await.unwrap();
        assert_eq!(setup.cluster.dead(), BTreeSet::from(["n3".to_owned()]));
        assert!(setup.cluster.paused().is_empty());
        assert_eq!(
            names(&setup.events),
            [EventName::Pause, EventName::Kill, EventName::Resume]
        );
        assert_eq!(setup.events.lock().unwrap()[0].value, json!(["n1"]));
        setup.nemesis.stop(Lane::Process).await.unwrap();
        assert_all_healed(&setup);
    }

    #[tokio::test]
    async fn faults_aimed_at_an_election_play_among_the_voters_not_the_spares() {
        let setup = setup(5);
        setup.cluster.set_members(&["n1", "n3", "n5"], &["n4"]);
        setup.cluster.set_leader(Some("n3"));
        // The seeded preference puts the spare n2 and the learner n4 first.
        let plan = FaultPlan::LaggingFailover {
            preference: vec![
                "n2".into(),
                "n4".into(),
                "n3".into(),
                "n5".into(),
                "n1".into(),
            ],
            lag: Duration::from_millis(1),
            wake: Duration::from_millis(1),
        };
        setup.nemesis.start(plan).await.unwrap();
        assert_eq!(setup.events.lock().unwrap()[0].value, json!(["n5"]));
        setup.nemesis.stop(Lane::Process).await.unwrap();
        assert_all_healed(&setup);
        // Restart-bridge's first election: the leader cut off from the voters, and the
        // spare and the learner left out of it.
        setup.cluster.set_leader(Some("n3"));
        let before = setup.events.lock().unwrap().len();
        setup
            .nemesis
            .start(FaultPlan::RestartBridge {
                order: vec![
                    "n2".into(),
                    "n4".into(),
                    "n1".into(),
                    "n3".into(),
                    "n5".into(),
                ],
            })
            .await
            .unwrap();
        let events = setup.events.lock().unwrap()[before..].to_vec();
        let cut = events
            .iter()
            .find(|event| event.f == EventName::StartPartition)
            .expect("a partition");
        assert_eq!(
            cut.value,
            json!({"n1": ["n3"], "n3": ["n1", "n5"], "n5": ["n3"]})
        );
        let killed = events.iter().find(|event| event.f == EventName::Kill);
        assert_eq!(killed.map(|event| &event.value), Some(&json!(["n5"])));
        setup.nemesis.stop(Lane::Network).await.unwrap();
        assert_all_healed(&setup);
    }

    #[tokio::test(start_paused = true)]
    async fn restart_bridge_cuts_the_leader_off_then_lets_it_ask_the_restarted_voters() {
        let setup = setup(3);
        setup.cluster.set_leader(Some("n3"));
        setup.cluster.set_log_end("n1", 5);
        setup.cluster.set_log_end("n2", 3);
        let cluster = setup.cluster.clone();
        let start = Instant::now();
        // The lane starts at 0.5 s, and the fault, which runs alone, lets the cluster settle
        // for 0.3 s. Round 1 (leader n3, from 0.8 s): n1, whose log is longest, is to win;
        // the voter n2 is down until 1.1 s; n1 wins at 1.2 s, is paused while n2 is down
        // again and comes back on n3's side, resumed at 1.6 s, and the links heal at 1.8 s.
        // Round 2 (leader n1, from 2.0 s): n2 is to win, but the voter n3 wins at 2.4 s,
        // which spends the round.
        let elections = tokio::spawn(async move {
            for (at, leader) in [(1200, "n1"), (2400, "n3")] {
                tokio::time::sleep_until(start + Duration::from_millis(at)).await;
                cluster.set_leader(Some(leader));
            }
        });
        run_for(
            &setup,
            &schedule("restart-bridge", 2),
            Duration::from_millis(2550),
        )
        .await;
        elections.await.unwrap();
        let timeline = timeline(&setup);
        let names: Vec<EventName> = timeline.iter().map(|(_, event)| event.f).collect();
        use EventName::*;
        let first_election = [StartPartition, StartSlow, Kill, Restart];
        let round_one = [
            &first_election[..],
            &[
                Pause,
                Kill,
                StopPartition,
                StopSlow,
                StartPartition,
                Restart,
            ],
            &[Resume, StopPartition],
        ]
        .concat();
        let round_two = [&first_election[..], &[StopPartition, StopSlow]].concat();
        assert_eq!(names, [round_one.clone(), round_two].concat());
        let values: Vec<&Value> = timeline.iter().map(|(_, event)| &event.value).collect();
        // Round 1: n3 cut off; n1's links to n2 slowed; n2 down; then n1 alone.
        assert_eq!(
            *values[0],
            json!({"n1": ["n3"], "n2": ["n3"], "n3": ["n1", "n2"]})
        );
        assert_eq!(
            *values[1],
            json!({"latency_ms": 50, "from": "n1", "to": ["n2"]})
        );
        assert_eq!(*values[2], json!(["n2"]));
        assert_eq!(*values[4], json!(["n1"]));
        assert_eq!(*values[5], json!(["n2"]));
        assert_eq!(
            *values[8],
            json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]})
        );
        assert_eq!(*values[9], json!(["n2"]));
        // Round 2: n1 cut off; n2 (whose log is known) to win, n3 the voter.
        let second = round_one.len();
        assert_eq!(
            *values[second],
            json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]})
        );
        assert_eq!(
            *values[second + 1],
            json!({"latency_ms": 50, "from": "n2", "to": ["n3"]})
        );
        let at = |index: usize| timeline[index].0;
        for (index, expected) in [(2, 0.8), (3, 1.1), (4, 1.2), (10, 1.6), (11, 1.8)] {
            assert!(
                (expected..expected + 0.05).contains(&at(index)),
                "{:?} at {} s, expected at {expected} s",
                names[index],
                at(index)
            );
        }
        assert!((2.0..2.05).contains(&at(second)), "{timeline:?}");
        assert_all_healed(&setup);
    }

    #[tokio::test(start_paused = true)]
    async fn restart_bridge_runs_alone_the_process_lane_heals_first_and_waits_for_it() {
        let setup = setup(3);
        run_for(
            &setup,
            &schedule("kill,restart-bridge", 7),
            Duration::from_millis(5500),
        )
        .await;
        let timeline = timeline(&setup);
        let names: Vec<EventName> = timeline.iter().map(|(_, event)| event.f).collect();
        let first = names
            .iter()
            .position(|name| *name == EventName::StartPartition)
            .expect("restart-bridge ran");
        let last = names
            .iter()
            .rposition(|name| *name == EventName::StopSlow)
            .expect("restart-bridge was healed");
        assert_eq!(
            names[..first],
            [EventName::Kill, EventName::Restart],
            "the kill in force was healed before restart-bridge started"
        );
        // No leader is known: n1, the first of the seeded order, stands in for it, and the
        // voter is the node of the three that is to win neither election.
        let bridge_events = [
            EventName::StartPartition,
            EventName::StartSlow,
            EventName::Kill,
            EventName::Restart,
            EventName::StopPartition,
            EventName::StopSlow,
        ];
        assert!(
            names[first..=last]
                .iter()
                .all(|name| bridge_events.contains(name)),
            "no process fault while restart-bridge is in force: {names:?}"
        );
        let voter = &timeline[first + 2].1.value;
        assert!(
            timeline[first..=last]
                .iter()
                .filter(|(_, event)| matches!(event.f, EventName::Kill | EventName::Restart))
                .all(|(_, event)| event.value == *voter),
            "only the voter goes down: {timeline:?}"
        );
        // Restart-bridge started after the cluster settled, and lasted three intervals.
        let (started, ended) = (timeline[first].0, timeline[last].0);
        assert!(started >= timeline[first - 1].0 + 0.3, "{timeline:?}");
        assert!((3.0..3.1).contains(&(ended - started)), "{timeline:?}");
        assert!(
            names[last + 1..].contains(&EventName::Kill),
            "the process lane goes on afterwards: {names:?}"
        );
        assert_all_healed(&setup);
    }

    #[tokio::test]
    async fn a_voter_the_process_lane_killed_stays_down_until_both_lanes_heal_it() {
        let setup = setup(3);
        let nemesis = &setup.nemesis;
        nemesis
            .start(FaultPlan::Kill(Targets::Nodes(vec!["n3".into()])))
            .await
            .unwrap();
        // With no leader known, n1 stands in for it: n2 is to win, n3 is the voter.
        let plan = FaultPlan::RestartBridge {
            order: setup.cluster.nodes(),
        };
        nemesis.start(plan).await.unwrap();
        assert_eq!(setup.cluster.dead(), BTreeSet::from(["n3".to_owned()]));
        nemesis.heal_all().await.unwrap();
        assert_all_healed(&setup);
        let journal = journal(&setup);
        for line in ["kill n3: nothing to do", "restart n3: nothing to do"] {
            assert!(journal.contains(&line.to_owned()), "{journal:?}");
        }
    }

    #[tokio::test]
    async fn a_voter_that_fails_to_restart_stays_remembered_after_the_network_heals() {
        let setup = setup(3);
        setup.cluster.set_unstartable("n3", true);
        let plan = FaultPlan::RestartBridge {
            order: setup.cluster.nodes(),
        };
        setup.nemesis.start(plan).await.unwrap();
        assert_eq!(setup.network.cut_links().len(), 4, "n1 cut off, both ways");
        let error = setup.nemesis.stop(Lane::Network).await.unwrap_err();
        assert_eq!(error.to_string(), "could not restart node n3");
        assert!(setup.network.cut_links().is_empty());
        assert_eq!(setup.cluster.dead(), BTreeSet::from(["n3".to_owned()]));
        setup.cluster.set_unstartable("n3", false);
        setup.nemesis.stop(Lane::Network).await.unwrap();
        assert_all_healed(&setup);
        assert_eq!(
            names(&setup.events),
            [
                EventName::StartPartition,
                EventName::StartSlow,
                EventName::Kill,
                EventName::StopPartition,
                EventName::StopSlow,
                EventName::Restart,
            ]
        );
    }

    #[tokio::test]
    async fn heal_all_heals_the_fault_in_force_and_the_whole_network() {
        let setup = setup(5);
        let plan = FaultPlan::Kill(Targets::Nodes(vec!["n1".into(), "n5".into()]));
        setup.nemesis.start(plan).await.unwrap();
        assert_eq!(setup.cluster.dead().len(), 2);
        setup.nemesis.heal_all().await.unwrap();
        assert_all_healed(&setup);
        assert_eq!(names(&setup.events), [EventName::Kill, EventName::Restart]);
        assert_eq!(journal(&setup).last().map(String::as_str), Some("heal"));
    }

    #[tokio::test]
    async fn a_node_that_fails_to_restart_is_retried_by_heal_all() {
        let setup = setup(5);
        let plan = FaultPlan::Kill(Targets::Nodes(vec!["n1".into(), "n2".into()]));
        setup.nemesis.start(plan).await.unwrap();
        setup.cluster.set_broken("n2", true);
        let error = setup.nemesis.stop(Lane::Process).await.unwrap_err();
        assert_eq!(error.to_string(), "could not restart node n2");
        assert_eq!(setup.cluster.dead(), BTreeSet::from(["n2".to_owned()]));
        setup.cluster.set_broken("n2", false);
        setup.nemesis.heal_all().await.unwrap();
        assert_all_healed(&setup);
        let values: Vec<_> = setup
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.value.clone())
            .collect();
        assert_eq!(values, [json!(["n1", "n2"]), json!(["n1"]), json!(["n2"])]);
    }

    #[tokio::test]
    async fn a_failed_kill_is_reported_and_the_killed_rest_is_restarted() {
        let setup = setup(5);
        setup.cluster.set_broken("n3", true);
        let plan = FaultPlan::Kill(Targets::Nodes(vec!["n1".into(), "n3".into()]));
        let error = setup.nemesis.start(plan).await.unwrap_err();
        assert_eq!(error.to_string(), "could not kill node n3");
        assert_eq!(setup.cluster.dead(), BTreeSet::from(["n1".to_owned()]));
        setup.nemesis.heal_all().await.unwrap();
        assert_all_healed(&setup);
    }

    fn clock_events(setup: &Setup) -> Vec<(EventName, Value)> {
        setup
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|event| (event.f, event.value.clone()))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_bump_jumps_one_clock_and_healing_sets_it_back_to_true_time() {
        let setup = setup(3);
        setup.cluster.set_leader(Some("n2"));
        let bump = FaultPlan::Clock {
            target: Targets::Leader {
                fallback: "n1".into(),
            },
            change: ClockChange::Bump { delta_ms: -250 },
        };
        setup.nemesis.start(bump).await.unwrap();
        assert_eq!(
            setup.cluster.clocks_off(),
            BTreeSet::from(["n2".to_owned()])
        );
        setup.nemesis.heal_all().await.unwrap();
        assert_all_healed(&setup);
        assert_eq!(
            clock_events(&setup),
            [
                (
                    EventName::BumpClock,
                    json!({"node": "n2", "offset_ms": -250.0, "rate": 1.0, "observed_ms": -250.0})
                ),
                (
                    EventName::ResetClock,
                    json!({"node": "n2", "offset_ms": 0.0, "rate": 1.0, "observed_ms": 0.0})
                ),
            ]
        );
        assert!(journal(&setup).contains(&"clock -250.000 ms x1.000 n2".to_owned()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_skew_starts_without_a_jump_and_its_offset_grows_at_its_rate_until_healed() {
        let setup = setup(3);
        let skew = FaultPlan::Clock {
            target: Targets::Nodes(vec!["n3".into()]),
            change: ClockChange::Skew { rate: 1.2 },
        };
        setup.nemesis.start(skew).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        // A paused node is still set back; it only cannot say what it reads.
        setup.cluster.pause("n3").await.unwrap();
        setup.nemesis.stop(Lane::Clock).await.unwrap();
        setup.cluster.resume("n3").await.unwrap();
        let events = clock_events(&setup);
        assert_eq!(
            events[0],
            (
                EventName::SkewClock,
                json!({"node": "n3", "offset_ms": 0.0, "rate": 1.2, "observed_ms": 0.0})
            )
        );
        assert_eq!(
            events[1],
            (
                EventName::ResetClock,
                json!({"node": "n3", "offset_ms": 0.0, "rate": 1.0})
            )
        );
        let line = journal(&setup)
            .into_iter()
            .find(|line| line.ends_with("x1.000 n3"))
            .unwrap();
        assert_eq!(line, "clock +0.000 ms x1.000 n3");
        assert_all_healed(&setup);
    }

    #[tokio::test(start_paused = true)]
    async fn a_strobe_flips_between_two_offsets_until_the_fault_ends_then_is_healed() {
        let setup = setup(3);
        let started = Instant::now();
        run_for(&setup, &schedule("clock", 4), Duration::from_millis(6000)).await;
        let timeline = timeline(&setup);
        let strobes: Vec<&(f64, Event)> = timeline
            .iter()
            .filter(|(_, event)| event.f == EventName::StrobeClock)
            .collect();
        assert!(strobes.len() >= 10, "a strobe flips often: {timeline:?}");
        let offsets: BTreeSet<String> = strobes
            .iter()
            .map(|(_, event)| event.value["offset_ms"].to_string())
            .collect();
        assert_eq!(offsets.len(), 2, "two offsets: {offsets:?}");
        // Every fault of the lane is healed before the next and at the end; a strobe's
        // flips are all within its interval.
        let names: Vec<EventName> = timeline.iter().map(|(_, event)| event.f).collect();
        let kinds: BTreeSet<&str> = names.iter().map(|name| name.as_str()).collect();
        assert_eq!(
            kinds,
            BTreeSet::from(["bump-clock", "reset-clock", "skew-clock", "strobe-clock"])
        );
        assert_eq!(names.last(), Some(&EventName::ResetClock));
        let first = strobes[0].0;
        let last = strobes[strobes.len() - 1].0;
        assert!(last - first <= 1.0, "{first} to {last}");
        assert!(started.elapsed() <= Duration::from_millis(6000));
        assert_all_healed(&setup);
    }

    #[tokio::test]
    async fn a_clock_that_cannot_be_set_is_an_error_naming_the_node() {
        let setup = setup(3);
        setup.cluster.set_broken("n1", true);
        let bump = FaultPlan::Clock {
            target: Targets::Nodes(vec!["n1".into()]),
            change: ClockChange::Bump { delta_ms: 100 },
        };
        let error = setup.nemesis.start(bump).await.unwrap_err();
        assert_eq!(error.to_string(), "could not set the clock of node n1");
        assert!(clock_events(&setup).is_empty());
    }

    #[test]
    fn the_schedule_can_run_on_its_own_task() {
        fn assert_send<T: Send>(_: T) {}
        let setup = setup(3);
        let schedule = schedule("all", 1);
        assert_send(
            setup
                .nemesis
                .run(&schedule, Instant::now(), std::future::ready(())),
        );
    }
}
