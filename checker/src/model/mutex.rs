//! Knossos's mutex: `acquire` locks it, `release` unlocks it. Acquiring a locked mutex or
//! releasing a free one cannot happen (Knossos: "already held", "not held"). As in Knossos, the
//! mutex does not record who holds it, so one client may release what another acquired: a
//! history only shows that the lock was never held twice at once.

use faultline_history::{Operation, Outcome};
use serde_json::Value;
use stateright::semantics::SequentialSpec;

use super::{ModelKind, Reader, mismatch_without_cas, model_operation, unsupported};
use crate::wgl::ModelOperation;

/// A mutex.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Mutex {
    /// Whether it is held.
    pub locked: bool,
}

/// An operation on a [`Mutex`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MutexOp {
    /// Locks the mutex.
    Acquire,
    /// Unlocks the mutex.
    Release,
}

/// What a [`MutexOp`] returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MutexRet {
    /// It took effect.
    Ok,
    /// It could not take effect: an acquire of a held mutex or a release of a free one.
    /// Nothing changed. (Histories never claim this result: such an operation waits or fails,
    /// and a failed one is left out of the history; [`SequentialSpec::invoke`] returns it so
    /// that an operation with an unknown outcome taking effect there changes nothing.)
    Refused,
}

impl MutexOp {
    /// Whether the operation can take effect on a mutex that is `locked` or not.
    fn fits(&self, locked: bool) -> bool {
        match self {
            MutexOp::Acquire => !locked,
            MutexOp::Release => locked,
        }
    }
}

impl SequentialSpec for Mutex {
    type Op = MutexOp;
    type Ret = MutexRet;

    fn invoke(&mut self, op: &MutexOp) -> MutexRet {
        if op.fits(self.locked) {
            self.locked = matches!(op, MutexOp::Acquire);
            MutexRet::Ok
        } else {
            MutexRet::Refused
        }
    }

    fn is_valid_step(&mut self, op: &MutexOp, ret: &MutexRet) -> bool {
        let fits = op.fits(self.locked);
        match ret {
            MutexRet::Ok if fits => {
                self.locked = matches!(op, MutexOp::Acquire);
                true
            }
            MutexRet::Ok => false,
            MutexRet::Refused => !fits,
        }
    }
}

/// Reads `acquire` and `release` operations (their values do not matter); the mutex starts
/// free unless the initial value is `true` or `"locked"`.
pub(crate) struct MutexReader {
    initial: bool,
}

impl Reader for MutexReader {
    type Model = Mutex;

    fn new(initial: Option<&Value>) -> Result<Self, String> {
        let initial = match initial {
            None | Some(Value::Null) => false,
            Some(Value::Bool(locked)) => *locked,
            Some(Value::String(state)) if state == "free" => false,
            Some(Value::String(state)) if state == "locked" => true,
            Some(other) => {
                return Err(format!(
                    "the mutex model starts \"free\" or \"locked\" (or false or true), not {other}"
                ));
            }
        };
        Ok(MutexReader { initial })
    }

    fn initial(&self) -> Mutex {
        Mutex {
            locked: self.initial,
        }
    }

    fn operation(&mut self, op: &Operation) -> Result<Option<ModelOperation<Mutex>>, String> {
        if op.outcome == Outcome::CasMismatch {
            return Err(mismatch_without_cas(op));
        }
        let model_op = match op.f.as_str() {
            "acquire" => MutexOp::Acquire,
            "release" => MutexOp::Release,
            _ => return Err(unsupported(ModelKind::Mutex, op, "acquire or release")),
        };
        let known = op.outcome == Outcome::Ok;
        Ok(Some(model_operation(
            op,
            model_op,
            known.then_some(MutexRet::Ok),
            false,
        )))
    }

    fn state_json(&self, state: &Mutex) -> Value {
        Value::from(if state.locked { "locked" } else { "free" })
    }

