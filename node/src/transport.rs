//! Peer RPC over HTTP: `POST /raft` with a postcard-encoded batch of Raft messages.
//!
//! One sender task per peer keeps a keep-alive connection, made from this node's own IP so
//! that a firewall rule on (source, destination) cuts exactly one link, and sends everything
//! queued for that peer in one request. The receiver hands the batch to the Raft loop and
//! answers at once: replies to Raft messages travel as new messages the other way, so a
//! request never waits on Raft, and one request in flight per peer is enough.
//!
//! A request must be answered within a short timeout (a paused or partitioned peer must not
//! hold up its messages), except one that carries a snapshot: that may be large and take
//! long to send, so it gets a timeout of its own.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::post;
use crossbeam_channel::Sender;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tracing::debug;

use crate::driver::Input;
use crate::raft::{Message, MessageBody, NodeId};

/// The peer endpoint's path.
pub const RAFT_PATH: &str = "/raft";
/// Carries the sender's client address, so followers can redirect clients to the leader.
const CLIENT_ADDR_HEADER: &str = "faultline-client-addr";
/// Snapshots travel in one request; allow them to be large.
const MAX_PEER_BODY: usize = 512 << 20;
/// At most this many messages go into one request.
const MAX_BATCH: usize = 4096;

/// The client address of every member this node has heard from (and its own).
#[derive(Debug, Default)]
pub struct PeerDirectory {
    client_addrs: RwLock<HashMap<NodeId, String>>,
}

impl PeerDirectory {
    /// A directory that knows this node's own client address (as clients should use it).
    pub fn new(own: NodeId, client_addr: String) -> PeerDirectory {
        let directory = PeerDirectory::default();
        directory.learn(own, client_addr);
        directory
    }

    /// The client address of `id`, if known.
    pub fn client_addr(&self, id: NodeId) -> Option<String> {
        self.client_addrs
            .read()
            .expect("never poisoned")
            .get(&id)
            .cloned()
    }

    fn learn(&self, id: NodeId, addr: String) {
        let known = self.client_addrs.read().expect("never poisoned").get(&id) == Some(&addr);
        if !known {
            self.client_addrs
                .write()
                .expect("never poisoned")
                .insert(id, addr);
        }
    }
}

#[derive(Clone)]
struct ReceiverState {
    own: NodeId,
    inputs: Sender<Input>,
    directory: Arc<PeerDirectory>,
}

/// The peer-facing HTTP service.
pub fn router(own: NodeId, inputs: Sender<Input>, directory: Arc<PeerDirectory>) -> Router {
    Router::new()
        .route(RAFT_PATH, post(receive))
        .layer(DefaultBodyLimit::max(MAX_PEER_BODY))
        .with_state(ReceiverState {
            own,
            inputs,
            directory,
        })
}

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let messages: Vec<Message> = match postcard::from_bytes(&body) {
        Ok(messages) => messages,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("undecodable Raft messages: {e}"),
            );
        }
    };
    if let Some(wrong) = messages.iter().find(|m| m.to != state.own) {
        let reason = format!(
            "message for node {} delivered to node {}",
            wrong.to, state.own
        );
        return (StatusCode::BAD_REQUEST, reason);
    }
    if let (Some(from), Some(addr)) = (
        messages.first().map(|m| m.from),
        headers.get(CLIENT_ADDR_HEADER),
    ) && let Ok(addr) = addr.to_str()
    {
        state.directory.learn(from, addr.to_string());
    }
    match state.inputs.send(Input::Peer(messages)) {
        Ok(()) => (StatusCode::NO_CONTENT, String::new()),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "node is shutting down".into(),
        ),
    }
}

/// Where and how to reach one peer.
pub struct PeerLink {
    pub id: NodeId,
    /// The address to connect to: the peer itself, or a proxy in front of it.
    pub dial: SocketAddr,
}

/// Starts one sender task per peer and returns their outboxes.
///
/// `local_ip` is the source address of every outgoing connection; `client_addr` is sent
/// along, so peers can redirect clients here. `timeout` bounds each connect and each
/// request (a paused or partitioned peer must not hold messages for longer), except that a
/// request carrying a snapshot may take `snapshot_timeout`.
pub fn spawn_senders(
    links: Vec<PeerLink>,
    local_ip: IpAddr,
    client_addr: HeaderValue,
    timeout: Duration,
    snapshot_timeout: Duration,
    inputs: Sender<Input>,
) -> HashMap<NodeId, mpsc::UnboundedSender<Message>> {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(local_ip));
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(timeout));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    links
        .into_iter()
        .map(|link| {
            let (outbox, queue) = mpsc::unbounded_channel();
            let sender = PeerSender {
                peer: link.id,
                uri: format!("http://{}{RAFT_PATH}", link.dial),
                client: client.clone(),
                client_addr: client_addr.clone(),
                timeout,
                snapshot_timeout,
                inputs: inputs.clone(),
            };
            tokio::spawn(sender.run(queue));
            (link.id, outbox)
        })
        .collect()
}

