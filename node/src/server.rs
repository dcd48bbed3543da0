//! Starts a node: recovers storage, builds the Raft core, runs the Raft loop on its own
//! thread and serves the client and peer HTTP endpoints until SIGTERM or Ctrl-C. At SIGTERM
//! a leader first hands leadership to its most up-to-date follower, so that the cluster
//! does not wait out an election timeout for a planned stop.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::http::HeaderValue;
use crossbeam_channel::Sender;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{oneshot, watch};
use tracing::{error, info, warn};

use crate::admin::{self, AdminState};
use crate::api::{self, ApiState};
use crate::cluster_id::{self, ClusterId};
use crate::config::{NodeConfig, ReadModeSetting};
use crate::connections::{self, ConnectionLimits};
use crate::driver::{Driver, Input, LoopSettings, NodeStatus};
use crate::kv::KvStore;
use crate::leadership::TransferFailure;
use crate::members::Members;
use crate::metrics::Metrics;
use crate::peer_auth::PeerGate;
use crate::raft::{self, Raft, ReadMode};
use crate::storage::{Storage, StorageOptions};
use crate::transport::{self, PeerDirectory, PeerLink, ReceiverSettings, SenderSettings};

/// How long an HTTP server gets to stop, beyond its connections' own drain time.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// File descriptors beyond the connections: the WAL, snapshots, outgoing peer connections.
const SPARE_FILES: u64 = 256;

/// Runs the node until it is told to stop, or until its Raft loop fails.
pub async fn run(config: NodeConfig) -> Result<()> {
    let members = Members::new(&config.name, config.peers.iter().map(|p| p.name.clone()))
        .map_err(anyhow::Error::msg)?;
    let own = members.own_id();
    let members_count = members.names().len();
    let raft_config = raft_config(&config, &members)?;
    let cluster_id = config
        .cluster_id
        .clone()
        .unwrap_or_else(|| ClusterId::derived(members.names().iter().map(String::as_str)));
    // Before storage writes anything: a data dir of another cluster must stay untouched.
    cluster_id::bind(&config.data_dir, &cluster_id)?;
    members.bind(&config.data_dir).map_err(anyhow::Error::msg)?;
    info!(cluster_id = %cluster_id, derived = config.cluster_id.is_none(), "cluster id");
    connections::raise_open_file_limit(2 * config.connections.max_connections as u64 + SPARE_FILES);

    let (storage, recovered) = Storage::open(
        &config.data_dir,
        StorageOptions {
            // The `no-fsync` bug: the WAL is written but never fsynced.
            fsync: config.fsync && !config.bugs.no_fsync,
            ..StorageOptions::default()
        },
    )
    .with_context(|| format!("opening the data dir {}", config.data_dir.display()))?;
    let kv = match &recovered.snapshot {
        Some(snapshot) => {
            KvStore::restore(&snapshot.data).context("decoding the snapshot in the data dir")?
        }
        None => KvStore::default(),
    };
    let snapshot_meta = recovered.snapshot.as_ref().map(|s| s.meta);
    info!(
        node = %config.name,
        term = recovered.hard_state.term,
        entries = recovered.entries.len(),
        snapshot_index = snapshot_meta.map(|m| m.index).unwrap_or(0),
        "recovered storage"
    );
    let message_limit = transport::wire::message_body_limit(raft_config.max_bytes_per_message);
    let raft = Raft::new(
        raft_config,
        recovered.hard_state,
        recovered.snapshot,
        recovered.entries,
    )
    .context("rebuilding the Raft state from storage")?;

    let client_listener = TcpListener::bind(config.client_addr)
        .await
        .with_context(|| format!("binding the client address {}", config.client_addr))?;
    let peer_listener = TcpListener::bind(config.peer_addr)
        .await
        .with_context(|| format!("binding the peer address {}", config.peer_addr))?;

    let (inputs, input_queue) = crossbeam_channel::unbounded();
    let advertised = HeaderValue::from_str(&config.advertise_client_addr).with_context(|| {
        format!(
            "the advertised client address `{}` cannot go in an HTTP header",
            config.advertise_client_addr
        )
    })?;
    let directory = Arc::new(PeerDirectory::new(
        own,
        config.advertise_client_addr.clone(),
    ));
    let links = config
        .peers
        .iter()
        .map(|p| PeerLink {
            id: members.id_of(&p.name).expect("peers are members"),
            dial: p.dial,
        })
        .collect();
    let outboxes = transport::spawn_senders(
        links,
        SenderSettings {
            local_ip: config.peer_addr.ip(),
            client_addr: advertised,
            cluster_id: cluster_id.clone(),
            own,
            own_name: config.name.clone(),
            token: config.peer_token.clone(),
            timeout: config.election_min,
            large_timeout: config.snapshot_timeout,
            message_limit,
        },
        inputs.clone(),
    );
    let metrics = Arc::new(Metrics::default());
    let gate = Arc::new(PeerGate::new(
        cluster_id,
        members.clone(),
        config.peer_token.clone(),
        metrics.clone(),
    ));
    let (status_tx, status_rx) = watch::channel(NodeStatus::default());
    // The core abandons a transfer after the longest election timeout; the other one
    // leaves room for the new leader's first heartbeat to reach this node.
    let transfer_timeout = 2 * config.election_max;
    let settings = LoopSettings {
        tick: config.tick,
        // At least an election timeout's worth, so that after a pause every lease has run out
        // (a lease is shorter than the shortest election timeout).
        max_catch_up_ticks: (config.election_max.as_secs_f64() / config.tick.as_secs_f64()).ceil()
            as u32,
        snapshot_threshold: config.snapshot_threshold,
        transfer_timeout,
        membership_change_timeout: config.request_timeout,
        bugs: config.bugs,
    };
    if config.bugs.any() {
        warn!(bugs = ?config.bugs, "deliberate bugs are switched on");
    }
    let driver = Driver::new(
        raft,
        storage,
        kv,
        snapshot_meta,
        members.clone(),
        settings,
        outboxes,
        metrics.clone(),
        status_tx,
    );
    let (loop_done, loop_result) = oneshot::channel();
    std::thread::Builder::new()
        .name("raft-loop".into())
        .spawn(move || {
            let _ = loop_done.send(driver.run(input_queue));
        })
        .context("starting the Raft loop thread")?;

    let admin = admin::router(AdminState {
        inputs: inputs.clone(),
        members: members.clone(),
        transfer_timeout,
        membership_change_timeout: config.request_timeout,
    });
    let api = api::router(ApiState {
        inputs: inputs.clone(),
        status: status_rx,
        directory: directory.clone(),
        members,
        metrics,
        request_timeout: config.request_timeout,
    })
    .merge(admin);
    let peer_api = transport::router(ReceiverSettings {
        own,
        members: members_count,
        gate,
        inputs: inputs.clone(),
        directory,
        message_limit,
        large_limit: config.max_snapshot_bytes,
        spool_dir: config.data_dir.clone(),
    });
    let (stop_servers, servers_stopping) = watch::channel(false);
    let limits: ConnectionLimits = config.connections;
    let client_server = tokio::spawn(connections::serve(
        client_listener,
        api,
        limits,
        servers_stopping.clone(),
    ));
    let peer_server = tokio::spawn(connections::serve(
        peer_listener,
        peer_api,
        limits,
        servers_stopping,
    ));
    info!(
        node = %config.name,
        client = %config.client_addr,
        peer = %config.peer_addr,
        read_mode = ?config.read_mode,
        "node started"
    );

    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut loop_result = std::pin::pin!(loop_result);
    let outcome = tokio::select! {
        _ = terminate.recv() => {
            info!("SIGTERM: shutting down");
            hand_over_leadership(&inputs, transfer_timeout).await;
            None
        }
        _ = tokio::signal::ctrl_c() => { info!("Ctrl-C: shutting down"); None }
        result = &mut loop_result => Some(result),
    };
    let result = match outcome {
        Some(result) => result,
        None => {
            let _ = inputs.send(Input::Shutdown);
            loop_result.await
        }
    };
    let _ = stop_servers.send(true);
    for server in [client_server, peer_server] {
        if tokio::time::timeout(STOP_TIMEOUT, server).await.is_err() {
            warn!("an HTTP server did not drain in time");
        }
    }
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            error!("the Raft loop failed: {e:#}");
            Err(e.context("the Raft loop failed"))
        }
        Err(_) => bail!("the Raft loop thread panicked"),
    }
}

