//! The names the command line uses for faults (`--nemesis`) and for partition
//! backends (`--partition-backend`).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// The names `--nemesis` accepts, in the order an error message lists them.
const VALID_FAULT_NAMES: &str = "none, kill, kill-majority, kill-all, crash-restart, pause, \
     power-loss, lagging-failover, partition, partition-leader, flap-leader, partition-one-way, \
     majorities-ring, bridge, restart-bridge, slow, lossy, clock, drifting-leader, membership, all";

/// A malformed `--nemesis` or `--partition-backend` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseNameError {
    /// A `--nemesis` item that names no fault.
    #[error("unknown nemesis {0:?}; valid names (comma-separated): {VALID_FAULT_NAMES}")]
    UnknownFault(String),
    /// A `--partition-backend` value that names no backend.
    #[error("unknown partition backend {0:?}; valid names: auto, iptables, proxy")]
    UnknownBackend(String),
}

/// Which lane of the schedule a fault runs in. The two lanes run side by side, so a
/// process fault and a network fault overlap (a partition while a node is down or
/// paused), as Jepsen's composed nemeses do; within a lane faults take turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    /// Faults of node processes and their disks: kills, pauses, power loss.
    Process,
    /// Faults of the links between nodes: partitions and degradation.
    Network,
    /// Faults of one node's clock: bumps, skews, strobes (see `clock/`).
    Clock,
    /// Changes of the cluster's membership: nodes join and leave.
    Membership,
}

/// One kind of fault the schedule can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// SIGKILL a random minority or the leader, then restart it on the same data.
    Kill,
    /// SIGKILL a random majority at once; the cluster is down until they restart.
    KillMajority,
    /// SIGKILL every node at once.
    KillAll,
    /// SIGKILL a node and restart it at once, again and again while the fault lasts: each
    /// node is back within an election timeout, in the middle of the elections it caused.
    CrashRestart,
    /// SIGSTOP a random minority or the leader, then SIGCONT it.
    Pause,
    /// SIGKILL one node, a majority or every node, and lose what they wrote but did not
    /// fsync (sometimes keeping a torn prefix of it); restart them on what is left.
    PowerLoss,
    /// SIGSTOP a follower until its log lags, SIGKILL the leader, and SIGCONT the follower
    /// about an election timeout later, when it campaigns at once: the election that follows
    /// is between a lagging log and an up-to-date one, which only the vote's up-to-date-log
    /// check decides.
    LaggingFailover,
    /// Cut the cluster into random halves, a minority and a majority.
    Partition,
    /// Cut the current leader off from every other node.
    PartitionLeader,
    /// Cut the leader off, pause the next leader as soon as there is one and heal, resume it
    /// an election timeout later and crash-restart the deposed leader, and again, while the
    /// fault lasts (two intervals): the deposed leader's uncommitted suffix meets the shorter
    /// log of the leader after that one, and the deposed leader restarts from what it kept.
    FlapLeader,
    /// Random halves where only one side's messages are lost: the other side still reaches it.
    PartitionOneWay,
    /// Every node sees a majority, but no two nodes see the same one.
    MajoritiesRing,
    /// Two halves that cannot see each other, joined by one node that sees both.
    Bridge,
    /// Round after round, alone, for three intervals: the leader cut off while the others
    /// elect one of them, with the voters down until the winner campaigns; the winner
    /// paused and the voters restarted on the old leader's side, which asks them for the
    /// same term; then every link healed. Aimed at `forget-vote`.
    RestartBridge,
    /// Delay messages on every link, with jitter (through the proxy).
    Slow,
    /// Drop connections on every link at random, losing the messages in flight (through
    /// the proxy).
    Lossy,
    /// Bump, skew or strobe one node's clocks (CLOCK_REALTIME and CLOCK_MONOTONIC), through
    /// libfaketime: only for nodes started under it (see `clock/`).
    Clock,
    /// Round after round, alone, for three intervals: the leader's clock slowed by what a
    /// lease's drift margin must cover (25 %), the leader cut off until another node leads,
    /// then healed and its clock set back. A lease that counts on no drift outlasts the
    /// others' promise not to elect, and the old leader serves reads the new one has made
    /// stale. Aimed at `lease-no-drift`; needs what the clock fault needs.
    DriftingLeader,
    /// Add and remove members while the run goes on: spare nodes join as learners and are
    /// promoted, voters (the leader among them) are removed or replaced, and removed nodes'
    /// processes are retired (see `membership.rs`). Only for systems that change membership.
    Membership,
}

impl FaultKind {
    /// Every kind, in a fixed order (the order the seeded schedule draws from).
    pub const ALL: [FaultKind; 19] = [
        FaultKind::Kill,
        FaultKind::KillMajority,
        FaultKind::KillAll,
        FaultKind::CrashRestart,
        FaultKind::Pause,
        FaultKind::PowerLoss,
        FaultKind::LaggingFailover,
        FaultKind::Partition,
        FaultKind::PartitionLeader,
        FaultKind::FlapLeader,
        FaultKind::PartitionOneWay,
        FaultKind::MajoritiesRing,
        FaultKind::Bridge,
        FaultKind::RestartBridge,
        FaultKind::Slow,
        FaultKind::Lossy,
        FaultKind::Clock,
        FaultKind::DriftingLeader,
        FaultKind::Membership,
    ];

