//! A quick measurement, not a pass/fail check of speed: how many `append` + `sync` batches of
//! ten 100-byte entries per second the storage sustains with fsync on, and what each fsync
//! costs. Run it explicitly, in release mode:
//!
//! ```text
//! cargo test --release -p faultline-node --test storage_throughput -- --ignored --nocapture
//! ```
//!
//! The data dir is under Cargo's target dir, on the same disk as the build (not a tmpfs).

use std::time::{Duration, Instant};

use bytes::Bytes;
use faultline_node::raft::{Entry, Payload};
use faultline_node::storage::{Storage, StorageOptions};

const ENTRIES_PER_BATCH: u64 = 10;
const PAYLOAD_BYTES: usize = 100;
const RUN_FOR: Duration = Duration::from_secs(3);

#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn append_and_sync_throughput_with_fsync_on() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let (mut storage, _) = Storage::open(dir.path(), StorageOptions::default()).expect("open");
    let payload = Bytes::from(vec![b'v'; PAYLOAD_BYTES]);
    let mut batch: Vec<Entry> = Vec::with_capacity(ENTRIES_PER_BATCH as usize);
    let mut fsync_times = Vec::new();
    let mut next_index = 1;

    let started = Instant::now();
    while started.elapsed() < RUN_FOR {
        batch.clear();
        batch.extend(
            (next_index..next_index + ENTRIES_PER_BATCH).map(|index| Entry {
                term: 1,
                index,
                payload: Payload::Command(payload.clone()),
            }),
        );
        next_index += ENTRIES_PER_BATCH;
        storage.append(&batch).expect("append");
        let stats = storage.sync().expect("sync");
        fsync_times.push(stats.fsync.expect("fsync is on"));
    }
    let elapsed = started.elapsed();

    // The figures only count if everything written comes back.
    drop(storage);
    let (_, recovered) = Storage::open(dir.path(), StorageOptions::default()).expect("reopen");
    assert_eq!(recovered.entries.len() as u64, next_index - 1);

    fsync_times.sort();
    let batches = fsync_times.len();
    let percentile = |p: usize| fsync_times[(batches * p / 100).min(batches - 1)];
    let seconds = elapsed.as_secs_f64();
    println!(
        "{batches} batches of {ENTRIES_PER_BATCH} x {PAYLOAD_BYTES}-byte entries in {seconds:.2} s: \
         {:.0} batches/s, {:.0} entries/s; fsync p50 {:?}, p99 {:?}",
        batches as f64 / seconds,
        (batches as u64 * ENTRIES_PER_BATCH) as f64 / seconds,
        percentile(50),
        percentile(99),
    );
}
