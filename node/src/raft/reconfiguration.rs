//! Membership changes as the leader drives them (Raft thesis §4.3): one change at a time,
//! through the joint configuration C_old,new when the voters change, then C_new, appended by
//! the leader as soon as C_old,new commits; a leader that is not a voter of C_new steps down
//! once C_new commits. The configurations and their quorum rules are in `membership.rs`.

use super::progress::Progress;
use super::{Entry, Index, Membership, MembershipChange, Payload, ProposeError, Raft, Term};

impl Raft {
    /// Proposes a membership change (thesis §4.3). A change of voters appends the joint
    /// configuration C_old,new; once that commits, the leader appends C_new by itself, and
    /// the change is complete when C_new commits (see [`Raft::membership_change_pending`]).
    /// A change of learners alone appends its configuration at once. Returns where the first
    /// configuration entry is. Refused, with nothing appended, on a node that does not lead,
    /// during a transfer, while another change is pending, before the leader has committed
    /// an entry of its term, and for a change that does not apply.
    pub fn propose_membership(
        &mut self,
        change: MembershipChange,
    ) -> Result<(Index, Term), ProposeError> {
        self.takes_proposals()?;
        if self.membership_change_pending() {
            return Err(ProposeError::MembershipChangeInProgress);
        }
        if self.log.term(self.log.committed()) != Some(self.term) {
            return Err(ProposeError::LeaderNotReady);
        }
        let current = self.log.membership().clone();
        let target = current.target(change)?;
        // The `membership-one-step` bug switches to C_new at once: for a while a majority of
        // C_old and a disjoint majority of C_new can each elect a leader or commit.
        let next = if self.config.bugs.membership_one_step {
            target
        } else {
            current.step_towards(target)
        };
        Ok((self.append_membership(next), self.term))
    }

    /// Whether a membership change is under way: the configuration in force is joint, or
    /// not committed yet.
    pub fn membership_change_pending(&self) -> bool {
        self.log.membership().is_joint()
            || self
                .log
                .last_membership_index()
                .is_some_and(|index| index > self.log.committed())
    }

    /// The configuration in force on this node (the last one in its log, committed or not).
    pub fn membership(&self) -> &Membership {
        self.log.membership()
    }

    /// The configuration in force at `index` (the last one at or before it).
    pub fn membership_at(&self, index: Index) -> &Membership {
        self.log.membership_at(index)
    }

    /// Appends a configuration entry as leader; it is in force at once. Returns its index.
    /// A lease ends with it: the rounds that confirmed it counted the configuration before.
    pub(super) fn append_membership(&mut self, membership: Membership) -> Index {
        self.lease_until = 0;
        let index = self.log.last_index() + 1;
        self.log.append(Entry {
            term: self.term,
            index,
            payload: Payload::Membership(membership),
        });
        self.sync_peers();
        index
    }

    /// Keeps one [`Progress`] per other member of the configuration in force: a new member
    /// is probed at once with the last entry (the configuration that added it), a departed
    /// one forgotten.
    pub(super) fn sync_peers(&mut self) {
        let members = self.log.membership().members();
        let own = self.config.id;
        self.peers.retain(|progress| members.contains(&progress.id));
        let last_index = self.log.last_index();
        for id in members {
            if id != own && !self.peers.iter().any(|progress| progress.id == id) {
                let mut progress = Progress::new(id, self.config.max_inflight);
                progress.reset(last_index.saturating_sub(1));
                self.peers.push(progress);
            }
        }
        self.peers.sort_by_key(|progress| progress.id);
    }

