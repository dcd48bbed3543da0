//! `faultline-node`: one member of a Raft key-value cluster.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, ensure};
use axum::http::uri::Authority;
use clap::Parser;
use faultline_node::bugs::{Bug, Bugs};
use faultline_node::config::{NodeConfig, PeerSpec};
use tracing_subscriber::EnvFilter;

/// A Raft key-value store node: the system under test that Faultline ships.
///
/// Example, node 1 of 3:
///   faultline-node --id n1 --client-addr 127.0.0.11:8001 --peer-addr 127.0.0.11:7001
///     --peers n2=127.0.0.12:7002,n3=127.0.0.13:7003 --data-dir data/n1
#[derive(Parser, Debug)]
#[command(name = "faultline-node", version, verbatim_doc_comment)]
struct Args {
    /// This node's name; every node must be given the same set of names.
    #[arg(long)]
    id: String,
    /// Address of the client HTTP API.
    #[arg(long)]
    client_addr: SocketAddr,
    /// HOST:PORT that clients use to reach this node's API, as named in redirects to it
    /// (`Location`) when it leads. Defaults to --client-addr; give it when that is a
    /// wildcard address such as 0.0.0.0.
    #[arg(long, value_parser = parse_host_port)]
    advertise_client_addr: Option<String>,
    /// Address of the peer (Raft RPC) endpoint; its IP is also the source of this node's
    /// outgoing peer connections.
    #[arg(long)]
    peer_addr: SocketAddr,
    /// The other members, comma-separated: NAME=PEER_ADDR, or NAME=PEER_ADDR@DIAL_ADDR to
    /// connect through DIAL_ADDR (e.g. a proxy) instead.
    #[arg(long, value_delimiter = ',')]
    peers: Vec<PeerSpec>,
    /// Directory of the WAL and snapshots (created if missing).
    #[arg(long)]
    data_dir: PathBuf,
    /// Leader heartbeat interval.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    heartbeat_interval: Duration,
    /// Shortest election timeout; each timeout is drawn from [min, max).
    #[arg(long, default_value = "150ms", value_parser = humantime::parse_duration)]
    election_timeout_min: Duration,
    /// Longest election timeout.
    #[arg(long, default_value = "300ms", value_parser = humantime::parse_duration)]
    election_timeout_max: Duration,
    /// How long sending a snapshot to a lagging peer may take; every other peer request
    /// must be answered within --election-timeout-min.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    snapshot_timeout: Duration,
    /// Resolution of the Raft clock.
    #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
    tick: Duration,
    /// Take a snapshot and compact the log after this many applied entries.
    #[arg(long, default_value_t = 10_000)]
    snapshot_threshold: u64,
    /// How long a client request may wait for commit before it gets a 504.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    /// fsync the WAL before acknowledging (turning it off loses acknowledged writes on a crash).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    fsync: bool,
    /// Switch on a deliberate bug of the zoo (for testing the harness); repeatable, or
    /// comma-separated.
    #[arg(long = "bug", value_delimiter = ',', value_enum)]
    bugs: Vec<Bug>,
}

impl Args {
    fn into_config(self) -> Result<NodeConfig> {
        ensure!(!self.tick.is_zero(), "--tick must be positive");
        ensure!(
            self.heartbeat_interval >= self.tick,
            "--heartbeat-interval ({:?}) must be at least --tick ({:?})",
            self.heartbeat_interval,
            self.tick
        );
        ensure!(
            self.election_timeout_min > self.heartbeat_interval,
            "--election-timeout-min ({:?}) must be longer than --heartbeat-interval ({:?})",
            self.election_timeout_min,
            self.heartbeat_interval
        );
        ensure!(
            self.election_timeout_max > self.election_timeout_min,
            "--election-timeout-max ({:?}) must be longer than --election-timeout-min ({:?})",
            self.election_timeout_max,
            self.election_timeout_min
        );
        ensure!(
            self.snapshot_timeout >= self.election_timeout_min,
            "--snapshot-timeout ({:?}) must be at least --election-timeout-min ({:?})",
            self.snapshot_timeout,
            self.election_timeout_min
        );
        ensure!(
            self.snapshot_threshold > 0,
            "--snapshot-threshold must be positive"
        );
        if self.advertise_client_addr.is_none() && self.client_addr.ip().is_unspecified() {
            tracing::warn!(
                "--client-addr {} is a wildcard address: redirects to this node will not \
                 work; give --advertise-client-addr HOST:PORT",
                self.client_addr
            );
        }
        Ok(NodeConfig {
            name: self.id,
            advertise_client_addr: self
                .advertise_client_addr
                .unwrap_or_else(|| self.client_addr.to_string()),
            client_addr: self.client_addr,
            peer_addr: self.peer_addr,
            peers: self.peers,
            data_dir: self.data_dir,
            tick: self.tick,
            heartbeat: self.heartbeat_interval,
            election_min: self.election_timeout_min,
            election_max: self.election_timeout_max,
            snapshot_timeout: self.snapshot_timeout,
            snapshot_threshold: self.snapshot_threshold,
            request_timeout: self.request_timeout,
            fsync: self.fsync,
            bugs: Bugs::from_list(&self.bugs),
        })
    }
}

/// Accepts `HOST:PORT` (a name or an IP address; IPv6 in brackets).
fn parse_host_port(text: &str) -> Result<String, String> {
    let invalid = |why: &str| format!("`{text}` is not a HOST:PORT address: {why}");
    let authority: Authority = text.parse().map_err(|e| invalid(&format!("{e}")))?;
    if authority.as_str().contains('@') {
        return Err(invalid("it has a user name"));
    }
    if authority.port_u16().is_none() {
        return Err(invalid("it has no port"));
    }
    Ok(text.to_string())
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = Args::parse().into_config()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(faultline_node::server::run(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_addresses_are_host_and_port() {
        for good in ["127.0.0.11:8001", "node1.example:8001", "[::1]:8001"] {
            assert_eq!(parse_host_port(good).as_deref(), Ok(good));
        }
        for bad in ["127.0.0.11", "http://a:1", "a:1/x", "u@a:1", "", "a b:1"] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn advertise_client_addr_defaults_to_client_addr() {
        let args = |extra: &[&str]| {
            let base = [
                "faultline-node",
                "--id",
                "n1",
                "--client-addr",
                "127.0.0.11:8001",
                "--peer-addr",
                "127.0.0.11:7001",
                "--data-dir",
                "d",
            ];
            Args::try_parse_from(base.iter().chain(extra)).unwrap()
        };
        let config = args(&[]).into_config().unwrap();
        assert_eq!(config.advertise_client_addr, "127.0.0.11:8001");
        assert_eq!(config.snapshot_timeout, Duration::from_secs(10));
        let config = args(&["--advertise-client-addr", "n1.local:8001"])
            .into_config()
            .unwrap();
        assert_eq!(config.advertise_client_addr, "n1.local:8001");
        let short = args(&["--snapshot-timeout", "10ms"]).into_config();
        assert!(short.is_err());
    }
}
