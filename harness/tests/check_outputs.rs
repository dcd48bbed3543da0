//! What `faultline check` writes besides its verdict, for one history: the history as
//! another tool reads it (`--export edn OUT`, Jepsen's EDN for Knossos and Elle) and its
//! report page (`--report OUT`), the page a run gets, for any history it can check: a run's
//! JSON Lines, the same history exported as EDN, Jepsen's logs without times. And the
//! errors: an output that cannot be written, a format it does not know, several histories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The invalid run of `faultline report`'s tests: keys r1 (not linearizable: read #16
/// returned 1 after 2 was written) and l1 (a lost write), a kill and a partition.
fn fixture_history() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-invalid/history.jsonl")
}

fn porcupine(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../checker/testdata/porcupine")
        .join(file)
}

fn check(args: &[&str], histories: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("check")
        .args(args)
        .args(histories)
        .output()
        .expect("faultline runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Checks `history` with `--report` into `dir`; the exit code and the page.
fn report(dir: &Path, history: &Path) -> (Option<i32>, String) {
    let page = dir.join(format!(
        "{}.html",
        history.file_name().unwrap().to_string_lossy()
    ));
    let output = check(&["--report", arg(&page)], &[history]);
    assert!(
        stdout(&output).contains(&format!("report: {}", page.display())),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let html = std::fs::read_to_string(&page)
        .unwrap_or_else(|error| panic!("no page at {}: {error}", page.display()));
    (output.status.code(), html)
}

/// Asserts that `page` needs nothing from elsewhere: no external script, stylesheet, image
/// or font.
fn assert_self_contained(page: &str) {
    assert!(page.starts_with("<!doctype html>"));
    for reference in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "@import",
        "src=\"//",
        "href=\"//",
    ] {
        assert!(!page.contains(reference), "the page references {reference}");
    }
    assert!(page.contains("<style>") && page.contains("function main()"));
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

/// Each counterexample's key, and the operations it rejects with the reason.
fn counterexamples(data: &Value) -> Vec<(Value, Vec<(u64, String)>)> {
    data["counterexamples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|example| {
            let rejected = example["rejected"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["id"].as_u64().unwrap(),
                        r["reason"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            (example["key"].clone(), rejected)
        })
        .collect()
}

#[test]
fn an_invalid_history_gets_a_self_contained_page_naming_its_counterexample() {
    let dir = tempfile::tempdir().unwrap();
    let (code, page) = report(dir.path(), &fixture_history());
    assert_eq!(code, Some(1));
    assert_self_contained(&page);
    assert!(page.contains("<title>history.jsonl · invalid · faultline</title>"));
    let data = embedded_data(&page);
    assert_eq!(data["verdict"], "invalid");
    assert_eq!(data["run"], Value::Null, "no run: its parts are left out");
    assert_eq!(data["file"]["format"], "jsonl");
    assert_eq!(data["file"]["untimed"], false);
    assert_eq!(data["nodes"].as_array().unwrap().len(), 0);
    // The counterexample names the operation that could not be placed, and why.
    let examples = counterexamples(&data);
    assert_eq!(examples[0].0, "r1");
    assert_eq!(
        examples[0].1,
        [(17, "read returned 1 but the value was 2".to_string())]
    );
    assert_eq!(examples[1].0, "l1");
    assert!(page.contains("read returned 1 but the value was 2"));
    let operations: Vec<u64> = data["counterexamples"][0]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["id"].as_u64().unwrap())
        .collect();
    assert!(operations.contains(&17), "{operations:?}");
    assert_eq!(data["lost_writes"]["lost"], 1);
    assert_eq!(data["detection"]["anomaly"], "not linearizable");
    assert_eq!(
        data["faults"].as_array().unwrap().len(),
        2,
        "a kill and a partition"
    );
    assert_eq!(data["ops"]["process"].as_array().unwrap().len(), 14);
}

#[test]
fn the_same_history_as_edn_gets_the_same_page() {
    let dir = tempfile::tempdir().unwrap();
    let edn = dir.path().join("history.edn");
    let output = check(&["--export", "edn", arg(&edn)], &[&fixture_history()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let (_, from_jsonl) = report(dir.path(), &fixture_history());
    let (code, from_edn) = report(dir.path(), &edn);
    assert_eq!(code, Some(1));
    assert_self_contained(&from_edn);
    let (jsonl, edn) = (embedded_data(&from_jsonl), embedded_data(&from_edn));
    assert_eq!(edn["file"]["format"], "edn");
    // Ids and times came through: the same operations, counterexamples and faults.
    for part in [
        "verdict",
        "ops",
        "counterexamples",
        "lost_writes",
        "faults",
        "detection",
    ] {
        assert_eq!(edn[part], jsonl[part], "{part} differs");
    }
}

#[test]
fn a_history_without_times_is_drawn_an_event_a_millisecond() {
    let dir = tempfile::tempdir().unwrap();
    let (code, page) = report(dir.path(), &porcupine("jepsen/etcd_000.log"));
    assert_eq!(code, Some(1));
    assert_self_contained(&page);
    let data = embedded_data(&page);
    assert_eq!(data["file"]["format"], "jepsen-log");
    assert_eq!(data["file"]["untimed"], true);
    let example = &data["counterexamples"][0];
    let rejected = example["rejected"][0]["id"].as_u64().unwrap();
    assert!(
        page.contains("read returned 2 but the value was 0"),
        "the page names the reason"
    );
    // Operation ids are the events' places in the file; times (µs) are a millisecond each.
    let op = example["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|op| op["id"] == rejected)
        .unwrap();
    assert_eq!(op["call"].as_u64().unwrap(), rejected * 1_000);
}

#[test]
fn a_valid_history_gets_a_page_too() {
    let dir = tempfile::tempdir().unwrap();
    let (code, page) = report(dir.path(), &porcupine("jepsen/etcd_002.log"));
    assert_eq!(code, Some(0));
    assert_self_contained(&page);
    assert!(page.contains("<title>etcd_002.log · valid · faultline</title>"));
    let data = embedded_data(&page);
    assert_eq!(data["verdict"], "valid");
    assert_eq!(data["counterexamples"], Value::Array(Vec::new()));
    assert_eq!(data["checks"][0]["model"], "cas-register");
    assert_eq!(data["checks"][0]["operations"], 77);
}

#[test]
fn an_exported_history_is_checked_again_with_the_same_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let edn = dir.path().join("etcd_000.edn");
    let log = porcupine("jepsen/etcd_000.log");
    let output = check(&["--json", "--export", "edn", arg(&edn)], &[&log]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let first: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(first["export"], edn.display().to_string());

    let text = std::fs::read_to_string(&edn).unwrap();
    assert!(
        text.starts_with("[{:index 0, :time 0, :process 0, :type :invoke, :f :read, :value nil}\n"),
        "{text}"
    );
    let output = check(&["--json"], &[&edn]);
    assert_eq!(output.status.code(), Some(1));
    let again: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(again["format"], "edn");
    assert_eq!(again["valid"], first["valid"]);
    assert_eq!(
        again["linearizability"][0]["counterexamples"][0]["rejected"],
        first["linearizability"][0]["counterexamples"][0]["rejected"]
    );

    // Text output says where the file went; jsonl is a format too.
    let jsonl = dir.path().join("etcd_000.jsonl");
    let output = check(&["--export", "jsonl", arg(&jsonl)], &[&edn]);
    assert!(
        stdout(&output).contains(&format!("  exported: {}", jsonl.display())),
        "{}",
        stdout(&output)
    );
    assert_eq!(check(&[], &[&jsonl]).status.code(), Some(1));
}

#[test]
fn what_cannot_be_written_or_asked_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let history = porcupine("jepsen/etcd_002.log");
    let missing = dir.path().join("no-such-dir/out.edn");
    let output = check(&["--export", "edn", arg(&missing)], &[&history]);
    assert_eq!(output.status.code(), Some(3));
    let error = stderr(&output);
    assert!(
        error.contains(&format!("cannot write {}", missing.display()))
            && error.contains("No such file or directory"),
        "{error}"
    );

    let page = dir.path().join("no-such-dir/report.html");
    let output = check(&["--report", arg(&page)], &[&history]);
    assert_eq!(output.status.code(), Some(3));
    let error = stderr(&output);
    assert!(
        error.contains(&page.display().to_string()) && error.contains("No such file or directory"),
        "{error}"
    );

    let output = check(&["--export", "xml", "out.xml"], &[&history]);
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output).contains("unknown export format \"xml\" (expected jsonl or edn)"),
        "{}",
        stderr(&output)
    );

    let other = porcupine("jepsen/etcd_000.log");
    let page = dir.path().join("report.html");
    let output = check(&["--report", arg(&page)], &[&history, &other]);
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output).contains("give them one HISTORY (got 2)"),
        "{}",
        stderr(&output)
    );
    assert!(!page.exists(), "nothing is checked or written");
}
