//! Events as a run records them, and the JSON Lines file that holds them (one event a line).

use std::fmt;
use std::io::{self, Write};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::Error;
use crate::location::Location;

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

    /// Parses JSON Lines: one event a line; blank lines are skipped.
    pub fn from_jsonl(text: &str) -> Result<Self, Error> {
        let mut events = Vec::new();
        let mut lines = Vec::new();
        for (number, line) in (1..).zip(text.lines()) {
            if line.trim().is_empty() {
                continue;
            }
            let event = serde_json::from_str(line).map_err(|error| {
                Error::malformed(Location::Line(number), describe_json_error(&error))
            })?;
            events.push(event);
            lines.push(number);
        }
        Ok(History::from_lines(events, lines))
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

/// serde_json's message without its "at line 1 column N" (each line is parsed alone), plus the column.
fn describe_json_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    let what = message.strip_suffix(&position).unwrap_or(&message);
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
