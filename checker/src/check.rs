//! One check of a whole history, the same for every entry point (`faultline check` on a file,
//! `faultline test` on its run): each key's linearizability against the model its own
//! operations call for, then the lost writes of the list keys, then the verdict of both.
//!
//! A history may hold keys of several models (a run's registers and lists): each key is
//! checked with its own model, the keys of one model together, and every model within what is
//! left of one budget.

use std::collections::BTreeMap;
use std::time::Instant;

use faultline_history::{History, Operation, operations};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::linearizability::{CheckOptions, CheckResult, check_model};
use crate::lost_writes::{LostWritesResult, final_reads_marked, lost_writes_of};
use crate::model::ModelKind;
use crate::verdict::Verdict;

/// Why a history with no operations is `unknown`: nothing in it can be judged, and a
/// pipeline that records nothing (a client that never ran, a file cut to nothing) must not
/// pass.
pub const NO_OPERATIONS: &str = "the history holds no operations";

/// What checking a history found. In JSON: `valid` (`true`, `false` or `"unknown"`),
/// `reason` when the history as a whole could not be judged, `linearizability` (one
/// [`CheckResult`] per model, in the order models are declared) and, if the history has list
/// keys, `lost_writes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryCheck {
    /// The verdict of every part together.
    pub valid: Verdict,
    /// Why the verdict is `unknown` when no part says so: [`NO_OPERATIONS`]. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Linearizability, one result per model, each over the keys of that model.
    pub linearizability: Vec<CheckResult>,
    /// Lost writes of the list-append and set keys; absent if there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_writes: Option<LostWritesResult>,
}

/// Checks `history`: every key against `model`, or, if `None`, each key against the model its
/// operations call for ([`ModelKind::infer`]; every key of a history that uses `get` or `put`
/// against kv); then lost writes over the list-append and set keys. The
/// models share `options.budget`, counted from the start of this call. A history without a
/// client operation (after failed ones are removed) is `unknown`, with [`NO_OPERATIONS`] as
/// its reason: an empty history proves nothing, and a run or a file that recorded nothing
/// must not pass.
pub fn check(
    history: &History,
    model: Option<ModelKind>,
    options: &CheckOptions,
) -> Result<HistoryCheck, Error> {
    let started = Instant::now();
    let operations = operations(history)?;
    if operations.is_empty() {
        return Ok(HistoryCheck {
            valid: Verdict::Unknown,
            reason: Some(NO_OPERATIONS.to_string()),
            linearizability: Vec::new(),
            lost_writes: None,
        });
    }
    let mut valid = Verdict::Valid;
    let mut linearizability = Vec::new();
    // Lists and sets only grow: an acknowledged element that the final read lacks was lost.
    let mut growing = Vec::new();
    for (model, ops) in by_model(&operations, model, options.whole) {
        if matches!(model, ModelKind::ListAppend | ModelKind::Set) {
            growing.extend(ops.iter().copied());
        }
        let result = check_model(ops, model, options, started)?;
        valid = valid.and(result.valid);
        linearizability.push(result);
    }
    let mut lost_writes = None;
    if !growing.is_empty() {
        let lost = lost_writes_of(growing, final_reads_marked(history))?;
        valid = valid.and(lost.valid);
        lost_writes = Some(lost);
    }
    Ok(HistoryCheck {
        valid,
        reason: None,
        linearizability,
        lost_writes,
    })
}

