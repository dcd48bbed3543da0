//! The verdict of a check, and the exit code that stands for it.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Whether a history passed a check. In JSON, as Jepsen writes `:valid?`: `true`, `false` or
/// `"unknown"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// It passed.
    Valid,
    /// It failed: there is an anomaly.
    Invalid,
    /// It could not be decided (the time budget ran out, or there was nothing to judge by).
    Unknown,
}

/// The exit code for a history that could not be checked at all (bad input).
pub const ERROR_EXIT_CODE: u8 = 3;

impl Verdict {
    /// 0 valid, 1 invalid, 2 unknown (and [`ERROR_EXIT_CODE`] for an error).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Unknown => 2,
        }
    }

    /// The verdict of two parts together: any invalid part makes the whole invalid, else any
    /// unknown part makes it unknown.
    pub fn and(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::Invalid, _) | (_, Verdict::Invalid) => Verdict::Invalid,
            (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
            _ => Verdict::Valid,
        }
    }

    /// `valid`, `invalid` or `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Verdict::Valid => serializer.serialize_bool(true),
            Verdict::Invalid => serializer.serialize_bool(false),
            Verdict::Unknown => serializer.serialize_str("unknown"),
        }
    }
}

impl<'de> Deserialize<'de> for Verdict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct VerdictVisitor;
        impl Visitor<'_> for VerdictVisitor {
            type Value = Verdict;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false or \"unknown\"")
            }
            fn visit_bool<E: de::Error>(self, valid: bool) -> Result<Verdict, E> {
                Ok(if valid {
                    Verdict::Valid
                } else {
                    Verdict::Invalid
                })
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Verdict, E> {
                match text {
                    "unknown" => Ok(Verdict::Unknown),
                    _ => Err(E::invalid_value(de::Unexpected::Str(text), &self)),
                }
            }
        }
        deserializer.deserialize_any(VerdictVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_outweighs_unknown_which_outweighs_valid() {
        use Verdict::*;
        assert_eq!(Valid.and(Valid), Valid);
        assert_eq!(Valid.and(Unknown), Unknown);
        assert_eq!(Unknown.and(Invalid), Invalid);
        assert_eq!(Invalid.and(Valid), Invalid);
        assert_eq!([Valid, Invalid, Unknown].map(Verdict::exit_code), [0, 1, 2]);
    }

    #[test]
    fn verdicts_are_written_as_jepsen_does() {
        for (verdict, json) in [
            (Verdict::Valid, "true"),
            (Verdict::Invalid, "false"),
            (Verdict::Unknown, "\"unknown\""),
        ] {
            assert_eq!(serde_json::to_string(&verdict).unwrap(), json);
            assert_eq!(serde_json::from_str::<Verdict>(json).unwrap(), verdict);
        }
        assert!(serde_json::from_str::<Verdict>("\"maybe\"").is_err());
    }
}
