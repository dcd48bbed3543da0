//! `faultline test`: start a cluster of real node processes, drive concurrent clients against
//! it while a nemesis injects faults, record every operation, then heal, check the history,
//! print a summary and store the run.
//!
//! The phases, in order:
//! 1. set up: where the nodes run (loopback, or network namespaces: `placement.rs`), the
//!    run directory, the partition backend (before the nodes, which dial through it), the
//!    nodes; wait for a leader;
//! 2. run: clients and the nemesis until the time limit (or Ctrl-C/SIGTERM);
//! 3. final phase: heal every fault, restart dead nodes, ask whether the cluster takes a
//!    write again (a cluster that does not is stuck: the run fails), final reads;
//! 4. teardown, on every path: stop every node, unmount their disks, remove every firewall
//!    rule, then the nodes' network namespaces;
//! 5. check the history, write `results.json`, print the summary.

mod interrupt;
mod options;
mod placement;
mod progress;
pub(crate) mod summary;

use crate::console::{errln, out};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use faultline_checker::Verdict;
use faultline_history::{History, Process, Summary};
use faultline_nemesis::{
    BackendOptions, Cluster, Event, EventName, FaultKind, HostLinks, Nemesis, NodeNetwork,
    PartitionBackend, Partitioner, Schedule, faketime_available, fuse_available,
    remove_leftover_chains, remove_leftover_mounts, remove_leftover_namespaces,
};
use faultline_workloads::{ClientRun, FinalReads, KeysInUse, Recorder, run_clients};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::warn;

use crate::cluster::{ClusterOptions, Faketime, ProcessCluster};
use crate::completeness::Completeness;
use crate::election_safety::ElectionSafety;
use crate::remote::{RemoteNodes, UncleanHost};
use crate::results::{self, Healing, Observed, Recovery};
use crate::store::{
    BUNDLED_SYSTEM, RunDir, SPARES, SystemRecord, TestOptions, TestRecord, Versions,
};
use crate::system::{self, System};
use crate::{replicas, status_log};
pub use interrupt::Interrupt;
pub use options::TestArgs;

/// How long the cluster gets to elect a leader at the start.
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the cluster gets, once every fault is healed, to elect a leader and take a write.
const HEALING_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the final reads may keep retrying.
const FINAL_READS_TIMEOUT: Duration = Duration::from_secs(30);
/// How often every node's `/status` is sampled for the report.
const STATUS_INTERVAL: Duration = Duration::from_millis(100);
/// How often every node's copies of the newest lists are read for the divergence check.
const REPLICA_INTERVAL: Duration = Duration::from_millis(250);

/// What a finished run left behind.
pub struct RunOutcome {
    pub verdict: Verdict,
    /// The options the run resolved (seed included), for its replay command.
    pub options: TestOptions,
    /// Where the run is stored.
    pub run_dir: PathBuf,
    /// Operation counts, throughput and latency of the history.
    pub summary: Summary,
    /// The summary as printed at the end of the run.
    pub summary_text: String,
    /// How long each fault kept writes from succeeding.
    pub recovery: Recovery,
}

/// Runs one test from its flags; the verdict decides the exit code.
pub async fn run(args: &TestArgs) -> Result<RunOutcome> {
    run_until(args, &Interrupt::install()?).await
}

