//! `faultline link-serve`, the host's side of slow and lossy links between hosts (`--hosts`
//! with `slow` or `lossy`): the harness copies itself to the host and runs this over SSH, one
//! per node. It proxies the node's links to every other node (`ProxyNetwork::start_from`:
//! a listener on 127.0.0.1 per link, connecting to the receiver from the host's address) and
//! answers one JSON line for each command line on its stdin:
//!
//! - first, `{"from":"n1","peers":{"n1":"IP:PORT",...}}`: the node and every node's peer
//!   address; answered `{"ok":true,"dials":{"n2":"127.0.0.1:PORT",...}}`, the address the node
//!   dials for each peer;
//! - `{"degrade":{"to":["n2"],"latency_ns":N,"jitter_ns":N,"drop":P,"seed":S}}`: degrades the
//!   links to those nodes (see `Degradation`);
//! - `{"heal":true}`: ends every degradation.
//!
//! A failure is `{"error":"..."}`. Its stdin ending (the harness's connection closed, or the
//! harness died) stops the proxies, closing their connections, and the server ends.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use faultline_nemesis::{Degradation, Degrader, Link, NodeName, Partitioner, ProxyNetwork};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Proxy a node's links to its peers, for slow and lossy links (the harness runs it).
#[derive(Args, Clone, Debug)]
pub struct LinkServeArgs {}

/// What the server is told first.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct LinksSetUp {
    /// The node whose links these are.
    pub from: NodeName,
    /// Every node's peer address.
    pub peers: BTreeMap<NodeName, SocketAddr>,
}

/// A degradation of the links to `to`, as a command line carries it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct DegradeLinks {
    pub to: Vec<NodeName>,
    pub latency_ns: u64,
    pub jitter_ns: u64,
    pub drop: f64,
    pub seed: u64,
}

impl DegradeLinks {
    /// The command for the links from this host's node to `to`.
    pub fn new(to: Vec<NodeName>, how: &Degradation) -> DegradeLinks {
        DegradeLinks {
            to,
            latency_ns: how.latency.as_nanos() as u64,
            jitter_ns: how.jitter.as_nanos() as u64,
            drop: how.drop,
            seed: how.seed,
        }
    }

    fn degradation(&self) -> Degradation {
        Degradation {
            latency: Duration::from_nanos(self.latency_ns),
            jitter: Duration::from_nanos(self.jitter_ns),
            drop: self.drop,
            seed: self.seed,
        }
    }
}

/// A command after the set-up.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum LinksCommand {
    Degrade(DegradeLinks),
    Heal(bool),
}

/// Runs `faultline link-serve`: serves until the end of stdin.
pub async fn run(_args: &LinkServeArgs) -> Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    let mut say = async |answer: Value| -> Result<()> {
        stdout.write_all(format!("{answer}\n").as_bytes()).await?;
        stdout.flush().await?;
        Ok(())
    };
    let Some(first) = lines.next_line().await? else {
        return Ok(());
    };
    let started = async {
        let set_up: LinksSetUp =
            serde_json::from_str(&first).with_context(|| format!("a bad set-up: {first:?}"))?;
        let proxies = ProxyNetwork::start_from(&set_up.from, &set_up.peers).await?;
        Ok::<_, anyhow::Error>((set_up, proxies))
    };
    let (set_up, proxies) = match started.await {
        Ok(started) => started,
        Err(error) => {
            say(json!({"error": format!("{error:#}")})).await?;
            return Err(error);
        }
    };
    let dials: BTreeMap<&NodeName, SocketAddr> = (set_up.peers.keys())
        .filter_map(|to| Some((to, proxies.dial_addr(&set_up.from, to)?)))
        .collect();
    say(json!({"ok": true, "dials": dials})).await?;
    while let Some(line) = lines.next_line().await? {
        let answer = match answer(&proxies, &set_up.from, &line).await {
            Ok(()) => json!({"ok": true}),
            Err(error) => json!({"error": format!("{error:#}")}),
        };
        say(answer).await?;
    }
    proxies.teardown().await?;
    Ok(())
}

/// Carries out the command `line` on the proxies of `from`'s links.
async fn answer(proxies: &ProxyNetwork, from: &str, line: &str) -> Result<()> {
    let command: LinksCommand =
        serde_json::from_str(line).map_err(|error| anyhow!("a bad command {line:?}: {error}"))?;
    match command {
        LinksCommand::Degrade(degrade) => {
            let links: Vec<Link> = (degrade.to.iter())
                .map(|to| Link {
                    from: from.to_string(),
                    to: to.clone(),
                })
                .collect();
            proxies.degrade(&links, &degrade.degradation()).await?;
        }
        LinksCommand::Heal(_) => proxies.heal().await?,
    }
    Ok(())
}
