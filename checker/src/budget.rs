//! The budget of a check: how long it may take and how much memory it may use. Searches look
//! at a shared deadline every so often; it can be brought forward while they run (once one key
//! is invalid the verdict is settled, and the other keys only get a little longer, to yield
//! more counterexamples), and it passes at once if the process outgrows its memory limit (a
//! search that cannot decide a key could otherwise fill all memory before its time is up).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long a check may take and how much memory it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// For the whole check; past it, undecided keys are `unknown`. `None`: no limit.
    pub timeout: Option<Duration>,
    /// Once a key is found invalid, how much longer the other keys may take. `None`: until
    /// the timeout; zero: stop at the first invalid key, as Porcupine does.
    pub after_invalid: Option<Duration>,
    /// Bytes of resident memory (of the whole process) past which undecided keys are
    /// `unknown`. `None`: no limit. Measured on Linux only.
    pub memory: Option<u64>,
}

impl Budget {
    /// No limit of time or memory: the check runs until every key is decided.
    pub const UNLIMITED: Budget = Budget {
        timeout: None,
        after_invalid: None,
        memory: None,
    };
}

impl Default for Budget {
    /// A minute, a second more once a key is invalid, and half the machine's memory.
    fn default() -> Self {
        Budget {
            timeout: Some(Duration::from_secs(60)),
            after_invalid: Some(Duration::from_secs(1)),
            memory: physical_memory().map(|bytes| bytes / 2),
        }
    }
}

/// Why keys were left undecided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stop {
    /// The time budget was spent.
    Timeout,
    /// The memory limit was reached.
    MemoryLimit,
    /// Another key was found invalid, and the time left after that was spent.
    AfterInvalid,
}

/// A moment after which searches stop; shared by all the searches of a check.
pub struct Deadline {
    start: Instant,
    /// Nanoseconds after `start`; `u64::MAX` for never.
    limit: AtomicU64,
    /// Why `limit` is what it is; changed with it.
    cause: Mutex<Stop>,
    memory: Option<u64>,
    /// How often the deadline has been looked at: memory is measured every so often.
    looks: AtomicU64,
}

impl Deadline {
    /// Measuring memory reads a file: do it at every this many looks.
    const LOOKS_BETWEEN_MEMORY_CHECKS: u64 = 16;

    /// The deadline of `budget`, starting now.
    pub fn new(budget: &Budget) -> Self {
        let deadline = Deadline {
            start: Instant::now(),
            limit: AtomicU64::new(u64::MAX),
            cause: Mutex::new(Stop::Timeout),
            memory: budget.memory,
            looks: AtomicU64::new(0),
        };
        if let Some(timeout) = budget.timeout {
            deadline.bring_forward(timeout, Stop::Timeout);
        }
        deadline
    }

    /// Whether the deadline has passed (or the memory limit been reached).
    pub fn has_passed(&self) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        if limit != u64::MAX && nanos(self.start.elapsed()) >= limit {
            return true;
        }
        let look = self.looks.fetch_add(1, Ordering::Relaxed);
        let over_memory = self.memory.is_some_and(|memory| {
            look.is_multiple_of(Self::LOOKS_BETWEEN_MEMORY_CHECKS)
                && resident_memory().is_some_and(|resident| resident > memory)
        });
        if over_memory {
            self.bring_forward(Duration::ZERO, Stop::MemoryLimit);
        }
        over_memory
    }

    /// Moves the deadline to `within` from now, for `cause`, unless it is sooner already.
    pub fn bring_forward(&self, within: Duration, cause: Stop) {
        let limit = nanos(self.start.elapsed().saturating_add(within)).min(u64::MAX - 1);
        let mut current_cause = self
            .cause
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if limit < self.limit.fetch_min(limit, Ordering::Relaxed) {
            *current_cause = cause;
        }
    }

    /// The time left, or `None` once the deadline has passed (`Duration::MAX` if it never
    /// will).
    pub fn remaining(&self) -> Option<Duration> {
        let limit = self.limit.load(Ordering::Relaxed);
        if limit == u64::MAX {
            return Some(Duration::MAX);
        }
        let left = limit.saturating_sub(nanos(self.start.elapsed()));
        (left > 0).then(|| Duration::from_nanos(left))
    }

    /// Why the deadline is where it is.
    pub fn cause(&self) -> Stop {
        *self
            .cause
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The machine's memory, in bytes (Linux).
fn physical_memory() -> Option<u64> {
    kib_field("/proc/meminfo", "MemTotal:")
}

/// This process's resident memory, in bytes (Linux).
fn resident_memory() -> Option<u64> {
    kib_field("/proc/self/status", "VmRSS:")
}

/// A "Name:   1234 kB" line of a /proc file, in bytes.
fn kib_field(path: &str, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find_map(|line| line.strip_prefix(name))?;
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(timeout: Option<Duration>, memory: Option<u64>) -> Budget {
        Budget {
            timeout,
            after_invalid: None,
            memory,
        }
    }

    #[test]
    fn a_deadline_passes_and_can_only_come_sooner() {
        assert!(!Deadline::new(&budget(None, None)).has_passed());
        let past = Deadline::new(&budget(Some(Duration::ZERO), None));
        assert!(past.has_passed());
        assert_eq!(past.cause(), Stop::Timeout);

        let deadline = Deadline::new(&budget(Some(Duration::from_secs(3600)), None));
        assert!(!deadline.has_passed());
        deadline.bring_forward(Duration::from_secs(7200), Stop::AfterInvalid);
        assert!(!deadline.has_passed());
        assert_eq!(
            deadline.cause(),
            Stop::Timeout,
            "a later moment changes nothing"
        );
        deadline.bring_forward(Duration::ZERO, Stop::AfterInvalid);
        assert!(deadline.has_passed());
        assert_eq!(deadline.cause(), Stop::AfterInvalid);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn outgrowing_the_memory_limit_passes_the_deadline() {
        assert!(resident_memory().is_some_and(|bytes| bytes > 0));
        assert!(physical_memory() > resident_memory());
        let deadline = Deadline::new(&budget(None, Some(0)));
        assert!(deadline.has_passed());
        assert_eq!(deadline.cause(), Stop::MemoryLimit);
        let roomy = Deadline::new(&budget(None, Some(u64::MAX)));
        assert!(!roomy.has_passed());
    }
}