/// Before a planned stop: if this node leads, hands leadership to its most up-to-date
/// follower and waits (at most about `limit`) until it leads; a follower returns at once.
/// Either way the node then stops: a failed handover costs only the election it would
/// have cost anyway.
async fn hand_over_leadership(inputs: &Sender<Input>, limit: Duration) {
    let (reply, outcome) = oneshot::channel();
    if inputs
        .send(Input::TransferLeadership { to: None, reply })
        .is_err()
    {
        return;
    }
    // The Raft loop gives up by `limit` itself; the margin only guards against a stuck loop.
    match tokio::time::timeout(limit + Duration::from_millis(500), outcome).await {
        Ok(Ok(Ok(done))) => info!(
            leader = %done.leader,
            term = done.term,
            "handed leadership over before stopping"
        ),
        // A follower, or a leader alone, has nothing to hand over.
        Ok(Ok(Err(TransferFailure::NotLeader { .. } | TransferFailure::NoFollower)))
        | Ok(Err(_)) => {}
        Ok(Ok(Err(failure))) => {
            warn!("stopping without handing leadership over: {failure}")
        }
        Err(_) => warn!("stopping without handing leadership over: no answer in time"),
    }
}

/// Converts the node's durations into the core's ticks.
fn raft_config(config: &NodeConfig, members: &Members) -> Result<raft::Config> {
    let ticks = |d: Duration| (d.as_secs_f64() / config.tick.as_secs_f64()).round() as u32;
    let initial_voters = match &config.initial_members {
        None => members.ids(),
        Some(names) => names
            .iter()
            .map(|name| {
                members.id_of(name).with_context(|| {
                    format!(
                        "--initial-members names `{name}`, which is neither this node nor one \
                         of --peers ({})",
                        members.names().join(", ")
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?,
    };
    let mut raft_config = raft::Config::new(members.own_id(), initial_voters);
    raft_config.heartbeat_ticks = ticks(config.heartbeat).max(1);
    raft_config.election_ticks = ticks(config.election_min)..ticks(config.election_max);
    raft_config.seed = rand::random();
    raft_config.bugs = config.bugs;
    raft_config.read_mode = match config.read_mode {
        ReadModeSetting::ReadIndex => ReadMode::ReadIndex,
        // Rounded up: a margin never shrinks.
        ReadModeSetting::Lease { drift_margin } => ReadMode::Lease {
            drift_margin_ticks: (drift_margin.as_secs_f64() / config.tick.as_secs_f64()).ceil()
                as u32,
        },
    };
    raft_config.validate().with_context(|| {
        format!(
            "timeouts (tick {:?}, heartbeat {:?}, election {:?}..{:?}, read mode {:?})",
            config.tick,
            config.heartbeat,
            config.election_min,
            config.election_max,
            config.read_mode
        )
    })?;
    Ok(raft_config)
}
