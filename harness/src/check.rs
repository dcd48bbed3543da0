//! `faultline check`: checks recorded histories as a run checks its own
//! ([`faultline_checker::check`]: each key for linearizability against its model, the list
//! keys for lost writes), one file after another, and prints a verdict a person can read or
//! JSON. Of one history, it can also write the history out as another tool reads it
//! (`--export edn OUT`, for Knossos or Jepsen to check it again) and draw it as a run's report
//! is drawn (`--report OUT`).
//!
//! A run's own `history.jsonl` (with its results.json beside it) is checked the same way, and
//! what the run saw beside the history (crashed nodes, two leaders of a term, diverged
//! replicas, ...) is read from results.json and folded in: the verdict is the run's.
//!
//! Exit code: 0 if every history is valid, else the worst of 2 (unknown), 1 (invalid) and
//! 3 (a history could not be checked, or what was asked could not be written), in that order
//! of severity.

pub(crate) mod text;

use crate::console::{errln, out, outln};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use faultline_checker::{
    Budget, CheckOptions, ERROR_EXIT_CODE, ExportFormat, Format, HistoryCheck, Verdict,
    export_history, read_history,
};
use faultline_history::ModelKind;
use serde_json::Value;

use crate::results::RunResults;
use crate::store::RunDir;

/// Check histories for linearizability (and lost writes, for list-append keys).
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// History files, checked one after another.
    #[arg(required = true, value_name = "HISTORY")]
    histories: Vec<PathBuf>,

    /// The model to check every key against [default: each key's from its operations: kv
    /// for get/put; multi-register for txn, mutex for acquire/release, unordered-queue for
    /// enqueue/dequeue, set for add; list-append for append (or reads of lists); else
    /// cas-register]
    #[arg(long, value_parser = PossibleValuesParser::new(ModelKind::ALL.map(ModelKind::name))
        .try_map(|name| name.parse::<ModelKind>()))]
    model: Option<ModelKind>,

    /// The file format [default: from the extension (.jsonl, .edn, .log), else the contents]
    #[arg(long, value_parser = PossibleValuesParser::new(Format::ALL.map(Format::name))
        .try_map(|name| name.parse::<Format>()))]
    format: Option<Format>,

    /// Time budget per history, for all its keys and models together, like 60s or 5m; keys
    /// undecided by then are unknown. Once a key is found invalid, the others get at most a
    /// second more.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,

    /// The initial value of every register (or string, list, set, queue, or mutex: true or
    /// "locked"; for multi-register, an object gives each register's), as JSON [default:
    /// the model's empty value: null, "", [], or a free mutex]
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    initial: Option<Value>,

    /// Print one JSON object per history (a line each) instead of text.
    #[arg(long)]
    json: bool,

    /// Also write the history, as read, to the file OUT in FORMAT: edn (Jepsen's, which
    /// Knossos and Jepsen read, to check the verdict with another checker) or jsonl. Takes
    /// one HISTORY.
    #[arg(long, num_args = 2, value_names = ["FORMAT", "OUT"])]
    export: Option<Vec<OsString>>,

    /// Also draw the history and what the check found (counterexamples, lost writes, faults)
    /// as one self-contained HTML page, OUT, as a run's report is drawn. Takes one HISTORY.
    #[arg(long, value_name = "OUT")]
    report: Option<PathBuf>,
}

/// The files `--export` and `--report` ask for.
#[derive(Debug, Default)]
struct Outputs {
    export: Option<(ExportFormat, PathBuf)>,
    report: Option<PathBuf>,
}

