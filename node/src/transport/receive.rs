//! The peer endpoint: checks a request ([`PeerGate`]), reads its body within its kind's bound
//! and hands the messages to the Raft loop.
//!
//! Memory: an ordinary batch is read into memory, at most [`PERMITS_PER_SENDER`] at a time per
//! member (a sender has one request in flight, and one more while a timed-out one is still
//! being torn down); a large request is spooled to a file as it arrives, one at a time, and
//! read back only once it is whole and within its bound. Requests waiting for their turn hold
//! no body. So whatever strangers or members send, the bodies in memory stay below
//! (members - 1) x 2 x the batch bound, plus one large request while it is decoded.

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
use tokio::sync::Semaphore;
use tracing::error;

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
    /// One large request at a time.
    large: Semaphore,
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
        large: Semaphore::new(1),
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

    /// Checks, reads and decodes a request, and hands its messages to the Raft loop.
    async fn take(&self, headers: &HeaderMap, body: Body, large: bool) -> Result<(), Failure> {
        let gate = &self.settings.gate;
        let sender = gate.check_headers(headers)?;
        let limit = if large {
            self.settings.large_limit
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
            let _turn = self.large.acquire().await.expect("never closed");
            self.read_large(body, limit).await?
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

    /// Spools a large body to a file, then reads it back and decodes it off the runtime.
    async fn read_large(&self, body: Body, limit: usize) -> Result<Envelope, Failure> {
        let path = self.settings.spool_dir.join(SPOOL_FILE);
        let spooled = spool(body, limit, &path).await;
        let result = match spooled {
            Ok(()) => {
                let path = path.clone();
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
            Err(failure) => Err(failure),
        };
        let _ = tokio::fs::remove_file(&path).await;
        result
    }
}

/// Reads a whole body of at most `limit` bytes into memory.
async fn read_limited(body: Body, limit: usize) -> Result<Bytes, Refusal> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(Refusal::TooLarge(limit)),
        Err(e) => Err(Refusal::Body(e.to_string())),
    }
}

/// Writes a body of at most `limit` bytes to `path` as it arrives.
async fn spool(body: Body, limit: usize, path: &Path) -> Result<(), Failure> {
    let file = tokio::fs::File::create(path)
        .await
        .map_err(|e| local_io("creating", path, e))?;
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
    file.flush().await.map_err(|e| local_io("writing", path, e))
}

fn local_io(what: &str, path: &Path, e: std::io::Error) -> Failure {
    let reason = format!("{what} the peer request spool {}: {e}", path.display());
    error!("{reason}");
    Failure::Local(StatusCode::INTERNAL_SERVER_ERROR, reason)
}
