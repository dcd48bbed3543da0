//! Durable storage for the Raft core: the write-ahead log and snapshot files.
//!
//! The shell persists each `Ready` through a [`Storage`]: [`Storage::install_snapshot`] for
//! a snapshot from the leader, then [`Storage::append`] and [`Storage::set_hard_state`], then
//! one [`Storage::sync`] (group commit) before it sends the messages and answers that depend
//! on them (see `raft::Ready` for the few that do not). On restart, [`Storage::open`] returns
//! what was made durable, as a [`Recovered`].
//!
//! # On disk
//!
//! A data dir holds WAL segments `segment-<sequence>.wal` (`wal/`) and one snapshot file
//! `snapshot-<index>-<term>.snap` (`snapshot.rs`). Both are made of records (`record.rs`):
//! a length, a CRC32C of the body and a CRC32C of the header itself, then the body, one
//! kind byte and a postcard payload. A whole batch of entries is one record. Every segment
//! starts with its commit slot, the current hard state and snapshot marker, so older
//! segments can be deleted once a snapshot covers their entries. The WAL names the current
//! snapshot; any other snapshot file is a leftover and is deleted at start-up.
//!
//! The commit slot is rewritten in place after every fsync that made a new commit index
//! durable (`wal/writer.rs`): it records, at the head of the newest segment, how far this
//! node knew its log to be committed, away from the tail where a loss of synced data
//! strikes. Recovery refuses to start on a log that ends before it (see below).
//!
//! # Torn writes versus corruption
//!
//! Only the tail of the newest segment can hold a torn write: older segments were fsynced
//! before the next one was created, and a new process always starts a new segment. A write
//! that never finished (the process was killed mid-`write`, or the machine lost power before
//! the fsync returned) leaves, from some offset on, nothing (the file is short), zeros (the
//! file system grew the file but the data never reached those sectors) or a mix of written
//! and zero sectors. Everything after the first damaged record of such a write was written
//! after it, so no completed fsync covers it and dropping it loses nothing that was
//! acknowledged. So the first bad record of the newest segment is *torn*, and the file is
//! cut there with a warning naming file and offset, when:
//!
//! 1. the file ends inside it: a partial header, or an intact header whose length runs past
//!    the end of the file;
//! 2. a checksum fails and only zero bytes follow it up to the end of the file (for a
//!    damaged header: follow the header), which covers a garbled final record and a
//!    zero-filled tail;
//! 3. a checksum fails and a whole 512-byte sector that it overlaps reads as zeros: a sector
//!    the write never reached although later ones did, unless a later record proves that
//!    an fsync had covered it. The first record written after each fsync is a *sync mark*
//!    holding the offset that fsync made durable; an intact mark past the damage naming an
//!    offset beyond it means the damaged record was acknowledged data, and that is
//!    corruption. (With `fsync` off no marks are written, as nothing is durable anyway.)
//!
//! The newest segment also ends in zeros in normal operation: the WAL writes zeros ahead of
//! its records (see `wal/writer.rs`). A rest of the file that is all zeros, from a record
//! boundary on, is simply the end of the log and is cut without a warning.
//!
//! A cut never takes what an fsync covered and this node knew to be committed: the durable
//! commit index (the highest the commit slots and the hard state name) must be in the log
//! that is left, or start-up stops with [`StorageError::CommittedEntriesLost`], naming the
//! lost indexes and how to recover, and cuts nothing. Data an fsync covered can only be
//! gone if the disk lost it; the torn-write rule cannot tell such a loss at the very tail
//! from a write that never finished, but the commit slot can, for everything up to the
//! commit index of the previous sync. (What was committed after that, the last writes
//! acknowledged before the loss, the slot does not know yet: the commit index on disk
//! lags the acknowledgements by one sync, which is what saves an fsync per write.)
//!
//! Anything else is *corruption* and stops start-up with [`StorageError::Corrupt`], naming
//! the file and byte offset: a damaged record followed by non-zero data, any damage in an
//! older segment, a record whose checksums pass but which cannot be decoded, a gap in entry
//! indexes, or a missing or damaged snapshot. The header checks itself so that a flipped bit
//! in a length is caught as damage, not trusted as a record running past the end of the
//! file. A damaged final record is indistinguishable from an unfinished one, so it is
//! treated as torn.

mod files;
mod record;
mod replay;
mod snapshot;
#[cfg(test)]
mod test_support;
mod wal;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::raft::{Entry, HardState, Index, Snapshot, SnapshotMeta};

use replay::entries_to_keep;
use wal::Wal;

