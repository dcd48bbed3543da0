//! The page of a history checked alone (`faultline check --report`), drawn by the same code
//! as a run's: the history, the check's verdict, counterexamples and lost writes, when the
//! first anomaly became visible, and the faults the history records; the parts that only a
//! run has (its options, its nodes' states, replicas, leaders) are left out.
//!
//! A history with no times of its own (Knossos's and Porcupine's files: each event's time is
//! then its place in the file, a nanosecond apart) is drawn with its events a millisecond
//! apart, so that its operations have a width to see and to point at; the page says so.

use std::path::Path;

use anyhow::{Context, Result};
use faultline_checker::{Format, HistoryCheck};
use faultline_history::{Event, History};

use super::analysis::Analysis;
use super::page;
use super::page_data::{FileInfo, PageData, Subject};
use crate::results;

/// How far apart the events of a history without times are drawn, in nanoseconds.
const UNTIMED_SPACING: u64 = 1_000_000;

/// Writes the page of `history`, read from `file` in `format` and `checked`, to `page`.
pub fn write(
    file: &Path,
    format: Format,
    history: &History,
    checked: HistoryCheck,
    page: &Path,
) -> Result<()> {
    let untimed = is_untimed(history);
    let (history, checked) = if untimed {
        (spaced(history), spaced_check(checked))
    } else {
        (history.clone(), checked)
    };
    let results = results::of_history(&history, checked);
    let analysis = Analysis::new(&history, &results, &[], &[]);
    let info = FileInfo {
        path: file.display().to_string(),
        name: file.file_name().map_or_else(
            || file.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        ),
        format: format.name(),
        untimed,
    };
    let data = PageData::new(Subject::History(&info), &history, &results, &analysis);
    std::fs::write(page, page::render(&data)?)
        .with_context(|| format!("writing the report {}", page.display()))
}

/// Whether every event's time is its place in the history: the readers' stand-in for times
/// a file does not record.
fn is_untimed(history: &History) -> bool {
    let events = history.events();
    !events.is_empty() && events.iter().zip(0..).all(|(event, i)| event.time == i)
}

fn spaced(history: &History) -> History {
    History::new(
        history
            .events()
            .iter()
            .map(|event| Event {
                time: event.time * UNTIMED_SPACING,
                ..event.clone()
            })
            .collect(),
    )
}

/// `checked` with its times spaced as [`spaced`] spaces the history's: the times of the
/// counterexamples' operations, and of the completions that made them visible.
fn spaced_check(mut checked: HistoryCheck) -> HistoryCheck {
    let examples = checked
        .linearizability
        .iter_mut()
        .flat_map(|result| &mut result.counterexamples);
    for example in examples {
        for op in &mut example.operations {
            op.call *= UNTIMED_SPACING;
            op.return_time = op.return_time.map(|time| time * UNTIMED_SPACING);
        }
        if let Some(observable) = &mut example.observable {
            observable.time *= UNTIMED_SPACING;
        }
    }
    checked
}

#[cfg(test)]
mod tests {
    use faultline_checker::{CheckOptions, check, read_history};

    use super::*;

    #[test]
    fn a_history_without_times_is_spaced_a_millisecond_an_event_and_so_is_its_check() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../checker/testdata/porcupine/jepsen/etcd_000.log");
        let (history, _) = read_history(&file, None).unwrap();
        assert!(is_untimed(&history));
        let checked = check(&history, None, &CheckOptions::default()).unwrap();
        let example = &checked.linearizability[0].counterexamples[0];
        let op = &example.operations[3];
        let (call, ret) = (op.call, op.return_time);

        let spaced_history = spaced(&history);
        assert!(!is_untimed(&spaced_history));
        assert_eq!(spaced_history.events()[3].time, 3_000_000);
        let spaced = spaced_check(checked.clone());
        let spaced_op = &spaced.linearizability[0].counterexamples[0].operations[3];
        assert_eq!(spaced_op.call, call * UNTIMED_SPACING);
        assert_eq!(spaced_op.return_time, ret.map(|t| t * UNTIMED_SPACING));
        assert_eq!(spaced.valid, checked.valid);

        let timed = History::from_jsonl(
            r#"{"index":0,"time":5,"process":0,"type":"invoke","f":"read","value":null}"#,
        )
        .unwrap();
        assert!(!is_untimed(&timed));
    }
}
