//! What an answer of the Faultline HTTP contract, or the lack of one, says about an
//! operation.
//!
//! A `fail` is only given when the request certainly took no effect: it never reached a node
//! (connect error), or a node refused it (4xx, 503). Anything else the contract does not
//! define as a refusal is `info`, which is always safe.
//!
//! | answer | read | write, cas, append |
//! |---|---|---|
//! | 2xx | `ok`, the value read | `ok` |
//! | 404 | `ok`, `null` (missing key) | `fail` `http 404` |
//! | 307, 308 with `Location` | follow it | follow it |
//! | 409 `{"error":"cas mismatch"}` to a cas | | `fail` `cas-mismatch` |
//! | 503 | `fail` `no leader` or `http 503` | same |
//! | other 4xx | `fail` `http N` | same |
//! | 500, 504 and any other code | `info` `http N` | same |
//! | connect error | `fail` `connection refused`, `connect timeout`, `connect error` | same |
//! | timeout after connecting | `info` `timeout` | same |
//! | connection lost after sending | `info` `connection lost` | same |

use std::error::Error as _;
use std::io;

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use crate::op::Op;
use crate::outcome::{CAS_MISMATCH, Outcome};

/// What one HTTP answer means.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Answer {
    /// The operation ended so.
    Done(Outcome),
    /// The node is not the leader: ask again at this `Location` (as the node sent it).
    Redirect(String),
}

/// The JSON fields of answers that matter here.
#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    error: Option<String>,
    /// A read's value; absent from a body that is not a read's answer.
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
}

/// Deserializes a field that is present (even as `null`) to `Some`.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Classifies an HTTP answer to `op`. `body` is the answer's body, or why it could not be read
/// (`"timeout"`, `"connection lost"`).
pub(crate) fn classify_response(
    op: &Op,
    status: StatusCode,
    location: Option<&str>,
    body: Result<&[u8], &str>,
) -> Answer {
    let parsed = body
        .as_ref()
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Body>(bytes).ok());
    let error = parsed.as_ref().and_then(|body| body.error.as_deref());
    let code = status.as_u16();
    let outcome = match code {
        307 | 308 => {
            return match location {
                Some(location) => Answer::Redirect(location.to_string()),
                None => Answer::Done(Outcome::fail("redirect without location")),
            };
        }
        200..=299 if op.is_read() => match (body, parsed) {
            (Err(reason), _) => Outcome::info(reason),
            (
                Ok(_),
                Some(Body {
                    value: Some(value), ..
                }),
            ) => Outcome::Ok(value),
            (Ok(_), _) => Outcome::info("bad response"),
        },
        200..=299 => Outcome::Ok(op.argument()),
        404 if op.is_read() => Outcome::Ok(Value::Null),
        409 if matches!(op, Op::Cas { .. }) && error == Some("cas mismatch") => {
            Outcome::fail(CAS_MISMATCH)
        }
        503 if error == Some("no leader") => Outcome::fail("no leader"),
        400..=499 | 503 => Outcome::Fail(format!("http {code}")),
        _ => Outcome::Info(format!("http {code}")),
    };
    Answer::Done(outcome)
}

