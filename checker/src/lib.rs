//! History types and formats, and the checkers.

mod error;
pub mod history;
pub mod import;
pub mod operation;

pub use error::Error;
pub use history::{Event, EventType, History, Location, Process};
pub use import::{Format, read_history};
pub use operation::{Operation, Outcome, operations};
