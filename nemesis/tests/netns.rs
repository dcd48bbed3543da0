//! Nodes in network namespaces of their own, through the real kernel: who reaches whom,
//! what a command entered into a namespace sees, that nothing is left behind, and
//! partitions by rules inside the namespaces (`PartitionBackend::in_namespaces`). Skipped,
//! with the reason printed, where namespaces cannot be made at all: not root, no `ip`, or
//! `ip netns add` refused (a container without CAP_SYS_ADMIN).
//!
//! Every test makes its own network, so they run in parallel; each network is removed
//! when it is dropped, also when an assertion fails. Traffic only ever goes to the
//! networks' own 198.18.x addresses.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use faultline_nemesis::{
    CHAIN_PREFIX, Degradation, Degrader, Grudge, Link, NodeName, NodeNetwork, PartitionBackend,
    PartitionBackendKind, PartitionError, Partitioner, remove_leftover_namespaces,
};
use nix::fcntl::{Flock, FlockArg};
use nix::sched::{CloneFlags, setns};

/// Where every test node listens: each namespace has ports of its own.
const PORT: u16 = 7000;

/// How long a connection that must be made may take: only ever a bound on a failure (one
/// that works is made within milliseconds, unless the machine is very busy).
const PATIENCE: Duration = Duration::from_secs(10);

/// How long a connection or datagram that must not get through is given to get through
/// anyway: hundreds of times what one that works takes.
const CUT_WAIT: Duration = Duration::from_secs(1);

/// Why these tests cannot run here, if they cannot. Found out once, by making and deleting
/// a namespace, for all the tests of this process (which run at the same time).
fn skip_reason() -> Option<String> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    REASON.get_or_init(find_skip_reason).clone()
}

fn find_skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    let probe = format!("faultline-{}-probe", std::process::id());
    let added = match Command::new("ip").args(["netns", "add", &probe]).output() {
        Err(error) => return Some(format!("no ip binary (iproute2): {error}")),
        Ok(output) => output,
    };
    if !added.status.success() {
        let stderr = String::from_utf8_lossy(&added.stderr);
        return Some(format!(
            "`ip netns add` does not work here: {}",
            stderr.trim()
        ));
    }
    let deleted = Command::new("ip").args(["netns", "del", &probe]).status();
    assert!(deleted.is_ok_and(|status| status.success()), "{probe} left");
    None
}

macro_rules! skip_without_netns {
    () => {
        if let Some(reason) = skip_reason() {
            eprintln!("skipped: {reason}");
            return;
        }
    };
}

fn nodes(names: &[&str]) -> Vec<NodeName> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn netns_file(network: &NodeNetwork, node: &str) -> String {
    format!("/run/netns/{}", network.namespace(node).expect("a node"))
}

/// Runs `work` on a thread of its own inside the node's network namespace (the thread is
/// never reused, so no other code runs there by accident).
async fn inside<T: Send + 'static>(
    network: &NodeNetwork,
    node: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let namespace = File::open(netns_file(network, node)).expect("the namespace's file");
    let thread = std::thread::spawn(move || {
        setns(&namespace, CloneFlags::CLONE_NEWNET).expect("setns");
        work()
    });
    tokio::task::spawn_blocking(move || thread.join().expect("the thread panicked"))
        .await
        .unwrap()
}

/// Listens on `PORT` of every node's address, from inside its namespace, accepting and
/// dropping connections until the test's runtime ends.
async fn listen_on_every_node(network: &NodeNetwork) {
    for node in network.nodes() {
        let addr = SocketAddr::from((network.addr(node).unwrap(), PORT));
        let listener = inside(network, node, move || {
            let listener = std::net::TcpListener::bind(addr).expect("bind in the namespace");
            listener.set_nonblocking(true).unwrap();
            listener
        })
        .await;
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    }
}

/// Whether node `from`, from inside its namespace, connects to `to`'s listener `within`
/// this long; checks that the connection comes from `from`'s own address.
async fn node_connects(network: &NodeNetwork, from: &str, to: &str, within: Duration) -> bool {
    let target = SocketAddr::from((network.addr(to).unwrap(), PORT));
    let source = network.addr(from).unwrap();
    let connected = inside(network, from, move || {
        std::net::TcpStream::connect_timeout(&target, within)
            .map(|stream| stream.local_addr().unwrap().ip())
    })
    .await;
    match connected {
        Ok(ip) => {
            assert_eq!(ip, source, "{from} connected from another address");
            true
        }
        Err(_) => false,
    }
}

