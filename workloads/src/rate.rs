//! The optional global rate limit: the operations of all clients, spaced evenly.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Hands out start times `1 / rate` apart, to whichever client asks next.
pub(crate) struct RateLimit {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimit {
    /// A limit of `per_second` operations per second (validated by the options: at least
    /// [`crate::options::MIN_RATE`]).
    pub(crate) fn new(per_second: f64) -> RateLimit {
        RateLimit {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(None),
        }
    }

    /// Reserves the next free start time: now, or one interval after the last reserved one
    /// if that is later.
    pub(crate) fn reserve(&self) -> Instant {
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = next.map_or(now, |next| next.max(now));
        *next = Some(slot + self.interval);
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_spaced_evenly_and_idle_time_is_not_saved_up() {
        let limit = RateLimit::new(4.0);
        let start = Instant::now();
        let slots: Vec<Duration> = (0..3).map(|_| limit.reserve() - start).collect();
        assert_eq!(slots, [0, 250, 500].map(Duration::from_millis));

        // After a quiet second, the next slot is now, not a burst of missed ones.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let resumed = Instant::now();
        assert_eq!(limit.reserve(), resumed);
        assert_eq!(limit.reserve() - resumed, Duration::from_millis(250));
    }
}
