//! The key-value state machine that committed log entries are applied to.
//!
//! Keys are strings, values are JSON. A client may open a session
//! ([`WriteOp::OpenSession`]); a command then carries it (`client-id` + `request-seq`), and
//! a retried write with the same sequence number is applied once and answered with the
//! result it had the first time, for as long as the bounded [`SessionTable`] keeps its
//! client, and never applied again after (see [`crate::sessions`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::command::{Command, Observed, WriteOp, WriteResult};
use crate::fingerprint::{Applied, Fingerprint};
use crate::raft::Index;
use crate::sessions::Admission;
pub use crate::sessions::{SessionLimits, SessionTable};

/// Why a snapshot's state cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The bytes are not a state this build wrote.
    #[error("the snapshot's state cannot be decoded: {0}")]
    Decode(#[from] serde_json::Error),
    /// A snapshot of a build before the session table was bounded, holding sessions.
    #[error(
        "the snapshot holds {clients} client sessions in the format of faultline-node builds \
         before the session table was bounded, which kept no index of each client's latest \
         write; this build cannot rebuild them as its peers would from the log, so the \
         replicas could diverge. Run this data dir with the build that wrote it, or start the \
         node on an empty data dir (it then receives a snapshot from the leader, once the \
         rest of the cluster has elected one in a term later than this node's own)"
    )]
    UnboundedSessions { clients: usize },
}

/// The replicated map. Everything in it is deterministic: every node that applies the same
/// commands in the same order ends in the same state.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KvStore {
    data: BTreeMap<String, Value>,
    /// Named apart from the unbounded `sessions` map of earlier builds, so that their
    /// snapshots are recognised (see [`KvStore::restore`]).
    client_sessions: SessionTable,
    /// The chain of every log entry this state was built from, carried in snapshots so that
    /// a node restored from one goes on with the same chain.
    fingerprint: Fingerprint,
}

/// A snapshot's state as stored, of this build or an earlier one.
#[derive(Deserialize)]
struct StoredState {
    data: BTreeMap<String, Value>,
    #[serde(default)]
    client_sessions: SessionTable,
    /// Earlier builds' sessions: client id to `{seq, result}`, without bound.
    #[serde(default)]
    sessions: serde_json::Map<String, Value>,
    #[serde(default)]
    fingerprint: Fingerprint,
}

impl KvStore {
    /// The current value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }

    /// Chains the log entry at `index` of `term` into the fingerprint: call it for every
    /// applied entry, no-ops included, in log order.
    pub fn fingerprint_entry(
        &mut self,
        index: u64,
        term: u64,
        applied: Applied<'_>,
    ) -> Fingerprint {
        self.fingerprint = self.fingerprint.then(index, term, applied);
        self.fingerprint
    }

    /// A store whose session table has these limits (tests only: every replica must use
    /// the build's).
    #[cfg(test)]
    pub(crate) fn with_session_limits(limits: SessionLimits) -> KvStore {
        KvStore {
            client_sessions: SessionTable::with_limits(limits),
            ..KvStore::default()
        }
    }

    /// The client sessions.
    pub fn sessions(&self) -> &SessionTable {
        &self.client_sessions
    }

    /// Applies the command committed at log `index`, once per session sequence number.
    /// Indexes must grow from call to call: they are the clock that sessions expire by.
    pub fn apply(&mut self, index: Index, command: Command) -> WriteResult {
        self.client_sessions.expire(index);
        let session = match command.session {
            // Opening a session is not itself deduplicated: a retried opening opens another,
            // which expires unused.
            Some(session) if !matches!(command.op, WriteOp::OpenSession) => session,
            _ => return self.apply_op(index, command.key, command.op),
        };
        if let Admission::Answer(answer) = self.client_sessions.admit(&session) {
            return answer;
        }
        let result = self.apply_op(index, command.key, command.op);
        self.client_sessions.record(index, session, &result);
        result
    }

