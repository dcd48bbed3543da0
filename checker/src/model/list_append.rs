//! A list per key: `append e` adds an element at the end, `read` returns the whole list
//! (`null` for a key never written is the empty list).
//!
//! Two models: the plain [`ListAppend`], and [`OrderedList`], which knows the order the
//! partition's elements must take effect in when they are distinct (see [`ordered`]); the
//! reader picks the second whenever it applies, since the search is then all but linear
//! instead of exponential in the appends that overlap.

pub mod ordered;

use std::hash::Hash;
use std::sync::Arc;

use faultline_history::{Operation, Outcome};
use serde_json::Value;
use stateright::semantics::SequentialSpec;

use super::values::{ValueId, Values};
use super::{
    ModelKind, Reader, generic_rejection, mismatch_without_cas, model_operation, unsupported,
};
use crate::wgl::ModelOperation;
use ordered::{Append, ListOrder, OrderedList};

/// A list of `V`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListAppend<V> {
    /// The elements, oldest first.
    pub list: Vec<V>,
}

/// An operation on a [`ListAppend`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListOp<V> {
    /// Returns the list.
    Read,
    /// Adds an element at the end.
    Append(V),
}

/// What a [`ListOp`] returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListRet<V> {
    /// The list read.
    ReadOk(Vec<V>),
    /// The append is done.
    AppendOk,
}

impl<V: Clone + Eq> SequentialSpec for ListAppend<V> {
    type Op = ListOp<V>;
    type Ret = ListRet<V>;

    fn invoke(&mut self, op: &ListOp<V>) -> ListRet<V> {
        match op {
            ListOp::Read => ListRet::ReadOk(self.list.clone()),
            ListOp::Append(element) => {
                self.list.push(element.clone());
                ListRet::AppendOk
            }
        }
    }

    fn is_valid_step(&mut self, op: &ListOp<V>, ret: &ListRet<V>) -> bool {
        match (op, ret) {
            (ListOp::Read, ListRet::ReadOk(list)) => self.list == *list,
            (ListOp::Append(element), ListRet::AppendOk) => {
                self.list.push(element.clone());
                true
            }
            _ => false,
        }
    }
}

/// The model a list-append partition is checked with: [`OrderedList`] when the appended
/// elements are distinct (the usual case, and fast), the plain [`ListAppend`] otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListModel<V> {
    /// The elements' order is known in advance.
    Ordered(OrderedList<V>),
    /// Some element is appended twice, or was in the initial list.
    Plain(ListAppend<V>),
}

impl<V: Clone + Eq + Hash> ListModel<V> {
    /// The list.
    pub fn list(&self) -> &[V] {
        match self {
            ListModel::Ordered(ordered) => ordered.list(),
            ListModel::Plain(plain) => &plain.list,
        }
    }
}

impl<V: Clone + Eq + Hash> SequentialSpec for ListModel<V> {
    type Op = ListOp<V>;
    type Ret = ListRet<V>;

    fn invoke(&mut self, op: &ListOp<V>) -> ListRet<V> {
        match self {
            ListModel::Ordered(ordered) => ordered.invoke(op),
            ListModel::Plain(plain) => plain.invoke(op),
        }
    }

    fn is_valid_step(&mut self, op: &ListOp<V>, ret: &ListRet<V>) -> bool {
        match self {
            ListModel::Ordered(ordered) => ordered.is_valid_step(op, ret),
            ListModel::Plain(plain) => plain.is_valid_step(op, ret),
        }
    }
}

/// Reads `append` and `read` operations; lists start empty unless an initial list is given.
/// It keeps what the partition's [`ListOrder`] is made of: the appends, and what `ok` reads
/// returned.
pub(crate) struct ListAppendReader {
    values: Values,
    initial: Vec<ValueId>,
    appends: Vec<Append<ValueId>>,
    reads: Vec<Vec<ValueId>>,
}

impl ListAppendReader {
    fn list(&mut self, value: &Value) -> Option<Vec<ValueId>> {
        match value {
            Value::Null => Some(Vec::new()),
            Value::Array(elements) => {
                Some(elements.iter().map(|e| self.values.intern(e)).collect())
            }
            _ => None,
        }
    }

    fn list_json(&self, list: &[ValueId]) -> Value {
        Value::Array(list.iter().map(|&id| self.values.get(id).clone()).collect())
    }

    /// Why the ordered model refuses `op`, a read, in `state`.
    fn explain_read(&self, op: &Operation, state: &OrderedList<ValueId>) -> String {
        let refused = format!(
            "read returned {} but the list was {}",
            op.value,
            self.list_json(state.list())
        );
        let longest_read = state.order().longest_read();
        let Some(returned) = self.values.find_list(&op.value) else {
            return refused;
        };
        if let Some(&never) = returned
            .iter()
            .find(|&&element| !self.may_be_in_list(element))
        {
            format!(
                "{refused}, and no append of {} may have taken effect",
                self.values.get(never)
            )
        } else if !longest_read.starts_with(&returned) {
            format!(
                "{refused}, and it is no prefix of the longest read, {}, as every read must be",
                self.list_json(longest_read)
            )
        } else {
            refused
        }
    }

