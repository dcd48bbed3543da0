//! The flags of `faultline test`, resolved into the options a run records in `test.json`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use faultline_nemesis::{FaultKinds, PartitionBackendKind};
use faultline_workloads::WorkloadKind;

use crate::host_addr::{HostAddr, parse_hosts};
use crate::store::{self, SPARES, TestOptions, derived_name};

/// The faults of a run without `--nemesis`: the process faults and the network faults that
/// expose the bugs of the zoo, with the four aimed at the bugs random faults rarely expose
/// (lagging-failover, flap-leader, restart-bridge, drifting-leader), the clock fault and
/// membership changes.
/// The schedule deals them from a shuffled deck, so at the default interval each is tried
/// within the first twenty seconds (the network lane's seven kinds take the longest); the
/// first deck leads with a power loss of every node and with restart-bridge. The lanes
/// overlap, so crashes meet partitions, slow links, skewed clocks and membership changes,
/// except for the faults that run alone (restart-bridge, flap-leader, drifting-leader, a
/// replacement of a voter). What cannot run here (power loss without FUSE, the clock faults
/// without libfaketime,
/// membership changes of a system that has none) is left out, and the run says so.
pub const DEFAULT_NEMESIS: &str = "kill,crash-restart,pause,power-loss,lagging-failover,partition,\
     partition-leader,flap-leader,partition-one-way,restart-bridge,slow,lossy,clock,drifting-leader,\
     membership";

/// Start a cluster, attack it, and check that it kept its promises.
#[derive(Args, Clone, Debug)]
pub struct TestArgs {
    /// Number of nodes (3 or 5 make sense for Raft).
    #[arg(long, default_value_t = DEFAULT_NODES)]
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
    /// crash-restart, pause, power-loss, lagging-failover (pause a follower, kill the leader,
    /// resume the follower an election timeout later); network faults partition, partition-leader, flap-leader (cut
    /// the leader off, pause the next one and heal, resume it, restart the first, again), partition-one-way, majorities-ring,
    /// bridge, restart-bridge (the leader cut off while the others elect, the voters restarted
    /// on its side to be asked again in that term, round after round, for three intervals),
    /// slow, lossy; clock (one node's clock bumped, skewed or strobed, under libfaketime),
    /// drifting-leader (the leader's clock 25 % slow and the leader cut off until another
    /// leads, round after round, for three intervals); membership (members added, promoted,
    /// removed and replaced, with two spare nodes); or all. Process, network, clock and
    /// membership faults run in lanes side by side, so they overlap, except restart-bridge,
    /// flap-leader, drifting-leader and the membership rounds that may replace a voter, which
    /// run alone. [default: the default mix (every fault but kill-majority, kill-all,
    /// majorities-ring and bridge), less what cannot run here (power-loss without FUSE, clock
    /// and drifting-leader without libfaketime, membership for a system without it), which the summary
    /// names; a list given here runs as given or not at all]
    #[arg(long)]
    pub nemesis: Option<FaultKinds>,
    /// How long each fault lasts, and the pause between faults.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub nemesis_interval: Duration,
    /// How to cut links: iptables (needs root), proxy (a TCP proxy per link), or auto.
    #[arg(long, default_value = "auto")]
    pub partition_backend: PartitionBackendKind,
    /// Run each node in a network namespace of its own, with its own IP on a bridge (needs
    /// root); partitions are then iptables rules inside the namespaces. [default: on as root
    /// for a system whose peers cannot be cut apart on loopback, such as etcd]
    #[arg(long)]
    pub netns: bool,
    /// How long a client waits for an answer before it records the operation as unknown.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub client_timeout: Duration,
    /// Seed of every random choice (faults and operations) [default: random; printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// The system under test: faultline, the bundled node (or the one --node-binary names).
    #[arg(long, default_value = store::BUNDLED_SYSTEM)]
    pub system: String,
    /// With --system etcd: the workload's reads are serializable (served by any member from
    /// what it applied, as users pick for speed) instead of linearizable. Final reads stay
    /// linearizable.
    #[arg(long)]
    pub etcd_serializable_reads: bool,
    /// A system described by a TOML file (command templates and a client) instead of
    /// --system; see the README, "Any system from a file".
    #[arg(long, value_name = "PATH", conflicts_with = "system")]
    pub system_file: Option<PathBuf>,
    /// The node binary [default: faultline-node next to this executable].
    #[arg(long)]
    pub node_binary: Option<PathBuf>,
    /// A deliberate bug to switch on in every node (repeatable): stale-read, early-ack,
    /// forget-vote, no-fsync, commit-old-term, vote-any-log, no-truncate, membership-one-step,
    /// lease-no-drift.
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    /// Name of the test (the store directory) [default: <workload>-<nemesis>].
    #[arg(long)]
    pub name: Option<String>,
    /// Time budget of the linearizability check; keys undecided by then are unknown.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub check_timeout: Duration,
    /// Run each node on a host of its own over SSH: the hosts, comma-separated, each
    /// `[user@]host[:port]` as ssh takes it (`root@h1,root@h2,root@h3`); as many nodes as
    /// hosts. `faultline hosts` checks them first. See the README, "Running against real
    /// machines".
    #[arg(long, value_parser = parse_hosts)]
    pub hosts: Option<std::vec::Vec<HostAddr>>,
    /// With hosts: two more hosts, for the nodes that the membership fault adds to the
    /// cluster (spares until they join); without them, membership changes are left out.
    #[arg(long, value_parser = parse_hosts)]
    pub spare_hosts: Option<std::vec::Vec<HostAddr>>,
    /// With hosts (--hosts, or [hosts] in the system file): an ssh configuration file to use
    /// instead of `~/.ssh/config` (as `ssh -F`).
    #[arg(long)]
    pub ssh_config: Option<PathBuf>,
    /// With hosts: the bundled node's binary as installed on every host (a path there),
    /// instead of a copy of this machine's; it must say the same `--version` as this
    /// machine's node binary.
    #[arg(long)]
    pub node_binary_on_hosts: Option<String>,
    /// With --hosts: how long connecting to a host may take.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
}

