//! [`NodeNetwork`]: each node in a network namespace of its own, with its own IP on a
//! bridge, as close to separate machines as one Linux box gets. For systems that cannot
//! choose the source address of their peer connections: a partition is then a rule inside
//! the receiving node's namespace (`partition/netns.rs`), whatever address the sender used.
//!
//! # Topology
//!
//! A run's network is named `<pid>-<k>` (see `owned_names.rs`), and made of:
//!
//! ```text
//!  root namespace              faultline-<pid>-<k>-hub        faultline-<pid>-<k>-n1
//!  fl<pid>-<k> 198.18.X.1 ─── host ─┐
//!                                   br0 ─ n1 ───────────────── eth0 198.18.X.11
//!                                       ─ n2 ───────────────── eth0 198.18.X.12
//!                                                             faultline-<pid>-<k>-n2
//! ```
//!
//! - The bridge lives in a hub namespace of its own, not in the root one: with
//!   br_netfilter loaded, bridged frames traverse the FORWARD chain of the bridge's
//!   namespace, which hosts running Docker set to DROP. The hub's chains are empty.
//! - The one interface in the root namespace is `fl<pid>-<k>`, the harness's end of a veth
//!   pair: clients, in the root namespace, reach every node from 198.18.X.1. Every other
//!   name lives inside namespaces of ours, so it cannot collide with anything.
//! - The addresses are one /24 of 198.18.0.0/15 (reserved for benchmarking, RFC 2544),
//!   chosen under a lock as the first that nothing in the root namespace uses, neither an
//!   address nor a route. Nodes have no default route and nothing forwards, so these
//!   addresses reach our veths and nothing else.
//! - Each node namespace has its own loopback and its own iptables.
//!
//! # Life cycle
//!
//! [`NodeNetwork::create`] builds it all (or, failing, removes what it built);
//! [`NodeNetwork::enter`] makes a command start inside a node's namespace;
//! [`NodeNetwork::teardown`] removes it all, and so does dropping the network, as a last
//! resort. A run that was SIGKILLed leaves its namespaces (its nodes die with it by their
//! parent-death signal) for [`remove_leftover_namespaces`], which finds them by the dead pid
//! in their names; the veths and the bridge vanish with them.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use nix::fcntl::{Flock, FlockArg};
use nix::sched::{CloneFlags, setns};
use serde::Deserialize;

use crate::cluster::NodeName;
use crate::owned_names::{fresh_id, is_leftover};
use crate::time_limit::output_within;

/// Every Faultline namespace's name starts with this: `faultline-<pid>-<k>-hub`,
/// `faultline-<pid>-<k>-n1`, ... (files under `/run/netns`).
pub const NAMESPACE_PREFIX: &str = "faultline-";

/// The name of the one interface a [`NodeNetwork`] adds to the root namespace starts with
/// this: `fl<pid>-<k>`.
pub const HOST_LINK_PREFIX: &str = "fl";

/// The most nodes one network holds: addresses `.11` to `.254` of its /24.
pub const MAX_NODES: usize = 244;

/// Where iproute2 keeps named namespaces (bind mounts of their nsfs files).
const NETNS_DIR: &str = "/run/netns";

/// Held while a network chooses its subnet and claims it, so that concurrent runs, in this
/// process or others, never choose the same one. Never removed: a lock file that vanished
/// while held would let two processes lock two different files.
const LOCK_PATH: &str = "/run/faultline-netns.lock";

/// Numbers the networks of one process.
static NEXT_NETWORK: AtomicU32 = AtomicU32::new(0);

