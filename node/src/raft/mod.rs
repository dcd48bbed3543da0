//! The Raft consensus core: a deterministic state machine with no I/O, no clock and no async.

pub mod types;

pub use types::*;
