//! Builders shared by the WAL's unit tests.

use std::fs;
use std::path::{Path, PathBuf};

use super::SEGMENT_SUFFIX;
use crate::raft::Entry;
use crate::storage::record;
use crate::storage::test_support::{entries, files_ending_with};
use crate::storage::{Storage, StorageOptions};

/// No preallocation: these tests find record offsets from file lengths.
pub(super) fn options(segment_bytes: u64) -> StorageOptions {
    StorageOptions {
        fsync: false,
        segment_bytes,
        preallocate_bytes: 0,
    }
}

/// The three entries of batch `number` (from 0).
pub(super) fn batch(number: u64) -> Vec<Entry> {
    entries(number * 3 + 1..=number * 3 + 3, 1)
}

/// Fills `dir` with `count` batches, one sync each, and returns where each batch's record
/// starts: its segment and byte offset.
pub(super) fn write_batches(dir: &Path, count: u64, segment_bytes: u64) -> Vec<(PathBuf, usize)> {
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

/// Where each record of `bytes` starts, and where the last one ends.
pub(super) fn record_bounds(bytes: &[u8]) -> (Vec<usize>, usize) {
    let mut starts = Vec::new();
    let mut offset = 0;
    while let Ok(frame) = record::decode(&bytes[offset..]) {
        starts.push(offset);
        offset += frame.len;
    }
    (starts, offset)
}

pub(super) fn preallocating(segment_bytes: u64) -> StorageOptions {
    StorageOptions {
        preallocate_bytes: 4096,
        ..options(segment_bytes)
    }
}