/// Building, entering or removing network namespaces failed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// `ip` could not be started (usually: not installed).
    #[error("cannot run `ip` ({source}); install iproute2 (apt-get install -y iproute2)")]
    Spawn {
        /// Why it could not be started.
        #[source]
        source: io::Error,
    },
    /// An `ip` command exited with an error.
    #[error("`ip {command}` failed ({status}): {stderr}{hint}", hint = hint(stderr))]
    Failed {
        /// The arguments, space-separated.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// What it printed on stderr, trimmed.
        stderr: String,
    },
    /// An `ip` command did not finish in time (it was killed).
    #[error("`ip {command}` did not finish within {} s (it was killed)", IP_TIMEOUT.as_secs())]
    TimedOut {
        /// The arguments, space-separated.
        command: String,
    },
    /// `ip` printed something other than what it was asked for.
    #[error("cannot read the output of `ip {command}`: {reason}")]
    Output {
        /// The arguments, space-separated.
        command: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The lock that serialises the choice of subnets could not be taken.
    #[error("cannot lock {} ({source}){hint}", path.display(), hint = io_hint(source))]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Every /24 of 198.18.0.0/15 is in use in the root namespace.
    #[error(
        "no free /24 in 198.18.0.0/15: each has an address or a route in the root namespace; \
         remove leftover namespaces (ip netns list) or whatever else uses that range"
    )]
    NoFreeSubnet,
    /// A node was named twice.
    #[error("node `{0}` is named twice")]
    DuplicateNode(NodeName),
    /// More nodes than a subnet has addresses for.
    #[error("{0} nodes are more than one network holds ({MAX_NODES})")]
    TooManyNodes(usize),
    /// A node the network was not created with.
    #[error("no network namespace is known for node `{0}`")]
    UnknownNode(NodeName),
    /// A namespace's file could not be opened (the network was torn down, usually).
    #[error("cannot open the network namespace {} ({source})", path.display())]
    Open {
        /// Its file under `/run/netns`.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `/run/netns` could not be listed.
    #[error("cannot list {} ({source})", path.display())]
    List {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

const NEEDS_ROOT: &str = "; network namespaces, veths and bridges need root \
     (CAP_SYS_ADMIN and CAP_NET_ADMIN): run as root";

/// Turns `ip`'s complaint about privileges into advice.
fn hint(stderr: &str) -> &'static str {
    if stderr.contains("Operation not permitted") || stderr.contains("Permission denied") {
        NEEDS_ROOT
    } else {
        ""
    }
}

/// The same advice for a file that could not be opened or locked.
fn io_hint(error: &io::Error) -> &'static str {
    if error.kind() == io::ErrorKind::PermissionDenied {
        NEEDS_ROOT
    } else {
        ""
    }
}

/// Nodes in network namespaces of their own, joined by a bridge, reachable from the root
/// namespace (see the module's documentation for the topology).
#[derive(Debug)]
pub struct NodeNetwork {
    /// The hub namespace, which holds the bridge.
    hub: String,
    /// The root namespace's end of the veth to the hub.
    host_link: String,
    subnet: Subnet,
    members: Vec<Member>,
    torn_down: AtomicBool,
}

/// One node's place in the network.
#[derive(Debug)]
struct Member {
    node: NodeName,
    namespace: String,
    addr: Ipv4Addr,
    /// The hub's end of the node's veth (the node's end is `eth0`).
    hub_link: String,
}

impl NodeNetwork {
    /// Builds a namespace for each of `nodes` (node `i`, from 1, gets `198.18.X.(10+i)`),
    /// the hub with its bridge, and the root namespace's link to it. Fails with a clear
    /// reason when `ip` is missing or this process is not root; whatever was built by then
    /// is removed.
    pub async fn create(nodes: &[NodeName]) -> Result<Self, NetnsError> {
        check_nodes(nodes)?;
        let id = fresh_id(&NEXT_NETWORK);
        let lock = lock_subnets().await?;
        let network = NodeNetwork::plan(&id, free_subnet().await?, nodes);
        // Once the host link has its address, other runs see the subnet as taken.
        let mut built = network.build(network.hub_commands()).await;
        drop(lock);
        if built.is_ok() {
            built = network.build(network.node_commands()).await;
        }
        if let Err(error) = built {
            if let Err(cleanup) = network.teardown().await {
                tracing::warn!(%cleanup, "could not remove a network that failed to build");
            }
            return Err(error);
        }
        Ok(network)
    }

    /// The names and addresses of a network `<pid>-<k>` = `id` on `subnet`, before any of it
    /// exists.
    fn plan(id: &str, subnet: Subnet, nodes: &[NodeName]) -> Self {
        let members = nodes
            .iter()
            .zip(1u8..)
            .map(|(node, i)| Member {
                node: node.clone(),
                namespace: format!("{NAMESPACE_PREFIX}{id}-n{i}"),
                addr: subnet.addr(10 + i),
                hub_link: format!("n{i}"),
            })
            .collect();
        NodeNetwork {
            hub: format!("{NAMESPACE_PREFIX}{id}-hub"),
            host_link: format!("{HOST_LINK_PREFIX}{id}"),
            subnet,
            members,
            torn_down: AtomicBool::new(false),
        }
    }

