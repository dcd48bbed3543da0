//! Lost writes in append and set workloads: every acknowledged element must be in the final
//! read.
//!
//! Per key, the final read is the read the run made once every fault was healed, marked
//! `"final": true` in the history; a key whose final read did not succeed is `unknown`, never
//! judged by an older read. In a history without such marks (one not written by Faultline),
//! it is the `ok` `read` that returned last. Each element added (by `add` or `append`) or read
//! there is one of:
//! - lost: its add was acknowledged (`ok`) before the final read began, yet it is absent;
//! - unexpected: present, but no add of it was attempted, or every add of it failed (a `fail`
//!   means it did not happen);
//! - recovered: present, and its adds were all indeterminate (`info`): one did happen.
//!
//! Adds that completed during the final read, or never, may be absent without being lost.

use std::collections::HashMap;

use faultline_history::{History, Location, Operation, Outcome, operations};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::verdict::Verdict;

/// The lost-writes verdict for a whole history. In JSON (`ops` are operation ids: the adds of
/// a lost or recovered element, the final read for an unexpected one):
///
/// ```json
/// {"valid": false, "attempted": 3, "acknowledged": 2, "lost": 1, "unexpected": 1,
///  "recovered": 1,
///  "keys": [{"key": "s", "valid": false, "final_read": 10, "attempted": 3,
///            "acknowledged": 2,
///            "lost": [{"value": 2, "ops": [2]}],
///            "unexpected": [{"value": 5, "ops": [10]}],
///            "recovered": [{"value": 3, "ops": [4]}]}]}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LostWritesResult {
    /// `false` if anything was lost or unexpected; `"unknown"` if a key with adds has no
    /// final read.
    pub valid: Verdict,
    /// Distinct elements attempted (acknowledged or indeterminate), over all keys.
    pub attempted: usize,
    /// Distinct elements acknowledged, over all keys.
    pub acknowledged: usize,
    /// Lost elements, over all keys.
    pub lost: usize,
    /// Unexpected elements, over all keys.
    pub unexpected: usize,
    /// Recovered elements, over all keys.
    pub recovered: usize,
    /// Each key with adds or reads, by key.
    pub keys: Vec<KeyLostWrites>,
}

/// One key's elements, classified.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyLostWrites {
    /// The key (`null` for a history without keys).
    pub key: Option<String>,
    /// This key's verdict.
    pub valid: Verdict,
    /// The id of the final read; `null` if there was none.
    pub final_read: Option<u64>,
    /// Distinct elements attempted.
    pub attempted: usize,
    /// Distinct elements acknowledged.
    pub acknowledged: usize,
    /// Acknowledged before the final read, absent from it.
    pub lost: Vec<Element>,
    /// In the final read, never successfully attempted.
    pub unexpected: Vec<Element>,
    /// In the final read, added only by indeterminate operations.
    pub recovered: Vec<Element>,
}

/// An element and the operations involved: its adds (lost, recovered), or the final read
/// (unexpected).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Element {
    /// The element.
    pub value: Value,
    /// Operation ids.
    pub ops: Vec<u64>,
}

/// Checks the adds and final reads of a history for lost writes.
pub fn lost_writes(history: &History) -> Result<LostWritesResult, Error> {
    let operations = operations(history)?;
    lost_writes_of(operations.iter(), final_reads_marked(history))
}

/// Whether `history` marks its final reads (`"final": true`), as a Faultline run does.
pub(crate) fn final_reads_marked(history: &History) -> bool {
    history.events().iter().any(|event| event.final_read)
}

/// Checks the adds and final reads among `operations` for lost writes; `marked`: whether the
/// history marks its final reads.
pub(crate) fn lost_writes_of<'a>(
    operations: impl IntoIterator<Item = &'a Operation>,
    marked: bool,
) -> Result<LostWritesResult, Error> {
    let mut by_key: Vec<(Option<&str>, Vec<&Operation>)> = Vec::new();
    let mut places: HashMap<Option<&str>, usize> = HashMap::new();
    for op in operations
        .into_iter()
        .filter(|op| is_add(op) || op.f == "read")
    {
        let key = op.key.as_deref();
        let place = *places.entry(key).or_insert_with(|| {
            by_key.push((key, Vec::new()));
            by_key.len() - 1
        });
        by_key[place].1.push(op);
    }
    by_key.sort_by(|a, b| a.0.cmp(&b.0));

    let keys = by_key
        .into_iter()
        .map(|(key, ops)| check_key(key, &ops, marked))
        .collect::<Result<Vec<_>, _>>()?;
    let total = |count: fn(&KeyLostWrites) -> usize| keys.iter().map(count).sum();
    Ok(LostWritesResult {
        valid: keys
            .iter()
            .fold(Verdict::Valid, |verdict, key| verdict.and(key.valid)),
        attempted: total(|key| key.attempted),
        acknowledged: total(|key| key.acknowledged),
        lost: total(|key| key.lost.len()),
        unexpected: total(|key| key.unexpected.len()),
        recovered: total(|key| key.recovered.len()),
        keys,
    })
}

