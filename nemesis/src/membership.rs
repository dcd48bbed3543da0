//! Membership changes as the nemesis asks for them: who the members are, the one change it
//! asks of the leader, how the cluster answered, and which change comes next.
//!
//! The round itself (ask, record the answer, retire a removed node) is
//! `nemesis/membership_round.rs`; what a change means inside a node is the node's business
//! (the bundled node goes through a joint configuration for every change of voters).

use serde_json::{Value, json};

use crate::cluster::NodeName;

/// The fewest voters the membership nemesis leaves: fewer survive no failure, and the
/// other faults would only stop the cluster.
pub const MIN_VOTERS: usize = 3;

/// The members of the cluster, as its leader sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// The voters of the configuration in force (of C_new during a change of voters).
    pub voters: Vec<NodeName>,
    /// During a change of voters, the voters of the configuration being left (C_old).
    pub outgoing: Vec<NodeName>,
    /// Members that receive the log but do not vote.
    pub learners: Vec<NodeName>,
    /// Whether a change is still under way (joint, or not committed yet).
    pub pending: bool,
    /// The leader that answered, if it said.
    pub leader: Option<NodeName>,
}

impl Members {
    /// Whether `node` is a member in any role.
    pub fn includes(&self, node: &str) -> bool {
        [&self.voters, &self.outgoing, &self.learners]
            .into_iter()
            .any(|group| group.iter().any(|member| member == node))
    }

    /// The members for the history: `{"voters": [...], "learners": [...]}`, with `outgoing`
    /// during a change of voters.
    pub fn to_json(&self) -> Value {
        let mut value = json!({ "voters": self.voters, "learners": self.learners });
        if !self.outgoing.is_empty() {
            value["outgoing"] = json!(self.outgoing);
        }
        value
    }
}

/// One change of membership, as the nemesis asks the leader for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// Add a node that is not a member as a learner: it receives the log, and does not vote.
    AddLearner(NodeName),
    /// Make a learner a voter (once it caught up, the way a new node should join).
    Promote(NodeName),
    /// Remove a member (the leader too: it steps down once the change commits).
    Remove(NodeName),
    /// Put a node that is not a member in the place of a voter, in one change of voters.
    Replace {
        /// The node that joins, as a voter.
        add: NodeName,
        /// The voter that leaves.
        remove: NodeName,
    },
}

impl MemberChange {
    /// The name of the change in the history: `add-learner`, `promote`, `remove`, `replace`.
    pub fn name(&self) -> &'static str {
        match self {
            MemberChange::AddLearner(_) => "add-learner",
            MemberChange::Promote(_) => "promote",
            MemberChange::Remove(_) => "remove",
            MemberChange::Replace { .. } => "replace",
        }
    }

    /// The node the change is about: the one added, promoted or removed; for a replacement,
    /// the one that joins.
    pub fn node(&self) -> &str {
        match self {
            MemberChange::AddLearner(node)
            | MemberChange::Promote(node)
            | MemberChange::Remove(node)
            | MemberChange::Replace { add: node, .. } => node,
        }
    }

    /// The node that joins the cluster with this change, if one does.
    pub fn joining(&self) -> Option<&str> {
        match self {
            MemberChange::AddLearner(node) | MemberChange::Replace { add: node, .. } => Some(node),
            MemberChange::Promote(_) | MemberChange::Remove(_) => None,
        }
    }

    /// The node that leaves the cluster with this change, if one does.
    pub fn leaving(&self) -> Option<&str> {
        match self {
            MemberChange::Remove(node) | MemberChange::Replace { remove: node, .. } => Some(node),
            MemberChange::AddLearner(_) | MemberChange::Promote(_) => None,
        }
    }

    /// The change for the history: `{"change": "replace", "node": "n4", "replaces": "n1"}`.
    pub fn to_json(&self) -> Value {
        let mut value = json!({ "change": self.name(), "node": self.node() });
        if let MemberChange::Replace { remove, .. } = self {
            value["replaces"] = json!(remove);
        }
        value
    }
}

/// How the cluster answered a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeAnswer {
    /// The change committed; these are the members now.
    Done(Members),
    /// The change did not happen (no leader, another change under way, a change that does
    /// not apply): the reason.
    Refused(String),
    /// It is not known whether the change happened (no answer in time, leadership moved):
    /// it may still complete. The reason.
    Unknown(String),
}

impl ChangeAnswer {
    /// The answer for the history: `{"answer": "ok", "voters": [...], ...}`, or
    /// `{"answer": "refused" | "unknown", "reason": "..."}`.
    pub fn to_json(&self) -> Value {
        match self {
            ChangeAnswer::Done(members) => {
                let mut value = members.to_json();
                value["answer"] = json!("ok");
                value
            }
            ChangeAnswer::Refused(reason) => json!({ "answer": "refused", "reason": reason }),
            ChangeAnswer::Unknown(reason) => json!({ "answer": "unknown", "reason": reason }),
        }
    }
}

