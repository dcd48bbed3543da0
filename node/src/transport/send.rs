//! The sending side: one task per peer that batches what is queued for it into requests.
//!
//! Each request carries this node's cluster id, name and peer token in headers (so the peer
//! can refuse a stranger before reading the body), and the cluster id and sender again in the
//! body's [`wire::Envelope`]. A batch stays within the peer's bound on ordinary bodies; a snapshot,
//! or a message too large for any batch, goes alone to the large path, in [`super::chunk`]s.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode};
use crossbeam_channel::Sender;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::AUTHORIZATION;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::chunk::{CHUNK_HEADER, Chunk};
use super::wire::{self, BatchBuilder};
use super::{CLIENT_ADDR_HEADER, LARGE_PATH, RAFT_PATH};
use crate::cluster_id::ClusterId;
use crate::driver::Input;
use crate::peer_auth::{CLUSTER_ID_HEADER, FROM_HEADER, PeerToken};
use crate::raft::{Message, NodeId};

/// At most this many messages go into one request.
const MAX_BATCH: usize = 4096;

/// Where and how to reach one peer.
pub struct PeerLink {
    pub id: NodeId,
    /// The address to connect to: the peer itself, or a proxy in front of it.
    pub dial: SocketAddr,
}

/// How this node sends to its peers.
#[derive(Clone, Debug)]
pub struct SenderSettings {
    /// The source address of every outgoing connection.
    pub local_ip: IpAddr,
    /// This node's client address, sent along so that peers can redirect clients here.
    pub client_addr: HeaderValue,
    pub cluster_id: ClusterId,
    /// This node's Raft id and name.
    pub own: NodeId,
    pub own_name: String,
    pub token: Option<PeerToken>,
    /// Bounds each connect and each ordinary request: a paused or partitioned peer must not
    /// hold messages for longer.
    pub timeout: Duration,
    /// Bounds a large request (a snapshot).
    pub large_timeout: Duration,
    /// The peers' bound on ordinary bodies ([`wire::message_body_limit`]).
    pub message_limit: usize,
}

/// Starts one sender task per peer and returns their outboxes.
pub fn spawn_senders(
    links: Vec<PeerLink>,
    settings: SenderSettings,
    inputs: Sender<Input>,
) -> HashMap<NodeId, mpsc::UnboundedSender<Message>> {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(settings.local_ip));
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(settings.timeout));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let builder = BatchBuilder::new(settings.cluster_id.as_str(), settings.own);
    links
        .into_iter()
        .map(|link| {
            let (outbox, queue) = mpsc::unbounded_channel();
            let sender = PeerSender {
                peer: link.id,
                dial: link.dial,
                client: client.clone(),
                builder: builder.clone(),
                settings: settings.clone(),
                inputs: inputs.clone(),
                refused: None,
            };
            tokio::spawn(sender.run(queue));
            (link.id, outbox)
        })
        .collect()
}

struct PeerSender {
    peer: NodeId,
    dial: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    builder: BatchBuilder,
    settings: SenderSettings,
    inputs: Sender<Input>,
    /// The status of the last refusal logged, so that a peer refusing every request (a
    /// wrong token or cluster id) is reported once, not at every heartbeat.
    refused: Option<StatusCode>,
}

/// A message encoded for a body, and whether it must travel alone.
struct Encoded {
    bytes: Vec<u8>,
    alone: bool,
}

