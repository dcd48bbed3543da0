//! The JSON of etcd's v3 gRPC gateway, the HTTP face of etcd's client port (`POST /v3/...`):
//! the request bodies the client sends, and typed answers.
//!
//! The gateway renders protobuf messages with jsonpb's rules, which every reader here follows:
//! - `bytes` fields (keys, values) are base64;
//! - 64-bit integers are decimal strings (`"revision":"12"`), since JSON numbers lose
//!   precision beyond 2^53;
//! - a field at its zero value is left out: a range that found nothing has no `kvs` and no
//!   `count`, a txn whose comparison failed has no `succeeded`, a member that knows no leader
//!   has no `leader` (or `"0"`);
//! - names are the `.proto` field names: snake_case in the KV messages and the response
//!   header (`member_id`, `raft_term`), camelCase where the `.proto` itself says so
//!   (`raftTerm` in the status, `clientURLs` of a member);
//! - an error is `{"error", "message", "code"}`, `code` being the gRPC status code.
//!
//! The examples in the tests are bodies etcd 3.4.23 sent.

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};

/// The path of the maintenance status, which any member answers about itself.
pub const STATUS_PATH: &str = "/v3/maintenance/status";
/// The path of the member list, which maps member ids to names and URLs.
pub const MEMBER_LIST_PATH: &str = "/v3/cluster/member/list";

/// How a range reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// Through the leader, after everything committed before the read started
    /// (etcd's default): linearizable.
    Linearizable,
    /// From the asked member's own applied state, without consulting the leader: it may be
    /// stale (a member cut off from the others, or lagging behind them).
    Serializable,
}

/// A request to one of the gateway's key-value endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum KvRequest {
    Range(RangeRequest),
    Put(PutRequest),
    Txn(TxnRequest),
}

impl KvRequest {
    /// The path it is posted to.
    pub fn path(&self) -> &'static str {
        match self {
            KvRequest::Range(_) => "/v3/kv/range",
            KvRequest::Put(_) => "/v3/kv/put",
            KvRequest::Txn(_) => "/v3/kv/txn",
        }
    }
}

/// `RangeRequest`: one key, or every key under a prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RangeRequest {
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    range_end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sort_order: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sort_target: Option<&'static str>,
    #[serde(skip_serializing_if = "is_false")]
    serializable: bool,
}

impl RangeRequest {
    /// Reads `key` alone.
    pub fn key(key: &str, consistency: Consistency) -> RangeRequest {
        RangeRequest {
            key: BASE64.encode(key),
            range_end: None,
            sort_order: None,
            sort_target: None,
            serializable: consistency == Consistency::Serializable,
        }
    }

    /// Reads every key that starts with `prefix`, oldest first (by the revision that created
    /// each key, which is the order their puts were committed in).
    pub fn prefix(prefix: &str, consistency: Consistency) -> RangeRequest {
        RangeRequest {
            range_end: Some(BASE64.encode(prefix_end(prefix.as_bytes()))),
            sort_order: Some("ASCEND"),
            sort_target: Some("CREATE"),
            ..RangeRequest::key(prefix, consistency)
        }
    }
}

/// The end (exclusive) of the range of keys that start with `prefix`: the prefix with its
/// last byte that can be incremented incremented, and what follows it cut off, as etcd's
/// clients compute it. A prefix of only 0xff bytes has no end: `"\0"` means "to the last key".
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.iter().rposition(|&byte| byte < 0xff) {
        Some(last) => {
            let mut end = prefix[..=last].to_vec();
            end[last] += 1;
            end
        }
        None => vec![0],
    }
}

fn is_false(value: &bool) -> bool {
    !value
}

/// `PutRequest`: sets `key` to `value`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PutRequest {
    key: String,
    value: String,
}

impl PutRequest {
    /// Sets `key` to `value`.
    pub fn new(key: &str, value: &str) -> PutRequest {
        PutRequest {
            key: BASE64.encode(key),
            value: BASE64.encode(value),
        }
    }
}

