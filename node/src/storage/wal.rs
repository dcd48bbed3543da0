//! The write-ahead log: numbered segment files of records (framed as in [`super::record`]),
//! appended through an in-memory buffer and made durable by one fsync per [`Wal::sync`]
//! (group commit).
//!
//! Segments are named `segment-<20-digit sequence>.wal`. Every segment starts with a header:
//! the current hard state and, if there is one, the current snapshot's `CompactedTo` marker,
//! so deleting older segments never loses either. A segment is written as a `.tmp` file,
//! given its header, fsynced, renamed into place and the directory fsynced, so a segment
//! never exists without its header. A new segment starts when `sync` finds the current one
//! at or past the size limit, and at every start-up: a process never appends to a segment an
//! earlier process wrote, whose tail may have been torn.
//!
//! The current segment is kept filled with zeros some way ahead of its records
//! ([`StorageOptions::preallocate_bytes`]), so that appending does not change the file's size:
//! an fdatasync then flushes only the data, not the inode as well, which on ext4 saves a disk
//! write per sync. A segment is cut back to its records when it is closed, so only the newest
//! one can end in zeros, and recovery takes an all-zero rest of it as the end of the log.
//!
//! The first record after each fsync is a sync mark: how far into the segment that fsync
//! reached, which is the mark's own offset. Recovery reads marks only after damage, to tell
//! a torn write (no mark past the damage vouches for it) from damage to data an fsync had
//! covered. (Marks are record kind 6: a build older than them refuses such a data dir.)
//!
//! Recovery reads the segments oldest first. A torn write at the tail of the newest segment is
//! cut off, with a warning naming the file and offset; any other damage is an error naming
//! them (the rule is in the `storage` module docs). Segments are deleted oldest first, so an
//! interrupted deletion still leaves a contiguous run of segments.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{debug, warn};

use crate::raft::{Entry, HardState, Index, SnapshotMeta};

use super::files::{io_error, remove_file, sync_dir, sync_file};
use super::record::{self, Frame, RecordKind};
use super::replay::{LogReplay, ReplayedLog, WalRecord};
use super::{StorageError, StorageOptions, SyncStats};

const SEGMENT_PREFIX: &str = "segment-";
const SEGMENT_SUFFIX: &str = ".wal";
const TEMP_SUFFIX: &str = ".tmp";
/// Buffered bytes past which a write goes to the file before `sync`, to bound memory.
const FLUSH_BYTES: usize = 1 << 20;
/// Written repeatedly to preallocate.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// A segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    sequence: u64,
    path: PathBuf,
    /// The highest entry index written to it (0: none). Once a snapshot covers that index,
    /// nothing in the segment is needed any more.
    max_index: Index,
}

/// The open log: closed segments, and the current one being appended to.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    fsync: bool,
    segment_bytes: u64,
    preallocate_bytes: u64,
    /// Oldest first.
    closed: Vec<Segment>,
    current: Segment,
    file: File,
    /// Size of the current segment's records, buffered bytes included.
    current_len: u64,
    /// How much of the current segment the last fsync made durable (its header, if none yet).
    synced_len: u64,
    /// The current segment file holds zeros from its records' end up to here.
    preallocated_to: u64,
    /// Encoded records not yet written to `file`; reused, so appends do not allocate.
    buffer: Vec<u8>,
    /// Bytes appended since the last fsync, whether still buffered or already written.
    unsynced_bytes: u64,
    /// Whether those bytes hold something that must be durable before anything depending
    /// on it is sent: entries, a new term or vote, a snapshot marker (see [`Wal::needs_sync`]).
    unsynced_promises: bool,
    /// Repeated in every segment header.
    hard_state: HardState,
    /// Repeated in every segment header.
    snapshot: Option<SnapshotMeta>,
    /// Set once a write or fsync failed: what reached the disk is then unknown, and writing
    /// more (or retrying an fsync, which may report success for lost data) could hide that.
    failed: bool,
}

