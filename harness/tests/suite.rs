//! End-to-end: `faultline suite` runs real clusters one test after another, exits non-zero
//! when a verdict is not the expected one, and writes JUnit XML that says which test failed
//! and where its run is stored.
//!
//! Suites that start clusters are serialized, as in chaos.rs: every run uses the same node
//! addresses.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use quick_junit::{NonSuccessKind, Report, TestCaseStatus};

static ONE_SUITE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn faultline() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faultline"))
}

/// Runs `faultline suite` on `toml` (written to `<dir>/<stem>.toml`) with the store in `dir`.
fn suite(dir: &Path, stem: &str, toml: &str, extra: &[&str]) -> Output {
    let file = dir.join(format!("{stem}.toml"));
    std::fs::write(&file, toml).unwrap();
    Command::new(faultline())
        .arg("suite")
        .arg(&file)
        .arg("--store")
        .arg(dir.join("store"))
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn junit(path: &Path) -> Report {
    let xml = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no JUnit report at {}: {e}", path.display()));
    Report::deserialize_from_str(&xml).unwrap()
}

/// Processes whose command line mentions `needle` (the store dir): none may outlive a suite.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(cmdline);
            }
        }
    }
    found
}

#[test]
fn a_verdict_other_than_the_expected_one_fails_the_suite_and_its_testcase() {
    let _one = ONE_SUITE_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let node = faultline().with_file_name("faultline-node");
    assert!(
        node.is_file(),
        "{} is missing: build it with `cargo build --release -p faultline-node` (cargo test \
         --workspace does)",
        node.display()
    );
    let dir = tempfile::tempdir().unwrap();
    // Without faults a correct cluster is valid, so expecting `invalid` must fail.
    let output = suite(
        dir.path(),
        "tiny",
        r#"
        [defaults]
        time-limit = "60s"
        nemesis = "none"
        concurrency = 4
        [[test]]
        name = "correct"
        [[test]]
        name = "correct-but-expected-invalid"
        expect = "invalid"
        "#,
        &["--time-limit", "5s"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("[1/2] correct: PASS (expected valid, got valid;"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[2/2] correct-but-expected-invalid: FAIL (expected invalid, got valid;"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 passed, 1 failed, 0 errors, 0 not run"),
        "{stdout}"
    );

    let store = dir.path().join("store");
    let report = junit(&store.join("junit.xml"));
    assert_eq!((report.tests, report.failures, report.errors), (2, 1, 0));
    let cases = &report.test_suites[0].test_cases;
    assert!(
        cases
            .iter()
            .all(|c| c.classname.as_ref().unwrap().as_str() == "tiny")
    );
    assert!(matches!(cases[0].status, TestCaseStatus::Success { .. }));
    let TestCaseStatus::NonSuccess {
        kind: NonSuccessKind::Failure,
        message,
        description,
        ..
    } = &cases[1].status
    else {
        panic!("the second test should fail: {:?}", cases[1].status)
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

    // Each testcase points at its run, which holds the whole story.
    for case in cases {
        let out = case.system_out.as_ref().unwrap().as_str();
        let run_dir = out
            .lines()
            .find_map(|line| line.strip_prefix("run dir: "))
            .unwrap_or_else(|| panic!("no run dir in {out}"));
        let run_dir = Path::new(run_dir);
        assert!(run_dir.starts_with(store.join(case.name.as_str())), "{out}");
        assert!(run_dir.join("results.json").is_file(), "{out}");
        assert!(out.contains("replay: faultline test"), "{out}");
        let test_json = std::fs::read_to_string(run_dir.join("test.json")).unwrap();
        assert!(test_json.contains("\"time_limit\": \"5s\""), "{test_json}");
    }
    assert_eq!(
        processes_mentioning(&store.to_string_lossy()),
        Vec::<String>::new()
    );
}

#[test]
fn a_harness_error_stops_the_suite_with_exit_code_3() {
    let _one = ONE_SUITE_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let junit_path = dir.path().join("reports/ci.xml");
    let output = suite(
        dir.path(),
        "broken",
        r#"
        [defaults]
        node-binary = "/bin/false"
        nemesis = "none"
        time-limit = "5s"
        [[matrix]]
        workload = ["register", "append"]
        "#,
        &["--junit", junit_path.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("[1/2] register-none-n3: ERROR (no leader"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with("NOT RUN") && line.contains("append-none-n3")),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("stopped when `register-none-n3` failed"),
        "{stderr}"
    );

    let report = junit(&junit_path);
    assert_eq!((report.tests, report.failures, report.errors), (2, 0, 1));
    let cases = &report.test_suites[0].test_cases;
    assert!(matches!(
        cases[0].status,
        TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Error,
            ..
        }
    ));
    assert!(matches!(cases[1].status, TestCaseStatus::Skipped { .. }));
}

#[test]
fn a_mistake_in_the_file_is_named_before_any_test_runs() {
    let dir = tempfile::tempdir().unwrap();
    let output = suite(
        dir.path(),
        "typo",
        "[[matrix]]\nnemesis = [\"kill\"]\n\n[[matrix]]\nnodez = 3\n",
        &[],
    );
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("typo.toml: [[matrix]] #2: key `nodez` is unknown"),
        "{stderr}"
    );
    assert!(!dir.path().join("store").exists(), "nothing ran");
}
