//! Jepsen's EDN histories: a vector or a list of operation maps, or maps one after another
//! (usually one a line, as Jepsen's history.edn), with `;` comments, as Jepsen, Knossos and
//! Porcupine's tests write them: `{:process 0, :type :invoke, :f :read, :key "k", :value nil}`.
//! An operation may also be a tuple `[process type f value]`, as Knossos's older histories
//! (its `data/cas-failure.edn`) and Jepsen's early logs write them, one a line; a fifth
//! element, if any, is the operation's `:error` (`[71 :fail :read nil :conn-lost]`).
//! A `jepsen.independent` history, whose every value is a tuple `[k v]`, is read as keys: `k`
//! is the key and `v` the value (so a CAS `[k [from to]]` is a CAS of key `k`).
//!
//! Semantics are Knossos's: `:fail` did not happen (only an explicit `:error :cas-mismatch`,
//! Faultline's own marker, makes it a failed comparison), `:info` is indeterminate, and an `:ok`
//! read of `nil` constrains nothing (Knossos's registers accept it in any state), so it is read
//! as a read whose result is unknown.
//!
//! The order of the file is the order of events. An event's `:index` and `:time`
//! (nanoseconds since the start, as Jepsen records them) are its own when every event has
//! them, as in Jepsen's histories and in Faultline's JSON Lines; otherwise (Knossos's and
//! Porcupine's files have neither) its place in the file is both. Indexes of the file's own
//! must increase from one operation to the next, as Jepsen writes them.
//!
//! Reading is bounded: forms nest at most [`MAX_DEPTH`] levels, and one operation's text is
//! at most [`MAX_OPERATION_BYTES`] (the history around it, a vector of hundreds of MB, is not).
//!
//! Two fields of Faultline's own, which other tools ignore, carry what Jepsen's vocabulary
//! lacks, so that a history Faultline writes ([`crate::export::edn`]) reads back as it was:
//! [`FINAL_READ`] (`:final? true`, as Jepsen's own tests mark final reads) on the final read
//! of a key, and [`OBSERVED_NIL`] (`:observed-nil? true`) on an `:ok` read whose `nil` is the
//! value it read (a key never written) rather than no value at all.

use std::collections::HashMap;
use std::sync::Arc;

use faultline_history::{Event, EventType, History, Location, Name, Process};
use serde_json::Value;

pub use super::edn_reader::MAX_DEPTH;
use super::edn_reader::{Edn, Reader, SyntaxError};
use crate::error::Error;

/// The longest text of one operation, in bytes: 64 MiB, as a line of JSON Lines
/// ([`faultline_history::MAX_LINE_BYTES`]). An operation of a real history is a few hundred
/// bytes, a final read of a large set some MB.
pub const MAX_OPERATION_BYTES: usize = faultline_history::MAX_LINE_BYTES;

/// The field that marks the final read of a key: `:final? true`.
pub const FINAL_READ: &str = "final?";

/// The field that marks an `:ok` read whose `nil` was read, not missing: `:observed-nil? true`.
pub const OBSERVED_NIL: &str = "observed-nil?";

/// What an operation map says beyond its [`Event`]: its own `:index` and `:time`, if it has
/// them, and whether its `nil` was observed.
#[derive(Clone, Copy, Default)]
struct Stamps {
    index: Option<u64>,
    time: Option<u64>,
    observed_nil: bool,
}

/// Parses an EDN history.
pub fn parse(text: &str) -> Result<History, Error> {
    parse_bounded(text, MAX_OPERATION_BYTES)
}

