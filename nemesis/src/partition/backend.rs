//! [`PartitionBackend`], the partition backend a run picks with
//! `--partition-backend auto|iptables|proxy`, and what nodes dial through it.
//!
//! The proxy backend cuts and degrades links itself. The iptables backend
//! cuts with rules; it cannot delay, so a run that degrades links puts the
//! proxy in the path as well: nodes dial the proxy, which connects to the
//! receiver from the sender's own peer IP, so the rules still cut each link
//! while the proxy degrades it.
//!
//! Nodes in network namespaces of their own get the rules of `netns.rs`
//! instead ([`PartitionBackend::in_namespaces`]), which cannot be degraded:
//! the proxy cannot sit between namespaces. Nodes on hosts of their own get
//! the same rules applied on each host through the harness's runner
//! ([`PartitionBackend::on_hosts`], `host_rules.rs`), and, to degrade links,
//! the proxies of their links on each sender's host (`host_links.rs`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::host_links::HostLinks;
use super::host_rules::{HostFirewall, HostRules};
use super::iptables::{IptablesError, IptablesPartitioner};
use super::netns::NamespaceRules;
use super::proxy::{ProxyError, ProxyNetwork, UpstreamSource};
use super::{Degradation, Degrader, PartitionError, Partitioner};
use crate::cluster::NodeName;
use crate::grudge::Link;
use crate::kind::PartitionBackendKind;
use crate::netns::NodeNetwork;

/// How to set up a run's partition backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendOptions {
    /// Whether the run will degrade links ([`Degrader::degrade`]). The proxy
    /// backend always can; with iptables this puts the proxy in the path of
    /// peer traffic. Off, iptables nodes dial each other directly.
    pub degradation: bool,
}

/// Could not set up the partition backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// `--partition-backend iptables`, and iptables does not work here.
    #[error(transparent)]
    Iptables(#[from] IptablesError),
    /// The proxy could not start.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// [`PartitionBackendKind::Netns`] asked of [`PartitionBackend::start`].
    #[error(
        "the netns partition backend comes with the nodes' network namespaces: \
         use PartitionBackend::in_namespaces"
    )]
    NeedsNamespaces,
    /// [`PartitionBackendKind::HostIptables`] asked of [`PartitionBackend::start`].
    #[error(
        "the host-iptables partition backend comes with nodes on hosts of their own: \
         use PartitionBackend::on_hosts"
    )]
    NeedsHosts,
    /// A node given to [`PartitionBackend::on_hosts`] has an address that is not IPv4.
    #[error(
        "node `{node}` has the address {addr}, but partitions on hosts are iptables rules, \
         which match IPv4 addresses only: give the node its host's IPv4 address"
    )]
    NotIpv4 {
        /// The node.
        node: NodeName,
        /// The address it was given.
        addr: SocketAddr,
    },
}

/// Degradation asked of an iptables backend that has no proxy in the path.
#[derive(Debug, thiserror::Error)]
#[error(
    "iptables rules cannot delay or drop; start the backend with \
     `BackendOptions {{ degradation: true }}` to put the proxy in the path"
)]
struct NoProxyInThePath;

/// Degradation asked of nodes in namespaces.
#[derive(Debug, thiserror::Error)]
#[error(
    "the TCP proxy cannot sit between network namespaces, and netem is not used; \
     leave out slow and lossy"
)]
struct NoDegradingInNamespaces;

/// Degradation asked of nodes on hosts of their own without their links' proxies.
#[derive(Debug, thiserror::Error)]
#[error(
    "the hosts run no proxies on the nodes' links (the run was set up without slow or \
     lossy), and netem is not used; leave out slow and lossy"
)]
struct NoDegradingOnHosts;

/// The partition backend of a run: iptables rules, a proxy per link, or
/// rules inside the nodes' network namespaces or on their hosts.
#[derive(Debug)]
pub struct PartitionBackend {
    peer_addrs: BTreeMap<NodeName, SocketAddr>,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    /// Rules cut links; the proxy, when there, carries and degrades them.
    Iptables {
        rules: IptablesPartitioner,
        proxy: Option<ProxyNetwork>,
    },
    Proxy(ProxyNetwork),
    Namespaces(NamespaceRules),
    /// Rules cut links; the proxies on the senders' hosts, when there, degrade them.
    Hosts {
        rules: HostRules,
        links: Option<Arc<dyn HostLinks>>,
    },
}

