//! JSON Lines, the file a history is kept in: one event a line. Reading is streamed, line by
//! line, and bounded ([`MAX_LINE_BYTES`], [`MAX_DEPTH`]), and shares the names and small
//! values that events repeat ([`crate::interner`]), so that a history of tens of millions of
//! events fits in memory beside its operations.

use std::borrow::Cow;
use std::io::{self, BufRead, Read, Write};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::Error;
use crate::history::{Event, EventType, History, Process};
use crate::interner::Interner;
use crate::lines::Lines;
use crate::location::Location;

/// The longest line [`History::read_jsonl`] reads, in bytes: 64 MiB. One line is one event,
/// and Faultline's own are a few hundred bytes; the limit is far above any real event (a final
/// read of a set of millions of elements is tens of MB) and is there so that a file that is no
/// history (a binary blob without newlines) is refused with a line number rather than parsed
/// as one event.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// How deeply arrays and objects may nest in one event: 128 levels, serde_json's own
/// recursion limit, which keeps a hostile line (100,000 `[`) from overflowing the stack. A
/// real event nests a few levels (a transaction of micro-operations, a map of partitions).
pub const MAX_DEPTH: usize = 128;

/// Why [`History::read_jsonl`] could not read a history.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The history is malformed, at the line named.
    #[error(transparent)]
    Malformed(#[from] Error),
    /// The reader failed, at `location` (the line it was reading).
    #[error("{location}: {source}")]
    Io {
        /// The line being read.
        location: Location,
        /// What the reader said.
        source: io::Error,
    },
}

/// One line as written, before its names and values are shared: the fields of [`Event`],
/// borrowed from the line. (Strings with escapes cannot be borrowed, hence `Cow`.)
#[derive(Deserialize)]
struct Line<'a> {
    index: u64,
    time: u64,
    process: Process,
    #[serde(rename = "type")]
    kind: EventType,
    #[serde(borrow)]
    f: Cow<'a, str>,
    #[serde(default, borrow)]
    key: Option<Cow<'a, str>>,
    /// Its text, parsed by the interner only if it is new; `None` for `null` or no value.
    #[serde(default, borrow)]
    value: Option<&'a RawValue>,
    #[serde(default, borrow)]
    error: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    node: Option<Cow<'a, str>>,
    #[serde(default, rename = "final")]
    final_read: bool,
}

impl History {
    /// Parses JSON Lines held in memory: see [`History::read_jsonl`].
    pub fn from_jsonl(text: &str) -> Result<Self, Error> {
        History::read_jsonl(text.as_bytes()).map_err(|error| match error {
            ReadError::Malformed(error) => error,
            ReadError::Io { .. } => unreachable!("reading a slice in memory cannot fail"),
        })
    }

    /// Reads JSON Lines, one line at a time: one event a line; blank lines are skipped. A
    /// line longer than [`MAX_LINE_BYTES`], nested deeper than [`MAX_DEPTH`], not UTF-8, or
    /// whose `index` is not greater than the line's before ([`History::check_indexes`]) is an
    /// error naming the line.
    pub fn read_jsonl(mut reader: impl BufRead) -> Result<Self, ReadError> {
        let mut events = Vec::new();
        let mut lines = Lines::default();
        let mut interner = Interner::default();
        let mut buffer = Vec::new();
        for number in 1.. {
            let io_error = |source| ReadError::Io {
                location: Location::Line(number),
                source,
            };
            let line = match next_line(&mut reader, &mut buffer).map_err(io_error)? {
                NextLine::End => break,
                NextLine::Line(line) => line,
                NextLine::TooLong(length) => {
                    return Err(Error::malformed(
                        Location::Line(number),
                        format!(
                            "the line is {length} bytes long, over the limit of {} for one \
                             event; is this a history of one JSON event a line?",
                            describe_bytes(MAX_LINE_BYTES)
                        ),
                    )
                    .into());
                }
            };
            let line = std::str::from_utf8(line).map_err(|error| {
                Error::malformed(
                    Location::Line(number),
                    format!(
                        "the line is not UTF-8 text (at column {})",
                        error.valid_up_to() + 1
                    ),
                )
            })?;
            if line.trim().is_empty() {
                continue;
            }
            events.push(
                event(line, &mut interner)
                    .map_err(|message| Error::malformed(Location::Line(number), message))?,
            );
            lines.push(number);
        }
        let history = History::with_lines(events, lines);
        history.check_indexes()?;
        Ok(history)
    }

