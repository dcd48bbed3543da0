//! The client-session table: what makes a retried write apply once, kept within a fixed
//! number of clients and bytes.
//!
//! A client first opens a session ([`WriteOp::OpenSession`](crate::command::WriteOp), Raft
//! thesis §6.3's RegisterClient); its id is the log index the opening was applied at. Its
//! writes then carry the session (`client-id`, `request-seq`). The table keeps, per client,
//! the sequence number of its latest write and the answer that write got, so that a retry
//! (same client, same sequence number) is answered again instead of applied again. The table
//! is part of the replicated state (it travels in snapshots), so every rule below depends
//! only on the committed log: every replica opens, keeps, forgets and refuses the same
//! sessions at the same log index (the log index is the clock).
//!
//! # Bounds, and why each is safe
//!
//! - **Answers keep no large values.** A failed CAS (or an append to a key that is not a
//!   list) is answered with the value it saw. The table keeps that value only up to
//!   [`SessionLimits::max_kept_value_bytes`] of JSON; a larger one is kept as its size
//!   ([`Observed::TooLarge`]). A retry is then still answered 409: the write certainly
//!   happened and changed nothing, which is all the answer claims; only the observation of
//!   the value is missing, which the first answer carried.
//! - **Answers are forgotten to stay within [`SessionLimits::max_bytes`]**, least recently
//!   written client first. The client stays in the table with its sequence number, so a
//!   retry of that write is recognised, and answered "outcome unknown"
//!   ([`WriteResult::AnswerForgotten`], 504), never applied again; its next write proceeds.
//! - **At most [`SessionLimits::max_clients`] clients.** Opening a session beyond that is
//!   refused ([`WriteResult::SessionsFull`], 503): no live session is dropped to make room.
//! - **Sessions expire** once [`SessionLimits::expire_after`] log entries have been applied
//!   since their client's latest write (or the opening), and only then is a client
//!   forgotten. Ids are log indexes, so the table tells an expired session from one never
//!   opened without remembering it: an id at or below the latest opening that the table does
//!   not hold has expired (or was the index of another entry, which no client was given:
//!   either way none of its writes applies). A write of an expired session, first attempt or retry, is
//!   answered "outcome unknown" ([`WriteResult::SessionExpired`], 504) and never applied:
//!   the client opens a new session. The index, not a clock, measures expiry, so no clock
//!   skew can expire a session early.

use std::collections::{BTreeMap, HashMap};
use std::io;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::command::{Observed, SessionRef, WriteResult};
use crate::raft::Index;

/// How large the session table may grow. The same on every replica: the limits decide what
/// is applied, so they are constants of the build, never flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Most clients kept at once; opening another is refused until some expire.
    pub max_clients: usize,
    /// Most bytes the table may take (a fixed cost per client, kept answers: see
    /// [`SessionTable::bytes`]).
    pub max_bytes: usize,
    /// A value is kept in an answer only if its JSON takes at most this many bytes.
    pub max_kept_value_bytes: usize,
    /// A session expires once this many log entries were applied since its latest write.
    pub expire_after: Index,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_clients: 20_000,
            max_bytes: 8 << 20,
            max_kept_value_bytes: 1024,
            expire_after: 1_000_000,
        }
    }
}

/// What each client costs beyond its answer: the map entries, the id, the sequence number
/// and index, allocation headers. An estimate, but a fixed one, so every replica counts the
/// same.
pub(crate) const CLIENT_BYTES: usize = 96;
/// What an answer costs beyond the value it keeps.
const PER_ANSWER_BYTES: usize = 32;

/// What the table says about a write with a session, before it is applied.
#[derive(Clone, Debug, PartialEq)]
pub enum Admission {
    /// Apply it, then [`SessionTable::record`] its result.
    Apply,
    /// Do not apply it; answer this instead (a retry's first answer, or why not).
    Answer(WriteResult),
}