impl PartitionBackend {
    /// Sets up the backend for nodes listening for peers at `peer_addrs`
    /// (each node's address is also the one it connects from).
    ///
    /// `Auto` tries iptables and falls back to the proxy, logging why.
    pub async fn start(
        kind: PartitionBackendKind,
        peer_addrs: &BTreeMap<NodeName, SocketAddr>,
        options: BackendOptions,
    ) -> Result<Self, BackendError> {
        let backend = match kind {
            PartitionBackendKind::Iptables => {
                let rules = IptablesPartitioner::create(peer_addrs.clone()).await?;
                Backend::with_iptables(rules, peer_addrs, options).await?
            }
            PartitionBackendKind::Proxy => Backend::proxy(peer_addrs).await?,
            PartitionBackendKind::Netns => return Err(BackendError::NeedsNamespaces),
            PartitionBackendKind::HostIptables => return Err(BackendError::NeedsHosts),
            PartitionBackendKind::Auto => {
                match IptablesPartitioner::create(peer_addrs.clone()).await {
                    Ok(rules) => Backend::with_iptables(rules, peer_addrs, options).await?,
                    Err(reason) => {
                        tracing::info!(%reason, "iptables unavailable; partitioning with the proxy");
                        Backend::proxy(peer_addrs).await?
                    }
                }
            }
        };
        Ok(PartitionBackend {
            peer_addrs: peer_addrs.clone(),
            backend,
        })
    }

    /// The backend for nodes that run in `network`'s namespaces: links are
    /// cut by rules inside them, nodes dial each other's own addresses, and
    /// nothing can be degraded.
    pub fn in_namespaces(network: Arc<NodeNetwork>) -> Self {
        PartitionBackend {
            peer_addrs: BTreeMap::new(),
            backend: Backend::Namespaces(NamespaceRules::new(network)),
        }
    }

    /// The backend for nodes on hosts of their own, each node's peer traffic coming from
    /// the IP of its address in `addrs`: links are cut by rules on each receiving node's
    /// host, in a chain of Faultline's own, applied through `firewall` (see [`HostRules`]).
    /// With `links`, nodes dial their links' proxies on their own hosts, which degrade them;
    /// without, they dial each other's `addrs` directly, and nothing can be degraded. Runs
    /// no command until links are cut. Fails if an address is not IPv4.
    pub fn on_hosts(
        firewall: Arc<dyn HostFirewall>,
        addrs: BTreeMap<NodeName, SocketAddr>,
        links: Option<Arc<dyn HostLinks>>,
    ) -> Result<Self, BackendError> {
        let ips = addrs
            .iter()
            .map(|(node, addr)| match addr.ip() {
                IpAddr::V4(ip) => Ok((node.clone(), ip)),
                IpAddr::V6(_) => Err(BackendError::NotIpv4 {
                    node: node.clone(),
                    addr: *addr,
                }),
            })
            .collect::<Result<_, _>>()?;
        Ok(PartitionBackend {
            backend: Backend::Hosts {
                rules: HostRules::new(firewall, ips),
                links,
            },
            peer_addrs: addrs,
        })
    }

    /// Which backend cuts links: [`PartitionBackendKind::Iptables`],
    /// [`PartitionBackendKind::Proxy`], [`PartitionBackendKind::Netns`] or
    /// [`PartitionBackendKind::HostIptables`] (for test.json and the summary).
    pub fn kind(&self) -> PartitionBackendKind {
        match self.backend {
            Backend::Iptables { .. } => PartitionBackendKind::Iptables,
            Backend::Proxy(_) => PartitionBackendKind::Proxy,
            Backend::Namespaces(_) => PartitionBackendKind::Netns,
            Backend::Hosts { .. } => PartitionBackendKind::HostIptables,
        }
    }

    /// Whether [`Degrader::degrade`] works: with the proxy backend, with
    /// iptables started with [`BackendOptions::degradation`], or on hosts
    /// with their links' proxies.
    pub fn can_degrade(&self) -> bool {
        self.proxy().is_some() || self.host_links().is_some()
    }

