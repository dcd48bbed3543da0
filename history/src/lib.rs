//! Faultline's histories: the events a run records, the JSON Lines file that holds them, the
//! pairing of each invocation with its completion, and what the pairs add up to.
//!
//! Every other crate of the workspace builds on this one and it on none of them: the clients
//! record histories without the checker, and the checker, the summary and the report read
//! them through one pairing.
//!
//! - Events and histories: [`Event`], [`History`] ([`History::from_jsonl`],
//!   [`History::write_jsonl`]); errors say where ([`Location`]). Reading is bounded
//!   ([`MAX_LINE_BYTES`], [`MAX_DEPTH`]) and refuses indexes that do not increase.
//! - Pairing: [`pair`] pairs every client invocation with its completion and names each break
//!   of the rules ([`Problem`]); [`operations`] reads the pairs as the checker does (Knossos's
//!   semantics: a plain `fail` is removed, `info` is indeterminate).
//! - [`Summary::of`]: operations by function and outcome, error reasons, throughput, latency.
//! - [`ModelKind`]: the names of the checker's models, and which one operations call for.

mod error;
mod history;
mod location;
mod model;
mod operation;
mod pairing;
mod summary;

pub use error::Error;
pub use history::{Event, EventType, History, MAX_DEPTH, MAX_LINE_BYTES, Process, describe_bytes};
pub use location::Location;
pub use model::ModelKind;
pub use operation::{CAS_MISMATCH, Operation, Outcome, operations};
pub use pairing::{End, Pair, Pairing, Problem, pair};
pub use summary::{Latency, Summary, TypeCounts};
