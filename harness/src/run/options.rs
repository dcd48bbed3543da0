//! The flags of `faultline test`, and the resolved options a run records in `test.json`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use faultline_nemesis::{FaultKind, FaultKinds, PartitionBackendKind};
use faultline_workloads::{WorkloadKind, WorkloadOptions};
use serde::{Deserialize, Serialize};

/// The faults of a run without `--nemesis`: the process faults and the network faults that
/// expose the bugs of the zoo, with the three aimed at the bugs random faults rarely expose
/// (lagging-failover, flap-leader, restart-bridge). The schedule deals them from a shuffled
/// deck, so at the default interval each is tried within the first fifteen seconds (the
/// network lane's seven kinds take the longest); the two lanes overlap, so crashes meet
/// partitions and slow links.
pub const DEFAULT_NEMESIS: &str = "kill,crash-restart,pause,power-loss,lagging-failover,partition,\
     partition-leader,flap-leader,partition-one-way,restart-bridge,slow,lossy";

/// Start a cluster, attack it, and check that it kept its promises.
#[derive(Args, Clone, Debug)]
pub struct TestArgs {
    /// Number of nodes (3 or 5 make sense for Raft).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// How long clients and the nemesis run, like 60s or 2m.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub time_limit: Duration,
    /// Concurrent clients.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// register (reads, writes, CAS on independent keys), append (unique appends to lists,
    /// then final reads for lost writes), or mixed (both, on different keys).
    #[arg(long, default_value = "mixed")]
    pub workload: WorkloadKind,
    /// Keys in use at a time per workload (each is retired after a bounded number of operations).
    #[arg(long, default_value_t = 5)]
    pub keys: usize,
    /// Operations per key before it is retired (keeps each key's history quick to check).
    #[arg(long, default_value_t = 100)]
    pub ops_per_key: u64,
    /// Limit on operations per second over all clients [default: as fast as they go].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Faults, comma-separated: none; process faults kill, kill-majority, kill-all,
    /// crash-restart, pause, power-loss, lagging-failover (pause a follower, then kill the
    /// leader as it resumes); network faults partition, partition-leader, flap-leader (cut
    /// the leader off, heal once another leads, again), partition-one-way, majorities-ring,
    /// bridge, restart-bridge (two sides joined by the leader, which is crash-restarted again
    /// and again), slow, lossy; or all. Process and network faults run in two lanes side by
    /// side, so they overlap. [default: the default mix,
    /// less what cannot run here (power-loss without FUSE), which the summary names; a list
    /// given here runs as given or not at all]
    #[arg(long)]
    pub nemesis: Option<FaultKinds>,
    /// How long each fault lasts, and the pause between faults.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub nemesis_interval: Duration,
    /// How to cut links: iptables (needs root), proxy (a TCP proxy per link), or auto.
    #[arg(long, default_value = "auto")]
    pub partition_backend: PartitionBackendKind,
    /// How long a client waits for an answer before it records the operation as unknown.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub client_timeout: Duration,
    /// Seed of every random choice (faults and operations) [default: random; printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// The node binary [default: faultline-node next to this executable].
    #[arg(long)]
    pub node_binary: Option<PathBuf>,
    /// A deliberate bug to switch on in every node (repeatable): stale-read, early-ack,
    /// forget-vote, no-fsync, commit-old-term, vote-any-log, no-truncate.
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    /// Name of the test (the store directory) [default: <workload>-<nemesis>].
    #[arg(long)]
    pub name: Option<String>,
    /// Time budget of the linearizability check; keys undecided by then are unknown.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub check_timeout: Duration,
}

/// Everything that defines a run, with defaults resolved: written to `test.json`
/// (durations as text like "1m 30s", so it reads like the flags).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TestOptions {
    pub name: String,
    pub nodes: usize,
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
    #[serde(with = "humantime_serde")]
    pub client_timeout: Duration,
    pub seed: u64,
    pub store: PathBuf,
    pub node_binary: PathBuf,
    pub bugs: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub check_timeout: Duration,
}

