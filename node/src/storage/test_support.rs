//! Builders and file helpers shared by the storage unit tests.

use std::fs;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::raft::{Entry, Index, Payload, Snapshot, SnapshotMeta, Term};

/// Entries at `indexes`, all of `term`, each carrying a command that names its index.
pub(crate) fn entries(indexes: RangeInclusive<Index>, term: Term) -> Vec<Entry> {
    indexes
        .map(|index| Entry {
            term,
            index,
            payload: Payload::Command(Bytes::from(format!("set k{index} term {term}"))),
        })
        .collect()
}

/// A snapshot at `index` whose data names it.
pub(crate) fn snapshot(index: Index, term: Term) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta { index, term },
        membership: None,
        data: Bytes::from(format!("state machine at {index}")),
    }
}

/// The files in `dir` whose names end with `suffix`, sorted by name.
pub(crate) fn files_ending_with(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("test dir is readable")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}
