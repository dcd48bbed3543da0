//! The error of this crate: a history that cannot be read or paired, and where.

use crate::location::Location;

/// Why a history could not be read or paired. Every message says where and what was expected.
///
/// The checker's own error wraps this one in its `Malformed`, with the same message, so that
/// a bad line reads the same whichever crate found it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    /// The history is malformed or inconsistent at `location`.
    #[error("{location}: {message}")]
    Malformed {
        /// The line (or, for a history built in memory, the event) at fault.
        location: Location,
        /// What was found and what was expected instead.
        message: String,
    },
}

impl Error {
    /// A [`Error::Malformed`] at `location`.
    pub fn malformed(location: Location, message: impl Into<String>) -> Self {
        Error::Malformed {
            location,
            message: message.into(),
        }
    }
}