/// [`parse`], with operations of at most `max_operation` bytes.
fn parse_bounded(text: &str, max_operation: usize) -> Result<History, Error> {
    let syntax = |error: SyntaxError| Error::malformed(Location::Line(error.line), error.message);
    let mut reader = Reader::new(text, 1);
    // A top-level vector or list of operations closes with this; operations one after another
    // with nothing.
    let closing = match reader.peek() {
        Some('[') => Some((']', "vector")),
        Some('(') => Some((')', "list")),
        _ => None,
    }
    .filter(|_| holds_operations(&reader));
    if let Some(open) = reader.peek().filter(|_| closing.is_some()) {
        reader.skip(open);
    }
    let mut events = Vec::new();
    let mut stamps = Vec::new();
    let mut lines = Vec::new();
    loop {
        match (reader.peek(), closing) {
            (None, Some((close, shape))) => {
                return Err(Error::malformed(
                    Location::Line(reader.line()),
                    format!(
                        "expected '{close}' to close the history's {shape}, found the end of the input"
                    ),
                ));
            }
            (None, None) => break,
            (Some(c), Some((close, shape))) if c == close => {
                reader.skip(c);
                if let Some(c) = reader.peek() {
                    return Err(Error::malformed(
                        Location::Line(reader.line()),
                        format!(
                            "expected the end of the input after the history's {shape}, found '{c}'"
                        ),
                    ));
                }
                break;
            }
            (Some(_), _) => {
                let line = reader.line();
                let start = reader.offset();
                let Some(form) = reader.next_form().map_err(syntax)? else {
                    continue;
                };
                // After the reading: the form is no bigger than the text, which is in memory
                // already; what the limit refuses is a file that is one giant form.
                let length = reader.offset() - start;
                if length > max_operation {
                    return Err(Error::malformed(
                        Location::Line(line),
                        format!(
                            "the operation that starts here is {length} bytes long, over the \
                             limit of {} for one operation",
                            faultline_history::describe_bytes(max_operation)
                        ),
                    ));
                }
                let position = events.len() as u64;
                let (event, stamp) = event(form, position)
                    .map_err(|message| Error::malformed(Location::Line(line), message))?;
                events.push(event);
                stamps.push(stamp);
                lines.push(line);
            }
        }
    }
    if is_independent(&events) {
        // A completion without a value (a timeout, say) is of the key its invocation named.
        let mut pending_keys: HashMap<Process, Option<Name>> = HashMap::new();
        for event in events.iter_mut().filter(|e| e.process != Process::Nemesis) {
            if event.kind == EventType::Invoke {
                split_tuple(event);
                pending_keys.insert(event.process, event.key.clone());
            } else if event.value.is_null() {
                event.key = pending_keys.remove(&event.process).flatten();
            } else {
                split_tuple(event);
                pending_keys.remove(&event.process);
            }
        }
    }
    let own_indexes = keep_stamps(&mut events, &stamps);
    for (event, stamp) in events.iter_mut().zip(&stamps) {
        if !stamp.observed_nil {
            forget_nil_read(event);
        }
    }
    let history = History::from_lines(events, lines);
    if own_indexes {
        // Places in the file increase by themselves; indexes the file gives need not.
        history.check_indexes()?;
    }
    Ok(history)
}

/// Whether the vector or list the reader is at holds the history's operations, rather than
/// being the first of the operations itself: a tuple `[process type f value]` starts with a
/// process (a number or `:nemesis`), a collection of operations with an operation (a map, a
/// tuple, a tagged map), or ends at once.
fn holds_operations(reader: &Reader) -> bool {
    let mut ahead = reader.clone();
    if let Some(open) = ahead.peek() {
        ahead.skip(open);
    }
    matches!(ahead.peek(), None | Some('{' | '[' | '(' | '#' | ']' | ')'))
}

/// Gives the events their own `:index`, if every event has one, and their own `:time`, if
/// every event has one; whether they got their own indexes. Times need not follow the file: a
/// run records an operation whose completion came late (a timeout) where it learns of it,
/// with the time it happened.
fn keep_stamps(events: &mut [Event], stamps: &[Stamps]) -> bool {
    let own_indexes = stamps.iter().all(|s| s.index.is_some());
    if own_indexes {
        for (event, stamp) in events.iter_mut().zip(stamps) {
            event.index = stamp.index.unwrap_or(event.index);
        }
    }
    if stamps.iter().all(|s| s.time.is_some()) {
        for (event, stamp) in events.iter_mut().zip(stamps) {
            event.time = stamp.time.unwrap_or(event.time);
        }
    }
    own_indexes
}

