//! Faults for `faultline test`: process kill/pause/restart through a
//! [`Cluster`] the harness implements, network partitions through a
//! [`Partitioner`] (iptables rules or a TCP proxy per link), and a seeded
//! [`Schedule`] that starts and heals them, reporting each start and stop as
//! an [`Event`] for the history. A [`PowerLossDisk`] (a FUSE filesystem served
//! from memory, mounted on a node's data dir) loses what the node did not fsync
//! when the power is cut.
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
//! let network = Arc::new(PartitionBackend::start(kind, &peer_addrs, Duration::ZERO).await?);
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

mod cluster;
mod disk;
mod event;
mod grudge;
mod iptables;
mod kind;
mod nemesis;
mod partition;
mod proxy;
mod schedule;

#[cfg(test)]
mod fake;

pub use cluster::{Cluster, NodeName};
pub use disk::{
    DiskError, FuseUnavailable, Loss, PowerLossDisk, fuse_available, remove_leftover_mounts,
};
pub use event::{Event, EventName};
pub use grudge::{Grudge, Link};
pub use iptables::{CHAIN_PREFIX, IptablesError, IptablesPartitioner, remove_leftover_chains};
pub use kind::{FaultKind, FaultKinds, ParseNameError, PartitionBackendKind};
pub use nemesis::{Nemesis, NemesisError};
pub use partition::{BackendError, PartitionBackend, PartitionError, Partitioner};
pub use proxy::{ProxyError, ProxyNetwork};
pub use schedule::{FaultPlan, Planner, Schedule, Targets};
