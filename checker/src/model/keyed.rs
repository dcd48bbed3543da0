//! Many independent objects, one per key, as one model: what a partition is when keys are not
//! checked apart. Checking a history with it gives the same verdict as checking each key alone
//! (P-compositionality), only slower; it exists to show and to measure that.

use std::collections::HashMap;

use serde_json::{Map, Value};
use stateright::semantics::SequentialSpec;

use super::Reader;
use crate::operation::Operation;
use crate::wgl::ModelOperation;

/// One `M` per key; operations name their key by its number.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Keyed<M> {
    /// The objects, by key number.
    pub objects: Vec<M>,
}

impl<M: SequentialSpec> SequentialSpec for Keyed<M> {
    /// The key's number (less than the number of objects) and the operation on its object.
    type Op = (usize, M::Op);
    type Ret = M::Ret;

    fn invoke(&mut self, (key, op): &(usize, M::Op)) -> M::Ret {
        self.objects[*key].invoke(op)
    }

    fn is_valid_step(&mut self, (key, op): &(usize, M::Op), ret: &M::Ret) -> bool {
        self.objects[*key].is_valid_step(op, ret)
    }
}

/// Reads all keys' operations with one reader of `R`, numbering the keys as they come.
pub(crate) struct KeyedReader<R> {
    inner: R,
    keys: Vec<Option<String>>,
    numbers: HashMap<Option<String>, usize>,
}

impl<R: Reader> KeyedReader<R> {
    fn number(&self, key: &Option<String>) -> usize {
        self.numbers[key]
    }
}

impl<R: Reader> Reader for KeyedReader<R> {
    type Model = Keyed<R::Model>;

    fn new(initial: Option<&Value>) -> Result<Self, String> {
        Ok(KeyedReader {
            inner: R::new(initial)?,
            keys: Vec::new(),
            numbers: HashMap::new(),
        })
    }

    fn initial(&self) -> Self::Model {
        Keyed {
            objects: vec![self.inner.initial(); self.keys.len()],
        }
    }

    fn operation(&mut self, op: &Operation) -> Result<Option<ModelOperation<Self::Model>>, String> {
        let Some(inner) = self.inner.operation(op)? else {
            return Ok(None);
        };
        let count = self.keys.len();
        let number = *self.numbers.entry(op.key.clone()).or_insert(count);
        if number == count {
            self.keys.push(op.key.clone());
        }
        Ok(Some(ModelOperation {
            op: (number, inner.op),
            call: inner.call,
            completion: inner.completion,
        }))
    }

    fn state_json(&self, state: &Self::Model) -> Value {
        let mut objects = Map::new();
        for (key, object) in self.keys.iter().zip(&state.objects) {
            let name = key.clone().unwrap_or_default();
            objects.insert(name, self.inner.state_json(object));
        }
        Value::Object(objects)
    }

    fn explain(&self, op: &Operation, state: &Self::Model) -> String {
        let object = &state.objects[self.number(&op.key)];
        self.inner.explain(op, object)
    }
}
