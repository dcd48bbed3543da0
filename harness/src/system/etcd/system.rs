//! Starting etcd members and asking them how they are: the [`System`] side of etcd.
//!
//! Each node is one `etcd` process with the flags of a static cluster bootstrap; a
//! restarted member is started with the same flags, which etcd ignores once its data dir
//! holds a WAL. etcd's own timing (heartbeat 100 ms, election 1 s) is kept: it is what its
//! users run. Its peers connect from whatever address the kernel picks and identify each
//! other by their peer URLs, so neither the loopback iptables rules nor the proxy can cut one
//! of its links: partitions of etcd need each member in a network namespace of its own.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Result, bail};
use faultline_workloads::{BoxFuture, ClientFactory, Endpoint};
use serde_json::Value;

use super::client::EtcdClients;
use super::gateway::Consistency;
use crate::node_status::NodeStatus;
use crate::store::{NodeRecord, SystemRecord};
use crate::system::probe::{self, ProbeError};
use crate::system::{Dials, HostProgram, NodeCommand, System, find_program};

/// A member's status must come within this, so a paused member never stalls the harness.
const STATUS_TIMEOUT: Duration = Duration::from_millis(300);

/// etcd's program, on the PATH.
const PROGRAM: &str = "etcd";

/// What to install when `etcd` is missing.
const INSTALL: &str = "apt-get install -y etcd-server";

/// etcd, as Debian packages it.
pub struct EtcdSystem {
    binary: PathBuf,
    version: Option<String>,
    /// How the workload's reads read (final reads are always linearizable).
    reads: Consistency,
    /// For the harness's questions to members (status, a member's own copy of a list),
    /// made for the cluster's members the first time they are prepared.
    members: OnceLock<EtcdClients>,
}

impl EtcdSystem {
    /// etcd from the PATH, whose workload reads are `reads`. Fails, naming the package,
    /// when it is not installed, and naming the binary when it does not answer `--version`
    /// within [`probe::VERSION_TIMEOUT`]. On hosts (`on_hosts`), etcd runs from each host's
    /// PATH and none is needed here: the hosts are checked for it, and tell its version.
    pub async fn new(reads: Consistency, on_hosts: bool) -> Result<EtcdSystem> {
        if on_hosts {
            return Ok(EtcdSystem {
                binary: PathBuf::from(PROGRAM),
                version: None,
                reads,
                members: OnceLock::new(),
            });
        }
        let Some(binary) = find_program(PROGRAM) else {
            bail!("etcd is not installed (no `etcd` on the PATH): {INSTALL}");
        };
        let version = match probe::run(&binary, &["--version"], probe::VERSION_TIMEOUT).await {
            Ok(finished) => finished.first_line(),
            Err(ProbeError::TimedOut(limit)) => bail!(
                "{} did not answer `--version` within {} s (it was killed); is it etcd? {INSTALL}",
                binary.display(),
                limit.as_secs()
            ),
            Err(_) => None,
        };
        Ok(EtcdSystem {
            binary,
            version,
            reads,
            members: OnceLock::new(),
        })
    }

    fn members(&self, all: &[NodeRecord]) -> Result<&EtcdClients> {
        if let Some(members) = self.members.get() {
            return Ok(members);
        }
        let members = EtcdClients::new(&endpoints(all), STATUS_TIMEOUT, Consistency::Serializable)?;
        Ok(self.members.get_or_init(|| members))
    }
}

impl System for EtcdSystem {
    fn record(&self) -> SystemRecord {
        SystemRecord {
            name: "etcd".to_string(),
            version: self.version.clone(),
            file: None,
        }
    }

    fn needs_namespaces(&self) -> bool {
        true
    }

    /// Debian's etcd, installed on every host.
    fn on_hosts(&self) -> Result<HostProgram, String> {
        Ok(HostProgram::Installed {
            program: PROGRAM.to_string(),
            fix: format!("install it ({INSTALL})"),
            version_flag: Some("--version"),
            version: None,
        })
    }

    fn prepare(&self, _node: &NodeRecord, all: &[NodeRecord]) -> Result<()> {
        self.members(all)?;
        Ok(())
    }

