//! The time budget of a check: a deadline that the searches look at every so often, and that
//! can be brought forward while they run (once one key is invalid the verdict is settled, and
//! the other keys only get a little longer to yield more counterexamples).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a check may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// For the whole check; past it, undecided keys are `unknown`. `None`: no limit.
    pub timeout: Option<Duration>,
    /// Once a key is found invalid, how much longer the other keys may take. `None`: until
    /// the timeout; zero: stop at the first invalid key, as Porcupine does.
    pub after_invalid: Option<Duration>,
}

impl Default for Budget {
    /// A minute, and a second more once a key is invalid.
    fn default() -> Self {
        Budget {
            timeout: Some(Duration::from_secs(60)),
            after_invalid: Some(Duration::from_secs(1)),
        }
    }
}

/// A moment after which searches stop; shared by all the searches of a check.
pub struct Deadline {
    start: Instant,
    /// Nanoseconds after `start`; `u64::MAX` for never.
    limit: AtomicU64,
}

impl Deadline {
    /// `timeout` from now (never if `None`).
    pub fn after(timeout: Option<Duration>) -> Self {
        let deadline = Deadline {
            start: Instant::now(),
            limit: AtomicU64::new(u64::MAX),
        };
        if let Some(timeout) = timeout {
            deadline.bring_forward(timeout);
        }
        deadline
    }

    /// Whether the deadline has passed.
    pub fn has_passed(&self) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        limit != u64::MAX && nanos(self.start.elapsed()) >= limit
    }

    /// Moves the deadline to `within` from now, unless it is sooner already.
    pub fn bring_forward(&self, within: Duration) {
        let limit = nanos(self.start.elapsed().saturating_add(within)).min(u64::MAX - 1);
        self.limit.fetch_min(limit, Ordering::Relaxed);
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_passes_and_can_only_come_sooner() {
        assert!(!Deadline::after(None).has_passed());
        assert!(Deadline::after(Some(Duration::ZERO)).has_passed());
        let deadline = Deadline::after(Some(Duration::from_secs(3600)));
        assert!(!deadline.has_passed());
        deadline.bring_forward(Duration::from_secs(7200));
        assert!(!deadline.has_passed());
        deadline.bring_forward(Duration::ZERO);
        assert!(deadline.has_passed());
    }
}
