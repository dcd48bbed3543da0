//! The static configuration of one Raft node, in ticks (the shell converts durations).

use std::collections::HashSet;
use std::ops::Range;

use super::{NodeId, RaftError};
use crate::bugs::Bugs;

/// How one node takes part in a cluster of fixed membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's id; must be one of `voters`.
    pub id: NodeId,
    /// The cluster's initial voters: the configuration in force until the log or a snapshot
    /// says otherwise. A node not among them (or given none) joins a running cluster, and
    /// learns its configuration from the leader once a member adds it.
    pub voters: Vec<NodeId>,
    /// A leader sends heartbeats every this many ticks.
    pub heartbeat_ticks: u32,
    /// A follower that hears from no leader for a timeout drawn from this range (afresh after
    /// every role change) starts an election. Its start is also the check-quorum period and
    /// the leader-stickiness window.
    pub election_ticks: Range<u32>,
    /// Ask for pre-votes before incrementing the term (thesis §9.6), so that a node that
    /// cannot win does not disrupt the cluster.
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a quorum within an election timeout.
    /// (Followers that heard from a live leader within the minimum election timeout ignore
    /// vote requests and refuse pre-votes either way: leader stickiness, thesis §4.2.3.)
    pub check_quorum: bool,
    /// How many AppendEntries a leader keeps in flight to one follower.
    pub max_inflight: usize,
    /// The entry payload bytes one AppendEntries carries at most (always at least one entry).
    pub max_bytes_per_message: usize,
    /// Seeds the election-timeout randomness, so a run can be replayed.
    pub seed: u64,
    /// Deliberate bugs of the zoo that live in the core (the vote, the commit rule, the
    /// follower's log); none by default.
    pub bugs: Bugs,
    /// How the leader makes sure a read sees every committed write. Every member must use
    /// the same mode: leases rely on what followers refuse.
    pub read_mode: ReadMode,
}

/// How a leader serves linearizable reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadMode {
    /// Each batch of reads waits for a quorum to answer one heartbeat round sent after the
    /// reads arrived (ReadIndex, thesis §6.4). No assumption about clocks.
    #[default]
    ReadIndex,
    /// Reads are served at once while the leader holds a lease (thesis §6.4.1). A follower
    /// refuses every vote for the shortest election timeout after it last heard from the
    /// leader (and after it starts), so once a quorum answered a round (a heartbeat, or the
    /// first appends of a tick) the leader sent at tick `t`, no other leader can be elected before `t` plus that timeout on the
    /// followers' clocks. The lease ends one tick earlier (a follower's first tick may come
    /// right after the heartbeat) and `drift_margin_ticks` earlier still; the margin, at
    /// least one tick, also covers the time a read waits in the loop after the clock was
    /// read. This assumes that
    /// no follower's clock runs so much faster than the leader's that, over one election
    /// timeout, it gains more than the margin; and that no clock jumps. A clock that jumps
    /// forward (or a paused leader whose clock does not count the pause, which the tick
    /// clock does) can serve a stale read.
    Lease { drift_margin_ticks: u32 },
}

