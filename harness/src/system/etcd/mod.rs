//! etcd (Debian's `etcd-server`, 3.4), tested through its v3 JSON gateway.
//!
//! `gateway` is the JSON the gateway speaks, `classify` what each of its answers means for an
//! operation, `client` the workloads' client and the per-member questions of the harness (its
//! status, its own copy of a list), `system` how members are started. The first three use
//! nothing else of this crate, so the integration test (`tests/etcd_client.rs`) compiles them
//! as they are.

mod classify;
pub mod client;
pub mod gateway;
mod system;

pub use system::EtcdSystem;
