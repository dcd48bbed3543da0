//! Why a key is not linearizable, in a shape a person (and the report) can follow: every
//! operation of the key, the longest linearizable prefix the search found, the model state
//! after it, and the operations that could come next by real time but not by the model, each
//! with the reason.

use faultline_history::Operation;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Reader;
use crate::wgl::Stuck;

/// The evidence that one key is not linearizable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The key (`null` for a history without keys).
    pub key: Option<String>,
    /// Every operation of the key, in order of invocation.
    pub operations: Vec<Operation>,
    /// The longest linearizable prefix found: operation ids in linearization order.
    pub prefix: Vec<u64>,
    /// The model state after the prefix.
    pub state: Value,
    /// The operations that real time allowed next, none of which the model accepted.
    pub rejected: Vec<Rejection>,
    /// The completion that made the key not linearizable: the earliest point at which the
    /// key's history, cut there, is already not linearizable (absent if that search did not
    /// finish in time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observable: Option<Observable>,
}

/// The moment an anomaly could first be seen: the completion of one operation, before which
/// the key's history was still linearizable and after which it no longer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observable {
    /// When that operation completed.
    pub time: u64,
    /// Its id.
    pub operation: u64,
}

impl Counterexample {
    /// When the history stopped being linearizable, and the operation whose completion made
    /// it so: [`Counterexample::observable`] where known, else the completion time (the call
    /// time, for an operation that never completed) and id of the first rejected operation
    /// to complete.
    pub fn detected_at(&self) -> Option<(u64, u64)> {
        if let Some(observable) = self.observable {
            return Some((observable.time, observable.operation));
        }
        self.rejected
            .iter()
            .filter_map(|rejection| {
                let op = self.operations.iter().find(|op| op.id == rejection.id)?;
                Some((op.return_time.unwrap_or(op.call), op.id))
            })
            .min()
    }
}

/// An operation that could not come after the prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The operation's id.
    pub id: u64,
    /// Why, e.g. "read returned 3 but the value was 4".
    pub reason: String,
}

/// The counterexample for a partition of `operations` whose search got `stuck`; `origin[i]` is
/// the place in `operations` of the search's operation `i`.
pub(crate) fn counterexample<R: Reader>(
    key: Option<String>,
    operations: &[&Operation],
    origin: &[u32],
    stuck: &Stuck<R::Model>,
    reader: &R,
) -> Counterexample {
    let operation = |index: usize| operations[origin[index] as usize];
    Counterexample {
        key,
        operations: operations.iter().map(|&op| op.clone()).collect(),
        prefix: stuck.prefix.iter().map(|&i| operation(i).id).collect(),
        state: reader.state_json(&stuck.state),
        rejected: stuck
            .candidates
            .iter()
            .map(|&i| Rejection {
                id: operation(i).id,
                reason: reader.explain(operation(i), &stuck.state),
            })
            .collect(),
        observable: None,
    }
}
