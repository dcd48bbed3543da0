//! Operations as the checker sees them: each invocation paired with its completion (by
//! [`crate::pair`]), with call and return times.
//!
//! The rules (Knossos's, plus Porcupine's use of failed compare-and-sets):
//! - `ok`: it happened between call and return, with the completion's result;
//! - `fail`: it did not happen, so it is removed, except a `cas` failed with
//!   `"error":"cas-mismatch"`, which observed that the value differed from `from`;
//! - `info`, or no completion at all: indeterminate, it may take effect at any time after its
//!   call (its return time is unknown, and so is its result);
//! - nemesis events are faults, not operations, and are skipped.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::history::{EventType, History, Process};
use crate::location::Location;
use crate::name::Name;
use crate::pairing::{End, Pair, pair};

/// The `error` of a `fail` whose compare-and-set comparison failed.
pub const CAS_MISMATCH: &str = "cas-mismatch";

/// How an operation ended, as far as the checker is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It happened, with the recorded result.
    Ok,
    /// Unknown: it may have happened at any time after its call; its result is unknown.
    Info,
    /// A compare-and-set that did not happen because the value was not `from`.
    CasMismatch,
}

/// One operation of a client: what it did, between which times, and how it ended. Its names
/// and value are the events' own, shared, not copies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// The `index` of its invocation event.
    pub id: u64,
    /// The client that performed it.
    pub process: Process,
    /// The function: `read`, `write`, `cas`, ...
    pub f: Name,
    /// The key, if the history has keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Name>,
    /// The completion's value if it completed `ok` with one, and always for a `read` (its
    /// result, even `null`); otherwise the invocation's (a write's argument). Shared with
    /// the event it came from.
    pub value: Arc<Value>,
    /// When it was invoked.
    pub call: u64,
    /// When it completed; `None` if that is unknown (`info` or no completion).
    #[serde(rename = "return")]
    pub return_time: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether its invocation was marked as the final read of its key (`"final": true`).
    #[serde(default, rename = "final", skip_serializing_if = "std::ops::Not::not")]
    pub final_read: bool,
    /// Where its invocation was read from, for error messages.
    #[serde(skip)]
    pub location: Option<Location>,
}

/// The operations of a history, in the order of their invocations (see the module
/// documentation for the rules); an error names the first place where the history breaks the
/// pairing rules ([`crate::Problem`]), since the checker cannot judge a history it cannot
/// pair.
pub fn operations(history: &History) -> Result<Vec<Operation>, Error> {
    let pairing = pair(history);
    let pairs = pairing.well_formed(history)?;
    Ok(pairs
        .iter()
        .filter_map(|pair| operation(history, pair))
        .collect())
}

