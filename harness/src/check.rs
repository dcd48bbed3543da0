//! `faultline check`: checks recorded histories for linearizability (and, for list-append,
//! lost writes), one file after another, and prints a verdict a person can read or JSON.
//!
//! Exit code: 0 if every history is valid, else the worst of 2 (unknown), 1 (invalid) and
//! 3 (a history could not be checked), in that order of severity.

pub(crate) mod text;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use faultline_checker::{
    Budget, CheckOptions, CheckResult, ERROR_EXIT_CODE, Format, LostWritesResult, ModelKind,
    Verdict, check_history, lost_writes, read_history,
};
use serde_json::Value;

/// Check histories for linearizability (and lost writes, for list-append).
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// History files, checked one after another.
    #[arg(required = true, value_name = "HISTORY")]
    histories: Vec<PathBuf>,

    /// The model to check against [default: from the operations: kv for get/put,
    /// list-append for append, else cas-register]
    #[arg(long, value_parser = PossibleValuesParser::new(ModelKind::ALL.map(ModelKind::name))
        .try_map(|name| name.parse::<ModelKind>()))]
    model: Option<ModelKind>,

    /// The file format [default: from the extension (.jsonl, .edn, .log), else the contents]
    #[arg(long, value_parser = PossibleValuesParser::new(Format::ALL.map(Format::name))
        .try_map(|name| name.parse::<Format>()))]
    format: Option<Format>,

    /// Time budget per history, like 60s or 5m; keys undecided by then are unknown. Once a
    /// key is found invalid, the others get at most a second more.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,

    /// The initial value of every register (or string, or list), as JSON [default: the
    /// model's empty value: null, "" or []]
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    initial: Option<Value>,

    /// Print one JSON object per history (a line each) instead of text.
    #[arg(long)]
    json: bool,
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
    /// The verdict of all checks together.
    valid: Verdict,
    linearizability: CheckResult,
    /// For list-append histories.
    lost_writes: Option<LostWritesResult>,
}

impl FileReport {
    /// The linearizability result as JSON, with `file`, `format`, the overall `valid`, and
    /// `lost_writes` if it was checked.
    fn to_json(&self) -> serde_json::Result<Value> {
        let mut json = serde_json::to_value(&self.linearizability)?;
        json["file"] = Value::from(self.file.display().to_string());
        json["format"] = Value::from(self.format.name());
        json["valid"] = serde_json::to_value(self.valid)?;
        if let Some(lost_writes) = &self.lost_writes {
            json["lost_writes"] = serde_json::to_value(lost_writes)?;
        }
        Ok(json)
    }
}

/// Runs `faultline check`.
pub fn run(args: &CheckArgs) -> ExitCode {
    let mut worst = Outcome::Valid;
    for path in &args.histories {
        let outcome = match check_file(path, args) {
            Ok(report) => print_report(&report, args.json),
            Err(error) => print_error(path, &error, args.json),
        };
        worst = worst.max(outcome);
    }
    ExitCode::from(worst.exit_code())
}

fn print_report(report: &FileReport, json: bool) -> Outcome {
    if !json {
        print!("{}", text::render(report));
        return Outcome::of(report.valid);
    }
    match report.to_json() {
        Ok(json) => {
            println!("{json}");
            Outcome::of(report.valid)
        }
        Err(error) => {
            let file = report.file.display();
            eprintln!("{file}: error: cannot write the result as JSON: {error}");
            Outcome::Error
        }
    }
}

fn print_error(path: &Path, error: &anyhow::Error, json: bool) -> Outcome {
    let message = format!("{error:#}");
    if json {
        let file = path.display().to_string();
        println!("{}", serde_json::json!({"file": file, "error": message}));
    } else {
        eprintln!("{}: error: {message}", path.display());
    }
    Outcome::Error
}

fn check_file(path: &Path, args: &CheckArgs) -> anyhow::Result<FileReport> {
    let (history, format) = read_history(path, args.format)?;
    let model = args.model.unwrap_or_else(|| ModelKind::infer(&history));
    let options = CheckOptions {
        budget: Budget {
            timeout: Some(args.timeout),
            ..Budget::default()
        },
        initial: args.initial.clone(),
        whole: false,
    };
    let linearizability = check_history(&history, model, &options)
        .with_context(|| format!("checking against the {model} model"))?;
    let lost_writes = (model == ModelKind::ListAppend)
        .then(|| lost_writes(&history))
        .transpose()
        .context("checking for lost writes")?;
    let valid = lost_writes.as_ref().map_or(linearizability.valid, |lost| {
        linearizability.valid.and(lost.valid)
    });
    Ok(FileReport {
        file: path.to_path_buf(),
        format,
        valid,
        linearizability,
        lost_writes,
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
