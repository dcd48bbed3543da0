//! Polls every node's `/status` during a run and writes each change to `status.jsonl` (a
//! [`StatusSample`] a line), so the report can draw each node's role and term over time,
//! and derives from those lines who led when ([`leader_changes`]);
//! hands the fingerprints of what each node applied to a [`Ledger`], each leader's
//! progress to [`Stalls`] and, for systems that report their log, every status to
//! [`Completeness`]; and notices nodes whose process exited by itself (a crash), which
//! fails the run.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::cluster::ProcessCluster;
use crate::completeness::Completeness;
use crate::election_safety::ElectionSafety;
use crate::fingerprints::Ledger;
use crate::results::{Crash, LeaderChange, leader_changes};
use crate::stalls::Stalls;
use crate::status_sample::StatusSample;

/// What the poller saw besides the status changes it wrote.
#[derive(Default)]
pub struct Polled {
    /// Nodes that exited by themselves.
    pub crashes: Vec<Crash>,
    /// Every fingerprint the nodes reported.
    pub fingerprints: Ledger,
    /// Leaders that committed nothing for a long time.
    pub stalls: Stalls,
    /// Leaders that lack committed entries; `None` for a system whose status does not tell
    /// the end of its log.
    pub completeness: Option<Completeness>,
    /// Terms that had two leaders; `None`, like `completeness`, for a system whose status is
    /// not Raft's own.
    pub election_safety: Option<ElectionSafety>,
    /// Each change of the cluster's leader, from the status changes written.
    pub leaders: Vec<LeaderChange>,
}

/// Polls until `stop` turns true, writing changes to `path`; returns what it saw, and
/// whether writing the file worked (what it saw is kept either way). Leader Completeness is
/// watched only if `reports_log`: the nodes' last log index and commit index are Raft's.
pub async fn poll(
    cluster: Arc<ProcessCluster>,
    started: Instant,
    interval: Duration,
    path: PathBuf,
    reports_log: bool,
    stop: watch::Receiver<bool>,
) -> (Polled, Result<()>) {
    let mut polled = Polled {
        completeness: reports_log.then(Completeness::default),
        election_safety: reports_log.then(ElectionSafety::default),
        ..Polled::default()
    };
    let mut samples = Vec::new();
    let written = poll_into(
        &cluster,
        started,
        interval,
        &path,
        stop,
        &mut polled,
        &mut samples,
    )
    .await;
    polled.leaders = leader_changes(&samples, interval);
    (polled, written)
}

async fn poll_into(
    cluster: &ProcessCluster,
    started: Instant,
    interval: Duration,
    path: &PathBuf,
    mut stop: watch::Receiver<bool>,
    polled: &mut Polled,
    samples: &mut Vec<StatusSample>,
) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    let mut last: BTreeMap<String, StatusSample> = BTreeMap::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
        polled.crashes.extend(crashes_now(cluster, started));
        observe_leader_claims(cluster, started, polled);
        for (node, status) in cluster.statuses().await {
            let time = started.elapsed().as_nanos() as u64;
            if let Some(status) = &status {
                polled
                    .fingerprints
                    .observe(time, &node, &status.fingerprints);
            }
            polled.stalls.observe(time, &node, status.as_ref());
            if let Some(completeness) = &mut polled.completeness {
                completeness.observe(time, &node, status.as_ref());
            }
            if let Some(election_safety) = &mut polled.election_safety {
                election_safety.observe(time, &node, status.as_ref());
            }
            let sample = match status {
                Some(status) => StatusSample::answered(time, node.clone(), status),
                None => StatusSample::silent(time, node.clone()),
            };
            if last
                .get(&node)
                .is_none_or(|previous| previous.differs(&sample))
            {
                serde_json::to_writer(&mut out, &sample)?;
                out.write_all(b"\n")?;
                samples.push(sample.clone());
                last.insert(node, sample);
            }
        }
    }
    observe_leader_claims(cluster, started, polled);
    out.flush()
        .with_context(|| format!("writing {}", path.display()))
}

/// Hands the leaders the nemesis saw in its own reads to the Election Safety watch, dated when
/// they were seen: a leader the nemesis pauses as soon as it sees it may lead for less than
/// a poll interval.
fn observe_leader_claims(cluster: &ProcessCluster, started: Instant, polled: &mut Polled) {
    let claims = cluster.take_leader_claims();
    if let Some(election_safety) = &mut polled.election_safety {
        for (seen, status) in claims {
            let time = seen.saturating_duration_since(started).as_nanos() as u64;
            election_safety.observe(time, &status.id, Some(&status));
        }
    }
}

/// The nodes that exited by themselves since the last look, as crashes noticed now.
pub fn crashes_now(cluster: &ProcessCluster, started: Instant) -> Vec<Crash> {
    let time = started.elapsed().as_nanos() as u64;
    cluster
        .exited_by_themselves()
        .into_iter()
        .map(|exit| Crash {
            time,
            node: exit.node,
            status: exit.status,
            last_error: exit.last_error,
        })
        .collect()
}
