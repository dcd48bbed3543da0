//! A compare-and-set register: `read`, `write v`, and `cas [from, to]`, which sets `to` if the
//! value is `from`. A cas that failed its comparison (`cas-mismatch`) observed a value other
//! than `from`.

use faultline_history::{Operation, Outcome};
use serde_json::Value;
use stateright::semantics::SequentialSpec;

use super::values::{ValueId, Values};
use super::{
    ModelKind, Reader, generic_rejection, mismatch_without_cas, model_operation, unsupported,
};
use crate::wgl::ModelOperation;

/// A compare-and-set register holding a `V`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CasRegister<V> {
    /// The current value.
    pub value: V,
}

/// An operation on a [`CasRegister`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CasOp<V> {
    /// Returns the value.
    Read,
    /// Replaces the value.
    Write(V),
    /// Replaces the value with `to` if it is `from`.
    Cas {
        /// The value expected.
        from: V,
        /// The value set.
        to: V,
    },
}

/// What a [`CasOp`] returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CasRet<V> {
    /// The value read.
    ReadOk(V),
    /// The write is done.
    WriteOk,
    /// The value was `from` and is now `to`.
    CasOk,
    /// The value was not `from`; nothing changed.
    CasMismatch,
}

impl<V: Clone + Eq> SequentialSpec for CasRegister<V> {
    type Op = CasOp<V>;
    type Ret = CasRet<V>;

    fn invoke(&mut self, op: &CasOp<V>) -> CasRet<V> {
        match op {
            CasOp::Read => CasRet::ReadOk(self.value.clone()),
            CasOp::Write(value) => {
                self.value = value.clone();
                CasRet::WriteOk
            }
            CasOp::Cas { from, to } if self.value == *from => {
                self.value = to.clone();
                CasRet::CasOk
            }
            CasOp::Cas { .. } => CasRet::CasMismatch,
        }
    }

    fn is_valid_step(&mut self, op: &CasOp<V>, ret: &CasRet<V>) -> bool {
        match (op, ret) {
            (CasOp::Read, CasRet::ReadOk(value)) => self.value == *value,
            (CasOp::Write(value), CasRet::WriteOk) => {
                self.value = value.clone();
                true
            }
            (CasOp::Cas { from, to }, CasRet::CasOk) if self.value == *from => {
                self.value = to.clone();
                true
            }
            (CasOp::Cas { from, .. }, CasRet::CasMismatch) => self.value != *from,
            _ => false,
        }
    }
}

/// Reads `read`, `write` and `cas [from, to]` operations; the initial value is `null` unless
/// given.
pub(crate) struct CasRegisterReader {
    values: Values,
    initial: ValueId,
}

impl Reader for CasRegisterReader {
    type Model = CasRegister<ValueId>;

    fn new(initial: Option<&Value>) -> Result<Self, String> {
        let mut values = Values::default();
        let initial = values.intern(initial.unwrap_or(&Value::Null));
        Ok(CasRegisterReader { values, initial })
    }

    fn initial(&self) -> Self::Model {
        CasRegister {
            value: self.initial,
        }
    }

    fn operation(&mut self, op: &Operation) -> Result<Option<ModelOperation<Self::Model>>, String> {
        let (model_op, ret) = match (op.f.as_str(), op.outcome) {
            ("read", Outcome::Info) => return Ok(None),
            ("read", _) => (CasOp::Read, CasRet::ReadOk(self.values.intern(&op.value))),
            ("write", _) => (CasOp::Write(self.values.intern(&op.value)), CasRet::WriteOk),
            ("cas", outcome) => {
                let Some([from, to]) = op.value.as_array().map(Vec::as_slice) else {
                    return Err(format!(
                        "expected the value of a cas to be [from, to], found {}",
                        op.value
                    ));
                };
                let cas = CasOp::Cas {
                    from: self.values.intern(from),
                    to: self.values.intern(to),
                };
                let ret = match outcome {
                    Outcome::CasMismatch => CasRet::CasMismatch,
                    _ => CasRet::CasOk,
                };
                (cas, ret)
            }
            _ => {
                return Err(unsupported(
                    ModelKind::CasRegister,
                    op,
                    "read, write or cas",
                ));
            }
        };
        if op.outcome == Outcome::CasMismatch && !matches!(ret, CasRet::CasMismatch) {
            return Err(mismatch_without_cas(op));
        }
        let known = op.outcome != Outcome::Info;
        let read_only = matches!(ret, CasRet::ReadOk(_) | CasRet::CasMismatch);
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
        let from = op.value.get(0).unwrap_or(&Value::Null);
        match (op.f.as_str(), op.outcome) {
            ("read", _) => format!("read returned {} but the value was {value}", op.value),
            ("cas", Outcome::CasMismatch) => format!(
                "cas {} failed its comparison but the value was {value}",
                op.value
            ),
            ("cas", _) => format!(
                "cas {} succeeded but the value was {value}, not {from}",
                op.value
            ),
            _ => generic_rejection(op, &value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_sets_only_when_the_value_matches() {
        let mut register = CasRegister { value: 1 };
        assert_eq!(
            register.invoke(&CasOp::Cas { from: 2, to: 3 }),
            CasRet::CasMismatch
        );
        assert_eq!(register.value, 1);
        assert!(!register.is_valid_step(&CasOp::Cas { from: 2, to: 3 }, &CasRet::CasOk));
        assert!(!register.is_valid_step(&CasOp::Cas { from: 1, to: 3 }, &CasRet::CasMismatch));
        assert!(register.is_valid_step(&CasOp::Cas { from: 1, to: 3 }, &CasRet::CasOk));
        assert_eq!(register.value, 3);
        assert!(register.is_valid_step(&CasOp::Cas { from: 1, to: 4 }, &CasRet::CasMismatch));
        assert_eq!(register.value, 3, "a mismatch changes nothing");
    }
}