/// Reads every segment in `dir` oldest first and replays its records; cuts a torn tail off
/// the newest. Returns the segments, for [`Wal::start`], and the log they describe.
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

impl Wal {
    /// Starts a new segment after the recovered `segments`, its header recording the
    /// recovered hard state and snapshot, and opens the log for appending.
    pub(crate) fn start(
        dir: &Path,
        options: &StorageOptions,
        segments: Vec<Segment>,
        log: &ReplayedLog,
    ) -> Result<Wal, StorageError> {
        let sequence = segments.last().map_or(1, |segment| segment.sequence + 1);
        let mut buffer = Vec::new();
        let (current, file, current_len, _) = create_segment(
            dir,
            sequence,
            &log.hard_state,
            log.snapshot,
            &mut buffer,
            options.fsync,
        )?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            fsync: options.fsync,
            segment_bytes: options.segment_bytes,
            preallocate_bytes: options.preallocate_bytes,
            closed: segments,
            current,
            file,
            current_len,
            synced_len: current_len,
            preallocated_to: current_len,
            buffer,
            unsynced_bytes: 0,
            unsynced_promises: false,
            hard_state: log.hard_state,
            snapshot: log.snapshot,
            failed: false,
        })
    }

    /// The hard state most recently written.
    pub(crate) fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The snapshot most recently recorded.
    pub(crate) fn snapshot(&self) -> Option<SnapshotMeta> {
        self.snapshot
    }

    pub(crate) fn write_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        self.write(RecordKind::HardState, hard_state)?;
        if (hard_state.term, hard_state.vote) != (self.hard_state.term, self.hard_state.vote) {
            self.unsynced_promises = true;
        }
        self.hard_state = *hard_state;
        Ok(())
    }

    /// Whether anything written since the last sync must be made durable before something
    /// that depends on it leaves the node. Only a hard state whose commit index alone changed
    /// need not: a node that forgets how far its log was committed learns it again from the
    /// leader, so that record can wait for the next sync.
    pub(crate) fn needs_sync(&self) -> bool {
        self.unsynced_promises
    }

    /// Writes a batch of consecutive entries as one record.
    pub(crate) fn write_entries(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.write(RecordKind::Entries, entries)?;
        self.unsynced_promises = true;
        let batch_max = entries.last().map_or(0, |entry| entry.index);
        self.current.max_index = self.current.max_index.max(batch_max);
        Ok(())
    }

    /// Records that the snapshot `meta` (already durable) covers the log up to its index.
    pub(crate) fn write_compacted_to(&mut self, meta: SnapshotMeta) -> Result<(), StorageError> {
        self.write(RecordKind::CompactedTo, &meta)?;
        self.unsynced_promises = true;
        self.snapshot = Some(meta);
        Ok(())
    }

    /// Records that the snapshot `meta` (already durable) replaced the whole log.
    pub(crate) fn write_replaced_by(&mut self, meta: SnapshotMeta) -> Result<(), StorageError> {
        self.write(RecordKind::ReplacedBy, &meta)?;
        self.unsynced_promises = true;
        self.snapshot = Some(meta);
        Ok(())
    }

    /// Writes out the buffer and fsyncs once for everything appended since the last sync;
    /// then starts a new segment if the current one has reached the size limit.
    pub(crate) fn sync(&mut self) -> Result<SyncStats, StorageError> {
        self.ensure_usable()?;
        if self.unsynced_bytes == 0 {
            return Ok(SyncStats::default());
        }
        let result = self.flush_and_fsync();
        self.poison_on_error(result)
    }

    /// Deletes the oldest closed segments as long as `obsolete(max_index)` holds for them;
    /// the current segment is never deleted.
    pub(crate) fn remove_segments_while(
        &mut self,
        obsolete: impl Fn(Index) -> bool,
    ) -> Result<(), StorageError> {
        let mut removed_any = false;
        while let Some(oldest) = self.closed.first() {
            if !obsolete(oldest.max_index) {
                break;
            }
            remove_file(&oldest.path)?;
            debug!(file = %oldest.path.display(), "deleted a WAL segment covered by the snapshot");
            self.closed.remove(0);
            removed_any = true;
        }
        if removed_any && self.fsync {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    fn write<T: Serialize + ?Sized>(
        &mut self,
        kind: RecordKind,
        payload: &T,
    ) -> Result<(), StorageError> {
        self.ensure_usable()?;
        let before = self.buffer.len();
        // The first record after an fsync says how far it reached (see `replay_segment`);
        // that is exactly where the mark itself starts.
        let marked = if self.unsynced_bytes == 0 && self.fsync {
            record::encode(&mut self.buffer, RecordKind::SyncMark, &self.synced_len)
        } else {
            Ok(())
        };
        if let Err(error) = marked.and_then(|()| record::encode(&mut self.buffer, kind, payload)) {
            // Nothing of this call may stay buffered: the lengths would no longer match.
            self.buffer.truncate(before);
            return Err(error);
        }
        let appended = (self.buffer.len() - before) as u64;
        self.current_len += appended;
        self.unsynced_bytes += appended;
        if self.buffer.len() >= FLUSH_BYTES {
            let flushed = self.flush();
            self.poison_on_error(flushed)?;
        }
        Ok(())
    }

    fn ensure_usable(&self) -> Result<(), StorageError> {
        if self.failed {
            return Err(StorageError::Failed);
        }
        Ok(())
    }

    fn poison_on_error<T>(&mut self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        let written = self
            .file
            .write_all(&self.buffer)
            .map_err(io_error("write", &self.current.path));
        self.buffer.clear();
        written?;
        self.preallocate()
    }

    /// Once the records have reached the zeros ahead of them, writes `preallocate_bytes`
    /// more zeros past the records' end. The next fdatasync makes them durable along with
    /// the records; the ones after it find the file's size unchanged.
    fn preallocate(&mut self) -> Result<(), StorageError> {
        if self.preallocate_bytes == 0 || self.current_len < self.preallocated_to {
            return Ok(());
        }
        let end = self.current_len + self.preallocate_bytes;
        let mut offset = self.current_len;
        while offset < end {
            let chunk = &ZEROS[..ZEROS.len().min((end - offset) as usize)];
            self.file
                .write_all_at(chunk, offset)
                .map_err(io_error("preallocate", &self.current.path))?;
            offset += chunk.len() as u64;
        }
        self.preallocated_to = end;
        Ok(())
    }

    fn flush_and_fsync(&mut self) -> Result<SyncStats, StorageError> {
        self.flush()?;
        let mut fsync_time = Duration::ZERO;
        if self.fsync {
            fsync_time += sync_file(&self.file, &self.current.path)?;
        }
        let bytes = std::mem::take(&mut self.unsynced_bytes);
        self.unsynced_promises = false;
        self.synced_len = self.current_len;
        if self.current_len >= self.segment_bytes {
            fsync_time += self.roll_over()?;
        }
        Ok(SyncStats {
            fsync: self.fsync.then_some(fsync_time),
            bytes,
        })
    }

    /// Closes the current segment (already fsynced) and starts the next one.
    fn roll_over(&mut self) -> Result<Duration, StorageError> {
        let mut fsync_time = Duration::ZERO;
        // Cut the zeros off before the next segment exists: recovery accepts a zero-filled
        // tail only in the newest segment.
        if self.preallocated_to > self.current_len {
            self.file
                .set_len(self.current_len)
                .map_err(io_error("truncate", &self.current.path))?;
            if self.fsync {
                fsync_time += sync_file(&self.file, &self.current.path)?;
            }
        }
        let sequence = self.current.sequence + 1;
        let (segment, file, len, create_fsync_time) = create_segment(
            &self.dir,
            sequence,
            &self.hard_state,
            self.snapshot,
            &mut self.buffer,
            self.fsync,
        )?;
        let finished = std::mem::replace(&mut self.current, segment);
        self.closed.push(finished);
        self.file = file;
        self.current_len = len;
        self.synced_len = len;
        self.preallocated_to = len;
        Ok(fsync_time + create_fsync_time)
    }
}

/// Creates segment `sequence` holding just its header, durably when `fsync` is on, using
/// `buffer` (empty, and left empty) to encode the header. Returns the segment, its file open
/// for appending, its length and the time spent in fsync.
fn create_segment(
    dir: &Path,
    sequence: u64,
    hard_state: &HardState,
    snapshot: Option<SnapshotMeta>,
    buffer: &mut Vec<u8>,
    fsync: bool,
) -> Result<(Segment, File, u64, Duration), StorageError> {
    let path = segment_path(dir, sequence);
    let mut temp = path.clone().into_os_string();
    temp.push(TEMP_SUFFIX);
    let temp = PathBuf::from(temp);
    let created =
        encode_header(buffer, hard_state, snapshot).and_then(|()| write_new_file(&temp, buffer));
    let len = buffer.len() as u64;
    buffer.clear();
    let file = created?;
    let mut fsync_time = Duration::ZERO;
    if fsync {
        fsync_time += sync_file(&file, &temp)?;
    }
    fs::rename(&temp, &path).map_err(io_error("rename", &temp))?;
    if fsync {
        let started = Instant::now();
        sync_dir(dir)?;
        fsync_time += started.elapsed();
    }
    let segment = Segment {
        sequence,
        path,
        max_index: 0,
    };
    Ok((segment, file, len, fsync_time))
}

fn encode_header(
    buffer: &mut Vec<u8>,
    hard_state: &HardState,
    snapshot: Option<SnapshotMeta>,
) -> Result<(), StorageError> {
    record::encode(buffer, RecordKind::HardState, hard_state)?;
    match &snapshot {
        Some(meta) => record::encode(buffer, RecordKind::CompactedTo, meta),
        None => Ok(()),
    }
}

fn write_new_file(path: &Path, contents: &[u8]) -> Result<File, StorageError> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(io_error("create", path))?;
    file.write_all(contents).map_err(io_error("write", path))?;
    Ok(file)
}

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
    use super::*;
    use crate::storage::Storage;
    use crate::storage::test_support::{entries, files_ending_with};

    /// No preallocation: these tests find record offsets from file lengths.
    fn options(segment_bytes: u64) -> StorageOptions {
        StorageOptions {
            fsync: false,
            segment_bytes,
            preallocate_bytes: 0,
        }
    }

    /// The three entries of batch `number` (from 0).
    fn batch(number: u64) -> Vec<Entry> {
        entries(number * 3 + 1..=number * 3 + 3, 1)
    }

    /// Fills `dir` with `count` batches, one sync each, and returns where each batch's record
    /// starts: its segment and byte offset.
    fn write_batches(dir: &Path, count: u64, segment_bytes: u64) -> Vec<(PathBuf, usize)> {
        let (mut storage, _) = Storage::open(dir, options(segment_bytes)).expect("open");
        (0..count)
            .map(|number| {
                let segment = files_ending_with(dir, SEGMENT_SUFFIX)
                    .pop()
                    .expect("a current segment");
                let start = fs::metadata(&segment).expect("segment metadata").len() as usize;
                storage.append(&batch(number)).expect("append");
                storage.sync().expect("sync");
                (segment, start)
            })
            .collect()
    }

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
    fn segments_roll_over_at_the_size_limit_and_replay_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let starts = write_batches(dir.path(), 20, 200);
        let segments_used = starts
            .iter()
            .map(|(segment, _)| segment)
            .collect::<std::collections::BTreeSet<_>>();
        assert!(
            segments_used.len() > 3,
            "only {} segments",
            segments_used.len()
        );
        for segment in &segments_used {
            assert!(
                fs::metadata(segment).expect("metadata").len() < 200 + 100,
                "{segment:?} is oversized"
            );
        }

        let (_, recovered) = Storage::open(dir.path(), options(200)).expect("open");
        assert_eq!(recovered.entries, entries(1..=60, 1));
    }

    /// Where each record of `bytes` starts, and where the last one ends.
    fn record_bounds(bytes: &[u8]) -> (Vec<usize>, usize) {
        let mut starts = Vec::new();
        let mut offset = 0;
        while let Ok(frame) = record::decode(&bytes[offset..]) {
            starts.push(offset);
            offset += frame.len;
        }
        (starts, offset)
    }

    fn preallocating(segment_bytes: u64) -> StorageOptions {
        StorageOptions {
            preallocate_bytes: 4096,
            ..options(segment_bytes)
        }
    }

    #[test]
    fn zeros_are_kept_ahead_of_the_records_and_recovery_ends_quietly_at_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut storage, _) = Storage::open(dir.path(), preallocating(1 << 20)).expect("open");
        let segment = files_ending_with(dir.path(), SEGMENT_SUFFIX)
            .pop()
            .expect("a current segment");
        let mut sizes = Vec::new();
        for number in 0..4 {
            storage.append(&batch(number)).expect("append");
            storage.sync().expect("sync");
            sizes.push(fs::metadata(&segment).expect("metadata").len());
        }
        assert!(
            sizes.windows(2).all(|pair| pair[0] == pair[1]),
            "the file size changed on a sync: {sizes:?}"
        );
        let bytes = fs::read(&segment).expect("read segment");
        let (starts, records_end) = record_bounds(&bytes);
        assert_eq!(starts.len(), 5, "the header and four batches");
        assert!(bytes.len() > records_end, "{} bytes", bytes.len());
        assert!(bytes[records_end..].iter().all(|&b| b == 0));

        drop(storage);
        let (_, recovered) = Storage::open(dir.path(), preallocating(1 << 20)).expect("reopen");
        assert_eq!(recovered.entries, entries(1..=12, 1));
        assert_eq!(
            fs::metadata(&segment).expect("metadata").len(),
            records_end as u64,
            "the zeros are cut off the segment that is now closed"
        );
    }

    #[test]
    fn a_segment_closed_at_the_size_limit_holds_only_its_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut storage, _) = Storage::open(dir.path(), preallocating(200)).expect("open");
        for number in 0..20 {
            storage.append(&batch(number)).expect("append");
            storage.sync().expect("sync");
        }
        let mut segments = files_ending_with(dir.path(), SEGMENT_SUFFIX);
        segments.pop();
        assert!(
            segments.len() > 3,
            "only {} closed segments",
            segments.len()
        );
        for segment in &segments {
            let bytes = fs::read(segment).expect("read segment");
            assert_eq!(record_bounds(&bytes).1, bytes.len(), "{segment:?}");
        }

        drop(storage);
        let (_, recovered) = Storage::open(dir.path(), preallocating(200)).expect("reopen");
        assert_eq!(recovered.entries, entries(1..=60, 1));
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

    #[test]
    fn a_full_buffer_goes_to_the_file_before_sync() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut storage, _) = Storage::open(dir.path(), options(1 << 30)).expect("open");
        let segment = files_ending_with(dir.path(), SEGMENT_SUFFIX)
            .pop()
            .expect("a current segment");
        let header_len = fs::metadata(&segment).expect("metadata").len();
        let payload = crate::raft::Payload::Command(vec![7; 64 * 1024].into());
        let large_entry = |index| Entry {
            term: 1,
            index,
            payload: payload.clone(),
        };
        for index in 1..=20 {
            storage.append(&[large_entry(index)]).expect("append");
        }
        let written = fs::metadata(&segment).expect("metadata").len() - header_len;
        assert!(
            written >= FLUSH_BYTES as u64,
            "only {written} bytes written"
        );

        // A process crash without sync keeps what reached the file, a prefix of the appends.
        drop(storage);
        let (_, recovered) = Storage::open(dir.path(), options(1 << 30)).expect("reopen");
        let kept = recovered.entries.len() as u64;
        assert!((16..20).contains(&kept), "{kept} entries kept");
        assert_eq!(
            recovered.entries,
            (1..=kept).map(large_entry).collect::<Vec<_>>()
        );
    }

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