/// Runs one test that stops early when `interrupt` is set: a suite runs many tests under
/// one Ctrl-C handler.
pub async fn run_until(args: &TestArgs, interrupt: &Interrupt) -> Result<RunOutcome> {
    let mut options = args.resolve()?;
    // Before the run directory: a system that cannot start leaves nothing behind. Its version
    // probes are bounded in time, and a stop asked for meanwhile kills them.
    let system = tokio::select! {
        system = system::resolve(&options) => system?,
        () = interrupt.wait() => bail!("interrupted while checking the system under test; nothing was started"),
    };
    if nix::unistd::Uid::effective().is_root() {
        // Chains and namespaces of earlier runs that were killed before their teardown.
        let _ = remove_leftover_chains().await;
        if let Err(e) = remove_leftover_namespaces().await {
            warn!("removing the network namespaces of dead runs failed: {e}");
        }
    }
    placement::leave_out_off_hosts(args, &mut options)?;
    leave_out_what_cannot_run(args, &mut options).await?;
    let faketime = clock_fault_here(args, system.as_ref(), &mut options).await?;
    membership_here(args, system.as_ref(), &mut options)?;
    let node_network = placement::place_nodes(args, system.as_ref(), &mut options).await?;
    let placed_on_hosts = match placement::place_on_hosts(args, system.as_ref(), &options).await {
        Ok(Some(hosts)) => {
            placement::leave_out_what_hosts_lack(args, &hosts, &mut options).map(|()| Some(hosts))
        }
        other => other,
    };
    let hosts = match placed_on_hosts {
        Ok(hosts) => hosts,
        Err(error) => {
            if let Some(network) = node_network {
                let _ = network.teardown().await;
            }
            return Err(error);
        }
    };
    // The hosts may lack libfaketime, which leaves the clock faults out.
    let faketime = faketime.filter(|_| {
        (options.fault_kinds().ok()).is_some_and(|kinds| kinds.iter().any(FaultKind::moves_clocks))
    });
    let placed = Placed {
        network: node_network.clone(),
        hosts,
        faketime,
    };
    let outcome = run_placed(options, system, placed, interrupt).await;
    // The last step of the teardown, on every path: the nodes are stopped by now.
    if let Some(network) = node_network
        && let Err(e) = network.teardown().await
    {
        warn!("removing the nodes' network namespaces failed: {e}");
    }
    outcome
}

/// With hosts and slow or lossy links in the mix: the proxies of every node's links, on its
/// host.
async fn links_on_hosts(
    options: &TestOptions,
    hosts: &RemoteNodes,
    cluster: &ProcessCluster,
) -> Result<Option<Arc<dyn HostLinks>>> {
    if !options.fault_kinds()?.iter().any(FaultKind::slows_links) {
        return Ok(None);
    }
    let links = hosts
        .proxy_links(&cluster.peer_addrs())
        .await
        .context("proxying the nodes' links on the hosts")?;
    Ok(Some(Arc::new(links)))
}

/// Where the nodes run, and what they run under.
struct Placed {
    /// Each in a network namespace of its own.
    network: Option<Arc<NodeNetwork>>,
    /// Each on a host of its own over SSH.
    hosts: Option<Arc<RemoteNodes>>,
    /// Under libfaketime, for the clock faults.
    faketime: Option<Faketime>,
}

