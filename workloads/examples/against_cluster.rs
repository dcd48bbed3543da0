//! Runs the clients against a running cluster (e.g. `scripts/cluster.sh`), then the final
//! reads, and checks the history: cas-register for `r*` keys, list-append and lost writes for
//! `l*` keys. Faults, if any, are up to you (kill or pause nodes meanwhile).
//!
//! ```sh
//! cargo run --release -p faultline-workloads --example against_cluster -- \
//!     30 mixed history.jsonl n1=http://127.0.0.11:8001 n2=http://127.0.0.12:8002 n3=http://127.0.0.13:8003
//! ```
//!
//! Arguments: seconds, workload (register, append or mixed), the history file, then the
//! nodes as NAME=URL. `FAULTLINE_CONCURRENCY`, `FAULTLINE_OPS_PER_KEY` and `FAULTLINE_SEED` override the
//! defaults.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use faultline_checker::{CheckOptions, check};
use faultline_history::Summary;
use faultline_workloads::{
    ClientFactory, Endpoint, HttpContractClients, KeysInUse, Recorder, WorkloadOptions, run_clients,
};

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [seconds, workload, history_path, nodes @ ..] = args.as_slice() else {
        bail!("usage: against_cluster SECONDS WORKLOAD HISTORY.jsonl NAME=URL...");
    };
    let seconds: u64 = seconds.parse().context("SECONDS must be a whole number")?;
    let mut options = WorkloadOptions {
        kind: workload.parse()?,
        ..WorkloadOptions::default()
    };
    if let Ok(concurrency) = std::env::var("FAULTLINE_CONCURRENCY") {
        options.concurrency = concurrency.parse().context("FAULTLINE_CONCURRENCY")?;
    }
    if let Ok(ops_per_key) = std::env::var("FAULTLINE_OPS_PER_KEY") {
        options.ops_per_key = ops_per_key.parse().context("FAULTLINE_OPS_PER_KEY")?;
    }
    if let Ok(seed) = std::env::var("FAULTLINE_SEED") {
        options.seed = seed.parse().context("FAULTLINE_SEED")?;
    }
    let nodes = nodes
        .iter()
        .map(|node| {
            let (name, url) = node
                .split_once('=')
                .with_context(|| format!("{node:?}: expected NAME=URL"))?;
            Ok(Endpoint::new(name, url))
        })
        .collect::<Result<Vec<_>>>()?;
    let clients: Arc<dyn ClientFactory> =
        Arc::new(HttpContractClients::new(&nodes, options.client_timeout)?);

    let recorder = Arc::new(Recorder::to_file(history_path.as_ref(), Instant::now())?);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or(()) };
    let keys = KeysInUse::new(&options);
    let mut run = run_clients(&options, clients, recorder.clone(), &keys, deadline, ctrl_c).await?;
    let final_deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let final_reads = run.final_reads(final_deadline).await?;
    let history = recorder.finish()?;
    if let Some(failed) = run.failed_opens() {
        println!(
            "{} clients could not be opened; the last: {}",
            failed.count, failed.last
        );
    }

    let summary = Summary::of(&history);
    println!(
        "{} operations in {:.1} s: {} ok, {} fail, {} info; {:.0} ok/s",
        summary.total.total(),
        summary.duration.as_secs_f64(),
        summary.total.ok,
        summary.total.fail,
        summary.total.info,
        summary.ok_per_second
    );
    if let Some(latency) = summary.ok_latency {
        println!(
            "latency of ok operations: p50 {:?}, p99 {:?}, max {:?}",
            latency.p50, latency.p99, latency.max
        );
    }
    println!("errors: {:?}", summary.errors);
    println!(
        "final reads: {} keys read, unread: {:?}",
        final_reads.read.len(),
        final_reads.unread
    );
    let checked = check(&history, None, &CheckOptions::default())?;
    for result in &checked.linearizability {
        println!(
            "{}: {} over {} keys, {} operations, checked in {:.2} s",
            result.model,
            result.valid,
            result.keys.len(),
            result.operations,
            result.seconds
        );
    }
    if let Some(lost) = &checked.lost_writes {
        println!(
            "lost writes: {} ({} acknowledged, {} lost, {} recovered, {} unexpected)",
            lost.valid, lost.acknowledged, lost.lost, lost.recovered, lost.unexpected
        );
    }
    Ok(())
}
