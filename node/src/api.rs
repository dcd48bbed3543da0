//! The client HTTP API (axum).
//!
//! | request | answer |
//! |---|---|
//! | `GET /kv/{key}` | 200 `{"key", "value"}`, 404 if missing; linearizable (ReadIndex) unless `?stale=true` |
//! | `PUT /kv/{key}` `{"value": v}` | 200 `{"ok": true}` |
//! | `DELETE /kv/{key}` | 200 `{"ok": true}`, 404 if missing |
//! | `POST /kv/{key}/cas` `{"from": a, "to": b}` | 200, or 409 `{"error", "value": current}` |
//! | `POST /kv/{key}/append` `{"value": v}` | 200 `{"ok": true, "length": n}`; the key holds a list |
//! | `POST /sessions` | 201 `{"client_id": n}`: a session for retries, below |
//! | `GET /status`, `GET /metrics`, `GET /health` | status JSON (with `voters`, `outgoing` and `learners`: the names of the configuration in force, `outgoing` non-empty only during a joint change; the [`crate::fingerprint`]s of the latest checkpoints; and `realtime_us`, the node's CLOCK_REALTIME as it answers), Prometheus text, 200 |
//!
//! What a client may conclude from the status code of a write (each answer path, and why it
//! is certain or not, is listed in [`crate::pending`]):
//!
//! | status | the write |
//! |---|---|
//! | 2xx | happened |
//! | 404, 409 | happened and changed nothing (delete of a missing key, cas mismatch, append to a non-list) |
//! | 307 (not the leader: `Location` names it), 400, 413, 503 | did not happen |
//! | 500, 504 | may or may not have happened |
//!
//! 503 is given only when the write certainly never takes effect: no leader, or another
//! entry was committed at its place in the log. A write this node cannot settle yet (it
//! stopped leading, a new write reused its log index) keeps waiting until its index is
//! applied, or gets 504 when the request times out.
//!
//! Writes are answered only after commit and apply. A client that retries writes first opens
//! a session (`POST /sessions`, itself committed through the log; 503 when the table is full
//! of live sessions), then sends headers `client-id` (the id it got) and `request-seq`
//! (from 1, increasing per write) with each write, which make a retried write apply once: a
//! retry of the client's latest write gets that write's answer again (a 409's `value` only
//! if its JSON is at most 1 KiB: otherwise `value_bytes` says how large it was). A retry of
//! an older one gets 500, a retry whose answer the bounded session table has forgotten gets
//! 504, and any write of a session that expired gets 504: in each case its outcome is no
//! longer known, and it is not applied (again). An id never handed out gets 400. The rules
//! are in [`crate::sessions`].
//!
//! Every error answer is JSON with an `error` message. A body that is not a JSON object
//! with exactly the fields named above, or with a value nested more than
//! [`MAX_VALUE_DEPTH`] arrays and objects deep, gets 400.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use crossbeam_channel::Sender;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

use crate::command::{
    Command, MAX_VALUE_DEPTH, Observed, SessionRef, WriteOp, WriteResult, nested_deeper_than,
};
use crate::driver::{ClientError, Input, NodeStatus};
use crate::members::Members;
use crate::metrics::Metrics;
use crate::transport::PeerDirectory;

/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    pub inputs: Sender<Input>,
    pub status: watch::Receiver<NodeStatus>,
    pub directory: Arc<PeerDirectory>,
    pub members: Members,
    pub metrics: Arc<Metrics>,
    pub request_timeout: Duration,
}

/// The client-facing HTTP service.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/kv/{key}", get(read).put(put).delete(delete))
        .route("/kv/{key}/cas", post(cas))
        .route("/kv/{key}/append", post(append))
        .route("/sessions", post(open_session))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// An error answer: a status, a JSON body with at least `error`, maybe extra headers.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    body: Value,
    location: Option<String>,
    retry_after: bool,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: json!({ "error": message.into() }),
            location: None,
            retry_after: false,
        }
    }

    fn with(mut self, field: &str, value: Value) -> ApiError {
        self.body[field] = value;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        if self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

type ApiResult = Result<Response, ApiError>;

fn ok(body: Value) -> ApiResult {
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

fn key_from(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(key) = path.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    if key.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "the key is empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        let message = format!(
            "the key is {} bytes; at most {MAX_KEY_BYTES} are allowed",
            key.len()
        );
        return Err(ApiError::new(StatusCode::BAD_REQUEST, message));
    }
    Ok(key)
}

