//! The membership nemesis's round: ask the leader who the members are, retire the nodes
//! that left since the last look, ask for the next change (enlisting a retired node first if
//! it is to join again; for a replacement of a follower among an odd number of voters,
//! cutting the old voters' majority off from the new voters' first, see
//! [`split_for`](crate::split_for)), record the change and its answer, and retire the node
//! it removed.
//! See [`FaultPlan::Membership`](crate::FaultPlan::Membership).

use std::collections::BTreeSet;

use super::{Nemesis, NemesisError, nodes_json};
use crate::cluster::{Cluster, NodeName};
use crate::event::EventName;
use crate::grudge::Grudge;
use crate::kind::Lane;
use crate::membership::{ChangeAnswer, MIN_VOTERS, Members, next_change, split_for};
use crate::partition::Degrader;

impl<C: Cluster, P: Degrader> Nemesis<C, P> {
    /// One round, the change chosen by `pick`: whether it asked for one. A round that finds
    /// no leader, or a change still under way, asks for nothing.
    pub(super) async fn change_membership(&self, pick: u64) -> Result<bool, NemesisError> {
        let Some(members) = self.cluster.members().await else {
            return Ok(false);
        };
        self.retire_leavers(&members).await?;
        let nodes = self.cluster.nodes();
        let Some(change) = next_change(&members, &nodes, MIN_VOTERS, pick) else {
            return Ok(false);
        };
        if let Some(joining) = change.joining() {
            self.enlist(joining).await?;
        }
        let split = split_for(&change, &members);
        if let Some(side) = &split {
            // Healed at the fault's end.
            let rest: Vec<NodeName> = nodes
                .iter()
                .filter(|n| !side.contains(n))
                .cloned()
                .collect();
            self.partition(Lane::Membership, Grudge::complete(&[side, &rest]))
                .await?;
        }
        let mut value = change.to_json();
        self.emit(EventName::ChangeMembers, value.clone());
        let answer = self.cluster.change_members(&change).await;
        if let (Some(into), Some(answer)) = (value.as_object_mut(), answer.to_json().as_object()) {
            into.extend(answer.clone());
        }
        self.emit(EventName::MembersChanged, value);
        // The node that left a split replacement stays up until the next round: it is half
        // of the old voters' side, which it must be free to lead or follow.
        if let ChangeAnswer::Done(now) = &answer
            && split.is_none()
        {
            self.retire_leavers(now).await?;
        }
        Ok(true)
    }