    /// Moves a membership change on once its configuration has committed: from a joint
    /// configuration to C_new; from a C_new this leader is not a voter of, to stepping down
    /// (thesis §4.2.2: until then it managed the cluster without counting itself).
    pub(super) fn membership_committed(&mut self) {
        if self
            .log
            .last_membership_index()
            .is_some_and(|index| index > self.log.committed())
        {
            return;
        }
        let membership = self.log.membership();
        if membership.is_joint() {
            let new = membership.leave_joint();
            self.append_membership(new);
        } else if !membership.is_voter(self.config.id) {
            self.become_follower(self.term, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::bugs::{Bug, Bugs};
    use crate::raft::testing::{Cluster, elect, entry, message, plain_config, recovered};
    use crate::raft::{Config, MembershipError, MessageBody, NotLeader, Role};

    use MembershipChange::{AddLearner, AddVoter, Remove};

    /// Three voters led by node 1, which has committed its no-op.
    fn three_led_by_1() -> Cluster {
        let mut cluster = Cluster::new(3, |_| {});
        cluster.elect(1);
        assert_eq!(cluster.leaders(), [1]);
        cluster
    }

    /// Every node's configuration, by node.
    fn memberships(cluster: &Cluster) -> Vec<(NodeId, Membership)> {
        cluster
            .nodes
            .iter()
            .map(|(&id, raft)| (id, raft.membership().clone()))
            .collect()
    }

    fn voters(ids: &[NodeId]) -> Membership {
        Membership::of_voters(ids.iter().copied())
    }

    use crate::raft::NodeId;

    #[test]
    fn a_learner_catches_up_and_never_campaigns_then_a_promotion_goes_through_joint_consensus() {
        let mut cluster = three_led_by_1();
        cluster.join(4);
        let (at, _) = cluster.node(1).propose_membership(AddLearner(4)).unwrap();
        cluster.settle();
        let with_learner = Membership {
            learners: [4].into(),
            ..voters(&[1, 2, 3])
        };
        assert!(cluster.node(1).log.committed() >= at);
        assert!(!cluster.node(1).membership_change_pending());
        for (id, membership) in memberships(&cluster) {
            assert_eq!(membership, with_learner, "node {id}");
        }
        assert_eq!(
            cluster.node(4).log.last_index(),
            cluster.node(1).log.last_index(),
            "the learner holds the whole log"
        );
        // Cut off from the leader, a learner waits: it never campaigns.
        cluster.isolate(4);
        cluster.tick_all(200);
        assert_eq!(cluster.node(4).role, Role::Follower);
        assert_eq!(cluster.node(4).elections, 0);
        cluster.heal();

        let (joint_at, _) = cluster.node(1).propose_membership(AddVoter(4)).unwrap();
        assert_eq!(
            cluster.node(1).membership(),
            &Membership {
                voters: [1, 2, 3, 4].into(),
                outgoing: [1, 2, 3].into(),
                learners: Default::default(),
            }
        );
        assert!(cluster.node(1).membership_change_pending());
        cluster.settle();
        // The joint configuration committed, the leader appended C_new, and it committed.
        let leader = cluster.node(1);
        assert!(leader.log.last_membership_index() > Some(joint_at));
        assert!(!leader.membership_change_pending());
        for (id, membership) in memberships(&cluster) {
            assert_eq!(membership, voters(&[1, 2, 3, 4]), "node {id}");
        }
    }

    #[test]
    fn a_joint_configuration_commits_only_with_a_majority_of_both_halves() {
        let mut cluster = three_led_by_1();
        cluster.join(4);
        cluster.node(1).propose_membership(AddLearner(4)).unwrap();
        cluster.settle();
        // C_old {1,2,3} has a majority in {1,2}; C_new {1,2,3,4} needs three of four.
        cluster.isolate(3);
        cluster.isolate(4);
        let (joint_at, _) = cluster.node(1).propose_membership(AddVoter(4)).unwrap();
        cluster.settle();
        assert!(cluster.node(1).log.committed() < joint_at);
        assert!(cluster.node(1).membership_change_pending());
        // Neither does a command after it commit.
        let (command_at, _) = cluster.node(1).propose(Bytes::from("x")).unwrap();
        cluster.settle();
        assert!(cluster.node(1).log.committed() < command_at);
        cluster.heal();
        cluster.tick_all(10);
        assert!(cluster.node(1).log.committed() >= command_at);
        assert!(!cluster.node(1).membership_change_pending());
    }

    #[test]
    fn a_learner_does_not_count_toward_a_commit() {
        let mut cluster = three_led_by_1();
        cluster.join(4);
        cluster.node(1).propose_membership(AddLearner(4)).unwrap();
        cluster.settle();
        cluster.cut_link(1, 2);
        cluster.cut_link(1, 3);
        let (at, _) = cluster.node(1).propose(Bytes::from("x")).unwrap();
        cluster.settle();
        assert_eq!(cluster.node(4).log.last_index(), at, "the learner has it");
        assert!(
            cluster.node(1).log.committed() < at,
            "but it does not count"
        );
    }

    #[test]
    fn a_removed_leader_steps_down_once_c_new_commits_and_the_others_elect_a_new_one() {
        let mut cluster = three_led_by_1();
        cluster.node(1).propose_membership(Remove(1)).unwrap();
        cluster.settle();
        assert_eq!(cluster.node(1).role, Role::Follower, "stepped down");
        let campaigns = cluster.node(1).elections;
        for id in [2, 3] {
            assert_eq!(cluster.node(id).membership(), &voters(&[2, 3]), "node {id}");
        }
        cluster.tick_all(100);
        let leaders = cluster.leaders();
        assert!(leaders == [2] || leaders == [3], "{leaders:?}");
        assert_eq!(
            cluster.node(1).elections,
            campaigns,
            "a removed node never campaigns"
        );
        // The new leader's writes commit without node 1.
        let leader = leaders[0];
        let (at, _) = cluster.node(leader).propose(Bytes::from("x")).unwrap();
        cluster.settle();
        assert!(cluster.node(leader).log.committed() >= at);
    }

    #[test]
    fn changes_are_refused_one_at_a_time_before_a_commit_of_the_term_and_when_they_make_no_sense() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1]);
        elect(&mut raft);
        assert_eq!(
            raft.propose_membership(AddLearner(4)),
            Err(ProposeError::LeaderNotReady),
            "the no-op of its term is not committed yet"
        );
        let mut cluster = three_led_by_1();
        let leader = cluster.node(1);
        assert_eq!(
            leader.propose_membership(AddVoter(2)),
            Err(ProposeError::Membership(MembershipError::AlreadyVoter(2)))
        );
        assert_eq!(
            leader.propose_membership(Remove(9)),
            Err(ProposeError::Membership(MembershipError::NotAMember(9)))
        );
        leader.propose_membership(AddLearner(4)).unwrap();
        assert_eq!(
            leader.propose_membership(AddLearner(5)),
            Err(ProposeError::MembershipChangeInProgress)
        );
        assert_eq!(
            cluster.node(2).propose_membership(AddLearner(5)),
            Err(ProposeError::NotLeader(NotLeader { leader: Some(1) }))
        );
    }

