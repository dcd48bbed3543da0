//! A history as Jepsen EDN, for Knossos and Jepsen's own checkers, so that any verdict of
//! Faultline's can be checked again by another tool: a vector of operation maps, one a line,
//! with Jepsen's keys `:index :time :process :type :f :value`:
//!
//! ```text
//! [{:index 0, :time 1200345, :process 3, :type :invoke, :f :write, :value ["k7" 4]}
//!  {:index 1, :time 1790021, :process 3, :type :ok, :f :write, :value ["k7" 4], :node "n2"}
//!  {:index 2, :time 3000000, :process :nemesis, :type :info, :f :start-partition, :value {"n1" ["n2" "n3"]}}]
//! ```
//!
//! - A history whose every client event has a key is written as `jepsen.independent` writes
//!   one: each value a tuple `[k v]`, which Jepsen's independent checkers split into keys
//!   (and [`crate::import::edn`] reads as keys). Otherwise keys are `:key` fields.
//! - `:type` is a keyword, `:process` an integer or `:nemesis`, `:f` and `:error` keywords
//!   where they can be (else strings), values strings, numbers, vectors, maps and `nil`.
//! - What Jepsen's vocabulary lacks is said in fields of Faultline's own, which other tools
//!   ignore: `:final? true` on final reads and `:observed-nil? true` on `:ok` reads whose `nil`
//!   is the value they read (Knossos takes an `:ok` read of `nil` to constrain nothing; such a
//!   read is where Knossos's verdict can differ from Faultline's). `:node` is kept too.
//!
//! Read back by [`crate::import::edn::parse`], the history is the same, event for event
//! (but for one ambiguity of the independent convention: a history without keys whose every
//! client value is a pair reads back as keyed).
//!
//! For other tools: Knossos's command line checks the file as one register (for a keyed
//! history, check each key's subhistory). Jepsen's `independent/checker` wants its tuples as
//! `MapEntry`s, which no EDN reader makes (Jepsen's own `history.edn` reads back as vectors
//! too): `(update op :value #(apply independent/tuple %))` makes them so. Elle's checkers take
//! transactions (`:f :txn`), which these operations are not.

use std::fmt::Write as _;
use std::io::{self, Write};

use faultline_history::{Event, EventType, History, Process};

use super::edn_writer;
use crate::import::edn::{FINAL_READ, OBSERVED_NIL, is_ok_nil_read};

