//! The hosts of a run (`faultline test --hosts`): one node on each, reached over SSH. Set up
//! before the cluster starts (every host connected, checked and its clock measured, at once;
//! the node binary is put on each when the first node starts), and at the end each node's
//! directory copied into the run's and every host cleaned, whatever failed before.
//!
//! On a host, everything of a run lives under one directory, [`RemoteNodes::root`]
//! (`/var/tmp/faultline/<pid>-<time>` on the harness's side): `bin/` for the node binary,
//! `nodes/<name>/` for each node (its data dir, log, pid and exit files), as under the run
//! directory here.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use faultline_nemesis::{FirewallError, HostFirewall, NodeName, own_chain_prefix};
use futures::future::{BoxFuture, join_all};

use super::disk::RemoteDisk;
use super::host::{ClockOffset, HostNeeds, RUNS_DIR, ReadyHost, RemoteHost, RemoteProgram, now_ns};
use super::links::RemoteLinks;
use super::process::RemoteProcess;
use super::ssh::{SshError, SshOptions};
use crate::host_addr::HostAddr;
use crate::store::HostRecord;
use crate::system::{HostProgram, NodeCommand};

/// The environment variables of the harness that its nodes see on a host too (locally they
/// inherit the whole environment): the node's own settings, and its logging.
fn passed_on(name: &str) -> bool {
    name.starts_with("FAULTLINE_") || name == "RUST_LOG" || name == "RUST_BACKTRACE"
}

/// One node's host.
struct NodeHost {
    addr: HostAddr,
    host: Arc<RemoteHost>,
    ip: Ipv4Addr,
    clock: ClockOffset,
    /// What its installed node program says of its version.
    program_version: Option<String>,
    /// Whether it has FUSE, for power-loss disks.
    fuse: bool,
    /// Where its libfaketime is, for the clock faults.
    faketime: Option<String>,
}

/// The hosts of a run, by the node each runs.
pub struct RemoteNodes {
    hosts: BTreeMap<NodeName, NodeHost>,
    root: String,
    /// How the node's program gets onto the hosts.
    program: HostProgram,
    /// What the first host's installed node program said of its version.
    program_version: Option<String>,
    /// The node program's path on the hosts, once put there (or found installed).
    node_program: tokio::sync::OnceCell<String>,
    /// The harness's own binary on the hosts, once put there (for power-loss disks and the
    /// links' proxies).
    harness: tokio::sync::OnceCell<String>,
}

impl std::fmt::Debug for RemoteNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts: BTreeMap<&str, String> = (self.hosts.iter())
            .map(|(node, host)| (node.as_str(), host.addr.to_string()))
            .collect();
        f.debug_struct("RemoteNodes")
            .field("hosts", &hosts)
            .field("root", &self.root)
            .finish()
    }
}

/// Partitions on hosts: the rules of `faultline_nemesis::HostRules`, run on each node's host.
impl HostFirewall for RemoteNodes {
    fn iptables<'a>(
        &'a self,
        node: &'a str,
        args: &'a [String],
    ) -> BoxFuture<'a, Result<String, FirewallError>> {
        Box::pin(async move {
            let host = self.host(node).map_err(FirewallError::from)?;
            Ok(host.host.iptables(args).await?)
        })
    }
}

/// A host that could not be cleaned at the end, and why: the summary names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UncleanHost {
    pub host: String,
    pub reason: String,
}

impl RemoteNodes {
    /// Connects to every host at once, one node each in the order of `names`: checks that it
    /// can run nodes there (root or passwordless sudo, the programs needed, and what `needs`
    /// asks: iptables, the node's program), learns the address it was reached at and measures
    /// its clock. Every host that is not ready is named, with what to fix.
    pub async fn connect(
        hosts: &[HostAddr],
        names: &[NodeName],
        options: &SshOptions,
        needs: &HostNeeds,
    ) -> Result<RemoteNodes> {
        if hosts.len() != names.len() {
            bail!(
                "{} hosts for {} nodes: --hosts puts one node on each host",
                hosts.len(),
                names.len()
            );
        }
        let answers = join_all(
            hosts
                .iter()
                .map(|addr| ready_host(addr.clone(), options, needs)),
        )
        .await;
        let mut ready = BTreeMap::new();
        let mut not_ready = Vec::new();
        for (name, answer) in names.iter().zip(answers) {
            match answer {
                Ok(host) => {
                    ready.insert(name.clone(), host);
                }
                // Every error names its host already.
                Err(error) => not_ready.push(error.to_string()),
            }
        }
        if !not_ready.is_empty() {
            for (_, host) in ready {
                if let Ok(host) = Arc::try_unwrap(host.host) {
                    let _ = host.close().await;
                }
            }
            bail!(
                "{} of {} hosts not ready (`faultline hosts --hosts ...` checks them):\n  {}",
                not_ready.len(),
                hosts.len(),
                not_ready.join("\n  ")
            );
        }
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        let program_version = versions_of(
            (ready.values()).map(|host| (host.addr.to_string(), host.program_version.as_deref())),
        );
        Ok(RemoteNodes {
            hosts: ready,
            root: format!("{RUNS_DIR}/{}-{started}", std::process::id()),
            program: needs.program.clone(),
            program_version,
            node_program: tokio::sync::OnceCell::new(),
            harness: tokio::sync::OnceCell::new(),
        })
    }

