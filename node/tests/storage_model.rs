//! Model-based test of `Storage`: random sequences of appends (some overwriting the log's
//! tail, some overlapping the snapshot), hard-state changes, syncs, compactions, snapshot
//! installations and crashes, checked against a plain in-memory model of what recovery may
//! return.
//!
//! A crash here is dropping the `Storage` without a final `sync` and reopening the dir. What
//! was synced must come back exactly. Records written since the last sync may or may not
//! have reached the file, but only in order, so recovery may return the synced state with
//! any prefix of the later writes applied, and nothing else.
//!
//! The operations keep what Raft keeps: a hard state never commits past the end of the log,
//! and nothing at or below the commit index is overwritten or replaced by a snapshot.
//! Recovery refuses a log that ends before its commit index (that is lost data).

use std::path::Path;

use bytes::Bytes;
use faultline_node::raft::{Entry, HardState, Index, Payload, Snapshot, SnapshotMeta, Term};
use faultline_node::storage::{Recovered, Storage, StorageOptions};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// Append `len` entries of `term`, starting `back` entries before the end of the log.
    Append {
        back: u64,
        len: u64,
        term: Term,
    },
    SetHardState(HardState),
    Sync,
    /// Compact at `back` entries before the end of the log (never below the snapshot).
    Compact {
        back: u64,
    },
    /// Install a leader's snapshot `ahead` entries past the end of the log (negative:
    /// before it; never below the current snapshot).
    InstallSnapshot {
        ahead: i64,
        term: Term,
    },
    /// Drop the storage without syncing, then reopen it.
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4u64, 1..5u64, 1..4u64).prop_map(|(back, len, term)| Op::Append { back, len, term }),
        2 => (0..4u64, proptest::option::of(1..4u64), 0..20u64)
            .prop_map(|(term, vote, commit)| Op::SetHardState(HardState { term, vote, commit })),
        3 => Just(Op::Sync),
        1 => (0..6u64).prop_map(|back| Op::Compact { back }),
        1 => (-3..6i64, 1..4u64).prop_map(|(ahead, term)| Op::InstallSnapshot { ahead, term }),
        2 => Just(Op::Crash),
    ]
}

/// What the storage holds, in the model's terms: synced state plus the writes since.
#[derive(Default)]
struct Model {
    /// What the last sync made durable.
    synced: Recovered,
    /// The state after each record written since the last sync, oldest first.
    unsynced: Vec<Recovered>,
}

impl Model {
    fn current(&self) -> &Recovered {
        self.unsynced.last().unwrap_or(&self.synced)
    }

    fn write(&mut self, next: Recovered) {
        self.unsynced.push(next);
    }

    fn sync(&mut self) {
        if let Some(latest) = self.unsynced.pop() {
            self.synced = latest;
        }
        self.unsynced.clear();
    }

    /// Adopts what recovery returned, if a crash could have left it.
    fn crash(&mut self, recovered: Recovered) -> Result<(), TestCaseError> {
        let allowed = std::iter::once(&self.synced).chain(&self.unsynced);
        prop_assert!(
            allowed.clone().any(|state| *state == recovered),
            "recovered {recovered:?}\nbut a crash can only leave one of {:?}",
            allowed.collect::<Vec<_>>()
        );
        self.synced = recovered;
        self.unsynced.clear();
        Ok(())
    }
}

fn snapshot_index(state: &Recovered) -> Index {
    state
        .snapshot
        .as_ref()
        .map_or(0, |snapshot| snapshot.meta.index)
}

fn last_index(state: &Recovered) -> Index {
    state
        .entries
        .last()
        .map_or(snapshot_index(state), |entry| entry.index)
}

fn term_at(state: &Recovered, index: Index) -> Term {
    match state.entries.iter().find(|entry| entry.index == index) {
        Some(entry) => entry.term,
        None => state
            .snapshot
            .as_ref()
            .map_or(0, |snapshot| snapshot.meta.term),
    }
}

fn entry(index: Index, term: Term) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Command(Bytes::from(format!("set k{index} term {term}"))),
    }
}

