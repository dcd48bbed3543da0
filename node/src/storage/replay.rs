//! Rebuilding the Raft log from WAL records, and the rule every batch of entries follows,
//! whether it is being appended now or replayed at start-up.
//!
//! Replay starts at the oldest segment still on disk. Older segments may have been deleted
//! after a snapshot covered them, so until the first batch of entries is seen, where the log
//! ends is unknown and that batch may start anywhere; every later batch must continue or
//! overwrite the log without a gap. At the end, the log must start right after the snapshot.

use std::path::{Path, PathBuf};

use crate::raft::{Entry, HardState, Index, SnapshotMeta};

use super::StorageError;

/// A decoded WAL record.
#[derive(Debug)]
pub(crate) enum WalRecord {
    HardState(HardState),
    /// Consecutive entries; they replace the log from their first index on.
    Entries(Vec<Entry>),
    /// The snapshot `meta` covers the log up to its index: those entries are dropped, later
    /// ones stay. Written on compaction and at the start of every segment.
    CompactedTo(SnapshotMeta),
    /// A snapshot received from the leader replaced the whole log.
    ReplacedBy(SnapshotMeta),
}

/// The state that WAL records describe.
#[derive(Debug, Default)]
pub(crate) struct ReplayedLog {
    pub(crate) hard_state: HardState,
    pub(crate) snapshot: Option<SnapshotMeta>,
    /// The entries after the snapshot, consecutive.
    pub(crate) entries: Vec<Entry>,
    /// The commit index an fsync had made durable (see `wal/recovery.rs`); set once the
    /// whole WAL is read.
    pub(crate) durable_commit: Index,
}

/// Applies WAL records in order, checking that they describe a log without holes.
#[derive(Debug, Default)]
pub(crate) struct LogReplay {
    log: ReplayedLog,
    /// Index of the last entry, or of the snapshot when no entry follows it; `None` until
    /// replay has seen where the log ends.
    last_index: Option<Index>,
    /// Where the batch that supplied the log's first entry was read, for error messages.
    first_entry_at: Option<(PathBuf, u64)>,
}

impl LogReplay {
    /// Applies `record`, read at byte `offset` of `path`.
    pub(crate) fn apply(
        &mut self,
        record: WalRecord,
        path: &Path,
        offset: u64,
    ) -> Result<(), StorageError> {
        let log = &mut self.log;
        match record {
            WalRecord::HardState(hard_state) => log.hard_state = hard_state,
            WalRecord::Entries(batch) => {
                let snapshot_index = log.snapshot.map_or(0, |meta| meta.index);
                let kept =
                    entries_to_keep(&batch, self.last_index, snapshot_index).map_err(|reason| {
                        StorageError::Corrupt {
                            path: path.to_path_buf(),
                            offset,
                            reason,
                        }
                    })?;
                let (Some(first), Some(last)) = (kept.first(), kept.last()) else {
                    return Ok(());
                };
                let overwritten_from = log.entries.first().map_or(0, |existing| {
                    first.index.saturating_sub(existing.index) as usize
                });
                log.entries.truncate(overwritten_from);
                if log.entries.is_empty() {
                    self.first_entry_at = Some((path.to_path_buf(), offset));
                }
                log.entries.extend_from_slice(kept);
                self.last_index = Some(last.index);
            }
            WalRecord::CompactedTo(meta) => {
                let covered = log
                    .entries
                    .partition_point(|entry| entry.index <= meta.index);
                log.entries.drain(..covered);
                log.snapshot = Some(meta);
                self.last_index = self.last_index.map(|last| last.max(meta.index));
            }
            WalRecord::ReplacedBy(meta) => {
                log.entries.clear();
                log.snapshot = Some(meta);
                self.last_index = Some(meta.index);
            }
        }
        Ok(())
    }

    /// The log the records describe, once it is checked to start right after the snapshot.
    pub(crate) fn finish(self) -> Result<ReplayedLog, StorageError> {
        let log = self.log;
        let snapshot_index = log.snapshot.map_or(0, |meta| meta.index);
        match (log.entries.first(), self.first_entry_at) {
            (Some(first), Some((path, offset))) if first.index > snapshot_index + 1 => {
                Err(StorageError::Corrupt {
                    path,
                    offset,
                    reason: format!(
                        "the log resumes at index {} but the snapshot ends at index {snapshot_index}: the \
                     entries in between are missing (was a segment file deleted?)",
                        first.index
                    ),
                })
            }
            _ => Ok(log),
        }
    }
}

