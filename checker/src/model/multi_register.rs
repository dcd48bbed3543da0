//! Knossos's multi-register: registers named by keys, read and written in transactions. The
//! one function is `txn`, whose value is a list of micro-operations `[f, register, value]`
//! applied in order, as Knossos's `[[:read :x 1] [:write :y 2]]`: `read` (or Elle's `r`)
//! returns the register's value, `write` (or `w`) sets it. A transaction takes effect at one
//! instant, all of it.
//!
//! The values read are those of the completion. A read of `null` constrains nothing (Knossos:
//! "nil reads are always legal"), which is also how the reads of an invocation, and of a
//! transaction whose outcome is unknown, are read. Registers start at `null`.

use faultline_history::{Operation, Outcome};
use serde_json::{Map, Value};
use stateright::semantics::SequentialSpec;

use super::values::{ValueId, Values};
use super::{
    ModelKind, Reader, generic_rejection, mismatch_without_cas, model_operation, unsupported,
};
use crate::wgl::ModelOperation;

/// Registers holding `V`s, numbered from 0.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MultiRegister<V> {
    /// Each register's value, by number.
    pub values: Vec<V>,
}

/// One step of a [`Txn`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MicroOp<V> {
    /// Returns the value of the register numbered so.
    Read(usize),
    /// Sets the register numbered so.
    Write(usize, V),
}

/// A transaction on a [`MultiRegister`]: its micro-operations, applied in order at one
/// instant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Txn<V> {
    /// The micro-operations.
    pub ops: Vec<MicroOp<V>>,
}

/// What a [`Txn`] returns: for each micro-operation, in order, the value a read returned, or
/// `None` for a write or for a read that constrains nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TxnRet<V> {
    /// One per micro-operation.
    pub reads: Vec<Option<V>>,
}

impl<V: Clone + Eq> SequentialSpec for MultiRegister<V> {
    type Op = Txn<V>;
    type Ret = TxnRet<V>;

    fn invoke(&mut self, txn: &Txn<V>) -> TxnRet<V> {
        let reads = (txn.ops.iter())
            .map(|op| match op {
                MicroOp::Read(register) => Some(self.values[*register].clone()),
                MicroOp::Write(register, value) => {
                    self.values[*register] = value.clone();
                    None
                }
            })
            .collect();
        TxnRet { reads }
    }

    fn is_valid_step(&mut self, txn: &Txn<V>, ret: &TxnRet<V>) -> bool {
        if txn.ops.len() != ret.reads.len() {
            return false;
        }
        for (op, read) in txn.ops.iter().zip(&ret.reads) {
            match (op, read) {
                (MicroOp::Read(register), Some(value)) if self.values[*register] != *value => {
                    return false;
                }
                (MicroOp::Read(_), _) => {}
                (MicroOp::Write(register, value), _) => self.values[*register] = value.clone(),
            }
        }
        true
    }
}

/// A micro-operation as the history gives it: what it does, to which register, with which
/// value (the value read, or written).
struct Micro<'a> {
    write: bool,
    register: &'a Value,
    value: &'a Value,
}

/// The micro-operations of a transaction's value.
fn micro_ops(value: &Value) -> Result<Vec<Micro<'_>>, String> {
    let shape = || {
        format!(
            "expected the value of a txn to be a list of [f, register, value] micro-operations, \
             like [[\"read\", \"x\", null], [\"write\", \"y\", 2]], found {value}"
        )
    };
    let Value::Array(ops) = value else {
        return Err(shape());
    };
    ops.iter()
        .map(|op| {
            let (f, register, value) = match op.as_array().map(Vec::as_slice) {
                Some([f, register, value]) => (f, register, value),
                // A read as invoked may leave its value out.
                Some([f, register]) => (f, register, &Value::Null),
                _ => return Err(shape()),
            };
            let write = match f.as_str() {
                Some("read" | "r") => false,
                Some("write" | "w") => true,
                _ => {
                    return Err(format!(
                        "a txn's micro-operation {op} has f {f} (expected read or write)"
                    ));
                }
            };
            Ok(Micro {
                write,
                register,
                value,
            })
        })
        .collect()
}

/// A register's name: a string as it is, anything else as JSON.
fn register_name(register: &Value) -> String {
    match register {
        Value::String(name) => name.clone(),
        other => other.to_string(),
    }
}

/// Reads `txn` operations; registers start at `null` unless an initial value is given: an
/// object gives registers' values by name (Knossos's `(multi-register {:x 0})`), any other
/// value is every register's.
pub(crate) struct MultiRegisterReader {
    values: Values,
    /// The registers, numbered in the order they are first named.
    registers: Values,
    initial: Initial,
}

/// The initial values.
enum Initial {
    /// Every register's.
    Every(ValueId),
    /// By register name; `null` for the others.
    ByName(Map<String, Value>),
}