    /// What the node's program installed on the hosts says of its version (each version with
    /// its hosts, if they differ), for a system that could not ask one here.
    pub fn program_version(&self) -> Option<&str> {
        self.program_version.as_deref()
    }

    /// The node program's path on the hosts, for the program `local` that runs the nodes
    /// here: copied to every host the first time (the bundled node), or the one installed
    /// there.
    pub async fn program(&self, local: &Path) -> Result<String> {
        let program = self
            .node_program
            .get_or_try_init(|| async {
                match &self.program {
                    HostProgram::Installed { program, .. } => Ok(program.clone()),
                    HostProgram::Copied => self.put_program(local).await,
                }
            })
            .await?;
        Ok(program.clone())
    }

    /// The hosts without FUSE, where no power-loss disk can be mounted.
    pub fn without_fuse(&self) -> Vec<String> {
        (self.hosts.values())
            .filter(|host| !host.fuse)
            .map(|host| host.addr.to_string())
            .collect()
    }

    /// The hosts without libfaketime, where no node's clock can be moved.
    pub fn without_faketime(&self) -> Vec<String> {
        (self.hosts.values())
            .filter(|host| host.faketime.is_none())
            .map(|host| host.addr.to_string())
            .collect()
    }

    /// Where libfaketime is on `node`'s host.
    pub fn faketime(&self, node: &str) -> Result<&str> {
        let host = self.host(node)?;
        match &host.faketime {
            Some(library) => Ok(library),
            None => bail!("{} has no libfaketime", host.addr),
        }
    }

    /// `node`'s host's clock minus this machine's, in milliseconds, as measured at the start.
    pub fn clock_offset_ms(&self, node: &str) -> Result<f64> {
        Ok(self.host(node)?.clock.offset_ms)
    }

    /// The instant of this machine when `node`'s host's clock read `host_ns` (nanoseconds
    /// since the epoch), through the host's offset measured at the start.
    pub fn instant_here(&self, node: &str, host_ns: i128) -> Result<tokio::time::Instant> {
        let offset_ns = (self.host(node)?.clock.offset_ms * 1e6) as i128;
        let now = tokio::time::Instant::now();
        let ago = now_ns() - (host_ns - offset_ns);
        let by = std::time::Duration::from_nanos(ago.unsigned_abs().min(u64::MAX as u128) as u64);
        let at = if ago >= 0 {
            now.checked_sub(by)
        } else {
            now.checked_add(by)
        };
        at.ok_or_else(|| anyhow::anyhow!("the host of {node} named a time {ago} ns from now"))
    }

    /// Writes `line` to the file `path` on `node`'s host, whole (see [`RemoteHost::write_line`]).
    pub async fn write_line(&self, node: &str, path: &str, line: &str) -> Result<()> {
        Ok(self.host(node)?.host.write_line(path, line).await?)
    }

    /// This harness's binary on the hosts, copied to every host the first time, to serve
    /// `what` there.
    async fn harness(&self, what: &str) -> Result<&str> {
        let program = self
            .harness
            .get_or_try_init(|| async {
                let harness = std::env::current_exe()
                    .with_context(|| format!("finding this executable, to serve {what}"))?;
                self.put_program(&harness)
                    .await
                    .with_context(|| format!("putting the harness on the hosts, to serve {what}"))
            })
            .await?;
        Ok(program)
    }

