//! What happened to each test of a suite, and whether that is what the suite file expected.

use std::time::Duration;

use super::file::SuiteTest;
use crate::run::RunOutcome;

/// How one test ended.
pub enum Outcome {
    /// It ran to a verdict.
    Ran(Box<RunOutcome>),
    /// The harness failed (a node would not start, Ctrl-C...); the suite stopped there.
    Error(String),
    /// It never started, for this reason (an earlier test stopped the suite).
    NotRun(String),
}

/// One test and its outcome.
pub struct TestRecord<'a> {
    pub test: &'a SuiteTest,
    pub outcome: Outcome,
    /// Wall time of the whole test: start-up, run, healing, final reads and check.
    pub elapsed: Duration,
}

/// A test's result as a test runner shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The verdict was one the suite expected.
    Pass,
    /// The verdict was not one the suite expected.
    Fail,
    /// No verdict: the harness failed.
    Error,
    /// No verdict: the test did not run.
    NotRun,
}

impl Status {
    /// `PASS`, `FAIL`, `ERROR` or `NOT RUN`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Error => "ERROR",
            Status::NotRun => "NOT RUN",
        }
    }
}

impl TestRecord<'_> {
    /// Pass if the verdict is one the test expects, and so is the recovery if bounded.
    pub fn status(&self) -> Status {
        match &self.outcome {
            Outcome::Ran(ran)
                if self.test.expect.allows(ran.verdict)
                    && self.test.expect.recovery_problem(&ran.recovery).is_none() =>
            {
                Status::Pass
            }
            Outcome::Ran(_) => Status::Fail,
            Outcome::Error(_) => Status::Error,
            Outcome::NotRun(_) => Status::NotRun,
        }
    }

    /// The run's outcome, if it ran to a verdict.
    pub fn ran(&self) -> Option<&RunOutcome> {
        match &self.outcome {
            Outcome::Ran(ran) => Some(ran),
            _ => None,
        }
    }

    /// What the test got: a verdict (and a recovery that broke its bound), `error` or
    /// `not run`.
    pub fn got(&self) -> String {
        match &self.outcome {
            Outcome::Ran(ran) => match self.test.expect.recovery_problem(&ran.recovery) {
                Some(problem) => format!("{}, {problem}", ran.verdict.name()),
                None => ran.verdict.name().to_string(),
            },
            Outcome::Error(_) => "error".to_string(),
            Outcome::NotRun(_) => "not run".to_string(),
        }
    }
}

/// How a whole suite went: the exit code of `faultline suite`.
pub fn exit_code(records: &[TestRecord]) -> u8 {
    let statuses: Vec<Status> = records.iter().map(TestRecord::status).collect();
    if statuses
        .iter()
        .any(|s| matches!(s, Status::Error | Status::NotRun))
    {
        faultline_checker::ERROR_EXIT_CODE
    } else if statuses.contains(&Status::Fail) {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use faultline_checker::Verdict;

    use super::super::fixtures::{ran, suite};
    use super::*;

    #[test]
    fn a_test_passes_when_its_verdict_is_expected_and_the_exit_code_follows() {
        let suite = suite();
        let [correct, stale, third] = &suite.tests[..] else {
            panic!("three tests")
        };
        let record = |test, outcome| TestRecord {
            test,
            outcome,
            elapsed: Duration::from_secs(7),
        };
        let all_pass = [
            record(correct, ran(correct, Verdict::Valid)),
            record(stale, ran(stale, Verdict::Invalid)),
        ];
        assert_eq!(all_pass.each_ref().map(|r| r.status()), [Status::Pass; 2]);
        assert_eq!(exit_code(&all_pass), 0);

        // A correct run expected to be invalid fails the suite, as does a missed bug.
        let missed = [
            record(correct, ran(correct, Verdict::Valid)),
            record(stale, ran(stale, Verdict::Valid)),
        ];
        assert_eq!(missed[1].status(), Status::Fail);
        assert_eq!(missed[1].got(), "valid");
        assert_eq!(exit_code(&missed), 1);
        let undecided = [record(stale, ran(stale, Verdict::Unknown))];
        assert_eq!(exit_code(&undecided), 1);

        // A harness error stops the suite: that is not a verdict at all.
        let stopped = [
            record(correct, ran(correct, Verdict::Invalid)),
            record(stale, Outcome::Error("no leader".into())),
            record(third, Outcome::NotRun("stopped".into())),
        ];
        assert_eq!(
            stopped.each_ref().map(|r| r.status()),
            [Status::Fail, Status::Error, Status::NotRun]
        );
        assert_eq!(
            stopped.each_ref().map(|r| r.got()),
            ["invalid", "error", "not run"]
        );
        assert_eq!(exit_code(&stopped), 3);
    }
}
