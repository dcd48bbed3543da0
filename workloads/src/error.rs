//! What can go wrong in this crate, said so that a person knows what to change.

use std::io;
use std::path::PathBuf;

/// An error of the workloads crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An unknown `--workload` name.
    #[error("unknown workload {0:?} (expected register, append or mixed)")]
    UnknownWorkload(String),

    /// A [`crate::WorkloadOptions`] field out of range.
    #[error("invalid workload option {option}: {reason}")]
    InvalidOption {
        /// The option, as on the command line (`--concurrency`, ...).
        option: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },

    /// The clients were given no node to talk to.
    #[error("no nodes to run clients against (expected at least one name and client URL)")]
    NoNodes,

    /// A node's client URL cannot be used.
    #[error(
        "node {name}: bad client URL {url:?}: {reason} (expected one like http://127.0.0.11:8001)"
    )]
    BadNodeUrl {
        /// The node's name.
        name: String,
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),

    /// A [`crate::ClientFactory`] could not open a client (a program that would not start, a
    /// connection refused, ...).
    #[error("cannot open a client: {0}")]
    OpenClient(String),

    /// A client task ended abnormally (a bug in this crate).
    #[error("a client task failed: {0}")]
    ClientTask(String),

    /// The history file could not be created or written.
    #[error("cannot write the history to {}: {source}", path.display())]
    HistoryFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },

    /// [`crate::Recorder::finish`] was called a second time.
    #[error("the recorder was already finished")]
    RecorderFinished,
}