    /// Whether `element` is in the initial list or appended by an operation that may have
    /// taken effect.
    fn may_be_in_list(&self, element: ValueId) -> bool {
        self.initial.contains(&element) || self.appends.iter().any(|a| a.element == element)
    }

    /// Why the ordered model refuses `op`, an append, in `state`.
    fn explain_append(&self, op: &Operation, state: &OrderedList<ValueId>) -> String {
        let order = state.order();
        let list = state.list();
        let longest_read = order.longest_read();
        let refused = format!(
            "append {} does not fit when the list is {}",
            op.value,
            self.list_json(list)
        );
        let place = self.values.find(&op.value).and_then(|id| order.place(&id));
        let (Some(place), Some(&next)) = (place, order.reference().get(list.len())) else {
            return refused;
        };
        let never = if self.may_be_in_list(next) {
            ""
        } else {
            ", but no append of it may have taken effect"
        };
        let next = self.values.get(next);
        if place < longest_read.len() {
            format!(
                "{refused}: in the longest read, {}, {next} comes first{never}",
                self.list_json(longest_read)
            )
        } else if list.len() < longest_read.len() {
            format!(
                "{refused}: no read returned {}, so it comes after the longest read, {}",
                op.value,
                self.list_json(longest_read)
            )
        } else {
            format!(
                "{refused}: elements no read returned are appended in order of invocation, \
                 and {next} was invoked first"
            )
        }
    }
}

impl Reader for ListAppendReader {
    type Model = ListModel<ValueId>;

    fn new(initial: Option<&Value>) -> Result<Self, String> {
        let mut reader = ListAppendReader {
            values: Values::default(),
            initial: Vec::new(),
            appends: Vec::new(),
            reads: Vec::new(),
        };
        if let Some(initial) = initial {
            reader.initial = reader.list(initial).ok_or_else(|| {
                format!("the list-append model starts from a list, not {initial}")
            })?;
        }
        Ok(reader)
    }

