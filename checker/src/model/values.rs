//! Small numbers for the distinct JSON values of one partition, so that model states are cheap
//! to copy, compare and hash (a register holding any JSON value is one integer).

use std::collections::HashMap;

use serde_json::Value;

/// A value's number among the distinct values of its partition. Numbers are ordered (by
/// first sight), so that sets and multisets of values can be kept as sorted vectors: one
/// representation per content, cheap to compare and hash.
///
/// 32 bits, not a `usize`: every operation of a history holds one or two in the model's
/// operations (a register's ten million operations, 16 bytes fewer each), and a partition
/// with four billion distinct values would not fit in memory anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ValueId(u32);

impl ValueId {
    /// The number, from 0 up in the order values were first seen: an index into a vector
    /// with an entry per value.
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// The distinct values of one partition.
#[derive(Default)]
pub(crate) struct Values {
    values: Vec<Value>,
    /// By their JSON text (canonical: object keys are sorted).
    ids: HashMap<String, ValueId>,
}

impl Values {
    /// The number of `value`, given it on first sight.
    pub(crate) fn intern(&mut self, value: &Value) -> ValueId {
        let text = value.to_string();
        if let Some(&id) = self.ids.get(&text) {
            return id;
        }
        let id = ValueId(
            u32::try_from(self.values.len())
                .expect("fewer than 2^32 distinct values in a partition"),
        );
        self.values.push(value.clone());
        self.ids.insert(text, id);
        id
    }

    /// The number of `value`, if it has one.
    pub(crate) fn find(&self, value: &Value) -> Option<ValueId> {
        self.ids.get(&value.to_string()).copied()
    }

    /// The numbers of the elements of `list`, if it is an array (or `null`, the empty list)
    /// of values that all have one.
    pub(crate) fn find_list(&self, list: &Value) -> Option<Vec<ValueId>> {
        match list {
            Value::Null => Some(Vec::new()),
            Value::Array(elements) => elements.iter().map(|e| self.find(e)).collect(),
            _ => None,
        }
    }

    /// The value numbered `id`.
    pub(crate) fn get(&self, id: ValueId) -> &Value {
        &self.values[id.index()]
    }

    /// The value whose number has index `index` (see [`ValueId::index`]).
    pub(crate) fn by_index(&self, index: usize) -> &Value {
        &self.values[index]
    }

    /// How many values have a number.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_share_a_number() {
        let mut values = Values::default();
        let a = values.intern(&json!({"x": 1, "y": [2]}));
        let b = values.intern(&json!(3));
        assert_eq!(values.intern(&json!({"y": [2], "x": 1})), a);
        assert_ne!(a, b);
        assert_eq!(values.get(b), &json!(3));
        assert_eq!(values.find(&json!(3)), Some(b));
        assert_eq!(values.find(&json!(4)), None);
        assert_eq!(values.find_list(&json!([3, 3])), Some(vec![b, b]));
        assert_eq!(values.find_list(&json!([3, 4])), None);
        assert_eq!(values.find_list(&Value::Null), Some(vec![]));
    }
}
