//! `faultline report <run-dir>`: rebuilds report.html, latency.png and rate.png from a run's
//! files (here a small hand-made run, `tests/fixtures/run-invalid`), and refuses a directory
//! that lacks one of them with exit code 3 and the file's name.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-invalid")
}

/// A copy of the fixture run, so the report is written outside the repository.
fn copy_of_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

fn report(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("report")
        .arg(dir)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The JSON embedded in a report page.
fn embedded_data(page: &str) -> Value {
    let open = r#"<script type="application/json" id="report-data">"#;
    let start = page.find(open).expect("no data element") + open.len();
    let end = start
        + page[start..]
            .find("</script>")
            .expect("data element not closed");
    serde_json::from_str(&page[start..end]).expect("the embedded data is not JSON")
}

fn is_png(path: &Path) -> bool {
    std::fs::read(path)
        .is_ok_and(|bytes| bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000)
}

#[test]
fn a_run_directory_gets_a_self_contained_page_and_two_plots() {
    let run = copy_of_fixture();
    let output = report(run.path());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("report.html"), "{stdout}");

    let page = std::fs::read_to_string(run.path().join("report.html")).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("<title>fixture-invalid · invalid · faultline</title>"));
    // Nothing is fetched: no external script, stylesheet, image or font.
    for reference in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!page.contains(reference), "the page references {reference}");
    }

    let data = embedded_data(&page);
    assert_eq!(data["verdict"], "invalid");
    assert_eq!(
        data["run"]["seed"], "18446744073709551557",
        "the seed is exact"
    );
    assert_eq!(
        data["ops"]["process"].as_array().unwrap().len(),
        14,
        "every operation, failures included"
    );
    let examples = data["counterexamples"].as_array().unwrap();
    let keys: Vec<&Value> = examples.iter().map(|example| &example["key"]).collect();
    assert_eq!(keys, ["r1", "l1"], "one counterexample per invalid key");
    assert_eq!(data["lost_writes"]["lost"], 1);
    assert_eq!(
        data["faults"].as_array().unwrap().len(),
        2,
        "a kill and a partition"
    );
    assert_eq!(data["nodes"].as_array().unwrap().len(), 3);
    // A value that looks like markup stays data.
    assert!(
        data["ops"]["value"]
            .as_array()
            .unwrap()
            .contains(&Value::from("</script><b>x"))
    );

    assert!(is_png(&run.path().join("latency.png")));
    assert!(is_png(&run.path().join("rate.png")));
}

