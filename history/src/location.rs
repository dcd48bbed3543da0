//! Where an event came from: what every error about a history points at.
//!
//! A module of its own so that the error and the history both build on it without either
//! depending on the other.

use std::fmt;

/// Where an event came from, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// A line of the file the history was read from, from 1.
    Line(usize),
    /// The `index` of an event of a history built in memory.
    Event(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(line) => write!(f, "line {line}"),
            Location::Event(index) => write!(f, "event {index}"),
        }
    }
}