    /// The address node `from` must dial to reach peer `to` (the `@DIAL` of
    /// `--peers to=ADDR@DIAL`): the link's proxy when there is one, else
    /// `to`'s own address (as on hosts). `None` for unknown nodes or
    /// `from == to`, and always in namespaces, where nodes dial each other's
    /// own addresses (whose ports this backend is not told).
    pub fn dial_addr(&self, from: &str, to: &str) -> Option<SocketAddr> {
        if let Backend::Namespaces(_) = self.backend {
            return None;
        }
        if let Some(links) = self.host_links() {
            return links.dial_addr(from, to);
        }
        match self.proxy() {
            Some(proxy) => proxy.dial_addr(from, to),
            None if from != to && self.peer_addrs.contains_key(from) => {
                self.peer_addrs.get(to).copied()
            }
            None => None,
        }
    }

    fn proxy(&self) -> Option<&ProxyNetwork> {
        match &self.backend {
            Backend::Iptables { proxy, .. } => proxy.as_ref(),
            Backend::Proxy(proxy) => Some(proxy),
            Backend::Namespaces(_) | Backend::Hosts { .. } => None,
        }
    }

    fn host_links(&self) -> Option<&Arc<dyn HostLinks>> {
        match &self.backend {
            Backend::Hosts { links, .. } => links.as_ref(),
            _ => None,
        }
    }
}

impl Backend {
    async fn with_iptables(
        rules: IptablesPartitioner,
        peer_addrs: &BTreeMap<NodeName, SocketAddr>,
        options: BackendOptions,
    ) -> Result<Self, BackendError> {
        let proxy = if options.degradation {
            Some(ProxyNetwork::start(peer_addrs, UpstreamSource::SenderIp).await?)
        } else {
            None
        };
        Ok(Backend::Iptables { rules, proxy })
    }

    async fn proxy(peer_addrs: &BTreeMap<NodeName, SocketAddr>) -> Result<Self, BackendError> {
        Ok(Backend::Proxy(
            ProxyNetwork::start(peer_addrs, UpstreamSource::Any).await?,
        ))
    }
}

impl Partitioner for PartitionBackend {
    async fn cut(&self, links: &[Link]) -> Result<(), PartitionError> {
        match &self.backend {
            Backend::Iptables { rules, .. } => rules.cut(links).await,
            Backend::Proxy(proxy) => proxy.cut(links).await,
            Backend::Namespaces(rules) => rules.cut(links).await,
            Backend::Hosts { rules, .. } => rules.cut(links).await,
        }
    }

    /// Flushes the rules and the proxy's degradations, both even if one fails.
    async fn heal(&self) -> Result<(), PartitionError> {
        match &self.backend {
            Backend::Iptables { rules, proxy } => {
                let rules_healed = rules.heal().await;
                let proxy_healed = match proxy {
                    Some(proxy) => proxy.heal().await,
                    None => Ok(()),
                };
                rules_healed.and(proxy_healed)
            }
            Backend::Proxy(proxy) => proxy.heal().await,
            Backend::Namespaces(rules) => rules.heal().await,
            Backend::Hosts { rules, links } => {
                let rules_healed = rules.heal().await;
                let links_healed = match links {
                    Some(links) => (links.heal().await)
                        .map_err(|e| PartitionError::backend("healing the links on the hosts", e)),
                    None => Ok(()),
                };
                rules_healed.and(links_healed)
            }
        }
    }

    /// Removes the rules and stops the proxy, both even if one fails.
    async fn teardown(&self) -> Result<(), PartitionError> {
        match &self.backend {
            Backend::Iptables { rules, proxy } => {
                let rules_removed = rules.teardown().await;
                let proxy_stopped = match proxy {
                    Some(proxy) => proxy.teardown().await,
                    None => Ok(()),
                };
                rules_removed.and(proxy_stopped)
            }
            Backend::Proxy(proxy) => proxy.teardown().await,
            Backend::Namespaces(rules) => rules.teardown().await,
            Backend::Hosts { rules, links } => {
                let rules_removed = rules.teardown().await;
                let links_stopped = match links {
                    Some(links) => (links.teardown().await).map_err(|e| {
                        PartitionError::backend("stopping the links' proxies on the hosts", e)
                    }),
                    None => Ok(()),
                };
                rules_removed.and(links_stopped)
            }
        }
    }
}

