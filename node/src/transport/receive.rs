//! The peer endpoint: checks a request ([`PeerGate`]), reads its body within its kind's bound
//! and hands the messages to the Raft loop.
//!
//! Memory: an ordinary batch is read into memory, at most [`PERMITS_PER_SENDER`] at a time per
//! member (a sender has one request in flight, and one more while a timed-out one is still
//! being torn down); a large request comes in [`super::chunk`]s, each appended to a spool file
//! as it arrives, one chunk at a time, and is read back only once its last chunk is in and it
//! is within its bound. Requests waiting for their turn hold no body. So whatever strangers or
//! members send, the bodies in memory stay below (members - 1) x 2 x the batch bound, plus one
//! large request while it is decoded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header::CONTENT_LENGTH};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use crossbeam_channel::Sender;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, Semaphore};
use tracing::error;

use super::chunk::{CHUNK_BYTES, CHUNK_HEADER, Chunk};
use super::wire::{self, Envelope};
use super::{CLIENT_ADDR_HEADER, LARGE_PATH, PeerDirectory, RAFT_PATH};
use crate::driver::Input;
use crate::peer_auth::{PeerGate, Refusal};
use crate::raft::NodeId;

/// How many ordinary batches of one sender may be read at once.
const PERMITS_PER_SENDER: usize = 2;
/// The file in the data dir that a large request is spooled to while it arrives.
pub const SPOOL_FILE: &str = "peer-request.spool";
/// How much of a large request is buffered before it is written to the spool file.
const SPOOL_BUFFER: usize = 1 << 20;

/// What the peer endpoint needs.
pub struct ReceiverSettings {
    pub own: NodeId,
    /// How many members the cluster has (Raft ids are `1..=members`).
    pub members: usize,
    pub gate: Arc<PeerGate>,
    pub inputs: Sender<Input>,
    pub directory: Arc<PeerDirectory>,
    /// The bound of an ordinary batch's body ([`wire::message_body_limit`]).
    pub message_limit: usize,
    /// The bound of a large request's body (a snapshot's).
    pub large_limit: usize,
    /// Where large requests are spooled (the data dir).
    pub spool_dir: PathBuf,
}

struct Receiver {
    settings: ReceiverSettings,
    /// Per sender (index: Raft id - 1), the ordinary batches that may be read at once.
    permits: Vec<Semaphore>,
    /// The large request being spooled, if any; locked while a chunk is taken, so one chunk
    /// is read at a time.
    spooling: Mutex<Option<Spooling>>,
}

/// A large request whose chunks are arriving.
struct Spooling {
    sender: NodeId,
    transfer: u64,
    total: u64,
    /// How many of its bytes are in the spool file.
    received: u64,
}

/// Why a request was not taken: the sender's fault, or this node's.
enum Failure {
    Refused(Refusal),
    Local(StatusCode, String),
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Failure {
        Failure::Refused(refusal)
    }
}

/// The peer-facing HTTP service. Its requests must carry `ConnectInfo<SocketAddr>` (the
/// server adds it), which names the source of refusals in the log.
pub fn router(settings: ReceiverSettings) -> Router {
    // A spool file left by a crash is garbage.
    let _ = std::fs::remove_file(settings.spool_dir.join(SPOOL_FILE));
    let receiver = Arc::new(Receiver {
        permits: (0..settings.members)
            .map(|_| Semaphore::new(PERMITS_PER_SENDER))
            .collect(),
        spooling: Mutex::new(None),
        settings,
    });
    Router::new()
        .route(RAFT_PATH, post(receive_batch))
        .route(LARGE_PATH, post(receive_large))
        .with_state(receiver)
}

async fn receive_batch(
    State(receiver): State<Arc<Receiver>>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    receiver.receive(source, request, false).await
}

async fn receive_large(
    State(receiver): State<Arc<Receiver>>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    receiver.receive(source, request, true).await
}