fn snapshot(index: Index, term: Term, how: &str) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta { index, term },
        membership: None,
        data: Bytes::from(format!("{how} at {index}")),
    }
}

fn count_files(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .expect("data dir is readable")
        .filter(|entry| {
            let entry = entry.as_ref().expect("dir entry");
            entry.file_name().to_string_lossy().ends_with(suffix)
        })
        .count()
}

/// Runs `ops` against a fresh storage and the model, checking every recovery.
fn run(ops: &[Op], segment_bytes: u64, preallocate_bytes: u64) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = StorageOptions {
        fsync: false,
        segment_bytes,
        preallocate_bytes,
    };
    let (mut storage, recovered) = Storage::open(dir.path(), options).expect("open");
    prop_assert_eq!(recovered, Recovered::default());
    let mut model = Model::default();

    for op in ops {
        let current = model.current().clone();
        match *op {
            Op::Append { back, len, term } => {
                let first = (last_index(&current) + 1)
                    .saturating_sub(back)
                    .max(current.hard_state.commit + 1);
                let batch: Vec<Entry> = (first..first + len)
                    .map(|index| entry(index, term))
                    .collect();
                storage.append(&batch).expect("append");

                let kept: Vec<Entry> = batch
                    .into_iter()
                    .filter(|entry| entry.index > snapshot_index(&current))
                    .collect();
                if let Some(first_kept) = kept.first() {
                    let mut next = current;
                    next.entries.retain(|entry| entry.index < first_kept.index);
                    next.entries.extend(kept);
                    model.write(next);
                }
            }
            Op::SetHardState(hard_state) => {
                let hard_state = HardState {
                    commit: hard_state.commit.min(last_index(&current)),
                    ..hard_state
                };
                storage.set_hard_state(&hard_state).expect("set hard state");
                if hard_state != current.hard_state {
                    model.write(Recovered {
                        hard_state,
                        ..current
                    });
                }
            }
            Op::Sync => {
                storage.sync().expect("sync");
                model.sync();
            }
            Op::Compact { back } => {
                let last = last_index(&current);
                if last == 0 {
                    continue;
                }
                let index = last.saturating_sub(back).max(snapshot_index(&current));
                let taken = snapshot(index, term_at(&current, index), "compacted");
                storage.compact(&taken).expect("compact");

                let mut next = current;
                next.entries.retain(|entry| entry.index > index);
                next.snapshot = Some(taken);
                model.write(next);
                model.sync();
                prop_assert_eq!(
                    count_files(dir.path(), ".snap"),
                    1,
                    "one snapshot file after compact"
                );
            }
            Op::InstallSnapshot { ahead, term } => {
                let index = last_index(&current)
                    .saturating_add_signed(ahead)
                    .max(snapshot_index(&current))
                    .max(current.hard_state.commit);
                let installed = snapshot(index, term, "installed");
                storage
                    .install_snapshot(&installed)
                    .expect("install snapshot");

                model.write(Recovered {
                    hard_state: current.hard_state,
                    snapshot: Some(installed),
                    entries: Vec::new(),
                });
                model.sync();
                prop_assert_eq!(
                    count_files(dir.path(), ".snap"),
                    1,
                    "one snapshot file after install"
                );
            }
            Op::Crash => {
                drop(storage);
                let recovered;
                (storage, recovered) =
                    Storage::open(dir.path(), options).expect("reopen after a crash");
                model.crash(recovered)?;
            }
        }
    }

    storage.sync().expect("final sync");
    model.sync();
    drop(storage);
    let (_, recovered) = Storage::open(dir.path(), options).expect("final reopen");
    prop_assert_eq!(&recovered, &model.synced);
    prop_assert_eq!(
        count_files(dir.path(), ".tmp"),
        0,
        "no temp file is left behind"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn recovery_returns_exactly_what_the_model_allows(
        ops in proptest::collection::vec(op(), 1..60),
        segment_bytes in prop_oneof![Just(1u64), 64..1024u64, Just(64 * 1024 * 1024)],
        preallocate_bytes in prop_oneof![Just(0u64), 1..512u64, Just(1024 * 1024)],
    ) {
        run(&ops, segment_bytes, preallocate_bytes)?;
    }
}
