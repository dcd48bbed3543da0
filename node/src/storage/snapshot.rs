//! Snapshot files: `snapshot-<index>-<term>.snap`, each holding one record (framed as in
//! [`super::record`], so checksummed) with the whole `Snapshot`.
//!
//! A snapshot is written to a `.tmp` file, fsynced, renamed into place and the directory
//! fsynced, so a snapshot file is either complete or absent. The WAL, not the directory
//! listing, says which snapshot is current: a file is used only once a WAL record names it,
//! and every other snapshot file (older ones, one whose WAL record never became durable,
//! unfinished temp files) is deleted.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tracing::debug;

use crate::raft::{Snapshot, SnapshotMeta};

use super::StorageError;
use super::files::{io_error, remove_file, sync_dir, sync_file};
use super::record::{self, RecordKind};

/// A snapshot as builds before membership changes wrote it; its configuration was the
/// initial voters, which `membership: None` stands for.
#[derive(serde::Deserialize)]
struct LegacySnapshot {
    meta: SnapshotMeta,
    data: bytes::Bytes,
}

impl From<LegacySnapshot> for Snapshot {
    fn from(legacy: LegacySnapshot) -> Snapshot {
        Snapshot {
            meta: legacy.meta,
            membership: None,
            data: legacy.data,
        }
    }
}

const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".snap";
const TEMP_SUFFIX: &str = ".tmp";

/// Writes `snapshot` to its file atomically; when `fsync` is on it is durable on return.
pub(crate) fn write(dir: &Path, snapshot: &Snapshot, fsync: bool) -> Result<(), StorageError> {
    let mut contents = Vec::with_capacity(snapshot.data.len() + 64);
    record::encode(&mut contents, RecordKind::SnapshotFile, snapshot)?;
    let path = path(dir, snapshot.meta);
    let mut temp = path.clone().into_os_string();
    temp.push(TEMP_SUFFIX);
    let temp = PathBuf::from(temp);

    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&temp)
        .map_err(io_error("create", &temp))?;
    file.write_all(&contents)
        .map_err(io_error("write", &temp))?;
    if fsync {
        sync_file(&file, &temp)?;
    }
    fs::rename(&temp, &path).map_err(io_error("rename", &temp))?;
    if fsync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Reads and verifies the snapshot `meta` that the WAL names.
pub(crate) fn read(dir: &Path, meta: SnapshotMeta) -> Result<Snapshot, StorageError> {
    let path = path(dir, meta);
    let corrupt = |offset: usize, reason: String| StorageError::Corrupt {
        path: path.clone(),
        offset: offset as u64,
        reason,
    };
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(corrupt(
                0,
                "the WAL names this snapshot but the file is missing".to_string(),
            ));
        }
        Err(error) => return Err(io_error("read", &path)(error)),
    };
    let frame = record::decode(&bytes).map_err(|invalid| corrupt(0, invalid.to_string()))?;
    if !matches!(
        frame.kind,
        RecordKind::SnapshotFile | RecordKind::LegacySnapshotFile
    ) {
        return Err(corrupt(
            0,
            format!("it holds {} instead of a snapshot", frame.kind.describe()),
        ));
    }
    if frame.len != bytes.len() {
        return Err(corrupt(
            frame.len,
            format!(
                "{} unexpected bytes follow the snapshot",
                bytes.len() - frame.len
            ),
        ));
    }
    let decoded = match frame.kind {
        RecordKind::LegacySnapshotFile => {
            postcard::from_bytes::<LegacySnapshot>(frame.payload).map(Snapshot::from)
        }
        _ => postcard::from_bytes::<Snapshot>(frame.payload),
    };
    let snapshot =
        decoded.map_err(|error| corrupt(0, format!("cannot decode the snapshot: {error}")))?;
    if snapshot.meta != meta {
        return Err(corrupt(
            0,
            format!(
                "it holds the snapshot at index {} (term {}), not the one its name says",
                snapshot.meta.index, snapshot.meta.term
            ),
        ));
    }
    Ok(snapshot)
}