    /// The command-line name, e.g. `"partition-leader"`.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::KillMajority => "kill-majority",
            FaultKind::KillAll => "kill-all",
            FaultKind::CrashRestart => "crash-restart",
            FaultKind::Pause => "pause",
            FaultKind::PowerLoss => "power-loss",
            FaultKind::LaggingFailover => "lagging-failover",
            FaultKind::Partition => "partition",
            FaultKind::PartitionLeader => "partition-leader",
            FaultKind::FlapLeader => "flap-leader",
            FaultKind::PartitionOneWay => "partition-one-way",
            FaultKind::MajoritiesRing => "majorities-ring",
            FaultKind::Bridge => "bridge",
            FaultKind::RestartBridge => "restart-bridge",
            FaultKind::Slow => "slow",
            FaultKind::Lossy => "lossy",
            FaultKind::Clock => "clock",
            FaultKind::DriftingLeader => "drifting-leader",
            FaultKind::Membership => "membership",
        }
    }

    /// The lane the kind runs in.
    pub fn lane(self) -> Lane {
        match self {
            FaultKind::Kill
            | FaultKind::KillMajority
            | FaultKind::KillAll
            | FaultKind::CrashRestart
            | FaultKind::Pause
            | FaultKind::PowerLoss
            | FaultKind::LaggingFailover => Lane::Process,
            FaultKind::Partition
            | FaultKind::PartitionLeader
            | FaultKind::FlapLeader
            | FaultKind::PartitionOneWay
            | FaultKind::MajoritiesRing
            | FaultKind::Bridge
            // Crash-restarts too, but its fault in force is the partition.
            | FaultKind::RestartBridge
            | FaultKind::Slow
            | FaultKind::Lossy => Lane::Network,
            // Cuts the leader off too, but what it aims at is the clock.
            FaultKind::Clock | FaultKind::DriftingLeader => Lane::Clock,
            FaultKind::Membership => Lane::Membership,
        }
    }

    /// Whether the kind moves nodes' clocks, and so needs them started under libfaketime.
    pub fn moves_clocks(self) -> bool {
        matches!(self, FaultKind::Clock | FaultKind::DriftingLeader)
    }

    /// Whether the kind needs the TCP proxy in the path of every peer link (iptables can
    /// cut links but cannot delay or drop part of their traffic).
    pub fn needs_proxy(self) -> bool {
        matches!(self, FaultKind::Slow | FaultKind::Lossy)
    }

    /// Whether the kind slows links when it can: those that need the proxy, and
    /// restart-bridge, which runs without its slow links where the proxy cannot be put in
    /// the path.
    pub fn slows_links(self) -> bool {
        self.needs_proxy() || self == FaultKind::RestartBridge
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = ParseNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| ParseNameError::UnknownFault(name.to_owned()))
    }
}

/// The set of fault kinds a run may inject: the parsed `--nemesis` list.
///
/// Parsing accepts a comma list of [`FaultKind`] names plus `none` (adds
/// nothing) and `all` (adds every kind); spaces around items are ignored and
/// the order does not matter, so `kill,pause` and `pause,kill` give the same
/// set and the same seeded schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultKinds(BTreeSet<FaultKind>);

impl FaultKinds {
    /// No faults at all (`--nemesis none`).
    pub fn none() -> Self {
        FaultKinds::default()
    }

    /// Every fault kind (`--nemesis all`).
    pub fn all() -> Self {
        FaultKinds(FaultKind::ALL.into_iter().collect())
    }

    /// True when no fault is enabled.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `kind` is enabled.
    pub fn contains(&self, kind: FaultKind) -> bool {
        self.0.contains(&kind)
    }

    /// The enabled kinds, in [`FaultKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = FaultKind> + '_ {
        self.0.iter().copied()
    }

    /// The enabled kinds of one lane.
    pub fn of_lane(&self, lane: Lane) -> FaultKinds {
        self.iter().filter(|kind| kind.lane() == lane).collect()
    }

    /// These kinds without `kind`.
    pub fn without(&self, kind: FaultKind) -> FaultKinds {
        self.iter().filter(|&other| other != kind).collect()
    }
}

impl FromIterator<FaultKind> for FaultKinds {
    fn from_iter<I: IntoIterator<Item = FaultKind>>(kinds: I) -> Self {
        FaultKinds(kinds.into_iter().collect())
    }
}

impl FromStr for FaultKinds {
    type Err = ParseNameError;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let mut kinds = BTreeSet::new();
        for item in list.split(',').map(str::trim) {
            match item {
                "none" => {}
                "all" => kinds.extend(FaultKind::ALL),
                name => {
                    kinds.insert(name.parse()?);
                }
            }
        }
        Ok(FaultKinds(kinds))
    }
}

