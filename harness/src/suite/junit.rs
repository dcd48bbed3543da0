//! `junit.xml`, which CI systems show as test results: one testsuite named after the suite
//! file, one testcase per test. A verdict other than the expected one is a failure (with the
//! run's summary), a harness error is an error, and a test that never ran is skipped.

use std::path::Path;

use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::file::Suite;
use super::record::{Outcome, Status, TestRecord};

/// The JUnit report of a suite.
pub fn report(suite: &Suite, records: &[TestRecord]) -> Report {
    let mut test_suite = TestSuite::new(suite.name.as_str());
    test_suite.set_time(records.iter().map(|r| r.elapsed).sum());
    for record in records {
        test_suite.add_test_case(test_case(&suite.name, record));
    }
    let mut report = Report::new("faultline");
    report.add_test_suite(test_suite);
    report
}

fn test_case(class: &str, record: &TestRecord) -> TestCase {
    let status = match &record.outcome {
        Outcome::Ran(_) if record.status() == Status::Pass => TestCaseStatus::success(),
        Outcome::Ran(ran) => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(format!(
                    "expected {}, got {}",
                    record.test.expect, ran.verdict
                ))
                .set_type("verdict")
                .set_description(ran.summary_text.trim());
            status
        }
        Outcome::Error(error) => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            let first_line = error.lines().next().unwrap_or_default();
            status
                .set_message(first_line)
                .set_type("harness error")
                .set_description(error.as_str());
            status
        }
        Outcome::NotRun(reason) => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(format!("not run: {reason}"));
            status
        }
    };
    let mut case = TestCase::new(record.test.name.as_str(), status);
    case.set_classname(class).set_time(record.elapsed);
    if let Some(ran) = record.ran() {
        case.set_system_out(format!(
            "run dir: {}\nreplay: {}\n",
            ran.run_dir.display(),
            ran.options.replay_command()
        ));
    }
    case
}

/// Writes the report to `path`, creating its directory.
pub fn write(path: &Path, report: &Report) -> Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let xml = report
        .to_string()
        .context("writing the JUnit report as XML")?;
    std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::fixtures::{records, suite};
    use super::*;

    #[test]
    fn each_test_is_a_testcase_with_a_failure_an_error_or_a_skip_as_it_went() {
        let suite = suite();
        let records = records(
            &suite,
            Outcome::Error("no leader: 3 of 3 nodes exited\nlog tail".into()),
            Duration::from_secs(1),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/junit.xml");
        write(&path, &report(&suite, &records)).unwrap();

        let xml = std::fs::read_to_string(&path).unwrap();
        let parsed = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!((parsed.tests, parsed.failures, parsed.errors), (3, 1, 1));
        let [test_suite] = &parsed.test_suites[..] else {
            panic!("one testsuite: {xml}")
        };
        assert_eq!(test_suite.name.as_str(), "demo");
        assert_eq!(test_suite.time, Some(Duration::from_millis(20500)));
        let cases = &test_suite.test_cases;
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["correct", "stale", "third"]);
        assert!(
            cases
                .iter()
                .all(|c| c.classname.as_ref().unwrap().as_str() == "demo")
        );
        assert_eq!(cases[0].time, Some(Duration::from_millis(9500)));

        assert!(matches!(cases[0].status, TestCaseStatus::Success { .. }));
        let out = cases[0].system_out.as_ref().unwrap().as_str();
        assert!(
            out.contains("run dir: store/correct/20260101T000000"),
            "{out}"
        );
        assert!(out.contains("replay: faultline test"), "{out}");

        let TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Failure,
            message,
            description,
            ..
        } = &cases[1].status
        else {
            panic!("stale should fail: {xml}")
        };
        assert_eq!(
            message.as_ref().unwrap().as_str(),
            "expected invalid, got valid"
        );
        assert!(
            description
                .as_ref()
                .unwrap()
                .as_str()
                .contains("verdict: valid")
        );

        let TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Error,
            message,
            ..
        } = &cases[2].status
        else {
            panic!("third should be an error: {xml}")
        };
        assert_eq!(
            message.as_ref().unwrap().as_str(),
            "no leader: 3 of 3 nodes exited"
        );
    }

    #[test]
    fn a_test_that_never_ran_is_skipped_with_the_reason() {
        let suite = suite();
        let records = [TestRecord {
            test: &suite.tests[0],
            outcome: Outcome::NotRun("the suite was interrupted".into()),
            elapsed: Duration::ZERO,
        }];
        let xml = report(&suite, &records).to_string().unwrap();
        let parsed = Report::deserialize_from_str(&xml).unwrap();
        let status = &parsed.test_suites[0].test_cases[0].status;
        let TestCaseStatus::Skipped { message, .. } = status else {
            panic!("skipped expected: {xml}")
        };
        assert_eq!(
            message.as_ref().unwrap().as_str(),
            "not run: the suite was interrupted"
        );
    }
}
