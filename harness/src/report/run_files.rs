//! The files of a run directory that the report is built from, each read and parsed with
//! an error that names the file and says what to do.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use faultline_checker::History;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::results::RunResults;
use crate::store::{HISTORY, RESULTS, RunDir, STATUS, StatusSample, TEST_JSON};

/// What `test.json` says that the report shows. Only the fields read here are declared, so
/// `test.json` can grow without breaking older reports.
#[derive(Clone, Debug, Deserialize)]
pub struct TestRecord {
    pub options: RecordedOptions,
    /// The partition backend actually used (`auto` resolved).
    pub partition_backend_used: String,
    /// The command that replays the run.
    pub replay: String,
    /// When the run started (RFC 3339).
    pub started: String,
    /// Where each node lived.
    pub nodes: Vec<RecordedNode>,
}

/// The options of a run, as `test.json` records them.
#[derive(Clone, Debug, Deserialize)]
pub struct RecordedOptions {
    pub name: String,
    pub workload: String,
    pub nemesis: String,
    pub concurrency: usize,
    #[serde(with = "humantime_serde")]
    pub time_limit: Duration,
    pub seed: u64,
    #[serde(default)]
    pub bugs: Vec<String>,
}

/// One node of the run.
#[derive(Clone, Debug, Deserialize)]
pub struct RecordedNode {
    pub name: String,
}

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
        let test = read_json(&run.test_json())?;
        let history_path = run.history();
        let history = History::from_jsonl(&read_text(&history_path)?)
            .with_context(|| format!("{} is not a valid history", history_path.display()))?;
        let status = read_status(&run.status_log())?;
        let results = read_json(&run.results())?;
        Ok(RunFiles {
            test,
            history,
            status,
            results,
        })
    }
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| {
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

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
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
