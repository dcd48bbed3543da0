//! Redis with Sentinel: one primary, replicas, and a sentinel beside each server. The
//! sentinels fail over to a replica when a majority of them cannot reach the primary.
//! Replication is asynchronous, so a primary cut off from the others acknowledges writes that
//! the promoted replica never had, and that are lost when the old primary rejoins as a replica
//! (Jepsen's finding, 2013).
//!
//! `config` renders the servers' and sentinels' configuration files.

pub mod config;
