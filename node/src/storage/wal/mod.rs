//! The write-ahead log: numbered segment files of records (framed as in [`super::record`]).
//!
//! Segments are named `segment-<20-digit sequence>.wal`. Every segment starts with a header:
//! the commit slot (the durable commit index, rewritten in place: see `writer.rs`), the
//! current hard state and, if there is one, the current snapshot's `CompactedTo` marker, so
//! deleting older segments never loses any of them. A segment is written as a `.tmp` file,
//! given its header, fsynced, renamed into place and the directory fsynced, so a segment
//! never exists without its header (a `.tmp` file left by a crash is deleted at start-up).
//! Segments are deleted oldest first, so an interrupted deletion still leaves a contiguous
//! run of segments.
//!
//! - `writer.rs`: the open log, [`Wal`]: appending through a buffer, sync marks, the fsync
//!   ([`Wal::sync`], one per batch: group commit), roll-over to a new segment,
//!   preallocation.
//! - `recovery.rs`: reading the segments back at start-up, [`recover`]: replay, the
//!   decision between a torn write (cut off) and damage (an error), and the check that the
//!   log reaches the durable commit index.

use std::fs;
use std::path::{Path, PathBuf};

use tracing::debug;

use crate::raft::Index;

use super::StorageError;
use super::files::{io_error, remove_file};

mod recovery;
#[cfg(test)]
mod test_support;
mod writer;

pub(crate) use recovery::recover;
pub(crate) use writer::Wal;

const SEGMENT_PREFIX: &str = "segment-";
const SEGMENT_SUFFIX: &str = ".wal";
const TEMP_SUFFIX: &str = ".tmp";

/// A segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    sequence: u64,
    path: PathBuf,
    /// The highest entry index written to it (0: none). Once a snapshot covers that index,
    /// nothing in the segment is needed any more.
    max_index: Index,
}

/// Where segment `sequence` of `dir` lives.
fn segment_path(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{sequence:020}{SEGMENT_SUFFIX}"))
}

/// The segments in `dir`, oldest first. Deletes segment files left unfinished by a crash.
fn list_segments(dir: &Path) -> Result<Vec<Segment>, StorageError> {
    let mut segments = Vec::new();
    for dir_entry in fs::read_dir(dir).map_err(io_error("list", dir))? {
        let path = dir_entry.map_err(io_error("list", dir))?.path();
        let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_prefix(SEGMENT_PREFIX) else {
            continue;
        };
        if stem.ends_with(TEMP_SUFFIX) {
            debug!(file = %path.display(), "deleting a segment file whose creation did not finish");
            remove_file(&path)?;
        } else if let Some(sequence) = stem
            .strip_suffix(SEGMENT_SUFFIX)
            .and_then(|digits| digits.parse().ok())
        {
            segments.push(Segment {
                sequence,
                path,
                max_index: 0,
            });
        }
    }
    segments.sort_by_key(|segment| segment.sequence);
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::test_support::{options, write_batches};
    use super::*;
    use crate::storage::Storage;
    use crate::storage::test_support::entries;

    #[test]
    fn a_segment_whose_creation_did_not_finish_is_ignored_and_deleted() {
        let dir = tempfile::tempdir().expect("temp dir");
        write_batches(dir.path(), 2, 1 << 20);
        let leftover = segment_path(dir.path(), 99).with_extension("wal.tmp");
        fs::write(&leftover, b"half a header").expect("write leftover");

        let (_, recovered) = Storage::open(dir.path(), options(1 << 20)).expect("open");
        assert_eq!(recovered.entries, entries(1..=6, 1));
        assert!(!leftover.exists());
    }
}
