//! The system under test, as the harness sees it (Jepsen's DB and client): how each node is
//! started (and started again after a kill), how it is asked how it is, and the clients that
//! perform the workload's operations on it. Everything else (the nemesis, the recorder, the
//! checkers, the report) works the same for every system.
//!
//! - [`faultline`]: the bundled `faultline-node` (or any node that serves Faultline's HTTP
//!   contract, `--node-binary`), with its `--bug`s.
//! - [`etcd`]: Debian's etcd 3.4, through its v3 JSON gateway.
//! - [`redis`]: Debian's Redis with a Sentinel beside each server.
//! - [`file`]: any system described in a TOML file (`--system-file`), with the HTTP contract
//!   or an [`exec_client`] as its client.

pub mod etcd;
pub mod exec_client;
pub mod faultline;
pub mod file;
pub mod probe;
pub mod redis;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use faultline_nemesis::{ChangeAnswer, MemberChange, Members};
use faultline_workloads::{BoxFuture, ClientFactory};
use serde_json::Value;

use crate::node_status::NodeStatus;
use crate::store::{NodeRecord, SystemRecord, TestOptions};
use etcd::EtcdSystem;
use etcd::gateway::Consistency;
use faultline::FaultlineSystem;
use file::FileSystem;
use redis::RedisSystem;

/// One program to run for a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Where its stdout and stderr go (appended: a restarted node keeps its log).
    pub log: PathBuf,
}

/// How a node's program gets onto a host of its own (`--hosts`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostProgram {
    /// The harness copies the program it runs here (the bundled node) to every host.
    Copied,
    /// The program must be installed on every host already: its name (found on the PATH
    /// root has there) or its path there, and what to do where it is missing; and the flag
    /// that makes it print its version (its first line), if it has one.
    Installed {
        program: String,
        fix: String,
        version_flag: Option<&'static str>,
        /// The version it must say (the first line of its answer to `version_flag`), if
        /// it must: the bundled node installed there must be the build the harness expects.
        version: Option<String>,
    },
}

/// Where `from` connects to reach each other node's peer address: the node itself, or a
/// proxy in between.
pub type Dials<'a> = &'a dyn Fn(&str) -> SocketAddr;

/// What the harness must know of a system. Start and restart are the same launch: a system
/// whose nodes need to be told they are coming back does that from what is on disk.
pub trait System: Send + Sync {
    /// What test.json records of it: its name (as `--system` takes it) and version.
    fn record(&self) -> SystemRecord;

    /// Whether its links can be cut only between network namespaces: its peers connect
    /// from addresses it does not choose, or know each other by addresses a proxy cannot
    /// stand in for.
    fn needs_namespaces(&self) -> bool {
        false
    }

    /// How its nodes run on hosts of their own (`--hosts`): their program copied there or
    /// installed there; or why they cannot run on hosts.
    fn on_hosts(&self) -> Result<HostProgram, String> {
        Err(format!(
            "{} runs on this machine only for now",
            self.record().name
        ))
    }

    /// Whether [`System::status`] says which node leads. A system that cannot is ready once
    /// every node answers, and its leader faults fall back to a node of their choice.
    fn reports_leader(&self) -> bool {
        true
    }

    /// Whether [`System::status`] gives Raft's last log index and commit index, so that the
    /// Leader Completeness check (`completeness.rs`) applies. Other systems' stand-ins for them
    /// (etcd's lagging commit index, Redis's replication offsets) are not Raft's.
    fn reports_raft_log(&self) -> bool {
        false
    }

    /// Why the nodes' clocks cannot be faulted (the `clock` fault), if they cannot: that
    /// needs a node program the harness starts itself, dynamically linked, so that
    /// libfaketime can be preloaded into it. `None` when they can.
    fn clock_unfaultable(&self) -> Option<String> {
        Some(format!(
            "the nodes of {} run programs Faultline does not control (their clocks cannot be \
             faked under libfaketime); only the bundled node's can",
            self.record().name
        ))
    }

    /// What the node's own CLOCK_REALTIME read when it answered, in microseconds since the
    /// epoch, if it tells (the bundled node's `/status` does: `realtime_us`). The proof that
    /// a clock fault moved its clock.
    fn realtime_us<'a>(&'a self, _node: &'a NodeRecord) -> BoxFuture<'a, Option<i64>> {
        Box::pin(async { None })
    }

