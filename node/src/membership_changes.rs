//! Membership changes asked of the Raft loop (by `POST` and `DELETE /admin/members`): the
//! requests that wait until the change has committed, and how each ends.
//!
//! The core only starts a change ([`crate::raft::Raft::propose_membership`]); a change of
//! voters then goes through the joint configuration and C_new by itself. A request succeeds
//! once the configuration committed on this node is the one it asked for, so that an answer
//! of success means the change happened; one that cannot tell in time says so.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::leadership::describe_leader;
use crate::members::Members;
use crate::raft::{Membership, MembershipChange, MembershipError, ProposeError, Raft, Role, Term};

/// The members as one node sees them, by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MembersView {
    /// The node answering.
    pub node: String,
    /// The voters of the configuration in force (of C_new during a change of voters).
    pub voters: Vec<String>,
    /// During a change of voters, those of the configuration being left (C_old).
    pub outgoing: Vec<String>,
    pub learners: Vec<String>,
    /// Whether a change is under way (the configuration in force is joint or not committed).
    pub pending: bool,
    pub leader: Option<String>,
    pub term: Term,
}

impl MembersView {
    /// What `raft` (this node's core) holds, named by `members`.
    pub fn of(raft: &Raft, members: &Members) -> MembersView {
        let status = raft.status();
        let membership = raft.membership();
        MembersView {
            node: members.name_of(status.id),
            voters: members.names_of(&membership.voters),
            outgoing: members.names_of(&membership.outgoing),
            learners: members.names_of(&membership.learners),
            pending: raft.membership_change_pending(),
            leader: status.leader.map(|id| members.name_of(id)),
            term: status.term,
        }
    }
}

/// Why a change did not happen, or was not seen to happen in time.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChangeFailure {
    /// Only the leader changes membership: ask `leader`, if known.
    #[error("this node is not the leader ({})", describe_leader(leader.as_deref()))]
    NotLeader { leader: Option<String> },
    /// One change at a time.
    #[error("a membership change is already in progress; retry once it has committed")]
    InProgress,
    /// The leader is busy with something that passes soon: a leadership transfer, or its
    /// first entry of the term is not committed yet.
    #[error("{0}; nothing was changed, retry shortly")]
    NotNow(String),
    /// The change does not apply to the membership (or names an unknown node).
    #[error("{0}")]
    Invalid(String),
    /// This node stopped leading before the change committed: it may still complete.
    #[error("leadership moved before the change committed; it may still complete")]
    LeadershipLost,
    /// Not committed in time; it may still complete.
    #[error("the change did not commit within {0:?}; it may still complete")]
    TimedOut(Duration),
}

/// How the Raft loop answers a change request: the membership once it committed.
pub type ChangeReply = oneshot::Sender<Result<MembersView, ChangeFailure>>;

/// One change waiting to commit.
struct Waiting {
    /// The configuration asked for (C_new).
    target: Membership,
    /// The term this node led when it proposed the change.
    term: Term,
    deadline: Instant,
    reply: ChangeReply,
}

/// The change requests waiting to commit.
pub struct MembershipChanges {
    members: Members,
    /// How long a request waits for its change to commit.
    timeout: Duration,
    waiting: Vec<Waiting>,
}

impl MembershipChanges {
    pub fn new(members: Members, timeout: Duration) -> MembershipChanges {
        MembershipChanges {
            members,
            timeout,
            waiting: Vec::new(),
        }
    }

    /// Asks `raft` for `change`; the request waits, or is answered at once if refused.
    pub fn start(
        &mut self,
        raft: &mut Raft,
        change: MembershipChange,
        now: Instant,
        reply: ChangeReply,
    ) {
        match raft.propose_membership(change) {
            Ok((_, term)) => {
                // What was appended is C_new, or the joint configuration on the way to it.
                let target = raft.membership().leave_joint();
                info!(?change, term, "changing membership");
                self.waiting.push(Waiting {
                    target,
                    term,
                    deadline: now + self.timeout,
                    reply,
                });
            }
            Err(error) => {
                let failure = self.refusal(error);
                info!(?change, "refused a membership change: {failure}");
                let _ = reply.send(Err(failure));
            }
        }
    }

    fn refusal(&self, error: ProposeError) -> ChangeFailure {
        match error {
            ProposeError::NotLeader(not_leader) => ChangeFailure::NotLeader {
                leader: not_leader.leader.map(|id| self.members.name_of(id)),
            },
            ProposeError::MembershipChangeInProgress => ChangeFailure::InProgress,
            ProposeError::TransferInProgress { .. } | ProposeError::LeaderNotReady => {
                ChangeFailure::NotNow(error.to_string())
            }
            ProposeError::Membership(error) => ChangeFailure::Invalid(self.describe(error)),
        }
    }

    /// A membership error, with names rather than ids.
    fn describe(&self, error: MembershipError) -> String {
        let name = |id| self.members.name_of(id);
        match error {
            MembershipError::AlreadyVoter(id) => format!("{} is already a voter", name(id)),
            MembershipError::AlreadyLearner(id) => format!("{} is already a learner", name(id)),
            MembershipError::NotAMember(id) => format!("{} is not a member", name(id)),
            MembershipError::LastVoter(id) => {
                format!(
                    "{} is the last voter; a cluster needs at least one",
                    name(id)
                )
            }
            MembershipError::NotAVoter(id) => format!("{} is not a voter", name(id)),
            MembershipError::SameNode(id) => format!("{} cannot replace itself", name(id)),
            MembershipError::ZeroId => error.to_string(),
        }
    }

