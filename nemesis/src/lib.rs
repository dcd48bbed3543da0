//! Faults for `faultline test`: process kill/pause/restart and network
//! partitions (iptables or a TCP proxy), on a seeded schedule.

mod cluster;
mod grudge;
mod iptables;
mod kind;
mod partition;
mod proxy;
mod schedule;

pub use cluster::{Cluster, NodeName};
pub use grudge::{Grudge, Link};
pub use iptables::{CHAIN_PREFIX, IptablesError, IptablesPartitioner, remove_leftover_chains};
pub use kind::{FaultKind, FaultKinds, ParseNameError, PartitionBackendKind};
pub use partition::{BackendError, PartitionBackend, PartitionError, Partitioner};
pub use proxy::{ProxyError, ProxyNetwork};
pub use schedule::{FaultPlan, Planner, Schedule, Targets};
