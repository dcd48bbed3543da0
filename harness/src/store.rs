//! A run on disk, like Jepsen's `store/`:
//!
//! ```text
//! store/<test-name>/<YYYYmmddTHHMMSS>/
//!   test.json  history.jsonl  status.jsonl  results.json  report.html  nodes/n1/{node.log,data/}
//! store/latest -> the newest run
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

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
        && name != "latest"
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
    if !ok {
        bail!("test name `{name}`: use letters, digits and - _ . + only (and not `latest`)");
    }
    Ok(())
}

impl RunDir {
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
        let link = store.join("latest");
        let temporary = store.join(format!(".latest-{}", std::process::id()));
        let _ = fs::remove_file(&temporary);
        std::os::unix::fs::symlink(target, &temporary)
            .with_context(|| format!("creating a symlink in {}", store.display()))?;
        fs::rename(&temporary, &link).with_context(|| format!("updating {}", link.display()))?;
        Ok(())
    }

    pub fn test_json(&self) -> PathBuf {
        self.path.join("test.json")
    }

    pub fn history(&self) -> PathBuf {
        self.path.join("history.jsonl")
    }

    pub fn status_log(&self) -> PathBuf {
        self.path.join("status.jsonl")
    }

    pub fn results(&self) -> PathBuf {
        self.path.join("results.json")
    }

    /// Every node's copies of the lists, read for the divergence check.
    pub fn replicas(&self) -> PathBuf {
        self.path.join("replicas.jsonl")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
