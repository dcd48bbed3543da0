//! Events as a run records them, and the JSON Lines file that holds them (one event a line).

use std::fmt;
use std::io::{self, Write};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::Error;
use crate::location::Location;

/// The longest line [`History::from_jsonl`] reads, in bytes: 64 MiB. One line is one event,
/// and Faultline's own are a few hundred bytes; the limit is far above any real event (a final
/// read of a set of millions of elements is tens of MB) and is there so that a file that is no
/// history (a binary blob without newlines) is refused with a line number rather than parsed
/// as one event.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// How deeply arrays and objects may nest in one event: 128 levels, serde_json's own
/// recursion limit, which keeps a hostile line (100,000 `[`) from overflowing the stack. A
/// real event nests a few levels (a transaction of micro-operations, a map of partitions).
pub const MAX_DEPTH: usize = 128;

/// Who performed an event: a client process, or the nemesis that injects faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    /// A client. After an `info` its id is never used again: the client goes on under a new id.
    Client(u64),
    /// The fault injector; its events are not operations on the system under test.
    Nemesis,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(id) => write!(f, "{id}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

/// In JSON a process is an integer or the string `"nemesis"`.
impl Serialize for Process {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(id) => serializer.serialize_u64(*id),
            Process::Nemesis => serializer.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProcessVisitor;
        impl Visitor<'_> for ProcessVisitor {
            type Value = Process;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a process: a non-negative integer or \"nemesis\"")
            }
            fn visit_u64<E: de::Error>(self, id: u64) -> Result<Process, E> {
                Ok(Process::Client(id))
            }
            fn visit_i64<E: de::Error>(self, id: i64) -> Result<Process, E> {
                u64::try_from(id)
                    .map(Process::Client)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(id), &self))
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Process, E> {
                match name {
                    "nemesis" => Ok(Process::Nemesis),
                    _ => Err(E::invalid_value(de::Unexpected::Str(name), &self)),
                }
            }
        }
        deserializer.deserialize_any(ProcessVisitor)
    }
}

/// What an event says about its operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The operation starts.
    Invoke,
    /// It happened, with this result.
    Ok,
    /// It definitely did not happen.
    Fail,
    /// Unknown: it may have happened, at any time after its invocation.
    Info,
}

/// One line of a history, as in `{"index":0,"time":1200345,"process":3,"type":"invoke","f":"write","key":"k7","value":4}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history, from 0.
    pub index: u64,
    /// Nanoseconds since the test started, from a monotonic clock.
    pub time: u64,
    /// Who performed it.
    pub process: Process,
    /// Invocation or one of the three completions.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The function: `read`, `write`, `cas`, `append`, ... or a fault's name.
    pub f: String,
    /// The key operated on; a history without keys is one register.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The argument (on invoke) or the result (on ok).
    #[serde(default)]
    pub value: Value,
    /// Why a `fail` or `info` happened; `"cas-mismatch"` marks a compare-and-set whose comparison failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The node that served the request, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// `"final": true` on the final read of a key: the read a run makes once every fault is
    /// healed, by which the lost-writes check judges the key. Absent elsewhere.
    #[serde(default, rename = "final", skip_serializing_if = "std::ops::Not::not")]
    pub final_read: bool,
}

/// A sequence of events, in the order they were recorded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    events: Vec<Event>,
    /// `lines[i]` is the line event `i` was read from; empty for a history built in memory.
    lines: Vec<usize>,
}

impl History {
    /// A history built in memory (errors will name events by their `index`).
    pub fn new(events: Vec<Event>) -> Self {
        History {
            events,
            lines: Vec::new(),
        }
    }

    /// A history read from a file, `lines[i]` being the line of `events[i]` (from 1), so
    /// that errors name lines; the readers of other formats (EDN, Jepsen logs) build theirs
    /// with it.
    pub fn from_lines(events: Vec<Event>, lines: Vec<usize>) -> Self {
        debug_assert_eq!(events.len(), lines.len());
        History { events, lines }
    }

    /// The events, in recorded order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Where event `position` (its place in [`History::events`]) came from.
    pub fn location(&self, position: usize) -> Location {
        match self.lines.get(position) {
            Some(&line) => Location::Line(line),
            None => Location::Event(self.events[position].index),
        }
    }

    /// Parses JSON Lines: one event a line; blank lines are skipped. A line longer than
    /// [`MAX_LINE_BYTES`], nested deeper than [`MAX_DEPTH`], or whose `index` is not greater
    /// than the line's before ([`History::check_indexes`]) is an error naming the line.
    pub fn from_jsonl(text: &str) -> Result<Self, Error> {
        let mut events = Vec::new();
        let mut lines = Vec::new();
        for (number, line) in (1..).zip(text.lines()) {
            if line.trim().is_empty() {
                continue;
            }
            if line.len() > MAX_LINE_BYTES {
                return Err(Error::malformed(
                    Location::Line(number),
                    format!(
                        "the line is {} bytes long, over the limit of {} for one event; is this \
                         a history of one JSON event a line?",
                        line.len(),
                        describe_bytes(MAX_LINE_BYTES)
                    ),
                ));
            }
            let event = serde_json::from_str(line).map_err(|error| {
                Error::malformed(Location::Line(number), describe_json_error(&error))
            })?;
            events.push(event);
            lines.push(number);
        }
        let history = History::from_lines(events, lines);
        history.check_indexes()?;
        Ok(history)
    }

