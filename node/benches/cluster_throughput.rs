//! Throughput and latency of a real 3-node cluster (fsync on), driven over HTTP.
//!
//! `cargo bench -p faultline-node --bench cluster_throughput` starts three release
//! `faultline-node` processes on loopback, then runs N concurrent clients (default 32)
//! against the leader for a fixed time (default 10 s) each: first writes (PUT of random keys
//! among 1,000), then linearizable reads (GET, ReadIndex). It prints operations per second
//! and latency percentiles, and the ratio to etcd's figures measured on the same kind of
//! machine. Tune with `BENCH_SECONDS`, `BENCH_CLIENTS`, `BENCH_REPEATS` (median of repeats),
//! `BENCH_CLIENT_THREADS` (default 1). With `BENCH_BASELINE_BINARY=path/to/faultline-node`
//! (another build, e.g. of the previous commit) a second cluster of that binary runs beside
//! this build's, the runs alternate between the two (so noise hits both alike), and the
//! ratios of the medians are printed. `BENCH_NODE_ARGS` adds flags to this build's nodes
//! only (e.g. `--read-mode lease`, against a baseline of the same binary without them).
//!
//! The load generator shares the machine with the nodes, so it is kept as cheap as wrk: each
//! client owns one keep-alive HTTP/1.1 connection (no pool), all on one thread. On two cores
//! a second client thread takes CPU from the nodes: back-to-back runs measured 14,200
//! writes/s with two client threads and 16,600 with one.
//! This is a measurement, not a test: it never fails on speed.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::TestCluster;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// etcd 3.4 on this machine (3 nodes on loopback, JSON gateway, 32 connections from wrk).
const ETCD_WRITES_PER_SEC: f64 = 7_500.0;
const ETCD_WRITE_P99_MS: f64 = 10.4;
const ETCD_READS_PER_SEC: f64 = 10_800.0;
/// The target for this machine.
const TARGET_WRITES_PER_SEC: f64 = 15_000.0;
const TARGET_WRITE_P99_MS: f64 = 10.0;
const KEYS: u64 = 1_000;

#[derive(Clone, Copy)]
enum Kind {
    Write,
    Read,
}

struct Outcome {
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: u64,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One keep-alive HTTP/1.1 connection to `addr`, driven by its own task.
async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr)
        .await
        .expect("connecting to the leader");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(connection);
    sender
}