/// How far a request that got no whole answer got: the line between "certainly not
/// handled" and "perhaps handled" that every HTTP client of the harness draws the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undelivered {
    /// No connection was made (refused, connect timeout, any connect error) or the request
    /// could not even be built: nothing was sent. Why, in a few words.
    NotSent(&'static str),
    /// The request was sent, or may have been, and no whole answer came back: a timeout
    /// after connecting, or the connection lost. Why.
    Unanswered(&'static str),
}

/// What a reqwest error says of how far its request got.
pub fn undelivered(error: &reqwest::Error) -> Undelivered {
    if error.is_connect() {
        if io_error_kind(error) == Some(io::ErrorKind::ConnectionRefused) {
            Undelivered::NotSent("connection refused")
        } else if error.is_timeout() {
            Undelivered::NotSent("connect timeout")
        } else {
            Undelivered::NotSent("connect error")
        }
    } else if error.is_builder() {
        Undelivered::NotSent("bad request")
    } else if error.is_timeout() {
        Undelivered::Unanswered("timeout")
    } else {
        Undelivered::Unanswered("connection lost")
    }
}

/// Classifies a request that got no answer: `fail` if nothing was sent, else `info`.
pub(crate) fn classify_error(error: &reqwest::Error) -> Outcome {
    match undelivered(error) {
        Undelivered::NotSent(reason) => Outcome::fail(reason),
        Undelivered::Unanswered(reason) => Outcome::info(reason),
    }
}

/// Why a response body could not be read, in the words of [`classify_error`].
pub(crate) fn body_error_reason(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else {
        "connection lost"
    }
}

/// The kind of the first I/O error among the causes of `error`.
fn io_error_kind(error: &reqwest::Error) -> Option<io::ErrorKind> {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io_error) = cause.downcast_ref::<io::Error>() {
            return Some(io_error.kind());
        }
        source = cause.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read() -> Op {
        Op::Read { key: "r1".into() }
    }
    fn write() -> Op {
        Op::Write {
            key: "r1".into(),
            value: 3,
        }
    }
    fn cas() -> Op {
        Op::Cas {
            key: "r1".into(),
            from: 1,
            to: 2,
        }
    }
    fn append() -> Op {
        Op::Append {
            key: "l1".into(),
            value: 7,
        }
    }

    fn classify(op: &Op, code: u16, body: &str) -> Outcome {
        let status = StatusCode::from_u16(code).unwrap();
        match classify_response(op, status, None, Ok(body.as_bytes())) {
            Answer::Done(outcome) => outcome,
            Answer::Redirect(_) => panic!("unexpected redirect"),
        }
    }

    fn fail(reason: &str) -> Outcome {
        Outcome::fail(reason)
    }
    fn info(reason: &str) -> Outcome {
        Outcome::info(reason)
    }

    #[test]
    fn successes_record_the_read_value_or_the_argument() {
        assert_eq!(
            classify(&read(), 200, r#"{"key":"r1","value":4}"#),
            Outcome::Ok(json!(4))
        );
        assert_eq!(
            classify(&read(), 200, r#"{"key":"l1","value":[1,2]}"#),
            Outcome::Ok(json!([1, 2]))
        );
        assert_eq!(
            classify(&read(), 200, r#"{"key":"r1","value":null}"#),
            Outcome::Ok(Value::Null)
        );
        assert_eq!(
            classify(&read(), 404, r#"{"error":"key not found"}"#),
            Outcome::Ok(Value::Null)
        );
        assert_eq!(
            classify(&write(), 200, r#"{"ok":true}"#),
            Outcome::Ok(json!(3))
        );
        assert_eq!(
            classify(&cas(), 200, r#"{"ok":true}"#),
            Outcome::Ok(json!([1, 2]))
        );
        assert_eq!(
            classify(&append(), 200, r#"{"ok":true,"length":4}"#),
            Outcome::Ok(json!(7))
        );
        // Any 2xx means it happened, whatever the body.
        assert_eq!(classify(&write(), 204, ""), Outcome::Ok(json!(3)));
    }

    #[test]
    fn a_read_whose_value_is_unknown_is_info() {
        assert_eq!(
            classify(&read(), 200, r#"{"key":"r1"}"#),
            info("bad response")
        );
        assert_eq!(classify(&read(), 200, "not json"), info("bad response"));
        let lost = classify_response(&read(), StatusCode::OK, None, Err("connection lost"));
        assert_eq!(lost, Answer::Done(info("connection lost")));
        // A write's status is enough, even when its body is lost.
        let lost = classify_response(&write(), StatusCode::OK, None, Err("timeout"));
        assert_eq!(lost, Answer::Done(Outcome::Ok(json!(3))));
    }

    #[test]
    fn refusals_are_fail() {
        let mismatch = r#"{"error":"cas mismatch","value":0}"#;
        assert_eq!(classify(&cas(), 409, mismatch), fail(CAS_MISMATCH));
        // A 409 that is not a cas mismatch did not happen either, but observed nothing.
        assert_eq!(
            classify(
                &cas(),
                409,
                r#"{"error":"the key holds a value that is not a list"}"#
            ),
            fail("http 409")
        );
        assert_eq!(classify(&append(), 409, mismatch), fail("http 409"));
        let lost = classify_response(&cas(), StatusCode::CONFLICT, None, Err("timeout"));
        assert_eq!(lost, Answer::Done(fail("http 409")));

        assert_eq!(
            classify(&write(), 503, r#"{"error":"no leader"}"#),
            fail("no leader")
        );
        assert_eq!(
            classify(&read(), 503, r#"{"error":"no leader"}"#),
            fail("no leader")
        );
        assert_eq!(
            classify(&read(), 503, r#"{"error":"the read was aborted"}"#),
            fail("http 503")
        );
        for code in [400, 403, 404, 405, 413, 429] {
            assert_eq!(
                classify(&write(), code, "{}"),
                fail(&format!("http {code}"))
            );
        }
    }

    #[test]
    fn answers_that_do_not_say_whether_it_happened_are_info() {
        for code in [500, 502, 504, 301, 302] {
            for op in [read(), write(), cas(), append()] {
                assert_eq!(classify(&op, code, "{}"), info(&format!("http {code}")));
            }
        }
    }

    #[test]
    fn redirects_are_followed_only_with_a_location() {
        for code in [307, 308] {
            let status = StatusCode::from_u16(code).unwrap();
            let location = "http://127.0.0.12:8002/kv/r1";
            assert_eq!(
                classify_response(&write(), status, Some(location), Ok(b"{}")),
                Answer::Redirect(location.to_string())
            );
            assert_eq!(
                classify_response(&write(), status, None, Ok(b"{}")),
                Answer::Done(fail("redirect without location"))
            );
        }
    }
}