impl Degrader for PartitionBackend {
    async fn degrade(&self, links: &[Link], how: &Degradation) -> Result<(), PartitionError> {
        match &self.backend {
            Backend::Namespaces(_) => {
                return Err(PartitionError::backend(
                    "cannot degrade links between network namespaces",
                    NoDegradingInNamespaces,
                ));
            }
            Backend::Hosts { links: None, .. } => {
                return Err(PartitionError::backend(
                    "cannot degrade links between hosts",
                    NoDegradingOnHosts,
                ));
            }
            Backend::Hosts {
                links: Some(host_links),
                ..
            } => {
                how.check()?;
                let unknown = (links.iter())
                    .filter(|link| link.from != link.to)
                    .flat_map(|link| [&link.from, &link.to])
                    .find(|node| !self.peer_addrs.contains_key(*node));
                if let Some(node) = unknown {
                    return Err(PartitionError::UnknownNode(node.clone()));
                }
                return (host_links.degrade(links, how).await)
                    .map_err(|e| PartitionError::backend("degrading links on the hosts", e));
            }
            Backend::Iptables { .. } | Backend::Proxy(_) => {}
        }
        match self.proxy() {
            Some(proxy) => proxy.degrade(links, how).await,
            None => Err(PartitionError::backend(
                "cannot degrade links: no proxy is in the path",
                NoProxyInThePath,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpSocket, TcpStream};
    use tokio::time::timeout;

    use super::*;
    use crate::grudge::Grudge;
    use crate::partition::host_rules::tests::FakeFirewall;
    use crate::partition::iptables::tests::{rules, skip_reason};

    /// Long enough that a hang is a hang; only ever a bound on a failure.
    const PATIENCE: Duration = Duration::from_secs(5);
    const DEGRADABLE: BackendOptions = BackendOptions { degradation: true };

    /// False, saying why, where the iptables tests cannot run.
    fn iptables_works() -> bool {
        match skip_reason() {
            Some(reason) => {
                eprintln!("skipped: {reason}");
                false
            }
            None => true,
        }
    }

    /// An echo server on `ip`, counting the connections it accepts.
    async fn echo_server(ip: IpAddr) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let (mut read, mut write) = conn.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        (addr, accepted)
    }

    /// Nodes n1, n2, ... on these IPs, each an echo server standing in for a
    /// peer port, with its count of accepted connections.
    async fn echo_nodes(ips: &[&str]) -> (BTreeMap<NodeName, SocketAddr>, Vec<Arc<AtomicUsize>>) {
        let mut peers = BTreeMap::new();
        let mut accepted = Vec::new();
        for (i, ip) in ips.iter().enumerate() {
            let (addr, count) = echo_server(ip.parse().unwrap()).await;
            peers.insert(format!("n{}", i + 1), addr);
            accepted.push(count);
        }
        (peers, accepted)
    }

    /// Dials `from`'s way to `to` from `from`'s own IP, as a node does.
    async fn dial(
        backend: &PartitionBackend,
        peers: &BTreeMap<NodeName, SocketAddr>,
        from: &str,
        to: &str,
    ) -> std::io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(peers[from].ip(), 0))?;
        socket.connect(backend.dial_addr(from, to).unwrap()).await
    }

    /// Whether `from` gets an echo back from `to` through the backend.
    async fn reaches(
        backend: &PartitionBackend,
        peers: &BTreeMap<NodeName, SocketAddr>,
        from: &str,
        to: &str,
    ) -> bool {
        let exchange = async {
            let mut conn = dial(backend, peers, from, to).await?;
            conn.write_all(b"hi").await?;
            let mut echoed = [0; 2];
            conn.read_exact(&mut echoed).await?;
            Ok::<_, std::io::Error>(echoed == *b"hi")
        };
        matches!(
            timeout(Duration::from_millis(300), exchange).await,
            Ok(Ok(true))
        )
    }

    /// How long one round trip from `from` to `to` takes.
    async fn round_trip_time(
        backend: &PartitionBackend,
        peers: &BTreeMap<NodeName, SocketAddr>,
        from: &str,
        to: &str,
    ) -> Duration {
        let mut conn = dial(backend, peers, from, to).await.unwrap();
        let sent = Instant::now();
        conn.write_all(b"slow").await.unwrap();
        let mut echoed = [0; 4];
        timeout(PATIENCE, conn.read_exact(&mut echoed))
            .await
            .expect("no echo")
            .unwrap();
        sent.elapsed()
    }

