//! What to run: the workload kind and every knob of the clients, with their defaults.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::Error;

/// The lowest `--rate` accepted, in operations per second.
pub const MIN_RATE: f64 = 0.001;

/// Which operations the clients perform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// Reads, writes and compare-and-sets on independent register keys `r<N>`, checked for
    /// linearizability (cas-register model).
    Register,
    /// Appends of unique integers and reads on list keys `l<N>`, checked for linearizability
    /// (list-append model) and, with a final read of every key, for lost writes.
    Append,
    /// Both, on their own keys; each operation picks one of the two at random.
    #[default]
    Mixed,
}

impl WorkloadKind {
    /// Every kind.
    pub const ALL: [WorkloadKind; 3] = [
        WorkloadKind::Register,
        WorkloadKind::Append,
        WorkloadKind::Mixed,
    ];

    /// The name on the command line: `register`, `append` or `mixed`.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::Append => "append",
            WorkloadKind::Mixed => "mixed",
        }
    }

    /// Whether the workload uses register keys.
    pub fn has_registers(self) -> bool {
        self != WorkloadKind::Append
    }

    /// Whether the workload uses list keys (which need final reads).
    pub fn has_lists(self) -> bool {
        self != WorkloadKind::Register
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WorkloadKind {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        WorkloadKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| Error::UnknownWorkload(name.to_string()))
    }
}

/// Every knob of the clients. [`WorkloadOptions::default`] gives the values listed on each
/// field.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadOptions {
    /// Which operations to perform. Default: mixed.
    pub kind: WorkloadKind,
    /// How many clients run at once, each one operation at a time (`--concurrency`).
    /// Default: 10.
    pub concurrency: usize,
    /// How many keys of each model are in use at a time (`--keys`); in `mixed`, that many
    /// registers and that many lists. Each operation picks one at random. Default: 5.
    pub keys: usize,
    /// After this many operations a key is retired and a fresh key takes its place, so each
    /// key's history stays small enough to check quickly. Default: 100.
    pub ops_per_key: u64,
    /// Operations per second over all clients together (`--rate`, at least [`MIN_RATE`]);
    /// `None` for as fast as the cluster answers. Default: `None`.
    pub rate: Option<f64>,
    /// How long one operation may take, redirects included, before it is recorded as `info`
    /// (`--client-timeout`). Default: 1 s.
    pub client_timeout: Duration,
    /// How long a client waits after an operation that did not succeed before its next one,
    /// so that a cluster without a leader is not flooded. Default: 50 ms.
    pub error_backoff: Duration,
    /// The seed of every client's choices (`--seed`). Default: 0.
    pub seed: u64,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        WorkloadOptions {
            kind: WorkloadKind::default(),
            concurrency: 10,
            keys: 5,
            ops_per_key: 100,
            rate: None,
            client_timeout: Duration::from_secs(1),
            error_backoff: Duration::from_millis(50),
            seed: 0,
        }
    }
}

impl WorkloadOptions {
    /// Checks that every knob is in range.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |option, reason: &str| {
            Err(Error::InvalidOption {
                option,
                reason: reason.to_string(),
            })
        };
        if self.concurrency == 0 {
            return invalid("--concurrency", "it is 0; expected at least 1 client");
        }
        if self.keys == 0 {
            return invalid("--keys", "it is 0; expected at least 1 key");
        }
        if self.ops_per_key == 0 {
            return invalid("ops_per_key", "it is 0; expected at least 1 operation");
        }
        if let Some(rate) = self
            .rate
            .filter(|rate| !(rate.is_finite() && *rate >= MIN_RATE))
        {
            return invalid(
                "--rate",
                &format!("it is {rate}; expected at least {MIN_RATE} operations per second"),
            );
        }
        if self.client_timeout.is_zero() {
            return invalid("--client-timeout", "it is 0; expected a positive duration");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_their_names_and_reject_others_clearly() {
        for kind in WorkloadKind::ALL {
            assert_eq!(kind.name().parse::<WorkloadKind>().unwrap(), kind);
            assert_eq!(kind.to_string(), kind.name());
        }
        let error = "set".parse::<WorkloadKind>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown workload \"set\" (expected register, append or mixed)"
        );
    }

    #[test]
    fn kinds_say_which_keys_they_use() {
        assert!(WorkloadKind::Register.has_registers() && !WorkloadKind::Register.has_lists());
        assert!(!WorkloadKind::Append.has_registers() && WorkloadKind::Append.has_lists());
        assert!(WorkloadKind::Mixed.has_registers() && WorkloadKind::Mixed.has_lists());
    }

    #[test]
    fn defaults_are_valid_and_bad_knobs_are_named() {
        assert_eq!(WorkloadOptions::default().validate().unwrap(), ());
        let check = |options: WorkloadOptions, expected: &str| {
            let error = options.validate().unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        };
        let defaults = WorkloadOptions::default;
        check(
            WorkloadOptions {
                concurrency: 0,
                ..defaults()
            },
            "--concurrency",
        );
        check(
            WorkloadOptions {
                keys: 0,
                ..defaults()
            },
            "--keys",
        );
        check(
            WorkloadOptions {
                ops_per_key: 0,
                ..defaults()
            },
            "ops_per_key",
        );
        check(
            WorkloadOptions {
                rate: Some(0.0),
                ..defaults()
            },
            "--rate: it is 0; expected at least 0.001",
        );
        check(
            WorkloadOptions {
                rate: Some(f64::NAN),
                ..defaults()
            },
            "--rate",
        );
        check(
            WorkloadOptions {
                client_timeout: Duration::ZERO,
                ..defaults()
            },
            "--client-timeout",
        );
    }
}
