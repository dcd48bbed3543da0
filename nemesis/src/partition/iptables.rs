//! The iptables partition backend: `DROP` rules per cut directed link, in a
//! chain of Faultline's own hooked into `INPUT`.
//!
//! Nodes connect to each other from their own loopback addresses, so cutting
//! the link `FROM -> TO` (the connections FROM opens to TO's peer port) takes
//! two rules: `-s FROM_IP -d TO_IP --dport TO_PORT` (FROM's requests) and
//! `-s TO_IP -d FROM_IP --sport TO_PORT` (TO's answers on those connections).
//! That is what the proxy backend cuts too. The harness's client traffic (from
//! 127.0.0.1, to client ports) is never touched, and matching the port keeps
//! two runs on the same addresses from partitioning each other.
//!
//! Rules can drop packets but not delay them. A run that degrades links
//! puts the proxy between the nodes (see `backend.rs`); it connects from the
//! sender's IP, so these same rules still cut exactly the link.
//!
//! Each partitioner owns a chain named `FAULTLINE-<pid>-<n>`, so concurrent
//! runs, and concurrent partitioners in one process, never touch each other's
//! rules, and a crashed run's chains can be found by their dead pid.
//!
//! Teardown unhooks and deletes the chain. It runs on [`Partitioner::teardown`]
//! and, as a last resort, when the partitioner is dropped; a run that was
//! SIGKILLed leaves its chain for [`remove_leftover_chains`] to delete.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::process::{ExitStatus, Output};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::{PartitionError, Partitioner};
use crate::cluster::NodeName;
use crate::grudge::Link;
use crate::owned_names::{fresh_id, is_leftover};
use crate::time_limit::output_within;

/// Every Faultline chain's name starts with this.
pub const CHAIN_PREFIX: &str = "FAULTLINE-";

/// Numbers the chains of one process.
static NEXT_CHAIN: AtomicU32 = AtomicU32::new(0);

/// A chain name no other chain of this process has, `FAULTLINE-<pid>-<n>`: shared by every
/// backend that makes chains, so that [`remove_leftover_chains`] recognises them all.
pub(super) fn fresh_chain() -> String {
    format!("{CHAIN_PREFIX}{}", fresh_id(&NEXT_CHAIN))
}

/// What the name of every chain this process makes starts with, `FAULTLINE-<pid>-`: the
/// chains to remove when this process's runs are over, wherever they were made.
pub fn own_chain_prefix() -> String {
    format!("{CHAIN_PREFIX}{}-", std::process::id())
}

/// iptables could not be run, or refused a command.
#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    /// The binary could not be started (usually: not installed).
    #[error(
        "cannot run `iptables` ({source}); install it (apt-get install -y iptables) \
         or use --partition-backend proxy"
    )]
    Spawn {
        /// Why it could not be started.
        #[source]
        source: io::Error,
    },
    /// A command exited with an error.
    #[error("`iptables {command}` failed ({status}): {stderr}{hint}", hint = hint(stderr))]
    Failed {
        /// The arguments, space-separated.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// What it printed on stderr, trimmed.
        stderr: String,
    },
    /// A command did not finish in time (it was killed).
    #[error(
        "`iptables {command}` did not finish within {} s (it was killed); another program may \
         hold the xtables lock",
        COMMAND_TIMEOUT.as_secs()
    )]
    TimedOut {
        /// The arguments, space-separated.
        command: String,
    },
}

/// How long iptables may wait for the xtables lock (`-w`): past it, the command fails rather
/// than hang the run.
const LOCK_WAIT_SECONDS: &str = "10";

/// How long one iptables command may take in all: the lock wait and then some.
const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Turns iptables' complaint about privileges into advice.
fn hint(stderr: &str) -> &'static str {
    if stderr.contains("Permission denied") || stderr.contains("must be root") {
        "; partitioning with iptables needs root: run as root or use --partition-backend proxy"
    } else {
        ""
    }
}

/// Cuts links with iptables rules in a chain of its own.
#[derive(Debug)]
pub struct IptablesPartitioner {
    chain: String,
    peer_addrs: BTreeMap<NodeName, SocketAddr>,
    torn_down: AtomicBool,
}

impl IptablesPartitioner {
    /// Creates a fresh chain, hooks it into `INPUT`, and returns a
    /// partitioner for nodes whose peer endpoints are `peer_addrs` (each
    /// node also connects from that IP). Fails with a clear reason when
    /// iptables is missing or this process is not root.
    pub async fn create(peer_addrs: BTreeMap<NodeName, SocketAddr>) -> Result<Self, IptablesError> {
        let chain = fresh_chain();
        run(&["-N", &chain]).await?;
        // First in INPUT, so that no ACCEPT rule of the host's lets packets past it.
        if let Err(error) = run(&["-I", "INPUT", "1", "-j", &chain]).await {
            if let Err(cleanup) = run(&["-X", &chain]).await {
                tracing::warn!(%chain, %cleanup, "could not delete an unhooked chain");
            }
            return Err(error);
        }
        Ok(IptablesPartitioner {
            chain,
            peer_addrs,
            torn_down: AtomicBool::new(false),
        })
    }