impl Config {
    /// The defaults: heartbeat 5 ticks, election 15..30 ticks, pre-vote and check-quorum on,
    /// 256 messages in flight of up to 1 MiB each, seeded with `id`, no bugs.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Config {
        Config {
            id,
            voters,
            heartbeat_ticks: 5,
            election_ticks: 15..30,
            pre_vote: true,
            check_quorum: true,
            max_inflight: 256,
            max_bytes_per_message: 1 << 20,
            seed: id,
            bugs: Bugs::default(),
            read_mode: ReadMode::ReadIndex,
        }
    }

    /// Checks that the configuration can work: no voter is listed twice, heartbeats come
    /// more often than election timeouts, and the limits are positive. `id` need not be a
    /// voter: a node outside the initial voters joins later, when a member adds it.
    pub fn validate(&self) -> Result<(), RaftError> {
        let mut seen = HashSet::new();
        if let Some(&twice) = self.voters.iter().find(|&&voter| !seen.insert(voter)) {
            return Err(RaftError::DuplicateVoter(twice));
        }
        if self.heartbeat_ticks == 0 {
            return Err(RaftError::ZeroHeartbeat);
        }
        if self.election_ticks.is_empty() {
            return Err(RaftError::EmptyElectionRange {
                start: self.election_ticks.start,
                end: self.election_ticks.end,
            });
        }
        if self.heartbeat_ticks >= self.election_ticks.start {
            return Err(RaftError::HeartbeatNotBelowElection {
                heartbeat: self.heartbeat_ticks,
                election: self.election_ticks.start,
            });
        }
        if self.max_inflight == 0 {
            return Err(RaftError::ZeroInflight);
        }
        if self.max_bytes_per_message == 0 {
            return Err(RaftError::ZeroMessageBytes);
        }
        if let ReadMode::Lease { drift_margin_ticks } = self.read_mode {
            if drift_margin_ticks == 0 {
                return Err(RaftError::LeaseMarginBelowOneTick);
            }
            if self.lease_ticks().is_none() {
                return Err(RaftError::NoLeaseLeft {
                    margin: drift_margin_ticks,
                    election: self.election_ticks.start,
                });
            }
        }
        Ok(())
    }

    /// How long a lease lasts from the tick its round (heartbeat or appends) was sent, if reads are
    /// served under leases: the shortest election timeout, less the tick a follower may be
    /// early and the drift margin.
    pub(super) fn lease_ticks(&self) -> Option<u32> {
        // The `lease-no-drift` bug: leases, for the whole shortest election timeout.
        if self.bugs.lease_no_drift {
            return Some(self.election_ticks.start);
        }
        match self.read_mode {
            ReadMode::ReadIndex => None,
            ReadMode::Lease { drift_margin_ticks } => self
                .election_ticks
                .start
                .checked_sub(1 + drift_margin_ticks)
                .filter(|&ticks| ticks > 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_shell_conversion() {
        let config = Config::new(2, vec![1, 2, 3]);
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.heartbeat_ticks, 5);
        assert_eq!(config.election_ticks, 15..30);
        assert_eq!(config.seed, 2);
    }

    #[test]
    fn the_lease_no_drift_bug_leases_for_the_whole_election_timeout_in_any_read_mode() {
        let buggy = Config {
            bugs: crate::bugs::Bugs::from_list(&[crate::bugs::Bug::LeaseNoDrift]),
            ..Config::new(1, vec![1, 2, 3])
        };
        assert_eq!(buggy.read_mode, ReadMode::ReadIndex);
        assert_eq!(buggy.lease_ticks(), Some(15));
    }

    #[test]
    fn a_lease_must_be_left_after_the_tick_and_the_margin() {
        let lease = |drift_margin_ticks| Config {
            read_mode: ReadMode::Lease { drift_margin_ticks },
            ..Config::new(1, vec![1, 2, 3])
        };
        assert_eq!(lease(2).lease_ticks(), Some(12));
        assert_eq!(lease(2).validate(), Ok(()));
        assert_eq!(lease(13).lease_ticks(), Some(1));
        assert_eq!(
            lease(14).validate(),
            Err(RaftError::NoLeaseLeft {
                margin: 14,
                election: 15
            })
        );
        assert_eq!(Config::new(1, vec![1, 2]).lease_ticks(), None);
        assert_eq!(lease(0).validate(), Err(RaftError::LeaseMarginBelowOneTick));
    }

    #[test]
    fn validate_rejects_each_unworkable_setting() {
        let base = Config::new(1, vec![1, 2, 3]);
        let cases = [
            (
                Config {
                    voters: vec![1, 2, 2],
                    ..base.clone()
                },
                RaftError::DuplicateVoter(2),
            ),
            (
                Config {
                    heartbeat_ticks: 0,
                    ..base.clone()
                },
                RaftError::ZeroHeartbeat,
            ),
            (
                Config {
                    election_ticks: 10..10,
                    ..base.clone()
                },
                RaftError::EmptyElectionRange { start: 10, end: 10 },
            ),
            (
                Config {
                    heartbeat_ticks: 15,
                    ..base.clone()
                },
                RaftError::HeartbeatNotBelowElection {
                    heartbeat: 15,
                    election: 15,
                },
            ),
            (
                Config {
                    max_inflight: 0,
                    ..base.clone()
                },
                RaftError::ZeroInflight,
            ),
            (
                Config {
                    max_bytes_per_message: 0,
                    ..base.clone()
                },
                RaftError::ZeroMessageBytes,
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(config.validate(), Err(expected));
        }
    }
}
