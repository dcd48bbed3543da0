//! `faultline-node`: a Raft key-value store, the system under test that Faultline ships.
//!
//! A pure Raft core ([`raft`]) inside an I/O shell: durable storage ([`storage`]), the Raft
//! loop that drives the core ([`driver`]) and the writes it keeps waiting for their outcome
//! ([`pending`]), peer transport ([`transport`]), the key-value state machine ([`kv`]) with its
//! bounded client [`sessions`], the client HTTP API ([`api`]), the admin API ([`admin`]) with
//! the [`leadership`] transfers it asks for, and start-up ([`server`]). Peers must show they
//! belong (the [`cluster_id`] and the checks of [`peer_auth`]); both ports bound their
//! [`connections`]. Each node publishes a [`fingerprint`] of what it applied, so that
//! replicas can be compared.

pub mod admin;
pub mod api;
pub mod bugs;
pub mod cluster_id;
pub mod command;
pub mod config;
pub mod connections;
pub mod driver;
pub mod fingerprint;
pub mod kv;
pub mod leadership;
pub mod members;
pub mod membership_changes;
pub mod metrics;
pub mod peer_auth;
pub mod pending;
pub mod raft;
pub mod server;
pub mod sessions;
pub mod storage;
pub mod tick_clock;
pub mod transport;