/// The run, once it is known where the nodes run: from the run directory to the summary.
async fn run_placed(
    options: TestOptions,
    system: Arc<dyn System>,
    placed: Placed,
    interrupt: &Interrupt,
) -> Result<RunOutcome> {
    let Placed {
        network: node_network,
        hosts,
        faketime,
    } = placed;
    if interrupt.is_set() {
        if let Some(hosts) = &hosts {
            hosts.collect_and_clean(&BTreeMap::new()).await;
        }
        bail!("interrupted before the cluster started; nothing was started");
    }
    let timestamp = chrono::Local::now().format("%Y%m%dT%H%M%S").to_string();
    for fault in &options.left_out {
        errln!("faultline test: leaving out {fault}");
    }
    let run_dir = RunDir::create(&options.store, &options.name, &timestamp)?;
    run_dir.mark_latest(&options.store)?;
    errln!(
        "faultline test {}: {} nodes, workload {}, nemesis {}, {} s, seed {}\n  run stored in {}",
        options.name,
        options.nodes,
        options.workload,
        options.nemesis,
        options.time_limit.as_secs_f64(),
        options.seed,
        run_dir.path.display()
    );
    if let Some(network) = &node_network {
        errln!(
            "  each node in a network namespace of its own, reached from {} on {}",
            network.host_addr(),
            network.host_link()
        );
    }
    if let Some(hosts) = &hosts {
        errln!(
            "  each node on a host of its own over SSH: {} (under {} there)",
            options.node_hosts().join(", "),
            hosts.root()
        );
    }

    let cluster = Arc::new(ProcessCluster::plan(&ClusterOptions {
        nodes: options.nodes,
        spares: options.spares,
        system: system.clone(),
        run_dir: run_dir.clone(),
        power_loss: options.fault_kinds()?.contains(FaultKind::PowerLoss),
        network: node_network.clone(),
        faketime,
        hosts: hosts.clone(),
    })?);
    let network = Arc::new(match (node_network, &hosts) {
        (Some(node_network), _) => PartitionBackend::in_namespaces(node_network),
        (None, Some(hosts)) => {
            let links = match links_on_hosts(&options, hosts, &cluster).await {
                Ok(links) => links,
                Err(error) => {
                    let unclean = hosts.collect_and_clean(&BTreeMap::new()).await;
                    bail!("{error:#}{}", not_cleaned(&unclean));
                }
            };
            PartitionBackend::on_hosts(hosts.clone(), cluster.peer_addrs(), links)
                .context("setting up partitions on the hosts")?
        }
        (None, None) => PartitionBackend::start(
            options.backend_kind()?,
            &cluster.peer_addrs(),
            BackendOptions {
                // Slowed and lossy links need the proxy in the path, also behind iptables.
                degradation: options.fault_kinds()?.iter().any(FaultKind::slows_links),
            },
        )
        .await
        .context("starting the partition backend")?,
    });
    let mut system_record = system.record();
    if let Some(hosts) = &hosts
        && system_record.version.is_none()
    {
        // A program installed on the hosts, not asked here: theirs is the one that runs.
        system_record.version = hosts.program_version().map(str::to_string);
    }
    write_test_json(&run_dir, &options, system_record, &network, &cluster)?;

    let recorded = drive(&options, &run_dir, &cluster, &network, interrupt).await;

    // Teardown runs whatever happened above.
    cluster.stop_all().await;
    if let Err(e) = cluster.remove_clock_files() {
        warn!("removing the clock control files failed: {e:#}");
    }
    if let Err(e) = cluster.unmount_disks().await {
        warn!("unmounting the power-loss disks failed: {e:#}");
    }
    if let Err(e) = network.teardown().await {
        warn!(
            "removing the partitions failed: {:#}",
            anyhow::Error::from(e)
        );
    }
    let unclean_hosts = match &hosts {
        Some(hosts) => collect_from_hosts(hosts, &cluster).await,
        None => Vec::new(),
    };
    if interrupt.is_set() {
        // Whatever the phase: what was recorded stays in the run directory.
        let kept = if run_dir.history().exists() {
            format!("The partial history is in {}", run_dir.history().display())
        } else {
            format!(
                "Nothing was recorded yet; the nodes' logs are in {}",
                run_dir.path.display()
            )
        };
        bail!(
            "interrupted; nodes stopped and partitions removed{}. {kept}",
            not_cleaned(&unclean_hosts)
        );
    }
    let recorded = recorded.map_err(|error| match &unclean_hosts[..] {
        [] => error,
        _ => anyhow::anyhow!("{error:#}{}", not_cleaned(&unclean_hosts)),
    })?;

    let started = std::time::Instant::now();
    let Recorded {
        history,
        final_reads,
        healing,
        observed,
    } = recorded;
    let (check_timeout, time_limit) = (options.check_timeout, options.time_limit);
    // The check may take its whole budget (a minute by default) on a thread of its own, so
    // that a stop asked for meanwhile ends the run at once: the history is on disk already.
    let checking = tokio::task::spawn_blocking(move || {
        let results = results::check(&history, check_timeout, healing, observed, time_limit);
        (history, results)
    });
    let (history, results) = tokio::select! {
        checked = checking => checked.context("the check failed")?,
        () = interrupt.wait() => bail!(
            "interrupted while checking the history; nodes stopped and partitions removed. \
             The history is in {}: `faultline check {}` checks it",
            run_dir.history().display(),
            run_dir.history().display()
        ),
    };
    let results = results?;
    let check_time = started.elapsed();
    run_dir.write_results(&results)?;
    if let Err(e) = crate::report::write(&run_dir.path) {
        warn!("writing the report failed ({e:#}); `faultline report <run-dir>` retries");
    }
    let summary = Summary::of(&history);
    let summary_text = summary::render(&summary::Printed {
        options: &options,
        backend: network.kind().to_string(),
        summary: &summary,
        nemesis_events: nemesis_events(&history),
        results: &results,
        final_reads: final_reads.as_ref(),
        check_time,
        run_dir: &run_dir,
        unclean_hosts: &unclean_hosts,
    });
    out!("{summary_text}");
    Ok(RunOutcome {
        recovery: results.recovery.clone(),
        verdict: results.valid,
        options,
        run_dir: run_dir.path,
        summary,
        summary_text,
    })
}

