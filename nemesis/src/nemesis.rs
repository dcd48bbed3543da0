//! The nemesis: applies one fault at a time to a [`Cluster`] and a
//! [`Partitioner`], keeps track of what it broke so it can always heal it,
//! reports every start and stop as an [`Event`], and runs the seeded
//! [`Schedule`] until a deadline or a cancellation.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;

use serde_json::Value;
use tokio::time::Instant;

use crate::cluster::{Cluster, NodeName};
use crate::event::{Event, EventName};
use crate::grudge::Grudge;
use crate::partition::{PartitionError, Partitioner};
use crate::schedule::{FaultPlan, Planner, Schedule, Targets};

/// A fault could not be applied or healed.
#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    /// The cluster failed to kill, restart, pause or resume a node.
    #[error("could not {action} node {node}")]
    Cluster {
        /// `"kill"`, `"restart"`, `"pause"` or `"resume"`.
        action: &'static str,
        /// The node.
        node: NodeName,
        /// What the cluster reported.
        #[source]
        source: anyhow::Error,
    },
    /// The partition backend failed to cut or heal links.
    #[error("could not change the network")]
    Network(#[from] PartitionError),
    /// A schedule with faults but a zero interval would start and heal
    /// faults in a busy loop.
    #[error("the nemesis interval must be longer than zero")]
    ZeroInterval,
}

/// The fault in force, remembered so that it can be healed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ActiveFault {
    Killed(Vec<NodeName>),
    Paused(Vec<NodeName>),
    Partitioned(Grudge),
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

/// Injects faults into a cluster, one at a time.
///
/// Generic over the cluster and the partition backend (both use `async fn`
/// in traits, which cannot be `dyn`); the harness uses its own cluster type
/// and [`crate::PartitionBackend`]. Both are shared (`Arc`) so the harness
/// keeps a handle to tear them down on any path.
pub struct Nemesis<C, P> {
    cluster: Arc<C>,
    network: Arc<P>,
    on_event: Box<dyn FnMut(Event) + Send>,
    active: Option<ActiveFault>,
}

