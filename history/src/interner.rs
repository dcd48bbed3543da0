//! One shared copy of each name and small value a history repeats, while it is read.
//!
//! Ten million operations over ten thousand keys mention each key, each function and each of
//! a register's few values millions of times. The reader looks every one up here, so that
//! equal ones share one [`Name`] or one `Arc<Value>` instead of a heap block each; that is
//! most of the memory a large history takes.
//!
//! Sharing is an optimization only: a name or value that is not found is made anew. So both
//! tables are bounded, and start over when full, to keep a history of unique values (every
//! element of a list-append run) from filling them for nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use crate::name::Name;

/// How many names, and how many values, a table holds before it starts over: far more than
/// the functions, keys, errors and nodes of a run, and than a register's values.
const MAX_ENTRIES: usize = 1 << 16;

/// The longest JSON text of a value that is shared, in bytes: small values (numbers, short
/// strings, a compare-and-set's `[from, to]`) repeat; large ones (the final read of a list)
/// rarely do, and would only fill the table.
const MAX_SHARED_VALUE: usize = 64;

/// The names and small values seen so far.
#[derive(Default)]
pub(crate) struct Interner {
    names: HashSet<Name>,
    /// By their JSON text as written (`[1,2]` and `[1, 2]` are two entries: still correct).
    values: HashMap<Box<str>, Arc<Value>>,
}

impl Interner {
    /// The shared name `text`.
    pub(crate) fn name(&mut self, text: &str) -> Name {
        if let Some(name) = self.names.get(text) {
            return name.clone();
        }
        if self.names.len() >= MAX_ENTRIES {
            self.names.clear();
        }
        let name = Name::from(text);
        self.names.insert(name.clone());
        name
    }

    /// The value whose JSON text is `json`, parsed only when it is not shared already.
    pub(crate) fn value(&mut self, json: &str) -> Result<Arc<Value>, serde_json::Error> {
        if json.len() > MAX_SHARED_VALUE {
            return Ok(Arc::new(serde_json::from_str(json)?));
        }
        if let Some(value) = self.values.get(json) {
            return Ok(value.clone());
        }
        let value = Arc::new(serde_json::from_str(json)?);
        if self.values.len() >= MAX_ENTRIES {
            self.values.clear();
        }
        self.values.insert(json.into(), Arc::clone(&value));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_names_and_small_values_share_one_copy() {
        let mut interner = Interner::default();
        let key = interner.name("k7");
        assert!(key.shares_text_with(&interner.name("k7")));
        assert_eq!(interner.name("k8"), "k8");

        let pair = interner.value("[1,2]").unwrap();
        assert_eq!(*pair, json!([1, 2]));
        assert!(Arc::ptr_eq(&pair, &interner.value("[1,2]").unwrap()));
        let long = format!("[{}]", vec!["1"; 100].join(","));
        assert!(!Arc::ptr_eq(
            &interner.value(&long).unwrap(),
            &interner.value(&long).unwrap()
        ));
        assert!(interner.value("[1,").is_err());
    }
}