    #[test]
    fn a_follower_that_loses_a_configuration_entry_to_a_conflict_goes_back_to_the_one_before() {
        let mut follower = recovered(plain_config(2, &[1, 2, 3]), 1, &[1]);
        let joint = voters(&[1, 2, 3]).step_towards(voters(&[1, 2, 3, 4]));
        let from_leader_1 = MessageBody::AppendEntries {
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![Entry {
                term: 2,
                index: 2,
                payload: Payload::Membership(joint.clone()),
            }],
            leader_commit: 1,
            read_round: 0,
        };
        follower.step(message(1, 2, 2, from_leader_1));
        assert_eq!(follower.membership(), &joint);
        assert!(follower.peers.is_empty() || follower.role != Role::Leader);
        let from_leader_3 = MessageBody::AppendEntries {
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![entry(2, 3)],
            leader_commit: 1,
            read_round: 0,
        };
        follower.step(message(3, 2, 3, from_leader_3));
        assert_eq!(follower.membership(), &voters(&[1, 2, 3]));
    }

    #[test]
    fn a_snapshot_tells_a_joining_node_its_configuration() {
        let mut cluster = three_led_by_1();
        cluster.join(4);
        cluster.node(1).propose_membership(AddLearner(4)).unwrap();
        cluster.isolate(4);
        cluster.settle();
        cluster.node(1).propose(Bytes::from("x")).unwrap();
        cluster.settle();
        let leader = cluster.node(1);
        let applied = leader.log.applied();
        let term = leader.log.term(applied).unwrap();
        leader
            .compact(crate::raft::Snapshot {
                meta: crate::raft::SnapshotMeta {
                    index: applied,
                    term,
                },
                membership: None,
                data: Bytes::from("state"),
            })
            .unwrap();
        cluster.heal();
        cluster.tick_all(10);
        let node4 = cluster.node(4);
        assert_eq!(node4.log.snapshot_index(), applied);
        assert_eq!(node4.membership().learners, [4].into());
    }

    #[test]
    fn the_membership_one_step_bug_switches_to_c_new_at_once() {
        let mut cluster = Cluster::new(3, |config: &mut Config| {
            config.bugs = Bugs::from_list(&[Bug::MembershipOneStep]);
        });
        cluster.elect(1);
        let (at, _) = cluster.node(1).propose_membership(AddVoter(4)).unwrap();
        let entry = cluster.node(1).log.entries_from(at, usize::MAX);
        assert_eq!(
            entry[0].payload,
            Payload::Membership(voters(&[1, 2, 3, 4])),
            "no joint configuration"
        );
    }
}
