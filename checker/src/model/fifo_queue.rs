//! Knossos's FIFO queue: `enqueue v` adds a value at the back, `dequeue` takes out the value
//! at the front and returns it.
//!
//! As in Knossos, a dequeue that completed `ok` returned a value, the front one, and a dequeue
//! of an empty queue cannot complete `ok` (Jepsen's queue clients record it as a `fail`,
//! which did not happen); an `ok` dequeue of `null` dequeued the value `null`.
//!
//! One departure, where Knossos is too strict: a dequeue whose outcome is unknown (`info`)
//! may have taken effect, and then it took out the front value, whichever that was at the
//! time; here it may do so. (Knossos steps it with its invocation's value, `nil`, which is
//! never at the front, so it never takes effect, and a history in which it must have, such
//! as enqueue 1, enqueue 2, a dequeue that timed out, then a dequeue of 2, is called
//! non-linearizable.)

use std::collections::VecDeque;

use faultline_history::Operation;
use serde_json::Value;
use stateright::semantics::SequentialSpec;

use super::unordered_queue::{QueueOp, QueueRet, QueueValues};
use super::values::ValueId;
use super::{ModelKind, Reader, generic_rejection};
use crate::wgl::ModelOperation;

/// A first-in first-out queue of `V`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FifoQueue<V> {
    /// The values, front first.
    pub queue: VecDeque<V>,
}

impl<V: Clone + Eq> SequentialSpec for FifoQueue<V> {
    type Op = QueueOp<V>;
    type Ret = QueueRet<V>;

    fn invoke(&mut self, op: &QueueOp<V>) -> QueueRet<V> {
        match op {
            QueueOp::Enqueue(value) => {
                self.queue.push_back(value.clone());
                QueueRet::EnqueueOk
            }
            QueueOp::Dequeue => self
                .queue
                .pop_front()
                .map_or(QueueRet::Empty, QueueRet::DequeueOk),
        }
    }

    fn is_valid_step(&mut self, op: &QueueOp<V>, ret: &QueueRet<V>) -> bool {
        match (op, ret) {
            (QueueOp::Enqueue(_), QueueRet::EnqueueOk) => {
                self.invoke(op);
                true
            }
            (QueueOp::Dequeue, QueueRet::DequeueOk(value)) if self.queue.front() == Some(value) => {
                self.queue.pop_front();
                true
            }
            (QueueOp::Dequeue, QueueRet::Empty) => self.queue.is_empty(),
            _ => false,
        }
    }
}

/// Reads `enqueue` and `dequeue` operations; the queue starts empty unless an initial list of
/// values is given (front first).
pub(crate) struct FifoQueueReader {
    queue: QueueValues,
}

impl Reader for FifoQueueReader {
    type Model = FifoQueue<ValueId>;

    fn new(initial: Option<&Value>) -> Result<Self, String> {
        Ok(FifoQueueReader {
            queue: QueueValues::new(initial, ModelKind::FifoQueue)?,
        })
    }

    fn initial(&self) -> Self::Model {
        FifoQueue {
            queue: self.queue.initial.iter().copied().collect(),
        }
    }

    fn operation(&mut self, op: &Operation) -> Result<Option<ModelOperation<Self::Model>>, String> {
        // An unknown dequeue matters: it may have taken the front value out.
        self.queue.operation(op, ModelKind::FifoQueue, true)
    }

    fn state_json(&self, state: &Self::Model) -> Value {
        self.queue.json(state.queue.iter().copied())
    }

    fn explain(&self, op: &Operation, state: &Self::Model) -> String {
        let queue = self.state_json(state);
        match (op.f.as_str(), state.queue.front()) {
            ("dequeue", None) => {
                let why = self.queue.never_enqueued(op).unwrap_or_default();
                format!("dequeue returned {} but the queue was empty{why}", op.value)
            }
            ("dequeue", Some(&front)) => {
                let why = self.queue.never_enqueued(op).unwrap_or_default();
                format!(
                    "dequeue returned {} but the queue was {queue}, whose front is {}{why}",
                    op.value,
                    self.queue.values.get(front)
                )
            }
            _ => generic_rejection(op, &queue),
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
    fn values_come_out_in_the_order_they_went_in() {
        let mut queue = FifoQueue {
            queue: VecDeque::new(),
        };
        assert!(queue.is_valid_step(&QueueOp::Dequeue, &QueueRet::Empty));
        assert!(queue.is_valid_step(&QueueOp::Enqueue(1), &QueueRet::EnqueueOk));
        assert!(queue.is_valid_step(&QueueOp::Enqueue(2), &QueueRet::EnqueueOk));
        assert!(!queue.is_valid_step(&QueueOp::Dequeue, &QueueRet::DequeueOk(2)));
        assert!(!queue.is_valid_step(&QueueOp::Dequeue, &QueueRet::Empty));
        assert!(queue.is_valid_step(&QueueOp::Dequeue, &QueueRet::DequeueOk(1)));
        assert_eq!(queue.invoke(&QueueOp::Dequeue), QueueRet::DequeueOk(2));
        assert_eq!(queue.invoke(&QueueOp::Dequeue), QueueRet::Empty);
    }

    /// Checks a history of one queue given as (process, type, f, value, time), in time order.
    fn check(events: &[TestEvent]) -> crate::CheckResult {
        test_history::check(ModelKind::FifoQueue, events)
    }

    fn enqueue_1_then_2() -> Vec<(u64, &'static str, &'static str, Value, u64)> {
        vec![
            (0, "invoke", "enqueue", json!(1), 0),
            (0, "ok", "enqueue", json!(1), 1),
            (0, "invoke", "enqueue", json!(2), 2),
            (0, "ok", "enqueue", json!(2), 3),
        ]
    }

    #[test]
    fn a_value_overtaking_an_older_one_is_found_and_explained() {
        let mut events = enqueue_1_then_2();
        events.extend([
            (1, "invoke", "dequeue", Value::Null, 4),
            (1, "ok", "dequeue", json!(2), 5),
        ]);
        let result = check(&events);
        assert_eq!(result.valid, Verdict::Invalid);
        let example = &result.counterexamples[0];
        assert_eq!(example.state, json!([1, 2]));
        assert_eq!(
            example.rejected[0].reason,
            "dequeue returned 2 but the queue was [1,2], whose front is 1"
        );
    }

    #[test]
    fn a_dequeue_with_an_unknown_outcome_may_have_taken_the_front_value() {
        let mut events = enqueue_1_then_2();
        events.extend([
            (1, "invoke", "dequeue", Value::Null, 4),
            (1, "info", "dequeue", Value::Null, 5),
            (2, "invoke", "dequeue", Value::Null, 6),
            (2, "ok", "dequeue", json!(2), 7),
        ]);
        assert_eq!(check(&events).valid, Verdict::Valid);

        // But only once, and only the front one.
        events.extend([
            (2, "invoke", "dequeue", Value::Null, 8),
            (2, "ok", "dequeue", json!(1), 9),
        ]);
        let result = check(&events);
        assert_eq!(result.valid, Verdict::Invalid);
        assert_eq!(
            result.counterexamples[0].rejected[0].reason,
            "dequeue returned 1 but the queue was empty"
        );
    }

    #[test]
    fn a_dequeue_of_an_empty_queue_cannot_succeed() {
        let result = check(&[
            (0, "invoke", "dequeue", Value::Null, 0),
            (0, "ok", "dequeue", json!(5), 1),
        ]);
        assert_eq!(
            result.counterexamples[0].rejected[0].reason,
            "dequeue returned 5 but the queue was empty, and 5 was never enqueued"
        );
    }
}