    /// Checks that every event's `index` is greater than the one before it, as a recorder
    /// numbers them: a duplicated, reordered or spliced line would otherwise pass unnoticed
    /// and pair the wrong events. Gaps are allowed, so that a history filtered with `grep`
    /// (the lines of one key) still reads. The error names the event's line (or index).
    pub fn check_indexes(&self) -> Result<(), Error> {
        for (position, pair) in self.events.windows(2).enumerate() {
            let (before, after) = (&pair[0], &pair[1]);
            if after.index <= before.index {
                let what = if after.index == before.index {
                    "the same index as"
                } else {
                    "a smaller index than"
                };
                return Err(Error::malformed(
                    self.location(position + 1),
                    format!(
                        "index {} is {what} the event before it ({}, index {}): indexes must \
                         increase from one event to the next (a duplicated or reordered line?)",
                        after.index,
                        self.location(position),
                        before.index
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Writes JSON Lines: one event a line.
    pub fn write_jsonl(&self, mut writer: impl Write) -> io::Result<()> {
        for event in &self.events {
            serde_json::to_writer(&mut writer, event)?;
            writer.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// `64 MiB`, `1 KiB`, or a number of bytes, for messages about limits.
pub fn describe_bytes(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// serde_json's message without its "at line 1 column N" (each line is parsed alone), plus the column.
fn describe_json_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    let what = message.strip_suffix(&position).unwrap_or(&message);
    if what == "recursion limit exceeded" {
        return format!(
            "arrays and objects nested deeper than {MAX_DEPTH} levels (column {}); an event \
             nests a few",
            error.column()
        );
    }
    format!(
        "expected an event like {{\"index\":0,\"time\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}}: {what} (column {})",
        error.column()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_survive_a_round_trip_through_json_lines() {
        let text = r#"{"index":0,"time":1200345,"process":3,"type":"invoke","f":"write","key":"k7","value":4}
{"index":1,"time":1790021,"process":3,"type":"ok","f":"write","key":"k7","value":4,"node":"n2"}

{"index":2,"time":2900000,"process":5,"type":"info","f":"cas","value":[4,1],"error":"timeout"}
{"index":3,"time":3000000,"process":"nemesis","type":"info","f":"start-partition","value":{"n1":["n2","n3"]}}
"#;
        let history = History::from_jsonl(text).unwrap();
        assert_eq!(history.events().len(), 4);
        assert_eq!(history.location(2), Location::Line(4));
        let event = &history.events()[2];
        assert_eq!(event.process, Process::Client(5));
        assert_eq!(event.kind, EventType::Info);
        assert_eq!(event.value, json!([4, 1]));
        assert_eq!(event.error.as_deref(), Some("timeout"));
        assert_eq!(history.events()[3].process, Process::Nemesis);

        let mut written = Vec::new();
        history.write_jsonl(&mut written).unwrap();
        let reread = History::from_jsonl(std::str::from_utf8(&written).unwrap()).unwrap();
        assert_eq!(reread.events(), history.events());
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number_and_what_was_expected() {
        let text = "{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n\
                    {\"index\":1,\"time\":5,\"process\":1,\"type\":\"done\",\"f\":\"read\"}\n";
        let error = History::from_jsonl(text).unwrap_err().to_string();
        assert!(error.starts_with("line 2: "), "{error}");
        assert!(error.contains("unknown variant `done`"), "{error}");
        assert!(error.contains("`invoke`, `ok`, `fail`, `info`"), "{error}");

        let error = History::from_jsonl("{\"index\":0,\"process\":1}").unwrap_err();
        assert!(
            error.to_string().contains("missing field `time`"),
            "{error}"
        );

        let error = History::from_jsonl(
            "{\"index\":0,\"time\":0,\"process\":\"n1\",\"type\":\"ok\",\"f\":\"read\"}",
        )
        .unwrap_err();
        assert!(
            error.to_string().ends_with(
                "invalid value: string \"n1\", expected a process: a non-negative integer or \"nemesis\" (column 34)"
            ),
            "{error}"
        );
    }

    #[test]
    fn indexes_must_increase_from_line_to_line() {
        let line = |index: u64| {
            format!(
                "{{\"index\":{index},\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}}"
            )
        };
        // Gaps are fine: the lines of one key, grepped out of a run's history.
        assert!(History::from_jsonl(&[line(0), line(4), line(9)].join("\n")).is_ok());
        let error = History::from_jsonl(&[line(0), line(1), String::new(), line(1)].join("\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "line 4: index 1 is the same index as the event before it (line 2, index 1): \
             indexes must increase from one event to the next (a duplicated or reordered line?)"
        );
        let error = History::from_jsonl(&[line(5), line(3)].join("\n"))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("line 2: index 3 is a smaller index than the event before it"),
            "{error}"
        );
    }

    #[test]
    fn deep_nesting_and_overlong_lines_are_refused_with_the_line() {
        let deep = format!(
            "{{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":{}}}",
            "[".repeat(100_000)
        );
        let error = History::from_jsonl(&format!("\n{deep}"))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("line 2: ") && error.contains("nested deeper than 128 levels"),
            "{error}"
        );
        let long = " ".repeat(MAX_LINE_BYTES) + "{}";
        let error = History::from_jsonl(&long).unwrap_err().to_string();
        assert!(
            error.starts_with("line 1: the line is 67108866 bytes long, over the limit of 64 MiB"),
            "{error}"
        );
        assert_eq!(describe_bytes(1 << 20), "1 MiB");
        assert_eq!(describe_bytes(3 << 10), "3 KiB");
        assert_eq!(describe_bytes(1000), "1000 bytes");
    }

    #[test]
    fn events_built_in_memory_are_located_by_index() {
        let history = History::new(vec![Event {
            index: 7,
            time: 0,
            process: Process::Client(0),
            kind: EventType::Invoke,
            f: "read".into(),
            key: None,
            value: Value::Null,
            error: None,
            node: None,
            final_read: false,
        }]);
        assert_eq!(history.location(0).to_string(), "event 7");
    }
}
