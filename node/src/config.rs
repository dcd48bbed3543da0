//! A node's settings and the cluster's membership (names like `n1` mapped to Raft ids).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::bugs::Bugs;
use crate::cluster_id::ClusterId;
use crate::connections::ConnectionLimits;
use crate::peer_auth::PeerToken;

/// Everything a node needs to start, after the command line was parsed.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's name, e.g. `n1`.
    pub name: String,
    /// Where the HTTP KV API listens.
    pub client_addr: SocketAddr,
    /// How clients reach the API (`HOST:PORT`), as named in redirects to this node when it
    /// leads: `client_addr` unless that is a wildcard address such as `0.0.0.0`.
    pub advertise_client_addr: String,
    /// Where peers reach this node's Raft RPC endpoint; its IP is also the source address
    /// of this node's outgoing peer connections.
    pub peer_addr: SocketAddr,
    /// The other nodes: every member, and every node that may become one.
    pub peers: Vec<PeerSpec>,
    /// The names of the cluster's first voters; `None`: this node and every peer.
    pub initial_members: Option<Vec<String>>,
    pub data_dir: PathBuf,
    /// The Raft core's clock resolution.
    pub tick: Duration,
    pub heartbeat: Duration,
    /// Election timeouts are drawn uniformly from `election_min..election_max`.
    pub election_min: Duration,
    pub election_max: Duration,
    /// How long sending a snapshot to a peer may take (other peer requests get
    /// `election_min`).
    pub snapshot_timeout: Duration,
    /// Take a snapshot once this many entries were applied since the last one.
    pub snapshot_threshold: u64,
    /// How long a client request may wait for commit or a read confirmation.
    pub request_timeout: Duration,
    /// Turn off only for throwaway clusters: without fsync, a crash loses acknowledged writes.
    pub fsync: bool,
    /// How the leader serves linearizable reads: a heartbeat round per batch (the default)
    /// or a lease, and the lease's margin for clock drift.
    pub read_mode: ReadModeSetting,
    /// Deliberate bugs for testing the harness (off by default).
    pub bugs: Bugs,
    /// The cluster this node belongs to; `None`: derived from the member names (weaker: see
    /// [`crate::cluster_id`]).
    pub cluster_id: Option<ClusterId>,
    /// The shared secret peers must present, if any.
    pub peer_token: Option<PeerToken>,
    /// The bounds on the client and the peer port's connections (each).
    pub connections: ConnectionLimits,
    /// The largest snapshot (or single oversized message) a peer may send.
    pub max_snapshot_bytes: usize,
}

/// `--read-mode`: how the leader makes sure a read sees every committed write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadModeSetting {
    /// ReadIndex (Raft thesis §6.4): each batch of reads waits for a heartbeat round that a
    /// quorum answers. Assumes nothing about clocks.
    #[default]
    ReadIndex,
    /// Leases (thesis §6.4.1): the leader answers reads at once for the shortest election
    /// timeout, less one tick and `drift_margin`, from the sending of a heartbeat or append
    /// a quorum answered. Assumes that over an election timeout no node's clock gains more
    /// than `drift_margin` on the leader's.
    Lease { drift_margin: Duration },
}

/// Another member: its name, its peer address, and where to dial it (a proxy, or itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    pub name: String,
    pub addr: SocketAddr,
    pub dial: SocketAddr,
}

impl FromStr for PeerSpec {
    type Err = String;

    /// Parses `NAME=ADDR` or `NAME=ADDR@DIAL`.
    fn from_str(spec: &str) -> Result<Self, String> {
        let (name, rest) = spec
            .split_once('=')
            .ok_or_else(|| format!("peer `{spec}`: expected NAME=ADDR or NAME=ADDR@DIAL_ADDR"))?;
        if name.is_empty() {
            return Err(format!("peer `{spec}`: the name is empty"));
        }
        let (addr, dial) = rest.split_once('@').unwrap_or((rest, rest));
        let parse = |s: &str| {
            s.parse::<SocketAddr>()
                .map_err(|e| format!("peer `{spec}`: `{s}` is not an IP:PORT address ({e})"))
        };
        Ok(PeerSpec {
            name: name.to_string(),
            addr: parse(addr)?,
            dial: parse(dial)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_spec_with_and_without_dial_address() {
        let p: PeerSpec = "n2=127.0.0.12:7002".parse().unwrap();
        assert_eq!(p.addr, p.dial);
        let p: PeerSpec = "n3=127.0.0.13:7003@127.0.0.1:9000".parse().unwrap();
        assert_eq!(p.addr.to_string(), "127.0.0.13:7003");
        assert_eq!(p.dial.to_string(), "127.0.0.1:9000");
        let err = "n3:7003".parse::<PeerSpec>().unwrap_err();
        assert!(err.contains("NAME=ADDR"), "{err}");
        let err = "n3=localhost".parse::<PeerSpec>().unwrap_err();
        assert!(err.contains("IP:PORT"), "{err}");
    }
}