    /// Mounts a power-loss disk on `node`'s data dir on its host, served there by this
    /// harness's binary.
    pub async fn mount_disk(&self, node: &str) -> Result<RemoteDisk> {
        let host = self.host(node)?;
        let program = self.harness("power-loss disks on the hosts").await?;
        let data_dir = format!("{}/data", self.node_dir(node));
        RemoteDisk::mount(&host.host, program, &data_dir, node).await
    }

    /// Proxies every node's links to the others on its host (`peers`: each node's peer
    /// address), served there by this harness's binary, so that they can be slowed and
    /// made lossy.
    pub async fn proxy_links(&self, peers: &BTreeMap<NodeName, SocketAddr>) -> Result<RemoteLinks> {
        let program = self.harness("the links' proxies on the hosts").await?;
        let hosts = (self.hosts.iter())
            .map(|(node, host)| (node.clone(), host.host.as_ref()))
            .collect();
        RemoteLinks::start(&hosts, program, peers).await
    }

    /// Where everything of the run lives on every host.
    pub fn root(&self) -> &str {
        &self.root
    }

    fn host(&self, node: &str) -> Result<&NodeHost> {
        match self.hosts.get(node) {
            Some(host) => Ok(host),
            None => bail!("no host runs {node}"),
        }
    }

    /// The address of `node`'s host, where it listens.
    pub fn ip(&self, node: &str) -> Result<Ipv4Addr> {
        Ok(self.host(node)?.ip)
    }

    /// `node`'s directory on its host.
    pub fn node_dir(&self, node: &str) -> String {
        format!("{}/nodes/{node}", self.root)
    }

    /// What test.json records of `node`'s host.
    pub fn record(&self, node: &str) -> Result<HostRecord> {
        let host = self.host(node)?;
        Ok(HostRecord {
            ssh: host.addr.to_string(),
            dir: self.node_dir(node),
            clock_offset_ms: host.clock.offset_ms,
            clock_round_trip_ms: host.clock.round_trip_ms,
        })
    }

    /// Puts the local program `local` on every host, at once, and returns its path there.
    async fn put_program(&self, local: &Path) -> Result<String> {
        let Some(file_name) = local.file_name() else {
            bail!("{} is not a program's path", local.display());
        };
        let remote = format!("{}/bin/{}", self.root, file_name.to_string_lossy());
        let puts = self
            .hosts
            .values()
            .map(|host| host.host.put_file(local, &remote));
        for put in join_all(puts).await {
            put?;
        }
        Ok(remote)
    }

    /// Starts `launch` (whose paths are the host's already) on `node`'s host, with the
    /// environment the nodes see there (see [`passed_on`]) and `env` added to it.
    pub async fn start(
        &self,
        node: &str,
        launch: &NodeCommand,
        env: &[(&str, OsString)],
    ) -> Result<RemoteProcess> {
        let host = self.host(node)?;
        let env: Vec<String> = std::env::vars()
            .filter(|(name, _)| passed_on(name))
            .map(|(name, value)| format!("{name}={value}"))
            .chain(
                env.iter()
                    .map(|(name, value)| format!("{name}={}", value.to_string_lossy())),
            )
            .collect();
        let (program, args) = if env.is_empty() {
            (launch.program.display().to_string(), launch.args.clone())
        } else {
            let mut args = env;
            args.push(launch.program.display().to_string());
            args.extend(launch.args.iter().cloned());
            ("env".to_string(), args)
        };
        let program = RemoteProgram {
            program,
            args,
            dir: self.node_dir(node),
            log: launch.log.display().to_string(),
        };
        Ok(RemoteProcess::start(host.host.clone(), &program).await?)
    }

