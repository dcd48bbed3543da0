//! Leadership transfer (Raft thesis §3.10): the leader stops taking proposals, brings the
//! target's log up to date, then tells it to campaign at once (`TimeoutNow`). The target's
//! vote requests say that the leader asked for them, so that voters still hearing from the
//! leader grant them (leader stickiness would refuse them); the up-to-date check still holds.
//! A transfer that has not moved leadership within an election timeout is abandoned, and the
//! leader takes proposals again.

use super::{MessageBody, NodeId, NotLeader, Raft, Role, TransferError};

/// A transfer in flight on the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LeaderTransfer {
    /// The node that is to lead.
    pub target: NodeId,
    /// Leader ticks since the transfer started.
    pub elapsed: u32,
}

impl Raft {
    /// Starts handing leadership to `target`; the outcome shows in [`Raft::status`]: a newer
    /// term led by `target`, or `transfer_target` back to `None` while this node still leads
    /// (abandoned after an election timeout). Proposals are refused meanwhile. A transfer to
    /// the target already in flight carries on (its timeout is not restarted); one to another
    /// target replaces it, as in etcd.
    pub fn transfer_leadership(&mut self, target: NodeId) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader(NotLeader {
                leader: self.leader,
            }));
        }
        if target == self.config.id {
            return Err(TransferError::ToSelf(target));
        }
        let is_voter = self.log.membership().voters.contains(&target);
        let Some(progress) = self
            .peers
            .iter()
            .find(|progress| progress.id == target && is_voter)
        else {
            return Err(TransferError::UnknownTarget(target));
        };
        if self
            .transfer
            .is_some_and(|transfer| transfer.target == target)
        {
            return Ok(());
        }
        let caught_up = progress.matched == self.log.last_index();
        self.transfer = Some(LeaderTransfer { target, elapsed: 0 });
        self.lease_until = 0;
        self.lease_forfeited = true;
        if caught_up {
            self.send(target, MessageBody::TimeoutNow);
        }
        // Otherwise replication catches the target up, and its acknowledgement of the last
        // entry sends the TimeoutNow (`maybe_send_timeout_now`).
        Ok(())
    }

    /// The follower that would make the best next leader: the one whose log matches the
    /// most, among equals one heard from in this check-quorum period, then the lowest id.
    /// `None` unless this node leads a cluster of more than one.
    pub fn most_up_to_date_follower(&self) -> Option<NodeId> {
        if self.role != Role::Leader {
            return None;
        }
        let voters = &self.log.membership().voters;
        self.peers
            .iter()
            .filter(|progress| voters.contains(&progress.id))
            .max_by_key(|progress| {
                (
                    progress.matched,
                    progress.recent_active,
                    std::cmp::Reverse(progress.id),
                )
            })
            .map(|progress| progress.id)
    }

    /// `peer` acknowledged entries or a heartbeat: if it is the transfer's target and holds
    /// the leader's whole log, tell it to campaign. Sent again on later acknowledgements,
    /// so that a lost TimeoutNow does not stall the transfer; a copy that arrives after the
    /// target campaigned is of an older term, and ignored.
    pub(super) fn maybe_send_timeout_now(&mut self, peer: NodeId) {
        let Some(transfer) = self.transfer.filter(|transfer| transfer.target == peer) else {
            return;
        };
        let last_index = self.log.last_index();
        let caught_up = self
            .peers
            .iter()
            .any(|progress| progress.id == transfer.target && progress.matched == last_index);
        if caught_up {
            self.send(transfer.target, MessageBody::TimeoutNow);
        }
    }

    /// Counts one leader tick against the transfer in flight; after an election timeout
    /// (the longest a follower waits for a leader) leadership has not moved, so the leader
    /// gives up and takes proposals again rather than stay unavailable for writes.
    pub(super) fn tick_transfer(&mut self) {
        let Some(transfer) = self.transfer.as_mut() else {
            return;
        };
        transfer.elapsed += 1;
        if transfer.elapsed >= self.config.election_ticks.end {
            self.transfer = None;
        }
    }

    /// The leader told this node to campaign (it has already been made a follower of the
    /// sender's term): skip pre-vote and the election timeout, and campaign as a transfer.
    pub(super) fn handle_timeout_now(&mut self) {
        // Only a corrupt peer can have pushed the term to its limit; never overflow it.
        if self.term == super::Term::MAX || !self.may_campaign() {
            return;
        }
        self.elections += 1;
        self.become_candidate(true);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::raft::testing::{Cluster, ack, drain, elect, message, plain_config, recovered};
    use crate::raft::{Config, Message, ProposeError};

    fn timeouts_now(messages: &[Message]) -> Vec<NodeId> {
        messages
            .iter()
            .filter(|msg| msg.body == MessageBody::TimeoutNow)
            .map(|msg| msg.to)
            .collect()
    }

    /// Leader 1 of three whose followers acknowledged its whole log.
    fn leader_with_followers_caught_up() -> Raft {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1]);
        elect(&mut raft);
        let (term, last) = (raft.term, raft.log.last_index());
        raft.step(ack(2, term, last));
        raft.step(ack(3, term, last));
        drain(&mut raft);
        raft
    }

    /// The defaults: pre-vote and check-quorum on, so leader stickiness is in force.
    fn cluster_with_leader(size: u64, leader: NodeId) -> Cluster {
        let mut cluster = Cluster::new(size, |_| {});
        cluster.elect(leader);
        cluster.tick_all(3);
        assert_eq!(cluster.leaders(), [leader]);
        cluster
    }

    #[test]
    fn a_caught_up_target_is_told_to_campaign_at_once_and_proposals_stop() {
        let mut raft = leader_with_followers_caught_up();
        raft.transfer_leadership(2).unwrap();
        assert_eq!(raft.status().transfer_target, Some(2));
        assert_eq!(timeouts_now(&drain(&mut raft)), [2]);
        assert_eq!(
            raft.propose(Bytes::from_static(b"x")),
            Err(ProposeError::TransferInProgress { target: 2 })
        );
        assert!(
            raft.read_index(1).is_ok(),
            "reads need no new entry and stay safe"
        );
    }

    #[test]
    fn a_lagging_target_gets_the_log_first_and_timeout_now_only_once_it_matches() {
        let mut raft = leader_with_followers_caught_up();
        let term = raft.term;
        let (index, _) = raft.propose(Bytes::from_static(b"x")).unwrap();
        drain(&mut raft);
        raft.transfer_leadership(3).unwrap();
        assert!(
            timeouts_now(&drain(&mut raft)).is_empty(),
            "3 lacks entry {index}"
        );
        raft.step(ack(2, term, index));
        assert!(
            timeouts_now(&drain(&mut raft)).is_empty(),
            "2 is not the target"
        );
        raft.step(ack(3, term, index - 1));
        assert!(
            timeouts_now(&drain(&mut raft)).is_empty(),
            "still one behind"
        );
        raft.step(ack(3, term, index));
        assert_eq!(timeouts_now(&drain(&mut raft)), [3]);
    }

    #[test]
    fn a_lost_timeout_now_is_sent_again_on_the_next_heartbeat_answer() {
        let mut raft = leader_with_followers_caught_up();
        raft.transfer_leadership(2).unwrap();
        drain(&mut raft);
        let term = raft.term;
        raft.step(message(
            2,
            1,
            term,
            MessageBody::HeartbeatResponse { read_round: 0 },
        ));
        assert_eq!(timeouts_now(&drain(&mut raft)), [2]);
    }

    #[test]
    fn a_transfer_that_does_not_move_leadership_is_abandoned_after_an_election_timeout() {
        let mut raft = leader_with_followers_caught_up();
        let term = raft.term;
        raft.transfer_leadership(2).unwrap();
        let timeout = raft.config.election_ticks.end;
        for _ in 1..timeout {
            raft.tick();
            // The followers stay live, so check-quorum (off here anyway) keeps it leading.
        }
        assert_eq!(raft.status().transfer_target, Some(2), "not yet");
        raft.tick();
        let status = raft.status();
        assert_eq!(
            (status.role, status.term, status.transfer_target),
            (Role::Leader, term, None)
        );
        assert!(raft.propose(Bytes::from_static(b"x")).is_ok());
    }

    #[test]
    fn transfers_to_itself_or_to_a_stranger_are_refused() {
        let mut raft = leader_with_followers_caught_up();
        assert_eq!(raft.transfer_leadership(1), Err(TransferError::ToSelf(1)));
        assert_eq!(
            raft.transfer_leadership(9),
            Err(TransferError::UnknownTarget(9))
        );
        assert_eq!(raft.status().transfer_target, None);
        assert!(drain(&mut raft).is_empty());
        assert!(raft.propose(Bytes::from_static(b"x")).is_ok());
    }

    #[test]
    fn a_follower_or_candidate_refuses_a_transfer_and_names_the_leader_it_knows() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1]);
        assert_eq!(
            raft.transfer_leadership(2),
            Err(TransferError::NotLeader(NotLeader { leader: None }))
        );
        raft.step(message(
            3,
            1,
            1,
            MessageBody::Heartbeat {
                leader_commit: 0,
                read_round: 0,
            },
        ));
        assert_eq!(
            raft.transfer_leadership(2),
            Err(TransferError::NotLeader(NotLeader { leader: Some(3) }))
        );
        while raft.role != Role::Candidate {
            raft.tick();
        }
        assert_eq!(
            raft.transfer_leadership(2),
            Err(TransferError::NotLeader(NotLeader { leader: None }))
        );
        assert_eq!(raft.most_up_to_date_follower(), None);
    }

    #[test]
    fn a_new_target_replaces_the_transfer_in_flight_and_the_same_one_carries_on() {
        let mut raft = leader_with_followers_caught_up();
        raft.transfer_leadership(2).unwrap();
        raft.tick();
        raft.transfer_leadership(2).unwrap();
        assert_eq!(raft.transfer.map(|t| t.elapsed), Some(1), "not restarted");
        raft.transfer_leadership(3).unwrap();
        assert_eq!(
            raft.transfer,
            Some(LeaderTransfer {
                target: 3,
                elapsed: 0
            })
        );
        assert_eq!(timeouts_now(&drain(&mut raft)), [2, 3]);
    }

    #[test]
    fn timeout_now_makes_a_follower_campaign_at_once_without_pre_vote() {
        let config = Config {
            pre_vote: true,
            check_quorum: true,
            ..plain_config(2, &[1, 2, 3])
        };
        let mut raft = recovered(config, 4, &[1, 4]);
        raft.step(message(
            1,
            2,
            4,
            MessageBody::Heartbeat {
                leader_commit: 0,
                read_round: 0,
            },
        ));
        drain(&mut raft);
        raft.step(message(1, 2, 4, MessageBody::TimeoutNow));
        assert_eq!(
            (raft.role, raft.term, raft.vote),
            (Role::Candidate, 5, Some(2))
        );
        let body = MessageBody::RequestVote {
            last_log_index: 2,
            last_log_term: 4,
            transfer: true,
        };
        let requests: Vec<_> = drain(&mut raft)
            .into_iter()
            .map(|msg| (msg.to, msg.term, msg.body))
            .collect();
        assert_eq!(requests, [(1, 5, body.clone()), (3, 5, body.clone())]);
        // Asked again, the silent voters still learn it is a transfer.
        for _ in 0..raft.config.heartbeat_ticks {
            raft.tick();
        }
        let retried: Vec<_> = drain(&mut raft).into_iter().map(|msg| msg.body).collect();
        assert_eq!(retried, [body.clone(), body]);
    }

    #[test]
    fn timeout_now_from_an_older_term_or_on_the_leader_itself_is_ignored() {
        let mut raft = recovered(plain_config(2, &[1, 2, 3]), 4, &[1, 4]);
        raft.step(message(1, 2, 3, MessageBody::TimeoutNow));
        assert_eq!((raft.role, raft.term), (Role::Follower, 4));
        let mut leader = leader_with_followers_caught_up();
        let term = leader.term;
        leader.step(message(2, 1, term, MessageBody::TimeoutNow));
        assert_eq!((leader.role, leader.term), (Role::Leader, term));
    }

    #[test]
    fn voters_that_hear_from_the_leader_grant_a_transfer_vote_but_not_a_plain_one() {
        let mut cluster = cluster_with_leader(3, 1);
        let term = cluster.node(1).term;
        let last_index = cluster.node(3).log.last_index();
        let last_log_term = cluster.node(3).log.last_term();
        let request = |transfer| {
            message(
                2,
                3,
                term + 1,
                MessageBody::RequestVote {
                    last_log_index: last_index,
                    last_log_term,
                    transfer,
                },
            )
        };
        cluster.node(3).step(request(false));
        assert_eq!(cluster.node(3).term, term, "stickiness ignores it");
        cluster.node(3).step(request(true));
        let votes: Vec<_> = drain(cluster.node(3))
            .into_iter()
            .map(|msg| (msg.to, msg.term, msg.body))
            .collect();
        assert_eq!(
            votes,
            [(
                2,
                term + 1,
                MessageBody::RequestVoteResponse { granted: true }
            )]
        );
    }

    #[test]
    fn a_transfer_vote_still_needs_an_up_to_date_log() {
        let mut cluster = cluster_with_leader(3, 1);
        let term = cluster.node(1).term;
        cluster.node(3).step(message(
            2,
            3,
            term + 1,
            MessageBody::RequestVote {
                last_log_index: 0,
                last_log_term: 0,
                transfer: true,
            },
        ));
        let votes: Vec<_> = drain(cluster.node(3))
            .into_iter()
            .map(|msg| msg.body)
            .collect();
        assert_eq!(votes, [MessageBody::RequestVoteResponse { granted: false }]);
    }

    #[test]
    fn leadership_moves_to_the_target_in_exactly_one_more_term() {
        for size in [3, 5] {
            let mut cluster = cluster_with_leader(size, 1);
            let term = cluster.node(1).term;
            cluster.node(1).propose(Bytes::from_static(b"a")).unwrap();
            cluster.node(1).transfer_leadership(size).unwrap();
            cluster.settle();
            assert_eq!(cluster.leaders(), [size], "{size} nodes");
            assert_eq!(cluster.node(size).term, term + 1);
            assert_eq!(cluster.node(1).status().leader, Some(size));
            assert_eq!(cluster.node(1).status().transfer_target, None);
            let (index, _) = cluster
                .node(size)
                .propose(Bytes::from_static(b"b"))
                .unwrap();
            cluster.tick_all(10);
            for id in 1..=size {
                assert!(cluster.node(id).log.committed() >= index, "node {id}");
            }
        }
    }

    #[test]
    fn a_transfer_to_a_cut_off_target_is_abandoned_and_the_leader_carries_on() {
        let mut cluster = cluster_with_leader(3, 1);
        let term = cluster.node(1).term;
        cluster.cut_link(1, 3);
        cluster.node(1).transfer_leadership(3).unwrap();
        let timeout = cluster.node(1).config.election_ticks.end;
        cluster.tick_all(timeout);
        assert_eq!(cluster.leaders(), [1]);
        let status = cluster.node(1).status();
        assert_eq!((status.term, status.transfer_target), (term, None));
        assert!(cluster.node(1).propose(Bytes::from_static(b"x")).is_ok());
    }

    #[test]
    fn the_most_up_to_date_follower_is_the_one_that_matches_the_most() {
        let mut raft = leader_with_followers_caught_up();
        let term = raft.term;
        assert_eq!(raft.most_up_to_date_follower(), Some(2), "a tie: lowest id");
        let (index, _) = raft.propose(Bytes::from_static(b"x")).unwrap();
        drain(&mut raft);
        raft.step(ack(3, term, index));
        assert_eq!(raft.most_up_to_date_follower(), Some(3));
        let single = recovered(plain_config(1, &[1]), 0, &[]);
        assert_eq!(single.most_up_to_date_follower(), None);
    }
}
