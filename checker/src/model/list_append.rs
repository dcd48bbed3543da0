//! A list per key: `append e` adds an element at the end, `read` returns the whole list
//! (`null` for a key never written is the empty list).

use serde_json::Value;
use stateright::semantics::SequentialSpec;

use super::values::{ValueId, Values};
use super::{
    ModelKind, Reader, generic_rejection, mismatch_without_cas, model_operation, unsupported,
};
use crate::operation::{Operation, Outcome};
use crate::wgl::ModelOperation;

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

/// Reads `append` and `read` operations; lists start empty unless an initial list is given.
pub(crate) struct ListAppendReader {
    values: Values,
    initial: Vec<ValueId>,
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
}

impl Reader for ListAppendReader {
    type Model = ListAppend<ValueId>;

    fn new(initial: Option<&Value>) -> Result<Self, String> {
        let mut reader = ListAppendReader {
            values: Values::default(),
            initial: Vec::new(),
        };
        if let Some(initial) = initial {
            reader.initial = reader.list(initial).ok_or_else(|| {
                format!("the list-append model starts from a list, not {initial}")
            })?;
        }
        Ok(reader)
    }

    fn initial(&self) -> Self::Model {
        ListAppend {
            list: self.initial.clone(),
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
                (ListOp::Read, ListRet::ReadOk(list))
            }
            "append" => (
                ListOp::Append(self.values.intern(&op.value)),
                ListRet::AppendOk,
            ),
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
        Value::Array(
            state
                .list
                .iter()
                .map(|&id| self.values.get(id).clone())
                .collect(),
        )
    }

    fn explain(&self, op: &Operation, state: &Self::Model) -> String {
        let list = self.state_json(state);
        match op.f.as_str() {
            "read" => format!("read returned {} but the list was {list}", op.value),
            _ => generic_rejection(op, &list),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