/// Prints the list the way `--nemesis` takes it (`none` when empty), so it
/// can be stored in test.json and passed back to replay a run.
impl fmt::Display for FaultKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.iter().map(FaultKind::name).collect();
        f.write_str(&names.join(","))
    }
}

/// Which partition backend to use (`--partition-backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PartitionBackendKind {
    /// iptables when it works here (root and the binary present), else the proxy.
    #[default]
    Auto,
    /// Firewall rules in a chain of Faultline's own; needs root.
    Iptables,
    /// A TCP proxy per directed peer link, inside the harness; needs no privileges.
    Proxy,
    /// Firewall rules inside each node's network namespace, for nodes that run in
    /// namespaces of their own (a [`crate::NodeNetwork`]). Not a `--partition-backend`
    /// value: it comes with the namespaces, and only names the backend in use.
    Netns,
    /// Firewall rules on each node's own host, applied through a runner the harness
    /// provides (SSH), for nodes on hosts of their own. Not a `--partition-backend` value
    /// either: it comes with the hosts.
    HostIptables,
}

impl PartitionBackendKind {
    /// The command-line name: `auto`, `iptables` or `proxy`; `netns` for
    /// [`PartitionBackendKind::Netns`] and `host-iptables` for
    /// [`PartitionBackendKind::HostIptables`], which the command line does not take.
    pub fn name(self) -> &'static str {
        match self {
            PartitionBackendKind::Auto => "auto",
            PartitionBackendKind::Iptables => "iptables",
            PartitionBackendKind::Proxy => "proxy",
            PartitionBackendKind::Netns => "netns",
            PartitionBackendKind::HostIptables => "host-iptables",
        }
    }
}

impl fmt::Display for PartitionBackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PartitionBackendKind {
    type Err = ParseNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim() {
            "auto" => Ok(PartitionBackendKind::Auto),
            "iptables" => Ok(PartitionBackendKind::Iptables),
            "proxy" => Ok(PartitionBackendKind::Proxy),
            other => Err(ParseNameError::UnknownBackend(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(list: &str) -> FaultKinds {
        list.parse().expect("valid list")
    }

    #[test]
    fn every_fault_name_parses_back_to_its_kind() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.name().parse::<FaultKind>(), Ok(kind));
        }
    }

    #[test]
    fn a_comma_list_enables_exactly_the_named_kinds_in_any_order() {
        let parsed = kinds("partition-leader, kill");
        assert_eq!(
            parsed.iter().collect::<Vec<_>>(),
            [FaultKind::Kill, FaultKind::PartitionLeader]
        );
        assert_eq!(parsed, kinds("kill,partition-leader"));
    }

    #[test]
    fn none_enables_nothing_and_all_enables_everything() {
        assert!(kinds("none").is_empty());
        assert_eq!(kinds("all"), FaultKinds::all());
        assert_eq!(kinds("kill,all"), FaultKinds::all());
        assert_eq!(kinds("none,bridge"), kinds("bridge"));
    }

    #[test]
    fn display_round_trips_through_parse() {
        for list in ["none", "all", "pause,majorities-ring", "bridge"] {
            let parsed = kinds(list);
            assert_eq!(kinds(&parsed.to_string()), parsed);
        }
        assert_eq!(FaultKinds::none().to_string(), "none");
        assert_eq!(kinds("bridge,kill").to_string(), "kill,bridge");
    }

    #[test]
    fn an_unknown_name_is_rejected_with_the_valid_names() {
        let err = "kill,partitoin".parse::<FaultKinds>().unwrap_err();
        assert_eq!(err, ParseNameError::UnknownFault("partitoin".into()));
        let message = err.to_string();
        assert!(message.contains("\"partitoin\""), "{message}");
        assert!(message.contains(VALID_FAULT_NAMES), "{message}");
    }

    #[test]
    fn an_empty_item_is_rejected() {
        assert_eq!(
            "kill,,pause".parse::<FaultKinds>(),
            Err(ParseNameError::UnknownFault(String::new()))
        );
        assert!("".parse::<FaultKinds>().is_err());
    }

    #[test]
    fn backend_names_parse_and_unknown_ones_are_rejected() {
        for kind in [
            PartitionBackendKind::Auto,
            PartitionBackendKind::Iptables,
            PartitionBackendKind::Proxy,
        ] {
            assert_eq!(kind.name().parse::<PartitionBackendKind>(), Ok(kind));
        }
        let err = "nftables".parse::<PartitionBackendKind>().unwrap_err();
        assert!(err.to_string().contains("auto, iptables, proxy"), "{err}");
        // Namespaces are chosen with the nodes' network, not by name.
        assert_eq!(PartitionBackendKind::Netns.to_string(), "netns");
        assert_eq!(
            "netns".parse::<PartitionBackendKind>(),
            Err(ParseNameError::UnknownBackend("netns".into()))
        );
        // Nor are hosts.
        assert_eq!(
            PartitionBackendKind::HostIptables.to_string(),
            "host-iptables"
        );
        assert_eq!(
            "host-iptables".parse::<PartitionBackendKind>(),
            Err(ParseNameError::UnknownBackend("host-iptables".into()))
        );
    }
}
