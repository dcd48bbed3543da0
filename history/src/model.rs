//! The names of the checker's built-in models, and which one a history's operations call
//! for.
//!
//! Here rather than in the checker because more than the checker speaks of them: the
//! workloads name each key's model, the clients of other systems choose requests by it, and
//! results name the model each key was checked against. The models themselves (their
//! sequential specifications and search) stay in the checker.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::operation::Operation;

/// The built-in models (ordered as declared).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// `read` and `write`.
    Register,
    /// `read`, `write` and `cas [from, to]`.
    CasRegister,
    /// Porcupine's key-value store: `get`, `put` and `append` on strings.
    Kv,
    /// A list per key: `append` an element, `read` the whole list.
    ListAppend,
    /// Knossos's mutex: `acquire` and `release`.
    Mutex,
    /// Knossos's registers read and written in transactions: `txn [[f register value] ...]`.
    MultiRegister,
    /// Knossos's set: `add` an element, `read` the whole set.
    Set,
    /// Knossos's queue without order: `enqueue` a value, `dequeue` any pending one.
    UnorderedQueue,
    /// Knossos's first-in first-out queue: `enqueue` a value, `dequeue` the oldest.
    FifoQueue,
}

impl ModelKind {
    /// Every model.
    pub const ALL: [ModelKind; 9] = [
        ModelKind::CasRegister,
        ModelKind::Register,
        ModelKind::Kv,
        ModelKind::ListAppend,
        ModelKind::Mutex,
        ModelKind::MultiRegister,
        ModelKind::Set,
        ModelKind::UnorderedQueue,
        ModelKind::FifoQueue,
    ];

    /// The model's name: `register`, `cas-register`, `kv`, `list-append`, `mutex`,
    /// `multi-register`, `set`, `unordered-queue` or `fifo-queue` (Knossos's names).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
            ModelKind::ListAppend => "list-append",
            ModelKind::Mutex => "mutex",
            ModelKind::MultiRegister => "multi-register",
            ModelKind::Set => "set",
            ModelKind::UnorderedQueue => "unordered-queue",
            ModelKind::FifoQueue => "fifo-queue",
        }
    }

    /// The model that operations (a key's, or a whole history's) call for: `kv` for `get`
    /// or `put`; else `multi-register` for `txn`, `mutex` for `acquire` or `release`,
    /// `unordered-queue` for `enqueue` or `dequeue`, `set` for `add`; else `list-append` for
    /// `append`, `cas-register` (which also covers `register`) for `write` or `cas`.
    /// Operations that only read are of a list if a read returned one, else of a register.
    ///
    /// A queue is inferred unordered because the unordered queue checks what every queue
    /// promises (each value dequeued was enqueued, and comes out once per enqueue), and no
    /// more: checked as FIFO, a queue that promises no order (many distributed queues
    /// deliver out of order across consumers or partitions) would be reported for breaking a
    /// promise it never made. Order is checked when asked for, with `fifo-queue`, as Knossos
    /// users name their model.
    pub fn infer<'a>(operations: impl IntoIterator<Item = &'a Operation>) -> ModelKind {
        let (mut kv, mut append, mut register, mut list_read) = (false, false, false, false);
        let (mut txn, mut mutex, mut queue, mut set) = (false, false, false, false);
        for op in operations {
            match op.f.as_str() {
                "get" | "put" => kv = true,
                "append" => append = true,
                "write" | "cas" => register = true,
                "read" => list_read |= op.value.is_array(),
                "txn" => txn = true,
                "acquire" | "release" => mutex = true,
                "enqueue" | "dequeue" => queue = true,
                "add" => set = true,
                _ => {}
            }
        }
        if kv {
            ModelKind::Kv
        } else if txn {
            ModelKind::MultiRegister
        } else if mutex {
            ModelKind::Mutex
        } else if queue {
            ModelKind::UnorderedQueue
        } else if set {
            ModelKind::Set
        } else if append || (list_read && !register) {
            ModelKind::ListAppend
        } else {
            ModelKind::CasRegister
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        ModelKind::ALL
            .into_iter()
            .find(|model| model.name() == name)
            .ok_or_else(|| format!("unknown model {name:?} (expected {})", all_names()))
    }
}

/// Every model's name, as a sentence lists them: "a, b or c".
fn all_names() -> String {
    let names = ModelKind::ALL.map(ModelKind::name);
    let (last, rest) = names.split_last().expect("there are models");
    format!("{} or {last}", rest.join(", "))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::history::History;

    #[test]
    fn models_have_names_and_are_inferred_from_functions() {
        for model in ModelKind::ALL {
            assert_eq!(model.name().parse(), Ok(model));
            assert_eq!(
                serde_json::to_value(model).unwrap(),
                Value::from(model.name())
            );
        }
        assert_eq!(
            "queue".parse::<ModelKind>().unwrap_err(),
            "unknown model \"queue\" (expected cas-register, register, kv, list-append, mutex, \
             multi-register, set, unordered-queue or fifo-queue)"
        );

        let infer = |ops: &[(&str, Value)]| {
            let lines: Vec<String> = ops
                .iter()
                .enumerate()
                .flat_map(|(i, (f, value))| {
                    let (invoke, ok) = (2 * i, 2 * i + 1);
                    [
                        format!(r#"{{"index":{invoke},"time":{invoke},"process":{i},"type":"invoke","f":"{f}"}}"#),
                        format!(r#"{{"index":{ok},"time":{ok},"process":{i},"type":"ok","f":"{f}","value":{value}}}"#),
                    ]
                })
                .collect();
            let history = History::from_jsonl(&lines.join("\n")).unwrap();
            ModelKind::infer(&crate::operations(&history).unwrap())
        };
        let null = || Value::Null;
        assert_eq!(infer(&[("append", null()), ("get", null())]), ModelKind::Kv);
        assert_eq!(
            infer(&[("append", json!(1)), ("read", null())]),
            ModelKind::ListAppend
        );
        assert_eq!(
            infer(&[("read", json!(1)), ("write", json!(1))]),
            ModelKind::CasRegister
        );
        // A key that is only read: a list if a read returned one.
        assert_eq!(
            infer(&[("read", json!([1, 2])), ("read", null())]),
            ModelKind::ListAppend
        );
        assert_eq!(infer(&[("read", json!(3))]), ModelKind::CasRegister);
        assert_eq!(infer(&[]), ModelKind::CasRegister);
        // Knossos's models, by their functions.
        assert_eq!(
            infer(&[("acquire", null()), ("release", null())]),
            ModelKind::Mutex
        );
        assert_eq!(
            infer(&[("txn", json!([["read", "x", 1]]))]),
            ModelKind::MultiRegister
        );
        assert_eq!(
            infer(&[("add", json!(1)), ("read", json!([1]))]),
            ModelKind::Set
        );
        assert_eq!(
            infer(&[("enqueue", json!(1)), ("dequeue", json!(1))]),
            ModelKind::UnorderedQueue
        );
        assert_eq!(infer(&[("dequeue", json!(1))]), ModelKind::UnorderedQueue);
    }
}