/// `TxnRequest` of one comparison and one put: a compare-and-set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TxnRequest {
    compare: [Compare; 1],
    success: [RequestOp; 1],
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct Compare {
    key: String,
    target: &'static str,
    result: &'static str,
    value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct RequestOp {
    request_put: PutRequest,
}

impl TxnRequest {
    /// Sets `key` to `new` if its value is `expected`. A missing key has no value, so the
    /// comparison fails for it, whatever `expected` is.
    pub fn compare_and_put(key: &str, expected: &str, new: &str) -> TxnRequest {
        TxnRequest {
            compare: [Compare {
                key: BASE64.encode(key),
                target: "VALUE",
                result: "EQUAL",
                value: BASE64.encode(expected),
            }],
            success: [RequestOp {
                request_put: PutRequest::new(key, new),
            }],
        }
    }
}

/// `ResponseHeader`: which member answered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ResponseHeader {
    /// The id of the member that answered.
    #[serde(default, deserialize_with = "int64")]
    pub member_id: u64,
}

/// `mvccpb.KeyValue`: one key's value (the rest of it is not needed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct KeyValue {
    #[serde(default, deserialize_with = "base64_bytes")]
    pub value: Vec<u8>,
}

/// `RangeResponse`: the keys found, in the order asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct RangeResponse {
    #[serde(default)]
    pub kvs: Vec<KeyValue>,
}

impl RangeResponse {
    /// The value of a register: the one key's value as a number, `None` if it is missing.
    pub fn register(&self) -> Result<Option<u64>> {
        match self.kvs.as_slice() {
            [] => Ok(None),
            [kv] => number(&kv.value).map(Some),
            more => anyhow::bail!("a range of one key found {} keys", more.len()),
        }
    }

    /// The elements of a list: every key's value as a number, in the order found.
    pub fn list(&self) -> Result<Vec<u64>> {
        self.kvs.iter().map(|kv| number(&kv.value)).collect()
    }
}

/// A value the client wrote: a number in decimal.
fn number(value: &[u8]) -> Result<u64> {
    let text = String::from_utf8_lossy(value);
    text.parse()
        .with_context(|| format!("value {text:?} is not a non-negative integer"))
}

/// `TxnResponse`: whether the comparison held (and so the put was done).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct TxnResponse {
    #[serde(default)]
    pub succeeded: bool,
}

/// `StatusResponse`: a member's own view of the cluster and of its log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct StatusResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    /// The member id of the leader it knows; 0 when it knows none.
    #[serde(default, deserialize_with = "int64")]
    pub leader: u64,
    /// Its Raft term.
    #[serde(default, rename = "raftTerm", deserialize_with = "int64")]
    pub raft_term: u64,
    /// Its commit index.
    #[serde(default, rename = "raftIndex", deserialize_with = "int64")]
    pub raft_index: u64,
    /// The index of the last entry it applied.
    #[serde(default, rename = "raftAppliedIndex", deserialize_with = "int64")]
    pub raft_applied_index: u64,
    /// What is wrong with it, in etcd's words (`etcdserver: no leader`).
    #[serde(default)]
    pub errors: Vec<String>,
}

impl StatusResponse {
    /// The member id of the leader the member knows, if it knows one.
    pub fn leader(&self) -> Option<u64> {
        (self.leader != 0).then_some(self.leader)
    }
}

/// `MemberListResponse`: every member of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct MemberListResponse {
    #[serde(default)]
    pub members: Vec<Member>,
}

/// `Member`: a member's id and the URLs it serves clients on (none before it has started).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Member {
    #[serde(default, rename = "ID", deserialize_with = "int64")]
    pub id: u64,
    #[serde(default, rename = "clientURLs")]
    pub client_urls: Vec<String>,
}

/// The body of an error answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub message: String,
    /// The gRPC status code (see [`grpc_code`]).
    #[serde(default)]
    pub code: i32,
}

impl ErrorBody {
    /// What etcd said (`etcdserver: no leader`).
    pub fn message(&self) -> &str {
        if self.message.is_empty() {
            &self.error
        } else {
            &self.message
        }
    }
}

