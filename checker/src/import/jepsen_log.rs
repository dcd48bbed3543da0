//! Jepsen's `jepsen.util` log lines, as in Porcupine's etcd tests:
//! `INFO  jepsen.util - 3 :invoke :cas [3 0]`, that is process, type, f and an EDN value,
//! separated by tabs or spaces. Lines of any other shape are other log output and are skipped.
//!
//! Semantics are Porcupine's: `:fail :cas [from to]` means the comparison failed (a
//! cas-mismatch); a `:fail` or `:info` whose value is an error keyword such as `:timed-out` is
//! indeterminate; any other `:fail` did not happen. The order of the file is the order of events,
//! so `index` and `time` are an event's place in it.
//!
//! An operation line is at most [`MAX_LINE_BYTES`] long and its value nests at most
//! [`super::edn::MAX_DEPTH`] levels; other lines are skipped whatever their length, since a
//! Jepsen log may print a whole analysis on one line.

use std::sync::Arc;

use faultline_history::{
    CAS_MISMATCH, Event, EventType, History, Location, MAX_LINE_BYTES, Name, Process,
    describe_bytes,
};
use serde_json::Value;

use super::edn_reader::{Edn, read_one};
use crate::error::Error;

/// Parses a Jepsen log.
pub fn parse(text: &str) -> Result<History, Error> {
    parse_bounded(text, MAX_LINE_BYTES)
}

/// [`parse`], with operation lines of at most `max_line` bytes.
fn parse_bounded(text: &str, max_line: usize) -> Result<History, Error> {
    let mut events = Vec::new();
    let mut lines = Vec::new();
    for (number, line) in (1..).zip(text.lines()) {
        let Some((process, kind, rest)) = operation_line(line) else {
            continue;
        };
        if line.len() > max_line {
            return Err(Error::malformed(
                Location::Line(number),
                format!(
                    "the operation line is {} bytes long, over the limit of {} for one operation",
                    line.len(),
                    describe_bytes(max_line)
                ),
            ));
        }
        let position = events.len() as u64;
        let event = event(process, kind, rest, number, position)
            .map_err(|message| Error::malformed(Location::Line(number), message))?;
        events.push(event);
        lines.push(number);
    }
    Ok(History::from_lines(events, lines))
}

/// The process, type and the rest of a line shaped like `... jepsen.util - <process> :<type> ...`.
fn operation_line(line: &str) -> Option<(Process, EventType, &str)> {
    let (_, after) = line.split_once("jepsen.util")?;
    let after = after.trim_start().strip_prefix('-')?;
    let (process, after) = token(after)?;
    let process = match process {
        ":nemesis" => Process::Nemesis,
        id => Process::Client(id.parse().ok()?),
    };
    let (kind, rest) = token(after)?;
    let kind = match kind {
        ":invoke" => EventType::Invoke,
        ":ok" => EventType::Ok,
        ":fail" => EventType::Fail,
        ":info" => EventType::Info,
        _ => return None,
    };
    Some((process, kind, rest))
}

/// The first whitespace-separated word of `text`, and what follows it.
fn token(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    (end > 0).then(|| (&text[..end], &text[end..]))
}

fn event(
    process: Process,
    mut kind: EventType,
    rest: &str,
    line: usize,
    position: u64,
) -> Result<Event, String> {
    let (f, value) = token(rest).ok_or("expected a function like :read after the type")?;
    let f = f
        .strip_prefix(':')
        .ok_or_else(|| format!("expected a function keyword like :read, found {f}"))?;
    let value = value.trim();
    if value.is_empty() {
        return Err(format!(
            "expected a value after :{f} (nil, a number, [from to], ...)"
        ));
    }
    let value = read_one(value, line).map_err(|error| error.message)?;

    let mut error = None;
    let value = match value {
        Edn::Keyword(reason) if kind != EventType::Invoke && kind != EventType::Ok => {
            // An error in place of a value: the operation's fate is unknown.
            kind = EventType::Info;
            error = Some(reason);
            Value::Null
        }
        value => {
            if kind == EventType::Fail && f == "cas" {
                error = Some(CAS_MISMATCH.to_string());
            }
            value.into_json()?
        }
    };
    Ok(Event {
        index: position,
        time: position,
        process,
        kind,
        f: f.into(),
        key: None,
        value: Arc::new(value),
        error: error.map(Name::from),
        node: None,
        final_read: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_porcupines_etcd_lines_with_their_semantics() {
        let history = parse(
            "INFO  jepsen.util - 2\t:invoke\t:write\t4\n\
             2017-01-01 some other log output\n\
             INFO  jepsen.util - 3   :invoke :cas    [3 0]\n\
             INFO  jepsen.util - 3\t:fail\t:cas\t[3 0]\n\
             INFO  jepsen.util - 2\t:info\t:write\t:timed-out\n\
             INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
             INFO  jepsen.util - 0\t:fail\t:read\t:timed-out\n\
             INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n",
        )
        .unwrap();
        let events = history.events();
        assert_eq!(events.len(), 7);
        assert_eq!(history.location(1), Location::Line(3));
        assert_eq!(
            (events[0].f.as_str(), &*events[0].value),
            ("write", &json!(4))
        );
        assert_eq!(*events[1].value, json!([3, 0]));
        assert_eq!(events[2].kind, EventType::Fail);
        assert_eq!(events[2].error.as_deref(), Some(CAS_MISMATCH));
        assert_eq!(events[3].kind, EventType::Info);
        assert_eq!(events[3].error.as_deref(), Some("timed-out"));
        assert_eq!(*events[4].value, Value::Null);
        assert_eq!(
            events[5].kind,
            EventType::Info,
            "a timed-out read is indeterminate"
        );
        assert_eq!(events[6].process, Process::Nemesis);
    }

    #[test]
    fn malformed_operation_lines_are_errors() {
        let error = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(
            error(
                "INFO  jepsen.util - 1\t:invoke\t:write\t4\nINFO  jepsen.util - 2\t:invoke\t:cas\t[3 0"
            ),
            "line 2: expected ']' to close what line 2 opened, found the end of the input"
        );
        assert_eq!(
            error("INFO  jepsen.util - 1\t:invoke\t:write"),
            "line 1: expected a value after :write (nil, a number, [from to], ...)"
        );
        assert_eq!(
            error("INFO  jepsen.util - 1\t:ok\twrite\t3"),
            "line 1: expected a function keyword like :read, found write"
        );
    }

    #[test]
    fn deep_values_and_long_operation_lines_are_refused_with_the_line() {
        let deep = format!(
            "INFO  jepsen.util - 1\t:invoke\t:write\t4\nINFO  jepsen.util - 2\t:invoke\t:write\t{}",
            "[".repeat(100_000)
        );
        let error = parse(&deep).unwrap_err().to_string();
        assert!(
            error.starts_with("line 2: forms nested deeper than 128 levels"),
            "{error}"
        );
        let text =
            "a long line of other output, skipped\nINFO  jepsen.util - 1\t:invoke\t:write\t4";
        assert_eq!(
            parse_bounded(text, 37).unwrap_err().to_string(),
            "line 2: the operation line is 38 bytes long, over the limit of 37 bytes for one \
             operation"
        );
        assert!(parse_bounded(text, 38).is_ok());
    }
}