async fn node_reaches(network: &NodeNetwork, from: &str, to: &str) -> bool {
    node_connects(network, from, to, PATIENCE).await
}

async fn node_is_cut_off(network: &NodeNetwork, from: &str, to: &str) -> bool {
    !node_connects(network, from, to, CUT_WAIT).await
}

/// Whether the root namespace connects to `to`'s listener; checks that the connection
/// comes from the network's host address.
async fn host_reaches(network: &NodeNetwork, to: &str) -> bool {
    let target = SocketAddr::from((network.addr(to).unwrap(), PORT));
    match tokio::time::timeout(PATIENCE, tokio::net::TcpStream::connect(target)).await {
        Ok(Ok(stream)) => {
            assert_eq!(stream.local_addr().unwrap().ip(), network.host_addr());
            true
        }
        _ => false,
    }
}

/// What `ip ARGS` prints, run in the root namespace.
fn ip(args: &[&str]) -> String {
    let output = Command::new("ip").args(args).output().expect("run ip");
    assert!(output.status.success(), "ip {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// `198.18.X.` of the network's subnet.
fn subnet_prefix(network: &NodeNetwork) -> String {
    let [a, b, c, _] = network.host_addr().octets();
    format!("{a}.{b}.{c}.")
}

/// What a network leaves to check that it is gone: its namespaces' names, its host link and
/// its subnet.
struct Traces {
    namespace_prefix: String,
    host_link: String,
    subnet: String,
}

impl Traces {
    fn of(network: &NodeNetwork) -> Traces {
        let id = network.host_link().strip_prefix("fl").expect("fl<pid>-<k>");
        assert!(id.starts_with(&format!("{}-", std::process::id())), "{id}");
        Traces {
            namespace_prefix: format!("faultline-{id}-"),
            host_link: network.host_link().to_owned(),
            subnet: subnet_prefix(network),
        }
    }

    fn namespaces(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir("/run/netns") else {
            return Vec::new();
        };
        entries
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&self.namespace_prefix))
            .collect()
    }

    fn assert_gone(&self) {
        assert_eq!(self.namespaces(), Vec::<String>::new(), "namespaces left");
        let links = ip(&["-o", "link", "show"]);
        assert!(
            !links.contains(&format!(": {}@", self.host_link)),
            "{} left:\n{links}",
            self.host_link
        );
        // The subnet is free: no address or route of it in the root namespace.
        let addresses = ip(&["-o", "-4", "addr", "show"]);
        let routes = ip(&["-4", "route", "show", "table", "all"]);
        for listing in [addresses, routes] {
            assert!(
                !listing.contains(&self.subnet),
                "{}:\n{listing}",
                self.subnet
            );
        }
    }
}