/// Deletes every snapshot file and unfinished temp file in `dir` except the one for `keep`.
pub(crate) fn remove_all_except(
    dir: &Path,
    keep: Option<SnapshotMeta>,
) -> Result<(), StorageError> {
    let keep = keep.map(|meta| path(dir, meta));
    for dir_entry in fs::read_dir(dir).map_err(io_error("list", dir))? {
        let path = dir_entry.map_err(io_error("list", dir))?.path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        let is_snapshot_file =
            name.starts_with(PREFIX) && (name.ends_with(SUFFIX) || name.ends_with(TEMP_SUFFIX));
        if is_snapshot_file && Some(&path) != keep.as_ref() {
            remove_file(&path)?;
            debug!(file = %path.display(), "deleted a snapshot file that is not the current one");
        }
    }
    Ok(())
}

fn path(dir: &Path, meta: SnapshotMeta) -> PathBuf {
    dir.join(format!(
        "{PREFIX}{:020}-{:020}{SUFFIX}",
        meta.index, meta.term
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_support::{files_ending_with, snapshot};

    #[test]
    fn a_written_snapshot_reads_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let original = snapshot(42, 7);
        write(dir.path(), &original, true).expect("write");

        assert_eq!(read(dir.path(), original.meta).expect("read"), original);
        assert!(files_ending_with(dir.path(), TEMP_SUFFIX).is_empty());
    }

    #[test]
    fn a_snapshot_keeps_its_configuration_and_an_earlier_builds_reads_as_the_initial_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let original = Snapshot {
            membership: Some(crate::raft::Membership::of_voters([1, 2, 5])),
            ..snapshot(42, 7)
        };
        write(dir.path(), &original, true).expect("write");
        assert_eq!(read(dir.path(), original.meta).expect("read"), original);

        // An earlier build's file: the record kind 5, and no configuration.
        #[derive(serde::Serialize)]
        struct Earlier<'a> {
            meta: SnapshotMeta,
            data: &'a [u8],
        }
        let earlier = snapshot(50, 8);
        let mut contents = Vec::new();
        let body = Earlier {
            meta: earlier.meta,
            data: &earlier.data,
        };
        record::encode(&mut contents, RecordKind::LegacySnapshotFile, &body).unwrap();
        fs::write(path(dir.path(), earlier.meta), contents).unwrap();
        assert_eq!(read(dir.path(), earlier.meta).expect("read"), earlier);
    }

    #[test]
    fn only_the_named_snapshot_and_no_temp_file_is_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let older = snapshot(10, 1);
        let current = snapshot(20, 2);
        write(dir.path(), &older, false).expect("write older");
        write(dir.path(), &current, false).expect("write current");
        let leftover = dir
            .path()
            .join("snapshot-00000000000000000030-00000000000000000002.snap.tmp");
        fs::write(&leftover, b"half a snapshot").expect("write leftover");

        remove_all_except(dir.path(), Some(current.meta)).expect("clean up");

        assert_eq!(
            files_ending_with(dir.path(), ""),
            vec![path(dir.path(), current.meta)]
        );
        assert_eq!(read(dir.path(), current.meta).expect("read"), current);
    }

    #[test]
    fn a_damaged_snapshot_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let original = snapshot(42, 7);
        write(dir.path(), &original, false).expect("write");
        let file = path(dir.path(), original.meta);
        let mut bytes = fs::read(&file).expect("read back");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x04;
        fs::write(&file, bytes).expect("damage");

        let error = read(dir.path(), original.meta).unwrap_err();
        assert!(
            matches!(&error, StorageError::Corrupt { path, offset: 0, .. } if *path == file),
            "{error}"
        );
        assert!(error.to_string().contains("checksum"), "{error}");
    }

    #[test]
    fn a_missing_or_misnamed_snapshot_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let wanted = SnapshotMeta { index: 5, term: 1 };
        let missing = read(dir.path(), wanted).unwrap_err();
        assert!(missing.to_string().contains("missing"), "{missing}");

        let other = snapshot(6, 1);
        write(dir.path(), &other, false).expect("write");
        fs::rename(path(dir.path(), other.meta), path(dir.path(), wanted)).expect("rename");
        let misnamed = read(dir.path(), wanted).unwrap_err();
        assert!(
            misnamed.to_string().contains("not the one its name says"),
            "{misnamed}"
        );
    }
}
