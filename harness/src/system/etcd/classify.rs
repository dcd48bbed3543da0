//! What an answer of etcd's gateway, or the lack of one, says about an operation.
//!
//! A read changes nothing, so a read that went wrong in any way simply did not happen: `fail`
//! (as Jepsen's etcd client treats idempotent operations). A put or a txn may have been
//! proposed before anything went wrong, so it is `fail` only when etcd refused it before
//! proposing it, or when it was never sent; anything else is `info`.
//!
//! | answer | read | put (write, append) / txn (cas) |
//! |---|---|---|
//! | 200 | `ok`, the value read | `ok`; a txn without `succeeded`: `fail` `cas-mismatch` |
//! | 200 with a body that cannot be read | `fail` `bad response` | put: `ok` (200 is the commit); txn: `info` `bad response` |
//! | `etcdserver: no leader` (refused before the handler runs, since every KV request asks for a leader) | `fail` `no leader` | `fail` `no leader` |
//! | `etcdserver: not capable`, `etcdserver: rpc not supported for learner` (refused before the handler too) | `fail` | `fail` |
//! | gRPC code 3, InvalidArgument (a bad request, `request is too large`) | `fail` | `fail` |
//! | gRPC code 8, ResourceExhausted (`too many requests`, checked before proposing; no space) | `fail` | `fail` |
//! | `request timed out`, `leader changed`, `server stopped`, any other error, an error body that cannot be read | `fail` | `info` |
//! | connection refused, connect timeout, any connect error | `fail` | `fail` |
//! | timeout after connecting, connection lost after sending | `fail` | `info` |
//!
//! A reason is etcd's message without its `etcdserver: ` prefix (`no leader`,
//! `request timed out`), or `http N` when the body says nothing.

use faultline_history::ModelKind;
use faultline_workloads::{CAS_MISMATCH, Op, Outcome, Undelivered, model_for_key, undelivered};
use serde_json::Value;

use super::gateway::{ErrorBody, RangeResponse, TxnResponse, grpc_code};

/// Messages of refusals made before the request's handler runs: by the gRPC interceptor,
/// which checks for a leader (given the `hasleader` metadata), for the v3 API being enabled
/// and for a learner being asked.
const REFUSED_BEFORE_HANDLING: [&str; 3] = [
    "etcdserver: no leader",
    "etcdserver: not capable",
    "etcdserver: rpc not supported for learner",
];

/// How a request to the gateway ended, as far as the client could tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer<'a> {
    /// The gateway answered with this status and body.
    Http { status: u16, body: &'a [u8] },
    /// No connection was made, so nothing was sent; why, in a few words.
    NotSent(&'static str),
    /// The request was sent, or may have been, and no whole answer came back; why.
    Unanswered(&'static str),
}

impl Answer<'static> {
    /// What a request that got no HTTP answer, or whose body broke off, tells.
    pub fn from_error(error: &reqwest::Error) -> Answer<'static> {
        match undelivered(error) {
            Undelivered::NotSent(reason) => Answer::NotSent(reason),
            Undelivered::Unanswered(reason) => Answer::Unanswered(reason),
        }
    }
}

/// What `answer` says about `op` (see the module's table).
pub fn classify(op: &Op, answer: Answer<'_>) -> Outcome {
    match answer {
        Answer::Http { status, body } if (200..300).contains(&status) => answered(op, body),
        Answer::Http { status, body } => refused(op, status, body),
        Answer::NotSent(reason) => Outcome::Fail(reason.into()),
        Answer::Unanswered(reason) => unknown_unless_read(op, reason.into()),
    }
}

/// A 200: the operation happened; what it returned.
fn answered(op: &Op, body: &[u8]) -> Outcome {
    match op {
        Op::Read { key } => {
            let value = serde_json::from_slice::<RangeResponse>(body)
                .map_err(anyhow::Error::from)
                .and_then(|range| match model_for_key(key) {
                    Some(ModelKind::ListAppend) => range.list().map(list_value),
                    _ => range.register().map(Value::from),
                });
            match value {
                Ok(value) => Outcome::Ok(value),
                Err(_) => Outcome::Fail("bad response".into()),
            }
        }
        Op::Write { .. } | Op::Append { .. } => Outcome::Ok(op.argument()),
        Op::Cas { .. } => match serde_json::from_slice::<TxnResponse>(body) {
            Ok(txn) if txn.succeeded => Outcome::Ok(op.argument()),
            Ok(_) => Outcome::Fail(CAS_MISMATCH.into()),
            Err(_) => Outcome::Info("bad response".into()),
        },
    }
}