/// Parses a JSON object body and takes the named fields out of it (each must be present;
/// `null` is a value like any other, but none may be nested deeper than [`MAX_VALUE_DEPTH`]).
fn fields<const N: usize>(
    body: Result<Bytes, BytesRejection>,
    names: [&str; N],
) -> Result<[Value; N], ApiError> {
    let body = body.map_err(|e| {
        let message = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            format!("the body is over {MAX_BODY_BYTES} bytes")
        } else {
            e.body_text()
        };
        ApiError::new(e.status(), message)
    })?;
    let mut object = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON object",
            ));
        }
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid JSON: {e}"),
            ));
        }
    };
    let mut values = std::array::from_fn(|_| Value::Null);
    for (slot, name) in values.iter_mut().zip(names) {
        *slot = object.remove(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the body has no `{name}` field"),
            )
        })?;
    }
    if let Some(extra) = object.keys().next() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("unknown field `{extra}` in the body"),
        ));
    }
    if let Some(name) = names
        .iter()
        .zip(&values)
        .find_map(|(name, value)| nested_deeper_than(value, MAX_VALUE_DEPTH).then_some(name))
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "`{name}` is nested more than {MAX_VALUE_DEPTH} arrays or objects deep; \
                 flatten it"
            ),
        ));
    }
    Ok(values)
}

/// Reads the optional `client-id` / `request-seq` headers.
fn session_from(headers: &HeaderMap) -> Result<Option<SessionRef>, ApiError> {
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        headers
            .get(name)
            .map(|v| v.to_str().map(str::to_string))
            .transpose()
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("the `{name}` header is not text"),
                )
            })
    };
    match (text("client-id")?, text("request-seq")?) {
        (None, None) => Ok(None),
        (Some(client_id), Some(seq)) => {
            let client_id = client_id
                .parse()
                .ok()
                .filter(|&id: &u64| id > 0)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "`client-id: {client_id}` is not a session id; open a session with \
                         `POST /sessions` and send the `client_id` it answers"
                        ),
                    )
                })?;
            let seq = seq
                .parse()
                .ok()
                .filter(|&seq: &u64| seq > 0)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("`request-seq: {seq}` is not a positive integer"),
                    )
                })?;
            Ok(Some(SessionRef { client_id, seq }))
        }
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "`client-id` and `request-seq` must be given together",
        )),
    }
}

/// Turns a refusal of the Raft loop into an answer; a follower redirects to the leader.
fn refusal(state: &ApiState, error: ClientError, uri: &OriginalUri) -> ApiError {
    match error {
        ClientError::NotLeader {
            leader: Some(leader),
        } => {
            let name = state.members.name_of(leader);
            match state.directory.client_addr(leader) {
                Some(addr) => {
                    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                    let url = format!("http://{addr}{path}");
                    let mut e = ApiError::new(StatusCode::TEMPORARY_REDIRECT, "not the leader")
                        .with("leader", json!(name))
                        .with("leader_url", json!(format!("http://{addr}")));
                    e.location = Some(url);
                    e
                }
                None => no_leader().with("leader", json!(name)),
            }
        }
        ClientError::NotLeader { leader: None } => no_leader(),
        ClientError::NotApplied | ClientError::ReadAborted => {
            let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string());
            e.retry_after = true;
            e
        }
        ClientError::OutcomeUnknown => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, error.to_string())
        }
    }
}

fn no_leader() -> ApiError {
    let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no leader");
    e.retry_after = true;
    e
}

/// Hands an input to the Raft loop and waits for its answer, at most `request_timeout`.
async fn ask<T>(
    state: &ApiState,
    uri: &OriginalUri,
    input: impl FnOnce(oneshot::Sender<Result<T, ClientError>>) -> Input,
    what_if_lost: &str,
) -> Result<T, ApiError> {
    let (reply, answer) = oneshot::channel();
    state
        .inputs
        .send(input(reply))
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down"))?;
    match tokio::time::timeout(state.request_timeout, answer).await {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(error))) => Err(refusal(state, error, uri)),
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the node stopped; {what_if_lost}"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "no answer within {:?}; {what_if_lost}",
                state.request_timeout
            ),
        )),
    }
}

const WRITE_UNKNOWN: &str = "the write may or may not have been applied";

async fn write(
    state: &ApiState,
    uri: &OriginalUri,
    headers: &HeaderMap,
    key: String,
    op: WriteOp,
) -> ApiResult {
    let command = Command {
        session: session_from(headers)?,
        key,
        op,
    };
    let result = ask(
        state,
        uri,
        |reply| Input::Write { command, reply },
        WRITE_UNKNOWN,
    )
    .await?;
    answer(result)
}

