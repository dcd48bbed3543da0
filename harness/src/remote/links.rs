//! Slow and lossy links between hosts (`--hosts` with `slow` or `lossy`), driven from here:
//! the harness's own binary, copied to each host, runs `faultline link-serve` there over a
//! conversation on the host's connection (`link_server.rs` is the other side), proxying that
//! host's node's links; a degradation is one round trip to each sender's host. The proxies
//! stop when asked (`teardown`), and also when the connection closes: the server's stdin
//! ends.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{Context, Result, anyhow, bail};
use faultline_nemesis::{Degradation, FirewallError, HostLinks, Link, NodeName};
use futures::future::{BoxFuture, join_all};
use serde_json::Value;
use tokio::sync::Mutex;

use super::host::{RemoteHost, quote};
use super::link_server::{DegradeLinks, LinksCommand, LinksSetUp};
use super::ssh::Conversation;

/// One node's links, proxied on its host.
struct NodeLinks {
    /// `None` once stopped.
    server: Mutex<Option<Conversation>>,
    /// The address the node dials for each peer.
    dials: BTreeMap<NodeName, SocketAddr>,
}

/// The proxies of every node's links, each on its node's host.
pub struct RemoteLinks {
    nodes: BTreeMap<NodeName, NodeLinks>,
}

impl std::fmt::Debug for RemoteLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteLinks")
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RemoteLinks {
    /// Starts `program link-serve` (`program`: the harness's binary on the hosts) on each
    /// node's host in `hosts`, for the links between the nodes of `peers` (every node's peer
    /// address), and learns what each node dials.
    pub(super) async fn start(
        hosts: &BTreeMap<NodeName, &RemoteHost>,
        program: &str,
        peers: &BTreeMap<NodeName, SocketAddr>,
    ) -> Result<RemoteLinks> {
        let started = join_all(hosts.iter().map(|(node, host)| async move {
            let links = start_one(host, program, node, peers).await;
            (node.clone(), links)
        }))
        .await;
        let mut nodes = BTreeMap::new();
        let mut first_error = None;
        for (node, links) in started {
            match links {
                Ok(links) => {
                    nodes.insert(node, links);
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        let links = RemoteLinks { nodes };
        if let Some(error) = first_error {
            let _ = links.stop().await;
            return Err(error);
        }
        Ok(links)
    }

    /// Sends `command` to `node`'s server.
    async fn ask(&self, node: &str, command: &LinksCommand) -> Result<()> {
        let Some(links) = self.nodes.get(node) else {
            bail!("no links of {node} are proxied");
        };
        let mut server = links.server.lock().await;
        let Some(server) = server.as_mut() else {
            bail!("the proxies of {node}'s links are stopped");
        };
        let line = serde_json::to_string(command)?;
        answered(&server.ask(&line).await?, node)
    }

    /// Sends each command to its node's server, all at once; the first failure, once all
    /// answered.
    async fn ask_each<'a>(
        &self,
        commands: impl Iterator<Item = (&'a str, LinksCommand)>,
    ) -> Result<()> {
        let asked =
            join_all(commands.map(|(node, command)| async move { self.ask(node, &command).await }))
                .await;
        asked.into_iter().collect()
    }

    /// Stops every server, each even if another fails.
    async fn stop(&self) -> Result<()> {
        let stopped = join_all(self.nodes.iter().map(|(node, links)| async move {
            match links.server.lock().await.take() {
                Some(server) => (server.finish().await)
                    .with_context(|| format!("stopping the proxies of {node}'s links")),
                None => Ok(()),
            }
        }))
        .await;
        stopped.into_iter().collect()
    }
}

/// Starts the server of `node`'s links on its host.
async fn start_one(
    host: &RemoteHost,
    program: &str,
    node: &str,
    peers: &BTreeMap<NodeName, SocketAddr>,
) -> Result<NodeLinks> {
    let script = format!("exec {} link-serve", quote(program));
    let mut server = host
        .converse_as_root(&format!("proxying the links of {node}"), &script)
        .await?;
    let set_up = LinksSetUp {
        from: node.to_string(),
        peers: peers.clone(),
    };
    let answer = server.ask(&serde_json::to_string(&set_up)?).await?;
    let answer: Value = serde_json::from_str(&answer)
        .map_err(|error| anyhow!("the proxies of {node}'s links answered {answer:?}: {error}"))?;
    if let Some(error) = answer.get("error").and_then(Value::as_str) {
        bail!("the proxies of {node}'s links: {error}");
    }
    let dials = serde_json::from_value(answer["dials"].clone())
        .with_context(|| format!("the proxies of {node}'s links answered {answer}"))?;
    Ok(NodeLinks {
        server: Mutex::new(Some(server)),
        dials,
    })
}

/// Whether `answer` (a server's line) says the command worked.
fn answered(answer: &str, node: &str) -> Result<()> {
    let value: Value = serde_json::from_str(answer)
        .map_err(|error| anyhow!("the proxies of {node}'s links answered {answer:?}: {error}"))?;
    match value.get("error").and_then(Value::as_str) {
        Some(error) => bail!("the proxies of {node}'s links: {error}"),
        None => Ok(()),
    }
}

impl HostLinks for RemoteLinks {
    fn dial_addr(&self, from: &str, to: &str) -> Option<SocketAddr> {
        self.nodes.get(from)?.dials.get(to).copied()
    }

    fn degrade<'a>(
        &'a self,
        links: &'a [Link],
        how: &'a Degradation,
    ) -> BoxFuture<'a, Result<(), FirewallError>> {
        Box::pin(async move {
            let mut by_sender: BTreeMap<&str, Vec<NodeName>> = BTreeMap::new();
            for link in links.iter().filter(|link| link.from != link.to) {
                by_sender
                    .entry(&link.from)
                    .or_default()
                    .push(link.to.clone());
            }
            let commands = (by_sender.into_iter())
                .map(|(from, to)| (from, LinksCommand::Degrade(DegradeLinks::new(to, how))));
            self.ask_each(commands).await.map_err(FirewallError::from)
        })
    }

    fn heal(&self) -> BoxFuture<'_, Result<(), FirewallError>> {
        Box::pin(async move {
            let commands =
                (self.nodes.keys()).map(|node| (node.as_str(), LinksCommand::Heal(true)));
            self.ask_each(commands).await.map_err(FirewallError::from)
        })
    }

    fn teardown(&self) -> BoxFuture<'_, Result<(), FirewallError>> {
        Box::pin(async move { self.stop().await.map_err(FirewallError::from) })
    }
}