    fn link(from: &str, to: &str) -> Link {
        Link {
            from: from.into(),
            to: to.into(),
        }
    }

    fn slow(latency: Duration) -> Degradation {
        Degradation {
            latency,
            ..Degradation::default()
        }
    }

    /// The rule that drops `from`'s requests to `to`'s port.
    fn request_rule(from: SocketAddr, to: SocketAddr) -> String {
        format!(
            "-s {}/32 -d {}/32 -p tcp -m tcp --dport {} -j DROP",
            from.ip(),
            to.ip(),
            to.port()
        )
    }

    #[tokio::test]
    async fn the_proxy_backend_cuts_exactly_the_links_of_a_grudge() {
        let (peers, _) = echo_nodes(&["127.0.0.1"; 3]).await;
        let backend = PartitionBackend::start(
            PartitionBackendKind::Proxy,
            &peers,
            BackendOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(backend.kind(), PartitionBackendKind::Proxy);
        let nodes: Vec<NodeName> = peers.keys().cloned().collect();
        backend
            .cut(&Grudge::isolate("n1", &nodes).links())
            .await
            .unwrap();
        assert!(!reaches(&backend, &peers, "n1", "n2").await);
        assert!(!reaches(&backend, &peers, "n3", "n1").await);
        assert!(reaches(&backend, &peers, "n2", "n3").await);
        assert!(reaches(&backend, &peers, "n3", "n2").await);
        backend.heal().await.unwrap();
        assert!(reaches(&backend, &peers, "n1", "n2").await);
        backend.teardown().await.unwrap();
    }

    #[tokio::test]
    async fn the_proxy_backend_degrades_without_being_asked_to_prepare() {
        let (peers, _) = echo_nodes(&["127.0.0.1"; 2]).await;
        let backend = PartitionBackend::start(
            PartitionBackendKind::Proxy,
            &peers,
            BackendOptions::default(),
        )
        .await
        .unwrap();
        assert!(backend.can_degrade());
        let latency = Duration::from_millis(200);
        backend
            .degrade(&[link("n1", "n2")], &slow(latency))
            .await
            .unwrap();
        let took = round_trip_time(&backend, &peers, "n1", "n2").await;
        assert!(took >= 2 * latency, "took {took:?}");
        backend.heal().await.unwrap();
        assert!(reaches(&backend, &peers, "n1", "n2").await);
        backend.teardown().await.unwrap();
    }

    #[tokio::test]
    async fn with_iptables_alone_nodes_dial_each_other_directly_and_nothing_degrades() {
        if !iptables_works() {
            return;
        }
        let peers: BTreeMap<NodeName, SocketAddr> =
            [("n1", "127.0.0.217:7001"), ("n2", "127.0.0.218:7001")]
                .into_iter()
                .map(|(node, addr)| (node.to_owned(), addr.parse().unwrap()))
                .collect();
        let backend = PartitionBackend::start(
            PartitionBackendKind::Iptables,
            &peers,
            BackendOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(backend.kind(), PartitionBackendKind::Iptables);
        assert_eq!(backend.dial_addr("n1", "n2"), Some(peers["n2"]));
        assert_eq!(backend.dial_addr("n2", "n2"), None);
        assert_eq!(backend.dial_addr("n9", "n2"), None);
        backend.cut(&[link("n1", "n2")]).await.unwrap();
        assert!(rules().contains(&request_rule(peers["n1"], peers["n2"])));

        assert!(!backend.can_degrade());
        let error = backend
            .degrade(&[link("n1", "n2")], &slow(Duration::from_millis(1)))
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot degrade links: no proxy is in the path"
        );
        backend.teardown().await.unwrap();
        assert!(!rules().contains("127.0.0.217"), "a rule outlived teardown");
    }

    #[tokio::test]
    async fn with_iptables_and_degradation_the_rules_cut_the_proxys_traffic_and_it_degrades() {
        if !iptables_works() {
            return;
        }
        let (peers, _) = echo_nodes(&["127.0.0.221", "127.0.0.222"]).await;
        let backend = PartitionBackend::start(PartitionBackendKind::Iptables, &peers, DEGRADABLE)
            .await
            .unwrap();
        assert_eq!(backend.kind(), PartitionBackendKind::Iptables);
        assert!(backend.can_degrade());
        let proxy = backend.dial_addr("n1", "n2").unwrap();
        assert_eq!(
            proxy.ip(),
            IpAddr::from(Ipv4Addr::LOCALHOST),
            "not the proxy"
        );
        assert!(reaches(&backend, &peers, "n1", "n2").await);

        backend.cut(&[link("n1", "n2")]).await.unwrap();
        assert!(rules().contains(&request_rule(peers["n1"], peers["n2"])));
        assert!(!reaches(&backend, &peers, "n1", "n2").await);
        assert!(reaches(&backend, &peers, "n2", "n1").await);
        backend.heal().await.unwrap();
        assert!(reaches(&backend, &peers, "n1", "n2").await);

        let latency = Duration::from_millis(200);
        backend
            .degrade(&[link("n1", "n2")], &slow(latency))
            .await
            .unwrap();
        let took = round_trip_time(&backend, &peers, "n1", "n2").await;
        assert!(took >= 2 * latency, "took {took:?}");

        backend.teardown().await.unwrap();
        assert!(!rules().contains("127.0.0.221"), "a rule outlived teardown");
        assert!(
            TcpStream::connect(proxy).await.is_err()
                || !reaches(&backend, &peers, "n1", "n2").await,
            "the proxy outlived teardown"
        );
    }

    #[tokio::test]
    async fn a_connection_dialed_through_the_proxy_during_a_cut_goes_through_once_healed() {
        if !iptables_works() {
            return;
        }
        let (peers, accepted) = echo_nodes(&["127.0.0.223", "127.0.0.224"]).await;
        let backend = PartitionBackend::start(PartitionBackendKind::Iptables, &peers, DEGRADABLE)
            .await
            .unwrap();
        backend.cut(&[link("n1", "n2")]).await.unwrap();
        let mut conn = dial(&backend, &peers, "n1", "n2").await.unwrap();
        conn.write_all(b"sent during the cut").await.unwrap();
        let mut echoed = [0; 19];
        assert!(
            timeout(Duration::from_millis(300), conn.read_exact(&mut echoed))
                .await
                .is_err(),
            "an answer came through the cut"
        );
        assert_eq!(accepted[1].load(Ordering::SeqCst), 0);

        backend.heal().await.unwrap();
        // The proxy's connect succeeds at the kernel's next SYN, a second on.
        timeout(PATIENCE, conn.read_exact(&mut echoed))
            .await
            .expect("no echo after healing")
            .unwrap();
        assert_eq!(&echoed, b"sent during the cut");
        backend.teardown().await.unwrap();
    }

    #[tokio::test]
    async fn a_dialer_giving_up_during_a_cut_leaves_no_connection_behind() {
        if !iptables_works() {
            return;
        }
        let (peers, accepted) = echo_nodes(&["127.0.0.225", "127.0.0.226"]).await;
        let backend = PartitionBackend::start(PartitionBackendKind::Iptables, &peers, DEGRADABLE)
            .await
            .unwrap();
        backend.cut(&[link("n1", "n2")]).await.unwrap();
        let mut conn = dial(&backend, &peers, "n1", "n2").await.unwrap();
        conn.write_all(b"never mind").await.unwrap();
        drop(conn);
        tokio::time::sleep(Duration::from_millis(100)).await;
        backend.heal().await.unwrap();
        // Past the kernel's first SYN retry (after 1 s): a proxy still
        // connecting would be through by now.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(
            accepted[1].load(Ordering::SeqCst),
            0,
            "the proxy connected for a dialer that was gone"
        );
        assert!(reaches(&backend, &peers, "n1", "n2").await);
        assert_eq!(accepted[1].load(Ordering::SeqCst), 1);
        backend.teardown().await.unwrap();
    }

