//! Starting Redis with Sentinel and asking it how it is: the [`System`] side of Redis.
//!
//! Each node is a redis-server (the process the nemesis kills and pauses) with a
//! redis-sentinel beside it on the same host (a sidecar: it survives the server's kills, as
//! a separate process on that machine would, and is cut off with it by a partition). Node 1
//! starts as the primary. The cluster is ready when every replica holds a full copy and each
//! sentinel could fail over.
//!
//! A node's status is its server's `ROLE` (a primary leads; a replica in sync follows its
//! primary) with its sentinel's epoch as the term: after a failover the new primary has the
//! higher epoch, while an old primary cut off with its sentinel still calls itself one. A
//! deposed primary back in touch with the sentinels stays a primary for seconds before they
//! make it a replica; it then names the new primary as its leader, as Raft's deposed leaders
//! do.
//!
//! The sentinels and the servers connect from their node's address to the others', and
//! both listen on it, so a partition must cut addresses, whatever the port: nodes run in
//! network namespaces.

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use faultline_workloads::{BoxFuture, ClientFactory};
use futures::future::join_all;
use serde_json::Value;

use super::client::{self, RedisClients, RedisNode, Role};
use super::config::{self, MASTER_NAME, NodeAddrs};
use super::sentinel::{self, SentinelView};
use crate::node_status::NodeStatus;
use crate::store::{NodeRecord, SystemRecord};
use crate::system::probe::{self, ProbeError};
use crate::system::{Dials, HostProgram, NodeCommand, System, find_program};

/// A server's or sentinel's answer must come within this, so a paused server never stalls
/// the harness.
const STATUS_TIMEOUT: Duration = Duration::from_millis(300);

/// What to install when Redis or Sentinel is missing.
const INSTALL: &str = "apt-get install -y redis-server redis-sentinel";

/// The server's configuration file, in the node's directory (Sentinel rewrites it on a
/// failover: `replicaof`).
const REDIS_CONF: &str = "redis.conf";
/// The sentinel's configuration file, in the node's directory (the sentinel records in it
/// what it learns).
const SENTINEL_CONF: &str = "sentinel.conf";
/// The sentinel's log (its stdout and stderr), in the node's directory.
const SENTINEL_LOG: &str = "sentinel.log";

/// Redis with Sentinel, as Debian packages it.
pub struct RedisSystem {
    server: PathBuf,
    sentinel: PathBuf,
    version: Option<String>,
    /// The cluster's nodes, known from the first node prepared: a replica names its primary
    /// by address, the status by node.
    nodes: OnceLock<Vec<NodeRecord>>,
    /// What each node's sentinel said last (see [`leadership`]).
    views: Mutex<BTreeMap<String, SentinelView>>,
}

impl RedisSystem {
    /// redis-server and redis-sentinel from the PATH. Fails, naming the packages, when one is
    /// not installed, and naming the binary when redis-server does not answer `--version`
    /// within [`probe::VERSION_TIMEOUT`].
    pub async fn new() -> Result<RedisSystem> {
        let find = |program: &str| {
            find_program(program).with_context(|| {
                format!("{program} is not installed (no `{program}` on the PATH): {INSTALL}")
            })
        };
        let server = find("redis-server")?;
        let sentinel = find("redis-sentinel")?;
        // `Redis server v=7.0.15 sha=...`: the version is the word after `v=`.
        let version = match probe::run(&server, &["--version"], probe::VERSION_TIMEOUT).await {
            Ok(finished) => String::from_utf8_lossy(&finished.stdout)
                .split_whitespace()
                .find_map(|word| word.strip_prefix("v="))
                .map(str::to_string),
            Err(ProbeError::TimedOut(limit)) => bail!(
                "{} did not answer `--version` within {} s (it was killed); is it redis-server? \
                 {INSTALL}",
                server.display(),
                limit.as_secs()
            ),
            Err(_) => None,
        };
        Ok(RedisSystem {
            server,
            sentinel,
            version,
            nodes: OnceLock::new(),
            views: Mutex::new(BTreeMap::new()),
        })
    }
}