impl Outputs {
    /// The outputs `args` ask for. Each is one file, so they take one history: several would
    /// overwrite one another (check them one at a time to draw each).
    fn of(args: &CheckArgs) -> anyhow::Result<Outputs> {
        let export = match args.export.as_deref() {
            None => None,
            Some([format, out]) => {
                let format = format
                    .to_str()
                    .ok_or_else(|| {
                        anyhow!("--export: expected a format (edn or jsonl), found {format:?}")
                    })?
                    .parse::<ExportFormat>()
                    .map_err(|error| anyhow!("--export: {error}"))?;
                Some((format, PathBuf::from(out)))
            }
            Some(other) => bail!("--export: expected a format and a file, found {other:?}"),
        };
        let outputs = Outputs {
            export,
            report: args.report.clone(),
        };
        let count = args.histories.len();
        if (outputs.export.is_some() || outputs.report.is_some()) && count > 1 {
            bail!(
                "--export and --report write one file each, of one history: give them one \
                 HISTORY (got {count}), and check the others apart"
            );
        }
        Ok(outputs)
    }
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|error| format!("expected JSON, like 0 or \"x\": {error}"))
}

/// What came of checking one file, from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Valid,
    Unknown,
    Invalid,
    Error,
}

impl Outcome {
    fn of(verdict: Verdict) -> Outcome {
        match verdict {
            Verdict::Valid => Outcome::Valid,
            Verdict::Unknown => Outcome::Unknown,
            Verdict::Invalid => Outcome::Invalid,
        }
    }

    fn exit_code(self) -> u8 {
        match self {
            Outcome::Valid => Verdict::Valid.exit_code(),
            Outcome::Unknown => Verdict::Unknown.exit_code(),
            Outcome::Invalid => Verdict::Invalid.exit_code(),
            Outcome::Error => ERROR_EXIT_CODE,
        }
    }
}

/// Everything known about one checked file.
pub struct FileReport {
    file: PathBuf,
    format: Format,
    checked: HistoryCheck,
    /// For a run's own history, what the run saw beside it (its results.json).
    run: Option<RunFindings>,
    /// Where `--export` wrote the history, if asked.
    exported: Option<PathBuf>,
    /// Where `--report` wrote the page, if asked.
    report: Option<PathBuf>,
}

/// What a run saw beside the history it stored, which the history alone cannot tell: nodes
/// that crashed, two leaders of one term, diverged replicas, and the rest of
/// [`RunResults::run_verdict`]. Folded into the verdict of `faultline check` on a run's
/// `history.jsonl`, so that it gives the verdict the run gave.
pub struct RunFindings {
    /// The run's results.json, where they were read.
    pub results_file: PathBuf,
    pub results: RunResults,
}

impl RunFindings {
    /// The findings of the run that stored `history`, if it is a run's history.
    fn beside(history: &Path) -> anyhow::Result<Option<RunFindings>> {
        let Some(run) = RunDir::holding(history) else {
            return Ok(None);
        };
        let results = run
            .read_results()
            .context("reading what the run saw beside its history")?;
        Ok(Some(RunFindings {
            results_file: run.results(),
            results,
        }))
    }

    /// The run's own findings as JSON, with their verdict and the file they came from.
    fn to_json(&self) -> serde_json::Result<Value> {
        let all = serde_json::to_value(&self.results)?;
        let mut json = serde_json::json!({
            "results": self.results_file.display().to_string(),
            "valid": self.results.run_verdict(),
        });
        for field in [
            "replicas",
            "agreement",
            "crashes",
            "stalls",
            "stale_leaders",
            "two_leaders",
            "healing",
        ] {
            if let Some(value) = all.get(field) {
                json[field] = value.clone();
            }
        }
        Ok(json)
    }
}

impl FileReport {
    /// The verdict: the history's, and for a run's history, the run's findings too.
    pub fn valid(&self) -> Verdict {
        match &self.run {
            Some(run) => self.checked.valid.and(run.results.run_verdict()),
            None => self.checked.valid,
        }
    }