fn is_add(op: &Operation) -> bool {
    op.f == "add" || op.f == "append"
}

/// What is known of the adds of one element.
#[derive(Default)]
struct Adds {
    value: Value,
    ok: Vec<u64>,
    /// Of the ok adds, those that returned before the final read was called.
    ok_before_final_read: Vec<u64>,
    info: Vec<u64>,
}

fn check_key(key: Option<&str>, ops: &[&Operation], marked: bool) -> Result<KeyLostWrites, Error> {
    let final_read = ops
        .iter()
        .filter(|op| op.f == "read" && op.outcome == Outcome::Ok && (op.final_read || !marked))
        .max_by_key(|op| (op.return_time, op.id));

    // Elements by their JSON text, in order of first add.
    let mut order: Vec<String> = Vec::new();
    let mut adds: HashMap<String, Adds> = HashMap::new();
    for op in ops.iter().filter(|op| is_add(op)) {
        let text = op.value.to_string();
        let element = adds.entry(text.clone()).or_insert_with(|| {
            order.push(text);
            Adds {
                value: Value::clone(&op.value),
                ..Adds::default()
            }
        });
        match op.return_time {
            Some(returned) => {
                element.ok.push(op.id);
                if final_read.is_some_and(|read| returned < read.call) {
                    element.ok_before_final_read.push(op.id);
                }
            }
            None => element.info.push(op.id),
        }
    }

    let mut result = KeyLostWrites {
        key: key.map(str::to_string),
        valid: Verdict::Valid,
        final_read: final_read.map(|read| read.id),
        attempted: adds.len(),
        acknowledged: adds.values().filter(|adds| !adds.ok.is_empty()).count(),
        lost: Vec::new(),
        unexpected: Vec::new(),
        recovered: Vec::new(),
    };
    let Some(final_read) = final_read else {
        if !adds.is_empty() {
            result.valid = Verdict::Unknown;
        }
        return Ok(result);
    };

    let present = match &*final_read.value {
        Value::Null => Vec::new(),
        Value::Array(elements) => elements.iter().collect(),
        other => {
            return Err(Error::malformed(
                final_read
                    .location
                    .unwrap_or(Location::Event(final_read.id)),
                format!("expected the read to return a list of elements, found {other}"),
            ));
        }
    };
    let present_texts: HashMap<String, &Value> = present
        .iter()
        .map(|&value| (value.to_string(), value))
        .collect();
    for text in &order {
        let element = &adds[text];
        let is_present = present_texts.contains_key(text);
        if !is_present && !element.ok_before_final_read.is_empty() {
            result.lost.push(Element {
                value: element.value.clone(),
                ops: element.ok_before_final_read.clone(),
            });
        } else if is_present && element.ok.is_empty() {
            result.recovered.push(Element {
                value: element.value.clone(),
                ops: element.info.clone(),
            });
        }
    }
    let mut reported = std::collections::HashSet::new();
    for value in present {
        let text = value.to_string();
        if !adds.contains_key(&text) && reported.insert(text) {
            result.unexpected.push(Element {
                value: value.clone(),
                ops: vec![final_read.id],
            });
        }
    }
    if !result.lost.is_empty() || !result.unexpected.is_empty() {
        result.valid = Verdict::Invalid;
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_history::EventType;
    use serde_json::json;

    /// Builds a history from (process, type, f, value) steps on key "s", time = position.
    fn history(steps: &[(u64, &str, &str, Value)]) -> History {
        let lines: Vec<String> = steps
            .iter()
            .enumerate()
            .map(|(i, (process, kind, f, value))| {
                let mut event = json!({"index": i, "time": i, "process": process, "type": kind,
                                       "f": f, "key": "s", "value": value});
                if *kind == "fail" || *kind == "info" {
                    event["error"] = json!("timeout");
                }
                event.to_string()
            })
            .collect();
        History::from_jsonl(&lines.join("\n")).unwrap()
    }

    #[test]
    fn elements_are_classified_against_the_final_read() {
        let result = lost_writes(&history(&[
            (0, "invoke", "add", json!(1)),
            (0, "ok", "add", json!(1)), // acknowledged, present
            (0, "invoke", "add", json!(2)),
            (0, "ok", "add", json!(2)), // acknowledged, absent: lost
            (0, "invoke", "add", json!(3)),
            (0, "info", "add", json!(3)), // indeterminate, present: recovered
            (1, "invoke", "add", json!(4)),
            (1, "fail", "add", json!(4)), // failed, yet present: unexpected
            (2, "invoke", "add", json!(6)),
            (2, "info", "add", json!(6)), // indeterminate, absent: fine
            (3, "invoke", "read", Value::Null),
            (4, "invoke", "add", json!(7)), // concurrent with the final read, absent: fine
            (4, "ok", "add", json!(7)),
            (3, "ok", "read", json!([1, 3, 4, 5])), // 5 was never attempted: unexpected
        ]))
        .unwrap();
        assert_eq!(result.valid, Verdict::Invalid);
        let key = &result.keys[0];
        assert_eq!(key.final_read, Some(10));
        assert_eq!((key.attempted, key.acknowledged), (5, 3));
        assert_eq!(
            key.lost,
            [Element {
                value: json!(2),
                ops: vec![2]
            }]
        );
        assert_eq!(
            key.recovered,
            [Element {
                value: json!(3),
                ops: vec![4]
            }]
        );
        let unexpected: Vec<_> = key.unexpected.iter().map(|e| e.value.clone()).collect();
        assert_eq!(unexpected, [json!(4), json!(5)]);
        assert!(key.unexpected.iter().all(|e| e.ops == [10]));
        assert_eq!(
            (result.lost, result.unexpected, result.recovered),
            (1, 2, 1)
        );
    }

    #[test]
    fn a_complete_final_read_is_valid() {
        let result = lost_writes(&history(&[
            (0, "invoke", "append", json!("a")),
            (0, "ok", "append", json!("a")),
            (1, "invoke", "read", Value::Null),
            (1, "ok", "read", json!(["a"])),
        ]))
        .unwrap();
        assert_eq!(result.valid, Verdict::Valid);
        assert_eq!(result.acknowledged, 1);
    }

    #[test]
    fn adds_without_a_final_read_cannot_be_judged() {
        let result = lost_writes(&history(&[
            (0, "invoke", "add", json!(1)),
            (0, "ok", "add", json!(1)),
        ]))
        .unwrap();
        assert_eq!(result.valid, Verdict::Unknown);
        assert_eq!(result.keys[0].final_read, None);
    }

    #[test]
    fn a_marked_final_read_that_failed_leaves_the_key_unknown_not_judged_by_an_older_read() {
        // A mid-run read sees [1]; 2 is appended after it; the final read (marked) times out.
        // Judged by the mid-run read, the key would be valid; it cannot be judged at all.
        let mut steps = history(&[
            (0, "invoke", "append", json!(1)),
            (0, "ok", "append", json!(1)),
            (1, "invoke", "read", Value::Null),
            (1, "ok", "read", json!([1])),
            (0, "invoke", "append", json!(2)),
            (0, "ok", "append", json!(2)),
            (2, "invoke", "read", Value::Null),
            (2, "info", "read", Value::Null),
        ])
        .events()
        .to_vec();
        steps[6].final_read = true;
        let result = lost_writes(&History::new(steps.clone())).unwrap();
        assert_eq!(result.valid, Verdict::Unknown);
        assert_eq!(result.keys[0].final_read, None);

        // Without marks (a history from elsewhere), the last ok read is the final one.
        steps[6].final_read = false;
        let result = lost_writes(&History::new(steps.clone())).unwrap();
        assert_eq!(result.keys[0].final_read, Some(2));

        // A marked final read that succeeds is the one that judges.
        steps[6].final_read = true;
        steps[7].kind = EventType::Ok;
        steps[7].value = json!([1]).into();
        steps[7].error = None;
        let result = lost_writes(&History::new(steps)).unwrap();
        assert_eq!(result.valid, Verdict::Invalid);
        assert_eq!(result.keys[0].final_read, Some(6));
        assert_eq!(result.lost, 1);
    }

    #[test]
    fn a_final_read_that_is_not_a_list_is_an_error() {
        let error = lost_writes(&history(&[
            (0, "invoke", "read", Value::Null),
            (0, "ok", "read", json!(3)),
        ]))
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 1: expected the read to return a list of elements, found 3"
        );
    }
}
