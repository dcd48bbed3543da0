//! The partition backend for nodes in network namespaces of their own ([`NodeNetwork`]):
//! cutting the directed link `FROM -> TO` drops, inside TO's namespace, every packet from
//! FROM's address (`iptables -A INPUT -s FROM_IP -j DROP`), as Jepsen does.
//!
//! Unlike `iptables.rs`, the rules name no ports. A node's messages to a peer do not
//! always travel on connections it opened: etcd, for one, streams a leader's messages to a
//! follower over a connection the follower opened. Dropping everything from FROM at TO cuts
//! what FROM says to TO on any connection, whoever opened it. Over TCP that also stalls the
//! connections TO opens to FROM (their answers from FROM are dropped), as it does for Jepsen:
//! a one-way cut of a pair holds for messages, not for connections.
//!
//! The harness's clients connect from the network's host address, which no rule names, so
//! a partition never cuts a client off. Healing flushes `INPUT` in every node's namespace,
//! where nothing else puts rules; the rules die with the namespaces in any case.

use std::collections::BTreeMap;
use std::error::Error;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::iptables::run_as;
use super::{PartitionError, Partitioner};
use crate::grudge::Link;
use crate::netns::NodeNetwork;

/// Cuts links between nodes in namespaces with iptables rules inside the namespaces.
#[derive(Debug)]
pub struct NamespaceRules {
    network: Arc<NodeNetwork>,
    torn_down: AtomicBool,
}

impl NamespaceRules {
    /// A partitioner for the nodes of `network`; it adds no rule until links are cut.
    pub fn new(network: Arc<NodeNetwork>) -> Self {
        NamespaceRules {
            network,
            torn_down: AtomicBool::new(false),
        }
    }

    /// Runs `iptables -w ARGS` in the node's namespace.
    async fn iptables(
        &self,
        node: &str,
        args: &[&str],
    ) -> Result<(), Box<dyn Error + Send + Sync + 'static>> {
        let command = self.network.command(node, "iptables")?;
        run_as(command, args).await?;
        Ok(())
    }
}

impl Partitioner for NamespaceRules {
    /// Adds one rule per receiving node, naming every sender cut off from it.
    async fn cut(&self, links: &[Link]) -> Result<(), PartitionError> {
        let addr = |node: &str| {
            self.network
                .addr(node)
                .ok_or_else(|| PartitionError::UnknownNode(node.to_owned()))
        };
        let mut senders: BTreeMap<&str, Vec<(&str, Ipv4Addr)>> = BTreeMap::new();
        for link in links.iter().filter(|link| link.from != link.to) {
            let from = addr(&link.from)?;
            addr(&link.to)?;
            senders
                .entry(&link.to)
                .or_default()
                .push((&link.from, from));
        }
        for (to, from) in senders {
            let sources: Vec<String> = from.iter().map(|(_, ip)| ip.to_string()).collect();
            let rule = ["-A", "INPUT", "-s", &sources.join(","), "-j", "DROP"];
            self.iptables(to, &rule).await.map_err(|error| {
                let names: Vec<&str> = from.iter().map(|(node, _)| *node).collect();
                PartitionError::Backend {
                    message: format!("could not cut {} -> {to}", names.join(",")),
                    source: error,
                }
            })?;
        }
        Ok(())
    }

    /// Flushes every node's rules, each tried even if one fails.
    async fn heal(&self) -> Result<(), PartitionError> {
        let mut first_error = None;
        for node in self.network.nodes() {
            if let Err(error) = self.iptables(node, &["-F", "INPUT"]).await {
                first_error.get_or_insert(PartitionError::Backend {
                    message: format!("could not flush the rules of {node}"),
                    source: error,
                });
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Heals; the namespaces themselves belong to the [`NodeNetwork`]. Once the network
    /// is torn down there is nothing left to remove.
    async fn teardown(&self) -> Result<(), PartitionError> {
        if self.torn_down.load(Ordering::SeqCst) {
            return Ok(());
        }
        if !self.network.is_torn_down() {
            self.heal().await?;
        }
        self.torn_down.store(true, Ordering::SeqCst);
        Ok(())
    }
}
