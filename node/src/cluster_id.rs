//! The cluster id: which cluster a node belongs to, fixed when its data dir is first used.
//!
//! Every peer message carries it ([`crate::transport`]), and a node refuses messages that carry
//! another one, so that a node of some other cluster (an earlier test's, still running on a
//! reused port) cannot step this cluster's Raft state, as etcd's cluster id does. The node
//! writes the id into its data dir at its first start and refuses to start later with a
//! different one: a data dir never changes clusters.
//!
//! Without `--cluster-id`, the id is derived from the sorted member names. That is weaker:
//! two clusters with the same member names (every test cluster `n1,n2,n3`) get the same id, so
//! a fresh random id per cluster (as the harness passes) is what really tells clusters apart.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The name of the file in the data dir that holds the id.
pub const FILE_NAME: &str = "cluster-id";
/// Ids are short, so that they fit in a header and a log line.
const MAX_LEN: usize = 64;

/// A cluster id: 1 to 64 characters of `A-Z a-z 0-9 . _ : -`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClusterId(String);

/// Why a cluster id was refused, or could not be bound to the data dir.
#[derive(Debug, thiserror::Error)]
pub enum ClusterIdError {
    #[error("`{0}` is not a cluster id: use 1 to {MAX_LEN} characters of A-Z a-z 0-9 . _ : -")]
    Invalid(String),
    #[error(
        "the data dir {dir} belongs to cluster `{stored}`, not to `{given}`: refusing to start; \
         give --cluster-id {stored}, or start this node on a fresh --data-dir"
    )]
    Mismatch {
        dir: PathBuf,
        stored: String,
        given: String,
    },
    #[error(
        "{path} does not hold a cluster id (it holds {content:?}); remove it only if this data dir is to join the cluster given now"
    )]
    Corrupt { path: PathBuf, content: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl ClusterId {
    /// Checks `text` is a well-formed id.
    pub fn new(text: &str) -> Result<ClusterId, ClusterIdError> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
        if text.is_empty() || text.len() > MAX_LEN || !text.chars().all(allowed) {
            return Err(ClusterIdError::Invalid(text.to_string()));
        }
        Ok(ClusterId(text.to_string()))
    }

    /// The default id: a 64-bit FNV-1a hash of the sorted member names. Every node given the
    /// same members derives the same id, but so does every other cluster with those names.
    pub fn derived<'a>(names: impl IntoIterator<Item = &'a str>) -> ClusterId {
        let mut names: Vec<&str> = names.into_iter().collect();
        names.sort_unstable();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for name in names {
            // A separator that no name holds, so that `a,bc` and `ab,c` differ.
            for byte in name.bytes().chain([0]) {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        ClusterId(format!("members-{hash:016x}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ClusterId {
    type Err = ClusterIdError;

    fn from_str(text: &str) -> Result<ClusterId, ClusterIdError> {
        ClusterId::new(text)
    }
}

/// Ties `data_dir` to cluster `id`: at its first use, writes the id into it (durably, before
/// anything else is written there); afterwards, checks that it is the same id.
pub fn bind(data_dir: &Path, id: &ClusterId) -> Result<(), ClusterIdError> {
    let io_error = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| ClusterIdError::Io { what, path, source }
    };
    fs::create_dir_all(data_dir).map_err(io_error("creating", data_dir))?;
    let path = data_dir.join(FILE_NAME);
    match fs::read_to_string(&path) {
        Ok(content) => {
            let stored = content.strip_suffix('\n').unwrap_or(&content);
            let stored = ClusterId::new(stored).map_err(|_| ClusterIdError::Corrupt {
                path: path.clone(),
                content: content.chars().take(80).collect(),
            })?;
            if &stored != id {
                return Err(ClusterIdError::Mismatch {
                    dir: data_dir.to_path_buf(),
                    stored: stored.0,
                    given: id.0.clone(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Written whole or not at all: a crash leaves at most the temp file, which the
            // next start overwrites.
            let temp = data_dir.join(format!("{FILE_NAME}.tmp"));
            let mut file = File::create(&temp).map_err(io_error("creating", &temp))?;
            file.write_all(format!("{id}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(io_error("writing", &temp))?;
            fs::rename(&temp, &path).map_err(io_error("renaming into place", &path))?;
            File::open(data_dir)
                .and_then(|dir| dir.sync_all())
                .map_err(io_error("syncing", data_dir))
        }
        Err(e) => Err(io_error("reading", &path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_and_plain() {
        for good in ["a", "faultline-0123abcd", "run:1.2_3", &"x".repeat(64)] {
            assert!(ClusterId::new(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a/b", "é", &"x".repeat(65), "a\n"] {
            assert!(ClusterId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_derived_id_depends_on_the_member_set_only() {
        let a = ClusterId::derived(["n2", "n1", "n3"]);
        assert_eq!(a, ClusterId::derived(["n1", "n2", "n3"]));
        assert_ne!(a, ClusterId::derived(["n1", "n2"]));
        assert_ne!(
            ClusterId::derived(["a", "bc"]),
            ClusterId::derived(["ab", "c"])
        );
        assert!(ClusterId::new(a.as_str()).is_ok());
    }

    #[test]
    fn a_data_dir_keeps_the_first_id_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = ClusterId::new("first").unwrap();
        bind(&data, &first).unwrap();
        bind(&data, &first).unwrap();
        let err = bind(&data, &ClusterId::new("second").unwrap()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`first`") && text.contains("`second`"),
            "{text}"
        );
        fs::write(data.join(FILE_NAME), "not an id!\n").unwrap();
        assert!(matches!(
            bind(&data, &first),
            Err(ClusterIdError::Corrupt { .. })
        ));
    }
}
