//! Knossos's set: `add e` puts an element in, `read` returns every element. As in Knossos a read
//! must return exactly the set; the order of what it returns does not matter (an EDN set
//! `#{1 2}` and a list `[2 1]` read alike), but an element returned twice matches no set.
//! A read of `null` is the empty set in JSON Lines, as for lists (an EDN read of `nil`
//! constrains nothing: see [`crate::import::edn`]).

use std::collections::HashSet;

use faultline_history::{Operation, Outcome};
use serde_json::Value;
use stateright::semantics::SequentialSpec;

use super::values::{ValueId, Values};
use super::{
    ModelKind, Reader, generic_rejection, mismatch_without_cas, model_operation, unsupported,
};
use crate::wgl::ModelOperation;

/// A set of `V`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Set<V> {
    /// The elements, sorted, each once: one representation per set, so that equal sets are
    /// equal states.
    pub elements: Vec<V>,
}

impl<V: Ord> Set<V> {
    /// The set of `elements`, in any order, repeated or not.
    pub fn new(mut elements: Vec<V>) -> Self {
        elements.sort();
        elements.dedup();
        Set { elements }
    }
}

/// An operation on a [`Set`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SetOp<V> {
    /// Puts an element in (nothing changes if it is in already).
    Add(V),
    /// Returns the elements.
    Read,
}

/// What a [`SetOp`] returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SetRet<V> {
    /// The add is done.
    AddOk,
    /// The elements read, sorted; an element read twice is there twice (and then no set
    /// matches).
    ReadOk(Vec<V>),
}

impl<V: Clone + Ord> SequentialSpec for Set<V> {
    type Op = SetOp<V>;
    type Ret = SetRet<V>;

    fn invoke(&mut self, op: &SetOp<V>) -> SetRet<V> {
        match op {
            SetOp::Add(element) => {
                if let Err(place) = self.elements.binary_search(element) {
                    self.elements.insert(place, element.clone());
                }
                SetRet::AddOk
            }
            SetOp::Read => SetRet::ReadOk(self.elements.clone()),
        }
    }

    fn is_valid_step(&mut self, op: &SetOp<V>, ret: &SetRet<V>) -> bool {
        match (op, ret) {
            (SetOp::Add(_), SetRet::AddOk) => {
                self.invoke(op);
                true
            }
            (SetOp::Read, SetRet::ReadOk(elements)) => self.elements == *elements,
            _ => false,
        }
    }
}

/// Reads `add` and `read` operations; the set starts empty unless an initial list (or EDN
/// set) of elements is given.
pub(crate) struct SetReader {
    values: Values,
    initial: Vec<ValueId>,
    /// Every element an operation adds (that may have taken effect), for explanations.
    added: HashSet<ValueId>,
}

impl SetReader {
    /// The elements of `value`, sorted, if it is a list (or `null`, the empty set).
    fn elements(&mut self, value: &Value) -> Option<Vec<ValueId>> {
        let mut elements: Vec<ValueId> = match value {
            Value::Null => Vec::new(),
            Value::Array(elements) => elements.iter().map(|e| self.values.intern(e)).collect(),
            _ => return None,
        };
        elements.sort();
        Some(elements)
    }

    fn json(&self, elements: &[ValueId]) -> Value {
        Value::Array(
            elements
                .iter()
                .map(|&id| self.values.get(id).clone())
                .collect(),
        )
    }

    /// "1, 2 and 3".
    fn list(&self, elements: &[ValueId]) -> String {
        let texts: Vec<String> = elements
            .iter()
            .map(|&id| self.values.get(id).to_string())
            .collect();
        match texts.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => texts.concat(),
        }
    }

    /// Why a read of `read` does not fit `state`: what it misses, what it has that the set
    /// lacks (and whether any add may have put that there), what it repeats.
    fn explain_read(&self, op: &Operation, state: &Set<ValueId>) -> String {
        let refused = format!(
            "read returned {} but the set was {}",
            op.value,
            self.json(&state.elements)
        );
        // Every element a read returned was numbered when the read was.
        let Some(mut read) = self.values.find_list(&op.value) else {
            return refused;
        };
        read.sort();
        let mut repeated: Vec<ValueId> = (read.windows(2))
            .filter(|pair| pair[0] == pair[1])
            .map(|pair| pair[0])
            .collect();
        repeated.dedup();
        read.dedup();
        let missing: Vec<ValueId> = (state.elements.iter())
            .filter(|e| read.binary_search(e).is_err())
            .copied()
            .collect();
        let (later, never): (Vec<ValueId>, Vec<ValueId>) = (read.iter())
            .filter(|e| state.elements.binary_search(e).is_err())
            .partition(|e| self.added.contains(e) || self.initial.contains(e));
        let mut why = Vec::new();
        if !missing.is_empty() {
            why.push(format!("{} missing", self.list(&missing)));
        }
        if !later.is_empty() {
            why.push(format!("{} not added yet", self.list(&later)));
        }
        if !never.is_empty() {
            why.push(format!("{} never added", self.list(&never)));
        }
        if !repeated.is_empty() {
            why.push(format!(
                "{} read more than once, but a set holds each element once",
                self.list(&repeated)
            ));
        }
        if why.is_empty() {
            refused
        } else {
            format!("{refused} ({})", why.join("; "))
        }
    }
}

impl Reader for SetReader {
    type Model = Set<ValueId>;