impl MultiRegisterReader {
    /// The register `name` names, numbered.
    fn register(&mut self, name: &Value) -> usize {
        self.registers.intern(name).index()
    }

    fn name(&self, register: usize) -> String {
        register_name(self.registers.by_index(register))
    }

    /// The value of `register` in `state`, as JSON.
    fn value(&self, state: &MultiRegister<ValueId>, register: usize) -> &Value {
        self.values.get(state.values[register])
    }

    /// Which read of the transaction `op` does not fit `state`, in a sentence.
    fn explain_txn(&self, op: &Operation, state: &MultiRegister<ValueId>) -> Option<String> {
        let mut state = state.clone();
        let mut written = Vec::new();
        for micro in micro_ops(&op.value).ok()? {
            let register = self.registers.find(micro.register)?.index();
            if micro.write {
                state.values[register] = self.values.find(micro.value)?;
                written.push(register);
                continue;
            }
            let actual = self.value(&state, register);
            if micro.value.is_null() || micro.value == actual {
                continue;
            }
            let name = self.name(register);
            let mut sentence = format!(
                "txn {} read {} from {name} but {name} was {actual}",
                op.value, micro.value
            );
            if written.contains(&register) {
                sentence.push_str(", as the txn itself wrote");
            }
            return Some(sentence);
        }
        None
    }
}

impl Reader for MultiRegisterReader {
    type Model = MultiRegister<ValueId>;

    fn new(initial: Option<&Value>) -> Result<Self, String> {
        let mut values = Values::default();
        let initial = match initial {
            Some(Value::Object(by_name)) => {
                // Every initial value gets its number now: `initial` cannot intern.
                by_name.values().for_each(|value| {
                    values.intern(value);
                });
                values.intern(&Value::Null);
                Initial::ByName(by_name.clone())
            }
            other => Initial::Every(values.intern(other.unwrap_or(&Value::Null))),
        };
        Ok(MultiRegisterReader {
            values,
            registers: Values::default(),
            initial,
        })
    }

    fn initial(&self) -> Self::Model {
        let values = (0..self.registers.len())
            .map(|register| match &self.initial {
                Initial::Every(value) => *value,
                Initial::ByName(by_name) => {
                    let value = by_name.get(&self.name(register)).unwrap_or(&Value::Null);
                    self.values
                        .find(value)
                        .expect("initial values are numbered")
                }
            })
            .collect();
        MultiRegister { values }
    }

    fn operation(&mut self, op: &Operation) -> Result<Option<ModelOperation<Self::Model>>, String> {
        if op.outcome == Outcome::CasMismatch {
            return Err(mismatch_without_cas(op));
        }
        if op.f != "txn" {
            return Err(unsupported(ModelKind::MultiRegister, op, "txn"));
        }
        let known = op.outcome == Outcome::Ok;
        let mut ops = Vec::new();
        let mut reads = Vec::new();
        for micro in micro_ops(&op.value)? {
            let register = self.register(micro.register);
            if micro.write {
                ops.push(MicroOp::Write(register, self.values.intern(micro.value)));
                reads.push(None);
            } else {
                ops.push(MicroOp::Read(register));
                // Only a completion's reads say what was read.
                let read =
                    (known && !micro.value.is_null()).then(|| self.values.intern(micro.value));
                reads.push(read);
            }
        }
        let read_only = ops.iter().all(|op| matches!(op, MicroOp::Read(_)));
        if read_only && reads.iter().all(Option::is_none) {
            // It changes nothing and constrains nothing.
            return Ok(None);
        }
        Ok(Some(model_operation(
            op,
            Txn { ops },
            known.then_some(TxnRet { reads }),
            read_only,
        )))
    }

    fn state_json(&self, state: &Self::Model) -> Value {
        let registers = (0..state.values.len())
            .map(|register| (self.name(register), self.value(state, register).clone()));
        Value::Object(registers.collect())
    }

