//! A write as it travels through the Raft log, and the answer applying it gives: what the
//! client API makes, the state machine ([`crate::kv`]) applies and the session table
//! ([`crate::sessions`]) keeps for retries.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The deepest nesting of arrays and objects a client value may have (`1` is 0 deep, `[1]`
/// 1, `{"a": [1]}` 2). serde_json refuses to decode anything nested deeper than 128, and a
/// value is wrapped in more levels on its way: a [`Command`] in a log entry adds 3, and a
/// [`WriteResult`] kept in a session inside a snapshot adds 6 around the current value (which
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
    /// Deduplicates retries of the same write (see [`crate::sessions`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionRef>,
    pub key: String,
    pub op: WriteOp,
}

/// Which client wrote, and its sequence number for this write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRef {
    /// The id [`WriteOp::OpenSession`] gave the client: the log index it was applied at.
    pub client_id: u64,
    /// Increases by at least one from each of the client's writes to its next; from 1.
    pub seq: u64,
}

/// The writes the store understands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteOp {
    Put {
        value: Value,
    },
    Delete,
    Cas {
        from: Value,
        to: Value,
    },
    Append {
        value: Value,
    },
    /// Opens a client session (Raft thesis §6.3, RegisterClient); the key is empty. The
    /// session's id is the index of the entry, so every id the cluster has handed out is at
    /// most the latest such index, and an id the table no longer holds is known to have
    /// expired.
    OpenSession,
}

/// The outcome of applying a write. Kept in sessions, so it is serializable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteResult {
    Written,
    Deleted,
    /// DELETE of a key that does not exist.
    NotFound,
    /// CAS comparison failed; `current` is the value it saw (null when the key is missing).
    /// A retry's answer from a session may carry only the value's size.
    CasMismatch {
        current: Observed,
    },
    /// Appended; the list now has this many elements.
    Appended {
        length: usize,
    },
    /// APPEND to a key that holds something other than a list (as for `CasMismatch`).
    NotAList {
        current: Observed,
    },
    /// A retry whose sequence number is older than the session's latest write: not applied,
    /// and whether an earlier attempt was is no longer known.
    StaleSequence {
        latest: u64,
    },
    /// A retry of the session's latest write, whose answer the session no longer keeps (it
    /// was forgotten to bound the table's bytes): not applied, and whether an earlier
    /// attempt was is not known.
    AnswerForgotten {
        seq: u64,
    },
    /// A session the table has no room for: not opened, by any replica (the table is full
    /// of sessions that have not expired).
    SessionsFull {
        max_clients: usize,
    },
    /// A session was opened with this id.
    SessionOpened {
        client_id: u64,
    },
    /// A write of a session that has expired: not applied, and whether an earlier attempt of
    /// it was is no longer known (the table forgot the client).
    SessionExpired {
        client_id: u64,
    },
    /// A write of a session id the cluster never handed out: not applied.
    UnknownSession {
        client_id: u64,
    },
}

/// The value a refused write saw (the current value of a failed CAS, or of a key that holds
/// no list), as an answer carries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observed {
    /// The value itself.
    Value(Value),
    /// Only the size of its JSON: a session's copy of an answer keeps no value larger than
    /// [`crate::sessions::SessionLimits::max_kept_value_bytes`].
    TooLarge { bytes: usize },
}
