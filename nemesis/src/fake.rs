//! In-memory stand-ins for the cluster and the network, to test the nemesis
//! without processes or sockets. Both write what they do into one shared
//! journal, and so does [`recorder`], so tests can check the order of
//! events and actions.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::bail;

use crate::cluster::{Cluster, NodeName};
use crate::event::Event;
use crate::grudge::Link;
use crate::partition::{Degradation, Degrader, PartitionError, Partitioner};

/// Everything that happened, in order, one line each.
pub type Journal = Arc<Mutex<Vec<String>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .expect("a test thread panicked while holding the lock")
}

/// An event sink that journals each event (`"event kill [\"n1\"]"`) and keeps it.
pub fn recorder(journal: &Journal) -> (Arc<Mutex<Vec<Event>>>, impl FnMut(Event) + Send + 'static) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let (kept, journal) = (events.clone(), journal.clone());
    let sink = move |event: Event| {
        lock(&journal).push(format!("event {} {}", event.f, event.value));
        lock(&kept).push(event);
    };
    (events, sink)
}

#[derive(Debug, Default)]
struct NodeStates {
    dead: BTreeSet<NodeName>,
    paused: BTreeSet<NodeName>,
    /// Nodes on which every action fails.
    broken: BTreeSet<NodeName>,
    leader: Option<NodeName>,
}

/// Nodes `n1..=nN` that can be killed, restarted, paused and resumed, and
/// that refuse impossible transitions (killing a dead node, resuming a
/// running one) as a real cluster would.
#[derive(Debug)]
pub struct FakeCluster {
    nodes: Vec<NodeName>,
    states: Mutex<NodeStates>,
    journal: Journal,
}

impl FakeCluster {
    pub fn new(size: usize, journal: &Journal) -> Self {
        FakeCluster {
            nodes: (1..=size).map(|i| format!("n{i}")).collect(),
            states: Mutex::default(),
            journal: journal.clone(),
        }
    }

    pub fn set_leader(&self, leader: Option<&str>) {
        lock(&self.states).leader = leader.map(str::to_owned);
    }

    /// Makes every action on `node` fail (`true`) or work again (`false`).
    pub fn set_broken(&self, node: &str, broken: bool) {
        let mut states = lock(&self.states);
        if broken {
            states.broken.insert(node.to_owned());
        } else {
            states.broken.remove(node);
        }
    }

    pub fn dead(&self) -> BTreeSet<NodeName> {
        lock(&self.states).dead.clone()
    }

    pub fn paused(&self) -> BTreeSet<NodeName> {
        lock(&self.states).paused.clone()
    }

    fn act(
        &self,
        verb: &str,
        node: &str,
        change: impl FnOnce(&mut NodeStates) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut states = lock(&self.states);
        if !self.nodes.iter().any(|n| n == node) {
            bail!("no node {node}");
        }
        if states.broken.contains(node) {
            bail!("{node} is broken");
        }
        change(&mut states)?;
        lock(&self.journal).push(format!("{verb} {node}"));
        Ok(())
    }
}

impl Cluster for FakeCluster {
    fn nodes(&self) -> Vec<NodeName> {
        self.nodes.clone()
    }

    async fn kill(&self, node: &str) -> anyhow::Result<()> {
        self.act("kill", node, |s| {
            if !s.dead.insert(node.to_owned()) {
                bail!("{node} is already dead");
            }
            s.paused.remove(node);
            Ok(())
        })
    }

    async fn restart(&self, node: &str) -> anyhow::Result<()> {
        self.act("restart", node, |s| {
            if !s.dead.remove(node) {
                bail!("{node} is running");
            }
            Ok(())
        })
    }

    async fn power_off(&self, node: &str, torn: Option<u64>) -> anyhow::Result<serde_json::Value> {
        self.act("power off", node, |s| {
            if !s.dead.insert(node.to_owned()) {
                bail!("{node} is already dead");
            }
            s.paused.remove(node);
            Ok(())
        })?;
        Ok(serde_json::json!({"bytes": 1, "torn": torn.is_some()}))
    }

    async fn pause(&self, node: &str) -> anyhow::Result<()> {
        self.act("pause", node, |s| {
            if s.dead.contains(node) || !s.paused.insert(node.to_owned()) {
                bail!("{node} is not running");
            }
            Ok(())
        })
    }

    async fn resume(&self, node: &str) -> anyhow::Result<()> {
        self.act("resume", node, |s| {
            if !s.paused.remove(node) {
                bail!("{node} is not paused");
            }
            Ok(())
        })
    }

    async fn leader(&self) -> Option<NodeName> {
        lock(&self.states).leader.clone()
    }
}

/// A network that remembers which links are cut, and journals degradations.
#[derive(Debug)]
pub struct FakeNetwork {
    cut: Mutex<BTreeSet<Link>>,
    degraded: Mutex<BTreeSet<Link>>,
    journal: Journal,
}

impl FakeNetwork {
    pub fn new(journal: &Journal) -> Self {
        FakeNetwork {
            cut: Mutex::default(),
            degraded: Mutex::default(),
            journal: journal.clone(),
        }
    }

    pub fn cut_links(&self) -> BTreeSet<Link> {
        lock(&self.cut).clone()
    }

    pub fn degraded_links(&self) -> BTreeSet<Link> {
        lock(&self.degraded).clone()
    }
}

impl Partitioner for FakeNetwork {
    async fn cut(&self, links: &[Link]) -> Result<(), PartitionError> {
        lock(&self.cut).extend(links.iter().cloned());
        lock(&self.journal).push(format!("cut {}", links.len()));
        Ok(())
    }

    async fn heal(&self) -> Result<(), PartitionError> {
        lock(&self.cut).clear();
        lock(&self.degraded).clear();
        lock(&self.journal).push("heal".to_owned());
        Ok(())
    }

    async fn teardown(&self) -> Result<(), PartitionError> {
        self.heal().await
    }
}

impl Degrader for FakeNetwork {
    async fn degrade(&self, links: &[Link], how: &Degradation) -> Result<(), PartitionError> {
        how.check()?;
        lock(&self.degraded).extend(links.iter().cloned());
        lock(&self.journal).push(format!("degrade {}", links.len()));
        Ok(())
    }
}