    /// Cuts a one-way grudge splitting three echo nodes on `ips` into {n3}
    /// and {n1, n2}, and checks that every node reaches exactly those it
    /// should: n3 reaches everyone and nobody reaches n3.
    async fn only_one_way_flows(kind: PartitionBackendKind, ips: &[&str; 3]) {
        let (peers, _) = echo_nodes(ips).await;
        let backend = PartitionBackend::start(kind, &peers, BackendOptions::default())
            .await
            .unwrap();
        assert_eq!(backend.kind(), kind);
        let order = ["n3", "n1", "n2"].map(NodeName::from);
        backend.cut(&Grudge::one_way(&order).links()).await.unwrap();
        for (from, to, flows) in [
            ("n1", "n3", true),
            ("n2", "n3", true),
            ("n3", "n1", false),
            ("n3", "n2", false),
            ("n1", "n2", true),
            ("n2", "n1", true),
        ] {
            let reached = reaches(&backend, &peers, from, to).await;
            assert_eq!(reached, flows, "{kind}: {from} -> {to}");
        }
        backend.heal().await.unwrap();
        assert!(reaches(&backend, &peers, "n3", "n1").await);
        backend.teardown().await.unwrap();
    }

    #[tokio::test]
    async fn a_one_way_partition_through_the_proxy_lets_traffic_flow_one_way() {
        only_one_way_flows(PartitionBackendKind::Proxy, &["127.0.0.1"; 3]).await;
    }

