//! The client-session table: what makes a retried write apply once, kept within a fixed
//! number of clients and bytes.
//!
//! A write may carry a session (`client-id`, `request-seq`). The table keeps, per client,
//! the sequence number of its latest write and the answer that write got, so that a retry
//! (same client, same sequence number) is answered again instead of applied again. The table
//! is part of the replicated state (it travels in snapshots), so every rule below depends
//! only on the committed log: every replica keeps, forgets and refuses the same sessions at
//! the same log index (Raft thesis §6.3, with the log index as the clock).
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
//! - **At most [`SessionLimits::max_clients`] clients.** A new client beyond that (or one
//!   whose id alone would not fit in the bytes) is refused ([`WriteResult::SessionsFull`],
//!   503): the write is committed but every replica refuses it at the same index, so it
//!   certainly did not happen. No live session is dropped to make room: that would make
//!   its retry indistinguishable from a new client's first write.
//! - **Sessions expire** once [`SessionLimits::expire_after`] log entries have been applied
//!   since their client's latest write, and only then is a client forgotten entirely. A
//!   write retried after that is taken for a new client's write and may apply a second
//!   time: clients must give up retrying well before (a million entries by default, over a
//!   minute at the ~14,000 writes/s a 3-node cluster takes at full load; a client's
//!   requests time out in seconds). The index, not a clock, measures this, so no clock
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
    /// Most clients kept at once; a new client beyond them is refused until some expire.
    pub max_clients: usize,
    /// Most bytes the table may take (client ids, a fixed cost per client, kept answers:
    /// see [`SessionTable::bytes`]).
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

/// What each client costs beyond its id and its answer: the map entries, the sequence
/// number and index, allocation headers. An estimate, but a fixed one, so every replica
/// counts the same.
const PER_CLIENT_BYTES: usize = 96;
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
    seq: u64,
    /// The log index the write was applied at.
    last_write: Index,
    /// Its answer, as kept; `None` once forgotten.
    answer: Option<WriteResult>,
}

/// The sessions of every client that wrote recently, within [`SessionLimits`].
#[derive(Clone, Debug, Default)]
pub struct SessionTable {
    clients: HashMap<String, Client>,
    /// Client ids by the index of their latest write, oldest first: the order in which
    /// sessions expire and answers are forgotten. Indexes are distinct, as each log entry
    /// is one client's write.
    by_last_write: BTreeMap<Index, String>,
    /// Every client whose latest write is at or below this index has had its answer
    /// forgotten (answers are forgotten oldest first, and a new write brings a new answer
    /// and a later index).
    forgotten_through: Index,
    /// What the clients cost without their answers.
    client_bytes: usize,
    /// What the kept answers cost.
    answer_bytes: usize,
    limits: SessionLimits,
}

impl PartialEq for SessionTable {
    /// Equal when they hold the same sessions (the rest is derived from them).
    fn eq(&self, other: &Self) -> bool {
        self.clients == other.clients && self.limits == other.limits
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

    /// What the table costs, as counted against [`SessionLimits::max_bytes`]: each client's
    /// id plus a fixed cost, and each kept answer's value plus a fixed cost.
    pub fn bytes(&self) -> usize {
        self.client_bytes + self.answer_bytes
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
            self.client_bytes -= client_cost(&id);
            self.answer_bytes -= client.answer.as_ref().map_or(0, answer_cost);
        }
    }

    /// Whether a write with `session` is to be applied, or answered without being applied.
    pub fn admit(&self, session: &SessionRef) -> Admission {
        match self.clients.get(&session.client_id) {
            Some(client) if session.seq == client.seq => Admission::Answer(
                client
                    .answer
                    .clone()
                    .unwrap_or(WriteResult::AnswerForgotten { seq: client.seq }),
            ),
            Some(client) if session.seq < client.seq => {
                Admission::Answer(WriteResult::StaleSequence { latest: client.seq })
            }
            Some(_) => Admission::Apply,
            None => {
                let fits = self.clients.len() < self.limits.max_clients
                    && self.client_bytes + client_cost(&session.client_id) <= self.limits.max_bytes;
                if fits {
                    Admission::Apply
                } else {
                    Admission::Answer(WriteResult::SessionsFull {
                        max_clients: self.limits.max_clients,
                    })
                }
            }
        }
    }

