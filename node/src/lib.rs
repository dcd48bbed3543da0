//! `faultline-node`: a Raft key-value store, the system under test that Faultline ships.
//!
//! The crate is a pure Raft core ([`raft`]) inside an I/O shell: durable storage
//! ([`storage`]), peer transport, the key-value state machine and the client HTTP API.

pub mod raft;
pub mod storage;
