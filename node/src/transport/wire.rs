//! The body of a peer request: [`MAGIC`], then a postcard-encoded [`Envelope`] (the cluster id,
//! the sender, the messages) and nothing after it.
//!
//! The magic tells this format apart from the unversioned one before it (a bare postcard
//! `Vec<Message>`, whose first byte is a message count) and from anything else; trailing bytes
//! are an error rather than ignored, so that a body means exactly one thing.
//!
//! A sender encodes each message once, to learn its size for [`batching`](BatchBuilder), and
//! then lays the encoded messages after a header it encoded once per peer: the bytes are the
//! same as postcard's encoding of the whole [`Envelope`] (a struct is its fields in order, a
//! sequence its length as a varint and then its elements), which a unit test checks.

use serde::{Deserialize, Serialize};

use crate::raft::{Message, MessageBody, NodeId};

/// The first bytes of every peer request body: "Faultline peer", format 2 (format 1 had no
/// `transfer` in RequestVote and no TimeoutNow).
pub const MAGIC: [u8; 4] = *b"FLP2";

/// What a peer request carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sender's cluster id ([`crate::cluster_id`]).
    pub cluster_id: String,
    /// The sender's Raft id; every message's `from` must be this.
    pub from: NodeId,
    pub messages: Vec<Message>,
}

/// Why a body is not a peer request.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error(
        "the body does not start with the peer format's magic bytes {MAGIC:?} (a sender of an older version, or not a Faultline peer)"
    )]
    NoMagic,
    #[error("undecodable peer messages: {0}")]
    Undecodable(#[from] postcard::Error),
    #[error("{0} bytes after the end of the messages")]
    TrailingBytes(usize),
}

/// Decodes a whole request body; trailing bytes are an error.
pub fn decode(body: &[u8]) -> Result<Envelope, WireError> {
    let rest = body.strip_prefix(&MAGIC).ok_or(WireError::NoMagic)?;
    let (envelope, trailing) = postcard::take_from_bytes::<Envelope>(rest)?;
    if !trailing.is_empty() {
        return Err(WireError::TrailingBytes(trailing.len()));
    }
    Ok(envelope)
}

/// Encodes a whole request body (tests, and tools that forge requests, use this; the sender
/// uses [`BatchBuilder`]).
pub fn encode(envelope: &Envelope) -> Vec<u8> {
    postcard::to_extend(envelope, MAGIC.to_vec()).expect("a Vec grows as needed")
}

/// The largest body of an ordinary peer request (every message but snapshots, and any message
/// too large on its own): an AppendEntries carries at most `max_bytes_per_message` of entry
/// payload, the framing of its entries about as much again at worst, and the rest of a batch
/// (votes, heartbeats, their answers) is small. A message that does not fit goes as a large
/// request instead, so this bound costs batching efficiency at worst, never liveness.
pub fn message_body_limit(max_bytes_per_message: usize) -> usize {
    max_bytes_per_message
        .saturating_mul(2)
        .saturating_add(64 << 10)
}

/// How many bytes of encoded messages fit into a body of at most `body_limit` bytes.
pub fn batch_budget(body_limit: usize) -> usize {
    body_limit.saturating_sub(HEADER_RESERVE)
}

/// Whether a message of `encoded_len` bytes must travel as a large request on its own.
pub fn travels_alone(message: &Message, encoded_len: usize, body_limit: usize) -> bool {
    matches!(message.body, MessageBody::InstallSnapshot { .. })
        || encoded_len > batch_budget(body_limit)
}

/// Room for the magic, the cluster id (at most 64 bytes and its length), the sender and the
/// message count (a varint each).
const HEADER_RESERVE: usize = 4 + 1 + 64 + 10 + 10;

/// Builds request bodies for one peer out of messages encoded one at a time.
#[derive(Clone, Debug)]
pub struct BatchBuilder {
    /// The magic, the cluster id and the sender: the same for every request to this peer.
    header: Vec<u8>,
}

impl BatchBuilder {
    pub fn new(cluster_id: &str, from: NodeId) -> BatchBuilder {
        let mut header = MAGIC.to_vec();
        header = postcard::to_extend(&(cluster_id, from), header).expect("a Vec grows");
        BatchBuilder { header }
    }

    /// One message's encoding, to lay into a body with [`BatchBuilder::body`].
    pub fn encode_message(message: &Message) -> Vec<u8> {
        postcard::to_stdvec(message).expect("Raft messages always encode")
    }

