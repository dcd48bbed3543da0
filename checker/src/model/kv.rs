//! Porcupine's key-value model, one key at a time: a string, `get` returns it, `put v`
//! replaces it, `append v` concatenates `v` to it.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use faultline_history::{Operation, Outcome};
use serde_json::Value;
use stateright::semantics::SequentialSpec;

use super::{
    ModelKind, Reader, generic_rejection, mismatch_without_cas, model_operation, unsupported,
};
use crate::wgl::ModelOperation;

/// A string as the kv model keeps it: each append is one small node pointing at the string
/// before it, so appending copies nothing and a state costs a pointer; a hash of the contents
/// comes along (a polynomial hash, mod 2^64, so the hash of a concatenation follows from its
/// parts' hashes), so a state hashes in constant time and unequal states rarely need their
/// bytes compared.
#[derive(Clone, Debug, Default)]
pub struct Text {
    last: Option<Arc<Piece>>,
    len: usize,
    hash: u64,
    /// `BASE` to the power of `len`, for concatenating after this text.
    power: u64,
}

/// The last piece of a text, and the text before it.
#[derive(Debug)]
struct Piece {
    bytes: Arc<[u8]>,
    before: Option<Arc<Piece>>,
}

impl Drop for Piece {
    /// Frees a long chain of pieces without recursing down it.
    fn drop(&mut self) {
        let mut before = self.before.take();
        while let Some(piece) = before {
            before = Arc::into_inner(piece).and_then(|mut piece| piece.before.take());
        }
    }
}

impl Text {
    const BASE: u64 = 0x100_0000_01b3;

    /// The text `text`.
    pub fn new(text: &str) -> Self {
        let (hash, power) = text.bytes().fold((0u64, 1u64), |(hash, power), byte| {
            (
                hash.wrapping_mul(Self::BASE).wrapping_add(u64::from(byte)),
                power.wrapping_mul(Self::BASE),
            )
        });
        Text {
            last: (!text.is_empty()).then(|| {
                Arc::new(Piece {
                    bytes: text.as_bytes().into(),
                    before: None,
                })
            }),
            len: text.len(),
            hash,
            power,
        }
    }

    /// This text followed by `suffix`.
    fn concat(&self, suffix: &Text) -> Text {
        let mut text = self.clone();
        let mut append = |bytes: &Arc<[u8]>| {
            text.last = Some(Arc::new(Piece {
                bytes: bytes.clone(),
                before: text.last.take(),
            }));
        };
        match suffix.last.as_deref() {
            // The usual case: an operation's argument, one piece.
            Some(Piece {
                bytes,
                before: None,
            }) => append(bytes),
            _ => suffix.pieces_from_the_start().into_iter().for_each(append),
        }
        text.len += suffix.len;
        text.hash = text
            .hash
            .wrapping_mul(suffix.power)
            .wrapping_add(suffix.hash);
        text.power = text.power.wrapping_mul(suffix.power);
        text
    }

    /// The pieces, last first.
    fn pieces(&self) -> impl Iterator<Item = &Arc<[u8]>> {
        std::iter::successors(self.last.as_deref(), |piece| piece.before.as_deref())
            .map(|piece| &piece.bytes)
    }

    fn pieces_from_the_start(&self) -> Vec<&Arc<[u8]>> {
        let mut pieces: Vec<_> = self.pieces().collect();
        pieces.reverse();
        pieces
    }

    /// The bytes, last first.
    fn bytes_backwards(&self) -> impl Iterator<Item = u8> {
        self.pieces().flat_map(|bytes| bytes.iter().rev().copied())
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes: Vec<u8> = self
            .pieces_from_the_start()
            .into_iter()
            .flat_map(|bytes| bytes.iter().copied())
            .collect();
        f.write_str(&String::from_utf8_lossy(&bytes))
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        let same_last = match (&self.last, &other.last) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        self.hash == other.hash
            && self.len == other.len
            && (same_last || self.bytes_backwards().eq(other.bytes_backwards()))
    }
}

impl Eq for Text {}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// The string under one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Kv {
    /// The current string.
    pub value: Text,
}

/// An operation on a [`Kv`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOp {
    /// Returns the string.
    Get,
    /// Replaces the string.
    Put(Text),
    /// Concatenates to the string.
    Append(Text),
}

/// What a [`KvOp`] returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvRet {
    /// The string read.
    GetOk(Text),
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
            KvOp::Append(suffix) => self.value = self.value.concat(suffix),
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
    initial: Text,
}

impl KvReader {
    fn string(value: &Value, what: &str) -> Result<Text, String> {
        match value {
            Value::String(text) => Ok(Text::new(text)),
            Value::Null if what == "get" => Ok(Text::new("")),
            _ => Err(format!(
                "expected the value of a {what} to be a string, found {value}"
            )),
        }
    }
}

impl Reader for KvReader {
    type Model = Kv;

    fn new(initial: Option<&Value>) -> Result<Self, String> {
        let initial = match initial {
            None => Text::new(""),
            Some(Value::String(text)) => Text::new(text),
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
            "append" => (
                KvOp::Append(Self::string(&op.value, "append")?),
                KvRet::Done,
            ),
            _ => return Err(unsupported(ModelKind::Kv, op, "get, put or append")),
        };
        let read_only = matches!(model_op, KvOp::Get);
        Ok(Some(model_operation(
            op,
            model_op,
            known.then_some(ret),
            read_only,
        )))
    }

    fn state_json(&self, state: &Kv) -> Value {
        Value::from(state.value.to_string())
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
        let text = Text::new;
        let mut kv = Kv { value: text("") };
        assert!(kv.is_valid_step(&KvOp::Append(text("x 1 y")), &KvRet::Done));
        assert!(kv.is_valid_step(&KvOp::Append(text("x 2 y")), &KvRet::Done));
        assert!(kv.is_valid_step(&KvOp::Get, &KvRet::GetOk(text("x 1 yx 2 y"))));
        assert!(!kv.is_valid_step(&KvOp::Get, &KvRet::GetOk(text("x 1 y"))));
        assert!(kv.is_valid_step(&KvOp::Put(text("z")), &KvRet::Done));
        assert_eq!(kv.invoke(&KvOp::Get), KvRet::GetOk(text("z")));
    }

    #[test]
    fn equal_texts_hash_alike_however_they_were_built() {
        let hash = |text: &Text| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            text.hash(&mut hasher);
            hasher.finish()
        };
        let built = Text::new("ab")
            .concat(&Text::new(""))
            .concat(&Text::new("cd"));
        let other = Text::new("a").concat(&Text::new("bcd"));
        assert_eq!(built, Text::new("abcd"));
        assert_eq!(built, other);
        assert_eq!(hash(&built), hash(&Text::new("abcd")));
        assert_ne!(built, Text::new("abdc"));
        assert_eq!(built.to_string(), "abcd");
    }

    #[test]
    fn a_long_text_is_freed_without_deep_recursion() {
        let piece = Text::new("x");
        let mut kv = Kv {
            value: Text::new(""),
        };
        for _ in 0..1_000_000 {
            kv.invoke(&KvOp::Append(piece.clone()));
        }
        assert_eq!(kv.value.len, 1_000_000);
    }
}