/// Whether the history is a `jepsen.independent` one: it has no `:key`s, and every client
/// event's value is a tuple `[k v]` (a completion's may be nil) whose key `k` is a scalar (a
/// number, string or keyword), with `v` itself a pair (or nil) for a CAS. A plain register
/// history is not: its reads are invoked with `nil`, and its CASes are `[from to]`; nor is a
/// multi-register one whose transactions all have two micro-operations, since a
/// micro-operation `[:read :x 1]` is no key.
fn is_independent(events: &[Event]) -> bool {
    let mut clients = events
        .iter()
        .filter(|event| event.process != Process::Nemesis)
        .peekable();
    clients.peek().is_some()
        && clients.all(|event| {
            if event.kind != EventType::Invoke && event.value.is_null() {
                return event.key.is_none();
            }
            let Some([key, value]) = tuple(&event.value) else {
                return false;
            };
            let scalar_key = !key.is_array() && !key.is_object();
            event.key.is_none()
                && scalar_key
                && (event.f != "cas" || value.is_null() || tuple(value).is_some())
        })
}

/// A two-element JSON array.
fn tuple(value: &Value) -> Option<&[Value; 2]> {
    value.as_array()?.as_slice().try_into().ok()
}

/// `[k v]` into key `k` (its text) and value `v`.
fn split_tuple(event: &mut Event) {
    let Value::Array(pair) = Arc::unwrap_or_clone(std::mem::take(&mut event.value)) else {
        return;
    };
    let mut pair = pair.into_iter();
    let (key, value) = (pair.next(), pair.next());
    event.key = key.map(|key| match key {
        Value::String(text) => text.into(),
        other => other.to_string().into(),
    });
    event.value = Arc::new(value.unwrap_or(Value::Null));
}

/// An `:ok` read of `nil` becomes a read whose result is unknown (`:info`): Knossos's models
/// accept it in any state.
fn forget_nil_read(event: &mut Event) {
    if is_ok_nil_read(event) {
        event.kind = EventType::Info;
    }
}

/// Whether `event` is an `:ok` read of `nil`, which this reader forgets unless it is marked
/// [`OBSERVED_NIL`].
pub(crate) fn is_ok_nil_read(event: &Event) -> bool {
    event.kind == EventType::Ok && event.f == "read" && event.value.is_null()
}

/// The event an operation map describes, and its stamps; `position` is its place in the
/// history.
fn event(form: Edn, position: u64) -> Result<(Event, Stamps), String> {
    let entries = match form {
        Edn::Map(entries) => entries,
        Edn::Sequence(items) if matches!(items.len(), 4 | 5) => tuple_entries(items),
        _ => {
            return Err(format!(
                "expected an operation map like {{:process 0, :type :invoke, :f :read, :value nil}} \
                 or a tuple [process type f value], found {}",
                form.describe()
            ));
        }
    };
    let (mut process, mut kind, mut f) = (None, None, None);
    let mut stamps = Stamps::default();
    let mut event = Event {
        index: position,
        time: position,
        process: Process::Nemesis,
        kind: EventType::Info,
        f: Name::from(""),
        key: None,
        value: Arc::new(Value::Null),
        error: None,
        node: None,
        final_read: false,
    };
    for (field, value) in entries {
        let Edn::Keyword(field) = field else {
            continue;
        };
        match field.as_str() {
            "process" => process = Some(process_of(&value)?),
            "type" => kind = Some(type_of(&value)?),
            "f" => f = Some(name_of("f", &value)?),
            "key" => event.key = Some(key_of(&value)?.into()),
            "value" => event.value = Arc::new(value.into_json()?),
            "error" => event.error = Some(text_of(value)?.into()),
            "node" => event.node = Some(text_of(value)?.into()),
            "index" => stamps.index = Some(count_of("index", &value)?),
            "time" => stamps.time = Some(count_of("time", &value)?),
            FINAL_READ => event.final_read = flag_of(FINAL_READ, &value)?,
            OBSERVED_NIL => stamps.observed_nil = flag_of(OBSERVED_NIL, &value)?,
            // Other fields do not matter to the checker.
            _ => {}
        }
    }
    event.process = process.ok_or("expected a :process (a non-negative integer or :nemesis)")?;
    event.kind = kind.ok_or("expected a :type (:invoke, :ok, :fail or :info)")?;
    event.f = f
        .ok_or("expected an :f (the operation's function, like :read)")?
        .into();
    Ok((event, stamps))
}

