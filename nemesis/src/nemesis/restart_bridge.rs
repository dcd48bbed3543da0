//! Restart-bridge, the fault aimed at a node that forgets its vote across a restart
//! (`forget-vote`): in one term, the node whose vote decides votes for a candidate of one side,
//! is restarted, and is then asked by a candidate of the other side. See
//! [`FaultPlan::RestartBridge`](crate::FaultPlan::RestartBridge) for the round, and why each
//! step is there.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{ActiveFault, LEADER_POLL, Nemesis, NemesisError, nodes_json, wait_until};
use crate::cluster::{Cluster, NodeName};
use crate::event::EventName;
use crate::grudge::{Grudge, Link};
use crate::kind::Lane;
use crate::partition::{Degradation, Degrader};

/// How long the winner's messages to the voters take: more than it takes the nemesis to see
/// it lead and take the voters down (a poll or two), so that its first entry dies with the
/// connections; little enough that its two requests (pre-vote and vote, each delayed there
/// and back) end before a voter's own election timeout (150 ms or more for the bundled node).
pub(super) const WINNER_LATENCY: Duration = Duration::from_millis(50);

/// How long the voters stay down at the start of a round: the longest election timeout of the
/// bundled node, so that the winner already campaigns when they come back, and wins their
/// votes before their own election timeouts end.
const VOTERS_DOWN: Duration = Duration::from_millis(300);

/// How long the old leader has, once the voters are back, to win their votes again in the
/// winner's term (it retries its pre-vote and vote requests every heartbeat), while the
/// winner stays paused. The harness asks every node who leads ten times a second, waiting up
/// to 300 ms for an answer: a request to the paused winner is still waiting when it resumes,
/// and is answered before the winner's clock catches up, while it still leads.
const SECOND_ELECTION: Duration = Duration::from_millis(400);

/// How long the winner runs, resumed, before the heal: two of the harness's polls.
const WINNER_SEEN: Duration = Duration::from_millis(200);

/// How long the round waits after the heal: every node catches up with the leader, so that
/// the next round's leader has a log as long as anyone's.
const CATCH_UP: Duration = Duration::from_millis(200);

/// Who stands where in a round of restart-bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sides {
    /// The leader when the round starts, and with it, in clusters of five or more, the nodes
    /// that make it a majority with the voters (⌊(n-1)/2⌋ nodes in all).
    pub cut_off: Vec<NodeName>,
    /// The node meant to win the first election.
    pub winner: NodeName,
    /// The others, whose votes both elections need.
    pub voters: Vec<NodeName>,
}

impl Sides {
    /// The sides around `leader`, the others placed in `order`, and the first of the others
    /// the winner; `None` if `leader` is not in `order` or there are fewer than three nodes.
    pub fn around(leader: &str, order: &[NodeName]) -> Option<Sides> {
        if order.len() < 3 || !order.iter().any(|node| node == leader) {
            return None;
        }
        let mut others = order.iter().filter(|node| *node != leader).cloned();
        let mut cut_off = vec![leader.to_owned()];
        cut_off.extend(others.by_ref().take((order.len() - 1) / 2 - 1));
        let winner = others.next()?;
        Some(Sides {
            cut_off,
            winner,
            voters: others.collect(),
        })
    }

    /// Makes the node of the longest log (by `log_end`, of those that tell it) the winner,
    /// the first of them in place of ties: the voters would refuse a shorter log, and one of
    /// them would win.
    pub fn longest_log_wins(&mut self, log_end: impl Fn(&str) -> Option<u64>) {
        let mut electing = vec![self.winner.clone()];
        electing.append(&mut self.voters);
        let ends: Vec<Option<u64>> = electing.iter().map(|node| log_end(node)).collect();
        let longest = (0..electing.len())
            .rev()
            .max_by_key(|&at| ends[at])
            .unwrap_or(0);
        self.winner = electing.remove(longest);
        self.voters = electing;
    }

    /// The grudge of the first election: `cut_off` hears no one outside it.
    pub fn first_election(&self) -> Grudge {
        let mut electing = vec![self.winner.clone()];
        electing.extend(self.voters.iter().cloned());
        Grudge::complete(&[&self.cut_off, &electing])
    }

