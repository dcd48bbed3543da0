//! The key-value state machine that committed log entries are applied to.
//!
//! Keys are strings, values are JSON. A command carries an optional client session
//! (`client-id` + `request-seq`): a retried write with the same sequence number is applied
//! once and answered with the result it had the first time.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fingerprint::{Applied, Fingerprint};

/// The deepest nesting of arrays and objects a client value may have (`1` is 0 deep, `[1]`
/// 1, `{"a": [1]}` 2). serde_json refuses to decode anything nested deeper than 128, and a
/// value is wrapped in more levels on its way: a [`Command`] in a log entry adds 3, and a
/// [`WriteResult`] kept in a session inside a snapshot adds 5 around the current value (which
/// an append may have made one deeper than any value a client sent). This limit leaves
/// ample room, so everything the API accepts can be decoded again from the log and from a
/// snapshot.
pub const MAX_VALUE_DEPTH: usize = 64;

/// Whether `value` is nested more than `max` arrays or objects deep. It runs on every write,
/// so it allocates nothing; its recursion stops at `max` levels, whatever the input.
pub fn nested_deeper_than(value: &Value, max: usize) -> bool {
    match value {
        Value::Array(_) | Value::Object(_) if max == 0 => true,
        Value::Array(items) => items.iter().any(|v| nested_deeper_than(v, max - 1)),
        Value::Object(fields) => fields.values().any(|v| nested_deeper_than(v, max - 1)),
        _ => false,
    }
}

/// A write, as it travels through the Raft log (JSON-encoded in the entry payload).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Deduplicates retries of the same write (see [`Session`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionRef>,
    pub key: String,
    pub op: WriteOp,
}

/// Which client wrote, and its sequence number for this write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRef {
    pub client_id: String,
    pub seq: u64,
}

/// The writes the store understands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteOp {
    Put { value: Value },
    Delete,
    Cas { from: Value, to: Value },
    Append { value: Value },
}

/// The outcome of applying a write. Stored in sessions, so it is serializable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteResult {
    Written,
    Deleted,
    /// DELETE of a key that does not exist.
    NotFound,
    /// CAS comparison failed; `current` is the value it saw (null when the key is missing).
    CasMismatch {
        current: Value,
    },
    /// Appended; the list now has this many elements.
    Appended {
        length: usize,
    },
    /// APPEND to a key that holds something other than a list.
    NotAList {
        current: Value,
    },
    /// A retry whose sequence number is older than the session's latest write.
    StaleSequence {
        latest: u64,
    },
}

/// The last write of one client, kept to answer its retries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Session {
    seq: u64,
    result: WriteResult,
}

