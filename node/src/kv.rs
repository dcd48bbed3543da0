//! The key-value state machine that committed log entries are applied to.
//!
//! Keys are strings, values are JSON. A command carries an optional client session
//! (`client-id` + `request-seq`): a retried write with the same sequence number is applied
//! once and answered with the result it had the first time.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
}

impl KvStore {
    /// The current value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
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
    fn snapshot_round_trips_data_and_sessions() {
        let mut kv = KvStore::default();
        kv.apply(session_cmd(
            "c1",
            5,
            WriteOp::Put {
                value: json!({"a": [1, 2]}),
            },
        ));
        let mut restored = KvStore::restore(&kv.snapshot()).unwrap();
        assert_eq!(restored, kv);
        // The session survived: the retry is not applied again.
        assert_eq!(
            restored.apply(session_cmd("c1", 5, WriteOp::Put { value: json!(0) })),
            WriteResult::Written
        );
        assert_eq!(restored.get("k"), Some(&json!({"a": [1, 2]})));
    }
}