    /// Runs `ip` commands in order, stopping at the first that fails.
    async fn build(&self, commands: Vec<Vec<String>>) -> Result<(), NetnsError> {
        for args in commands {
            ip(&args).await?;
        }
        Ok(())
    }

    /// The hub, its bridge, and the host link with the subnet's first address.
    fn hub_commands(&self) -> Vec<Vec<String>> {
        let (hub, host) = (self.hub.as_str(), self.host_link.as_str());
        let host_addr = format!("{}/24", self.host_addr());
        [
            &["netns", "add", hub][..],
            &["-n", hub, "link", "add", "br0", "type", "bridge"],
            &["-n", hub, "link", "set", "br0", "up"],
            &[
                "link", "add", host, "type", "veth", "peer", "name", "host", "netns", hub,
            ],
            &["-n", hub, "link", "set", "host", "master", "br0", "up"],
            &["addr", "add", &host_addr, "dev", host],
            &["link", "set", host, "up"],
        ]
        .map(strings)
        .into()
    }

    /// Each node's namespace, its veth to the bridge, its address.
    fn node_commands(&self) -> Vec<Vec<String>> {
        let hub = self.hub.as_str();
        self.members
            .iter()
            .flat_map(|member| {
                let (namespace, link) = (member.namespace.as_str(), member.hub_link.as_str());
                let addr = format!("{}/24", member.addr);
                [
                    &["netns", "add", namespace][..],
                    // The veth's other end is created straight into the node's namespace.
                    &[
                        "-n", hub, "link", "add", link, "type", "veth", "peer", "name", "eth0",
                        "netns", namespace,
                    ],
                    &["-n", hub, "link", "set", link, "master", "br0", "up"],
                    &["-n", namespace, "addr", "add", &addr, "dev", "eth0"],
                    &["-n", namespace, "link", "set", "eth0", "up"],
                    &["-n", namespace, "link", "set", "lo", "up"],
                ]
                .map(strings)
            })
            .collect()
    }

