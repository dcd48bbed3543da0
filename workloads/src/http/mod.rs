//! The client of the Faultline HTTP contract, the bundled node's client API (and that of any
//! system that speaks it): the requests, and what each answer means.

mod classify;
mod client;
mod members;

pub use classify::{Undelivered, undelivered};
pub use client::{Endpoint, HttpContractClients, MAX_REDIRECTS};