/// Holds the lock under which networks claim subnets, so that none claims the subnet a
/// test has just freed before the test has looked.
async fn hold_subnet_lock() -> Flock<File> {
    tokio::task::spawn_blocking(|| {
        let file = File::open("/run/faultline-netns.lock").expect("the lock file");
        Flock::lock(file, FlockArg::LockExclusive).expect("flock")
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn every_node_reaches_every_other_and_the_host_reaches_every_node() {
    skip_without_netns!();
    let network = NodeNetwork::create(&nodes(&["n1", "n2", "n3"]))
        .await
        .unwrap();
    let host = network.host_addr();
    let [a, b, c, _] = host.octets();
    assert!(
        (a, b & 0xfe) == (198, 18),
        "{host} is outside 198.18.0.0/15"
    );
    assert_eq!(host.octets()[3], 1);
    let addrs: Vec<Ipv4Addr> = network.nodes().map(|n| network.addr(n).unwrap()).collect();
    assert_eq!(
        addrs,
        (11..=13)
            .map(|d| Ipv4Addr::new(a, b, c, d))
            .collect::<Vec<_>>()
    );

    listen_on_every_node(&network).await;
    for from in ["n1", "n2", "n3"] {
        assert!(host_reaches(&network, from).await, "host -> {from}");
        for to in ["n1", "n2", "n3"] {
            assert!(node_reaches(&network, from, to).await, "{from} -> {to}");
        }
    }

    // A node's only route is to its subnet: its address reaches nothing else.
    let routes = network
        .command("n2", "ip")
        .unwrap()
        .args(["-4", "route", "show", "table", "main"])
        .output()
        .await
        .unwrap();
    let routes = String::from_utf8(routes.stdout).unwrap();
    let own_subnet =
        format!("{a}.{b}.{c}.0/24 dev eth0 proto kernel scope link src {a}.{b}.{c}.12");
    assert_eq!(routes.trim(), own_subnet);
    network.teardown().await.unwrap();
}

#[tokio::test]
async fn a_command_entered_into_a_node_changes_its_network_namespace_only() {
    skip_without_netns!();
    let network = NodeNetwork::create(&nodes(&["n1", "n2"])).await.unwrap();
    let output = network
        .command("n2", "readlink")
        .unwrap()
        .args(["/proc/self/ns/net", "/proc/self/ns/mnt"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let output = String::from_utf8(output.stdout).unwrap();
    let namespaces: Vec<&str> = output.lines().collect();
    let n2 = std::fs::metadata(netns_file(&network, "n2")).unwrap().ino();
    let own_mounts = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    assert_eq!(
        namespaces,
        [
            format!("net:[{n2}]"),
            own_mounts.to_string_lossy().into_owned()
        ]
    );

    let error = network.command("n7", "true").unwrap_err();
    assert_eq!(
        error.to_string(),
        "no network namespace is known for node `n7`"
    );
    network.teardown().await.unwrap();
    let error = network.command("n2", "true").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cannot open the network namespace /run/netns/"),
        "{error}"
    );
}

#[tokio::test]
async fn teardown_removes_namespaces_and_host_link_and_frees_the_subnet() {
    skip_without_netns!();
    let network = NodeNetwork::create(&nodes(&["n1", "n2"])).await.unwrap();
    let traces = Traces::of(&network);
    let mut made = traces.namespaces();
    made.sort();
    assert_eq!(
        made,
        ["hub", "n1", "n2"].map(|suffix| format!("{}{suffix}", traces.namespace_prefix))
    );
    assert!(ip(&["-o", "-4", "addr", "show", "dev", network.host_link()]).contains(&traces.subnet));

    let lock = hold_subnet_lock().await;
    network.teardown().await.unwrap();
    traces.assert_gone();
    drop(lock);
    network.teardown().await.unwrap();
}

#[tokio::test]
async fn dropping_a_network_without_teardown_still_removes_it() {
    skip_without_netns!();
    let network = NodeNetwork::create(&nodes(&["n1"])).await.unwrap();
    let traces = Traces::of(&network);
    assert_eq!(traces.namespaces().len(), 2);
    let lock = hold_subnet_lock().await;
    drop(network);
    traces.assert_gone();
    drop(lock);
}

#[tokio::test]
async fn networks_created_at_once_get_different_subnets() {
    skip_without_netns!();
    let n1 = nodes(&["n1"]);
    let (one, two) = tokio::join!(NodeNetwork::create(&n1), NodeNetwork::create(&n1));
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_ne!(subnet_prefix(&one), subnet_prefix(&two));
    listen_on_every_node(&one).await;
    listen_on_every_node(&two).await;
    assert!(host_reaches(&one, "n1").await);
    assert!(host_reaches(&two, "n1").await);
    // Two runs' nodes do not see each other.
    let other = SocketAddr::from((two.addr("n1").unwrap(), PORT));
    let crossed = inside(&one, "n1", move || {
        std::net::TcpStream::connect_timeout(&other, CUT_WAIT)
    })
    .await;
    assert!(crossed.is_err(), "{crossed:?}");
    one.teardown().await.unwrap();
    two.teardown().await.unwrap();
}

/// Deletes namespaces made by hand, even when the test fails.
struct DeleteOnDrop(Vec<String>);

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        for name in &self.0 {
            if Path::new("/run/netns").join(name).exists() {
                let _ = Command::new("ip").args(["netns", "del", name]).status();
            }
        }
    }
}

#[tokio::test]
async fn leftover_namespaces_of_dead_processes_are_removed_and_live_ones_kept() {
    skip_without_netns!();
    let dead_pid = Command::new("true")
        .spawn()
        .and_then(|mut child| child.wait().map(|_| child.id()))
        .unwrap();
    let leftovers = ["hub", "n1"].map(|suffix| format!("faultline-{dead_pid}-0-{suffix}"));
    let _cleanup = DeleteOnDrop(leftovers.to_vec());
    for name in &leftovers {
        ip(&["netns", "add", name]);
    }
    let live = NodeNetwork::create(&nodes(&["n1"])).await.unwrap();
    let traces = Traces::of(&live);

    let removed = remove_leftover_namespaces().await.unwrap();
    // Gone, by this call or, were another run starting at the same time, by that run's.
    for name in &leftovers {
        assert!(!Path::new("/run/netns").join(name).exists(), "{name} left");
    }
    for name in &removed {
        assert!(!name.starts_with(&traces.namespace_prefix), "{removed:?}");
        assert!(!Path::new("/run/netns").join(name).exists(), "{name} left");
    }
    assert_eq!(traces.namespaces().len(), 2);
    live.teardown().await.unwrap();
}

// Partitions: rules inside the namespaces.

fn link(from: &str, to: &str) -> Link {
    Link {
        from: from.into(),
        to: to.into(),
    }
}

/// Whether a datagram `from` sends to `to` arrives `within` this long: one packet, no
/// answer, so this sees the direction of a cut where a TCP connection, which needs packets
/// both ways, cannot.
async fn datagram_arrives(network: &NodeNetwork, from: &str, to: &str, within: Duration) -> bool {
    let target = SocketAddr::from((network.addr(to).unwrap(), PORT));
    let source = SocketAddr::from((network.addr(from).unwrap(), 0));
    let receiver = inside(network, to, move || UdpSocket::bind(target).unwrap()).await;
    receiver.set_read_timeout(Some(within)).unwrap();
    inside(network, from, move || {
        let sender = UdpSocket::bind(source).unwrap();
        sender.send_to(b"ping", target).unwrap();
    })
    .await;
    tokio::task::spawn_blocking(move || {
        let mut buffer = [0; 4];
        matches!(receiver.recv_from(&mut buffer), Ok((4, _)) if buffer == *b"ping")
    })
    .await
    .unwrap()
}

/// The node's rules, as `iptables -S` prints them inside its namespace: `INPUT` and the
/// partition's chain, hooked into it.
async fn input_rules(network: &NodeNetwork, node: &str) -> String {
    let output = network
        .command(node, "iptables")
        .unwrap()
        .args(["-w", "-S"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// Whether `iptables` runs here (the partition tests need it inside the namespaces).
fn iptables_works() -> bool {
    match Command::new("iptables").arg("--version").output() {
        Ok(_) => true,
        Err(error) => {
            eprintln!("skipped: no iptables binary: {error}");
            false
        }
    }
}

/// Every ordered pair of distinct nodes among `nodes`.
fn pairs<'a>(nodes: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    let mut pairs = Vec::new();
    for from in nodes {
        for to in nodes {
            if from != to {
                pairs.push((*from, *to));
            }
        }
    }
    pairs
}

#[tokio::test]
async fn a_cut_link_drops_what_from_sends_to_to_and_nothing_else_until_healed() {
    skip_without_netns!();
    if !iptables_works() {
        return;
    }
    let network = Arc::new(
        NodeNetwork::create(&nodes(&["n1", "n2", "n3"]))
            .await
            .unwrap(),
    );
    listen_on_every_node(&network).await;
    let backend = PartitionBackend::in_namespaces(network.clone());
    assert_eq!(backend.kind(), PartitionBackendKind::Netns);
    assert_eq!(backend.dial_addr("n1", "n2"), None);

    backend.cut(&[link("n1", "n2")]).await.unwrap();
    let n1 = network.addr("n1").unwrap();
    let rules = input_rules(&network, "n2").await;
    assert!(rules.contains(&format!("-s {n1}/32 -j DROP")), "{rules}");
    // In a chain of Faultline's own, hooked into INPUT.
    assert!(
        rules.contains(&format!("-A INPUT -j {CHAIN_PREFIX}")),
        "{rules}"
    );
    assert!(!input_rules(&network, "n1").await.contains("DROP"));
    assert!(!datagram_arrives(&network, "n1", "n2", CUT_WAIT).await);
    assert!(datagram_arrives(&network, "n2", "n1", PATIENCE).await);
    assert!(node_is_cut_off(&network, "n1", "n2").await);
    // n2's packets reach n1 but n1's answers do not come back: over TCP the cut stalls
    // n2's own connections to n1 too.
    assert!(node_is_cut_off(&network, "n2", "n1").await);
    for (from, to) in [("n2", "n3"), ("n3", "n2"), ("n1", "n3"), ("n3", "n1")] {
        assert!(node_reaches(&network, from, to).await, "{from} -> {to}");
    }
    for node in ["n1", "n2", "n3"] {
        assert!(host_reaches(&network, node).await, "host -> {node}");
    }

    backend.heal().await.unwrap();
    for (from, to) in pairs(&["n1", "n2", "n3"]) {
        assert!(node_reaches(&network, from, to).await, "{from} -> {to}");
    }
    assert!(datagram_arrives(&network, "n1", "n2", PATIENCE).await);
    backend.teardown().await.unwrap();
    let rules = input_rules(&network, "n2").await;
    assert!(!rules.contains(CHAIN_PREFIX), "left behind: {rules}");
    network.teardown().await.unwrap();
}

#[tokio::test]
async fn an_isolated_node_is_cut_off_from_its_peers_but_not_from_clients() {
    skip_without_netns!();
    if !iptables_works() {
        return;
    }
    let names = nodes(&["n1", "n2", "n3"]);
    let network = Arc::new(NodeNetwork::create(&names).await.unwrap());
    listen_on_every_node(&network).await;
    let backend = PartitionBackend::in_namespaces(network.clone());
    backend
        .cut(&Grudge::isolate("n1", &names).links())
        .await
        .unwrap();
    for (from, to) in pairs(&["n1", "n2", "n3"]) {
        if from == "n1" || to == "n1" {
            assert!(node_is_cut_off(&network, from, to).await, "{from} -> {to}");
        } else {
            assert!(node_reaches(&network, from, to).await, "{from} -> {to}");
        }
    }
    assert!(host_reaches(&network, "n1").await);
    // Each receiver holds one rule naming all the senders cut off from it.
    let n2 = network.addr("n2").unwrap();
    let n3 = network.addr("n3").unwrap();
    let rules = input_rules(&network, "n1").await;
    for sender in [n2, n3] {
        assert!(
            rules.contains(&format!("-s {sender}/32 -j DROP")),
            "{rules}"
        );
    }

    // Tearing the network down first takes the rules with it; the backend's teardown
    // then has nothing left to do.
    network.teardown().await.unwrap();
    backend.teardown().await.unwrap();
}

#[tokio::test]
async fn cutting_an_unknown_node_adds_no_rule_and_degrading_is_refused() {
    skip_without_netns!();
    if !iptables_works() {
        return;
    }
    let network = Arc::new(NodeNetwork::create(&nodes(&["n1", "n2"])).await.unwrap());
    let backend = PartitionBackend::in_namespaces(network.clone());
    let error = backend
        .cut(&[link("n1", "n2"), link("n4", "n2")])
        .await
        .unwrap_err();
    assert!(matches!(error, PartitionError::UnknownNode(ref node) if node == "n4"));
    assert!(!input_rules(&network, "n2").await.contains("DROP"));

    assert!(!backend.can_degrade());
    let slow = Degradation {
        latency: Duration::from_millis(100),
        ..Degradation::default()
    };
    let error = backend
        .degrade(&[link("n1", "n2")], &slow)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot degrade links between network namespaces"
    );
    let reason = std::error::Error::source(&error).unwrap().to_string();
    assert!(reason.contains("leave out slow and lossy"), "{reason}");
    backend.teardown().await.unwrap();
    network.teardown().await.unwrap();
}
