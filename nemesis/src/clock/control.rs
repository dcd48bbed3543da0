//! The control file of a node started under libfaketime: one line that libfaketime reads
//! on every clock call (`FAKETIME_NO_CACHE=1`), rewritten by the harness whenever the
//! node's [`ClockSetting`] changes, and the environment that starts a node under it.
//!
//! What libfaketime 0.9.10 does with a line `+O xR` (its `parse_ft_string` and
//! `fake_clock_gettime`; checked on this machine): a call at true time `t` reads
//! `S + O + (t - S) * R`, where `S` is when libfaketime started in the process (its
//! constructor, as the process is loaded).
//!
//! Only CLOCK_REALTIME (and `gettimeofday`, `time`) is faked: `FAKETIME_DONT_FAKE_MONOTONIC`.
//! (The bundled node reads the rate from the same file and runs its Raft clock, which is
//! CLOCK_MONOTONIC, at it itself: `node/src/tick_clock.rs`.)
//! libfaketime fakes CLOCK_MONOTONIC by counting it from the *real time* of `S`, so a faked
//! monotonic clock reads about 56 years ahead of the kernel's; every absolute wait the kernel
//! times on CLOCK_MONOTONIC then never ends (Rust's `thread::park_timeout` and so the bundled
//! node's Raft loop, which waits on a channel with a deadline: measured, a single node under
//! it never elected itself, and one with the monotonic clock left alone did at once).
//! So the clock is ahead by `O + (t - S) * (R - 1)`: a new rate rescales everything since
//! `S`, and written as it is, it would jump the clock by `(t - S) * (R - 1)`. The line
//! therefore carries the offset the setting's line had at `S` ([`control_line`]), which
//! makes libfaketime's offset equal the setting's at every `t`: no jump when a rate starts
//! or ends. What is left is the error in `S`, which the harness takes as the moment it
//! spawned the process (libfaketime starts a few hundred microseconds later): a rate change
//! of `d` moves the clock by that error times `d`, microseconds.
//!
//! libfaketime also scales what the process sleeps (nanosleep, poll, epoll_wait, ...) by
//! `1 / R`: a relative sleep of a fast clock ends early in true time, a slow one's late.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use tokio::time::Instant;

use super::setting::ClockSetting;

/// The line for a process whose libfaketime started at `process_start`, under `setting`.
pub fn control_line(setting: &ClockSetting, process_start: Instant) -> String {
    let offset = setting.offset_at(process_start) as f64 / 1e9;
    format!("{offset:+.9} x{:.9}", setting.rate)
}

/// How far ahead of true time libfaketime's clock reads at `t` under `line`, in
/// nanoseconds, for a process whose libfaketime started at `process_start`: libfaketime's
/// own reading of a `+O xR` line (`atof` of the offset, `atof` after the `x`). `None` for a
/// line it would read otherwise (an absolute date, a unit suffix, no rate).
pub fn libfaketime_offset(line: &str, process_start: Instant, t: Instant) -> Option<i64> {
    let (offset, rate) = line.split_once(" x")?;
    if !offset.starts_with(['+', '-']) || line.contains(['m', 'h', 'd', 'y', 'i', '@']) {
        return None;
    }
    let offset: f64 = offset.parse().ok()?;
    let rate: f64 = rate.parse().ok()?;
    let elapsed = super::setting::signed_nanos(t, process_start) as f64;
    Some((offset * 1e9 + elapsed * (rate - 1.0)).round() as i64)
}

/// One node's control file, and how to start a process under libfaketime with it.
#[derive(Debug, Clone)]
pub struct ClockControl {
    library: PathBuf,
    file: PathBuf,
}

impl ClockControl {
    /// A control file at `file` (not written yet), read by `library` (libfaketime.so.1).
    pub fn new(library: &Path, file: &Path) -> ClockControl {
        ClockControl {
            library: library.to_path_buf(),
            file: file.to_path_buf(),
        }
    }