/// How many nodes a run has unless `--nodes` or the hosts say.
const DEFAULT_NODES: usize = 3;

/// The hosts a run puts its nodes on: `--hosts`, else the system file's `[hosts]`.
struct RunHosts {
    hosts: Vec<HostAddr>,
    ssh_config: Option<PathBuf>,
    /// Where they were named, for errors: `--hosts`, or `[hosts] of FILE`.
    source: String,
}

impl TestArgs {
    /// The hosts the nodes run on, if any: `--hosts` (with `--ssh-config`), else the system
    /// file's `[hosts]` (whose `ssh_config` `--ssh-config` overrides).
    fn run_hosts(&self) -> Result<Option<RunHosts>> {
        if let Some(hosts) = &self.hosts {
            return Ok(Some(RunHosts {
                hosts: hosts.clone(),
                ssh_config: self.ssh_config.clone(),
                source: "--hosts".to_string(),
            }));
        }
        let file_hosts = match &self.system_file {
            Some(path) => crate::system::file::hosts_of(path)?,
            None => None,
        };
        let (Some(path), Some(file_hosts)) = (&self.system_file, file_hosts) else {
            if self.ssh_config.is_some() {
                bail!(
                    "--ssh-config is for nodes on hosts: name them with --hosts, or in the \
                     system file's [hosts]"
                );
            }
            return Ok(None);
        };
        Ok(Some(RunHosts {
            hosts: file_hosts.ssh,
            ssh_config: self.ssh_config.clone().or(file_hosts.ssh_config),
            source: format!("[hosts] of {}", path.display()),
        }))
    }

