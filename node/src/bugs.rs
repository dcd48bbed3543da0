//! Deliberate bugs, switched on with `--bug`, so that Faultline can prove it catches them.
//!
//! Each one is a real change of the node's behaviour; nothing outside the node knows
//! which is on. They are off unless named on the command line.

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
    /// Do not persist the vote (a restarted node may vote twice in one term).
    ForgetVote,
}

impl Bug {
    /// Every bug, for help texts.
    pub const ALL: [Bug; 3] = [Bug::StaleRead, Bug::EarlyAck, Bug::ForgetVote];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Bug::StaleRead => "stale-read",
            Bug::EarlyAck => "early-ack",
            Bug::ForgetVote => "forget-vote",
        }
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
}

impl Bugs {
    /// Switches on every bug in `list`.
    pub fn from_list(list: &[Bug]) -> Bugs {
        Bugs {
            stale_read: list.contains(&Bug::StaleRead),
            early_ack: list.contains(&Bug::EarlyAck),
            forget_vote: list.contains(&Bug::ForgetVote),
        }
    }

    /// Whether any bug is on.
    pub fn any(&self) -> bool {
        self.stale_read || self.early_ack || self.forget_vote
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
        assert!(err.contains("stale-read, early-ack, forget-vote"), "{err}");
        let bugs = Bugs::from_list(&[Bug::EarlyAck]);
        assert!(bugs.early_ack && !bugs.stale_read && bugs.any());
        assert!(!Bugs::default().any());
    }
}
