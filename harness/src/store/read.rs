//! Runs read back, two ways. One run whole, for the report ([`RunFiles::read`]): every file
//! parsed, or an error that names the file and says what writes it. Every run of a store in
//! brief, for the index of `faultline serve` ([`scan`]): a run whose files are missing or
//! unreadable (interrupted, crashed, still running) is listed as such, and never hides the
//! other runs.

use std::fs;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Local};
use faultline_checker::Verdict;
use faultline_history::History;
use serde::de::DeserializeOwned;

use super::{HISTORY, LATEST, RESULTS, RunDir, STATUS, TEST_JSON, TestRecord};
use crate::results::RunResults;
use crate::status_sample::StatusSample;

/// Everything the report reads from a run directory.
#[derive(Clone, Debug)]
pub struct RunFiles {
    pub test: TestRecord,
    pub history: History,
    pub status: Vec<StatusSample>,
    pub results: RunResults,
}

impl RunFiles {
    /// Reads `test.json`, `history.jsonl`, `status.jsonl` and `results.json` from `dir`.
    pub fn read(dir: &Path) -> Result<RunFiles> {
        if !dir.is_dir() {
            return Err(anyhow!(
                "{} is not a run directory (expected store/<test-name>/<timestamp>, or \
                 store/latest)",
                dir.display()
            ));
        }
        let run = RunDir::at(dir);
        let test = run.read_test()?;
        let history_path = run.history();
        let history = History::from_jsonl(&read_text(&history_path)?)
            .with_context(|| format!("{} is not a valid history", history_path.display()))?;
        let status = read_status(&run.status_log())?;
        let results = run.read_results()?;
        Ok(RunFiles {
            test,
            history,
            status,
            results,
        })
    }
}

/// One run of the store, as the index lists it.
#[derive(Clone, Debug)]
pub struct StoredRun {
    /// The test's name: the first directory level.
    pub test: String,
    /// The run's directory in it, a timestamp like `20260101T120000`.
    pub dir: String,
    /// When it started (from `test.json`; else when its directory last changed).
    pub time: DateTime<Local>,
    /// From `test.json`, if it could be read.
    pub workload: Option<String>,
    pub nemesis: Option<String>,
    pub verdict: RunVerdict,
    /// Operations the checker judged (failed ones removed), from `results.json`.
    pub operations: Option<usize>,
    /// Whether `report.html` is there.
    pub has_report: bool,
}

/// What `results.json` says about a run.
#[derive(Clone, Debug, PartialEq)]
pub enum RunVerdict {
    Checked(Verdict),
    /// No `results.json`: the run was interrupted, failed, or is still going.
    NoResults,
    /// `results.json` is there but cannot be read; why.
    Unreadable(String),
}

/// Every run under `store/<test>/<run>/`, newest first.
pub fn scan(store: &Path) -> io::Result<Vec<StoredRun>> {
    let mut runs = Vec::new();
    for test in fs::read_dir(store)? {
        let test = test?;
        // `latest` is a link to a run listed anyway; files (junit.xml) are not runs.
        if test.file_name() == LATEST || !test.file_type()?.is_dir() {
            continue;
        }
        for run in fs::read_dir(test.path())? {
            let run = run?;
            if run.file_type()?.is_dir() {
                runs.push(read_run(
                    &test.file_name().to_string_lossy(),
                    &run.file_name().to_string_lossy(),
                    RunDir::at(run.path()),
                ));
            }
        }
    }
    runs.sort_by(|a, b| (b.time, &b.test, &b.dir).cmp(&(a.time, &a.test, &a.dir)));
    Ok(runs)
}

/// What the index shows of `run`, whatever state its files are in.
fn read_run(test: &str, dir: &str, run: RunDir) -> StoredRun {
    let record = run.read_test().ok();
    let changed = fs::metadata(&run.path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let time = record
        .as_ref()
        .and_then(|t| DateTime::parse_from_rfc3339(&t.started).ok())
        .map(|started| started.with_timezone(&Local))
        .unwrap_or_else(|| changed.into());
    let (verdict, operations) = match run.read_results() {
        Ok(results) => (
            RunVerdict::Checked(results.valid),
            Some(results.linearizability.iter().map(|c| c.operations).sum()),
        ),
        Err(e) if is_missing(&e) => (RunVerdict::NoResults, None),
        Err(e) => (RunVerdict::Unreadable(format!("{e:#}")), None),
    };
    let (workload, nemesis) = match record {
        Some(t) => (Some(t.options.workload), Some(t.options.nemesis)),
        None => (None, None),
    };
    StoredRun {
        test: test.to_string(),
        dir: dir.to_string(),
        time,
        workload,
        nemesis,
        verdict,
        operations,
        has_report: run.report_page().is_file(),
    }
}

/// Whether reading failed because the file is not there.
fn is_missing(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::NotFound)
}

fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}: {}",
            path.display(),
            what_writes(path).unwrap_or("a run directory holds it")
        )
    })
}

/// Which part of a run writes the file, for the error when it is missing.
fn what_writes(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    Some(match name {
        RESULTS => {
            "`faultline test` writes it once the history is checked (an interrupted run has none)"
        }
        TEST_JSON => "`faultline test` writes it when the run starts",
        HISTORY | STATUS => "`faultline test` writes it while the run goes on",
        _ => return None,
    })
}