/// Where each node's server and sentinel listen: the server on the node's client port,
/// the sentinel on its peer port.
fn addrs(all: &[NodeRecord]) -> Vec<NodeAddrs> {
    all.iter()
        .map(|node| NodeAddrs {
            ip: IpAddr::V4(node.ip),
            redis_port: node.client_addr.port(),
            sentinel_port: node.peer_addr.port(),
        })
        .collect()
}

fn index_of(node: &NodeRecord, all: &[NodeRecord]) -> Result<usize> {
    all.iter()
        .position(|n| n.name == node.name)
        .with_context(|| format!("{} is not a node of the cluster", node.name))
}

/// Whether `roles`, of a cluster of `nodes` servers, are one primary and its replicas, every
/// one in sync with it. A replica's first full copy waits for others to join it (Redis's
/// `repl-diskless-sync-delay`, 5 s): a fault before then would promote an empty replica.
fn in_sync(roles: &[Role], nodes: usize) -> bool {
    let primaries: Vec<&Vec<SocketAddr>> = roles
        .iter()
        .filter_map(|role| match role {
            Role::Primary { replicas, .. } => Some(replicas),
            Role::Replica { .. } => None,
        })
        .collect();
    let synced = roles
        .iter()
        .filter(|role| {
            matches!(
                role,
                Role::Replica {
                    connected: true,
                    ..
                }
            )
        })
        .count();
    roles.len() == nodes
        && matches!(primaries[..], [replicas] if replicas.len() + 1 == nodes)
        && synced + 1 == nodes
}

/// The term of `node`, whose server has `role`, and the server it follows (by address),
/// from what each node's sentinel said last (`views`, by node; a sentinel that did not answer
/// the last poll in time keeps its word until it answers again, so that one slow answer does
/// not undo a failover).
///
/// - A primary's term is the latest epoch at which a sentinel names it (or its own sentinel's
///   epoch, or 0 before the sentinels start); it follows itself unless a sentinel names
///   another primary at a later or equal epoch: a deposed primary that has not yet been made a
///   replica still takes writes, and names its successor, as Raft's deposed leaders do.
/// - A replica's term is its own sentinel's epoch; it follows the primary it is in sync with,
///   and none while it is not.
fn leadership(
    node: &NodeRecord,
    role: &Role,
    views: &BTreeMap<String, SentinelView>,
) -> (u64, Option<SocketAddr>) {
    let own_epoch = views.get(&node.name).map_or(0, |view| view.epoch);
    match role {
        Role::Primary { .. } => {
            let term = views
                .values()
                .filter(|view| view.primary == node.client_addr)
                .map(|view| view.epoch)
                .max()
                .unwrap_or(own_epoch);
            let newest = views.values().max_by_key(|view| view.epoch);
            let leader = match newest {
                Some(newest) if newest.primary != node.client_addr && newest.epoch >= term => {
                    newest.primary
                }
                _ => node.client_addr,
            };
            (term, Some(leader))
        }
        Role::Replica {
            primary, connected, ..
        } => (own_epoch, connected.then_some(*primary)),
    }
}

impl RedisSystem {
    /// The node whose server listens at `addr`, or the address itself for a server that is
    /// no node of the cluster.
    fn name_of(&self, addr: SocketAddr) -> String {
        self.nodes
            .get()
            .and_then(|nodes| nodes.iter().find(|node| node.client_addr == addr))
            .map_or_else(|| addr.to_string(), |node| node.name.clone())
    }
}

impl System for RedisSystem {
    fn record(&self) -> SystemRecord {
        SystemRecord {
            name: "redis".to_string(),
            version: self.version.clone(),
            file: None,
        }
    }

    fn on_hosts(&self) -> Result<HostProgram, String> {
        Err("its sentinels and configuration files are not put on hosts yet".to_string())
    }

    fn needs_namespaces(&self) -> bool {
        true
    }