    /// The chain's name, `FAULTLINE-<pid>-<n>`.
    pub fn chain(&self) -> &str {
        &self.chain
    }

    fn addr(&self, node: &str) -> Result<SocketAddr, PartitionError> {
        self.peer_addrs
            .get(node)
            .copied()
            .ok_or_else(|| PartitionError::UnknownNode(node.to_owned()))
    }
}

impl Partitioner for IptablesPartitioner {
    async fn cut(&self, links: &[Link]) -> Result<(), PartitionError> {
        let rules = links
            .iter()
            .filter(|link| link.from != link.to)
            .map(|link| Ok((link, self.addr(&link.from)?.ip(), self.addr(&link.to)?)))
            .collect::<Result<Vec<_>, PartitionError>>()?;
        for (link, from, to) in rules {
            let (from, to_ip, port) =
                (from.to_string(), to.ip().to_string(), to.port().to_string());
            let chain = self.chain.as_str();
            let requests = ["-s", &from, "-d", &to_ip, "-p", "tcp", "--dport", &port];
            let answers = ["-s", &to_ip, "-d", &from, "-p", "tcp", "--sport", &port];
            for rule in [requests, answers] {
                let mut args = vec!["-A", chain];
                args.extend(rule);
                args.extend(["-j", "DROP"]);
                run(&args).await.map_err(|error| {
                    let message = format!("could not cut {} -> {} in {chain}", link.from, link.to);
                    PartitionError::backend(message, error)
                })?;
            }
        }
        Ok(())
    }

    async fn heal(&self) -> Result<(), PartitionError> {
        run(&["-F", &self.chain]).await.map_err(|error| {
            PartitionError::backend(format!("could not flush chain {}", self.chain), error)
        })?;
        Ok(())
    }

    async fn teardown(&self) -> Result<(), PartitionError> {
        if self.torn_down.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut first_error = None;
        for args in removal(&self.chain) {
            if let Err(error) = run(&args).await {
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) => Err(PartitionError::backend(
                format!("could not remove chain {}", self.chain),
                error,
            )),
            None => {
                self.torn_down.store(true, Ordering::SeqCst);
                Ok(())
            }
        }
    }
}

/// The last resort: a partitioner dropped without teardown (an early return,
/// a panic) still removes its chain.
impl Drop for IptablesPartitioner {
    fn drop(&mut self) {
        if self.torn_down.load(Ordering::SeqCst) {
            return;
        }
        for args in removal(&self.chain) {
            if let Err(error) = run_blocking(&args) {
                tracing::warn!(chain = %self.chain, %error, "iptables teardown step failed");
            }
        }
    }
}

/// Deletes the Faultline chains of processes that no longer exist (a run
/// that was SIGKILLed cannot tear down), and returns their names. Chains of
/// live processes, this one included, are left alone. Fails like any
/// iptables command where iptables does not work (not root, not installed);
/// a run that does not partition with iptables can ignore that.
pub async fn remove_leftover_chains() -> Result<Vec<String>, IptablesError> {
    let rules = run(&["-S"]).await?;
    let mut removed = Vec::new();
    for chain in leftover_chains(&rules) {
        let hook = format!("-A INPUT -j {chain}");
        for _ in rules.lines().filter(|line| *line == hook) {
            run(&["-D", "INPUT", "-j", chain]).await?;
        }
        run(&["-F", chain]).await?;
        run(&["-X", chain]).await?;
        removed.push(chain.to_owned());
    }
    Ok(removed)
}

/// The Faultline chains in `iptables -S` output whose process is gone.
fn leftover_chains(rules: &str) -> Vec<&str> {
    rules
        .lines()
        .filter_map(|line| line.strip_prefix("-N "))
        .filter(|chain| is_leftover(chain, CHAIN_PREFIX))
        .collect()
}

/// Unhook, flush, delete: the teardown steps, each tried even if one fails.
fn removal(chain: &str) -> [Vec<&str>; 3] {
    [
        vec!["-D", "INPUT", "-j", chain],
        vec!["-F", chain],
        vec!["-X", chain],
    ]
}

async fn run(args: &[&str]) -> Result<String, IptablesError> {
    run_as(tokio::process::Command::new("iptables"), args).await
}

