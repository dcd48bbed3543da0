//! Appending to the WAL: records go through an in-memory buffer into the current segment
//! and are made durable by one fsync per [`Wal::sync`] (group commit).
//!
//! A new segment starts when `sync` finds the current one at or past the size limit, and at
//! every start-up: a process never appends to a segment an earlier process wrote, whose tail
//! may have been torn.
//!
//! The current segment is kept filled with zeros some way ahead of its records
//! ([`StorageOptions::preallocate_bytes`]), so that appending does not change the file's size:
//! an fdatasync then flushes only the data, not the inode as well, which on ext4 saves a disk
//! write per sync. A segment is cut back to its records when it is closed, so only the newest
//! one can end in zeros.
//!
//! The first record after each fsync is a sync mark: how far into the segment that fsync
//! reached, which is the mark's own offset. Recovery reads marks only after damage, to tell
//! a torn write from damage to data an fsync had covered (see `recovery.rs`). (Marks are
//! record kind 6: a build older than them refuses such a data dir.)
//!
//! The first record of every segment is its commit slot (record kind 7, a fixed 21 bytes):
//! the commit index of the latest hard state that an fsync had made durable. It is
//! rewritten in place right after each fsync that made a later one durable, and becomes
//! durable with the next fsync of the segment (or the kernel's writeback): no fsync of its
//! own. It only ever names a commit index whose entries an fsync had already covered, so a
//! crash at any point leaves it at or behind the log. Unlike the hard state records, it is
//! not at the tail of the log, so damage that takes the tail (data lost after an fsync
//! had covered it) cannot take it too, and recovery sees the log end before it. A sector is
//! written whole, so the slot is either the old one or the new one. With fsync off it stays
//! 0: nothing is durable then.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::debug;

use crate::raft::{Entry, HardState, Index, SnapshotMeta};
use crate::storage::files::{io_error, remove_file, sync_dir, sync_file};
use crate::storage::record::{self, RecordKind};
use crate::storage::replay::ReplayedLog;
use crate::storage::{StorageError, StorageOptions, SyncStats};

use super::{Segment, TEMP_SUFFIX, segment_path};

/// Buffered bytes past which a write goes to the file before `sync`, to bound memory.
const FLUSH_BYTES: usize = 1 << 20;
/// Written repeatedly to preallocate.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
/// Bytes of the commit slot record: header, kind, 8 bytes of index.
const COMMIT_SLOT_LEN: usize = 12 + 1 + 8;

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
    /// The commit index of the latest hard state an fsync made durable, as the current
    /// segment's commit slot names it (0 with fsync off).
    durable_commit: Index,
    /// Set once a write or fsync failed: what reached the disk is then unknown, and writing
    /// more (or retrying an fsync, which may report success for lost data) could hide that.
    failed: bool,
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
        // Carried on from the segments before, which stay until a snapshot covers them.
        let durable_commit = if options.fsync { log.durable_commit } else { 0 };
        let (current, file, current_len, _) = create_segment(
            dir,
            sequence,
            &log.hard_state,
            log.snapshot,
            durable_commit,
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
            durable_commit,
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
        // The first record after an fsync says how far it reached (see `recovery.rs`);
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
        // Every hard state written so far is durable now, and the entries its commit index
        // covers before it (a leader counts its own entries only once persisted, a follower
        // writes the entries of a Ready before its hard state).
        if self.fsync && self.hard_state.commit > self.durable_commit {
            self.write_commit_slot(self.hard_state.commit)?;
        }
        if self.current_len >= self.segment_bytes {
            fsync_time += self.roll_over()?;
        }
        Ok(SyncStats {
            fsync: self.fsync.then_some(fsync_time),
            bytes,
        })
    }

    /// Rewrites the current segment's commit slot to `commit`, in place. Not synced here:
    /// the next fsync of the segment carries it.
    fn write_commit_slot(&mut self, commit: Index) -> Result<(), StorageError> {
        let mut slot = Vec::with_capacity(COMMIT_SLOT_LEN);
        record::encode(&mut slot, RecordKind::DurableCommit, &commit.to_le_bytes())?;
        debug_assert_eq!(slot.len(), COMMIT_SLOT_LEN, "the slot's size is fixed");
        self.file
            .write_all_at(&slot, 0)
            .map_err(io_error("write the commit slot of", &self.current.path))?;
        self.durable_commit = commit;
        Ok(())
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
            self.durable_commit,
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
    durable_commit: Index,
    buffer: &mut Vec<u8>,
    fsync: bool,
) -> Result<(Segment, File, u64, Duration), StorageError> {
    let path = segment_path(dir, sequence);
    let mut temp = path.clone().into_os_string();
    temp.push(TEMP_SUFFIX);
    let temp = PathBuf::from(temp);
    let created = encode_header(buffer, hard_state, snapshot, durable_commit)
        .and_then(|()| write_new_file(&temp, buffer));
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

/// The commit slot (first, at offset 0, where it is rewritten), the hard state and the
/// snapshot marker.
fn encode_header(
    buffer: &mut Vec<u8>,
    hard_state: &HardState,
    snapshot: Option<SnapshotMeta>,
    durable_commit: Index,
) -> Result<(), StorageError> {
    record::encode(
        buffer,
        RecordKind::DurableCommit,
        &durable_commit.to_le_bytes(),
    )?;
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

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::SEGMENT_SUFFIX;
    use super::super::test_support::{batch, options, preallocating, record_bounds, write_batches};
    use super::*;
    use crate::storage::Storage;
    use crate::storage::test_support::{entries, files_ending_with};

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
        assert_eq!(
            starts.len(),
            6,
            "the header (commit slot, hard state) and four batches"
        );
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
}
