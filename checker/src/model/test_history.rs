//! Small histories for the models' unit tests, written as one tuple an event.

use faultline_history::{History, ModelKind};
use serde_json::{Value, json};

use crate::CheckResult;
use crate::linearizability::{CheckOptions, check_history};

/// One event: (process, type, f, value, time); the events are indexed in the order given.
pub(crate) type TestEvent<'a> = (u64, &'a str, &'a str, Value, u64);

/// The history of `events`, each on `key` if given (else keyless, as Knossos writes them).
pub(crate) fn history(events: &[TestEvent], key: Option<&str>) -> History {
    let lines: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(index, (process, kind, f, value, time))| {
            let mut event = json!({"index": index, "time": time, "process": process,
                                   "type": kind, "f": f, "value": value});
            if let Some(key) = key {
                event["key"] = json!(key);
            }
            event.to_string()
        })
        .collect();
    History::from_jsonl(&lines.join("\n")).expect("a test history parses")
}

/// Checks keyless `events` against `model` with the default options.
pub(crate) fn check(model: ModelKind, events: &[TestEvent]) -> CheckResult {
    check_with(model, events, &CheckOptions::default())
}

/// Checks keyless `events` against `model` with `options`.
pub(crate) fn check_with(
    model: ModelKind,
    events: &[TestEvent],
    options: &CheckOptions,
) -> CheckResult {
    check_history(&history(events, None), model, options).expect("the model reads the history")
}