    /// The body of a request carrying these encoded messages, in order.
    pub fn body(&self, encoded: &[Vec<u8>]) -> Vec<u8> {
        let payload: usize = encoded.iter().map(Vec::len).sum();
        let mut body = Vec::with_capacity(self.header.len() + 10 + payload);
        body.extend_from_slice(&self.header);
        body = postcard::to_extend(&encoded.len(), body).expect("a Vec grows");
        for message in encoded {
            body.extend_from_slice(message);
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::raft::{Entry, Payload, Snapshot, SnapshotMeta};

    fn messages() -> Vec<Message> {
        let bodies = [
            MessageBody::Heartbeat {
                leader_commit: 7,
                read_round: 2,
            },
            MessageBody::AppendEntries {
                prev_log_index: 3,
                prev_log_term: 1,
                entries: vec![Entry {
                    term: 2,
                    index: 4,
                    payload: Payload::Command(Bytes::from_static(b"{\"x\":1}")),
                }],
                leader_commit: 3,
                read_round: 0,
            },
            MessageBody::InstallSnapshot {
                snapshot: Snapshot {
                    meta: SnapshotMeta { index: 9, term: 2 },
                    membership: None,
                    data: Bytes::from(vec![7; 300]),
                },
            },
        ];
        bodies
            .into_iter()
            .map(|body| Message {
                from: 2,
                to: 1,
                term: u64::MAX,
                body,
            })
            .collect()
    }

    #[test]
    fn a_batch_is_the_encoding_of_its_envelope() {
        let envelope = Envelope {
            cluster_id: "faultline-0123".into(),
            from: 2,
            messages: messages(),
        };
        let builder = BatchBuilder::new(&envelope.cluster_id, envelope.from);
        let encoded: Vec<Vec<u8>> = envelope
            .messages
            .iter()
            .map(BatchBuilder::encode_message)
            .collect();
        let body = builder.body(&encoded);
        assert_eq!(body, encode(&envelope));
        assert_eq!(decode(&body).unwrap(), envelope);
        let empty = builder.body(&[]);
        assert!(decode(&empty).unwrap().messages.is_empty());
    }

    proptest::proptest! {
        /// Whatever a stranger posts (any bytes, with or without the magic, or a real body
        /// cut, extended or with bytes changed), decoding answers an envelope or an error,
        /// never a panic, and a length prefix that claims more than the body holds allocates
        /// nothing it cannot fill.
        #[test]
        fn any_body_decodes_or_is_refused(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            magic in proptest::prelude::any::<bool>(),
            cut in 0usize..2048,
            changes in proptest::collection::vec(
                (0usize..2048, proptest::prelude::any::<u8>()), 0..8),
        ) {
            let mut body = if magic { MAGIC.to_vec() } else { Vec::new() };
            body.extend_from_slice(&noise);
            let _ = decode(&body);

            let envelope = Envelope { cluster_id: "c".into(), from: 2, messages: messages() };
            let mut real = encode(&envelope);
            for (at, byte) in changes {
                let len = real.len();
                real[at % len] = byte;
            }
            let _ = decode(&real);
            real.truncate(cut % (real.len() + 1));
            let _ = decode(&real);
            real.extend_from_slice(&noise);
            let _ = decode(&real);
        }
    }

    #[test]
    fn a_length_that_claims_more_than_the_body_holds_is_refused() {
        // An envelope whose cluster id and message count claim about 2^63 bytes and elements.
        let mut body = MAGIC.to_vec();
        body.extend_from_slice(&[0xff; 9]);
        body.push(0x7f);
        assert!(matches!(decode(&body), Err(WireError::Undecodable(_))));
        let mut body = MAGIC.to_vec();
        body.extend_from_slice(&[1, b'c', 2]);
        body.extend_from_slice(&[0xff; 9]);
        body.push(0x7f);
        assert!(matches!(decode(&body), Err(WireError::Undecodable(_))));
    }

    #[test]
    fn anything_but_exactly_one_envelope_is_refused() {
        let envelope = Envelope {
            cluster_id: "c".into(),
            from: 2,
            messages: messages(),
        };
        let body = encode(&envelope);
        let mut trailing = body.clone();
        trailing.push(0);
        assert!(matches!(
            decode(&trailing),
            Err(WireError::TrailingBytes(1))
        ));
        assert!(matches!(
            decode(&body[..body.len() - 1]),
            Err(WireError::Undecodable(_))
        ));
        // The unversioned format: a bare Vec<Message>.
        let old = postcard::to_stdvec(&envelope.messages).unwrap();
        assert!(matches!(decode(&old), Err(WireError::NoMagic)));
        assert!(matches!(decode(b""), Err(WireError::NoMagic)));
    }

    #[test]
    fn snapshots_and_oversized_messages_travel_alone() {
        let limit = message_body_limit(1 << 20);
        let all = messages();
        assert!(!travels_alone(&all[0], 20, limit));
        assert!(travels_alone(&all[0], limit, limit));
        assert!(travels_alone(&all[2], 20, limit));
    }
}