    /// The nodes, in the order the network was created with.
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|member| member.node.as_str())
    }

    /// The node's address, `198.18.X.(10+i)`; `None` for a node the network was not
    /// created with.
    pub fn addr(&self, node: &str) -> Option<Ipv4Addr> {
        self.member(node).ok().map(|member| member.addr)
    }

    /// The root namespace's address on the nodes' subnet, `198.18.X.1`: what the harness's
    /// connections to nodes come from.
    pub fn host_addr(&self) -> Ipv4Addr {
        self.subnet.addr(1)
    }

    /// The name of the node's namespace, `faultline-<pid>-<k>-n<i>` (as `ip netns` lists
    /// it); `None` for a node the network was not created with.
    pub fn namespace(&self, node: &str) -> Option<&str> {
        self.member(node)
            .ok()
            .map(|member| member.namespace.as_str())
    }

    /// The name of the one interface in the root namespace, `fl<pid>-<k>`.
    pub fn host_link(&self) -> &str {
        &self.host_link
    }

    /// Makes `command` start inside the node's network namespace, and only that: unlike
    /// `ip netns exec`, the mount namespace is kept (mounts such as a power-loss data dir
    /// stay visible) and so is everything else, a parent-death signal included. The
    /// namespace's file is opened now, so a missing namespace fails here, not in the child.
    pub fn enter(
        &self,
        node: &str,
        command: &mut tokio::process::Command,
    ) -> Result<(), NetnsError> {
        let path = netns_path(&self.member(node)?.namespace);
        let namespace = File::open(&path).map_err(|source| NetnsError::Open { path, source })?;
        // SAFETY: the closure runs in the child between fork and exec, where only
        // async-signal-safe calls are allowed: setns is one system call, and turning its
        // errno into an io::Error allocates nothing. The file is opened close-on-exec, so
        // the program does not inherit it.
        unsafe {
            command.pre_exec(move || {
                setns(&namespace, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
            });
        }
        Ok(())
    }

    /// A command for `program` that runs inside the node's network namespace (see
    /// [`NodeNetwork::enter`]), e.g. `iptables` to change that node's rules.
    pub fn command(
        &self,
        node: &str,
        program: &str,
    ) -> Result<tokio::process::Command, NetnsError> {
        let mut command = tokio::process::Command::new(program);
        self.enter(node, &mut command)?;
        Ok(command)
    }

    /// Removes the host link, then every namespace (the veths and the bridge inside vanish
    /// with them), each step tried even if one fails. Calling it again does nothing.
    pub async fn teardown(&self) -> Result<(), NetnsError> {
        if self.is_torn_down() {
            return Ok(());
        }
        let mut first_error = None;
        for args in self.removal() {
            if let Err(error) = ip(&args).await {
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => {
                self.torn_down.store(true, Ordering::SeqCst);
                Ok(())
            }
        }
    }

    /// Whether [`NodeNetwork::teardown`] has removed everything.
    pub(crate) fn is_torn_down(&self) -> bool {
        self.torn_down.load(Ordering::SeqCst)
    }

    /// The `ip` commands that remove what exists of the network. The host link goes first:
    /// deleting it is immediate, while a namespace is destroyed by the kernel a moment after
    /// its last reference goes, and only then its veths; so the subnet is free on return.
    fn removal(&self) -> Vec<Vec<String>> {
        let host_link_exists = Path::new("/sys/class/net").join(&self.host_link).exists();
        let host_link = host_link_exists.then(|| strings(&["link", "del", &self.host_link]));
        let namespaces = self
            .members
            .iter()
            .map(|member| &member.namespace)
            .chain([&self.hub])
            .filter(|namespace| netns_path(namespace).exists())
            .map(|namespace| strings(&["netns", "del", namespace]));
        host_link.into_iter().chain(namespaces).collect()
    }

    fn member(&self, node: &str) -> Result<&Member, NetnsError> {
        self.members
            .iter()
            .find(|member| member.node == node)
            .ok_or_else(|| NetnsError::UnknownNode(node.to_owned()))
    }
}

/// The last resort: a network dropped without teardown (an early return, a panic) is
/// still removed.
impl Drop for NodeNetwork {
    fn drop(&mut self) {
        if self.is_torn_down() {
            return;
        }
        for args in self.removal() {
            if let Err(error) = ip_blocking(&args) {
                tracing::warn!(hub = %self.hub, %error, "network namespace teardown step failed");
            }
        }
    }
}

/// Removes the Faultline namespaces of processes that no longer exist (a run that was
/// SIGKILLed cannot tear down), and returns their names (without those another process
/// removed meanwhile). Namespaces of live processes, this one included, are left alone.
/// Fails like any `ip` command where namespaces do not work (not root, iproute2 not
/// installed); a run that does not use them can ignore that.
pub async fn remove_leftover_namespaces() -> Result<Vec<String>, NetnsError> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            let path = PathBuf::from(NETNS_DIR);
            return Err(NetnsError::List { path, source });
        }
    };
    let names = entries.filter_map(|entry| entry.ok()?.file_name().into_string().ok());
    let mut removed = Vec::new();
    for name in leftover_namespaces(names) {
        match ip(&strings(&["netns", "del", &name])).await {
            Ok(_) => removed.push(name),
            // Another run, removing leftovers as it starts, got there first.
            Err(_) if !netns_path(&name).exists() => {}
            Err(error) => return Err(error),
        }
    }
    Ok(removed)
}

/// The Faultline namespaces among `names` whose process is gone, sorted.
fn leftover_namespaces(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut leftovers: Vec<String> = names
        .filter(|name| is_leftover(name, NAMESPACE_PREFIX))
        .collect();
    leftovers.sort();
    leftovers
}

/// Refuses node lists that cannot be given namespaces and addresses.
fn check_nodes(nodes: &[NodeName]) -> Result<(), NetnsError> {
    if nodes.len() > MAX_NODES {
        return Err(NetnsError::TooManyNodes(nodes.len()));
    }
    let mut seen = BTreeSet::new();
    match nodes.iter().find(|node| !seen.insert(*node)) {
        Some(node) => Err(NetnsError::DuplicateNode(node.clone())),
        None => Ok(()),
    }
}

/// Takes the lock that serialises the choice of subnets (blocking in a thread of its own).
async fn lock_subnets() -> Result<Flock<File>, NetnsError> {
    let failed = |source| NetnsError::Lock {
        path: PathBuf::from(LOCK_PATH),
        source,
    };
    let locked = tokio::task::spawn_blocking(|| {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .mode(0o600)
            .open(LOCK_PATH)?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| io::Error::from(errno))
    })
    .await
    .map_err(|join| failed(io::Error::other(join)))?;
    locked.map_err(failed)
}

