//! Redis with Sentinel: one primary, replicas, and a sentinel beside each server. The
//! sentinels fail over to a replica when a majority of them cannot reach the primary; clients
//! ask them which server is the primary. Replication is asynchronous, so a primary cut off
//! from the others acknowledges writes that the promoted replica never had, and that are lost
//! when the old primary rejoins as a replica (Jepsen's finding, 2013).
//!
//! `config` renders the servers' and sentinels' configuration files; `client` is the
//! workloads' client and the per-server questions of the harness (role, a server's own copy
//! of a list). Neither uses anything else of this crate, so the integration test
//! (`tests/redis_client.rs`) compiles them as they are. `sentinel` is what the harness asks a
//! sentinel; `system` starts the cluster and tells how it is.

pub mod client;
pub mod config;
pub mod sentinel;
pub mod system;

pub use system::RedisSystem;