/// The gRPC status codes the classification distinguishes.
pub mod grpc_code {
    /// The request itself is wrong (a missing key, a bad base64 field, too large): refused
    /// before anything is done.
    pub const INVALID_ARGUMENT: i32 = 3;
    /// Too many requests in flight, or no space left: refused before anything is done.
    pub const RESOURCE_EXHAUSTED: i32 = 8;
}

/// A 64-bit integer as jsonpb writes it: a decimal string. A plain number is read too.
fn int64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int64 {
        Text(String),
        Number(u64),
    }
    match Int64::deserialize(deserializer)? {
        Int64::Number(number) => Ok(number),
        Int64::Text(text) => text
            .parse()
            .map_err(|_| D::Error::custom(format!("{text:?} is not a 64-bit integer"))),
    }
}

/// Bytes as jsonpb writes them: base64, standard alphabet, padded.
fn base64_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(deserializer)?;
    BASE64
        .decode(&text)
        .map_err(|error| D::Error::custom(format!("{text:?} is not base64: {error}")))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const HEADER: &str = r#""header":{"cluster_id":"3907512067585347899","member_id":"3201956386285937898","revision":"3","raft_term":"2"}"#;

    fn body(request: &KvRequest) -> Value {
        serde_json::to_value(request).unwrap()
    }

    fn parse<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_json::from_str(text).unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    #[test]
    fn requests_are_the_bodies_etcd_accepts() {
        let get = KvRequest::Range(RangeRequest::key("r1", Consistency::Linearizable));
        assert_eq!(
            (get.path(), body(&get)),
            ("/v3/kv/range", json!({"key": "cjE="}))
        );
        let stale = KvRequest::Range(RangeRequest::key("r1", Consistency::Serializable));
        assert_eq!(body(&stale), json!({"key": "cjE=", "serializable": true}));
        let list = KvRequest::Range(RangeRequest::prefix("l1/", Consistency::Linearizable));
        // From "l1/" up to "l10", excluded: '0' follows '/'.
        assert_eq!(
            body(&list),
            json!({"key": "bDEv", "range_end": "bDEw", "sort_order": "ASCEND", "sort_target": "CREATE"})
        );
        let put = KvRequest::Put(PutRequest::new("r1", "5"));
        assert_eq!(
            (put.path(), body(&put)),
            ("/v3/kv/put", json!({"key": "cjE=", "value": "NQ=="}))
        );
        let cas = KvRequest::Txn(TxnRequest::compare_and_put("r1", "3", "4"));
        assert_eq!(
            (cas.path(), body(&cas)),
            (
                "/v3/kv/txn",
                json!({
                    "compare": [{"key": "cjE=", "target": "VALUE", "result": "EQUAL", "value": "Mw=="}],
                    "success": [{"request_put": {"key": "cjE=", "value": "NA=="}}],
                })
            )
        );
    }

    #[test]
    fn a_prefix_ends_where_its_last_byte_that_can_grow_grows() {
        assert_eq!(prefix_end(b"l1/"), b"l10");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_end(b""), b"\0");
    }

    #[test]
    fn a_range_reads_a_register_or_a_list_in_the_order_found() {
        let hit: RangeResponse = parse(&format!(
            r#"{{{HEADER},"kvs":[{{"key":"cjE=","create_revision":"2","mod_revision":"2","version":"1","value":"NQ=="}}],"count":"1"}}"#
        ));
        assert_eq!(hit.register().unwrap(), Some(5));
        // A miss is the header alone: no kvs, no count.
        let miss: RangeResponse = parse(&format!("{{{HEADER}}}"));
        assert_eq!(miss.register().unwrap(), None);
        assert_eq!(miss.list().unwrap(), Vec::<u64>::new());
        // l1/..02 was put before l1/..01: sorted by creation, 2 comes first.
        let list: RangeResponse = parse(&format!(
            r#"{{{HEADER},"kvs":[{{"key":"bDEvMDAwMDAwMDAwMDAwMDAwMDAwMDI=","create_revision":"2","mod_revision":"2","version":"1","value":"Mg=="}},{{"key":"bDEvMDAwMDAwMDAwMDAwMDAwMDAwMDE=","create_revision":"3","mod_revision":"3","version":"1","value":"MQ=="}}],"count":"2"}}"#
        ));
        assert_eq!(list.list().unwrap(), [2, 1]);
    }

    #[test]
    fn values_that_are_not_numbers_are_errors_not_panics() {
        let text: RangeResponse = parse(r#"{"kvs":[{"key":"cjE=","value":"YWJj"}]}"#);
        let error = text.register().unwrap_err().to_string();
        assert!(error.contains(r#""abc""#), "{error}");
        let two: RangeResponse = parse(r#"{"kvs":[{"value":"MQ=="},{"value":"Mg=="}]}"#);
        assert!(two.register().is_err());
        assert!(serde_json::from_str::<RangeResponse>(r#"{"kvs":[{"value":"!!"}]}"#).is_err());
        let huge = r#"{"header":{"member_id":"18446744073709551616"}}"#;
        assert!(serde_json::from_str::<StatusResponse>(huge).is_err());
    }

    #[test]
    fn a_txn_succeeded_only_when_it_says_so() {
        let done: TxnResponse = parse(&format!(
            r#"{{{HEADER},"succeeded":true,"responses":[{{"response_put":{{"header":{{"revision":"3"}}}}}}]}}"#
        ));
        assert!(done.succeeded);
        let mismatch: TxnResponse = parse(&format!("{{{HEADER}}}"));
        assert!(!mismatch.succeeded);
    }

    #[test]
    fn the_status_says_who_leads_and_how_far_the_log_is() {
        let status: StatusResponse = parse(&format!(
            r#"{{{HEADER},"version":"3.4.23","dbSize":"20480","leader":"3201956386285937898","raftIndex":"11","raftTerm":"2","raftAppliedIndex":"10","dbSizeInUse":"16384"}}"#
        ));
        assert_eq!(status.header.member_id, 3201956386285937898);
        assert_eq!(status.leader(), Some(3201956386285937898));
        assert_eq!(
            (
                status.raft_term,
                status.raft_index,
                status.raft_applied_index
            ),
            (2, 11, 10)
        );
        assert!(status.errors.is_empty());
        let leaderless: StatusResponse = parse(&format!(
            r#"{{{HEADER},"version":"3.4.23","dbSize":"20480","raftIndex":"11","raftTerm":"2","raftAppliedIndex":"11","errors":["etcdserver: no leader"],"dbSizeInUse":"16384"}}"#
        ));
        assert_eq!(leaderless.leader(), None);
        assert_eq!(leaderless.errors, ["etcdserver: no leader"]);
        let zero: StatusResponse = parse(r#"{"leader":"0"}"#);
        assert_eq!(zero.leader(), None);
    }

    #[test]
    fn members_are_listed_with_their_client_urls() {
        let list: MemberListResponse = parse(
            r#"{"header":{"cluster_id":"10970070626298528247","member_id":"14084433682014218321","raft_term":"2"},"members":[{"ID":"6000818566447099277","name":"e3","peerURLs":["http://127.0.0.43:24380"],"clientURLs":["http://127.0.0.43:24379"]},{"ID":"8521234673232915565","peerURLs":["http://127.0.0.42:24380"]}]}"#,
        );
        assert_eq!(
            list.members,
            [
                Member {
                    id: 6000818566447099277,
                    client_urls: vec!["http://127.0.0.43:24379".into()],
                },
                // Not started yet: no name, no client URLs.
                Member {
                    id: 8521234673232915565,
                    client_urls: vec![],
                },
            ]
        );
    }

    #[test]
    fn errors_carry_etcds_message_and_the_grpc_code() {
        let no_leader: ErrorBody = parse(
            r#"{"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14}"#,
        );
        assert_eq!(
            (no_leader.message(), no_leader.code),
            ("etcdserver: no leader", 14)
        );
        let bad: ErrorBody = parse(
            r#"{"error":"illegal base64 data at input byte 0","message":"illegal base64 data at input byte 0","code":3}"#,
        );
        assert_eq!(bad.code, grpc_code::INVALID_ARGUMENT);
        let terse: ErrorBody = parse(r#"{"error":"etcdserver: request timed out","code":14}"#);
        assert_eq!(terse.message(), "etcdserver: request timed out");
    }
}