/// The first subnet that nothing in the root namespace uses. Called under the lock.
async fn free_subnet() -> Result<Subnet, NetnsError> {
    let addresses_args = strings(&["-j", "-4", "addr", "show"]);
    let routes_args = strings(&["-j", "-4", "route", "show", "table", "all"]);
    let addresses = ip(&addresses_args).await?;
    let routes = ip(&routes_args).await?;
    let unreadable = |args: &[String], reason| NetnsError::Output {
        command: args.join(" "),
        reason,
    };
    let mut in_use =
        addresses_in(&addresses).map_err(|reason| unreadable(&addresses_args, reason))?;
    in_use.extend(routes_in(&routes).map_err(|reason| unreadable(&routes_args, reason))?);
    Subnet::first_free(&in_use).ok_or(NetnsError::NoFreeSubnet)
}

/// One /24 of 198.18.0.0/15, by number: 0 is 198.18.0.0/24, 511 is 198.19.255.0/24.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Subnet(u32);

impl Subnet {
    /// 198.18.0.0, where the range starts.
    const BASE: u32 = u32::from_be_bytes([198, 18, 0, 0]);
    /// How many /24s the range holds.
    const COUNT: u32 = 512;
    /// The range's prefix length.
    const RANGE_LEN: u8 = 15;

    /// Address `host` of this subnet.
    fn addr(self, host: u8) -> Ipv4Addr {
        Ipv4Addr::from(Self::BASE + self.0 * 256 + u32::from(host))
    }

    /// The first subnet none of `in_use` (addresses or routes, as `ip/len`) makes unusable.
    fn first_free(in_use: &[(Ipv4Addr, u8)]) -> Option<Subnet> {
        let taken: BTreeSet<Subnet> = in_use
            .iter()
            .flat_map(|&(ip, len)| Subnet::overlapped(ip, len))
            .collect();
        (0..Self::COUNT)
            .map(Subnet)
            .find(|subnet| !taken.contains(subnet))
    }

    /// The subnets that an address or route `ip/len` in the root namespace makes unusable:
    /// each it overlaps, since our subnet's route would shadow it. One wider than the whole
    /// range (a default route, a VPN's 0.0.0.0/1) is a catch-all, not a use of these
    /// addresses; it takes only the subnet of `ip` itself.
    fn overlapped(ip: Ipv4Addr, len: u8) -> impl Iterator<Item = Subnet> {
        let ip = u32::from(ip);
        let (first, last) = if (Self::RANGE_LEN..=32).contains(&len) {
            // At most 2^17 addresses, aligned: no overflow.
            let span = (1u32 << (32 - len)) - 1;
            (ip & !span, (ip & !span) + span)
        } else {
            (ip, ip)
        };
        let end = Self::BASE + Self::COUNT * 256 - 1;
        let (first, last) = (first.max(Self::BASE), last.min(end));
        (first <= last)
            .then(|| (first - Self::BASE) / 256..=(last - Self::BASE) / 256)
            .into_iter()
            .flatten()
            .map(Subnet)
    }
}

/// The addresses in `ip -j -4 addr show` output, as `ip/len`.
fn addresses_in(json: &str) -> Result<Vec<(Ipv4Addr, u8)>, String> {
    #[derive(Deserialize)]
    struct Interface {
        #[serde(default)]
        addr_info: Vec<Address>,
    }
    #[derive(Deserialize)]
    struct Address {
        local: Ipv4Addr,
        prefixlen: u8,
    }
    let interfaces: Vec<Interface> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(interfaces
        .into_iter()
        .flat_map(|interface| interface.addr_info)
        .map(|address| (address.local, address.prefixlen))
        .collect())
}

/// The destinations in `ip -j -4 route show table all` output, as `ip/len` (`len` 32 for
/// a bare address); the default route is left out.
fn routes_in(json: &str) -> Result<Vec<(Ipv4Addr, u8)>, String> {
    #[derive(Deserialize)]
    struct Route {
        dst: String,
    }
    let routes: Vec<Route> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    routes
        .into_iter()
        .filter(|route| route.dst != "default")
        .map(|route| {
            let (ip, len) = route.dst.split_once('/').unwrap_or((&route.dst, "32"));
            match (ip.parse(), len.parse()) {
                (Ok(ip), Ok(len)) if len <= 32 => Ok((ip, len)),
                _ => Err(format!("unexpected route destination {:?}", route.dst)),
            }
        })
        .collect()
}

