//! Nodes in network namespaces of their own, through the real kernel: who reaches whom,
//! what a command entered into a namespace sees, and that nothing is left behind. Skipped,
//! with the reason printed, where namespaces cannot be made at all: not root, no `ip`, or
//! `ip netns add` refused (a container without CAP_SYS_ADMIN).
//!
//! Every test makes its own network, so they run in parallel; each network is removed
//! when it is dropped, also when an assertion fails. Traffic only ever goes to the
//! networks' own 198.18.x addresses.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use faultline_nemesis::{NodeName, NodeNetwork, remove_leftover_namespaces};
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