    /// The check's result as JSON (`valid`, `linearizability`, `lost_writes`, as in a run's
    /// results.json), with `file` and `format`, `run` for a run's history (what the run saw
    /// beside it, folded into `valid`), and `export` and `report` if written.
    fn to_json(&self) -> serde_json::Result<Value> {
        let mut json = serde_json::to_value(&self.checked)?;
        json["valid"] = serde_json::to_value(self.valid())?;
        if let Some(run) = &self.run {
            json["run"] = run.to_json()?;
        }
        json["file"] = Value::from(self.file.display().to_string());
        json["format"] = Value::from(self.format.name());
        if let Some(exported) = &self.exported {
            json["export"] = Value::from(exported.display().to_string());
        }
        if let Some(report) = &self.report {
            json["report"] = Value::from(report.display().to_string());
        }
        Ok(json)
    }
}

/// Runs `faultline check`.
pub fn run(args: &CheckArgs) -> ExitCode {
    let outputs = match Outputs::of(args) {
        Ok(outputs) => outputs,
        Err(error) => {
            errln!("faultline check: error: {error:#}");
            return ExitCode::from(ERROR_EXIT_CODE);
        }
    };
    let mut worst = Outcome::Valid;
    for path in &args.histories {
        let outcome = match check_file(path, args, &outputs) {
            Ok(report) => print_report(&report, args.json),
            Err(error) => print_error(path, &error, args.json),
        };
        worst = worst.max(outcome);
    }
    ExitCode::from(worst.exit_code())
}

fn print_report(report: &FileReport, json: bool) -> Outcome {
    if !json {
        out!("{}", text::render(report));
        if let Some(exported) = &report.exported {
            outln!("  exported: {}", exported.display());
        }
        if let Some(page) = &report.report {
            outln!("  report: {}", page.display());
        }
        return Outcome::of(report.valid());
    }
    match report.to_json() {
        Ok(json) => {
            outln!("{json}");
            Outcome::of(report.valid())
        }
        Err(error) => {
            let file = report.file.display();
            errln!("{file}: error: cannot write the result as JSON: {error}");
            Outcome::Error
        }
    }
}

fn print_error(path: &Path, error: &anyhow::Error, json: bool) -> Outcome {
    let message = format!("{error:#}");
    if json {
        let file = path.display().to_string();
        outln!("{}", serde_json::json!({"file": file, "error": message}));
    } else {
        errln!("{}: error: {message}", path.display());
    }
    Outcome::Error
}

fn check_file(path: &Path, args: &CheckArgs, outputs: &Outputs) -> anyhow::Result<FileReport> {
    let (history, format) = read_history(path, args.format)?;
    let run = RunFindings::beside(path)?;
    // Before the check, which may take minutes: an unwritable file is known at once.
    if let Some((export_format, out)) = &outputs.export {
        export_history(&history, *export_format, out)
            .with_context(|| format!("exporting the history as {export_format}"))?;
    }
    let options = CheckOptions {
        budget: Budget {
            timeout: Some(args.timeout),
            ..Budget::default()
        },
        initial: args.initial.clone(),
        whole: false,
    };
    let checked = faultline_checker::check(&history, args.model, &options).with_context(|| {
        match args.model {
            Some(model) => format!("checking against the {model} model"),
            None => "checking each key against the model its operations call for".to_string(),
        }
    })?;
    if let Some(page) = &outputs.report {
        // A clone: the page keeps the earliest counterexamples only, the output all.
        crate::report::write_checked(path, format, &history, checked.clone(), page)?;
    }
    Ok(FileReport {
        file: path.to_path_buf(),
        format,
        checked,
        run,
        exported: outputs.export.as_ref().map(|(_, out)| out.clone()),
        report: outputs.report.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_outcome_decides_the_exit_code() {
        let worst = |outcomes: &[Outcome]| {
            outcomes
                .iter()
                .copied()
                .fold(Outcome::Valid, Outcome::max)
                .exit_code()
        };
        assert_eq!(worst(&[Outcome::Valid, Outcome::Valid]), 0);
        assert_eq!(worst(&[Outcome::Valid, Outcome::Unknown]), 2);
        assert_eq!(worst(&[Outcome::Unknown, Outcome::Invalid]), 1);
        assert_eq!(worst(&[Outcome::Invalid, Outcome::Error]), 3);
    }
}