/// Runs `clients` closed-loop clients against `addr` for `duration`. Each client owns one
/// connection (no pool, no shared state), so the load generator costs about what wrk costs.
async fn drive(addr: SocketAddr, kind: Kind, clients: u64, duration: Duration) -> Outcome {
    let stop = Arc::new(AtomicBool::new(false));
    let host = addr.to_string();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (stop, host) = (stop.clone(), host.clone());
            tokio::spawn(async move {
                let mut connection = connect(addr).await;
                let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                let mut errors = 0u64;
                let mut n = c.wrapping_mul(7919);
                while !stop.load(Ordering::Relaxed) {
                    n = n
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let key = (n >> 33) % KEYS;
                    let request = Request::builder()
                        .uri(format!("/kv/key{key}"))
                        .header(hyper::header::HOST, &host);
                    let request = match kind {
                        Kind::Write => request
                            .method(Method::PUT)
                            .header(hyper::header::CONTENT_TYPE, "application/json")
                            .body(Full::new(Bytes::from(format!("{{\"value\":{n}}}")))),
                        Kind::Read => request.body(Full::new(Bytes::new())),
                    }
                    .unwrap();
                    let started = Instant::now();
                    let ok = match connection.send_request(request).await {
                        Ok(response) => {
                            let status = response.status();
                            let _ = response.into_body().collect().await;
                            status == StatusCode::OK || status == StatusCode::NOT_FOUND
                        }
                        Err(_) => false,
                    };
                    if ok {
                        latencies
                            .record(started.elapsed().as_micros() as u64)
                            .unwrap();
                    } else {
                        errors += 1;
                        // A failed exchange may have closed the connection.
                        if connection.is_closed() {
                            connection = connect(addr).await;
                        }
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut errors = 0;
    for task in tasks {
        let (latencies, e) = task.await.unwrap();
        all.add(latencies).unwrap();
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Outcome {
        ops_per_sec: all.len() as f64 / elapsed,
        p50_ms: all.value_at_quantile(0.50) as f64 / 1000.0,
        p99_ms: all.value_at_quantile(0.99) as f64 / 1000.0,
        max_ms: all.max() as f64 / 1000.0,
        errors,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn report(label: &str, runs: &[Outcome]) -> (f64, f64) {
    for (i, r) in runs.iter().enumerate() {
        println!(
            "  {label} run {}: {:>9.0} ops/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  errors {}",
            i + 1,
            r.ops_per_sec,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.errors
        );
    }
    let ops = median(runs.iter().map(|r| r.ops_per_sec).collect());
    let p50 = median(runs.iter().map(|r| r.p50_ms).collect());
    let p99 = median(runs.iter().map(|r| r.p99_ms).collect());
    println!("  {label} median: {ops:.0} ops/s, p50 {p50:.2} ms, p99 {p99:.2} ms");
    (ops, p99)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let seconds = env_or("BENCH_SECONDS", 10);
    let clients = env_or("BENCH_CLIENTS", 32);
    let repeats = env_or("BENCH_REPEATS", 3).max(1);
    // One load-generator thread: on two cores, every extra client thread takes CPU from the
    // nodes being measured.
    let client_threads = env_or("BENCH_CLIENT_THREADS", 1).max(1);
    let node_args = std::env::var("BENCH_NODE_ARGS").unwrap_or_default();
    let node_args: Vec<&str> = node_args.split_whitespace().collect();
    let cluster = TestCluster::start(3, &node_args);
    println!(
        "faultline-node: 3 nodes on loopback, fsync on, {clients} HTTP clients against the leader, \
         {seconds} s per run, {repeats} runs, extra flags {node_args:?}"
    );
    let baseline = std::env::var_os("BENCH_BASELINE_BINARY").map(|binary| {
        let binary = std::path::PathBuf::from(binary);
        println!("baseline: a second cluster of {}", binary.display());
        TestCluster::new(3, &[]).with_binary(binary).start_all()
    });
    let mut runtime = if client_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(client_threads as usize);
        builder
    };
    let runtime = runtime.enable_all().build().unwrap();
    let duration = Duration::from_secs(seconds);
    // Runs of this build and of the baseline alternate, each going first every other time.
    let measure = |kind: Kind| -> (Vec<Outcome>, Vec<Outcome>) {
        // Each run goes to whoever leads then: a leader may change between runs.
        let run = |cluster: &TestCluster| {
            let leader = cluster.wait_for_leader(Duration::from_secs(20));
            let addr = cluster.nodes[leader].client_addr;
            runtime.block_on(drive(addr, kind, clients, duration))
        };
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for repeat in 0..repeats {
            let baseline_first = repeat % 2 == 1;
            if let (true, Some(baseline)) = (baseline_first, &baseline) {
                theirs.push(run(baseline));
            }
            ours.push(run(&cluster));
            if let (false, Some(baseline)) = (baseline_first, &baseline) {
                theirs.push(run(baseline));
            }
        }
        (ours, theirs)
    };
    let (writes, baseline_writes) = measure(Kind::Write);
    let (reads, baseline_reads) = measure(Kind::Read);
    let (write_ops, write_p99) = report("writes", &writes);
    let (read_ops, read_p99) = report("linearizable reads", &reads);
    println!(
        "writes: {:.2}x etcd's {ETCD_WRITES_PER_SEC:.0}/s (p99 {write_p99:.2} ms vs etcd's {ETCD_WRITE_P99_MS} ms); \
         target {TARGET_WRITES_PER_SEC:.0}/s with p99 <= {TARGET_WRITE_P99_MS} ms: {}",
        write_ops / ETCD_WRITES_PER_SEC,
        if write_ops >= TARGET_WRITES_PER_SEC && write_p99 <= TARGET_WRITE_P99_MS {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "reads: {:.2}x etcd's {ETCD_READS_PER_SEC:.0}/s",
        read_ops / ETCD_READS_PER_SEC
    );
    if baseline.is_some() {
        let (base_write_ops, base_write_p99) = report("baseline writes", &baseline_writes);
        let (base_read_ops, base_read_p99) = report("baseline linearizable reads", &baseline_reads);
        println!(
            "this build / baseline: writes {:.3}x (p99 {write_p99:.2} vs {base_write_p99:.2} ms), \
             reads {:.3}x (p99 {read_p99:.2} vs {base_read_p99:.2} ms)",
            write_ops / base_write_ops,
            read_ops / base_read_ops
        );
    }
}