/// A tuple `[process type f value]`, or `[process type f value error]`, as the map it stands
/// for.
fn tuple_entries(items: Vec<Edn>) -> Vec<(Edn, Edn)> {
    ["process", "type", "f", "value", "error"]
        .into_iter()
        .map(|field| Edn::Keyword(field.to_string()))
        .zip(items)
        .collect()
}

/// A non-negative integer, as `:index` and `:time` are.
fn count_of(field: &str, value: &Edn) -> Result<u64, String> {
    match value {
        Edn::Integer(n) if *n >= 0 => Ok(n.unsigned_abs()),
        _ => Err(format!(
            "expected :{field} to be a non-negative integer, found {}",
            value.describe()
        )),
    }
}

/// `true` or `false` (`nil` is false, as in Clojure).
fn flag_of(field: &str, value: &Edn) -> Result<bool, String> {
    match value {
        Edn::Bool(flag) => Ok(*flag),
        Edn::Nil => Ok(false),
        _ => Err(format!(
            "expected :{field} to be true or false, found {}",
            value.describe()
        )),
    }
}

fn process_of(value: &Edn) -> Result<Process, String> {
    match value {
        Edn::Integer(id) if *id >= 0 => Ok(Process::Client(id.unsigned_abs())),
        Edn::Keyword(name) if name == "nemesis" => Ok(Process::Nemesis),
        _ => Err(format!(
            "expected :process to be a non-negative integer or :nemesis, found {}",
            value.describe()
        )),
    }
}

fn type_of(value: &Edn) -> Result<EventType, String> {
    match value.as_name() {
        Some("invoke") => Ok(EventType::Invoke),
        Some("ok") => Ok(EventType::Ok),
        Some("fail") => Ok(EventType::Fail),
        Some("info") => Ok(EventType::Info),
        _ => Err(format!(
            "expected :type to be one of :invoke, :ok, :fail, :info, found {}",
            value.describe()
        )),
    }
}

fn name_of(field: &str, value: &Edn) -> Result<String, String> {
    value.as_name().map(str::to_string).ok_or_else(|| {
        format!(
            "expected :{field} to be a keyword, found {}",
            value.describe()
        )
    })
}

/// Keys are strings; Jepsen's integer keys become their decimal text.
fn key_of(value: &Edn) -> Result<String, String> {
    match value {
        Edn::Integer(i) => Ok(i.to_string()),
        _ => value.as_name().map(str::to_string).ok_or_else(|| {
            format!(
                "expected :key to be a string, keyword or integer, found {}",
                value.describe()
            )
        }),
    }
}

