//! Where the nodes run: on loopback, or each in a network namespace of its own with its own
//! address on a bridge ([`NodeNetwork`]), as close to separate machines as one Linux box
//! gets, or each on a host of its own over SSH ([`RemoteNodes`], `--hosts`). `--netns` asks
//! for namespaces; a system whose peers cannot be cut apart on loopback gets them by default
//! as root.
//!
//! The choice changes which faults can run, and this module leaves out what cannot, saying
//! why (a fault asked for by name is refused instead): without namespaces the links of such
//! a system cannot be cut at all; with them, links cannot be slowed or made lossy, since the
//! TCP proxy that does that cannot sit between namespaces. On hosts, the proxy of each link
//! runs on its sender's host; membership changes, which need spare nodes, are left out, and
//! so are power loss and the clock faults on hosts without FUSE or libfaketime.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use faultline_nemesis::{FaultKind, HOST_LINK_PREFIX, Lane, NodeNetwork};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tracing::warn;

use super::TestArgs;
use crate::cluster::node_names;
use crate::host_addr::parse_hosts;
use crate::remote::{HostNeeds, RemoteNodes, SshOptions};
use crate::store::TestOptions;
use crate::system::System;

/// How long the harness waits for node 1's namespace to answer a connection.
const REACH_TIMEOUT: Duration = Duration::from_secs(3);

/// The port the reachability check connects to: the discard port, where nothing listens in
/// a fresh namespace, so the answer is a refusal from the namespace's kernel.
const PROBE_PORT: u16 = 9;

/// Decides where the nodes run and leaves out (or refuses) the faults that cannot run
/// there. With namespaces, builds the network and checks that the harness reaches it;
/// `options.netns` then says so. The caller tears the network down on every path.
pub async fn place_nodes(
    args: &TestArgs,
    system: &dyn System,
    options: &mut TestOptions,
) -> Result<Option<Arc<NodeNetwork>>> {
    // Nodes on hosts have addresses of their own already.
    if !options.hosts.is_empty() || (!args.netns && !system.needs_namespaces()) {
        return Ok(None);
    }
    let name = system.record().name;
    let explicit = args.nemesis.is_some();
    if !nix::unistd::Uid::effective().is_root() {
        // `--netns` itself was refused with the flags; this is the default of such a system.
        let reason = format!(
            "faults on the links of {name} need network namespaces, which need root \
             (its peers cannot be cut apart on loopback)"
        );
        leave_out_network_faults(options, &reason, explicit)?;
        return Ok(None);
    }
    // Refused faults first, so that a refused run builds nothing.
    let kinds = options.fault_kinds()?;
    for kind in kinds.iter().filter(|kind| kind.needs_proxy()) {
        options.leave_out(
            kind,
            "slowing links and making them lossy needs the TCP proxy, which cannot sit \
             between network namespaces",
            explicit,
        )?;
    }
    let nodes = node_names(options.processes());
    let network = match NodeNetwork::create(&nodes).await {
        Ok(network) => network,
        Err(error) if args.netns => {
            return Err(error).context("creating a network namespace for each node (--netns)");
        }
        Err(error) => {
            let reason = format!(
                "faults on the links of {name} need network namespaces, which could not be \
                 created here ({error})"
            );
            leave_out_network_faults(options, &reason, explicit)?;
            return Ok(None);
        }
    };
    if let Err(unreachable) = check_reachable(&network, &nodes[0]).await {
        if let Err(e) = network.teardown().await {
            warn!("removing the nodes' network namespaces failed: {e}");
        }
        return Err(unreachable);
    }
    options.netns = true;
    Ok(Some(Arc::new(network)))
}

/// Why `kind` cannot run on nodes on hosts over SSH, if it cannot.
fn not_on_hosts(kind: FaultKind, options: &TestOptions) -> Option<&'static str> {
    if kind == FaultKind::Membership && options.spare_hosts.is_empty() {
        return Some(
            "membership changes add spare nodes, and on hosts each needs a host of its own: \
             name two with --spare-hosts",
        );
    }
    None
}

/// With `--hosts`: leaves out (or refuses, for a list given by name) the faults that cannot
/// run on hosts over SSH. Before anything looks at what this machine offers them.
pub fn leave_out_off_hosts(args: &TestArgs, options: &mut TestOptions) -> Result<()> {
    if options.hosts.is_empty() {
        return Ok(());
    }
    for kind in options.fault_kinds()?.iter() {
        if let Some(reason) = not_on_hosts(kind, options) {
            options.leave_out(kind, reason, args.nemesis.is_some())?;
        }
    }
    Ok(())
}

