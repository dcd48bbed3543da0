//! Knossos's unordered queue: `enqueue v` adds a value, `dequeue` takes out any pending one and
//! returns it (a multiset: a value enqueued twice may come out twice).
//!
//! As in Knossos, a dequeue that completed `ok` returned a value, and that value must be
//! pending: Knossos has no "empty" result, because Jepsen's queue clients record a dequeue of
//! an empty queue as a `fail`, which did not happen. So an `ok` dequeue of `null` dequeued the
//! value `null`, which must have been enqueued.
//!
//! A dequeue whose outcome is unknown (`info`) is left out: it may have taken any pending
//! value out, or none, and taking one out only makes later dequeues harder to explain, so
//! "none" is always as good. (Knossos steps it with its invocation's value, `nil`, which no
//! queue holds, so it never takes effect there either.)

use std::collections::HashSet;

use faultline_history::{Operation, Outcome};
use serde_json::Value;
use stateright::semantics::SequentialSpec;

use super::values::{ValueId, Values};
use super::{
    ModelKind, Reader, generic_rejection, mismatch_without_cas, model_operation, unsupported,
};
use crate::wgl::ModelOperation;

/// A queue of `V` without order: the pending values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnorderedQueue<V> {
    /// The pending values, sorted, a value enqueued twice there twice: one representation
    /// per multiset, so that equal queues are equal states.
    pub pending: Vec<V>,
}

impl<V: Ord> UnorderedQueue<V> {
    /// The queue holding `pending`, in any order.
    pub fn new(mut pending: Vec<V>) -> Self {
        pending.sort();
        UnorderedQueue { pending }
    }
}

/// An operation on a queue (an [`UnorderedQueue`] or a
/// [`FifoQueue`](super::fifo_queue::FifoQueue)).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum QueueOp<V> {
    /// Adds a value.
    Enqueue(V),
    /// Takes a value out.
    Dequeue,
}

/// What a [`QueueOp`] returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum QueueRet<V> {
    /// The enqueue is done.
    EnqueueOk,
    /// The value dequeued.
    DequeueOk(V),
    /// The queue was empty: nothing was dequeued. Histories never claim this result (such a
    /// dequeue fails, and a failed operation is left out of the history);
    /// [`SequentialSpec::invoke`] returns it so that a dequeue with an unknown outcome taking
    /// effect on an empty queue changes nothing.
    Empty,
}

impl<V: Clone + Ord> SequentialSpec for UnorderedQueue<V> {
    type Op = QueueOp<V>;
    type Ret = QueueRet<V>;

    /// A dequeue takes out the least pending value: any may come out, and `invoke` must
    /// choose one. (The checker never asks it to: see the module documentation.)
    fn invoke(&mut self, op: &QueueOp<V>) -> QueueRet<V> {
        match op {
            QueueOp::Enqueue(value) => {
                let place = self.pending.partition_point(|pending| pending <= value);
                self.pending.insert(place, value.clone());
                QueueRet::EnqueueOk
            }
            QueueOp::Dequeue if self.pending.is_empty() => QueueRet::Empty,
            QueueOp::Dequeue => QueueRet::DequeueOk(self.pending.remove(0)),
        }
    }

    fn is_valid_step(&mut self, op: &QueueOp<V>, ret: &QueueRet<V>) -> bool {
        match (op, ret) {
            (QueueOp::Enqueue(_), QueueRet::EnqueueOk) => {
                self.invoke(op);
                true
            }
            (QueueOp::Dequeue, QueueRet::DequeueOk(value)) => {
                match self.pending.binary_search(value) {
                    Ok(place) => {
                        self.pending.remove(place);
                        true
                    }
                    Err(_) => false,
                }
            }
            (QueueOp::Dequeue, QueueRet::Empty) => self.pending.is_empty(),
            _ => false,
        }
    }
}

/// What the queue readers share: the partition's values, the initial queue, and every value
/// enqueued, for explanations.
pub(crate) struct QueueValues {
    pub(crate) values: Values,
    /// The values in the queue at the start, in order.
    pub(crate) initial: Vec<ValueId>,
    enqueued: HashSet<ValueId>,
}

