//! The cluster under test: one process per node, started as the [`System`] says, node i
//! named `n{i}` on its own loopback address 127.0.0.(10+i), or in a network namespace of its
//! own at the address the [`NodeNetwork`] gave it, with its own ports, data dir and log file
//! under the run's directory. The nemesis kills, restarts, powers off, pauses and resumes nodes
//! through the [`Cluster`] trait implemented here; a node's sidecars (Redis's sentinels) run
//! beside it out of the nemesis's reach. For power loss, each data dir is a
//! [`PowerLossDisk`] mounted over it for the run, and written back as plain files at the end.
//! For the clock fault, each node runs under libfaketime with a control file of its own
//! ([`ClockControl`], `nodes/<n>/clock.faketime`), rewritten whenever the nemesis changes its
//! clock and before every start of the node, and removed at the end.
//! For the membership fault, spare nodes start beside the members (`--initial-members` tells
//! each node who the first members are); the cluster keeps the members it last saw, which
//! the waits for a leader and the final catch-up consider, and the nodes the nemesis retired
//! (removed from the cluster), which nothing restarts until it enlists them again.
//! With `--hosts`, each node runs on a host of its own over SSH ([`RemoteNodes`]) at that
//! host's address, its directory there copied into the run's at the end; `process.rs` does
//! to a node process on a host what it does to one here.

mod disk;
mod process;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use faultline_nemesis::{
    ChangeAnswer, ClockControl, ClockSetting, Cluster, MemberChange, Members, NodeName,
    NodeNetwork, NodeView, PowerLossDisk, control_line, remove_process_leftovers,
};
use faultline_workloads::ClientFactory;
use futures::future::join_all;
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep};
use tracing::{debug, warn};

use crate::node_status::{NodeStatus, leading};
use crate::ports::reserve_ports;
use crate::remote::{NODE_PORTS, RemoteNodes};
use crate::store::{NodeRecord, RunDir};
use crate::system::{NodeCommand, System};
use disk::NodeDisk;
use process::{NodeProcess, stop_child};

/// A node's libfaketime control file, in its directory.
const CLOCK_CONTROL: &str = "clock.faketime";

/// A node process that exited by itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeExit {
    pub node: NodeName,
    /// How it exited, e.g. `exit status: 1`.
    pub status: String,
    /// The last error its log holds (or its last line): why, as far as it said.
    pub last_error: String,
}

/// How to start the cluster.
#[derive(Clone)]
pub struct ClusterOptions {
    /// The members at the start.
    pub nodes: usize,
    /// Nodes started beside them that are not members, for the membership fault to add.
    pub spares: usize,
    /// What runs on each node, and how to ask it how it is.
    pub system: Arc<dyn System>,
    /// The run directory; nodes live in `nodes/<name>/` under it.
    pub run_dir: RunDir,
    /// Mount a power-loss disk on every data dir, so that nodes can lose power.
    pub power_loss: bool,
    /// Run each node in its namespace of this network (created for `n1`..`n{nodes}`), not on
    /// loopback.
    pub network: Option<Arc<NodeNetwork>>,
    /// Start every node under libfaketime, so that the nemesis can move its clocks: only
    /// with the clock fault in the run, since every clock call then costs a read of the
    /// control file.
    pub faketime: Option<Faketime>,
    /// Run each node on a host of its own over SSH (`--hosts`), not on this machine.
    pub hosts: Option<Arc<RemoteNodes>>,
}

/// Where the nodes' libfaketime is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Faketime {
    /// At this path on this machine.
    Here(PathBuf),
    /// On each node's host, where the host's check found it.
    OnHosts,
}

/// One node's clock under libfaketime.
struct NodeClock {
    control: ClockControl,
    /// What the nemesis set it to.
    setting: ClockSetting,
    /// When the node's running process started (libfaketime's reference point), if one runs.
    process_start: Option<Instant>,
}

enum ProcessState {
    Running(NodeProcess),
    Paused(NodeProcess),
    Stopped,
}

/// A process beside a node (see [`System::sidecars`]): `None` once it exited and the exit was
/// recorded, until the node's next restart starts it again.
type Sidecar = Option<(Child, NodeCommand)>;

/// The node processes of one run.
pub struct ProcessCluster {
    specs: Vec<NodeRecord>,
    system: Arc<dyn System>,
    /// `(from, to) -> address` that `from` dials to reach `to` (a proxy, or `to` itself).
    dials: Mutex<BTreeMap<(NodeName, NodeName), SocketAddr>>,
    processes: Mutex<BTreeMap<NodeName, ProcessState>>,
    /// Each node's sidecars, once started; a node without an entry has not had them yet.
    sidecars: Mutex<BTreeMap<NodeName, Vec<Sidecar>>>,
    /// Exits of node processes that nobody stopped, noticed wherever the harness looks at a
    /// process ([`ProcessCluster::exited_by_themselves`] hands them out).
    exits: Mutex<Vec<NodeExit>>,
    /// Nodes seen leading by the nemesis's own reads ([`Cluster::leader`], [`Cluster::view`]),
    /// with when: a winner that restart-bridge pauses at once leads for less than the status
    /// poller's interval, which takes these in ([`ProcessCluster::take_leader_claims`]).
    leader_claims: Mutex<Vec<(Instant, NodeStatus)>>,
    /// With power loss: each node's disk, mounted on its data dir until the teardown.
    power_loss: bool,
    disks: Mutex<BTreeMap<NodeName, NodeDisk>>,
    /// With namespaces: where each node process is started.
    network: Option<Arc<NodeNetwork>>,
    /// With `--hosts`: the host each node runs on.
    hosts: Option<Arc<RemoteNodes>>,
    /// With the clock fault: each node's clock.
    clocks: Option<Mutex<BTreeMap<NodeName, NodeClock>>>,
    /// The processes started under libfaketime, whose leftovers in /dev/shm go once they are
    /// dead.
    faked_pids: Mutex<Vec<u32>>,
    /// Each node's, held while its control file on its host is written (SSH round trips),
    /// so that writes reach the file in the order the settings were made.
    clock_writes: BTreeMap<NodeName, tokio::sync::Mutex<()>>,
    /// The members (voters and learners) as last seen: the first members until a
    /// membership change is seen.
    members: Mutex<BTreeSet<NodeName>>,
    /// Nodes that left the cluster and were stopped for good, until enlisted again.
    retired: Mutex<BTreeSet<NodeName>>,
}