/// The answer to a write that was applied with this result.
fn answer(result: WriteResult) -> ApiResult {
    match result {
        WriteResult::Written | WriteResult::Deleted => ok(json!({ "ok": true })),
        WriteResult::Appended { length } => ok(json!({ "ok": true, "length": length })),
        WriteResult::NotFound => Err(ApiError::new(StatusCode::NOT_FOUND, "key not found")),
        WriteResult::CasMismatch { current } => Err(observed(
            ApiError::new(StatusCode::CONFLICT, "cas mismatch"),
            current,
        )),
        WriteResult::NotAList { current } => Err(observed(
            ApiError::new(
                StatusCode::CONFLICT,
                "the key holds a value that is not a list",
            ),
            current,
        )),
        // This retry changed nothing, but the write it retries may have been applied by an
        // earlier attempt; the node no longer keeps that answer, so the outcome is unknown.
        WriteResult::StaleSequence { latest } => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "request-seq is older than this client's latest write ({latest}); an earlier \
                 attempt may or may not have been applied, and its answer is no longer kept"
            ),
        )),
        // The same, for the client's latest write: its session is still there (so the retry
        // was recognised and not applied again), but its answer was forgotten to keep the
        // table within its bytes.
        WriteResult::AnswerForgotten { seq } => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "outcome unknown: this retry of request-seq {seq} was not applied, but an \
                 earlier attempt may or may not have been, and the client's session no \
                 longer keeps its answer"
            ),
        )),
        WriteResult::SessionsFull { max_clients } => {
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "no session opened: the node keeps sessions for at most {max_clients} \
                     clients and none has expired yet; retry later, or write without \
                     `client-id`"
                ),
            );
            e.retry_after = true;
            Err(e)
        }
        WriteResult::SessionOpened { client_id } => Ok((
            StatusCode::CREATED,
            axum::Json(json!({ "client_id": client_id })),
        )
            .into_response()),
        // The table forgot the client, so it cannot tell a retry from a new write: it
        // applies neither, and an earlier attempt may or may not have been applied.
        WriteResult::SessionExpired { client_id } => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "outcome unknown: session {client_id} expired, so this write was not applied, \
                 and whether an earlier attempt of it was is no longer known; open a new \
                 session with `POST /sessions`"
            ),
        )),
        WriteResult::UnknownSession { client_id } => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "not applied: no session {client_id} was ever opened; open one with \
                 `POST /sessions`"
            ),
        )),
    }
}

/// Adds what a refused write saw to its answer: the value, or only its size when the answer
/// comes from a session that did not keep a value that large.
fn observed(error: ApiError, current: Observed) -> ApiError {
    match current {
        Observed::Value(value) => error.with("value", value),
        Observed::TooLarge { bytes } => error.with("value_bytes", json!(bytes)),
    }
}

#[derive(Deserialize)]
struct ReadParams {
    #[serde(default)]
    stale: bool,
}

async fn read(
    State(state): State<ApiState>,
    uri: OriginalUri,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<ReadParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let key = key_from(path)?;
    let Query(params) =
        params.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let lookup = key.clone();
    let value = if params.stale {
        ask(
            &state,
            &uri,
            |reply| Input::LocalRead { key: lookup, reply },
            "",
        )
        .await?
    } else {
        ask(&state, &uri, |reply| Input::Read { key: lookup, reply }, "").await?
    };
    match value {
        Some(value) => ok(json!({ "key": key, "value": value })),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "key not found").with("key", json!(key))),
    }
}

async fn put(
    State(state): State<ApiState>,
    uri: OriginalUri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let key = key_from(path)?;
    let [value] = fields(body, ["value"])?;
    write(&state, &uri, &headers, key, WriteOp::Put { value }).await
}

async fn delete(
    State(state): State<ApiState>,
    uri: OriginalUri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let key = key_from(path)?;
    write(&state, &uri, &headers, key, WriteOp::Delete).await
}

async fn cas(
    State(state): State<ApiState>,
    uri: OriginalUri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let key = key_from(path)?;
    let [from, to] = fields(body, ["from", "to"])?;
    write(&state, &uri, &headers, key, WriteOp::Cas { from, to }).await
}

async fn append(
    State(state): State<ApiState>,
    uri: OriginalUri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let key = key_from(path)?;
    let [value] = fields(body, ["value"])?;
    write(&state, &uri, &headers, key, WriteOp::Append { value }).await
}

