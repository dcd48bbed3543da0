//! Who takes part in the cluster, and the quorum rules that follow (Raft thesis §4.3,
//! joint consensus).
//!
//! A configuration lives in the log as an entry and takes effect on every node as soon as it
//! is appended, committed or not; a snapshot carries the one in force at its index. A change
//! of voters goes through a joint configuration C_old,new, in which every decision (an
//! election, a commit, a ReadIndex round, check-quorum) needs a majority of C_old and a
//! majority of C_new, and then, once that is committed, to C_new alone. No moment exists in
//! which a majority of C_old and a disjoint majority of C_new can each decide on their own,
//! which a one-step switch allows (the `membership-one-step` bug).
//!
//! Learners receive the log but neither vote nor count: a new node catches up as one before
//! it is promoted, so that the cluster does not wait on it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Index, NodeId};

/// The members of the cluster at one point of the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    /// The voters of the configuration in force, or during a joint configuration those of
    /// the one being moved to (C_new).
    pub voters: BTreeSet<NodeId>,
    /// During a joint configuration, the voters of the one being left (C_old); empty
    /// otherwise.
    pub outgoing: BTreeSet<NodeId>,
    /// Members that are sent the log but do not vote.
    pub learners: BTreeSet<NodeId>,
}

/// One change an operator asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// Add a node that gets the log but does not vote (yet).
    AddLearner(NodeId),
    /// Add a node as a voter, or promote a learner.
    AddVoter(NodeId),
    /// Remove a voter or a learner.
    Remove(NodeId),
    /// Replace voter `remove` by `add` (a learner, usually, that has caught up) in one change:
    /// the voter count stays, and so does the fault tolerance throughout.
    Replace { remove: NodeId, add: NodeId },
}

/// Why a change cannot be made to a membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("node {0} is already a voter")]
    AlreadyVoter(NodeId),
    #[error("node {0} is already a learner")]
    AlreadyLearner(NodeId),
    #[error("node {0} is not a member")]
    NotAMember(NodeId),
    #[error("node {0} is the last voter; a cluster needs at least one")]
    LastVoter(NodeId),
    #[error("node id 0 is reserved")]
    ZeroId,
    #[error("node {0} is not a voter")]
    NotAVoter(NodeId),
    #[error("node {0} cannot replace itself")]
    SameNode(NodeId),
}

/// Where a campaign stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum VoteResult {
    Won,
    Lost,
    Pending,
}

