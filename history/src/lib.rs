//! Faultline's histories: the events a run records, the JSON Lines file that holds them, and
//! their pairing into operations.
//!
//! Every other crate of the workspace builds on this one and it on none of them, so that the
//! clients can record histories without building the checker.
//!
//! - Events and histories: [`Event`], [`History`] ([`History::from_jsonl`],
//!   [`History::write_jsonl`]); errors say where ([`Location`]).
//! - Operations: [`operations`] pairs invocations with completions as the checker reads them
//!   (Knossos's semantics: a plain `fail` is removed, `info` is indeterminate).
//! - [`ModelKind`]: the names of the checker's models, and which one operations call for.

mod error;
mod history;
mod location;
mod model;
mod operation;

pub use error::Error;
pub use history::{Event, EventType, History, Process};
pub use location::Location;
pub use model::ModelKind;
pub use operation::{CAS_MISMATCH, Operation, Outcome, operations};
