//! The history recorder, shared by every client task and by the harness for nemesis events.
//!
//! It gives each event its `index` and its `time` (nanoseconds since the `Instant` it was
//! created with) under one lock, so both grow together; keeps every event in memory; and
//! streams them as JSON Lines to a file through a writer thread, which flushes at least once a
//! second, so that a run that dies still leaves its history on disk.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use faultline_history::{Event, EventType, History, Name, Process};
use serde_json::Value;

use crate::error::Error;

/// The longest time an event waits in the buffer before it is written to the file.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// An event before the recorder stamps it with its index and time.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Who performed it.
    pub process: Process,
    /// Invocation or completion.
    pub kind: EventType,
    /// The function.
    pub f: String,
    /// The key, if any.
    pub key: Option<String>,
    /// The argument or result.
    pub value: Value,
    /// Why a `fail` or `info` happened.
    pub error: Option<String>,
    /// The node that served the request.
    pub node: Option<String>,
    /// Whether it is (part of) the final read of its key.
    pub final_read: bool,
}

/// How many events of each type clients have recorded so far (for a progress bar).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Client invocations.
    pub invoke: u64,
    /// Client completions that happened.
    pub ok: u64,
    /// Client completions that did not happen.
    pub fail: u64,
    /// Client completions that may have happened.
    pub info: u64,
    /// Nemesis events.
    pub nemesis: u64,
}

/// Records a history; share it with `Arc`.
pub struct Recorder {
    start: Instant,
    state: Mutex<State>,
}

struct State {
    events: Vec<Event>,
    counts: Counts,
    /// The file's writer; `None` for a history kept only in memory.
    file: Option<FileSink>,
    finished: bool,
}

/// The writer thread and the channel of lines to it.
struct FileSink {
    path: PathBuf,
    lines: mpsc::Sender<Vec<u8>>,
    writer: JoinHandle<io::Result<()>>,
}

impl Recorder {
    /// A recorder that streams the history to `path` (created or truncated); times count from
    /// `start`.
    pub fn to_file(path: &Path, start: Instant) -> Result<Recorder, Error> {
        let file = File::create(path).map_err(|source| Error::HistoryFile {
            path: path.to_path_buf(),
            source,
        })?;
        let (lines, received) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || write_lines(BufWriter::new(file), received))
            .map_err(|source| Error::HistoryFile {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Recorder::with_file(
            start,
            Some(FileSink {
                path: path.to_path_buf(),
                lines,
                writer,
            }),
        ))
    }

    /// A recorder that keeps the history only in memory; times count from `start`.
    pub fn in_memory(start: Instant) -> Recorder {
        Recorder::with_file(start, None)
    }

    fn with_file(start: Instant, file: Option<FileSink>) -> Recorder {
        Recorder {
            start,
            state: Mutex::new(State {
                events: Vec::new(),
                counts: Counts::default(),
                file,
                finished: false,
            }),
        }
    }

    /// Records an event, stamped now. Events recorded after [`Recorder::finish`] are not part
    /// of the history: finish once the clients and the nemesis have stopped.
    pub fn record(&self, entry: Entry) {
        let mut state = self.lock();
        if state.finished {
            return;
        }
        let time = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let event = Event {
            index: state.events.len() as u64,
            time,
            process: entry.process,
            kind: entry.kind,
            f: entry.f.into(),
            key: entry.key.map(Name::from),
            value: Arc::new(entry.value),
            error: entry.error.map(Name::from),
            node: entry.node.map(Name::from),
            final_read: entry.final_read,
        };
        let counts = &mut state.counts;
        match (event.process, event.kind) {
            (Process::Nemesis, _) => counts.nemesis += 1,
            (_, EventType::Invoke) => counts.invoke += 1,
            (_, EventType::Ok) => counts.ok += 1,
            (_, EventType::Fail) => counts.fail += 1,
            (_, EventType::Info) => counts.info += 1,
        }
        if let Some(file) = &state.file {
            // Serializing an `Event` cannot fail: its map keys are strings.
            let mut line = serde_json::to_vec(&event).unwrap_or_default();
            line.push(b'\n');
            // If the writer stopped on an I/O error, `finish` reports it.
            let _ = file.lines.send(line);
        }
        state.events.push(event);
    }

    /// Records a nemesis event: process `nemesis`, type `info`, with `f` like
    /// `"start-partition"` and a value like `{"n1":["n2","n3"]}`.
    pub fn nemesis(&self, f: &str, value: Value) {
        self.record(Entry {
            process: Process::Nemesis,
            kind: EventType::Info,
            f: f.to_string(),
            key: None,
            value,
            error: None,
            node: None,
            final_read: false,
        });
    }

    /// Counts of the events recorded so far.
    pub fn counts(&self) -> Counts {
        self.lock().counts
    }

