//! Leader election (Raft §5.2): the randomized election timer, pre-vote (thesis §9.6), vote
//! requests with the one-vote-per-term and up-to-date-log rules, and counting the answers.

use std::collections::BTreeMap;
use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::membership::VoteResult;
use super::{Index, Message, MessageBody, NodeId, Raft, Role, Term};

/// Counts ticks without news from a leader against a timeout drawn at random, so that
/// followers rarely time out together and split the vote.
#[derive(Debug)]
pub(super) struct ElectionTimer {
    elapsed: u32,
    timeout: u32,
    range: Range<u32>,
    rng: ChaCha8Rng,
}

impl ElectionTimer {
    /// `range` must not be empty (`Config::validate` checks it).
    pub fn new(range: Range<u32>, seed: u64) -> ElectionTimer {
        let mut timer = ElectionTimer {
            elapsed: 0,
            timeout: 0,
            range,
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        timer.restart();
        timer
    }

    /// Starts over with a freshly drawn timeout (on every role change).
    pub fn restart(&mut self) {
        self.elapsed = 0;
        self.timeout = self.rng.random_range(self.range.clone());
    }

    /// Starts over with the same timeout (on news from the leader).
    pub fn reset_elapsed(&mut self) {
        self.elapsed = 0;
    }

    /// Counts one tick; true when the timeout is reached.
    pub fn tick(&mut self) -> bool {
        self.elapsed += 1;
        self.elapsed >= self.timeout
    }

    /// Counts one tick of a leader's check-quorum period; true when the period (the
    /// shortest election timeout) ends, and the next one starts.
    pub fn tick_leader(&mut self) -> bool {
        self.elapsed += 1;
        let ended = self.elapsed >= self.range.start;
        if ended {
            self.elapsed = 0;
        }
        ended
    }

    /// Ticks since the last restart or news from the leader.
    pub fn elapsed(&self) -> u32 {
        self.elapsed
    }

    /// The shortest possible timeout: the check-quorum period and the stickiness window.
    pub fn minimum(&self) -> u32 {
        self.range.start
    }
}

/// The answers to one (pre-)vote campaign, the candidate's own included.
#[derive(Debug, Default)]
pub(super) struct VoteTally {
    answers: BTreeMap<NodeId, bool>,
}

impl VoteTally {
    fn restart(&mut self, own_id: NodeId) {
        self.answers.clear();
        self.answers.insert(own_id, true);
    }

    /// Records a voter's first answer; later answers from the same voter are duplicates.
    fn record(&mut self, voter: NodeId, granted: bool) {
        self.answers.entry(voter).or_insert(granted);
    }
}

impl Raft {
    /// A follower or candidate that heard from no leader for a whole timeout campaigns; a
    /// (pre-)candidate asks the peers that have not answered again every heartbeat interval
    /// (Raft §5.1: a server retries an RPC that gets no response).
    pub(super) fn tick_election(&mut self) {
        // Only a corrupt peer can have pushed the term to its limit; never overflow it.
        if self.election_timer.tick() && self.term < Term::MAX && self.may_campaign() {
            self.elections += 1;
            if self.config.pre_vote {
                self.become_pre_candidate();
            } else {
                self.become_candidate(false);
            }
        } else if matches!(self.role, Role::PreCandidate | Role::Candidate)
            && self
                .election_timer
                .elapsed()
                .is_multiple_of(self.config.heartbeat_ticks)
        {
            self.retry_vote_requests();
        }
    }

    /// Asks again the peers that have not answered this campaign's (pre-)vote request: a
    /// request to a peer that was down or cut off is lost, and the answer decides the term.
    fn retry_vote_requests(&mut self) {
        let silent: Vec<NodeId> = self
            .voter_peers()
            .into_iter()
            .filter(|peer| !self.votes.answers.contains_key(peer))
            .collect();
        self.ask_for_votes(silent);
    }