/// How a [`Storage`] behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorageOptions {
    /// Whether to fsync files and directories. Turn it off only where losing recent writes
    /// to a machine crash does not matter, such as tests; a process crash loses nothing
    /// that `sync` returned for either way.
    pub fsync: bool,
    /// Size past which the WAL starts a new segment file (checked at each `sync`).
    pub segment_bytes: u64,
    /// How many bytes of zeros the WAL keeps written ahead of its records, so that most
    /// syncs do not change the file's size and flush no metadata (0: none). It writes the
    /// next run of zeros each time the records reach the end of the last one.
    pub preallocate_bytes: u64,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            fsync: true,
            segment_bytes: 64 * 1024 * 1024,
            preallocate_bytes: 1024 * 1024,
        }
    }
}

/// What [`Storage::open`] found on disk: everything the core needs to restart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub hard_state: HardState,
    /// The latest snapshot, if any; the log continues right after it.
    pub snapshot: Option<Snapshot>,
    /// The log entries after the snapshot, consecutive.
    pub entries: Vec<Entry>,
}

/// What one [`Storage::sync`] did, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Time spent in fsync; `None` when nothing needed it or fsync is turned off.
    pub fsync: Option<Duration>,
    /// Bytes of WAL records this sync made durable.
    pub bytes: u64,
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The file system refused an operation.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The data on disk is damaged in a way a crash cannot explain.
    #[error(
        "{} is corrupt at byte {offset}: {reason}. The node cannot trust its data; inspect the file. \
         Restarting it on an empty data dir makes it forget its log and its vote: do that only once \
         the rest of the cluster has elected a leader in a term later than this node's own, or it \
         may vote twice in one term",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The WAL ends before the commit index an fsync had made durable: entries this node
    /// had stored and known to be committed (so, likely acknowledged to clients) are gone.
    #[error(
        "the WAL in {} ends at log index {last_index}, after {ends_in}, but this node had \
         made entries through index {durable_commit} durable and known them to be committed: \
         entries {} to {durable_commit} are lost (the disk lost data an fsync had covered, or \
         a WAL file was cut). Starting would silently drop writes the cluster acknowledged, \
         so the node refuses; the data dir is left as it was. To recover: if other nodes of \
         the cluster still hold those entries, move this data dir aside and restart the node \
         on an empty one, so that it copies the log from the leader (only once the rest of \
         the cluster has elected a leader in a term later than this node's own, or it may \
         vote twice in one term). If every node reports this, the cluster has lost those \
         writes: keep the data dirs for inspection",
        dir.display(),
        last_index + 1
    )]
    CommittedEntriesLost {
        dir: PathBuf,
        /// The index of the last entry (or snapshot) the WAL still holds.
        last_index: Index,
        /// The commit index the node had made durable.
        durable_commit: Index,
        /// What the newest segment ends in, for the message.
        ends_in: String,
    },
    /// The caller asked for something that would break the log (a bug in the caller).
    #[error("{operation} refused: {reason}")]
    InvalidInput {
        operation: &'static str,
        reason: String,
    },
    /// A record could not be encoded.
    #[error("cannot encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
    /// An earlier write or fsync failed, so what is on disk is unknown.
    #[error(
        "storage refuses further writes after an earlier write or fsync failed; restart the node so it recovers from disk"
    )]
    Failed,
}

/// The durable state of one node: a write-ahead log plus the latest snapshot, in one dir.
#[derive(Debug)]
pub struct Storage {
    dir: PathBuf,
    fsync: bool,
    wal: Wal,
    /// Index of the last entry, or of the snapshot when no entry follows it.
    last_index: Index,
}

impl Storage {
    /// Opens (creating if needed) the storage in `dir` and recovers its contents.
    ///
    /// A torn write at the end of the WAL is cut off (with a warning); any other damage,
    /// or a missing or unreadable snapshot, is a [`StorageError::Corrupt`] naming the file
    /// and byte offset. A log that ends before the commit index this node had made durable
    /// is a [`StorageError::CommittedEntriesLost`], and then nothing is cut.
    pub fn open(dir: &Path, options: StorageOptions) -> Result<(Storage, Recovered), StorageError> {
        files::create_dir(dir, options.fsync)?;
        let (segments, log) = wal::recover(dir, options.fsync)?;
        let snapshot = log
            .snapshot
            .map(|meta| snapshot::read(dir, meta))
            .transpose()?;
        snapshot::remove_all_except(dir, log.snapshot)?;
        let wal = Wal::start(dir, &options, segments, &log)?;
        let snapshot_index = log.snapshot.map_or(0, |meta| meta.index);
        let storage = Storage {
            dir: dir.to_path_buf(),
            fsync: options.fsync,
            wal,
            last_index: log
                .entries
                .last()
                .map_or(snapshot_index, |entry| entry.index),
        };
        let recovered = Recovered {
            hard_state: log.hard_state,
            snapshot,
            entries: log.entries,
        };
        Ok((storage, recovered))
    }