/// Writes `history` as an EDN vector of operation maps, one a line.
pub fn write(history: &History, mut out: impl Write) -> io::Result<()> {
    let events = history.events();
    let tuples = keys_as_tuples(events);
    let mut line = String::new();
    for (i, event) in events.iter().enumerate() {
        line.clear();
        line.push(if i == 0 { '[' } else { ' ' });
        operation_map(&mut line, event, tuples);
        if i + 1 == events.len() {
            line.push(']');
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    if events.is_empty() {
        out.write_all(b"[]\n")?;
    }
    Ok(())
}

/// The history as EDN text.
pub fn to_string(history: &History) -> String {
    let mut out = Vec::new();
    write(history, &mut out).expect("writing to memory does not fail");
    String::from_utf8(out).expect("EDN is written as UTF-8")
}

/// Whether to write keys as `jepsen.independent` tuples: only if every client event has a key
/// (a tuple cannot say "no key"), and only if the history will read back as independent,
/// which takes every CAS's value to be a pair `[from to]` (or `nil`).
fn keys_as_tuples(events: &[Event]) -> bool {
    let mut clients = events
        .iter()
        .filter(|event| event.process != Process::Nemesis)
        .peekable();
    clients.peek().is_some()
        && clients.all(|event| {
            let pair = event.value.as_array().is_some_and(|pair| pair.len() == 2);
            event.key.is_some() && (event.f != "cas" || event.value.is_null() || pair)
        })
}

/// Appends `event` as an operation map.
fn operation_map(out: &mut String, event: &Event, tuples: bool) {
    let _ = write!(
        out,
        "{{:index {}, :time {}, :process ",
        event.index, event.time
    );
    match event.process {
        Process::Client(id) => {
            let _ = write!(out, "{id}");
        }
        Process::Nemesis => out.push_str(":nemesis"),
    }
    out.push_str(", :type :");
    out.push_str(type_name(event.kind));
    out.push_str(", :f ");
    edn_writer::name(out, &event.f);
    match &event.key {
        Some(key) if tuples && event.process != Process::Nemesis => {
            out.push_str(", :value [");
            edn_writer::string(out, key);
            out.push(' ');
            edn_writer::value(out, &event.value);
            out.push(']');
        }
        key => {
            if let Some(key) = key {
                out.push_str(", :key ");
                edn_writer::string(out, key);
            }
            out.push_str(", :value ");
            edn_writer::value(out, &event.value);
        }
    }
    if let Some(error) = &event.error {
        out.push_str(", :error ");
        edn_writer::name(out, error);
    }
    if let Some(node) = &event.node {
        out.push_str(", :node ");
        edn_writer::string(out, node);
    }
    if event.final_read {
        let _ = write!(out, ", :{FINAL_READ} true");
    }
    if is_ok_nil_read(event) {
        let _ = write!(out, ", :{OBSERVED_NIL} true");
    }
    out.push('}');
}

fn type_name(kind: EventType) -> &'static str {
    match kind {
        EventType::Invoke => "invoke",
        EventType::Ok => "ok",
        EventType::Fail => "fail",
        EventType::Info => "info",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(jsonl: &str) -> History {
        History::from_jsonl(jsonl).unwrap()
    }

    #[test]
    fn a_keyed_history_is_written_as_independent_tuples_one_map_a_line() {
        let history = history(
            r#"{"index":0,"time":1200345,"process":3,"type":"invoke","f":"write","key":"k7","value":4}
{"index":1,"time":1790021,"process":3,"type":"ok","f":"write","key":"k7","value":4,"node":"n2"}
{"index":2,"time":1800000,"process":5,"type":"invoke","f":"cas","key":"k7","value":[4,1]}
{"index":3,"time":2900000,"process":5,"type":"fail","f":"cas","key":"k7","value":[4,1],"error":"cas-mismatch"}
{"index":4,"time":3000000,"process":"nemesis","type":"info","f":"start-partition","value":{"n1":["n2","n3"]}}
"#,
        );
        assert_eq!(
            to_string(&history),
            r#"[{:index 0, :time 1200345, :process 3, :type :invoke, :f :write, :value ["k7" 4]}
 {:index 1, :time 1790021, :process 3, :type :ok, :f :write, :value ["k7" 4], :node "n2"}
 {:index 2, :time 1800000, :process 5, :type :invoke, :f :cas, :value ["k7" [4 1]]}
 {:index 3, :time 2900000, :process 5, :type :fail, :f :cas, :value ["k7" [4 1]], :error :cas-mismatch}
 {:index 4, :time 3000000, :process :nemesis, :type :info, :f :start-partition, :value {"n1" ["n2" "n3"]}}]
"#
        );
    }

    #[test]
    fn keys_are_fields_when_some_event_has_none_and_marks_are_kept() {
        let history = history(
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"read","key":"l1","value":null,"final":true}
{"index":1,"time":5,"process":0,"type":"ok","f":"read","key":"l1","value":null,"final":true}
{"index":2,"time":6,"process":1,"type":"invoke","f":"read","value":null}
{"index":3,"time":7,"process":1,"type":"info","f":"read","value":null,"error":"connection reset by peer"}
"#,
        );
        assert_eq!(
            to_string(&history),
            r#"[{:index 0, :time 0, :process 0, :type :invoke, :f :read, :key "l1", :value nil, :final? true}
 {:index 1, :time 5, :process 0, :type :ok, :f :read, :key "l1", :value nil, :final? true, :observed-nil? true}
 {:index 2, :time 6, :process 1, :type :invoke, :f :read, :value nil}
 {:index 3, :time 7, :process 1, :type :info, :f :read, :value nil, :error "connection reset by peer"}]
"#
        );
        assert_eq!(to_string(&History::default()), "[]\n");
    }

    #[test]
    fn a_cas_that_is_not_a_pair_keeps_keys_as_fields() {
        // As tuples, it would not read back as an independent history.
        let history = history(
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"cas","key":"a","value":[1,2,3]}"#,
        );
        assert!(to_string(&history).contains(r#":key "a", :value [1 2 3]"#));
    }
}