struct PeerSender {
    peer: NodeId,
    uri: String,
    client: Client<HttpConnector, Full<Bytes>>,
    client_addr: HeaderValue,
    timeout: Duration,
    snapshot_timeout: Duration,
    inputs: Sender<Input>,
}

impl PeerSender {
    async fn run(self, mut queue: mpsc::UnboundedReceiver<Message>) {
        let mut batch = Vec::new();
        while let Some(first) = queue.recv().await {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(message) => batch.push(message),
                    Err(_) => break,
                }
            }
            let timeout = self.timeout_for(&batch);
            let body = postcard::to_stdvec(&batch).expect("Raft messages always encode");
            batch.clear();
            if let Err(reason) = self.post(body, timeout).await {
                debug!(peer = self.peer, "peer unreachable: {reason}");
                // Messages queued meanwhile are stale; Raft resends what matters.
                while queue.try_recv().is_ok() {}
                if self.inputs.send(Input::Unreachable(self.peer)).is_err() {
                    return;
                }
                // Don't spin on a dead peer; heartbeats come every few ticks anyway.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// How long the request carrying `batch` may take.
    fn timeout_for(&self, batch: &[Message]) -> Duration {
        let has_snapshot = batch
            .iter()
            .any(|m| matches!(m.body, MessageBody::InstallSnapshot { .. }));
        if has_snapshot {
            self.snapshot_timeout
        } else {
            self.timeout
        }
    }

    async fn post(&self, body: Vec<u8>, timeout: Duration) -> Result<(), String> {
        let request = Request::post(&self.uri)
            .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
            .header(CLIENT_ADDR_HEADER, self.client_addr.clone())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            // Read the body to the end so the connection can be reused.
            let text = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            if status.is_success() {
                Ok(())
            } else {
                Err(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&text.to_bytes())
                ))
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {timeout:?}"))?
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use crossbeam_channel::Receiver;

    use super::*;
    use crate::raft::{Snapshot, SnapshotMeta};

    const SLOW_PEER: Duration = Duration::from_millis(300);
    const TIMEOUT: Duration = Duration::from_millis(100);

    fn message(body: MessageBody) -> Message {
        Message {
            from: 1,
            to: 2,
            term: 1,
            body,
        }
    }

    /// Whether the sender reports the peer unreachable within `within`.
    async fn reported_unreachable(inputs: &Receiver<Input>, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Input::Unreachable(2)) = inputs.try_recv() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_snapshot_may_take_longer_than_other_messages() {
        // A peer that takes SLOW_PEER to answer, longer than TIMEOUT.
        let (received, mut deliveries) = mpsc::unbounded_channel::<Vec<Message>>();
        let peer = Router::new().route(
            RAFT_PATH,
            post(move |body: Bytes| async move {
                tokio::time::sleep(SLOW_PEER).await;
                let _ = received.send(postcard::from_bytes(&body).unwrap());
                StatusCode::NO_CONTENT
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dial = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, peer).await });

        let (inputs, input_queue) = crossbeam_channel::unbounded();
        let outboxes = spawn_senders(
            vec![PeerLink { id: 2, dial }],
            dial.ip(),
            HeaderValue::from_static("127.0.0.1:1"),
            TIMEOUT,
            Duration::from_secs(10),
            inputs,
        );
        let heartbeat = message(MessageBody::Heartbeat {
            leader_commit: 0,
            read_round: 0,
        });
        outboxes[&2].send(heartbeat).unwrap();
        assert!(
            reported_unreachable(&input_queue, Duration::from_secs(5)).await,
            "a heartbeat outlasting the timeout should report the peer unreachable"
        );

        let snapshot = message(MessageBody::InstallSnapshot {
            snapshot: Snapshot {
                meta: SnapshotMeta { index: 7, term: 1 },
                data: Bytes::from(vec![b'x'; 1 << 20]),
            },
        });
        outboxes[&2].send(snapshot.clone()).unwrap();
        let delivered = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let batch = deliveries.recv().await.expect("the peer is running");
                if batch.contains(&snapshot) {
                    return;
                }
            }
        })
        .await;
        assert!(delivered.is_ok(), "the snapshot never reached the peer");
        assert!(
            !reported_unreachable(&input_queue, SLOW_PEER).await,
            "the snapshot's request should not have timed out"
        );
    }
}
