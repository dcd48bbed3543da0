//! Partition backends behind one trait: cut directed links, heal them all,
//! tear down.

use std::future::Future;

use crate::cluster::NodeName;
use crate::grudge::Link;
use crate::iptables::IptablesError;

/// A failure to change the network.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// A link names a node the backend was not given an address for.
    #[error("no peer address is known for node `{0}`")]
    UnknownNode(NodeName),
    /// An iptables command failed.
    #[error(transparent)]
    Iptables(#[from] IptablesError),
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
