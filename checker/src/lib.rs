//! History formats, and the checkers: linearizability (Wing–Gong–Lowe search with Lowe's
//! memoization, per key and in parallel, within a time budget, with counterexamples), lost
//! writes, and diverging replicas (copies of a list read from different nodes that cannot
//! both be prefixes of one sequence).
//!
//! The history itself ([`History`], its events, and their pairing into [`Operation`]s) is
//! the `faultline-history` crate's; the types this crate's functions take and give are
//! re-exported here, so that a user of the checker needs no second dependency.
//!
//! - Read a history: [`History::from_jsonl`], [`read_history`] (JSON Lines, Jepsen EDN, Jepsen
//!   logs); pair its events into [`Operation`]s with [`operations`].
//! - Check it: [`check()`] (each key against the model its operations call for, then lost
//!   writes: what `faultline check` and `faultline test` both do), [`check_history`] against
//!   one built-in [`ModelKind`], or [`check_operations`]
//!   against any [`stateright::semantics::SequentialSpec`]; [`lost_writes()`] for append and
//!   set workloads; [`divergence()`] for copies of lists read from every node.
//! - Results ([`CheckResult`], [`LostWritesResult`]) serialize to the JSON the report draws.
//! - Write a history out: [`export_history`] (JSON Lines, or Jepsen EDN for Knossos and Jepsen).

pub mod budget;
pub mod check;
pub mod counterexample;
pub mod divergence;
mod error;
pub mod export;
pub mod generate;
pub mod import;
pub mod linearizability;
pub mod lost_writes;
pub mod model;
pub mod verdict;
pub mod wgl;

pub use budget::{Budget, Stop};
pub use check::{HistoryCheck, NO_OPERATIONS, check};
pub use counterexample::{Counterexample, Observable, Rejection};
pub use divergence::{Divergence, DivergenceResult, ListCopy, divergence};
pub use error::Error;
pub use export::{ExportFormat, export_history};
pub use faultline_history::{
    CAS_MISMATCH, Event, EventType, History, Location, Name, Operation, Outcome, Process,
    operations,
};
pub use import::{Format, read_history};
pub use linearizability::{
    CheckOptions, CheckResult, KeyResult, Partition, PartitionOutcome, check_history,
    check_operations,
};
pub use lost_writes::{Element, KeyLostWrites, LostWritesResult, lost_writes};
pub use model::ModelKind;
pub use verdict::{ERROR_EXIT_CODE, Verdict};
pub use wgl::{Completion, ModelOperation, SearchResult, Stuck};