/// The changes of leader `faultline test` derives from the fixture's `status.jsonl` and
/// history (a test of `results::leaders` says so); its results.json predates them.
fn fixture_leaders() -> Value {
    let path = fixture().with_file_name("run-invalid-leaders.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_changes_of_leader_are_in_the_page_and_a_run_stored_without_them_has_none() {
    let run = copy_of_fixture();
    let output = report(run.path());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let page = std::fs::read_to_string(run.path().join("report.html")).unwrap();
    assert_eq!(
        embedded_data(&page)["leaders"],
        json!([]),
        "the fixture's results.json predates the leaders"
    );

    let results_path = run.path().join("results.json");
    let mut results: Value =
        serde_json::from_str(&std::fs::read_to_string(&results_path).unwrap()).unwrap();
    results["leaders"] = fixture_leaders();
    std::fs::write(&results_path, results.to_string()).unwrap();
    let output = report(run.path());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let page = std::fs::read_to_string(run.path().join("report.html")).unwrap();
    assert_eq!(
        embedded_data(&page)["leaders"],
        json!([
            {"time": 50_000, "from": null, "to": "n1", "fault": null, "fault_time": null},
            {"time": 350_000, "from": "n1", "to": null, "fault": "kill n1", "fault_time": 300_000},
            {"time": 650_000, "from": null, "to": "n3", "fault": null, "fault_time": null},
        ]),
        "times in µs, the fault named as the summary names it"
    );
}

/// A copy of the fixture run whose `status.jsonl` tells the membership: spares n4 and n5
/// join the three voters, n4 is added as a learner and replaces n1 through a joint change.
fn copy_of_fixture_with_membership() -> tempfile::TempDir {
    let run = copy_of_fixture();
    std::fs::copy(
        fixture().with_file_name("run-invalid-membership.jsonl"),
        run.path().join("status.jsonl"),
    )
    .unwrap();
    run
}

#[test]
fn the_configuration_over_time_is_in_the_page_and_a_run_without_membership_has_none() {
    let run = copy_of_fixture();
    let output = report(run.path());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let data = embedded_data(&std::fs::read_to_string(run.path().join("report.html")).unwrap());
    assert_eq!(data["configurations"], json!([]));
    for node in data["nodes"].as_array().unwrap() {
        assert_eq!(node["membership"], json!([]), "{node}");
    }

    let run = copy_of_fixture_with_membership();
    let output = report(run.path());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let data = embedded_data(&std::fs::read_to_string(run.path().join("report.html")).unwrap());
    let initial = json!(["n1", "n2", "n3"]);
    let last = json!(["n2", "n3", "n4"]);
    assert_eq!(
        data["configurations"],
        json!([
            {"start": 50_000, "end": 1_000_000, "voters": initial, "outgoing": [], "learners": []},
            {"start": 1_000_000, "end": 1_500_000, "voters": initial, "outgoing": [], "learners": ["n4"]},
            {"start": 1_500_000, "end": 1_700_000, "voters": last, "outgoing": initial, "learners": []},
            {"start": 1_700_000, "end": 2_610_000, "voters": last, "outgoing": [], "learners": []},
        ]),
        "the leader's configuration, in µs, until the end of the run"
    );
    let rows = data["nodes"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|row| row["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["n1", "n2", "n3", "n4", "n5"],
        "the spares have rows"
    );
    let standings = |n: usize| -> Vec<(u64, u64, String)> {
        rows[n]["membership"]
            .as_array()
            .unwrap()
            .iter()
            .map(|span| {
                (
                    span["start"].as_u64().unwrap(),
                    span["end"].as_u64().unwrap(),
                    span["standing"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let span = |start: u64, end: u64, standing: &str| (start, end, standing.to_string());
    assert_eq!(
        standings(0),
        [
            span(50_000, 1_500_000, "voter"),
            span(1_500_000, 1_700_000, "leaving"),
            span(1_700_000, 2_610_000, "not-a-member"),
        ]
    );
    assert_eq!(standings(1), [span(50_000, 2_610_000, "voter")]);
    assert_eq!(
        standings(3),
        [
            span(50_000, 1_000_000, "not-a-member"),
            span(1_000_000, 1_500_000, "learner"),
            span(1_500_000, 1_700_000, "joining"),
            span(1_700_000, 2_610_000, "voter"),
        ]
    );
    assert_eq!(standings(4), [span(50_000, 2_610_000, "not-a-member")]);
}

#[test]
fn a_missing_results_file_is_named_and_exits_3() {
    let run = copy_of_fixture();
    std::fs::remove_file(run.path().join("results.json")).unwrap();
    let output = report(run.path());
    assert_eq!(output.status.code(), Some(3));
    let message = stderr(&output);
    assert!(message.contains("results.json"), "{message}");
    assert!(
        message.contains("interrupted"),
        "says why it may be missing: {message}"
    );
    assert!(!run.path().join("report.html").exists());
}

#[test]
fn a_malformed_history_is_named_with_its_line_and_exits_3() {
    let run = copy_of_fixture();
    let history = run.path().join("history.jsonl");
    let mut text = std::fs::read_to_string(&history).unwrap();
    text.push_str("{\"index\": \"not a number\"}\n");
    std::fs::write(&history, text).unwrap();
    let output = report(run.path());
    assert_eq!(output.status.code(), Some(3));
    let message = stderr(&output);
    assert!(
        message.contains("history.jsonl") && message.contains("line 32"),
        "{message}"
    );
}

#[test]
fn a_directory_that_is_not_a_run_exits_3() {
    let output = report(Path::new("/nonexistent/run"));
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output).contains("not a run directory"),
        "{}",
        stderr(&output)
    );
}
