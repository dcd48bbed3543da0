//! A fingerprint of everything a node has applied, so that replicas can be compared where no
//! client looks.
//!
//! Raft's State Machine Safety (Figure 3): a node that has applied the entry at index `i`
//! applied exactly the entries every other node applies up to `i`. The fingerprint is a hash
//! chained over each applied entry (its index, term and payload): one differing entry
//! changes it and every fingerprint after it. Nodes publish the fingerprints they had at
//! every [`CHECKPOINT_EVERY`]-th index in `GET /status`; the harness compares them across
//! nodes, index by index. A follower that applied entries no leader sent it, or two leaders
//! of one term that committed different entries, show as two fingerprints for one index,
//! even if no client ever reads from that follower.
//!
//! The chain's value at a snapshot's index travels inside the snapshot (it is part of the
//! state, see [`crate::kv::KvStore`]), so a node restored from one goes on with the same
//! chain as the node that took it.

use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::raft::{Index, Term};

/// Applied indexes that are a multiple of this are published as checkpoints.
pub const CHECKPOINT_EVERY: Index = 64;

/// How many checkpoints `GET /status` shows, the latest last. With one poll of the harness
/// every few hundred milliseconds, this covers far more entries than a node applies between
/// two polls at full speed.
pub const CHECKPOINTS_KEPT: usize = 32;

/// The hash of a chain of applied entries (64-bit FNV-1a over the previous value and each
/// entry). Serialized as 16 hexadecimal digits, which JSON readers of any language keep
/// exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Fingerprint(u64);

/// What an applied entry carries, for the fingerprint.
#[derive(Clone, Copy, Debug)]
pub enum Applied<'a> {
    /// A leader's no-op.
    Noop,
    /// A command's bytes as they are in the log.
    Command(&'a [u8]),
    /// A configuration: its members, by id, voters of C_new, of C_old, then learners.
    Membership(&'a crate::raft::Membership),
}

impl Fingerprint {
    /// The fingerprint after applying the entry at `index` of `term`.
    pub fn then(self, index: Index, term: Term, applied: Applied<'_>) -> Fingerprint {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash = OFFSET;
        let mut eat = |bytes: &[u8]| {
            for &byte in bytes {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(PRIME);
            }
        };
        eat(&self.0.to_le_bytes());
        eat(&index.to_le_bytes());
        eat(&term.to_le_bytes());
        match applied {
            Applied::Noop => eat(&[0]),
            Applied::Command(bytes) => {
                eat(&[1]);
                eat(&(bytes.len() as u64).to_le_bytes());
                eat(bytes);
            }
            Applied::Membership(membership) => {
                eat(&[2]);
                for (kind, ids) in [
                    (0u8, &membership.voters),
                    (1, &membership.outgoing),
                    (2, &membership.learners),
                ] {
                    for id in ids {
                        eat(&[kind]);
                        eat(&id.to_le_bytes());
                    }
                }
            }
        }
        Fingerprint(hash)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        u64::from_str_radix(&text, 16)
            .map(Fingerprint)
            .map_err(|_| serde::de::Error::custom(format!("not a fingerprint: {text:?}")))
    }
}

/// The fingerprint a node had right after applying `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub index: Index,
    pub fingerprint: Fingerprint,
}

/// The latest checkpoints of one node, oldest first.
#[derive(Clone, Debug, Default)]
pub struct Checkpoints(VecDeque<Checkpoint>);

impl Checkpoints {
    /// Notes the fingerprint after applying `index`, if `index` is a checkpoint.
    pub fn applied(&mut self, index: Index, fingerprint: Fingerprint) {
        if index == 0 || !index.is_multiple_of(CHECKPOINT_EVERY) {
            return;
        }
        self.0.push_back(Checkpoint { index, fingerprint });
        while self.0.len() > CHECKPOINTS_KEPT {
            self.0.pop_front();
        }
    }

    /// The checkpoints kept, oldest first.
    pub fn to_vec(&self) -> Vec<Checkpoint> {
        self.0.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(entries: &[(Index, Term, Applied<'_>)]) -> Fingerprint {
        entries
            .iter()
            .fold(Fingerprint::default(), |fp, &(index, term, applied)| {
                fp.then(index, term, applied)
            })
    }

    #[test]
    fn the_same_entries_give_the_same_fingerprint_and_any_difference_changes_it() {
        let log = [
            (1, 1, Applied::Noop),
            (2, 1, Applied::Command(b"put a 1")),
            (3, 2, Applied::Command(b"put b 2")),
        ];
        let same = chain(&log);
        assert_eq!(same, chain(&log));
        let other_payload = [log[0], log[1], (3, 2, Applied::Command(b"put b 3"))];
        let other_term = [log[0], log[1], (3, 3, Applied::Command(b"put b 2"))];
        let noop_instead = [log[0], log[1], (3, 2, Applied::Noop)];
        let empty_command = [log[0], log[1], (3, 2, Applied::Command(b""))];
        for different in [other_payload, other_term, noop_instead, empty_command] {
            assert_ne!(chain(&different), same, "{different:?}");
        }
    }

    #[test]
    fn one_different_entry_changes_every_fingerprint_after_it() {
        let a = chain(&[(1, 1, Applied::Command(b"x"))]);
        let b = chain(&[(1, 1, Applied::Command(b"y"))]);
        assert_ne!(
            a.then(2, 1, Applied::Command(b"z")),
            b.then(2, 1, Applied::Command(b"z"))
        );
    }

    #[test]
    fn fingerprints_travel_as_hex_and_come_back_exactly() {
        let fp = chain(&[(7, 3, Applied::Command(b"v"))]);
        let json = serde_json::to_string(&Checkpoint {
            index: 64,
            fingerprint: fp,
        })
        .unwrap();
        assert!(json.contains(&format!("\"{fp}\"")), "{json}");
        let back: Checkpoint = serde_json::from_str(&json).unwrap();
        assert_eq!(back.fingerprint, fp);
        assert!(serde_json::from_str::<Checkpoint>(r#"{"index":1,"fingerprint":"zz"}"#).is_err());
    }

    #[test]
    fn only_every_64th_index_is_kept_and_only_the_latest_32() {
        let mut checkpoints = Checkpoints::default();
        for index in 1..=64 * 40 {
            checkpoints.applied(index, Fingerprint(index));
        }
        let kept = checkpoints.to_vec();
        assert_eq!(kept.len(), CHECKPOINTS_KEPT);
        assert!(
            kept.iter()
                .all(|c| c.index.is_multiple_of(CHECKPOINT_EVERY))
        );
        assert_eq!(kept.last().unwrap().index, 64 * 40);
        assert_eq!(kept.first().unwrap().index, 64 * 9);
    }
}