impl Membership {
    /// A plain configuration of `voters`, with no learners.
    pub fn of_voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership {
            voters: voters.into_iter().collect(),
            ..Membership::default()
        }
    }

    /// Whether this is a joint configuration (C_old,new).
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Whether `id` votes: it is a voter of either half of a joint configuration.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    /// Whether `id` is a member in any role.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.learners.contains(&id)
    }

    /// Every member, in id order.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut all = self.voters.clone();
        all.extend(&self.outgoing);
        all.extend(&self.learners);
        all
    }

    /// Every voter of either half, in id order.
    pub fn all_voters(&self) -> BTreeSet<NodeId> {
        self.voters.union(&self.outgoing).copied().collect()
    }

    /// The voter sets that must each agree: C_new, and during a joint configuration C_old.
    fn majorities(&self) -> impl Iterator<Item = &BTreeSet<NodeId>> {
        std::iter::once(&self.voters).chain(self.is_joint().then_some(&self.outgoing))
    }

    /// Whether the nodes for which `yes` holds make a majority of every voter set.
    pub fn has_quorum(&self, yes: impl Fn(NodeId) -> bool) -> bool {
        self.majorities().all(|set| {
            let agreeing = set.iter().filter(|&&id| yes(id)).count();
            !set.is_empty() && agreeing > set.len() / 2
        })
    }

    /// The highest value that a majority of every voter set has reached, given each voter's
    /// value (`value_of`); 0 when a set is empty. Commit indexes and ReadIndex rounds.
    pub fn quorum_value(&self, value_of: impl Fn(NodeId) -> u64) -> u64 {
        self.majorities()
            .map(|set| {
                let mut values: Vec<u64> = set.iter().map(|&id| value_of(id)).collect();
                if values.is_empty() {
                    return 0;
                }
                values.sort_unstable_by(|a, b| b.cmp(a));
                values[values.len() / 2]
            })
            .min()
            .unwrap_or(0)
    }

    /// The result of an election from the answers so far: won once a majority of every
    /// voter set granted, lost once some set can no longer give one.
    pub(super) fn vote_result(&self, answers: &BTreeMap<NodeId, bool>) -> VoteResult {
        let mut result = VoteResult::Won;
        for set in self.majorities() {
            let granted = set
                .iter()
                .filter(|id| answers.get(id) == Some(&true))
                .count();
            let refused = set
                .iter()
                .filter(|id| answers.get(id) == Some(&false))
                .count();
            let majority = set.len() / 2 + 1;
            if set.is_empty() || refused > set.len() - majority {
                return VoteResult::Lost;
            }
            if granted < majority {
                result = VoteResult::Pending;
            }
        }
        result
    }

    /// The configuration `change` asks for, starting from this one (which must not be
    /// joint): what C_new will be.
    pub fn target(&self, change: MembershipChange) -> Result<Membership, MembershipError> {
        debug_assert!(
            !self.is_joint(),
            "a change starts from a plain configuration"
        );
        let mut target = self.clone();
        match change {
            MembershipChange::AddLearner(0)
            | MembershipChange::AddVoter(0)
            | MembershipChange::Remove(0)
            | MembershipChange::Replace { remove: 0, .. }
            | MembershipChange::Replace { add: 0, .. } => return Err(MembershipError::ZeroId),
            MembershipChange::AddLearner(id) => {
                if self.voters.contains(&id) {
                    return Err(MembershipError::AlreadyVoter(id));
                }
                if !target.learners.insert(id) {
                    return Err(MembershipError::AlreadyLearner(id));
                }
            }
            MembershipChange::AddVoter(id) => {
                if !target.voters.insert(id) {
                    return Err(MembershipError::AlreadyVoter(id));
                }
                target.learners.remove(&id);
            }
            MembershipChange::Remove(id) => {
                if !self.contains(id) {
                    return Err(MembershipError::NotAMember(id));
                }
                if self.voters.len() == 1 && self.voters.contains(&id) {
                    return Err(MembershipError::LastVoter(id));
                }
                target.voters.remove(&id);
                target.learners.remove(&id);
            }
            MembershipChange::Replace { remove, add } => {
                if remove == add {
                    return Err(MembershipError::SameNode(add));
                }
                if !target.voters.remove(&remove) {
                    return Err(MembershipError::NotAVoter(remove));
                }
                if !target.voters.insert(add) {
                    return Err(MembershipError::AlreadyVoter(add));
                }
                target.learners.remove(&add);
            }
        }
        Ok(target)
    }

    /// The configuration to append to move from this one to `target`: the joint one when the
    /// voters change (C_old,new), or `target` itself when only learners do.
    pub fn step_towards(&self, target: Membership) -> Membership {
        if target.voters == self.voters {
            return target;
        }
        Membership {
            outgoing: self.voters.clone(),
            ..target
        }
    }

    /// The joint configuration's destination, C_new: the same without C_old.
    pub fn leave_joint(&self) -> Membership {
        Membership {
            outgoing: BTreeSet::new(),
            ..self.clone()
        }
    }
}

/// The configurations a log holds, with the one in force before them: the node's view of
/// membership at every index it still knows.
#[derive(Clone, Debug)]
pub(super) struct MembershipLog {
    /// The configuration in force at and before the first entry tracked (the snapshot's, or
    /// the initial one).
    base: Membership,
    /// Each configuration entry still in the log, by index, in order.
    changes: Vec<(Index, Membership)>,
}

impl MembershipLog {
    pub fn new(base: Membership) -> MembershipLog {
        MembershipLog {
            base,
            changes: Vec::new(),
        }
    }

    /// The configuration in force: the last one appended.
    pub fn current(&self) -> &Membership {
        self.changes
            .last()
            .map_or(&self.base, |(_, membership)| membership)
    }

    /// The index of the last configuration entry, if the log still holds one.
    pub fn last_change_index(&self) -> Option<Index> {
        self.changes.last().map(|&(index, _)| index)
    }

    /// The configuration in force at `index` (the last one at or before it).
    pub fn at(&self, index: Index) -> &Membership {
        self.changes
            .iter()
            .rev()
            .find(|(at, _)| *at <= index)
            .map_or(&self.base, |(_, membership)| membership)
    }

    /// A configuration entry was appended at `index`.
    pub fn appended(&mut self, index: Index, membership: Membership) {
        debug_assert!(self.last_change_index().is_none_or(|last| last < index));
        self.changes.push((index, membership));
    }