    /// What hosts cannot go with, and an ssh configuration that is not there (the list
    /// itself was checked as it was read: see `parse_hosts`).
    fn check_hosts(&self, hosts: &RunHosts) -> Result<()> {
        let source = &hosts.source;
        if self.nodes != DEFAULT_NODES && self.nodes != hosts.hosts.len() {
            bail!(
                "--nodes {} and {} hosts in {source}: one node runs on each host",
                self.nodes,
                hosts.hosts.len()
            );
        }
        if self.netns {
            bail!("{source} and --netns: nodes on hosts of their own need no namespaces here");
        }
        if self.partition_backend != PartitionBackendKind::Auto {
            bail!(
                "--partition-backend {} does not apply to nodes on hosts ({source}): links \
                 between hosts are cut by iptables rules on each host",
                self.partition_backend
            );
        }
        if let Some(config) = &self.ssh_config
            && !config.is_file()
        {
            bail!(
                "the ssh configuration {} (--ssh-config) does not exist",
                config.display()
            );
        }
        if let Some(spares) = &self.spare_hosts {
            if spares.len() != SPARES {
                bail!(
                    "--spare-hosts names {} hosts: the membership fault adds {SPARES} nodes, \
                     one on each spare host",
                    spares.len()
                );
            }
            if let Some(both) = spares.iter().find(|spare| hosts.hosts.contains(spare)) {
                bail!("{both} is in {source} and in --spare-hosts: a host runs one node");
            }
        }
        Ok(())
    }

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
        if self.etcd_serializable_reads && self.system != "etcd" {
            bail!("--etcd-serializable-reads is for --system etcd");
        }
        let other_system = match &self.system_file {
            Some(path) => Some(format!("--system-file {}", path.display())),
            None => {
                (self.system != store::BUNDLED_SYSTEM).then(|| format!("--system {}", self.system))
            }
        };
        if let Some(other) = other_system {
            if !self.bugs.is_empty() {
                bail!("--bug switches on a bug of the bundled node; {other} has none");
            }
            if self.node_binary_on_hosts.is_some() {
                bail!(
                    "--node-binary-on-hosts names the bundled node's binary on the hosts; {other} \
                     runs its own"
                );
            }
            if self.node_binary.is_some() {
                bail!(
                    "--node-binary names the binary of the bundled node's contract; {other} \
                     starts its own"
                );
            }
        }
        if self.netns && !nix::unistd::Uid::effective().is_root() {
            bail!(
                "--netns needs root: network namespaces, the veths between them and the \
                 iptables rules inside them need CAP_SYS_ADMIN and CAP_NET_ADMIN; run as root, \
                 or without --netns"
            );
        }
        let hosts = self.run_hosts()?;
        let nodes = match &hosts {
            Some(hosts) => {
                self.check_hosts(hosts)?;
                hosts.hosts.len()
            }
            None => self.nodes,
        };
        if hosts.is_none() && self.node_binary_on_hosts.is_some() {
            bail!("--node-binary-on-hosts is for nodes on hosts: name them with --hosts");
        }
        if hosts.is_none() && self.spare_hosts.is_some() {
            bail!("--spare-hosts is for nodes on hosts: name the members' with --hosts");
        }
        if self.netns && self.partition_backend != PartitionBackendKind::Auto {
            bail!(
                "--partition-backend {} does not apply with --netns: links between namespaces \
                 are cut by iptables rules inside them",
                self.partition_backend
            );
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
        store::validate_name(&name)?;
        let options = TestOptions {
            name,
            nodes,
            // Decided once the system is known to change membership (`run::membership_here`).
            spares: 0,
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
            netns: self.netns,
            client_timeout: self.client_timeout,
            seed: self.seed.unwrap_or_else(rand::random),
            store: self.store.clone(),
            system: self.system.clone(),
            etcd_serializable_reads: self.etcd_serializable_reads,
            system_file: self.system_file.clone(),
            node_binary,
            bugs: self.bugs.clone(),
            check_timeout: self.check_timeout,
            ssh_config: hosts.as_ref().and_then(|hosts| hosts.ssh_config.clone()),
            node_binary_on_hosts: self.node_binary_on_hosts.clone(),
            hosts: (hosts.iter().flat_map(|hosts| &hosts.hosts))
                .map(HostAddr::to_string)
                .collect(),
            spare_hosts: (self.spare_hosts.iter().flatten())
                .map(HostAddr::to_string)
                .collect(),
        };
        options.workload_options()?.validate()?;
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use faultline_nemesis::FaultKind;

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

    fn refusal(flags: &[&str]) -> String {
        let args = Command::parse_from(std::iter::once("test").chain(flags.iter().copied())).args;
        format!("{:#}", args.resolve().unwrap_err())
    }

    #[test]
    fn the_bundled_node_is_the_system_unless_another_is_named_and_the_replay_names_it() {
        let (_, bundled) = options(&["--node-binary", "/bin/true"]);
        assert_eq!(bundled.system, "faultline");
        assert!(!bundled.replay_command().contains("--system"));
        let (_, etcd) = options(&["--system", "etcd"]);
        assert_eq!(etcd.system, "etcd");
        assert!(etcd.replay_command().contains("--system etcd"));
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/etcd-python/system.toml"
        );
        let (_, file) = options(&["--system-file", example]);
        assert!(
            file.replay_command()
                .ends_with(&format!("--system-file {example}"))
        );
    }