impl Receiver {
    async fn receive(&self, source: SocketAddr, request: Request, large: bool) -> Response {
        let (parts, body) = request.into_parts();
        match self.take(&parts.headers, body, large).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(Failure::Refused(refusal)) => {
                self.settings
                    .gate
                    .record(source.ip(), &parts.headers, &refusal);
                (refusal.status(), refusal.to_string()).into_response()
            }
            Err(Failure::Local(status, reason)) => (status, reason).into_response(),
        }
    }

    /// Checks, reads and decodes a request, and hands its messages to the Raft loop (for a
    /// chunk of a large request, once its last chunk is in).
    async fn take(&self, headers: &HeaderMap, body: Body, large: bool) -> Result<(), Failure> {
        let gate = &self.settings.gate;
        let sender = gate.check_headers(headers)?;
        let limit = if large {
            CHUNK_BYTES
        } else {
            self.settings.message_limit
        };
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(Refusal::TooLarge(limit).into());
        }
        let envelope = if large {
            match self.take_chunk(sender, headers, body).await? {
                Some(envelope) => envelope,
                None => return Ok(()),
            }
        } else {
            // check_headers returned a member's id, so the index is in range.
            let permits = &self.permits[(sender - 1) as usize];
            let _turn = permits.acquire().await.expect("never closed");
            let bytes = read_limited(body, limit).await?;
            wire::decode(&bytes).map_err(Refusal::from)?
        };
        gate.check_envelope(sender, &envelope)?;
        // Learned only now: a refused request must change nothing.
        if let Some(addr) = headers
            .get(CLIENT_ADDR_HEADER)
            .and_then(|addr| addr.to_str().ok())
        {
            self.settings.directory.learn(sender, addr.to_string());
        }
        self.settings
            .inputs
            .send(Input::Peer(envelope.messages))
            .map_err(|_| {
                Failure::Local(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "node is shutting down".into(),
                )
            })
    }

    /// Appends a chunk of a large request to the spool file: the request, decoded, once its
    /// last chunk is in; `None` before. A first chunk starts a new request (dropping any
    /// unfinished one); any other must be the next of the request under way, from its sender.
    async fn take_chunk(
        &self,
        sender: NodeId,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Option<Envelope>, Failure> {
        let chunk = Chunk::from_headers(headers).ok_or(Refusal::MissingHeader(CHUNK_HEADER))?;
        let limit = self.settings.large_limit;
        if chunk.total > limit as u64 {
            return Err(Refusal::TooLarge(limit).into());
        }
        let path = self.settings.spool_dir.join(SPOOL_FILE);
        let mut spooling = self.spooling.lock().await;
        let first = chunk.offset == 0;
        if first {
            *spooling = Some(Spooling {
                sender,
                transfer: chunk.transfer,
                total: chunk.total,
                received: 0,
            });
        }
        let expected = spooling.as_ref().is_some_and(|under_way| {
            under_way.sender == sender
                && under_way.transfer == chunk.transfer
                && under_way.total == chunk.total
                && under_way.received == chunk.offset
        });
        if !expected {
            return Err(Failure::Local(
                StatusCode::CONFLICT,
                "not the next chunk of the large request under way".into(),
            ));
        }
        let room = (chunk.total - chunk.offset).min(CHUNK_BYTES as u64) as usize;
        let received = match append(body, room, &path, first).await {
            Ok(length) => length as u64,
            Err(failure) => {
                *spooling = None;
                let _ = tokio::fs::remove_file(&path).await;
                return Err(failure);
            }
        };
        let under_way = spooling.as_mut().expect("checked above");
        under_way.received += received;
        if under_way.received < under_way.total {
            return Ok(None);
        }
        *spooling = None;
        let decoded = decode_file(path.clone()).await;
        let _ = tokio::fs::remove_file(&path).await;
        decoded.map(Some)
    }
}