/// A list as the history records it: `null` for a list nobody appended to (as for a
/// register never written), else its elements.
fn list_value(elements: Vec<u64>) -> Value {
    if elements.is_empty() {
        Value::Null
    } else {
        Value::from(elements)
    }
}

/// An error answer.
fn refused(op: &Op, status: u16, body: &[u8]) -> Outcome {
    let Ok(error) = serde_json::from_slice::<ErrorBody>(body) else {
        return unknown_unless_read(op, format!("http {status}"));
    };
    let message = error.message();
    let reason = match message.strip_prefix("etcdserver: ").unwrap_or(message) {
        "" => format!("http {status}"),
        reason => reason.to_string(),
    };
    let before_proposing = REFUSED_BEFORE_HANDLING.contains(&message)
        || matches!(
            error.code,
            grpc_code::INVALID_ARGUMENT | grpc_code::RESOURCE_EXHAUSTED
        );
    if before_proposing {
        Outcome::Fail(reason)
    } else {
        unknown_unless_read(op, reason)
    }
}

/// `fail` for a read, which changes nothing whether or not it ran; `info` for anything else.
fn unknown_unless_read(op: &Op, reason: String) -> Outcome {
    if op.is_read() {
        Outcome::Fail(reason)
    } else {
        Outcome::Info(reason)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener};
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn read(key: &str) -> Op {
        Op::Read { key: key.into() }
    }
    fn write() -> Op {
        Op::Write {
            key: "r1".into(),
            value: 5,
        }
    }
    fn cas() -> Op {
        Op::Cas {
            key: "r1".into(),
            from: 3,
            to: 4,
        }
    }
    fn append() -> Op {
        Op::Append {
            key: "l1".into(),
            value: 9,
        }
    }

    /// The outcome of every operation given `answer`: register read, list read, write,
    /// append, cas.
    fn all(answer: Answer<'_>) -> [Outcome; 5] {
        [read("r1"), read("l1"), write(), append(), cas()].map(|op| classify(&op, answer))
    }

    fn http(status: u16, body: &str) -> Answer<'_> {
        Answer::Http {
            status,
            body: body.as_bytes(),
        }
    }

    fn fail(reason: &str) -> Outcome {
        Outcome::Fail(reason.into())
    }
    fn info(reason: &str) -> Outcome {
        Outcome::Info(reason.into())
    }

    const HEADER: &str = r#""header":{"cluster_id":"3907512067585347899","member_id":"3201956386285937898","revision":"3","raft_term":"2"}"#;

    #[test]
    fn a_200_is_ok_with_what_was_read_or_written() {
        let found = format!(r#"{{{HEADER},"kvs":[{{"key":"cjE=","value":"NQ=="}}],"count":"1"}}"#);
        assert_eq!(
            classify(&read("r1"), http(200, &found)),
            Outcome::Ok(json!(5))
        );
        let list =
            format!(r#"{{{HEADER},"kvs":[{{"value":"Mg=="}},{{"value":"MQ=="}}],"count":"2"}}"#);
        assert_eq!(
            classify(&read("l1"), http(200, &list)),
            Outcome::Ok(json!([2, 1]))
        );
        let put = format!("{{{HEADER}}}");
        assert_eq!(classify(&write(), http(200, &put)), Outcome::Ok(json!(5)));
        assert_eq!(classify(&append(), http(200, &put)), Outcome::Ok(json!(9)));
        let swapped = format!(
            r#"{{{HEADER},"succeeded":true,"responses":[{{"response_put":{{"header":{{"revision":"3"}}}}}}]}}"#
        );
        assert_eq!(
            classify(&cas(), http(200, &swapped)),
            Outcome::Ok(json!([3, 4]))
        );
    }

    #[test]
    fn nothing_found_reads_null() {
        let miss = format!("{{{HEADER}}}");
        assert_eq!(
            classify(&read("r1"), http(200, &miss)),
            Outcome::Ok(Value::Null)
        );
        assert_eq!(
            classify(&read("l1"), http(200, &miss)),
            Outcome::Ok(Value::Null)
        );
    }

    #[test]
    fn a_txn_whose_comparison_failed_is_a_cas_mismatch() {
        let mismatch = format!("{{{HEADER}}}");
        assert_eq!(classify(&cas(), http(200, &mismatch)), fail(CAS_MISMATCH));
    }

    #[test]
    fn a_200_that_cannot_be_read_fails_a_read_and_leaves_a_txn_unknown() {
        let garbled = http(200, "{\"kvs\":[{\"value\":\"YWJj\"}]");
        assert_eq!(
            all(garbled),
            [
                fail("bad response"),
                fail("bad response"),
                // The status alone says a put committed.
                Outcome::Ok(json!(5)),
                Outcome::Ok(json!(9)),
                info("bad response"),
            ]
        );
        let not_a_number = http(200, r#"{"kvs":[{"value":"YWJj"}]}"#);
        assert_eq!(classify(&read("r1"), not_a_number), fail("bad response"));
    }

    #[test]
    fn no_leader_fails_everything() {
        let body =
            r#"{"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14}"#;
        assert_eq!(all(http(503, body)), [(); 5].map(|_| fail("no leader")));
    }

    #[test]
    fn other_refusals_before_the_handler_fail_everything() {
        let body =
            r#"{"error":"etcdserver: not capable","message":"etcdserver: not capable","code":14}"#;
        assert_eq!(all(http(503, body)), [(); 5].map(|_| fail("not capable")));
        let body = r#"{"error":"etcdserver: rpc not supported for learner","message":"etcdserver: rpc not supported for learner","code":14}"#;
        assert_eq!(
            all(http(503, body)),
            [(); 5].map(|_| fail("rpc not supported for learner"))
        );
    }

    #[test]
    fn invalid_arguments_fail_everything() {
        let body = r#"{"error":"illegal base64 data at input byte 0","message":"illegal base64 data at input byte 0","code":3}"#;
        assert_eq!(
            all(http(400, body)),
            [(); 5].map(|_| fail("illegal base64 data at input byte 0"))
        );
        let body = r#"{"error":"etcdserver: request is too large","message":"etcdserver: request is too large","code":3}"#;
        assert_eq!(
            all(http(400, body)),
            [(); 5].map(|_| fail("request is too large"))
        );
    }

    #[test]
    fn too_many_requests_fail_everything() {
        let body = r#"{"error":"etcdserver: too many requests","message":"etcdserver: too many requests","code":8}"#;
        assert_eq!(
            all(http(429, body)),
            [(); 5].map(|_| fail("too many requests"))
        );
    }

    #[test]
    fn errors_after_proposing_fail_reads_and_leave_writes_unknown() {
        for (status, message, code) in [
            (503, "etcdserver: request timed out", 14),
            (503, "etcdserver: leader changed", 14),
            (503, "etcdserver: server stopped", 14),
            (500, "context deadline exceeded", 2),
            (504, "context deadline exceeded", 4),
        ] {
            let body = json!({"error": message, "message": message, "code": code}).to_string();
            let reason = message.strip_prefix("etcdserver: ").unwrap_or(message);
            assert_eq!(
                all(http(status, &body)),
                [
                    fail(reason),
                    fail(reason),
                    info(reason),
                    info(reason),
                    info(reason)
                ],
                "{message}"
            );
        }
    }

    #[test]
    fn an_error_body_that_says_nothing_is_named_by_its_status() {
        for body in ["<html>bad gateway</html>", "{}"] {
            assert_eq!(
                all(http(502, body)),
                [
                    fail("http 502"),
                    fail("http 502"),
                    info("http 502"),
                    info("http 502"),
                    info("http 502")
                ],
                "{body}"
            );
        }
    }

    #[test]
    fn not_sent_fails_everything_and_no_answer_fails_only_reads() {
        assert_eq!(
            all(Answer::NotSent("connection refused")),
            [(); 5].map(|_| fail("connection refused"))
        );
        assert_eq!(
            all(Answer::Unanswered("timeout")),
            [
                fail("timeout"),
                fail("timeout"),
                info("timeout"),
                info("timeout"),
                info("timeout")
            ]
        );
    }

    #[tokio::test]
    async fn a_refused_connection_was_not_sent_and_silence_is_unanswered() {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let refusing = format!("http://{}/", closed.local_addr().unwrap());
        drop(closed);
        let error = http.post(&refusing).send().await.unwrap_err();
        assert_eq!(
            Answer::from_error(&error),
            Answer::NotSent("connection refused")
        );

        // Accepts connections (the kernel does, from the backlog) and never answers.
        let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let url = format!("http://{}/", silent.local_addr().unwrap());
        let request = http
            .post(&url)
            .body("{}")
            .timeout(Duration::from_millis(200));
        let error = request.send().await.unwrap_err();
        assert_eq!(Answer::from_error(&error), Answer::Unanswered("timeout"));
    }
}