    /// The end of the run on every host, each step tried whatever failed before, and each
    /// step on every host at once before the next begins (hosts that share a disk, as the
    /// SSH tests' do, must not remove what another still copies): kills whatever still runs
    /// under the run's directory and removes this process's chains, copies each node's directory into `local_dirs[node]`, and
    /// removes the run's directory (the connections close when the last holder drops them).
    /// Returns the hosts where something failed, with what.
    pub async fn collect_and_clean(
        &self,
        local_dirs: &BTreeMap<NodeName, std::path::PathBuf>,
    ) -> Vec<UncleanHost> {
        let root = &self.root;
        let nodes_dir = format!("{root}/nodes");
        let nodes_dir = &nodes_dir;
        // The partitions' own teardown ran before; whatever chain of ours it left (it failed,
        // or the run stopped midway) goes here, and a host where that fails is named.
        let chains = &own_chain_prefix();
        let killed = join_all(self.hosts.iter().map(|(node, host)| async move {
            let killed = host.host.kill_all_under(nodes_dir).await.map(drop);
            let unhooked = host.host.remove_chains(chains).await.map(drop);
            (node, killed.and(unhooked))
        }))
        .await;
        let copied = join_all(self.hosts.iter().filter_map(|(node, host)| {
            let local = local_dirs.get(node)?;
            Some(async move {
                let from = self.node_dir(node);
                (node, host.host.copy_dir_back(&from, local).await)
            })
        }))
        .await;
        let removed = join_all(
            (self.hosts.iter())
                .map(|(node, host)| async move { (node, host.host.remove_dir(root).await) }),
        )
        .await;
        let mut failures: BTreeMap<&NodeName, Vec<String>> = BTreeMap::new();
        for (node, result) in killed.into_iter().chain(copied).chain(removed) {
            if let Err(error) = result {
                failures.entry(node).or_default().push(error.to_string());
            }
        }
        failures
            .into_iter()
            .map(|(node, reasons)| UncleanHost {
                host: self.hosts[node].addr.to_string(),
                reason: reasons.join("; "),
            })
            .collect()
    }
}

/// What the hosts' installed node program said of its version: the one version, or, where
/// hosts differ (a cluster in the middle of an upgrade), each with its hosts, and a warning.
fn versions_of<'a>(hosts: impl Iterator<Item = (String, Option<&'a str>)>) -> Option<String> {
    let mut versions: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (host, version) in hosts {
        if let Some(version) = version {
            versions.entry(version).or_default().push(host);
        }
    }
    match versions.len() {
        0 => None,
        1 => versions.into_keys().next().map(str::to_string),
        _ => {
            let each: Vec<String> = (versions.iter())
                .map(|(version, hosts)| format!("{version} ({})", hosts.join(", ")))
                .collect();
            let each = each.join("; ");
            tracing::warn!("the hosts run different versions of the node's program: {each}");
            Some(each)
        }
    }
}

/// Connects to `addr`, checks it and measures its clock, and requires that it learned the
/// host's IPv4 address.
async fn ready_host(
    addr: HostAddr,
    options: &SshOptions,
    needs: &HostNeeds,
) -> Result<NodeHost, SshError> {
    let ready = ReadyHost::connect(&addr, options, needs).await?;
    let Some(ip) = ready.facts.address else {
        let _ = ready.host.close().await;
        return Err(SshError::Failed {
            host: addr.to_string(),
            what: "learning the host's address".to_string(),
            status: "no IPv4 address".to_string(),
            stderr: "sshd's SSH_CONNECTION names no IPv4 address of the host: reach it at an \
                     IPv4 address"
                .to_string(),
        });
    };
    Ok(NodeHost {
        addr,
        host: Arc::new(ready.host),
        ip,
        clock: ready.clock,
        program_version: ready.facts.program_version,
        fuse: ready.facts.fuse,
        faketime: ready.facts.faketime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_that_run_different_versions_are_each_named_with_theirs() {
        let of = |hosts: &[(&str, Option<&'static str>)]| {
            versions_of(
                hosts
                    .iter()
                    .map(|(host, version)| (host.to_string(), *version)),
            )
        };
        assert_eq!(of(&[("h1", None), ("h2", None)]), None);
        assert_eq!(
            of(&[
                ("h1", Some("etcd 3.4")),
                ("h2", None),
                ("h3", Some("etcd 3.4"))
            ])
            .as_deref(),
            Some("etcd 3.4")
        );
        assert_eq!(
            of(&[
                ("h1", Some("etcd 3.5")),
                ("h2", Some("etcd 3.4")),
                ("h3", Some("etcd 3.5"))
            ])
            .as_deref(),
            Some("etcd 3.4 (h2); etcd 3.5 (h1, h3)")
        );
    }

    #[test]
    fn the_nodes_own_settings_and_logging_go_to_the_hosts_and_nothing_else() {
        assert!(passed_on("FAULTLINE_READ_MODE"));
        assert!(passed_on("RUST_LOG"));
        assert!(!passed_on("PATH"));
        assert!(!passed_on("HOME"));
        assert!(!passed_on("SSH_AUTH_SOCK"));
    }
}