impl<C: Cluster, P: Partitioner> Nemesis<C, P> {
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
            on_event: Box::new(on_event),
            active: None,
        }
    }

    /// Runs `schedule` until `deadline` or until `cancel` completes: start a
    /// fault, wait `interval`, heal it, wait `interval`, repeat. A fault in
    /// force when time runs out or the run is cancelled is healed before
    /// this returns; after an error, [`Nemesis::heal_all`] heals what is left.
    /// Returns at once if no fault kind is enabled, and fails at once if
    /// faults are enabled with a zero interval.
    pub async fn run(
        &mut self,
        schedule: &Schedule,
        deadline: Instant,
        cancel: impl Future<Output = ()>,
    ) -> Result<(), NemesisError> {
        if schedule.interval.is_zero() && !schedule.kinds.is_empty() {
            return Err(NemesisError::ZeroInterval);
        }
        let mut planner = Planner::new(&schedule.kinds, self.cluster.nodes(), schedule.seed);
        let mut cancel = pin!(cancel);
        let ran = self
            .run_until(&mut planner, schedule, deadline, cancel.as_mut())
            .await;
        let stopped = self.stop().await;
        ran.and(stopped)
    }

    async fn run_until(
        &mut self,
        planner: &mut Planner,
        schedule: &Schedule,
        deadline: Instant,
        mut cancel: Pin<&mut impl Future<Output = ()>>,
    ) -> Result<(), NemesisError> {
        while Instant::now() < deadline {
            let Some(plan) = planner.next_plan() else {
                return Ok(());
            };
            self.start(plan).await?;
            if !wait(schedule.interval, deadline, cancel.as_mut()).await {
                return Ok(());
            }
            self.stop().await?;
            if !wait(schedule.interval, deadline, cancel.as_mut()).await {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Applies one fault, after healing the one in force if any. Leader
    /// targets are resolved now, falling back to the plan's node when no
    /// leader is known.
    pub async fn start(&mut self, plan: FaultPlan) -> Result<(), NemesisError> {
        self.stop().await?;
        match plan {
            FaultPlan::Kill(targets) => {
                let nodes = resolve(&*self.cluster, targets).await;
                self.emit(EventName::Kill, nodes_json(&nodes));
                let (killed, result) = apply(&*self.cluster, Action::Kill, &nodes).await;
                self.remember(ActiveFault::Killed(killed));
                result
            }
            FaultPlan::Pause(targets) => {
                let nodes = resolve(&*self.cluster, targets).await;
                self.emit(EventName::Pause, nodes_json(&nodes));
                let (paused, result) = apply(&*self.cluster, Action::Pause, &nodes).await;
                self.remember(ActiveFault::Paused(paused));
                result
            }
            FaultPlan::Partition(grudge) => self.partition(grudge).await,
            FaultPlan::IsolateLeader { fallback } => {
                let leader = self.cluster.leader().await.unwrap_or(fallback);
                let grudge = Grudge::isolate(&leader, &self.cluster.nodes());
                self.partition(grudge).await
            }
        }
    }

    /// Heals the fault in force, if any: restarts killed nodes, resumes
    /// paused ones, or heals the network. Nodes that could not be healed stay
    /// remembered, so a later call retries them.
    pub async fn stop(&mut self) -> Result<(), NemesisError> {
        let Some(fault) = self.active.take() else {
            return Ok(());
        };
        match fault {
            ActiveFault::Killed(nodes) => {
                let (restarted, result) = apply(&*self.cluster, Action::Restart, &nodes).await;
                self.report_healed(EventName::Restart, &restarted);
                self.remember(ActiveFault::Killed(unhealed(nodes, &restarted)));
                result
            }
            ActiveFault::Paused(nodes) => {
                let (resumed, result) = apply(&*self.cluster, Action::Resume, &nodes).await;
                self.report_healed(EventName::Resume, &resumed);
                self.remember(ActiveFault::Paused(unhealed(nodes, &resumed)));
                result
            }
            ActiveFault::Partitioned(grudge) => {
                if let Err(error) = self.network.heal().await {
                    self.active = Some(ActiveFault::Partitioned(grudge));
                    return Err(error.into());
                }
                self.emit(EventName::StopPartition, grudge.to_json());
                Ok(())
            }
        }
    }

    /// The final phase: heals the fault in force and the whole network (even
    /// links this nemesis does not know it cut), reporting what it heals.
    pub async fn heal_all(&mut self) -> Result<(), NemesisError> {
        let stopped = self.stop().await;
        let healed = self.network.heal().await.map_err(NemesisError::from);
        stopped.and(healed)
    }

    async fn partition(&mut self, grudge: Grudge) -> Result<(), NemesisError> {
        self.emit(EventName::StartPartition, grudge.to_json());
        let links = grudge.links();
        // Remembered before cutting: a cut that fails halfway still gets healed.
        self.active = Some(ActiveFault::Partitioned(grudge));
        self.network.cut(&links).await?;
        Ok(())
    }

    /// Remembers a process fault, unless it hit no node.
    fn remember(&mut self, fault: ActiveFault) {
        let hit_nobody =
            matches!(&fault, ActiveFault::Killed(n) | ActiveFault::Paused(n) if n.is_empty());
        self.active = (!hit_nobody).then_some(fault);
    }

    fn report_healed(&mut self, name: EventName, nodes: &[NodeName]) {
        if !nodes.is_empty() {
            self.emit(name, nodes_json(nodes));
        }
    }

    fn emit(&mut self, f: EventName, value: Value) {
        (self.on_event)(Event { f, value });
    }
}

async fn resolve(cluster: &impl Cluster, targets: Targets) -> Vec<NodeName> {
    match targets {
        Targets::Nodes(nodes) => nodes,
        Targets::Leader { fallback } => vec![cluster.leader().await.unwrap_or(fallback)],
    }
}

/// Applies `action` to every node, even after one fails; returns the
/// nodes it succeeded on and the first failure.
async fn apply(
    cluster: &impl Cluster,
    action: Action,
    nodes: &[NodeName],
) -> (Vec<NodeName>, Result<(), NemesisError>) {
    let mut done = Vec::new();
    let mut first_error = Ok(());
    for node in nodes {
        let outcome = match action {
            Action::Kill => cluster.kill(node).await,
            Action::Restart => cluster.restart(node).await,
            Action::Pause => cluster.pause(node).await,
            Action::Resume => cluster.resume(node).await,
        };
        match outcome {
            Ok(()) => done.push(node.clone()),
            Err(source) => {
                if first_error.is_ok() {
                    first_error = Err(NemesisError::Cluster {
                        action: action.verb(),
                        node: node.clone(),
                        source,
                    });
                }
            }
        }
    }
    (done, first_error)
}

/// Waits until `interval` from now or `deadline`, whichever is first; false
/// if `cancel` completed first or the deadline was reached.
async fn wait(
    interval: std::time::Duration,
    deadline: Instant,
    cancel: Pin<&mut impl Future<Output = ()>>,
) -> bool {
    let until = (Instant::now() + interval).min(deadline);
    tokio::select! {
        () = tokio::time::sleep_until(until) => until < deadline,
        () = cancel => false,
    }
}

fn unhealed(nodes: Vec<NodeName>, healed: &[NodeName]) -> Vec<NodeName> {
    nodes.into_iter().filter(|n| !healed.contains(n)).collect()
}

fn nodes_json(nodes: &[NodeName]) -> Value {
    nodes.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::fake::{FakeCluster, FakeNetwork, Journal, recorder};
    use crate::grudge::Link;
    use crate::kind::FaultKinds;

    struct Setup {
        cluster: Arc<FakeCluster>,
        network: Arc<FakeNetwork>,
        journal: Journal,
        events: Arc<Mutex<Vec<Event>>>,
        nemesis: Nemesis<FakeCluster, FakeNetwork>,
    }

    fn setup(size: usize) -> Setup {
        let journal = Journal::default();
        let cluster = Arc::new(FakeCluster::new(size, &journal));
        let network = Arc::new(FakeNetwork::new(&journal));
        let (events, sink) = recorder(&journal);
        let nemesis = Nemesis::new(cluster.clone(), network.clone(), sink);
        Setup {
            cluster,
            network,
            journal,
            events,
            nemesis,
        }
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
    }

    fn the_stop_of(start: EventName) -> EventName {
        match start {
            EventName::Kill => EventName::Restart,
            EventName::Pause => EventName::Resume,
            EventName::StartPartition => EventName::StopPartition,
            stop => panic!("{stop} is not a start"),
        }
    }

    async fn run_for(setup: &mut Setup, schedule: &Schedule, limit: Duration) -> Instant {
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
        let mut events = Vec::new();
        for seed in [7, 7, 8] {
            let mut setup = setup(5);
            setup.cluster.set_leader(Some("n2"));
            run_for(&mut setup, &schedule("all", seed), Duration::from_secs(60)).await;
            events.push(setup.events.lock().unwrap().clone());
        }
        assert_eq!(events[0], events[1]);
        assert_ne!(events[0], events[2]);
    }

    #[tokio::test(start_paused = true)]
    async fn starts_and_stops_alternate_and_everything_is_healed_at_the_end() {
        let mut setup = setup(5);
        setup.cluster.set_leader(Some("n1"));
        run_for(&mut setup, &schedule("all", 3), Duration::from_secs(100)).await;
        let names = names(&setup.events);
        assert_eq!(
            names.len(),
            100,
            "50 faults of 1s, each followed by 1s of calm"
        );
        for pair in names.chunks(2) {
            assert_eq!(pair[1], the_stop_of(pair[0]), "{pair:?}");
        }
        let kinds: BTreeSet<_> = names.iter().map(|name| name.as_str()).collect();
        assert_eq!(kinds.len(), 6, "every kind of event shows up: {kinds:?}");
        assert_all_healed(&setup);
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
        let mut nemesis = Nemesis::new(cluster.clone(), network, sink);
        let deadline = started + Duration::from_millis(4500);
        nemesis
            .run(&schedule("pause", 1), deadline, std::future::pending())
            .await
            .unwrap();
        assert_eq!(Instant::now(), deadline, "returns when the time is up");
        let seconds = |s: f64| Duration::from_secs_f64(s);
        assert_eq!(
            *timeline.lock().unwrap(),
            [
                (EventName::Pause, seconds(0.0)),
                (EventName::Resume, seconds(1.0)),
                (EventName::Pause, seconds(2.0)),
                (EventName::Resume, seconds(3.0)),
                (EventName::Pause, seconds(4.0)),
                (EventName::Resume, seconds(4.5)),
            ]
        );
        assert!(cluster.paused().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_heals_the_fault_in_force_and_returns() {
        let mut setup = setup(3);
        let started = Instant::now();
        let cancel = tokio::time::sleep(Duration::from_millis(2500));
        let deadline = started + Duration::from_secs(600);
        setup
            .nemesis
            .run(&schedule("kill,partition", 9), deadline, cancel)
            .await
            .expect("schedule ran");
        assert_eq!(Instant::now(), started + Duration::from_millis(2500));
        let names = names(&setup.events);
        assert_eq!(names.len(), 4, "two faults, at 0s and 2s: {names:?}");
        assert_eq!(names[3], the_stop_of(names[2]));
        assert_all_healed(&setup);
    }

    #[tokio::test(start_paused = true)]
    async fn no_enabled_fault_means_nothing_happens() {
        let mut setup = setup(3);
        let schedule = Schedule {
            kinds: FaultKinds::none(),
            ..schedule("kill", 1)
        };
        let started = Instant::now();
        run_for(&mut setup, &schedule, Duration::from_secs(60)).await;
        assert_eq!(Instant::now(), started, "returns at once");
        assert!(journal(&setup).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_interval_is_refused() {
        let mut setup = setup(3);
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
        let mut setup = setup(3);
        let nemesis = &mut setup.nemesis;
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
        nemesis.stop().await.unwrap();
        assert_eq!(
            journal(&setup),
            [
                r#"event kill ["n1"]"#,
                "kill n1",
                "restart n1",
                r#"event restart ["n1"]"#,
                r#"event start-partition {"n1":["n2"],"n2":["n1","n3"],"n3":["n2"]}"#,
                "cut 4",
                "heal",
                r#"event stop-partition {"n1":["n2"],"n2":["n1","n3"],"n3":["n2"]}"#,
            ]
        );
    }

    #[tokio::test]
    async fn leader_targets_hit_the_current_leader_or_else_the_fallback() {
        let mut setup = setup(3);
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
        let mut setup = setup(5);
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

    #[tokio::test]
    async fn heal_all_heals_the_fault_in_force_and_the_whole_network() {
        let mut setup = setup(5);
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
        let mut setup = setup(5);
        let plan = FaultPlan::Kill(Targets::Nodes(vec!["n1".into(), "n2".into()]));
        setup.nemesis.start(plan).await.unwrap();
        setup.cluster.set_broken("n2", true);
        let error = setup.nemesis.stop().await.unwrap_err();
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
        let mut setup = setup(5);
        setup.cluster.set_broken("n3", true);
        let plan = FaultPlan::Kill(Targets::Nodes(vec!["n1".into(), "n3".into()]));
        let error = setup.nemesis.start(plan).await.unwrap_err();
        assert_eq!(error.to_string(), "could not kill node n3");
        assert_eq!(setup.cluster.dead(), BTreeSet::from(["n1".to_owned()]));
        setup.nemesis.heal_all().await.unwrap();
        assert_all_healed(&setup);
    }

    #[test]
    fn the_schedule_can_run_on_its_own_task() {
        fn assert_send<T: Send>(_: T) {}
        let mut setup = setup(3);
        let schedule = schedule("all", 1);
        assert_send(
            setup
                .nemesis
                .run(&schedule, Instant::now(), std::future::ready(())),
        );
    }
}