    /// The grudge of the second election: the winner hears no one, and `cut_off` hears the
    /// voters.
    pub fn second_election(&self) -> Grudge {
        let mut asking = self.cut_off.clone();
        asking.extend(self.voters.iter().cloned());
        Grudge::complete(&[&asking, std::slice::from_ref(&self.winner)])
    }

    /// The links from the winner to the voters.
    fn winner_links(&self) -> Vec<Link> {
        let link = |to: &NodeName| Link {
            from: self.winner.clone(),
            to: to.clone(),
        };
        self.voters.iter().map(link).collect()
    }
}

impl<C: Cluster, P: Degrader> Nemesis<C, P> {
    /// Restart-bridge's rounds until `fault_ends` (or the run stops).
    pub(super) async fn restart_bridge(
        &self,
        lane: Lane,
        order: &[NodeName],
        fault_ends: Instant,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<(), NemesisError> {
        while self.bridge_round(lane, order, fault_ends, stopped).await? {}
        Ok(())
    }

    /// One round (see [`FaultPlan::RestartBridge`](crate::FaultPlan::RestartBridge)). False
    /// when the fault or the run ends first.
    async fn bridge_round(
        &self,
        lane: Lane,
        order: &[NodeName],
        fault_ends: Instant,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<bool, NemesisError> {
        // Spares and nodes removed from the cluster have no say in its elections.
        let order = self.voting(order).await;
        let order = order.as_slice();
        // With no leader known (a system that does not tell), the first of `order` stands in.
        let leader = self.cluster.leader().await;
        let Some(leader) = leader.or_else(|| order.first().cloned()) else {
            return Ok(false);
        };
        let Some(sides) = Sides::around(&leader, order) else {
            return Ok(false);
        };
        let sides = self.cut_off_leader(lane, sides).await?;
        if !wait_until(Instant::now() + VOTERS_DOWN, fault_ends, stopped).await {
            return Ok(false);
        }
        self.restart_voters(lane).await?;
        let Some(winner) = self
            .await_leader_other_than(Some(&leader), LEADER_POLL, fault_ends, stopped)
            .await
        else {
            return Ok(false);
        };
        if winner == sides.winner {
            // Its first entry is on its slow way to the voters: stop it, and take the voters
            // down before the entry arrives (it dies with the connections).
            self.pause(lane, vec![winner]).await?;
            self.kill_voters(lane, &sides).await?;
            // A leader that still leads when it hears the voters takes their term and would
            // ask for the next one: wait for check-quorum to depose it, which keeps its term.
            if !self.await_step_down(&leader, fault_ends, stopped).await {
                return Ok(false);
            }
            self.heal_only(lane, |fault| matches!(fault, ActiveFault::Network { .. }))
                .await?;
            self.partition(lane, sides.second_election()).await?;
            self.restart_voters(lane).await?;
            if !wait_until(Instant::now() + SECOND_ELECTION, fault_ends, stopped).await {
                return Ok(false);
            }
            self.resume_paused(lane).await?;
            if !wait_until(Instant::now() + WINNER_SEEN, fault_ends, stopped).await {
                return Ok(false);
            }
        }
        // Else a voter won before the winner could (its election timeout ended first): the
        // round is spent.
        self.stop(lane).await?;
        Ok(wait_until(Instant::now() + CATCH_UP, fault_ends, stopped).await)
    }

    /// The round's first step: cuts `sides.cut_off` (the leader's side) off from the others;
    /// picks as the winner the one whose log is longest now that no leader reaches them;
    /// slows its links to the voters where links can be slowed (nodes in network namespaces,
    /// or iptables without the proxy, cannot: the round goes on without, and says nothing);
    /// takes the voters down, so that the winner campaigns first. Returns the sides as they
    /// stand.
    pub(super) async fn cut_off_leader(
        &self,
        lane: Lane,
        mut sides: Sides,
    ) -> Result<Sides, NemesisError> {
        self.partition(lane, sides.first_election()).await?;
        let mut log_ends = BTreeMap::new();
        for node in std::iter::once(&sides.winner).chain(&sides.voters) {
            let view = self.cluster.view(node).await;
            log_ends.insert(node.clone(), view.and_then(|view| view.last_log_index));
        }
        sides.longest_log_wins(|node| log_ends.get(node).copied().flatten());
        let how = Degradation {
            latency: WINNER_LATENCY,
            ..Degradation::default()
        };
        if self
            .network
            .degrade(&sides.winner_links(), &how)
            .await
            .is_ok()
        {
            let value = json!({
                "latency_ms": WINNER_LATENCY.as_millis() as u64,
                "from": sides.winner,
                "to": sides.voters,
            });
            self.emit(EventName::StartSlow, value.clone());
            let stop = EventName::StopSlow;
            self.remember(lane, ActiveFault::Network { stop, value });
        }
        self.kill_voters(lane, &sides).await?;
        Ok(sides)
    }

    async fn kill_voters(&self, lane: Lane, sides: &Sides) -> Result<(), NemesisError> {
        let voters = sides.voters.clone();
        self.kill(lane, EventName::Kill, nodes_json(&voters), voters)
            .await
    }

    async fn restart_voters(&self, lane: Lane) -> Result<(), NemesisError> {
        self.heal_only(lane, |fault| matches!(fault, ActiveFault::Down(_)))
            .await
    }

    /// Waits until `node` no longer says it leads; false if the fault or the run ends first.
    async fn await_step_down(
        &self,
        node: &str,
        until: Instant,
        stopped: &mut watch::Receiver<bool>,
    ) -> bool {
        while self.cluster.view(node).await.is_some_and(|view| view.leads) {
            if !wait_until(Instant::now() + LEADER_POLL, until, stopped).await {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<NodeName> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn the_leader_is_cut_off_alone_in_three_nodes_and_with_one_other_in_five() {
        let three = Sides::around("n2", &names(&["n3", "n2", "n1"])).unwrap();
        assert_eq!(three.cut_off, names(&["n2"]));
        assert_eq!(
            (three.winner.as_str(), three.voters),
            ("n3", names(&["n1"]))
        );
        let five = Sides::around("n1", &names(&["n5", "n1", "n4", "n3", "n2"])).unwrap();
        assert_eq!(five.cut_off, names(&["n1", "n5"]));
        assert_eq!(
            (five.winner.as_str(), five.voters),
            ("n4", names(&["n3", "n2"]))
        );
        assert!(Sides::around("n9", &names(&["n1", "n2", "n3"])).is_none());
        assert!(Sides::around("n1", &names(&["n1", "n2"])).is_none());
    }

    #[test]
    fn the_longest_log_wins_and_the_first_of_equals() {
        let mut sides = Sides::around("n1", &names(&["n1", "n2", "n3", "n4", "n5"])).unwrap();
        let ends = [("n3", 7), ("n4", 9), ("n5", 9)];
        sides.longest_log_wins(|node| ends.iter().find(|(n, _)| *n == node).map(|(_, end)| *end));
        assert_eq!(
            (sides.winner.as_str(), sides.voters.clone()),
            ("n4", names(&["n3", "n5"]))
        );
        // Nothing known: the first stays the winner.
        sides.longest_log_wins(|_| None);
        assert_eq!(sides.winner, "n4");
    }

    #[test]
    fn the_voters_switch_sides_between_the_elections_each_won_by_a_majority() {
        let five = Sides::around("n1", &names(&["n1", "n2", "n3", "n4", "n5"])).unwrap();
        let first = five.first_election().to_json();
        assert_eq!(first["n1"], json!(["n3", "n4", "n5"]));
        assert_eq!(first["n3"], json!(["n1", "n2"]));
        let second = five.second_election().to_json();
        assert_eq!(second["n3"], json!(["n1", "n2", "n4", "n5"]));
        assert_eq!(second["n1"], json!(["n3"]));
        // The old leader's side and the voters: four of five, a majority.
        assert_eq!(five.cut_off.len() + five.voters.len(), 4);
        assert_eq!(
            five.winner_links(),
            [("n3", "n4"), ("n3", "n5")].map(|(from, to)| Link {
                from: from.into(),
                to: to.into()
            })
        );
    }
}