impl QueueValues {
    /// The values of a queue starting with `initial` (a list, or `null`, the empty queue;
    /// empty unless given); `model` names the model in the error.
    pub(crate) fn new(initial: Option<&Value>, model: ModelKind) -> Result<Self, String> {
        let mut values = Values::default();
        let initial = match initial {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(elements)) => elements.iter().map(|e| values.intern(e)).collect(),
            Some(other) => {
                return Err(format!(
                    "the {model} model starts from a list of values, not {other}"
                ));
            }
        };
        Ok(QueueValues {
            values,
            initial,
            enqueued: HashSet::new(),
        })
    }

    /// The model operation of `op` (its result if it is `ok`), or `None` if it cannot matter:
    /// a dequeue with an unknown outcome, when `unknown_dequeues_matter` is false.
    pub(crate) fn operation<M>(
        &mut self,
        op: &Operation,
        model: ModelKind,
        unknown_dequeues_matter: bool,
    ) -> Result<Option<ModelOperation<M>>, String>
    where
        M: SequentialSpec<Op = QueueOp<ValueId>, Ret = QueueRet<ValueId>>,
    {
        if op.outcome == Outcome::CasMismatch {
            return Err(mismatch_without_cas(op));
        }
        let known = op.outcome == Outcome::Ok;
        let (model_op, ret) = match op.f.as_str() {
            "enqueue" => {
                let value = self.values.intern(&op.value);
                self.enqueued.insert(value);
                (QueueOp::Enqueue(value), QueueRet::EnqueueOk)
            }
            "dequeue" if !known && !unknown_dequeues_matter => return Ok(None),
            // The result is unknown, so this one goes unused (and the operation's value is its
            // invocation's, which says nothing).
            "dequeue" if !known => (QueueOp::Dequeue, QueueRet::Empty),
            "dequeue" => (
                QueueOp::Dequeue,
                QueueRet::DequeueOk(self.values.intern(&op.value)),
            ),
            _ => return Err(unsupported(model, op, "enqueue or dequeue")),
        };
        Ok(Some(model_operation(
            op,
            model_op,
            known.then_some(ret),
            false,
        )))
    }

    /// The values as JSON, in the order given.
    pub(crate) fn json(&self, values: impl IntoIterator<Item = ValueId>) -> Value {
        Value::Array(
            values
                .into_iter()
                .map(|id| self.values.get(id).clone())
                .collect(),
        )
    }

    /// What to add when a dequeue of `op`'s value was refused because the value was not
    /// where it had to be: whether anything may have put it in the queue at all.
    pub(crate) fn never_enqueued(&self, op: &Operation) -> Option<String> {
        let id = self.values.find(&op.value);
        let enqueued =
            id.is_some_and(|id| self.enqueued.contains(&id) || self.initial.contains(&id));
        if enqueued {
            None
        } else if op.value.is_null() {
            Some(
                ", and null was never enqueued (a dequeue of an empty queue fails, as Jepsen's \
                 queue clients record it)"
                    .to_string(),
            )
        } else {
            Some(format!(", and {} was never enqueued", op.value))
        }
    }
}

/// Reads `enqueue` and `dequeue` operations; the queue starts empty unless an initial list of
/// values is given.
pub(crate) struct UnorderedQueueReader {
    queue: QueueValues,
}

impl Reader for UnorderedQueueReader {
    type Model = UnorderedQueue<ValueId>;

    fn new(initial: Option<&Value>) -> Result<Self, String> {
        Ok(UnorderedQueueReader {
            queue: QueueValues::new(initial, ModelKind::UnorderedQueue)?,
        })
    }

    fn initial(&self) -> Self::Model {
        UnorderedQueue::new(self.queue.initial.clone())
    }

    fn operation(&mut self, op: &Operation) -> Result<Option<ModelOperation<Self::Model>>, String> {
        self.queue.operation(op, ModelKind::UnorderedQueue, false)
    }

    fn state_json(&self, state: &Self::Model) -> Value {
        self.queue.json(state.pending.iter().copied())
    }