    /// The control file.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The environment of a process started under libfaketime with this control file. Its
    /// wall clock is faked, and only it: CLOCK_MONOTONIC stays the kernel's (see the module
    /// documentation), and file timestamps stay true (`NO_FAKE_STAT`).
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("LD_PRELOAD", self.library.clone().into_os_string()),
            (
                "FAKETIME_TIMESTAMP_FILE",
                self.file.clone().into_os_string(),
            ),
            ("FAKETIME_NO_CACHE", "1".into()),
            ("NO_FAKE_STAT", "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
        ]
    }

    /// Writes the line for `setting` and a process started at `process_start`, atomically
    /// (a new file renamed over the old one): libfaketime reads either line whole, never a
    /// half-written one.
    pub fn write(&self, setting: &ClockSetting, process_start: Instant) -> std::io::Result<()> {
        let line = control_line(setting, process_start);
        let dir = self.file.parent().unwrap_or(Path::new("."));
        let mut staged = tempfile::NamedTempFile::new_in(dir)?;
        writeln!(staged, "{line}")?;
        staged.persist(&self.file).map_err(|error| error.error)?;
        Ok(())
    }

    /// Removes the control file, if it is there.
    pub fn remove(&self) -> std::io::Result<()> {
        match std::fs::remove_file(&self.file) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

/// Removes what libfaketime left in `/dev/shm` for the process `pid`, once it is reaped:
/// libfaketime makes a semaphore and a shared memory object per process and removes them
/// when the process exits, but a SIGKILL leaves them behind (and a later process with the
/// same pid could then fail to start under libfaketime).
pub fn remove_process_leftovers(pid: u32) {
    for prefix in PROCESS_LEFTOVERS {
        let _ = std::fs::remove_file(format!("{prefix}{pid}"));
    }
}

/// What libfaketime leaves for a process, each named by this and the process's pid.
pub const PROCESS_LEFTOVERS: [&str; 2] = ["/dev/shm/faketime_shm_", "/dev/shm/sem.faketime_sem_"];

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn lines_are_an_offset_in_seconds_and_a_rate() {
        let now = Instant::now();
        let bumped = ClockSetting::true_time(now).jumped(now, -250_000_000);
        assert_eq!(control_line(&bumped, now), "-0.250000000 x1.000000000");
        let later = now + Duration::from_secs(10);
        let skewed = ClockSetting::true_time(now).with_rate(later, 1.1);
        // Started 10 s before the skew: at its start the line through it was 1 s behind.
        assert_eq!(control_line(&skewed, now), "-1.000000000 x1.100000000");
        assert_eq!(
            control_line(&ClockSetting::true_time(now), now),
            "+0.000000000 x1.000000000"
        );
    }

    #[test]
    fn a_line_libfaketime_would_read_otherwise_is_not_read() {
        let now = Instant::now();
        for line in ["@2020-01-01 00:00:00", "+1d x2", "+1", "x2", "+0 i2"] {
            assert_eq!(libfaketime_offset(line, now, now), None, "{line}");
        }
    }

    proptest! {
        /// Whenever the process started, libfaketime's reading of the line is the offset the
        /// setting says, at every time after its start.
        #[test]
        fn libfaketime_reads_the_offset_the_setting_says(
            offset in -5_000_000_000i64..5_000_000_000,
            rate in 0.5f64..2.0,
            since_ms in 0u64..60_000,
            start_ms in 0u64..60_000,
            after_ms in 0u64..60_000,
        ) {
            let t0 = Instant::now();
            let setting = ClockSetting { offset_ns: offset, rate, since: t0 + Duration::from_millis(since_ms) };
            let start = t0 + Duration::from_millis(start_ms);
            let line = control_line(&setting, start);
            let t = start + Duration::from_millis(after_ms);
            let read = libfaketime_offset(&line, start, t).expect("a +O xR line");
            let error = (read - setting.offset_at(t)).abs();
            // Nine decimals of a second and of the rate: within a microsecond.
            prop_assert!(error <= 1_000, "{} vs {}: {}", read, setting.offset_at(t), line);
        }
    }

    #[test]
    fn the_file_is_replaced_whole_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let control = ClockControl::new(
            Path::new("/lib/libfaketime.so.1"),
            &dir.path().join("n1.faketime"),
        );
        let now = Instant::now();
        control
            .write(&ClockSetting::true_time(now).jumped(now, 400_000_000), now)
            .unwrap();
        let written = std::fs::read_to_string(control.path()).unwrap();
        assert_eq!(written, "+0.400000000 x1.000000000\n");
        control.write(&ClockSetting::true_time(now), now).unwrap();
        let entries = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(entries, 1, "no staged file left beside it");
        control.remove().unwrap();
        control.remove().unwrap();
        assert!(!control.path().exists());
        let env: Vec<&str> = control.env().iter().map(|(name, _)| *name).collect();
        assert_eq!(
            env,
            [
                "LD_PRELOAD",
                "FAKETIME_TIMESTAMP_FILE",
                "FAKETIME_NO_CACHE",
                "NO_FAKE_STAT",
                "FAKETIME_DONT_FAKE_MONOTONIC"
            ]
        );
    }
}