    #[tokio::test]
    async fn a_one_way_partition_with_iptables_lets_traffic_flow_one_way() {
        if !iptables_works() {
            return;
        }
        let ips = ["127.0.0.227", "127.0.0.228", "127.0.0.229"];
        only_one_way_flows(PartitionBackendKind::Iptables, &ips).await;
        assert!(!rules().contains("127.0.0.227"), "a rule outlived teardown");
    }

    /// Two nodes on hosts of their own.
    fn two_hosts() -> BTreeMap<NodeName, SocketAddr> {
        [("n1", "10.0.0.1:7001"), ("n2", "10.0.0.2:7002")]
            .into_iter()
            .map(|(node, addr)| (node.to_owned(), addr.parse().unwrap()))
            .collect()
    }

    #[tokio::test]
    async fn on_hosts_nodes_dial_directly_links_are_cut_on_the_hosts_and_nothing_degrades() {
        let addrs = two_hosts();
        let firewall = Arc::new(FakeFirewall::default());
        let backend = PartitionBackend::on_hosts(firewall.clone(), addrs.clone(), None).unwrap();
        assert_eq!(backend.kind(), PartitionBackendKind::HostIptables);
        assert_eq!(backend.kind().to_string(), "host-iptables");
        assert_eq!(backend.dial_addr("n1", "n2"), Some(addrs["n2"]));
        assert_eq!(backend.dial_addr("n1", "n1"), None);
        assert_eq!(backend.dial_addr("n3", "n2"), None);
        assert!(!backend.can_degrade());
        let error = backend
            .degrade(&[link("n1", "n2")], &slow(Duration::from_millis(100)))
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "cannot degrade links between hosts");
        let reason = std::error::Error::source(&error).unwrap().to_string();
        assert!(reason.contains("leave out slow and lossy"), "{reason}");
        assert_eq!(firewall.take(), Vec::<String>::new());

