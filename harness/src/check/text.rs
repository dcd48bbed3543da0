//! A checked file as text for a person: one line with the verdict; then, unless it is valid,
//! which keys are not, each invalid key's counterexample, and any lost writes; for a run's
//! history, what the run saw beside it, in the lines of the run's summary.

use std::fmt::Write;

use faultline_checker::{
    CheckResult, Counterexample, KeyLostWrites, LostWritesResult, Stop, Verdict,
};
use faultline_history::Operation;

use super::FileReport;
use crate::run::summary;
use crate::wording::{key_counts, plural, shout};

/// Counterexamples shown in full; the rest are only named.
const COUNTEREXAMPLES_SHOWN: usize = 3;
/// Operations shown from the end of a long prefix.
const PREFIX_SHOWN: usize = 8;

/// The report on one file: `history.jsonl: valid (cas-register, 120 operations, 5 keys;
/// list-append, 300 operations, 5 keys; 0.02 s)`, then what is wrong, model by model.
pub fn render(report: &FileReport) -> String {
    let checked = &report.checked;
    let mut parts: Vec<String> = checked
        .linearizability
        .iter()
        .map(|result| {
            format!(
                "{}, {} operations, {}",
                result.model,
                result.operations,
                plural(result.keys.len(), "key")
            )
        })
        .collect();
    if parts.is_empty() {
        parts.push("no operations".to_string());
    }
    // A fold from 0.0, not `sum`: the sum of nothing is -0.0, printed "-0.00 s".
    let seconds = (checked.linearizability.iter()).fold(0.0, |total, r| total + r.seconds);
    parts.push(format!("{seconds:.2} s"));
    let mut out = format!(
        "{}: {} ({})\n",
        report.file.display(),
        shout(report.valid()),
        parts.join("; "),
    );
    if let Some(reason) = &checked.reason {
        let _ = writeln!(out, "  unknown: {reason}");
    }
    for result in &checked.linearizability {
        if result.valid != Verdict::Valid {
            if checked.linearizability.len() > 1 {
                let _ = writeln!(out, "  {} keys:", result.model);
            }
            write_keys(&mut out, result);
        }
    }
    if let Some(lost_writes) = &checked.lost_writes {
        write_lost_writes(&mut out, lost_writes);
    }
    if let Some(run) = &report.run {
        let _ = writeln!(
            out,
            "  the run      {}: what it saw beside the history, from {}",
            shout(run.results.run_verdict()),
            run.results_file.display()
        );
        summary::write_run_findings(&mut out, &run.results);
        summary::write_healing(&mut out, &run.results);
    }
    out
}

/// Invalid verdicts stand out.
fn key_name(key: &Option<String>) -> String {
    match key {
        Some(key) => format!("key {key:?}"),
        None => "the history".into(),
    }
}

fn write_keys(out: &mut String, result: &CheckResult) {
    let _ = writeln!(out, "  {}", key_counts(result));
    if !result.undecided.is_empty() {
        let names: Vec<String> = result.undecided.iter().map(key_name).collect();
        let why = match result.stopped {
            Some(Stop::MemoryLimit) => "undecided when the memory limit was reached",
            Some(Stop::AfterInvalid) => "left undecided once another key was found invalid",
            Some(Stop::Timeout) | None => "undecided within the time budget",
        };
        let _ = writeln!(out, "  {why}: {}", names.join(", "));
    }
    for example in result.counterexamples.iter().take(COUNTEREXAMPLES_SHOWN) {
        counterexample(out, example);
    }
    if let Some(more) = result.counterexamples.get(COUNTEREXAMPLES_SHOWN..)
        && !more.is_empty()
    {
        let names: Vec<String> = more.iter().map(|example| key_name(&example.key)).collect();
        let _ = writeln!(
            out,
            "  also not linearizable (see --json for why): {}",
            names.join(", ")
        );
    }
}

fn counterexample(out: &mut String, example: &Counterexample) {
    let find = |id: u64| example.operations.iter().find(|op| op.id == id);
    let _ = writeln!(out, "  {} is not linearizable.", key_name(&example.key));
    let prefix = &example.prefix;
    if prefix.is_empty() {
        let _ = writeln!(
            out,
            "    No operation can come first; the state is {} at the start, and:",
            example.state
        );
    } else {
        let _ = writeln!(
            out,
            "    The longest linearizable prefix found has {}:",
            plural(prefix.len(), "operation")
        );
        let hidden = prefix.len().saturating_sub(PREFIX_SHOWN);
        if hidden > 0 {
            let _ = writeln!(
                out,
                "      ... {} before these",
                plural(hidden, "operation")
            );
        }
        for op in prefix[hidden..].iter().filter_map(|&id| find(id)) {
            let _ = writeln!(out, "      {}", operation(op));
        }
        let _ = writeln!(
            out,
            "    after which the state is {}, and none of the operations that may come next fits:",
            example.state
        );
    }
    for rejection in &example.rejected {
        if let Some(op) = find(rejection.id) {
            let _ = writeln!(out, "      {}  <- {}", operation(op), rejection.reason);
        }
    }
}

/// `#12 process 3 write 4 [1200345 .. 1790021]`; an indeterminate end is `?`.
fn operation(op: &Operation) -> String {
    let end = op
        .return_time
        .map_or("?".to_string(), |time| time.to_string());
    let what = format!("{} {}", op.f, op.value);
    format!(
        "#{:<6} process {:<4} {what:<24} [{} .. {end}]",
        op.id, op.process, op.call
    )
}

fn write_lost_writes(out: &mut String, result: &LostWritesResult) {
    let _ = writeln!(
        out,
        "  lost writes: {}: {} lost, {} unexpected, {} recovered ({} acknowledged of {} attempted)",
        result.valid,
        result.lost,
        result.unexpected,
        result.recovered,
        result.acknowledged,
        result.attempted,
    );
    for key in &result.keys {
        key_lost(out, key);
    }
}

fn key_lost(out: &mut String, key: &KeyLostWrites) {
    if key.final_read.is_none() && key.attempted > 0 {
        let _ = writeln!(
            out,
            "    {}: no final read, so its {} could not be judged",
            key_name(&key.key),
            plural(key.attempted, "element")
        );
        return;
    }
    let list = |elements: &[faultline_checker::Element]| {
        elements
            .iter()
            .map(|element| {
                let ops: Vec<String> = element.ops.iter().map(|id| format!("#{id}")).collect();
                format!("{} ({})", element.value, ops.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (what, elements) in [
        ("lost", &key.lost),
        ("unexpected", &key.unexpected),
        ("recovered", &key.recovered),
    ] {
        if !elements.is_empty() {
            let _ = writeln!(out, "    {} {what}: {}", key_name(&key.key), list(elements));
        }
    }
}
