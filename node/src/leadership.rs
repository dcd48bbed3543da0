//! Leadership transfers asked of the Raft loop (by `POST /admin/transfer-leader` and at
//! SIGTERM): the requests that wait until this node sees leadership move, and how each ends.
//!
//! The core only starts a transfer ([`crate::raft::Raft::transfer_leadership`]); whether it
//! worked shows later in the node's status. A request succeeds once this node follows the
//! target in a newer term than the one it led, so that the answer names a leader that was
//! really elected, not one that merely might be.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::members::Members;
use crate::raft::{NodeId, Role, Status, Term, TransferError};

/// Leadership moved: `leader` leads `term`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transferred {
    pub leader: String,
    pub term: Term,
}

/// Why a transfer did not happen, or was not seen to happen in time.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferFailure {
    /// Only the leader hands over leadership: ask `leader`, if known.
    #[error("this node is not the leader ({})", describe_leader(leader.as_deref()))]
    NotLeader { leader: Option<String> },
    #[error("{0} is this node, which already leads; name another member")]
    ToSelf(String),
    #[error("{0} is not a member of the cluster")]
    UnknownTarget(String),
    #[error("the cluster has no other member to hand leadership to")]
    NoFollower,
    /// The core gave up after an election timeout: this node still leads and takes writes.
    #[error(
        "the transfer to {target} was abandoned: leadership did not move within an election \
         timeout, and this node leads again"
    )]
    Abandoned { target: String },
    /// A later request named another target, which replaced this transfer.
    #[error("the transfer to {target} was replaced by a transfer to {by}")]
    Superseded { target: String, by: String },
    /// Another node won the newer term (the target may have been cut off or lost its vote).
    #[error("{leader} leads term {term} instead of {target}")]
    LedElsewhere {
        target: String,
        leader: String,
        term: Term,
    },
    /// This node did not see the target lead in time; it may still happen.
    #[error("{target} was not seen leading within {timeout:?}; the transfer may still happen")]
    TimedOut { target: String, timeout: Duration },
}

/// "the leader is n2", or that none is known: how a refusal names the node to ask instead.
pub(crate) fn describe_leader(leader: Option<&str>) -> String {
    match leader {
        Some(name) => format!("the leader is {name}"),
        None => "no leader is known".to_string(),
    }
}

/// How the Raft loop answers a transfer request.
pub type TransferReply = oneshot::Sender<Result<Transferred, TransferFailure>>;

/// One transfer request waiting for its outcome.
struct Waiting {
    target: NodeId,
    /// The term this node led when the transfer started.
    term: Term,
    deadline: Instant,
    reply: TransferReply,
}

/// The transfer requests waiting for leadership to move.
pub struct Transfers {
    members: Members,
    /// How long a request waits to see the target lead.
    timeout: Duration,
    waiting: Vec<Waiting>,
}

impl Transfers {
    pub fn new(members: Members, timeout: Duration) -> Transfers {
        Transfers {
            members,
            timeout,
            waiting: Vec::new(),
        }
    }

    /// The core refused to start a transfer to `target`: answer at once.
    pub fn refused(&self, target: Option<NodeId>, error: TransferError, reply: TransferReply) {
        let failure = match error {
            TransferError::NotLeader(not_leader) => TransferFailure::NotLeader {
                leader: not_leader.leader.map(|id| self.members.name_of(id)),
            },
            TransferError::ToSelf(id) => TransferFailure::ToSelf(self.members.name_of(id)),
            TransferError::UnknownTarget(id) => {
                TransferFailure::UnknownTarget(self.members.name_of(id))
            }
        };
        self.refuse(target, failure, reply);
    }

    /// Answers a request that cannot start with `failure`.
    pub fn refuse(&self, target: Option<NodeId>, failure: TransferFailure, reply: TransferReply) {
        let to = target.map_or("none".to_string(), |id| self.members.name_of(id));
        info!(to = %to, "refused a leadership transfer: {failure}");
        let _ = reply.send(Err(failure));
    }

    /// The core started (or carries on) a transfer to `target` from `term`, this node's.
    pub fn started(&mut self, target: NodeId, term: Term, now: Instant, reply: TransferReply) {
        info!(to = %self.members.name_of(target), term, "transferring leadership");
        self.waiting.push(Waiting {
            target,
            term,
            deadline: now + self.timeout,
            reply,
        });
    }

    /// Answers every request whose outcome `status` (this node's, after a round) settles,
    /// or whose time is up.
    pub fn settle(&mut self, status: &Status, now: Instant) {
        if self.waiting.is_empty() {
            return;
        }
        for request in std::mem::take(&mut self.waiting) {
            match self.outcome(&request, status, now) {
                Some(outcome) => {
                    match &outcome {
                        Ok(done) => {
                            info!(leader = %done.leader, term = done.term, "leadership transferred")
                        }
                        Err(failure) => warn!("leadership transfer failed: {failure}"),
                    }
                    let _ = request.reply.send(outcome);
                }
                None => self.waiting.push(request),
            }
        }
    }

