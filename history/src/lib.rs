//! Faultline's histories: the events a run records, the JSON Lines file that holds them, the
//! pairing of each invocation with its completion, and what the pairs add up to.
//!
//! Every other crate of the workspace builds on this one and it on none of them: the clients
//! record histories without the checker, and the checker, the summary and the report read
//! them through one pairing.
//!
//! - Events and histories: [`Event`], [`History`] ([`History::read_jsonl`],
//!   [`History::from_jsonl`], [`History::write_jsonl`]); errors say where ([`Location`]).
//!   Reading is streamed, bounded ([`MAX_LINE_BYTES`], [`MAX_DEPTH`]) and refuses indexes
//!   that do not increase; the names ([`Name`]) and small values that events repeat are
//!   shared, so that a history of millions of events stays small.
//! - Pairing: [`pair`] pairs every client invocation with its completion and names each break
//!   of the rules ([`Problem`]); [`operations`] reads the pairs as the checker does (Knossos's
//!   semantics: a plain `fail` is removed, `info` is indeterminate).
//! - [`Summary::of`]: operations by function and outcome, error reasons, throughput, latency.
//! - [`ModelKind`]: the names of the checker's models, and which one operations call for.

mod error;
mod history;
mod interner;
mod jsonl;
mod lines;
mod location;
mod model;
mod name;
mod operation;
mod pairing;
mod summary;

pub use error::Error;
pub use history::{Event, EventType, History, Process};
pub use jsonl::{MAX_DEPTH, MAX_LINE_BYTES, ReadError, describe_bytes};
pub use location::Location;
pub use model::ModelKind;
pub use name::Name;
pub use operation::{CAS_MISMATCH, Operation, Outcome, operations};
pub use pairing::{End, Pair, Pairing, Problem, pair};
pub use summary::{Latency, Summary, TypeCounts};