impl TestArgs {
    /// The faults asked for: `--nemesis`, or the default mix.
    pub fn nemesis_kinds(&self) -> FaultKinds {
        self.nemesis.clone().unwrap_or_else(|| {
            DEFAULT_NEMESIS
                .parse()
                .expect("the default mix names only known faults")
        })
    }

    /// The faults as a test's name shows them: `default` for the default mix, which is long
    /// to spell out, else the list.
    pub fn nemesis_label(&self) -> String {
        match &self.nemesis {
            None => "default".to_string(),
            Some(kinds) => kinds.to_string(),
        }
    }

    /// Checks the flags and fills in the defaults that depend on the environment.
    pub fn resolve(&self) -> Result<TestOptions> {
        if !(1..=100).contains(&self.nodes) {
            bail!("--nodes must be between 1 and 100, not {}", self.nodes);
        }
        if self.time_limit.is_zero() {
            bail!("--time-limit must be positive");
        }
        let nemesis = self.nemesis_kinds();
        if !nemesis.is_empty() && self.nemesis_interval.is_zero() {
            bail!("--nemesis-interval must be positive");
        }
        let node_binary = match &self.node_binary {
            Some(path) => path.clone(),
            None => std::env::current_exe()
                .context("finding this executable, to find faultline-node next to it")?
                .with_file_name("faultline-node"),
        };
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| derived_name(&self.workload.to_string(), &self.nemesis_label()));
        crate::store::validate_name(&name)?;
        let options = TestOptions {
            name,
            nodes: self.nodes,
            time_limit: self.time_limit,
            concurrency: self.concurrency,
            workload: self.workload.to_string(),
            keys: self.keys,
            ops_per_key: self.ops_per_key,
            rate: self.rate,
            nemesis: nemesis.to_string(),
            left_out: Vec::new(),
            nemesis_interval: self.nemesis_interval,
            partition_backend: self.partition_backend.to_string(),
            client_timeout: self.client_timeout,
            seed: self.seed.unwrap_or_else(rand::random),
            store: self.store.clone(),
            node_binary,
            bugs: self.bugs.clone(),
            check_timeout: self.check_timeout,
        };
        options.workload_options()?.validate()?;
        Ok(options)
    }
}

/// The name of a test the user did not name: its workload and faults, like
/// `register-kill+pause`.
pub fn derived_name(workload: &str, nemesis: &str) -> String {
    format!("{workload}-{nemesis}").replace(',', "+")
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
        command.extend(self.bugs.iter().map(|bug| format!("--bug {bug}")));
        command.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: TestArgs,
    }

    fn options(flags: &[&str]) -> (TestArgs, TestOptions) {
        let args = Command::parse_from(std::iter::once("test").chain(flags.iter().copied())).args;
        let options = args.resolve().unwrap();
        (args, options)
    }

    #[test]
    fn a_fault_of_the_default_mix_that_cannot_run_is_left_out_and_named() {
        let (args, mut options) = options(&["--node-binary", "/bin/true"]);
        assert!(args.nemesis.is_none());
        let with = options.fault_kinds().unwrap();
        options
            .leave_out(FaultKind::Pause, "no signals here", args.nemesis.is_some())
            .unwrap();
        assert_eq!(
            options.fault_kinds().unwrap(),
            with.without(FaultKind::Pause)
        );
        assert_eq!(options.left_out, ["pause, because no signals here"]);
        let replay = options.replay_command();
        let nemesis = format!("--nemesis {} ", with.without(FaultKind::Pause));
        assert!(replay.contains(&nemesis), "{replay}");
    }

    #[test]
    fn a_fault_asked_for_by_name_that_cannot_run_refuses_the_run() {
        let (args, mut options) =
            options(&["--node-binary", "/bin/true", "--nemesis", "power-loss,kill"]);
        let error = options
            .leave_out(
                FaultKind::PowerLoss,
                "/dev/fuse does not exist",
                args.nemesis.is_some(),
            )
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "power-loss cannot run here: /dev/fuse does not exist"
        );
    }
}