    fn apply_op(&mut self, index: Index, key: String, op: WriteOp) -> WriteResult {
        match op {
            WriteOp::OpenSession => self.client_sessions.open(index),
            WriteOp::Put { value } => {
                self.data.insert(key, value);
                WriteResult::Written
            }
            WriteOp::Delete => match self.data.remove(&key) {
                Some(_) => WriteResult::Deleted,
                None => WriteResult::NotFound,
            },
            WriteOp::Cas { from, to } => {
                // A missing key compares as null, so `cas null -> v` creates it.
                let current = self.data.get(&key).unwrap_or(&Value::Null);
                if *current == from {
                    self.data.insert(key, to);
                    WriteResult::Written
                } else {
                    let current = Observed::Value(current.clone());
                    WriteResult::CasMismatch { current }
                }
            }
            WriteOp::Append { value } => {
                match self.data.entry(key).or_insert_with(|| Value::Array(vec![])) {
                    Value::Array(list) => {
                        list.push(value);
                        WriteResult::Appended { length: list.len() }
                    }
                    other => WriteResult::NotAList {
                        current: Observed::Value(other.clone()),
                    },
                }
            }
        }
    }

    /// Serializes the whole state (data and sessions) for a snapshot.
    pub fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a map of JSON values always serializes")
    }

    /// Replaces the whole state with a snapshot's. A snapshot of an earlier build loads if
    /// it holds no client session (the only part whose format changed); one with sessions
    /// is refused ([`RestoreError::UnboundedSessions`]).
    pub fn restore(data: &[u8]) -> Result<KvStore, RestoreError> {
        if data.is_empty() {
            return Ok(KvStore::default());
        }
        let stored: StoredState = serde_json::from_slice(data)?;
        if !stored.sessions.is_empty() {
            return Err(RestoreError::UnboundedSessions {
                clients: stored.sessions.len(),
            });
        }
        Ok(KvStore {
            data: stored.data,
            client_sessions: stored.client_sessions,
            fingerprint: stored.fingerprint,
        })
    }

    /// Number of keys, for status and tests.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::command::{MAX_VALUE_DEPTH, SessionRef, nested_deeper_than};

    /// A log index after every earlier one (sessions expire by the index).
    fn next_index() -> Index {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    fn cmd(key: &str, op: WriteOp) -> Command {
        Command {
            session: None,
            key: key.into(),
            op,
        }
    }

    fn session_cmd(client_id: u64, seq: u64, op: WriteOp) -> Command {
        Command {
            session: Some(SessionRef { client_id, seq }),
            key: "k".into(),
            op,
        }
    }

    /// Opens a session at `index` and returns its id.
    fn open_session(kv: &mut KvStore, index: Index) -> u64 {
        match kv.apply(index, cmd("", WriteOp::OpenSession)) {
            WriteResult::SessionOpened { client_id } => client_id,
            other => panic!("no session opened: {other:?}"),
        }
    }

    #[test]
    fn cas_succeeds_only_when_the_current_value_matches() {
        let mut kv = KvStore::default();
        kv.apply(next_index(), cmd("k", WriteOp::Put { value: json!(1) }));
        let miss = kv.apply(
            next_index(),
            cmd(
                "k",
                WriteOp::Cas {
                    from: json!(2),
                    to: json!(3),
                },
            ),
        );
        assert_eq!(
            miss,
            WriteResult::CasMismatch {
                current: Observed::Value(json!(1))
            }
        );
        assert_eq!(kv.get("k"), Some(&json!(1)));
        let hit = kv.apply(
            next_index(),
            cmd(
                "k",
                WriteOp::Cas {
                    from: json!(1),
                    to: json!(3),
                },
            ),
        );
        assert_eq!(hit, WriteResult::Written);
        assert_eq!(kv.get("k"), Some(&json!(3)));
    }

    #[test]
    fn cas_from_null_creates_a_missing_key() {
        let mut kv = KvStore::default();
        let r = kv.apply(
            next_index(),
            cmd(
                "k",
                WriteOp::Cas {
                    from: Value::Null,
                    to: json!("v"),
                },
            ),
        );
        assert_eq!(r, WriteResult::Written);
        assert_eq!(kv.get("k"), Some(&json!("v")));
    }

    #[test]
    fn append_builds_a_list_and_refuses_non_lists() {
        let mut kv = KvStore::default();
        assert_eq!(
            kv.apply(next_index(), cmd("l", WriteOp::Append { value: json!(1) })),
            WriteResult::Appended { length: 1 }
        );
        assert_eq!(
            kv.apply(next_index(), cmd("l", WriteOp::Append { value: json!(2) })),
            WriteResult::Appended { length: 2 }
        );
        assert_eq!(kv.get("l"), Some(&json!([1, 2])));
        kv.apply(next_index(), cmd("s", WriteOp::Put { value: json!("x") }));
        assert_eq!(
            kv.apply(next_index(), cmd("s", WriteOp::Append { value: json!(1) })),
            WriteResult::NotAList {
                current: Observed::Value(json!("x"))
            }
        );
    }

    #[test]
    fn delete_reports_missing_keys() {
        let mut kv = KvStore::default();
        assert_eq!(
            kv.apply(next_index(), cmd("k", WriteOp::Delete)),
            WriteResult::NotFound
        );
        kv.apply(next_index(), cmd("k", WriteOp::Put { value: json!(1) }));
        assert_eq!(
            kv.apply(next_index(), cmd("k", WriteOp::Delete)),
            WriteResult::Deleted
        );
        assert!(kv.is_empty());
    }

    #[test]
    fn a_retried_write_applies_once_and_gets_the_first_answer() {
        let mut kv = KvStore::default();
        let c1 = open_session(&mut kv, next_index());
        let c2 = open_session(&mut kv, next_index());
        let first = kv.apply(
            next_index(),
            session_cmd(c1, 1, WriteOp::Append { value: json!(7) }),
        );
        let retry = kv.apply(
            next_index(),
            session_cmd(c1, 1, WriteOp::Append { value: json!(7) }),
        );
        assert_eq!(first, retry);
        assert_eq!(kv.get("k"), Some(&json!([7])));
        kv.apply(
            next_index(),
            session_cmd(c1, 2, WriteOp::Append { value: json!(8) }),
        );
        assert_eq!(
            kv.apply(
                next_index(),
                session_cmd(c1, 1, WriteOp::Append { value: json!(7) })
            ),
            WriteResult::StaleSequence { latest: 2 }
        );
        // Another client's sequence numbers are independent.
        kv.apply(
            next_index(),
            session_cmd(c2, 1, WriteOp::Append { value: json!(9) }),
        );
        assert_eq!(kv.get("k"), Some(&json!([7, 8, 9])));
    }

    #[test]
    fn snapshot_round_trips_data_sessions_and_the_fingerprint() {
        let mut kv = KvStore::default();
        let fingerprint = kv.fingerprint_entry(1, 1, Applied::Command(b"put"));
        let c1 = open_session(&mut kv, next_index());
        kv.apply(
            next_index(),
            session_cmd(
                c1,
                5,
                WriteOp::Put {
                    value: json!({"a": [1, 2]}),
                },
            ),
        );
        let mut restored = KvStore::restore(&kv.snapshot()).unwrap();
        assert_eq!(restored, kv);
        // The chain goes on from where the snapshot was taken.
        assert_eq!(
            restored.fingerprint_entry(2, 1, Applied::Noop),
            fingerprint.then(2, 1, Applied::Noop)
        );
        // The session survived: the retry is not applied again.
        assert_eq!(
            restored.apply(
                next_index(),
                session_cmd(c1, 5, WriteOp::Put { value: json!(0) })
            ),
            WriteResult::Written
        );
        assert_eq!(restored.get("k"), Some(&json!({"a": [1, 2]})));
    }

    #[test]
    fn a_retry_whose_answer_was_forgotten_is_unknown_and_never_applied_twice() {
        let limits = SessionLimits {
            // Room for the one client, but not for its answer.
            max_bytes: crate::sessions::CLIENT_BYTES,
            ..SessionLimits::default()
        };
        let mut kv = KvStore::with_session_limits(limits);
        let c1 = open_session(&mut kv, 9);
        let append = |value: u64| WriteOp::Append {
            value: json!(value),
        };
        assert_eq!(
            kv.apply(10, session_cmd(c1, 1, append(1))),
            WriteResult::Appended { length: 1 },
            "the first attempt gets the real answer"
        );
        assert_eq!(
            kv.apply(11, session_cmd(c1, 1, append(1))),
            WriteResult::AnswerForgotten { seq: 1 }
        );
        assert_eq!(kv.get("k"), Some(&json!([1])), "the retry was not applied");
        // Through a snapshot, too.
        let mut restored = KvStore::restore(&kv.snapshot()).unwrap();
        assert_eq!(
            restored.apply(12, session_cmd(c1, 1, append(1))),
            WriteResult::AnswerForgotten { seq: 1 }
        );
        // The client's next write applies, and an older one is stale.
        assert_eq!(
            kv.apply(13, session_cmd(c1, 2, append(2))),
            WriteResult::Appended { length: 2 }
        );
        assert_eq!(
            kv.apply(14, session_cmd(c1, 1, append(1))),
            WriteResult::StaleSequence { latest: 2 }
        );
        assert_eq!(kv.get("k"), Some(&json!([1, 2])));
    }

    #[test]
    fn sessions_expire_at_the_same_index_on_every_replica_and_are_never_applied_after() {
        let limits = SessionLimits {
            expire_after: 100,
            ..SessionLimits::default()
        };
        let mut kv = KvStore::with_session_limits(limits);
        let c1 = open_session(&mut kv, 5);
        let write = |seq| session_cmd(c1, seq, WriteOp::Put { value: json!(seq) });
        kv.apply(10, write(1));
        let mut replica = KvStore::restore(&kv.snapshot()).unwrap();
        replica.client_sessions.set_limits(limits);
        for store in [&mut kv, &mut replica] {
            // Other commands advance the clock; at index 109 the session is still there.
            store.apply(109, cmd("other", WriteOp::Delete));
            assert_eq!(store.apply(109, write(1)), WriteResult::Written);
            assert_eq!(store.sessions().len(), 1);
            store.apply(110, cmd("other", WriteOp::Delete));
            assert!(store.sessions().is_empty(), "expired at index 110");
            // A retry after expiry is not applied a second time, nor is a next write.
            store.apply(
                111,
                cmd(
                    "k",
                    WriteOp::Put {
                        value: json!("moved on"),
                    },
                ),
            );
            for (index, seq) in [(112, 1), (113, 2)] {
                assert_eq!(
                    store.apply(index, write(seq)),
                    WriteResult::SessionExpired { client_id: c1 }
                );
            }
            assert_eq!(store.get("k"), Some(&json!("moved on")));
        }
        assert_eq!(kv, replica);
    }

    #[test]
    fn an_old_snapshot_loads_unless_it_holds_sessions_this_build_cannot_rebuild() {
        // The format of builds before the session table was bounded.
        let old = |sessions: Value| {
            serde_json::to_vec(&json!({
                "data": {"k": [1, 2]},
                "sessions": sessions,
                "fingerprint": "00000000000000ab",
            }))
            .unwrap()
        };
        let restored = KvStore::restore(&old(json!({}))).expect("no sessions: loads");
        assert_eq!(restored.get("k"), Some(&json!([1, 2])));
        assert!(restored.sessions().is_empty());
        assert_eq!(
            restored.fingerprint,
            KvStore::restore(&old(json!({}))).unwrap().fingerprint
        );

        let with_sessions = old(json!({
            "c1": {"seq": 3, "result": "written"},
            "c2": {"seq": 1, "result": {"cas_mismatch": {"current": 7}}},
        }));
        let error = KvStore::restore(&with_sessions).unwrap_err();
        assert!(
            matches!(error, RestoreError::UnboundedSessions { clients: 2 }),
            "{error}"
        );
        let message = error.to_string();
        assert!(message.contains("2 client sessions"), "{message}");
        assert!(message.contains("empty data dir"), "{message}");
    }

    /// A value nested `depth` arrays and objects deep, alternating: the outermost is an
    /// array, the innermost scalar `1`.
    fn nested(depth: usize) -> Value {
        (0..depth).fold(json!(1), |inner, level| {
            if (depth - level) % 2 == 1 {
                json!([inner])
            } else {
                json!({ "a": inner })
            }
        })
    }

    #[test]
    fn nesting_depth_counts_arrays_and_objects() {
        assert!(!nested_deeper_than(&json!(1), 0));
        assert!(nested_deeper_than(&json!([]), 0));
        assert!(!nested_deeper_than(&json!([]), 1));
        assert!(!nested_deeper_than(&json!({"a": [1], "b": {"c": 2}}), 2));
        assert!(nested_deeper_than(&json!({"a": [1], "b": {"c": [2]}}), 2));
        assert!(nested_deeper_than(&json!([1, 2, [[]]]), 2));
        for depth in [1, 10, MAX_VALUE_DEPTH] {
            assert!(!nested_deeper_than(&nested(depth), depth));
            assert!(nested_deeper_than(&nested(depth), depth - 1));
        }
    }

    #[test]
    fn the_deepest_accepted_value_survives_the_log_and_a_snapshot() {
        let deepest = nested(MAX_VALUE_DEPTH);
        let mut kv = KvStore::default();
        let c1 = open_session(&mut kv, next_index());
        // The worst case: an append makes the stored list one deeper than any value sent,
        // and a failed CAS keeps that list in its client's session.
        let commands = [
            cmd(
                "k",
                WriteOp::Put {
                    value: deepest.clone(),
                },
            ),
            cmd(
                "k",
                WriteOp::Append {
                    value: deepest.clone(),
                },
            ),
            session_cmd(
                c1,
                1,
                WriteOp::Cas {
                    from: deepest.clone(),
                    to: deepest.clone(),
                },
            ),
        ];
        for command in commands {
            // Each command decodes from its log entry.
            let encoded = serde_json::to_vec(&command).unwrap();
            let decoded: Command = serde_json::from_slice(&encoded).unwrap();
            assert_eq!(decoded, command);
            kv.apply(next_index(), decoded);
        }
        let kept = kv.sessions().admit(&SessionRef {
            client_id: c1,
            seq: 1,
        });
        let Admission::Answer(WriteResult::CasMismatch {
            current: Observed::Value(current),
        }) = &kept
        else {
            panic!("expected a cas mismatch that keeps its value: {kept:?}");
        };
        assert!(nested_deeper_than(current, MAX_VALUE_DEPTH));
        let restored = KvStore::restore(&kv.snapshot()).expect("the snapshot decodes");
        assert_eq!(restored, kv);

        // Without the limit it would not: serde_json stops decoding at depth 128.
        let mut too_deep = KvStore::default();
        let c1 = open_session(&mut too_deep, next_index());
        too_deep.apply(next_index(), cmd("k", WriteOp::Put { value: nested(124) }));
        too_deep.apply(
            next_index(),
            session_cmd(
                c1,
                1,
                WriteOp::Cas {
                    from: Value::Null,
                    to: Value::Null,
                },
            ),
        );
        assert!(KvStore::restore(&too_deep.snapshot()).is_err());
    }

    #[test]
    fn floats_round_trip_bit_for_bit_through_a_snapshot() {
        let mut floats = vec![
            0.1 + 0.2,
            0.1,
            1.0 / 3.0,
            -0.0,
            1e-310,
            5e-324,
            -5e-324,
            2.225_073_858_507_201e-308, // 2.2250738585072011e-308, the value that hung Java and PHP
            2.2250738585072014e-308,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            9007199254740993.0,
            1.7976931348623157e308,
            2.638344616030823e-256,
            7.4e-323,
            123456789.12345679,
            1e23,
            8.98846567431158e307,
        ];
        // And a spread of arbitrary bit patterns (a fixed LCG, so the test is reproducible).
        let mut bits: u64 = 0x9e37_79b9_7f4a_7c15;
        while floats.len() < 20_000 {
            bits = bits
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let f = f64::from_bits(bits);
            if f.is_finite() {
                floats.push(f);
            }
        }
        let mut kv = KvStore::default();
        for (i, f) in floats.iter().enumerate() {
            kv.apply(
                next_index(),
                cmd(&format!("f{i}"), WriteOp::Put { value: json!(f) }),
            );
        }
        let restored = KvStore::restore(&kv.snapshot()).unwrap();
        let mismatches: Vec<String> = floats
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let back = restored.get(&format!("f{i}"))?.as_f64()?;
                (back.to_bits() != f.to_bits()).then(|| format!("{f:e} came back as {back:e}"))
            })
            .collect();
        assert!(
            mismatches.is_empty(),
            "{} of {} floats changed, e.g. {:?}",
            mismatches.len(),
            floats.len(),
            &mismatches[..mismatches.len().min(5)]
        );
        assert_eq!(restored.len(), floats.len());
    }
}