/// A keyword's or string's text, or any other value as JSON.
fn text_of(value: Edn) -> Result<String, String> {
    match value.as_name() {
        Some(name) => Ok(name.to_string()),
        None => Ok(value.into_json()?.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_one_map_per_line() {
        let history = parse(
            "{:process 0, :type :invoke, :f :append, :key \"4\", :value \"x 0 1 y\"}\n\
             {:process :nemesis, :type :info, :f :start, :value nil}\n\
             {:process 0, :type :fail, :f :append, :key 4, :value \"x 0 1 y\", :error :timeout}\n",
        )
        .unwrap();
        let events = history.events();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].kind, EventType::Invoke);
        assert_eq!(events[0].f, "append");
        assert_eq!(events[0].key.as_deref(), Some("4"));
        assert_eq!(*events[0].value, json!("x 0 1 y"));
        assert_eq!(events[1].process, Process::Nemesis);
        assert_eq!(events[2].key.as_deref(), Some("4"));
        assert_eq!(events[2].error.as_deref(), Some("timeout"));
        assert_eq!((events[2].index, events[2].time), (2, 2));
        assert_eq!(history.location(2), Location::Line(3));
    }

    #[test]
    fn reads_a_vector_of_maps_spread_over_lines() {
        let history = parse(
            "[{:process 1, :type :invoke, :f :cas, :value [1 2]}\n \
             {:process 1,\n  :type :ok, :f :cas, :value [1 2]}]\n",
        )
        .unwrap();
        assert_eq!(history.events().len(), 2);
        assert_eq!(*history.events()[1].value, json!([1, 2]));
        assert_eq!(history.location(1), Location::Line(2));
    }

    #[test]
    fn reads_a_list_of_maps_with_comments() {
        let history = parse(
            "; a history as Knossos's data has it\n\
             ({:process 0, :type :invoke, :f :write, :value 1} ; the write\n \
             {:process 0, :type :ok, :f :write, :value 1})\n",
        )
        .unwrap();
        assert_eq!(history.events().len(), 2);
        assert_eq!(history.location(1), Location::Line(3));
        assert_eq!(
            parse("({:process 0, :type :invoke, :f :read}\n")
                .unwrap_err()
                .to_string(),
            "line 2: expected ')' to close the history's list, found the end of the input"
        );
    }

    #[test]
    fn reads_knossos_tuples_one_a_line() {
        // As Knossos's data/cas-failure.edn has them: a fifth element is the error.
        let history = parse(
            "[70  :invoke :read nil]\n\
             [75  :invoke :cas  [2 1]]\n\
             [70  :ok :read 3]\n\
             [75  :fail :cas  [2 1] :no-conns]\n\
             [:nemesis  :info :start  \"Cut off [:n3 #[:n4 :n5 :n1]]\"]\n",
        )
        .unwrap();
        let events = history.events();
        assert_eq!(events.len(), 5);
        assert_eq!(
            (events[0].process, events[0].kind, events[0].f.as_str()),
            (Process::Client(70), EventType::Invoke, "read")
        );
        assert_eq!(*events[1].value, json!([2, 1]));
        assert_eq!(events[1].key, None, "a CAS's [from to] is no key");
        assert_eq!(
            (events[2].kind, &*events[2].value),
            (EventType::Ok, &json!(3))
        );
        assert_eq!(events[3].error.as_deref(), Some("no-conns"));
        assert_eq!(events[4].process, Process::Nemesis);
        assert_eq!(history.location(4), Location::Line(5));

        // Tuples in a vector, and a vector of maps, are both collections of operations.
        let in_a_vector = parse("[[0 :invoke :write 1]\n [0 :ok :write 1]]").unwrap();
        assert_eq!(in_a_vector.events()[1].kind, EventType::Ok);
        assert_eq!(parse("[]").unwrap().events().len(), 0);
        assert_eq!(
            parse("[0 :invoke :write]").unwrap_err().to_string(),
            "line 1: expected an operation map like {:process 0, :type :invoke, :f :read, :value nil} \
             or a tuple [process type f value], found a vector"
        );
    }

    #[test]
    fn independent_tuples_are_read_as_keys() {
        let history = parse(
            "[{:process 0, :type :invoke, :f :cas, :value [7 [1 2]]}\n\
             {:process 0, :type :ok, :f :cas, :value [7 [1 2]]}\n\
             {:process :nemesis, :type :info, :f :start, :value nil}\n\
             {:process 1, :type :invoke, :f :read, :value [\"x\" nil]}\n\
             {:process 1, :type :ok, :f :read, :value [\"x\" 3]}\n\
             {:process 1, :type :invoke, :f :write, :value [\"x\" 4]}\n\
             {:process 1, :type :info, :f :write, :value nil}]",
        )
        .unwrap();
        let events = history.events();
        assert_eq!(events[0].key.as_deref(), Some("7"));
        assert_eq!(*events[0].value, json!([1, 2]));
        assert_eq!(events[2].key, None);
        assert_eq!(events[4].key.as_deref(), Some("x"));
        assert_eq!(*events[4].value, json!(3));
        assert_eq!(
            events[6].key.as_deref(),
            Some("x"),
            "a timeout is of its invocation's key"
        );

        // A plain history of CASes and writes of pairs is not independent.
        let plain = parse(
            "{:process 0, :type :invoke, :f :cas, :value [1 2]}\n\
             {:process 0, :type :ok, :f :cas, :value [1 2]}",
        )
        .unwrap();
        assert_eq!(plain.events()[0].key, None);
        assert_eq!(*plain.events()[0].value, json!([1, 2]));

        // Nor is one of transactions of two micro-operations each.
        let txns = parse(
            "{:process 0, :type :invoke, :f :txn, :value [[:write :x 1] [:read :y nil]]}\n\
             {:process 0, :type :ok, :f :txn, :value [[:write :x 1] [:read :y 2]]}",
        )
        .unwrap();
        assert_eq!(txns.events()[1].key, None);
        assert_eq!(
            *txns.events()[1].value,
            json!([["write", "x", 1], ["read", "y", 2]])
        );
    }

    #[test]
    fn an_ok_read_of_nil_constrains_nothing() {
        let history = parse(
            "{:process 0, :type :invoke, :f :read, :value nil}\n\
             {:process 0, :type :ok, :f :read, :value nil}\n\
             {:process 0, :type :invoke, :f :read, :value nil}\n\
             {:process 0, :type :ok, :f :read, :value 0}",
        )
        .unwrap();
        let kinds: Vec<EventType> = history.events().iter().map(|e| e.kind).collect();
        use EventType::*;
        assert_eq!(kinds, [Invoke, Info, Invoke, Ok]);
    }

    #[test]
    fn index_and_time_are_kept_where_every_event_has_them() {
        let stamps = |text: &str| -> Vec<(u64, u64)> {
            let history = parse(text).unwrap();
            history.events().iter().map(|e| (e.index, e.time)).collect()
        };
        assert_eq!(
            stamps(
                "{:index 4, :time 100, :process 0, :type :invoke, :f :read}\n\
                 {:index 9, :time 100, :process 0, :type :ok, :f :read, :value 1}"
            ),
            [(4, 100), (9, 100)]
        );
        // An event without a time: each event's place in the file is its time.
        assert_eq!(
            stamps(
                "{:index 4, :time 100, :process 0, :type :invoke, :f :read}\n\
                 {:index 9, :process 0, :type :ok, :f :read, :value 1}"
            ),
            [(4, 0), (9, 1)]
        );
        assert_eq!(
            stamps(
                "{:index 4, :time 100, :process 0, :type :invoke, :f :read}\n\
                 {:time 90, :process 0, :type :ok, :f :read, :value 1}"
            ),
            [(0, 100), (1, 90)]
        );
        assert_eq!(
            parse("{:index -1, :process 0, :type :invoke, :f :read}")
                .unwrap_err()
                .to_string(),
            "line 1: expected :index to be a non-negative integer, found -1"
        );
    }

    #[test]
    fn final_reads_and_observed_nils_are_marked() {
        let history = parse(
            "{:process 0, :type :invoke, :f :read, :value nil, :final? true}\n\
             {:process 0, :type :ok, :f :read, :value nil, :final? true, :observed-nil? true}\n\
             {:process 0, :type :invoke, :f :read, :value nil}\n\
             {:process 0, :type :ok, :f :read, :value nil, :observed-nil? false}",
        )
        .unwrap();
        let events = history.events();
        assert!(events[0].final_read && events[1].final_read && !events[2].final_read);
        assert_eq!(events[1].kind, EventType::Ok, "a nil that was read");
        assert_eq!(events[3].kind, EventType::Info, "a nil that was not");
        assert_eq!(
            parse("{:process 0, :type :invoke, :f :read, :final? 1}")
                .unwrap_err()
                .to_string(),
            "line 1: expected :final? to be true or false, found 1"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_naming_the_line_never_a_stack_overflow() {
        let op = "{:process 0, :type :invoke, :f :read, :value nil}";
        for deep in [
            "[".repeat(100_000),
            "(".repeat(100_000),
            "{:a ".repeat(100_000),
            "#{".repeat(100_000),
            "#_".repeat(100_000),
            "#tag ".repeat(100_000),
            format!(
                "{{:process 0, :type :invoke, :f :read, :value {}",
                "[".repeat(100_000)
            ),
        ] {
            for text in [format!("{op}\n{deep}"), format!("[{op}\n{deep}")] {
                let error = parse(&text).unwrap_err().to_string();
                assert!(
                    error.starts_with("line 2: forms nested deeper than 128 levels"),
                    "{error}"
                );
            }
        }
        // 128 levels are allowed: the operation's map is one, its value the rest.
        let value = format!("{}1{}", "[".repeat(127), "]".repeat(127));
        let history = parse(&format!(
            "{{:process 0, :type :invoke, :f :write, :value {value}}}"
        ))
        .unwrap();
        assert_eq!(history.events().len(), 1);
        let value = format!("{}1{}", "[".repeat(128), "]".repeat(128));
        assert!(
            parse(&format!(
                "{{:process 0, :type :invoke, :f :write, :value {value}}}"
            ))
            .is_err()
        );
    }

    #[test]
    fn an_operation_longer_than_the_limit_is_refused_with_its_line() {
        let text =
            "{:process 0, :type :invoke, :f :read}\n\n{:process 0, :type :ok, :f :read, :value 1}";
        assert_eq!(
            parse_bounded(text, 40).unwrap_err().to_string(),
            "line 3: the operation that starts here is 43 bytes long, over the limit of 40 \
             bytes for one operation"
        );
        assert_eq!(parse_bounded(text, 43).unwrap().events().len(), 2);
    }

    #[test]
    fn indexes_of_the_file_must_increase() {
        let error = parse(
            "[{:index 0, :process 0, :type :invoke, :f :read}\n\
             {:index 1, :process 0, :type :ok, :f :read, :value 1}\n\
             {:index 1, :process 1, :type :invoke, :f :read}]",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("line 3: index 1 is the same index as the event before it (line 2"),
            "{error}"
        );
        // Without indexes of its own, a file's events are numbered by their place in it.
        let history = parse(
            "{:index 3, :process 0, :type :invoke, :f :read}\n\
             {:process 0, :type :ok, :f :read, :value 1}",
        )
        .unwrap();
        assert_eq!(history.events()[1].index, 1);
    }

    #[test]
    fn malformed_operations_are_reported_with_line_and_expectation() {
        let error = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(
            error("{:process 0, :type :invoke, :f :read}\n{:process 0, :type :done, :f :read}"),
            "line 2: expected :type to be one of :invoke, :ok, :fail, :info, found :done"
        );
        assert_eq!(
            error("\n{:type :invoke, :f :read}"),
            "line 2: expected a :process (a non-negative integer or :nemesis)"
        );
        assert_eq!(
            error("{:process \"p1\", :type :invoke, :f :read}"),
            "line 1: expected :process to be a non-negative integer or :nemesis, found \"p1\""
        );
        assert_eq!(
            error("[{:process 0, :type :invoke, :f :read}\n[1 2]]"),
            "line 2: expected an operation map like {:process 0, :type :invoke, :f :read, :value nil} \
             or a tuple [process type f value], found a vector"
        );
        assert_eq!(
            error("[{:process 0, :type :invoke, :f :read}\n"),
            "line 2: expected ']' to close the history's vector, found the end of the input"
        );
        assert_eq!(
            error("{:process 0, :type :invoke, :f :read, :value [1 2}"),
            "line 1: expected ']' to close what line 1 opened, found '}'"
        );
    }
}
