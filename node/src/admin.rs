//! The admin HTTP API: operations on the cluster rather than on its data. Served on the
//! client port, beside [`crate::api`].
//!
//! `POST /admin/transfer-leader`, with an optional body `{"to": "n2"}`, answers 200
//! `{"leader": "n2", "term": T}` once this node has seen `n2` lead the newer term `T`.
//! Without `to`, leadership goes to the most up-to-date follower. Errors, each JSON with an
//! `error` message: 400 (a body that is not `{"to": NAME}`, an unknown member, this node
//! itself, no other member), 409 (this node is not the leader: `leader` names it, or is
//! null), 503 (the transfer was abandoned after an election timeout, replaced by a transfer
//! to another node, or another node won),
//! 504 (the target was not seen leading in time; it may still happen). While a transfer is
//! in flight the leader refuses writes with 503 (they did not happen).

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use crossbeam_channel::Sender;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::driver::Input;
use crate::leadership::TransferFailure;
use crate::members::Members;

/// The largest admin request body: a member name fits many times over.
const MAX_BODY_BYTES: usize = 4096;

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    pub inputs: Sender<Input>,
    pub members: Members,
    /// How long the Raft loop waits to see a transfer's target lead; the handler waits a
    /// little longer, so that the loop's own answer normally comes first.
    pub transfer_timeout: Duration,
}

/// The admin routes, to merge into the client router.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/admin/transfer-leader", post(transfer_leader))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The body of `POST /admin/transfer-leader`.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct TransferRequest {
    /// The member to hand leadership to; absent or null: the most up-to-date follower.
    to: Option<String>,
}

/// An empty body asks for the default target.
fn parse_request(body: &[u8]) -> Result<TransferRequest, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(TransferRequest::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| format!("the body must be empty or {{\"to\": \"<member name>\"}}: {e}"))
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    answer(status, json!({ "error": message.into() }))
}

async fn transfer_leader(
    State(state): State<AdminState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    let request = match parse_request(&body) {
        Ok(request) => request,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let to = match request.to {
        None => None,
        Some(name) => match state.members.id_of(&name) {
            Some(id) => Some(id),
            None => {
                let message = format!(
                    "`{name}` is not a member; members are {}",
                    state.members.names().join(", ")
                );
                return error(StatusCode::BAD_REQUEST, message);
            }
        },
    };
    let (reply, outcome) = oneshot::channel();
    if state
        .inputs
        .send(Input::TransferLeadership { to, reply })
        .is_err()
    {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down");
    }
    // The loop answers by its own deadline; this one only guards against a stuck loop.
    let patience = state.transfer_timeout + Duration::from_secs(1);
    match tokio::time::timeout(patience, outcome).await {
        Ok(Ok(Ok(done))) => answer(
            StatusCode::OK,
            json!({ "leader": done.leader, "term": done.term }),
        ),
        Ok(Ok(Err(failure))) => refusal(failure),
        Ok(Err(_)) => error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down"),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            format!("no answer within {patience:?}; the transfer may still happen"),
        ),
    }
}

/// The status code of each way a transfer fails.
fn refusal(failure: TransferFailure) -> Response {
    let message = failure.to_string();
    match failure {
        TransferFailure::NotLeader { leader } => answer(
            StatusCode::CONFLICT,
            json!({ "error": message, "leader": leader }),
        ),
        TransferFailure::ToSelf(_)
        | TransferFailure::UnknownTarget(_)
        | TransferFailure::NoFollower => error(StatusCode::BAD_REQUEST, message),
        TransferFailure::Abandoned { .. }
        | TransferFailure::Superseded { .. }
        | TransferFailure::LedElsewhere { .. } => error(StatusCode::SERVICE_UNAVAILABLE, message),
        TransferFailure::TimedOut { .. } => error(StatusCode::GATEWAY_TIMEOUT, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_empty_or_names_the_target() {
        assert_eq!(parse_request(b""), Ok(TransferRequest { to: None }));
        assert_eq!(parse_request(b" \n"), Ok(TransferRequest { to: None }));
        assert_eq!(parse_request(b"{}"), Ok(TransferRequest { to: None }));
        assert_eq!(
            parse_request(br#"{"to": null}"#),
            Ok(TransferRequest { to: None })
        );
        assert_eq!(
            parse_request(br#"{"to": "n2"}"#),
            Ok(TransferRequest {
                to: Some("n2".to_string())
            })
        );
        for bad in [&br#"{"to": 2}"#[..], br#"{"target": "n2"}"#, b"n2", b"[]"] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_failure_has_its_status() {
        let cases = [
            (
                TransferFailure::NotLeader {
                    leader: Some("n3".to_string()),
                },
                StatusCode::CONFLICT,
            ),
            (
                TransferFailure::UnknownTarget("n9".to_string()),
                StatusCode::BAD_REQUEST,
            ),
            (
                TransferFailure::ToSelf("n1".to_string()),
                StatusCode::BAD_REQUEST,
            ),
            (TransferFailure::NoFollower, StatusCode::BAD_REQUEST),
            (
                TransferFailure::Abandoned {
                    target: "n2".to_string(),
                },
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                TransferFailure::TimedOut {
                    target: "n2".to_string(),
                    timeout: Duration::from_secs(1),
                },
                StatusCode::GATEWAY_TIMEOUT,
            ),
        ];
        for (failure, status) in cases {
            assert_eq!(refusal(failure).status(), status);
        }
    }
}