/// Reads and parses the JSON file at `path`.
pub(super) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = read_text(path)?;
    serde_json::from_str(&text).with_context(|| format!("{} is malformed", path.display()))
}

/// `status.jsonl`: one [`StatusSample`] per line; blank lines are skipped.
fn read_status(path: &Path) -> Result<Vec<StatusSample>> {
    let text = read_text(path)?;
    (1..)
        .zip(text.lines())
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{} line {number} is malformed", path.display()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::JUNIT;
    use crate::store::tests::fixture;

    /// Stores a run of `test` started at `started`, as `faultline test` writes it (from the
    /// fixture's files): with `results.json` saying `valid` after 40 + 2 operations, or
    /// without it.
    fn stored_run(
        store: &Path,
        test: &str,
        dir: &str,
        started: &str,
        valid: Option<Verdict>,
    ) -> RunDir {
        let run = RunDir::at(store.join(test).join(dir));
        fs::create_dir_all(&run.path).unwrap();
        let mut record = fixture().read_test().unwrap();
        record.options.name = test.to_string();
        record.options.workload = "register".to_string();
        record.started = started.to_string();
        run.write_test(&record).unwrap();
        if let Some(valid) = valid {
            let mut results = fixture().read_results().unwrap();
            results.valid = valid;
            results.linearizability[0].operations = 40;
            results.linearizability[1].operations = 2;
            run.write_results(&results).unwrap();
        }
        run
    }

    #[test]
    fn runs_are_listed_newest_first_with_their_verdicts() {
        let store = tempfile::tempdir().unwrap();
        let store = store.path();
        stored_run(
            store,
            "a",
            "20260101T100000",
            "2026-01-01T10:00:00+00:00",
            Some(Verdict::Valid),
        );
        let newer = stored_run(
            store,
            "b",
            "20260101T110000",
            "2026-01-01T11:00:00+00:00",
            Some(Verdict::Invalid),
        );
        fs::write(newer.report_page(), "<html>").unwrap();
        // Started last, but in an earlier timezone: the time, not the text, decides.
        stored_run(
            store,
            "c",
            "20260101T120000",
            "2026-01-01T12:30:00+02:00",
            None,
        );
        fs::write(store.join(JUNIT), "<testsuites/>").unwrap();
        std::os::unix::fs::symlink("b/20260101T110000", store.join(LATEST)).unwrap();

        let runs = scan(store).unwrap();
        let order: Vec<&str> = runs.iter().map(|r| r.test.as_str()).collect();
        assert_eq!(order, ["b", "c", "a"]);
        assert_eq!(runs[0].verdict, RunVerdict::Checked(Verdict::Invalid));
        assert!(runs[0].has_report);
        assert_eq!(runs[1].verdict, RunVerdict::NoResults);
        assert_eq!(runs[1].operations, None);
        assert_eq!(runs[2].verdict, RunVerdict::Checked(Verdict::Valid));
        assert_eq!(runs[2].operations, Some(42));
        assert_eq!(runs[2].workload.as_deref(), Some("register"));
        assert_eq!(runs[2].nemesis.as_deref(), Some("kill,partition"));
        assert!(!runs[2].has_report);
    }

    #[test]
    fn a_run_with_broken_files_is_listed_and_does_not_hide_the_others() {
        let store = tempfile::tempdir().unwrap();
        let store = store.path();
        let broken = stored_run(
            store,
            "x",
            "1",
            "2026-01-01T10:00:00Z",
            Some(Verdict::Valid),
        );
        fs::write(broken.test_json(), "not json").unwrap();
        fs::write(broken.results(), "{oops").unwrap();
        fs::create_dir_all(store.join("y/2")).unwrap();
        stored_run(
            store,
            "z",
            "3",
            "2026-01-01T09:00:00Z",
            Some(Verdict::Valid),
        );

        let runs = scan(store).unwrap();
        assert_eq!(runs.len(), 3);
        let x = runs.iter().find(|r| r.test == "x").unwrap();
        let RunVerdict::Unreadable(why) = &x.verdict else {
            panic!("{:?}", x.verdict)
        };
        assert!(why.contains(RESULTS) && why.contains("malformed"), "{why}");
        assert_eq!((&x.workload, &x.nemesis), (&None, &None));
        let y = runs.iter().find(|r| r.test == "y").unwrap();
        assert_eq!(y.verdict, RunVerdict::NoResults);
        let z = runs.iter().find(|r| r.test == "z").unwrap();
        assert_eq!(z.verdict, RunVerdict::Checked(Verdict::Valid));
    }

    #[test]
    fn the_report_is_told_which_file_is_missing_and_what_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        for file in [TEST_JSON, HISTORY, STATUS] {
            fs::copy(fixture().path.join(file), dir.path().join(file)).unwrap();
        }
        let error = format!("{:#}", RunFiles::read(dir.path()).unwrap_err());
        assert!(error.contains(RESULTS), "{error}");
        assert!(error.contains("once the history is checked"), "{error}");

        fs::copy(fixture().results(), dir.path().join(RESULTS)).unwrap();
        let files = RunFiles::read(dir.path()).unwrap();
        assert_eq!(files.test.options.name, "fixture-invalid");
        assert_eq!(files.results.valid, Verdict::Invalid);
        assert!(!files.status.is_empty());
    }
}