    /// Whether this node heard from a live leader (or is one) within the shortest election
    /// timeout. Such a node ignores vote requests and refuses pre-votes for later terms, so
    /// that a node that cannot hear the leader, or comes back from a partition, cannot
    /// depose a leader the others still follow (leader stickiness, thesis §4.2.3). etcd
    /// applies this only with check-quorum; without it, pre-vote alone lets leadership flap
    /// forever when one link is cut. A leader is always in its own lease: only check-quorum
    /// makes a leader cut off from a quorum step down. A vote request of a leadership
    /// transfer bypasses this (`RequestVote::transfer`, etcd's `campaignTransfer`); a leader
    /// that starts a transfer gives up its lease for that reason.
    ///
    /// Under leases the refusal is a promise a leader's lease counts on, so it is kept for
    /// the shortest election timeout after this node last heard from a leader whatever
    /// happened since (a refusal from a newer term makes it a follower of that term with no
    /// leader), and after it starts (it may have answered a leader just before it crashed).
    pub(super) fn in_leader_lease(&self) -> bool {
        let minimum = self.election_timer.minimum();
        let sticky = self.leader.is_some() && self.election_timer.elapsed() < minimum;
        if self.config.lease_ticks().is_none() {
            return sticky;
        }
        let heard_at = self.heard_from_leader_at.unwrap_or(0);
        sticky || self.now.saturating_sub(heard_at) < u64::from(minimum)
    }

    fn become_pre_candidate(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.election_timer.restart();
        self.votes.restart(self.config.id);
        self.ask_for_votes(self.voter_peers());
        self.count_votes();
    }

    /// Whether this node may campaign: it votes in the configuration in force, or in the
    /// last committed one while a later one has not committed. A learner or a node whose
    /// removal committed never does. A leader that appended a C_new without itself and fell
    /// before C_new committed may hold the only copy of it, which the remaining voters need
    /// to win (their logs are behind, and it refuses them): it campaigns, counting votes by
    /// C_new, leads until C_new commits and steps down then.
    pub(super) fn may_campaign(&self) -> bool {
        let id = self.config.id;
        self.log.membership().is_voter(id)
            || self.log.membership_at(self.log.committed()).is_voter(id)
    }

    /// The other voters of the configuration in force (both halves of a joint one): whose
    /// votes a campaign asks for.
    fn voter_peers(&self) -> Vec<NodeId> {
        let own = self.config.id;
        let voters = self.log.membership().all_voters();
        voters.into_iter().filter(|&id| id != own).collect()
    }

