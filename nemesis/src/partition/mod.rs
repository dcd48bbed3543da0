//! The partition code: what every partition backend offers, and the
//! backends themselves.
//!
//! - `mod.rs` (this file): the [`Partitioner`] trait (cut directed links,
//!   heal, tear down) and [`PartitionError`], which names no backend;
//! - `iptables.rs`: DROP rules per cut link (needs root);
//! - `proxy.rs`: a TCP proxy per directed link (needs nothing);
//! - `backend.rs`: [`backend::PartitionBackend`], the one a run picks with
//!   `--partition-backend auto|iptables|proxy`.
//!
//! Dependencies point one way: `backend.rs` uses the two backends, which use
//! only this file.

pub(crate) mod backend;
pub(crate) mod iptables;
pub(crate) mod proxy;

use std::error::Error;
use std::future::Future;

use crate::cluster::NodeName;
use crate::grudge::Link;

/// A failure to change the network.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// A link names a node the backend was not given an address for.
    #[error("no peer address is known for node `{0}`")]
    UnknownNode(NodeName),
    /// The backend failed; `message` says at what, `source` why.
    #[error("{message}")]
    Backend {
        /// What the backend was doing, e.g. "could not add the rules of link n1 -> n2".
        message: String,
        /// The backend's own error.
        #[source]
        source: Box<dyn Error + Send + Sync + 'static>,
    },
}

impl PartitionError {
    /// Wraps a backend's own error with what it was doing.
    pub fn backend(
        message: impl Into<String>,
        source: impl Into<Box<dyn Error + Send + Sync + 'static>>,
    ) -> Self {
        PartitionError::Backend {
            message: message.into(),
            source: source.into(),
        }
    }
}

/// Something that can cut and heal directed peer links.
pub trait Partitioner: Send + Sync {
    /// Cuts these links, on top of any already cut. Checks every link's
    /// nodes before cutting any; a link from a node to itself is ignored.
    fn cut(&self, links: &[Link]) -> impl Future<Output = Result<(), PartitionError>> + Send;

    /// Restores every link. Healing a whole network is harmless.
    fn heal(&self) -> impl Future<Output = Result<(), PartitionError>> + Send;

    /// Heals and removes everything the backend installed; the backend is
    /// unusable afterwards. Calling it again does nothing.
    fn teardown(&self) -> impl Future<Output = Result<(), PartitionError>> + Send;
}