/// Checks that `batch` can be written to a log that ends at `last_index` (`None`: unknown)
/// and is compacted up to `snapshot_index`, and returns the part of it the snapshot does not
/// already cover. The error says what is wrong with the batch.
pub(crate) fn entries_to_keep(
    batch: &[Entry],
    last_index: Option<Index>,
    snapshot_index: Index,
) -> Result<&[Entry], String> {
    if let Some(pair) = batch
        .windows(2)
        .find(|pair| pair[1].index != pair[0].index + 1)
    {
        return Err(format!(
            "entry indexes in one batch must be consecutive, but {} is followed by {}",
            pair[0].index, pair[1].index
        ));
    }
    let kept = &batch[batch.partition_point(|entry| entry.index <= snapshot_index)..];
    match (kept.first(), last_index) {
        (Some(first), Some(last)) if first.index > last + 1 => Err(format!(
            "entries start at index {} but the log ends at index {last}: that would leave a gap",
            first.index
        )),
        _ => Ok(kept),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_support::entries;

    fn replay(records: Vec<WalRecord>) -> Result<ReplayedLog, StorageError> {
        let mut replay = LogReplay::default();
        for (offset, record) in (0..).zip(records) {
            replay.apply(record, Path::new("segment"), offset)?;
        }
        replay.finish()
    }

    fn meta(index: Index, term: u64) -> SnapshotMeta {
        SnapshotMeta { index, term }
    }

    #[test]
    fn a_batch_replaces_the_log_from_its_first_index() {
        let log = replay(vec![
            WalRecord::Entries(entries(1..=5, 1)),
            WalRecord::Entries(entries(3..=4, 2)),
        ])
        .expect("valid records");

        let mut expected = entries(1..=2, 1);
        expected.extend(entries(3..=4, 2));
        assert_eq!(log.entries, expected);
    }

    #[test]
    fn compaction_keeps_later_entries_and_installation_drops_them() {
        let compacted = replay(vec![
            WalRecord::Entries(entries(1..=5, 1)),
            WalRecord::CompactedTo(meta(3, 1)),
        ])
        .expect("valid records");
        assert_eq!(compacted.entries, entries(4..=5, 1));
        assert_eq!(compacted.snapshot, Some(meta(3, 1)));

        let replaced = replay(vec![
            WalRecord::Entries(entries(1..=5, 1)),
            WalRecord::ReplacedBy(meta(3, 2)),
            WalRecord::Entries(entries(4..=4, 2)),
        ])
        .expect("valid records");
        assert_eq!(replaced.entries, entries(4..=4, 2));
        assert_eq!(replaced.snapshot, Some(meta(3, 2)));
    }

    #[test]
    fn entries_a_snapshot_covers_are_skipped() {
        let log = replay(vec![
            WalRecord::ReplacedBy(meta(10, 2)),
            WalRecord::Entries(entries(8..=12, 2)),
        ])
        .expect("valid records");
        assert_eq!(log.entries, entries(11..=12, 2));
    }

    #[test]
    fn a_gap_between_batches_is_corruption_at_the_later_batch() {
        let error = replay(vec![
            WalRecord::Entries(entries(1..=5, 1)),
            WalRecord::Entries(entries(7..=8, 1)),
        ])
        .unwrap_err();
        assert!(
            matches!(&error, StorageError::Corrupt { offset: 1, reason, .. } if reason.contains("gap")),
            "{error}"
        );
    }

    #[test]
    fn a_log_that_does_not_reach_back_to_the_snapshot_is_corruption() {
        // As if the segment holding entries 4..=9 had been deleted by hand.
        let error = replay(vec![
            WalRecord::CompactedTo(meta(3, 1)),
            WalRecord::Entries(entries(10..=12, 1)),
        ])
        .unwrap_err();
        assert!(
            matches!(&error, StorageError::Corrupt { offset: 1, reason, .. } if reason.contains("missing")),
            "{error}"
        );
    }

    #[test]
    fn the_first_batch_after_deleted_segments_may_start_past_the_old_snapshot() {
        // Segments holding entries 4..=9 were deleted once a later snapshot covered them.
        let log = replay(vec![
            WalRecord::CompactedTo(meta(3, 1)),
            WalRecord::Entries(entries(10..=12, 1)),
            WalRecord::CompactedTo(meta(11, 1)),
        ])
        .expect("valid records");
        assert_eq!(log.entries, entries(12..=12, 1));
    }

    #[test]
    fn a_batch_with_a_hole_inside_is_refused() {
        let mut batch = entries(1..=2, 1);
        batch.extend(entries(4..=4, 1));
        let reason = entries_to_keep(&batch, Some(0), 0).unwrap_err();
        assert!(reason.contains("consecutive"), "{reason}");
    }
}