/// The operations of each model, in the order models are declared: all with `model` if
/// given (or if the history is checked whole, as one object, or is a kv history), else each
/// key's with its own.
fn by_model(
    operations: &[Operation],
    model: Option<ModelKind>,
    whole: bool,
) -> Vec<(ModelKind, Vec<&Operation>)> {
    // A history in kv's vocabulary (get, put) is kv throughout: a key of it that was only
    // appended to is still a string, not a list.
    let model = model.or_else(|| {
        let of_history = ModelKind::infer(operations);
        (whole || of_history == ModelKind::Kv).then_some(of_history)
    });
    if let Some(model) = model {
        return vec![(model, operations.iter().collect())];
    }
    let mut by_key: BTreeMap<Option<&str>, Vec<&Operation>> = BTreeMap::new();
    for op in operations {
        by_key.entry(op.key.as_deref()).or_default().push(op);
    }
    let mut by_model: BTreeMap<ModelKind, Vec<&Operation>> = BTreeMap::new();
    for ops in by_key.into_values() {
        let model = ModelKind::infer(ops.iter().copied());
        by_model.entry(model).or_default().extend(ops);
    }
    by_model.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// A history of one operation after another (`f`, key, value, outcome), each by its own
    /// client; a read's value is its result.
    fn history(ops: &[(&str, &str, Value, &str)]) -> History {
        let mut lines = Vec::new();
        for (i, (f, key, value, outcome)) in ops.iter().enumerate() {
            let (invoke, done) = (2 * i, 2 * i + 1);
            let argument = if *f == "read" {
                Value::Null
            } else {
                value.clone()
            };
            lines.push(
                json!({"index": invoke, "time": invoke, "process": i, "type": "invoke",
                              "f": f, "key": key, "value": argument}),
            );
            lines.push(
                json!({"index": done, "time": done, "process": i, "type": outcome,
                              "f": f, "key": key, "value": value}),
            );
        }
        let text: Vec<String> = lines.iter().map(Value::to_string).collect();
        History::from_jsonl(&text.join("\n")).unwrap()
    }

    #[test]
    fn each_key_is_checked_with_its_own_model_and_lists_for_lost_writes() {
        // A run's workload: a register with a cas, beside a list (which a register model
        // would reject: "cas failed" was the error of a model inferred for the whole file).
        let mut ops = vec![
            ("write", "r1", json!(1), "ok"),
            ("cas", "r1", json!([1, 2]), "ok"),
            ("read", "r1", json!(2), "ok"),
            ("append", "l1", json!(1), "ok"),
            ("append", "l1", json!(2), "ok"),
        ];
        let whole = [&ops[..], &[("read", "l1", json!([1, 2]), "ok")]].concat();
        let checked = check(&history(&whole), None, &CheckOptions::default()).unwrap();
        assert_eq!(checked.valid, Verdict::Valid);
        let models: Vec<_> = checked.linearizability.iter().map(|r| r.model).collect();
        assert_eq!(models, [ModelKind::CasRegister, ModelKind::ListAppend]);
        assert_eq!(checked.linearizability[0].keys.len(), 1);
        assert_eq!(checked.lost_writes.as_ref().unwrap().acknowledged, 2);

        // The final read misses an acknowledged append: a lost write, and not linearizable.
        ops.push(("read", "l1", json!([1]), "ok"));
        let checked = check(&history(&ops), None, &CheckOptions::default()).unwrap();
        assert_eq!(checked.valid, Verdict::Invalid);
        assert_eq!(checked.lost_writes.unwrap().lost, 1);
        assert_eq!(checked.linearizability[0].valid, Verdict::Valid);
        assert_eq!(checked.linearizability[1].valid, Verdict::Invalid);
    }

    #[test]
    fn a_history_without_operations_is_unknown_never_valid() {
        let nemesis_only = History::from_jsonl(
            r#"{"index":0,"time":0,"process":"nemesis","type":"info","f":"start","value":null}"#,
        )
        .unwrap();
        // Failed operations are removed: they did not happen.
        let failed_only = history(&[("write", "r1", json!(1), "fail")]);
        for empty in [History::default(), nemesis_only, failed_only] {
            for model in [None, Some(ModelKind::Register)] {
                let checked = check(&empty, model, &CheckOptions::default()).unwrap();
                assert_eq!(checked.valid, Verdict::Unknown);
                assert_eq!(checked.reason.as_deref(), Some(NO_OPERATIONS));
                let json = serde_json::to_value(&checked).unwrap();
                assert_eq!(json["valid"], "unknown");
                assert_eq!(json["reason"], NO_OPERATIONS);
            }
        }
        let some = check(
            &history(&[("write", "r1", json!(1), "ok")]),
            None,
            &CheckOptions::default(),
        )
        .unwrap();
        assert_eq!((some.valid, some.reason), (Verdict::Valid, None));
    }

    #[test]
    fn a_kv_history_is_kv_throughout() {
        let ops = [
            ("put", "a", json!("x"), "ok"),
            ("append", "b", json!("y"), "ok"),
        ];
        let checked = check(&history(&ops), None, &CheckOptions::default()).unwrap();
        assert_eq!(checked.linearizability.len(), 1);
        assert_eq!(checked.linearizability[0].model, ModelKind::Kv);
        assert_eq!(checked.lost_writes, None);
    }

    #[test]
    fn a_model_given_applies_to_every_key() {
        let ops = [
            ("write", "a", json!(1), "ok"),
            ("read", "b", json!(null), "ok"),
        ];
        let checked = check(
            &history(&ops),
            Some(ModelKind::Register),
            &CheckOptions::default(),
        )
        .unwrap();
        assert_eq!(checked.linearizability.len(), 1);
        assert_eq!(checked.linearizability[0].model, ModelKind::Register);
        assert_eq!(checked.linearizability[0].keys.len(), 2);
        assert_eq!(checked.lost_writes, None);
    }

    #[test]
    fn set_and_list_keys_are_judged_for_lost_writes_together() {
        let ops = [
            ("add", "s1", json!(1), "ok"),
            ("add", "s1", json!(2), "ok"),
            ("read", "s1", json!([2]), "ok"),
            ("append", "l1", json!(1), "ok"),
            ("read", "l1", json!([1]), "ok"),
        ];
        let checked = check(&history(&ops), None, &CheckOptions::default()).unwrap();
        let models: Vec<_> = checked.linearizability.iter().map(|r| r.model).collect();
        assert_eq!(models, [ModelKind::ListAppend, ModelKind::Set]);
        let lost = checked.lost_writes.unwrap();
        assert_eq!((lost.acknowledged, lost.lost), (3, 1));
        assert_eq!(lost.keys.len(), 2);
        assert_eq!(checked.valid, Verdict::Invalid);
    }
}
