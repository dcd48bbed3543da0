//! A run on disk, like Jepsen's `store/`:
//!
//! ```text
//! store/<test-name>/<YYYYmmddTHHMMSS>/
//!   test.json  history.jsonl  status.jsonl  results.json  replicas.jsonl
//!   report.html  latency.png  rate.png  nodes/n1/{node.log,data/}  clients/ (exec clients' logs)
//! store/latest -> the newest run
//! store/junit.xml (a suite's)
//! ```
//!
//! Every name above is spelled once, here; the rest of the harness asks [`RunDir`] for paths.

mod options;
mod read;
mod test_json;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::results::RunResults;

pub use options::{BUNDLED_SYSTEM, SPARES, TestOptions};
pub use read::{RunFiles, RunVerdict, StoredRun, scan};
pub use test_json::{HostRecord, NodeRecord, SystemRecord, TestRecord, Versions};

/// Every option, the system under test, the seed, the binaries' versions and where each
/// node lived (see [`TestRecord`]).
pub const TEST_JSON: &str = "test.json";
/// The history, one event a line.
pub const HISTORY: &str = "history.jsonl";
/// Every node's role and term as they changed, one [`StatusSample`] a line.
pub const STATUS: &str = "status.jsonl";
/// The checker's verdict and anomalies.
pub const RESULTS: &str = "results.json";
/// Every node's copies of the lists, read for the divergence check.
pub const REPLICAS: &str = "replicas.jsonl";
/// The report's page.
pub const REPORT_PAGE: &str = "report.html";
/// The report's latency plot.
pub const LATENCY_PLOT: &str = "latency.png";
/// The report's throughput plot.
pub const RATE_PLOT: &str = "rate.png";
/// The directory of the nodes' directories, one per node, named after it.
pub const NODES: &str = "nodes";
/// A node's log (its stdout and stderr), in its directory.
pub const NODE_LOG: &str = "node.log";
/// A node's data dir, in its directory.
pub const DATA: &str = "data";
/// The directory of the exec clients' logs (`client-<task>.log`, their stderr).
pub const CLIENTS: &str = "clients";
/// The link, in the store, to the newest run.
pub const LATEST: &str = "latest";
/// A suite's JUnit XML, in the store (beside the tests' directories, not a run).
pub const JUNIT: &str = "junit.xml";

/// The directory of one run.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub path: PathBuf,
}

/// Checks that a test name can be a directory name.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name != LATEST
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
    if !ok {
        bail!("test name `{name}`: use letters, digits and - _ . + only (and not `latest`)");
    }
    Ok(())
}

/// The name of a test the user did not name: its workload and faults, like
/// `register-kill+pause`.
pub fn derived_name(workload: &str, nemesis: &str) -> String {
    format!("{workload}-{nemesis}").replace(',', "+")
}

impl RunDir {
    /// The directory of an existing run, like `store/<test>/<timestamp>` or `store/latest`.
    pub fn at(path: impl Into<PathBuf>) -> RunDir {
        RunDir { path: path.into() }
    }

    /// Creates `store/<name>/<timestamp>/` (with a `-2`, `-3`... suffix if that exists).
    pub fn create(store: &Path, name: &str, timestamp: &str) -> Result<RunDir> {
        validate_name(name)?;
        let parent = store.join(name);
        fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
        for attempt in 1.. {
            let dir = match attempt {
                1 => timestamp.to_string(),
                n => format!("{timestamp}-{n}"),
            };
            let path = parent.join(dir);
            match fs::create_dir(&path) {
                Ok(()) => return Ok(RunDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        unreachable!("the loop returns")
    }

    /// Points `store/latest` at this run (a relative symlink, replaced atomically).
    pub fn mark_latest(&self, store: &Path) -> Result<()> {
        let target = self.path.strip_prefix(store).unwrap_or(&self.path);
        let link = store.join(LATEST);
        let temporary = store.join(format!(".{LATEST}-{}", std::process::id()));
        let _ = fs::remove_file(&temporary);
        std::os::unix::fs::symlink(target, &temporary)
            .with_context(|| format!("creating a symlink in {}", store.display()))?;
        fs::rename(&temporary, &link).with_context(|| format!("updating {}", link.display()))?;
        Ok(())
    }

    /// The run a history file was stored by: the file is a run's `history.jsonl` and the
    /// run's `results.json` stands beside it. `None` for any other file.
    pub fn holding(history: &Path) -> Option<RunDir> {
        if history.file_name()? != HISTORY {
            return None;
        }
        let path = history.parent()?.to_path_buf();
        let run = RunDir { path };
        run.results().is_file().then_some(run)
    }

    /// Writes `test.json`.
    pub fn write_test(&self, test: &TestRecord) -> Result<()> {
        write_json(&self.test_json(), test)
    }

    /// Reads `test.json`; the error names the file and what writes it.
    pub fn read_test(&self) -> Result<TestRecord> {
        read::read_json(&self.test_json())
    }

    /// Writes `results.json`.
    pub fn write_results(&self, results: &RunResults) -> Result<()> {
        write_json(&self.results(), results)
    }

    /// Reads `results.json`; the error names the file and what writes it.
    pub fn read_results(&self) -> Result<RunResults> {
        read::read_json(&self.results())
    }

    pub fn test_json(&self) -> PathBuf {
        self.path.join(TEST_JSON)
    }

    pub fn history(&self) -> PathBuf {
        self.path.join(HISTORY)
    }

    pub fn status_log(&self) -> PathBuf {
        self.path.join(STATUS)
    }

    pub fn results(&self) -> PathBuf {
        self.path.join(RESULTS)
    }

    /// Every node's copies of the lists, read for the divergence check.
    pub fn replicas(&self) -> PathBuf {
        self.path.join(REPLICAS)
    }

    pub fn report_page(&self) -> PathBuf {
        self.path.join(REPORT_PAGE)
    }

    pub fn latency_plot(&self) -> PathBuf {
        self.path.join(LATENCY_PLOT)
    }

    pub fn rate_plot(&self) -> PathBuf {
        self.path.join(RATE_PLOT)
    }

    /// `nodes/<node>/`: the node's data dir and log.
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.path.join(NODES).join(node)
    }
}

/// Writes `value` to `path` as indented JSON.
fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let json = serde_json::to_vec_pretty(value)
        .with_context(|| format!("serializing {}", path.display()))?;
    fs::write(path, json).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed run of `tests/fixtures/run-invalid`: a `test.json` of the first format,
    /// before `system` was recorded.
    pub(super) fn fixture() -> RunDir {
        RunDir::at(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-invalid"))
    }

    #[test]
    fn runs_get_unique_dirs_and_latest_follows_the_newest() {
        let store = tempfile::tempdir().unwrap();
        let a = RunDir::create(store.path(), "t", "20261123T120000").unwrap();
        let b = RunDir::create(store.path(), "t", "20261123T120000").unwrap();
        assert_ne!(a.path, b.path);
        assert!(b.path.ends_with("t/20261123T120000-2"));
        a.mark_latest(store.path()).unwrap();
        b.mark_latest(store.path()).unwrap();
        let latest = fs::canonicalize(store.path().join("latest")).unwrap();
        assert_eq!(latest, fs::canonicalize(&b.path).unwrap());
    }

    #[test]
    fn names_that_are_not_plain_directory_names_are_refused() {
        for bad in ["", "..", "a/b", "latest", "x y"] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        validate_name("register-kill_3.x").unwrap();
    }
}
