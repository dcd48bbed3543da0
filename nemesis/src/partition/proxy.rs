//! The proxy partition backend: a TCP proxy per directed peer link, in the
//! harness's tokio runtime. It needs no privileges.
//!
//! For each ordered pair of nodes (`from`, `to`) it listens on an ephemeral
//! port of 127.0.0.1 and forwards to `to`'s peer address; the harness tells
//! `from` to dial that port to reach `to`. Cutting the link closes its live
//! connections at once and black-holes new ones (accepted, read and
//! discarded, never forwarded: the dialer sees a hang, as with dropped
//! packets) until it is healed, which closes the black-holed connections so
//! their dialers reconnect. Optionally every forwarded chunk is delayed.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::{PartitionError, Partitioner};
use crate::cluster::NodeName;
use crate::grudge::Link;

/// How long the accept loop backs off after a failed accept (e.g. out of
/// file descriptors), so it does not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Bytes read at once; with latency, each such chunk is delayed.
const CHUNK: usize = 16 * 1024;

/// The proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No loopback port could be bound for a link.
    #[error("cannot listen on 127.0.0.1 for the proxy of link {from} -> {to}: {source}")]
    Bind {
        /// The link's sender.
        from: NodeName,
        /// The link's receiver.
        to: NodeName,
        /// Why binding failed.
        #[source]
        source: io::Error,
    },
}

/// What a link does with its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    Cut,
    Shutdown,
}

/// A link's mode and how many times it changed. Every connection serves in
/// the mode it was accepted in and ends at the next change, so a cut closes
/// forwarded connections and a heal closes black-holed ones, however
/// quickly changes follow each other.
#[derive(Debug, Clone, Copy)]
struct LinkState {
    mode: Mode,
    epoch: u64,
}

#[derive(Debug)]
struct LinkProxy {
    listen_addr: SocketAddr,
    state: watch::Sender<LinkState>,
}

impl LinkProxy {
    /// Switches to `mode`, unless already there or shut down (waking the
    /// connections only on a real change, which ends them).
    fn set_mode(&self, mode: Mode) {
        self.state.send_if_modified(|state| {
            if state.mode == mode || state.mode == Mode::Shutdown {
                return false;
            }
            state.mode = mode;
            state.epoch += 1;
            true
        });
    }
}

/// A TCP proxy for every directed link between the given nodes.
///
/// Dropping it stops every listener and closes every connection, like
/// [`Partitioner::teardown`].
#[derive(Debug)]
pub struct ProxyNetwork {
    links: BTreeMap<Link, LinkProxy>,
}

impl ProxyNetwork {
    /// Starts one proxy per ordered pair of distinct nodes in `peer_addrs`,
    /// forwarding to the receiver's peer address and delaying each forwarded
    /// chunk by `latency` (zero for none). Must run inside a tokio runtime.
    pub async fn start(
        peer_addrs: &BTreeMap<NodeName, SocketAddr>,
        latency: Duration,
    ) -> Result<Self, ProxyError> {
        let mut links = BTreeMap::new();
        for from in peer_addrs.keys() {
            for (to, &target) in peer_addrs.iter().filter(|(to, _)| *to != from) {
                let bind_error = |source| ProxyError::Bind {
                    from: from.clone(),
                    to: to.clone(),
                    source,
                };
                let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .await
                    .map_err(bind_error)?;
                let listen_addr = listener.local_addr().map_err(bind_error)?;
                let (state, observer) = watch::channel(LinkState {
                    mode: Mode::Forward,
                    epoch: 0,
                });
                tokio::spawn(accept_loop(listener, target, observer, latency));
                let link = Link {
                    from: from.clone(),
                    to: to.clone(),
                };
                links.insert(link, LinkProxy { listen_addr, state });
            }
        }
        Ok(ProxyNetwork { links })
    }

    /// The proxy address `from` must dial to reach `to`; `None` for unknown
    /// nodes or `from == to`.
    pub fn dial_addr(&self, from: &str, to: &str) -> Option<SocketAddr> {
        let link = Link {
            from: from.to_owned(),
            to: to.to_owned(),
        };
        self.links.get(&link).map(|proxy| proxy.listen_addr)
    }

    fn set_all(&self, mode: Mode) {
        for proxy in self.links.values() {
            proxy.set_mode(mode);
        }
    }
}

