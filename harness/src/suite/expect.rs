//! What a suite test is expected to end with: one verdict (`expect = "invalid"`) or any of
//! several (`expect = ["invalid", "unknown"]`, for a bug a short run may not catch), and
//! optionally how fast writes must come back after every fault (`expect-recovery = "1s"`).

use std::fmt;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use faultline_checker::Verdict;

use crate::results::Recovery;

/// The verdicts a test may end with and still pass, and the recovery it must show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    verdicts: Vec<Verdict>,
    /// Every fault's recovery (see [`crate::results::FaultRecovery::recovery`]) must be at most
    /// this, and none may be missing.
    recovery: Option<Duration>,
}

impl Default for Expectation {
    /// A correct system is expected to pass.
    fn default() -> Self {
        Expectation {
            verdicts: vec![Verdict::Valid],
            recovery: None,
        }
    }
}

impl Expectation {
    /// Reads `"valid"`, `"invalid"`, `"unknown"`, or a non-empty list of them.
    pub fn from_toml(value: &toml::Value) -> Result<Expectation> {
        let names: Vec<&toml::Value> = match value {
            toml::Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        let mut verdicts = Vec::new();
        for name in names {
            let verdict = match name.as_str() {
                Some("valid") => Verdict::Valid,
                Some("invalid") => Verdict::Invalid,
                Some("unknown") => Verdict::Unknown,
                _ => bail!("`{name}` is not a verdict: use \"valid\", \"invalid\" or \"unknown\""),
            };
            if !verdicts.contains(&verdict) {
                verdicts.push(verdict);
            }
        }
        if verdicts.is_empty() {
            bail!("an empty list expects no verdict at all: name at least one");
        }
        Ok(Expectation {
            verdicts,
            recovery: None,
        })
    }

    /// Reads an `expect-recovery` bound, like `"1s"` or `"500ms"`.
    pub fn recovery_from_toml(value: &toml::Value) -> Result<Duration> {
        let text = value
            .as_str()
            .ok_or_else(|| anyhow!("a recovery bound is a duration like \"1s\" or \"500ms\""))?;
        humantime::parse_duration(text).map_err(|e| anyhow!("`{text}` is not a duration: {e}"))
    }

    /// This expectation, with every fault's recovery bounded by `bound`.
    pub fn with_recovery(mut self, bound: Option<Duration>) -> Expectation {
        self.recovery = bound;
        self
    }

    /// Whether a run that ended with `verdict` passes (the recovery aside).
    pub fn allows(&self, verdict: Verdict) -> bool {
        self.verdicts.contains(&verdict)
    }

    /// What a run's recovery breaks of this expectation: `None` if nothing, else the
    /// slowest fault, in words.
    pub fn recovery_problem(&self, recovery: &Recovery) -> Option<String> {
        let bound = self.recovery?;
        let slow = recovery.slower_than(bound.as_secs_f64());
        let worst = slow.iter().max_by(|a, b| {
            let took = |f: &&&crate::results::FaultRecovery| f.recovery.unwrap_or(f64::INFINITY);
            took(a).total_cmp(&took(b))
        })?;
        let took = match worst.recovery {
            Some(seconds) => format!("{seconds:.2} s"),
            None => "never".to_string(),
        };
        Some(format!(
            "recovery {took} after {} {}at {:.1} s{}",
            worst.fault,
            if worst.nodes.is_empty() {
                String::new()
            } else {
                format!("{} ", worst.nodes.join(","))
            },
            worst.start,
            match slow.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            }
        ))
    }
}

/// `valid`, or `invalid|unknown` for a list, with the recovery bound if any.
impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.verdicts.iter().map(|v| v.name()).collect();
        f.write_str(&names.join("|"))?;
        if let Some(bound) = self.recovery {
            write!(f, ", recovery <= {}", humantime::format_duration(bound))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Expectation> {
        let table: toml::Table = toml::from_str(&format!("expect = {text}")).unwrap();
        Expectation::from_toml(&table["expect"])
    }

    #[test]
    fn one_verdict_or_a_list_of_them() {
        let invalid = parse("\"invalid\"").unwrap();
        assert!(invalid.allows(Verdict::Invalid));
        assert!(!invalid.allows(Verdict::Valid));
        assert_eq!(invalid.to_string(), "invalid");

        let either = parse("[\"invalid\", \"unknown\", \"invalid\"]").unwrap();
        assert!(either.allows(Verdict::Invalid) && either.allows(Verdict::Unknown));
        assert!(!either.allows(Verdict::Valid));
        assert_eq!(either.to_string(), "invalid|unknown");
    }

    #[test]
    fn a_recovery_bound_fails_a_run_with_a_slower_fault_and_names_it() {
        let bound = Expectation::recovery_from_toml(&toml::Value::from("1s")).unwrap();
        let expect = Expectation::default().with_recovery(Some(bound));
        assert_eq!(expect.to_string(), "valid, recovery <= 1s");
        let fault =
            |fault: &str, start: f64, recovery: Option<f64>| crate::results::FaultRecovery {
                fault: fault.into(),
                nodes: vec!["n2".into()],
                start,
                end: Some(start + 5.0),
                after_start: recovery,
                after_end: None,
                recovery,
                measured: true,
            };
        let mut recovery = Recovery {
            faults: vec![
                fault("kill", 1.0, Some(0.3)),
                fault("pause", 10.0, Some(0.9)),
            ],
            ..Recovery::default()
        };
        assert_eq!(expect.recovery_problem(&recovery), None);
        recovery.faults.push(fault("kill", 20.0, Some(1.43)));
        recovery.faults.push(fault("power-loss", 30.0, None));
        assert_eq!(
            expect.recovery_problem(&recovery).as_deref(),
            Some("recovery never after power-loss n2 at 30.0 s (and 1 more)")
        );
        assert_eq!(Expectation::default().recovery_problem(&recovery), None);
        assert!(Expectation::recovery_from_toml(&toml::Value::from("soon")).is_err());
        assert!(Expectation::recovery_from_toml(&toml::Value::from(1)).is_err());
    }

    #[test]
    fn a_correct_run_is_expected_by_default() {
        let default = Expectation::default();
        assert!(default.allows(Verdict::Valid));
        assert!(!default.allows(Verdict::Invalid) && !default.allows(Verdict::Unknown));
    }

    #[test]
    fn anything_but_verdict_names_is_refused_with_the_choices() {
        for bad in ["\"ok\"", "true", "[]", "[\"valid\", 1]"] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(
                error.contains("\"valid\", \"invalid\" or \"unknown\"") || error.contains("empty"),
                "{bad}: {error}"
            );
        }
    }
}
