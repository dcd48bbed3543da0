//! Faults for `faultline test`: process kill/pause/restart and network
//! partitions (iptables or a TCP proxy), on a seeded schedule.

mod kind;

pub use kind::{FaultKind, FaultKinds, ParseNameError, PartitionBackendKind};
