//! `faultline-node`: one member of a Raft key-value cluster.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use axum::http::uri::Authority;
use clap::Parser;
use faultline_node::bugs::{Bug, Bugs};
use faultline_node::cluster_id::ClusterId;
use faultline_node::config::{NodeConfig, PeerSpec, ReadModeSetting};
use faultline_node::connections::ConnectionLimits;
use faultline_node::peer_auth::PeerToken;
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
    /// The cluster's first voters, comma-separated names [default: this node and every
    /// --peers name]. A node left out joins later: it starts with no configuration and
    /// learns it from the leader once a member adds it (`POST /admin/members`). Every node
    /// must be given the same list. Ignored once the node's data holds a configuration.
    #[arg(long, value_delimiter = ',')]
    initial_members: Vec<String>,
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
    /// The cluster's id (1-64 characters of A-Z a-z 0-9 . _ : -), the same on every member.
    /// Every peer message carries it, and messages with another are refused. Written into
    /// the data dir at the first start; the node refuses to start on a data dir that holds
    /// another. Default: derived from the sorted member names, which tells apart clusters of
    /// different members only; give a fresh random id per cluster.
    #[arg(long)]
    cluster_id: Option<ClusterId>,
    /// A shared secret that every peer request must carry (401 otherwise), the same on every
    /// member. It shows in the process list: prefer --peer-token-file.
    #[arg(long, conflicts_with = "peer_token_file")]
    peer_token: Option<String>,
    /// A file holding the peer token (one trailing newline is ignored).
    #[arg(long)]
    peer_token_file: Option<PathBuf>,
    /// The most connections each port (client, peer) holds open at once; further ones wait
    /// in the kernel's accept queue until one closes.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// A connection is closed when it has not sent a whole request head this long after it
    /// opened or after its last answer (idle keep-alive, silent, or half-sent headers).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// A request whose body stalls this long between two pieces fails, with its connection.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    body_timeout: Duration,
    /// The largest snapshot, in MiB, that a peer may send this node (a lagging follower
    /// whose leader's snapshot is larger cannot catch up: raise it then).
    #[arg(long, default_value_t = 256)]
    max_snapshot_mib: usize,
    /// How the leader serves linearizable reads: read-index (each batch of reads waits for
    /// a heartbeat round a quorum answers; assumes nothing about clocks) or lease (answered
    /// at once while a lease holds; assumes bounded clock drift: see --lease-drift-margin).
    /// Every member must use the same mode. Also from FAULTLINE_READ_MODE, which `faultline
    /// test` passes on to the nodes it starts.
    #[arg(
        long,
        value_enum,
        default_value = "read-index",
        env = "FAULTLINE_READ_MODE"
    )]
    read_mode: ReadModeArg,
    /// Under --read-mode lease: how much a follower's clock may gain on the leader's over
    /// one election timeout. A lease lasts --election-timeout-min less one tick and this,
    /// from the sending of a heartbeat or append a quorum answered. The default covers a
    /// leader's clock 25 % slow over the default 150 ms (37.5 ms).
    #[arg(
        long,
        default_value = "40ms",
        value_parser = humantime::parse_duration,
        env = "FAULTLINE_LEASE_DRIFT_MARGIN"
    )]
    lease_drift_margin: Duration,
    /// Switch on a deliberate bug of the zoo (for testing the harness); repeatable, or
    /// comma-separated.
    #[arg(long = "bug", value_delimiter = ',', value_enum)]
    bugs: Vec<Bug>,
}

/// `--read-mode`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ReadModeArg {
    ReadIndex,
    Lease,
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
        ensure!(
            self.max_connections > 0,
            "--max-connections must be positive"
        );
        ensure!(
            !self.idle_timeout.is_zero() && !self.body_timeout.is_zero(),
            "--idle-timeout and --body-timeout must be positive"
        );
        ensure!(
            (1..=1 << 20).contains(&self.max_snapshot_mib),
            "--max-snapshot-mib must be between 1 and 1048576"
        );
        let peer_token = match (&self.peer_token, &self.peer_token_file) {
            (Some(token), _) => Some(PeerToken::new(token).context("--peer-token")?),
            (None, Some(path)) => Some(PeerToken::from_file(path)?),
            (None, None) => None,
        };
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
            initial_members: (!self.initial_members.is_empty()).then_some(self.initial_members),
            data_dir: self.data_dir,
            tick: self.tick,
            heartbeat: self.heartbeat_interval,
            election_min: self.election_timeout_min,
            election_max: self.election_timeout_max,
            snapshot_timeout: self.snapshot_timeout,
            snapshot_threshold: self.snapshot_threshold,
            request_timeout: self.request_timeout,
            fsync: self.fsync,
            read_mode: match self.read_mode {
                ReadModeArg::ReadIndex => ReadModeSetting::ReadIndex,
                ReadModeArg::Lease => ReadModeSetting::Lease {
                    drift_margin: self.lease_drift_margin,
                },
            },
            bugs: Bugs::from_list(&self.bugs),
            cluster_id: self.cluster_id,
            peer_token,
            connections: ConnectionLimits {
                max_connections: self.max_connections,
                idle_timeout: self.idle_timeout,
                body_timeout: self.body_timeout,
            },
            max_snapshot_bytes: self.max_snapshot_mib << 20,
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

    /// The flags every node needs, before those a test adds.
    const REQUIRED: [&str; 9] = [
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

    #[test]
    fn advertise_client_addr_defaults_to_client_addr() {
        let args = |extra: &[&str]| Args::try_parse_from(REQUIRED.iter().chain(extra)).unwrap();
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

    #[test]
    fn peer_security_flags() {
        let parse = |extra: &[&str]| Args::try_parse_from(REQUIRED.iter().chain(extra));
        let config = parse(&[]).unwrap().into_config().unwrap();
        assert_eq!(config.cluster_id, None);
        assert!(config.peer_token.is_none());
        assert_eq!(config.connections.max_connections, 1024);
        assert_eq!(config.connections.idle_timeout, Duration::from_secs(30));
        assert_eq!(config.max_snapshot_bytes, 256 << 20);
        let config = parse(&["--cluster-id", "run-7", "--peer-token", "s3cret"])
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!(config.cluster_id.unwrap().as_str(), "run-7");
        assert!(config.peer_token.is_some());
        assert!(parse(&["--cluster-id", "a b"]).is_err());
        assert!(parse(&["--peer-token", "a", "--peer-token-file", "f"]).is_err());
        let empty_token = parse(&["--peer-token", ""]).unwrap().into_config();
        assert!(empty_token.is_err());
        let no_connections = parse(&["--max-connections", "0"]).unwrap().into_config();
        assert!(no_connections.is_err());
    }
}
