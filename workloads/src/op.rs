//! One client operation, as the generators make it, a [`crate::Client`] performs it and the
//! history records it.

use serde_json::{Value, json};

/// An operation on one key: a register `r<N>` or a list `l<N>` (see [`crate::model_for_key`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read the key's value: a register's number, or a whole list as an array of numbers in
    /// the order they were appended; `null` for a key never written.
    Read { key: String },
    /// Set a register.
    Write { key: String, value: u64 },
    /// Set a register to `to` if it holds `from`.
    Cas { key: String, from: u64, to: u64 },
    /// Add an element at the end of a list.
    Append { key: String, value: u64 },
}

impl Op {
    /// The history's `f`: `read`, `write`, `cas` or `append`.
    pub fn f(&self) -> &'static str {
        match self {
            Op::Read { .. } => "read",
            Op::Write { .. } => "write",
            Op::Cas { .. } => "cas",
            Op::Append { .. } => "append",
        }
    }

    /// The key operated on.
    pub fn key(&self) -> &str {
        match self {
            Op::Read { key }
            | Op::Write { key, .. }
            | Op::Cas { key, .. }
            | Op::Append { key, .. } => key,
        }
    }

    /// The history's `value` on invoke: `null` for a read, `v` for a write or an append,
    /// `[from, to]` for a cas.
    pub fn argument(&self) -> Value {
        match self {
            Op::Read { .. } => Value::Null,
            Op::Write { value, .. } | Op::Append { value, .. } => json!(value),
            Op::Cas { from, to, .. } => json!([from, to]),
        }
    }

    /// Whether the operation changes nothing, so it has no body and any node may be asked.
    pub fn is_read(&self) -> bool {
        matches!(self, Op::Read { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_recorded_as_the_design_says() {
        let key = || "r1".to_string();
        let read = Op::Read { key: key() };
        assert_eq!((read.f(), read.argument()), ("read", Value::Null));
        let write = Op::Write {
            key: key(),
            value: 4,
        };
        assert_eq!((write.f(), write.argument()), ("write", json!(4)));
        let cas = Op::Cas {
            key: key(),
            from: 4,
            to: 1,
        };
        assert_eq!((cas.f(), cas.argument()), ("cas", json!([4, 1])));
        let append = Op::Append {
            key: "l2".into(),
            value: 9,
        };
        assert_eq!(
            (append.f(), append.key(), append.argument()),
            ("append", "l2", json!(9))
        );
        assert!(read.is_read() && !append.is_read());
    }
}
