//! [`PartitionBackend`], the partition backend a run picks with
//! `--partition-backend auto|iptables|proxy`, and what it dials through.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::iptables::{IptablesError, IptablesPartitioner};
use super::proxy::{ProxyError, ProxyNetwork};
use super::{PartitionError, Partitioner};
use crate::cluster::NodeName;
use crate::grudge::Link;
use crate::kind::PartitionBackendKind;

/// Could not set up the partition backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// `--partition-backend iptables`, and iptables does not work here.
    #[error(transparent)]
    Iptables(#[from] IptablesError),
    /// The proxy could not listen.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
}

/// The partition backend of a run: iptables rules or a proxy per link.
#[derive(Debug)]
pub struct PartitionBackend {
    peer_addrs: BTreeMap<NodeName, SocketAddr>,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Iptables(IptablesPartitioner),
    Proxy(ProxyNetwork),
}

impl PartitionBackend {
    /// Sets up the backend for nodes listening for peers at `peer_addrs`
    /// (each node's address is also the one it connects from).
    ///
    /// `Auto` tries iptables and falls back to the proxy, logging why.
    /// `proxy_latency` is the delay the proxy adds to every forwarded chunk
    /// (zero for none); the iptables backend adds no latency.
    pub async fn start(
        kind: PartitionBackendKind,
        peer_addrs: &BTreeMap<NodeName, SocketAddr>,
        proxy_latency: Duration,
    ) -> Result<Self, BackendError> {
        let backend = match kind {
            PartitionBackendKind::Iptables => {
                Backend::Iptables(IptablesPartitioner::create(peer_addrs.clone()).await?)
            }
            PartitionBackendKind::Proxy => {
                Backend::Proxy(ProxyNetwork::start(peer_addrs, proxy_latency).await?)
            }
            PartitionBackendKind::Auto => {
                match IptablesPartitioner::create(peer_addrs.clone()).await {
                    Ok(iptables) => Backend::Iptables(iptables),
                    Err(reason) => {
                        tracing::info!(%reason, "iptables unavailable; partitioning with the proxy");
                        Backend::Proxy(ProxyNetwork::start(peer_addrs, proxy_latency).await?)
                    }
                }
            }
        };
        Ok(PartitionBackend {
            peer_addrs: peer_addrs.clone(),
            backend,
        })
    }

    /// Which backend this is: [`PartitionBackendKind::Iptables`] or
    /// [`PartitionBackendKind::Proxy`] (for test.json and the summary).
    pub fn kind(&self) -> PartitionBackendKind {
        match self.backend {
            Backend::Iptables(_) => PartitionBackendKind::Iptables,
            Backend::Proxy(_) => PartitionBackendKind::Proxy,
        }
    }

    /// The address node `from` must dial to reach peer `to` (the `@DIAL` of
    /// `--peers to=ADDR@DIAL`): `to`'s own address with iptables, the link's
    /// proxy with the proxy. `None` for unknown nodes or `from == to`.
    pub fn dial_addr(&self, from: &str, to: &str) -> Option<SocketAddr> {
        match &self.backend {
            Backend::Iptables(_) if from != to && self.peer_addrs.contains_key(from) => {
                self.peer_addrs.get(to).copied()
            }
            Backend::Iptables(_) => None,
            Backend::Proxy(proxy) => proxy.dial_addr(from, to),
        }
    }
}

impl Partitioner for PartitionBackend {
    async fn cut(&self, links: &[Link]) -> Result<(), PartitionError> {
        match &self.backend {
            Backend::Iptables(iptables) => iptables.cut(links).await,
            Backend::Proxy(proxy) => proxy.cut(links).await,
        }
    }

    async fn heal(&self) -> Result<(), PartitionError> {
        match &self.backend {
            Backend::Iptables(iptables) => iptables.heal().await,
            Backend::Proxy(proxy) => proxy.heal().await,
        }
    }