/// Reads a spooled request back and decodes it, off the runtime.
async fn decode_file(path: PathBuf) -> Result<Envelope, Failure> {
    tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&path).map_err(|e| local_io("reading", &path, e))?;
        wire::decode(&bytes).map_err(|e| Failure::Refused(e.into()))
    })
    .await
    .unwrap_or_else(|e| {
        Err(Failure::Local(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("decoding a large peer request: {e}"),
        ))
    })
}

/// Reads a whole body of at most `limit` bytes into memory.
async fn read_limited(body: Body, limit: usize) -> Result<Bytes, Refusal> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(Refusal::TooLarge(limit)),
        Err(e) => Err(Refusal::Body(e.to_string())),
    }
}

/// Writes a body of at most `limit` bytes to `path` as it arrives (into a new file if
/// `create`, else after what it holds); returns its length.
async fn append(body: Body, limit: usize, path: &Path, create: bool) -> Result<usize, Failure> {
    let file = tokio::fs::OpenOptions::new()
        .create(create)
        .truncate(create)
        .append(!create)
        .write(true)
        .open(path)
        .await
        .map_err(|e| local_io("opening", path, e))?;
    let mut file = tokio::io::BufWriter::with_capacity(SPOOL_BUFFER, file);
    let mut body = body;
    let mut length = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Refusal::Body(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        length = length.saturating_add(data.len());
        if length > limit {
            return Err(Refusal::TooLarge(limit).into());
        }
        file.write_all(&data)
            .await
            .map_err(|e| local_io("writing", path, e))?;
    }
    file.flush()
        .await
        .map_err(|e| local_io("writing", path, e))?;
    Ok(length)
}

