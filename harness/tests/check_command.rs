//! `faultline check` as a user runs it: verdicts, exit codes, text and JSON output, errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn porcupine(file: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../checker/testdata/porcupine")
        .join(file);
    assert!(
        path.is_file(),
        "the Porcupine test data is missing: expected {}",
        path.display()
    );
    path
}

fn faultline(args: &[&str], files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("check")
        .args(args)
        .args(files)
        .output()
        .expect("faultline runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes events (without index and time, which are their positions) as a JSON Lines file.
fn history(dir: &Path, name: &str, events: &[Value]) -> PathBuf {
    let lines: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let mut event = event.clone();
            event["index"] = json!(i);
            event["time"] = json!(i);
            event.to_string()
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

#[test]
fn each_file_gets_a_line_and_the_worst_verdict_sets_the_exit_code() {
    let valid = porcupine("jepsen/etcd_002.log");
    let invalid = porcupine("jepsen/etcd_000.log");
    let output = faultline(&[], &[&valid, &invalid]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    let first = text.lines().next().unwrap();
    assert!(
        first.ends_with(" s)")
            && first.contains("etcd_002.log: valid (cas-register, 77 operations, 1 key"),
        "{first}"
    );
    assert!(
        text.contains("etcd_000.log: INVALID (cas-register"),
        "{text}"
    );
    assert!(
        text.contains("The longest linearizable prefix found has"),
        "{text}"
    );
    assert!(
        text.contains("<- read returned 2 but the value was 0"),
        "{text}"
    );

    let output = faultline(&[], &[&valid]);
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn json_output_is_the_check_result_with_the_file() {
    let invalid = porcupine("kv/c10-bad.txt");
    let output = faultline(&["--json", "--model", "kv"], &[&invalid]);
    assert_eq!(output.status.code(), Some(1));
    let result: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(result["file"], json!(invalid.display().to_string()));
    assert_eq!(result["format"], json!("edn"));
    assert_eq!(result["valid"], json!(false));
    // The same result as a run's results.json: one linearizability result per model.
    let result = &result["linearizability"][0];
    assert_eq!(result["model"], json!("kv"));
    assert_eq!(result["keys"].as_array().unwrap().len(), 10);
    let example = &result["counterexamples"][0];
    assert_eq!(example["key"], json!("0"));
    assert!(
        example["prefix"]
            .as_array()
            .is_some_and(|prefix| !prefix.is_empty())
    );
    assert!(
        example["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("get returned")
    );
}

#[test]
fn a_spent_time_budget_gives_unknown() {
    let dir = tempfile::tempdir().unwrap();
    // 20 concurrent writes and a read of a value nobody wrote: deciding it takes long.
    let mut events: Vec<Value> = (0..20)
        .map(|p| json!({"process": p, "type": "invoke", "f": "write", "value": p}))
        .collect();
    events.push(json!({"process": 99, "type": "invoke", "f": "read", "value": null}));
    events.push(json!({"process": 99, "type": "ok", "f": "read", "value": -1}));
    events.extend((0..20).map(|p| json!({"process": p, "type": "ok", "f": "write", "value": p})));
    let path = history(dir.path(), "slow.jsonl", &events);
    let output = faultline(&["--timeout", "0s"], &[&path]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    assert!(stdout(&output).contains("UNKNOWN"));
    assert!(stdout(&output).contains("undecided within the time budget: the history"));
}

#[test]
fn bad_input_is_an_error_naming_file_line_and_expectation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(
        &path,
        "{\"index\":0,\"time\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n{\"index\":1,\"time\":1,\"process\":1,\"type\":\"done\",\"f\":\"read\"}\n",
    )
    .unwrap();
    let valid = porcupine("jepsen/etcd_002.log");
    let output = faultline(&[], &[&path, &valid]);
    assert_eq!(output.status.code(), Some(3));
    let error = stderr(&output);
    assert!(
        error.starts_with(&format!("{}: error: line 2: ", path.display())),
        "{error}"
    );
    assert!(
        error.contains("expected one of `invoke`, `ok`, `fail`, `info`"),
        "{error}"
    );
    assert!(
        stdout(&output).contains("etcd_002.log: valid"),
        "later files are still checked"
    );

    let output = faultline(&["--model", "queue"], &[&valid]);
    assert_eq!(
        output.status.code(),
        Some(3),
        "a bad command line is an error too"
    );
}

#[test]
fn list_append_histories_are_checked_for_lost_writes_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = history(
        dir.path(),
        "append.jsonl",
        &[
            json!({"process": 0, "type": "invoke", "f": "append", "key": "s", "value": 1}),
            json!({"process": 0, "type": "ok", "f": "append", "key": "s", "value": 1}),
            json!({"process": 0, "type": "invoke", "f": "append", "key": "s", "value": 2}),
            json!({"process": 0, "type": "ok", "f": "append", "key": "s", "value": 2}),
            json!({"process": 1, "type": "invoke", "f": "read", "key": "s", "value": null}),
            json!({"process": 1, "type": "ok", "f": "read", "key": "s", "value": [1]}),
        ],
    );
    let output = faultline(&[], &[&path]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("list-append"),
        "the model is inferred: {text}"
    );
    assert!(
        text.contains("lost writes: invalid: 1 lost, 0 unexpected"),
        "{text}"
    );
    assert!(text.contains("key \"s\" lost: 2 (#2)"), "{text}");
}

#[test]
fn each_key_is_checked_against_its_own_model_as_in_a_run() {
    // A run's default workload: a register key with a cas beside a list key. One model for
    // the whole file read the cas as an append ("cas failed", exit 3).
    let dir = tempfile::tempdir().unwrap();
    let path = history(
        dir.path(),
        "run.jsonl",
        &[
            json!({"process": 0, "type": "invoke", "f": "write", "key": "r0", "value": 1}),
            json!({"process": 0, "type": "ok", "f": "write", "key": "r0", "value": 1}),
            json!({"process": 0, "type": "invoke", "f": "cas", "key": "r0", "value": [1, 2]}),
            json!({"process": 0, "type": "ok", "f": "cas", "key": "r0", "value": [1, 2]}),
            json!({"process": 1, "type": "invoke", "f": "append", "key": "l0", "value": 7}),
            json!({"process": 1, "type": "ok", "f": "append", "key": "l0", "value": 7}),
            json!({"process": 1, "type": "invoke", "f": "read", "key": "l0", "value": null}),
            json!({"process": 1, "type": "ok", "f": "read", "key": "l0", "value": [7]}),
            json!({"process": 0, "type": "invoke", "f": "read", "key": "r0", "value": null}),
            json!({"process": 0, "type": "ok", "f": "read", "key": "r0", "value": 2}),
        ],
    );
    let output = faultline(&[], &[&path]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(
            "valid (cas-register, 3 operations, 1 key; list-append, 2 operations, 1 key;"
        ),
        "{text}"
    );
    assert!(text.contains("lost writes: valid: 0 lost"), "{text}");
}

#[test]
fn the_initial_value_can_be_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = history(
        dir.path(),
        "read.jsonl",
        &[
            json!({"process": 0, "type": "invoke", "f": "read", "value": null}),
            json!({"process": 0, "type": "ok", "f": "read", "value": 5}),
        ],
    );
    assert_eq!(faultline(&[], &[&path]).status.code(), Some(1));
    assert_eq!(
        faultline(&["--initial", "5"], &[&path]).status.code(),
        Some(0)
    );
}

/// A run's own history is checked together with what the run saw beside it: a node that
/// crashed fails the run, so `faultline check` on its history.jsonl fails too, naming the
/// crash, although the history alone is linearizable. The same history elsewhere, or under
/// another name, is judged by itself.
#[test]
fn a_runs_history_gets_the_runs_verdict() {
    let run = tempfile::tempdir().unwrap();
    let events = [
        json!({"process": 0, "type": "invoke", "f": "write", "key": "r1", "value": 1}),
        json!({"process": 0, "type": "ok", "f": "write", "key": "r1", "value": 1}),
        json!({"process": 1, "type": "invoke", "f": "read", "key": "r1", "value": null}),
        json!({"process": 1, "type": "ok", "f": "read", "key": "r1", "value": 1}),
    ];
    let stored = history(run.path(), "history.jsonl", &events);
    let results = json!({
        "valid": false,
        "linearizability": [],
        "lost_writes": null,
        "crashes": [{"time": 2_500_000_000u64, "node": "n2", "status": "exit status: 1",
                     "last_error": "a lower term after a higher one in the WAL"}],
        "two_leaders": [{"term": 7, "first": "n1", "second": "n3", "time": 3_000_000_000u64}],
    });
    std::fs::write(run.path().join("results.json"), results.to_string()).unwrap();

    let output = faultline(&[], &[&stored]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("history.jsonl: INVALID (cas-register"),
        "{text}"
    );
    assert!(text.contains("the run      INVALID"), "{text}");
    assert!(
        text.contains("CRASHED      n2 at 2.5 s (exit status: 1): a lower term"),
        "{text}"
    );
    assert!(
        text.contains("TWO LEADERS  n1 and n3 both led term 7, at 3.0 s"),
        "{text}"
    );

    let output = faultline(&["--json"], &[&stored]);
    assert_eq!(output.status.code(), Some(1));
    let json: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(json["valid"], json!(false));
    assert_eq!(json["linearizability"][0]["valid"], json!(true));
    assert_eq!(json["run"]["valid"], json!(false));
    assert_eq!(json["run"]["crashes"][0]["node"], json!("n2"));

    // Not a run's history: judged alone.
    let copy = history(run.path(), "copy.jsonl", &events);
    assert_eq!(faultline(&[], &[&copy]).status.code(), Some(0));
    let elsewhere = tempfile::tempdir().unwrap();
    let alone = history(elsewhere.path(), "history.jsonl", &events);
    assert_eq!(faultline(&[], &[&alone]).status.code(), Some(0));

    // A results.json that cannot be read is an error, not a silent pass.
    std::fs::write(run.path().join("results.json"), "{").unwrap();
    let output = faultline(&[], &[&stored]);
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output).contains("results.json"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_history_without_operations_is_unknown_not_valid() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let faults_only = history(
        dir.path(),
        "faults.jsonl",
        &[json!({"process": "nemesis", "type": "info", "f": "start-partition", "value": null})],
    );
    let edn = dir.path().join("empty.edn");
    std::fs::write(&edn, "[]\n").unwrap();
    for file in [&empty, &faults_only, &edn] {
        let output = faultline(&[], &[file]);
        assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
        let text = stdout(&output);
        assert!(text.contains(": UNKNOWN (no operations; 0.00 s)"), "{text}");
        assert!(
            text.contains("  unknown: the history holds no operations"),
            "{text}"
        );

        let output = faultline(&["--json"], &[file]);
        assert_eq!(output.status.code(), Some(2));
        let result: Value = serde_json::from_str(&stdout(&output)).unwrap();
        assert_eq!(result["valid"], "unknown");
        assert_eq!(result["reason"], "the history holds no operations");
    }
}

#[test]
fn hostile_input_is_an_error_naming_the_line_and_the_limit_never_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let op = "{:process 0, :type :invoke, :f :read, :value nil}";
    let cases = [
        (
            "deep.edn",
            format!("{op}\n{}", "[".repeat(100_000)),
            "line 2: forms nested deeper than 128 levels",
        ),
        (
            "deep-value.edn",
            format!(
                "[{op}\n{op}\n{{:process 0 :value {}}}]",
                "#{".repeat(100_000)
            ),
            "line 3: forms nested deeper than 128 levels",
        ),
        (
            "deep.jsonl",
            format!(
                "{{\"index\":0,\"time\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":{}}}",
                "[".repeat(100_000)
            ),
            "line 1: arrays and objects nested deeper than 128 levels",
        ),
        (
            "deep.log",
            format!(
                "INFO  jepsen.util - 1\t:invoke\t:write\t{}",
                "(".repeat(100_000)
            ),
            "line 1: forms nested deeper than 128 levels",
        ),
    ];
    for (name, text, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let output = faultline(&[], &[&path]);
        assert_eq!(output.status.code(), Some(3), "{name}: {}", stderr(&output));
        let error = stderr(&output);
        assert!(
            error.starts_with(&format!("{}: error: {expected}", path.display())),
            "{name}: {error}"
        );
        assert!(error.len() < 500, "{name}: a short message: {error}");
    }
}

#[test]
fn indexes_that_do_not_increase_are_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let event = |index: u64, kind: &str| {
        json!({"index": index, "time": index, "process": 0, "type": kind, "f": "write",
               "value": 1})
        .to_string()
    };
    let path = dir.path().join("repeated.jsonl");
    std::fs::write(
        &path,
        [event(0, "invoke"), event(1, "ok"), event(1, "invoke")].join("\n"),
    )
    .unwrap();
    let output = faultline(&["--json"], &[&path]);
    assert_eq!(output.status.code(), Some(3));
    let result: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        result["error"],
        "line 3: index 1 is the same index as the event before it (line 2, index 1): indexes \
         must increase from one event to the next (a duplicated or reordered line?)"
    );

    // Gaps are fine: a history grepped down to some of its lines still checks.
    let path = dir.path().join("gaps.jsonl");
    std::fs::write(&path, [event(3, "invoke"), event(7, "ok")].join("\n")).unwrap();
    assert_eq!(faultline(&[], &[&path]).status.code(), Some(0));
}