    fn explain(&self, op: &Operation, state: &Self::Model) -> String {
        let pending = self.state_json(state);
        match op.f.as_str() {
            "dequeue" => {
                let refused = if state.pending.is_empty() {
                    format!("dequeue returned {} but the queue was empty", op.value)
                } else {
                    format!("dequeue returned {} but the queue held {pending}", op.value)
                };
                let why = self.queue.never_enqueued(op).unwrap_or_else(|| {
                    format!(
                        ", and {} is not pending: not enqueued yet, or dequeued already",
                        op.value
                    )
                });
                format!("{refused}{why}")
            }
            _ => generic_rejection(op, &pending),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_history::{self, TestEvent};
    use crate::verdict::Verdict;
    use serde_json::json;

    #[test]
    fn any_pending_value_may_come_out_once_for_each_enqueue() {
        let mut queue = UnorderedQueue::new(vec![]);
        let dequeue = |queue: &mut UnorderedQueue<i32>, value| {
            queue.is_valid_step(&QueueOp::Dequeue, &QueueRet::DequeueOk(value))
        };
        assert!(queue.is_valid_step(&QueueOp::Dequeue, &QueueRet::Empty));
        assert!(queue.is_valid_step(&QueueOp::Enqueue(2), &QueueRet::EnqueueOk));
        assert!(queue.is_valid_step(&QueueOp::Enqueue(1), &QueueRet::EnqueueOk));
        assert!(queue.is_valid_step(&QueueOp::Enqueue(2), &QueueRet::EnqueueOk));
        assert!(!queue.is_valid_step(&QueueOp::Dequeue, &QueueRet::Empty));
        assert!(dequeue(&mut queue, 2));
        assert!(dequeue(&mut queue, 2));
        assert!(!dequeue(&mut queue, 2));
        assert!(!dequeue(&mut queue, 3));
        assert_eq!(queue.invoke(&QueueOp::Dequeue), QueueRet::DequeueOk(1));
        assert_eq!(queue.invoke(&QueueOp::Dequeue), QueueRet::Empty);
    }

    /// Checks a history of one queue given as (process, type, f, value, time), in time order.
    fn check(events: &[TestEvent]) -> crate::CheckResult {
        test_history::check(ModelKind::UnorderedQueue, events)
    }

    #[test]
    fn values_come_out_in_any_order_but_only_as_often_as_they_went_in() {
        let mut events = vec![
            (0, "invoke", "enqueue", json!(1), 0),
            (0, "ok", "enqueue", json!(1), 1),
            (0, "invoke", "enqueue", json!(2), 2),
            (0, "ok", "enqueue", json!(2), 3),
            (1, "invoke", "dequeue", Value::Null, 4),
            (1, "ok", "dequeue", json!(2), 5),
            (1, "invoke", "dequeue", Value::Null, 6),
            (1, "info", "dequeue", Value::Null, 7),
        ];
        assert_eq!(check(&events).valid, Verdict::Valid);

        events.extend([
            (2, "invoke", "dequeue", Value::Null, 8),
            (2, "ok", "dequeue", json!(2), 9),
        ]);
        let result = check(&events);
        assert_eq!(result.valid, Verdict::Invalid);
        let example = &result.counterexamples[0];
        assert_eq!(example.state, json!([1]));
        assert_eq!(
            example.rejected[0].reason,
            "dequeue returned 2 but the queue held [1], and 2 is not pending: not enqueued \
             yet, or dequeued already"
        );
    }

    #[test]
    fn a_dequeue_of_null_is_of_the_value_null() {
        let result = check(&[
            (0, "invoke", "dequeue", Value::Null, 0),
            (0, "ok", "dequeue", Value::Null, 1),
        ]);
        assert_eq!(result.valid, Verdict::Invalid);
        assert_eq!(
            result.counterexamples[0].rejected[0].reason,
            "dequeue returned null but the queue was empty, and null was never enqueued (a \
             dequeue of an empty queue fails, as Jepsen's queue clients record it)"
        );
        let result = check(&[
            (0, "invoke", "enqueue", Value::Null, 0),
            (0, "ok", "enqueue", Value::Null, 1),
            (0, "invoke", "dequeue", Value::Null, 2),
            (0, "ok", "dequeue", Value::Null, 3),
        ]);
        assert_eq!(result.valid, Verdict::Valid);
    }

    #[test]
    fn the_initial_queue_may_be_given() {
        let reader = UnorderedQueueReader::new(Some(&json!([3, 1]))).unwrap();
        assert_eq!(reader.state_json(&reader.initial()), json!([3, 1]));
        assert_eq!(
            UnorderedQueueReader::new(Some(&json!(3))).err().unwrap(),
            "the unordered-queue model starts from a list of values, not 3"
        );
    }
}