    fn explain(&self, op: &Operation, state: &Mutex) -> String {
        match (op.f.as_str(), state.locked) {
            ("acquire", true) => "acquire succeeded but the mutex was already held".to_string(),
            ("release", false) => "release succeeded but the mutex was not held".to_string(),
            // Not reached: a fitting operation is accepted.
            (f, _) => format!(
                "{f} does not fit when the mutex is {}",
                self.state_json(state)
            ),
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
    fn a_mutex_is_held_by_one_at_a_time() {
        let mut mutex = Mutex::default();
        assert!(!mutex.is_valid_step(&MutexOp::Release, &MutexRet::Ok));
        assert!(mutex.is_valid_step(&MutexOp::Acquire, &MutexRet::Ok));
        assert!(!mutex.is_valid_step(&MutexOp::Acquire, &MutexRet::Ok));
        assert!(mutex.is_valid_step(&MutexOp::Acquire, &MutexRet::Refused));
        assert!(mutex.locked, "a refused acquire changes nothing");
        assert_eq!(mutex.invoke(&MutexOp::Release), MutexRet::Ok);
        assert_eq!(mutex.invoke(&MutexOp::Release), MutexRet::Refused);
        assert!(!mutex.locked);
    }

    /// Checks a history of one mutex given as (process, type, f, time), in time order.
    fn check(events: &[(u64, &str, &str, u64)]) -> crate::CheckResult {
        let events: Vec<TestEvent> = events
            .iter()
            .map(|&(process, kind, f, time)| (process, kind, f, Value::Null, time))
            .collect();
        test_history::check(ModelKind::Mutex, &events)
    }

    #[test]
    fn overlapping_holders_are_found_and_explained() {
        // 0 holds the lock from 1 to 4; 1 acquires it from 2 to 3, inside that time.
        let result = check(&[
            (0, "invoke", "acquire", 0),
            (0, "ok", "acquire", 1),
            (1, "invoke", "acquire", 2),
            (1, "ok", "acquire", 3),
            (0, "invoke", "release", 4),
            (0, "ok", "release", 5),
        ]);
        assert_eq!(result.valid, Verdict::Invalid);
        let example = &result.counterexamples[0];
        assert_eq!(example.state, json!("locked"));
        assert_eq!(
            example.rejected[0].reason,
            "acquire succeeded but the mutex was already held"
        );

        // The release overlaps the second acquire: it may come first.
        let result = check(&[
            (0, "invoke", "acquire", 0),
            (0, "ok", "acquire", 1),
            (1, "invoke", "acquire", 2),
            (0, "invoke", "release", 3),
            (1, "ok", "acquire", 4),
            (0, "ok", "release", 5),
        ]);
        assert_eq!(result.valid, Verdict::Valid);
    }

    #[test]
    fn a_release_of_a_free_mutex_is_found_and_an_unknown_one_may_explain_a_later_acquire() {
        let result = check(&[(0, "invoke", "release", 0), (0, "ok", "release", 1)]);
        assert_eq!(result.valid, Verdict::Invalid);
        assert_eq!(result.counterexamples[0].state, json!("free"));
        assert_eq!(
            result.counterexamples[0].rejected[0].reason,
            "release succeeded but the mutex was not held"
        );

        // The release timed out: it may have happened, so the second acquire may succeed.
        let result = check(&[
            (0, "invoke", "acquire", 0),
            (0, "ok", "acquire", 1),
            (0, "invoke", "release", 2),
            (0, "info", "release", 3),
            (1, "invoke", "acquire", 4),
            (1, "ok", "acquire", 5),
        ]);
        assert_eq!(result.valid, Verdict::Valid);
    }

    #[test]
    fn the_initial_state_may_be_given() {
        let locked = |value| MutexReader::new(Some(&value)).map(|r| r.initial().locked);
        assert_eq!(locked(json!(true)), Ok(true));
        assert_eq!(locked(json!("free")), Ok(false));
        assert_eq!(locked(Value::Null), Ok(false));
        assert_eq!(
            locked(json!(1)).unwrap_err(),
            "the mutex model starts \"free\" or \"locked\" (or false or true), not 1"
        );
    }
}