    /// Entries from `index` on were removed: their configurations no longer apply.
    pub fn truncated_from(&mut self, index: Index) {
        self.changes.retain(|&(at, _)| at < index);
    }

    /// The log up to `index` became a snapshot whose configuration is the one in force there.
    pub fn compacted_through(&mut self, index: Index) {
        self.base = self.at(index).clone();
        self.changes.retain(|&(at, _)| at > index);
    }

    /// The whole log was replaced by a snapshot carrying `membership`.
    pub fn restored(&mut self, membership: Membership) {
        self.base = membership;
        self.changes.clear();
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    fn joint(new: &[NodeId], old: &[NodeId]) -> Membership {
        Membership {
            voters: set(new),
            outgoing: set(old),
            learners: BTreeSet::new(),
        }
    }

    #[test]
    fn a_plain_quorum_is_a_strict_majority_of_its_voters() {
        let three = Membership::of_voters([1, 2, 3]);
        assert!(three.has_quorum(|id| id <= 2));
        assert!(!three.has_quorum(|id| id == 1));
        let four = Membership::of_voters([1, 2, 3, 4]);
        assert!(!four.has_quorum(|id| id <= 2));
        assert!(four.has_quorum(|id| id <= 3));
        assert!(!Membership::default().has_quorum(|_| true));
    }

    #[test]
    fn a_joint_quorum_needs_a_majority_of_both_halves() {
        // C_old = {1,2,3}, C_new = {3,4,5}.
        let joint = joint(&[3, 4, 5], &[1, 2, 3]);
        assert!(!joint.has_quorum(|id| [1, 2].contains(&id)), "old only");
        assert!(!joint.has_quorum(|id| [4, 5].contains(&id)), "new only");
        assert!(
            !joint.has_quorum(|id| [1, 4, 5].contains(&id)),
            "C_old has one of three"
        );
        assert!(joint.has_quorum(|id| [2, 3, 4].contains(&id)));
        assert!(joint.has_quorum(|id| [1, 2, 4, 5].contains(&id)));
    }

    #[test]
    fn the_quorum_value_is_the_least_that_every_half_has_a_majority_for() {
        let matched = |id: NodeId| [0, 10, 9, 8, 3, 2][id as usize];
        assert_eq!(Membership::of_voters([1, 2, 3]).quorum_value(matched), 9);
        // C_old {1,2,3} holds 9 on a majority; C_new {3,4,5} only 3.
        assert_eq!(joint(&[3, 4, 5], &[1, 2, 3]).quorum_value(matched), 3);
        assert_eq!(Membership::default().quorum_value(matched), 0);
    }

    #[test]
    fn an_election_is_lost_once_either_half_refuses_a_majority() {
        let joint = joint(&[3, 4, 5], &[1, 2, 3]);
        let answers = |pairs: &[(NodeId, bool)]| pairs.iter().copied().collect();
        assert_eq!(
            joint.vote_result(&answers(&[(1, true)])),
            VoteResult::Pending
        );
        assert_eq!(
            joint.vote_result(&answers(&[(1, true), (2, true), (3, true)])),
            VoteResult::Pending,
            "C_new has one vote of three"
        );
        assert_eq!(
            joint.vote_result(&answers(&[(1, true), (3, true), (4, true)])),
            VoteResult::Won
        );
        assert_eq!(
            joint.vote_result(&answers(&[(1, true), (4, false), (5, false)])),
            VoteResult::Lost
        );
        // A learner's answer counts for nothing.
        let with_learner = Membership {
            learners: set(&[9]),
            ..Membership::of_voters([1, 2, 3])
        };
        assert_eq!(
            with_learner.vote_result(&answers(&[(1, true), (9, true)])),
            VoteResult::Pending
        );
    }

    #[test]
    fn changes_of_voters_go_through_a_joint_configuration_and_of_learners_do_not() {
        let start = Membership::of_voters([1, 2, 3]);
        let with_learner = start.target(MembershipChange::AddLearner(4)).unwrap();
        assert_eq!(start.step_towards(with_learner.clone()), with_learner);
        let promoted = with_learner.target(MembershipChange::AddVoter(4)).unwrap();
        assert_eq!(promoted, Membership::of_voters([1, 2, 3, 4]));
        let step = with_learner.step_towards(promoted.clone());
        assert_eq!(step, joint(&[1, 2, 3, 4], &[1, 2, 3]));
        assert_eq!(step.leave_joint(), promoted);
        let removed = promoted.target(MembershipChange::Remove(1)).unwrap();
        assert_eq!(removed, Membership::of_voters([2, 3, 4]));
        // A replacement keeps the count, and its C_old and C_new majorities can be disjoint
        // ({1,3} and {2,5}): only the joint step keeps them from deciding apart.
        let replaced = removed
            .target(MembershipChange::Replace { remove: 4, add: 5 })
            .unwrap();
        assert_eq!(replaced, Membership::of_voters([2, 3, 5]));
        assert_eq!(
            removed.step_towards(replaced),
            joint(&[2, 3, 5], &[2, 3, 4])
        );
    }

    #[test]
    fn changes_that_make_no_sense_are_refused() {
        let start = Membership {
            learners: set(&[4]),
            ..Membership::of_voters([1, 2, 3])
        };
        use MembershipChange::*;
        assert_eq!(
            start.target(AddVoter(2)),
            Err(MembershipError::AlreadyVoter(2))
        );
        assert_eq!(
            start.target(AddLearner(2)),
            Err(MembershipError::AlreadyVoter(2))
        );
        assert_eq!(
            start.target(AddLearner(4)),
            Err(MembershipError::AlreadyLearner(4))
        );
        assert_eq!(start.target(Remove(7)), Err(MembershipError::NotAMember(7)));
        assert_eq!(start.target(AddVoter(0)), Err(MembershipError::ZeroId));
        assert_eq!(
            Membership::of_voters([1]).target(Remove(1)),
            Err(MembershipError::LastVoter(1))
        );
        let replace = |remove, add| start.target(Replace { remove, add });
        assert_eq!(replace(4, 5), Err(MembershipError::NotAVoter(4)));
        assert_eq!(replace(1, 2), Err(MembershipError::AlreadyVoter(2)));
        assert_eq!(replace(1, 1), Err(MembershipError::SameNode(1)));
        assert_eq!(replace(1, 4), Ok(Membership::of_voters([2, 3, 4])));
    }

    #[test]
    fn the_membership_log_follows_appends_truncations_and_snapshots() {
        let mut log = MembershipLog::new(Membership::of_voters([1, 2, 3]));
        let joint = joint(&[1, 2, 3, 4], &[1, 2, 3]);
        log.appended(5, joint.clone());
        log.appended(7, joint.leave_joint());
        assert_eq!(log.current(), &joint.leave_joint());
        assert_eq!(log.at(6), &joint);
        assert_eq!(log.at(4), &Membership::of_voters([1, 2, 3]));
        log.truncated_from(7);
        assert_eq!(log.current(), &joint);
        log.compacted_through(6);
        assert_eq!(log.current(), &joint);
        assert_eq!(log.last_change_index(), None);
        log.restored(Membership::of_voters([9]));
        assert_eq!(log.at(100), &Membership::of_voters([9]));
    }

    /// Any two quorums of one configuration (plain or joint) share a voter of each half:
    /// the property every safety argument of Raft rests on.
    fn any_membership() -> impl Strategy<Value = Membership> {
        (
            prop::collection::btree_set(1u64..8, 1..6),
            prop::collection::btree_set(1u64..8, 0..6),
        )
            .prop_map(|(voters, outgoing)| Membership {
                voters,
                outgoing,
                learners: BTreeSet::new(),
            })
    }

    proptest! {
        #[test]
        fn two_quorums_of_one_configuration_always_intersect(
            membership in any_membership(),
            a in prop::collection::btree_set(1u64..8, 0..8),
            b in prop::collection::btree_set(1u64..8, 0..8),
        ) {
            let (qa, qb) = (
                membership.has_quorum(|id| a.contains(&id)),
                membership.has_quorum(|id| b.contains(&id)),
            );
            if qa && qb {
                for half in membership.majorities() {
                    prop_assert!(half.iter().any(|id| a.contains(id) && b.contains(id)));
                }
            }
        }

        #[test]
        fn the_quorum_value_is_held_by_a_quorum_and_nothing_higher_is(
            membership in any_membership(),
            values in prop::collection::vec(0u64..20, 8),
        ) {
            let value = membership.quorum_value(|id| values[id as usize]);
            prop_assert!(membership.has_quorum(|id| values[id as usize] >= value));
            prop_assert!(!membership.has_quorum(|id| values[id as usize] > value));
        }
    }
}