    async fn teardown(&self) -> Result<(), PartitionError> {
        match &self.backend {
            Backend::Iptables(iptables) => iptables.teardown().await,
            Backend::Proxy(proxy) => proxy.teardown().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::timeout;

    use super::*;
    use crate::grudge::Grudge;
    use crate::partition::iptables::tests::{rules, skip_reason};

    /// Nodes n1..=n3, each an echo server on loopback standing in for a peer port.
    async fn echo_nodes() -> BTreeMap<NodeName, SocketAddr> {
        let mut peers = BTreeMap::new();
        for i in 1..=3 {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            peers.insert(format!("n{i}"), listener.local_addr().unwrap());
            tokio::spawn(async move {
                while let Ok((mut conn, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let (mut read, mut write) = conn.split();
                        let _ = tokio::io::copy(&mut read, &mut write).await;
                    });
                }
            });
        }
        peers
    }

    /// Whether `from` gets an echo back from `to` through the backend.
    async fn reaches(backend: &PartitionBackend, from: &str, to: &str) -> bool {
        let addr = backend.dial_addr(from, to).unwrap();
        let exchange = async {
            let mut conn = TcpStream::connect(addr).await?;
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

    #[tokio::test]
    async fn the_proxy_backend_cuts_exactly_the_links_of_a_grudge() {
        let peers = echo_nodes().await;
        let backend = PartitionBackend::start(PartitionBackendKind::Proxy, &peers, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(backend.kind(), PartitionBackendKind::Proxy);
        let nodes: Vec<NodeName> = peers.keys().cloned().collect();
        backend
            .cut(&Grudge::isolate("n1", &nodes).links())
            .await
            .unwrap();
        assert!(!reaches(&backend, "n1", "n2").await);
        assert!(!reaches(&backend, "n3", "n1").await);
        assert!(reaches(&backend, "n2", "n3").await);
        assert!(reaches(&backend, "n3", "n2").await);
        backend.heal().await.unwrap();
        assert!(reaches(&backend, "n1", "n2").await);
        backend.teardown().await.unwrap();
    }

    #[tokio::test]
    async fn with_iptables_nodes_dial_each_other_directly() {
        if let Some(reason) = skip_reason() {
            eprintln!("skipped: {reason}");
            return;
        }
        let peers: BTreeMap<NodeName, SocketAddr> =
            [("n1", "127.0.0.217:7001"), ("n2", "127.0.0.218:7001")]
                .into_iter()
                .map(|(node, addr)| (node.to_owned(), addr.parse().unwrap()))
                .collect();
        let backend =
            PartitionBackend::start(PartitionBackendKind::Iptables, &peers, Duration::ZERO)
                .await
                .unwrap();
        assert_eq!(backend.kind(), PartitionBackendKind::Iptables);
        assert_eq!(backend.dial_addr("n1", "n2"), Some(peers["n2"]));
        assert_eq!(backend.dial_addr("n2", "n2"), None);
        assert_eq!(backend.dial_addr("n9", "n2"), None);
        let link = Link {
            from: "n1".into(),
            to: "n2".into(),
        };
        backend.cut(&[link]).await.unwrap();
        assert!(
            rules()
                .contains("-s 127.0.0.217/32 -d 127.0.0.218/32 -p tcp -m tcp --dport 7001 -j DROP")
        );
        backend.teardown().await.unwrap();
        assert!(!rules().contains("127.0.0.217"), "a rule outlived teardown");
    }

    #[tokio::test]
    async fn auto_picks_iptables_exactly_where_it_works() {
        let peers: BTreeMap<NodeName, SocketAddr> = [("n1", "127.0.0.219:7001")]
            .into_iter()
            .map(|(node, addr)| (node.to_owned(), addr.parse().unwrap()))
            .collect();
        let backend = PartitionBackend::start(PartitionBackendKind::Auto, &peers, Duration::ZERO)
            .await
            .unwrap();
        let expected = match skip_reason() {
            None => PartitionBackendKind::Iptables,
            Some(_) => PartitionBackendKind::Proxy,
        };
        assert_eq!(backend.kind(), expected);
        backend.teardown().await.unwrap();
    }
}
