//! The clock fault: one node's wall clock bumped, skewed or strobed, through libfaketime.
//!
//! A node started under libfaketime (`LD_PRELOAD`) reads CLOCK_REALTIME (and
//! `gettimeofday`, `time`) through it; libfaketime reads a control file on every call, which
//! the harness rewrites when the nemesis changes the node's clock. CLOCK_MONOTONIC stays the
//! kernel's: libfaketime 0.9.10 cannot fake it without breaking every absolute wait the
//! kernel times on it (see `control.rs`), so the fault reaches what a node derives from wall
//! time (wall-clock leases, TTLs, timestamps), not timers on the monotonic clock. The bundled
//! node's Raft clock is CLOCK_MONOTONIC (its ticks, elections, leases), so its Raft timing
//! does not move; what the fault shows there is that nothing of its safety depends on wall
//! time. What each fault changes:
//!
//! - **bump**: the wall clock jumps ahead or back by 100 to 500 ms at once.
//! - **skew**: the wall clock runs 2 to 25 % fast or slow, without a jump when the skew
//!   starts, its offset growing by that share of the time that passes; libfaketime also
//!   scales the node's relative sleeps (nanosleep, poll, epoll_wait) by the inverse of the
//!   rate, so a runtime that times relative sleeps against the monotonic clock wakes sooner
//!   or later than asked, and sleeps again.
//! - **strobe**: the wall clock flips between its offset and one 100 to 400 ms away, every
//!   20 to 60 ms, for the fault's interval: a clock that steps back and forth, as one being
//!   fought over by two time sources.
//!
//! When the fault ends (and at the end of the run) the clock is set back to true time by a
//! recorded jump (`reset-clock`). Every change is a nemesis event naming the node and its
//! offset and rate right after it, with the offset the node's own clock then read when it
//! answers (`observed_ms`).
//!
//! - `setting.rs`: the model of a faulted clock ([`ClockSetting`]), pure;
//! - `control.rs`: the control file, libfaketime's reading of it, and the environment of a
//!   node started under it;
//! - `available.rs`: whether libfaketime works here, and whether a program can run under it.

mod available;
mod control;
mod setting;

pub use available::{
    FaketimeUnavailable, LIBRARY_PATHS as LIBFAKETIME_PATHS, faketime_available, not_preloadable,
};
pub use control::{
    ClockControl, PROCESS_LEFTOVERS, control_line, libfaketime_offset, remove_process_leftovers,
};
pub use setting::ClockSetting;