/// The replicated map. Everything in it is deterministic: every node that applies the same
/// commands in the same order ends in the same state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KvStore {
    data: BTreeMap<String, Value>,
    sessions: HashMap<String, Session>,
    /// The chain of every log entry this state was built from, carried in snapshots so that
    /// a node restored from one goes on with the same chain.
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

    /// Applies one committed command, once per session sequence number.
    pub fn apply(&mut self, command: Command) -> WriteResult {
        let Some(session) = command.session else {
            return self.apply_op(command.key, command.op);
        };
        if let Some(last) = self.sessions.get(&session.client_id) {
            if session.seq == last.seq {
                return last.result.clone();
            }
            if session.seq < last.seq {
                return WriteResult::StaleSequence { latest: last.seq };
            }
        }
        let result = self.apply_op(command.key, command.op);
        self.sessions.insert(
            session.client_id,
            Session {
                seq: session.seq,
                result: result.clone(),
            },
        );
        result
    }

    fn apply_op(&mut self, key: String, op: WriteOp) -> WriteResult {
        match op {
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
                    let current = current.clone();
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
                        current: other.clone(),
                    },
                }
            }
        }
    }

    /// Serializes the whole state (data and sessions) for a snapshot.
    pub fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a map of JSON values always serializes")
    }

    /// Replaces the whole state with a snapshot's.
    pub fn restore(data: &[u8]) -> Result<KvStore, serde_json::Error> {
        if data.is_empty() {
            return Ok(KvStore::default());
        }
        serde_json::from_slice(data)
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

    fn cmd(key: &str, op: WriteOp) -> Command {
        Command {
            session: None,
            key: key.into(),
            op,
        }
    }

    fn session_cmd(client: &str, seq: u64, op: WriteOp) -> Command {
        Command {
            session: Some(SessionRef {
                client_id: client.into(),
                seq,
            }),
            key: "k".into(),
            op,
        }
    }

    #[test]
    fn cas_succeeds_only_when_the_current_value_matches() {
        let mut kv = KvStore::default();
        kv.apply(cmd("k", WriteOp::Put { value: json!(1) }));
        let miss = kv.apply(cmd(
            "k",
            WriteOp::Cas {
                from: json!(2),
                to: json!(3),
            },
        ));
        assert_eq!(miss, WriteResult::CasMismatch { current: json!(1) });
        assert_eq!(kv.get("k"), Some(&json!(1)));
        let hit = kv.apply(cmd(
            "k",
            WriteOp::Cas {
                from: json!(1),
                to: json!(3),
            },
        ));
        assert_eq!(hit, WriteResult::Written);
        assert_eq!(kv.get("k"), Some(&json!(3)));
    }

    #[test]
    fn cas_from_null_creates_a_missing_key() {
        let mut kv = KvStore::default();
        let r = kv.apply(cmd(
            "k",
            WriteOp::Cas {
                from: Value::Null,
                to: json!("v"),
            },
        ));
        assert_eq!(r, WriteResult::Written);
        assert_eq!(kv.get("k"), Some(&json!("v")));
    }

    #[test]
    fn append_builds_a_list_and_refuses_non_lists() {
        let mut kv = KvStore::default();
        assert_eq!(
            kv.apply(cmd("l", WriteOp::Append { value: json!(1) })),
            WriteResult::Appended { length: 1 }
        );
        assert_eq!(
            kv.apply(cmd("l", WriteOp::Append { value: json!(2) })),
            WriteResult::Appended { length: 2 }
        );
        assert_eq!(kv.get("l"), Some(&json!([1, 2])));
        kv.apply(cmd("s", WriteOp::Put { value: json!("x") }));
        assert_eq!(
            kv.apply(cmd("s", WriteOp::Append { value: json!(1) })),
            WriteResult::NotAList {
                current: json!("x")
            }
        );
    }

    #[test]
    fn delete_reports_missing_keys() {
        let mut kv = KvStore::default();
        assert_eq!(kv.apply(cmd("k", WriteOp::Delete)), WriteResult::NotFound);
        kv.apply(cmd("k", WriteOp::Put { value: json!(1) }));
        assert_eq!(kv.apply(cmd("k", WriteOp::Delete)), WriteResult::Deleted);
        assert!(kv.is_empty());
    }

    #[test]
    fn a_retried_write_applies_once_and_gets_the_first_answer() {
        let mut kv = KvStore::default();
        let first = kv.apply(session_cmd("c1", 1, WriteOp::Append { value: json!(7) }));
        let retry = kv.apply(session_cmd("c1", 1, WriteOp::Append { value: json!(7) }));
        assert_eq!(first, retry);
        assert_eq!(kv.get("k"), Some(&json!([7])));
        kv.apply(session_cmd("c1", 2, WriteOp::Append { value: json!(8) }));
        assert_eq!(
            kv.apply(session_cmd("c1", 1, WriteOp::Append { value: json!(7) })),
            WriteResult::StaleSequence { latest: 2 }
        );
        // Another client's sequence numbers are independent.
        kv.apply(session_cmd("c2", 1, WriteOp::Append { value: json!(9) }));
        assert_eq!(kv.get("k"), Some(&json!([7, 8, 9])));
    }

    #[test]
    fn snapshot_round_trips_data_sessions_and_the_fingerprint() {
        let mut kv = KvStore::default();
        let fingerprint = kv.fingerprint_entry(1, 1, Applied::Command(b"put"));
        kv.apply(session_cmd(
            "c1",
            5,
            WriteOp::Put {
                value: json!({"a": [1, 2]}),
            },
        ));
        let mut restored = KvStore::restore(&kv.snapshot()).unwrap();
        assert_eq!(restored, kv);
        // The chain goes on from where the snapshot was taken.
        assert_eq!(
            restored.fingerprint_entry(2, 1, Applied::Noop),
            fingerprint.then(2, 1, Applied::Noop)
        );
        // The session survived: the retry is not applied again.
        assert_eq!(
            restored.apply(session_cmd("c1", 5, WriteOp::Put { value: json!(0) })),
            WriteResult::Written
        );
        assert_eq!(restored.get("k"), Some(&json!({"a": [1, 2]})));
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
                "c1",
                1,
                WriteOp::Cas {
                    from: deepest.clone(),
                    to: deepest.clone(),
                },
            ),
        ];
        let mut kv = KvStore::default();
        for command in commands {
            // Each command decodes from its log entry.
            let encoded = serde_json::to_vec(&command).unwrap();
            let decoded: Command = serde_json::from_slice(&encoded).unwrap();
            assert_eq!(decoded, command);
            kv.apply(decoded);
        }
        let session = &kv.sessions["c1"];
        let WriteResult::CasMismatch { current } = &session.result else {
            panic!("expected a cas mismatch: {:?}", session.result);
        };
        assert!(nested_deeper_than(current, MAX_VALUE_DEPTH));
        let restored = KvStore::restore(&kv.snapshot()).expect("the snapshot decodes");
        assert_eq!(restored, kv);

        // Without the limit it would not: serde_json stops decoding at depth 128.
        let mut too_deep = KvStore::default();
        too_deep.apply(cmd("k", WriteOp::Put { value: nested(124) }));
        too_deep.apply(session_cmd(
            "c1",
            1,
            WriteOp::Cas {
                from: Value::Null,
                to: Value::Null,
            },
        ));
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
            kv.apply(cmd(&format!("f{i}"), WriteOp::Put { value: json!(f) }));
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