    /// Why its membership cannot change during a run (the `membership` fault), if it
    /// cannot: that needs an API to add and remove members, and nodes that can start as
    /// spares, outside the cluster. `None` when it can.
    fn membership_unchangeable(&self) -> Option<String> {
        Some(format!(
            "Faultline cannot change the membership of {} (only the bundled node's, through \
             its admin API)",
            self.record().name
        ))
    }

    /// The members as `node` (the leader, best) sees them; `None` if it does not answer.
    fn members<'a>(&'a self, _node: &'a NodeRecord) -> BoxFuture<'a, Option<Members>> {
        Box::pin(async { None })
    }

    /// Asks `node` (the leader) for `change` and waits, bounded in time, for its answer.
    fn change_members<'a>(
        &'a self,
        _node: &'a NodeRecord,
        change: &'a MemberChange,
    ) -> BoxFuture<'a, ChangeAnswer> {
        Box::pin(async move {
            ChangeAnswer::Refused(format!(
                "cannot {} {}: {} has no membership changes",
                change.name(),
                change.node(),
                self.record().name
            ))
        })
    }

    /// Writes what the nodes need before their first start (configuration files), in the
    /// node's directory.
    fn prepare(&self, _node: &NodeRecord, _all: &[NodeRecord]) -> Result<()> {
        Ok(())
    }

    /// The process that runs `node`; `dial(to)` is where it must connect to reach `to`.
    fn launch(&self, node: &NodeRecord, all: &[NodeRecord], dial: Dials<'_>)
    -> Result<NodeCommand>;

    /// Processes that run beside `node` on its host without being under test themselves
    /// (Redis's sentinels). They start once the nodes agree on a leader (or, for a system
    /// that tells none, once every node answers), share the node's network namespace (and
    /// so its partitions), survive its kills and pauses, die with it in a power cut, start
    /// again with it when found dead, and stop with the cluster.
    fn sidecars(&self, _node: &NodeRecord, _all: &[NodeRecord]) -> Result<Vec<NodeCommand>> {
        Ok(Vec::new())
    }

    /// Whether the cluster, its leader agreed and its sidecars started, is ready for the
    /// test: e.g. Redis's sentinels know each other and every replica, so they can fail over.
    fn ready<'a>(&'a self, _all: &'a [NodeRecord]) -> BoxFuture<'a, bool> {
        Box::pin(async { true })
    }

    /// How `node` is: its role, term, leader and progress. `None` when it does not answer
    /// in time (killed, paused, cut off, starting).
    fn status<'a>(&'a self, node: &'a NodeRecord) -> BoxFuture<'a, Option<NodeStatus>>;

    /// The node's own copy of the list `key`, whatever it knows of the leader (for the
    /// divergence check); `None` when it cannot be read. Systems that cannot tell leave it.
    fn local_list<'a>(
        &'a self,
        _node: &'a NodeRecord,
        _key: &'a str,
    ) -> BoxFuture<'a, Option<Vec<Value>>> {
        Box::pin(async { None })
    }

    /// The clients of a run: client task `i` is bound to node `i % n`.
    fn clients(&self, all: &[NodeRecord], timeout: Duration) -> Result<Arc<dyn ClientFactory>>;
}

/// The names `--system` takes.
pub const SYSTEMS: &[&str] = &["faultline", "etcd", "redis"];

/// The system a run's options name, checked: its binaries exist and answer `--version` in
/// time ([`probe::VERSION_TIMEOUT`]). Cancel-safe: dropped, it kills the probe it runs.
///
/// With hosts (`--hosts`), a system whose program is installed on the hosts needs none here:
/// the hosts are checked for it once connected.
pub async fn resolve(options: &TestOptions) -> Result<Arc<dyn System>> {
    let on_hosts = !options.hosts.is_empty();
    if let Some(path) = &options.system_file {
        return Ok(Arc::new(FileSystem::load(path, on_hosts).await?));
    }
    match options.system.as_str() {
        "faultline" => Ok(Arc::new(
            FaultlineSystem::new(
                options.node_binary.clone(),
                options.bugs.clone(),
                options.node_binary_on_hosts.clone(),
            )
            .await?,
        )),
        "etcd" => {
            let reads = if options.etcd_serializable_reads {
                Consistency::Serializable
            } else {
                Consistency::Linearizable
            };
            Ok(Arc::new(EtcdSystem::new(reads, on_hosts).await?))
        }
        "redis" => Ok(Arc::new(RedisSystem::new().await?)),
        other => bail!("unknown system `{other}` (known: {})", SYSTEMS.join(", ")),
    }
}

/// `program` as it would be run: a path (with a `/`) as it is, else from the PATH.
pub(crate) fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