    fn new(initial: Option<&Value>) -> Result<Self, String> {
        let mut reader = SetReader {
            values: Values::default(),
            initial: Vec::new(),
            added: HashSet::new(),
        };
        if let Some(initial) = initial {
            let elements = reader.elements(initial).ok_or_else(|| {
                format!("the set model starts from a list of elements, not {initial}")
            })?;
            reader.initial = Set::new(elements).elements;
        }
        Ok(reader)
    }

    fn initial(&self) -> Self::Model {
        Set {
            elements: self.initial.clone(),
        }
    }

    fn operation(&mut self, op: &Operation) -> Result<Option<ModelOperation<Self::Model>>, String> {
        if op.outcome == Outcome::CasMismatch {
            return Err(mismatch_without_cas(op));
        }
        let known = op.outcome == Outcome::Ok;
        let (model_op, ret) = match op.f.as_str() {
            "read" if !known => return Ok(None),
            "read" => {
                let elements = self.elements(&op.value).ok_or_else(|| {
                    format!(
                        "expected a read of a set to return a list or set of elements, found {}",
                        op.value
                    )
                })?;
                (SetOp::Read, SetRet::ReadOk(elements))
            }
            "add" => {
                let element = self.values.intern(&op.value);
                self.added.insert(element);
                (SetOp::Add(element), SetRet::AddOk)
            }
            _ => return Err(unsupported(ModelKind::Set, op, "add or read")),
        };
        let read_only = matches!(model_op, SetOp::Read);
        Ok(Some(model_operation(
            op,
            model_op,
            known.then_some(ret),
            read_only,
        )))
    }

    fn state_json(&self, state: &Self::Model) -> Value {
        self.json(&state.elements)
    }

    fn explain(&self, op: &Operation, state: &Self::Model) -> String {
        match op.f.as_str() {
            "read" => self.explain_read(op, state),
            _ => generic_rejection(op, &self.state_json(state)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::{CheckOptions, check_history};
    use crate::model::test_history::{self, TestEvent};
    use crate::verdict::Verdict;
    use faultline_history::History;
    use serde_json::json;

    #[test]
    fn reads_return_every_element_added_in_any_order() {
        let mut set = Set::new(vec![]);
        assert!(set.is_valid_step(&SetOp::Read, &SetRet::ReadOk(vec![])));
        assert!(set.is_valid_step(&SetOp::Add(2), &SetRet::AddOk));
        assert!(set.is_valid_step(&SetOp::Add(1), &SetRet::AddOk));
        assert!(set.is_valid_step(&SetOp::Add(2), &SetRet::AddOk));
        assert_eq!(set.elements, [1, 2]);
        assert!(set.is_valid_step(&SetOp::Read, &SetRet::ReadOk(vec![1, 2])));
        assert!(!set.is_valid_step(&SetOp::Read, &SetRet::ReadOk(vec![1])));
        assert!(!set.is_valid_step(&SetOp::Read, &SetRet::ReadOk(vec![1, 2, 2])));
        assert_eq!(Set::new(vec![3, 1, 3]).elements, [1, 3]);
    }

    /// Checks a history of one set given as (process, type, f, value, time), in time order.
    fn check(events: &[TestEvent]) -> crate::CheckResult {
        test_history::check(ModelKind::Set, events)
    }

    #[test]
    fn a_read_is_of_the_whole_set_in_any_order() {
        let result = check(&[
            (0, "invoke", "add", json!(1), 0),
            (0, "ok", "add", json!(1), 1),
            (1, "invoke", "add", json!(2), 2),
            (2, "invoke", "read", Value::Null, 3),
            (2, "ok", "read", json!([2, 1]), 4),
            (1, "info", "add", json!(2), 5),
        ]);
        assert_eq!(result.valid, Verdict::Valid);
    }

    #[test]
    fn a_read_that_misses_or_invents_elements_is_explained() {
        let result = check(&[
            (0, "invoke", "add", json!(1), 0),
            (0, "ok", "add", json!(1), 1),
            (0, "invoke", "add", json!(2), 2),
            (0, "ok", "add", json!(2), 3),
            (1, "invoke", "read", Value::Null, 4),
            (1, "ok", "read", json!([2, 7]), 5),
        ]);
        assert_eq!(result.valid, Verdict::Invalid);
        let example = &result.counterexamples[0];
        assert_eq!(example.state, json!([1, 2]));
        assert_eq!(
            example.rejected[0].reason,
            "read returned [2,7] but the set was [1,2] (1 missing; 7 never added)"
        );

        let result = check(&[
            (0, "invoke", "read", Value::Null, 0),
            (0, "ok", "read", json!([3, 3]), 1),
            (1, "invoke", "add", json!(3), 2),
            (1, "ok", "add", json!(3), 3),
        ]);
        assert_eq!(
            result.counterexamples[0].rejected[0].reason,
            "read returned [3,3] but the set was [] (3 not added yet; 3 read more than once, \
             but a set holds each element once)"
        );
    }

    #[test]
    fn reads_must_return_lists_and_the_initial_set_may_be_given() {
        let history = History::from_jsonl(
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"read","value":null}
{"index":1,"time":1,"process":0,"type":"ok","f":"read","value":5}"#,
        )
        .unwrap();
        let error = check_history(&history, ModelKind::Set, &CheckOptions::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "line 1: expected a read of a set to return a list or set of elements, found 5"
        );
        let reader = SetReader::new(Some(&json!([2, 1, 2]))).unwrap();
        assert_eq!(reader.state_json(&reader.initial()), json!([2, 1]));
        assert_eq!(
            SetReader::new(Some(&json!({"a": 1}))).err().unwrap(),
            "the set model starts from a list of elements, not {\"a\":1}"
        );
    }
}
