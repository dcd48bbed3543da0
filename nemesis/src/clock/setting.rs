//! What a node's clock reads, relative to true time: an offset that grows at a rate. The one
//! model of a faulted clock, pure (no files, no processes): the nemesis keeps one per node,
//! changes it by a jump or a new rate, and the control file says the same thing in
//! libfaketime's words (`control.rs`).

use std::time::Duration;

use tokio::time::Instant;

/// A node's clock: at `since` it read true time plus `offset_ns`, and from then on it runs
/// at `rate` times true time, so at `t` it reads true time plus
/// `offset_ns + (t - since) * (rate - 1)` ([`ClockSetting::offset_at`]). Both of the node's
/// clocks (CLOCK_REALTIME and CLOCK_MONOTONIC) follow it together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockSetting {
    /// How far ahead of true time (behind, if negative) the clock reads at `since`, in
    /// nanoseconds.
    pub offset_ns: i64,
    /// How fast it runs: 1 is true time, 1.1 gains 100 ms a second, 0.9 loses 100 ms.
    pub rate: f64,
    /// When `offset_ns` held.
    pub since: Instant,
}

impl ClockSetting {
    /// True time: no offset, at rate 1.
    pub fn true_time(now: Instant) -> ClockSetting {
        ClockSetting {
            offset_ns: 0,
            rate: 1.0,
            since: now,
        }
    }

    /// Whether the clock reads true time and runs at its rate.
    pub fn is_true(&self) -> bool {
        self.offset_ns == 0 && self.rate == 1.0
    }

    /// How far ahead of true time the clock reads at `t`, in nanoseconds; `t` may be before
    /// `since` (the line through `since` extended back, as libfaketime computes it from the
    /// start of a process: see `control.rs`).
    pub fn offset_at(&self, t: Instant) -> i64 {
        let elapsed = signed_nanos(t, self.since);
        self.offset_ns + (elapsed as f64 * (self.rate - 1.0)).round() as i64
    }

    /// The clock at `t` with its rate changed to `rate`: the offset it reads at `t` stays
    /// (no jump), and grows at the new rate from then on.
    pub fn with_rate(&self, t: Instant, rate: f64) -> ClockSetting {
        ClockSetting {
            offset_ns: self.offset_at(t),
            rate,
            since: t,
        }
    }

    /// The clock jumped by `delta_ns` at `t` (ahead if positive), running at the same rate.
    pub fn jumped(&self, t: Instant, delta_ns: i64) -> ClockSetting {
        ClockSetting {
            offset_ns: self.offset_at(t) + delta_ns,
            rate: self.rate,
            since: t,
        }
    }

    /// The offset at `t` in milliseconds, for the history.
    pub fn offset_ms_at(&self, t: Instant) -> f64 {
        self.offset_at(t) as f64 / 1e6
    }
}

/// `a - b` in nanoseconds, negative when `a` is earlier.
pub(crate) fn signed_nanos(a: Instant, b: Instant) -> i64 {
    if a >= b { nanos(a - b) } else { -nanos(b - a) }
}

fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ms(n: i64) -> i64 {
        n * 1_000_000
    }

    #[test]
    fn a_skewed_clock_gains_what_its_rate_says_and_a_bump_adds_its_jump() {
        let t0 = Instant::now();
        let at = |millis: u64| t0 + Duration::from_millis(millis);
        let skewed = ClockSetting::true_time(t0).with_rate(at(1000), 1.1);
        assert_eq!(skewed.offset_at(at(1000)), 0);
        assert_eq!(skewed.offset_at(at(2000)), ms(100));
        // Before the change, the same line extended back.
        assert_eq!(skewed.offset_at(at(500)), -ms(50));
        let bumped = skewed.jumped(at(2000), -ms(300));
        assert_eq!(bumped.offset_at(at(2000)), -ms(200));
        assert_eq!(bumped.offset_at(at(3000)), -ms(100), "still at rate 1.1");
        let slow = bumped.with_rate(at(3000), 0.9);
        assert_eq!(slow.offset_at(at(4000)), -ms(200));
        assert!(ClockSetting::true_time(t0).is_true());
        assert!(!slow.is_true());
    }

    proptest! {
        /// A new rate never moves the clock at the moment it starts or ends, and the offset
        /// then grows by exactly (rate - 1) of the time that passes.
        #[test]
        fn a_change_of_rate_never_jumps(
            offset in -2_000_000_000i64..2_000_000_000,
            rate in 0.5f64..2.0,
            new_rate in 0.5f64..2.0,
            before_ms in 0u64..10_000,
            change_ms in 0u64..10_000,
            after_ms in 0u64..10_000,
        ) {
            let t0 = Instant::now();
            let clock = ClockSetting { offset_ns: offset, rate, since: t0 + Duration::from_millis(before_ms) };
            let change = t0 + Duration::from_millis(change_ms);
            let changed = clock.with_rate(change, new_rate);
            prop_assert_eq!(changed.offset_at(change), clock.offset_at(change));
            let later = change + Duration::from_millis(after_ms);
            let grown = changed.offset_at(later) - changed.offset_at(change);
            let expected = ms(after_ms as i64) as f64 * (new_rate - 1.0);
            prop_assert!((grown as f64 - expected).abs() <= 1.0, "{} vs {}", grown, expected);
        }

        /// A bump moves the clock by exactly its jump, and nothing else changes.
        #[test]
        fn a_bump_moves_the_clock_by_its_jump(
            offset in -2_000_000_000i64..2_000_000_000,
            rate in 0.5f64..2.0,
            delta in -1_000_000_000i64..1_000_000_000,
            at_ms in 0u64..10_000,
            after_ms in 0u64..10_000,
        ) {
            let t0 = Instant::now();
            let clock = ClockSetting { offset_ns: offset, rate, since: t0 };
            let at = t0 + Duration::from_millis(at_ms);
            let bumped = clock.jumped(at, delta);
            prop_assert_eq!(bumped.offset_at(at), clock.offset_at(at) + delta);
            let later = at + Duration::from_millis(after_ms);
            let drift = (bumped.offset_at(later) - clock.offset_at(later) - delta).abs();
            prop_assert!(drift <= 1, "{}", drift);
        }
    }
}
