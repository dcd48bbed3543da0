//! The proxy backend: a TCP proxy per directed peer link, in the harness's
//! tokio runtime. It needs no privileges, and it is also where degradation
//! happens: the proxy's delays, jitter and drops (this kernel has no netem).
//!
//! For each ordered pair of nodes (`from`, `to`) it listens on an ephemeral
//! port of 127.0.0.1 and forwards to `to`'s peer address; the harness tells
//! `from` to dial that port to reach `to`.
//!
//! Cutting the link closes its live connections at once and black-holes new
//! ones (accepted, read and discarded, never forwarded: the dialer sees a
//! hang, as with dropped packets) until it is healed, which closes the
//! black-holed connections so their dialers reconnect.
//!
//! Degrading the link ([`Degrader::degrade`]) changes how its connections
//! forward, live ones included: each chunk read is delivered after the
//! latency plus a draw of jitter, but never before an earlier chunk of the
//! same direction, so a stream keeps its order; with the drop probability, a
//! chunk resets the connection on both sides instead, losing what it had in
//! flight. Each direction of each connection draws from its own generator,
//! seeded by the degradation's seed, the link and the connection's number on
//! it, so the draws do not depend on how connections interleave. Healing
//! returns to plain forwarding without closing anything.
//!
//! Behind the iptables backend the proxy connects to `to` from `from`'s own
//! peer IP ([`UpstreamSource::SenderIp`]), so that the rules on (source,
//! destination) still see, and cut, each link.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Degradation, Degrader, PartitionError, Partitioner};
use crate::cluster::NodeName;
use crate::grudge::Link;

/// How long the accept loop backs off after a failed accept (e.g. out of
/// file descriptors), so it does not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Bytes read at once; each such chunk is delayed, or dropped, as one.
const CHUNK: usize = 16 * 1024;

/// Chunks one direction of a connection holds in flight. When they are all
/// waiting out a delay, the proxy stops reading and TCP slows the sender.
const IN_FLIGHT: usize = 64;

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
    /// [`ProxyNetwork::start_from`] was given a sender that is none of the nodes.
    #[error("no node {0} to proxy the links of")]
    UnknownSender(NodeName),
    /// A node's peer IP cannot be the source of the proxy's connections
    /// ([`UpstreamSource::SenderIp`]), usually because it is not local.
    #[error("the proxy cannot connect from {ip}, node {node}'s peer IP, on its behalf: {source}")]
    SourceAddress {
        /// The node.
        node: NodeName,
        /// Its peer IP.
        ip: IpAddr,
        /// Why binding to it failed.
        #[source]
        source: io::Error,
    },
}

/// Where the proxy's connections to a link's receiver come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UpstreamSource {
    /// Wherever the kernel picks (127.0.0.1 on loopback): enough when the
    /// proxy alone cuts links.
    #[default]
    Any,
    /// The sender's own peer IP, as if it had connected directly, so that
    /// iptables rules on (source, destination) cut the link through the proxy.
    SenderIp,
}

/// A link's state. Every connection serves in the mode it was accepted in
/// (cut or forwarding) and ends at the next change of `epoch`, so a cut
/// closes forwarded connections and a heal closes black-holed ones, however
/// quickly changes follow each other. A degradation changes no epoch: live
/// connections pick it up with their next chunk.
#[derive(Debug, Clone, Copy, Default)]
struct LinkState {
    cut: bool,
    shut_down: bool,
    /// How forwarded chunks fare; `None` forwards them as they come.
    degradation: Option<Degradation>,
    epoch: u64,
}

#[derive(Debug)]
struct LinkProxy {
    listen_addr: SocketAddr,
    state: watch::Sender<LinkState>,
}

impl LinkProxy {
    // Each change wakes the link's connections only when it changes
    // something, and nothing changes once shut down.

    fn cut(&self) {
        self.state.send_if_modified(|state| {
            if state.cut || state.shut_down {
                return false;
            }
            state.cut = true;
            state.epoch += 1;
            true
        });
    }

