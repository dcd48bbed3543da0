//! In-memory stand-ins for the cluster and the network, to test the nemesis
//! without processes or sockets. Both write what they do into one shared
//! journal, and so does [`recorder`], so tests can check the order of
//! events and actions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::bail;
use tokio::time::Instant;

use crate::clock::ClockSetting;
use crate::cluster::{Cluster, NodeName, NodeView};
use crate::event::Event;
use crate::grudge::Link;
use crate::membership::{ChangeAnswer, MemberChange, Members};
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
    /// Nodes that fail to restart (and only that).
    unstartable: BTreeSet<NodeName>,
    leader: Option<NodeName>,
    elections: Option<Elections>,
    /// The index of each node's last log entry, where a test set it.
    log_ends: BTreeMap<NodeName, u64>,
    /// Each node's clock, where it is off true time.
    clocks: BTreeMap<NodeName, ClockSetting>,
    /// The members, once a test set them ([`FakeCluster::set_members`]); until then the
    /// cluster has no membership to tell.
    members: Option<Members>,
    /// Nodes retired, until enlisted.
    retired: BTreeSet<NodeName>,
    /// What the next membership change is answered, if not done.
    next_answer: Option<ChangeAnswer>,
}

/// Elections, as far as the nemesis can see them: a leader cut off from every other node
/// by `network` for `timeout` is followed by the next node, in order, that is not.
#[derive(Debug)]
struct Elections {
    network: Arc<FakeNetwork>,
    timeout: Duration,
    /// When `leader` first found the leader cut off, if it still is.
    isolated_since: Option<Instant>,
}

/// Nodes `n1..=nN` that can be killed, restarted, paused and resumed. As the harness's
/// cluster does, they take an action that finds nothing to do (killing a dead node,
/// resuming a running one) as done, and journal it as `"kill n1: nothing to do"`.
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

    /// Says that `node`'s log ends at `index`.
    pub fn set_log_end(&self, node: &str, index: u64) {
        lock(&self.states).log_ends.insert(node.to_owned(), index);
    }

    pub fn set_leader(&self, leader: Option<&str>) {
        lock(&self.states).leader = leader.map(str::to_owned);
    }

    /// From now on, a leader cut off from every other node (both ways) by `network` for
    /// `timeout` is replaced by the next node, in order, that is not cut off (journaled as
    /// `"elected n2"`), as [`Cluster::leader`] notices.
    pub fn hold_elections(&self, network: &Arc<FakeNetwork>, timeout: Duration) {
        lock(&self.states).elections = Some(Elections {
            network: network.clone(),
            timeout,
            isolated_since: None,
        });
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

    /// Makes restarts of `node` fail (`true`) or work again (`false`).
    pub fn set_unstartable(&self, node: &str, unstartable: bool) {
        let mut states = lock(&self.states);
        if unstartable {
            states.unstartable.insert(node.to_owned());
        } else {
            states.unstartable.remove(node);
        }
    }

    /// The voters and learners from now on (with the leader of the moment).
    pub fn set_members(&self, voters: &[&str], learners: &[&str]) {
        let names = |nodes: &[&str]| nodes.iter().map(|node| node.to_string()).collect();
        lock(&self.states).members = Some(Members {
            voters: names(voters),
            learners: names(learners),
            ..Members::default()
        });
    }

    /// Answers the next membership change with `answer`, changing nothing.
    pub fn answer_next_change(&self, answer: ChangeAnswer) {
        lock(&self.states).next_answer = Some(answer);
    }

    /// The members now, if set.
    pub fn members_now(&self) -> Option<Members> {
        lock(&self.states).members.clone()
    }

    pub fn retired(&self) -> BTreeSet<NodeName> {
        lock(&self.states).retired.clone()
    }

    pub fn dead(&self) -> BTreeSet<NodeName> {
        lock(&self.states).dead.clone()
    }

    pub fn paused(&self) -> BTreeSet<NodeName> {
        lock(&self.states).paused.clone()
    }

    /// The nodes whose clock is off true time.
    pub fn clocks_off(&self) -> BTreeSet<NodeName> {
        lock(&self.states).clocks.keys().cloned().collect()
    }

    /// Applies `change`, which says whether it found something to do.
    fn act(
        &self,
        verb: &str,
        node: &str,
        change: impl FnOnce(&mut NodeStates) -> bool,
    ) -> anyhow::Result<()> {
        let mut states = lock(&self.states);
        if !self.nodes.iter().any(|n| n == node) {
            bail!("no node {node}");
        }
        if states.broken.contains(node) {
            bail!("{node} is broken");
        }
        let line = if change(&mut states) {
            format!("{verb} {node}")
        } else {
            format!("{verb} {node}: nothing to do")
        };
        lock(&self.journal).push(line);
        Ok(())
    }

    /// Whether the network cuts `node` off from every other node, both ways.
    fn is_isolated(&self, network: &FakeNetwork, node: &str) -> bool {
        let cut = network.cut_links();
        let link = |from: &str, to: &str| Link {
            from: from.to_owned(),
            to: to.to_owned(),
        };
        self.nodes
            .iter()
            .filter(|other| *other != node)
            .all(|other| cut.contains(&link(node, other)) && cut.contains(&link(other, node)))
    }

    /// Holds an election if the leader has been cut off for long enough.
    fn elect(&self, states: &mut NodeStates) {
        let (Some(leader), Some(elections)) = (&states.leader, &mut states.elections) else {
            return;
        };
        if !self.is_isolated(&elections.network, leader) {
            elections.isolated_since = None;
            return;
        }
        let since = *elections.isolated_since.get_or_insert_with(Instant::now);
        if since.elapsed() < elections.timeout {
            return;
        }
        let at = self.nodes.iter().position(|n| n == leader).unwrap_or(0);
        let successor = (1..self.nodes.len())
            .map(|step| &self.nodes[(at + step) % self.nodes.len()])
            .find(|node| !self.is_isolated(&elections.network, node));
        if let Some(successor) = successor {
            lock(&self.journal).push(format!("elected {successor}"));
            states.leader = Some(successor.clone());
            elections.isolated_since = None;
        }
    }
}

