//! The sequential specifications a history is checked against, and how each one reads a
//! history's operations.
//!
//! Every model implements [`stateright::semantics::SequentialSpec`]; the search accepts any such
//! model whose state is `Clone + Eq + Hash` (see [`crate::check_operations`]). The readers here
//! connect the built-in models to histories: they turn operations into model operations, and
//! states and rejections back into JSON and sentences for counterexamples.
//!
//! Beside the models of Faultline's own workloads (registers, lists) and Porcupine's kv, there
//! are Knossos's (`knossos.model`), with Knossos's semantics unless a model's documentation
//! says otherwise.

pub mod cas_register;
pub mod fifo_queue;
pub mod keyed;
pub mod kv;
pub mod list_append;
pub mod multi_register;
pub mod mutex;
pub mod register;
pub mod set;
#[cfg(test)]
mod test_history;
pub mod unordered_queue;
mod values;

use std::hash::Hash;

use faultline_history::Operation;
use serde_json::Value;
use stateright::semantics::SequentialSpec;

// The names live with the history, which the workloads use without the checker.
pub use faultline_history::ModelKind;
pub use values::ValueId;

use crate::wgl::{Completion, ModelOperation};

/// Reads one partition's operations as a model's operations, and explains the model's states
/// and rejections in the history's terms. One reader per partition: it owns the partition's
/// value numbering, which keeps model states small, and may shape the model by what it reads
/// (the list-append reader derives the order of the elements).
pub(crate) trait Reader: Sized + Send {
    /// The model.
    type Model: SequentialSpec<Op: Send + Sync, Ret: Send + Sync> + Clone + Eq + Hash + Send + Sync;

    /// A reader for a partition whose object starts with `initial` (the model's own default if
    /// `None`).
    fn new(initial: Option<&Value>) -> Result<Self, String>;

    /// The model before any operation (once every operation has been read).
    fn initial(&self) -> Self::Model;

    /// The model's view of `op`, or `None` if it cannot matter (a read whose result is unknown).
    fn operation(&mut self, op: &Operation) -> Result<Option<ModelOperation<Self::Model>>, String>;

    /// A state as JSON, for counterexamples.
    fn state_json(&self, state: &Self::Model) -> Value;

    /// Why the model rejects `op` in `state`, in a sentence.
    fn explain(&self, op: &Operation, state: &Self::Model) -> String;
}

/// A model operation with `op`'s times; `ret` is its result if it is known.
fn model_operation<M: SequentialSpec>(
    op: &Operation,
    model_op: M::Op,
    ret: Option<M::Ret>,
    read_only: bool,
) -> ModelOperation<M> {
    ModelOperation {
        op: model_op,
        call: op.call,
        completion: ret.zip(op.return_time).map(|(ret, time)| Completion {
            ret,
            time,
            read_only,
        }),
    }
}

/// The error for a function the model does not have.
fn unsupported(model: ModelKind, op: &Operation, expected: &str) -> String {
    format!(
        "the {model} model has no operation {:?} (expected {expected})",
        op.f
    )
}

/// The error for a cas-mismatch on anything but a `cas`.
fn mismatch_without_cas(op: &Operation) -> String {
    format!(
        "{} failed with error \"cas-mismatch\", which only a cas can (expected another error, or f = \"cas\")",
        op.f
    )
}

/// The explanation when no better one applies.
fn generic_rejection(op: &Operation, state: &Value) -> String {
    format!(
        "{} {} does not fit when the state is {state}",
        op.f, op.value
    )
}
