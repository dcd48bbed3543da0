//! Reading the WAL back at start-up: the segments oldest first, their records replayed into
//! the log they describe.
//!
//! A torn write at the tail of the newest segment is cut off, with a warning naming the file
//! and offset; any other damage is an error naming them (the rule is in the `storage` module
//! docs). The newest segment may end in preallocated zeros: an all-zero rest of it is the
//! end of the log. Sync marks (see `writer.rs`) are read only after damage: a mark past the
//! damage that names its own offset proves an fsync had covered the damaged bytes, which
//! therefore are not a torn write.
//!
//! Nothing is cut before the whole log is read and checked against the durable commit index
//! (the highest of every segment's `DurableCommit` record and of the hard state): a log that
//! ends before it lost entries an fsync had covered and this node knew to be committed, and
//! start-up stops with [`StorageError::CommittedEntriesLost`], leaving every file as it was.
//! A torn tail beyond it held nothing acknowledged and is cut as before.

use std::fs::{self, OpenOptions};
use std::path::Path;

use tracing::{debug, warn};

use crate::raft::Index;
use crate::storage::StorageError;
use crate::storage::files::{io_error, sync_file};
use crate::storage::record::{self, Frame, RecordKind};
use crate::storage::replay::{LogReplay, ReplayedLog, WalRecord};

use super::{Segment, list_segments};

/// Reads every segment in `dir` oldest first and replays its records; checks that the log
/// reaches the durable commit index, then cuts a torn tail off the newest segment. Returns
/// the segments, for [`super::Wal::start`], and the log they describe.
pub(crate) fn recover(
    dir: &Path,
    fsync: bool,
) -> Result<(Vec<Segment>, ReplayedLog), StorageError> {
    let mut segments = list_segments(dir)?;
    let mut replay = LogReplay::default();
    let mut durable_commit = 0;
    let mut tail = None;
    let newest = segments.len().saturating_sub(1);
    for (position, segment) in segments.iter_mut().enumerate() {
        let read = replay_segment(&segment.path, position == newest, &mut replay)?;
        segment.max_index = read.max_index;
        durable_commit = durable_commit.max(read.durable_commit);
        tail = read.tail.map(|end| (segment.path.clone(), end)).or(tail);
    }
    let mut log = replay.finish()?;
    let durable_commit = durable_commit.max(log.hard_state.commit);
    let last_index = log
        .entries
        .last()
        .map(|entry| entry.index)
        .or(log.snapshot.map(|meta| meta.index))
        .unwrap_or(0);
    if durable_commit > last_index {
        let ends_in = match &tail {
            Some((path, end)) => format!(
                "{} bytes of {} at byte {} of {}",
                end.discarded,
                end.describe(),
                end.offset,
                path.display()
            ),
            None => "its last record".to_string(),
        };
        return Err(StorageError::CommittedEntriesLost {
            dir: dir.to_path_buf(),
            last_index,
            durable_commit,
            ends_in,
        });
    }
    if let Some((path, end)) = tail {
        end.cut(&path, fsync)?;
    }
    log.durable_commit = durable_commit;
    Ok((segments, log))
}

/// What one segment held.
struct SegmentRead {
    /// The highest entry index in it (0: none).
    max_index: Index,
    /// The highest durable commit index its `DurableCommit` records name (0: none).
    durable_commit: Index,
    /// Where its records end, if something other than records follows them.
    tail: Option<Tail>,
}

/// The end of the newest segment's records, and what follows them, to be cut off.
struct Tail {
    offset: usize,
    /// Bytes after `offset`.
    discarded: usize,
    /// Why the record at `offset` is a torn write; `None` when only zeros follow the last
    /// record (the preallocated rest of the file, or a write that reached none of its
    /// sectors).
    torn: Option<String>,
}

impl Tail {
    fn describe(&self) -> String {
        match &self.torn {
            Some(invalid) => format!("what looks like a torn write ({invalid})"),
            None => "zeros".to_string(),
        }
    }

    /// Cuts the segment at `path` back to its records.
    fn cut(&self, path: &Path, fsync: bool) -> Result<(), StorageError> {
        match &self.torn {
            Some(invalid) => warn!(
                file = %path.display(),
                offset = self.offset,
                discarded_bytes = self.discarded,
                "the WAL ends in a torn write ({invalid}); cutting it off"
            ),
            // The segment is about to be closed: it keeps only its records.
            None => debug!(
                file = %path.display(),
                offset = self.offset,
                zeros = self.discarded,
                "the WAL's records end here; cutting the zeros after them"
            ),
        }
        cut_file(path, self.offset as u64, fsync)
    }
}