impl Cluster for FakeCluster {
    fn nodes(&self) -> Vec<NodeName> {
        self.nodes.clone()
    }

    async fn kill(&self, node: &str) -> anyhow::Result<()> {
        self.act("kill", node, |s| {
            if s.retired.contains(node) {
                return false;
            }
            s.paused.remove(node);
            // A dead leader leads no more; it restarts as a follower.
            if s.leader.as_deref() == Some(node) {
                s.leader = None;
            }
            s.dead.insert(node.to_owned())
        })
    }

    async fn restart(&self, node: &str) -> anyhow::Result<()> {
        if lock(&self.states).unstartable.contains(node) {
            bail!("{node} does not start");
        }
        self.act("restart", node, |s| {
            !s.retired.contains(node) && s.dead.remove(node)
        })
    }

    async fn power_off(&self, node: &str, torn: Option<u64>) -> anyhow::Result<serde_json::Value> {
        self.act("power off", node, |s| {
            s.paused.remove(node);
            s.dead.insert(node.to_owned())
        })?;
        Ok(serde_json::json!({"bytes": 1, "torn": torn.is_some()}))
    }

    async fn pause(&self, node: &str) -> anyhow::Result<()> {
        self.act("pause", node, |s| {
            !s.dead.contains(node) && !s.retired.contains(node) && s.paused.insert(node.to_owned())
        })
    }

    async fn resume(&self, node: &str) -> anyhow::Result<()> {
        self.act("resume", node, |s| s.paused.remove(node))
    }

    /// Journals `clock n1 +250.000 ms x1.000`, and observes the offset the setting says (a
    /// dead or paused node observes nothing).
    async fn set_clock(&self, node: &str, setting: ClockSetting) -> anyhow::Result<Option<f64>> {
        let offset = setting.offset_ms_at(Instant::now());
        self.act(
            &format!("clock {offset:+.3} ms x{:.3}", setting.rate),
            node,
            |s| {
                if setting.is_true() {
                    s.clocks.remove(node);
                } else {
                    s.clocks.insert(node.to_owned(), setting);
                }
                true
            },
        )?;
        let states = lock(&self.states);
        let answers = !states.dead.contains(node) && !states.paused.contains(node);
        Ok(answers.then_some(offset))
    }

    async fn leader(&self) -> Option<NodeName> {
        let mut states = lock(&self.states);
        self.elect(&mut states);
        states.leader.clone()
    }

    /// Only the one leader leads (a deposed one knows it at once); logs are as long as
    /// [`FakeCluster::set_log_end`] says.
    async fn view(&self, node: &str) -> Option<NodeView> {
        let leads = self.leader().await.as_deref() == Some(node);
        let last_log_index = lock(&self.states).log_ends.get(node).copied();
        Some(NodeView {
            leads,
            last_log_index,
        })
    }

    /// The members set, whoever leads (the fake holds no elections after a kill).
    async fn members(&self) -> Option<Members> {
        let leader = self.leader().await;
        let members = lock(&self.states).members.clone()?;
        Some(Members { leader, ..members })
    }

    /// Journals `change add-learner n4` and applies it at once (a removed leader is followed
    /// by the first voter left), unless [`FakeCluster::answer_next_change`] said otherwise.
    async fn change_members(&self, change: &MemberChange) -> ChangeAnswer {
        lock(&self.journal).push(format!("change {} {}", change.name(), change.node()));
        let mut states = lock(&self.states);
        if let Some(answer) = states.next_answer.take() {
            return answer;
        }
        let Some(members) = states.members.as_mut() else {
            return ChangeAnswer::Refused("no membership".into());
        };
        let drop = |group: &mut Vec<NodeName>, node: &str| group.retain(|n| n != node);
        match change {
            MemberChange::AddLearner(node) => members.learners.push(node.clone()),
            MemberChange::Promote(node) => {
                drop(&mut members.learners, node);
                members.voters.push(node.clone());
            }
            MemberChange::Remove(node) => {
                drop(&mut members.voters, node);
                drop(&mut members.learners, node);
            }
            MemberChange::Replace { add, remove } => {
                drop(&mut members.voters, remove);
                members.voters.push(add.clone());
            }
        }
        members.voters.sort();
        let now = members.clone();
        if change.leaving().is_some() && change.leaving() == states.leader.as_deref() {
            // The removed leader steps down, and the first voter left wins the election.
            states.leader = now.voters.first().cloned();
        }
        ChangeAnswer::Done(now)
    }

    async fn retire(&self, node: &str) -> anyhow::Result<()> {
        self.act("retire", node, |s| {
            s.paused.remove(node);
            s.dead.insert(node.to_owned());
            s.retired.insert(node.to_owned())
        })
    }

    async fn enlist(&self, node: &str) -> anyhow::Result<bool> {
        let mut was_retired = false;
        self.act("enlist", node, |s| {
            was_retired = s.retired.remove(node);
            was_retired && s.dead.remove(node)
        })?;
        Ok(was_retired)
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
        let links: Vec<String> = links
            .iter()
            .map(|link| format!("{}->{}", link.from, link.to))
            .collect();
        lock(&self.journal).push(format!("cut {}", links.join(" ")));
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
