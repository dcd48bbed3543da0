//! Peer RPC over HTTP: `POST /raft` with a batch of Raft messages in the [`wire`] format.
//!
//! One sender task per peer ([`send`]) keeps a keep-alive connection, made from this node's
//! own IP so that a firewall rule on (source, destination) cuts exactly one link, and sends
//! everything queued for that peer in one request. The receiver ([`receive`]) checks who is
//! talking ([`crate::peer_auth`]), hands the batch to the Raft loop and answers at once:
//! replies to Raft messages travel as new messages the other way, so a request never waits on
//! Raft, and one request in flight per peer is enough.
//!
//! Request bodies are bounded by kind: ordinary batches (AppendEntries, votes, heartbeats and
//! their answers) by [`wire::message_body_limit`], read into memory, at most two at a time
//! per sender; a snapshot, or a message too large for an ordinary batch, goes alone to
//! `POST /raft/large` in [`chunk`]s of a few MiB, bounded in all by `--max-snapshot-mib`, one
//! chunk at a time, appended to a spool file in the data dir as it arrives rather than held in
//! memory.
//!
//! A request must be answered within a short timeout (a paused or partitioned peer must not
//! hold up its messages), except a large one's chunks: those may take long to send, so they get
//! a timeout of their own.

pub mod chunk;
pub mod receive;
pub mod send;
pub mod wire;

use std::collections::HashMap;
use std::sync::RwLock;

use crate::raft::NodeId;

pub use receive::{ReceiverSettings, router};
pub use send::{PeerLink, SenderSettings, spawn_senders};

/// The path of ordinary batches.
pub const RAFT_PATH: &str = "/raft";
/// The path of snapshots and of messages too large for an ordinary batch.
pub const LARGE_PATH: &str = "/raft/large";
/// Carries the sender's client address, so followers can redirect clients to the leader.
const CLIENT_ADDR_HEADER: &str = "faultline-client-addr";

/// The client address of every member this node has heard from (and its own).
#[derive(Debug, Default)]
pub struct PeerDirectory {
    client_addrs: RwLock<HashMap<NodeId, String>>,
}

impl PeerDirectory {
    /// A directory that knows this node's own client address (as clients should use it).
    pub fn new(own: NodeId, client_addr: String) -> PeerDirectory {
        let directory = PeerDirectory::default();
        directory.learn(own, client_addr);
        directory
    }

    /// The client address of `id`, if known.
    pub fn client_addr(&self, id: NodeId) -> Option<String> {
        self.client_addrs
            .read()
            .expect("never poisoned")
            .get(&id)
            .cloned()
    }

    fn learn(&self, id: NodeId, addr: String) {
        let known = self.client_addrs.read().expect("never poisoned").get(&id) == Some(&addr);
        if !known {
            self.client_addrs
                .write()
                .expect("never poisoned")
                .insert(id, addr);
        }
    }
}