    /// Answers every request whose change has committed on this node, whose leader lost its
    /// term, or whose time is up.
    pub fn settle(&mut self, raft: &Raft, now: Instant) {
        if self.waiting.is_empty() {
            return;
        }
        let status = raft.status();
        let committed = raft.membership_at(status.commit);
        for request in std::mem::take(&mut self.waiting) {
            let outcome = if *committed == request.target {
                Ok(MembersView::of(raft, &self.members))
            } else if status.term != request.term || status.role != Role::Leader {
                // Deposed by check-quorum, a leader keeps its term: its role tells.
                Err(ChangeFailure::LeadershipLost)
            } else if now >= request.deadline {
                Err(ChangeFailure::TimedOut(self.timeout))
            } else {
                self.waiting.push(request);
                continue;
            };
            match &outcome {
                Ok(view) => {
                    info!(voters = ?view.voters, learners = ?view.learners, "membership changed")
                }
                Err(failure) => warn!("membership change not seen through: {failure}"),
            }
            let _ = request.reply.send(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::testing::{self, leader_of_three};

    fn members() -> Members {
        Members::new("n1", ["n2", "n3", "n4"].map(String::from)).unwrap()
    }

    #[test]
    fn a_leader_that_steps_down_in_its_term_answers_at_once_that_the_change_may_still_happen() {
        let config = crate::raft::Config {
            check_quorum: true,
            pre_vote: true,
            ..testing::plain_config(1, &[1, 2, 3])
        };
        let mut raft = testing::recovered(config, 1, &[1]);
        testing::elect(&mut raft);
        testing::commit_everything(&mut raft);
        let mut changes = MembershipChanges::new(members(), Duration::from_secs(5));
        let (reply, mut answer) = oneshot::channel();
        let now = Instant::now();
        let term = raft.status().term;
        changes.start(&mut raft, MembershipChange::AddLearner(4), now, reply);
        // No follower answers: check-quorum deposes it within an election timeout or two.
        for _ in 0..100 {
            if raft.status().role != Role::Leader {
                break;
            }
            raft.tick();
        }
        assert_ne!(raft.status().role, Role::Leader);
        assert_eq!(raft.status().term, term, "pre-vote: the term stays");
        changes.settle(&raft, now);
        assert_eq!(
            answer.try_recv().unwrap(),
            Err(ChangeFailure::LeadershipLost)
        );
    }

    #[test]
    fn a_change_is_answered_once_its_configuration_has_committed() {
        let (mut raft, commit_all) = leader_of_three();
        let mut changes = MembershipChanges::new(members(), Duration::from_secs(5));
        let (reply, mut answer) = oneshot::channel();
        let now = Instant::now();
        changes.start(&mut raft, MembershipChange::AddLearner(4), now, reply);
        changes.settle(&raft, now);
        assert!(answer.try_recv().is_err(), "not committed yet");
        commit_all(&mut raft);
        changes.settle(&raft, now);
        let view = answer.try_recv().unwrap().unwrap();
        assert_eq!(view.voters, ["n1", "n2", "n3"]);
        assert_eq!(view.learners, ["n4"]);
        assert!(!view.pending);
    }

    #[test]
    fn refusals_are_answered_at_once_with_names() {
        let (mut raft, _) = leader_of_three();
        let mut changes = MembershipChanges::new(members(), Duration::from_secs(5));
        let now = Instant::now();
        let ask = |changes: &mut MembershipChanges, raft: &mut Raft, change| {
            let (reply, mut answer) = oneshot::channel();
            changes.start(raft, change, now, reply);
            answer.try_recv().ok().map(|outcome| outcome.unwrap_err())
        };
        assert_eq!(
            ask(&mut changes, &mut raft, MembershipChange::AddVoter(2)),
            Some(ChangeFailure::Invalid("n2 is already a voter".into()))
        );
        assert_eq!(
            ask(&mut changes, &mut raft, MembershipChange::AddVoter(4)),
            None
        );
        // A second change during the joint configuration (no panic working out its target).
        assert!(raft.membership().is_joint());
        assert_eq!(
            ask(&mut changes, &mut raft, MembershipChange::Remove(2)),
            Some(ChangeFailure::InProgress)
        );
    }

    #[test]
    fn a_change_not_committed_in_time_or_in_the_term_says_it_may_still_complete() {
        let (mut raft, _) = leader_of_three();
        let mut changes = MembershipChanges::new(members(), Duration::from_secs(5));
        let (reply, mut answer) = oneshot::channel();
        let now = Instant::now();
        changes.start(&mut raft, MembershipChange::AddLearner(4), now, reply);
        changes.settle(&raft, now + Duration::from_secs(6));
        assert_eq!(
            answer.try_recv().unwrap(),
            Err(ChangeFailure::TimedOut(Duration::from_secs(5)))
        );
    }
}