    fn explain(&self, op: &Operation, state: &Self::Model) -> String {
        self.explain_txn(op, state)
            .unwrap_or_else(|| generic_rejection(op, &self.state_json(state)))
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
    fn a_txn_reads_and_writes_in_order_at_once() {
        let mut registers = MultiRegister { values: vec![0, 0] };
        let txn = |ops| Txn { ops };
        let ret = |reads| TxnRet { reads };
        let write_both = txn(vec![MicroOp::Write(0, 1), MicroOp::Write(1, 1)]);
        assert!(registers.is_valid_step(&write_both, &ret(vec![None, None])));
        let read_both = txn(vec![MicroOp::Read(0), MicroOp::Read(1)]);
        assert!(registers.is_valid_step(&read_both, &ret(vec![Some(1), Some(1)])));
        assert!(
            !registers
                .clone()
                .is_valid_step(&read_both, &ret(vec![Some(1), Some(0)]))
        );
        // A read that constrains nothing.
        assert!(registers.is_valid_step(&read_both, &ret(vec![None, Some(1)])));
        // A txn reads its own writes.
        let own = txn(vec![MicroOp::Write(0, 5), MicroOp::Read(0)]);
        assert!(
            registers
                .clone()
                .is_valid_step(&own, &ret(vec![None, Some(5)]))
        );
        assert!(
            !registers
                .clone()
                .is_valid_step(&own, &ret(vec![None, Some(1)]))
        );
        assert_eq!(registers.invoke(&own), ret(vec![None, Some(5)]));
        assert_eq!(registers.values, [5, 1]);
    }

    /// Checks a history of txns given as (process, type, value, time), in time order.
    fn check(events: &[(u64, &str, Value, u64)], options: &CheckOptions) -> crate::CheckResult {
        let events: Vec<TestEvent> = events
            .iter()
            .map(|(process, kind, value, time)| (*process, *kind, "txn", value.clone(), *time))
            .collect();
        test_history::check_with(ModelKind::MultiRegister, &events, options)
    }

    #[test]
    fn a_torn_read_is_found_and_explained() {
        let write = |v| json!([["write", "x", v], ["write", "y", v]]);
        let read = |x, y| json!([["read", "x", x], ["read", "y", y]]);
        let mut events = vec![
            (0, "invoke", write(1), 0),
            (0, "ok", write(1), 1),
            (1, "invoke", write(2), 2),
            (2, "invoke", read(Value::Null, Value::Null), 3),
            (2, "ok", read(json!(1), Value::Null), 4),
            (1, "ok", write(2), 5),
        ];
        assert_eq!(
            check(&events, &CheckOptions::default()).valid,
            Verdict::Valid
        );

        events.extend([
            (2, "invoke", read(Value::Null, Value::Null), 6),
            (2, "ok", read(json!(2), json!(1)), 7),
        ]);
        let result = check(&events, &CheckOptions::default());
        assert_eq!(result.valid, Verdict::Invalid);
        let example = &result.counterexamples[0];
        assert_eq!(example.state, json!({"x": 2, "y": 2}));
        assert_eq!(
            example.rejected[0].reason,
            r#"txn [["read","x",2],["read","y",1]] read 1 from y but y was 2"#
        );
    }

    #[test]
    fn a_txn_with_an_unknown_outcome_may_have_written() {
        let events = [
            (0, "invoke", json!([["write", "x", 1]]), 0),
            (0, "info", json!([["write", "x", 1]]), 1),
            (
                1,
                "invoke",
                json!([["read", "x", null], ["write", "x", 2]]),
                2,
            ),
            (1, "ok", json!([["read", "x", 1], ["write", "x", 2]]), 3),
            (1, "invoke", json!([["w", "x", 3], ["r", "x"]]), 4),
            (1, "ok", json!([["w", "x", 3], ["r", "x", 2]]), 5),
        ];
        let result = check(&events, &CheckOptions::default());
        assert_eq!(result.valid, Verdict::Invalid);
        assert_eq!(
            result.counterexamples[0].rejected[0].reason,
            r#"txn [["w","x",3],["r","x",2]] read 2 from x but x was 3, as the txn itself wrote"#
        );
        assert_eq!(result.counterexamples[0].state, json!({"x": 2}));
    }

    #[test]
    fn registers_start_at_the_initial_values() {
        let events = [
            (
                0,
                "invoke",
                json!([["read", "x", null], ["read", "y", null]]),
                0,
            ),
            (0, "ok", json!([["read", "x", 0], ["read", "y", null]]), 1),
        ];
        assert_eq!(
            check(&events, &CheckOptions::default()).valid,
            Verdict::Invalid
        );
        let every = CheckOptions {
            initial: Some(json!(0)),
            ..CheckOptions::default()
        };
        assert_eq!(check(&events, &every).valid, Verdict::Valid);
        let by_name = CheckOptions {
            initial: Some(json!({"x": 0})),
            ..CheckOptions::default()
        };
        let result = check(&events, &by_name);
        assert_eq!(result.valid, Verdict::Valid);
    }

    #[test]
    fn malformed_txns_are_errors() {
        let error = |value: Value| {
            let history = History::from_jsonl(
                &json!({"index": 0, "time": 0, "process": 0, "type": "invoke", "f": "txn",
                        "value": value})
                .to_string(),
            )
            .unwrap();
            check_history(&history, ModelKind::MultiRegister, &CheckOptions::default())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            error(json!(3)),
            "line 1: expected the value of a txn to be a list of [f, register, value] \
             micro-operations, like [[\"read\", \"x\", null], [\"write\", \"y\", 2]], found 3"
        );
        assert_eq!(
            error(json!([["cas", "x", [1, 2]]])),
            "line 1: a txn's micro-operation [\"cas\",\"x\",[1,2]] has f \"cas\" (expected read \
             or write)"
        );
    }
}