    fn prepare(&self, node: &NodeRecord, all: &[NodeRecord]) -> Result<()> {
        let index = index_of(node, all)?;
        self.nodes.get_or_init(|| all.to_vec());
        let addrs = addrs(all);
        let files = [
            (
                REDIS_CONF,
                config::redis_conf(&addrs, index, &node.data_dir())?,
            ),
            (
                SENTINEL_CONF,
                config::sentinel_conf(&addrs, index, &node.dir)?,
            ),
        ];
        for (name, text) in files {
            let path = node.dir.join(name);
            fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    fn launch(
        &self,
        node: &NodeRecord,
        _all: &[NodeRecord],
        _dial: Dials<'_>,
    ) -> Result<NodeCommand> {
        Ok(NodeCommand {
            program: self.server.clone(),
            args: vec![node.dir.join(REDIS_CONF).display().to_string()],
            log: node.log_path(),
        })
    }

    fn sidecars(&self, node: &NodeRecord, _all: &[NodeRecord]) -> Result<Vec<NodeCommand>> {
        Ok(vec![NodeCommand {
            program: self.sentinel.clone(),
            args: vec![node.dir.join(SENTINEL_CONF).display().to_string()],
            log: node.dir.join(SENTINEL_LOG),
        }])
    }

    fn ready<'a>(&'a self, all: &'a [NodeRecord]) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let roles = join_all(
                all.iter()
                    .map(|node| client::role(node.client_addr, STATUS_TIMEOUT)),
            );
            let sentinels = join_all(all.iter().map(|node| async move {
                let view = sentinel::view(node.peer_addr, STATUS_TIMEOUT).await;
                view.is_ok_and(|view| view.knows_everyone(all.len()))
                    && sentinel::has_quorum(node.peer_addr, STATUS_TIMEOUT).await
            }));
            let (roles, sentinels) = tokio::join!(roles, sentinels);
            let roles: Vec<Role> = roles.into_iter().flatten().collect();
            in_sync(&roles, all.len()) && sentinels.into_iter().all(|ready| ready)
        })
    }

    fn status<'a>(&'a self, node: &'a NodeRecord) -> BoxFuture<'a, Option<NodeStatus>> {
        Box::pin(async move {
            let (role, view) = tokio::join!(
                client::role(node.client_addr, STATUS_TIMEOUT),
                sentinel::view(node.peer_addr, STATUS_TIMEOUT)
            );
            let views = {
                let mut views = self.views.lock().expect("never poisoned");
                if let Ok(view) = view {
                    views.insert(node.name.clone(), view);
                }
                views.clone()
            };
            let role = role.ok()?;
            let (term, leader) = leadership(node, &role, &views);
            let offset = match role {
                Role::Primary { offset, .. } => offset,
                Role::Replica { offset, .. } => offset.unwrap_or(0),
            };
            Some(NodeStatus {
                id: node.name.clone(),
                role: match role {
                    Role::Primary { .. } => "leader",
                    Role::Replica { .. } => "follower",
                }
                .to_string(),
                term,
                leader: leader.map(|addr| self.name_of(addr)),
                // The replication offset stands in for the log: there is no commit index in
                // Redis (a write is acknowledged before any replica has it).
                commit: offset,
                applied: offset,
                last_log_index: offset,
                snapshot_index: 0,
                // No fingerprints, and no membership told: the report draws none.
                ..NodeStatus::default()
            })
        })
    }

    fn local_list<'a>(
        &'a self,
        node: &'a NodeRecord,
        key: &'a str,
    ) -> BoxFuture<'a, Option<Vec<Value>>> {
        Box::pin(async move {
            let list = client::local_list(node.client_addr, key, STATUS_TIMEOUT)
                .await
                .ok()?;
            Some(list.into_iter().map(Value::from).collect())
        })
    }

    fn clients(&self, all: &[NodeRecord], timeout: Duration) -> Result<Arc<dyn ClientFactory>> {
        let nodes = all
            .iter()
            .map(|node| RedisNode {
                name: node.name.clone(),
                server: node.client_addr,
                sentinel: node.peer_addr,
            })
            .collect();
        Ok(Arc::new(RedisClients::new(nodes, MASTER_NAME, timeout)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(primary: &str, connected: bool) -> Role {
        Role::Replica {
            primary: primary.parse().unwrap(),
            connected,
            offset: connected.then_some(14),
        }
    }

    fn primary(replicas: &[&str]) -> Role {
        Role::Primary {
            offset: 14,
            replicas: replicas.iter().map(|r| r.parse().unwrap()).collect(),
        }
    }

    fn node(i: u8) -> NodeRecord {
        let ip = std::net::Ipv4Addr::new(198, 18, 0, 10 + i);
        NodeRecord {
            name: format!("n{i}"),
            ip,
            client_addr: SocketAddr::from((ip, 6379)),
            peer_addr: SocketAddr::from((ip, 26379)),
            dir: PathBuf::from(format!("/store/t/1/nodes/n{i}")),
            namespace: None,
            spare: false,
            host: None,
        }
    }

    /// Each sentinel's last word: (node, the node it names as primary, epoch).
    fn views(said: &[(u8, u8, u64)]) -> BTreeMap<String, SentinelView> {
        said.iter()
            .map(|&(at, names, epoch)| {
                let view = SentinelView {
                    primary: node(names).client_addr,
                    epoch,
                    other_sentinels: 2,
                    replicas: 2,
                };
                (format!("n{at}"), view)
            })
            .collect()
    }

    fn as_primary() -> Role {
        primary(&[])
    }

    #[test]
    fn a_failover_gives_the_promoted_replica_the_newest_epoch_and_the_old_primary_a_successor() {
        let [n1, n2, n3] = [node(1), node(2), node(3)];
        // Before the sentinels start, the first primary leads at epoch 0.
        assert_eq!(
            leadership(&n1, &as_primary(), &BTreeMap::new()),
            (0, Some(n1.client_addr))
        );
        // n1 is cut off with its sentinel; the others promoted n3 at epoch 1. n3's own
        // sentinel has not heard yet, but the one that led the failover names n3.
        let after = views(&[(1, 1, 0), (2, 3, 1), (3, 1, 0)]);
        assert_eq!(
            leadership(&n3, &as_primary(), &after),
            (1, Some(n3.client_addr))
        );
        assert_eq!(
            leadership(&n1, &as_primary(), &after),
            (0, Some(n3.client_addr))
        );
        // Healed: every sentinel names n3, and n1 is still a primary until it is made a
        // replica. It ties on the epoch and names n3.
        let healed = views(&[(1, 3, 1), (2, 3, 1), (3, 3, 1)]);
        assert_eq!(
            leadership(&n1, &as_primary(), &healed),
            (1, Some(n3.client_addr))
        );
        // A replica follows the primary it is in sync with, at its sentinel's epoch.
        let synced = replica("198.18.0.13:6379", true);
        assert_eq!(leadership(&n2, &synced, &healed), (1, Some(n3.client_addr)));
        let copying = replica("198.18.0.13:6379", false);
        assert_eq!(leadership(&n2, &copying, &healed), (1, None));
    }

    #[test]
    fn the_cluster_is_in_sync_once_every_replica_has_its_copy() {
        let [a, b, c] = ["198.18.0.11:6379", "198.18.0.12:6379", "198.18.0.13:6379"];
        let synced = [primary(&[b, c]), replica(a, true), replica(a, true)];
        assert!(in_sync(&synced, 3));
        // Still waiting for its first full copy.
        let copying = [primary(&[b, c]), replica(a, true), replica(a, false)];
        assert!(!in_sync(&copying, 3));
        // A server that did not answer.
        assert!(!in_sync(&synced[..2], 3));
        // Two primaries: one of them not yet told it is a replica.
        let split = [primary(&[b]), replica(a, true), primary(&[])];
        assert!(!in_sync(&split, 3));
    }
}
