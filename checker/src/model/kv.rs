//! Porcupine's key-value model, one key at a time: a string, `get` returns it, `put v`
//! replaces it, `append v` concatenates `v` to it.

use std::sync::Arc;

use serde_json::Value;
use stateright::semantics::SequentialSpec;

use super::{ModelKind, Reader, generic_rejection, mismatch_without_cas, model_operation, unsupported};
use crate::operation::{Operation, Outcome};
use crate::wgl::ModelOperation;

/// The string under one key (shared, so copying a state copies no text).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Kv {
    /// The current string.
    pub value: Arc<str>,
}

/// An operation on a [`Kv`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOp {
    /// Returns the string.
    Get,
    /// Replaces the string.
    Put(Arc<str>),
    /// Concatenates to the string.
    Append(Arc<str>),
}

/// What a [`KvOp`] returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvRet {
    /// The string read.
    GetOk(Arc<str>),
    /// The put or append is done.
    Done,
}

impl SequentialSpec for Kv {
    type Op = KvOp;
    type Ret = KvRet;

    fn invoke(&mut self, op: &KvOp) -> KvRet {
        match op {
            KvOp::Get => return KvRet::GetOk(self.value.clone()),
            KvOp::Put(value) => self.value = value.clone(),
            KvOp::Append(suffix) => self.value = format!("{}{suffix}", self.value).into(),
        }
        KvRet::Done
    }

    fn is_valid_step(&mut self, op: &KvOp, ret: &KvRet) -> bool {
        match (op, ret) {
            (KvOp::Get, KvRet::GetOk(value)) => self.value == *value,
            (KvOp::Put(_) | KvOp::Append(_), KvRet::Done) => {
                self.invoke(op);
                true
            }
            _ => false,
        }
    }
}

/// Reads `get`, `put` and `append` operations on strings (a `get` of `null` is the empty
/// string); the initial string is empty unless given.
pub(crate) struct KvReader {
    initial: Arc<str>,
}

impl KvReader {
    fn string(value: &Value, what: &str) -> Result<Arc<str>, String> {
        match value {
            Value::String(text) => Ok(text.as_str().into()),
            Value::Null if what == "get" => Ok("".into()),
            _ => Err(format!("expected the value of a {what} to be a string, found {value}")),
        }
    }
}

impl Reader for KvReader {
    type Model = Kv;

    fn new(initial: Option<&Value>) -> Result<Self, String> {
        let initial = match initial {
            None => "".into(),
            Some(Value::String(text)) => text.as_str().into(),
            Some(other) => return Err(format!("the kv model starts from a string, not {other}")),
        };
        Ok(KvReader { initial })
    }

    fn initial(&self) -> Kv {
        Kv {
            value: self.initial.clone(),
        }
    }

    fn operation(&mut self, op: &Operation) -> Result<Option<ModelOperation<Kv>>, String> {
        if op.outcome == Outcome::CasMismatch {
            return Err(mismatch_without_cas(op));
        }
        let known = op.outcome == Outcome::Ok;
        let (model_op, ret) = match op.f.as_str() {
            "get" if !known => return Ok(None),
            "get" => (KvOp::Get, KvRet::GetOk(Self::string(&op.value, "get")?)),
            "put" => (KvOp::Put(Self::string(&op.value, "put")?), KvRet::Done),
            "append" => (KvOp::Append(Self::string(&op.value, "append")?), KvRet::Done),
            _ => return Err(unsupported(ModelKind::Kv, op, "get, put or append")),
        };
        let read_only = matches!(model_op, KvOp::Get);
        Ok(Some(model_operation(op, model_op, known.then_some(ret), read_only)))
    }

    fn state_json(&self, state: &Kv) -> Value {
        Value::from(&*state.value)
    }

    fn explain(&self, op: &Operation, state: &Kv) -> String {
        let value = self.state_json(state);
        match op.f.as_str() {
            "get" => format!("get returned {} but the value was {value}", op.value),
            _ => generic_rejection(op, &value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_concatenate_and_puts_replace() {
        let mut kv = Kv { value: "".into() };
        assert!(kv.is_valid_step(&KvOp::Append("x 1 y".into()), &KvRet::Done));
        assert!(kv.is_valid_step(&KvOp::Append("x 2 y".into()), &KvRet::Done));
        assert!(kv.is_valid_step(&KvOp::Get, &KvRet::GetOk("x 1 yx 2 y".into())));
        assert!(!kv.is_valid_step(&KvOp::Get, &KvRet::GetOk("x 1 y".into())));
        assert!(kv.is_valid_step(&KvOp::Put("z".into()), &KvRet::Done));
        assert_eq!(kv.invoke(&KvOp::Get), KvRet::GetOk("z".into()));
    }
}