    /// Appends consecutive `entries` (one WAL record, buffered until [`Storage::sync`]). When
    /// `entries[0].index` is at or below the last index, the log from there on is replaced;
    /// entries the snapshot already covers are skipped. A gap after the last index, or a batch
    /// whose indexes are not consecutive, is refused.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let snapshot_index = self.wal.snapshot().map_or(0, |meta| meta.index);
        let kept =
            entries_to_keep(entries, Some(self.last_index), snapshot_index).map_err(|reason| {
                StorageError::InvalidInput {
                    operation: "append",
                    reason,
                }
            })?;
        let Some(last) = kept.last() else {
            return Ok(());
        };
        self.wal.write_entries(kept)?;
        self.last_index = last.index;
        Ok(())
    }

    /// Records the hard state (buffered until [`Storage::sync`]); an unchanged one writes
    /// nothing.
    pub fn set_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        if *hard_state == self.wal.hard_state() {
            return Ok(());
        }
        self.wal.write_hard_state(hard_state)
    }

    /// Whether anything written since the last [`Storage::sync`] must be durable before a
    /// message or answer that depends on it leaves: entries, a new term or vote, a snapshot.
    /// A hard state that changed only its commit index need not be, and waits for the next
    /// sync (a node that forgets how far its log was committed learns it from the leader).
    pub fn needs_sync(&self) -> bool {
        self.wal.needs_sync()
    }

    /// One fsync for everything written since the last sync; a no-op when nothing was.
    ///
    /// After any error the storage refuses further writes ([`StorageError::Failed`]): the
    /// node should exit and recover from disk.
    pub fn sync(&mut self) -> Result<SyncStats, StorageError> {
        self.wal.sync()
    }

    /// Installs a snapshot received from the leader: it replaces the whole log, and entries
    /// appended before this call are discarded, so call it before appending the entries of
    /// the same `Ready`. Durable on return (it syncs everything written so far); then the
    /// older snapshot and every WAL segment but the current one are deleted.
    pub fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.check_not_older("install_snapshot", snapshot.meta)?;
        snapshot::write(&self.dir, snapshot, self.fsync)?;
        self.wal.write_replaced_by(snapshot.meta)?;
        self.wal.sync()?;
        self.last_index = snapshot.meta.index;
        self.wal.remove_segments_while(|_| true)?;
        snapshot::remove_all_except(&self.dir, Some(snapshot.meta))
    }

    /// Records the node's own snapshot at an applied index: entries up to it are no longer
    /// needed, later ones stay. Durable on return (it syncs everything written so far); then
    /// the older snapshot and the WAL segments holding only entries it covers are deleted.
    pub fn compact(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let meta = snapshot.meta;
        self.check_not_older("compact", meta)?;
        if meta.index > self.last_index {
            return Err(StorageError::InvalidInput {
                operation: "compact",
                reason: format!(
                    "the snapshot is at index {} but the log ends at index {}",
                    meta.index, self.last_index
                ),
            });
        }
        snapshot::write(&self.dir, snapshot, self.fsync)?;
        self.wal.write_compacted_to(meta)?;
        self.wal.sync()?;
        self.wal
            .remove_segments_while(|max_index| max_index <= meta.index)?;
        snapshot::remove_all_except(&self.dir, Some(meta))
    }

    fn check_not_older(
        &self,
        operation: &'static str,
        meta: SnapshotMeta,
    ) -> Result<(), StorageError> {
        match self.wal.snapshot() {
            Some(current) if meta.index < current.index => Err(StorageError::InvalidInput {
                operation,
                reason: format!(
                    "the snapshot is at index {} but the current one is already at index {}",
                    meta.index, current.index
                ),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_support::{entries, files_ending_with, snapshot};

    fn options(segment_bytes: u64) -> StorageOptions {
        StorageOptions {
            fsync: false,
            segment_bytes,
            preallocate_bytes: 4096,
        }
    }

    fn reopen(dir: &Path, storage: Storage) -> (Storage, Recovered) {
        drop(storage);
        Storage::open(dir, options(1 << 20)).expect("reopen")
    }

    #[test]
    fn only_a_change_of_commit_index_alone_may_wait_for_the_next_sync() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut storage, _) = Storage::open(dir.path(), options(1 << 20)).expect("open");
        let voted = HardState {
            term: 2,
            vote: Some(1),
            commit: 0,
        };
        assert!(!storage.needs_sync(), "nothing written yet");
        storage.set_hard_state(&voted).expect("hard state");
        assert!(
            storage.needs_sync(),
            "a vote must be durable before it is sent"
        );
        storage.sync().expect("sync");
        assert!(!storage.needs_sync());

        storage.append(&entries(1..=3, 2)).expect("append");
        assert!(
            storage.needs_sync(),
            "entries must be durable before they are acknowledged"
        );
        storage.sync().expect("sync");

        let committed = HardState { commit: 3, ..voted };
        storage.set_hard_state(&committed).expect("hard state");
        assert!(!storage.needs_sync(), "a commit index alone can wait");
        let (_, recovered) = reopen(dir.path(), storage);
        assert_eq!(recovered.entries, entries(1..=3, 2));
        assert_eq!(
            (recovered.hard_state.term, recovered.hard_state.vote),
            (2, Some(1))
        );
    }

    #[test]
    fn hard_state_entries_and_snapshot_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut storage, recovered) =
            Storage::open(dir.path(), StorageOptions::default()).expect("open");
        assert_eq!(recovered, Recovered::default());

        let hard_state = HardState {
            term: 3,
            vote: Some(2),
            commit: 4,
        };
        storage.append(&entries(1..=6, 3)).expect("append");
        storage.set_hard_state(&hard_state).expect("hard state");
        storage.compact(&snapshot(4, 3)).expect("compact");
        storage.append(&entries(7..=8, 3)).expect("append");
        let stats = storage.sync().expect("sync");
        assert!(stats.fsync.is_some() && stats.bytes > 0, "{stats:?}");

        let (_, recovered) = reopen(dir.path(), storage);
        assert_eq!(
            recovered,
            Recovered {
                hard_state,
                snapshot: Some(snapshot(4, 3)),
                entries: entries(5..=8, 3),
            }
        );
    }

    #[test]
    fn a_sync_with_nothing_written_does_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut storage, _) = Storage::open(dir.path(), StorageOptions::default()).expect("open");
        storage.append(&entries(1..=1, 1)).expect("append");
        assert!(storage.sync().expect("sync").fsync.is_some());

        assert_eq!(storage.sync().expect("sync"), SyncStats::default());
        storage
            .set_hard_state(&HardState::default())
            .expect("unchanged hard state");
        assert_eq!(storage.sync().expect("sync"), SyncStats::default());
    }

    #[test]
    fn appending_at_an_earlier_index_replaces_the_suffix() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut storage, _) = Storage::open(dir.path(), options(1 << 20)).expect("open");
        storage.append(&entries(1..=10, 1)).expect("append");
        storage.sync().expect("sync");
        storage.append(&entries(6..=7, 2)).expect("overwrite");
        storage.sync().expect("sync");

        let (mut storage, recovered) = reopen(dir.path(), storage);
        let mut expected = entries(1..=5, 1);
        expected.extend(entries(6..=7, 2));
        assert_eq!(recovered.entries, expected);

        // The replaced suffix stays gone: the next append continues after index 7.
        storage
            .append(&entries(8..=8, 2))
            .expect("append after the new suffix");
        storage.sync().expect("sync");
        let (_, recovered) = reopen(dir.path(), storage);
        assert_eq!(recovered.entries.last(), entries(8..=8, 2).last());
        assert_eq!(recovered.entries.len(), 8);
    }

    #[test]
    fn appends_that_would_break_the_log_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut storage, _) = Storage::open(dir.path(), options(1 << 20)).expect("open");
        storage.append(&entries(1..=3, 1)).expect("append");

        let gap = storage.append(&entries(5..=6, 1)).unwrap_err();
        assert!(matches!(gap, StorageError::InvalidInput { .. }), "{gap}");
        let mut holey = entries(4..=4, 1);
        holey.extend(entries(6..=6, 1));
        let hole = storage.append(&holey).unwrap_err();
        assert!(matches!(hole, StorageError::InvalidInput { .. }), "{hole}");
        let beyond = storage.compact(&snapshot(4, 1)).unwrap_err();
        assert!(
            matches!(beyond, StorageError::InvalidInput { .. }),
            "{beyond}"
        );

        storage.compact(&snapshot(2, 1)).expect("compact");
        let older = storage.install_snapshot(&snapshot(1, 1)).unwrap_err();
        assert!(
            matches!(older, StorageError::InvalidInput { .. }),
            "{older}"
        );

        // Nothing refused reached the log.
        storage.sync().expect("sync");
        let (_, recovered) = reopen(dir.path(), storage);
        assert_eq!(recovered.snapshot, Some(snapshot(2, 1)));
        assert_eq!(recovered.entries, entries(3..=3, 1));
    }

    #[test]
    fn an_installed_snapshot_replaces_the_whole_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut storage, _) = Storage::open(dir.path(), options(1 << 20)).expect("open");
        storage.append(&entries(1..=20, 1)).expect("append");
        storage.sync().expect("sync");

        storage.install_snapshot(&snapshot(10, 2)).expect("install");
        storage
            .append(&entries(11..=12, 2))
            .expect("append after the snapshot");
        storage.sync().expect("sync");

        let (_, recovered) = reopen(dir.path(), storage);
        assert_eq!(recovered.snapshot, Some(snapshot(10, 2)));
        assert_eq!(recovered.entries, entries(11..=12, 2));
    }

    #[test]
    fn compaction_deletes_covered_segments_and_the_old_snapshot_but_keeps_the_hard_state() {
        let dir = tempfile::tempdir().expect("temp dir");
        // Tiny segments: every sync starts a new one.
        let (mut storage, _) = Storage::open(dir.path(), options(1)).expect("open");
        let hard_state = HardState {
            term: 5,
            vote: Some(3),
            commit: 0,
        };
        storage.set_hard_state(&hard_state).expect("hard state");
        for first in (1..=91).step_by(10) {
            storage
                .append(&entries(first..=first + 9, 5))
                .expect("append");
            storage.sync().expect("sync");
        }
        storage.compact(&snapshot(40, 5)).expect("first compaction");
        let segments_before = files_ending_with(dir.path(), ".wal").len();

        storage
            .compact(&snapshot(95, 5))
            .expect("second compaction");

        // Deleted: the segments of 41..=90. Kept: the one holding 91..=100, and everything
        // after it (the two compaction markers' segments and the current one).
        assert_eq!(segments_before, 8);
        assert_eq!(files_ending_with(dir.path(), ".wal").len(), 4);
        assert_eq!(files_ending_with(dir.path(), ".snap").len(), 1);
        let (_, recovered) = reopen(dir.path(), storage);
        assert_eq!(
            recovered,
            Recovered {
                hard_state,
                snapshot: Some(snapshot(95, 5)),
                entries: entries(96..=100, 5),
            }
        );
    }

    #[test]
    fn installing_a_snapshot_deletes_every_older_segment_but_keeps_the_hard_state() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut storage, _) = Storage::open(dir.path(), options(1)).expect("open");
        let hard_state = HardState {
            term: 2,
            vote: Some(1),
            commit: 0,
        };
        storage.set_hard_state(&hard_state).expect("hard state");
        for first in (1..=31).step_by(10) {
            storage
                .append(&entries(first..=first + 9, 1))
                .expect("append");
            storage.sync().expect("sync");
        }

        storage.install_snapshot(&snapshot(25, 2)).expect("install");

        assert_eq!(files_ending_with(dir.path(), ".wal").len(), 1);
        let (_, recovered) = reopen(dir.path(), storage);
        assert_eq!(
            recovered,
            Recovered {
                hard_state,
                snapshot: Some(snapshot(25, 2)),
                entries: Vec::new(),
            }
        );
    }

    #[test]
    fn a_snapshot_file_the_wal_never_named_is_ignored_and_deleted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut storage, _) = Storage::open(dir.path(), options(1 << 20)).expect("open");
        storage.append(&entries(1..=5, 1)).expect("append");
        storage.compact(&snapshot(2, 1)).expect("compact");
        // A crash after writing a newer snapshot but before its WAL record was durable.
        snapshot::write(dir.path(), &snapshot(4, 1), false).expect("write newer snapshot");
        let half_written = dir
            .path()
            .join("snapshot-00000000000000000005-00000000000000000001.snap.tmp");
        std::fs::write(&half_written, b"torn").expect("write temp file");

        let (_, recovered) = reopen(dir.path(), storage);
        assert_eq!(recovered.snapshot, Some(snapshot(2, 1)));
        assert_eq!(recovered.entries, entries(3..=5, 1));
        let snapshot_files: Vec<PathBuf> = files_ending_with(dir.path(), ".snap")
            .into_iter()
            .chain(files_ending_with(dir.path(), ".tmp"))
            .collect();
        assert_eq!(snapshot_files.len(), 1, "{snapshot_files:?}");
    }
}