/// Replays the records of one segment.
fn replay_segment(
    path: &Path,
    is_newest: bool,
    replay: &mut LogReplay,
) -> Result<SegmentRead, StorageError> {
    let bytes = fs::read(path).map_err(io_error("read", path))?;
    let mut offset = 0;
    let mut read = SegmentRead {
        max_index: 0,
        durable_commit: 0,
        tail: None,
    };
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
                // none of its sectors): the end of the log.
                read.tail = Some(Tail {
                    offset,
                    discarded: bytes.len() - offset,
                    torn: None,
                });
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
                read.tail = Some(Tail {
                    offset,
                    discarded: bytes.len() - offset,
                    torn: Some(invalid.to_string()),
                });
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
        match frame.kind {
            RecordKind::SyncMark => {}
            RecordKind::DurableCommit => {
                let commit = postcard::from_bytes::<[u8; 8]>(frame.payload).map_err(|error| {
                    corrupt(format!("cannot decode {}: {error}", frame.kind.describe()))
                })?;
                read.durable_commit = read.durable_commit.max(Index::from_le_bytes(commit));
            }
            _ => {
                let record = parse(&frame).map_err(corrupt)?;
                if let WalRecord::Entries(batch) = &record {
                    read.max_index = read
                        .max_index
                        .max(batch.last().map_or(0, |entry| entry.index));
                }
                replay.apply(record, path, offset as u64)?;
            }
        }
        offset += frame.len;
    }
    Ok(read)
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
        RecordKind::SnapshotFile | RecordKind::LegacySnapshotFile => {
            return Err("a snapshot file record inside the WAL".to_string());
        }
        RecordKind::SyncMark | RecordKind::DurableCommit => {
            return Err(format!(
                "{} where a log record belongs",
                frame.kind.describe()
            ));
        }
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
    use crate::raft::{Entry, HardState};
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

    /// Writes `batches` batches of `long_batch` with fsync on, each with a hard state that
    /// commits the batch `commit_lag` batches before it, one sync each (as a leader's rounds
    /// do); returns the newest segment's name and bytes, and where its entries records lie.
    fn committed_batches(
        batches: u64,
        commit_lag: u64,
    ) -> (std::ffi::OsString, Vec<u8>, Vec<(usize, usize)>) {
        written_segment(|storage| {
            for number in 0..batches {
                storage.append(&long_batch(number)).expect("append");
                let commit = number
                    .checked_sub(commit_lag)
                    .map_or(0, |committed| long_batch(committed).last().unwrap().index);
                let hard_state = HardState {
                    term: 1,
                    vote: None,
                    commit,
                };
                storage.set_hard_state(&hard_state).expect("hard state");
                storage.sync().expect("sync");
            }
        })
    }

    /// The commit index the segment's commit slot names.
    fn commit_slot(bytes: &[u8]) -> Index {
        let frame = record::decode(bytes).expect("an intact first record");
        assert_eq!(frame.kind, RecordKind::DurableCommit, "the first record");
        let commit: [u8; 8] = postcard::from_bytes(frame.payload).expect("8 bytes");
        Index::from_le_bytes(commit)
    }

    #[test]
    fn the_commit_slot_names_the_commit_index_of_the_last_synced_hard_state() {
        let (_, bytes, _) = committed_batches(6, 1);
        // The last sync made durable the hard state that commits batch 4, so the slot names
        // its last entry.
        assert_eq!(commit_slot(&bytes), 10);

        // Not before that hard state is synced, and never with fsync off.
        let (_, bytes, _) = written_segment(|storage| {
            let mut hard_state = HardState {
                term: 1,
                vote: None,
                commit: 0,
            };
            storage.set_hard_state(&hard_state).expect("hard state");
            storage.append(&long_batch(0)).expect("append");
            storage.sync().expect("sync");
            hard_state.commit = 2;
            storage.set_hard_state(&hard_state).expect("hard state");
            assert!(!storage.needs_sync(), "a commit index alone waits");
        });
        assert_eq!(commit_slot(&bytes), 0);
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut storage, _) = Storage::open(dir.path(), options(1 << 20)).expect("open");
        storage.append(&long_batch(0)).expect("append");
        storage
            .set_hard_state(&HardState {
                term: 1,
                vote: None,
                commit: 3,
            })
            .expect("hard state");
        storage.sync().expect("sync");
        drop(storage);
        let segment = files_ending_with(dir.path(), SEGMENT_SUFFIX).pop().unwrap();
        assert_eq!(commit_slot(&fs::read(&segment).unwrap()), 0);
    }

    #[test]
    fn a_log_that_ends_before_its_durable_commit_index_stops_start_up_and_is_left_as_it_was() {
        let (name, bytes, records) = committed_batches(8, 1);
        let durable_commit = commit_slot(&bytes);
        assert_eq!(durable_commit, 14, "the last entry of batch 6");
        // Data an fsync had covered is lost from inside batch 5 on: a zeroed tail, which on
        // its own looks like a torn write.
        let (_, records_end) = record_bounds(&bytes);
        let mut damaged = bytes.clone();
        damaged[records[5].0 + 100..records_end].fill(0);
        let (dir, copy) = dir_with_segment(&name, &damaged);

        let error = Storage::open(dir.path(), syncing()).unwrap_err();
        assert!(
            matches!(
                &error,
                StorageError::CommittedEntriesLost {
                    last_index: 10,
                    durable_commit: 14,
                    ..
                }
            ),
            "{error}"
        );
        let message = error.to_string();
        for expected in [
            "ends at log index 10",
            "entries 11 to 14 are lost",
            "torn write",
            &format!("at byte {}", records[5].0),
            &copy.display().to_string(),
            "empty one",
        ] {
            assert!(message.contains(expected), "no `{expected}` in: {message}");
        }
        assert_eq!(
            fs::read(&copy).expect("read segment"),
            damaged,
            "nothing is cut when start-up stops"
        );
        assert_eq!(files_ending_with(dir.path(), SEGMENT_SUFFIX), [copy]);
    }

    #[test]
    fn a_torn_tail_beyond_the_durable_commit_index_is_cut_and_the_commit_slot_kept() {
        let (name, bytes, records) = committed_batches(8, 3);
        assert_eq!(commit_slot(&bytes), 10, "the last entry of batch 4");
        let (_, records_end) = record_bounds(&bytes);
        let mut damaged = bytes.clone();
        damaged[records[5].0 + 100..records_end].fill(0);
        let (dir, copy) = dir_with_segment(&name, &damaged);

        let (storage, recovered) =
            Storage::open(dir.path(), syncing()).expect("what is lost was never committed");
        let kept: Vec<Entry> = (0..5).flat_map(long_batch).collect();
        assert_eq!(recovered.entries, kept);
        assert_eq!(
            fs::metadata(&copy).expect("metadata").len(),
            records[5].0 as u64
        );
        // The hard state records after batch 4 are gone with the tail, but not what the slot
        // knew: the new process's segment starts with it.
        assert_eq!(recovered.hard_state.commit, 4);
        drop(storage);
        let newest = files_ending_with(dir.path(), SEGMENT_SUFFIX).pop().unwrap();
        assert_ne!(newest, copy);
        assert_eq!(commit_slot(&fs::read(&newest).unwrap()), 10);
    }

    #[test]
    fn a_hard_state_that_commits_past_the_log_stops_start_up() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut storage, _) = Storage::open(dir.path(), options(1 << 20)).expect("open");
        storage.append(&entries(1..=5, 1)).expect("append");
        let hard_state = HardState {
            term: 1,
            vote: None,
            commit: 9,
        };
        storage.set_hard_state(&hard_state).expect("hard state");
        storage.sync().expect("sync");
        drop(storage);
        let error = Storage::open(dir.path(), options(1 << 20)).unwrap_err();
        assert!(
            matches!(
                &error,
                StorageError::CommittedEntriesLost {
                    last_index: 5,
                    durable_commit: 9,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn the_commit_slot_survives_a_restart_and_a_roll_over() {
        let dir = tempfile::tempdir().expect("temp dir");
        let tiny = StorageOptions {
            segment_bytes: 1,
            ..syncing()
        };
        let (mut storage, _) = Storage::open(dir.path(), tiny).expect("open");
        for number in 0..3 {
            storage.append(&long_batch(number)).expect("append");
            let hard_state = HardState {
                term: 1,
                vote: None,
                commit: long_batch(number).last().unwrap().index,
            };
            storage.set_hard_state(&hard_state).expect("hard state");
            storage.sync().expect("sync: rolls over");
        }
        drop(storage);
        let newest = files_ending_with(dir.path(), SEGMENT_SUFFIX).pop().unwrap();
        assert_eq!(commit_slot(&fs::read(&newest).unwrap()), 6);

        let (storage, _) = Storage::open(dir.path(), tiny).expect("reopen");
        drop(storage);
        let newest = files_ending_with(dir.path(), SEGMENT_SUFFIX).pop().unwrap();
        assert_eq!(
            commit_slot(&fs::read(&newest).unwrap()),
            6,
            "a new process's segment starts with what it recovered"
        );
    }

    #[test]
    fn a_segment_of_an_earlier_build_without_a_commit_slot_still_loads() {
        let hard_state = HardState {
            term: 2,
            vote: Some(1),
            commit: 3,
        };
        let mut contents = Vec::new();
        record::encode(&mut contents, RecordKind::HardState, &hard_state).expect("encode");
        record::encode(&mut contents, RecordKind::Entries, &entries(1..=4, 2)).expect("encode");
        let (dir, _) = dir_with_segment(
            std::ffi::OsStr::new("segment-00000000000000000001.wal"),
            &contents,
        );
        let (_, recovered) = Storage::open(dir.path(), syncing()).expect("open");
        assert_eq!(recovered.hard_state, hard_state);
        assert_eq!(recovered.entries, entries(1..=4, 2));
    }
}
