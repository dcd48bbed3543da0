//! A read/write register: `read` returns the value, `write v` replaces it.

use faultline_history::{Operation, Outcome};
use serde_json::Value;
use stateright::semantics::SequentialSpec;

use super::values::{ValueId, Values};
use super::{
    ModelKind, Reader, generic_rejection, mismatch_without_cas, model_operation, unsupported,
};
use crate::wgl::ModelOperation;

/// A register holding a `V`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Register<V> {
    /// The current value.
    pub value: V,
}

/// An operation on a [`Register`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOp<V> {
    /// Returns the value.
    Read,
    /// Replaces the value.
    Write(V),
}

/// What a [`RegisterOp`] returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterRet<V> {
    /// The value read.
    ReadOk(V),
    /// The write is done.
    WriteOk,
}

impl<V: Clone + Eq> SequentialSpec for Register<V> {
    type Op = RegisterOp<V>;
    type Ret = RegisterRet<V>;

    fn invoke(&mut self, op: &RegisterOp<V>) -> RegisterRet<V> {
        match op {
            RegisterOp::Read => RegisterRet::ReadOk(self.value.clone()),
            RegisterOp::Write(value) => {
                self.value = value.clone();
                RegisterRet::WriteOk
            }
        }
    }

    fn is_valid_step(&mut self, op: &RegisterOp<V>, ret: &RegisterRet<V>) -> bool {
        match (op, ret) {
            (RegisterOp::Read, RegisterRet::ReadOk(value)) => self.value == *value,
            (RegisterOp::Write(value), RegisterRet::WriteOk) => {
                self.value = value.clone();
                true
            }
            _ => false,
        }
    }
}

/// Reads `read` and `write` operations; the initial value is `null` unless given.
pub(crate) struct RegisterReader {
    values: Values,
    initial: ValueId,
}

impl Reader for RegisterReader {
    type Model = Register<ValueId>;

    fn new(initial: Option<&Value>) -> Result<Self, String> {
        let mut values = Values::default();
        let initial = values.intern(initial.unwrap_or(&Value::Null));
        Ok(RegisterReader { values, initial })
    }

    fn initial(&self) -> Self::Model {
        Register {
            value: self.initial,
        }
    }

    fn operation(&mut self, op: &Operation) -> Result<Option<ModelOperation<Self::Model>>, String> {
        if op.outcome == Outcome::CasMismatch {
            return Err(mismatch_without_cas(op));
        }
        let known = op.outcome == Outcome::Ok;
        let (model_op, ret) = match op.f.as_str() {
            "read" if !known => return Ok(None),
            "read" => (
                RegisterOp::Read,
                RegisterRet::ReadOk(self.values.intern(&op.value)),
            ),
            "write" => (
                RegisterOp::Write(self.values.intern(&op.value)),
                RegisterRet::WriteOk,
            ),
            _ => return Err(unsupported(ModelKind::Register, op, "read or write")),
        };
        let read_only = matches!(model_op, RegisterOp::Read);
        Ok(Some(model_operation(
            op,
            model_op,
            known.then_some(ret),
            read_only,
        )))
    }

    fn state_json(&self, state: &Self::Model) -> Value {
        self.values.get(state.value).clone()
    }

    fn explain(&self, op: &Operation, state: &Self::Model) -> String {
        let value = self.state_json(state);
        match op.f.as_str() {
            "read" => format!("read returned {} but the value was {value}", op.value),
            _ => generic_rejection(op, &value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_see_the_last_write() {
        let mut register = Register { value: 0 };
        assert!(register.is_valid_step(&RegisterOp::Read, &RegisterRet::ReadOk(0)));
        assert!(register.is_valid_step(&RegisterOp::Write(3), &RegisterRet::WriteOk));
        assert!(!register.is_valid_step(&RegisterOp::Read, &RegisterRet::ReadOk(0)));
        assert_eq!(register.invoke(&RegisterOp::Read), RegisterRet::ReadOk(3));
        assert!(!register.is_valid_step(&RegisterOp::Write(4), &RegisterRet::ReadOk(4)));
    }
}