/// With hosts (`--hosts`, or the system file's `[hosts]`): connects to every host, checks
/// that a node can run there (its program installed there, if it is not copied; iptables, if
/// the run cuts links) and measures its clock; exit 3 naming each host that is not ready, or
/// the reason the system cannot run on hosts. Nothing is on the hosts yet; once nodes start
/// there, the run cleans the hosts on every path ([`RemoteNodes::collect_and_clean`]).
pub async fn place_on_hosts(
    args: &TestArgs,
    system: &dyn System,
    options: &TestOptions,
) -> Result<Option<Arc<RemoteNodes>>> {
    if options.hosts.is_empty() {
        return Ok(None);
    }
    let program = system
        .on_hosts()
        .map_err(|reason| anyhow!("{} cannot run on hosts: {reason}", system.record().name))?;
    let hosts = parse_hosts(&options.node_hosts().join(",")).map_err(|e| anyhow!(e))?;
    let ssh = SshOptions {
        config_file: options.ssh_config.clone(),
        connect_timeout: args.connect_timeout,
        ..SshOptions::default()
    };
    let needs = HostNeeds {
        iptables: !options.fault_kinds()?.of_lane(Lane::Network).is_empty(),
        program,
    };
    let names = node_names(options.processes());
    let nodes = RemoteNodes::connect(&hosts, &names, &ssh, &needs).await?;
    Ok(Some(Arc::new(nodes)))
}

/// With hosts: leaves out (or refuses, for a list given by name) power loss where a host has
/// no FUSE for its disk, and the clock faults where one has no libfaketime. Once the hosts
/// were checked; nothing runs on them yet.
pub fn leave_out_what_hosts_lack(
    args: &TestArgs,
    hosts: &RemoteNodes,
    options: &mut TestOptions,
) -> Result<()> {
    let lacking = |without: &[String]| {
        format!(
            "{} {}",
            without.join(", "),
            if without.len() == 1 { "has" } else { "have" }
        )
    };
    let without = hosts.without_fuse();
    if !without.is_empty() && options.fault_kinds()?.contains(FaultKind::PowerLoss) {
        let reason = format!(
            "the power-loss disks are FUSE filesystems, and {} no /dev/fuse",
            lacking(&without)
        );
        options.leave_out(FaultKind::PowerLoss, &reason, args.nemesis.is_some())?;
    }
    let without = hosts.without_faketime();
    if without.is_empty() {
        return Ok(());
    }
    let reason = format!(
        "the clock faults run nodes under libfaketime, and {} none (apt-get install faketime)",
        lacking(&without)
    );
    for kind in options
        .fault_kinds()?
        .iter()
        .filter(|kind| kind.moves_clocks())
    {
        options.leave_out(kind, &reason, args.nemesis.is_some())?;
    }
    Ok(())
}

/// Leaves out every fault on links (or refuses the run, for a list given by name).
fn leave_out_network_faults(options: &mut TestOptions, reason: &str, explicit: bool) -> Result<()> {
    for kind in options.fault_kinds()?.of_lane(Lane::Network).iter() {
        options.leave_out(kind, reason, explicit)?;
    }
    Ok(())
}

/// Checks that the harness, in the root namespace, reaches `node`'s namespace: clients and
/// status polls would otherwise wait for answers that never come. A firewall of the host
/// that drops what comes in (an INPUT policy of DROP) drops the nodes' answers too.
async fn check_reachable(network: &NodeNetwork, node: &str) -> Result<()> {
    let Some(ip) = network.addr(node) else {
        bail!("the nodes' network has no address for {node}");
    };
    let addr = SocketAddr::from((ip, PROBE_PORT));
    let unreachable = match timeout(REACH_TIMEOUT, TcpStream::connect(addr)).await {
        // A refusal is an answer, from the namespace's own kernel.
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(error)) if error.kind() == ErrorKind::ConnectionRefused => return Ok(()),
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no answer within {} s", REACH_TIMEOUT.as_secs()),
    };
    bail!(
        "the harness ({host}) cannot reach {node}'s network namespace: a TCP connection to \
         {addr} failed ({unreachable}). A firewall of this host probably drops what comes in from \
         the nodes (an INPUT policy of DROP?); let it in with \
         `iptables -I INPUT -i {HOST_LINK_PREFIX}+ -j ACCEPT`",
        host = network.host_addr(),
    )
}
