//! Who may talk to the peer port: checks every peer request before it can change any state.
//!
//! A request passes when (in this order) it carries the peer token, if the node has one
//! (401 otherwise: a stranger learns nothing more); it names this cluster's id (403); its
//! sender is another configured member (403). These three are read from the headers, before
//! any of the body is, so that a stranger costs the node no memory. Then the body's
//! [`Envelope`] must say the same, and every message in it must be from that sender to this
//! node (400). A refused request is answered at once, counted in
//! `faultline_peer_refused_total{reason}`, and logged once per (source address, claimed
//! sender, reason): a stray node retrying every few milliseconds must not flood the log.
//!
//! The token is a shared secret compared in constant time. It is sent in clear (the peer port
//! speaks plain HTTP): it keeps out forged messages from anyone who cannot read the traffic
//! between members, which on loopback or a test network is everyone but root.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use subtle::ConstantTimeEq;
use tracing::warn;

use crate::cluster_id::ClusterId;
use crate::members::Members;
use crate::metrics::Metrics;
use crate::raft::NodeId;
use crate::transport::wire::{Envelope, WireError};

/// Names the sender's cluster id.
pub const CLUSTER_ID_HEADER: &str = "faultline-cluster-id";
/// Names the sender, as a member name (`n2`).
pub const FROM_HEADER: &str = "faultline-from";
/// How many distinct refused senders are logged; later ones are only counted, so that a
/// flood of made-up sender names cannot grow the set without bound.
const MAX_LOGGED_SENDERS: usize = 1024;
/// The longest token accepted (it travels in a header).
const MAX_TOKEN_LEN: usize = 4096;

/// The peer token: a shared secret every member is given.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerToken(String);

/// Why a peer token cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PeerTokenError {
    #[error("the peer token must be 1 to {MAX_TOKEN_LEN} visible ASCII characters (no spaces)")]
    Invalid,
    #[error("reading the peer token file {path}: {source}")]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl PeerToken {
    pub fn new(text: &str) -> Result<PeerToken, PeerTokenError> {
        let visible = text.bytes().all(|b| b.is_ascii_graphic());
        if text.is_empty() || text.len() > MAX_TOKEN_LEN || !visible {
            return Err(PeerTokenError::Invalid);
        }
        Ok(PeerToken(text.to_string()))
    }

    /// Reads the token from a file; one trailing newline is not part of it.
    pub fn from_file(path: &Path) -> Result<PeerToken, PeerTokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| PeerTokenError::File {
            path: path.to_path_buf(),
            source,
        })?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        PeerToken::new(text.strip_suffix('\r').unwrap_or(text))
    }

    /// The `Authorization` header that carries it, marked sensitive (kept out of debug output).
    pub fn header_value(&self) -> HeaderValue {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", self.0)).expect("a token is visible ASCII");
        value.set_sensitive(true);
        value
    }

    /// Whether `presented` is this token, in time that does not depend on where they differ.
    fn matches(&self, presented: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(presented).into()
    }
}

impl fmt::Debug for PeerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerToken(<secret>)")
    }
}

/// Why a peer request was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("no valid peer token")]
    Unauthorized,
    #[error("no {0} header")]
    MissingHeader(&'static str),
    #[error("cluster id `{0}` is not this cluster's")]
    WrongCluster(String),
    #[error("`{0}` is not another member of this cluster")]
    NotMember(String),
    #[error("the body is over {0} bytes")]
    TooLarge(usize),
    #[error("reading the body: {0}")]
    Body(String),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("the body's {what} is not the one its headers name")]
    Mismatch { what: &'static str },
    #[error("a message from {from} to {to} in a request from {sender} to {own}")]
    Misaddressed {
        from: NodeId,
        to: NodeId,
        sender: NodeId,
        own: NodeId,
    },
}

impl Refusal {
    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Unauthorized => StatusCode::UNAUTHORIZED,
            Refusal::WrongCluster(_) | Refusal::NotMember(_) => StatusCode::FORBIDDEN,
            Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::MissingHeader(_)
            | Refusal::Body(_)
            | Refusal::Wire(_)
            | Refusal::Mismatch { .. }
            | Refusal::Misaddressed { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// A short name, for the metric's label and the once-per-sender log.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Unauthorized => "token",
            Refusal::MissingHeader(_) => "headers",
            Refusal::WrongCluster(_) => "cluster-id",
            Refusal::NotMember(_) => "not-member",
            Refusal::TooLarge(_) => "too-large",
            Refusal::Body(_) => "body",
            Refusal::Wire(_) => "undecodable",
            Refusal::Mismatch { .. } | Refusal::Misaddressed { .. } => "misaddressed",
        }
    }
}

/// The checks, and the memory of whom a refusal was already logged for.
pub struct PeerGate {
    cluster_id: ClusterId,
    members: Members,
    token: Option<PeerToken>,
    metrics: Arc<Metrics>,
    logged: Mutex<HashSet<(IpAddr, String, &'static str)>>,
}

impl PeerGate {
    pub fn new(
        cluster_id: ClusterId,
        members: Members,
        token: Option<PeerToken>,
        metrics: Arc<Metrics>,
    ) -> PeerGate {
        PeerGate {
            cluster_id,
            members,
            token,
            metrics,
            logged: Mutex::new(HashSet::new()),
        }
    }

