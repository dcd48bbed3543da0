//! The clients of `faultline test`: seeded operation generators (register, append, mixed), the
//! [`Client`] trait through which any system's client performs them (and the client of the
//! Faultline HTTP contract, which classifies every outcome exactly), the runner, and the
//! recorder that turns what they do into a history.
//!
//! How the harness uses it:
//!
//! ```no_run
//! # use std::{sync::Arc, time::Duration};
//! # use faultline_workloads::*;
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let started = std::time::Instant::now();
//! let recorder = Arc::new(Recorder::to_file("history.jsonl".as_ref(), started)?);
//! // The nemesis reports into the same recorder: recorder.nemesis("kill", json!(["n2"])).
//! let options = WorkloadOptions { kind: "mixed".parse()?, ..WorkloadOptions::default() };
//! let nodes = [Endpoint::new("n1", "http://127.0.0.11:8001"), Endpoint::new("n2", "http://127.0.0.12:8002")];
//! let clients = Arc::new(HttpContractClients::new(&nodes, options.client_timeout)?);
//! let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
//! let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or(()) };
//! let keys = KeysInUse::new(&options); // the lists in use, for anyone watching the run
//! let mut run = run_clients(&options, clients, recorder.clone(), &keys, deadline, ctrl_c).await?;
//! // ... heal every fault, wait for a leader ...
//! let final_reads = run.final_reads(tokio::time::Instant::now() + Duration::from_secs(10)).await?;
//! let history = recorder.finish()?;
//! let summary = faultline_history::Summary::of(&history);
//! // Each key against its model, and the lists for lost writes:
//! let checked = faultline_checker::check(&history, None, &Default::default())?;
//! # let _ = (final_reads, summary, checked); Ok(())
//! # }
//! ```

mod client;
mod error;
mod generator;
mod http;
mod keys;
mod op;
mod options;
mod outcome;
mod rate;
mod recorder;
mod runner;

#[cfg(test)]
mod fake_node;

pub use client::{BoxFuture, Client, ClientFactory, Completion, NOT_THE_LEADER, Purpose};
pub use error::Error;
pub use http::{Endpoint, HttpContractClients, MAX_REDIRECTS, Undelivered, undelivered};
pub use keys::{LIST_PREFIX, REGISTER_PREFIX, model_for_key};
pub use op::Op;
pub use options::{MIN_RATE, WorkloadKind, WorkloadOptions};
pub use outcome::{CAS_MISMATCH, Outcome};
pub use recorder::{Counts, Entry, FLUSH_INTERVAL, Recorder};
pub use runner::{BACKSTOP_MARGIN, ClientRun, FailedOpens, FinalReads, KeysInUse, run_clients};
