//! End-to-end: `faultline test --system-file` with the worked example a user copies
//! (`examples/etcd-python`: etcd through a Python exec client) is valid, records the system
//! in test.json, and leaves no process behind; a malformed file is exit 3 naming its line and
//! field. The example is skipped, saying why, where etcd or python3 is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{describe, read_json};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/etcd-python/system.toml")
}

/// `faultline test --system-file SYSTEM_FILE ARGS...`, checked to leave nothing behind.
fn run(store: &Path, system_file: &Path, args: &[&str]) -> Output {
    let system_file = system_file.to_string_lossy();
    common::run(
        store,
        &[&["--system-file", system_file.as_ref()], args].concat(),
    )
}

/// Why the example cannot run here, if it cannot.
fn example_cannot_run() -> Option<String> {
    let works = |program: &str| {
        Command::new(program)
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success())
    };
    if !works("etcd") {
        return Some("etcd is not installed (apt-get install -y etcd-server)".into());
    }
    if !works("python3") {
        return Some("python3 is not installed (apt-get install -y python3)".into());
    }
    None
}

#[test]
fn the_etcd_python_example_runs_valid_and_is_recorded_as_a_system_file() {
    if let Some(reason) = example_cannot_run() {
        eprintln!("skipped: {reason}");
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let output = run(store.path(), &example(), &["--time-limit", "12s"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let run_dir = store.path().join("latest");
    let test = read_json(run_dir.join("test.json"));
    assert_eq!(test["system"]["name"], "etcd-python");
    let file = test["system"]["file"].as_str().unwrap_or_default();
    assert!(file.ends_with("examples/etcd-python/system.toml"), "{file}");
    let version = test["system"]["version"].as_str().unwrap_or_default();
    assert!(version.starts_with("etcd Version: 3."), "{version}");
    assert!(
        test["replay"]
            .as_str()
            .unwrap_or_default()
            .contains("--system-file "),
        "{test}"
    );
    let results = read_json(run_dir.join("results.json"));
    assert_eq!(results["valid"], true, "{}", describe(&output));

    // The Python client performed operations, and etcd acknowledged some of them.
    let history = std::fs::read_to_string(run_dir.join("history.jsonl")).unwrap();
    let acknowledged = |f: &str| {
        history
            .lines()
            .filter(|line| {
                line.contains(r#""type":"ok""#) && line.contains(&format!(r#""f":"{f}""#))
            })
            .count()
    };
    assert!(acknowledged("append") > 0, "no append was acknowledged");
    assert!(acknowledged("read") > 0, "no read was answered");
    assert!(run_dir.join("clients/client-0.log").is_file());
}

#[test]
fn a_malformed_system_file_is_exit_3_naming_the_line_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kv.toml");
    std::fs::write(
        &file,
        "name = \"kv\"\n\n[node]\nstart = [\"kv\", \"--data\", \"{dta_dir}\"]\n\n[client]\nkind = \"http\"\n",
    )
    .unwrap();
    let output = run(dir.path(), &file, &["--time-limit", "5s"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "system file {}, line 4, field node.start: unknown placeholder {{dta_dir}}",
        file.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        !dir.path().join("latest").exists(),
        "a run directory was made"
    );
}
