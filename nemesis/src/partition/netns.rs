//! The partition backend for nodes in network namespaces of their own ([`NodeNetwork`]):
//! the rules of `host_rules.rs`, with each node's namespace as its host. Cutting the
//! directed link `FROM -> TO` drops, inside TO's namespace, every packet from FROM's
//! address, as Jepsen does (see `host_rules.rs` for why the rules name no ports).
//!
//! The harness's clients connect from the network's host address, which no rule names, so
//! a partition never cuts a client off. The rules die with the namespaces in any case: once
//! the network is torn down, teardown has nothing left to remove.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::host_rules::{FirewallError, HostFirewall, HostRules};
use super::iptables::run_as;
use super::{PartitionError, Partitioner};
use crate::grudge::Link;
use crate::netns::NodeNetwork;

/// Cuts links between nodes in namespaces with iptables rules inside the namespaces.
#[derive(Debug)]
pub struct NamespaceRules {
    network: Arc<NodeNetwork>,
    rules: HostRules,
}

impl NamespaceRules {
    /// A partitioner for the nodes of `network`; it adds no rule until links are cut.
    pub fn new(network: Arc<NodeNetwork>) -> Self {
        let addrs: BTreeMap<_, _> = network
            .nodes()
            .filter_map(|node| Some((node.to_owned(), network.addr(node)?)))
            .collect();
        let firewall = Arc::new(InNamespaces(network.clone()));
        NamespaceRules {
            network,
            rules: HostRules::new(firewall, addrs),
        }
    }
}

/// Runs iptables inside a node's namespace: the host of a node, as far as its firewall goes.
#[derive(Debug)]
struct InNamespaces(Arc<NodeNetwork>);

impl HostFirewall for InNamespaces {
    /// Runs `iptables -w ARGS` in the node's namespace.
    fn iptables<'a>(
        &'a self,
        node: &'a str,
        args: &'a [String],
    ) -> BoxFuture<'a, Result<String, FirewallError>> {
        Box::pin(async move {
            let command = self.0.command(node, "iptables")?;
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Ok(run_as(command, &args).await?)
        })
    }
}

impl Partitioner for NamespaceRules {
    /// Adds one rule per receiving node, naming every sender cut off from it.
    async fn cut(&self, links: &[Link]) -> Result<(), PartitionError> {
        self.rules.cut(links).await
    }

    /// Flushes the rules in every namespace that has some, each tried even if one fails.
    async fn heal(&self) -> Result<(), PartitionError> {
        self.rules.heal().await
    }

    /// Removes the rules' chains; the namespaces themselves belong to the [`NodeNetwork`].
    /// Once the network is torn down there is nothing left to remove.
    async fn teardown(&self) -> Result<(), PartitionError> {
        if self.network.is_torn_down() {
            self.rules.forget().await;
            return Ok(());
        }
        self.rules.teardown().await
    }
}