/// One client's latest write.
#[derive(Clone, Debug, PartialEq)]
struct Client {
    /// The latest write's sequence number; 0 until the first write.
    seq: u64,
    /// The log index the latest write (or the opening) was applied at.
    last_write: Index,
    /// The latest write's answer, as kept; `None` before the first write and once
    /// forgotten.
    answer: Option<WriteResult>,
}

/// The sessions of every client that wrote recently, within [`SessionLimits`].
#[derive(Clone, Debug, Default)]
pub struct SessionTable {
    clients: HashMap<u64, Client>,
    /// Client ids by the index of their latest write, oldest first: the order in which
    /// sessions expire and answers are forgotten. Indexes are distinct, as each log entry
    /// is one client's write or opening.
    by_last_write: BTreeMap<Index, u64>,
    /// The index of the latest opening: every id ever handed out is at most this.
    opened_through: Index,
    /// Every client whose latest write is at or below this index has had its answer
    /// forgotten (answers are forgotten oldest first, and a new write brings a new answer
    /// and a later index).
    forgotten_through: Index,
    /// What the kept answers cost.
    answer_bytes: usize,
    limits: SessionLimits,
}

impl PartialEq for SessionTable {
    /// Equal when they hold the same sessions (the rest is derived from them).
    fn eq(&self, other: &Self) -> bool {
        self.clients == other.clients
            && self.opened_through == other.opened_through
            && self.limits == other.limits
    }
}

