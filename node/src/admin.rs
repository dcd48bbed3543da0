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
//!
//! `GET /admin/members` answers 200 with the members as this node sees them:
//! `{"node", "voters", "outgoing", "learners", "pending", "leader", "term"}` (`outgoing`, the
//! voters being left, is non-empty only during a change of voters). Names are those of
//! `--peers`: a node can join only if every member lists it there.
//!
//! `POST /admin/members` with `{"name": "n4", "role": "learner" | "voter"}` adds a node
//! (as a voter: through the joint configuration; a learner is promoted the same way), or with
//! `{"name": "n4", "replaces": "n2"}` puts `n4` in the place of voter `n2` in one change;
//! `DELETE /admin/members/{name}` removes a member (the leader too: it steps down once the
//! change commits). Each answers 200 with the new members once the change has committed.
//! Errors: 400 (a malformed body, an unknown name, a change that does not apply), 409 (this
//! node is not the leader, `leader` names it; or another change is in progress), 503 (the
//! leader is busy with a transfer or has not committed an entry of its term yet: nothing
//! changed, retry), 504 (not committed in time, or leadership moved first: it may still
//! complete).

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use crossbeam_channel::Sender;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::driver::Input;
use crate::leadership::TransferFailure;
use crate::members::Members;
use crate::membership_changes::{ChangeFailure, MembersView};
use crate::raft::MembershipChange;

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
    /// How long the Raft loop waits for a membership change to commit.
    pub membership_change_timeout: Duration,
}

/// The admin routes, to merge into the client router.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/admin/transfer-leader", post(transfer_leader))
        .route("/admin/members", get(list_members).post(add_member))
        .route("/admin/members/{name}", delete(remove_member))
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
    let outcome = ask_loop(
        &state.inputs,
        |reply| Input::TransferLeadership { to, reply },
        state.transfer_timeout,
        "the transfer may still happen",
    )
    .await;
    match outcome {
        Ok(Ok(done)) => answer(
            StatusCode::OK,
            json!({ "leader": done.leader, "term": done.term }),
        ),
        Ok(Err(failure)) => refusal(failure),
        Err(response) => response,
    }
}

/// Hands the Raft loop the request `input` makes of a reply channel, and waits for its
/// answer. The loop answers by its own deadline, `deadline`; this waits a second longer, only
/// to guard against a stuck loop: then 504, saying what `may_still` happen.
async fn ask_loop<T>(
    inputs: &Sender<Input>,
    input: impl FnOnce(oneshot::Sender<T>) -> Input,
    deadline: Duration,
    may_still: &str,
) -> Result<T, Response> {
    let shutting_down = || error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down");
    let (reply, outcome) = oneshot::channel();
    if inputs.send(input(reply)).is_err() {
        return Err(shutting_down());
    }
    let patience = deadline + Duration::from_secs(1);
    match tokio::time::timeout(patience, outcome).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(shutting_down()),
        Err(_) => Err(error(
            StatusCode::GATEWAY_TIMEOUT,
            format!("no answer within {patience:?}; {may_still}"),
        )),
    }
}

/// The body of `POST /admin/members`.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct AddRequest {
    name: String,
    /// `learner` or `voter`; absent with `replaces`, which makes a voter.
    role: Option<Role>,
    /// The voter the new one takes the place of.
    replaces: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Role {
    Learner,
    Voter,
}

/// The change a `POST /admin/members` body asks for, with names resolved.
fn parse_add(body: &[u8], members: &Members) -> Result<MembershipChange, String> {
    let request: AddRequest = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the body must be {{\"name\": NAME, \"role\": \"learner\" | \"voter\"}} or \
             {{\"name\": NAME, \"replaces\": NAME}}: {e}"
        )
    })?;
    let add = resolve(members, &request.name)?;
    match (request.role, request.replaces) {
        (Some(Role::Learner), None) => Ok(MembershipChange::AddLearner(add)),
        (Some(Role::Voter), None) => Ok(MembershipChange::AddVoter(add)),
        (None | Some(Role::Voter), Some(replaced)) => Ok(MembershipChange::Replace {
            remove: resolve(members, &replaced)?,
            add,
        }),
        (Some(Role::Learner), Some(_)) => {
            Err("a replacement is a voter: leave out \"role\" or make it \"voter\"".into())
        }
        (None, None) => Err("say \"role\": \"learner\" or \"voter\", or \"replaces\"".into()),
    }
}