    /// Writes out and closes the file, and returns the history. Call it once.
    pub fn finish(&self) -> Result<History, Error> {
        let (events, file) = {
            let mut state = self.lock();
            if state.finished {
                return Err(Error::RecorderFinished);
            }
            state.finished = true;
            (std::mem::take(&mut state.events), state.file.take())
        };
        if let Some(FileSink {
            path,
            lines,
            writer,
        }) = file
        {
            drop(lines);
            let written = writer
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the history writer thread panicked")));
            written.map_err(|source| Error::HistoryFile { path, source })?;
        }
        Ok(History::new(events))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The writer thread: writes lines as they come, each reaching the file at most
/// [`FLUSH_INTERVAL`] after it arrived, until the channel closes.
fn write_lines(mut file: BufWriter<File>, lines: mpsc::Receiver<Vec<u8>>) -> io::Result<()> {
    // When the oldest line not yet flushed arrived.
    let mut unflushed_since: Option<Instant> = None;
    loop {
        let received = match unflushed_since {
            None => lines.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(since) => lines.recv_timeout(FLUSH_INTERVAL.saturating_sub(since.elapsed())),
        };
        match received {
            Ok(line) => {
                file.write_all(&line)?;
                unflushed_since.get_or_insert_with(Instant::now);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if unflushed_since.is_some_and(|since| since.elapsed() >= FLUSH_INTERVAL) {
            file.flush()?;
            unflushed_since = None;
        }
    }
    file.into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .sync_all()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn entry(process: u64, kind: EventType) -> Entry {
        Entry {
            process: Process::Client(process),
            kind,
            f: "write".into(),
            key: Some("r0".into()),
            value: json!(process),
            error: (kind == EventType::Info).then(|| "timeout".into()),
            node: (kind != EventType::Invoke).then(|| "n1".into()),
            final_read: false,
        }
    }

    #[test]
    fn the_file_holds_exactly_the_returned_history_in_index_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let recorder = Arc::new(Recorder::to_file(&path, Instant::now()).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|process| {
                let recorder = recorder.clone();
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        recorder.record(entry(process, EventType::Invoke));
                        recorder.record(entry(process, EventType::Ok));
                    }
                })
            })
            .collect();
        recorder.nemesis("start-partition", json!({"n1": ["n2", "n3"]}));
        for thread in threads {
            thread.join().unwrap();
        }
        let history = recorder.finish().unwrap();

        let events = history.events();
        assert_eq!(events.len(), 2001);
        for (position, pair) in events.windows(2).enumerate() {
            assert_eq!(pair[0].index, position as u64);
            assert!(
                pair[0].time <= pair[1].time,
                "times go backwards at {position}"
            );
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(History::from_jsonl(&text).unwrap().events(), events);
        // And the history is well formed: every invocation completed by its own process.
        let operations = faultline_history::operations(&history).unwrap();
        assert_eq!(operations.len(), 1000);
        assert_eq!(
            recorder.counts(),
            Counts {
                invoke: 1000,
                ok: 1000,
                fail: 0,
                info: 0,
                nemesis: 1
            }
        );
    }

    #[test]
    fn events_reach_the_file_before_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let recorder = Recorder::to_file(&path, Instant::now()).unwrap();
        recorder.record(entry(3, EventType::Invoke));
        recorder.record(entry(3, EventType::Info));
        // Bounded wait: several flush intervals.
        let waited_until = Instant::now() + 10 * FLUSH_INTERVAL;
        while std::fs::read_to_string(&path).unwrap().lines().count() < 2 {
            assert!(Instant::now() < waited_until, "the events were not flushed");
            std::thread::sleep(Duration::from_millis(50));
        }
        let on_disk = History::from_jsonl(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(on_disk.events()[1].error.as_deref(), Some("timeout"));
        assert_eq!(recorder.finish().unwrap().events(), on_disk.events());
    }

    #[test]
    fn finishing_twice_is_an_error_and_later_events_are_not_kept() {
        let recorder = Recorder::in_memory(Instant::now());
        recorder.nemesis("kill", json!(["n2"]));
        let history = recorder.finish().unwrap();
        assert_eq!(history.events().len(), 1);
        assert_eq!(history.events()[0].process, Process::Nemesis);
        assert_eq!(history.events()[0].kind, EventType::Info);
        recorder.nemesis("restart", json!(["n2"]));
        assert!(matches!(recorder.finish(), Err(Error::RecorderFinished)));
    }

    #[test]
    fn an_unwritable_path_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("history.jsonl");
        let error = Recorder::to_file(&path, Instant::now())
            .err()
            .unwrap()
            .to_string();
        assert!(error.starts_with("cannot write the history to "), "{error}");
        assert!(error.contains("missing/history.jsonl"), "{error}");
    }
}