    /// Records that the write `session` was applied at `index` with `result` (after
    /// [`SessionTable::admit`] said to apply it), then forgets the oldest answers while the
    /// table is over its bytes.
    pub fn record(&mut self, index: Index, session: SessionRef, result: &WriteResult) {
        let answer = kept(result, self.limits.max_kept_value_bytes);
        self.answer_bytes += answer_cost(&answer);
        let client = Client {
            seq: session.seq,
            last_write: index,
            answer: Some(answer),
        };
        match self.clients.insert(session.client_id.clone(), client) {
            Some(previous) => {
                self.by_last_write.remove(&previous.last_write);
                self.answer_bytes -= previous.answer.as_ref().map_or(0, answer_cost);
            }
            None => self.client_bytes += client_cost(&session.client_id),
        }
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

    /// Rebuilds a table from its stored clients (any order), checking what a table written
    /// by this build always satisfies.
    fn from_stored(stored: Vec<StoredClient>) -> Result<SessionTable, String> {
        let mut table = SessionTable::default();
        for client in stored {
            if table.clients.contains_key(&client.client_id) {
                return Err(format!("client `{}` is listed twice", client.client_id));
            }
            if let Some(other) = table.by_last_write.get(&client.last_write) {
                return Err(format!(
                    "clients `{other}` and `{}` both wrote last at index {}",
                    client.client_id, client.last_write
                ));
            }
            table.client_bytes += client_cost(&client.client_id);
            table.answer_bytes += client.answer.as_ref().map_or(0, answer_cost);
            if client.answer.is_none() {
                table.forgotten_through = table.forgotten_through.max(client.last_write);
            }
            table
                .by_last_write
                .insert(client.last_write, client.client_id.clone());
            table.clients.insert(
                client.client_id,
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
                "client `{id}` keeps the answer to its write at index {index}, although a \
                 later write's answer was forgotten"
            ));
        }
        Ok(table)
    }
}

/// How a client is stored in a snapshot.
#[derive(Serialize, Deserialize)]
struct StoredClient {
    client_id: String,
    seq: u64,
    last_write: Index,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer: Option<WriteResult>,
}

impl Serialize for SessionTable {
    /// The clients, oldest write first (so that equal tables serialize alike).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let stored: Vec<StoredClient> = self
            .by_last_write
            .values()
            .map(|id| {
                let client = &self.clients[id];
                StoredClient {
                    client_id: id.clone(),
                    seq: client.seq,
                    last_write: client.last_write,
                    answer: client.answer.clone(),
                }
            })
            .collect();
        stored.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SessionTable {
    /// With the build's default limits.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = Vec::<StoredClient>::deserialize(deserializer)?;
        SessionTable::from_stored(stored).map_err(serde::de::Error::custom)
    }
}