/// The end of a run on its hosts: each node's directory copied into the run's, every host
/// cleaned; the hosts where that failed are said now and named in the summary.
async fn collect_from_hosts(hosts: &RemoteNodes, cluster: &ProcessCluster) -> Vec<UncleanHost> {
    let local_dirs = cluster
        .specs()
        .iter()
        .map(|spec| (spec.name.clone(), spec.dir.clone()))
        .collect();
    let unclean = hosts.collect_and_clean(&local_dirs).await;
    for host in &unclean {
        errln!(
            "faultline test: {} was not cleaned: {}",
            host.host,
            host.reason
        );
    }
    unclean
}

/// `; not cleaned: h1, h2` for the end of a message that stops a run, if hosts were left so.
fn not_cleaned(hosts: &[UncleanHost]) -> String {
    if hosts.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = hosts.iter().map(|host| host.host.as_str()).collect();
    format!(" (not cleaned: {}, see above)", names.join(", "))
}

/// Checks that power loss can run here if asked for: a `--nemesis` list that names it is
/// refused with the reason when it cannot, and the default mix goes on without it, saying so
/// in `left_out`. (What the placement of the nodes allows is `placement.rs`'s part.)
async fn leave_out_what_cannot_run(args: &TestArgs, options: &mut TestOptions) -> Result<()> {
    let kinds = options.fault_kinds()?;
    if !kinds.contains(FaultKind::PowerLoss) {
        return Ok(());
    }
    // Mounts of earlier runs that were killed before their teardown.
    if let Err(e) = tokio::task::spawn_blocking(remove_leftover_mounts).await? {
        warn!("looking for leftover power-loss mounts failed: {e}");
    }
    match tokio::task::spawn_blocking(fuse_available).await? {
        Ok(()) => Ok(()),
        Err(reason) => options.leave_out(
            FaultKind::PowerLoss,
            &reason.to_string(),
            args.nemesis.is_some(),
        ),
    }
}

/// Whether the faults that move clocks (clock, drifting-leader) can run here if asked for, and
/// the libfaketime to start the nodes under when they run (and only then: every clock call of
/// a node under it costs a read of its control file). A system whose nodes cannot run under
/// libfaketime, or a machine without it, leaves them out, saying so; a `--nemesis` list that
/// names one is refused (exit 3). With hosts, the libfaketime is theirs: their check finds it
/// ([`placement::leave_out_what_hosts_lack`]).
async fn clock_fault_here(
    args: &TestArgs,
    system: &dyn System,
    options: &mut TestOptions,
) -> Result<Option<Faketime>> {
    let moving_clocks: Vec<FaultKind> = options
        .fault_kinds()?
        .iter()
        .filter(|kind| kind.moves_clocks())
        .collect();
    if moving_clocks.is_empty() {
        return Ok(None);
    }
    let reason = match system.clock_unfaultable() {
        Some(reason) => reason,
        None if !options.hosts.is_empty() => return Ok(Some(Faketime::OnHosts)),
        None => match tokio::task::spawn_blocking(faketime_available).await? {
            Ok(library) => return Ok(Some(Faketime::Here(library))),
            Err(reason) => reason.to_string(),
        },
    };
    for kind in moving_clocks {
        options.leave_out(kind, &reason, args.nemesis.is_some())?;
    }
    Ok(None)
}

/// Whether the membership fault can run here if asked for, and then the spares it adds: a
/// system whose membership cannot change leaves the fault out, saying so; a `--nemesis` list
/// that names it is refused (exit 3).
fn membership_here(args: &TestArgs, system: &dyn System, options: &mut TestOptions) -> Result<()> {
    if !options.fault_kinds()?.contains(FaultKind::Membership) {
        return Ok(());
    }
    match system.membership_unchangeable() {
        Some(reason) => options.leave_out(FaultKind::Membership, &reason, args.nemesis.is_some()),
        None => {
            options.spares = SPARES;
            Ok(())
        }
    }
}

