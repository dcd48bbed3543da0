//! The options of a run, resolved from its flags (see `run::TestArgs`): what `test.json`
//! records under `options`, and what the run derives from them (the clients' options, the
//! faults, the replay command).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use faultline_nemesis::{FaultKind, FaultKinds, PartitionBackendKind};
use faultline_workloads::WorkloadOptions;
use serde::{Deserialize, Serialize};

use super::derived_name;

/// Everything that defines a run, with defaults resolved: written to `test.json`
/// (durations as text like "1m 30s", so it reads like the flags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestOptions {
    pub name: String,
    /// The members at the start.
    pub nodes: usize,
    /// Nodes started beside them as spares, not members, for the membership fault to add:
    /// [`SPARES`] with that fault, none without (absent in runs from before there were).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub spares: usize,
    #[serde(with = "humantime_serde")]
    pub time_limit: Duration,
    pub concurrency: usize,
    pub workload: String,
    pub keys: usize,
    pub ops_per_key: u64,
    pub rate: Option<f64>,
    pub nemesis: String,
    /// Faults of the default mix that could not run here, each with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub nemesis_interval: Duration,
    pub partition_backend: String,
    /// Whether each node ran in a network namespace of its own (`--netns`, or by default as
    /// root for a system that needs them; absent in runs from before there was a choice).
    #[serde(default)]
    pub netns: bool,
    #[serde(with = "humantime_serde")]
    pub client_timeout: Duration,
    pub seed: u64,
    pub store: PathBuf,
    /// The system under test (`--system`; absent in runs from before there was a choice).
    #[serde(default = "bundled_system")]
    pub system: String,
    /// etcd's workload reads are serializable (`--etcd-serializable-reads`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub etcd_serializable_reads: bool,
    /// The file that describes the system (`--system-file`), which then replaces `system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_file: Option<PathBuf>,
    pub node_binary: PathBuf,
    #[serde(default)]
    pub bugs: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub check_timeout: Duration,
    /// The hosts the nodes ran on over SSH (`--hosts`), one each in node order; empty when
    /// they ran on this machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// The hosts of the spare nodes (`--spare-hosts`), in node order after the members'.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spare_hosts: Vec<String>,
    /// The ssh configuration used to reach them (`--ssh-config`), if not the user's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_config: Option<PathBuf>,
    /// The bundled node's binary as installed on the hosts (`--node-binary-on-hosts`), used
    /// instead of a copy of `node_binary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_binary_on_hosts: Option<String>,
}

/// How many spare nodes a run with the membership fault starts: two, so that a cluster of
/// three can grow to five, and a voter can be replaced while another spare waits.
pub const SPARES: usize = 2;

fn is_zero(count: &usize) -> bool {
    *count == 0
}

/// The system a run tests unless told otherwise: the bundled node.
pub const BUNDLED_SYSTEM: &str = "faultline";

fn bundled_system() -> String {
    BUNDLED_SYSTEM.to_string()
}

impl TestOptions {
    /// What the clients are told.
    pub fn workload_options(&self) -> Result<WorkloadOptions> {
        Ok(WorkloadOptions {
            kind: self.workload.parse()?,
            concurrency: self.concurrency,
            keys: self.keys,
            ops_per_key: self.ops_per_key,
            rate: self.rate,
            client_timeout: self.client_timeout,
            seed: self.seed,
            ..WorkloadOptions::default()
        })
    }

    /// The faults, parsed.
    pub fn fault_kinds(&self) -> Result<FaultKinds> {
        Ok(self.nemesis.parse()?)
    }

    /// Leaves out a fault that cannot run here, for `reason`: a list the user gave
    /// (`explicit`) is refused instead, so that a run never passes without a fault it was
    /// asked for.
    pub fn leave_out(&mut self, kind: FaultKind, reason: &str, explicit: bool) -> Result<()> {
        if explicit {
            bail!("{kind} cannot run here: {reason}");
        }
        let kinds = self.fault_kinds()?.without(kind);
        // A name made from the list follows it.
        if self.name == derived_name(&self.workload, &self.nemesis) {
            self.name = derived_name(&self.workload, &kinds.to_string());
        }
        self.nemesis = kinds.to_string();
        self.left_out.push(format!("{kind}, because {reason}"));
        Ok(())
    }

    /// Every node process the run starts: the members and the spares.
    pub fn processes(&self) -> usize {
        self.nodes + self.spares
    }

    /// The hosts the run's nodes run on, one each in node order (the spare nodes' after the
    /// members'); empty when they run on this machine.
    pub fn node_hosts(&self) -> Vec<String> {
        let spares = self.spare_hosts.iter().take(self.spares);
        self.hosts.iter().chain(spares).cloned().collect()
    }

    /// The partition backend asked for.
    pub fn backend_kind(&self) -> Result<PartitionBackendKind> {
        Ok(self.partition_backend.parse()?)
    }

    /// The command line that runs this test again with the same schedule of faults and
    /// operations.
    pub fn replay_command(&self) -> String {
        let duration = |d: Duration| humantime::format_duration(d).to_string().replace(' ', "");
        let mut command = vec![
            "faultline test".to_string(),
            format!("--nodes {}", self.nodes),
            format!("--time-limit {}", duration(self.time_limit)),
            format!("--concurrency {}", self.concurrency),
            format!("--workload {}", self.workload),
            format!("--keys {}", self.keys),
            format!("--ops-per-key {}", self.ops_per_key),
            format!("--nemesis {}", self.nemesis),
            format!("--nemesis-interval {}", duration(self.nemesis_interval)),
            format!("--partition-backend {}", self.partition_backend),
            format!("--client-timeout {}", duration(self.client_timeout)),
            format!("--seed {}", self.seed),
            format!("--name {}", self.name),
        ];
        if let Some(rate) = self.rate {
            command.push(format!("--rate {rate}"));
        }
        if let Some(path) = &self.system_file {
            command.push(format!("--system-file {}", path.display()));
        } else if self.system != BUNDLED_SYSTEM {
            command.push(format!("--system {}", self.system));
        }
        if self.etcd_serializable_reads {
            command.push("--etcd-serializable-reads".to_string());
        }
        if self.netns {
            command.push("--netns".to_string());
        }
        if !self.hosts.is_empty() {
            command.push(format!("--hosts {}", self.hosts.join(",")));
        }
        if !self.spare_hosts.is_empty() {
            command.push(format!("--spare-hosts {}", self.spare_hosts.join(",")));
        }
        if let Some(config) = &self.ssh_config {
            command.push(format!("--ssh-config {}", config.display()));
        }
        if let Some(installed) = &self.node_binary_on_hosts {
            command.push(format!("--node-binary-on-hosts {installed}"));
        }
        command.extend(self.bugs.iter().map(|bug| format!("--bug {bug}")));
        command.join(" ")
    }
}
