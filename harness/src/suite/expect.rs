//! What a suite test is expected to end with: one verdict (`expect = "invalid"`) or any of
//! several (`expect = ["invalid", "unknown"]`, for a bug a short run may not catch).

use std::fmt;

use anyhow::{Result, bail};
use faultline_checker::Verdict;

/// The verdicts a test may end with and still pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    verdicts: Vec<Verdict>,
}

impl Default for Expectation {
    /// A correct system is expected to pass.
    fn default() -> Self {
        Expectation {
            verdicts: vec![Verdict::Valid],
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
        Ok(Expectation { verdicts })
    }

    /// Whether a run that ended with `verdict` passes.
    pub fn allows(&self, verdict: Verdict) -> bool {
        self.verdicts.contains(&verdict)
    }
}

/// `valid`, or `invalid|unknown` for a list.
impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.verdicts.iter().map(|v| v.name()).collect();
        f.write_str(&names.join("|"))
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
