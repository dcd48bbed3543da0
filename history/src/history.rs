//! Events as a run records them, and the history they make (read and written as JSON Lines
//! by [`crate::jsonl`]).

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::Error;
use crate::lines::Lines;
use crate::location::Location;
use crate::name::Name;

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
///
/// Its strings are [`Name`]s and its value is shared (`Arc`): a history repeats the same few
/// functions, keys and values millions of times, and a reader shares one copy of each.
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
    pub f: Name,
    /// The key operated on; a history without keys is one register.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Name>,
    /// The argument (on invoke) or the result (on ok).
    #[serde(default)]
    pub value: Arc<Value>,
    /// Why a `fail` or `info` happened; `"cas-mismatch"` marks a compare-and-set whose comparison failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Name>,
    /// The node that served the request, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Name>,
    /// `"final": true` on the final read of a key: the read a run makes once every fault is
    /// healed, by which the lost-writes check judges the key. Absent elsewhere.
    #[serde(default, rename = "final", skip_serializing_if = "std::ops::Not::not")]
    pub final_read: bool,
}

/// A sequence of events, in the order they were recorded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    events: Vec<Event>,
    /// The line each event was read from; none for a history built in memory.
    lines: Lines,
}

impl History {
    /// A history built in memory (errors will name events by their `index`).
    pub fn new(events: Vec<Event>) -> Self {
        History {
            events,
            lines: Lines::default(),
        }
    }

    /// A history read from a file, `lines[i]` being the line of `events[i]` (from 1), so
    /// that errors name lines; the readers of other formats (EDN, Jepsen logs) build theirs
    /// with it.
    pub fn from_lines(events: Vec<Event>, lines: Vec<usize>) -> Self {
        History::with_lines(events, lines.into_iter().collect())
    }

    /// [`History::from_lines`], the lines already gathered (as [`History::read_jsonl`] does).
    pub(crate) fn with_lines(events: Vec<Event>, lines: Lines) -> Self {
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
            Some(line) => Location::Line(line),
            None => Location::Event(self.events[position].index),
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn events_built_in_memory_are_located_by_index() {
        let history = History::new(vec![Event {
            index: 7,
            time: 0,
            process: Process::Client(0),
            kind: EventType::Invoke,
            f: "read".into(),
            key: None,
            value: Value::Null.into(),
            error: None,
            node: None,
            final_read: false,
        }]);
        assert_eq!(history.location(0).to_string(), "event 7");
    }
}
