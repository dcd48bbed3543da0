//! A small suite and made-up outcomes, for the tests of what a suite reports.

use std::path::PathBuf;
use std::time::Duration;

use faultline_checker::Verdict;
use faultline_history::Summary;

use super::file::{Overrides, Suite, SuiteTest};
use super::record::{Outcome, TestRecord};
use crate::run::RunOutcome;

/// Three tests: `correct` (expects valid), `stale` (expects invalid), `third`.
pub fn suite() -> Suite {
    let text = r#"
        [defaults]
        time-limit = "5s"
        [[test]]
        name = "correct"
        nemesis = "none"
        [[test]]
        name = "stale"
        bug = "stale-read"
        nemesis = "partition"
        expect = "invalid"
        [[test]]
        name = "third"
    "#;
    let overrides = Overrides {
        store: PathBuf::from("store"),
        time_limit: None,
    };
    Suite::parse("suites/demo.toml", "demo", text, &overrides).unwrap()
}

/// A run of `test` that ended with `verdict` after 1234 operations.
pub fn ran(test: &SuiteTest, verdict: Verdict) -> Outcome {
    let mut summary = Summary::default();
    summary.total.ok = 1200;
    summary.total.info = 34;
    Outcome::Ran(Box::new(RunOutcome {
        verdict,
        options: test.args.resolve().unwrap(),
        run_dir: PathBuf::from("store")
            .join(&test.name)
            .join("20260101T000000"),
        summary,
        summary_text: format!("{}: ...\nverdict: {verdict}\n", test.name),
        recovery: crate::results::Recovery::default(),
    }))
}

/// The records of [`suite`]'s tests: `correct` valid (as expected), `stale` valid (not as
/// expected), and `third` as given.
pub fn records(suite: &Suite, third: Outcome, third_elapsed: Duration) -> [TestRecord<'_>; 3] {
    let [correct, stale, third_test] = &suite.tests[..] else {
        panic!("three tests")
    };
    [
        TestRecord {
            test: correct,
            outcome: ran(correct, Verdict::Valid),
            elapsed: Duration::from_millis(9500),
        },
        TestRecord {
            test: stale,
            outcome: ran(stale, Verdict::Valid),
            elapsed: Duration::from_secs(10),
        },
        TestRecord {
            test: third_test,
            outcome: third,
            elapsed: third_elapsed,
        },
    ]
}
