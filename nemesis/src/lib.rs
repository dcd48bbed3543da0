//! Faults for `faultline test`: process kill/pause/restart through a
//! [`Cluster`] the harness implements, network partitions through a
//! [`Partitioner`] (iptables rules or a TCP proxy per link), network
//! degradation (latency, jitter, dropped connections) through a [`Degrader`]
//! (the proxy), power loss through a [`PowerLossDisk`] (a FUSE filesystem
//! served from memory, mounted on a node's data dir, that loses what the node
//! did not fsync when the power is cut), clock faults through the cluster (a node's clocks
//! bumped, skewed or strobed under libfaketime), membership changes through the cluster
//! (spares join, members leave and are retired), and a seeded [`Schedule`] that starts
//! and heals them in four lanes that overlap (process faults, network faults, clock
//! faults, membership changes; restart-bridge, flap-leader, drifting-leader and a membership
//! change that may replace a voter run alone),
//! reporting each start and stop as an [`Event`] for the history.
//!
//! Where things are:
//!
//! - `partition/`: the partition code. `mod.rs` has the [`Partitioner`] and
//!   [`Degrader`] traits, [`Degradation`] and [`PartitionError`];
//!   `iptables.rs` cuts links with rules; `host_rules.rs` with rules on each
//!   node's own host, run through a [`HostFirewall`] (SSH), and `host_links.rs`
//!   degrades links there through the proxies the caller runs on each host ([`HostLinks`]); `netns.rs` with
//!   those rules inside the nodes' network namespaces; `proxy.rs` is the TCP proxy, which
//!   cuts links too and is where the proxy's degradation happens (delays,
//!   jitter, drops); `backend.rs` is [`PartitionBackend`], the choice
//!   `auto|iptables|proxy`, with the proxy in the path of iptables when
//!   links are to be degraded, or the rules in namespaces or on hosts when
//!   nodes run in them.
//! - `grudge.rs`: who cannot hear whom ([`Grudge`]), as directed [`Link`]s.
//! - `nemesis.rs`: the runner ([`Nemesis`]); `schedule.rs`: the seeded
//!   [`Schedule`]; `kind.rs`: fault and backend names; `event.rs`: history
//!   events; `cluster.rs`: the [`Cluster`] trait the harness implements;
//!   `membership.rs`: the membership changes ([`MemberChange`]) and which comes next
//!   ([`next_change`]), with the round itself in `nemesis/membership_round.rs`; the faults
//!   aimed at one bug each and run round after round in `nemesis/restart_bridge.rs`
//!   (`forget-vote`) and `nemesis/drifting_leader.rs` (`lease-no-drift`);
//!   `owned_names.rs`: the `<prefix><pid>-<n>` names of chains, mounts and
//!   namespaces, by which those of a SIGKILLed run are found and removed.
//! - `netns.rs`: nodes in network namespaces of their own ([`NodeNetwork`]),
//!   joined by a bridge, for systems whose peer connections cannot be told
//!   which source address to use.
//! - `clock/`: the clock fault: the model of a faulted clock, the libfaketime control file
//!   that the harness writes for each node, and whether libfaketime can be used here.
//! - `disk/`: the power-loss filesystem: `model.rs` holds every rule of what
//!   is synced and what is lost (pure, no FUSE), `fs.rs` translates FUSE
//!   requests to it, `mount.rs` and `mounts.rs` mount, unmount and clean up.
//!
//! How the harness wires it:
//!
//! ```no_run
//! # use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};
//! # use faultline_nemesis::*;
//! # async fn example<C: Cluster + 'static>(
//! #     cluster: C,
//! #     peer_addrs: BTreeMap<NodeName, SocketAddr>,
//! # ) -> anyhow::Result<()> {
//! // 1. Before starting nodes: pick the backend, and learn what each node dials.
//! let _stale = remove_leftover_chains().await; // Ok only where iptables works
//! let kind: PartitionBackendKind = "auto".parse()?;
//! let options = BackendOptions::default(); // `degradation: true` to degrade links
//! let network = Arc::new(PartitionBackend::start(kind, &peer_addrs, options).await?);
//! let n1_dials_n2 = network.dial_addr("n1", "n2"); // --peers n2=ADDR@DIAL for n1
//! # let _ = n1_dials_n2;
//!
//! // 2. While clients run: the schedule, stopped by the time limit or Ctrl-C.
//! let schedule = Schedule {
//!     kinds: "kill,partition".parse()?,
//!     interval: Duration::from_secs(5),
//!     seed: 42,
//! };
//! let mut nemesis = Nemesis::new(Arc::new(cluster), network.clone(), |event: Event| {
//!     println!("nemesis {} {}", event.f, event.value); // the harness writes history here
//! });
//! let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
//! let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or(()) };
//! let ran = nemesis.run(&schedule, deadline, ctrl_c).await;
//!
//! // 3. Final phase, then teardown on every path.
//! let healed = nemesis.heal_all().await;
//! network.teardown().await?;
//! ran?;
//! healed?;
//! # Ok(())
//! # }
//! ```

mod clock;
mod cluster;
mod disk;
mod event;
mod grudge;
mod kind;
mod membership;
mod nemesis;
mod netns;
mod owned_names;
mod partition;
mod schedule;
mod time_limit;

#[cfg(test)]
mod fake;

pub use clock::{
    ClockControl, ClockSetting, FaketimeUnavailable, LIBFAKETIME_PATHS, PROCESS_LEFTOVERS,
    control_line, faketime_available, libfaketime_offset, not_preloadable,
    remove_process_leftovers,
};
pub use cluster::{Cluster, NodeName, NodeView};
pub use disk::{
    DiskError, FuseUnavailable, Loss, PowerLossDisk, fuse_available, remove_leftover_mounts,
};
pub use event::{Event, EventName, FaultClass};
pub use grudge::{Grudge, Link};
pub use kind::{FaultKind, FaultKinds, Lane, ParseNameError, PartitionBackendKind};
pub use membership::{ChangeAnswer, MemberChange, Members, next_change, split_for};
pub use nemesis::{Nemesis, NemesisError};
pub use netns::{
    HOST_LINK_PREFIX, MAX_NODES, NAMESPACE_PREFIX, NetnsError, NodeNetwork,
    remove_leftover_namespaces,
};
pub use partition::backend::{BackendError, BackendOptions, PartitionBackend};
pub use partition::host_links::HostLinks;
pub use partition::host_rules::{FirewallError, HostFirewall, HostRules};
pub use partition::iptables::{
    CHAIN_PREFIX, IptablesError, IptablesPartitioner, own_chain_prefix, remove_leftover_chains,
};
pub use partition::netns::NamespaceRules;
pub use partition::proxy::{ProxyError, ProxyNetwork, UpstreamSource};
pub use partition::{Degradation, Degrader, PartitionError, Partitioner};
pub use schedule::{ClockChange, Crash, FaultPlan, Flap, Planner, Schedule, Targets};
