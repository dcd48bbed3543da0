//! Slowing and dropping traffic between nodes on hosts of their own: a TCP proxy per directed
//! link on the sender's host (the links of `proxy.rs`, started there by
//! [`super::proxy::ProxyNetwork::start_from`]), which the caller runs and reaches (the harness:
//! its own binary, over SSH). A node dials the proxy on its own host, which connects to the
//! receiver from the host's address, so the rules of `host_rules.rs` still cut each link.
//! The proxies only delay and drop: cutting stays with the rules.

use std::fmt::Debug;
use std::net::SocketAddr;

use futures::future::BoxFuture;

use super::Degradation;
use super::host_rules::FirewallError;
use crate::grudge::Link;

/// The proxies of the links between nodes on hosts of their own, as the caller runs them.
/// Object-safe, so the harness can hand in any runner.
pub trait HostLinks: Send + Sync + Debug {
    /// The address `from` dials to reach `to`: the proxy of the link on `from`'s host.
    /// `None` for unknown nodes or `from == to`.
    fn dial_addr(&self, from: &str, to: &str) -> Option<SocketAddr>;

    /// Degrades these links (none from a node to itself) as `how` says, each on its sender's
    /// host, replacing any degradation they had.
    fn degrade<'a>(
        &'a self,
        links: &'a [Link],
        how: &'a Degradation,
    ) -> BoxFuture<'a, Result<(), FirewallError>>;

    /// Ends every degradation, on every host.
    fn heal(&self) -> BoxFuture<'_, Result<(), FirewallError>>;

    /// Stops the proxies: the links are cut for good.
    fn teardown(&self) -> BoxFuture<'_, Result<(), FirewallError>>;
}