/// The file of the namespace `name`.
fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| (*arg).to_owned()).collect()
}

/// How long one `ip` command may take: it never waits on anything, so this only stops a run
/// from hanging on a wedged kernel or binary.
const IP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn ip(args: &[String]) -> Result<String, NetnsError> {
    let mut command = tokio::process::Command::new("ip");
    command.args(args);
    let output = output_within(&mut command, IP_TIMEOUT)
        .await
        .ok_or_else(|| NetnsError::TimedOut {
            command: args.join(" "),
        })?
        .map_err(|source| NetnsError::Spawn { source })?;
    checked(args, output)
}

fn ip_blocking(args: &[String]) -> Result<String, NetnsError> {
    let output = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| NetnsError::Spawn { source })?;
    checked(args, output)
}

fn checked(args: &[String], output: Output) -> Result<String, NetnsError> {
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(NetnsError::Failed {
        command: args.join(" "),
        status: output.status,
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(nodes: &[&str]) -> Vec<NodeName> {
        nodes.iter().map(|node| (*node).to_owned()).collect()
    }

    fn prefix(text: &str) -> (Ipv4Addr, u8) {
        let (ip, len) = text.split_once('/').unwrap();
        (ip.parse().unwrap(), len.parse().unwrap())
    }

    fn first_free(in_use: &[&str]) -> Option<Ipv4Addr> {
        let in_use: Vec<_> = in_use.iter().map(|text| prefix(text)).collect();
        Subnet::first_free(&in_use).map(|subnet| subnet.addr(0))
    }

    #[test]
    fn subnets_number_the_512_slash_24s_of_198_18_0_0_slash_15() {
        assert_eq!(Subnet(0).addr(1), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(Subnet(255).addr(11), Ipv4Addr::new(198, 18, 255, 11));
        assert_eq!(Subnet(256).addr(11), Ipv4Addr::new(198, 19, 0, 11));
        assert_eq!(Subnet(511).addr(254), Ipv4Addr::new(198, 19, 255, 254));
    }

    #[test]
    fn the_first_subnet_nothing_in_the_root_namespace_uses_is_chosen() {
        let first = Ipv4Addr::new(198, 18, 0, 0);
        assert_eq!(first_free(&[]), Some(first));
        // Catch-alls and other ranges leave every subnet free.
        let elsewhere = [
            "0.0.0.0/0",
            "0.0.0.0/1",
            "128.0.0.0/1",
            "198.0.0.0/8",
            "127.0.0.1/8",
            "198.17.255.255/32",
            "198.20.0.0/16",
        ];
        assert_eq!(first_free(&elsewhere), Some(first));
        // An address or route inside takes the subnets it overlaps.
        assert_eq!(
            first_free(&["198.18.0.1/24"]),
            Some(Ipv4Addr::new(198, 18, 1, 0))
        );
        assert_eq!(
            first_free(&["198.18.0.0/22", "198.18.4.9/32"]),
            Some(Ipv4Addr::new(198, 18, 5, 0))
        );
        assert_eq!(
            first_free(&["198.18.0.0/16"]),
            Some(Ipv4Addr::new(198, 19, 0, 0))
        );
        // A wide prefix on an address inside takes that address's subnet only.
        assert_eq!(
            first_free(&["198.18.0.7/8"]),
            Some(Ipv4Addr::new(198, 18, 1, 0))
        );
        assert_eq!(first_free(&["198.18.0.0/15"]), None);
        assert_eq!(first_free(&["198.18.0.0/16", "198.19.0.0/16"]), None);
    }

    #[test]
    fn root_addresses_and_routes_are_read_from_ip_s_json() {
        let addresses = r#"[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet",
            "local":"127.0.0.1","prefixlen":8,"scope":"host"}]},{},
            {"ifindex":5,"ifname":"fl5388-0","addr_info":[{"family":"inet",
            "local":"198.18.200.1","prefixlen":24}]}]"#;
        assert_eq!(
            addresses_in(addresses),
            Ok(vec![prefix("127.0.0.1/8"), prefix("198.18.200.1/24")])
        );
        let routes = r#"[{"dst":"default","gateway":"192.0.2.1","dev":"eth0"},
            {"dst":"198.18.200.0/24","dev":"fl5388-0","protocol":"kernel"},
            {"type":"local","dst":"198.18.200.1","dev":"fl5388-0","table":"local"}]"#;
        assert_eq!(
            routes_in(routes),
            Ok(vec![prefix("198.18.200.0/24"), prefix("198.18.200.1/32")])
        );
        assert!(routes_in(r#"[{"dst":"198.18.0.0/33"}]"#).is_err());
        assert!(routes_in(r#"[{"dst":"fe80::/64"}]"#).is_err());
        assert!(addresses_in("Object \"adr\" is unknown").is_err());
    }

    #[test]
    fn a_network_is_named_after_its_process_and_numbers_nodes_in_order() {
        let network = NodeNetwork::plan("77-3", Subnet(257), &names(&["n1", "b"]));
        assert_eq!(network.host_link(), "fl77-3");
        assert_eq!(network.host_addr(), Ipv4Addr::new(198, 19, 1, 1));
        assert_eq!(network.namespace("n1"), Some("faultline-77-3-n1"));
        assert_eq!(network.namespace("b"), Some("faultline-77-3-n2"));
        assert_eq!(network.addr("b"), Some(Ipv4Addr::new(198, 19, 1, 12)));
        assert_eq!(network.addr("n3"), None);
        assert_eq!(network.nodes().collect::<Vec<_>>(), ["n1", "b"]);
        let commands: Vec<String> = network
            .hub_commands()
            .into_iter()
            .chain(network.node_commands().into_iter().take(6))
            .map(|args| args.join(" "))
            .collect();
        assert_eq!(
            commands,
            [
                "netns add faultline-77-3-hub",
                "-n faultline-77-3-hub link add br0 type bridge",
                "-n faultline-77-3-hub link set br0 up",
                "link add fl77-3 type veth peer name host netns faultline-77-3-hub",
                "-n faultline-77-3-hub link set host master br0 up",
                "addr add 198.19.1.1/24 dev fl77-3",
                "link set fl77-3 up",
                "netns add faultline-77-3-n1",
                "-n faultline-77-3-hub link add n1 type veth peer name eth0 netns faultline-77-3-n1",
                "-n faultline-77-3-hub link set n1 master br0 up",
                "-n faultline-77-3-n1 addr add 198.19.1.11/24 dev eth0",
                "-n faultline-77-3-n1 link set eth0 up",
                "-n faultline-77-3-n1 link set lo up",
            ]
        );
        // Nothing of it exists, so there is nothing to remove, and dropping it runs nothing.
        assert!(network.removal().is_empty());
    }

    #[test]
    fn node_lists_that_cannot_be_given_addresses_are_refused() {
        assert!(check_nodes(&names(&["n1", "n2"])).is_ok());
        let error = check_nodes(&names(&["n1", "n2", "n1"])).unwrap_err();
        assert_eq!(error.to_string(), "node `n1` is named twice");
        let many: Vec<NodeName> = (1..=MAX_NODES + 1).map(|i| format!("n{i}")).collect();
        assert!(check_nodes(&many[..MAX_NODES]).is_ok());
        let error = check_nodes(&many).unwrap_err();
        assert_eq!(
            error.to_string(),
            "245 nodes are more than one network holds (244)"
        );
    }

    #[test]
    fn only_namespaces_of_gone_processes_count_as_leftovers() {
        let own = std::process::id();
        let listed = [
            format!("faultline-{own}-0-hub"),
            "faultline-1-0-n1".to_owned(),
            // 4194305 is above the kernel's largest pid.
            "faultline-4194305-2-n1".to_owned(),
            "faultline-4194305-2-hub".to_owned(),
            "faultline-x-0-hub".to_owned(),
            "blue".to_owned(),
        ];
        assert_eq!(
            leftover_namespaces(listed.into_iter()),
            ["faultline-4194305-2-hub", "faultline-4194305-2-n1"]
        );
    }

    #[test]
    fn a_permission_error_says_that_root_is_needed() {
        let refused = "mkdir /run/netns failed: Permission denied";
        assert!(hint(refused).contains("need root"), "{}", hint(refused));
        assert!(hint("RTNETLINK answers: Operation not permitted").contains("need root"));
        assert_eq!(hint("Cannot find device \"fl1-0\""), "");
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let error = NetnsError::Lock {
            path: PathBuf::from(LOCK_PATH),
            source: denied,
        };
        assert!(error.to_string().contains("need root"), "{error}");
        let missing = NetnsError::Spawn {
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert!(
            missing.to_string().contains("install iproute2"),
            "{missing}"
        );
    }
}
