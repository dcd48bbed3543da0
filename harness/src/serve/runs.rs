//! The runs in a store, as the index lists them: read from each run's `test.json` and
//! `results.json`. A run without them (interrupted, crashed, or still running) is listed as
//! such; one unreadable file never hides the other runs.

use std::fs;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use chrono::{DateTime, Local};
use faultline_checker::Verdict;
use serde::Deserialize;

use crate::store::{LATEST, RunDir};

/// One run of the store.
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

/// The parts of `test.json` the index shows.
#[derive(Deserialize)]
struct TestJson {
    options: TestJsonOptions,
    /// RFC 3339.
    started: Option<String>,
}

#[derive(Deserialize)]
struct TestJsonOptions {
    workload: String,
    nemesis: String,
}

/// The parts of `results.json` the index shows.
#[derive(Deserialize)]
struct ResultsJson {
    valid: Verdict,
    #[serde(default)]
    linearizability: Vec<Checked>,
}

#[derive(Deserialize)]
struct Checked {
    operations: usize,
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
                    &run.path(),
                ));
            }
        }
    }
    runs.sort_by(|a, b| (b.time, &b.test, &b.dir).cmp(&(a.time, &a.test, &a.dir)));
    Ok(runs)
}

fn read_run(test: &str, dir: &str, path: &Path) -> StoredRun {
    let run = RunDir::at(path);
    let test_json: Option<TestJson> = fs::read(run.test_json())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let changed = fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let time = test_json
        .as_ref()
        .and_then(|t| t.started.as_deref())
        .and_then(|started| DateTime::parse_from_rfc3339(started).ok())
        .map(|started| started.with_timezone(&Local))
        .unwrap_or_else(|| changed.into());
    let (verdict, operations) = match fs::read(run.results()) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => (RunVerdict::NoResults, None),
        Err(e) => (RunVerdict::Unreadable(e.to_string()), None),
        Ok(bytes) => match serde_json::from_slice::<ResultsJson>(&bytes) {
            Ok(results) => (
                RunVerdict::Checked(results.valid),
                Some(results.linearizability.iter().map(|c| c.operations).sum()),
            ),
            Err(e) => (RunVerdict::Unreadable(e.to_string()), None),
        },
    };
    let (workload, nemesis) = match test_json {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{REPORT_PAGE, RESULTS, TEST_JSON};

    /// Writes a run's files; `None` leaves a file out.
    fn fake_run(
        store: &Path,
        test: &str,
        dir: &str,
        started: &str,
        results: Option<&str>,
    ) -> std::path::PathBuf {
        let path = store.join(test).join(dir);
        fs::create_dir_all(&path).unwrap();
        let test_json = format!(
            r#"{{"options": {{"name": "{test}", "workload": "register", "nemesis": "kill"}},
               "started": "{started}"}}"#
        );
        fs::write(path.join(TEST_JSON), test_json).unwrap();
        if let Some(results) = results {
            fs::write(path.join(RESULTS), results).unwrap();
        }
        path
    }

    #[test]
    fn runs_are_listed_newest_first_with_their_verdicts() {
        let store = tempfile::tempdir().unwrap();
        let valid =
            r#"{"valid": true, "linearizability": [{"operations": 40}, {"operations": 2}]}"#;
        fake_run(
            store.path(),
            "a",
            "20260101T100000",
            "2026-01-01T10:00:00+00:00",
            Some(valid),
        );
        let newer = fake_run(
            store.path(),
            "b",
            "20260101T110000",
            "2026-01-01T11:00:00+00:00",
            Some(r#"{"valid": false, "linearizability": []}"#),
        );
        fs::write(newer.join(REPORT_PAGE), "<html>").unwrap();
        // Started last, but in an earlier timezone: the time, not the text, decides.
        fake_run(
            store.path(),
            "c",
            "20260101T120000",
            "2026-01-01T12:30:00+02:00",
            None,
        );
        fs::write(store.path().join("junit.xml"), "<testsuites/>").unwrap();
        std::os::unix::fs::symlink("b/20260101T110000", store.path().join("latest")).unwrap();

        let runs = scan(store.path()).unwrap();
        let order: Vec<&str> = runs.iter().map(|r| r.test.as_str()).collect();
        assert_eq!(order, ["b", "c", "a"]);
        assert_eq!(runs[0].verdict, RunVerdict::Checked(Verdict::Invalid));
        assert!(runs[0].has_report);
        assert_eq!(runs[1].verdict, RunVerdict::NoResults);
        assert_eq!(runs[1].operations, None);
        assert_eq!(runs[2].verdict, RunVerdict::Checked(Verdict::Valid));
        assert_eq!(runs[2].operations, Some(42));
        assert_eq!(runs[2].workload.as_deref(), Some("register"));
        assert!(!runs[2].has_report);
    }

    #[test]
    fn a_run_with_broken_files_is_listed_and_does_not_hide_the_others() {
        let store = tempfile::tempdir().unwrap();
        let broken = fake_run(
            store.path(),
            "x",
            "1",
            "2026-01-01T10:00:00Z",
            Some("{oops"),
        );
        fs::write(broken.join(TEST_JSON), "not json").unwrap();
        fs::create_dir_all(store.path().join("y/2")).unwrap();
        let runs = scan(store.path()).unwrap();
        assert_eq!(runs.len(), 2);
        let x = runs.iter().find(|r| r.test == "x").unwrap();
        assert!(matches!(x.verdict, RunVerdict::Unreadable(_)));
        assert_eq!(x.workload, None);
        let y = runs.iter().find(|r| r.test == "y").unwrap();
        assert_eq!(y.verdict, RunVerdict::NoResults);
    }
}