    fn outcome(
        &self,
        request: &Waiting,
        status: &Status,
        now: Instant,
    ) -> Option<Result<Transferred, TransferFailure>> {
        let target = self.members.name_of(request.target);
        if status.term > request.term
            && let Some(leader) = status.leader
        {
            let leader = self.members.name_of(leader);
            return Some(if leader == target {
                Ok(Transferred {
                    leader,
                    term: status.term,
                })
            } else {
                Err(TransferFailure::LedElsewhere {
                    target,
                    leader,
                    term: status.term,
                })
            });
        }
        let still_leading = status.role == Role::Leader && status.term == request.term;
        if still_leading {
            match status.transfer_target {
                None => return Some(Err(TransferFailure::Abandoned { target })),
                Some(other) if other != request.target => {
                    let by = self.members.name_of(other);
                    return Some(Err(TransferFailure::Superseded { target, by }));
                }
                Some(_) => {}
            }
        }
        if now >= request.deadline {
            return Some(Err(TransferFailure::TimedOut {
                target,
                timeout: self.timeout,
            }));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Members {
        Members::new("n1", ["n2".to_string(), "n3".to_string()]).unwrap()
    }

    fn status(role: Role, term: Term, leader: Option<NodeId>, transfer: Option<NodeId>) -> Status {
        Status {
            id: 1,
            role,
            term,
            leader,
            vote: None,
            commit: 0,
            applied: 0,
            last_index: 0,
            snapshot_index: 0,
            elections: 0,
            transfer_target: transfer,
            reads_under_lease: 0,
        }
    }

    /// One request to node 2 from term 4; returns where its answer arrives.
    fn waiting(
        transfers: &mut Transfers,
        now: Instant,
    ) -> oneshot::Receiver<Result<Transferred, TransferFailure>> {
        let (reply, answer) = oneshot::channel();
        transfers.started(2, 4, now, reply);
        answer
    }

    #[test]
    fn a_request_is_answered_once_the_target_leads_a_newer_term() {
        let now = Instant::now();
        let mut transfers = Transfers::new(members(), Duration::from_secs(1));
        let mut answer = waiting(&mut transfers, now);
        transfers.settle(&status(Role::Leader, 4, Some(1), Some(2)), now);
        transfers.settle(&status(Role::Follower, 5, None, None), now);
        assert!(answer.try_recv().is_err(), "no leader known yet");
        transfers.settle(&status(Role::Follower, 5, Some(2), None), now);
        assert_eq!(
            answer.try_recv().unwrap(),
            Ok(Transferred {
                leader: "n2".to_string(),
                term: 5
            })
        );
    }

    #[test]
    fn abandoned_elsewhere_and_late_transfers_fail_with_a_reason() {
        let now = Instant::now();
        let mut transfers = Transfers::new(members(), Duration::from_secs(1));
        let mut abandoned = waiting(&mut transfers, now);
        transfers.settle(&status(Role::Leader, 4, Some(1), None), now);
        assert_eq!(
            abandoned.try_recv().unwrap(),
            Err(TransferFailure::Abandoned {
                target: "n2".to_string()
            })
        );
        let mut superseded = waiting(&mut transfers, now);
        transfers.settle(&status(Role::Leader, 4, Some(1), Some(3)), now);
        assert_eq!(
            superseded.try_recv().unwrap(),
            Err(TransferFailure::Superseded {
                target: "n2".to_string(),
                by: "n3".to_string()
            })
        );
        let mut elsewhere = waiting(&mut transfers, now);
        transfers.settle(&status(Role::Follower, 6, Some(3), None), now);
        assert_eq!(
            elsewhere.try_recv().unwrap(),
            Err(TransferFailure::LedElsewhere {
                target: "n2".to_string(),
                leader: "n3".to_string(),
                term: 6
            })
        );
        let mut late = waiting(&mut transfers, now);
        let in_flight = status(Role::Leader, 4, Some(1), Some(2));
        transfers.settle(&in_flight, now + Duration::from_millis(999));
        assert!(late.try_recv().is_err());
        transfers.settle(&in_flight, now + Duration::from_secs(1));
        assert!(matches!(
            late.try_recv().unwrap(),
            Err(TransferFailure::TimedOut { .. })
        ));
    }

    #[test]
    fn failures_name_members_and_say_what_happened() {
        let failure = TransferFailure::NotLeader {
            leader: Some("n3".to_string()),
        };
        assert_eq!(
            failure.to_string(),
            "this node is not the leader (the leader is n3)"
        );
        let failure = TransferFailure::NotLeader { leader: None };
        assert_eq!(
            failure.to_string(),
            "this node is not the leader (no leader is known)"
        );
    }
}