/// Opens a client session through the log; its id is the index the opening was applied at.
/// Session headers on this request are ignored: a retried opening opens another session.
async fn open_session(State(state): State<ApiState>, uri: OriginalUri) -> ApiResult {
    let command = Command {
        session: None,
        key: String::new(),
        op: WriteOp::OpenSession,
    };
    let result = ask(
        &state,
        &uri,
        |reply| Input::Write { command, reply },
        "a session may or may not have been opened",
    )
    .await?;
    answer(result)
}

/// The node's status, and `realtime_us`: what its CLOCK_REALTIME reads as it answers, in
/// microseconds since the epoch. Read-only and for observers: the harness compares it with
/// its own clock to see a clock fault move this node's clock (nothing in the node uses it).
async fn status(State(state): State<ApiState>) -> axum::Json<Value> {
    let status = state.status.borrow().clone();
    let mut body = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    let realtime_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as i64);
    body["realtime_us"] = json!(realtime_us);
    axum::Json(body)
}

async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

async fn health() -> axum::Json<Value> {
    axum::Json(json!({ "ok": true }))
}

async fn no_route(uri: OriginalUri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no such route: {}", uri.path()),
    )
}

async fn method_not_allowed(uri: OriginalUri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed on {}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<const N: usize>(body: &str, names: [&str; N]) -> Result<[Value; N], ApiError> {
        fields(Ok(Bytes::from(body.to_string())), names)
    }

    /// Bodies: any bytes, JSON-ish text, and objects with the expected fields around values
    /// nested at any depth up to far past the limit.
    fn any_body() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            "[\\{\\}\\[\\]\":,a-z0-9 .eE+-]{0,200}".prop_map(String::into_bytes),
            (0usize..20_000, "[a-z]{0,4}").prop_map(|(depth, extra)| {
                format!(
                    "{{\"value\": {}1{}, \"{extra}\": 0}}",
                    "[".repeat(depth),
                    "]".repeat(depth)
                )
                .into_bytes()
            }),
        ]
    }

    proptest::proptest! {
        /// Whatever a client posts, a body is taken apart or refused with 400, never a panic
        /// (nor a stack overflow at any depth), and what is taken is within the depth limit.
        #[test]
        fn any_body_is_taken_apart_or_refused(body in any_body()) {
            match fields(Ok(Bytes::from(body)), ["value", "previous"]) {
                Ok(values) => proptest::prop_assert!(
                    values.iter().all(|v| !nested_deeper_than(v, MAX_VALUE_DEPTH))
                ),
                Err(error) => proptest::prop_assert_eq!(error.status, StatusCode::BAD_REQUEST),
            }
        }

        /// Whatever bytes the session headers carry, they are read or refused with 400, and
        /// a session read has a client id within its limit.
        #[test]
        fn any_session_headers_are_read_or_refused(
            client_id in proptest::option::of(proptest::collection::vec(32u8..=255, 0..400)),
            seq in proptest::option::of(proptest::collection::vec(32u8..=255, 0..30)),
        ) {
            let mut headers = HeaderMap::new();
            for (name, bytes) in [("client-id", client_id), ("request-seq", seq)] {
                if let Some(value) = bytes.and_then(|b| HeaderValue::from_bytes(&b).ok()) {
                    headers.insert(name, value);
                }
            }
            match session_from(&headers) {
                Ok(Some(session)) => proptest::prop_assert!(session.seq > 0),
                Ok(None) => {}
                Err(error) => proptest::prop_assert_eq!(error.status, StatusCode::BAD_REQUEST),
            }
        }
    }

    /// `{"value": [[...[1]...]]}` with the value nested `depth` arrays deep.
    fn nested_body(field: &str, depth: usize) -> String {
        format!(
            "{{\"{field}\": {}1{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        )
    }

    #[test]
    fn fields_takes_exactly_the_named_fields() {
        let [from, to] = parse(r#"{"from": null, "to": {"a": 1}}"#, ["from", "to"]).unwrap();
        assert_eq!((from, to), (Value::Null, json!({"a": 1})));
        for bad in [
            r#"{"from": 1}"#,
            r#"{"from": 1, "to": 2, "x": 3}"#,
            "[1]",
            "{",
        ] {
            let e = parse(bad, ["from", "to"]).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(e.body["error"].is_string(), "{bad}");
        }
    }

    #[test]
    fn values_nested_deeper_than_the_limit_are_refused() {
        let [value] = parse(&nested_body("value", MAX_VALUE_DEPTH), ["value"]).unwrap();
        assert!(!nested_deeper_than(&value, MAX_VALUE_DEPTH));
        let objects = format!(
            "{{\"value\": {}1{}}}",
            "{\"a\": ".repeat(MAX_VALUE_DEPTH),
            "}".repeat(MAX_VALUE_DEPTH)
        );
        parse(&objects, ["value"]).unwrap();

        // One level more, in any field, or far more (up to what serde_json parses at all).
        let refused = |e: ApiError, field: &str| {
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            let message = e.body["error"].as_str().unwrap();
            let expected = format!("`{field}` is nested more than {MAX_VALUE_DEPTH}");
            assert!(message.contains(&expected), "{message}");
        };
        for depth in [MAX_VALUE_DEPTH + 1, 126] {
            refused(
                parse(&nested_body("value", depth), ["value"]).unwrap_err(),
                "value",
            );
        }
        let deep_to = format!(
            r#"{{"from": 1, "to": {}}}"#,
            nested_body("x", MAX_VALUE_DEPTH)
        );
        refused(parse(&deep_to, ["from", "to"]).unwrap_err(), "to");
        // Past serde_json's own limit the body is not JSON it can read: still a 400.
        let e = parse(&nested_body("value", 200), ["value"]).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.body["error"].as_str().unwrap().contains("not valid JSON"));
    }

    #[test]
    fn a_stale_retry_is_answered_as_outcome_unknown() {
        let e = answer(WriteResult::StaleSequence { latest: 7 }).unwrap_err();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        let message = e.body["error"].as_str().unwrap();
        assert!(message.contains("may or may not"), "{message}");
        assert!(message.contains("(7)"), "{message}");
        let e = answer(WriteResult::CasMismatch {
            current: Observed::Value(json!(1)),
        })
        .unwrap_err();
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert_eq!(e.body, json!({"error": "cas mismatch", "value": 1}));
    }

    #[test]
    fn session_answers_say_what_is_certain() {
        // A forgotten answer: the retry was not applied, but the write may have been.
        let e = answer(WriteResult::AnswerForgotten { seq: 3 }).unwrap_err();
        assert_eq!(e.status, StatusCode::GATEWAY_TIMEOUT);
        let message = e.body["error"].as_str().unwrap();
        assert!(message.contains("outcome unknown"), "{message}");
        assert!(message.contains("request-seq 3"), "{message}");
        // A full table: no session opened, try again later.
        let e = answer(WriteResult::SessionsFull { max_clients: 9 }).unwrap_err();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.retry_after);
        assert!(
            e.body["error"]
                .as_str()
                .unwrap()
                .starts_with("no session opened")
        );
        // An expired session: this write was not applied, an earlier attempt may have been.
        let e = answer(WriteResult::SessionExpired { client_id: 4 }).unwrap_err();
        assert_eq!(e.status, StatusCode::GATEWAY_TIMEOUT);
        let message = e.body["error"].as_str().unwrap();
        assert!(message.starts_with("outcome unknown"), "{message}");
        assert!(message.contains("POST /sessions"), "{message}");
        // An id never handed out: certainly not applied.
        let e = answer(WriteResult::UnknownSession { client_id: 4 }).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        // A mismatch whose value the session did not keep: still certain, without it.
        let e = answer(WriteResult::CasMismatch {
            current: Observed::TooLarge { bytes: 1_000_002 },
        })
        .unwrap_err();
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert_eq!(
            e.body,
            json!({"error": "cas mismatch", "value_bytes": 1_000_002})
        );
    }

    #[test]
    fn session_headers_take_an_opened_id_and_a_positive_sequence_number() {
        let headers = |id: &'static str, seq: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert("client-id", HeaderValue::from_static(id));
            headers.insert("request-seq", HeaderValue::from_static(seq));
            headers
        };
        assert_eq!(
            session_from(&headers("17", "1")).unwrap(),
            Some(SessionRef {
                client_id: 17,
                seq: 1
            })
        );
        for (id, seq, says) in [
            ("c1", "1", "POST /sessions"),
            ("0", "1", "POST /sessions"),
            ("17", "0", "positive"),
            ("17", "-1", "positive"),
        ] {
            let e = session_from(&headers(id, seq)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            let message = e.body["error"].as_str().unwrap();
            assert!(message.contains(says), "{message}");
        }
    }

    #[test]
    fn no_leader_is_a_503_with_retry_after() {
        let response = no_leader().into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
