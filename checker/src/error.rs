//! The one error type of the crate: input the checker cannot use, and where it is.

use std::io;
use std::path::PathBuf;

use faultline_history::Location;

/// Why a history could not be read or checked. Every message says where and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The history is malformed or inconsistent at `location`.
    #[error("{location}: {message}")]
    Malformed {
        /// The line (or, for a history built in memory, the event) at fault.
        location: Location,
        /// What was found and what was expected instead.
        message: String,
    },
    /// The initial value does not suit the model.
    #[error("initial value: {0}")]
    InitialValue(String),
    /// The format of a file could not be told from its name or contents.
    #[error("{}: cannot tell the history format (expected a .jsonl, .edn or .log file, JSON objects, EDN maps or jepsen.util log lines); name the format explicitly", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
}

/// A history that cannot be read or paired is malformed to the checker as well, with the same
/// location and message.
impl From<faultline_history::Error> for Error {
    fn from(error: faultline_history::Error) -> Self {
        match error {
            faultline_history::Error::Malformed { location, message } => {
                Error::Malformed { location, message }
            }
        }
    }
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