impl PeerSender {
    async fn run(mut self, mut queue: mpsc::UnboundedReceiver<Message>) {
        // A message taken from the queue that did not fit into the previous request.
        let mut carried: Option<Encoded> = None;
        loop {
            let first = match carried.take() {
                Some(encoded) => encoded,
                None => match queue.recv().await {
                    Some(message) => self.encode(&message),
                    None => return,
                },
            };
            let large = first.alone;
            let mut batch = vec![first.bytes];
            let mut size = batch[0].len();
            while !large && batch.len() < MAX_BATCH {
                let Ok(message) = queue.try_recv() else {
                    break;
                };
                let encoded = self.encode(&message);
                if encoded.alone
                    || size + encoded.bytes.len() > wire::batch_budget(self.settings.message_limit)
                {
                    carried = Some(encoded);
                    break;
                }
                size += encoded.bytes.len();
                batch.push(encoded.bytes);
            }
            let body = self.builder.body(&batch);
            drop(batch);
            if let Err(reason) = self.post(body, large).await {
                debug!(peer = self.peer, "peer unreachable: {reason}");
                // Messages queued meanwhile are stale; Raft resends what matters.
                carried = None;
                while queue.try_recv().is_ok() {}
                if self.inputs.send(Input::Unreachable(self.peer)).is_err() {
                    return;
                }
                // Don't spin on a dead peer; heartbeats come every few ticks anyway.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    fn encode(&self, message: &Message) -> Encoded {
        let bytes = BatchBuilder::encode_message(message);
        let alone = wire::travels_alone(message, bytes.len(), self.settings.message_limit);
        Encoded { bytes, alone }
    }

    /// Sends one request: an ordinary batch in one POST, a large one in chunks.
    async fn post(&mut self, body: Vec<u8>, large: bool) -> Result<(), String> {
        let body = Bytes::from(body);
        if !large {
            return self
                .post_part(RAFT_PATH, body, None, self.settings.timeout)
                .await;
        }
        let transfer = rand::random();
        for (chunk, range) in Chunk::split(transfer, body.len()) {
            let part = body.slice(range);
            self.post_part(LARGE_PATH, part, Some(chunk), self.settings.large_timeout)
                .await?;
        }
        Ok(())
    }

    /// POSTs `body` to `path`, within `timeout`; a chunk of a large request names itself.
    async fn post_part(
        &mut self,
        path: &str,
        body: Bytes,
        chunk: Option<Chunk>,
        timeout: Duration,
    ) -> Result<(), String> {
        let mut request = Request::post(format!("http://{}{path}", self.dial))
            .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
            .header(CLIENT_ADDR_HEADER, self.settings.client_addr.clone())
            .header(CLUSTER_ID_HEADER, self.settings.cluster_id.as_str())
            .header(FROM_HEADER, self.settings.own_name.as_str());
        if let Some(token) = &self.settings.token {
            request = request.header(AUTHORIZATION, token.header_value());
        }
        if let Some(chunk) = chunk {
            request = request.header(CHUNK_HEADER, chunk.header_value());
        }
        let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
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
            Ok::<_, String>((status, text.to_bytes()))
        };
        let (status, text) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {timeout:?}"))??;
        if status.is_success() {
            self.refused = None;
            return Ok(());
        }
        let reason = format!("{status}: {}", String::from_utf8_lossy(&text));
        if status.is_client_error() && self.refused != Some(status) {
            self.refused = Some(status);
            warn!(
                peer = self.peer,
                "the peer refuses this node's requests: {reason} (logged again only when the answer changes)"
            );
        }
        Err(reason)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use crossbeam_channel::Receiver;

    use axum::Router;
    use axum::routing::post;

    use super::*;
    use crate::raft::{MessageBody, Snapshot, SnapshotMeta};

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
        let slow = move |body: Bytes| async move {
            tokio::time::sleep(SLOW_PEER).await;
            let _ = received.send(wire::decode(&body).unwrap().messages);
            StatusCode::NO_CONTENT
        };
        let peer = Router::new()
            .route(RAFT_PATH, post(slow.clone()))
            .route(LARGE_PATH, post(slow));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dial = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, peer).await });

        let (inputs, input_queue) = crossbeam_channel::unbounded();
        let settings = SenderSettings {
            local_ip: dial.ip(),
            client_addr: HeaderValue::from_static("127.0.0.1:1"),
            cluster_id: ClusterId::new("c").unwrap(),
            own: 1,
            own_name: "n1".into(),
            token: None,
            timeout: TIMEOUT,
            large_timeout: Duration::from_secs(10),
            message_limit: wire::message_body_limit(1 << 20),
        };
        let outboxes = spawn_senders(vec![PeerLink { id: 2, dial }], settings, inputs);
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
                membership: None,
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