fn local_io(what: &str, path: &Path, e: std::io::Error) -> Failure {
    let reason = format!("{what} the peer request spool {}: {e}", path.display());
    error!("{reason}");
    Failure::Local(StatusCode::INTERNAL_SERVER_ERROR, reason)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::HeaderValue;
    use crossbeam_channel::Receiver as Inputs;

    use super::*;
    use crate::cluster_id::ClusterId;
    use crate::members::Members;
    use crate::metrics::Metrics;
    use crate::peer_auth::{CLUSTER_ID_HEADER, FROM_HEADER};
    use crate::raft::{Message, MessageBody, Snapshot, SnapshotMeta};
    use crate::transport::{PeerLink, SenderSettings, spawn_senders};

    const CLUSTER: &str = "c1";

    /// Node n2's peer endpoint, with large requests bounded by `large_limit`.
    async fn start_receiver(spool_dir: &Path, large_limit: usize) -> (SocketAddr, Inputs<Input>) {
        let (inputs, delivered) = crossbeam_channel::unbounded();
        let members = Members::new("n2", ["n1".into(), "n3".into()]).unwrap();
        let gate = PeerGate::new(
            ClusterId::new(CLUSTER).unwrap(),
            members,
            None,
            Arc::new(Metrics::default()),
        );
        let router = router(ReceiverSettings {
            own: 2,
            members: 3,
            gate: Arc::new(gate),
            inputs,
            directory: Arc::new(PeerDirectory::default()),
            message_limit: wire::message_body_limit(1 << 20),
            large_limit,
            spool_dir: spool_dir.to_path_buf(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        (addr, delivered)
    }

    fn snapshot(bytes: usize) -> Message {
        // Not one repeated byte: a chunk out of place would show.
        let data: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
        Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::InstallSnapshot {
                snapshot: Snapshot {
                    meta: SnapshotMeta { index: 99, term: 3 },
                    membership: None,
                    data: Bytes::from(data),
                },
            },
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_snapshot_of_several_chunks_arrives_whole_and_leaves_no_spool() {
        let dir = tempfile::tempdir().unwrap();
        let (dial, delivered) = start_receiver(dir.path(), 64 << 20).await;
        let settings = SenderSettings {
            local_ip: dial.ip(),
            client_addr: HeaderValue::from_static("127.0.0.1:1"),
            cluster_id: ClusterId::new(CLUSTER).unwrap(),
            own: 1,
            own_name: "n1".into(),
            token: None,
            timeout: Duration::from_secs(5),
            large_timeout: Duration::from_secs(10),
            message_limit: wire::message_body_limit(1 << 20),
        };
        let (unreachable, _) = crossbeam_channel::unbounded();
        let outboxes = spawn_senders(vec![PeerLink { id: 2, dial }], settings, unreachable);
        // Ten MiB: three chunks.
        let sent = snapshot(10 << 20);
        outboxes[&2].send(sent.clone()).unwrap();
        let received =
            tokio::task::spawn_blocking(move || delivered.recv_timeout(Duration::from_secs(30)))
                .await
                .unwrap()
                .expect("the snapshot arrives");
        let Input::Peer(messages) = received else {
            panic!("not a peer delivery");
        };
        assert_eq!(messages, vec![sent]);
        assert!(
            !dir.path().join(SPOOL_FILE).exists(),
            "the spool is removed"
        );
    }

    /// POSTs one chunk of `body` to `addr`'s large path as member n1; returns the status.
    async fn post_chunk(addr: SocketAddr, chunk: Option<&str>, body: &[u8]) -> StatusCode {
        let mut request = reqwest::Client::new()
            .post(format!("http://{addr}{LARGE_PATH}"))
            .header(CLUSTER_ID_HEADER, CLUSTER)
            .header(FROM_HEADER, "n1")
            .body(body.to_vec());
        if let Some(chunk) = chunk {
            request = request.header(CHUNK_HEADER, chunk);
        }
        let status = request.send().await.unwrap().status();
        StatusCode::from_u16(status.as_u16()).unwrap()
    }

    #[tokio::test]
    async fn chunks_out_of_place_or_over_the_bounds_are_refused_and_deliver_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, delivered) = start_receiver(dir.path(), 8 << 20).await;
        let encoded = wire::BatchBuilder::new(CLUSTER, 1)
            .body(&[wire::BatchBuilder::encode_message(&snapshot(1000))]);
        let total = encoded.len();
        let half = total / 2;
        let (first, second) = encoded.split_at(half);

        let no_header = post_chunk(addr, None, &encoded).await;
        assert_eq!(no_header, StatusCode::BAD_REQUEST);
        let over_bound = post_chunk(addr, Some(&format!("1/0/{}", 9 << 20)), first).await;
        assert_eq!(over_bound, StatusCode::PAYLOAD_TOO_LARGE);
        // A second half with no first half under way.
        let orphan = post_chunk(addr, Some(&format!("1/{half}/{total}")), second).await;
        assert_eq!(orphan, StatusCode::CONFLICT);
        // The first half, then a second half of another transfer.
        let started = post_chunk(addr, Some(&format!("2/0/{total}")), first).await;
        assert_eq!(started, StatusCode::NO_CONTENT);
        let stranger = post_chunk(addr, Some(&format!("3/{half}/{total}")), second).await;
        assert_eq!(stranger, StatusCode::CONFLICT);
        // More bytes than the request has left.
        let long = [second, b"x"].concat();
        let overlong = post_chunk(addr, Some(&format!("2/{half}/{total}")), &long).await;
        assert_eq!(overlong, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(delivered.try_recv().is_err(), "nothing was delivered");

        // Whole, in order: delivered.
        assert_eq!(
            post_chunk(addr, Some(&format!("4/0/{total}")), first).await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            post_chunk(addr, Some(&format!("4/{half}/{total}")), second).await,
            StatusCode::NO_CONTENT
        );
        let Ok(Input::Peer(messages)) = delivered.try_recv() else {
            panic!("the whole request was not delivered");
        };
        assert_eq!(messages, vec![snapshot(1000)]);
    }
}