    /// Retires the nodes that were members at the last look and are not in `members`
    /// (a removal that committed after its answer was unknown is noticed a round later).
    async fn retire_leavers(&self, members: &Members) -> Result<(), NemesisError> {
        let now: BTreeSet<NodeName> = (self.cluster.nodes().into_iter())
            .filter(|node| members.includes(node))
            .collect();
        let before = self.members_seen().replace(now.clone());
        // A retired node is a member of neither look: each leaver is retired once.
        let leavers: Vec<NodeName> = before
            .unwrap_or_default()
            .difference(&now)
            .cloned()
            .collect();
        if leavers.is_empty() {
            return Ok(());
        }
        self.emit(EventName::Retire, nodes_json(&leavers));
        for node in leavers {
            self.cluster
                .retire(&node)
                .await
                .map_err(|source| NemesisError::Cluster {
                    action: "retire",
                    node: node.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Starts `node` again if it was retired, to join again.
    async fn enlist(&self, node: &str) -> Result<(), NemesisError> {
        let enlisted = self
            .cluster
            .enlist(node)
            .await
            .map_err(|source| NemesisError::Cluster {
                action: "enlist",
                node: node.to_owned(),
                source,
            })?;
        if !enlisted {
            return Ok(());
        }
        self.note_return(&[node.to_owned()]);
        self.emit(EventName::Enlist, nodes_json(&[node.to_owned()]));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::fake::{FakeCluster, FakeNetwork, Journal, recorder};
    use crate::{Event, Nemesis};

    struct Setup {
        cluster: Arc<FakeCluster>,
        nemesis: Nemesis<FakeCluster, FakeNetwork>,
        events: Arc<std::sync::Mutex<Vec<Event>>>,
    }

    /// Five nodes, of which n1..n3 vote and n1 leads.
    fn setup() -> Setup {
        let journal = Journal::default();
        let cluster = Arc::new(FakeCluster::new(5, &journal));
        cluster.set_members(&["n1", "n2", "n3"], &[]);
        cluster.set_leader(Some("n1"));
        let network = Arc::new(FakeNetwork::new(&journal));
        let (events, sink) = recorder(&journal);
        let nemesis = Nemesis::new(cluster.clone(), network, sink);
        Setup {
            cluster,
            nemesis,
            events,
        }
    }

    fn events(setup: &Setup) -> Vec<(String, serde_json::Value)> {
        let events = setup.events.lock().unwrap();
        events
            .iter()
            .map(|event| (event.f.to_string(), event.value.clone()))
            .collect()
    }

    #[tokio::test]
    async fn a_spare_joins_as_a_learner_then_is_promoted_and_each_answer_is_recorded() {
        let setup = setup();
        setup.nemesis.change_membership(0).await.unwrap();
        setup.nemesis.change_membership(0).await.unwrap();
        let members = setup.cluster.members_now().unwrap();
        assert_eq!(members.voters, ["n1", "n2", "n3", "n4"]);
        assert_eq!(
            events(&setup),
            [
                (
                    "change-members".into(),
                    json!({"change": "add-learner", "node": "n4"})
                ),
                (
                    "members-changed".into(),
                    json!({"change": "add-learner", "node": "n4", "answer": "ok",
                        "voters": ["n1", "n2", "n3"], "learners": ["n4"]})
                ),
                (
                    "change-members".into(),
                    json!({"change": "promote", "node": "n4"})
                ),
                (
                    "members-changed".into(),
                    json!({"change": "promote", "node": "n4", "answer": "ok",
                        "voters": ["n1", "n2", "n3", "n4"], "learners": []})
                ),
            ]
        );
    }

    #[tokio::test]
    async fn a_removed_node_is_retired_and_enlisted_again_before_it_rejoins() {
        let setup = setup();
        setup.cluster.set_members(&["n1", "n2", "n3", "n4"], &[]);
        // pick 1 + 4k removes; k = 1 removes by position: n2.
        setup.nemesis.change_membership(5).await.unwrap();
        assert_eq!(
            setup.cluster.members_now().unwrap().voters,
            ["n1", "n3", "n4"]
        );
        assert_eq!(setup.cluster.retired(), BTreeSet::from(["n2".to_string()]));
        let names: Vec<String> = events(&setup).into_iter().map(|(f, _)| f).collect();
        assert_eq!(names, ["change-members", "members-changed", "retire"]);
        // Kills and restarts of the other lanes leave it down.
        setup.cluster.kill("n2").await.unwrap();
        setup.cluster.restart("n2").await.unwrap();
        assert!(setup.cluster.dead().contains("n2"));
        // The next additions: n5 (the only spare that never joined), then n2, enlisted first.
        setup.nemesis.change_membership(0).await.unwrap();
        setup.nemesis.change_membership(0).await.unwrap();
        setup.nemesis.change_membership(0).await.unwrap();
        let events = events(&setup);
        let enlist = events.iter().position(|(f, _)| f == "enlist").unwrap();
        assert_eq!(events[enlist].1, json!(["n2"]));
        assert_eq!(
            events[enlist + 1].1,
            json!({"change": "add-learner", "node": "n2"})
        );
        assert!(setup.cluster.retired().is_empty());
        assert!(!setup.cluster.dead().contains("n2"));
    }

    #[tokio::test]
    async fn a_follower_is_replaced_while_the_leader_and_the_joining_node_are_cut_off() {
        let setup = setup();
        // pick 3 + 4k replaces; k = 0 takes the first of each: spare n4 for follower n2.
        setup.nemesis.change_membership(3).await.unwrap();
        let seen = events(&setup);
        let names: Vec<&str> = seen.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            names,
            ["start-partition", "change-members", "members-changed"]
        );
        assert_eq!(
            seen[0].1,
            json!({"n1": ["n2", "n3", "n5"], "n4": ["n2", "n3", "n5"],
                "n2": ["n1", "n4"], "n3": ["n1", "n4"], "n5": ["n1", "n4"]})
        );
        assert_eq!(
            seen[1].1,
            json!({"change": "replace", "node": "n4", "replaces": "n2"})
        );
        // The node that left stays up (its side may elect) until the next round retires it.
        assert!(setup.cluster.retired().is_empty());
        setup.nemesis.stop(Lane::Membership).await.unwrap();
        assert_eq!(events(&setup).last().unwrap().0, "stop-partition");
        setup.nemesis.change_membership(0).await.unwrap();
        let retired = ("retire".to_string(), json!(["n2"]));
        assert_eq!(events(&setup)[4], retired);
        // Among four voters a replacement cuts nothing: no two majorities can be disjoint.
        let setup = self::setup();
        setup.cluster.set_members(&["n1", "n2", "n3", "n4"], &[]);
        setup.nemesis.change_membership(3).await.unwrap();
        let names: Vec<String> = events(&setup).into_iter().map(|(f, _)| f).collect();
        assert_eq!(names, ["change-members", "members-changed", "retire"]);
    }

    #[tokio::test]
    async fn a_refused_or_unknown_change_retires_no_one_until_the_members_show_it() {
        let setup = setup();
        setup.cluster.set_members(&["n1", "n2", "n3", "n4"], &[]);
        setup.nemesis.change_membership(0).await.unwrap();
        setup
            .cluster
            .answer_next_change(ChangeAnswer::Unknown("no answer within 6 s".into()));
        setup.nemesis.change_membership(6).await.unwrap();
        let last = events(&setup).pop().unwrap();
        assert_eq!(
            last.1,
            json!({"change": "promote", "node": "n5", "answer": "unknown",
                "reason": "no answer within 6 s"})
        );
        assert!(setup.cluster.retired().is_empty());
        // The members now show n2 gone (its removal committed after all): retired.
        setup.cluster.set_members(&["n1", "n3", "n4"], &["n5"]);
        setup.nemesis.change_membership(0).await.unwrap();
        assert_eq!(setup.cluster.retired(), BTreeSet::from(["n2".to_string()]));
    }

    #[tokio::test]
    async fn a_cluster_that_cannot_tell_its_members_or_is_changing_them_is_left_alone() {
        let journal = Journal::default();
        let cluster = Arc::new(FakeCluster::new(5, &journal));
        let (seen, sink) = recorder(&journal);
        let network = Arc::new(FakeNetwork::new(&journal));
        let nemesis = Nemesis::new(cluster.clone(), network, sink);
        nemesis.change_membership(0).await.unwrap();
        assert!(seen.lock().unwrap().is_empty());
        let setup = setup();
        setup.cluster.set_members(&["n1", "n2", "n3"], &["n4"]);
        setup.nemesis.change_membership(0).await.unwrap();
        setup
            .cluster
            .answer_next_change(ChangeAnswer::Refused("a change is in progress".into()));
        setup.nemesis.change_membership(0).await.unwrap();
        let last = events(&setup).pop().unwrap().1;
        assert_eq!(last["answer"], "refused");
        assert_eq!(last["reason"], "a change is in progress");
    }
}
