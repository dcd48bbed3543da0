//! The clock fault: one node's clocks bumped, skewed or strobed, through libfaketime.
//!
//! A node started under libfaketime (`LD_PRELOAD`) reads its CLOCK_REALTIME and
//! CLOCK_MONOTONIC through it; libfaketime reads a control file on every call, which the
//! harness rewrites when the nemesis changes the node's clock. What each fault changes:
//!
//! - **bump**: both clocks jump ahead or back by 100 to 500 ms at once. Ahead, every timer
//!   of the node that was due within the jump fires at once (an election timeout that has
//!   not run out runs out; a lease looks older than it is); back, its timers stand still
//!   for as long (a leader's heartbeats pause, a lease looks younger than it is).
//! - **skew**: both clocks run 2 to 25 % fast or slow, without a jump when the skew starts:
//!   the node's timeouts and heartbeats come that much sooner or later in true time (its
//!   sleeps are scaled too), and its offset grows by that share of the time that passes.
//! - **strobe**: the clocks flip between their offset and one 100 to 400 ms away, every 20
//!   to 60 ms, for the fault's interval: a clock that steps back and forth, as one being
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

pub use available::{FaketimeUnavailable, faketime_available, not_preloadable};
pub use control::{ClockControl, control_line, libfaketime_offset, remove_process_leftovers};
pub use setting::ClockSetting;