/// The names of a cluster of `count` nodes: `n1`, `n2`, ... Node `i` (from 1) also gets the
/// `i`-th address, on loopback or in the nodes' network.
pub fn node_names(count: usize) -> Vec<NodeName> {
    (1..=count).map(|i| format!("n{i}")).collect()
}

impl ProcessCluster {
    /// Chooses addresses and directories; starts nothing yet.
    pub fn plan(options: &ClusterOptions) -> Result<ProcessCluster> {
        if !(1..=200).contains(&options.nodes) {
            bail!("--nodes must be between 1 and 200, not {}", options.nodes);
        }
        let specs = node_names(options.nodes + options.spares)
            .into_iter()
            .zip(1u8..)
            .map(|(name, i)| {
                let loopback = Ipv4Addr::new(127, 0, 0, 10 + i);
                if let Some(hosts) = &options.hosts {
                    let ip = hosts.ip(&name)?;
                    let [client_port, peer_port] = NODE_PORTS;
                    return Ok(NodeRecord {
                        client_addr: SocketAddr::from((ip, client_port)),
                        peer_addr: SocketAddr::from((ip, peer_port)),
                        dir: options.run_dir.node_dir(&name),
                        ip,
                        namespace: None,
                        spare: usize::from(i) > options.nodes,
                        host: Some(hosts.record(&name)?),
                        name,
                    });
                }
                // Inside a namespace of its own every port is free; ports chosen as on
                // loopback are as good there, and stay out of the ephemeral range.
                let [client_port, peer_port] = reserve_ports(loopback)?;
                let (ip, namespace) = match &options.network {
                    None => (loopback, None),
                    Some(network) => (
                        network.addr(&name).ok_or_else(|| {
                            anyhow!("the nodes' network has no namespace for {name}")
                        })?,
                        network.namespace(&name).map(str::to_string),
                    ),
                };
                Ok(NodeRecord {
                    client_addr: SocketAddr::from((ip, client_port)),
                    peer_addr: SocketAddr::from((ip, peer_port)),
                    dir: options.run_dir.node_dir(&name),
                    name,
                    ip,
                    namespace,
                    spare: usize::from(i) > options.nodes,
                    host: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let clocks = match &options.faketime {
            None => None,
            Some(faketime) => {
                let now = Instant::now();
                let clocks = specs
                    .iter()
                    .map(|spec| {
                        let control = match (faketime, &options.hosts) {
                            (Faketime::OnHosts, Some(hosts)) => ClockControl::new(
                                Path::new(hosts.faketime(&spec.name)?),
                                &Path::new(&hosts.node_dir(&spec.name)).join(CLOCK_CONTROL),
                            ),
                            (Faketime::OnHosts, None) => {
                                bail!("the nodes' libfaketime is on their hosts, with no hosts")
                            }
                            (Faketime::Here(library), _) => {
                                ClockControl::new(library, &spec.dir.join(CLOCK_CONTROL))
                            }
                        };
                        let clock = NodeClock {
                            control,
                            setting: ClockSetting::true_time(now),
                            process_start: None,
                        };
                        Ok((spec.name.clone(), clock))
                    })
                    .collect::<Result<_>>()?;
                Some(Mutex::new(clocks))
            }
        };
        Ok(ProcessCluster {
            system: options.system.clone(),
            dials: Mutex::new(BTreeMap::new()),
            processes: Mutex::new(BTreeMap::new()),
            sidecars: Mutex::new(BTreeMap::new()),
            exits: Mutex::new(Vec::new()),
            leader_claims: Mutex::new(Vec::new()),
            power_loss: options.power_loss,
            disks: Mutex::new(BTreeMap::new()),
            network: options.network.clone(),
            hosts: options.hosts.clone(),
            members: Mutex::new(
                specs
                    .iter()
                    .filter(|spec| !spec.spare)
                    .map(|spec| spec.name.clone())
                    .collect(),
            ),
            clocks,
            faked_pids: Mutex::new(Vec::new()),
            clock_writes: (specs.iter())
                .map(|spec| (spec.name.clone(), tokio::sync::Mutex::new(())))
                .collect(),
            retired: Mutex::new(BTreeSet::new()),
            specs,
        })
    }

    /// Every node's addresses and directories.
    pub fn specs(&self) -> &[NodeRecord] {
        &self.specs
    }

    /// Each node's peer address, for setting up the partition backend.
    pub fn peer_addrs(&self) -> BTreeMap<NodeName, SocketAddr> {
        self.specs
            .iter()
            .map(|s| (s.name.clone(), s.peer_addr))
            .collect()
    }

    fn spec(&self, name: &str) -> Result<&NodeRecord> {
        self.specs
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| anyhow!("no node named {name}"))
    }

    /// Starts every node. `dial(from, to)` says where `from` connects to reach `to`.
    pub async fn start(&self, dial: impl Fn(&str, &str) -> Option<SocketAddr>) -> Result<()> {
        {
            let mut dials = self.dials.lock().expect("never poisoned");
            for from in &self.specs {
                for to in self.specs.iter().filter(|to| to.name != from.name) {
                    let addr = dial(&from.name, &to.name).unwrap_or(to.peer_addr);
                    dials.insert((from.name.clone(), to.name.clone()), addr);
                }
            }
        }
        for spec in &self.specs {
            fs::create_dir_all(spec.data_dir())
                .with_context(|| format!("creating {}", spec.data_dir().display()))?;
            if self.power_loss {
                self.mount_disk(spec).await?;
            }
            self.system
                .prepare(spec, &self.specs)
                .with_context(|| format!("preparing {}", spec.name))?;
            self.spawn(&spec.name).await?;
        }
        Ok(())
    }

    /// Mounts a power-loss disk on the node's data dir: here, or on its host.
    async fn mount_disk(&self, spec: &NodeRecord) -> Result<()> {
        let disk = match &self.hosts {
            Some(hosts) => {
                NodeDisk::Remote(Arc::new(hosts.mount_disk(&spec.name).await.with_context(
                    || format!("mounting a power-loss disk for {} on its host", spec.name),
                )?))
            }
            None => {
                let data_dir = spec.data_dir();
                let disk = tokio::task::spawn_blocking(move || PowerLossDisk::mount(&data_dir))
                    .await?
                    .with_context(|| format!("mounting a power-loss disk for {}", spec.name))?;
                NodeDisk::Local(Arc::new(disk))
            }
        };
        self.disks
            .lock()
            .expect("never poisoned")
            .insert(spec.name.clone(), disk);
        Ok(())
    }

    /// Makes everything the nodes wrote so far durable on their power-loss disks: the
    /// set-up is over and the test begins (see [`PowerLossDisk::checkpoint`]).
    pub async fn checkpoint_disks(&self) -> Result<()> {
        let disks: Vec<(NodeName, NodeDisk)> = (self.disks.lock().expect("never poisoned"))
            .iter()
            .map(|(name, disk)| (name.clone(), disk.clone()))
            .collect();
        for (name, disk) in disks {
            disk.checkpoint()
                .await
                .with_context(|| format!("checkpointing the disk of {name}"))?;
        }
        Ok(())
    }

    /// Unmounts every power-loss disk, leaving what the nodes wrote as plain files in their
    /// data dirs. Call it after [`ProcessCluster::stop_all`]; safe on any path and more than
    /// once. Returns the first failure, after trying every disk.
    pub async fn unmount_disks(&self) -> Result<()> {
        let disks = std::mem::take(&mut *self.disks.lock().expect("never poisoned"));
        let mut first_error = Ok(());
        for (name, disk) in disks {
            let result =
                (disk.unmount().await).with_context(|| format!("unmounting the disk of {name}"));
            if first_error.is_ok() {
                first_error = result;
            }
        }
        first_error
    }

    /// The process that runs `spec`, as the system launches it.
    fn node_command(&self, spec: &NodeRecord) -> Result<NodeCommand> {
        let dials = self.dials.lock().expect("never poisoned");
        let dial = |to: &str| dials[&(spec.name.clone(), to.to_string())];
        self.system.launch(spec, &self.specs, &dial)
    }

    /// `launch` on `spec`'s host, started: output appended to its log, killed with the
    /// harness, inside the node's namespace if it has one, with `env` added to its
    /// environment.
    fn spawn_on(
        &self,
        spec: &NodeRecord,
        launch: &NodeCommand,
        env: Vec<(&'static str, std::ffi::OsString)>,
    ) -> Result<Child> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&launch.log)
            .with_context(|| format!("opening {}", launch.log.display()))?;
        let mut command = Command::new(&launch.program);
        command
            .args(&launch.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .envs(env)
            .kill_on_drop(true);
        // If the harness itself is SIGKILLed, its nodes must not outlive it (nodes on hosts
        // do: see the README, "Running against real machines").
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        if let Some(network) = &self.network {
            network
                .enter(&spec.name, &mut command)
                .with_context(|| format!("starting {} in its network namespace", spec.name))?;
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {} ({})", spec.name, launch.program.display()))?;
        debug!(node = spec.name, pid = child.id(), program = %launch.program.display(), "started");
        Ok(child)
    }

    async fn spawn(&self, name: &str) -> Result<()> {
        let spec = self.spec(name)?;
        let process = match &self.hosts {
            Some(hosts) => NodeProcess::Remote(self.spawn_on_host(hosts, spec).await?),
            None => NodeProcess::Local(self.spawn_here(spec)?),
        };
        self.processes
            .lock()
            .expect("never poisoned")
            .insert(name.to_string(), ProcessState::Running(process));
        Ok(())
    }

    /// Starts the node on this machine, under libfaketime with the clock the nemesis set if
    /// clocks are faulted.
    fn spawn_here(&self, spec: &NodeRecord) -> Result<Child> {
        let launch = self.node_command(spec)?;
        let Some(clocks) = &self.clocks else {
            return self.spawn_on(spec, &launch, Vec::new());
        };
        let mut clocks = clocks.lock().expect("never poisoned");
        let clock = clocks
            .get_mut(&spec.name)
            .ok_or_else(|| anyhow!("no clock for {}", spec.name))?;
        // The line for a process that starts now: the clock the nemesis set, from the node's
        // first instruction.
        let start = Instant::now();
        clock
            .control
            .write(&clock.setting, start)
            .with_context(|| format!("writing {}", clock.control.path().display()))?;
        let child = self.spawn_on(spec, &launch, clock.control.env())?;
        clock.process_start = Some(start);
        if let Some(pid) = child.id() {
            self.faked_pids.lock().expect("never poisoned").push(pid);
        }
        Ok(child)
    }

    /// Starts the node on its host: the same launch as here, with the host's paths (its
    /// directory there, and the program put there the first time).
    async fn spawn_on_host(
        &self,
        hosts: &RemoteNodes,
        spec: &NodeRecord,
    ) -> Result<crate::remote::RemoteProcess> {
        let on_host = NodeRecord {
            dir: PathBuf::from(hosts.node_dir(&spec.name)),
            ..spec.clone()
        };
        let mut launch = self.node_command(&on_host)?;
        let program = hosts
            .program(&launch.program)
            .await
            .with_context(|| format!("putting {} on the hosts", launch.program.display()))?;
        launch.program = PathBuf::from(program);
        let Some(clocks) = &self.clocks else {
            return hosts
                .start(&spec.name, &launch, &[])
                .await
                .with_context(|| format!("starting {} on its host", spec.name));
        };
        // As here: the line for a process that starts now, written before it starts.
        let _writing = self.lock_clock_writes(&spec.name).await?;
        let start = Instant::now();
        let (control, setting) = {
            let clocks = clocks.lock().expect("never poisoned");
            let clock =
                (clocks.get(&spec.name)).ok_or_else(|| anyhow!("no clock for {}", spec.name))?;
            (clock.control.clone(), clock.setting)
        };
        self.write_clock_on_host(hosts, &spec.name, &control, &setting, start)
            .await?;
        let process = hosts
            .start(&spec.name, &launch, &control.env())
            .await
            .with_context(|| format!("starting {} on its host", spec.name))?;
        // When it really started, as the host said: the line for that start, if a rate makes
        // it another (the SSH round trips put it tens of milliseconds after `start`).
        let start = match process.started_ns() {
            Some(at) => {
                let started = hosts.instant_here(&spec.name, at)?;
                if control_line(&setting, started) != control_line(&setting, start) {
                    self.write_clock_on_host(hosts, &spec.name, &control, &setting, started)
                        .await?;
                }
                started
            }
            None => start,
        };
        if let Some(clock) = clocks.lock().expect("never poisoned").get_mut(&spec.name) {
            clock.process_start = Some(start);
        }
        Ok(process)
    }

    /// Holds `node`'s clock writes on its host until dropped.
    async fn lock_clock_writes(&self, node: &str) -> Result<tokio::sync::MutexGuard<'_, ()>> {
        match self.clock_writes.get(node) {
            Some(writes) => Ok(writes.lock().await),
            None => bail!("no node named {node}"),
        }
    }

    /// Writes `node`'s control file on its host for `setting` and a process started at
    /// `start`.
    async fn write_clock_on_host(
        &self,
        hosts: &RemoteNodes,
        node: &str,
        control: &ClockControl,
        setting: &ClockSetting,
        start: Instant,
    ) -> Result<()> {
        let path = control.path().display().to_string();
        hosts
            .write_line(node, &path, &control_line(setting, start))
            .await
            .with_context(|| format!("writing {path} on the host of {node}"))
    }

    /// Starts those of the node's sidecars that are not running (all of them the first time).
    fn spawn_sidecars(&self, name: &str) -> Result<()> {
        let spec = self.spec(name)?;
        let launches = self.system.sidecars(spec, &self.specs)?;
        let mut sidecars = self.sidecars.lock().expect("never poisoned");
        let running = sidecars.entry(name.to_string()).or_default();
        running.resize_with(launches.len(), || None);
        for (slot, launch) in running.iter_mut().zip(launches) {
            self.notice_sidecar_exit(name, slot);
            if slot.is_none() {
                *slot = Some((self.spawn_on(spec, &launch, Vec::new())?, launch));
            }
        }
        Ok(())
    }

    /// SIGKILLs the node's sidecars (as a power cut does), leaving their slots empty for the
    /// node's restart to fill; not an exit of their own.
    async fn kill_sidecars(&self, name: &str) {
        let children: Vec<Child> = {
            let mut sidecars = self.sidecars.lock().expect("never poisoned");
            let Some(slots) = sidecars.get_mut(name) else {
                return;
            };
            slots
                .iter_mut()
                .filter_map(|slot| slot.take().map(|(child, _)| child))
                .collect()
        };
        for mut child in children {
            if let Err(error) = child.kill().await {
                warn!(
                    node = name,
                    "SIGKILL of a process beside it failed: {error}"
                );
            }
        }
    }

    /// If the sidecar in `slot` has exited, records why (a sidecar is never stopped by the
    /// nemesis, so any exit is its own) and empties the slot.
    fn notice_sidecar_exit(&self, name: &str, slot: &mut Sidecar) {
        let Some((child, launch)) = slot else {
            return;
        };
        let status = match child.try_wait() {
            Ok(Some(status)) => status.to_string(),
            Ok(None) => return,
            Err(error) => format!("cannot be waited for ({error})"),
        };
        let exit = NodeExit {
            node: name.to_string(),
            status: format!("{} beside it: {status}", program_name(&launch.program)),
            last_error: last_error(&launch.log),
        };
        self.exits.lock().expect("never poisoned").push(exit);
        *slot = None;
    }

    /// Takes the node's process out (leaving it marked stopped), for the caller to signal or
    /// restart. A process found to have exited already is recorded as a crash first: a kill
    /// or a stop must not pass one off as its own doing.
    fn take(&self, name: &str) -> ProcessState {
        let mut processes = self.processes.lock().expect("never poisoned");
        if let Some(state) = processes.get_mut(name) {
            self.notice_exit(name, state);
        }
        processes
            .insert(name.to_string(), ProcessState::Stopped)
            .unwrap_or(ProcessState::Stopped)
    }

    /// If the running or paused process in `state` has exited, records why and marks it
    /// stopped. The one place that turns an exit nobody caused into a [`NodeExit`].
    fn notice_exit(&self, name: &str, state: &mut ProcessState) -> bool {
        let status = match state {
            ProcessState::Running(process) | ProcessState::Paused(process) => {
                match process.exited() {
                    Some(status) => status,
                    None => return false,
                }
            }
            ProcessState::Stopped => return false,
        };
        *state = ProcessState::Stopped;
        self.record_exit(name, status);
        true
    }

    /// Records that `name`'s process exited by itself, `status` saying how, with the last
    /// error of its log.
    fn record_exit(&self, name: &str, status: String) {
        let exit = NodeExit {
            node: name.to_string(),
            status,
            last_error: self
                .spec(name)
                .map(|spec| last_error(&spec.log_path()))
                .unwrap_or_default(),
        };
        self.exits.lock().expect("never poisoned").push(exit);
    }

    fn put_back(&self, name: &str, state: ProcessState) {
        self.processes
            .lock()
            .expect("never poisoned")
            .insert(name.to_string(), state);
    }

    /// Nodes whose process is not running (killed, or exited by themselves), except those
    /// retired: they left the cluster and stay down.
    pub fn stopped_nodes(&self) -> Vec<NodeName> {
        let retired = self.retired.lock().expect("never poisoned").clone();
        let mut processes = self.processes.lock().expect("never poisoned");
        let mut stopped = Vec::new();
        for spec in self
            .specs
            .iter()
            .filter(|spec| !retired.contains(&spec.name))
        {
            let state = processes
                .entry(spec.name.clone())
                .or_insert(ProcessState::Stopped);
            self.notice_exit(&spec.name, state);
            if matches!(state, ProcessState::Stopped) {
                stopped.push(spec.name.clone());
            }
        }
        stopped
    }

    /// Nodes whose process exited although nobody stopped it (a panic, a fatal error, a
    /// refusal to start on what it finds on disk), each with how it exited and the last
    /// error of its log, since the last call. A node the nemesis kills never shows here: it
    /// is taken out before the signal.
    pub fn exited_by_themselves(&self) -> Vec<NodeExit> {
        {
            let mut processes = self.processes.lock().expect("never poisoned");
            for (name, state) in processes.iter_mut() {
                self.notice_exit(name, state);
            }
        }
        {
            let mut sidecars = self.sidecars.lock().expect("never poisoned");
            for (name, slots) in sidecars.iter_mut() {
                for slot in slots {
                    self.notice_sidecar_exit(name, slot);
                }
            }
        }
        std::mem::take(&mut *self.exits.lock().expect("never poisoned"))
    }

    /// How one node is, as the system tells; `None` if it does not answer in time.
    pub async fn status(&self, name: &str) -> Option<NodeStatus> {
        self.system.status(self.spec(name).ok()?).await
    }

    /// The node's own copy of the list `key`, served from what it has applied, whatever it
    /// knows of the leader: `Some(elements)`, empty if it has none; `None` if it cannot be
    /// read.
    pub async fn local_list(&self, name: &str, key: &str) -> Option<Vec<serde_json::Value>> {
        self.system.local_list(self.spec(name).ok()?, key).await
    }

    /// Whether the nodes' status gives Raft's log and commit indexes ([`System::reports_raft_log`]).
    pub fn reports_raft_log(&self) -> bool {
        self.system.reports_raft_log()
    }

    /// The clients of the run, bound to the nodes as the system binds them.
    pub fn clients(&self, timeout: Duration) -> Result<Arc<dyn ClientFactory>> {
        self.system.clients(&self.specs, timeout)
    }

    /// Every node's status, asked concurrently.
    pub async fn statuses(&self) -> Vec<(NodeName, Option<NodeStatus>)> {
        let asks = self
            .specs
            .iter()
            .map(|s| async move { (s.name.clone(), self.status(&s.name).await) });
        join_all(asks).await
    }

    /// The status of every member (as last seen: see [`ProcessCluster::members_now`]),
    /// asked concurrently. Spares that never joined and retired nodes follow no leader and
    /// apply nothing: what the cluster agrees on is the members' business.
    pub async fn member_statuses(&self) -> Vec<(NodeName, Option<NodeStatus>)> {
        let members = self.members_now();
        let asks = members
            .into_iter()
            .map(|name| async move { (name.clone(), self.status(&name).await) });
        join_all(asks).await
    }

    /// The members (voters and learners) as last seen, in name order: the first members
    /// until a change of membership was seen.
    pub fn members_now(&self) -> BTreeSet<NodeName> {
        self.members.lock().expect("never poisoned").clone()
    }

    fn is_retired(&self, node: &str) -> bool {
        self.retired.lock().expect("never poisoned").contains(node)
    }

    /// Remembers the members `members` names.
    fn note_members(&self, members: &Members) {
        let all = members
            .voters
            .iter()
            .chain(&members.outgoing)
            .chain(&members.learners);
        *self.members.lock().expect("never poisoned") = all.cloned().collect();
    }

    /// The spec of the leader of the moment, if one is known.
    async fn leader_spec(&self) -> Option<&NodeRecord> {
        let leader = Cluster::leader(self).await?;
        self.spec(&leader).ok()
    }

    /// The leader claims the nemesis saw since the last call, with when.
    pub fn take_leader_claims(&self) -> Vec<(Instant, NodeStatus)> {
        std::mem::take(&mut *self.leader_claims.lock().expect("never poisoned"))
    }

    fn note_leader_claims<'a>(&self, statuses: impl IntoIterator<Item = &'a NodeStatus>) {
        let now = Instant::now();
        let claims = statuses.into_iter().filter(|s| s.role == "leader");
        let mut noted = self.leader_claims.lock().expect("never poisoned");
        noted.extend(claims.map(|status| (now, status.clone())));
    }

    /// Waits until some member is leader and every member that answers agrees on it: `Some`
    /// of that node. For a system that does not tell who leads, until every member answers:
    /// `None`.
    pub async fn wait_for_leader(&self, limit: Duration) -> Result<Option<NodeName>> {
        let deadline = Instant::now() + limit;
        loop {
            // A change whose answer was not known (or that the nemesis did not see commit)
            // leaves the members last seen behind: the leader tells who they are now, so that
            // a node removed meanwhile, which follows no one, is not waited for.
            let all = self.statuses().await;
            if let Some(leader) = leading(all.iter().filter_map(|(_, s)| s.as_ref()))
                && let Ok(spec) = self.spec(&leader.id)
                && let Some(members) = self.system.members(spec).await
            {
                self.note_members(&members);
            }
            let members = self.members_now();
            let statuses: Vec<_> = all
                .iter()
                .filter(|(name, _)| members.contains(name))
                .collect();
            let answering: Vec<&NodeStatus> =
                statuses.iter().filter_map(|(_, s)| s.as_ref()).collect();
            if !self.system.reports_leader() && answering.len() == statuses.len() {
                return Ok(None);
            }
            let leader = leading(answering.iter().copied());
            if let Some(leader) = leader
                && answering
                    .iter()
                    .all(|s| s.leader.as_deref() == Some(leader.id.as_str()))
            {
                return Ok(Some(leader.id.clone()));
            }
            let exited: Vec<NodeName> = (self.stopped_nodes().into_iter())
                .filter(|node| members.contains(node))
                .collect();
            if exited.len() * 2 > members.len() {
                bail!(
                    "no leader: {} of {} members exited ({}); last lines of the node logs:\n{}",
                    exited.len(),
                    members.len(),
                    exited.join(", "),
                    self.log_tails(15)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "no leader elected within {limit:?}; last lines of the node logs:\n{}",
                    self.log_tails(15)
                );
            }
            sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the cluster is ready for the test: a leader agreed on (see
    /// [`ProcessCluster::wait_for_leader`]), then the sidecars started, then whatever else the
    /// system waits for ([`System::ready`]), all within `limit`.
    pub async fn wait_until_ready(&self, limit: Duration) -> Result<Option<NodeName>> {
        let deadline = Instant::now() + limit;
        let leader = self.wait_for_leader(limit).await?;
        for spec in &self.specs {
            self.spawn_sidecars(&spec.name)?;
        }
        while !self.system.ready(&self.specs).await {
            if Instant::now() >= deadline {
                bail!(
                    "the cluster was not ready within {limit:?}; last lines of the logs:\n{}",
                    self.log_tails(15)
                );
            }
            sleep(Duration::from_millis(100)).await;
        }
        Ok(leader)
    }

    /// The last `lines` lines of every node's log (and of its sidecars' logs), for error
    /// messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut text = String::new();
        for spec in &self.specs {
            let sidecar_logs = self.system.sidecars(spec, &self.specs).unwrap_or_default();
            let logs = std::iter::once(spec.log_path())
                .chain(sidecar_logs.into_iter().map(|sidecar| sidecar.log))
                .filter(|log| log.exists());
            for log_path in logs {
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                let all: Vec<&str> = log.lines().collect();
                text.push_str(&format!("--- {} ({})\n", spec.name, log_path.display()));
                for line in &all[all.len().saturating_sub(lines)..] {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
        text
    }

    /// Stops every node and what runs beside it, all at once (a sidecar such as a sentinel
    /// must not act on its node's shutdown): SIGCONT if paused, SIGTERM, and SIGKILL after a
    /// grace period. Safe to call more than once and on any path.
    pub async fn stop_all(&self) {
        let sidecars = std::mem::take(&mut *self.sidecars.lock().expect("never poisoned"));
        let sidecar_stops = sidecars.into_iter().flat_map(|(name, slots)| {
            slots.into_iter().flatten().map(move |(child, _)| {
                let name = name.clone();
                async move { stop_child(&name, child).await }
            })
        });
        let names: Vec<NodeName> = self.specs.iter().map(|s| s.name.clone()).collect();
        let node_stops = names.iter().map(|name| async move {
            match self.take(name) {
                ProcessState::Running(process) | ProcessState::Paused(process) => {
                    process.stop(name).await;
                }
                ProcessState::Stopped => {}
            }
        });
        futures::join!(join_all(node_stops), join_all(sidecar_stops));
    }

    /// Removes what running nodes under libfaketime left: each node's control file, and
    /// what libfaketime left in /dev/shm for processes that did not exit by themselves. Call
    /// it after [`ProcessCluster::stop_all`]; safe on any path and more than once.
    pub fn remove_clock_files(&self) -> Result<()> {
        let Some(clocks) = &self.clocks else {
            return Ok(());
        };
        if self.hosts.is_some() {
            // The control files are in the nodes' directories on the hosts, which the end
            // of the run copies back and removes, with what libfaketime left there.
            return Ok(());
        }
        for pid in std::mem::take(&mut *self.faked_pids.lock().expect("never poisoned")) {
            remove_process_leftovers(pid);
        }
        let mut first_error = Ok(());
        for (name, clock) in clocks.lock().expect("never poisoned").iter_mut() {
            clock.process_start = None;
            let removed = clock
                .control
                .remove()
                .with_context(|| format!("removing the clock control file of {name}"));
            if first_error.is_ok() {
                first_error = removed;
            }
        }
        first_error
    }
}

/// The last error a node's log holds, or its last line: why it exited, as far as it said.
fn last_error(log_path: &std::path::Path) -> String {
    let log = fs::read_to_string(log_path).unwrap_or_default();
    log.lines()
        .rev()
        .find(|line| line.starts_with("Error") || line.contains("panicked"))
        .or_else(|| log.lines().rev().find(|line| !line.trim().is_empty()))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// The file name of `program`, to name it in messages.
fn program_name(program: &std::path::Path) -> String {
    program
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy()
        .into_owned()
}

impl Cluster for ProcessCluster {
    fn nodes(&self) -> Vec<NodeName> {
        self.specs.iter().map(|s| s.name.clone()).collect()
    }

    async fn kill(&self, node: &str) -> Result<()> {
        if self.is_retired(node) {
            return Ok(());
        }
        match self.take(node) {
            ProcessState::Running(mut process) | ProcessState::Paused(mut process) => {
                let pid = process.pid();
                match process.kill().await {
                    Ok(None) => {}
                    // It crashed just before: that is its exit, not the kill's doing.
                    Ok(Some(status)) => self.record_exit(node, status),
                    // Unknown whether it still runs (its host did not answer): it stays
                    // the cluster's, for the end of the run to stop.
                    Err(error) => {
                        self.put_back(node, ProcessState::Running(process));
                        return Err(error.context(format!("SIGKILL of {node}")));
                    }
                }
                if let Some(clocks) = &self.clocks {
                    if let Some(clock) = clocks.lock().expect("never poisoned").get_mut(node) {
                        clock.process_start = None;
                    }
                    if let Some(pid) = pid {
                        remove_process_leftovers(pid);
                    }
                }
                Ok(())
            }
            ProcessState::Stopped => Ok(()),
        }
    }

    async fn restart(&self, node: &str) -> Result<()> {
        if self.is_retired(node) {
            return Ok(());
        }
        match self.take(node) {
            ProcessState::Stopped => self.spawn(node).await?,
            running => self.put_back(node, running),
        }
        // A sidecar that died by itself comes back with its node (once it has had them).
        let started = self
            .sidecars
            .lock()
            .expect("never poisoned")
            .contains_key(node);
        if started {
            self.spawn_sidecars(node)?;
        }
        Ok(())
    }

    async fn power_off(&self, node: &str, torn: Option<u64>) -> Result<serde_json::Value> {
        if !self
            .disks
            .lock()
            .expect("never poisoned")
            .contains_key(node)
        {
            bail!("cannot cut the power of {node}: its data dir is not on a power-loss disk");
        }
        // Dead and reaped first: nothing of the node may write after the cut. The machine
        // goes dark as a whole: what ran beside the node dies with it, and comes back with
        // its restart.
        self.kill(node).await?;
        self.kill_sidecars(node).await;
        let disk = (self.disks.lock().expect("never poisoned"))
            .get(node)
            .cloned()
            .ok_or_else(|| anyhow!("the disk of {node} was unmounted"))?;
        disk.lose_unsynced(torn).await
    }

    async fn pause(&self, node: &str) -> Result<()> {
        if self.is_retired(node) {
            return Ok(());
        }
        match self.take(node) {
            ProcessState::Running(process) => {
                let sent = process.pause(true).await;
                self.put_back(node, ProcessState::Paused(process));
                sent.with_context(|| format!("SIGSTOP of {node}"))
            }
            other => {
                self.put_back(node, other);
                Ok(())
            }
        }
    }

    async fn resume(&self, node: &str) -> Result<()> {
        match self.take(node) {
            ProcessState::Paused(process) => {
                let sent = process.pause(false).await;
                self.put_back(node, ProcessState::Running(process));
                sent.with_context(|| format!("SIGCONT of {node}"))
            }
            other => {
                self.put_back(node, other);
                Ok(())
            }
        }
    }

    async fn set_clock(&self, node: &str, setting: ClockSetting) -> Result<Option<f64>> {
        let Some(clocks) = &self.clocks else {
            bail!("cannot move the clock of {node}: the nodes do not run under libfaketime");
        };
        let _writing = match &self.hosts {
            Some(_) => Some(self.lock_clock_writes(node).await?),
            None => None,
        };
        let running = {
            let mut clocks = clocks.lock().expect("never poisoned");
            let clock = clocks
                .get_mut(node)
                .ok_or_else(|| anyhow!("no node named {node}"))?;
            clock.setting = setting;
            // A node that is down starts with the setting: its line is written then.
            match clock.process_start {
                Some(start) if self.hosts.is_some() => Some((clock.control.clone(), start)),
                Some(start) => {
                    clock
                        .control
                        .write(&setting, start)
                        .with_context(|| format!("writing {}", clock.control.path().display()))?;
                    None
                }
                None => return Ok(None),
            }
        };
        if let (Some(hosts), Some((control, start))) = (&self.hosts, running) {
            self.write_clock_on_host(hosts, node, &control, &setting, start)
                .await?;
        }
        // What the node's own clock reads now, against the harness's, to the middle of the
        // round trip (well under a millisecond on loopback).
        let spec = self.spec(node)?;
        let before = std::time::SystemTime::now();
        let Some(read) = self.system.realtime_us(spec).await else {
            return Ok(None);
        };
        let after = std::time::SystemTime::now();
        let micros = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_micros() as i64)
        };
        let true_time = (micros(before) + micros(after)) / 2;
        // On a host, against the host's own clock: its offset from this machine's, measured
        // at the start, is not the fault's.
        let host_offset_ms = match &self.hosts {
            Some(hosts) => hosts.clock_offset_ms(node)?,
            None => 0.0,
        };
        Ok(Some((read - true_time) as f64 / 1000.0 - host_offset_ms))
    }

    async fn leader(&self) -> Option<NodeName> {
        let statuses = self.statuses().await;
        let answered: Vec<&NodeStatus> = statuses.iter().filter_map(|(_, s)| s.as_ref()).collect();
        self.note_leader_claims(answered.iter().copied());
        leading(answered).map(|s| s.id.clone())
    }

    async fn members(&self) -> Option<Members> {
        let leader = self.leader_spec().await?;
        let members = self.system.members(leader).await?;
        self.note_members(&members);
        Some(members)
    }

    async fn change_members(&self, change: &MemberChange) -> ChangeAnswer {
        let Some(leader) = self.leader_spec().await else {
            return ChangeAnswer::Refused("no leader is known".into());
        };
        let answer = self.system.change_members(leader, change).await;
        if let ChangeAnswer::Done(members) = &answer {
            self.note_members(members);
        }
        answer
    }

    /// Kills the node (and what runs beside it) and marks it retired.
    async fn retire(&self, node: &str) -> Result<()> {
        self.kill(node).await?;
        self.kill_sidecars(node).await;
        self.retired
            .lock()
            .expect("never poisoned")
            .insert(node.to_owned());
        Ok(())
    }

    async fn enlist(&self, node: &str) -> Result<bool> {
        let retired = self.retired.lock().expect("never poisoned").remove(node);
        if retired {
            self.restart(node).await?;
        }
        Ok(retired)
    }

    async fn view(&self, node: &str) -> Option<NodeView> {
        let status = self.status(node).await?;
        self.note_leader_claims([&status]);
        Some(NodeView {
            leads: status.role == "leader",
            last_log_index: self
                .system
                .reports_raft_log()
                .then_some(status.last_log_index),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use faultline_workloads::BoxFuture;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;

    use super::*;
    use crate::store::SystemRecord;
    use crate::system::Dials;

    /// Nodes and sidecars that only sleep: what the cluster does with processes, whatever
    /// they run.
    struct Sleepers;

    fn sleeper(log: PathBuf) -> NodeCommand {
        NodeCommand {
            program: PathBuf::from("sleep"),
            args: vec!["600".into()],
            log,
        }
    }

    impl System for Sleepers {
        fn record(&self) -> SystemRecord {
            SystemRecord::default()
        }

        fn reports_leader(&self) -> bool {
            false
        }

        fn launch(&self, node: &NodeRecord, _: &[NodeRecord], _: Dials<'_>) -> Result<NodeCommand> {
            Ok(sleeper(node.log_path()))
        }

        fn sidecars(&self, node: &NodeRecord, _: &[NodeRecord]) -> Result<Vec<NodeCommand>> {
            Ok(vec![sleeper(node.dir.join("sidecar.log"))])
        }

        fn status<'a>(&'a self, node: &'a NodeRecord) -> BoxFuture<'a, Option<NodeStatus>> {
            Box::pin(async move { Some(NodeStatus::of(&node.name, "follower", 0, None, 0, 0)) })
        }

        fn clients(&self, _: &[NodeRecord], _: Duration) -> Result<Arc<dyn ClientFactory>> {
            bail!("sleepers take no operations")
        }
    }

    impl ProcessCluster {
        fn node_pid(&self, name: &str) -> Option<Pid> {
            match self.processes.lock().unwrap().get(name)? {
                ProcessState::Running(process) | ProcessState::Paused(process) => {
                    Some(Pid::from_raw(process.pid()? as i32))
                }
                ProcessState::Stopped => None,
            }
        }

        fn sidecar_pid(&self, name: &str) -> Option<Pid> {
            let sidecars = self.sidecars.lock().unwrap();
            let (child, _) = sidecars.get(name)?.first()?.as_ref()?;
            Some(Pid::from_raw(child.id()? as i32))
        }
    }

    fn alive(pid: Pid) -> bool {
        // A zombie still answers signal 0; its state in /proc says it is dead.
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        !stat.is_empty() && !state.starts_with('Z')
    }

    async fn cluster(dir: &Path, power_loss: bool) -> ProcessCluster {
        let run_dir = RunDir::create(dir, "sleepers", "20261205T120000").unwrap();
        let cluster = ProcessCluster::plan(&ClusterOptions {
            nodes: 2,
            spares: 0,
            system: Arc::new(Sleepers),
            run_dir,
            power_loss,
            network: None,
            faketime: None,
            hosts: None,
        })
        .unwrap();
        cluster.start(|_, _| None).await.unwrap();
        cluster
            .wait_until_ready(Duration::from_secs(10))
            .await
            .unwrap();
        cluster
    }

    #[tokio::test]
    async fn a_sidecar_outlives_its_nodes_kill_comes_back_with_its_restart_and_stops_with_the_cluster()
     {
        let dir = tempfile::tempdir().unwrap();
        let cluster = cluster(dir.path(), false).await;
        let node = cluster.node_pid("n1").unwrap();
        let sidecar = cluster.sidecar_pid("n1").unwrap();
        assert!(alive(node) && alive(sidecar));

        // The nemesis kills and pauses the node, never what runs beside it.
        cluster.kill("n1").await.unwrap();
        assert!(!alive(node));
        assert!(alive(sidecar), "the sidecar died with its node");

        // A sidecar that dies by itself is a crash of its node, and is back after a restart.
        kill(sidecar, Signal::SIGKILL).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let exits = loop {
            let exits = cluster.exited_by_themselves();
            if !exits.is_empty() {
                break exits;
            }
            assert!(
                Instant::now() < deadline,
                "the sidecar's exit went unnoticed"
            );
            sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(exits.len(), 1, "{exits:?}");
        assert_eq!(exits[0].node, "n1");
        assert!(
            exits[0].status.starts_with("sleep beside it: signal: 9"),
            "{exits:?}"
        );
        cluster.restart("n1").await.unwrap();
        let node = cluster.node_pid("n1").unwrap();
        let restarted = cluster.sidecar_pid("n1").unwrap();
        assert_ne!(restarted, sidecar);
        assert!(alive(node) && alive(restarted));

        let others = [
            cluster.node_pid("n2").unwrap(),
            cluster.sidecar_pid("n2").unwrap(),
        ];
        cluster.stop_all().await;
        for pid in [node, restarted].into_iter().chain(others) {
            assert!(!alive(pid), "{pid} outlived stop_all");
        }
        assert!(cluster.exited_by_themselves().is_empty());
    }

    #[tokio::test]
    async fn a_power_cut_takes_the_sidecars_down_with_their_node_and_its_restart_brings_them_back()
    {
        if let Err(reason) = faultline_nemesis::fuse_available() {
            eprintln!("skipped: {reason}");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let cluster = cluster(dir.path(), true).await;
        let node = cluster.node_pid("n1").unwrap();
        let sidecar = cluster.sidecar_pid("n1").unwrap();
        cluster.power_off("n1", None).await.unwrap();
        assert!(!alive(node) && !alive(sidecar), "the machine went dark");
        assert!(
            cluster.exited_by_themselves().is_empty(),
            "a power cut is no crash"
        );
        cluster.restart("n1").await.unwrap();
        let (node, sidecar) = (
            cluster.node_pid("n1").unwrap(),
            cluster.sidecar_pid("n1").unwrap(),
        );
        assert!(alive(node) && alive(sidecar));
        cluster.stop_all().await;
        cluster.unmount_disks().await.unwrap();
        assert!(!alive(node) && !alive(sidecar));
    }
}
