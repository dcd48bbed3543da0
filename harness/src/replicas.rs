//! Every node's own copy of the lists, read while the run goes on and once more at the end,
//! so that the divergence check ([`faultline_checker::divergence()`]) sees every replica, not
//! only the leader that clients reach. A node serves its copy from what it has applied
//! (`GET /kv/{key}?stale=true`). Each round reads the newest lists (the ones clients are
//! appending to) and, in turn, a few older ones from every node; the final sweep reads every
//! list once every node has caught up. The copies go to `replicas.jsonl`, one a line.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use faultline_checker::ListCopy;
use faultline_workloads::KeysInUse;
use futures::future::join_all;
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use crate::cluster::ProcessCluster;

/// The newest lists read in every round.
const RECENT_KEYS: usize = 8;
/// Older lists read in every round, taking turns.
const OLDER_KEYS_PER_ROUND: usize = 8;
/// Reads in flight at once.
const CONCURRENT_READS: usize = 32;
/// How long the final sweep waits for every node to apply what is committed.
const CATCH_UP: Duration = Duration::from_secs(10);

/// Reads copies every `interval` until `stop` turns true; returns each copy that differs
/// from the one read before from the same node (an unchanged copy says nothing new).
pub async fn sample(
    cluster: Arc<ProcessCluster>,
    keys: KeysInUse,
    started: Instant,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> Vec<ListCopy> {
    let mut copies = Vec::new();
    let mut last: HashMap<(Option<String>, String), Vec<serde_json::Value>> = HashMap::new();
    let mut turn = 0;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
        let all = keys.list_keys();
        let older = all.len().saturating_sub(RECENT_KEYS);
        let mut chosen: Vec<String> = all[older..].to_vec();
        for i in 0..OLDER_KEYS_PER_ROUND.min(older) {
            chosen.push(all[(turn + i) % older].clone());
        }
        turn = turn.wrapping_add(OLDER_KEYS_PER_ROUND);
        for copy in read_copies(&cluster, &chosen, started).await {
            let place = (copy.node.clone(), copy.key.clone());
            if last.get(&place) != Some(&copy.value) {
                last.insert(place, copy.value.clone());
                copies.push(copy);
            }
        }
    }
    copies
}

/// Once every member has applied everything committed (or [`CATCH_UP`] has passed), reads
/// every list from every node (a spare or a node that left holds a prefix, or nothing).
pub async fn final_sweep(
    cluster: &ProcessCluster,
    keys: &KeysInUse,
    started: Instant,
) -> Vec<ListCopy> {
    let deadline = Instant::now() + CATCH_UP;
    while Instant::now() < deadline {
        let statuses: Vec<_> = cluster.member_statuses().await;
        let answered: Vec<_> = statuses.iter().filter_map(|(_, s)| s.as_ref()).collect();
        let commit = answered.iter().map(|s| s.commit).max().unwrap_or(0);
        if answered.len() == statuses.len() && answered.iter().all(|s| s.applied >= commit) {
            break;
        }
        sleep(Duration::from_millis(50)).await;
    }
    read_copies(cluster, &keys.list_keys(), started).await
}

/// Every node's copy of every key in `keys`, [`CONCURRENT_READS`] at a time; reads that
/// fail are left out.
async fn read_copies(cluster: &ProcessCluster, keys: &[String], started: Instant) -> Vec<ListCopy> {
    let nodes: Vec<&str> = cluster.specs().iter().map(|s| s.name.as_str()).collect();
    let reads: Vec<(&String, &str)> = keys
        .iter()
        .flat_map(|key| nodes.iter().map(move |&node| (key, node)))
        .collect();
    let mut copies = Vec::with_capacity(reads.len());
    for batch in reads.chunks(CONCURRENT_READS) {
        let values = join_all(
            batch
                .iter()
                .map(|&(key, node)| cluster.local_list(node, key)),
        )
        .await;
        let time = started.elapsed().as_nanos() as u64;
        for (&(key, node), value) in batch.iter().zip(values) {
            if let Some(value) = value {
                copies.push(ListCopy {
                    key: key.clone(),
                    node: Some(node.to_owned()),
                    time,
                    operation: None,
                    value,
                });
            }
        }
    }
    copies
}

/// Writes the copies to `path`, one JSON object a line.
pub fn write(path: &Path, copies: &[ListCopy]) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    for copy in copies {
        serde_json::to_writer(&mut out, copy)?;
        out.write_all(b"\n")?;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))
}