/// What `pair` is to the checker, or `None` if it is removed (a plain `fail`).
fn operation(history: &History, pair: &Pair) -> Option<Operation> {
    let invocation = pair.invocation();
    let mut operation = Operation {
        id: invocation.index,
        process: invocation.process,
        f: invocation.f.clone(),
        key: invocation.key.clone(),
        value: invocation.value.clone(),
        call: invocation.time,
        return_time: None,
        // Until a completion says otherwise, indeterminate.
        outcome: Outcome::Info,
        final_read: invocation.final_read,
        location: Some(history.location(pair.position())),
    };
    let End::Completed(completion) = pair.end() else {
        // No completion: it stays as invoked, without a return time.
        return Some(operation);
    };
    match completion.kind {
        EventType::Ok => {
            operation.outcome = Outcome::Ok;
            operation.return_time = Some(completion.time);
            // A read's result is its completion's, whatever the invocation carried; a
            // write's completion may leave its value out.
            if operation.f == "read" || !completion.value.is_null() {
                operation.value = completion.value.clone();
            }
        }
        EventType::Fail if completion.error.as_deref() == Some(CAS_MISMATCH) => {
            operation.outcome = Outcome::CasMismatch;
            operation.return_time = Some(completion.time);
        }
        EventType::Fail => return None,
        // Indeterminate: it stays as invoked, without a return time. (`pair` completes
        // nothing with an invocation.)
        EventType::Info | EventType::Invoke => {}
    }
    Some(operation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn history(lines: &[&str]) -> History {
        History::from_jsonl(&lines.join("\n")).unwrap()
    }

    #[test]
    fn ok_operations_take_the_completion_value_and_times() {
        let ops = operations(&history(&[
            r#"{"index":0,"time":10,"process":1,"type":"invoke","f":"read","value":null}"#,
            r#"{"index":1,"time":20,"process":2,"type":"invoke","f":"write","value":3}"#,
            r#"{"index":2,"time":30,"process":1,"type":"ok","f":"read","value":3}"#,
            r#"{"index":3,"time":40,"process":2,"type":"ok","f":"write"}"#,
        ]))
        .unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(
            (ops[0].id, ops[0].call, ops[0].return_time),
            (0, 10, Some(30))
        );
        assert_eq!(*ops[0].value, json!(3), "a read's value is its result");
        assert_eq!(
            *ops[1].value,
            json!(3),
            "an ok without a value keeps the invocation's"
        );
        assert_eq!(ops[1].outcome, Outcome::Ok);

        // A read invoked with a value still returns only what its completion says.
        let ops = operations(&history(&[
            r#"{"index":0,"time":10,"process":1,"type":"invoke","f":"read","value":5}"#,
            r#"{"index":1,"time":20,"process":1,"type":"ok","f":"read","value":null}"#,
        ]))
        .unwrap();
        assert_eq!(*ops[0].value, json!(null));
    }

    #[test]
    fn info_is_indeterminate_and_its_client_goes_on_under_a_new_process() {
        let ops = operations(&history(&[
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write","value":1}"#,
            r#"{"index":1,"time":2,"process":1,"type":"info","f":"write","value":1,"error":"timeout"}"#,
            r#"{"index":2,"time":3,"process":4,"type":"invoke","f":"read","value":null}"#,
            r#"{"index":3,"time":4,"process":4,"type":"ok","f":"read","value":1}"#,
            r#"{"index":4,"time":5,"process":2,"type":"invoke","f":"write","value":2}"#,
        ]))
        .unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!((ops[0].outcome, ops[0].return_time), (Outcome::Info, None));
        assert_eq!(ops[1].process, Process::Client(4));
        assert_eq!(ops[1].outcome, Outcome::Ok);
        assert_eq!(
            (ops[2].outcome, ops[2].return_time),
            (Outcome::Info, None),
            "an invocation without completion is indeterminate"
        );
    }

    #[test]
    fn failed_operations_are_removed_except_cas_mismatches() {
        let ops = operations(&history(&[
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write","value":1}"#,
            r#"{"index":1,"time":2,"process":1,"type":"fail","f":"write","value":1,"error":"no-leader"}"#,
            r#"{"index":2,"time":3,"process":1,"type":"invoke","f":"cas","value":[1,2]}"#,
            r#"{"index":3,"time":4,"process":1,"type":"fail","f":"cas","value":[1,2],"error":"cas-mismatch"}"#,
            r#"{"index":4,"time":5,"process":1,"type":"invoke","f":"cas","value":[2,3]}"#,
            r#"{"index":5,"time":6,"process":1,"type":"fail","f":"cas","value":[2,3],"error":"connection-refused"}"#,
            r#"{"index":6,"time":7,"process":"nemesis","type":"info","f":"kill","value":"n1"}"#,
        ]))
        .unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].id, 2);
        assert_eq!(ops[0].outcome, Outcome::CasMismatch);
        assert_eq!(ops[0].return_time, Some(4));
        assert_eq!(*ops[0].value, json!([1, 2]));
    }

    #[test]
    fn inconsistent_pairs_are_errors_naming_the_line() {
        let error = |lines: &[&str]| operations(&history(lines)).unwrap_err().to_string();
        assert_eq!(
            error(&[r#"{"index":0,"time":1,"process":1,"type":"ok","f":"read","value":1}"#]),
            "line 1: process 1 completes read but has no operation in flight (expected its invocation first)"
        );
        assert_eq!(
            error(&[
                r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write","key":"a","value":1}"#,
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"read","key":"a"}"#,
            ]),
            "line 2: process 1 invokes read while its write of key \"a\" (line 1) is still pending \
             (expected a completion first: a process runs one operation at a time)"
        );
        assert_eq!(
            error(&[
                r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write","value":1}"#,
                r#"{"index":1,"time":2,"process":1,"type":"ok","f":"read","value":1}"#,
            ]),
            "line 2: this completion of read does not match process 1's pending write (line 1) \
             (expected the same f and key)"
        );
        assert!(
            error(&[
                r#"{"index":0,"time":9,"process":1,"type":"invoke","f":"write","value":1}"#,
                r#"{"index":1,"time":2,"process":1,"type":"ok","f":"write","value":1}"#,
            ])
            .starts_with(
                "line 2: completes at time 2 but its write (line 1) was invoked at time 9"
            )
        );
    }
}