/// The change a round asks for, given the members of the moment, every node of the cluster
/// (the spares with them), the fewest voters the cluster may have, and `pick`, the seeded
/// choice. `None` when no change applies (a change is under way, or there is nothing to
/// add and nothing to remove).
///
/// A learner is promoted first: a node joins in two steps, as it should. Otherwise, from
/// `pick`: with an odd number of voters, half the time a node that is not a member replaces
/// a follower in one change of voters (two joining and leaving at once: where a one-step
/// change lets two majorities form; see [`split_for`]), a quarter of the time a node joins
/// as a learner and a quarter of the time a voter leaves; with an even number (where no two
/// majorities of an old and a new configuration can be disjoint), a node joins or a voter
/// leaves, half the time each. A voter that leaves is the leader one time in three
/// (removing the leader is where implementations break). What cannot be done falls back to
/// what can: the cluster never has fewer than `min_voters` voters, nor more than its nodes.
pub fn next_change(
    members: &Members,
    nodes: &[NodeName],
    min_voters: usize,
    pick: u64,
) -> Option<MemberChange> {
    if members.pending {
        return None;
    }
    if let Some(learner) = members.learners.first() {
        return Some(MemberChange::Promote(learner.clone()));
    }
    let outsiders: Vec<&NodeName> = nodes.iter().filter(|n| !members.includes(n)).collect();
    let chosen = (pick / 4) as usize;
    let outsider = (!outsiders.is_empty()).then(|| outsiders[chosen % outsiders.len()].clone());
    let leader = members
        .leader
        .as_ref()
        .filter(|l| members.voters.contains(l));
    let followers: Vec<&NodeName> = members
        .voters
        .iter()
        .filter(|v| Some(*v) != leader)
        .collect();
    let leaving = match leader {
        _ if members.voters.len() <= min_voters => None,
        Some(leader) if chosen.is_multiple_of(3) => Some(leader.clone()),
        _ => Some(members.voters[chosen % members.voters.len()].clone()),
    };
    let replaced = match followers.len() {
        0 => leader.cloned(),
        count => Some(followers[chosen % count].clone()),
    };
    let add = || outsider.clone().map(MemberChange::AddLearner);
    let remove = || leaving.clone().map(MemberChange::Remove);
    let replace = || {
        Some(MemberChange::Replace {
            add: outsider.clone()?,
            remove: replaced.clone()?,
        })
    };
    let odd = !members.voters.len().is_multiple_of(2);
    match pick % 4 {
        0 => add().or_else(remove),
        1 => remove().or_else(add),
        2 if !odd => add().or_else(remove),
        3 if !odd => remove().or_else(add),
        _ => replace().or_else(add).or_else(remove),
    }
}

/// For a replacement of a follower among an odd number of voters, the side to cut off from
/// the rest while it is asked: the leader, the joining node, and as many other voters as
/// make it a majority of the new voters; the rest (the voter leaving among them) are then a
/// majority of the old voters. Two disjoint majorities, one of each configuration: what a
/// one-step change lets both elect and commit, and what joint consensus forbids. `None`
/// otherwise (the leader leaving, or an even number of voters: no such two majorities).
pub fn split_for(change: &MemberChange, members: &Members) -> Option<Vec<NodeName>> {
    let MemberChange::Replace { add, remove } = change else {
        return None;
    };
    let leader = members.leader.as_ref()?;
    let voters = members.voters.len();
    if leader == remove || voters.is_multiple_of(2) || !members.voters.contains(leader) {
        return None;
    }
    let majority = voters / 2 + 1;
    let mut side = vec![leader.clone(), add.clone()];
    let others = members
        .voters
        .iter()
        .filter(|v| *v != leader && *v != remove);
    side.extend(others.take(majority - 2).cloned());
    Some(side)
}

/// Whether `pick` may ask for a replacement (see [`next_change`]: with an odd number of
/// voters, and an outsider to add): such a round runs alone, since it may cut the network
/// (see `FaultPlan::Membership`).
pub fn replaces(pick: u64) -> bool {
    pick % 4 >= 2
}

