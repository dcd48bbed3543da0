//! What a node answers on `GET /status`: the cluster asks every node for it, the status
//! poller logs it and watches leaders for stalls, the replica sampler waits on it. A type of
//! its own, so that what reads a status need not depend on the processes it came from.

use serde::{Deserialize, Serialize};

use crate::fingerprints::Checkpoint;

/// What a node answers on `GET /status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub id: String,
    pub role: String,
    pub term: u64,
    pub leader: Option<String>,
    pub commit: u64,
    pub applied: u64,
    pub last_log_index: u64,
    pub snapshot_index: u64,
    /// Fingerprints of the applied state at some indexes, if the system publishes them.
    #[serde(default)]
    pub fingerprints: Vec<Checkpoint>,
}
