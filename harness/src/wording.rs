//! Small pieces of wording that the run's summary and `faultline check` share, so that both
//! say a verdict, a count and the keys' tally the same way.

use faultline_checker::{CheckResult, Verdict};

/// A verdict as the summary prints it: `valid`, or in capitals when it is not.
pub(crate) fn shout(verdict: Verdict) -> String {
    match verdict {
        Verdict::Valid => "valid".into(),
        other => other.name().to_uppercase(),
    }
}

/// `1 key`, `2 keys`.
pub(crate) fn plural(count: usize, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    }
}

/// `keys: 12 valid, 1 invalid, 0 unknown`.
pub(crate) fn key_counts(result: &CheckResult) -> String {
    let count = |verdict| {
        result
            .keys
            .iter()
            .filter(|key| key.valid == verdict)
            .count()
    };
    format!(
        "keys: {} valid, {} invalid, {} unknown",
        count(Verdict::Valid),
        count(Verdict::Invalid),
        count(Verdict::Unknown),
    )
}
