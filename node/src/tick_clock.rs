//! The Raft loop's clock: CLOCK_MONOTONIC, run at the rate Faultline's clock fault sets.
//!
//! Under the clock fault the harness starts the node under libfaketime, which fakes its
//! wall clock through a control file (`FAKETIME_TIMESTAMP_FILE`, one line `+O xR`: offset
//! `O` seconds, rate `R`). libfaketime cannot fake CLOCK_MONOTONIC for this node (a faked
//! monotonic clock reads decades ahead, and the loop's waits, timed by the kernel on the
//! real one, never end), yet that is the clock elections, heartbeats and leases run on. So
//! the loop reads the rate from the same file and runs its own clock at it: a node whose
//! clock is skewed 10 % fast times out, heartbeats and lets its lease lapse 10 % sooner in
//! true time, as a drifting oscillator would make it. Only the rate: a monotonic clock does
//! not jump, so the offset (a bump or a strobe of the wall clock) is not applied here.
//! Without the variable the clock is CLOCK_MONOTONIC itself.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the control file is read again (a few ticks of the default 10 ms tick).
const REREAD_EVERY: Duration = Duration::from_millis(5);

/// Rates outside this range are taken as a typo in the control file, not a clock.
const RATES: std::ops::RangeInclusive<f64> = 0.1..=10.0;

/// The loop's clock: time since the loop started, at the rates in force since.
#[derive(Debug)]
pub struct TickClock {
    control: Option<PathBuf>,
    /// The true instant at which the current rate took over, and the clock's reading then.
    anchor: Instant,
    reading_at_anchor: Duration,
    rate: f64,
    /// When the control file was last read.
    read_at: Option<Instant>,
}

impl TickClock {
    /// CLOCK_MONOTONIC, or run at the rate of the libfaketime control file the environment
    /// names.
    pub fn from_env() -> TickClock {
        TickClock::new(
            std::env::var_os("FAKETIME_TIMESTAMP_FILE").map(PathBuf::from),
            Instant::now(),
        )
    }

    /// A clock reading zero at `start`, following `control` if given.
    pub fn new(control: Option<PathBuf>, start: Instant) -> TickClock {
        TickClock {
            control,
            anchor: start,
            reading_at_anchor: Duration::ZERO,
            rate: 1.0,
            read_at: None,
        }
    }

    /// The clock's reading now.
    pub fn now(&mut self) -> Duration {
        let now = Instant::now();
        self.refresh(now);
        self.reading(now)
    }

    /// The clock's reading at true instant `at` (not before the last rate change), at the
    /// current rate.
    pub fn reading(&self, at: Instant) -> Duration {
        let elapsed = at.saturating_duration_since(self.anchor);
        self.reading_at_anchor + elapsed.mul_f64(self.rate)
    }

    /// The true instant at which the clock will read `reading`, if the rate holds.
    pub fn instant_of(&self, reading: Duration) -> Instant {
        let ahead = reading.saturating_sub(self.reading_at_anchor);
        self.anchor + ahead.div_f64(self.rate)
    }

    /// Reads the control file again if it is time to; a new rate takes over at `now`, from
    /// the clock's reading then, so the clock never jumps.
    fn refresh(&mut self, now: Instant) {
        let Some(control) = &self.control else {
            return;
        };
        if self
            .read_at
            .is_some_and(|read| now.saturating_duration_since(read) < REREAD_EVERY)
        {
            return;
        }
        self.read_at = Some(now);
        let rate = std::fs::read_to_string(control)
            .ok()
            .and_then(|line| rate_of(&line))
            .unwrap_or(1.0);
        self.set_rate(rate, now);
    }

    /// Runs at `rate` from true instant `now` on.
    pub fn set_rate(&mut self, rate: f64, now: Instant) {
        if rate != self.rate {
            self.reading_at_anchor = self.reading(now);
            self.anchor = now;
            self.rate = rate;
        }
    }
}

/// The rate `R` of a libfaketime line `+O xR`; `None` for a line without one, or one out of
/// [`RATES`].
fn rate_of(line: &str) -> Option<f64> {
    let (_, rate) = line.trim().split_once(" x")?;
    let rate: f64 = rate.trim().parse().ok()?;
    RATES.contains(&rate).then_some(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_read_from_a_libfaketime_line() {
        assert_eq!(rate_of("+0.250000000 x1.100000000\n"), Some(1.1));
        assert_eq!(rate_of("-1.5 x0.9"), Some(0.9));
        assert_eq!(rate_of("+0.25"), None);
        assert_eq!(rate_of("+0 x100"), None);
        assert_eq!(rate_of("@2020-01-01 00:00:00"), None);
    }

    #[test]
    fn a_clock_runs_at_its_rate_and_never_jumps_when_the_rate_changes() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut clock = TickClock::new(None, start);
        assert_eq!(clock.reading(at(100)), Duration::from_millis(100));
        clock.set_rate(2.0, at(100));
        assert_eq!(
            clock.reading(at(100)),
            Duration::from_millis(100),
            "no jump"
        );
        assert_eq!(clock.reading(at(150)), Duration::from_millis(200));
        assert_eq!(clock.instant_of(Duration::from_millis(300)), at(200));
        clock.set_rate(0.5, at(200));
        assert_eq!(
            clock.reading(at(200)),
            Duration::from_millis(300),
            "no jump"
        );
        assert_eq!(clock.reading(at(400)), Duration::from_millis(400));
    }

    #[test]
    fn the_clock_follows_the_control_file_and_true_time_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let control = dir.path().join("clock");
        std::fs::write(&control, "+0 x3.0").unwrap();
        let start = Instant::now();
        let mut clock = TickClock::new(Some(control.clone()), start);
        clock.refresh(start);
        assert_eq!(clock.rate, 3.0);
        // Read again only after REREAD_EVERY.
        std::fs::write(&control, "+0 x1.0").unwrap();
        clock.refresh(start + Duration::from_millis(1));
        assert_eq!(clock.rate, 3.0);
        clock.refresh(start + REREAD_EVERY);
        assert_eq!(clock.rate, 1.0);
        std::fs::remove_file(&control).unwrap();
        clock.refresh(start + 3 * REREAD_EVERY);
        assert_eq!(clock.rate, 1.0, "a missing file is true time");
        let mut plain = TickClock::new(None, start);
        plain.refresh(start);
        assert_eq!(
            plain.reading(start + Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }
}