/// How many nemesis events of each kind the history holds.
fn nemesis_events(history: &History) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for event in history
        .events()
        .iter()
        .filter(|e| e.process == Process::Nemesis)
    {
        *counts.entry(event.f.to_string()).or_default() += 1;
    }
    counts
}

/// What the run phase recorded.
struct Recorded {
    history: History,
    final_reads: Option<FinalReads>,
    healing: Option<Healing>,
    /// What the harness saw of the nodes themselves.
    observed: Observed,
}

/// Phases 1 to 3: start the nodes, run clients and faults, heal, final reads.
async fn drive(
    options: &TestOptions,
    run_dir: &RunDir,
    cluster: &Arc<ProcessCluster>,
    network: &Arc<PartitionBackend>,
    interrupt: &Interrupt,
) -> Result<Recorded> {
    // Start-up watches for a stop too: waiting for a leader takes up to LEADER_TIMEOUT.
    // Whatever was started by then is torn down by the caller.
    tokio::select! {
        ready = async {
            cluster
                .start(|from, to| network.dial_addr(from, to))
                .await?;
            cluster.wait_until_ready(LEADER_TIMEOUT).await
        } => { ready?; }
        () = interrupt.wait() => bail!("interrupted while the cluster was starting"),
    }
    cluster.checkpoint_disks().await?;

    let started = std::time::Instant::now();
    let recorder = Arc::new(Recorder::to_file(&run_dir.history(), started)?);
    let (stop_polling, polling_stopped) = watch::channel(false);
    let reports_log = cluster.reports_raft_log();
    let poller = tokio::spawn(status_log::poll(
        cluster.clone(),
        Instant::from_std(started),
        STATUS_INTERVAL,
        run_dir.status_log(),
        reports_log,
        polling_stopped,
    ));
    let progress = progress::start(options.time_limit, recorder.clone());
    let deadline = Instant::from_std(started) + options.time_limit;
    let workload = options.workload_options()?;
    let keys = KeysInUse::new(&workload);
    let clients = cluster.clients(workload.client_timeout)?;
    let sampler = tokio::spawn(replicas::sample(
        cluster.clone(),
        keys.clone(),
        Instant::from_std(started),
        REPLICA_INTERVAL,
        stop_polling.subscribe(),
    ));

    let nemesis_recorder = recorder.clone();
    let nemesis = Nemesis::new(cluster.clone(), network.clone(), move |event: Event| {
        nemesis_recorder.nemesis(event.f.as_str(), event.value)
    });
    let schedule = Schedule {
        kinds: options.fault_kinds()?,
        interval: options.nemesis_interval,
        seed: options.seed,
    };
    let cancel = interrupt.wait();
    let faults = tokio::spawn(async move {
        let ran = nemesis.run(&schedule, deadline, cancel).await;
        (nemesis, ran)
    });
    let clients = run_clients(
        &workload,
        clients,
        recorder.clone(),
        &keys,
        deadline,
        interrupt.wait(),
    )
    .await;
    let (nemesis, ran) = faults.await.context("the nemesis task failed")?;

    // Final phase: heal everything, bring every node back, then read what survived.
    progress.set_message("healing");
    let healed = nemesis.heal_all().await;
    // Crashes since the status poller last looked: they must not pass for nemesis kills.
    let mut crashes = status_log::crashes_now(cluster, Instant::from_std(started));
    for node in cluster.stopped_nodes() {
        // A node that died by itself (the nemesis restarts the ones it killed).
        cluster.restart(&node).await?;
        recorder.nemesis(EventName::Restart.as_str(), json!([node]));
    }
    let mut final_reads = None;
    let mut healing = None;
    let mut clients = clients?;
    if !interrupt.is_set() {
        // Up to HEALING_TIMEOUT and FINAL_READS_TIMEOUT: a stop asked for meanwhile cuts it
        // short, leaving the run without a healing verdict (it is not checked).
        let finished = tokio::select! {
            finished = async {
                progress.set_message("recovering");
                let outcome = heal_check(cluster, &mut clients, started).await;
                let mut reads = None;
                if outcome.recovered && !clients.list_keys().is_empty() {
                    progress.set_message("final reads");
                    let deadline = Instant::now() + FINAL_READS_TIMEOUT;
                    reads = Some(clients.final_reads(deadline).await?);
                }
                anyhow::Ok((outcome, reads))
            } => Some(finished?),
            () = interrupt.wait() => None,
        };
        if let Some((outcome, reads)) = finished {
            healing = Some(outcome);
            final_reads = reads;
        }
    }
    let _ = stop_polling.send(true);
    let mut copies = sampler.await.context("the replica sampler failed")?;
    if !interrupt.is_set() {
        progress.set_message("reading every replica");
        copies.extend(replicas::final_sweep(cluster, &keys, Instant::from_std(started)).await);
    }
    progress.finish();
    replicas::write(&run_dir.replicas(), &copies)?;
    let history = recorder.finish()?;
    let mut agreement = None;
    let mut stalls = Vec::new();
    let mut stale_leaders = Vec::new();
    let mut two_leaders = Vec::new();
    let mut leaders = Vec::new();
    match poller.await {
        Ok((polled, written)) => {
            crashes.extend(polled.crashes);
            agreement = polled.fingerprints.finish();
            stalls = polled.stalls.finish();
            stale_leaders = polled
                .completeness
                .map(Completeness::finish)
                .unwrap_or_default();
            two_leaders = polled
                .election_safety
                .map(ElectionSafety::finish)
                .unwrap_or_default();
            leaders = polled.leaders;
            if let Err(e) = written {
                warn!("writing node status failed: {e:#}");
            }
        }
        Err(e) => warn!("the status sampler failed: {e}"),
    }
    // Crashes during the final phase, after the poller stopped.
    crashes.extend(status_log::crashes_now(cluster, Instant::from_std(started)));
    crashes.sort_by_key(|crash| crash.time);
    ran.context("the nemesis failed")?;
    healed.context("healing the faults failed")?;
    Ok(Recorded {
        history,
        final_reads,
        healing,
        observed: Observed {
            copies,
            crashes,
            agreement,
            stalls,
            stale_leaders,
            two_leaders,
            leaders,
        },
    })
}