/// What a client costs in the table without its answer.
pub(crate) fn client_cost(id: &str) -> usize {
    id.len() + PER_CLIENT_BYTES
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

    fn session(client: &str, seq: u64) -> SessionRef {
        SessionRef {
            client_id: client.into(),
            seq,
        }
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

    /// Admits and records a write that applies with `result`.
    fn write(table: &mut SessionTable, index: Index, client: &str, seq: u64, result: WriteResult) {
        table.expire(index);
        assert_eq!(table.admit(&session(client, seq)), Admission::Apply);
        table.record(index, session(client, seq), &result);
    }

    #[test]
    fn a_retry_of_the_latest_write_gets_its_answer_and_an_older_one_is_stale() {
        let mut table = SessionTable::default();
        write(&mut table, 1, "c1", 5, WriteResult::Written);
        assert_eq!(
            table.admit(&session("c1", 5)),
            Admission::Answer(WriteResult::Written)
        );
        assert_eq!(
            table.admit(&session("c1", 4)),
            Admission::Answer(WriteResult::StaleSequence { latest: 5 })
        );
        assert_eq!(table.admit(&session("c1", 6)), Admission::Apply);
        assert_eq!(table.admit(&session("c2", 1)), Admission::Apply);
    }

    #[test]
    fn a_large_value_is_kept_as_its_size_and_a_small_one_whole() {
        let mut table = SessionTable::with_limits(limits(10, 1 << 20, 100));
        let large = json!("a value longer than sixteen bytes");
        write(&mut table, 1, "big", 1, mismatch(large.clone()));
        write(&mut table, 2, "small", 1, mismatch(json!([1, 2])));
        assert_eq!(
            table.admit(&session("big", 1)),
            Admission::Answer(WriteResult::CasMismatch {
                current: Observed::TooLarge {
                    bytes: large.to_string().len()
                }
            })
        );
        assert_eq!(
            table.admit(&session("small", 1)),
            Admission::Answer(mismatch(json!([1, 2])))
        );
        assert_eq!(json_len(&large, 16), None);
        assert_eq!(json_len(&json!([1, 2]), 16), Some(5));
    }

    #[test]
    fn over_its_bytes_the_table_forgets_the_oldest_answers_and_their_retries_are_unknown() {
        // Room for four clients but only three answers.
        let room = 4 * client_cost("c0") + 3 * answer_cost(&WriteResult::Written);
        let mut table = SessionTable::with_limits(limits(100, room, 1_000));
        for i in 0..4 {
            write(
                &mut table,
                10 + i,
                &format!("c{i}"),
                1,
                WriteResult::Written,
            );
            assert!(table.bytes() <= room, "{} bytes", table.bytes());
        }
        assert_eq!(
            table.admit(&session("c0", 1)),
            Admission::Answer(WriteResult::AnswerForgotten { seq: 1 }),
            "the oldest answer was forgotten, and its retry is not applied"
        );
        for i in 1..4 {
            assert_eq!(
                table.admit(&session(&format!("c{i}"), 1)),
                Admission::Answer(WriteResult::Written)
            );
        }
        // The forgotten client goes on with its next write, which brings it an answer again
        // (and costs the next oldest its own).
        write(&mut table, 20, "c0", 2, WriteResult::Written);
        assert_eq!(
            table.admit(&session("c0", 2)),
            Admission::Answer(WriteResult::Written)
        );
        assert_eq!(
            table.admit(&session("c1", 1)),
            Admission::Answer(WriteResult::AnswerForgotten { seq: 1 })
        );
        assert_eq!(table.len(), 4);
    }

    #[test]
    fn a_new_client_beyond_the_limits_is_refused_and_no_session_is_dropped_for_it() {
        let mut table = SessionTable::with_limits(limits(2, 1 << 20, 1_000));
        write(&mut table, 1, "a", 1, WriteResult::Written);
        write(&mut table, 2, "b", 1, WriteResult::Written);
        assert_eq!(
            table.admit(&session("c", 1)),
            Admission::Answer(WriteResult::SessionsFull { max_clients: 2 })
        );
        assert_eq!(table.admit(&session("a", 2)), Admission::Apply);
        assert_eq!(
            table.admit(&session("a", 1)),
            Admission::Answer(WriteResult::Written)
        );

        // The same when the ids alone would not fit in the bytes.
        let mut table = SessionTable::with_limits(limits(100, client_cost("a") + 40, 1_000));
        write(&mut table, 1, "a", 1, WriteResult::Written);
        assert_eq!(
            table.admit(&session("b", 1)),
            Admission::Answer(WriteResult::SessionsFull { max_clients: 100 })
        );
    }

    #[test]
    fn sessions_expire_by_log_index_and_make_room() {
        let mut table = SessionTable::with_limits(limits(2, 1 << 20, 100));
        write(&mut table, 10, "a", 1, WriteResult::Written);
        write(&mut table, 50, "b", 1, WriteResult::Written);
        table.expire(109);
        assert_eq!(table.len(), 2, "a's write is 99 entries old");
        assert_eq!(
            table.admit(&session("c", 1)),
            Admission::Answer(WriteResult::SessionsFull { max_clients: 2 })
        );
        table.expire(110);
        assert_eq!(table.len(), 1, "a expired at index 110");
        assert_eq!(table.admit(&session("c", 1)), Admission::Apply);
        // Expired means forgotten entirely: a retry of a's write now looks like a new
        // client's first write (why clients must stop retrying long before).
        assert_eq!(table.admit(&session("a", 1)), Admission::Apply);
        table.expire(1_000);
        assert!(table.is_empty());
        assert_eq!(table.bytes(), 0);
    }

    #[test]
    fn a_table_round_trips_through_a_snapshot_and_refuses_inconsistent_ones() {
        // Room for five clients but only three answers.
        let room = 5 * client_cost("c0") + 3 * answer_cost(&WriteResult::Written);
        let mut table = SessionTable::with_limits(limits(100, room, 1_000));
        for i in 0..5 {
            write(
                &mut table,
                10 + i,
                &format!("c{i}"),
                7,
                WriteResult::Written,
            );
        }
        let mut restored: SessionTable =
            serde_json::from_str(&serde_json::to_string(&table).unwrap()).unwrap();
        restored.set_limits(table.limits());
        assert_eq!(restored, table);
        assert_eq!(restored.bytes(), table.bytes());
        assert_eq!(restored.forgotten_through, table.forgotten_through);

        let twice = json!([
            {"client_id": "a", "seq": 1, "last_write": 1},
            {"client_id": "a", "seq": 2, "last_write": 2},
        ]);
        let error = serde_json::from_value::<SessionTable>(twice).unwrap_err();
        assert!(error.to_string().contains("listed twice"), "{error}");
        let forgotten_out_of_order = json!([
            {"client_id": "a", "seq": 1, "last_write": 1, "answer": "written"},
            {"client_id": "b", "seq": 1, "last_write": 2},
        ]);
        let error = serde_json::from_value::<SessionTable>(forgotten_out_of_order).unwrap_err();
        assert!(error.to_string().contains("forgotten"), "{error}");
    }

    /// One step of a client in the property test: its next write, or a retry of one of its
    /// earlier ones (`back` sequence numbers back from its latest).
    #[derive(Clone, Debug)]
    enum Step {
        Next { client: usize, large: bool },
        Retry { client: usize, back: u64 },
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        let step = prop_oneof![
            3 => (0..12usize, any::<bool>()).prop_map(|(client, large)| Step::Next { client, large }),
            2 => (0..12usize, 0..3u64).prop_map(|(client, back)| Step::Retry { client, back }),
        ];
        proptest::collection::vec(step, 1..200)
    }

    proptest! {
        /// Whatever clients do, within the limits and short of expiry: no write is applied
        /// twice, a retry gets the first answer or a refusal that claims nothing false, the
        /// table stays within its clients and bytes, and a copy restored from a snapshot
        /// taken anywhere decides exactly as the original does.
        #[test]
        fn no_write_applies_twice_and_the_table_stays_within_its_limits(
            steps in steps(),
            max_clients in 1..8usize,
            answers_room in 0..6usize,
            snapshot_at in 0..200usize,
        ) {
            let cost = client_cost("client-10") + answer_cost(&mismatch(json!("0123456789")));
            let limits = SessionLimits {
                max_clients,
                max_bytes: max_clients * client_cost("client-10") + answers_room * cost,
                max_kept_value_bytes: 16,
                expire_after: 1_000,
            };
            let mut table = SessionTable::with_limits(limits);
            let mut copy: Option<SessionTable> = None;
            // Per client: its latest sequence number, and the answer each applied write got.
            let mut latest = [0u64; 12];
            let mut applied: HashMap<(usize, u64), WriteResult> = HashMap::new();
            for (at, step) in steps.into_iter().enumerate() {
                if at == snapshot_at {
                    let mut restored: SessionTable =
                        serde_json::from_str(&serde_json::to_string(&table).unwrap()).unwrap();
                    restored.set_limits(limits);
                    copy = Some(restored);
                }
                let index = 1 + at as Index * 3;
                let (client, seq, large, next) = match step {
                    Step::Next { client, large } => {
                        latest[client] += 1;
                        (client, latest[client], large, true)
                    }
                    Step::Retry { client, back } => {
                        let Some(seq) = latest[client].checked_sub(back).filter(|&s| s > 0) else {
                            continue;
                        };
                        (client, seq, false, false)
                    }
                };
                let id = format!("client-{client}");
                table.expire(index);
                let admission = table.admit(&session(&id, seq));
                if let Some(copy) = copy.as_mut() {
                    copy.expire(index);
                    prop_assert_eq!(&copy.admit(&session(&id, seq)), &admission);
                }
                match admission {
                    Admission::Apply => {
                        prop_assert!(
                            !applied.contains_key(&(client, seq)),
                            "client {} seq {} applied twice", client, seq
                        );
                        let seen = if large { "x".repeat(40) } else { "0123456789".to_string() };
                        let result = mismatch(json!(seen));
                        applied.insert((client, seq), result.clone());
                        table.record(index, session(&id, seq), &result);
                        if let Some(copy) = copy.as_mut() {
                            copy.record(index, session(&id, seq), &result);
                        }
                    }
                    Admission::Answer(WriteResult::SessionsFull { .. }) => {
                        prop_assert!(!table.clients.contains_key(&id), "a known client refused");
                        prop_assert!(!applied.contains_key(&(client, seq)));
                        if next {
                            // Nothing happened: the client tries again later under the
                            // same number.
                            latest[client] -= 1;
                        }
                    }
                    Admission::Answer(WriteResult::AnswerForgotten { seq: forgotten }) => {
                        prop_assert_eq!(forgotten, seq);
                        prop_assert!(applied.contains_key(&(client, seq)));
                    }
                    Admission::Answer(WriteResult::StaleSequence { latest: newer }) => {
                        prop_assert!(newer > seq);
                    }
                    Admission::Answer(answer) => {
                        let first = &applied[&(client, seq)];
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
