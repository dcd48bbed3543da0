//! The bug zoo: deliberate bugs, switched on with `--bug`, so that Faultline can prove it
//! catches them.
//!
//! Each one is a single realistic mistake that real Raft implementations have made (the
//! seeds' "foot-guns" and "common pitfalls", and rules of the Raft paper), in the place
//! where it would be made: the read path, the write path, the vote, the commit rule, the
//! follower's log, the WAL. Nothing outside the node knows which is on. They are off unless
//! named on the command line.

use std::fmt;
use std::str::FromStr;

/// One switchable bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// Serve reads from local state without ReadIndex (stale reads from deposed leaders
    /// and lagging followers).
    StaleRead,
    /// Acknowledge a write once the leader has appended it locally, before it is committed
    /// (a leader crash or partition loses acknowledged writes).
    EarlyAck,
    /// Do not persist the vote (a restarted node may vote twice in one term, and two
    /// leaders of one term may commit different entries at one index).
    ForgetVote,
    /// Never fsync the WAL: acknowledged writes live in the page cache until the kernel
    /// writes them back, and a power loss takes them.
    NoFsync,
    /// A leader commits an entry of an earlier term once a majority holds it, instead of
    /// only entries of its own term (Raft §5.4.2, Figure 8).
    CommitOldTerm,
    /// Grant a vote without checking that the candidate's log is at least as up to date
    /// (Raft §5.4.1): a node that missed committed entries can win and overwrite them.
    VoteAnyLog,
    /// A follower overwrites the entries the leader sends but keeps whatever followed a
    /// conflicting entry (Figure 2, AppendEntries rule 3), and so acknowledges its whole log
    /// as the leader's: the leader counts entries the follower does not hold, and the
    /// follower commits and applies entries no leader sent it.
    NoTruncate,
    /// Change voters in one step, from C_old straight to C_new, without the joint
    /// configuration (thesis §4.3): while some nodes have switched and others have not, a
    /// majority of C_old and a disjoint majority of C_new can elect two leaders in one term
    /// and commit different entries at one index.
    MembershipOneStep,
    /// Serve reads under a lease that lasts the whole election timeout from the heartbeat
    /// round's sending, with no margin for clock drift (thesis §6.4.1): a follower whose
    /// clock runs a little fast stops refusing votes while the leader's lease still holds,
    /// and a new leader's writes are missed by the old one's reads. Turns leases on.
    LeaseNoDrift,
}

impl Bug {
    /// Every bug, in the order help texts list them.
    pub const ALL: [Bug; 9] = [
        Bug::StaleRead,
        Bug::EarlyAck,
        Bug::ForgetVote,
        Bug::NoFsync,
        Bug::CommitOldTerm,
        Bug::VoteAnyLog,
        Bug::NoTruncate,
        Bug::MembershipOneStep,
        Bug::LeaseNoDrift,
    ];

    /// The mistake, in one line (for `--help`).
    pub fn mistake(self) -> &'static str {
        match self {
            Bug::StaleRead => "reads served from local state, without ReadIndex",
            Bug::EarlyAck => "writes acknowledged once appended on the leader, before commit",
            Bug::ForgetVote => "the vote is not persisted: a restarted node votes again",
            Bug::NoFsync => "the WAL is never fsynced",
            Bug::CommitOldTerm => "a leader commits entries of earlier terms by counting replicas",
            Bug::VoteAnyLog => "votes granted without the up-to-date-log check",
            Bug::NoTruncate => "a follower keeps the entries after a conflicting one",
            Bug::MembershipOneStep => {
                "voters change from C_old to C_new in one step, with no joint configuration"
            }
            Bug::LeaseNoDrift => "lease reads with no margin for clock drift",
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Bug::StaleRead => "stale-read",
            Bug::EarlyAck => "early-ack",
            Bug::ForgetVote => "forget-vote",
            Bug::NoFsync => "no-fsync",
            Bug::CommitOldTerm => "commit-old-term",
            Bug::VoteAnyLog => "vote-any-log",
            Bug::NoTruncate => "no-truncate",
            Bug::MembershipOneStep => "membership-one-step",
            Bug::LeaseNoDrift => "lease-no-drift",
        }
    }
}

/// `--bug` takes the names, and `--help` lists them with what each does.
impl clap::ValueEnum for Bug {
    fn value_variants<'a>() -> &'a [Self] {
        &Bug::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.mistake()))
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Bug {
    type Err = String;

    fn from_str(s: &str) -> Result<Bug, String> {
        Bug::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            let names: Vec<_> = Bug::ALL.iter().map(|b| b.name()).collect();
            format!("unknown bug `{s}`; known bugs: {}", names.join(", "))
        })
    }
}

/// The set of bugs switched on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    pub stale_read: bool,
    pub early_ack: bool,
    pub forget_vote: bool,
    pub no_fsync: bool,
    pub commit_old_term: bool,
    pub vote_any_log: bool,
    pub no_truncate: bool,
    pub membership_one_step: bool,
    pub lease_no_drift: bool,
}

impl Bugs {
    /// No bug: the correct node.
    pub const NONE: Bugs = Bugs {
        stale_read: false,
        early_ack: false,
        forget_vote: false,
        no_fsync: false,
        commit_old_term: false,
        vote_any_log: false,
        no_truncate: false,
        membership_one_step: false,
        lease_no_drift: false,
    };

    /// Switches on every bug in `list`.
    pub fn from_list(list: &[Bug]) -> Bugs {
        let mut bugs = Bugs::default();
        for &bug in list {
            *bugs.flag(bug) = true;
        }
        bugs
    }

    /// Whether `bug` is on.
    pub fn has(&self, bug: Bug) -> bool {
        let mut copy = *self;
        *copy.flag(bug)
    }

    /// Whether any bug is on.
    pub fn any(&self) -> bool {
        Bug::ALL.into_iter().any(|bug| self.has(bug))
    }

    fn flag(&mut self, bug: Bug) -> &mut bool {
        match bug {
            Bug::StaleRead => &mut self.stale_read,
            Bug::EarlyAck => &mut self.early_ack,
            Bug::ForgetVote => &mut self.forget_vote,
            Bug::NoFsync => &mut self.no_fsync,
            Bug::CommitOldTerm => &mut self.commit_old_term,
            Bug::VoteAnyLog => &mut self.vote_any_log,
            Bug::NoTruncate => &mut self.no_truncate,
            Bug::MembershipOneStep => &mut self.membership_one_step,
            Bug::LeaseNoDrift => &mut self.lease_no_drift,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for bug in Bug::ALL {
            assert_eq!(bug.name().parse::<Bug>(), Ok(bug));
        }
        let err = "lose-everything".parse::<Bug>().unwrap_err();
        assert!(
            err.contains("stale-read, early-ack, forget-vote, no-fsync"),
            "{err}"
        );
    }

    #[test]
    fn each_bug_switches_on_its_own_flag_only() {
        for bug in Bug::ALL {
            let bugs = Bugs::from_list(&[bug]);
            assert!(bugs.has(bug) && bugs.any(), "{bug}");
            let others = Bug::ALL.into_iter().filter(|&other| other != bug);
            assert!(others.clone().all(|other| !bugs.has(other)), "{bug}");
        }
        assert!(!Bugs::default().any());
    }
}
