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

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result};
use faultline_workloads::{BoxFuture, ClientFactory};
use futures::future::join_all;
use serde_json::Value;

use super::client::{self, RedisClients, RedisNode, Role};
use super::config::{self, MASTER_NAME, NodeAddrs};
use super::sentinel;
use crate::node_status::NodeStatus;
use crate::store::{NodeRecord, SystemRecord};
use crate::system::{Dials, NodeCommand, System, find_program};

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
}

impl RedisSystem {
    /// redis-server and redis-sentinel from the PATH. Fails, naming the packages, when one is
    /// not installed.
    pub fn new() -> Result<RedisSystem> {
        let find = |program: &str| {
            find_program(program).with_context(|| {
                format!("{program} is not installed (no `{program}` on the PATH): {INSTALL}")
            })
        };
        let server = find("redis-server")?;
        let sentinel = find("redis-sentinel")?;
        // `Redis server v=7.0.15 sha=...`: the version is the word after `v=`.
        let version = std::process::Command::new(&server)
            .arg("--version")
            .output()
            .ok()
            .and_then(|out| {
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.split_whitespace()
                    .find_map(|word| word.strip_prefix("v="))
                    .map(str::to_string)
            });
        Ok(RedisSystem {
            server,
            sentinel,
            version,
            nodes: OnceLock::new(),
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
            let (roles, views) = tokio::join!(
                join_all(
                    all.iter()
                        .map(|node| client::role(node.client_addr, STATUS_TIMEOUT))
                ),
                join_all(
                    all.iter()
                        .map(|node| sentinel::view(node.peer_addr, STATUS_TIMEOUT))
                )
            );
            let roles: Vec<Role> = roles.into_iter().flatten().collect();
            in_sync(&roles, all.len())
                && views
                    .iter()
                    .all(|view| view.as_ref().is_ok_and(|v| v.can_fail_over(all.len())))
        })
    }

    fn status<'a>(&'a self, node: &'a NodeRecord) -> BoxFuture<'a, Option<NodeStatus>> {
        Box::pin(async move {
            let (role, view) = tokio::join!(
                client::role(node.client_addr, STATUS_TIMEOUT),
                sentinel::view(node.peer_addr, STATUS_TIMEOUT)
            );
            let role = role.ok()?;
            // A sentinel not started yet, or not answering, knows of no failover.
            let view = view.ok();
            let (leads, offset) = match &role {
                Role::Primary { offset, .. } => (true, *offset),
                Role::Replica { offset, .. } => (false, offset.unwrap_or(0)),
            };
            Some(NodeStatus {
                id: node.name.clone(),
                role: if leads { "leader" } else { "follower" }.to_string(),
                term: view.as_ref().map_or(0, |view| view.epoch),
                // The primary the node follows: a replica's, once in sync; for a primary, the
                // one its sentinel names, which is another once a failover deposed it (and
                // until its sentinel makes it a replica, it still takes writes).
                leader: match role {
                    Role::Primary { .. } => Some(
                        view.map_or_else(|| node.name.clone(), |view| self.name_of(view.primary)),
                    ),
                    Role::Replica {
                        primary,
                        connected: true,
                        ..
                    } => Some(self.name_of(primary)),
                    Role::Replica { .. } => None,
                },
                // The replication offset stands in for the log: there is no commit index in
                // Redis (a write is acknowledged before any replica has it).
                commit: offset,
                applied: offset,
                last_log_index: offset,
                snapshot_index: 0,
                fingerprints: Vec::new(),
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
