//! Reading the WAL back at start-up: the segments oldest first, their records replayed into
//! the log they describe.
//!
//! A torn write at the tail of the newest segment is cut off, with a warning naming the file
//! and offset; any other damage is an error naming them (the rule is in the `storage` module
//! docs). The newest segment may end in preallocated zeros: an all-zero rest of it is the
//! end of the log. Sync marks (see `writer.rs`) are read only after damage: a mark past the
//! damage that names its own offset proves an fsync had covered the damaged bytes, which
//! therefore are not a torn write.

use std::fs::{self, OpenOptions};
use std::path::Path;

use tracing::{debug, warn};

use crate::raft::Index;
use crate::storage::StorageError;
use crate::storage::files::{io_error, sync_file};
use crate::storage::record::{self, Frame, RecordKind};
use crate::storage::replay::{LogReplay, ReplayedLog, WalRecord};

use super::{Segment, list_segments};

/// Reads every segment in `dir` oldest first and replays its records; cuts a torn tail off
/// the newest. Returns the segments, for [`super::Wal::start`], and the log they describe.
pub(crate) fn recover(
    dir: &Path,
    fsync: bool,
) -> Result<(Vec<Segment>, ReplayedLog), StorageError> {
    let mut segments = list_segments(dir)?;
    let mut replay = LogReplay::default();
    let newest = segments.len().saturating_sub(1);
    for (position, segment) in segments.iter_mut().enumerate() {
        segment.max_index = replay_segment(&segment.path, position == newest, fsync, &mut replay)?;
    }
    Ok((segments, replay.finish()?))
}

/// Replays the records of one segment; returns the highest entry index it holds.
fn replay_segment(
    path: &Path,
    is_newest: bool,
    fsync: bool,
    replay: &mut LogReplay,
) -> Result<Index, StorageError> {
    let bytes = fs::read(path).map_err(io_error("read", path))?;
    let mut offset = 0;
    let mut max_index = 0;
    while offset < bytes.len() {
        let corrupt = |reason: String| StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: offset as u64,
            reason,
        };
        let frame = match record::decode(&bytes[offset..]) {
            Ok(frame) => frame,
            Err(_) if is_newest && bytes[offset..].iter().all(|&b| b == 0) => {
                // The preallocated zeros after the last record (or a write that reached
                // none of its sectors): the end of the log. Cut them, as the segment is
                // about to be closed.
                debug!(
                    file = %path.display(),
                    offset,
                    zeros = bytes.len() - offset,
                    "the WAL's records end here; cutting the zeros after them"
                );
                cut_file(path, offset as u64, fsync)?;
                break;
            }
            Err(invalid) if is_newest && record::is_torn(&bytes, offset, &invalid) => {
                // A write that never finished can have reached later sectors and not this
                // one; but if a later record says an fsync covered this offset, it had
                // finished, and this is damage to acknowledged data.
                if let Some(through) = synced_through_after(&bytes, offset + 1) {
                    return Err(corrupt(format!(
                        "{invalid}; it looks like a torn write, but a later sync mark says an \
                         fsync had made this segment durable through offset {through}"
                    )));
                }
                warn!(
                    file = %path.display(),
                    offset,
                    discarded_bytes = bytes.len() - offset,
                    "the WAL ends in a torn write ({invalid}); cutting it off"
                );
                cut_file(path, offset as u64, fsync)?;
                break;
            }
            Err(invalid) if is_newest => {
                return Err(corrupt(format!(
                    "{invalid}, and data that is not zeros follows, so it is not a torn write"
                )));
            }
            Err(invalid) => {
                return Err(corrupt(format!(
                    "{invalid} in a segment that was complete before the next one was created"
                )));
            }
        };
        if frame.kind == RecordKind::SyncMark {
            offset += frame.len;
            continue;
        }
        let record = parse(&frame).map_err(corrupt)?;
        if let WalRecord::Entries(batch) = &record {
            max_index = max_index.max(batch.last().map_or(0, |entry| entry.index));
        }
        replay.apply(record, path, offset as u64)?;
        offset += frame.len;
    }
    Ok(max_index)
}

/// An offset that an intact sync mark found in `bytes` from `from` on says an fsync made
/// durable: any one proves that everything before `from` had been synced. Record
/// boundaries past damage are unknown, so every offset is tried (this runs only when
/// recovery meets damage). A genuine mark names its own offset, since it is written right
/// where the last fsync ended; anything else that merely looks like a mark (stale blocks,
/// or payload bytes that happen to frame one) is ignored.
fn synced_through_after(bytes: &[u8], from: usize) -> Option<u64> {
    (from..bytes.len()).find_map(|at| {
        let frame = record::decode(&bytes[at..]).ok()?;
        let through = postcard::from_bytes::<u64>(frame.payload).ok()?;
        (frame.kind == RecordKind::SyncMark && through == at as u64).then_some(through)
    })
}