    fn degrade(&self, how: Degradation) {
        self.state.send_if_modified(|state| {
            if state.degradation == Some(how) || state.shut_down {
                return false;
            }
            state.degradation = Some(how);
            true
        });
    }

    fn heal(&self) {
        self.state.send_if_modified(|state| {
            if state.shut_down {
                return false;
            }
            let was_degraded = state.degradation.take().is_some();
            if !state.cut {
                return was_degraded;
            }
            state.cut = false;
            state.epoch += 1;
            true
        });
    }

    fn shut_down(&self) {
        self.state.send_if_modified(|state| {
            if state.shut_down {
                return false;
            }
            state.shut_down = true;
            state.epoch += 1;
            true
        });
    }
}

/// Where one link's connections go, and the link's number among all links
/// (part of each connection's seed).
#[derive(Debug, Clone, Copy)]
struct Route {
    target: SocketAddr,
    source: Option<IpAddr>,
    link_number: u64,
}

impl Route {
    async fn connect(&self) -> io::Result<TcpStream> {
        let socket = new_socket(self.target.ip())?;
        if let Some(source) = self.source {
            socket.bind(SocketAddr::new(source, 0))?;
        }
        socket.connect(self.target).await
    }
}

fn new_socket(ip: IpAddr) -> io::Result<TcpSocket> {
    match ip {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
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
    /// forwarding to the receiver's peer address from `source`. Must run
    /// inside a tokio runtime.
    pub async fn start(
        peer_addrs: &BTreeMap<NodeName, SocketAddr>,
        source: UpstreamSource,
    ) -> Result<Self, ProxyError> {
        Self::start_links(peer_addrs, source, None).await
    }

    /// Starts the proxies of the links from `sender` only (to every other node in
    /// `peer_addrs`): the part of the network that runs on `sender`'s own host, when each
    /// node has one. Each link is numbered as in the whole network, so that two hosts'
    /// links draw apart.
    pub async fn start_from(
        sender: &str,
        peer_addrs: &BTreeMap<NodeName, SocketAddr>,
    ) -> Result<Self, ProxyError> {
        if !peer_addrs.contains_key(sender) {
            return Err(ProxyError::UnknownSender(sender.to_string()));
        }
        Self::start_links(peer_addrs, UpstreamSource::Any, Some(sender)).await
    }

    async fn start_links(
        peer_addrs: &BTreeMap<NodeName, SocketAddr>,
        source: UpstreamSource,
        sender: Option<&str>,
    ) -> Result<Self, ProxyError> {
        if source == UpstreamSource::SenderIp {
            for (node, addr) in peer_addrs {
                // Binding fails here, clearly, rather than on every connection.
                new_socket(addr.ip())
                    .and_then(|socket| socket.bind(SocketAddr::new(addr.ip(), 0)))
                    .map_err(|source| ProxyError::SourceAddress {
                        node: node.clone(),
                        ip: addr.ip(),
                        source,
                    })?;
            }
        }
        let mut links = BTreeMap::new();
        let mut next_number = 0;
        for (from, from_addr) in peer_addrs {
            for (to, &target) in peer_addrs.iter().filter(|(to, _)| *to != from) {
                let link_number = next_number;
                next_number += 1;
                if sender.is_some_and(|sender| sender != from) {
                    continue;
                }
                let bind_error = |source| ProxyError::Bind {
                    from: from.clone(),
                    to: to.clone(),
                    source,
                };
                let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .await
                    .map_err(bind_error)?;
                let listen_addr = listener.local_addr().map_err(bind_error)?;
                let (state, observer) = watch::channel(LinkState::default());
                let route = Route {
                    target,
                    source: match source {
                        UpstreamSource::Any => None,
                        UpstreamSource::SenderIp => Some(from_addr.ip()),
                    },
                    link_number,
                };
                tokio::spawn(accept_loop(listener, route, observer));
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

    /// The proxies of these links (self-links left out), or the first
    /// unknown node.
    fn proxies(&self, links: &[Link]) -> Result<Vec<&LinkProxy>, PartitionError> {
        links
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
            .collect()
    }
}

impl Partitioner for ProxyNetwork {
    async fn cut(&self, links: &[Link]) -> Result<(), PartitionError> {
        for proxy in self.proxies(links)? {
            proxy.cut();
        }
        Ok(())
    }

    async fn heal(&self) -> Result<(), PartitionError> {
        for proxy in self.links.values() {
            proxy.heal();
        }
        Ok(())
    }

    async fn teardown(&self) -> Result<(), PartitionError> {
        for proxy in self.links.values() {
            proxy.shut_down();
        }
        Ok(())
    }
}

impl Degrader for ProxyNetwork {
    async fn degrade(&self, links: &[Link], how: &Degradation) -> Result<(), PartitionError> {
        how.check()?;
        for proxy in self.proxies(links)? {
            proxy.degrade(*how);
        }
        Ok(())
    }
}

/// Accepts connections on one link until it shuts down (or the
/// [`ProxyNetwork`] is dropped, which closes the watch channel), numbering
/// them in the order they come.
async fn accept_loop(listener: TcpListener, route: Route, state: watch::Receiver<LinkState>) {
    let mut shutdown = state.clone();
    let mut accepted: u64 = 0;
    loop {
        tokio::select! {
            conn = listener.accept() => match conn {
                Ok((conn, _)) => {
                    tokio::spawn(serve(conn, route, accepted, state.clone()));
                    accepted += 1;
                }
                Err(error) => {
                    tracing::warn!(%error, target = %route.target, "proxy accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            },
            () = until(&mut shutdown, |state| state.shut_down) => return,
        }
    }
}

/// Serves one accepted connection in the link's current mode, until the
/// epoch changes; dropping the sockets then closes both ends.
async fn serve(conn: TcpStream, route: Route, number: u64, mut state: watch::Receiver<LinkState>) {
    let accepted_in = *state.borrow_and_update();
    let degradation = state.clone();
    let work = async {
        if accepted_in.shut_down {
            return;
        }
        if accepted_in.cut {
            // An error is the dialer's own (it reset the connection): nothing to report.
            let _ = discard(conn).await;
        } else {
            forward(conn, route, number, &degradation).await;
        }
    };
    tokio::select! {
        () = work => {}
        () = until(&mut state, |state| state.epoch != accepted_in.epoch) => {}
    }
}

/// Waits until the link's state satisfies `condition`, or the
/// [`ProxyNetwork`] is gone.
async fn until(state: &mut watch::Receiver<LinkState>, condition: impl FnMut(&LinkState) -> bool) {
    // An error means the sender was dropped with the network: stop too.
    let _ = state.wait_for(condition).await;
}

/// Connects to the link's receiver and forwards both ways, as the link's
/// degradation says. Failures are the connections' own (the receiver is
/// down, a peer reset): the dialer sees its connection close, as it would
/// without the proxy.
async fn forward(
    mut conn: TcpStream,
    route: Route,
    number: u64,
    state: &watch::Receiver<LinkState>,
) {
    // The proxy forwards each chunk as soon as it may: Nagle must not hold it back.
    let _ = conn.set_nodelay(true);
    let mut early = Vec::new();
    let mut upstream = tokio::select! {
        connected = route.connect() => match connected {
            Ok(upstream) => upstream,
            Err(_) => return,
        },
        () = hold(&mut conn, &mut early) => return,
    };
    let _ = upstream.set_nodelay(true);
    let shaper = |direction| Shaper::new(route.link_number, number, direction);
    let forwarded = {
        let (conn_read, conn_write) = conn.split();
        let (upstream_read, upstream_write) = upstream.split();
        tokio::try_join!(
            pump(
                conn_read,
                upstream_write,
                early,
                shaper(Direction::Request),
                state
            ),
            pump(
                upstream_read,
                conn_write,
                Vec::new(),
                shaper(Direction::Answer),
                state
            ),
        )
    };
    if let Err(Stopped::Dropped) = forwarded {
        // A zero linger makes the close a reset: both sides lose what was in flight.
        let _ = conn.set_zero_linger();
        let _ = upstream.set_zero_linger();
    }
}

/// Keeps the first bytes the dialer sends while the receiver has not
/// accepted yet (a cut by iptables drops the SYNs, and the kernel retries
/// for minutes), up to a chunk; returns when the dialer closes or resets
/// its connection, so that the proxy gives up on it rather than hold both
/// sockets as long. A dialer that half-closes this early counts as gone.
async fn hold(conn: &mut TcpStream, early: &mut Vec<u8>) {
    let mut buf = vec![0; CHUNK];
    loop {
        let room = CHUNK - early.len();
        if room == 0 {
            // Full: stop reading, and TCP holds the rest with the dialer.
            return std::future::pending().await;
        }
        match conn.read(&mut buf[..room]).await {
            Ok(0) | Err(_) => return,
            Ok(read) => early.extend_from_slice(&buf[..read]),
        }
    }
}

/// Why one direction of a forwarded connection stopped before its end.
#[derive(Debug)]
enum Stopped {
    /// A drop draw: the connection must be reset.
    Dropped,
    /// A socket failed (its peer reset it, or vanished).
    Failed,
}

impl From<io::Error> for Stopped {
    fn from(_: io::Error) -> Self {
        Stopped::Failed
    }
}

/// Forwards one direction, `early` bytes first, and passes end-of-stream on
/// as a half-close. Reading and writing run apart, joined by a queue of
/// chunks in flight, so that each chunk waits out its own delay and not
/// also those of the chunks before it; the writer takes them in the order
/// read, so a chunk due sooner than the one before it waits for it, and
/// jitter never reorders a stream.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    early: Vec<u8>,
    mut shaper: Shaper,
    state: &watch::Receiver<LinkState>,
) -> Result<(), Stopped> {
    let (in_flight, mut arriving) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let read = async move {
        let mut buf = vec![0; CHUNK];
        let mut chunk = early;
        loop {
            if chunk.is_empty() {
                let read = from.read(&mut buf).await?;
                if read == 0 {
                    // Dropping `in_flight` tells the writer the stream ended.
                    return Ok(());
                }
                chunk = buf[..read].to_vec();
            }
            let degradation = state.borrow().degradation;
            let due = match shaper.fate(degradation.as_ref(), Instant::now()) {
                Fate::Drop => return Err(Stopped::Dropped),
                Fate::DeliverAt(due) => due,
            };
            if in_flight
                .send((due, std::mem::take(&mut chunk)))
                .await
                .is_err()
            {
                // The writer failed, and says so to the join.
                return Ok(());
            }
        }
    };
    let write = async {
        while let Some((due, chunk)) = arriving.recv().await {
            // The timer fires on its next tick even for a past instant: a
            // millisecond an undelayed chunk must not wait.
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            to.write_all(&chunk).await?;
        }
        to.shutdown().await?;
        Ok(())
    };
    tokio::try_join!(read, write)?;
    Ok(())
}

/// Reads and drops everything, answering nothing.
async fn discard(mut conn: TcpStream) -> io::Result<()> {
    let mut buf = vec![0; CHUNK];
    while conn.read(&mut buf).await? > 0 {}
    Ok(())
}

/// Which way a chunk goes on a connection.
#[derive(Debug, Clone, Copy)]
enum Direction {
    /// From the dialer to the receiver.
    Request,
    /// Back from the receiver.
    Answer,
}

/// What becomes of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Delivered at this instant.
    DeliverAt(Instant),
    /// Lost, with its connection.
    Drop,
}

/// Decides the fate of each chunk of one direction of one connection.
#[derive(Debug)]
struct Shaper {
    /// The link's number, the connection's number on it, the direction:
    /// with the degradation's seed, the seed of this shaper's draws.
    stream: [u64; 3],
    /// The degradation in force and the generator drawing for it, made
    /// afresh when the degradation changes.
    draws: Option<(Degradation, ChaCha8Rng)>,
}

impl Shaper {
    fn new(link_number: u64, connection: u64, direction: Direction) -> Self {
        Shaper {
            stream: [link_number, connection, direction as u64],
            draws: None,
        }
    }

    /// The fate of a chunk read at `now`, with the link degraded as
    /// `degradation` says (checked by [`Degradation::check`]).
    fn fate(&mut self, degradation: Option<&Degradation>, now: Instant) -> Fate {
        let delay = match degradation {
            None => Duration::ZERO,
            Some(how) => {
                let rng = self.generator(how);
                if how.drop > 0.0 && rng.random_bool(how.drop) {
                    return Fate::Drop;
                }
                let max_jitter = u64::try_from(how.jitter.as_nanos()).unwrap_or(u64::MAX);
                how.latency + Duration::from_nanos(rng.random_range(0..=max_jitter))
            }
        };
        Fate::DeliverAt(now + delay)
    }

    fn generator(&mut self, how: &Degradation) -> &mut ChaCha8Rng {
        let draws = match self.draws.take() {
            Some((current, rng)) if current == *how => (current, rng),
            _ => {
                let words = [how.seed, self.stream[0], self.stream[1], self.stream[2]];
                let mut seed = [0; 32];
                for (bytes, word) in seed.chunks_exact_mut(8).zip(words) {
                    bytes.copy_from_slice(&word.to_le_bytes());
                }
                (*how, ChaCha8Rng::from_seed(seed))
            }
        };
        &mut self.draws.insert(draws).1
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};
    use std::time::Instant as WallClock;

    use tokio::time::timeout;

    use super::*;

    /// Long enough that a hang is a hang; only ever a bound on a failure.
    const PATIENCE: Duration = Duration::from_secs(5);
    /// How long to watch for bytes that must not arrive.
    const SILENCE: Duration = Duration::from_millis(300);

    /// What an echo server saw: the source address of each connection it
    /// accepted, in order.
    type Accepted = Arc<Mutex<Vec<SocketAddr>>>;

    /// An echo server on `ip`, recording the connections it accepts.
    async fn echo_server_on(ip: IpAddr) -> (SocketAddr, Accepted) {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Accepted::default();
        let record = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, from)) = listener.accept().await {
                record.lock().unwrap().push(from);
                tokio::spawn(async move {
                    let (mut read, mut write) = conn.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        (addr, accepted)
    }

    /// A proxy network for n1 (whose address nobody dials here) and n2, an
    /// echo server.
    async fn network() -> (ProxyNetwork, Accepted) {
        let (echo, accepted) = echo_server_on(Ipv4Addr::LOCALHOST.into()).await;
        let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let peers = BTreeMap::from([("n1".to_owned(), unused), ("n2".to_owned(), echo)]);
        let network = ProxyNetwork::start(&peers, UpstreamSource::Any)
            .await
            .unwrap();
        (network, accepted)
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

    /// True when a message sent on `conn` gets it reset (not closed, not
    /// answered) within [`PATIENCE`].
    async fn is_reset_after_sending(conn: &mut TcpStream) -> bool {
        conn.write_all(b"lost").await.unwrap();
        let mut buf = [0; 64];
        match timeout(PATIENCE, conn.read(&mut buf)).await {
            Ok(Err(error)) => error.kind() == io::ErrorKind::ConnectionReset,
            Ok(Ok(_)) | Err(_) => false,
        }
    }

    /// True when nothing arrives for [`SILENCE`] and the connection stays open.
    async fn hangs(conn: &mut TcpStream) -> bool {
        let mut buf = [0; 64];
        timeout(SILENCE, conn.read(&mut buf)).await.is_err()
    }

    fn slow(latency: Duration) -> Degradation {
        Degradation {
            latency,
            ..Degradation::default()
        }
    }

    fn lossy(drop: f64, seed: u64) -> Degradation {
        Degradation {
            drop,
            seed,
            ..Degradation::default()
        }
    }

    #[tokio::test]
    async fn bytes_flow_both_ways_through_a_link() {
        let (network, _) = network().await;
        let mut conn = dial(&network).await;
        assert_eq!(round_trip(&mut conn, b"ping").await.unwrap(), b"ping");
        let big: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        assert_eq!(round_trip(&mut conn, &big).await.unwrap(), big);
    }

    #[tokio::test]
    async fn every_ordered_pair_has_its_own_proxy() {
        let (network, _) = network().await;
        let there = network.dial_addr("n1", "n2").unwrap();
        let back = network.dial_addr("n2", "n1").unwrap();
        assert_ne!(there, back);
        assert_eq!(network.dial_addr("n1", "n1"), None);
        assert_eq!(network.dial_addr("n1", "n9"), None);
    }

    #[tokio::test]
    async fn a_senders_proxies_carry_its_links_only() {
        let (echo, _) = echo_server_on(Ipv4Addr::LOCALHOST.into()).await;
        let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let peers = BTreeMap::from([
            ("n1".to_owned(), unused),
            ("n2".to_owned(), echo),
            ("n3".to_owned(), unused),
        ]);
        let network = ProxyNetwork::start_from("n1", &peers).await.unwrap();
        assert!(network.dial_addr("n1", "n3").is_some());
        assert_eq!(network.dial_addr("n2", "n1"), None);
        assert_eq!(network.dial_addr("n3", "n2"), None);
        let mut conn = dial(&network).await;
        assert_eq!(round_trip(&mut conn, b"ping").await.unwrap(), b"ping");
        // Degrading another sender's link is an unknown node's, here.
        let error = network
            .degrade(&[link("n2", "n3")], &Degradation::default())
            .await
            .unwrap_err();
        assert!(matches!(error, PartitionError::UnknownNode(ref node) if node == "n2"));
        let error = ProxyNetwork::start_from("n9", &peers).await.unwrap_err();
        assert_eq!(error.to_string(), "no node n9 to proxy the links of");
    }

    #[tokio::test]
    async fn a_cut_closes_live_connections_and_new_ones_hang_until_healed() {
        let (network, accepted) = network().await;
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
            accepted.lock().unwrap().len(),
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
        let (network, _) = network().await;
        network.cut(&[link("n2", "n1")]).await.unwrap();
        let mut conn = dial(&network).await;
        assert_eq!(round_trip(&mut conn, b"still").await.unwrap(), b"still");
    }

    #[tokio::test]
    async fn cutting_or_degrading_an_unknown_node_changes_nothing() {
        let (network, _) = network().await;
        let links = [link("n1", "n2"), link("n1", "n7")];
        let error = network.cut(&links).await.unwrap_err();
        assert_eq!(error.to_string(), "no peer address is known for node `n7`");
        let error = network.degrade(&links, &lossy(1.0, 0)).await.unwrap_err();
        assert_eq!(error.to_string(), "no peer address is known for node `n7`");
        let mut conn = dial(&network).await;
        assert_eq!(round_trip(&mut conn, b"up").await.unwrap(), b"up");
    }

    #[tokio::test]
    async fn latency_delays_each_direction_by_at_least_the_delay() {
        let latency = Duration::from_millis(200);
        let (network, _) = network().await;
        network
            .degrade(&[link("n1", "n2")], &slow(latency))
            .await
            .unwrap();
        let mut conn = dial(&network).await;
        let sent = WallClock::now();
        round_trip(&mut conn, b"slow").await.unwrap();
        assert!(sent.elapsed() >= 2 * latency, "took {:?}", sent.elapsed());
    }

    #[tokio::test]
    async fn degrading_slows_live_connections_and_healing_keeps_them_open() {
        let latency = Duration::from_millis(200);
        let (network, accepted) = network().await;
        let mut live = dial(&network).await;
        round_trip(&mut live, b"plain").await.unwrap();

        network
            .degrade(&[link("n1", "n2")], &slow(latency))
            .await
            .unwrap();
        let sent = WallClock::now();
        assert_eq!(round_trip(&mut live, b"slow").await.unwrap(), b"slow");
        assert!(sent.elapsed() >= 2 * latency, "took {:?}", sent.elapsed());

        network.heal().await.unwrap();
        assert_eq!(round_trip(&mut live, b"again").await.unwrap(), b"again");
        assert_eq!(
            accepted.lock().unwrap().len(),
            1,
            "the connection was replaced"
        );
    }

    #[tokio::test]
    async fn jitter_never_reorders_the_bytes_of_a_connection() {
        let (network, _) = network().await;
        let jittery = Degradation {
            latency: Duration::from_millis(1),
            jitter: Duration::from_millis(30),
            seed: 3,
            ..Degradation::default()
        };
        network
            .degrade(&[link("n1", "n2")], &jittery)
            .await
            .unwrap();
        let conn = dial(&network).await;
        let (mut read, mut write) = conn.into_split();
        let messages: Vec<[u8; 4]> = (0..100u32).map(u32::to_be_bytes).collect();
        let sent = messages.concat();
        let writer = tokio::spawn(async move {
            for message in messages {
                write.write_all(&message).await.unwrap();
                // Apart, so that the proxy reads most as chunks of their own.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            write
        });
        let mut echoed = vec![0; sent.len()];
        timeout(PATIENCE, read.read_exact(&mut echoed))
            .await
            .expect("no echo")
            .unwrap();
        drop(writer.await.unwrap());
        assert_eq!(echoed, sent);
    }

    #[tokio::test]
    async fn dropping_every_chunk_resets_connections_until_healed() {
        let (network, _) = network().await;
        let mut live = dial(&network).await;
        round_trip(&mut live, b"plain").await.unwrap();
        network
            .degrade(&[link("n1", "n2")], &lossy(1.0, 0))
            .await
            .unwrap();
        assert!(is_reset_after_sending(&mut live).await);
        let mut new = dial(&network).await;
        assert!(is_reset_after_sending(&mut new).await);

        network.heal().await.unwrap();
        let mut after = dial(&network).await;
        assert_eq!(round_trip(&mut after, b"back").await.unwrap(), b"back");
    }

    /// Which of `count` connections, one after another, fail their one
    /// round trip on a link dropping with probability `drop`.
    async fn failed_round_trips(drop: f64, seed: u64, count: usize) -> BTreeSet<usize> {
        let (network, _) = network().await;
        network
            .degrade(&[link("n1", "n2")], &lossy(drop, seed))
            .await
            .unwrap();
        let mut failed = BTreeSet::new();
        for i in 0..count {
            let mut conn = dial(&network).await;
            if round_trip(&mut conn, b"ping").await.is_err() {
                failed.insert(i);
            }
        }
        failed
    }

    #[tokio::test]
    async fn a_partial_drop_kills_some_connections_the_same_ones_for_the_same_seed() {
        let failed = failed_round_trips(0.3, 11, 20).await;
        // Each survives two draws (request and answer): about half die.
        assert!(
            !failed.is_empty() && failed.len() < 20,
            "{} of 20 failed",
            failed.len()
        );
        assert_eq!(failed_round_trips(0.3, 11, 20).await, failed);
        assert_ne!(failed_round_trips(0.3, 12, 20).await, failed);
    }

    #[tokio::test]
    async fn an_invalid_degradation_is_refused_and_changes_nothing() {
        let (network, _) = network().await;
        let error = network
            .degrade(&[link("n1", "n2")], &lossy(1.5, 0))
            .await
            .unwrap_err();
        assert!(matches!(error, PartitionError::InvalidDegradation(_)));
        let mut conn = dial(&network).await;
        assert_eq!(round_trip(&mut conn, b"up").await.unwrap(), b"up");
    }

    #[tokio::test]
    async fn degrading_a_cut_link_keeps_it_cut() {
        let (network, _) = network().await;
        network.cut(&[link("n1", "n2")]).await.unwrap();
        network
            .degrade(&[link("n1", "n2")], &slow(Duration::from_millis(1)))
            .await
            .unwrap();
        let mut conn = dial(&network).await;
        conn.write_all(b"lost").await.unwrap();
        assert!(hangs(&mut conn).await, "degrading lifted the cut");
    }

    #[tokio::test]
    async fn connections_come_from_the_senders_ip_when_asked() {
        let sender: IpAddr = "127.0.0.231".parse().unwrap();
        let (echo, accepted) = echo_server_on("127.0.0.232".parse().unwrap()).await;
        let peers = BTreeMap::from([
            ("n1".to_owned(), SocketAddr::new(sender, 9)),
            ("n2".to_owned(), echo),
        ]);
        for (source, expected) in [
            (UpstreamSource::SenderIp, sender),
            (UpstreamSource::Any, Ipv4Addr::LOCALHOST.into()),
        ] {
            let network = ProxyNetwork::start(&peers, source).await.unwrap();
            let mut conn = dial(&network).await;
            round_trip(&mut conn, b"who").await.unwrap();
            let from = accepted.lock().unwrap().pop().unwrap();
            assert_eq!(from.ip(), expected, "{source:?}");
        }
    }

    #[tokio::test]
    async fn a_sender_ip_that_is_not_local_is_refused_at_start() {
        // 192.0.2.0/24 is reserved for documentation: never local.
        let peers = BTreeMap::from([
            ("n1".to_owned(), "192.0.2.1:7001".parse().unwrap()),
            ("n2".to_owned(), "127.0.0.1:9".parse().unwrap()),
        ]);
        let error = ProxyNetwork::start(&peers, UpstreamSource::SenderIp)
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("the proxy cannot connect from 192.0.2.1, node n1's peer IP"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn teardown_closes_connections_and_stops_listening() {
        let (network, _) = network().await;
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

    fn shaper() -> Shaper {
        Shaper::new(0, 0, Direction::Request)
    }

    /// The delays a shaper gives `count` chunks read one second apart
    /// (far enough apart that order never holds one back).
    fn delays(how: &Degradation, count: usize) -> Vec<Option<Duration>> {
        let mut shaper = shaper();
        let start = Instant::now();
        (0..count)
            .map(|i| {
                let now = start + Duration::from_secs(i as u64);
                match shaper.fate(Some(how), now) {
                    Fate::DeliverAt(due) => Some(due - now),
                    Fate::Drop => None,
                }
            })
            .collect()
    }

    #[test]
    fn jitter_draws_within_bounds_and_replays_with_its_seed() {
        let how = Degradation {
            latency: Duration::from_millis(100),
            jitter: Duration::from_millis(50),
            seed: 1,
            ..Degradation::default()
        };
        let drawn = delays(&how, 200);
        for delay in &drawn {
            let delay = delay.expect("nothing drops");
            assert!(how.latency <= delay && delay <= how.latency + how.jitter);
        }
        let distinct: BTreeSet<_> = drawn.iter().collect();
        assert!(distinct.len() > 100, "jitter barely varies: {distinct:?}");
        assert_eq!(delays(&how, 200), drawn);
        assert_ne!(delays(&Degradation { seed: 2, ..how }, 200), drawn);
    }

    #[test]
    fn drops_follow_the_probability() {
        let count = |drop| {
            delays(&lossy(drop, 5), 1000)
                .iter()
                .filter(|delay| delay.is_none())
                .count()
        };
        assert_eq!(count(0.0), 0);
        assert_eq!(count(1.0), 1000);
        let some = count(0.3);
        assert!((200..400).contains(&some), "{some} of 1000 dropped");
    }

    #[test]
    fn each_connection_and_direction_draws_apart() {
        let how = Degradation {
            jitter: Duration::from_secs(1),
            seed: 9,
            ..Degradation::default()
        };
        let now = Instant::now();
        let first_delays = |link, connection, direction| {
            let mut shaper = Shaper::new(link, connection, direction);
            (0..10)
                .map(|_| shaper.fate(Some(&how), now))
                .collect::<Vec<_>>()
        };
        let base = first_delays(0, 0, Direction::Request);
        assert_eq!(first_delays(0, 0, Direction::Request), base);
        assert_ne!(first_delays(1, 0, Direction::Request), base);
        assert_ne!(first_delays(0, 1, Direction::Request), base);
        assert_ne!(first_delays(0, 0, Direction::Answer), base);
    }

    #[test]
    fn without_degradation_chunks_are_due_at_once() {
        let now = Instant::now();
        assert_eq!(shaper().fate(None, now), Fate::DeliverAt(now));
    }
}