        backend.cut(&[link("n1", "n2")]).await.unwrap();
        let commands = firewall.take();
        assert_eq!(commands.len(), 3, "{commands:?}");
        assert!(commands[2].ends_with("-s 10.0.0.1 -j DROP"), "{commands:?}");
        assert!(commands.iter().all(|command| command.starts_with("n2: ")));
        backend.heal().await.unwrap();
        backend.teardown().await.unwrap();
        assert_eq!(
            firewall.take().len(),
            4,
            "flush, then unhook, flush, delete"
        );
    }

    /// [`HostLinks`] that proxy nothing: each link's dial is a made-up port, and each call
    /// is recorded.
    #[derive(Debug, Default)]
    struct FakeLinks {
        calls: std::sync::Mutex<Vec<String>>,
    }

    impl HostLinks for FakeLinks {
        fn dial_addr(&self, from: &str, to: &str) -> Option<SocketAddr> {
            let port = match (from, to) {
                ("n1", "n2") => 40012,
                ("n2", "n1") => 40021,
                _ => return None,
            };
            Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        }

        fn degrade<'a>(
            &'a self,
            links: &'a [Link],
            how: &'a Degradation,
        ) -> futures::future::BoxFuture<'a, Result<(), crate::FirewallError>> {
            let links: Vec<String> = links
                .iter()
                .map(|l| format!("{}>{}", l.from, l.to))
                .collect();
            let call = format!("degrade {} by {:?}", links.join(","), how.latency);
            self.calls.lock().unwrap().push(call);
            Box::pin(async { Ok(()) })
        }

        fn heal(&self) -> futures::future::BoxFuture<'_, Result<(), crate::FirewallError>> {
            self.calls.lock().unwrap().push("heal".to_owned());
            Box::pin(async { Ok(()) })
        }

        fn teardown(&self) -> futures::future::BoxFuture<'_, Result<(), crate::FirewallError>> {
            self.calls.lock().unwrap().push("teardown".to_owned());
            Box::pin(async { Ok(()) })
        }
    }

    #[tokio::test]
    async fn on_hosts_with_links_nodes_dial_their_proxies_which_degrade_while_rules_cut() {
        let addrs = two_hosts();
        let firewall = Arc::new(FakeFirewall::default());
        let links = Arc::new(FakeLinks::default());
        let backend =
            PartitionBackend::on_hosts(firewall.clone(), addrs, Some(links.clone())).unwrap();
        assert!(backend.can_degrade());
        assert_eq!(
            backend.dial_addr("n1", "n2"),
            Some("127.0.0.1:40012".parse().unwrap())
        );
        backend
            .degrade(&[link("n1", "n2")], &slow(Duration::from_millis(100)))
            .await
            .unwrap();
        // Checked before any host is asked: a bad degradation, an unknown node.
        let bad = Degradation {
            drop: 2.0,
            ..Degradation::default()
        };
        assert!(backend.degrade(&[link("n1", "n2")], &bad).await.is_err());
        let unknown = backend
            .degrade(&[link("n1", "n9")], &slow(Duration::from_millis(1)))
            .await
            .unwrap_err();
        assert!(matches!(unknown, PartitionError::UnknownNode(ref node) if node == "n9"));
        assert_eq!(
            firewall.take(),
            Vec::<String>::new(),
            "degrading runs no rule"
        );
        backend.cut(&[link("n1", "n2")]).await.unwrap();
        assert_eq!(firewall.take().len(), 3, "cuts are the rules'");
        backend.heal().await.unwrap();
        backend.teardown().await.unwrap();
        assert_eq!(
            *links.calls.lock().unwrap(),
            ["degrade n1>n2 by 100ms", "heal", "teardown"]
        );
    }

    #[tokio::test]
    async fn on_hosts_refuses_an_ipv6_address_naming_its_node() {
        let addrs = [("n1", "10.0.0.1:7001"), ("n2", "[::1]:7002")]
            .into_iter()
            .map(|(node, addr)| (node.to_owned(), addr.parse().unwrap()))
            .collect();
        let error =
            PartitionBackend::on_hosts(Arc::new(FakeFirewall::default()), addrs, None).unwrap_err();
        assert!(matches!(error, BackendError::NotIpv4 { ref node, .. } if node == "n2"));
        assert!(error.to_string().contains("[::1]:7002"), "{error}");
        let error = PartitionBackend::start(
            PartitionBackendKind::HostIptables,
            &BTreeMap::new(),
            BackendOptions::default(),
        )
        .await
        .unwrap_err();
        assert!(
            error.to_string().contains("use PartitionBackend::on_hosts"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn auto_picks_iptables_exactly_where_it_works() {
        let peers: BTreeMap<NodeName, SocketAddr> = [("n1", "127.0.0.219:7001")]
            .into_iter()
            .map(|(node, addr)| (node.to_owned(), addr.parse().unwrap()))
            .collect();
        for options in [BackendOptions::default(), DEGRADABLE] {
            let backend = PartitionBackend::start(PartitionBackendKind::Auto, &peers, options)
                .await
                .unwrap();
            let expected = match skip_reason() {
                None => PartitionBackendKind::Iptables,
                Some(_) => PartitionBackendKind::Proxy,
            };
            assert_eq!(backend.kind(), expected);
            let degrades = options.degradation || expected == PartitionBackendKind::Proxy;
            assert_eq!(backend.can_degrade(), degrades, "{options:?}");
            backend.teardown().await.unwrap();
        }
    }
}