/// `pick`, made one that [`replaces`] where it can (the rest of it still chooses the nodes).
pub fn replacing(pick: u64) -> u64 {
    pick | 0b10
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<NodeName> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn members(voters: &[&str], learners: &[&str], leader: &str) -> Members {
        Members {
            voters: names(voters),
            learners: names(learners),
            leader: Some(leader.into()),
            ..Members::default()
        }
    }

    const NODES: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];

    fn next(members: &Members, pick: u64) -> Option<MemberChange> {
        next_change(members, &names(&NODES), 3, pick)
    }

    #[test]
    fn a_pick_made_replacing_replaces_a_follower_among_three_voters() {
        let three = members(&["n1", "n2", "n3"], &[], "n1");
        for pick in 0..64 {
            assert!(replaces(replacing(pick)), "{pick}");
            assert!(
                matches!(next(&three, replacing(pick)), Some(MemberChange::Replace { remove, .. }) if remove != "n1"),
                "{pick}"
            );
        }
    }

    #[test]
    fn a_learner_is_promoted_before_anything_else_and_nothing_starts_during_a_change() {
        let joining = members(&["n1", "n2", "n3"], &["n4"], "n1");
        for pick in 0..8 {
            assert_eq!(
                next(&joining, pick),
                Some(MemberChange::Promote("n4".into()))
            );
        }
        let pending = Members {
            pending: true,
            ..members(&["n1", "n2", "n3", "n4"], &[], "n1")
        };
        assert_eq!(next(&pending, 0), None);
    }

    #[test]
    fn the_pick_chooses_between_adding_removing_and_replacing() {
        let four = members(&["n1", "n2", "n3", "n4"], &[], "n2");
        assert_eq!(next(&four, 0), Some(MemberChange::AddLearner("n5".into())));
        assert_eq!(next(&four, 2), Some(MemberChange::AddLearner("n5".into())));
        // Removal: the leader when pick / 4 is a multiple of three, else by position.
        assert_eq!(next(&four, 1), Some(MemberChange::Remove("n2".into())));
        assert_eq!(next(&four, 3), Some(MemberChange::Remove("n2".into())));
        assert_eq!(next(&four, 9), Some(MemberChange::Remove("n3".into())));
        // With an odd number of voters, half the picks replace a follower, by position.
        let three = members(&["n1", "n2", "n3"], &[], "n2");
        for (pick, spare, follower) in [(2, "n4", "n1"), (3, "n4", "n1"), (7, "n5", "n3")] {
            let replaced = MemberChange::Replace {
                add: spare.into(),
                remove: follower.into(),
            };
            assert_eq!(next(&three, pick), Some(replaced), "pick {pick}");
        }
    }

    #[test]
    fn what_cannot_be_done_falls_back_to_what_can() {
        // Three voters, the fewest allowed: a removal becomes an addition.
        let three = members(&["n1", "n2", "n3"], &[], "n1");
        assert_eq!(next(&three, 1), Some(MemberChange::AddLearner("n4".into())));
        // Every node votes: additions and replacements become removals.
        let all = members(&NODES, &[], "n1");
        for pick in [0, 2, 3] {
            assert!(matches!(next(&all, pick), Some(MemberChange::Remove(_))));
        }
        // Nothing to add and nothing to remove.
        let tight = next_change(&three, &names(&["n1", "n2", "n3"]), 3, 0);
        assert_eq!(tight, None);
    }

    #[test]
    fn a_replacement_splits_the_old_and_the_new_voters_majorities_only_where_they_can_be_disjoint()
    {
        let replace = |add: &str, remove: &str| MemberChange::Replace {
            add: add.into(),
            remove: remove.into(),
        };
        let three = members(&["n1", "n2", "n3"], &[], "n1");
        assert_eq!(
            split_for(&replace("n4", "n2"), &three),
            Some(names(&["n1", "n4"]))
        );
        assert_eq!(
            split_for(&replace("n4", "n1"), &three),
            None,
            "the leader leaves"
        );
        let four = members(&["n1", "n2", "n3", "n5"], &[], "n1");
        assert_eq!(split_for(&replace("n4", "n2"), &four), None, "even");
        let five = members(&["n1", "n2", "n3", "n4", "n5"], &[], "n2");
        let side = split_for(&replace("n6", "n5"), &five).unwrap();
        assert_eq!(side, names(&["n2", "n6", "n1"]));
        // Three of the five new voters on the side; three of the five old ones off it.
        let old_off: Vec<_> = five.voters.iter().filter(|v| !side.contains(v)).collect();
        assert_eq!(old_off, ["n3", "n4", "n5"]);
        assert_eq!(split_for(&MemberChange::Remove("n2".into()), &three), None);
    }

    #[test]
    fn changes_and_answers_read_in_the_history() {
        let replace = MemberChange::Replace {
            add: "n4".into(),
            remove: "n1".into(),
        };
        assert_eq!(
            replace.to_json(),
            json!({"change": "replace", "node": "n4", "replaces": "n1"})
        );
        assert_eq!(replace.leaving(), Some("n1"));
        assert_eq!(MemberChange::Promote("n4".into()).leaving(), None);
        let done = ChangeAnswer::Done(members(&["n2", "n3", "n4"], &[], "n2"));
        assert_eq!(
            done.to_json(),
            json!({"answer": "ok", "voters": ["n2", "n3", "n4"], "learners": []})
        );
        let unknown = ChangeAnswer::Unknown("no answer in 6 s".into()).to_json();
        assert_eq!(unknown["answer"], "unknown");
        assert!(members(&["n1"], &["n4"], "n1").includes("n4"));
        assert!(!members(&["n1"], &["n4"], "n1").includes("n5"));
    }
}