fn parse(frame: &Frame<'_>) -> Result<WalRecord, String> {
    let decoded = match frame.kind {
        RecordKind::HardState => postcard::from_bytes(frame.payload).map(WalRecord::HardState),
        RecordKind::Entries => postcard::from_bytes(frame.payload).map(WalRecord::Entries),
        RecordKind::CompactedTo => postcard::from_bytes(frame.payload).map(WalRecord::CompactedTo),
        RecordKind::ReplacedBy => postcard::from_bytes(frame.payload).map(WalRecord::ReplacedBy),
        RecordKind::SnapshotFile => return Err("a snapshot file record inside the WAL".to_string()),
        RecordKind::SyncMark => return Err("a sync mark where a log record belongs".to_string()),
    };
    decoded.map_err(|error| format!("cannot decode {}: {error}", frame.kind.describe()))
}

/// Truncates `path` to `len` bytes.
fn cut_file(path: &Path, len: u64, fsync: bool) -> Result<(), StorageError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error("open", path))?;
    file.set_len(len).map_err(io_error("truncate", path))?;
    if fsync {
        sync_file(&file, path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::SEGMENT_SUFFIX;
    use super::super::test_support::{batch, options, preallocating, record_bounds, write_batches};
    use super::*;
    use crate::raft::Entry;
    use crate::storage::test_support::{entries, files_ending_with};
    use crate::storage::{Storage, StorageOptions};

    /// A fresh data dir holding only `segment_name`, with `contents`.
    fn dir_with_segment(
        segment_name: &std::ffi::OsStr,
        contents: &[u8],
    ) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let segment = dir.path().join(segment_name);
        fs::write(&segment, contents).expect("write segment");
        (dir, segment)
    }

    #[test]
    fn a_write_torn_at_any_byte_of_the_last_record_is_cut_off() {
        let original = tempfile::tempdir().expect("temp dir");
        let starts = write_batches(original.path(), 4, 1 << 20);
        let (segment, last_start) = starts[3].clone();
        let bytes = fs::read(&segment).expect("read segment");
        let name = segment.file_name().expect("segment name");

        for cut in last_start..bytes.len() {
            let (dir, copy) = dir_with_segment(name, &bytes[..cut]);
            let (_, recovered) =
                Storage::open(dir.path(), options(1 << 20)).expect("a torn tail is not an error");
            assert_eq!(recovered.entries, entries(1..=9, 1), "cut at byte {cut}");
            let len = fs::metadata(&copy).expect("metadata").len();
            assert_eq!(
                len, last_start as u64,
                "cut at byte {cut}: the torn record is removed"
            );
        }
    }

    #[test]
    fn a_zero_filled_tail_from_any_byte_of_the_last_record_is_cut_off() {
        let original = tempfile::tempdir().expect("temp dir");
        let starts = write_batches(original.path(), 4, 1 << 20);
        let (segment, last_start) = starts[3].clone();
        let bytes = fs::read(&segment).expect("read segment");
        let name = segment.file_name().expect("segment name");

        for zeros_from in last_start..bytes.len() {
            let mut contents = bytes[..zeros_from].to_vec();
            contents.resize(bytes.len() + 4096, 0);
            let (dir, copy) = dir_with_segment(name, &contents);
            let (_, recovered) =
                Storage::open(dir.path(), options(1 << 20)).expect("a zeroed tail is not an error");

            // Zeroing bytes that already were zeros leaves the record intact.
            let record_intact = bytes[zeros_from..].iter().all(|&b| b == 0);
            let (expected_entries, expected_len) = if record_intact {
                (entries(1..=12, 1), bytes.len())
            } else {
                (entries(1..=9, 1), last_start)
            };
            assert_eq!(
                recovered.entries, expected_entries,
                "zeros from byte {zeros_from}"
            );
            let len = fs::metadata(&copy).expect("metadata").len();
            assert_eq!(len, expected_len as u64, "zeros from byte {zeros_from}");
        }
    }

    #[test]
    fn a_flipped_byte_followed_by_more_records_is_an_error_naming_file_and_offset() {
        let original = tempfile::tempdir().expect("temp dir");
        let starts = write_batches(original.path(), 4, 1 << 20);
        let (segment, damaged_start) = starts[1].clone();
        let damaged_end = starts[2].1;
        let bytes = fs::read(&segment).expect("read segment");

        for flipped in damaged_start..damaged_end {
            let mut contents = bytes.clone();
            contents[flipped] ^= 0x20;
            let (dir, copy) = dir_with_segment(segment.file_name().expect("name"), &contents);

            let error = Storage::open(dir.path(), options(1 << 20)).unwrap_err();
            assert!(
                matches!(&error, StorageError::Corrupt { path, offset, .. }
                    if *path == copy && *offset == damaged_start as u64),
                "flipped byte {flipped}: {error}"
            );
            let message = error.to_string();
            assert!(message.contains(&copy.display().to_string()), "{message}");
            assert!(
                message.contains(&format!("byte {damaged_start}")),
                "{message}"
            );
        }
    }

    #[test]
    fn damage_in_a_segment_that_is_not_the_newest_is_an_error() {
        let original = tempfile::tempdir().expect("temp dir");
        // Tiny segments: each batch gets a segment of its own.
        let starts = write_batches(original.path(), 3, 1);
        let (first_segment, first_start) = starts[0].clone();
        let bytes = fs::read(&first_segment).expect("read segment");

        let mut truncated = bytes.clone();
        truncated.pop();
        let mut flipped = bytes.clone();
        flipped[bytes.len() - 1] ^= 0x01;
        for damaged in [truncated, flipped] {
            let dir = tempfile::tempdir().expect("temp dir");
            for path in files_ending_with(original.path(), SEGMENT_SUFFIX) {
                let name = path.file_name().expect("name");
                let contents = if path == first_segment {
                    damaged.clone()
                } else {
                    fs::read(&path).expect("read")
                };
                fs::write(dir.path().join(name), contents).expect("copy segment");
            }

            let error = Storage::open(dir.path(), options(1)).unwrap_err();
            let expected_path = dir.path().join(first_segment.file_name().expect("name"));
            assert!(
                matches!(&error, StorageError::Corrupt { path, offset, .. }
                    if *path == expected_path && *offset == first_start as u64),
                "{error}"
            );
        }
    }

    #[test]
    fn a_record_torn_inside_the_zeros_is_cut_off_but_data_after_them_is_corruption() {
        let original = tempfile::tempdir().expect("temp dir");
        let (mut storage, _) =
            Storage::open(original.path(), preallocating(1 << 20)).expect("open");
        for number in 0..4 {
            storage.append(&batch(number)).expect("append");
            storage.sync().expect("sync");
        }
        drop(storage);
        let segment = files_ending_with(original.path(), SEGMENT_SUFFIX)
            .pop()
            .expect("a segment");
        let name = segment.file_name().expect("segment name");
        let bytes = fs::read(&segment).expect("read segment");
        let (starts, records_end) = record_bounds(&bytes);
        let last_start = *starts.last().expect("records");

        for zeros_from in last_start..records_end {
            let mut contents = bytes.clone();
            contents[zeros_from..records_end].fill(0);
            if contents[last_start..records_end] == bytes[last_start..records_end] {
                continue; // those bytes were zeros already
            }
            let (dir, copy) = dir_with_segment(name, &contents);
            let (_, recovered) = Storage::open(dir.path(), preallocating(1 << 20))
                .expect("a torn record is not an error");
            assert_eq!(
                recovered.entries,
                entries(1..=9, 1),
                "zeros from {zeros_from}"
            );
            let len = fs::metadata(&copy).expect("metadata").len();
            assert_eq!(len, last_start as u64, "zeros from {zeros_from}");
        }

        let mut stray = bytes.clone();
        stray[records_end + 100] = 0x01;
        let (dir, copy) = dir_with_segment(name, &stray);
        let error = Storage::open(dir.path(), preallocating(1 << 20)).unwrap_err();
        assert!(
            matches!(&error, StorageError::Corrupt { path, offset, .. }
                if *path == copy && *offset == records_end as u64),
            "{error}"
        );
    }

    /// Batch `number` of two entries with payloads long enough to cover whole sectors.
    fn long_batch(number: u64) -> Vec<Entry> {
        entries(number * 2 + 1..=number * 2 + 2, 1)
            .into_iter()
            .map(|entry| Entry {
                payload: crate::raft::Payload::Command(vec![b'x'; 1500].into()),
                ..entry
            })
            .collect()
    }

    /// With fsync on, so that the WAL writes its sync marks.
    fn syncing() -> StorageOptions {
        StorageOptions {
            fsync: true,
            ..preallocating(1 << 20)
        }
    }

    /// Where each entries record of `bytes` starts and ends.
    fn entries_records(bytes: &[u8]) -> Vec<(usize, usize)> {
        let (starts, _) = record_bounds(bytes);
        starts
            .into_iter()
            .filter_map(|start| {
                let frame = record::decode(&bytes[start..]).expect("intact");
                (frame.kind == RecordKind::Entries).then_some((start, start + frame.len))
            })
            .collect()
    }

    /// `bytes` with the first whole 512-byte sector inside `start..end` zeroed.
    fn zero_a_sector(bytes: &[u8], (start, end): (usize, usize)) -> Vec<u8> {
        let sector = start.div_ceil(512) * 512;
        assert!(sector + 512 <= end, "the record covers a whole sector");
        let mut damaged = bytes.to_vec();
        damaged[sector..sector + 512].fill(0);
        damaged
    }

    /// Writes with fsync on through `write`, then returns the newest segment's name, its
    /// bytes and where its entries records lie.
    fn written_segment(
        write: impl FnOnce(&mut Storage),
    ) -> (std::ffi::OsString, Vec<u8>, Vec<(usize, usize)>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut storage, _) = Storage::open(dir.path(), syncing()).expect("open");
        write(&mut storage);
        drop(storage);
        let segment = files_ending_with(dir.path(), SEGMENT_SUFFIX)
            .pop()
            .expect("a segment");
        let bytes = fs::read(&segment).expect("read segment");
        let records = entries_records(&bytes);
        (segment.file_name().unwrap().to_owned(), bytes, records)
    }

    #[test]
    fn a_zeroed_sector_in_records_an_fsync_covered_is_corruption_not_a_torn_write() {
        let (name, bytes, records) = written_segment(|storage| {
            for number in 0..4 {
                storage.append(&long_batch(number)).expect("append");
                storage.sync().expect("sync");
            }
        });
        assert_eq!(records.len(), 4);

        // Batch 1 was fsynced before batch 2 was written: losing it is not a torn write.
        let damaged = zero_a_sector(&bytes, records[1]);
        let (dir, copy) = dir_with_segment(&name, &damaged);
        let error = Storage::open(dir.path(), syncing()).unwrap_err();
        assert!(
            matches!(&error, StorageError::Corrupt { path, offset, reason }
                if *path == copy && *offset == records[1].0 as u64 && reason.contains("sync mark")),
            "{error}"
        );
    }

    #[test]
    fn a_zeroed_sector_in_the_last_write_is_torn_though_later_records_of_it_landed() {
        let (name, bytes, records) = written_segment(|storage| {
            for number in 0..2 {
                storage.append(&long_batch(number)).expect("append");
                storage.sync().expect("sync");
            }
            // One write of two records, never finished: the second landed, the first not.
            storage.append(&long_batch(2)).expect("append");
            storage.append(&long_batch(3)).expect("append");
            storage.sync().expect("sync");
        });
        assert_eq!(records.len(), 4);

        let damaged = zero_a_sector(&bytes, records[2]);
        let (dir, copy) = dir_with_segment(&name, &damaged);
        let (_, recovered) =
            Storage::open(dir.path(), syncing()).expect("a torn write is not an error");
        let expected: Vec<Entry> = (0..2).flat_map(long_batch).collect();
        assert_eq!(recovered.entries, expected);
        let len = fs::metadata(&copy).expect("metadata").len();
        assert_eq!(len, records[2].0 as u64, "cut at the damaged record");
    }

    #[test]
    fn only_a_mark_that_names_its_own_offset_vouches_for_synced_data() {
        let (name, bytes, records) = written_segment(|storage| {
            storage.append(&long_batch(0)).expect("append");
            storage.sync().expect("sync");
            storage.append(&long_batch(1)).expect("append");
            storage.sync().expect("sync");
        });
        let (_, records_end) = record_bounds(&bytes);
        let damaged = zero_a_sector(&bytes, records[1]);
        let with_mark_at_end = |through: u64| {
            let mut contents = damaged[..records_end].to_vec();
            record::encode(&mut contents, RecordKind::SyncMark, &through).expect("encode");
            contents
        };

        // Something that frames a mark but names another offset proves nothing: still torn.
        let stray = with_mark_at_end(records_end as u64 + 1);
        let (dir, _) = dir_with_segment(&name, &stray);
        let (_, recovered) = Storage::open(dir.path(), syncing()).expect("still a torn write");
        assert_eq!(recovered.entries, long_batch(0));

        // A mark written where an fsync ended vouches for everything before it.
        let genuine = with_mark_at_end(records_end as u64);
        let (dir, _) = dir_with_segment(&name, &genuine);
        let error = Storage::open(dir.path(), syncing()).unwrap_err();
        assert!(
            matches!(&error, StorageError::Corrupt { offset, .. } if *offset == records[1].0 as u64),
            "{error}"
        );
    }
}