/// The Raft id of a node named in `--peers` (or this node).
fn resolve(members: &Members, name: &str) -> Result<u64, String> {
    members.id_of(name).ok_or_else(|| {
        format!(
            "`{name}` is not a node this one knows; known nodes (--peers and itself) are {}",
            members.names().join(", ")
        )
    })
}

async fn list_members(State(state): State<AdminState>) -> Response {
    let (reply, view) = oneshot::channel();
    if state.inputs.send(Input::Members { reply }).is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down");
    }
    match tokio::time::timeout(Duration::from_secs(5), view).await {
        Ok(Ok(view)) => answer(StatusCode::OK, members_json(&view)),
        _ => error(StatusCode::SERVICE_UNAVAILABLE, "the node did not answer"),
    }
}

fn members_json(view: &MembersView) -> Value {
    serde_json::to_value(view).expect("a view of names and numbers always serializes")
}

async fn add_member(
    State(state): State<AdminState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    match parse_add(&body, &state.members) {
        Ok(change) => change_membership(&state, change).await,
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

async fn remove_member(State(state): State<AdminState>, Path(name): Path<String>) -> Response {
    match resolve(&state.members, &name) {
        Ok(id) => change_membership(&state, MembershipChange::Remove(id)).await,
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

/// Asks the Raft loop for `change` and waits for its answer.
async fn change_membership(state: &AdminState, change: MembershipChange) -> Response {
    let outcome = ask_loop(
        &state.inputs,
        |reply| Input::ChangeMembership { change, reply },
        state.membership_change_timeout,
        "the change may still complete",
    )
    .await;
    match outcome {
        Ok(Ok(view)) => answer(StatusCode::OK, members_json(&view)),
        Ok(Err(failure)) => change_refusal(failure),
        Err(response) => response,
    }
}

/// The status code of each way a membership change fails.
fn change_refusal(failure: ChangeFailure) -> Response {
    let message = failure.to_string();
    match failure {
        ChangeFailure::NotLeader { leader } => answer(
            StatusCode::CONFLICT,
            json!({ "error": message, "leader": leader }),
        ),
        ChangeFailure::InProgress => error(StatusCode::CONFLICT, message),
        ChangeFailure::Invalid(_) => error(StatusCode::BAD_REQUEST, message),
        ChangeFailure::NotNow(_) => error(StatusCode::SERVICE_UNAVAILABLE, message),
        ChangeFailure::LeadershipLost | ChangeFailure::TimedOut(_) => {
            error(StatusCode::GATEWAY_TIMEOUT, message)
        }
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
    fn a_member_body_names_a_known_node_and_a_role_or_the_voter_it_replaces() {
        let members = Members::new("n1", ["n2", "n3", "n4"].map(String::from)).unwrap();
        let parse = |body: &str| parse_add(body.as_bytes(), &members);
        assert_eq!(
            parse(r#"{"name": "n4", "role": "learner"}"#),
            Ok(MembershipChange::AddLearner(4))
        );
        assert_eq!(
            parse(r#"{"name": "n4", "role": "voter"}"#),
            Ok(MembershipChange::AddVoter(4))
        );
        assert_eq!(
            parse(r#"{"name": "n4", "replaces": "n2"}"#),
            Ok(MembershipChange::Replace { remove: 2, add: 4 })
        );
        for bad in [
            r#"{"name": "n9", "role": "voter"}"#,
            r#"{"name": "n4"}"#,
            r#"{"name": "n4", "role": "leader"}"#,
            r#"{"name": "n4", "role": "learner", "replaces": "n2"}"#,
            r#"{"name": "n4", "replaces": "n9"}"#,
            "n4",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(
            parse(r#"{"name": "n9", "role": "voter"}"#)
                .unwrap_err()
                .contains("n1, n2, n3, n4")
        );
    }

    #[test]
    fn each_change_failure_has_its_status() {
        let cases = [
            (
                ChangeFailure::NotLeader { leader: None },
                StatusCode::CONFLICT,
            ),
            (ChangeFailure::InProgress, StatusCode::CONFLICT),
            (ChangeFailure::Invalid("x".into()), StatusCode::BAD_REQUEST),
            (
                ChangeFailure::NotNow("x".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (ChangeFailure::LeadershipLost, StatusCode::GATEWAY_TIMEOUT),
            (
                ChangeFailure::TimedOut(Duration::from_secs(5)),
                StatusCode::GATEWAY_TIMEOUT,
            ),
        ];
        for (failure, status) in cases {
            assert_eq!(change_refusal(failure).status(), status);
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