    /// The checks that need only the headers: the token, the cluster id, the sender. Returns
    /// the sender's Raft id.
    pub fn check_headers(&self, headers: &HeaderMap) -> Result<NodeId, Refusal> {
        if let Some(token) = &self.token {
            let presented = headers
                .get(AUTHORIZATION)
                .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "));
            if !presented.is_some_and(|presented| token.matches(presented)) {
                return Err(Refusal::Unauthorized);
            }
        }
        let cluster_id = header(headers, CLUSTER_ID_HEADER)?;
        if cluster_id != self.cluster_id.as_str() {
            return Err(Refusal::WrongCluster(printable(cluster_id)));
        }
        let from = header(headers, FROM_HEADER)?;
        match self.members.id_of(from) {
            Some(id) if id != self.members.own_id() => Ok(id),
            _ => Err(Refusal::NotMember(printable(from))),
        }
    }

    /// The checks of the decoded body, from `sender` (as [`PeerGate::check_headers`] found).
    pub fn check_envelope(&self, sender: NodeId, envelope: &Envelope) -> Result<(), Refusal> {
        if envelope.cluster_id != self.cluster_id.as_str() {
            return Err(Refusal::Mismatch { what: "cluster id" });
        }
        if envelope.from != sender {
            return Err(Refusal::Mismatch { what: "sender" });
        }
        let own = self.members.own_id();
        match envelope
            .messages
            .iter()
            .find(|m| m.from != sender || m.to != own)
        {
            Some(m) => Err(Refusal::Misaddressed {
                from: m.from,
                to: m.to,
                sender,
                own,
            }),
            None => Ok(()),
        }
    }

    /// Counts a refusal and logs it, unless one with the same source, claimed sender and
    /// reason was logged before.
    pub fn record(&self, source: IpAddr, headers: &HeaderMap, refusal: &Refusal) {
        let reason = refusal.reason();
        self.metrics.peer_refused(reason);
        let claimed = headers
            .get(FROM_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(printable)
            .unwrap_or_else(|| "?".into());
        let mut logged = self.logged.lock().expect("never poisoned");
        if logged.len() >= MAX_LOGGED_SENDERS {
            return;
        }
        if logged.insert((source, claimed.clone(), reason)) {
            let last = logged.len() == MAX_LOGGED_SENDERS;
            drop(logged);
            warn!(
                %source,
                sender = %claimed,
                status = refusal.status().as_u16(),
                "refused a peer request: {refusal} (logged once per source, sender and reason)"
            );
            if last {
                warn!(
                    "{MAX_LOGGED_SENDERS} distinct refused peers logged; further ones are only counted"
                );
            }
        }
    }
}

/// A header's value as text; a missing or non-text header is a refusal.
fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, Refusal> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .ok_or(Refusal::MissingHeader(name))
}

/// At most 64 characters of what a stranger sent, for a log line.
fn printable(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{Message, MessageBody};

    fn gate(token: Option<&str>) -> PeerGate {
        let members = Members::new("n1", ["n2".into(), "n3".into()]).unwrap();
        PeerGate::new(
            ClusterId::new("c1").unwrap(),
            members,
            token.map(|t| PeerToken::new(t).unwrap()),
            Arc::new(Metrics::default()),
        )
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn only_members_of_this_cluster_with_the_token_pass() {
        let ok = [
            (CLUSTER_ID_HEADER, "c1"),
            (FROM_HEADER, "n2"),
            ("authorization", "Bearer s3cret"),
        ];
        assert_eq!(
            gate(Some("s3cret")).check_headers(&headers(&ok)).unwrap(),
            2
        );
        assert_eq!(gate(None).check_headers(&headers(&ok[..2])).unwrap(), 2);

        let status = |gate: &PeerGate, pairs: &[(&'static str, &str)]| {
            gate.check_headers(&headers(pairs)).unwrap_err().status()
        };
        let with_token = gate(Some("s3cret"));
        assert_eq!(status(&with_token, &ok[..2]), StatusCode::UNAUTHORIZED);
        let wrong_token = [ok[0], ok[1], ("authorization", "Bearer s3cre")];
        assert_eq!(status(&with_token, &wrong_token), StatusCode::UNAUTHORIZED);
        let open = gate(None);
        for bad in [
            vec![(CLUSTER_ID_HEADER, "c2"), ok[1]],
            vec![ok[0], (FROM_HEADER, "n9")],
            vec![ok[0], (FROM_HEADER, "n1")], // itself
        ] {
            assert_eq!(status(&open, &bad), StatusCode::FORBIDDEN, "{bad:?}");
        }
        assert_eq!(status(&open, &[ok[1]]), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_body_must_agree_with_the_headers() {
        let gate = gate(None);
        let message = |from, to| Message {
            from,
            to,
            term: 1,
            body: MessageBody::HeartbeatResponse { read_round: 0 },
        };
        let envelope = |cluster: &str, from, messages| Envelope {
            cluster_id: cluster.into(),
            from,
            messages,
        };
        assert!(
            gate.check_envelope(2, &envelope("c1", 2, vec![message(2, 1)]))
                .is_ok()
        );
        for bad in [
            envelope("c2", 2, vec![message(2, 1)]),
            envelope("c1", 3, vec![message(3, 1)]),
            envelope("c1", 2, vec![message(3, 1)]),
            envelope("c1", 2, vec![message(2, 3)]),
        ] {
            let refusal = gate.check_envelope(2, &bad).unwrap_err();
            assert_eq!(refusal.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }

    #[test]
    fn tokens_are_read_from_files_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc123\n").unwrap();
        let token = PeerToken::from_file(&path).unwrap();
        assert_eq!(token, PeerToken::new("abc123").unwrap());
        assert!(!format!("{token:?}").contains("abc"));
        assert!(PeerToken::new("has space").is_err());
        assert!(PeerToken::new("").is_err());
        assert!(PeerToken::from_file(&dir.path().join("missing")).is_err());
    }
}