/// Runs `command`, an `iptables` command (one that starts in a node's network namespace,
/// say), with `-w` (a bounded wait for the xtables lock) and `args`, within
/// [`COMMAND_TIMEOUT`], and returns what it printed.
pub(super) async fn run_as(
    mut command: tokio::process::Command,
    args: &[&str],
) -> Result<String, IptablesError> {
    command.args(["-w", LOCK_WAIT_SECONDS]).args(args);
    let output = output_within(&mut command, COMMAND_TIMEOUT)
        .await
        .ok_or_else(|| IptablesError::TimedOut {
            command: args.join(" "),
        })?
        .map_err(|source| IptablesError::Spawn { source })?;
    checked(args, output)
}

fn run_blocking(args: &[&str]) -> Result<String, IptablesError> {
    let output = std::process::Command::new("iptables")
        .args(["-w", LOCK_WAIT_SECONDS])
        .args(args)
        .output()
        .map_err(|source| IptablesError::Spawn { source })?;
    checked(args, output)
}

fn checked(args: &[&str], output: Output) -> Result<String, IptablesError> {
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(IptablesError::Failed {
        command: args.join(" "),
        status: output.status,
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::IpAddr;
    use std::time::Duration;

    use tokio::net::{TcpListener, TcpSocket};
    use tokio::time::timeout;

    use super::*;

    /// Why these tests cannot touch iptables here, if they cannot: only when
    /// not root or the binary is missing. Where both are present they run,
    /// and fail if iptables does not work.
    pub(crate) fn skip_reason() -> Option<String> {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let euid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1));
        if euid != Some("0") {
            return Some("not root".into());
        }
        match std::process::Command::new("iptables")
            .arg("--version")
            .output()
        {
            Err(error) => Some(format!("no iptables binary: {error}")),
            Ok(_) => None,
        }
    }

    macro_rules! skip_without_iptables {
        () => {
            if let Some(reason) = skip_reason() {
                eprintln!("skipped: {reason}");
                return;
            }
        };
    }

    /// The current rules, in `iptables -S` form.
    pub(crate) fn rules() -> String {
        run_blocking(&["-S"]).expect("iptables -S")
    }

    fn addrs(pairs: &[(&str, SocketAddr)]) -> BTreeMap<NodeName, SocketAddr> {
        pairs
            .iter()
            .map(|(node, addr)| (node.to_string(), *addr))
            .collect()
    }

    fn at(ip: &str, port: u16) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), port)
    }

    /// Connects to `to` from a socket bound to `from`'s address; `Err` if
    /// nothing answers within a second (dropped SYNs) or the connection fails.
    async fn connect_from(from: IpAddr, to: SocketAddr) -> Result<(), String> {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        match timeout(Duration::from_secs(1), socket.connect(to)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    // Each test uses its own addresses, above the cluster's 127.0.0.1x, so
    // they run in parallel with each other and with real clusters.

    #[tokio::test]
    async fn a_cut_link_drops_connections_until_healed_and_teardown_leaves_nothing() {
        skip_without_iptables!();
        let (a, b) = ("127.0.0.211", "127.0.0.212");
        let listener = TcpListener::bind((b, 0)).await.unwrap();
        let target = listener.local_addr().unwrap();
        tokio::spawn(async move { while listener.accept().await.is_ok() {} });
        let from: IpAddr = a.parse().unwrap();
        assert_eq!(connect_from(from, target).await, Ok(()));

        let other_port = TcpListener::bind((b, 0)).await.unwrap();
        let untouched = other_port.local_addr().unwrap();
        tokio::spawn(async move { while other_port.accept().await.is_ok() {} });
        let iptables = IptablesPartitioner::create(addrs(&[("n1", at(a, 7000)), ("n2", target)]))
            .await
            .unwrap();
        let chain = iptables.chain().to_owned();
        assert!(
            rules().contains(&format!("-A INPUT -j {chain}")),
            "not hooked"
        );
        let link = Link {
            from: "n1".into(),
            to: "n2".into(),
        };
        iptables.cut(&[link]).await.unwrap();
        assert_eq!(connect_from(from, target).await, Err("timed out".into()));
        // Another port on the same address (another run's node) is not cut.
        assert_eq!(connect_from(from, untouched).await, Ok(()));

        iptables.heal().await.unwrap();
        assert_eq!(connect_from(from, target).await, Ok(()));

        iptables.teardown().await.unwrap();
        assert!(
            !rules().contains(&chain),
            "{chain} left behind:\n{}",
            rules()
        );
        iptables.teardown().await.unwrap();
    }

    #[tokio::test]
    async fn dropping_without_teardown_still_removes_the_chain() {
        skip_without_iptables!();
        let iptables = IptablesPartitioner::create(addrs(&[
            ("n1", at("127.0.0.213", 7001)),
            ("n2", at("127.0.0.214", 7002)),
        ]))
        .await
        .unwrap();
        let link = Link {
            from: "n2".into(),
            to: "n1".into(),
        };
        iptables.cut(&[link]).await.unwrap();
        let chain = iptables.chain().to_owned();
        let rules_now = rules();
        for rule in [
            "-s 127.0.0.214/32 -d 127.0.0.213/32 -p tcp -m tcp --dport 7001 -j DROP",
            "-s 127.0.0.213/32 -d 127.0.0.214/32 -p tcp -m tcp --sport 7001 -j DROP",
        ] {
            assert!(
                rules_now.contains(&format!("-A {chain} {rule}")),
                "{rules_now}"
            );
        }
        drop(iptables);
        assert!(
            !rules().contains(&chain),
            "{chain} left behind:\n{}",
            rules()
        );
    }

    #[tokio::test]
    async fn cutting_an_unknown_node_adds_no_rule() {
        skip_without_iptables!();
        let iptables = IptablesPartitioner::create(addrs(&[("n1", at("127.0.0.215", 7001))]))
            .await
            .unwrap();
        let links = [Link {
            from: "n1".into(),
            to: "n4".into(),
        }];
        let error = iptables.cut(&links).await.unwrap_err();
        assert_eq!(error.to_string(), "no peer address is known for node `n4`");
        assert!(!rules().contains(&format!("-A {} ", iptables.chain())));
        iptables.teardown().await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_command_says_what_failed_and_keeps_the_iptables_error() {
        skip_without_iptables!();
        let iptables = IptablesPartitioner::create(addrs(&[("n1", at("127.0.0.210", 7001))]))
            .await
            .unwrap();
        let chain = iptables.chain().to_owned();
        iptables.teardown().await.unwrap();
        // The chain is gone, so flushing it fails.
        let error = iptables.heal().await.unwrap_err();
        assert_eq!(error.to_string(), format!("could not flush chain {chain}"));
        let source = std::error::Error::source(&error).expect("a source");
        match source.downcast_ref::<IptablesError>() {
            Some(IptablesError::Failed { command, .. }) => {
                assert_eq!(*command, format!("-F {chain}"));
            }
            other => panic!("expected a failed iptables command, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn leftover_chains_of_dead_runs_are_removed_and_live_ones_kept() {
        skip_without_iptables!();
        let dead_pid = std::process::Command::new("true")
            .spawn()
            .and_then(|mut child| child.wait().map(|_| child.id()))
            .unwrap();
        let leftover = format!("{CHAIN_PREFIX}{dead_pid}-0");
        let _cleanup = RemoveOnDrop(leftover.clone());
        run(&["-N", &leftover]).await.unwrap();
        run(&["-I", "INPUT", "-j", &leftover]).await.unwrap();
        run(&["-A", &leftover, "-s", "127.0.0.216", "-j", "DROP"])
            .await
            .unwrap();
        let live = IptablesPartitioner::create(BTreeMap::new()).await.unwrap();

        let removed = remove_leftover_chains().await.unwrap();
        assert!(removed.contains(&leftover), "{removed:?}");
        assert!(!removed.iter().any(|chain| chain == live.chain()));
        let after = rules();
        assert!(
            !after.contains(&leftover),
            "{leftover} left behind:\n{after}"
        );
        assert!(after.contains(&format!("-N {}", live.chain())));
        live.teardown().await.unwrap();
    }

    /// Removes a chain made by hand, even when the test fails.
    struct RemoveOnDrop(String);

    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            if rules().contains(&format!("-N {}", self.0)) {
                for args in removal(&self.0) {
                    let _ = run_blocking(&args);
                }
            }
        }
    }

    #[test]
    fn only_chains_of_gone_processes_count_as_leftovers() {
        let own = std::process::id();
        let rules = format!(
            "-P INPUT ACCEPT\n-N DOCKER\n-N FAULTLINE-{own}-0\n-N FAULTLINE-1-0\n\
             -N FAULTLINE-4194305-3\n-N FAULTLINE-x-1\n-A INPUT -j FAULTLINE-4194305-3\n"
        );
        // pid 1 always exists; 4194305 is above the kernel's largest pid.
        assert_eq!(leftover_chains(&rules), ["FAULTLINE-4194305-3"]);
    }

    #[test]
    fn a_permission_error_explains_what_to_do() {
        assert!(
            hint("iptables v1.8.9 (nf_tables): Permission denied (you must be root)")
                .contains("proxy")
        );
        assert_eq!(hint("Chain already exists."), "");
    }
}