impl SessionTable {
    /// An empty table with these limits (tests only: every replica must use the build's).
    #[cfg(test)]
    pub(crate) fn with_limits(limits: SessionLimits) -> SessionTable {
        SessionTable {
            limits,
            ..SessionTable::default()
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    /// Sets the limits in force (tests only: a table restored from a snapshot has the
    /// build's). The table is brought within them at its next write.
    #[cfg(test)]
    pub(crate) fn set_limits(&mut self, limits: SessionLimits) {
        self.limits = limits;
    }

    /// How many clients have a session.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client has a session.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// What the table costs, as counted against [`SessionLimits::max_bytes`]: a fixed cost
    /// per client, and each kept answer's value plus a fixed cost.
    pub fn bytes(&self) -> usize {
        self.client_bytes() + self.answer_bytes
    }

    fn client_bytes(&self) -> usize {
        self.clients.len() * CLIENT_BYTES
    }

    /// Drops every session whose latest write is [`SessionLimits::expire_after`] or more
    /// entries before `index`. Call it before applying each command, with the command's
    /// index: since it only ever drops the oldest sessions, whether it also ran at the
    /// indexes in between changes nothing.
    pub fn expire(&mut self, index: Index) {
        while let Some(entry) = self.by_last_write.first_entry() {
            if entry.key().saturating_add(self.limits.expire_after) > index {
                break;
            }
            let id = entry.remove();
            let client = self.clients.remove(&id).expect("indexed clients exist");
            self.answer_bytes -= client.answer.as_ref().map_or(0, answer_cost);
        }
    }

    /// Opens a session at log `index` (its id), unless the table is full.
    pub fn open(&mut self, index: Index) -> WriteResult {
        let fits = self.clients.len() < self.limits.max_clients
            && self.client_bytes() + CLIENT_BYTES <= self.limits.max_bytes;
        if !fits {
            return WriteResult::SessionsFull {
                max_clients: self.limits.max_clients,
            };
        }
        let client = Client {
            seq: 0,
            last_write: index,
            answer: None,
        };
        let displaced = self.clients.insert(index, client);
        debug_assert!(displaced.is_none(), "two sessions opened at index {index}");
        self.by_last_write.insert(index, index);
        self.opened_through = self.opened_through.max(index);
        self.forget_answers_over_budget();
        WriteResult::SessionOpened { client_id: index }
    }

    /// Whether a write with `session` is to be applied, or answered without being applied.
    pub fn admit(&self, session: &SessionRef) -> Admission {
        let client_id = session.client_id;
        match self.clients.get(&client_id) {
            Some(client) if client.seq > 0 && session.seq == client.seq => Admission::Answer(
                client
                    .answer
                    .clone()
                    .unwrap_or(WriteResult::AnswerForgotten { seq: client.seq }),
            ),
            Some(client) if session.seq <= client.seq => {
                Admission::Answer(WriteResult::StaleSequence { latest: client.seq })
            }
            Some(_) => Admission::Apply,
            None if client_id <= self.opened_through => {
                Admission::Answer(WriteResult::SessionExpired { client_id })
            }
            None => Admission::Answer(WriteResult::UnknownSession { client_id }),
        }
    }

    /// Records that the write `session` was applied at `index` with `result` (after
    /// [`SessionTable::admit`] said to apply it), then forgets the oldest answers while the
    /// table is over its bytes.
    pub fn record(&mut self, index: Index, session: SessionRef, result: &WriteResult) {
        let answer = kept(result, self.limits.max_kept_value_bytes);
        self.answer_bytes += answer_cost(&answer);
        let client = self
            .clients
            .get_mut(&session.client_id)
            .expect("only a write of an open session is applied");
        self.by_last_write.remove(&client.last_write);
        self.answer_bytes -= client.answer.as_ref().map_or(0, answer_cost);
        *client = Client {
            seq: session.seq,
            last_write: index,
            answer: Some(answer),
        };
        let displaced = self.by_last_write.insert(index, session.client_id);
        debug_assert!(displaced.is_none(), "two writes recorded at index {index}");
        self.forget_answers_over_budget();
    }

    /// Forgets answers, oldest first, until the table is within its bytes (or no answer is
    /// left to forget). The client just written is the newest, so its own answer goes last.
    fn forget_answers_over_budget(&mut self) {
        while self.bytes() > self.limits.max_bytes {
            let Some((&index, id)) = self
                .by_last_write
                .range(self.forgotten_through.saturating_add(1)..)
                .next()
            else {
                break;
            };
            let client = self.clients.get_mut(id).expect("indexed clients exist");
            self.answer_bytes -= client.answer.take().as_ref().map_or(0, answer_cost);
            self.forgotten_through = index;
        }
    }

    /// Rebuilds a table from its stored form, checking what a table written by this build
    /// always satisfies.
    fn from_stored(stored: StoredTable) -> Result<SessionTable, String> {
        let mut table = SessionTable {
            opened_through: stored.opened_through,
            ..SessionTable::default()
        };
        for client in stored.clients {
            let id = client.client_id;
            if table.clients.contains_key(&id) {
                return Err(format!("client {id} is listed twice"));
            }
            if id > table.opened_through || client.last_write < id {
                return Err(format!(
                    "client {id} wrote last at index {}, and sessions were opened through \
                     index {}: ids are the index of their opening",
                    client.last_write, table.opened_through
                ));
            }
            if client.seq == 0 && (client.answer.is_some() || client.last_write != id) {
                return Err(format!(
                    "client {id} never wrote, yet keeps an answer or a write at index {}",
                    client.last_write
                ));
            }
            if let Some(other) = table.by_last_write.get(&client.last_write) {
                return Err(format!(
                    "clients {other} and {id} both wrote last at index {}",
                    client.last_write
                ));
            }
            table.answer_bytes += client.answer.as_ref().map_or(0, answer_cost);
            if client.seq > 0 && client.answer.is_none() {
                table.forgotten_through = table.forgotten_through.max(client.last_write);
            }
            table.by_last_write.insert(client.last_write, id);
            table.clients.insert(
                id,
                Client {
                    seq: client.seq,
                    last_write: client.last_write,
                    answer: client.answer,
                },
            );
        }
        // Answers are forgotten oldest first: any kept one must be newer than every
        // forgotten one.
        let unordered = table
            .by_last_write
            .range(..=table.forgotten_through)
            .find(|(_, id)| table.clients[*id].answer.is_some());
        if let Some((index, id)) = unordered {
            return Err(format!(
                "client {id} keeps the answer to its write at index {index}, although a \
                 later write's answer was forgotten"
            ));
        }
        Ok(table)
    }
}

/// How the table is stored in a snapshot.
#[derive(Serialize, Deserialize)]
struct StoredTable {
    opened_through: Index,
    /// Oldest write first (so that equal tables serialize alike).
    clients: Vec<StoredClient>,
}

/// How a client is stored in a snapshot.
#[derive(Serialize, Deserialize)]
struct StoredClient {
    client_id: u64,
    seq: u64,
    last_write: Index,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer: Option<WriteResult>,
}

/// A stored table of this build, or the list of clients that builds before sessions were
/// opened kept (clients chose their own ids then).
#[derive(Deserialize)]
#[serde(untagged)]
enum AnyStoredTable {
    Opened(StoredTable),
    ChosenIds(Vec<Value>),
}

impl Serialize for SessionTable {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let clients = self
            .by_last_write
            .values()
            .map(|id| {
                let client = &self.clients[id];
                StoredClient {
                    client_id: *id,
                    seq: client.seq,
                    last_write: client.last_write,
                    answer: client.answer.clone(),
                }
            })
            .collect();
        StoredTable {
            opened_through: self.opened_through,
            clients,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SessionTable {
    /// With the build's default limits. An earlier build's empty table loads as empty.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match AnyStoredTable::deserialize(deserializer)? {
            AnyStoredTable::Opened(stored) => {
                SessionTable::from_stored(stored).map_err(serde::de::Error::custom)
            }
            AnyStoredTable::ChosenIds(clients) if clients.is_empty() => Ok(SessionTable::default()),
            AnyStoredTable::ChosenIds(clients) => Err(serde::de::Error::custom(format!(
                "{} client sessions with ids the clients chose, as builds before sessions were \
                 opened through the log kept them; this build cannot tell which of them \
                 expired",
                clients.len()
            ))),
        }
    }
}

fn answer_cost(answer: &WriteResult) -> usize {
    let value = match answer {
        WriteResult::CasMismatch {
            current: Observed::Value(value),
        }
        | WriteResult::NotAList {
            current: Observed::Value(value),
        } => json_len(value, usize::MAX).unwrap_or(0),
        _ => 0,
    };
    PER_ANSWER_BYTES + value
}

/// `result` as a session keeps it: a value whose JSON is over `max_value_bytes` is replaced
/// by its size.
fn kept(result: &WriteResult, max_value_bytes: usize) -> WriteResult {
    let bounded = |current: &Observed| match current {
        Observed::Value(value) => match json_len(value, max_value_bytes) {
            Some(_) => current.clone(),
            None => Observed::TooLarge {
                bytes: json_len(value, usize::MAX).unwrap_or(usize::MAX),
            },
        },
        Observed::TooLarge { .. } => current.clone(),
    };
    match result {
        WriteResult::CasMismatch { current } => WriteResult::CasMismatch {
            current: bounded(current),
        },
        WriteResult::NotAList { current } => WriteResult::NotAList {
            current: bounded(current),
        },
        other => other.clone(),
    }
}

/// The length of `value`'s JSON if it is at most `limit` bytes. Stops encoding as soon as
/// the limit is passed, so a large value costs no more than a small one.
fn json_len(value: &Value, limit: usize) -> Option<usize> {
    struct Counter {
        len: usize,
        limit: usize,
    }
    impl io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.len += bytes.len();
            if self.len > self.limit {
                return Err(io::Error::other("over the limit"));
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { len: 0, limit };
    serde_json::to_writer(&mut counter, value).ok()?;
    Some(counter.len)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn session(client_id: u64, seq: u64) -> SessionRef {
        SessionRef { client_id, seq }
    }

    fn limits(max_clients: usize, max_bytes: usize, expire_after: Index) -> SessionLimits {
        SessionLimits {
            max_clients,
            max_bytes,
            max_kept_value_bytes: 16,
            expire_after,
        }
    }

    fn mismatch(value: Value) -> WriteResult {
        WriteResult::CasMismatch {
            current: Observed::Value(value),
        }
    }

    /// Opens a session at `index`, as the log would, and returns its id.
    fn open(table: &mut SessionTable, index: Index) -> u64 {
        table.expire(index);
        match table.open(index) {
            WriteResult::SessionOpened { client_id } => client_id,
            other => panic!("no session opened at {index}: {other:?}"),
        }
    }

    /// Admits and records a write that applies with `result`.
    fn write(table: &mut SessionTable, index: Index, client: u64, seq: u64, result: WriteResult) {
        table.expire(index);
        assert_eq!(table.admit(&session(client, seq)), Admission::Apply);
        table.record(index, session(client, seq), &result);
    }

    #[test]
    fn a_retry_of_the_latest_write_gets_its_answer_and_an_older_one_is_stale() {
        let mut table = SessionTable::default();
        let c1 = open(&mut table, 1);
        let c2 = open(&mut table, 2);
        write(&mut table, 3, c1, 5, WriteResult::Written);
        assert_eq!(
            table.admit(&session(c1, 5)),
            Admission::Answer(WriteResult::Written)
        );
        assert_eq!(
            table.admit(&session(c1, 4)),
            Admission::Answer(WriteResult::StaleSequence { latest: 5 })
        );
        assert_eq!(table.admit(&session(c1, 6)), Admission::Apply);
        assert_eq!(table.admit(&session(c2, 1)), Admission::Apply);
    }

    #[test]
    fn a_session_never_opened_is_refused() {
        let mut table = SessionTable::default();
        let id = open(&mut table, 7);
        assert_eq!(table.admit(&session(id, 1)), Admission::Apply);
        assert_eq!(
            table.admit(&session(8, 1)),
            Admission::Answer(WriteResult::UnknownSession { client_id: 8 })
        );
    }

    #[test]
    fn a_large_value_is_kept_as_its_size_and_a_small_one_whole() {
        let mut table = SessionTable::with_limits(limits(10, 1 << 20, 100));
        let big = open(&mut table, 1);
        let small = open(&mut table, 2);
        let large = json!("a value longer than sixteen bytes");
        write(&mut table, 3, big, 1, mismatch(large.clone()));
        write(&mut table, 4, small, 1, mismatch(json!([1, 2])));
        assert_eq!(
            table.admit(&session(big, 1)),
            Admission::Answer(WriteResult::CasMismatch {
                current: Observed::TooLarge {
                    bytes: large.to_string().len()
                }
            })
        );
        assert_eq!(
            table.admit(&session(small, 1)),
            Admission::Answer(mismatch(json!([1, 2])))
        );
        assert_eq!(json_len(&large, 16), None);
        assert_eq!(json_len(&json!([1, 2]), 16), Some(5));
    }

    #[test]
    fn over_its_bytes_the_table_forgets_the_oldest_answers_and_their_retries_are_unknown() {
        // Room for four clients but only three answers.
        let room = 4 * CLIENT_BYTES + 3 * answer_cost(&WriteResult::Written);
        let mut table = SessionTable::with_limits(limits(100, room, 1_000));
        let ids: Vec<u64> = (1..=4).map(|index| open(&mut table, index)).collect();
        for (i, &id) in ids.iter().enumerate() {
            write(&mut table, 10 + i as Index, id, 1, WriteResult::Written);
            assert!(table.bytes() <= room, "{} bytes", table.bytes());
        }
        assert_eq!(
            table.admit(&session(ids[0], 1)),
            Admission::Answer(WriteResult::AnswerForgotten { seq: 1 }),
            "the oldest answer was forgotten, and its retry is not applied"
        );
        for &id in &ids[1..] {
            assert_eq!(
                table.admit(&session(id, 1)),
                Admission::Answer(WriteResult::Written)
            );
        }
        // The forgotten client goes on with its next write, which brings it an answer again
        // (and costs the next oldest its own).
        write(&mut table, 20, ids[0], 2, WriteResult::Written);
        assert_eq!(
            table.admit(&session(ids[0], 2)),
            Admission::Answer(WriteResult::Written)
        );
        assert_eq!(
            table.admit(&session(ids[1], 1)),
            Admission::Answer(WriteResult::AnswerForgotten { seq: 1 })
        );
        assert_eq!(table.len(), 4);
    }

    #[test]
    fn a_session_beyond_the_limits_is_not_opened_and_no_session_is_dropped_for_it() {
        let mut table = SessionTable::with_limits(limits(2, 1 << 20, 1_000));
        let a = open(&mut table, 1);
        let b = open(&mut table, 2);
        write(&mut table, 3, a, 1, WriteResult::Written);
        assert_eq!(table.open(4), WriteResult::SessionsFull { max_clients: 2 });
        assert_eq!(
            table.admit(&session(4, 1)),
            Admission::Answer(WriteResult::UnknownSession { client_id: 4 })
        );
        assert_eq!(table.admit(&session(a, 2)), Admission::Apply);
        assert_eq!(table.admit(&session(b, 1)), Admission::Apply);
        assert_eq!(
            table.admit(&session(a, 1)),
            Admission::Answer(WriteResult::Written)
        );

        // The same when another client would not fit in the bytes.
        let mut table = SessionTable::with_limits(limits(100, CLIENT_BYTES + 40, 1_000));
        let a = open(&mut table, 1);
        write(&mut table, 2, a, 1, WriteResult::Written);
        assert_eq!(
            table.open(3),
            WriteResult::SessionsFull { max_clients: 100 }
        );
    }

    #[test]
    fn an_expired_session_is_never_applied_again_and_makes_room() {
        let mut table = SessionTable::with_limits(limits(2, 1 << 20, 100));
        let a = open(&mut table, 5);
        write(&mut table, 10, a, 1, WriteResult::Written);
        let b = open(&mut table, 50);
        table.expire(109);
        assert_eq!(table.len(), 2, "a's write is 99 entries old");
        assert_eq!(
            table.open(109),
            WriteResult::SessionsFull { max_clients: 2 }
        );
        table.expire(110);
        assert_eq!(table.len(), 1, "a expired at index 110");
        // A retry of a's write, or its next write, is not applied: whether the first attempt
        // was is no longer known.
        for seq in [1, 2] {
            assert_eq!(
                table.admit(&session(a, seq)),
                Admission::Answer(WriteResult::SessionExpired { client_id: a })
            );
        }
        let c = open(&mut table, 110);
        assert_eq!(table.admit(&session(c, 1)), Admission::Apply);
        assert_eq!(table.admit(&session(b, 1)), Admission::Apply);
        table.expire(1_000);
        assert!(table.is_empty());
        assert_eq!(table.bytes(), 0);
        assert_eq!(
            table.admit(&session(a, 1)),
            Admission::Answer(WriteResult::SessionExpired { client_id: a }),
            "an empty table still knows which ids it handed out"
        );
    }

    #[test]
    fn a_table_round_trips_through_a_snapshot_and_refuses_inconsistent_ones() {
        // Room for five clients but only three answers.
        let room = 5 * CLIENT_BYTES + 3 * answer_cost(&WriteResult::Written);
        let mut table = SessionTable::with_limits(limits(100, room, 1_000));
        let ids: Vec<u64> = (1..=6).map(|index| open(&mut table, index)).collect();
        table.expire(7);
        for (i, &id) in ids[..5].iter().enumerate() {
            write(&mut table, 10 + i as Index, id, 7, WriteResult::Written);
        }
        let mut restored: SessionTable =
            serde_json::from_str(&serde_json::to_string(&table).unwrap()).unwrap();
        restored.set_limits(table.limits());
        assert_eq!(restored, table);
        assert_eq!(restored.bytes(), table.bytes());
        assert_eq!(restored.forgotten_through, table.forgotten_through);
        assert_eq!(
            restored.admit(&session(7, 1)),
            Admission::Answer(WriteResult::UnknownSession { client_id: 7 })
        );

        let refused = |stored: Value, says: &str| {
            let error = serde_json::from_value::<SessionTable>(stored).unwrap_err();
            assert!(error.to_string().contains(says), "{error}");
        };
        refused(
            json!({"opened_through": 2, "clients": [
                {"client_id": 1, "seq": 1, "last_write": 1},
                {"client_id": 1, "seq": 2, "last_write": 2},
            ]}),
            "listed twice",
        );
        refused(
            json!({"opened_through": 3, "clients": [
                {"client_id": 1, "seq": 1, "last_write": 4, "answer": "written"},
                {"client_id": 2, "seq": 1, "last_write": 5},
            ]}),
            "forgotten",
        );
        refused(
            json!({"opened_through": 1, "clients": [
                {"client_id": 2, "seq": 1, "last_write": 3},
            ]}),
            "opened through",
        );
        refused(
            json!({"opened_through": 3, "clients": [
                {"client_id": 2, "seq": 0, "last_write": 3},
            ]}),
            "never wrote",
        );
        refused(
            json!([{"client_id": "a", "seq": 1, "last_write": 1}]),
            "ids the clients chose",
        );
        let earlier_empty: SessionTable = serde_json::from_value(json!([])).unwrap();
        assert!(earlier_empty.is_empty());
    }

    /// One step of the property test: a client opens a session, writes its next write, or
    /// retries one of its earlier ones (`back` sequence numbers back from its latest); or
    /// `idle` entries of other kinds are applied.
    #[derive(Clone, Debug)]
    enum Step {
        Open { client: usize },
        Next { client: usize, large: bool },
        Retry { client: usize, back: u64 },
        Idle { entries: Index },
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        let step = prop_oneof![
            1 => (0..12usize).prop_map(|client| Step::Open { client }),
            3 => (0..12usize, any::<bool>()).prop_map(|(client, large)| Step::Next { client, large }),
            2 => (0..12usize, 0..3u64).prop_map(|(client, back)| Step::Retry { client, back }),
            1 => (1..40 as Index).prop_map(|entries| Step::Idle { entries }),
        ];
        proptest::collection::vec(step, 1..200)
    }

    /// What the model knows of one client: its sessions, newest last, each with its latest
    /// sequence number.
    #[derive(Clone, Default)]
    struct ModelClient {
        sessions: Vec<(u64, u64)>,
    }

    proptest! {
        /// Whatever clients do, expiry included: no write is applied twice, a retry gets the
        /// first answer or a refusal that claims nothing false, the table stays within its
        /// clients and bytes, and a copy restored from a snapshot taken anywhere decides
        /// exactly as the original does.
        #[test]
        fn no_write_applies_twice_and_the_table_stays_within_its_limits(
            steps in steps(),
            max_clients in 1..8usize,
            answers_room in 0..6usize,
            expire_after in 20..400 as Index,
            snapshot_at in 0..200usize,
        ) {
            let cost = answer_cost(&mismatch(json!("0123456789")));
            let limits = SessionLimits {
                max_clients,
                max_bytes: max_clients * CLIENT_BYTES + answers_room * cost,
                max_kept_value_bytes: 16,
                expire_after,
            };
            let mut table = SessionTable::with_limits(limits);
            let mut copy: Option<SessionTable> = None;
            let mut clients = vec![ModelClient::default(); 12];
            // The answer each applied write got, by (session, seq).
            let mut applied: HashMap<(u64, u64), WriteResult> = HashMap::new();
            let mut index: Index = 0;
            for (at, step) in steps.into_iter().enumerate() {
                if at == snapshot_at {
                    let mut restored: SessionTable =
                        serde_json::from_str(&serde_json::to_string(&table).unwrap()).unwrap();
                    restored.set_limits(limits);
                    copy = Some(restored);
                }
                index += 1;
                table.expire(index);
                if let Some(copy) = copy.as_mut() {
                    copy.expire(index);
                }
                let (client, seq, large, next) = match step {
                    Step::Idle { entries } => {
                        index += entries;
                        continue;
                    }
                    Step::Open { client } => {
                        let opened = table.open(index);
                        if let Some(copy) = copy.as_mut() {
                            prop_assert_eq!(&copy.open(index), &opened);
                        }
                        match opened {
                            WriteResult::SessionOpened { client_id } => {
                                prop_assert_eq!(client_id, index);
                                clients[client].sessions.push((client_id, 0));
                            }
                            WriteResult::SessionsFull { .. } => {
                                prop_assert_eq!(table.len(), max_clients);
                            }
                            other => prop_assert!(false, "opening answered {:?}", other),
                        }
                        continue;
                    }
                    Step::Next { client, large } => {
                        let Some(session) = clients[client].sessions.last_mut() else {
                            continue;
                        };
                        session.1 += 1;
                        (client, session.1, large, true)
                    }
                    Step::Retry { client, back } => {
                        let Some(&(_, latest)) = clients[client].sessions.last() else {
                            continue;
                        };
                        let Some(seq) = latest.checked_sub(back).filter(|&s| s > 0) else {
                            continue;
                        };
                        (client, seq, false, false)
                    }
                };
                let id = clients[client].sessions.last().unwrap().0;
                let admission = table.admit(&session(id, seq));
                if let Some(copy) = copy.as_ref() {
                    prop_assert_eq!(&copy.admit(&session(id, seq)), &admission);
                }
                match admission {
                    Admission::Apply => {
                        prop_assert!(
                            !applied.contains_key(&(id, seq)),
                            "session {} seq {} applied twice", id, seq
                        );
                        let seen = if large { "x".repeat(40) } else { "0123456789".to_string() };
                        let result = mismatch(json!(seen));
                        applied.insert((id, seq), result.clone());
                        table.record(index, session(id, seq), &result);
                        if let Some(copy) = copy.as_mut() {
                            copy.record(index, session(id, seq), &result);
                        }
                    }
                    Admission::Answer(WriteResult::SessionExpired { client_id }) => {
                        prop_assert_eq!(client_id, id);
                        prop_assert!(!table.clients.contains_key(&id));
                        if next {
                            // Not applied: the client's write is outcome unknown, and it
                            // opens a new session for the next.
                            clients[client].sessions.last_mut().unwrap().1 -= 1;
                        }
                    }
                    Admission::Answer(WriteResult::AnswerForgotten { seq: forgotten }) => {
                        prop_assert_eq!(forgotten, seq);
                        prop_assert!(applied.contains_key(&(id, seq)));
                    }
                    Admission::Answer(WriteResult::StaleSequence { latest: newer }) => {
                        prop_assert!(newer > seq);
                    }
                    Admission::Answer(answer) => {
                        let first = &applied[&(id, seq)];
                        prop_assert_eq!(&answer, &kept(first, limits.max_kept_value_bytes));
                    }
                }
                prop_assert!(table.len() <= limits.max_clients);
                prop_assert!(
                    table.bytes() <= limits.max_bytes,
                    "{} bytes of {}", table.bytes(), limits.max_bytes
                );
            }
            if let Some(copy) = copy {
                prop_assert_eq!(copy, table);
            }
        }
    }
}