    fn launch(
        &self,
        node: &NodeRecord,
        all: &[NodeRecord],
        _dial: Dials<'_>,
    ) -> Result<NodeCommand> {
        let peer_url = |n: &NodeRecord| format!("http://{}", n.peer_addr);
        let initial_cluster: Vec<String> = all
            .iter()
            .map(|n| format!("{}={}", n.name, peer_url(n)))
            .collect();
        let args = [
            ("--name", node.name.clone()),
            ("--data-dir", node.data_dir().display().to_string()),
            ("--listen-peer-urls", peer_url(node)),
            ("--initial-advertise-peer-urls", peer_url(node)),
            ("--listen-client-urls", node.client_url()),
            ("--advertise-client-urls", node.client_url()),
            ("--initial-cluster", initial_cluster.join(",")),
            ("--initial-cluster-state", "new".to_string()),
            ("--initial-cluster-token", cluster_token(node)),
            ("--logger", "zap".to_string()),
            ("--log-outputs", "stderr".to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value])
        .collect();
        Ok(NodeCommand {
            program: self.binary.clone(),
            args,
            log: node.log_path(),
        })
    }

    fn status<'a>(&'a self, node: &'a NodeRecord) -> BoxFuture<'a, Option<NodeStatus>> {
        Box::pin(async move {
            let member = self.members.get()?.member_status(&node.name).await.ok()?;
            Some(NodeStatus {
                id: node.name.clone(),
                role: if member.leads { "leader" } else { "follower" }.to_string(),
                term: member.term,
                leader: member.leader,
                commit: member.commit,
                applied: member.applied,
                // etcd tells no last log index: its commit index stands in, so that the
                // stall watch (a log that grows while the commit index does not) never fires.
                last_log_index: member.commit,
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
            let list = self.members.get()?.local_list(&node.name, key).await.ok()?;
            Some(list.into_iter().map(Value::from).collect())
        })
    }

    fn clients(&self, all: &[NodeRecord], timeout: Duration) -> Result<Arc<dyn ClientFactory>> {
        Ok(Arc::new(EtcdClients::new(
            &endpoints(all),
            timeout,
            self.reads,
        )?))
    }
}

fn endpoints(all: &[NodeRecord]) -> Vec<Endpoint> {
    all.iter()
        .map(|node| Endpoint::new(node.name.clone(), node.client_url()))
        .collect()
}

/// One token per run, so that members of two runs never take each other for peers: the
/// run directory's name (`nodes/<name>` sits in it).
fn cluster_token(node: &NodeRecord) -> String {
    let run = node
        .dir
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("faultline-{run}")
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use super::*;

    fn node(i: u8) -> NodeRecord {
        let ip = Ipv4Addr::new(127, 0, 0, 10 + i);
        NodeRecord {
            name: format!("n{i}"),
            ip,
            client_addr: SocketAddr::from((ip, 2379)),
            peer_addr: SocketAddr::from((ip, 2380)),
            dir: PathBuf::from(format!("/store/t/20261205T081500/nodes/n{i}")),
            namespace: None,
            spare: false,
            host: None,
        }
    }

    #[test]
    fn every_member_is_started_with_the_whole_static_cluster_and_the_run_s_token() {
        let system = EtcdSystem {
            binary: PathBuf::from("/usr/bin/etcd"),
            version: None,
            reads: Consistency::Linearizable,
            members: OnceLock::new(),
        };
        let all = [node(1), node(2), node(3)];
        let dial = |_: &str| all[0].peer_addr;
        let command = system.launch(&all[1], &all, &dial).unwrap();
        assert_eq!(command.program, PathBuf::from("/usr/bin/etcd"));
        assert_eq!(
            command.args.join(" "),
            "--name n2 --data-dir /store/t/20261205T081500/nodes/n2/data \
             --listen-peer-urls http://127.0.0.12:2380 \
             --initial-advertise-peer-urls http://127.0.0.12:2380 \
             --listen-client-urls http://127.0.0.12:2379 \
             --advertise-client-urls http://127.0.0.12:2379 \
             --initial-cluster n1=http://127.0.0.11:2380,n2=http://127.0.0.12:2380,n3=http://127.0.0.13:2380 \
             --initial-cluster-state new --initial-cluster-token faultline-20261205T081500 \
             --logger zap --log-outputs stderr"
        );
        assert_eq!(command.log, all[1].log_path());
    }
}