    /// Writes JSON Lines: one event a line.
    pub fn write_jsonl(&self, mut writer: impl Write) -> io::Result<()> {
        for event in self.events() {
            serde_json::to_writer(&mut writer, event)?;
            writer.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// The event on `line`, its names and value shared through `interner`; or what is wrong.
fn event(line: &str, interner: &mut Interner) -> Result<Event, String> {
    let parsed: Line = serde_json::from_str(line).map_err(|error| {
        // serde_json skips over a value for `RawValue` without bounding how deeply it nests:
        // parsed whole, the line says whether that is what is wrong with it (100,000 `[`
        // are otherwise only "EOF while parsing").
        match serde_json::from_str::<serde_json::Value>(line) {
            Err(whole) if nests_too_deep(&whole) => describe_json_error(&whole, 0),
            _ => describe_json_error(&error, 0),
        }
    })?;
    let value = match parsed.value {
        Some(value) => {
            // The value is parsed apart from the line (serde_json only skipped over it), so
            // its errors, nesting too deep among them, count columns from the value's start.
            let start = value.get().as_ptr() as usize - line.as_ptr() as usize;
            interner
                .value(value.get())
                .map_err(|error| describe_json_error(&error, start))?
        }
        None => interner.value("null").expect("null is JSON"),
    };
    Ok(Event {
        index: parsed.index,
        time: parsed.time,
        process: parsed.process,
        kind: parsed.kind,
        f: interner.name(&parsed.f),
        key: parsed.key.map(|key| interner.name(&key)),
        value,
        error: parsed.error.map(|error| interner.name(&error)),
        node: parsed.node.map(|node| interner.name(&node)),
        final_read: parsed.final_read,
    })
}

/// What [`next_line`] found.
enum NextLine<'b> {
    /// The end of the input.
    End,
    /// A line, without its line ending.
    Line(&'b [u8]),
    /// A line over [`MAX_LINE_BYTES`], this many bytes long (read through, never held).
    TooLong(usize),
}

/// Reads the next line of `reader` into `buffer`, holding at most [`MAX_LINE_BYTES`] (and a
/// line ending): a longer line is skipped to its end, only to count its length.
fn next_line<'b>(reader: &mut impl BufRead, buffer: &'b mut Vec<u8>) -> io::Result<NextLine<'b>> {
    buffer.clear();
    // The limit, and room for "\r\n".
    let most = MAX_LINE_BYTES as u64 + 2;
    let read = Read::take(&mut *reader, most).read_until(b'\n', buffer)?;
    if read == 0 {
        return Ok(NextLine::End);
    }
    let ended = buffer.last() == Some(&b'\n');
    if ended {
        buffer.pop();
        if buffer.last() == Some(&b'\r') {
            buffer.pop();
        }
    } else if read as u64 == most {
        // Cut off by the limit: count the rest of the line without keeping it.
        let mut length = buffer.len();
        loop {
            let available = reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            let (taken, end) = match available.iter().position(|&byte| byte == b'\n') {
                Some(newline) => (newline + 1, true),
                None => (available.len(), false),
            };
            length += taken - usize::from(end);
            reader.consume(taken);
            if end {
                break;
            }
        }
        return Ok(NextLine::TooLong(length));
    }
    if buffer.len() > MAX_LINE_BYTES {
        return Ok(NextLine::TooLong(buffer.len()));
    }
    Ok(NextLine::Line(buffer))
}

/// `64 MiB`, `1 KiB`, or a number of bytes, for messages about limits.
pub fn describe_bytes(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// serde_json's message without its "at line 1 column N" (each line is parsed alone).
fn json_error_message(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&position) {
        Some(what) => what.to_string(),
        None => message,
    }
}

/// Whether `error` is serde_json's refusal to nest deeper than [`MAX_DEPTH`].
fn nests_too_deep(error: &serde_json::Error) -> bool {
    json_error_message(error) == "recursion limit exceeded"
}

/// What is wrong with a line, from serde_json's `error` and the column in the line: the
/// error's own, counted from byte `start` of the line (where the text parsed began).
fn describe_json_error(error: &serde_json::Error, start: usize) -> String {
    let what = json_error_message(error);
    let column = start + error.column();
    if nests_too_deep(error) {
        return format!(
            "arrays and objects nested deeper than {MAX_DEPTH} levels (column {column}); an \
             event nests a few"
        );
    }
    format!(
        "expected an event like {{\"index\":0,\"time\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}}: {what} (column {column})"
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
{"index":4,"time":3100000,"process":6,"type":"invoke","f":"r\u0065ad","key":"k\"7","value":null,"final":true}
"#;
        let history = History::from_jsonl(text).unwrap();
        assert_eq!(history.events().len(), 5);
        assert_eq!(history.location(2), Location::Line(4));
        let event = &history.events()[2];
        assert_eq!(event.process, Process::Client(5));
        assert_eq!(event.kind, EventType::Info);
        assert_eq!(*event.value, json!([4, 1]));
        assert_eq!(event.error.as_deref(), Some("timeout"));
        assert_eq!(history.events()[1].node.as_deref(), Some("n2"));
        assert_eq!(history.events()[3].process, Process::Nemesis);
        let escaped = &history.events()[4];
        assert_eq!(
            (escaped.f.as_str(), escaped.key.as_deref()),
            ("read", Some("k\"7"))
        );
        assert!(escaped.final_read && escaped.value.is_null());

        let mut written = Vec::new();
        history.write_jsonl(&mut written).unwrap();
        let reread = History::read_jsonl(&written[..]).unwrap();
        assert_eq!(reread.events(), history.events());
        // Every field of an event is written and read back.
        let fields = |event: &Event| serde_json::to_value(event).unwrap();
        assert_eq!(
            fields(&reread.events()[4]),
            json!({"index": 4, "time": 3100000, "process": 6, "type": "invoke", "f": "read",
                   "key": "k\"7", "value": null, "final": true})
        );
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

        // An error in the value (parsed apart) names its column in the line, as serde_json
        // does parsing the whole line.
        let line = "{\"index\":0,\"time\":0,\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":[1e999]}";
        let column = serde_json::from_str::<serde_json::Value>(line)
            .unwrap_err()
            .column();
        let error = History::from_jsonl(line).unwrap_err().to_string();
        assert!(
            error.starts_with("line 1: ") && error.ends_with(&format!("(column {column})")),
            "{error}"
        );

        let error = History::read_jsonl(&b"\n{\"index\":0,\"f\":\"\xff\"}"[..])
            .unwrap_err()
            .to_string();
        assert_eq!(error, "line 2: the line is not UTF-8 text (at column 17)");
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
        // Cut off by the limit in the middle of the line, which goes on to its newline.
        let error = History::from_jsonl(&format!("\n{long}{long}\n{{}}"))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("line 2: the line is 134217732 bytes long"),
            "{error}"
        );
        // At the limit exactly, a line is read (and found to be no event).
        let error = History::from_jsonl(&(" ".repeat(MAX_LINE_BYTES - 2) + "{}\r\n"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing field `index`"), "{error}");
        assert_eq!(describe_bytes(1 << 20), "1 MiB");
        assert_eq!(describe_bytes(3 << 10), "3 KiB");
        assert_eq!(describe_bytes(1000), "1000 bytes");
    }
}
