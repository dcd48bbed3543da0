//! What became of an operation: it happened (`ok`), it certainly did not (`fail`), or it may
//! have (`info`).
//!
//! A `fail` is a claim the checker relies on (the operation is removed from the history), so
//! a client gives it only when the operation certainly took no effect: the request never
//! reached a node, or a node refused it before acting on it. Anything else is `info`, which
//! is always safe: the checker lets an `info` operation take effect at any time after its
//! invocation, or never.
//!
//! | what the client saw | outcome |
//! |---|---|
//! | the system says it happened | `ok`, with the value read (reads) or the argument |
//! | a compare-and-set whose comparison failed | `fail` [`CAS_MISMATCH`] (it observed another value) |
//! | a refusal before the operation could act (no leader, connection refused) | `fail`, a short reason |
//! | a timeout, or a connection lost after the request was sent | `info`, a short reason |
//! | an answer that does not say which (a 500, a garbled body) | `info`, a short reason |
//!
//! How one system's answers map onto this table is up to its client (for the Faultline HTTP
//! contract, see `http/classify.rs`).

use serde_json::Value;

/// `error` of a cas whose comparison failed: it did not happen, and it saw another value.
/// The checker uses that observation, so a client must give exactly this reason for it.
pub const CAS_MISMATCH: &str = faultline_history::CAS_MISMATCH;

/// How an operation ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// It happened; the value to record (a read's result, otherwise the argument).
    Ok(Value),
    /// It certainly did not happen; a short reason.
    Fail(String),
    /// It may or may not have happened; a short reason.
    Info(String),
}

impl Outcome {
    pub(crate) fn fail(reason: &str) -> Outcome {
        Outcome::Fail(reason.to_string())
    }

    pub(crate) fn info(reason: &str) -> Outcome {
        Outcome::Info(reason.to_string())
    }

    /// Whether the operation went wrong: not `ok`, and not a cas that simply saw another
    /// value (which is the node doing its job).
    pub(crate) fn is_error(&self) -> bool {
        match self {
            Outcome::Ok(_) => false,
            Outcome::Fail(_) => self.certainly_did_not_happen(),
            Outcome::Info(_) => true,
        }
    }

    /// A refusal that proves the operation did not take effect and observed nothing (no
    /// leader, connection refused, ...); a failed compare-and-set observed a value, so it is
    /// not one.
    pub(crate) fn certainly_did_not_happen(&self) -> bool {
        matches!(self, Outcome::Fail(reason) if reason != CAS_MISMATCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_trouble_counts_as_an_error() {
        assert!(!Outcome::Ok(Value::Null).is_error());
        assert!(!Outcome::fail(CAS_MISMATCH).is_error());
        assert!(Outcome::fail("no leader").is_error());
        assert!(Outcome::info("timeout").is_error());
    }
}