/// Once every fault is healed: waits for a leader, then for one acknowledged write (the
/// probe, recorded and checked like any operation), within [`HEALING_TIMEOUT`].
async fn heal_check(
    cluster: &ProcessCluster,
    clients: &mut ClientRun,
    started: std::time::Instant,
) -> Healing {
    let healed = std::time::Instant::now();
    let deadline = Instant::now() + HEALING_TIMEOUT;
    let reason = match cluster.wait_for_leader(HEALING_TIMEOUT).await {
        // The first line: the node logs' tails that follow are in the logs themselves.
        Err(no_leader) => Some(
            no_leader
                .to_string()
                .lines()
                .next()
                .unwrap_or("")
                .to_owned(),
        ),
        Ok(_) if clients.probe(deadline).await => None,
        Ok(leader) => Some(format!(
            "{}, but no write was acknowledged within {} s",
            match leader {
                Some(leader) => format!("{leader} leads"),
                None => "every node answers".to_string(),
            },
            HEALING_TIMEOUT.as_secs()
        )),
    };
    Healing {
        recovered: reason.is_none(),
        seconds: healed.elapsed().as_secs_f64(),
        gave_up_at: reason
            .is_some()
            .then(|| started.elapsed().as_nanos() as u64),
        reason,
    }
}

/// `test.json`: every option, the system, the seed, the replay command, the binaries'
/// versions, and where each node lived.
fn write_test_json(
    run_dir: &RunDir,
    options: &TestOptions,
    system: SystemRecord,
    network: &PartitionBackend,
    cluster: &ProcessCluster,
) -> Result<()> {
    // Where readers from before the system was recorded look for it.
    let node_version = (system.name == BUNDLED_SYSTEM)
        .then(|| system.version.clone())
        .flatten();
    run_dir.write_test(&TestRecord {
        options: options.clone(),
        system,
        partition_backend_used: network.kind().to_string(),
        replay: options.replay_command(),
        versions: Versions {
            faultline: env!("CARGO_PKG_VERSION").to_string(),
            faultline_node: node_version,
        },
        nodes: cluster.specs().to_vec(),
        started: chrono::Local::now().to_rfc3339(),
    })
}
