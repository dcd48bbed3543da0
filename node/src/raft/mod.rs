//! The Raft consensus core: a deterministic state machine with no I/O, no clock and no
//! async, in the shape of etcd's `raft` and TiKV's `raft-rs`.
//!
//! The shell feeds it ticks ([`Raft::tick`]), peer messages ([`Raft::step`]), proposals
//! ([`Raft::propose`]) and reads ([`Raft::read_index`]), then drains its output:
//!
//! ```text
//! while raft.has_ready() {
//!     let mut rd = raft.ready();
//!     send rd.take_unpersisted_sends()      (a leader's replication, thesis §10.2.1)
//!     apply rd.take_durable_committed()     (made durable by earlier Readies)
//!     note rd.read_states: answer each once applied >= its index
//!     persist rd.snapshot, rd.entries, rd.hard_state; fsync
//!     send rd.messages                      (votes and acknowledgements)
//!     apply rd.committed_entries
//!     raft.advance();
//! }
//! ```
//!
//! Files: `node.rs` (the node, term rules, roles, API), `election.rs`, `leader.rs` and
//! `follower.rs` (the two sides of replication), `transfer.rs` (leadership transfer, thesis
//! §3.10), `reconfiguration.rs` (membership changes, thesis §4.3), `progress.rs` (per-follower flow control), `read_index.rs`, `log.rs`,
//! `membership.rs` (configurations and their quorums, joint consensus), `ready.rs`, `config.rs`, `error.rs`, `types.rs` (wire and storage data). Test-only:
//! `testing.rs` (helpers), `arbitrary_messages.rs` (robustness).

#[cfg(test)]
mod arbitrary_messages;
mod config;
mod election;
mod error;
mod follower;
mod leader;
mod log;
mod membership;
mod node;
mod progress;
mod read_index;
mod ready;
mod reconfiguration;
#[cfg(test)]
pub(crate) mod testing;
mod transfer;
pub mod types;

pub use config::{Config, ReadMode};
pub use error::{NotLeader, ProposeError, RaftError, TransferError};
pub use membership::{Membership, MembershipChange, MembershipError};
pub use node::{Raft, Role, Status};
pub use ready::{ReadState, Ready, ReadyShell, SoftState, Step};
pub use types::*;