impl Partitioner for ProxyNetwork {
    async fn cut(&self, links: &[Link]) -> Result<(), PartitionError> {
        let proxies = links
            .iter()
            .filter(|link| link.from != link.to)
            .map(|link| {
                self.links.get(link).ok_or_else(|| {
                    let known = |node: &str| self.links.keys().any(|known| known.from == node);
                    let unknown = if known(&link.from) {
                        &link.to
                    } else {
                        &link.from
                    };
                    PartitionError::UnknownNode(unknown.clone())
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for proxy in proxies {
            proxy.set_mode(Mode::Cut);
        }
        Ok(())
    }

    async fn heal(&self) -> Result<(), PartitionError> {
        self.set_all(Mode::Forward);
        Ok(())
    }

    async fn teardown(&self) -> Result<(), PartitionError> {
        self.set_all(Mode::Shutdown);
        Ok(())
    }
}

/// Accepts connections on one link until it shuts down (or the
/// [`ProxyNetwork`] is dropped, which closes the watch channel).
async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    state: watch::Receiver<LinkState>,
    latency: Duration,
) {
    let mut shutdown = state.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((conn, _)) => {
                    tokio::spawn(serve(conn, target, state.clone(), latency));
                }
                Err(error) => {
                    tracing::warn!(%error, %target, "proxy accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            },
            () = until(&mut shutdown, |state| state.mode == Mode::Shutdown) => return,
        }
    }
}

/// Serves one accepted connection in the link's current mode, until the
/// mode changes; dropping the sockets then closes both ends.
async fn serve(
    conn: TcpStream,
    target: SocketAddr,
    mut state: watch::Receiver<LinkState>,
    latency: Duration,
) {
    let accepted_in = *state.borrow_and_update();
    let work = async {
        match accepted_in.mode {
            Mode::Forward => forward(conn, target, latency).await,
            Mode::Cut => discard(conn).await,
            Mode::Shutdown => Ok(()),
        }
    };
    tokio::select! {
        // Errors here are the connection's own (a peer reset it): nothing to report.
        _ = work => {}
        () = until(&mut state, |state| state.epoch != accepted_in.epoch) => {}
    }
}

/// Waits until the link's state satisfies `condition`, or the
/// [`ProxyNetwork`] is gone.
async fn until(state: &mut watch::Receiver<LinkState>, condition: impl FnMut(&LinkState) -> bool) {
    // An error means the sender was dropped with the network: stop too.
    let _ = state.wait_for(condition).await;
}

async fn forward(conn: TcpStream, target: SocketAddr, latency: Duration) -> io::Result<()> {
    let upstream = TcpStream::connect(target).await?;
    let (conn_read, conn_write) = conn.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    tokio::try_join!(
        pump(conn_read, upstream_write, latency),
        pump(upstream_read, conn_write, latency),
    )?;
    Ok(())
}

/// Copies one direction chunk by chunk, each after `latency`, and passes
/// end-of-stream on as a half-close.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    latency: Duration,
) -> io::Result<()> {
    let mut buf = vec![0; CHUNK];
    loop {
        let read = from.read(&mut buf).await?;
        if read == 0 {
            return to.shutdown().await;
        }
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        to.write_all(&buf[..read]).await?;
    }
}

/// Reads and drops everything, answering nothing.
async fn discard(mut conn: TcpStream) -> io::Result<()> {
    let mut buf = vec![0; CHUNK];
    while conn.read(&mut buf).await? > 0 {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use tokio::time::timeout;

    use super::*;

    /// Long enough that a hang is a hang; only ever a bound on a failure.
    const PATIENCE: Duration = Duration::from_secs(5);
    /// How long to watch for bytes that must not arrive.
    const SILENCE: Duration = Duration::from_millis(300);

    /// An echo server on loopback, counting the connections it accepts.
    async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
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

    /// A proxy network for n1 (whose address nobody dials here) and n2, an echo server.
    async fn network(latency: Duration) -> (ProxyNetwork, Arc<AtomicUsize>) {
        let (echo, accepted) = echo_server().await;
        let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let peers = BTreeMap::from([("n1".to_owned(), unused), ("n2".to_owned(), echo)]);
        (
            ProxyNetwork::start(&peers, latency).await.unwrap(),
            accepted,
        )
    }

    fn link(from: &str, to: &str) -> Link {
        Link {
            from: from.into(),
            to: to.into(),
        }
    }

    async fn dial(network: &ProxyNetwork) -> TcpStream {
        let addr = network.dial_addr("n1", "n2").unwrap();
        TcpStream::connect(addr).await.unwrap()
    }

    /// Sends `message` and returns what comes back, within [`PATIENCE`];
    /// reads while writing, so a message larger than the socket buffers
    /// cannot deadlock.
    async fn round_trip(conn: &mut TcpStream, message: &[u8]) -> io::Result<Vec<u8>> {
        let (mut read, mut write) = conn.split();
        let mut echoed = vec![0; message.len()];
        let exchange =
            async { tokio::try_join!(write.write_all(message), read.read_exact(&mut echoed)) };
        timeout(PATIENCE, exchange)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no echo"))??;
        Ok(echoed)
    }

    /// True when the peer closed or reset the connection within [`PATIENCE`].
    async fn is_closed(conn: &mut TcpStream) -> bool {
        let mut buf = [0; 64];
        match timeout(PATIENCE, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) | Err(_) => false,
        }
    }

    /// True when nothing arrives for [`SILENCE`] and the connection stays open.
    async fn hangs(conn: &mut TcpStream) -> bool {
        let mut buf = [0; 64];
        timeout(SILENCE, conn.read(&mut buf)).await.is_err()
    }

    #[tokio::test]
    async fn bytes_flow_both_ways_through_a_link() {
        let (network, _) = network(Duration::ZERO).await;
        let mut conn = dial(&network).await;
        assert_eq!(round_trip(&mut conn, b"ping").await.unwrap(), b"ping");
        let big: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        assert_eq!(round_trip(&mut conn, &big).await.unwrap(), big);
    }

    #[tokio::test]
    async fn every_ordered_pair_has_its_own_proxy() {
        let (network, _) = network(Duration::ZERO).await;
        let there = network.dial_addr("n1", "n2").unwrap();
        let back = network.dial_addr("n2", "n1").unwrap();
        assert_ne!(there, back);
        assert_eq!(network.dial_addr("n1", "n1"), None);
        assert_eq!(network.dial_addr("n1", "n9"), None);
    }

    #[tokio::test]
    async fn a_cut_closes_live_connections_and_new_ones_hang_until_healed() {
        let (network, accepted) = network(Duration::ZERO).await;
        let mut live = dial(&network).await;
        round_trip(&mut live, b"before").await.unwrap();

        network.cut(&[link("n1", "n2")]).await.unwrap();
        assert!(
            is_closed(&mut live).await,
            "a live connection survived the cut"
        );

        let mut during = dial(&network).await;
        during.write_all(b"lost").await.unwrap();
        assert!(
            hangs(&mut during).await,
            "a connection through a cut link answered"
        );
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "a cut link forwarded a connection"
        );

        network.heal().await.unwrap();
        assert!(
            is_closed(&mut during).await,
            "healing keeps a black-holed connection"
        );
        let mut after = dial(&network).await;
        assert_eq!(round_trip(&mut after, b"after").await.unwrap(), b"after");
    }

    #[tokio::test]
    async fn a_cut_is_one_way() {
        let (network, _) = network(Duration::ZERO).await;
        network.cut(&[link("n2", "n1")]).await.unwrap();
        let mut conn = dial(&network).await;
        assert_eq!(round_trip(&mut conn, b"still").await.unwrap(), b"still");
    }

    #[tokio::test]
    async fn cutting_an_unknown_node_changes_nothing() {
        let (network, _) = network(Duration::ZERO).await;
        let error = network
            .cut(&[link("n1", "n2"), link("n1", "n7")])
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "no peer address is known for node `n7`");
        let mut conn = dial(&network).await;
        assert_eq!(round_trip(&mut conn, b"up").await.unwrap(), b"up");
    }

    #[tokio::test]
    async fn latency_delays_each_direction_by_at_least_the_delay() {
        let latency = Duration::from_millis(200);
        let (network, _) = network(latency).await;
        let mut conn = dial(&network).await;
        let sent = Instant::now();
        round_trip(&mut conn, b"slow").await.unwrap();
        assert!(sent.elapsed() >= 2 * latency, "took {:?}", sent.elapsed());
    }

    #[tokio::test]
    async fn teardown_closes_connections_and_stops_listening() {
        let (network, _) = network(Duration::ZERO).await;
        let addr = network.dial_addr("n1", "n2").unwrap();
        let mut live = dial(&network).await;
        round_trip(&mut live, b"hi").await.unwrap();
        network.teardown().await.unwrap();
        assert!(is_closed(&mut live).await);
        // The listener closes once its task sees the shutdown; give it a bounded while.
        let refused = timeout(PATIENCE, async {
            while TcpStream::connect(addr).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(refused.is_ok(), "the proxy still accepts after teardown");
    }
}