    #[test]
    fn hosts_come_from_the_flags_or_the_system_file_and_decide_the_number_of_nodes() {
        let (_, on_hosts) = options(&["--hosts", "root@h1,root@h2,root@h3,root@h4"]);
        assert_eq!(on_hosts.nodes, 4);
        let error = refusal(&["--nodes", "5", "--hosts", "root@h1,root@h2,root@h3"]);
        assert_eq!(
            error,
            "--nodes 5 and 3 hosts in --hosts: one node runs on each host"
        );
        let error = refusal(&["--ssh-config", "/etc/ssh/ssh_config"]);
        assert!(
            error.starts_with("--ssh-config is for nodes on hosts"),
            "{error}"
        );
        let error = refusal(&["--hosts", "root@h1", "--netns"]);
        assert!(error.contains("--hosts and --netns"), "{error}");
        let error = refusal(&["--node-binary-on-hosts", "/usr/local/bin/faultline-node"]);
        assert!(
            error.starts_with("--node-binary-on-hosts is for nodes on hosts"),
            "{error}"
        );
        let (_, installed) = options(&[
            "--hosts",
            "root@h1",
            "--node-binary-on-hosts",
            "/usr/local/bin/faultline-node",
        ]);
        assert!(
            installed
                .replay_command()
                .contains("--node-binary-on-hosts /usr/local/bin/faultline-node")
        );

        // Spare hosts: two, none of the members', and only beside members' hosts.
        let (_, spared) = options(&[
            "--hosts",
            "root@h1,root@h2,root@h3",
            "--spare-hosts",
            "root@h4,root@h5",
        ]);
        assert_eq!(spared.nodes, 3);
        assert_eq!(
            spared.node_hosts().len(),
            3,
            "no spares until membership asks"
        );
        assert!(
            spared
                .replay_command()
                .contains("--hosts root@h1,root@h2,root@h3 --spare-hosts root@h4,root@h5")
        );
        let error = refusal(&["--hosts", "root@h1", "--spare-hosts", "root@h4"]);
        assert!(error.starts_with("--spare-hosts names 1 hosts"), "{error}");
        let error = refusal(&["--hosts", "root@h1", "--spare-hosts", "root@h4,root@h1"]);
        assert_eq!(
            error,
            "root@h1 is in --hosts and in --spare-hosts: a host runs one node"
        );
        let error = refusal(&["--spare-hosts", "root@h4,root@h5"]);
        assert!(
            error.starts_with("--spare-hosts is for nodes on hosts"),
            "{error}"
        );

        let dir = tempfile::tempdir().unwrap();
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/etcd-python/system.toml"
        );
        let file = dir.path().join("system.toml");
        let text = std::fs::read_to_string(example).unwrap();
        std::fs::write(
            &file,
            format!("{text}\n[hosts]\nssh = [\"root@h1\", \"root@h2\"]\n"),
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let (_, from_file) = options(&["--system-file", file]);
        assert_eq!(from_file.hosts, ["root@h1", "root@h2"]);
        assert_eq!(from_file.nodes, 2);
        assert!(
            from_file
                .replay_command()
                .contains("--hosts root@h1,root@h2")
        );
        // The command line wins.
        let (_, overridden) = options(&["--system-file", file, "--hosts", "root@h9"]);
        assert_eq!(overridden.hosts, ["root@h9"]);
        let error = refusal(&["--system-file", file, "--nodes", "5"]);
        assert!(
            error.contains(&format!("2 hosts in [hosts] of {file}")),
            "{error}"
        );
    }

    #[test]
    fn bugs_and_node_binaries_belong_to_the_bundled_node_only() {
        let error = refusal(&["--system", "etcd", "--bug", "stale-read"]);
        assert!(error.contains("--bug") && error.contains("etcd"), "{error}");
        let error = refusal(&["--system", "etcd", "--node-binary", "/bin/true"]);
        assert!(error.contains("--node-binary"), "{error}");
        let error = refusal(&["--system-file", "kv.toml", "--bug", "stale-read"]);
        assert!(error.contains("--system-file kv.toml"), "{error}");
        let error = refusal(&["--etcd-serializable-reads"]);
        assert!(error.contains("--system etcd"), "{error}");
    }

    #[test]
    fn nodes_in_namespaces_are_in_the_replay_and_take_no_other_partition_backend() {
        let (_, loopback) = options(&["--node-binary", "/bin/true"]);
        assert!(!loopback.netns);
        assert!(!loopback.replay_command().contains("--netns"));
        if nix::unistd::Uid::effective().is_root() {
            let (_, netns) = options(&["--node-binary", "/bin/true", "--netns"]);
            assert!(netns.netns);
            assert!(netns.replay_command().ends_with(" --netns"));
            let error = refusal(&["--netns", "--partition-backend", "proxy"]);
            assert!(
                error.contains("--partition-backend proxy") && error.contains("--netns"),
                "{error}"
            );
        } else {
            let error = refusal(&["--node-binary", "/bin/true", "--netns"]);
            assert!(error.contains("--netns needs root"), "{error}");
        }
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