    /// Campaigns in the next term; `transfer` when the leader handed over leadership
    /// (TimeoutNow), so that voters that still hear from it grant the vote.
    pub(super) fn become_candidate(&mut self, transfer: bool) {
        self.campaign_transfer = transfer;
        self.term += 1;
        self.vote = Some(self.config.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.election_timer.restart();
        self.votes.restart(self.config.id);
        self.ask_for_votes(self.voter_peers());
        self.count_votes();
    }

    /// Sends `peers` this campaign's request: a pre-vote for the next term, or a vote in
    /// this one.
    fn ask_for_votes(&mut self, peers: Vec<NodeId>) {
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        let (term, body) = if self.role == Role::PreCandidate {
            let body = MessageBody::PreVote {
                last_log_index,
                last_log_term,
            };
            (self.term + 1, body)
        } else {
            let body = MessageBody::RequestVote {
                last_log_index,
                last_log_term,
                transfer: self.campaign_transfer,
            };
            (self.term, body)
        };
        for to in peers {
            self.send_in_term(to, term, body.clone());
        }
    }

    fn count_votes(&mut self) {
        // By the quorum rules of the configuration in force: a majority of each half of a
        // joint one.
        match self.log.membership().vote_result(&self.votes.answers) {
            VoteResult::Won if self.role == Role::PreCandidate => self.become_candidate(false),
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    /// Answers a PreVote or RequestVote whose term is not below ours (Figure 2,
    /// RequestVote receiver rules). A vote is granted at most once per term, and only to a
    /// candidate whose log is at least as up to date as ours. A pre-vote changes nothing here,
    /// and is refused while a leader is live (a vote request then never gets this far).
    pub(super) fn handle_vote_request(
        &mut self,
        msg: &Message,
        last_log_index: Index,
        last_log_term: Term,
    ) {
        let is_pre_vote = matches!(msg.body, MessageBody::PreVote { .. });
        let transfer = matches!(msg.body, MessageBody::RequestVote { transfer: true, .. });
        // Under leases no new vote is granted while a leader's lease may count on this node,
        // in whatever term (but a transfer's: its leader gave up its lease).
        let lease_holds =
            self.config.lease_ticks().is_some() && !transfer && self.in_leader_lease();
        let can_vote = self.vote == Some(msg.from)
            || (self.vote.is_none() && self.leader.is_none() && !lease_holds)
            || (is_pre_vote && msg.term > self.term && !self.in_leader_lease());
        // The `vote-any-log` bug skips the up-to-date check (Raft §5.4.1).
        let up_to_date =
            self.config.bugs.vote_any_log || self.log.is_up_to_date(last_log_index, last_log_term);
        let granted = can_vote && up_to_date;
        // A grant carries the term asked about; a refusal carries ours, so that a candidate
        // that is behind catches up.
        let term = if granted { msg.term } else { self.term };
        let body = if is_pre_vote {
            MessageBody::PreVoteResponse { granted }
        } else {
            MessageBody::RequestVoteResponse { granted }
        };
        if granted && !is_pre_vote {
            self.vote = Some(msg.from);
            self.election_timer.reset_elapsed();
        }
        self.send_in_term(msg.from, term, body);
    }

    /// Counts a PreVoteResponse or RequestVoteResponse that answers the current campaign.
    pub(super) fn handle_vote_response(&mut self, msg: &Message, granted: bool) {
        let answers_campaign = match (self.role, &msg.body) {
            // Grants carry the term we would campaign in; refusals our own term.
            (Role::PreCandidate, MessageBody::PreVoteResponse { .. }) => {
                msg.term == if granted { self.term + 1 } else { self.term }
            }
            (Role::Candidate, MessageBody::RequestVoteResponse { .. }) => msg.term == self.term,
            _ => false,
        };
        if answers_campaign {
            self.votes.record(msg.from, granted);
            self.count_votes();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bugs::{Bug, Bugs};
    use crate::raft::testing::{Cluster, drain, elect, message, plain_config, recovered};
    use crate::raft::{Config, Payload};

    fn vote_request(
        from: NodeId,
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
    ) -> Message {
        message(
            from,
            1,
            term,
            MessageBody::RequestVote {
                last_log_index,
                last_log_term,
                transfer: false,
            },
        )
    }

    fn pre_vote(from: NodeId, term: Term, last_log_index: Index, last_log_term: Term) -> Message {
        message(
            from,
            1,
            term,
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
            },
        )
    }

    fn granted(messages: &[Message]) -> Vec<(NodeId, Term, bool)> {
        messages
            .iter()
            .filter_map(|msg| match msg.body {
                MessageBody::RequestVoteResponse { granted }
                | MessageBody::PreVoteResponse { granted } => Some((msg.to, msg.term, granted)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_follower_starts_an_election_when_its_timeout_passes_without_a_leader() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 4, &[1, 4]);
        let mut ticks = 0;
        while raft.role == Role::Follower && ticks < 100 {
            raft.tick();
            ticks += 1;
        }
        assert!((15..30).contains(&ticks), "timed out after {ticks} ticks");
        assert_eq!(
            (raft.role, raft.term, raft.vote),
            (Role::Candidate, 5, Some(1))
        );
        assert_eq!(raft.status().elections, 1);
        let requests: Vec<_> = drain(&mut raft)
            .into_iter()
            .map(|msg| (msg.to, msg.term, msg.body))
            .collect();
        let body = MessageBody::RequestVote {
            last_log_index: 2,
            last_log_term: 4,
            transfer: false,
        };
        assert_eq!(requests, [(2, 5, body.clone()), (3, 5, body)]);
    }

    #[test]
    fn a_candidate_whose_timeout_passes_campaigns_again_in_the_next_term() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1]);
        while raft.role == Role::Follower {
            raft.tick();
        }
        assert_eq!(raft.term, 2);
        drain(&mut raft);
        let mut ticks = 0;
        while raft.term == 2 && ticks < 100 {
            raft.tick();
            ticks += 1;
        }
        assert!((15..30).contains(&ticks), "split vote after {ticks} ticks");
        assert_eq!(
            (raft.role, raft.term, raft.vote),
            (Role::Candidate, 3, Some(1))
        );
        assert_eq!(raft.status().elections, 2);
        // Term 2's requests were asked again every heartbeat, unanswered; then term 3's.
        let requests: Vec<_> = drain(&mut raft)
            .into_iter()
            .map(|msg| (msg.to, msg.term))
            .collect();
        let (retries, campaign) = requests.split_at(requests.len() - 2);
        assert!(retries.iter().all(|&(_, term)| term == 2), "{retries:?}");
        assert_eq!(campaign, [(2, 3), (3, 3)]);
    }

    #[test]
    fn a_pre_candidate_asks_again_only_the_peers_that_have_not_answered() {
        let config = Config {
            pre_vote: true,
            ..plain_config(1, &[1, 2, 3, 4, 5])
        };
        let mut raft = recovered(config, 1, &[1]);
        while raft.role == Role::Follower {
            raft.tick();
        }
        assert_eq!((raft.role, raft.term), (Role::PreCandidate, 1));
        drain(&mut raft);
        // Peer 2 refuses (it still hears a leader); 3, 4 and 5 are down.
        raft.step(Message {
            from: 2,
            to: 1,
            term: 1,
            body: MessageBody::PreVoteResponse { granted: false },
        });
        for _ in 0..raft.config.heartbeat_ticks {
            raft.tick();
        }
        let asked: Vec<_> = drain(&mut raft)
            .into_iter()
            .map(|msg| (msg.to, msg.term, msg.body))
            .collect();
        let body = MessageBody::PreVote {
            last_log_index: 1,
            last_log_term: 1,
        };
        assert_eq!(
            asked,
            [(3, 2, body.clone()), (4, 2, body.clone()), (5, 2, body)],
            "the silent peers are asked again for the next term, the one that answered is not"
        );
        assert_eq!((raft.role, raft.term), (Role::PreCandidate, 1));
    }

    #[test]
    fn a_candidate_restarts_its_election_timer_when_it_campaigns() {
        let config = Config {
            pre_vote: true,
            ..plain_config(1, &[1, 2, 3])
        };
        let mut raft = recovered(config, 1, &[1]);
        for _ in 0..5 {
            raft.tick();
        }
        while raft.role == Role::Follower {
            raft.tick();
        }
        assert_eq!(raft.role, Role::PreCandidate);
        assert_eq!(raft.election_timer.elapsed(), 0, "pre-campaign");
        for _ in 0..5 {
            raft.tick();
        }
        raft.step(message(
            2,
            1,
            2,
            MessageBody::PreVoteResponse { granted: true },
        ));
        assert_eq!(raft.role, Role::Candidate);
        assert_eq!(raft.election_timer.elapsed(), 0, "campaign");
    }

    #[test]
    fn granting_a_vote_resets_the_election_timer_and_refusing_does_not() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 2, &[1]);
        for _ in 0..10 {
            raft.tick();
        }
        raft.step(vote_request(2, 2, 1, 1));
        assert_eq!(granted(&drain(&mut raft)), [(2, 2, true)]);
        assert_eq!(raft.election_timer.elapsed(), 0);
        for _ in 0..10 {
            raft.tick();
        }
        raft.step(vote_request(3, 2, 1, 1));
        assert_eq!(granted(&drain(&mut raft)), [(3, 2, false)]);
        assert_eq!(raft.election_timer.elapsed(), 10);
    }

    #[test]
    fn a_candidate_refused_with_a_higher_term_becomes_a_follower_in_it() {
        for pre_vote in [false, true] {
            let config = Config {
                pre_vote,
                ..plain_config(1, &[1, 2, 3])
            };
            let mut raft = recovered(config, 1, &[1]);
            while raft.role == Role::Follower {
                raft.tick();
            }
            let refusal = if pre_vote {
                MessageBody::PreVoteResponse { granted: false }
            } else {
                MessageBody::RequestVoteResponse { granted: false }
            };
            raft.step(message(2, 1, 7, refusal));
            assert_eq!(
                (raft.role, raft.term, raft.vote),
                (Role::Follower, 7, None),
                "pre-vote: {pre_vote}"
            );
        }
    }

    #[test]
    fn election_timeouts_are_drawn_from_the_range_by_the_seeded_rng() {
        let timeouts: Vec<u32> = (0..40)
            .map(|seed| ElectionTimer::new(15..30, seed).timeout)
            .collect();
        assert!(timeouts.iter().all(|timeout| (15..30).contains(timeout)));
        assert!(
            timeouts.iter().any(|&timeout| timeout != timeouts[0]),
            "not randomized"
        );
        assert_eq!(
            ElectionTimer::new(15..30, 7).timeout,
            ElectionTimer::new(15..30, 7).timeout
        );
    }

    #[test]
    fn a_vote_is_granted_at_most_once_per_term() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1]);
        raft.step(vote_request(2, 2, 1, 1));
        raft.step(vote_request(3, 2, 1, 1));
        raft.step(vote_request(2, 2, 1, 1));
        assert_eq!(
            granted(&drain(&mut raft)),
            [(2, 2, true), (3, 2, false), (2, 2, true)]
        );
        assert_eq!(raft.vote, Some(2));
    }

    #[test]
    fn a_vote_is_granted_only_to_a_log_at_least_as_up_to_date() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 2, &[1, 2]);
        raft.step(vote_request(2, 3, 5, 1));
        raft.step(vote_request(3, 4, 1, 2));
        assert_eq!(granted(&drain(&mut raft)), [(2, 3, false), (3, 4, false)]);
        assert_eq!(raft.vote, None);
        raft.step(vote_request(3, 5, 2, 2));
        assert_eq!(granted(&drain(&mut raft)), [(3, 5, true)]);
    }

    #[test]
    fn the_vote_any_log_bug_votes_for_a_stale_log() {
        let config = Config {
            bugs: Bugs::from_list(&[Bug::VoteAnyLog]),
            ..plain_config(1, &[1, 2, 3])
        };
        let mut raft = recovered(config, 2, &[1, 2]);
        raft.step(vote_request(2, 3, 1, 1));
        assert_eq!(granted(&drain(&mut raft)), [(2, 3, true)]);
    }

    #[test]
    fn a_granted_vote_is_persisted_before_the_answer_is_sent() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1]);
        raft.step(vote_request(2, 2, 1, 1));
        let ready = raft.ready();
        assert_eq!(
            ready.hard_state.map(|hard| (hard.term, hard.vote)),
            Some((2, Some(2)))
        );
        assert_eq!(granted(&ready.messages), [(2, 2, true)]);
    }

    #[test]
    fn a_candidate_with_a_quorum_of_votes_leads_and_appends_a_noop() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3, 4, 5]), 1, &[1]);
        elect(&mut raft);
        assert_eq!(
            (raft.role, raft.term, raft.leader),
            (Role::Leader, 2, Some(1))
        );
        assert_eq!(raft.log.last_index(), 2);
        assert_eq!(raft.log.entries_from(2, 1)[0].payload, Payload::Noop);
    }

    #[test]
    fn a_candidate_refused_by_a_quorum_returns_to_follower() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1]);
        while raft.role != Role::Candidate {
            raft.tick();
        }
        raft.step(message(
            2,
            1,
            2,
            MessageBody::RequestVoteResponse { granted: false },
        ));
        assert_eq!(raft.role, Role::Candidate);
        raft.step(message(
            3,
            1,
            2,
            MessageBody::RequestVoteResponse { granted: false },
        ));
        assert_eq!((raft.role, raft.term), (Role::Follower, 2));
    }

    #[test]
    fn a_duplicated_vote_is_counted_once() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3, 4, 5]), 1, &[1]);
        while raft.role != Role::Candidate {
            raft.tick();
        }
        for _ in 0..3 {
            raft.step(message(
                2,
                1,
                2,
                MessageBody::RequestVoteResponse { granted: true },
            ));
        }
        assert_eq!(
            raft.role,
            Role::Candidate,
            "two votes of five are not a quorum"
        );
    }

    #[test]
    fn a_candidate_asks_again_every_heartbeat_the_peers_that_have_not_answered() {
        let mut raft = recovered(plain_config(1, &[1, 2, 3, 4, 5]), 3, &[3]);
        while raft.role == Role::Follower {
            raft.tick();
        }
        let asked: Vec<_> = drain(&mut raft).into_iter().map(|msg| msg.to).collect();
        assert_eq!(asked, [2, 3, 4, 5]);
        // Node 2 refuses and node 3 grants; 4 and 5 say nothing (down, or the requests lost).
        raft.step(message(
            2,
            1,
            4,
            MessageBody::RequestVoteResponse { granted: false },
        ));
        raft.step(message(
            3,
            1,
            4,
            MessageBody::RequestVoteResponse { granted: true },
        ));
        drain(&mut raft);
        let mut asked_again = Vec::new();
        for _ in 0..raft.config.heartbeat_ticks {
            raft.tick();
            asked_again.extend(
                drain(&mut raft)
                    .into_iter()
                    .map(|msg| (msg.to, msg.term, msg.body)),
            );
        }
        let request = MessageBody::RequestVote {
            last_log_index: 1,
            last_log_term: 3,
            transfer: false,
        };
        assert_eq!(
            asked_again,
            [(4, 4, request.clone()), (5, 4, request)],
            "the same term, only the silent peers"
        );
        assert_eq!((raft.role, raft.term), (Role::Candidate, 4));
    }

    #[test]
    fn pre_vote_keeps_the_term_until_a_quorum_would_vote() {
        let config = Config {
            pre_vote: true,
            ..plain_config(1, &[1, 2, 3])
        };
        let mut raft = recovered(config, 3, &[3]);
        while raft.role == Role::Follower {
            raft.tick();
        }
        assert_eq!(
            (raft.role, raft.term, raft.vote),
            (Role::PreCandidate, 3, None)
        );
        let asked: Vec<_> = drain(&mut raft).into_iter().map(|msg| msg.term).collect();
        assert_eq!(asked, [4, 4], "pre-votes ask about the next term");
        raft.step(message(
            2,
            1,
            4,
            MessageBody::PreVoteResponse { granted: true },
        ));
        assert_eq!(
            (raft.role, raft.term, raft.vote),
            (Role::Candidate, 4, Some(1))
        );
    }

    #[test]
    fn a_pre_vote_is_refused_for_a_stale_log_and_changes_nothing_when_granted() {
        let config = Config {
            pre_vote: true,
            ..plain_config(1, &[1, 2, 3])
        };
        let mut raft = recovered(config, 2, &[1, 2]);
        raft.step(pre_vote(2, 3, 1, 1));
        raft.step(pre_vote(3, 3, 2, 2));
        assert_eq!(granted(&drain(&mut raft)), [(2, 2, false), (3, 3, true)]);
        assert_eq!((raft.term, raft.vote, raft.role), (2, None, Role::Follower));
    }

    #[test]
    fn an_isolated_node_with_pre_vote_does_not_inflate_its_term() {
        let config = Config {
            pre_vote: true,
            ..plain_config(1, &[1, 2, 3])
        };
        let mut raft = recovered(config, 2, &[2]);
        for _ in 0..1000 {
            raft.tick();
            drain(&mut raft);
        }
        assert_eq!(raft.term, 2);
        assert!(raft.status().elections > 10);
    }

    #[test]
    fn under_leases_a_follower_that_learns_a_newer_term_from_a_refusal_still_refuses_votes() {
        let config = Config {
            read_mode: crate::raft::ReadMode::Lease {
                drift_margin_ticks: 2,
            },
            ..plain_config(1, &[1, 2, 3])
        };
        let mut raft = recovered(config, 3, &[1, 3]);
        let minimum = raft.election_timer.minimum();
        for _ in 0..minimum {
            raft.tick();
        }
        drain(&mut raft);
        // Leader 2 of term 3 is heard from: its lease may now count on this node.
        raft.step(message(
            2,
            1,
            3,
            MessageBody::Heartbeat {
                leader_commit: 0,
                read_round: 1,
            },
        ));
        drain(&mut raft);
        // A late refusal of term 4 makes it a follower of term 4 with no leader...
        raft.step(message(
            3,
            1,
            4,
            MessageBody::PreVoteResponse { granted: false },
        ));
        assert_eq!((raft.term, raft.leader), (4, None));
        // ...but it still grants no vote in that term while the lease may hold.
        let request = |transfer| {
            message(
                3,
                1,
                4,
                MessageBody::RequestVote {
                    last_log_index: 5,
                    last_log_term: 4,
                    transfer,
                },
            )
        };
        raft.step(request(false));
        assert_eq!(raft.vote, None);
        assert_eq!(
            drain(&mut raft)
                .iter()
                .map(|msg| &msg.body)
                .collect::<Vec<_>>(),
            [&MessageBody::RequestVoteResponse { granted: false }]
        );
        // A transfer's vote request is granted: its leader gave up its lease.
        raft.step(request(true));
        assert_eq!(raft.vote, Some(3));
    }

    #[test]
    fn under_leases_a_node_that_just_started_ignores_vote_requests_for_an_election_timeout() {
        let config = Config {
            read_mode: crate::raft::ReadMode::Lease {
                drift_margin_ticks: 2,
            },
            ..plain_config(1, &[1, 2, 3])
        };
        let mut raft = recovered(config, 3, &[1, 3]);
        let request = |term| {
            message(
                2,
                1,
                term,
                MessageBody::RequestVote {
                    last_log_index: 5,
                    last_log_term: 4,
                    transfer: false,
                },
            )
        };
        raft.step(request(4));
        assert_eq!(
            raft.term, 3,
            "it may have answered a leader just before it stopped"
        );
        assert!(drain(&mut raft).is_empty());
        for _ in 0..raft.election_timer.minimum() {
            raft.tick();
        }
        drain(&mut raft);
        raft.step(request(raft.term + 1));
        assert_eq!(
            raft.vote,
            Some(2),
            "after an election timeout it votes again"
        );

        // Under ReadIndex a node votes at once after starting.
        let mut raft = recovered(plain_config(1, &[1, 2, 3]), 3, &[1, 3]);
        raft.step(request(4));
        assert_eq!(raft.vote, Some(2));
    }

    #[test]
    fn a_follower_with_a_live_leader_ignores_vote_requests_with_or_without_check_quorum() {
        for check_quorum in [true, false] {
            let mut cluster = Cluster::new(3, |config| config.check_quorum = check_quorum);
            cluster.elect(1);
            let term = cluster.node(1).term;
            cluster.node(2).step(message(
                3,
                2,
                term + 1,
                MessageBody::RequestVote {
                    last_log_index: 99,
                    last_log_term: term,
                    transfer: false,
                },
            ));
            assert_eq!(cluster.node(2).term, term, "a live leader is not deposed");
            assert!(drain(cluster.node(2)).is_empty());
        }
    }

    #[test]
    fn a_live_leader_and_its_followers_refuse_pre_votes() {
        let mut cluster = Cluster::new(3, |config| config.check_quorum = false);
        cluster.elect(1);
        let term = cluster.node(1).term;
        for id in [1, 2] {
            let raft = cluster.node(id);
            raft.step(message(
                3,
                id,
                term + 1,
                MessageBody::PreVote {
                    last_log_index: 99,
                    last_log_term: term,
                },
            ));
            let answers: Vec<_> = drain(raft)
                .into_iter()
                .map(|msg| (msg.to, msg.term, msg.body))
                .collect();
            assert_eq!(
                answers,
                [(3, term, MessageBody::PreVoteResponse { granted: false })],
                "node {id}"
            );
        }
    }

    #[test]
    fn a_follower_whose_leader_went_silent_grants_votes_again() {
        let mut cluster = Cluster::new(3, |_| {});
        cluster.elect(1);
        let term = cluster.node(1).term;
        cluster.isolate(1);
        for _ in 0..15 {
            cluster.node(2).election_timer.elapsed += 1;
        }
        cluster.node(2).step(message(
            3,
            2,
            term + 1,
            MessageBody::RequestVote {
                last_log_index: 99,
                last_log_term: term,
                transfer: false,
            },
        ));
        assert_eq!(
            (cluster.node(2).term, cluster.node(2).vote),
            (term + 1, Some(3))
        );
    }

    #[test]
    fn pre_vote_alone_keeps_a_leader_that_one_follower_cannot_hear() {
        // Without stickiness, node 3 wins node 2's pre-vote and then its vote and deposes
        // leader 1, which hears nothing from node 3 and deposes it back: forever.
        let mut cluster = Cluster::new(3, |config| config.check_quorum = false);
        cluster.elect(1);
        let term = cluster.node(1).term;
        cluster.cut_link(1, 3);
        for tick in 0..300 {
            cluster.tick_all(1);
            assert_eq!(cluster.leaders(), [1], "after {tick} ticks");
        }
        assert_eq!((cluster.node(1).term, cluster.node(2).term), (term, term));
    }

    #[test]
    fn a_node_that_cannot_reach_a_quorum_never_disrupts_the_leader() {
        let mut cluster = Cluster::new(3, |_| {});
        cluster.elect(1);
        let term = cluster.node(1).term;
        // Node 3 hears nothing from the leader but can still reach node 2.
        cluster.cut_link(1, 3);
        cluster.tick_all(300);
        assert_eq!(cluster.leaders(), [1]);
        assert_eq!(cluster.node(1).term, term);
    }
}