    fn initial(&self) -> Self::Model {
        let reads: Vec<&[ValueId]> = self.reads.iter().map(Vec::as_slice).collect();
        match ListOrder::new(&self.initial, &self.appends, &reads) {
            Some(order) => ListModel::Ordered(OrderedList::new(Arc::new(order))),
            None => ListModel::Plain(ListAppend {
                list: self.initial.clone(),
            }),
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
                let list = self.list(&op.value).ok_or_else(|| {
                    format!("expected a read to return a list, found {}", op.value)
                })?;
                self.reads.push(list.clone());
                (ListOp::Read, ListRet::ReadOk(list))
            }
            "append" => {
                let element = self.values.intern(&op.value);
                self.appends.push(Append {
                    element,
                    call: op.call,
                    acknowledged: known,
                });
                (ListOp::Append(element), ListRet::AppendOk)
            }
            _ => return Err(unsupported(ModelKind::ListAppend, op, "append or read")),
        };
        let read_only = matches!(model_op, ListOp::Read);
        Ok(Some(model_operation(
            op,
            model_op,
            known.then_some(ret),
            read_only,
        )))
    }

    fn state_json(&self, state: &Self::Model) -> Value {
        self.list_json(state.list())
    }

    fn explain(&self, op: &Operation, state: &Self::Model) -> String {
        match (op.f.as_str(), state) {
            ("read", ListModel::Ordered(ordered)) => self.explain_read(op, ordered),
            ("append", ListModel::Ordered(ordered)) => self.explain_append(op, ordered),
            ("read", _) => format!(
                "read returned {} but the list was {}",
                op.value,
                self.state_json(state)
            ),
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
    use crate::{CheckResult, Counterexample};
    use serde_json::json;

    /// Checks a history of one key given as (process, type, f, value, time), in time order.
    fn check(events: &[TestEvent]) -> CheckResult {
        let history = test_history::history(events, Some("l"));
        check_history(&history, ModelKind::ListAppend, &CheckOptions::default()).unwrap()
    }

    fn only_counterexample(result: &CheckResult) -> &Counterexample {
        assert_eq!(result.valid, Verdict::Invalid);
        let [example] = result.counterexamples.as_slice() else {
            panic!("one counterexample expected: {:?}", result.counterexamples);
        };
        example
    }

    fn reasons(example: &Counterexample) -> Vec<&str> {
        example.rejected.iter().map(|r| r.reason.as_str()).collect()
    }

    #[test]
    fn an_acknowledged_append_missing_from_a_later_read_is_found() {
        let result = check(&[
            (0, "invoke", "append", json!(1), 0),
            (0, "ok", "append", json!(1), 1),
            (0, "invoke", "append", json!(2), 2),
            (0, "ok", "append", json!(2), 3),
            (1, "invoke", "read", Value::Null, 4),
            (1, "ok", "read", json!([1]), 5),
        ]);
        let example = only_counterexample(&result);
        assert_eq!(example.prefix, [0, 2]);
        assert_eq!(example.state, json!([1, 2]));
        assert_eq!(
            reasons(example),
            ["read returned [1] but the list was [1,2]"]
        );
    }

    #[test]
    fn reads_that_disagree_on_the_order_are_found() {
        let result = check(&[
            (0, "invoke", "append", json!(1), 0),
            (1, "invoke", "append", json!(2), 0),
            (0, "ok", "append", json!(1), 10),
            (1, "ok", "append", json!(2), 10),
            (2, "invoke", "read", Value::Null, 11),
            (2, "ok", "read", json!([1, 2]), 12),
            (2, "invoke", "read", Value::Null, 13),
            (2, "ok", "read", json!([2, 1]), 14),
        ]);
        let example = only_counterexample(&result);
        assert_eq!(example.state, json!([1, 2]));
        assert_eq!(
            reasons(example),
            [
                "read returned [2,1] but the list was [1,2], and it is no prefix of the longest \
              read, [1,2], as every read must be"
            ]
        );
    }

    #[test]
    fn a_read_of_an_element_never_appended_is_found() {
        let result = check(&[
            (0, "invoke", "append", json!(1), 0),
            (0, "ok", "append", json!(1), 1),
            (1, "invoke", "append", json!(9), 2),
            (1, "fail", "append", json!(9), 3),
            (2, "invoke", "read", Value::Null, 4),
            (2, "ok", "read", json!([1, 9]), 5),
        ]);
        let example = only_counterexample(&result);
        assert_eq!(example.state, json!([1]));
        assert_eq!(
            reasons(example),
            ["read returned [1,9] but the list was [1], and no append of 9 may have taken effect"]
        );
    }

    #[test]
    fn an_append_out_of_the_order_of_the_longest_read_is_explained() {
        // 2 returned before 1 was invoked, yet the read puts 1 first.
        let result = check(&[
            (0, "invoke", "append", json!(2), 0),
            (0, "ok", "append", json!(2), 1),
            (1, "invoke", "append", json!(1), 2),
            (1, "ok", "append", json!(1), 3),
            (2, "invoke", "read", Value::Null, 4),
            (2, "ok", "read", json!([1, 2]), 5),
        ]);
        let example = only_counterexample(&result);
        assert!(example.prefix.is_empty());
        assert_eq!(
            reasons(example),
            [
                "append 2 does not fit when the list is []: in the longest read, [1,2], 1 comes first"
            ]
        );
    }

    #[test]
    fn appends_with_unknown_outcomes_take_effect_late_or_never() {
        let result = check(&[
            (0, "invoke", "append", json!(1), 0),
            (0, "info", "append", json!(1), 1),
            (1, "invoke", "append", json!(2), 2),
            (1, "info", "append", json!(2), 3),
            (2, "invoke", "read", Value::Null, 4),
            (2, "ok", "read", json!([]), 5),
            (2, "invoke", "read", Value::Null, 6),
            (2, "ok", "read", json!([2]), 7),
        ]);
        assert_eq!(result.valid, Verdict::Valid);
    }

    #[test]
    fn an_element_appended_twice_is_checked_with_the_plain_model() {
        // Both appends of 1 took effect; the order of a longest read cannot tell them apart.
        let result = check(&[
            (0, "invoke", "append", json!(1), 0),
            (0, "ok", "append", json!(1), 1),
            (1, "invoke", "read", Value::Null, 2),
            (1, "ok", "read", json!([1]), 3),
            (0, "invoke", "append", json!(1), 4),
            (0, "ok", "append", json!(1), 5),
            (1, "invoke", "read", Value::Null, 6),
            (1, "ok", "read", json!([1, 1]), 7),
        ]);
        assert_eq!(result.valid, Verdict::Valid);
    }

    #[test]
    fn reads_return_every_append_in_order() {
        let mut list = ListAppend { list: vec![] };
        assert!(list.is_valid_step(&ListOp::Read, &ListRet::ReadOk(vec![])));
        assert!(list.is_valid_step(&ListOp::Append(1), &ListRet::AppendOk));
        assert!(list.is_valid_step(&ListOp::Append(2), &ListRet::AppendOk));
        assert!(!list.is_valid_step(&ListOp::Read, &ListRet::ReadOk(vec![2, 1])));
        assert!(list.is_valid_step(&ListOp::Read, &ListRet::ReadOk(vec![1, 2])));
    }
}
