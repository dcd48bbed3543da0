//! Many independent objects, one per key, as one model: what a partition is when keys are not
//! checked apart. Checking a history with it gives the same verdict as checking each key alone
//! (P-compositionality), only slower; it exists to show and to measure that.

use std::collections::HashMap;

use faultline_history::{Name, Operation};
use serde_json::{Map, Value};
use stateright::semantics::SequentialSpec;

use super::Reader;
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

/// Reads all keys' operations, each key's with a reader of `R` of its own (as when keys are
/// checked apart: a reader may use what it learns of its partition), numbering the keys as
/// they come.
pub(crate) struct KeyedReader<R> {
    initial: Option<Value>,
    /// By key number.
    readers: Vec<R>,
    keys: Vec<Option<Name>>,
    numbers: HashMap<Option<Name>, usize>,
}

impl<R: Reader> Reader for KeyedReader<R> {
    type Model = Keyed<R::Model>;

    fn new(initial: Option<&Value>) -> Result<Self, String> {
        // Each key's reader is made when the key first comes; this one only checks `initial`.
        R::new(initial)?;
        Ok(KeyedReader {
            initial: initial.cloned(),
            readers: Vec::new(),
            keys: Vec::new(),
            numbers: HashMap::new(),
        })
    }

    fn initial(&self) -> Self::Model {
        Keyed {
            objects: self.readers.iter().map(R::initial).collect(),
        }
    }

    fn operation(&mut self, op: &Operation) -> Result<Option<ModelOperation<Self::Model>>, String> {
        let number = match self.numbers.get(&op.key) {
            Some(&number) => number,
            None => {
                self.readers.push(R::new(self.initial.as_ref())?);
                self.keys.push(op.key.clone());
                self.numbers.insert(op.key.clone(), self.keys.len() - 1);
                self.keys.len() - 1
            }
        };
        let Some(inner) = self.readers[number].operation(op)? else {
            return Ok(None);
        };
        Ok(Some(ModelOperation {
            op: (number, inner.op),
            call: inner.call,
            completion: inner.completion,
        }))
    }

    fn state_json(&self, state: &Self::Model) -> Value {
        let mut objects = Map::new();
        for ((key, reader), object) in self.keys.iter().zip(&self.readers).zip(&state.objects) {
            let name = key.as_deref().unwrap_or_default().to_string();
            objects.insert(name, reader.state_json(object));
        }
        Value::Object(objects)
    }

    fn explain(&self, op: &Operation, state: &Self::Model) -> String {
        let number = self.numbers[&op.key];
        self.readers[number].explain(op, &state.objects[number])
    }
}
